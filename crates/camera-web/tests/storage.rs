//! A camera whose flash is full: every change answers 507 with a sentence that says so, nothing
//! changes (no half-written file, no temporary left behind), and the camera keeps serving.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::Path;

use common::*;

const CONFIG: &str = r#"{"camera": {"loopback": true}}"#;

/// Writes zeros into `path` until the file system is full.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let block = [0u8; 4096];
    loop {
        match file.write_all(&block) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    let _ = file.sync_all();
}

fn temporaries(state: &Path) -> Vec<String> {
    std::fs::read_dir(state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect()
}

fn assert_storage_full(status: u16, body: &serde_json::Value) {
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["error"], "storage_full", "{body}");
    assert!(body["message"].as_str().unwrap().contains("storage is full"), "{body}");
}

#[test]
fn uploads_and_requests_on_a_full_flash_answer_507_and_change_nothing() {
    let camera = Camera::start_on_small_state_disk(TempDir::new("full"), CONFIG, 256);
    camera.setup();
    let state = camera.state_as_seen_by_server();
    let served = camera.served_leaf_sha256();

    // An installer's certificate and key for the camera's address.
    let work = TempDir::new("full-work");
    installer_ca(work.path());
    openssl(
        work.path(),
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-subj",
            "/CN=cam",
            "-out",
            "server.csr",
        ],
    );
    installer_sign(work.path(), "server.csr", "IP:127.0.0.1", "server.crt");
    let cert = format!("certificate=@{}", work.path().join("server.crt").display());
    let key = format!("key=@{}", work.path().join("server.key").display());

    fill(&state.join("filler"));
    let (status, body) = camera.curl_json(&[
        "-u",
        &camera.admin(),
        "-X",
        "PUT",
        &camera.url("/api/v1/certificate"),
        "-F",
        &cert,
        "-F",
        &key,
    ]);
    assert_storage_full(status, &body);
    assert_eq!(camera.served_leaf_sha256(), served, "the served certificate is unchanged");
    assert!(!state.join("uploaded.pem").exists());

    let request = r#"{"subject":{"CN":"cam"},"subject_alt_names":["127.0.0.1"]}"#;
    let (status, body) = camera.curl_json(&[
        "-u",
        &camera.admin(),
        "-X",
        "POST",
        &camera.url("/api/v1/csr"),
        "-H",
        "Content-Type: application/json",
        "-d",
        request,
    ]);
    assert_storage_full(status, &body);
    let (status, _) = camera.curl(&[&camera.url("/api/v1/csr")]);
    assert_eq!(status, 404, "no request was kept");
    assert_eq!(temporaries(&state), Vec::<String>::new(), "no temporary file is left behind");

    // Space again: the same upload works, so nothing was left broken.
    std::fs::remove_file(state.join("filler")).unwrap();
    let (status, body) = camera.curl_json(&[
        "-u",
        &camera.admin(),
        "-X",
        "PUT",
        &camera.url("/api/v1/certificate"),
        "-F",
        &cert,
        "-F",
        &key,
    ]);
    assert_eq!(status, 200, "{body}");
    assert_ne!(camera.served_leaf_sha256(), served);
}

#[test]
fn first_run_setup_on_a_full_flash_answers_507_and_stays_open() {
    let camera = Camera::start_on_small_state_disk(TempDir::new("full-setup"), CONFIG, 256);
    let state = camera.state_as_seen_by_server();
    fill(&state.join("filler"));
    let (status, body) = camera.curl_json(&[
        "-X",
        "POST",
        &camera.url("/api/v1/setup"),
        "-H",
        "Content-Type: application/json",
        "-d",
        &format!(r#"{{"password":"{PASSWORD}"}}"#),
    ]);
    assert_storage_full(status, &body);
    assert!(!state.join("admin-password.json").exists());
    assert_eq!(temporaries(&state), Vec::<String>::new());
    let (_, session) = camera.curl_json(&[&camera.url("/api/v1/session")]);
    assert_eq!(session["password_set"], false, "setup stays open: {session}");
    std::fs::remove_file(state.join("filler")).unwrap();
    camera.setup();
}
