//! The UI in headless Chromium (tests/ui/walk.mjs, playwright-core driving Debian's chromium),
//! trusting the camera CA through an NSS database: set the password, create a CSR, sign it with a
//! test CA, upload it, see it served with no certificate error, restore. Screenshots of each page
//! are kept in tests/artifacts/ui.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

#[test]
fn browser_walk_through_every_page() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let walk = root.join("tests/ui/walk.mjs");
    assert!(
        root.join("tests/ui/node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `cargo xtask deps` (or npm install in tests/ui)"
    );
    let artifacts = root.join("tests/artifacts/ui");
    std::fs::create_dir_all(&artifacts).unwrap();
    let cam = Camera::start();
    let signer = TempDir::new("ui-signer");
    let out = Command::new("node")
        .arg(&walk)
        .args(["--url", &cam.url("")])
        .arg("--ca")
        .arg(cam.ca_path())
        .arg("--artifacts")
        .arg(&artifacts)
        .arg("--signer-dir")
        .arg(signer.path())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = stdout.lines().rev().find(|l| l.contains(" passed, ")).unwrap_or_default().to_owned();
    assert!(
        out.status.success() && summary.ends_with(" 0 failed"),
        "browser walk failed ({summary}):\n{stdout}\n{stderr}\nserver log:\n{}",
        cam.log_text()
    );
    println!("{stdout}");
    assert!(artifacts.join("02-certificate.png").exists());
}
