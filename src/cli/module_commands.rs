//! `hotswap keygen`, `hotswap module sign` and `hotswap module push`.

use std::path::{Path, PathBuf};

use base64::Engine;
use hotswap_actors::domain::{ModuleHooks, SignatureAlgorithm};

use super::client::api::refusal;
use super::client::{report, Exit, Failure};
use super::ModuleAction;
use crate::crypto::rsa_sig;

/// A file the operator named, read; one that cannot be read is an input error
/// (exit 2), as for `keys add` and `schemas register`, not a failure of the command.
fn read_given(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))
}

/// Why `path` could not be written: a directory that does not exist is the
/// operator's input (exit 2), anything else a failure.
fn unwritable(path: &Path, e: &std::io::Error) -> Failure {
    let message = format!("cannot write {}: {e}", path.display());
    match e.kind() {
        std::io::ErrorKind::NotFound => Failure::usage(message),
        _ => Failure::general(message),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes a file only its owner can read, refusing to replace one.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}

/// Answers the exit code: 2 (usage or input error, docs/CLI.md) when OUT
/// exists already, 1 when the key cannot be made or written.
pub fn keygen(out: &Path, public_out: Option<&Path>) -> u8 {
    match make_key_pair(out, public_out) {
        Ok(()) => Exit::Ok.code(),
        Err(failure) => {
            report(&failure);
            failure.exit.code()
        }
    }
}

fn make_key_pair(out: &Path, public_out: Option<&Path>) -> Result<(), Failure> {
    let public_path = public_out.map(Path::to_path_buf).unwrap_or_else(|| with_suffix(out, ".pub"));
    // Refused before the (slow) key generation; `write_private` still never replaces a file.
    if out.exists() {
        return Err(Failure::usage(format!("{} exists already; a key is never overwritten", out.display())));
    }
    let (private, public) = rsa_sig::generate_key_pair().map_err(|e| e.to_string())?;
    write_private(out, &private).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            Failure::usage(format!("{} exists already; a key is never overwritten", out.display()))
        }
        _ => unwritable(out, &e),
    })?;
    std::fs::write(&public_path, &public).map_err(|e| unwritable(&public_path, &e))?;
    let fingerprint = rsa_sig::parse_public_key(&public, rsa_sig::MIN_KEY_BITS).map_err(|e| e.to_string())?.fingerprint;
    println!(
        "wrote RSA-{} private key {} and public key {}",
        rsa_sig::KEYGEN_BITS,
        out.display(),
        public_path.display()
    );
    println!("fingerprint {fingerprint}");
    Ok(())
}

pub fn algorithm(name: &str) -> Result<SignatureAlgorithm, String> {
    match name.to_ascii_lowercase().as_str() {
        "pkcs1v15" | "rsa-pkcs1v15-sha256" => Ok(SignatureAlgorithm::RsaPkcs1v15Sha256),
        "pss" | "rsa-pss-sha256" => Ok(SignatureAlgorithm::RsaPssSha256),
        other => Err(format!("unknown algorithm '{other}': use pkcs1v15 or pss")),
    }
}

/// `server` and `ca` are the global `--server` and `--ca`; push resolves them
/// with the saved login as every client verb does. Answers the exit code,
/// having printed any failure as the client verbs do (2 for a refusal of the
/// server's, with its code and trace id).
/// `tenant` is the global `--tenant` (or HOTSWAP_TENANT): a push acts for
/// that tenant as every client verb does.
pub async fn module(action: ModuleAction, server: Option<&str>, ca: Option<&Path>, tenant: Option<&str>) -> u8 {
    match module_action(action, server, ca, tenant).await {
        Ok(()) => Exit::Ok.code(),
        Err(failure) => {
            report(&failure);
            failure.exit.code()
        }
    }
}

async fn module_action(
    action: ModuleAction,
    server: Option<&str>,
    ca: Option<&Path>,
    tenant: Option<&str>,
) -> Result<(), Failure> {
    match action {
        ModuleAction::Sign { key, algorithm: alg, out, descriptor, name, version, bare, file } => {
            let alg = algorithm(&alg).map_err(Failure::usage)?;
            let pem = String::from_utf8_lossy(&read_given(&key)?).into_owned();
            // A public key (or any other PEM) given as --key is an input error.
            let private = rsa_sig::parse_private_key(&pem).map_err(|e| {
                Failure::usage(format!("{} is not a private key (PEM, PKCS#8 or PKCS#1): {e}", key.display()))
            })?;
            let bytes = read_given(&file)?;
            let digest = crate::crypto::sha256_hex(&bytes);
            let (signed, what) = if bare {
                (bytes, "the file's bytes".to_string())
            } else {
                // With --descriptor, the statement binds the descriptor's hooks
                // too, as push will send them; --name and --version sign a
                // module without hooks.
                let (name, version, hooks) = match (&descriptor, name, version) {
                    (Some(path), _, _) => name_version_and_hooks(path)?,
                    (None, Some(name), Some(version)) => (name, version, ModuleHooks::default()),
                    _ => return Err(Failure::usage("give --descriptor, or --name and --version, or --bare")),
                };
                let text = crate::registry::statement::statement(&name, &version, &digest, &hooks);
                let with_hooks = if hooks.is_empty() { "" } else { " and its hooks" };
                (text.into_bytes(), format!("the statement for {name} {version}{with_hooks}"))
            };
            let signature = rsa_sig::sign(&private, alg, &signed).map_err(|e| e.to_string())?;
            let out = out.unwrap_or_else(|| with_suffix(&file, ".sig"));
            std::fs::write(&out, signature).map_err(|e| unwritable(&out, &e))?;
            println!("wrote {} signature {} of {what} (SHA-256 {digest})", alg.as_str(), out.display());
            match descriptor {
                // The registry and the agents verify with the algorithm the
                // descriptor names (PKCS#1 v1.5 when it names none).
                Some(path) => name_algorithm_in_descriptor(&path, alg)?,
                None if alg != SignatureAlgorithm::default() => println!(
                    "the module's descriptor must say \"signatureAlgorithm\": \"{}\" for this signature to verify",
                    alg.as_str()
                ),
                None => {}
            }
            Ok(())
        }
        // The token comes from HOTSWAP_TOKEN or the saved login only, as for
        // every verb: one on the command line would show in `ps` and the shell's history.
        ModuleAction::Push { descriptor, signature, file } => {
            let target = super::client::session::resolve(server, ca);
            let api = super::client::api::Api::new(&target)?;
            let token = api.require_token()?.to_string();
            // The tenant named by id or subdomain, as the other client verbs resolve it.
            let api = api.acting_for(tenant).await?;
            push(&api, &token, &descriptor, signature.as_deref(), &file).await
        }
    }
}

async fn push(
    api: &super::client::api::Api,
    token: &str,
    descriptor: &Path,
    signature: Option<&Path>,
    file: &Path,
) -> Result<(), Failure> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let descriptor = read_descriptor(descriptor)?;
    let artifact = read_given(file)?;
    let default_sig = with_suffix(file, ".sig");
    let signature = match signature {
        Some(path) => Some(read_given(path)?),
        None => std::fs::read(&default_sig).ok(),
    };
    let body = serde_json::json!({
        "descriptor": descriptor,
        "artifact": b64.encode(&artifact),
        "signature": signature.map(|s| b64.encode(s)),
    });
    let url = api.url("/api/v1/modules");
    let client = api.client(std::time::Duration::from_secs(300));
    let mut request = client.post(&url).bearer_auth(token);
    if let Some(tenant) = &api.tenant {
        request = request.insert_header((super::client::api::TENANT_HEADER, tenant.as_str()));
    }
    let mut response = request.send_json(&body).await.map_err(|e| api.unreachable(&url, &e))?;
    let status = response.status();
    let raw = response.body().limit(1 << 20).await.unwrap_or_default();
    let reply: serde_json::Value = serde_json::from_slice(&raw).unwrap_or_default();
    if !status.is_success() {
        return Err(refusal(status, &reply, &raw).context("the server refused the module"));
    }
    let what = if status == awc::http::StatusCode::CREATED {
        "uploaded"
    } else if reply["artifactRepaired"] == serde_json::Value::Bool(true) {
        "already there, its stored bytes missing or altered and now rewritten with these:"
    } else {
        "already there, unchanged:"
    };
    println!(
        "{what} {} {} (SHA-256 {})",
        reply["name"].as_str().unwrap_or("?"),
        reply["version"].as_str().unwrap_or("?"),
        reply["sha256"].as_str().unwrap_or("?")
    );
    for warning in reply["warnings"].as_array().into_iter().flatten() {
        println!("warning: {}", warning.as_str().unwrap_or_default());
    }
    Ok(())
}

/// Writes `signatureAlgorithm` into the descriptor file when it names
/// another algorithm than the one just signed with (or none, for PSS), so
/// that `module push` sends what verifies; says so when it does.
fn name_algorithm_in_descriptor(path: &Path, alg: SignatureAlgorithm) -> Result<(), Failure> {
    let mut descriptor = read_descriptor(path)?;
    let named = descriptor
        .get("signatureAlgorithm")
        .and_then(|v| v.as_str())
        .map(algorithm)
        .transpose()
        .map_err(Failure::usage)?;
    if named.unwrap_or_default() == alg {
        return Ok(());
    }
    let Some(fields) = descriptor.as_object_mut() else {
        return Err(Failure::usage(format!("{} is not a JSON object", path.display())));
    };
    fields.insert("signatureAlgorithm".into(), serde_json::Value::from(alg.as_str()));
    let mut pretty = serde_json::to_vec_pretty(&descriptor).map_err(|e| e.to_string())?;
    pretty.push(b'\n');
    std::fs::write(path, pretty).map_err(|e| unwritable(path, &e))?;
    println!("set \"signatureAlgorithm\": \"{}\" in {}", alg.as_str(), path.display());
    Ok(())
}

/// A descriptor file's JSON.
fn read_descriptor(path: &Path) -> Result<serde_json::Value, Failure> {
    let text = read_given(path)?;
    serde_json::from_slice(&text).map_err(|e| Failure::usage(format!("{} is not JSON: {e}", path.display())))
}

/// The name, version and hooks a descriptor file declares.
fn name_version_and_hooks(path: &Path) -> Result<(String, String, ModuleHooks), Failure> {
    let descriptor = read_descriptor(path)?;
    let field = |key: &str| {
        descriptor[key]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Failure::usage(format!("{} has no string \"{key}\"", path.display())))
    };
    let hooks = match descriptor.get("hooks") {
        None | Some(serde_json::Value::Null) => ModuleHooks::default(),
        Some(hooks) => serde_json::from_value(hooks.clone()).map_err(|e| {
            Failure::usage(format!("{}: \"hooks\" is not what the registry accepts: {e}", path.display()))
        })?,
    };
    Ok((field("name")?, field("version")?, hooks))
}
