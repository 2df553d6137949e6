//! A server that cannot start says why and exits 1, without a panic.

use std::path::PathBuf;
use std::process::Command;

#[actix_web::test]
async fn a_server_whose_address_is_taken_says_so_and_exits_without_a_panic() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let address = taken.local_addr().unwrap().to_string();
    let output = actix_web::web::block(move || {
        Command::new(env!("CARGO_BIN_EXE_hotswap"))
            .arg("serve")
            .env("HOTSWAP_ENV", "test")
            .env("HOTSWAP_CONFIG_DIR", PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config"))
            .env("HOTSWAP__SERVER__BIND", address)
            .output()
            .expect("hotswap runs")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Address already in use"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    drop(taken);
}
