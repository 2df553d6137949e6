//! `hotswap schemas`: the schema registry from the terminal (the routes
//! under `/api/v1/schemas`, docs/SCHEMA_REGISTRY.md). Schemas and payloads
//! are read from files, or from standard input when the file is `-`.

use awc::http::Method;
use serde_json::{json, Value};

use super::api::Api;
use super::commands::SchemasCommand;
use super::listings::{done, page_footer, show};
use super::output::{cell, say, when, Out};
use super::{read_input, segment, Exit, Failure};

pub(super) async fn schemas(
    api: &Api,
    out: Out,
    command: Option<SchemasCommand>,
    page: u32,
    size: u32,
) -> Result<Exit, Failure> {
    let Some(command) = command else { return list(api, out, page, size).await };
    match command {
        SchemasCommand::Register { id, file, compatibility } => {
            let definition = json_file(&file)?;
            let mut body = json!({ "schemaId": id, "schemaDefinition": definition });
            if let Some(mode) = compatibility {
                body["compatibility"] = mode.into();
            }
            let answer = api.post("/api/v1/schemas", &body).await?;
            let version = answer.body;
            if out.json() {
                out.print_json(&version);
                return Ok(Exit::Ok);
            }
            let what = if answer.status.as_u16() == 200 { "is already" } else { "registered as" };
            say!("{id} {what} version {}: {}", cell(&version["version"]), out.status(&cell(&version["status"])));
            if let Some(reason) = version["decisionReason"].as_str() {
                say!("{reason}");
            }
            breaking_changes(out, &version);
            Ok(Exit::Ok)
        }
        SchemasCommand::Show { id, version } => {
            let path = match version {
                Some(n) => format!("{}/versions/{n}", subject_path(&id)),
                None => subject_path(&id),
            };
            let version = api.get(&path).await?;
            if out.json() {
                out.print_json(&version);
                return Ok(Exit::Ok);
            }
            say!(
                "{} version {}: {}, compatibility {}, registered {} by {}",
                cell(&version["schemaId"]),
                cell(&version["version"]),
                out.status(&cell(&version["status"])),
                cell(&version["compatibility"]),
                when(&version["createdAt"]),
                cell(&version["createdBy"])
            );
            breaking_changes(out, &version);
            let pretty = serde_json::to_string_pretty(&version["schemaDefinition"]).unwrap_or_default();
            say!("{pretty}");
            Ok(Exit::Ok)
        }
        SchemasCommand::Versions { id } => {
            let versions = api.get(&format!("{}/versions", subject_path(&id))).await?;
            let headers = ["VERSION", "STATUS", "COMPATIBILITY", "REGISTERED", "DECIDED BY", "REASON"];
            Ok(show(out, &versions, &versions, &headers, Some(1), |v| {
                vec![
                    cell(&v["version"]),
                    cell(&v["status"]),
                    cell(&v["compatibility"]),
                    when(&v["createdAt"]),
                    cell(&v["decidedBy"]),
                    cell(&v["decisionReason"]),
                ]
            }))
        }
        SchemasCommand::Approve { id, version, reason } => decide(api, out, &id, version, "approve", reason).await,
        SchemasCommand::Reject { id, version, reason } => decide(api, out, &id, version, "reject", Some(reason)).await,
        SchemasCommand::Deprecate { id, reason } => {
            let body = json!({ "reason": reason });
            let answer = api.post(&format!("{}/deprecate", subject_path(&id)), &body).await?.body;
            done(
                out,
                answer,
                &format!("deprecated {id}: no new versions or topic bindings; bound topics keep validating"),
            )
        }
        SchemasCommand::Validate { id, file, version } => {
            let payload = json_file(&file)?;
            let mut path = format!("{}/validate", subject_path(&id));
            if let Some(n) = version {
                path.push_str(&format!("?version={n}"));
            }
            let verdict = api.post(&path, &payload).await?.body;
            let valid = verdict["isValid"] == Value::Bool(true);
            if out.json() {
                out.print_json(&verdict);
            } else if valid {
                say!("valid against {} version {}", cell(&verdict["schemaId"]), cell(&verdict["version"]));
            } else {
                say!("not valid against {} version {}:", cell(&verdict["schemaId"]), cell(&verdict["version"]));
                for error in verdict["errors"].as_array().into_iter().flatten() {
                    let at = error["path"].as_str().filter(|p| !p.is_empty()).unwrap_or("(the whole payload)");
                    say!("  {at}: {} ({})", cell(&error["message"]), cell(&error["kind"]));
                }
            }
            Ok(if valid { Exit::Ok } else { Exit::Failed })
        }
    }
}

fn subject_path(id: &str) -> String {
    format!("/api/v1/schemas/{}", segment(id))
}

async fn list(api: &Api, out: Out, page: u32, size: u32) -> Result<Exit, Failure> {
    let answer = api.call(Method::GET, &format!("/api/v1/schemas?page={}&pageSize={size}", page.max(1)), None).await?;
    let subjects = answer.body;
    let headers = ["SCHEMA", "LATEST", "APPROVED", "STATUS", "COMPATIBILITY", "VERSIONS", "DEPRECATED"];
    let exit = show(out, &subjects, &subjects, &headers, Some(3), |s| {
        vec![
            cell(&s["schemaId"]),
            cell(&s["latestVersion"]),
            cell(&s["latestApprovedVersion"]),
            cell(&s["status"]),
            cell(&s["compatibility"]),
            cell(&s["versionCount"]),
            if s["deprecated"] == Value::Bool(true) { when(&s["deprecatedAt"]) } else { "-".into() },
        ]
    });
    page_footer(out, "schemas", page, size, subjects.as_array().map_or(0, Vec::len), answer.total);
    Ok(exit)
}

/// Where a Draft breaks the versions it was compared with.
fn breaking_changes(out: Out, version: &Value) {
    let changes: Vec<&Value> = version["breakingChanges"].as_array().into_iter().flatten().collect();
    if changes.is_empty() {
        return;
    }
    say!("breaking changes (an Admin approves or rejects it):");
    let rows: Vec<Vec<String>> = changes
        .iter()
        .map(|c| vec![cell(&c["path"]), cell(&c["change"]), cell(&c["againstVersion"]), cell(&c["detail"])])
        .collect();
    out.table(&["PATH", "CHANGE", "AGAINST", "DETAIL"], &rows, None);
}

async fn decide(
    api: &Api,
    out: Out,
    id: &str,
    version: u32,
    verb: &str,
    reason: Option<String>,
) -> Result<Exit, Failure> {
    let path = format!("{}/versions/{version}/{verb}", subject_path(id));
    let decided = api.post(&path, &json!({ "reason": reason })).await?.body;
    let line = format!("{id} version {version} is {} now", cell(&decided["status"]));
    done(out, decided, &line)
}

/// The JSON in `file`, or on standard input when it is `-`.
fn json_file(file: &str) -> Result<Value, Failure> {
    let text = if file == "-" {
        read_input()?
    } else {
        std::fs::read_to_string(file).map_err(|e| Failure::usage(format!("cannot read {file}: {e}")))?
    };
    let shown = if file == "-" { "standard input" } else { file };
    serde_json::from_str(&text).map_err(|e| Failure::usage(format!("{shown} is not JSON: {e}")))
}
