//! Lists inside messages. A stage message travels into the run, its events,
//! the audit trail and every live update, so what it names must not grow with
//! the cluster: it names a few items and counts the rest.

/// How many items a message names; the rest are counted.
pub const NAMED_IN_MESSAGES: usize = 5;

/// The first few `items` joined with "; ", and how many more there are
/// ("a; b; c; d; e; and 9,995 more").
pub fn listed(items: &[String]) -> String {
    listed_with(items, "; ")
}

/// The first few `items` joined with `separator`, and how many more there are.
pub fn listed_with(items: &[String], separator: &str) -> String {
    let mut out = items.iter().take(NAMED_IN_MESSAGES).cloned().collect::<Vec<_>>().join(separator);
    let rest = items.len().saturating_sub(NAMED_IN_MESSAGES);
    if rest > 0 {
        out.push_str(&format!("{separator}and {} more", thousands(rest)));
    }
    out
}

/// "host (why)" for a node that failed; nodes' errors usually begin with
/// the host's name already ("dev-7: activate hook exited with 1"), and then
/// the error alone says it without naming the host twice.
pub fn host_failure(host: &str, error: &str) -> String {
    if error.starts_with(host) {
        error.to_string()
    } else {
        format!("{host} ({error})")
    }
}

/// "1 node", "9,995 nodes": a count with its noun in the right number.
pub fn counted(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{} {many}", thousands(n))
    }
}

/// 9995 → "9,995".
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{counted, host_failure, listed, listed_with};

    #[test]
    fn a_failure_names_its_host_once() {
        assert_eq!(host_failure("dev-7", "dev-7: hook exited with 1"), "dev-7: hook exited with 1");
        assert_eq!(host_failure("dev-7", "no longer in its cluster"), "dev-7 (no longer in its cluster)");
    }

    #[test]
    fn a_count_of_one_is_singular() {
        assert_eq!(counted(1, "node", "nodes"), "1 node");
        assert_eq!(counted(0, "node", "nodes"), "0 nodes");
        assert_eq!(counted(10_000, "node", "nodes"), "10,000 nodes");
    }

    #[test]
    fn names_five_and_counts_the_rest() {
        let hosts: Vec<String> = (0..10_000).map(|i| format!("dev-{i}")).collect();
        assert_eq!(listed(&hosts), "dev-0; dev-1; dev-2; dev-3; dev-4; and 9,995 more");
        assert_eq!(listed(&hosts[..2]), "dev-0; dev-1");
        assert_eq!(listed(&hosts[..1_006]), "dev-0; dev-1; dev-2; dev-3; dev-4; and 1,001 more");
        assert_eq!(listed(&[]), "");
        assert_eq!(listed_with(&hosts[..7], ", "), "dev-0, dev-1, dev-2, dev-3, dev-4, and 2 more");
    }
}
