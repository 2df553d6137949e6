//! `hotswap impact`, `hotswap release` and `hotswap batch`: what the
//! knowledge graph says before a release (who depends on a version, where
//! they run, what it would break), and a release of several modules in the
//! order their dependencies need (a deployment batch), followed until it
//! ends.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::api::Api;
use super::listings::show;
use super::output::{cell, counted, say, when, Out};
use super::{key_values, requester, segment, with_downgrade_hint, Exit, Failure};

/// Conflicts printed before the rest are counted.
const CONFLICTS_SHOWN: usize = 10;

/// How often `--wait` asks for a batch's state. A batch's steps are whole
/// runs, each taking seconds at least.
const BATCH_POLL: Duration = Duration::from_secs(1);

/// `hotswap impact MODULE VERSION`: exits 1 when the version would break a
/// dependent on a node that runs both, so a pipeline can stop there.
pub(super) async fn impact(api: &Api, out: Out, module: &str, version: &str) -> Result<Exit, Failure> {
    let path = format!("/api/v1/graph/impact?module={}&version={}", segment(module), segment(version));
    let report = api.get(&path).await?;
    let conflicts: Vec<&str> = report["conflicts"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let exit = if conflicts.is_empty() { Exit::Ok } else { Exit::Failed };
    if out.json() {
        out.print_json(&report);
        return Ok(exit);
    }
    let listed = |field: &str| report[field].as_array().map_or(0, Vec::len) as u64;
    // The report lists the first nodes only; nodesTotal counts them all.
    let nodes = report["nodesTotal"].as_u64().unwrap_or_else(|| listed("nodes"));
    // The nodes and clusters are the module's own; each dependent's nodes are in its row.
    say!(
        "{} {module} {version}: {module} runs on {} in {}; {}",
        out.bold("Impact of"),
        counted(nodes, "node"),
        counted(listed("clusters"), "cluster"),
        counted(listed("dependents"), "dependent")
    );
    if report["dependents"].as_array().is_some_and(|d| !d.is_empty()) {
        let headers = ["DEPENDENT", "VERSION", "REQUIRES", "DEPTH", "MEETS IT", "NODES"];
        show(out, &report, &report["dependents"], &headers, None, |d| {
            let meets = match d["satisfied"].as_bool() {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            };
            vec![
                cell(&d["module"]),
                cell(&d["version"]),
                format!("{} {}", cell(&d["dependsOn"]), cell(&d["requirement"])),
                cell(&d["depth"]),
                meets.into(),
                cell(&d["runningNodes"]),
            ]
        });
    }
    if conflicts.is_empty() {
        say!("Nothing running depends on {module} in a way {version} would break.");
    } else {
        say!("{}", out.status("Would break:"));
        // One line per broken dependent version; a registry with many would scroll for pages.
        for conflict in conflicts.iter().take(CONFLICTS_SHOWN) {
            say!("  {conflict}");
        }
        if conflicts.len() > CONFLICTS_SHOWN {
            let more = conflicts.len() - CONFLICTS_SHOWN;
            say!("  {}", out.dim(&format!("and {more} more (-o json lists every one)")));
        }
    }
    Ok(exit)
}

/// What `hotswap release` was given.
pub(super) struct Release {
    pub items: Vec<String>,
    pub to: Option<String>,
    pub strategy: Option<String>,
    pub meta: Vec<String>,
    pub requester: Option<String>,
    pub allow_downgrade: bool,
    pub plan: bool,
    pub wait: bool,
}

/// `MODULE@VERSION` as the API's `{module, version}`.
fn release_item(item: &str) -> Result<Value, Failure> {
    match item.rsplit_once('@') {
        Some((module, version)) if !module.is_empty() && !version.is_empty() => {
            Ok(json!({ "module": module, "version": version }))
        }
        _ => Err(Failure::usage(format!("'{item}' is not MODULE@VERSION"))),
    }
}

pub(super) async fn release(api: &Api, out: Out, release: Release) -> Result<Exit, Failure> {
    api.require_token()?;
    let modules = release.items.iter().map(|i| release_item(i)).collect::<Result<Vec<_>, _>>()?;
    if release.plan {
        let plan = api.post("/api/v1/graph/release-plan", &json!({ "modules": modules })).await?.body;
        let headers = ["WAVE", "MODULE", "VERSION", "AFTER"];
        let exit = show(out, &plan, &plan["steps"], &headers, None, |s| {
            vec![cell(&s["wave"]), cell(&s["module"]), cell(&s["version"]), after(&s["dependsOn"])]
        });
        if !out.json() {
            say!("{}", out.dim("modules of one wave go out side by side; nothing was started"));
        }
        return Ok(exit);
    }
    let Some(to) = release.to else {
        return Err(Failure::usage("give the target environment with --to ENV (or --plan to see the order only)"));
    };
    let mut body = json!({
        "modules": modules,
        "targetEnvironment": to,
        "requesterEmail": requester(api, release.requester.as_deref()).await?,
        "metadata": key_values("--meta", &release.meta)?,
    });
    if let (Some(strategy), Some(map)) = (&release.strategy, body.as_object_mut()) {
        map.insert("strategy".into(), json!(strategy));
    }
    if let (true, Some(map)) = (release.allow_downgrade, body.as_object_mut()) {
        map.insert("allowDowngrade".into(), json!(true));
    }
    let batch = api.post("/api/v1/deployments/batch", &body).await.map_err(with_downgrade_hint)?.body;
    let id = cell(&batch["batchId"]);
    if release.wait {
        if !out.json() {
            say!("Batch {id} started: {} modules to {to}", modules.len());
        }
        return follow(api, out, &id).await;
    }
    print_batch(out, &batch);
    if !out.json() {
        say!("{}", out.dim(&format!("hotswap batch {id} --wait follows it to its end")));
    }
    Ok(Exit::Ok)
}

/// `hotswap batch`: the newest batches, one line each.
/// `hotswap batch [--limit N] [--before ID]`: a page of the tenant's batches.
pub(super) async fn batches(api: &Api, out: Out, limit: u32, before: Option<&str>) -> Result<Exit, Failure> {
    let mut path = format!("/api/v1/deployments/batch?limit={limit}");
    if let Some(before) = before {
        path.push_str(&format!("&before={}", segment(before)));
    }
    let listed = api.get(&path).await?;
    let headers = ["BATCH", "STATUS", "TO", "MODULES", "CREATED"];
    let exit = show(out, &listed, &listed, &headers, Some(1), |b| {
        let modules: Vec<String> = b["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| format!("{}@{}", cell(&s["module"]), cell(&s["version"])))
            .collect();
        vec![
            cell(&b["batchId"]),
            cell(&b["status"]),
            cell(&b["targetEnvironment"]),
            modules.join(" "),
            when(&b["createdAt"]),
        ]
    });
    Ok(exit)
}

/// `hotswap batch ID [--wait]`.
pub(super) async fn batch(api: &Api, out: Out, id: &str, wait: bool) -> Result<Exit, Failure> {
    if wait {
        return follow(api, out, id).await;
    }
    let batch = api.get(&format!("/api/v1/deployments/batch/{}", segment(id))).await?;
    print_batch(out, &batch);
    Ok(Exit::Ok)
}

fn after(depends_on: &Value) -> String {
    let names: Vec<&str> = depends_on.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if names.is_empty() {
        "-".into()
    } else {
        names.join(", ")
    }
}

/// The step's run id in full: what `hotswap status` and the other run
/// commands take (a shortened id named no run).
fn run_id(step: &Value) -> String {
    step["executionId"].as_str().map(str::to_string).unwrap_or_else(|| "-".into())
}

fn print_batch(out: Out, batch: &Value) {
    if !out.json() {
        say!(
            "Batch {} to {}: {}{}",
            cell(&batch["batchId"]),
            cell(&batch["targetEnvironment"]),
            out.status(&cell(&batch["status"])),
            batch["message"].as_str().filter(|m| !m.is_empty()).map(|m| format!(" ({m})")).unwrap_or_default()
        );
    }
    let headers = ["WAVE", "MODULE", "VERSION", "STATUS", "RUN", "AFTER"];
    show(out, batch, &batch["steps"], &headers, Some(3), |s| {
        vec![
            cell(&s["wave"]),
            cell(&s["module"]),
            cell(&s["version"]),
            cell(&s["status"]),
            run_id(s),
            after(&s["dependsOn"]),
        ]
    });
}

/// Asks for the batch until it is no longer Running, printing each step's
/// changes as they are seen; exits 0 when it Succeeded, 1 otherwise.
async fn follow(api: &Api, out: Out, id: &str) -> Result<Exit, Failure> {
    let path = format!("/api/v1/deployments/batch/{}", segment(id));
    let mut seen: HashMap<String, String> = HashMap::new();
    loop {
        let batch = api.get(&path).await?;
        if !out.json() {
            for step in batch["steps"].as_array().into_iter().flatten() {
                let module = cell(&step["module"]);
                let status = cell(&step["status"]);
                if seen.get(&module) != Some(&status) {
                    let message = step["message"].as_str().filter(|m| !m.is_empty());
                    say!(
                        "  {module} {}: {}{}{}",
                        cell(&step["version"]),
                        out.status(&status),
                        step["executionId"].as_str().map(|_| format!(" (run {})", run_id(step))).unwrap_or_default(),
                        message.map(|m| format!(": {m}")).unwrap_or_default()
                    );
                    seen.insert(module, status);
                }
            }
        }
        if batch["status"] != "Running" {
            print_batch(out, &batch);
            return Ok(if batch["status"] == "Succeeded" { Exit::Ok } else { Exit::Failed });
        }
        tokio::time::sleep(BATCH_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn release_items_split_at_the_last_at_sign() {
        let item = super::release_item("netx@1.2.0-rc.1").unwrap();
        assert_eq!((item["module"].as_str(), item["version"].as_str()), (Some("netx"), Some("1.2.0-rc.1")));
        for bad in ["netx", "netx@", "@1.0.0"] {
            assert_eq!(super::release_item(bad).unwrap_err().exit, super::Exit::Usage, "{bad}");
        }
    }
}
