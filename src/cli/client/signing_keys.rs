//! `hotswap keys`: the RSA public keys module signatures are checked against.
//! Everyone may list them; Admins add (`keys add FILE`) and revoke
//! (`keys revoke KEY`), where KEY is the key's name, its fingerprint or the
//! start of its fingerprint, so that nobody has to copy 71 characters.

use std::path::Path;

use serde_json::{json, Value};

use super::api::Api;
use super::listings::{done, show};
use super::output::{cell, say, when, Out};
use super::{segment, Exit, Failure};

pub(super) async fn list(api: &Api, out: Out) -> Result<Exit, Failure> {
    let keys = api.get("/api/v1/signing-keys").await?;
    Ok(show(out, &keys, &keys, &["NAME", "FINGERPRINT", "KEY", "ADDED", "REVOKED"], None, |k| {
        vec![
            cell(&k["name"]),
            cell(&k["fingerprint"]),
            format!("RSA-{}", cell(&k["bits"])),
            when(&k["createdAt"]),
            if k["revoked"] == Value::Bool(true) { when(&k["revokedAt"]) } else { "-".into() },
        ]
    }))
}

/// Trusts the public key in `file` (PEM) under `name`, by default the file's
/// name without its extensions ("release.pem.pub" → "release").
pub(super) async fn add(api: &Api, out: Out, file: &Path, name: Option<&str>) -> Result<Exit, Failure> {
    let pem =
        std::fs::read_to_string(file).map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?;
    if pem.contains("PRIVATE KEY") {
        // The server would refuse it too, but the private key must not travel at all.
        return Err(Failure::usage(format!(
            "{} holds a private key: give the public one (`hotswap keygen` wrote it beside, ending in .pub)",
            file.display()
        )));
    }
    let name = match name {
        Some(name) => name.to_string(),
        None => default_name(file)?,
    };
    let added = api.post("/api/v1/signing-keys", &json!({ "name": name, "publicKeyPem": pem })).await?.body;
    if out.json() {
        out.print_json(&added);
    } else {
        say!(
            "trusted {} (RSA-{}), fingerprint {}",
            cell(&added["name"]),
            cell(&added["bits"]),
            cell(&added["fingerprint"])
        );
        say!("agents learn of it before their next load");
    }
    Ok(Exit::Ok)
}

fn default_name(file: &Path) -> Result<String, Failure> {
    let base = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let stem = base.split('.').next().unwrap_or_default();
    if stem.is_empty() {
        return Err(Failure::usage(format!("cannot name the key after {}: give --name", file.display())));
    }
    Ok(stem.to_string())
}

/// Revokes the one key `which` names. What follows depends on the server's
/// settings, which the client does not know, so the line says both cases.
/// A key already revoked is left as it is, and said so: the server answers a
/// second revocation as the first, which read as if it had just happened.
pub(super) async fn revoke(api: &Api, out: Out, which: &str) -> Result<Exit, Failure> {
    let keys = api.get("/api/v1/signing-keys").await?;
    let id = resolve(&keys, which)?;
    let known = keys.as_array().and_then(|keys| keys.iter().find(|k| k["fingerprint"].as_str() == Some(id.as_str())));
    if let Some(key) = known.filter(|k| k["revoked"] == Value::Bool(true)) {
        let line =
            format!("{} ({id}) was already revoked ({}); nothing changed", cell(&key["name"]), when(&key["revokedAt"]));
        return done(out, key.clone(), &line);
    }
    let path = format!("/api/v1/signing-keys/{}/revoke", segment(&id));
    let revoked = api.post(&path, &json!({})).await?.body;
    let line = format!(
        "revoked {} ({}): agents no longer accept modules signed with it, and the Security Scan refuses them for \
         any run with an agent on its path; on simulated nodes alone it refuses them where security.strict_mode is \
         on and passes them with a warning where it is off",
        cell(&revoked["name"]),
        id
    );
    done(out, revoked, &line)
}

/// The fingerprint of the one key that `which` names: its whole fingerprint,
/// its name, or the start of its fingerprint (with or without "sha256:").
fn resolve(keys: &Value, which: &str) -> Result<String, Failure> {
    let keys: Vec<&Value> = keys.as_array().into_iter().flatten().collect();
    let fingerprint = |k: &&Value| k["fingerprint"].as_str().unwrap_or_default().to_string();
    if let Some(exact) = keys.iter().find(|k| fingerprint(k) == which) {
        return Ok(fingerprint(exact));
    }
    let hex = which.strip_prefix("sha256:").unwrap_or(which).to_ascii_lowercase();
    let matches: Vec<&&Value> = keys
        .iter()
        .filter(|k| {
            k["name"] == which || (hex.len() >= 4 && fingerprint(k).trim_start_matches("sha256:").starts_with(&hex))
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok(fingerprint(one)),
        [] if hex.len() < 4 => Err(Failure::usage(format!(
            "no trusted key is named '{which}', and '{which}' is too short for a fingerprint's start: give at least 4 hex digits (see `hotswap keys`)"
        ))),
        [] => Err(Failure::usage(format!(
            "no trusted key is named '{which}' or has a fingerprint starting so (at least 4 hex digits): see `hotswap keys`"
        ))),
        several => {
            let names: Vec<String> =
                several.iter().map(|k| format!("{} {}", cell(&k["name"]), fingerprint(k))).collect();
            Err(Failure::usage(format!(
                "'{which}' names {} keys ({}): give more of the fingerprint",
                several.len(),
                names.join("; ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Value {
        json!([
            { "name": "release", "fingerprint": "sha256:ab12cd" },
            { "name": "ci", "fingerprint": "sha256:ab12ef" },
            { "name": "ab12", "fingerprint": "sha256:9999aa" },
        ])
    }

    #[test]
    fn a_key_is_found_by_fingerprint_name_or_a_unique_prefix() {
        assert_eq!(resolve(&keys(), "sha256:ab12ef").unwrap(), "sha256:ab12ef");
        assert_eq!(resolve(&keys(), "release").unwrap(), "sha256:ab12cd");
        assert_eq!(resolve(&keys(), "ab12c").unwrap(), "sha256:ab12cd");
        assert_eq!(resolve(&keys(), "sha256:AB12E").unwrap(), "sha256:ab12ef");
    }

    #[test]
    fn an_ambiguous_or_unknown_key_is_refused_with_what_matched() {
        // "ab12" is a name and a prefix of two fingerprints: three keys.
        let several = resolve(&keys(), "ab12").unwrap_err();
        assert!(several.message.contains("names 3 keys"), "{}", several.message);
        let short = resolve(&keys(), "ab1").unwrap_err();
        assert!(
            short.message.contains("'ab1' is too short") && short.message.contains("at least 4"),
            "{}",
            short.message
        );
        assert!(matches!(resolve(&keys(), "nope").unwrap_err().exit, Exit::Usage));
    }

    #[test]
    fn a_key_file_names_the_key() {
        assert_eq!(default_name(Path::new("/tmp/release.pem.pub")).unwrap(), "release");
        assert!(default_name(Path::new("/tmp/.pub")).is_err());
    }
}
