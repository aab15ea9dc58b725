//! Real TLS clients other than our own trust the camera with `cacert.crt` as the only anchor:
//! OpenSSL, curl, Python's ssl. And the TLS profiles: Standard = 1.2 + 1.3, High-Security = 1.3.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};

use common::*;

fn s_client(cam: &Camera, extra: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &cam.https, "-verify_return_error", "-x509_strict", "-CAfile"])
        .arg(cam.ca_path())
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn openssl_verifies_the_chain_for_the_ip_and_the_name() {
    let cam = Camera::start();
    let (ok, text) = s_client(&cam, &["-verify_ip", "127.0.0.1"]);
    assert!(ok && text.contains("Verify return code: 0 (ok)"), "{text}");
    let (ok, text) = s_client(&cam, &["-verify_hostname", "localhost", "-servername", "localhost"]);
    assert!(ok && text.contains("Verify return code: 0 (ok)"), "{text}");
    let (ok, text) = s_client(&cam, &["-verify_ip", "127.0.0.2"]);
    assert!(!ok, "a name the certificate does not carry fails: {text}");
}

#[test]
fn python_ssl_trusts_it_with_cacert_only() {
    let cam = Camera::start();
    let (host, port) = cam.https.rsplit_once(':').unwrap();
    let script = format!(
        "import ssl, socket\nctx = ssl.create_default_context(cafile={ca:?})\n\
         with socket.create_connection(({host:?}, {port})) as s:\n    with ctx.wrap_socket(s, server_hostname={host:?}) as t:\n        \
         t.sendall(b'GET /api/v1/certificate HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n')\n        \
         data = b''\n        while True:\n            chunk = t.recv(65536)\n            if not chunk: break\n            data += chunk\n        \
         print(t.version(), data.split(b'\\r\\n')[0].decode())\n",
        ca = cam.ca_path().display().to_string()
    );
    let out = Command::new("python3").args(["-c", &script]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("TLSv1.3 HTTP/1.1 200"), "{text}");
}

#[test]
fn standard_profile_speaks_tls12_and_tls13_but_nothing_older() {
    let cam = Camera::start();
    for (flag, works) in [("-tls1_3", true), ("-tls1_2", true), ("-tls1_1", false), ("-tls1", false)] {
        let (ok, text) = s_client(&cam, &[flag]);
        assert_eq!(ok, works, "{flag}: {text}");
    }
}

#[test]
fn high_security_profile_speaks_tls13_only() {
    let cam = Camera::start_with(r#"{"camera": {"loopback": true}, "web": {"tls": "high-security"}}"#);
    let (ok, text) = s_client(&cam, &["-tls1_3"]);
    assert!(ok, "{text}");
    let (ok, _) = s_client(&cam, &["-tls1_2"]);
    assert!(!ok, "TLS 1.2 is refused");
    let (_, info) = cam.curl_json(&[&cam.url("/api/v1/certificate")]);
    assert_eq!(info["tls_profile"], "high-security");
}

#[test]
fn bad_config_and_busy_port_are_one_line_errors() {
    let dir = TempDir::new("badcfg");
    // Runs camera-web on `config` with `dir`'s state; it must fail. Returns its stderr.
    let failing_run = |config: &std::path::Path, extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_camera-web"))
            .args(extra)
            .arg("--config")
            .arg(config)
            .arg("--state-dir")
            .arg(dir.path().join("s"))
            .arg("--run-dir")
            .arg(dir.path().join("r"))
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    std::fs::write(dir.path().join("c.json"), r#"{"web": {"tls": "ultra"}}"#).unwrap();
    let err = failing_run(&dir.path().join("c.json"), &[]);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("ultra"), "{err}");
    let cam = Camera::start();
    let err = failing_run(&cam.dir.path().join("config.json"), &["--https", &cam.https, "--http", "off"]);
    assert!(err.lines().last().unwrap().contains("cannot listen on"), "{err}");
}
