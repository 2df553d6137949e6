//! The cap on uploads read at once (`registry.max_concurrent_uploads`): an
//! upload past it is answered at once with 503 and Retry-After, and the slot
//! frees when the upload that held it ends, however it ends.

use std::time::Duration;

use awc::http::{Method, StatusCode};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::db::poll::eventually_ok;
use crate::registry_support::{b64, descriptor, unique_artifact, upload};
use crate::support::{spawn_app, TestApp};

/// Starts an upload whose body never finishes arriving: the headers and a
/// few bytes of a declared 100,000, then nothing. It holds a slot until the
/// connection closes.
async fn hold_an_upload_open(app: &TestApp) -> TcpStream {
    let address = app.base.trim_start_matches("http://");
    let mut socket = TcpStream::connect(address).await.unwrap();
    let token = app.token.as_deref().unwrap();
    let head = format!(
        "POST /api/v1/modules HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"descriptor\""
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.flush().await.unwrap();
    socket
}

/// Whether the server answered (or closed) the held upload.
fn answered(socket: &TcpStream) -> bool {
    let mut buf = [0u8; 64];
    !matches!(socket.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[actix_web::test]
async fn uploads_past_the_cap_get_503_with_retry_after_until_a_slot_frees() {
    let app = spawn_app(&[("HOTSWAP__REGISTRY__MAX_CONCURRENT_UPLOADS", "1")]).await;
    let mut held = hold_an_upload_open(&app).await;

    // The held upload and a probe race for the only slot. When the probe wins, the held one
    // is answered 503 (its socket becomes readable) and is started again; the probe is
    // refused once the held one holds the slot.
    let artifact = unique_artifact("capped");
    let refused = eventually_ok(Duration::from_secs(10), "a second upload is refused", async || {
        if answered(&held) {
            held = hold_an_upload_open(&app).await;
            return Err("the held upload lost the race for the slot; holding again".into());
        }
        // Until the held upload takes the slot this one may be stored: it is not the version checked below.
        let body = json!({ "descriptor": descriptor("kmod-capped", "0.1.0"), "artifact": b64(&artifact) });
        let r = app.call(Method::POST, "/api/v1/modules", Some(body)).await;
        match r.status {
            StatusCode::SERVICE_UNAVAILABLE => Ok(r),
            other => Err(format!("{other}: {}", r.text)),
        }
    })
    .await;
    assert!(!answered(&held), "the held upload still holds its slot");
    assert_eq!(refused.header("retry-after"), Some("5"), "{:?}", refused.headers);
    assert_eq!(refused.body["code"], "unavailable", "{}", refused.body);
    assert!(refused.body["message"].as_str().unwrap().contains("max_concurrent_uploads"), "{}", refused.body);

    // The client gives up: its slot frees and the next upload is stored.
    drop(held);
    eventually_ok(Duration::from_secs(10), "an upload is stored once the slot frees", async || {
        match upload(&app, &descriptor("kmod-capped", "1.0.0"), &artifact, None).await {
            (StatusCode::CREATED, _) => Ok(()),
            (status, body) => Err(format!("{status}: {body}")),
        }
    })
    .await;
    // A finished upload frees its slot too: another one goes through at once.
    let (status, reply) = upload(&app, &descriptor("kmod-capped", "1.1.0"), &unique_artifact("next"), None).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
}
