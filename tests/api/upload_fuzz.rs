//! The multipart module upload under random input: 300 fixed-seed bodies
//! built from pieces of a valid upload (boundaries, part headers, names,
//! descriptor JSON, bytes) cut and shuffled at random. Every answer is a 4xx
//! or a success with a JSON body; never a 5xx, never a request left
//! unanswered (it found bodies ending inside a part that hung until the
//! upload read deadline was added).
//! The bodies are drawn by proptest from a fixed seed: the same seed gives the
//! same bodies, so a failure reproduces.
//! `HOTSWAP_FUZZ_CASES` and `HOTSWAP_FUZZ_SEED` (set by `scripts/fuzz.sh`)
//! change how many bodies and which.

use awc::http::{Method, StatusCode};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

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

/// A body: most open as a valid upload does (so that they get past the first
/// boundary and into the parts), then 1-14 pieces, one in five cut short as
/// a truncated upload would send it.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let piece = (select(PIECES), proptest::bool::weighted(0.2), any::<Index>()).prop_map(|(piece, cut, at)| {
        let bytes = piece.as_bytes();
        let end = if cut { at.index(bytes.len() + 1) } else { bytes.len() };
        bytes[..end].to_vec()
    });
    (proptest::bool::weighted(0.75), proptest::collection::vec(piece, 1..15)).prop_map(|(opens, pieces)| {
        let mut body = if opens { b"--fuzzboundary\r\n".to_vec() } else { Vec::new() };
        pieces.iter().for_each(|piece| body.extend_from_slice(piece));
        body
    })
}

/// `count` bodies drawn by proptest from `seed`: the same seed, the same bodies.
fn bodies(seed: u64, count: usize) -> Vec<Vec<u8>> {
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let strategy = body();
    (0..count).filter_map(|_| strategy.new_tree(&mut runner).ok().map(|tree| tree.current())).collect()
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
