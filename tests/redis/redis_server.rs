//! A `redis-server` of the test's own on a free port, which the test may stop
//! and start again (the machine's Redis is shared and left alone).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::process::free_port;
use crate::support::poll::eventually;

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one, or `None` (saying why) when `redis-server` cannot run.
    pub async fn start() -> Option<RedisServer> {
        let mut server = RedisServer { port: free_port(), child: None };
        if let Err(e) = server.resume().await {
            eprintln!("\n*** SKIPPED: cannot run redis-server ({e}) ***\n");
            return None;
        }
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on the same port (nothing kept on disk).
    pub async fn resume(&mut self) -> std::io::Result<()> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let port = self.port;
        eventually(Duration::from_secs(10), "redis-server accepts connections", async || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
        Ok(())
    }

    /// SIGKILL: gone at once, as in a crash.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
