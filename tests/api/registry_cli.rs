//! `hotswap keygen`, `hotswap module sign` and `hotswap module push`, as a
//! user runs them: the signature checks out with openssl, and the pushed
//! module deploys in strict mode.

use std::path::Path;
use std::process::Output;

use awc::http::StatusCode;
use serde_json::json;

use crate::registry::{openssl, openssl_stdout};
use crate::registry_support::*;
use crate::support::spawn_app;

async fn hotswap(args: Vec<String>, envs: Vec<(String, String)>) -> Output {
    actix_web::web::block(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_hotswap"))
            .args(&args)
            .env("HOTSWAP_ENV", "test")
            .env("HOTSWAP_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
            .envs(envs)
            .output()
            .expect("hotswap runs")
    })
    .await
    .unwrap()
}

fn arg(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

#[actix_web::test]
async fn keygen_sign_and_push_from_the_command_line() {
    // As in production: only signatures of the statement count.
    let app = spawn_app(&[STRICT[0], STRICT[1], ("HOTSWAP__SECURITY__ACCEPT_ARTIFACT_SIGNATURES", "false")]).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("release.pem");
    let made = hotswap(vec!["keygen".into(), "--out".into(), arg(&key)], vec![]).await;
    assert!(made.status.success(), "{made:?}");
    let public = std::fs::read_to_string(dir.path().join("release.pem.pub")).unwrap();
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let again = hotswap(vec!["keygen".into(), "--out".into(), arg(&key)], vec![]).await;
    // An input error: exit 2, as docs/CLI.md says.
    assert_eq!(again.status.code(), Some(2), "an existing key is never overwritten: {again:?}");

    let (status, trusted) = app.post("/api/v1/signing-keys", &json!({ "name": "cli", "publicKeyPem": public })).await;
    assert_eq!(status, StatusCode::CREATED, "{trusted}");
    assert_eq!(trusted["bits"], 3072);

    let module = dir.path().join("kmod-cli.ko");
    std::fs::write(&module, unique_artifact("cli")).unwrap();
    let descriptor_file = dir.path().join("descriptor.json");
    std::fs::write(&descriptor_file, descriptor("kmod-cli", "1.0.0").to_string()).unwrap();
    let sign = vec!["module", "sign", "--key", &arg(&key), "--descriptor", &arg(&descriptor_file), &arg(&module)]
        .into_iter()
        .map(String::from)
        .collect();
    let signed = hotswap(sign, vec![]).await;
    assert!(signed.status.success(), "{signed:?}");
    // The public key given as --key: an input error.
    let public_key = arg(&dir.path().join("release.pem.pub"));
    let wrong = ["module", "sign", "--key", &public_key, "--descriptor", &arg(&descriptor_file), &arg(&module)];
    let wrong = hotswap(wrong.into_iter().map(String::from).collect(), vec![]).await;
    assert_eq!(wrong.status.code(), Some(2), "{wrong:?}");
    // openssl agrees that this is the key's signature of the statement that
    // binds name, version and the file's digest.
    let digest = openssl_stdout(&["dgst", "-sha256", "-r", &arg(&module)]);
    let statement = dir.path().join("statement.txt");
    std::fs::write(
        &statement,
        format!("hotswap-module-signature-v1\nname=kmod-cli\nversion=1.0.0\nsha256={}\n", &digest[..64]),
    )
    .unwrap();
    let public_file = dir.path().join("release.pem.pub");
    let sig = dir.path().join("kmod-cli.ko.sig");
    openssl(&["dgst", "-sha256", "-verify", &arg(&public_file), "-signature", &arg(&sig), &arg(&statement)]);

    let push = |token: String| {
        let args = vec!["module".into(), "push".into(), "--descriptor".into(), arg(&descriptor_file), arg(&module)];
        hotswap(args, vec![("HOTSWAP_URL".into(), app.base.clone()), ("HOTSWAP_TOKEN".into(), token)])
    };
    let refused = push("not-a-token".into()).await;
    // A refusal of the server's: exit 2, with its code and trace id, as every client verb.
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("401") && stderr.contains("trace id:"), "{refused:?}");
    let pushed = push(app.token.clone().unwrap()).await;
    assert!(pushed.status.success(), "{pushed:?}");
    assert!(String::from_utf8_lossy(&pushed.stdout).contains("uploaded kmod-cli 1.0.0"), "{pushed:?}");
    app.deploy_ok("kmod-cli", "1.0.0", "Development").await;

    // Signed with PSS: the descriptor is told, so the push verifies in strict mode.
    std::fs::write(&descriptor_file, descriptor("kmod-cli", "1.1.0").to_string()).unwrap();
    let sign = ["module", "sign", "--key", &arg(&key), "--algorithm", "pss", "--descriptor", &arg(&descriptor_file)];
    let mut sign: Vec<String> = sign.into_iter().map(String::from).collect();
    sign.push(arg(&module));
    let signed = hotswap(sign, vec![]).await;
    assert!(signed.status.success(), "{signed:?}");
    assert!(String::from_utf8_lossy(&signed.stdout).contains("set \"signatureAlgorithm\": \"RSA-PSS-SHA256\""));
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(&descriptor_file).unwrap()).unwrap();
    assert_eq!(written["signatureAlgorithm"], "RSA-PSS-SHA256");
    let pushed = push(app.token.clone().unwrap()).await;
    assert!(pushed.status.success(), "{pushed:?}");
    assert!(String::from_utf8_lossy(&pushed.stdout).contains("uploaded kmod-cli 1.1.0"), "{pushed:?}");
}

#[actix_web::test]
async fn push_acts_for_the_tenant_named_by_dash_dash_tenant() {
    let app = spawn_app(&[]).await;
    let tenant = crate::tenants::provision(&app, "push-target", "Professional").await;
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("kmod-tpush.ko");
    std::fs::write(&module, unique_artifact("tpush")).unwrap();
    let descriptor_file = dir.path().join("descriptor.json");
    std::fs::write(&descriptor_file, descriptor("kmod-tpush", "1.0.0").to_string()).unwrap();
    let env = vec![("HOTSWAP_URL".into(), app.base.clone()), ("HOTSWAP_TOKEN".into(), app.token.clone().unwrap())];
    // By subdomain with --tenant, then by id with HOTSWAP_TENANT.
    let args = ["--tenant", "push-target", "module", "push", "--descriptor", &arg(&descriptor_file), &arg(&module)];
    let pushed = hotswap(args.into_iter().map(String::from).collect(), env.clone()).await;
    assert!(pushed.status.success(), "{pushed:?}");
    std::fs::write(&descriptor_file, descriptor("kmod-tpush", "1.1.0").to_string()).unwrap();
    let mut by_env = env.clone();
    by_env.push(("HOTSWAP_TENANT".into(), tenant.to_string()));
    let args = ["module", "push", "--descriptor", &arg(&descriptor_file), &arg(&module)];
    let pushed = hotswap(args.into_iter().map(String::from).collect(), by_env).await;
    assert!(pushed.status.success(), "{pushed:?}");

    let acting = [("X-Tenant-Id", tenant.to_string())];
    let acting: Vec<(&str, &str)> = acting.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let there = app.request_with(awc::http::Method::GET, "/api/v1/modules/kmod-tpush", &acting, None).await;
    assert_eq!(there.status, StatusCode::OK, "{}", there.text);
    assert_eq!(there.body["versions"].as_array().unwrap().len(), 2, "{}", there.text);
    assert_eq!(app.get("/api/v1/modules/kmod-tpush").await.0, StatusCode::NOT_FOUND, "not in the caller's own tenant");
}

/// Walkthrough w3 F4: the two ways out of an altered stored artifact the scan
/// names, from the command line: push the original file again (the stored
/// bytes are rewritten, and the line says so), or delete the version.
#[actix_web::test]
async fn a_damaged_version_is_pushed_again_or_deleted_from_the_command_line() {
    let app = spawn_app(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let artifact = unique_artifact("damaged");
    let module = dir.path().join("kmod-damaged.ko");
    std::fs::write(&module, &artifact).unwrap();
    let descriptor_file = dir.path().join("descriptor.json");
    std::fs::write(&descriptor_file, descriptor("kmod-damaged", "1.0.0").to_string()).unwrap();
    let env = vec![("HOTSWAP_URL".into(), app.base.clone()), ("HOTSWAP_TOKEN".into(), app.token.clone().unwrap())];
    let run = |args: &[&str]| hotswap(args.iter().map(|a| a.to_string()).collect(), env.clone());
    let push = ["module", "push", "--descriptor", &arg(&descriptor_file), &arg(&module)];
    assert!(run(&push).await.status.success());

    let digest = hotswap::crypto::sha256_hex(&artifact);
    let stored = app.settings.registry.artifact_dir.join("sha256").join(&digest[..2]).join(&digest);
    std::fs::write(&stored, b"altered on disk").unwrap();
    let pushed = run(&push).await;
    let stdout = String::from_utf8_lossy(&pushed.stdout);
    assert!(pushed.status.success(), "{pushed:?}");
    assert!(stdout.contains("missing or altered and now rewritten"), "{stdout}");
    assert_eq!(std::fs::read(&stored).unwrap(), artifact);
    let pushed = run(&push).await;
    assert!(String::from_utf8_lossy(&pushed.stdout).contains("already there, unchanged"), "{pushed:?}");

    let deleted = run(&["modules", "delete", "kmod-damaged", "1.0.0"]).await;
    assert!(deleted.status.success(), "{deleted:?}");
    assert!(String::from_utf8_lossy(&deleted.stdout).contains("deleted kmod-damaged 1.0.0"), "{deleted:?}");
    assert_eq!(app.get("/api/v1/modules/kmod-damaged/1.0.0").await.0, StatusCode::NOT_FOUND);
    // Deleting it again is the server's 404: an input error, exit 2.
    let again = run(&["modules", "delete", "kmod-damaged", "1.0.0"]).await;
    assert_eq!(again.status.code(), Some(2), "{again:?}");
    // `modules NAME` still lists one module's versions.
    assert!(run(&push).await.status.success());
    let listed = run(&["modules", "kmod-damaged"]).await;
    assert!(String::from_utf8_lossy(&listed.stdout).contains("1.0.0"), "{listed:?}");
}
