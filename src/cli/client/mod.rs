//! The operator's verbs: log in, deploy and watch, plan, list and steer runs,
//! decide approvals, read clusters and actors. They talk to a server over
//! the REST API and /api/v1/ws; nothing here touches the store.

mod agent_admin;
pub mod api;
mod audit;
mod by_id;
mod commands;
mod listings;
mod live_socket;
mod logout;
mod messaging;
pub mod output;
mod own_password;
pub mod plan;
mod registry;
mod release;
mod schemas;
mod secrets;
pub mod session;
mod signing_keys;
mod tenants;
mod users;
pub mod watch;
mod wave_nodes;

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};

use awc::http::Method;
use clap::Args;
use serde_json::{json, Value};

use api::Api;
pub use commands::{
    AgentsCommand, ClientCommand, DeployArgs, KeysCommand, ModulesCommand, RunsWhat, SchemasCommand, SecretsCommand,
    SubscriptionsCommand, TenantsCommand, TopicsCommand, UsersCommand,
};
use listings::{actors, agents, approvals, clusters, events, nodes, runs, AgentFilter, NodeFilter, RunFilter};
use output::{cell, complain, say, span, when, Out, OutputFormat};

/// Flags every verb takes, before or after its name.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// The server's base URL (else HOTSWAP_SERVER, then the saved login, then http://127.0.0.1:8080).
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// table for people, json for scripts (the API's own shapes).
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// No colours (NO_COLOR in the environment does the same).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Act for another tenant (its id or subdomain), as an Admin of the system tenant may;
    /// every request says so in X-Tenant-Id, and the server audits it (else HOTSWAP_TENANT).
    #[arg(long, global = true, env = "HOTSWAP_TENANT", value_name = "TENANT")]
    pub tenant: Option<String>,
    /// A PEM file with the CA that signed an https:// server's certificate, trusted
    /// instead of this host's CAs (else HOTSWAP_CA, then the one saved at login).
    #[arg(long, global = true, value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
}

/// What a client verb ends with, as the process's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done; a watched run Succeeded.
    Ok,
    /// The run Failed (without every change put back), or the command failed.
    Failed,
    /// Bad usage or input, or the server refused the request (4xx).
    Usage,
    /// The run was rolled back: RolledBack, or Failed with every node it changed restored.
    RolledBack,
    Cancelled,
    /// The run waits for an approval (and the watch does not go through it).
    AwaitingApproval,
    /// Ctrl-C while watching: the run goes on.
    Interrupted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::RolledBack => 3,
            Exit::Cancelled => 4,
            Exit::AwaitingApproval => 5,
            Exit::Interrupted => 130,
        }
    }
}

/// A command that could not do its work: what to print, and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
    /// The server's trace id for the refused request, to quote to operators.
    pub trace_id: Option<String>,
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::general(message)
    }
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure { exit: Exit::Usage, message: message.into(), trace_id: None }
    }

    pub fn general(message: impl Into<String>) -> Failure {
        Failure { exit: Exit::Failed, message: message.into(), trace_id: None }
    }

    /// The same failure, its message prefixed with what was being done.
    pub fn context(self, what: &str) -> Failure {
        Failure { message: format!("{what}: {}", self.message), ..self }
    }
}

/// The exit code a run's state means.
pub fn run_exit(run: &Value) -> Exit {
    let stages: Vec<&Value> = run["stages"].as_array().into_iter().flatten().collect();
    match run["status"].as_str().unwrap_or_default() {
        "Succeeded" | "Running" | "Paused" => Exit::Ok,
        "RolledBack" => Exit::RolledBack,
        "Cancelled" => Exit::Cancelled,
        "PendingApproval" => Exit::AwaitingApproval,
        _ => {
            // Failed: rolled back when the failing stage was restored and no
            // node was left behind in it. Earlier stages that succeeded keep
            // the version (a promotion's usual outcome; docs/CLI.md says so).
            let restored = stages.iter().any(|s| s["status"] == "RolledBack");
            let stuck = stages.iter().any(|s| s["status"] == "Failed" && !s["environment"].is_null());
            if restored && !stuck {
                Exit::RolledBack
            } else {
                Exit::Failed
            }
        }
    }
}

/// Runs a client verb and answers the process's exit code, having printed
/// any failure with the server's message and trace id.
pub async fn run(global: GlobalArgs, command: ClientCommand) -> u8 {
    let out = Out::new(global.output, global.no_color);
    match dispatch(&global, out, command).await {
        Ok(exit) => exit.code(),
        Err(failure) => {
            report(&failure);
            failure.exit.code()
        }
    }
}

/// Prints a failure on standard error.
pub fn report(failure: &Failure) {
    complain!("hotswap: {}", failure.message);
    if let Some(trace) = &failure.trace_id {
        complain!("  trace id: {trace}");
    }
}

fn api_for(global: &GlobalArgs) -> Result<Api, Failure> {
    Api::new(&session::resolve(global.server.as_deref(), global.ca.as_deref()))
}

async fn dispatch(global: &GlobalArgs, out: Out, command: ClientCommand) -> Result<Exit, Failure> {
    let api = api_for(global)?;
    let api = match command {
        // Signing in and out is the caller's own, in its own tenant.
        ClientCommand::Login { .. }
        | ClientCommand::Logout
        | ClientCommand::Password { .. }
        | ClientCommand::Completions { .. } => api,
        _ => api.acting_for(global.tenant.as_deref()).await?,
    };
    match command {
        ClientCommand::Login { username, password_stdin } => login(&api, out, username, password_stdin).await,
        ClientCommand::Logout => logout::logout(&api).await,
        ClientCommand::Password { password_stdin } => own_password::change(&api, out, password_stdin).await,
        ClientCommand::Deploy { args, watch, plan, until_approval } => {
            if plan {
                return show_plan(&api, out, &args).await;
            }
            deploy(&api, out, &args, watch, until_approval).await
        }
        ClientCommand::Plan { args } => show_plan(&api, out, &args).await,
        ClientCommand::Runs { what: _, status, module, env, limit, page } => {
            runs(&api, out, RunFilter { status, module, env }, limit, page).await
        }
        ClientCommand::Status { id, watch, until_approval } => {
            if watch {
                return watch::follow(&api, out, &id, None, until_approval).await;
            }
            status(&api, out, &id).await
        }
        ClientCommand::Pause { id } => steer(&api, out, &id, "pause").await,
        ClientCommand::Resume { id } => steer(&api, out, &id, "resume").await,
        ClientCommand::Promote { id } => steer(&api, out, &id, "promote").await,
        ClientCommand::Abort { id } => steer(&api, out, &id, "abort").await,
        ClientCommand::Rollback { id } => steer(&api, out, &id, "rollback").await,
        ClientCommand::Approvals => approvals(&api, out).await,
        ClientCommand::Approve { id, reason } => decide(&api, out, &id, "approve", reason).await,
        ClientCommand::Reject { id, reason } => decide(&api, out, &id, "reject", Some(reason)).await,
        ClientCommand::Clusters => clusters(&api, out).await,
        ClientCommand::Nodes { env, page, page_size, module, version, unhealthy } => {
            let filter = NodeFilter { module, version, unhealthy };
            nodes(&api, out, &env, &filter, page, page_size).await
        }
        ClientCommand::Actors { tree } => actors(&api, out, tree).await,
        ClientCommand::Events { id } => events(&api, out, &id).await,
        ClientCommand::Agents { command: None, environment, disconnected, page, page_size } => {
            agents(&api, out, &AgentFilter { environment, disconnected }, page, page_size).await
        }
        ClientCommand::Agents { command: Some(AgentsCommand::Token { environment, labels, expires_in }), .. } => {
            agent_admin::create(&api, out, &environment, &labels, expires_in).await
        }
        ClientCommand::Agents { command: Some(AgentsCommand::Tokens { state, page, page_size }), .. } => {
            agent_admin::list(&api, out, state.as_deref(), page, page_size).await
        }
        ClientCommand::Agents { command: Some(AgentsCommand::RevokeToken { id }), .. } => {
            agent_admin::revoke(&api, out, &id).await
        }
        ClientCommand::Agents { command: Some(AgentsCommand::Remove { hostname }), .. } => {
            agent_admin::remove(&api, out, &hostname).await
        }
        ClientCommand::Keys { command: None } => signing_keys::list(&api, out).await,
        ClientCommand::Keys { command: Some(KeysCommand::Add { name, file }) } => {
            signing_keys::add(&api, out, &file, name.as_deref()).await
        }
        ClientCommand::Keys { command: Some(KeysCommand::Revoke { key }) } => {
            signing_keys::revoke(&api, out, &key).await
        }
        ClientCommand::Topics { command } => messaging::topics(&api, out, command).await,
        ClientCommand::Subscriptions { topic, command } => messaging::subscriptions(&api, out, topic, command).await,
        ClientCommand::Publish { topic, payload, headers, partition_key, priority, message_id } => {
            let publication = messaging::Publication { topic, payload, headers, partition_key, priority, message_id };
            messaging::publish(&api, out, publication).await
        }
        ClientCommand::Consume { topic, subscription, max, wait, ack } => {
            messaging::consume(&api, out, messaging::Pull { topic, subscription, max, wait, ack }).await
        }
        ClientCommand::Ack { messages, subscription } => {
            messaging::settle(&api, out, &subscription, &messages, messaging::Settle::Ack).await
        }
        ClientCommand::Nack { messages, subscription, reason, dead_letter } => {
            let refusal = messaging::Settle::Nack { reason, requeue: !dead_letter };
            messaging::settle(&api, out, &subscription, &messages, refusal).await
        }
        ClientCommand::Tenants { status, command, page, page_size } => {
            tenants::tenants(&api, out, status, command, page, page_size).await
        }
        ClientCommand::Users { command, page, page_size } => users::users(&api, out, command, page, page_size).await,
        ClientCommand::Schemas { command, page, page_size } => {
            schemas::schemas(&api, out, command, page, page_size).await
        }
        ClientCommand::Audit { category, event, actor, resource_type, resource_id, trace, since, limit, cursor } => {
            let filter =
                audit::AuditFilter { category, event, actor, resource_type, resource_id, trace, since, limit, cursor };
            audit::audit(&api, out, filter).await
        }
        ClientCommand::Modules { command: Some(ModulesCommand::Delete { name, version }), .. } => {
            registry::delete(&api, out, &name, &version).await
        }
        ClientCommand::Modules { name, command: None } => registry::modules(&api, out, name.as_deref()).await,
        ClientCommand::Impact { module, version } => release::impact(&api, out, &module, &version).await,
        ClientCommand::Release { items, to, strategy, meta, requester, allow_downgrade, plan, wait } => {
            let release = release::Release { items, to, strategy, meta, requester, allow_downgrade, plan, wait };
            release::release(&api, out, release).await
        }
        ClientCommand::Batch { id: Some(id), wait, .. } => release::batch(&api, out, &id, wait).await,
        ClientCommand::Batch { id: None, limit, before, .. } => {
            release::batches(&api, out, limit, before.as_deref()).await
        }
        ClientCommand::Secrets { command } => {
            let rotate = command.map(|SecretsCommand::Rotate { id }| id);
            secrets::secrets(&api, out, rotate.as_deref()).await
        }
        ClientCommand::Completions { shell } => {
            let mut command = crate::cli::client_options::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "hotswap", &mut script);
            say!("{}", String::from_utf8_lossy(&script).trim_end());
            Ok(Exit::Ok)
        }
    }
}

/// A path segment typed by a person, escaped so it cannot change the path.
fn segment(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.~".contains(c) {
                c.to_string()
            } else {
                format!("%{:02X}", c as u32 & 0xff)
            }
        })
        .collect()
}

/// Everything piped in on standard input.
fn read_input() -> Result<String, Failure> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
        .map_err(|e| Failure::usage(format!("cannot read standard input: {e}")))?;
    Ok(text)
}

fn read_line(prompt: Option<&str>) -> Result<String, Failure> {
    if let Some(prompt) = prompt {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(prompt.as_bytes()).and_then(|()| err.flush());
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::general(format!("cannot read standard input: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

async fn login(api: &Api, out: Out, username: Option<String>, password_stdin: bool) -> Result<Exit, Failure> {
    let username = match username {
        Some(u) => u,
        None if std::io::stdin().is_terminal() => read_line(Some("Username: "))?,
        None => return Err(Failure::usage("give --username when standard input is not a terminal")),
    };
    let password = if password_stdin {
        read_line(None)?
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("Password for {username} at {}: ", api.server))
            .map_err(|e| Failure::general(format!("cannot read the password: {e}")))?
    } else {
        return Err(Failure::usage("standard input is not a terminal: pipe the password with --password-stdin"));
    };
    let body = json!({ "username": username, "password": password });
    let answer = api.call(Method::POST, "/api/v1/authentication/login", Some(&body)).await?;
    let reply = answer.body;
    let token = reply["token"].as_str().ok_or_else(|| Failure::general("the server answered no token"))?;
    let credentials = session::Credentials {
        server: api.server.clone(),
        token: token.to_string(),
        username: cell(&reply["user"]["username"]),
        email: reply["user"]["email"].as_str().unwrap_or_default().to_string(),
        expires_at: reply["expiresAt"].as_str().map(str::to_string),
        ca: api.ca.as_ref().map(|ca| ca.to_string_lossy().into_owned()),
    };
    let path = session::save(&credentials)?;
    if out.json() {
        out.print_json(&json!({ "server": api.server, "username": credentials.username, "expiresAt": reply["expiresAt"], "credentials": path }));
    } else {
        let roles: Vec<String> = reply["user"]["roles"].as_array().into_iter().flatten().map(cell).collect();
        say!(
            "Logged in to {} as {} ({}); the token expires at {}.",
            api.server,
            credentials.username,
            roles.join(", "),
            when(&reply["expiresAt"])
        );
        say!("{}", out.dim(&format!("Saved to {} (readable by you only).", path.display())));
    }
    Ok(Exit::Ok)
}

/// The requester's email: the flag, the saved login's, or the token's user.
async fn requester(api: &Api, flag: Option<&str>) -> Result<String, Failure> {
    if let Some(email) = flag {
        return Ok(email.to_string());
    }
    let target_saved =
        session::load().filter(|c| session::normalise(&c.server) == api.server && Some(&c.token) == api.token.as_ref());
    if let Some(email) = target_saved.map(|c| c.email).filter(|e| !e.is_empty()) {
        return Ok(email);
    }
    let me = api.get("/api/v1/authentication/me").await?;
    me["email"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Failure::usage("the token's user has no email: give --requester"))
}

/// `KEY=VALUE` arguments of a repeatable `flag` as a map.
fn key_values(flag: &str, pairs: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    let mut map = BTreeMap::new();
    for pair in pairs {
        let (k, v) = pair.split_once('=').ok_or_else(|| Failure::usage(format!("{flag} '{pair}' is not KEY=VALUE")))?;
        map.insert(k.to_string(), v.to_string());
    }
    Ok(map)
}

async fn request_body(api: &Api, args: &DeployArgs) -> Result<Value, Failure> {
    // The server takes the flag and plans no gate for these (its API is kept
    // as it is); an operator who asked for a gate must not get none unawares.
    if args.require_approval && !approval_applies(&args.to) {
        return Err(Failure::usage(format!(
            "--require-approval applies to runs to Staging and Production: a run to {} has no approval gate",
            args.to
        )));
    }
    let metadata = key_values("--meta", &args.meta)?;
    let mut body = json!({
        "moduleName": args.module,
        "version": args.version,
        "targetEnvironment": args.to,
        "requesterEmail": requester(api, args.requester.as_deref()).await?,
        "requireApproval": args.require_approval,
        "metadata": metadata,
    });
    if let Some(map) = body.as_object_mut() {
        if let Some(d) = &args.description {
            map.insert("description".into(), json!(d));
        }
        if let Some(s) = &args.strategy {
            map.insert("strategy".into(), json!(s));
        }
        if let Some(steps) = &args.canary_steps {
            map.insert("canarySteps".into(), json!(steps));
        }
        if args.allow_downgrade {
            map.insert("allowDowngrade".into(), json!(true));
        }
    }
    Ok(body)
}

/// Whether a run to `target` stops at an approval gate when asked to.
fn approval_applies(target: &str) -> bool {
    use hotswap_actors::domain::Environment;
    target.parse::<Environment>().map_or(true, |env| matches!(env, Environment::Staging | Environment::Production))
}

/// A refused downgrade names the API's field; the operator needs the flag.
pub(super) fn with_downgrade_hint(mut failure: Failure) -> Failure {
    if failure.message.contains("allowDowngrade") {
        failure.message.push_str("\n  give --allow-downgrade to deploy it anyway (the server audits it)");
    }
    failure
}

async fn show_plan(api: &Api, out: Out, args: &DeployArgs) -> Result<Exit, Failure> {
    api.require_token()?;
    let body = request_body(api, args).await?;
    let plan = api.post("/api/v1/deployments?dryRun=true", &body).await?.body;
    if out.json() {
        out.print_json(&plan);
    } else {
        plan::print_plan(&out, &plan);
    }
    Ok(if plan["wouldDeploy"] == Value::Bool(false) { Exit::Failed } else { Exit::Ok })
}

async fn deploy(api: &Api, out: Out, args: &DeployArgs, watch: bool, until_approval: bool) -> Result<Exit, Failure> {
    api.require_token()?;
    let body = request_body(api, args).await?;
    // Subscribed before the run exists, so not even its first events are missed.
    let live = if watch {
        let mut live = watch::Live::connect(api).await?;
        live.subscribe(None).await?;
        Some(live)
    } else {
        None
    };
    let accepted = api.post("/api/v1/deployments", &body).await.map_err(with_downgrade_hint)?.body;
    let id = accepted["executionId"]
        .as_str()
        .ok_or_else(|| Failure::general("the server answered no executionId"))?
        .to_string();
    if out.json() {
        say!(
            "{}",
            if watch { accepted.to_string() } else { serde_json::to_string_pretty(&accepted).unwrap_or_default() }
        );
    } else {
        say!(
            "Started run {} of {} {} to {} (estimated {}; trace {}).",
            out.bold(&id),
            args.module,
            args.version,
            args.to,
            span(&accepted["estimatedDuration"]),
            cell(&accepted["traceId"])
        );
    }
    if !watch {
        if !out.json() {
            say!("{}", out.dim(&format!("Follow it with: hotswap status {id} --watch")));
        }
        return Ok(Exit::Ok);
    }
    watch::follow(api, out, &id, live, until_approval).await
}

async fn status(api: &Api, out: Out, id: &str) -> Result<Exit, Failure> {
    let run = api.get(&format!("/api/v1/deployments/{}", segment(id))).await?;
    if out.json() {
        out.print_json(&run);
        return Ok(run_exit(&run));
    }
    say!(
        "{} {} {} to {}: {}",
        out.bold("Run"),
        cell(&run["executionId"]),
        format_args!("{} {}", cell(&run["moduleName"]), cell(&run["version"])),
        cell(&run["targetEnvironment"]),
        out.status(run["status"].as_str().unwrap_or("?"))
    );
    if let Some(m) = run["message"].as_str().filter(|m| !m.is_empty()) {
        say!("{m}");
    }
    say!(
        "{}",
        out.dim(&format!(
            "started {} · {} · trace {}",
            when(&run["startTime"]),
            span(&run["duration"]),
            cell(&run["traceId"])
        ))
    );
    let rows: Vec<Vec<String>> = run["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let nodes = match (s["nodesDeployed"].as_u64(), s["nodesFailed"].as_u64()) {
                (Some(d), Some(f)) => format!("{d} ok, {f} failed"),
                (Some(d), None) => format!("{d} ok"),
                _ => "-".into(),
            };
            vec![
                cell(&s["name"]),
                cell(&s["strategy"]),
                cell(&s["status"]),
                nodes,
                span(&s["duration"]),
                cell(&s["message"]),
            ]
        })
        .collect();
    say!();
    out.table(&["STAGE", "STRATEGY", "STATUS", "NODES", "DURATION", "MESSAGE"], &rows, Some(2));
    if let Some(wait) = run["currentWait"].as_object() {
        say!();
        say!("Waiting: {} until {}", cell(&wait["kind"]), when(&wait["until"]));
    }
    if let Some(left) = left_on_new_version(&run) {
        say!();
        say!("{left}");
    }
    Ok(run_exit(&run))
}

/// "Left on 2.0.0 (quarantined): 3 nodes: a, b, c" for a run whose restores
/// failed; the server lists the first hundred names and counts the rest.
fn left_on_new_version(run: &Value) -> Option<String> {
    let total = run["nodesLeftOnNewVersionCount"].as_u64().filter(|n| *n > 0)?;
    let hosts: Vec<&str> = run["nodesLeftOnNewVersion"].as_array()?.iter().filter_map(Value::as_str).collect();
    let mut named = hosts.join(", ");
    let unnamed = total.saturating_sub(hosts.len() as u64);
    if unnamed > 0 {
        named.push_str(&format!(" and {unnamed} more"));
    }
    Some(format!(
        "Left on {} (quarantined, restore failed): {}: {named}",
        cell(&run["version"]),
        output::counted(total, "node")
    ))
}

async fn steer(api: &Api, out: Out, id: &str, verb: &str) -> Result<Exit, Failure> {
    let reply = api.post(&format!("/api/v1/deployments/{}/{verb}", segment(id)), &json!({})).await?.body;
    if out.json() {
        out.print_json(&reply);
    } else if verb == "rollback" {
        say!(
            "Rollback {} of run {id} started: {} nodes to restore.",
            cell(&reply["rollbackId"]),
            cell(&reply["nodesAffected"])
        );
    } else {
        say!(
            "{verb}: run {id} is {}. {}",
            out.status(reply["status"].as_str().unwrap_or("?")),
            cell(&reply["message"])
        );
    }
    Ok(Exit::Ok)
}

async fn decide(api: &Api, out: Out, id: &str, verdict: &str, reason: Option<String>) -> Result<Exit, Failure> {
    let body = match reason {
        Some(r) => json!({ "reason": r }),
        None => json!({}),
    };
    let reply = api.post(&format!("/api/v1/approvals/deployments/{}/{verdict}", segment(id)), &body).await?.body;
    if out.json() {
        out.print_json(&reply);
    } else {
        let status = reply["status"].as_str().unwrap_or(if verdict == "approve" { "Approved" } else { "Rejected" });
        say!("Run {id}: {}.", out.status(status));
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_that_left_nodes_behind_names_them_and_counts_the_rest() {
        let run = json!({
            "version": "2.0.0",
            "nodesLeftOnNewVersion": ["dev-1", "dev-2"],
            "nodesLeftOnNewVersionCount": 250,
        });
        assert_eq!(
            left_on_new_version(&run).as_deref(),
            Some("Left on 2.0.0 (quarantined, restore failed): 250 nodes: dev-1, dev-2 and 248 more")
        );
        assert_eq!(left_on_new_version(&json!({ "version": "2.0.0" })), None);
    }

    #[test]
    fn run_states_map_to_exit_codes() {
        let run = |status: &str, stages: Value| json!({ "status": status, "stages": stages });
        assert_eq!(run_exit(&run("Succeeded", json!([]))), Exit::Ok);
        assert_eq!(run_exit(&run("Cancelled", json!([]))), Exit::Cancelled);
        assert_eq!(run_exit(&run("PendingApproval", json!([]))), Exit::AwaitingApproval);
        let restored = json!([{ "status": "Succeeded", "environment": "Development" }, { "status": "RolledBack", "environment": "QA" }]);
        assert_eq!(run_exit(&run("Failed", restored)), Exit::RolledBack);
        let stuck =
            json!([{ "status": "RolledBack", "environment": "QA" }, { "status": "Failed", "environment": "QA" }]);
        assert_eq!(run_exit(&run("Failed", stuck)), Exit::Failed);
        assert_eq!(run_exit(&run("Failed", json!([{ "status": "Failed", "environment": null }]))), Exit::Failed);
        assert_eq!(Exit::Interrupted.code(), 130);
    }

    #[test]
    fn typed_segments_cannot_change_the_path() {
        assert_eq!(segment("QA"), "QA");
        assert_eq!(segment("../x?y"), "..%2Fx%3Fy");
    }
}
