//! `hotswap modules`: what the module registry holds (`GET /api/v1/modules`)
//! and, for one module, each version's signature, digest, size,
//! dependencies and the nodes that run it; `modules delete` removes a version.

use awc::http::Method;
use serde_json::{json, Value};

use super::api::Api;
use super::listings::{done, show};
use super::output::{cell, say, when, Out};
use super::{segment, Exit, Failure};

pub(super) async fn modules(api: &Api, out: Out, name: Option<&str>) -> Result<Exit, Failure> {
    let Some(name) = name else {
        let modules = api.get("/api/v1/modules").await?;
        let headers = ["MODULE", "LATEST", "VERSIONS", "UPDATED", "DESCRIPTION"];
        return Ok(show(out, &modules, &modules, &headers, None, |m| {
            vec![
                cell(&m["name"]),
                cell(&m["latestVersion"]),
                cell(&m["versionCount"]),
                when(&m["updatedAt"]),
                cell(&m["description"]),
            ]
        }));
    };
    let module = api.get(&format!("/api/v1/modules/{}", segment(name))).await?;
    let headers = ["VERSION", "SIGNED BY", "SHA-256", "SIZE", "UPLOADED", "DEPENDS ON", "RUNS ON"];
    let exit = show(out, &module, &module["versions"], &headers, None, |v| {
        vec![
            cell(&v["version"]),
            signer(v),
            v["sha256"].as_str().map(|d| d.chars().take(12).collect()).unwrap_or_else(|| "-".into()),
            cell(&v["sizeBytes"]),
            when(&v["uploadedAt"]),
            dependencies(&v["dependencies"]),
            placements(&v["deployedTo"]),
        ]
    });
    if !out.json() {
        say!("{}", out.dim("`-o json` shows whole digests, descriptors and the first nodes of each environment"));
    }
    Ok(exit)
}

/// Deletes one version (`DELETE /api/v1/modules/{name}/{version}`): what the
/// Security Scan advises for a version whose stored bytes were altered, before
/// `module push` stores it again.
pub(super) async fn delete(api: &Api, out: Out, name: &str, version: &str) -> Result<Exit, Failure> {
    api.call(Method::DELETE, &format!("/api/v1/modules/{}/{}", segment(name), segment(version)), None).await?;
    let line = format!("deleted {name} {version} from the registry; `hotswap module push` stores it again");
    done(out, json!({ "deleted": { "name": name, "version": version } }), &line)
}

fn signer(version: &Value) -> String {
    // The server says whether the signature verifies now against a trusted key.
    match version["signatureStatus"].as_str() {
        Some("none") => return "unsigned".into(),
        Some("unverified") => return "unverified".into(),
        Some(_) => {}
        // A server older than signatureStatus: `signed` meant only that a signature was sent.
        None if version["signed"] != Value::Bool(true) => return "unsigned".into(),
        None => {}
    }
    // Signed, but by no key the tenant trusted at upload (let in with
    // security.strict_mode off): the signature vouches for nothing.
    version["signingKeyId"].as_str().map(|k| k.chars().take(19).collect()).unwrap_or_else(|| "unverified".into())
}

/// "kmod-base ^1.0, libx >=2".
fn dependencies(deps: &Value) -> String {
    let named: Vec<String> =
        deps.as_object().into_iter().flatten().map(|(name, req)| format!("{name} {}", cell(req))).collect();
    if named.is_empty() {
        "-".into()
    } else {
        named.join(", ")
    }
}

/// "QA 5, Production 20": how many nodes of each environment run the version.
fn placements(deployed: &Value) -> String {
    let counted: Vec<String> = deployed
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let listed = d["nodes"].as_array().map_or(0, Vec::len) as u64;
            format!("{} {}", cell(&d["environment"]), d["nodeCount"].as_u64().unwrap_or(listed))
        })
        .collect();
    if counted.is_empty() {
        "-".into()
    } else {
        counted.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_signature_no_trusted_key_verifies_is_shown_as_unverified() {
        let key = "sha256:0123456789abcdef0123";
        assert_eq!(signer(&json!({ "signed": false, "signatureStatus": "none" })), "unsigned");
        // Verified at upload, its key revoked since.
        assert_eq!(
            signer(&json!({ "signed": false, "signatureStatus": "unverified", "signingKeyId": key })),
            "unverified"
        );
        assert_eq!(
            signer(&json!({ "signed": true, "signatureStatus": "verified", "signingKeyId": key })),
            "sha256:0123456789ab"
        );
    }

    #[test]
    fn a_server_without_signature_status_is_read_as_before() {
        assert_eq!(signer(&json!({ "signed": false })), "unsigned");
        assert_eq!(signer(&json!({ "signed": true, "signingKeyId": null })), "unverified");
        assert_eq!(
            signer(&json!({ "signed": true, "signingKeyId": "sha256:0123456789abcdef0123" })),
            "sha256:0123456789ab"
        );
    }
}
