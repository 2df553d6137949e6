//! An error's text followed by its causes: the outbound HTTP clients'
//! errors (reqwest) leave the cause out of their own text, and the cause is
//! usually what the reader needs (a refused address, a TLS failure).

/// `outer: cause: its cause...`
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!(": {s}"));
        source = s.source();
    }
    out
}
