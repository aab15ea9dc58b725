//! The UI in headless Chromium (tests/ui/walk.mjs, playwright-core driving Debian's chromium),
//! trusting the camera CA through an NSS database: set the password, create a CSR, sign it with a
//! test CA, upload it, see it served with no certificate error, restore. Screenshots of each page
//! are kept in tests/artifacts/ui. Then automatic enrollment with a test ACME server (Pebble),
//! the security events, and restore.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use camera_test_support::netns::{enter_private_netns, NetnsSetup};
use camera_test_support::pebble::{Pebble, PebbleSpec};
use common::*;

#[test]
fn browser_walk_through_every_page() {
    // In a network namespace with only loopback: the camera's names are loopback and its
    // hostname.local, so the test ACME server validates nothing but this test's own ports.
    if !enter_private_netns(&NetnsSetup::loopback_only()) {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let walk = root.join("tests/ui/walk.mjs");
    assert!(
        root.join("tests/ui/node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `cargo xtask deps` (or npm install in tests/ui)"
    );
    let artifacts = root.join("tests/artifacts/ui");
    std::fs::create_dir_all(&artifacts).unwrap();
    let cam =
        Camera::start_listening(TempDir::new("ui"), r#"{"camera": {"loopback": true}}"#, "[::]:8443", "[::]:8080");
    // A test ACME server validating the camera's own ports on loopback; its DNS answers every
    // name with 127.0.0.1, so the camera's hostname.local validates too.
    let pebble = Pebble::start(&PebbleSpec {
        // Every nonce good: a refused one only adds a retry (and time) to the camera's enrollment.
        nonce_reject_percent: Some(0),
        http_port: 8080,
        tls_port: 8443,
        dns: Some(("127.0.0.1", "::1")),
        ..Default::default()
    });
    let signer = TempDir::new("ui-signer");
    let acme_trust = signer.path().join("acme-tls-ca.pem");
    std::fs::write(&acme_trust, &pebble.tls_ca_pem).unwrap();
    let acme_root = signer.path().join("acme-root.pem");
    std::fs::write(&acme_root, pebble.root_pem()).unwrap();
    let out = Command::new("node")
        .arg(&walk)
        .args(["--url", "https://127.0.0.1:8443"])
        .arg("--ca")
        .arg(cam.ca_path())
        .arg("--artifacts")
        .arg(&artifacts)
        .arg("--signer-dir")
        .arg(signer.path())
        .args(["--acme-directory", &pebble.directory])
        .arg("--acme-trust")
        .arg(&acme_trust)
        .arg("--acme-root")
        .arg(&acme_root)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = stdout.lines().rev().find(|l| l.contains(" passed, ")).unwrap_or_default().to_owned();
    assert!(
        out.status.success() && summary.ends_with(" 0 failed"),
        "browser walk failed ({summary}):\n{stdout}\n{stderr}\nserver log:\n{}\npebble log:\n{}",
        cam.log_text(),
        pebble.log()
    );
    println!("{stdout}");
    assert!(artifacts.join("02-certificate.png").exists());
}
