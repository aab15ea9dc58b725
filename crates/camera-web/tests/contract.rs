//! The API contract: `crates/camera-web/openapi.yaml` is checked against the server's real
//! answers (every route, successes and errors, validated with openapi-core from PyPI), against the
//! route table and the error enum (nothing undocumented, nothing documented that does not exist),
//! and against the UI (app.js may only use error codes and fields the contract has).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::client::{exchange, runtime, Answer, Client};
use common::*;
use serde_json::{json, Value};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Records request/answer pairs for the validator.
struct Recorder {
    client: Client,
    exchanges: Vec<Value>,
}

impl Recorder {
    fn send(&mut self, method: &str, target: &str, headers: &[String], body: &[u8]) -> Answer {
        let answer = runtime().block_on(exchange(&self.client, method, target, headers, body));
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let header = |name: &str| {
            headers.iter().find_map(|h| {
                h.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned())
            })
        };
        self.exchanges.push(json!({
            "method": method,
            "path": path,
            "query": query,
            "request_headers": headers.iter().filter_map(|h| h.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).collect::<std::collections::BTreeMap<_, _>>(),
            "request_content_type": header("content-type"),
            "request_body": String::from_utf8_lossy(body),
            "status": answer.status,
            "response_content_type": answer.header("content-type"),
            "response_body_base64": base64(&answer.body),
        }));
        answer
    }

    fn json(&mut self, method: &str, target: &str, headers: &[String], body: &str) -> (u16, Value) {
        let mut headers = headers.to_vec();
        headers.push("Content-Type: application/json".into());
        let answer = self.send(method, target, &headers, body.as_bytes());
        (answer.status, serde_json::from_slice(&answer.body).unwrap_or(Value::Null))
    }
}

fn base64(bytes: &[u8]) -> String {
    use base64ct::Encoding;
    base64ct::Base64::encode_string(bytes)
}

fn basic() -> String {
    format!("Authorization: Basic {}", base64(format!("admin:{PASSWORD}").as_bytes()))
}

/// A multipart body with the given (name, filename, content) parts.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "contractboundary";
    let mut body = Vec::new();
    for (name, filename, content) in parts {
        let disposition = match filename {
            Some(f) => format!("form-data; name=\"{name}\"; filename=\"{f}\""),
            None => format!("form-data; name=\"{name}\""),
        };
        body.extend(format!("--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n").as_bytes());
        body.extend(*content);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("Content-Type: multipart/form-data; boundary={boundary}"), body)
}

/// Walks every route with successes and the errors a script meets, and records it all.
fn walk(camera: &Camera) -> Vec<Value> {
    let mut r = Recorder { client: Client::new(camera), exchanges: Vec::new() };
    let no: &[String] = &[];

    // Anyone: the CA, the status, the session, the UI.
    for target in
        ["/", "/app.js", "/app.css", "/cacert.crt", "/cacert.crt?format=der", "/api/v1/certificate", "/api/v1/session"]
    {
        assert_eq!(r.send("GET", target, no, b"").status, 200, "{target}");
    }
    assert_eq!(r.send("GET", "/api/v1/csr", no, b"").status, 404);
    assert_eq!(r.send("GET", "/nowhere", no, b"").status, 404);
    assert_eq!(r.send("PATCH", "/api/v1/csr", no, b"").status, 405);

    // Before setup.
    assert_eq!(r.json("POST", "/api/v1/login", no, r#"{"password":"whatever1"}"#).0, 403);
    assert_eq!(r.send("DELETE", "/api/v1/certificate", &[basic()], b"").status, 403);
    assert_eq!(r.send("POST", "/api/v1/setup", &["Content-Type: text/plain".into()], b"x").status, 415);
    assert_eq!(r.json("POST", "/api/v1/setup", no, "{nope").0, 400);
    assert_eq!(r.json("POST", "/api/v1/setup", no, r#"{"password":"short"}"#).0, 400);
    let (status, body) = r.json("POST", "/api/v1/setup", no, &format!(r#"{{"password":"{PASSWORD}"}}"#));
    assert_eq!(status, 200, "{body}");
    assert_eq!(r.json("POST", "/api/v1/setup", no, r#"{"password":"another password"}"#).0, 409);

    // Login, session, CSRF.
    assert_eq!(r.json("POST", "/api/v1/login", no, r#"{"password":"wrong password"}"#).0, 401);
    let login = r.send(
        "POST",
        "/api/v1/login",
        &["Content-Type: application/json".into()],
        format!(r#"{{"password":"{PASSWORD}"}}"#).as_bytes(),
    );
    assert_eq!(login.status, 200);
    let cookie = login.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let csrf = serde_json::from_slice::<Value>(&login.body).unwrap()["csrf_token"].as_str().unwrap().to_owned();
    let session = [format!("Cookie: {cookie}")];
    assert_eq!(r.send("GET", "/api/v1/session", &session, b"").status, 200);
    assert_eq!(r.send("DELETE", "/api/v1/certificate", &session, b"").status, 403, "no CSRF token");
    let with_csrf = [format!("Cookie: {cookie}"), format!("X-CSRF-Token: {csrf}")];
    assert_eq!(r.send("DELETE", "/api/v1/certificate", &with_csrf, b"").status, 200);
    assert_eq!(r.send("DELETE", "/api/v1/certificate", &["Authorization: Bearer abc".into()], b"").status, 401);
    assert_eq!(r.send("DELETE", "/api/v1/certificate", &["Authorization: Basic !!!".into()], b"").status, 401);
    let wrong_user = format!("Authorization: Basic {}", base64(format!("root:{PASSWORD}").as_bytes()));
    assert_eq!(r.send("DELETE", "/api/v1/certificate", &[wrong_user], b"").status, 401);
    assert_eq!(r.send("DELETE", "/api/v1/certificate", no, b"").status, 401);
    let cross = [basic(), "Origin: https://evil.example".into()];
    assert_eq!(r.send("DELETE", "/api/v1/certificate", &cross, b"").status, 403);

    // A request made on the camera, and its errors.
    let request = r#"{"subject":{"C":"DE","O":"Site","CN":"cam-1"},"subject_alt_names":["127.0.0.1","cam-1.local"],"key_type":"ecdsa-p256"}"#;
    let csr = r.send("POST", "/api/v1/csr", &[basic(), "Content-Type: application/json".into()], request.as_bytes());
    assert_eq!(csr.status, 200);
    assert_eq!(r.json("POST", "/api/v1/csr", &[basic()], r#"{"subject":{"CN":"x"},"subject_alt_names":[]}"#).0, 400);
    assert_eq!(r.json("POST", "/api/v1/csr", &[basic()], r#"{"key_type":"dsa-1024"}"#).0, 400);
    assert_eq!(r.send("GET", "/api/v1/csr", no, b"").status, 200);
    assert_eq!(r.send("GET", "/api/v1/certificate", no, b"").status, 200, "with the pending request");

    // Uploads: refused ones, then the signed request (no key needed), then restore.
    let dir = TempDir::new("contract");
    installer_ca(dir.path());
    std::fs::write(dir.path().join("cam.csr"), &csr.body).unwrap();
    installer_sign(dir.path(), "cam.csr", "IP:127.0.0.1,DNS:cam-1.local", "cam.crt");
    let signed = std::fs::read(dir.path().join("cam.crt")).unwrap();
    let (ctype, body) = multipart(&[("certificate", None, b"   ")]);
    assert_eq!(r.send("PUT", "/api/v1/certificate", &[basic(), ctype], &body).status, 400);
    let (ctype, body) = multipart(&[("certificate", Some("x.pem"), b"not a certificate")]);
    assert_eq!(r.send("PUT", "/api/v1/certificate", &[basic(), ctype], &body).status, 422);
    let (ctype, body) = multipart(&[("colour", None, b"blue")]);
    assert_eq!(r.send("PUT", "/api/v1/certificate", &[basic(), ctype], &body).status, 400);
    let ca_only = std::fs::read(dir.path().join("rootCA.crt")).unwrap();
    assert_eq!(
        r.send("PUT", "/api/v1/certificate", &[basic(), "Content-Type: application/x-pem-file".into()], &ca_only)
            .status,
        422
    );
    let (ctype, body) = multipart(&[("certificate", Some("cam.crt"), &signed)]);
    let uploaded = r.send("PUT", "/api/v1/certificate", &[basic(), ctype], &body);
    assert_eq!(uploaded.status, 200, "{}", String::from_utf8_lossy(&uploaded.body));
    assert_eq!(r.send("GET", "/api/v1/certificate", no, b"").status, 200, "while uploaded");
    assert_eq!(r.send("DELETE", "/api/v1/certificate", &[basic()], b"").status, 200);
    assert_eq!(r.send("POST", "/api/v1/logout", &[format!("Cookie: {cookie}")], b"").status, 200);

    // Enrollment: refused settings, then settings for a CA that is not there (it fails in the
    // background, which the state then says), then stop.
    assert_eq!(r.send("GET", "/api/v1/enrollment", &[basic()], b"").status, 200);
    assert_eq!(
        r.json("PUT", "/api/v1/enrollment", &[basic()], r#"{"protocol":"acme","url":"https://127.0.0.1:9/dir"}"#).0,
        400
    );
    assert_eq!(
        r.json("PUT", "/api/v1/enrollment", &[basic()], r#"{"protocol":"scep","url":"http://127.0.0.1:9/scep"}"#).0,
        400
    );
    // Any CA certificate does as the trust anchor of a server that is not there.
    let trust = std::fs::read_to_string(camera.ca_path()).unwrap();
    let settings = json!({"protocol": "acme", "url": "https://127.0.0.1:9/dir", "trust": trust,
                          "challenge_types": ["http-01"], "renew_before_days": 30});
    let (status, body) = r.json("PUT", "/api/v1/enrollment", &[basic()], &settings.to_string());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["settings"]["renew_before_days"], 30, "{body}");
    assert!(wait_for(std::time::Duration::from_secs(30), || {
        let answer = r.send("GET", "/api/v1/enrollment", &[basic()], b"");
        (serde_json::from_slice::<Value>(&answer.body).unwrap()["last_attempt"]["ok"] == false).then_some(())
    })
    .is_some());
    assert_eq!(r.send("DELETE", "/api/v1/enrollment", &[basic()], b"").status, 200);
    assert_eq!(r.send("GET", "/api/v1/enrollment", no, b"").status, 401);

    // 802.1X: its request (a CN is enough), its certificate, its settings, its enrollment (SCEP only).
    let dot1x_csr = r.send(
        "POST",
        "/api/v1/dot1x/csr",
        &[basic(), "Content-Type: application/json".into()],
        br#"{"subject":{"CN":"cam-1"}}"#,
    );
    assert_eq!(dot1x_csr.status, 200);
    assert_eq!(r.send("GET", "/api/v1/dot1x/csr", no, b"").status, 200);
    assert_eq!(r.send("GET", "/api/v1/dot1x", &[basic()], b"").status, 200, "with the pending request");
    let on = json!({"enabled": true, "server_ca_pem": trust, "domain_match": "radius.site.example"});
    assert_eq!(r.json("PUT", "/api/v1/dot1x", &[basic()], &on.to_string()).0, 409, "no certificate yet");
    assert_eq!(r.json("PUT", "/api/v1/dot1x", &[basic()], r#"{"enabled": true, "eapol_version": 3}"#).0, 400);
    std::fs::write(dir.path().join("dot1x.csr"), &dot1x_csr.body).unwrap();
    installer_sign_for(dir.path(), "dot1x.csr", "DNS:cam-1.site.example", "dot1x.crt", "clientAuth");
    let client = std::fs::read(dir.path().join("dot1x.crt")).unwrap();
    let (ctype, body) = multipart(&[("certificate", Some("cam.crt"), &signed)]);
    assert_eq!(
        r.send("PUT", "/api/v1/dot1x/certificate", &[basic(), ctype], &body).status,
        422,
        "a server certificate"
    );
    let (ctype, body) = multipart(&[("certificate", Some("dot1x.crt"), &client)]);
    let uploaded = r.send("PUT", "/api/v1/dot1x/certificate", &[basic(), ctype], &body);
    assert_eq!(uploaded.status, 200, "{}", String::from_utf8_lossy(&uploaded.body));
    let (status, body) = r.json("PUT", "/api/v1/dot1x", &[basic()], &on.to_string());
    assert_eq!(status, 200, "{body}");
    assert_eq!(r.send("DELETE", "/api/v1/dot1x/certificate", &[basic()], b"").status, 409, "802.1X is on");
    let off = json!({"enabled": false, "server_ca_pem": trust});
    assert_eq!(r.json("PUT", "/api/v1/dot1x", &[basic()], &off.to_string()).0, 200);
    assert_eq!(r.send("GET", "/api/v1/dot1x/enrollment", &[basic()], b"").status, 200);
    let acme = json!({"protocol": "acme", "url": "https://127.0.0.1:9/dir", "trust": trust});
    assert_eq!(r.json("PUT", "/api/v1/dot1x/enrollment", &[basic()], &acme.to_string()).0, 400, "SCEP only");
    let scep = r#"{"protocol":"scep","url":"http://127.0.0.1:9/scep","challenge":"one-time"}"#;
    assert_eq!(r.json("PUT", "/api/v1/dot1x/enrollment", &[basic()], scep).0, 200);
    assert_eq!(r.send("DELETE", "/api/v1/dot1x/enrollment", &[basic()], b"").status, 200);
    assert_eq!(r.send("DELETE", "/api/v1/dot1x/certificate", &[basic()], b"").status, 200);
    assert_eq!(r.send("GET", "/api/v1/dot1x", no, b"").status, 401);

    // The security event log saw it all.
    let events = r.send("GET", "/api/v1/events?limit=50", &[basic()], b"");
    assert_eq!(events.status, 200);
    let kinds: Vec<String> = serde_json::from_slice::<Value>(&events.body).unwrap()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    for kind in [
        "password_set",
        "login",
        "login_failed",
        "request_created",
        "upload_refused",
        "certificate_uploaded",
        "certificate_restored",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} event in {kinds:?}");
    }
    assert_eq!(r.send("GET", "/api/v1/events", no, b"").status, 401);
    assert_eq!(r.send("GET", "/api/v1/events?limit=many", &[basic()], b"").status, 400);
    r.exchanges
}

#[test]
fn the_openapi_document_matches_the_server_the_route_table_and_the_ui() {
    let camera = Camera::start();
    let exchanges = walk(&camera);
    let work = TempDir::new("contract-files");
    let file = |name: &str, value: Value| {
        let path = work.path().join(name);
        std::fs::write(&path, value.to_string()).unwrap();
        path
    };
    let routes: Vec<Value> = camera_web::api::ROUTES
        .iter()
        .map(|r| json!({"path": r.path, "method": r.verb.as_str(), "admin": r.access == camera_web::api::routes::Access::Admin}))
        .collect();
    let codes: Vec<Value> =
        camera_web::api::error::error_codes().into_iter().map(|(c, s)| json!({"code": c, "status": s})).collect();
    let kinds: Vec<Value> = camera_events::EventKind::ALL.iter().map(|k| serde_json::to_value(k).unwrap()).collect();
    let enums = json!({ "EventKind": kinds, "Source": ["device", "uploaded", "enrolled"] });
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(repo().join("tests/contract/validate.py"))
        .arg("--spec")
        .arg(crate_dir.join("openapi.yaml"))
        .arg("--exchanges")
        .arg(file("exchanges.json", Value::from(exchanges)))
        .arg("--routes")
        .arg(file("routes.json", Value::from(routes)))
        .arg("--codes")
        .arg(file("codes.json", Value::from(codes)))
        .arg("--enums")
        .arg(file("enums.json", enums))
        .arg("--app-js")
        .arg(crate_dir.join("assets/app.js"))
        .arg("--index-html")
        .arg(crate_dir.join("assets/index.html"))
        .output()
        .expect("python3 runs");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{report}");
    assert!(out.status.success(), "the contract does not hold:\n{report}");
}
