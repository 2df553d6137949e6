//! The multipart module upload under random input: 300 fixed-seed bodies
//! built from pieces of a valid upload (boundaries, part headers, names,
//! descriptor JSON, bytes) cut and shuffled at random. Every answer is a 4xx
//! or a success with a JSON body; never a 5xx, never a request left
//! unanswered (it found bodies ending inside a part that hung until the
//! upload read deadline was added).
//! The same seed gives the same bodies, so a failure reproduces.
//! `HOTSWAP_FUZZ_CASES` and `HOTSWAP_FUZZ_SEED` (set by `scripts/fuzz.sh`)
//! change how many bodies and which.

use awc::http::{Method, StatusCode};

use crate::support::spawn_app;

const BOUNDARY: &str = "fuzzboundary";

/// Pieces of a valid multipart upload, and of broken ones.
const PIECES: &[&str] = &[
    "--fuzzboundary\r\n",
    "--fuzzboundary--\r\n",
    "--fuzzboundary",
    "\r\n",
    "\r\n\r\n",
    "Content-Disposition: form-data; name=\"descriptor\"\r\n",
    "Content-Disposition: form-data; name=\"artifact\"; filename=\"m.ko\"\r\n",
    "Content-Disposition: form-data; name=\"signature\"\r\n",
    "Content-Disposition: form-data; name=\"other\"\r\n",
    "Content-Disposition: form-data\r\n",
    "Content-Type: application/octet-stream\r\n",
    "Content-Type: application/json\r\n",
    "{\"name\":\"kmod-fuzz\",\"version\":\"1.0.0\"}",
    "{\"name\":\"\",\"version\":\"x\"}",
    "{\"name\":",
    "\u{7f}ELF\u{0}\u{1}",
    "é٣𝟙",
    "\"",
    ";",
    "=",
    "18446744073709551616",
];

fn bodies(seed: u64, count: usize) -> Vec<Vec<u8>> {
    let mut state = seed;
    let mut next = move || {
        // xorshift64: reproducible from the seed.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let parts = 1 + (next() % 14) as usize;
            // Most bodies open as a valid one does, so that they get past the
            // first boundary and into the parts.
            let mut body = if next() % 4 == 0 { Vec::new() } else { b"--fuzzboundary\r\n".to_vec() };
            for _ in 0..parts {
                let piece = PIECES[(next() % PIECES.len() as u64) as usize].as_bytes();
                // Sometimes only part of a piece, as a truncated upload would send.
                let cut = if next() % 5 == 0 { (next() as usize) % (piece.len() + 1) } else { piece.len() };
                body.extend_from_slice(&piece[..cut]);
            }
            body
        })
        .collect()
}

#[actix_web::test]
async fn random_multipart_uploads_get_a_clear_answer_never_a_5xx() {
    // Bodies that end inside a part are answered at the read deadline; a short one keeps the test short.
    let app = spawn_app(&[("HOTSWAP__REGISTRY__UPLOAD_READ_TIMEOUT", "300ms")]).await;
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    // A well-formed body built from the same pieces is stored: the bodies
    // below are real multipart, not refused before the parser.
    let valid = [
        PIECES[0],
        PIECES[5],
        "\r\n",
        PIECES[12],
        "\r\n",
        PIECES[0],
        PIECES[6],
        "\r\n",
        "\u{7f}ELF fuzz",
        "\r\n",
        PIECES[1],
    ]
    .concat();
    let stored = app.call_raw(Method::POST, "/api/v1/modules", &content_type, valid.clone().into_bytes()).await;
    assert_eq!(stored.status, StatusCode::CREATED, "{valid:?}: {}", stored.text);
    let mut seen = std::collections::BTreeSet::new();
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse::<u64>().ok());
    let (seed, count) = (0x5eed_2026_1204 ^ env("HOTSWAP_FUZZ_SEED").unwrap_or(0), env("HOTSWAP_FUZZ_CASES"));
    for body in bodies(seed.max(1), count.map_or(300, |n| n as usize)) {
        let reply = app.call_raw(Method::POST, "/api/v1/modules", &content_type, body.clone()).await;
        assert!(
            reply.status.is_client_error() || reply.status.is_success(),
            "{} for {:?}: {}",
            reply.status,
            String::from_utf8_lossy(&body),
            reply.text
        );
        if reply.status.is_client_error() {
            assert!(reply.body["code"].is_string() && reply.body["message"].is_string(), "{}", reply.text);
        }
        seen.insert(reply.body["message"].as_str().unwrap_or_default().chars().take(40).collect::<String>());
    }
    // The bodies reached different places in the parser, not one early check.
    assert!(seen.len() >= 4, "too few distinct answers: {seen:#?}");
}
