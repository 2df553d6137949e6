//! `hotswap keys`: an Admin trusts the public key `hotswap keygen` wrote,
//! lists it, and revokes it by name; a Viewer may only list.

use crate::harness::{Operator, Server, ADMIN};

#[actix_web::test]
async fn an_admin_trusts_a_generated_key_and_revokes_it_by_name() {
    let server = Server::start().await;
    let op = Operator::logged_in(&server, ADMIN).await;
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("release.pem");
    let made = op.run(&["keygen", "--out", private.to_str().unwrap()]).await;
    assert_eq!(made.code, 0, "{made:?}");

    // The private key is refused before it leaves the machine.
    let wrong = op.run(&["keys", "add", private.to_str().unwrap()]).await;
    assert_eq!(wrong.code, 2, "{wrong:?}");
    assert!(wrong.stderr.contains("holds a private key"), "{wrong:?}");

    let public = dir.path().join("release.pem.pub");
    let added = op.run(&["keys", "add", public.to_str().unwrap()]).await;
    assert_eq!(added.code, 0, "{added:?}");
    assert!(added.stdout.starts_with("trusted release (RSA-3072), fingerprint sha256:"), "{added:?}");
    // The same key twice is the server's 409, an input error.
    let again = op.run(&["keys", "add", "--name", "other", public.to_str().unwrap()]).await;
    assert_eq!(again.code, 2, "{again:?}");

    let listed = op.run(&["keys", "-o", "json"]).await.json();
    let release = listed.as_array().unwrap().iter().find(|k| k["name"] == "release").cloned().unwrap();
    assert_eq!(release["revoked"], false, "{listed}");
    let table = op.run(&["keys"]).await;
    let row = table.stdout.lines().find(|l| l.starts_with("release")).unwrap_or_default().to_string();
    assert!(row.contains(release["fingerprint"].as_str().unwrap()) && row.trim_end().ends_with('-'), "{table:?}");

    let viewer = Operator::logged_in(&server, ("viewer", "Viewer123!")).await;
    assert_eq!(viewer.run(&["keys"]).await.code, 0);
    let denied = viewer.run(&["keys", "revoke", "release"]).await;
    assert_ne!(denied.code, 0, "{denied:?}");
    assert!(denied.stderr.contains("403") || denied.stderr.to_lowercase().contains("forbidden"), "{denied:?}");

    let unknown = op.run(&["keys", "revoke", "no-such-key"]).await;
    assert_eq!(unknown.code, 2, "{unknown:?}");
    let revoked = op.run(&["keys", "revoke", "release"]).await;
    assert_eq!(revoked.code, 0, "{revoked:?}");
    assert!(revoked.stdout.contains(release["fingerprint"].as_str().unwrap()), "{revoked:?}");
    // The whole rule (walkthrough w3 F7): with an agent on the path the scan refuses, strict mode or not.
    assert!(revoked.stdout.contains("refuses them for any run with an agent on its path"), "{revoked:?}");
    let listed = op.run(&["keys", "-o", "json"]).await.json();
    let release = listed.as_array().unwrap().iter().find(|k| k["name"] == "release").cloned().unwrap();
    assert_eq!(release["revoked"], true, "{listed}");

    // A second revocation changes nothing, and says so.
    let again = op.run(&["keys", "revoke", "release"]).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("was already revoked") && again.stdout.contains("nothing changed"), "{again:?}");
    // Three hex digits are too few to name a key, though a fingerprint starts so.
    let hex = release["fingerprint"].as_str().unwrap().trim_start_matches("sha256:");
    let short = op.run(&["keys", "revoke", &hex[..3]]).await;
    assert_eq!(short.code, 2, "{short:?}");
    assert!(short.stderr.contains("is too short") && short.stderr.contains("at least 4 hex digits"), "{short:?}");
}
