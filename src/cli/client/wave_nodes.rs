//! One wave's nodes as a `NodeUpdated` event gives them, read for the watch's
//! line: how many, how many failed, and a few host names.

use hotswap_actors::domain::listing::host_failure;
use serde_json::Value;

/// What a `NodeUpdated` event says of its nodes, for one line of the watch.
/// A large step lists some of its nodes (failed ones first chosen) and counts
/// them all in `nodeCount` and `failedCount`.
#[derive(Debug, PartialEq)]
pub(super) struct WaveNodes {
    pub total: u64,
    pub ok: u64,
    /// A few host names, or all of a small step's.
    pub hosts: String,
    /// "host (error)" for each failed node listed, then how many more failed.
    pub failed: Vec<String>,
}

impl WaveNodes {
    pub fn of(data: &Value) -> WaveNodes {
        let nodes = data["nodes"].as_array().map(Vec::as_slice).unwrap_or_default();
        let total = data["nodeCount"].as_u64().unwrap_or(nodes.len() as u64);
        let mut failed: Vec<String> = nodes
            .iter()
            .filter(|n| n["status"] == "Failed")
            .map(|n| host_failure(n["hostname"].as_str().unwrap_or("?"), n["error"].as_str().unwrap_or("failed")))
            .collect();
        let failed_count = data["failedCount"].as_u64().unwrap_or(failed.len() as u64);
        if failed_count > failed.len() as u64 {
            failed.push(format!("and {} more", failed_count - failed.len() as u64));
        }
        let names: Vec<&str> = nodes.iter().filter_map(|n| n["hostname"].as_str()).collect();
        let hosts = if total > names.len() as u64 && !names.is_empty() {
            format!("{} … ({total} in all)", names[..names.len().min(3)].join(", "))
        } else if names.len() > 6 {
            format!("{} … {}", names[..3].join(", "), names[names.len() - 1])
        } else {
            names.join(", ")
        };
        WaveNodes { total, ok: total.saturating_sub(failed_count), hosts, failed }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_wave_line_counts_the_nodes_an_update_does_not_list() {
        let node = |host: &str, failed: bool| {
            json!({ "hostname": host, "status": if failed { "Failed" } else { "Updated" },
                    "error": if failed { Value::from("hook exited 1") } else { Value::Null } })
        };
        let large = json!({ "nodes": [node("dev-00001", true), node("dev-00002", false), node("dev-00003", false),
                                      node("dev-00004", false)],
                            "nodeCount": 10_000, "failedCount": 3 });
        assert_eq!(
            WaveNodes::of(&large),
            WaveNodes {
                total: 10_000,
                ok: 9_997,
                hosts: "dev-00001, dev-00002, dev-00003 … (10000 in all)".into(),
                failed: vec!["dev-00001 (hook exited 1)".into(), "and 2 more".into()],
            }
        );
        // A server that lists every node (no counts) reads as before.
        let small = json!({ "nodes": (1..=8).map(|i| node(&format!("qa-{i}"), false)).collect::<Vec<_>>() });
        let read = WaveNodes::of(&small);
        assert_eq!((read.total, read.ok, read.hosts.as_str()), (8, 8, "qa-1, qa-2, qa-3 … qa-8"));
        assert!(read.failed.is_empty());
    }
}
