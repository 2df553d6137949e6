//! /api/v1/modules: the module registry. Deployers upload and delete
//! versions; everyone reads them and downloads their artifacts.

use std::collections::BTreeMap;

use actix_web::body::SizedStream;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use hotswap_actors::domain::{Environment, ModuleDescriptor, ModuleVersion, SigningKey};
use semver::Version;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::responses::{JsonBody, Protected};
use super::route_table::{api_module, Access};
use crate::auth::Audited;
use crate::auth::{RequireRole, Tenant};
use crate::registry::placements::{running, Placement};
use crate::registry::statement::hooks_json;
use crate::registry::upload::plausible;
use crate::registry::verifier::signature_status;
use crate::registry::{Registry, RegistryError, Upload};
use crate::web::{ApiError, ErrorBody};

api_module! {
    upload_module => Access::Role(RequireRole::DEPLOYER),
    list_modules => Access::Role(RequireRole::VIEWER),
    list_module_versions => Access::Role(RequireRole::VIEWER),
    get_module_version => Access::Role(RequireRole::VIEWER),
    delete_module_version => Access::Role(RequireRole::DEPLOYER),
    download_artifact => Access::Role(RequireRole::VIEWER),
    probe_artifact => Access::Role(RequireRole::VIEWER),
}

/// Paths that more than one operation serves.
const PATH_MODULES: &str = "/api/v1/modules";
const PATH_MODULES_NAME_VERSION: &str = "/api/v1/modules/{name}/{version}";
const PATH_MODULES_NAME_VERSION_ARTIFACT: &str = "/api/v1/modules/{name}/{version}/artifact";

/// An upload: the descriptor, and the artifact and detached signature in base64.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UploadBody<'a> {
    /// `{name, version, description, author, dependencies: {module: requirement},
    /// resourceRequirements: {memoryMB, cpuCores, diskMB}, configuration, signatureAlgorithm,
    /// hooks: {activate, deactivate, health, prepareStandby}}`;
    /// signatureAlgorithm is "RSA-PKCS1v15-SHA256" (default) or "RSA-PSS-SHA256".
    #[schema(value_type = Object)]
    pub descriptor: serde_json::Value,
    /// The artifact's bytes, base64. Borrowed from the body while it is
    /// decoded (no copy of up to 85 MiB unless the JSON escapes a character).
    #[serde(borrow)]
    #[schema(value_type = String)]
    pub artifact: std::borrow::Cow<'a, str>,
    /// RSA signature, base64, of the statement that names the module, its
    /// version, the artifact's SHA-256 and (when the descriptor has any) the
    /// SHA-256 of its hooks (docs/SECURITY.md; `hotswap module sign`).
    pub signature: Option<String>,
}

/// The same upload as multipart/form-data, for `curl -F`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the parts read by `read_multipart`.
pub struct MultipartUpload {
    /// The descriptor, JSON.
    descriptor: String,
    /// The artifact's bytes.
    #[schema(format = Binary, value_type = String)]
    artifact: Vec<u8>,
    /// The raw detached signature of the statement (docs/SECURITY.md), as
    /// `openssl dgst -sha256 -sign` writes it.
    #[schema(format = Binary, value_type = String)]
    signature: Option<Vec<u8>>,
}

/// Host names a version's placement lists per environment; `nodeCount`
/// counts them all (a version on 100,000 nodes listed every name).
const HOSTS_LISTED: usize = 20;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deployed {
    /// Development, QA, Staging or Production.
    environment: String,
    /// The first host names (sorted) of the nodes serving this version, at most 20.
    nodes: Vec<String>,
    /// How many nodes of the environment serve this version.
    node_count: usize,
}

impl Deployed {
    fn new(environment: Environment, mut hosts: Vec<String>) -> Deployed {
        let node_count = hosts.len();
        if hosts.len() > HOSTS_LISTED {
            hosts.select_nth_unstable(HOSTS_LISTED);
            hosts.truncate(HOSTS_LISTED);
        }
        hosts.sort();
        Deployed { environment: environment.to_string(), nodes: hosts, node_count }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModuleVersionView {
    name: String,
    version: String,
    description: String,
    author: String,
    dependencies: BTreeMap<String, String>,
    #[schema(value_type = Object)]
    resource_requirements: serde_json::Value,
    #[schema(value_type = Object)]
    configuration: serde_json::Value,
    signature_algorithm: String,
    /// Lower-case hex; also the artifact's ETag.
    sha256: String,
    size_bytes: u64,
    /// Whether the signature verifies now against a trusted key (not revoked,
    /// long enough) for this name, version, digest and hooks: `signatureStatus`
    /// is "verified".
    signed: bool,
    /// "verified" (see `signed`), "unverified" (signed, but the signature
    /// verifies against no trusted key: accepted with security.strict_mode
    /// off, or its key was revoked since) or "none" (unsigned).
    #[schema(value_type = String, pattern = "^(verified|unverified|none)$")]
    signature_status: &'static str,
    /// The trusted key the signature verified with at upload.
    signing_key_id: Option<String>,
    /// The shell commands agents run as root around each step (docs/AGENT.md):
    /// those of activate, deactivate, health and prepareStandby that are set.
    #[schema(value_type = Object)]
    hooks: serde_json::Value,
    uploaded_by: Option<String>,
    uploaded_at: DateTime<Utc>,
    deployed_to: Vec<Deployed>,
    /// Why an upload was accepted despite a problem (strict mode off).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    /// Set (true) on the answer to an upload of a stored version whose stored
    /// bytes were missing or altered: the uploaded bytes, which have the
    /// recorded digest, replaced them.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    artifact_repaired: bool,
}

impl ModuleVersionView {
    /// `keys` are the tenant's signing keys, against which the signature is
    /// checked for `signed` and `signatureStatus`.
    fn new(registry: &Registry, keys: &[SigningKey], v: ModuleVersion, placements: &[Placement]) -> Self {
        let deployed_to =
            running(placements, v.version(), false).into_iter().map(|(env, hosts)| Deployed::new(env, hosts)).collect();
        let signature_status = signature_status(registry, keys, &v);
        // The hooks' canonical JSON (what a signature binds) always parses.
        let hooks = serde_json::from_str(&hooks_json(&v.descriptor.hooks)).unwrap_or_default();
        let d = v.descriptor;
        ModuleVersionView {
            name: d.name,
            version: d.version,
            description: d.description,
            author: d.author,
            dependencies: d.dependencies,
            resource_requirements: serde_json::to_value(&d.resource_requirements).unwrap_or_default(),
            configuration: d.configuration,
            signature_algorithm: d.signature_algorithm.as_str().to_string(),
            sha256: v.sha256,
            size_bytes: v.size_bytes,
            signed: signature_status == "verified",
            signature_status,
            signing_key_id: v.signing_key_id,
            hooks,
            uploaded_by: v.uploaded_by,
            uploaded_at: v.uploaded_at,
            deployed_to,
            warnings: Vec::new(),
            artifact_repaired: false,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModuleSummaryView {
    name: String,
    description: String,
    latest_version: String,
    version_count: usize,
    updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModuleView {
    name: String,
    /// Newest first.
    versions: Vec<ModuleVersionView>,
}

/// Newest first by semantic version (unparsable ones last).
fn newest_first(versions: &mut [ModuleVersion]) {
    versions.sort_by(|a, b| Version::parse(b.version()).ok().cmp(&Version::parse(a.version()).ok()));
}

/// Reads the body up to the limit an artifact of the largest size needs in
/// base64, refusing more with 413 before reading it all.
async fn read_body(req: &HttpRequest, mut payload: web::Payload, max_artifact: usize) -> Result<Vec<u8>, ApiError> {
    let limit = max_artifact / 3 * 4 + 4 + 64 * 1024;
    let too_large = || ApiError::PayloadTooLarge(format!("the artifact may be at most {max_artifact} bytes"));
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The largest descriptor or signature part of a multipart upload.
const SMALL_PART: usize = 64 * 1024;

/// A multipart/form-data upload: parts `descriptor` (JSON), `artifact` (the
/// bytes) and optionally `signature` (the raw bytes `openssl dgst -sign` writes).
async fn read_multipart(req: &HttpRequest, payload: web::Payload, max_artifact: usize) -> Result<Upload, ApiError> {
    let mut form = actix_multipart::Multipart::new(req.headers(), payload);
    let (mut descriptor, mut artifact, mut signature) = (None, None, None);
    while let Some(field) = form.next().await {
        let mut field =
            field.map_err(|e| ApiError::BadRequest(format!("the multipart body could not be read: {e}")))?;
        let name = field.name().unwrap_or_default().to_string();
        let limit = match name.as_str() {
            "artifact" => max_artifact,
            "descriptor" | "signature" => SMALL_PART,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown part '{other}': send descriptor, artifact and signature"
                )))
            }
        };
        let seen = match name.as_str() {
            "descriptor" => descriptor.is_some(),
            "artifact" => artifact.is_some(),
            _ => signature.is_some(),
        };
        if seen {
            return Err(ApiError::BadRequest(format!("the part '{name}' appears twice")));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("the part '{name}' could not be read: {e}")))?;
            if bytes.len() + chunk.len() > limit {
                return Err(match name.as_str() {
                    "artifact" => {
                        ApiError::PayloadTooLarge(format!("the artifact may be at most {max_artifact} bytes"))
                    }
                    _ => ApiError::PayloadTooLarge(format!("the part '{name}' may be at most {SMALL_PART} bytes")),
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "descriptor" => descriptor = Some(bytes),
            "artifact" => artifact = Some(bytes),
            _ => signature = Some(bytes),
        }
    }
    let (Some(descriptor), Some(artifact)) = (descriptor, artifact) else {
        return Err(ApiError::validation(vec!["the parts 'descriptor' and 'artifact' are required".into()]));
    };
    let descriptor: ModuleDescriptor =
        serde_json::from_slice(&descriptor).map_err(|e| ApiError::validation(vec![format!("descriptor: {e}")]))?;
    Ok(Upload { descriptor, artifact: artifact.into(), signature: signature.filter(|s| !s.is_empty()) })
}

/// The JSON upload, parsed and decoded on the blocking pool (up to 85 MiB of
/// JSON and base64 would stall an async worker). The body is dropped as soon
/// as the artifact is decoded.
async fn decode_upload_off_worker(body: Vec<u8>) -> Result<Upload, ApiError> {
    web::block(move || decode_upload(&body))
        .await
        .map_err(|e| ApiError::Unavailable(format!("the upload could not be decoded now: {e}")))?
}

fn decode_upload(body: &[u8]) -> Result<Upload, ApiError> {
    let parsed: UploadBody = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the JSON body is malformed or has the wrong shape: {e}")))?;
    let descriptor: ModuleDescriptor = serde_json::from_value(parsed.descriptor)
        .map_err(|e| ApiError::validation(vec![format!("descriptor: {e}")]))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut problems = Vec::new();
    let artifact = b64.decode(parsed.artifact.trim()).unwrap_or_else(|_| {
        problems.push("artifact must be base64".to_string());
        Vec::new()
    });
    let signature = match parsed.signature.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match b64.decode(s) {
            Ok(sig) => Some(sig),
            Err(_) => {
                problems.push("signature must be base64".to_string());
                None
            }
        },
    };
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    Ok(Upload { descriptor, artifact: artifact.into(), signature })
}

/// Upload a module version.
#[utoipa::path(
    post,
    path = PATH_MODULES,
    tag = "modules",
    request_body(content(
        (UploadBody = "application/json"),
        (MultipartUpload = "multipart/form-data"),
    )),
    responses(
        Protected,
        JsonBody,
        (status = 201, description = "Stored", body = ModuleVersionView),
        (status = 200, description = "The same bytes and descriptor were uploaded before: nothing changed, or, with `artifactRepaired`, the stored bytes were missing or altered and the uploaded ones replaced them", body = ModuleVersionView),
        (status = 400, description = "Malformed body or descriptor", body = ErrorBody),
        (status = 415, description = "Neither JSON nor multipart/form-data", body = ErrorBody),
        (status = 409, description = "That version exists with other bytes, or with the same bytes and another descriptor (the message names the fields that differ)", body = ErrorBody),
        (status = 422, description = "Strict mode: unsigned, or the signature does not verify against a trusted key", body = ErrorBody),
        (status = 503, description = "registry.max_concurrent_uploads uploads are in progress, or the store is unavailable (Retry-After)", body = ErrorBody),
    )
)]
pub async fn upload_module(
    req: HttpRequest,
    payload: web::Payload,
    registry: web::Data<Registry>,
    tenant: Tenant,
    actor: Audited,
) -> Result<HttpResponse, ApiError> {
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    // Taken before the body is read, held until the upload is stored.
    let Some(_slot) = registry.upload_slots.try_take() else {
        return Err(ApiError::Unavailable(format!(
            "{} uploads are in progress, the most this server reads at once (registry.max_concurrent_uploads); retry shortly",
            registry.upload_slots.limit()
        )));
    };
    let read = async {
        match media.as_str() {
            "application/json" => {
                decode_upload_off_worker(read_body(&req, payload, registry.max_artifact_bytes).await?).await
            }
            "multipart/form-data" => read_multipart(&req, payload, registry.max_artifact_bytes).await,
            _ => Err(ApiError::UnsupportedMediaType(
                "Content-Type must be application/json or multipart/form-data".into(),
            )),
        }
    };
    // A multipart body that ends inside a part leaves the parser waiting for
    // a boundary that never comes: the deadline answers it.
    let upload = match tokio::time::timeout(registry.upload_read_timeout, read).await {
        Ok(Ok(upload)) => upload,
        // Refused while reading, before the registry sees a descriptor: the
        // refusal is audited as the registry's own size refusal is.
        Ok(Err(ApiError::PayloadTooLarge(why))) => {
            registry.record_refused_upload(tenant.0, &actor.0, &why).await?;
            return Err(ApiError::PayloadTooLarge(why));
        }
        Ok(Err(other)) => return Err(other),
        Err(_) => {
            return Err(ApiError::BadRequest(format!(
                "the upload was not complete within {}s; a multipart body must end with its closing boundary",
                registry.upload_read_timeout.as_secs_f64()
            )))
        }
    };
    let outcome = registry.upload(tenant.0, actor.0, upload).await?;
    let placements = registry.placements(tenant.0, outcome.version.name()).await?;
    let keys = registry.store.list_signing_keys(tenant.0).await.map_err(RegistryError::from)?;
    let location = format!("/api/v1/modules/{}/{}", outcome.version.name(), outcome.version.version());
    let mut view = ModuleVersionView::new(&registry, &keys, outcome.version, &placements);
    view.warnings = outcome.warnings;
    view.artifact_repaired = outcome.repaired;
    let mut response = if outcome.created { HttpResponse::Created() } else { HttpResponse::Ok() };
    Ok(response.insert_header((header::LOCATION, location)).json(view))
}

/// List modules.
#[utoipa::path(
    get,
    path = PATH_MODULES,
    tag = "modules",
    responses(
        Protected,
        (status = 200, description = "Every module of the tenant, by name", body = Vec<ModuleSummaryView>),
    )
)]
pub async fn list_modules(registry: web::Data<Registry>, tenant: Tenant) -> Result<HttpResponse, ApiError> {
    let mut by_name: BTreeMap<String, Vec<ModuleVersion>> = BTreeMap::new();
    for v in registry.store.all_module_versions(tenant.0).await.map_err(RegistryError::from)? {
        by_name.entry(v.name().to_string()).or_default().push(v);
    }
    let items: Vec<ModuleSummaryView> = by_name
        .into_iter()
        .map(|(name, mut versions)| {
            newest_first(&mut versions);
            let updated_at = versions.iter().map(|v| v.uploaded_at).max().unwrap_or_default();
            let newest = &versions[0];
            ModuleSummaryView {
                description: newest.descriptor.description.clone(),
                latest_version: newest.version().to_string(),
                version_count: versions.len(),
                updated_at,
                name,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(items))
}

/// A module's versions, newest first, with where each is deployed.
#[utoipa::path(
    get,
    path = "/api/v1/modules/{name}",
    tag = "modules",
    params(("name" = String, Path, description = "Module name")),
    responses(
        Protected,
        (status = 200, description = "The module", body = ModuleView),
        (status = 404, description = "No such module", body = ErrorBody),
    )
)]
pub async fn list_module_versions(
    registry: web::Data<Registry>,
    tenant: Tenant,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    if !plausible(&name, None) {
        return Err(ApiError::NotFound(format!("Module {name} not found")));
    }
    let mut versions = registry.store.module_versions(tenant.0, &name).await.map_err(RegistryError::from)?;
    if versions.is_empty() {
        return Err(ApiError::NotFound(format!("Module {name} not found")));
    }
    newest_first(&mut versions);
    let placements = registry.placements(tenant.0, &name).await?;
    let keys = registry.store.list_signing_keys(tenant.0).await.map_err(RegistryError::from)?;
    let versions = versions.into_iter().map(|v| ModuleVersionView::new(&registry, &keys, v, &placements)).collect();
    Ok(HttpResponse::Ok().json(ModuleView { name, versions }))
}

async fn find(registry: &Registry, tenant: Tenant, name: &str, version: &str) -> Result<ModuleVersion, ApiError> {
    if !plausible(name, Some(version)) {
        return Err(ApiError::NotFound(format!("Module {name} version {version} not found")));
    }
    registry
        .store
        .get_module_version(tenant.0, name, version)
        .await
        .map_err(RegistryError::from)?
        .ok_or_else(|| ApiError::NotFound(format!("Module {name} version {version} not found")))
}

/// One version.
#[utoipa::path(
    get,
    path = PATH_MODULES_NAME_VERSION,
    tag = "modules",
    params(("name" = String, Path), ("version" = String, Path)),
    responses(
        Protected,
        (status = 200, description = "The version", body = ModuleVersionView),
        (status = 404, description = "No such version", body = ErrorBody),
    )
)]
pub async fn get_module_version(
    registry: web::Data<Registry>,
    tenant: Tenant,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    let found = find(&registry, tenant, &name, &version).await?;
    let placements = registry.placements(tenant.0, &name).await?;
    let keys = registry.store.list_signing_keys(tenant.0).await.map_err(RegistryError::from)?;
    Ok(HttpResponse::Ok().json(ModuleVersionView::new(&registry, &keys, found, &placements)))
}

/// Delete a version that no node runs.
#[utoipa::path(
    delete,
    path = PATH_MODULES_NAME_VERSION,
    tag = "modules",
    params(("name" = String, Path), ("version" = String, Path)),
    responses(
        Protected,
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such version", body = ErrorBody),
        (status = 409, description = "A node runs it, an active run deploys it, or a running deployment batch has a step for it", body = ErrorBody),
    )
)]
pub async fn delete_module_version(
    registry: web::Data<Registry>,
    tenant: Tenant,
    actor: Audited,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    if !plausible(&name, Some(&version)) {
        return Err(ApiError::NotFound(format!("Module {name} version {version} not found")));
    }
    registry.delete(tenant.0, actor.0, &name, &version).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Download the artifact (HEAD for its headers). A stored length other than
/// the recorded one is refused before a byte is sent (500), and so is an
/// artifact of up to 1 MiB whose bytes no longer match their digest: it is
/// read and checked whole first. A larger one is streamed with the digest
/// checked as the bytes go, and the last chunk is withheld when it does not
/// match (the body ends short of its Content-Length). The ETag is the SHA-256.
#[utoipa::path(
    get,
    path = PATH_MODULES_NAME_VERSION_ARTIFACT,
    tag = "modules",
    params(("name" = String, Path), ("version" = String, Path)),
    responses(
        Protected,
        (status = 200, description = "The bytes", content_type = "application/octet-stream"),
        (status = 304, description = "If-None-Match names the ETag"),
        (status = 404, description = "No such version", body = ErrorBody),
        (status = 500, description = "The stored bytes no longer match their digest (a length that differs, or an artifact of up to 1 MiB)", body = ErrorBody),
    )
)]
pub async fn download_artifact(
    req: HttpRequest,
    registry: web::Data<Registry>,
    tenant: Tenant,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    let found = find(&registry, tenant, &name, &version).await?;
    let etag = format!("\"{}\"", found.sha256);
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        // If-None-Match compares weakly (RFC 9110, 13.1.2): W/"x" names "x" too.
        .is_some_and(|v| v.split(',').map(str::trim).any(|t| t.strip_prefix("W/").unwrap_or(t) == etag || t == "*"));
    if matches {
        return Ok(HttpResponse::NotModified().insert_header((header::ETAG, etag)).finish());
    }
    // Streamed in chunks and checked on the way (`registry::artifact_stream`).
    let opened = registry.artifacts.open(&found.sha256, found.size_bytes).await.map_err(RegistryError::from)?;
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}-{}.ko\"", found.name(), found.version()),
        ));
    // For HEAD, actix sends these headers and the length without the body.
    Ok(response.body(SizedStream::new(opened.len, opened.chunks)))
}

/// The artifact's headers (ETag, length) without its bytes. Checked as a
/// download is before its first byte: a length that differs, or an altered
/// artifact of up to 1 MiB, answers 500; a larger one is not read.
#[utoipa::path(
    head,
    path = PATH_MODULES_NAME_VERSION_ARTIFACT,
    tag = "modules",
    params(("name" = String, Path), ("version" = String, Path)),
    responses(
        Protected,
        (status = 200, description = "The headers the download would carry"),
        (status = 304, description = "If-None-Match names the ETag"),
        (status = 404, description = "No such version"),
        (status = 500, description = "The stored bytes no longer match their digest (a length that differs, or an artifact of up to 1 MiB)"),
    )
)]
pub async fn probe_artifact(
    req: HttpRequest,
    registry: web::Data<Registry>,
    tenant: Tenant,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    // actix answers HEAD with the GET response's headers and no body.
    download_artifact(req, registry, tenant, path).await
}

#[cfg(test)]
mod tests {
    use super::{Deployed, Environment, HOSTS_LISTED};

    #[test]
    fn a_placement_lists_the_first_host_names_and_counts_them_all() {
        let hosts: Vec<String> = (0..25).rev().map(|i| format!("prod-{i:02}")).collect();
        let placed = Deployed::new(Environment::Production, hosts);
        assert_eq!(placed.node_count, 25);
        let expected: Vec<String> = (0..HOSTS_LISTED).map(|i| format!("prod-{i:02}")).collect();
        assert_eq!(placed.nodes, expected, "the first by name, sorted");
        let few = Deployed::new(Environment::Qa, vec!["qa-2".into(), "qa-1".into()]);
        assert_eq!((few.nodes, few.node_count), (vec!["qa-1".to_string(), "qa-2".to_string()], 2));
    }
}
