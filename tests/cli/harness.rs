//! A server process per test and a way to run the client against it with a
//! configuration directory of its own.

use std::net::TcpListener;
use std::path::PathBuf;
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
        let server = Server { child, base: format!("http://127.0.0.1:{port}"), log };
        let client = awc::Client::default();
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

    /// `hotswap login --password-stdin` as `user`.
    pub async fn login(&self, (username, password): (&str, &str)) -> Run {
        use tokio::io::AsyncWriteExt;
        let mut cmd = self.command(&["login", "--username", username, "--password-stdin"]);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(format!("{password}\n").as_bytes()).await.unwrap();
        drop(stdin);
        Run::from(child.wait_with_output().await.unwrap())
    }

    pub async fn logged_in(server: &Server, user: (&str, &str)) -> Operator {
        let op = Operator::new(server);
        let run = op.login(user).await;
        assert_eq!(run.code, 0, "{run:?}");
        op
    }
}
