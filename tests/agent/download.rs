//! An artifact download cut in the middle of its body: the agent reaches the
//! server through a proxy of the test's that closes the connection of the
//! first download after half the body. The agent asks for the rest with
//! `Range` (and `If-Range`), the server answers 206, and the host ends on the
//! verified artifact, byte for byte.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::agents::{enrolment_token, logging_hooks, publish_bytes, trusted_key, wait_joined, Agent};
use crate::process::{free_port, Server};
use crate::support::requests::deployment;

const M: &str = "kmod-cut";
const ARTIFACT_PATH: &str = "GET /api/v1/agents/artifacts/";

/// What the proxy saw of each artifact download: the request head and the
/// status line of its answer.
#[derive(Default)]
struct Seen {
    downloads: Mutex<Vec<(String, String)>>,
    cut: AtomicBool,
}

/// Forwards every connection on `listener` to `upstream`; the first artifact
/// download gets its answer's head and `keep` bytes of its body, then the
/// connection closes.
async fn proxy(listener: TcpListener, upstream: String, keep: usize, seen: Arc<Seen>) {
    while let Ok((client, _)) = listener.accept().await {
        let (upstream, seen) = (upstream.clone(), seen.clone());
        actix_web::rt::spawn(async move {
            let _ = forward(client, &upstream, keep, &seen).await;
        });
    }
}

async fn forward(mut client: TcpStream, upstream: &str, keep: usize, seen: &Seen) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    let mut first = vec![0u8; 16 * 1024];
    let n = client.read(&mut first).await?;
    server.write_all(&first[..n]).await?;
    let head = String::from_utf8_lossy(&first[..n]).to_string();
    if head.starts_with(ARTIFACT_PATH) {
        // The answer's head, and whatever of the body came with it.
        let mut answer = Vec::new();
        let head_end = loop {
            let mut chunk = vec![0u8; 16 * 1024];
            let got = server.read(&mut chunk).await?;
            if got == 0 {
                return Ok(());
            }
            answer.extend_from_slice(&chunk[..got]);
            if let Some(at) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
        };
        let status = String::from_utf8_lossy(&answer[..head_end]).lines().next().unwrap_or_default().to_string();
        seen.downloads.lock().push((head, status));
        if !seen.cut.swap(true, Ordering::SeqCst) {
            while answer.len() < head_end + keep {
                let mut chunk = vec![0u8; 16 * 1024];
                let got = server.read(&mut chunk).await?;
                if got == 0 {
                    break;
                }
                answer.extend_from_slice(&chunk[..got]);
            }
            client.write_all(&answer[..answer.len().min(head_end + keep)]).await?;
            client.flush().await?;
            // Dropping both ends closes the connection mid-body.
            return Ok(());
        }
        client.write_all(&answer).await?;
    }
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

#[actix_web::test]
async fn a_download_cut_mid_body_is_resumed_with_range_and_verified() {
    let root = tempfile::tempdir().unwrap();
    let vars = vec![
        ("HOTSWAP__SIMULATION__NODES__QA", "0".to_string()),
        // A resumed download pauses between its attempts.
        ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", "20s".to_string()),
        ("HOTSWAP__REGISTRY__ARTIFACT_DIR", root.path().join("artifacts").display().to_string()),
    ];
    let server = Server::start(free_port(), &vars, root.path().join("server.log")).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxied = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Seen::default());
    let upstream = server.base.trim_start_matches("http://").to_string();
    const SIZE: usize = 256 * 1024;
    actix_web::rt::spawn(proxy(listener, upstream, SIZE / 2, seen.clone()));

    let key = trusted_key(&server).await;
    let token = enrolment_token(&server, "QA").await;
    let agent = Agent::start_via(&proxied, &[], &token, "qa-cut", root.path());
    wait_joined(&server, "QA", "qa-cut").await;
    let artifact: Vec<u8> = (0..SIZE).map(|i| (i * 7 % 251) as u8).collect();
    publish_bytes(&server, &key, M, "1.0.0", logging_hooks(false), artifact.clone()).await;

    let (status, run) = server.post("/api/v1/deployments", &deployment(M, "1.0.0", "QA")).await.unwrap();
    assert_eq!(status.as_u16(), 202, "{run}");
    let done = server.finished(run["executionId"].as_str().unwrap(), Duration::from_secs(120)).await;
    assert_eq!(done["status"], "Succeeded", "{done:#}\n{}", agent.log());

    let downloads = seen.downloads.lock().clone();
    assert_eq!(downloads.len(), 2, "one cut download and one resumed: {downloads:#?}\n{}", agent.log());
    let (first, cut) = &downloads[0];
    assert!(!first.to_ascii_lowercase().contains("range:"), "the first download asks for everything: {first}");
    assert!(cut.contains(" 200 "), "{cut}");
    let (resumed, answer) = &downloads[1];
    let resumed = resumed.to_ascii_lowercase();
    assert!(resumed.contains(&format!("range: bytes={}-", SIZE / 2)), "resumed from the byte it had: {resumed}");
    assert!(resumed.contains("if-range:"), "{resumed}");
    assert!(answer.contains(" 206 "), "the server sent the rest only: {answer}");
    assert!(agent.log().contains("download broke off; resuming"), "{}", agent.log());
    // The agent's log, written to a file here, carries no terminal colour codes.
    assert!(!agent.log().contains('\u{1b}'), "escape codes in the agent's log: {:?}", agent.log());

    assert_eq!(agent.current(M).as_deref(), Some("1.0.0"), "{}", agent.log());
    let stored = std::fs::read(agent.dir.join("data/modules").join(M).join("1.0.0/artifact")).unwrap();
    assert!(stored == artifact, "the host holds the artifact byte for byte ({} of {SIZE} bytes)", stored.len());
}
