//! Getting a version onto the host: download from the server (retried), and
//! the agent's own checks before anything is stored: the SHA-256 the
//! registry and the command name, and a signature by one of the keys the
//! agent holds. A server that sent other bytes would be refused here.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use hotswap_actors::domain::ArtifactInfo;

use crate::crypto::rsa_sig::{parse_public_key, verify_digest, MIN_KEY_BITS};
use crate::crypto::{hex, sha256};
use crate::registry::statement::signed_digests;

/// Largest artifact the agent accepts.
const MAX_ARTIFACT_BYTES: usize = 512 * 1024 * 1024;
const ATTEMPTS: u32 = 4;

/// Downloads `module` `version` with the session credential.
pub async fn download(
    client: &awc::Client,
    server: &str,
    session: &str,
    module: &str,
    version: &str,
) -> Result<Bytes, String> {
    let url = format!("{}/api/v1/agents/artifacts/{module}/{version}", server.trim_end_matches('/'));
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            actix_web::rt::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        match client.get(&url).bearer_auth(session).send().await {
            Ok(mut response) if response.status().is_success() => {
                match response.body().limit(MAX_ARTIFACT_BYTES).await {
                    Ok(bytes) => return Ok(bytes),
                    Err(e) => last = format!("the download of {module} {version} broke off: {e}"),
                }
            }
            // Another answer will not change by asking again.
            Ok(response) if response.status().is_client_error() => {
                return Err(format!("the server refused the download of {module} {version}: {}", response.status()))
            }
            Ok(response) => last = format!("the server answered {} to the download", response.status()),
            Err(e) => last = format!("the download of {module} {version} failed: {e}"),
        }
    }
    Err(last)
}

/// What the checks need besides the bytes.
pub struct Expected<'a> {
    pub module: &'a str,
    pub version: &'a str,
    /// The digest the command named (the run's), if any.
    pub digest: Option<&'a str>,
    pub info: &'a ArtifactInfo,
    pub trusted_keys: &'a [String],
    pub accept_bare_signatures: bool,
    pub require_signature: bool,
}

/// Checks digest and signature; CPU-heavy, so run it off the async threads.
pub fn verify(bytes: &[u8], expected: &Expected<'_>) -> Result<(), String> {
    let (module, version) = (expected.module, expected.version);
    let digest = sha256(bytes);
    let actual = hex(&digest);
    for wanted in [Some(expected.info.sha256.as_str()), expected.digest].into_iter().flatten() {
        if !actual.eq_ignore_ascii_case(wanted) {
            return Err(format!(
                "refused {module} {version}: the artifact received has SHA-256 {actual}, not {wanted}"
            ));
        }
    }
    let Some(signature) = &expected.info.signature else {
        return if expected.require_signature {
            Err(format!("refused {module} {version}: it is not signed and this agent requires signatures"))
        } else {
            Ok(())
        };
    };
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| format!("refused {module} {version}: its signature is not base64"))?;
    let digests = signed_digests(module, version, digest, expected.accept_bare_signatures);
    let verified = expected
        .trusted_keys
        .iter()
        .filter_map(|pem| parse_public_key(pem, MIN_KEY_BITS).ok())
        .any(|key| digests.iter().any(|d| verify_digest(&key.key, expected.info.algorithm, d, &signature)));
    if verified {
        Ok(())
    } else {
        Err(format!("refused {module} {version}: its signature does not verify against any key this agent trusts"))
    }
}
