//! `hotswap plan` and `deploy --plan`: the server's dry-run plan, printed.

use serde_json::Value;

use super::output::{cell, counted, human, say, Out};

/// A `DurationView` as people read it (sub-second waits of test setups too).
fn duration(v: &Value) -> String {
    match v["milliseconds"].as_i64() {
        Some(ms) => human(chrono::Duration::milliseconds(ms)),
        None => cell(&v["iso8601"]),
    }
}

/// Prints a `DeploymentPlan` for people.
pub fn print_plan(out: &Out, plan: &Value) {
    let envs: Vec<String> = plan["environments"].as_array().into_iter().flatten().map(cell).collect();
    say!(
        "{} {} {} to {} (dry run: nothing was changed)",
        out.bold("Plan:"),
        cell(&plan["moduleName"]),
        cell(&plan["version"]),
        cell(&plan["targetEnvironment"])
    );
    say!("Path: {}", envs.join(" → "));
    say!();
    say!("{} {}", out.bold("Security Scan"), out.status(plan["securityScan"]["outcome"].as_str().unwrap_or("?")));
    for check in plan["securityScan"]["checks"].as_array().into_iter().flatten() {
        let outcome = check["outcome"].as_str().unwrap_or("?");
        say!("  {:<13} {:<8} {}", cell(&check["name"]), out.status(outcome), out.dim(&cell(&check["message"])));
    }
    if let Some(approval) = plan["approval"].as_object() {
        say!();
        say!(
            "{} {} (expires after {} without a decision)",
            out.bold("Approval gate:"),
            cell(&approval["reason"]),
            duration(&approval["timeout"])
        );
    }
    for stage in plan["stages"].as_array().into_iter().flatten() {
        say!();
        say!(
            "{} · {} · {} · about {}",
            out.bold(&cell(&stage["name"])),
            cell(&stage["strategy"]),
            counted(stage["nodeCount"].as_u64().unwrap_or(0), "node"),
            duration(&stage["estimatedDuration"])
        );
        for wave in stage["waves"].as_array().into_iter().flatten() {
            let nodes: Vec<String> = wave["nodes"].as_array().into_iter().flatten().map(cell).collect();
            // The server lists a large wave's first nodes and counts them all.
            let count = wave["nodeCount"].as_u64().map_or(nodes.len(), |n| n as usize);
            let shown = if count > nodes.len() && !nodes.is_empty() {
                format!("{} … ({count} nodes)", nodes[..nodes.len().min(4)].join(", "))
            } else if nodes.len() > 8 {
                format!("{} … {} ({} nodes)", nodes[..4].join(", "), nodes[nodes.len() - 1], nodes.len())
            } else {
                nodes.join(", ")
            };
            let wait = match wave["wait"].as_object() {
                // A smoke test ends as soon as the standby is healthy: its figure is the most it may take.
                Some(w) if w["kind"] == "SmokeTest" => format!(", then SmokeTest up to {}", duration(&w["duration"])),
                Some(w) => format!(", then {} {}", cell(&w["kind"]), duration(&w["duration"])),
                None => String::new(),
            };
            say!(
                "  wave {:<2} {:<22} → {:>3} on the version{wait}",
                cell(&wave["number"]),
                cell(&wave["label"]),
                cell(&wave["nodesAfter"])
            );
            say!("           {}", out.dim(&shown));
        }
        if stage["waves"].as_array().is_none_or(|w| w.is_empty()) {
            say!("  {}", out.dim("no nodes: the scan would stop the run"));
        }
    }
    say!();
    say!(
        "Estimated duration: {} (waits from the server's settings; an approval's wait not included)",
        duration(&plan["estimatedDuration"])
    );
    if plan["wouldDeploy"] == Value::Bool(false) {
        say!("{}", out.status("Failed"));
        let checks = plan["securityScan"]["checks"].as_array().into_iter().flatten();
        let refused_downgrade = checks.take(1).any(|c| c["name"] == "Downgrade" && c["outcome"] == "Failed");
        if refused_downgrade {
            // The API refuses such a run before it exists; the flag lets it through, audited.
            say!("The server would refuse this run as a downgrade: give --allow-downgrade to deploy it anyway.");
        } else {
            say!("The Security Scan would fail this run before any node changes.");
        }
    }
}
