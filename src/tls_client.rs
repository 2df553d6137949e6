//! TLS for the connections HotSwap opens to its own servers and to Vault: the
//! operator's client, the agent and the secrets back-end. A server whose
//! certificate comes from a CA this host trusts needs nothing more; a private
//! CA is named in a file (`--ca`, `secrets.vault.ca_cert_file`), and then it is
//! the only CA trusted.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// A client that checks the server's certificate against the CA certificates
/// in `ca`, else against the host's trust store (`SSL_CERT_FILE` and
/// `SSL_CERT_DIR` say where, as for OpenSSL). Errors name `--ca`.
pub fn client_config(ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    client_config_for("--ca", ca)
}

/// The same, with errors that name `setting`, the option or setting that gave `ca`.
pub fn client_config_for(setting: &str, ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(ca) => {
            let named = |e: &dyn std::fmt::Display| format!("{setting} {}: {e}", ca.display());
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| named(&e))? {
                roots.add(cert.map_err(|e| named(&e))?).map_err(|e| named(&e))?;
            }
            if roots.is_empty() {
                return Err(named(&"holds no PEM certificate"));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _unusable) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found.errors.first().map(|e| format!(" ({e})")).unwrap_or_default();
                return Err(format!(
                    "this host trusts no CA certificate{why}: name the server's CA with {setting}, or set SSL_CERT_FILE"
                ));
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Whether `server` is reached over TLS (`https://` or `wss://`).
pub fn is_tls(server: &str) -> bool {
    let scheme = server.split("://").next().unwrap_or_default();
    scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = client_config(Some(&empty)).unwrap_err();
        assert!(err.contains("empty.pem") && err.contains("no PEM certificate"), "{err}");
        let missing = dir.path().join("missing.pem");
        let err = client_config(Some(&missing)).unwrap_err();
        assert!(err.contains("missing.pem"), "{err}");
    }

    #[test]
    fn tls_is_told_by_the_scheme() {
        assert!(is_tls("https://hotswap.example.com"));
        assert!(is_tls("HTTPS://hotswap.example.com"));
        assert!(is_tls("wss://a:1"));
        assert!(!is_tls("http://127.0.0.1:8080"));
        assert!(!is_tls("hotswap.example.com"));
    }
}
