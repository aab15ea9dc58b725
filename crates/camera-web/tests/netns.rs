//! The web server on real interfaces inside a private network namespace (camera-testns: veth
//! cam0 = 10.77.0.2/24 + fd77::2/64). The camera whose address changed must not say "Not secure" until a reboot: an address change is served a
//! new certificate with no restart and no dropped connection. How fast (the brief's one second)
//! is measured by `cargo xtask bench`; the test waits with a generous deadline.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use camera_test_support::netns::{enter_private_netns, ip, NetnsSetup};
use common::*;

fn served_sans(cam: &Camera) -> Vec<String> {
    let leaf = &cam.served_chain()[0];
    let text = openssl_stdin(&["x509", "-noout", "-ext", "subjectAltName"], leaf.as_bytes());
    text.lines()
        .skip(1)
        .flat_map(|l| l.split(','))
        .map(|s| s.trim().replace("IP Address:", "").replace("DNS:", ""))
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<std::net::IpAddr>().map(|ip| ip.to_string()).unwrap_or(s))
        .collect()
}

/// Sends one keep-alive request on an open TLS connection and reads until the JSON body ends.
fn request(stdin: &mut impl Write, stdout: &mut impl Read) -> String {
    stdin.write_all(b"GET /api/v1/session HTTP/1.1\r\nHost: camera\r\n\r\n").unwrap();
    stdin.flush().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("csrf_token") {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "the connection was closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn an_added_address_is_served_without_dropping_connections() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let cam = Camera::start_with(r#"{"camera": {"loopback": true, "hostname": "testcam"}}"#);
    let sans = served_sans(&cam);
    assert!(sans.contains(&"10.77.0.2".to_owned()) && sans.contains(&"fd77::2".to_owned()), "{sans:?}");
    let (_, info) = cam.curl_json(&[&cam.url("/api/v1/certificate")]);
    assert_eq!(info["camera"]["addresses"], serde_json::json!(["10.77.0.2", "fd77::2"]), "{info}");
    assert_eq!(info["warnings"], serde_json::json!([]), "{info}");

    // A connection opened before the change.
    let mut open = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &cam.https, "-CAfile"])
        .arg(cam.ca_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = open.stdin.take().unwrap();
    let mut stdout = open.stdout.take().unwrap();
    assert!(request(&mut stdin, &mut stdout).starts_with("HTTP/1.1 200"));

    ip(&["addr", "add", "10.77.1.9/24", "dev", "cam0"]);
    wait_for(Duration::from_secs(30), || served_sans(&cam).contains(&"10.77.1.9".to_owned()).then_some(()))
        .unwrap_or_else(|| panic!("10.77.1.9 not served 30 s after it was added; log:\n{}", cam.log_text()));
    assert!(cam.log_text().contains("addresses changed"), "{}", cam.log_text());

    // The old connection still answers.
    assert!(request(&mut stdin, &mut stdout).contains("HTTP/1.1 200"));
    drop(stdin);
    let _ = open.kill();
    let _ = open.wait();

    // Removing it is followed too.
    ip(&["addr", "del", "10.77.1.9/24", "dev", "cam0"]);
    assert!(wait_for(Duration::from_secs(30), || (!served_sans(&cam).contains(&"10.77.1.9".to_owned())).then_some(()))
        .is_some());
}

#[test]
fn an_uploaded_certificate_for_another_address_is_flagged_in_plain_words() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let cam = Camera::start();
    cam.setup();
    let w = TempDir::new("netns-upload");
    let d = w.path();
    installer_ca(d);
    openssl(d, &["genrsa", "-out", "server.key", "2048"]);
    openssl(d, &["req", "-new", "-key", "server.key", "-out", "server.csr", "-subj", "/CN=192.168.1.50"]);
    installer_sign(d, "server.csr", "IP:192.168.1.50", "server.crt");
    let cert = format!("certificate=@{}", d.join("server.crt").display());
    let key = format!("key=@{}", d.join("server.key").display());
    let (status, body) =
        cam.curl_json(&["-u", &cam.admin(), "-X", "PUT", "-F", &cert, "-F", &key, &cam.url("/api/v1/certificate")]);
    assert_eq!(status, 200, "{body}");
    assert!(
        body["warnings"].to_string().contains("10.77.0.2"),
        "the upload response names the camera's address: {body}"
    );
    // Reach it under the name its certificate carries, as a browser at that address would.
    let port = cam.https.rsplit(':').next().unwrap();
    let connect_to = format!("192.168.1.50:{port}:127.0.0.1:{port}");
    let url = format!("https://192.168.1.50:{port}/api/v1/certificate");
    let (status, info) = curl_with_ca(&d.join("rootCA.crt"), &["--connect-to", &connect_to, &url]);
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    let warning = info["warnings"][0]["message"].as_str().unwrap();
    assert!(warning.contains("names 192.168.1.50 but the camera is at 10.77.0.2"), "{warning}");
}
