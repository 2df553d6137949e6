//! `hotswap agent`: the process on each real host. It enrols with a token,
//! keeps a WebSocket session with the server, and does what the server's
//! node actor for this host asks, checking every artifact itself
//! (docs/AGENT.md).
//!
//! Files by job: `settings` (flags, variables, file), `state` (the data
//! directory, written atomically), `artifact` (download and checks),
//! `hooks` (running them), `running_hook` (the one under way, recorded so
//! that a killed agent's hook is ended by the next start), `host` (each
//! command on the host), `prune` (old versions off the disk),
//! `connection` (the session, reconnection, the worker).

mod artifact;
mod connection;
mod hooks;
mod host;
mod phases;
mod prune;
mod running_hook;
pub mod settings;
pub mod state;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use actix_service::ServiceExt;
use actix_tls::connect::{ConnectError, ConnectInfo, Connection, Connector as TcpConnector, Resolver};
use awc::http::Uri;
use hotswap_actors::domain::HostReport;
pub use settings::{AgentArgs, AgentConfig};
use tokio::sync::mpsc;

use connection::Published;
use host::Host;
use state::DataDir;

/// Runs the agent until it is stopped (Ctrl-C or SIGTERM).
pub async fn run(args: AgentArgs) -> Result<(), String> {
    let config = Arc::new(AgentConfig::load(&args)?);
    let dir = DataDir(config.data_dir.clone());
    // Before anything else: a hook the previous process was running when it
    // was killed must not go on changing the host behind this one's back.
    end_left_over_hook(&dir, "the agent's previous process was killed during it");
    let state = dir.load_or_create()?;
    // Nothing to connect with can only be fixed by whoever starts the agent:
    // say so now rather than retry for ever.
    if state.session.is_none() && config.token.is_none() {
        return Err(format!(
            "{} holds no session credential (this host has not enrolled) and no --token was given: \
             start the agent once with --token and an enrolment token an Admin created (POST /api/v1/agents/tokens)",
            dir.state_file().display()
        ));
    }
    let client = http_client(&config)?;
    let hostname = config.hostname();
    let node_id = state.node_id;
    tracing::info!(%node_id, %hostname, server = %config.server, "agent starting");
    let server = Rc::new(RefCell::new(config.servers().first().cloned().unwrap_or_default()));
    let published = Rc::new(RefCell::new(Published { report: HostReport::default(), session: state.session.clone() }));
    let mut host = Host {
        dir,
        state,
        node: hostname.clone(),
        config: config.clone(),
        client: client.clone(),
        server: server.clone(),
        health: Default::default(),
        problems: Vec::new(),
        phases: Default::default(),
        known_hooks: Default::default(),
    };
    host.settle()?;
    host.prune_all();
    let (jobs, queue) = mpsc::unbounded_channel();
    actix_web::rt::spawn(connection::worker(host, queue, published.clone()));
    let stopping = DataDir(config.data_dir.clone());
    let connect = connection::connect_forever(config, client, node_id, hostname, jobs, published, server);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    tokio::select! {
        _ = connect => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    // A hook under way is ended with the agent, as the next start would end it.
    end_left_over_hook(&stopping, "the agent is stopping");
    Ok(())
}

/// Ends the hook recorded as running in `dir`, if its process group is
/// still there; `why` says why it is ended, for the log.
fn end_left_over_hook(dir: &DataDir, why: &str) {
    if let Some(ended) = dir.running_hook().end_left_over() {
        tracing::warn!(%ended, "killed a hook still running: {why}");
    }
}

/// The HTTP and WebSocket client. Over HTTPS the server's certificate is
/// checked against the CA `--ca` names, else against the host's trusted CAs.
fn http_client(config: &AgentConfig) -> Result<awc::Client, String> {
    let builder = awc::Client::builder().timeout(std::time::Duration::from_secs(120));
    let connector = awc::Connector::new().connector(tcp_without_nagle());
    if !config.servers().iter().any(|server| crate::tls_client::is_tls(server)) {
        return Ok(builder.connector(connector).finish());
    }
    let tls = crate::tls_client::client_config(config.ca.as_deref())?;
    Ok(builder.connector(connector.rustls_0_23(tls)).finish())
}

/// TCP connections with `TCP_NODELAY`. The session's frames are small and
/// each is waited for: with Nagle's algorithm a reply written while an
/// earlier frame (a heartbeat) is unacknowledged is held back until the
/// server's delayed ACK, up to 40 ms, which stalled whole stages.
fn tcp_without_nagle() -> impl actix_service::Service<
    ConnectInfo<Uri>,
    Response = Connection<Uri, actix_web::rt::net::TcpStream>,
    Error = ConnectError,
> + Clone {
    TcpConnector::new(Resolver::default()).service().map(
        |connection: Connection<Uri, actix_web::rt::net::TcpStream>| {
            if let Err(e) = connection.io_ref().set_nodelay(true) {
                tracing::warn!(error = %e, "could not turn Nagle's algorithm off; replies may wait for the server's delayed ACK");
            }
            connection
        },
    )
}

#[cfg(test)]
mod tests {
    use actix_service::Service;

    use super::*;

    /// The connections the agent makes have Nagle's algorithm off: a server
    /// on loopback is reached through the agent's connector, and the socket
    /// it answers says so.
    #[actix_web::test]
    async fn the_agents_connections_are_made_without_nagles_algorithm() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let uri: Uri = format!("http://{}/", listener.local_addr().unwrap()).parse().unwrap();
        let connection = tcp_without_nagle().call(ConnectInfo::new(uri)).await.unwrap();
        assert!(connection.io_ref().nodelay().unwrap());
    }
}
