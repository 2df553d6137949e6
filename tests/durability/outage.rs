//! A private PostgreSQL, stopped and started again while the service is
//! under load: requests get 503 with the JSON shape during the outage, never a
//! 500, and every deployment the service acknowledged is there afterwards.

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use awc::http::StatusCode;
use serde_json::json;

use crate::process::{free_port, Server};

/// A throw-away PostgreSQL cluster of our own, so that stopping it disturbs
/// no other test.
struct PrivatePostgres {
    bin: PathBuf,
    data: tempfile::TempDir,
    port: u16,
}

fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// PostgreSQL refuses to run as root: run its tools as `postgres` then.
fn pg_command(tool: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(tool);
        c
    } else {
        Command::new(tool)
    }
}

impl PrivatePostgres {
    fn create() -> Option<PrivatePostgres> {
        let Some(bin) = postgres_bin() else {
            let _ = writeln!(
                std::io::stderr(),
                "outage test skipped: no PostgreSQL server binaries under /usr/lib/postgresql"
            );
            return None;
        };
        let data = tempfile::Builder::new().prefix("hotswap-pg-").tempdir().expect("temp dir");
        if is_root() {
            let ok =
                Command::new("chown").args(["-R", "postgres:postgres"]).arg(data.path()).status().expect("chown runs");
            assert!(ok.success(), "chown of the data directory");
        }
        let out = pg_command(&bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(data.path().join("db"))
            .output()
            .expect("initdb runs");
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let pg = PrivatePostgres { bin, data, port: free_port() };
        pg.start();
        Some(pg)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) {
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.data.path().display());
        let out = pg_command(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data.path().join("db"))
            .args(["-o", &opts, "-l"])
            .arg(self.data.path().join("server.log"))
            .args(args)
            .output()
            .expect("pg_ctl runs");
        assert!(out.status.success(), "pg_ctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn start(&self) {
        self.pg_ctl(&["-w", "start"]);
    }

    fn stop(&self) {
        self.pg_ctl(&["-w", "-m", "fast", "stop"]);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = pg_command(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data.path().join("db"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

#[derive(Default)]
struct Tally {
    statuses: Vec<(Instant, u16)>,
    acknowledged: Vec<String>,
    transport_errors: usize,
}

#[actix_web::test]
async fn a_database_outage_gives_503s_and_loses_no_acknowledged_deployment() {
    if std::env::var(crate::support::URL_VAR).is_err() {
        let _ = writeln!(std::io::stderr(), "outage test skipped: {} is not set", crate::support::URL_VAR);
        return;
    }
    let Some(pg) = PrivatePostgres::create() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let vars = vec![
        ("HOTSWAP__STORE__BACKEND", "postgres".to_string()),
        ("HOTSWAP__STORE__URL", pg.url()),
        ("HOTSWAP__STORE__POOL__WAIT_TIMEOUT", "1s".to_string()),
        ("HOTSWAP__STORE__POOL__CONNECT_TIMEOUT", "1s".to_string()),
        ("HOTSWAP__STORE__POOL__RECYCLE_TIMEOUT", "1s".to_string()),
    ];
    let server = Rc::new(Server::start(free_port(), &vars, dir.path().join("server.log")).await);

    let tally = Rc::new(RefCell::new(Tally::default()));
    let running = Rc::new(RefCell::new(true));
    let load = {
        let (server, tally, running) = (server.clone(), tally.clone(), running.clone());
        actix_web::rt::spawn(async move {
            let mut i = 0;
            while *running.borrow() {
                i += 1;
                let body = json!({ "moduleName": format!("kmod-load-{i}"), "version": "1.0.0",
                    "targetEnvironment": "Development", "requesterEmail": "load@example.com" });
                match server.post("/api/v1/deployments", &body).await {
                    Ok((status, reply)) => {
                        let mut t = tally.borrow_mut();
                        t.statuses.push((Instant::now(), status.as_u16()));
                        if status == StatusCode::ACCEPTED {
                            t.acknowledged.push(reply["executionId"].as_str().unwrap().to_string());
                        } else {
                            assert!(reply["error"].as_str().is_some(), "JSON error shape: {reply}");
                        }
                    }
                    Err(_) => tally.borrow_mut().transport_errors += 1,
                }
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    let before_outage = tally.borrow().acknowledged.len();
    pg.stop();
    let outage_started = Instant::now();
    // While the database is down, readiness says so.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = server.get("/health/ready").await.expect("readiness answers");
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(body["store"]["status"], "Down");
            break;
        }
        assert!(Instant::now() < deadline, "readiness never reported the outage");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    actix_web::rt::time::sleep(Duration::from_millis(2500)).await;
    pg.start();
    let outage_ended = Instant::now();
    actix_web::rt::time::sleep(Duration::from_secs(4)).await;
    *running.borrow_mut() = false;
    load.await.expect("load loop ends");

    let t = std::mem::take(&mut *tally.borrow_mut());
    let server_errors: Vec<_> = t.statuses.iter().filter(|(_, s)| *s >= 500 && *s != 503).collect();
    assert!(server_errors.is_empty(), "no 5xx other than 503: {server_errors:?}\n{}", server.log_text());
    let unavailable = t.statuses.iter().filter(|(at, s)| *s == 503 && *at >= outage_started).count();
    assert!(unavailable > 0, "the outage was visible as 503s: {:?}", t.statuses);
    let after = t.statuses.iter().filter(|(at, s)| *s == 202 && *at > outage_ended).count();
    assert!(
        before_outage > 0 && after > 0,
        "deployments were accepted before ({before_outage}) and after ({after}) the outage"
    );
    assert_eq!(t.transport_errors, 0, "the service answered every request");

    // Every acknowledged deployment is stored and finishes.
    for id in &t.acknowledged {
        let run = server.finished(id, Duration::from_secs(60)).await;
        assert_eq!(run["status"], "Succeeded", "{run:#}");
    }
    eprintln!(
        "outage: {} requests, {} acknowledged, {} answered 503 during the outage",
        t.statuses.len(),
        t.acknowledged.len(),
        unavailable
    );
}
