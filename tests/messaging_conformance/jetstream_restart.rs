//! HotSwap on JetStream, the real binary: SIGKILLed between publish and
//! ack, then started again on the same prefix. No acknowledged publish is
//! lost, the ack taken before the kill holds, and the delivery leased but not
//! acked comes back once its lease (the server's AckWait) runs out. Also:
//! a second live instance on a held prefix refuses to start (one instance
//! per prefix, docs/MESSAGING.md).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::jetstream::{nats_url, remove_everything};
use crate::process::{free_port, Server};
use crate::restart_scenario::{nothing_acknowledged_is_lost, publish_lease_and_ack_one};

fn vars(url: &str, prefix: &str) -> Vec<(&'static str, String)> {
    vec![
        ("HOTSWAP__MESSAGING__BACKEND", "jetstream".to_string()),
        ("HOTSWAP__MESSAGING__NATS_URL", url.to_string()),
        ("HOTSWAP__MESSAGING__NATS_PREFIX", prefix.to_string()),
        ("HOTSWAP__MESSAGING__NATS_OWNER_LEASE", "2s".to_string()),
    ]
}

/// Starts a second `hotswap serve` on the held prefix and answers its exit
/// status and log (it must not come up).
fn second_instance(vars: &[(&str, String)], log: std::path::PathBuf) -> (bool, String) {
    let file = std::fs::File::create(&log).expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hotswap"));
    cmd.arg("serve")
        .env("HOTSWAP_ENV", "test")
        .env("HOTSWAP_CONFIG_DIR", std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config"))
        .env("HOTSWAP__SERVER__BIND", format!("127.0.0.1:{}", free_port()))
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log handle"))
        .stderr(file);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("hotswap starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "a second instance on a held prefix kept running:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (status.success(), std::fs::read_to_string(&log).unwrap_or_default())
}

#[actix_web::test]
async fn a_killed_instance_loses_no_acknowledged_publish_and_redelivers_unacked_leases() {
    let Some(url) = nats_url() else { return };
    let prefix = format!("R{}", &Uuid::new_v4().simple().to_string()[..12]);
    // On the test's own thread (the HTTP client is not Send), and cleaned
    // up whether it passed or not.
    let outcome = actix_web::rt::spawn(run(url.clone(), prefix.clone())).await;
    remove_everything(&url, &prefix).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn run(url: String, prefix: String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let vars = vars(&url, &prefix);
    let mut first = Server::start(port, &vars, dir.path().join("first.log")).await;

    let before = publish_lease_and_ack_one(&first).await;

    // While the first runs, a second instance on its prefix refuses to start.
    let (started, log) = second_instance(&vars, dir.path().join("intruder.log"));
    assert!(!started && log.contains("one instance per prefix"), "the second instance: {log}");

    first.kill();
    let second = Server::start(port, &vars, dir.path().join("second.log")).await;
    // m2's lease runs out 5 s after the first consume (the server's AckWait).
    let metrics = nothing_acknowledged_is_lost(&second, &before).await;
    assert_eq!(metrics["depth"][&before.subscription], 0, "{metrics}");
}
