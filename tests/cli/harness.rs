//! A server process per test and a way to run the client against it with a
//! configuration directory of its own.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::support::poll::eventually;

pub const DEPLOYER: (&str, &str) = ("deployer", "Deploy123!");
pub const ADMIN: (&str, &str) = ("admin", "Admin123!");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// One `hotswap serve`; killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    log: tempfile::NamedTempFile,
}

impl Server {
    pub async fn start() -> Server {
        Server::start_with(&[]).await
    }

    /// With extra HOTSWAP__SECTION__KEY variables.
    pub async fn start_with(vars: &[(&str, &str)]) -> Server {
        Server::spawn(vars, "http", awc::Client::default()).await
    }

    /// Serving HTTPS with `cert` and `key`; its readiness is checked through `ca`.
    pub async fn start_tls(cert: &Path, key: &Path, ca: &Path) -> Server {
        let tls = hotswap::tls_client::client_config(Some(ca)).expect("the test CA loads");
        let client = awc::Client::builder().connector(awc::Connector::new().rustls_0_23(tls)).finish();
        let vars = [
            ("HOTSWAP__SERVER__TLS__CERT_FILE", cert.to_str().unwrap()),
            ("HOTSWAP__SERVER__TLS__KEY_FILE", key.to_str().unwrap()),
        ];
        Server::spawn(&vars, "https", client).await
    }

    async fn spawn(vars: &[(&str, &str)], scheme: &str, client: awc::Client) -> Server {
        let port = free_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_hotswap"))
            .arg("serve")
            .envs(vars.iter().copied())
            .env("HOTSWAP_ENV", "test")
            .env("HOTSWAP_CONFIG_DIR", PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config"))
            .env("HOTSWAP__SERVER__BIND", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("hotswap serve starts");
        let server = Server { child, base: format!("{scheme}://127.0.0.1:{port}"), log };
        let ready = format!("{}/health/ready", server.base);
        eventually(Duration::from_secs(60), "the server answers /health/ready", async || {
            client.get(&ready).send().await.is_ok_and(|r| r.status().is_success())
        })
        .await;
        server
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The client as one operator on one machine: its own config directory.
pub struct Operator {
    pub base: String,
    pub home: tempfile::TempDir,
}

/// What a client run printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

impl Operator {
    pub fn new(server: &Server) -> Operator {
        Operator { base: server.base.clone(), home: tempfile::tempdir().unwrap() }
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_hotswap"));
        cmd.args(args)
            .env("XDG_CONFIG_HOME", self.home.path())
            .env("HOTSWAP_SERVER", &self.base)
            .env_remove("HOTSWAP_TOKEN")
            .env_remove("HOTSWAP_URL")
            .env_remove("HOTSWAP_CA")
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Runs the client to its end (at most two minutes).
    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_cmd(self.command(args)).await
    }

    pub async fn run_cmd(&self, mut cmd: tokio::process::Command) -> Run {
        let output =
            tokio::time::timeout(Duration::from_secs(120), cmd.output()).await.expect("the client ends").unwrap();
        Run::from(output)
    }

    /// Runs the client with `input` on its standard input.
    pub async fn run_with_input(&self, args: &[&str], input: &str) -> Run {
        self.run_input(self.command(args), input).await
    }

    async fn run_input(&self, mut cmd: tokio::process::Command, input: &str) -> Run {
        use tokio::io::AsyncWriteExt;
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).await.unwrap();
        drop(stdin);
        Run::from(child.wait_with_output().await.unwrap())
    }

    /// `hotswap login --password-stdin` as `user`.
    pub async fn login(&self, user: (&str, &str)) -> Run {
        self.login_with(user, &[], &[]).await
    }

    /// The same with more arguments and environment variables.
    pub async fn login_with(&self, (username, password): (&str, &str), more: &[&str], vars: &[(&str, &str)]) -> Run {
        let mut args = vec!["login", "--username", username, "--password-stdin"];
        args.extend_from_slice(more);
        let mut cmd = self.command(&args);
        cmd.envs(vars.iter().copied());
        self.run_input(cmd, &format!("{password}\n")).await
    }

    pub async fn logged_in(server: &Server, user: (&str, &str)) -> Operator {
        let op = Operator::new(server);
        let run = op.login(user).await;
        assert_eq!(run.code, 0, "{run:?}");
        op
    }
}
