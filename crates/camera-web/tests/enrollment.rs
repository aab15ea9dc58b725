//! Automatic enrollment with a real ACME server: Pebble validates http-01 and tls-alpn-01 by
//! connecting to the camera's own ports, inside a private network namespace (cam0 with
//! 10.77.0.2/24 and fd77::2/64, never a real outside address). The camera enrolls by itself,
//! serves and renews the certificate, follows an address change, and keeps serving what it has
//! when the CA fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use camera_test_support::netns::{enter_private_netns, ip, NetnsSetup};
use camera_test_support::pebble::{Pebble, PebbleSpec};
use common::scep::ScepServer;
use common::*;
use serde_json::{json, Value};

const HTTPS_PORT: u16 = 5001;
const HTTP_PORT: u16 = 5002;
const CONFIG: &str = r#"{"camera": {"hostname": "testcam"}}"#;

/// The camera in the namespace, listening on every address (Pebble validates new ones too), and
/// a trust file holding both the camera CA and Pebble's root, so curl follows the switch.
struct Site {
    camera: Camera,
    /// The site's CA: Pebble (ACME) or a SCEP server.
    pebble: Option<Pebble>,
    scep: Option<ScepServer>,
    trust: PathBuf,
}

impl Site {
    fn start(spec: PebbleSpec, config: &str) -> Self {
        // Every nonce good: a refused one only adds a retry (and time) to the camera's enrollment.
        let spec = PebbleSpec { http_port: HTTP_PORT, tls_port: HTTPS_PORT, nonce_reject_percent: Some(0), ..spec };
        let pebble = Pebble::start(&spec);
        let root = pebble.root_pem();
        let mut site = Self::with_camera(config, &root);
        site.pebble = Some(pebble);
        site
    }

    fn with_scep(scep: ScepServer, config: &str) -> Self {
        let mut site = Self::with_camera(config, &scep.ca_pem.clone());
        site.scep = Some(scep);
        site
    }

    fn pebble(&self) -> &Pebble {
        self.pebble.as_ref().unwrap()
    }

    fn with_camera(config: &str, issuer_root_pem: &str) -> Self {
        let camera = Camera::start_listening(
            TempDir::new("enroll"),
            config,
            &format!("[::]:{HTTPS_PORT}"),
            &format!("[::]:{HTTP_PORT}"),
        );
        let trust = camera.dir.path().join("trust.pem");
        let mut pem = std::fs::read(camera.ca_path()).unwrap();
        pem.extend(issuer_root_pem.as_bytes());
        std::fs::write(&trust, pem).unwrap();
        let site = Self { camera, pebble: None, scep: None, trust };
        let (status, body) = site.call(
            &["-X", "POST", "-H", "Content-Type: application/json", "-d"],
            "/api/v1/setup",
            &format!(r#"{{"password":"{PASSWORD}"}}"#),
        );
        assert_eq!(status, 200, "{body}");
        site
    }

    fn url(path: &str) -> String {
        format!("https://10.77.0.2:{HTTPS_PORT}{path}")
    }

    /// curl trusting the camera CA and Pebble's root, as the admin; `last` is appended after `args`.
    fn call(&self, args: &[&str], path: &str, last: &str) -> (u16, Value) {
        let admin = format!("admin:{PASSWORD}");
        let mut all: Vec<&str> = vec!["-u", &admin];
        all.extend(args);
        if !last.is_empty() {
            all.push(last);
        }
        let url = Self::url(path);
        all.push(&url);
        let (status, body) = curl_with_ca(&self.trust, &all);
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(&[], path, "");
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    fn configure(&self, settings: Value) -> (u16, Value) {
        self.call(
            &["-X", "PUT", "-H", "Content-Type: application/json", "-d"],
            "/api/v1/enrollment",
            &settings.to_string(),
        )
    }

    fn acme(&self, challenges: &[&str]) -> Value {
        json!({"protocol": "acme", "url": self.pebble().directory, "trust": self.pebble().tls_ca_pem, "challenge_types": challenges})
    }

    /// Waits until the served certificate is an enrolled one other than `previous`; returns the status.
    /// Prints how long it took (`--nocapture`): the figures README gives.
    fn wait_enrolled(&self, previous: Option<&str>, why: &str) -> Value {
        let started = std::time::Instant::now();
        let got = wait_for(Duration::from_secs(60), || {
            let status = self.get("/api/v1/certificate");
            let fresh = status["source"] == "enrolled" && Some(status["certificate"]["sha256"].as_str()?) != previous;
            fresh.then_some(status)
        });
        if got.is_some() {
            println!("enrollment: {why}: served {} ms after the wait began", started.elapsed().as_millis());
        }
        got.unwrap_or_else(|| {
            panic!(
                "{why}: no enrolled certificate; enrollment: {}\ncamera log:\n{}\nCA log:\n{}",
                self.get("/api/v1/enrollment"),
                self.camera.log_text(),
                self.pebble.as_ref().map(Pebble::log).or(self.scep.as_ref().map(ScepServer::log)).unwrap_or_default()
            )
        })
    }

    /// Waits for an attempt to fail with another sentence than the last failure's; returns it.
    fn wait_failure(&self, previous: &mut String) -> String {
        let failed = wait_for(Duration::from_secs(60), || {
            let e = self.get("/api/v1/enrollment");
            let message = e["last_attempt"]["message"].as_str().unwrap_or_default().to_owned();
            (e["last_attempt"]["ok"] == false && message != *previous).then_some(message)
        });
        if let Some(message) = &failed {
            previous.clone_from(message);
        }
        failed.unwrap_or_else(|| {
            panic!("no failure recorded: {}\n{}", self.get("/api/v1/enrollment"), self.camera.log_text())
        })
    }

    /// The served chain, verified by openssl against the site CA's root only, for `address`.
    fn verify_served(&self, address: &str) {
        let root = self.camera.dir.path().join("site-root.pem");
        let pem = match (&self.pebble, &self.scep) {
            (Some(pebble), _) => pebble.root_pem(),
            (None, Some(scep)) => scep.ca_pem.clone(),
            (None, None) => unreachable!("a site has a CA"),
        };
        std::fs::write(&root, pem).unwrap();
        let target =
            if address.contains(':') { format!("[{address}]:{HTTPS_PORT}") } else { format!("{address}:{HTTPS_PORT}") };
        let out = Command::new("openssl")
            .args(["s_client", "-connect", &target, "-verify_return_error", "-verify_ip", address, "-CAfile"])
            .arg(&root)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("Verify return code: 0 (ok)"),
            "{address}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn names(status: &Value) -> Vec<String> {
        status["certificate"]["subject_alt_names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }
}

/// http-01: enrolled for every address and testcam.local, verified by openssl against Pebble's
/// root; an address added in the namespace leads to a new order naming it; with a short lifetime
/// the camera renews by itself and a client sees the new certificate.
#[test]
fn acme_http01_enrolls_follows_an_added_address_and_renews() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let site = Site::start(
        PebbleSpec { validity_secs: Some(24), dns: Some(("10.77.0.2", "fd77::2")), ..Default::default() },
        CONFIG,
    );
    let (status, state) = site.configure(site.acme(&["http-01"]));
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["settings"]["protocol"], "acme");
    let first = site.wait_enrolled(None, "first enrollment");
    let names = Site::names(&first);
    for name in ["10.77.0.2", "fd77::2", "testcam.local"] {
        assert!(names.contains(&name.to_owned()), "{name} missing from {names:?}");
    }
    site.verify_served("10.77.0.2");
    site.verify_served("fd77::2");
    let enrollment = site.get("/api/v1/enrollment");
    assert_eq!(enrollment["last_attempt"]["ok"], true, "{enrollment}");
    assert!(
        enrollment["certificate"]["renew_at_unix"].as_u64().unwrap()
            < first["certificate"]["not_after_unix"].as_u64().unwrap()
    );

    // A new address: a new order names it.
    ip(&["addr", "add", "10.77.0.3/24", "dev", "cam0"]);
    let moved = site.wait_enrolled(first["certificate"]["sha256"].as_str(), "after an added address");
    assert!(Site::names(&moved).contains(&"10.77.0.3".to_owned()), "{moved}");
    site.verify_served("10.77.0.3");

    // Renewal 60 % to 75 % into the 24 s lifetime, with no restart and no address change.
    let renewed = site.wait_enrolled(moved["certificate"]["sha256"].as_str(), "renewal");
    assert!(renewed["certificate"]["not_after_unix"].as_i64() > moved["certificate"]["not_after_unix"].as_i64());
    site.verify_served("10.77.0.2");
    let events = site.get("/api/v1/events");
    let succeeded = events["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "enrollment_succeeded").count();
    assert!(succeeded >= 3, "{events}");
}

/// tls-alpn-01 only: Pebble's validation handshakes offer acme-tls/1 and get the validation
/// certificate from the camera's TLS resolver; browsers still get the served certificate.
#[test]
fn acme_tls_alpn01_enrolls() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let site = Site::start(PebbleSpec { dns: Some(("10.77.0.2", "fd77::2")), ..Default::default() }, CONFIG);
    let (status, state) = site.configure(site.acme(&["tls-alpn-01"]));
    assert_eq!(status, 200, "{state}");
    site.wait_enrolled(None, "tls-alpn-01");
    site.verify_served("10.77.0.2");
    // Restore stops enrollment and brings the camera's own certificate back.
    let (status, restored) = site.call(&["-X", "DELETE"], "/api/v1/certificate", "");
    assert_eq!((status, restored["source"].as_str()), (200, Some("device")), "{restored}");
    assert_eq!(site.get("/api/v1/enrollment")["state"], "off");
}

/// What goes wrong with a site's CA leaves the served certificate alone and says why: EAB
/// required but not given, a wrong trust anchor, a CA that is down, an order the CA refuses;
/// then with the key id and HMAC key it works.
#[test]
fn acme_failures_keep_the_certificate_and_say_why() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let config = r#"{"camera": {"hostname": "testcam", "extra_names": ["blocked.home.arpa"]}}"#;
    let spec = PebbleSpec {
        eab_keys: vec![("kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W")],
        domain_blocklist: vec!["blocked.home.arpa"],
        dns: Some(("10.77.0.2", "fd77::2")),
        ..Default::default()
    };
    let site = Site::start(spec, config);
    let own = site.get("/api/v1/certificate")["certificate"]["sha256"].clone();
    let unchanged = |why: &str| {
        let now = site.get("/api/v1/certificate");
        assert_eq!((now["source"].as_str(), &now["certificate"]["sha256"]), (Some("device"), &own), "{why}: {now}");
    };

    let mut last = String::new();
    site.configure(site.acme(&["http-01"]));
    let sentence = site.wait_failure(&mut last);
    assert!(sentence.contains("external account binding"), "{sentence}");
    unchanged("no EAB");

    let other = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    let wrong = other.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap().pem();
    let mut settings = site.acme(&["http-01"]);
    settings["trust"] = json!(wrong);
    site.configure(settings);
    let sentence = site.wait_failure(&mut last);
    assert!(sentence.contains("not signed by the configured trust anchor"), "{sentence}");
    unchanged("wrong trust anchor");

    let mut settings = site.acme(&["http-01"]);
    settings["url"] = json!("https://127.0.0.1:9/dir");
    site.configure(settings);
    let sentence = site.wait_failure(&mut last);
    assert!(sentence.contains("could not be reached"), "{sentence}");
    unchanged("CA down");
    let state = site.get("/api/v1/enrollment");
    assert!(
        state["next_attempt_unix"].as_u64().unwrap() >= state["last_attempt"]["at_unix"].as_u64().unwrap() + 60,
        "backs off: {state}"
    );

    let mut settings = site.acme(&["http-01"]);
    settings["eab"] =
        json!({"kid": "kid-1", "hmac_key": "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"});
    site.configure(settings.clone());
    let sentence = site.wait_failure(&mut last);
    assert!(sentence.contains("blocked.home.arpa"), "the CA's own reason: {sentence}");
    unchanged("refused order");

    // The secrets never come back.
    let shown = site.get("/api/v1/enrollment").to_string();
    assert!(!shown.contains("zWNDZM6eQGHW") && shown.contains("kid-1"), "{shown}");
    let log = site.camera.log_text();
    assert!(!log.contains("zWNDZM6eQGHW"), "the EAB key is in the log");
}

/// A certificate whose CA goes away expires with no successor: the camera serves its own again
/// (users who imported cacert.crt keep a trusted page), and says so.
#[test]
fn an_enrolled_certificate_that_expires_with_no_successor_gives_way_to_the_cameras_own() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let spec = PebbleSpec { validity_secs: Some(12), dns: Some(("10.77.0.2", "fd77::2")), ..Default::default() };
    let mut site = Site::start(spec, CONFIG);
    site.configure(site.acme(&["http-01"]));
    let enrolled = site.wait_enrolled(None, "enrollment");
    site.pebble.as_mut().unwrap().stop();
    let fell_back = wait_for(Duration::from_secs(40), || {
        let now = site.get("/api/v1/certificate");
        (now["source"] == "device").then_some(now)
    })
    .unwrap_or_else(|| panic!("still serving the expired certificate:\n{}", site.camera.log_text()));
    assert!(fell_back["reason"].as_str().unwrap().contains("expired"), "{fell_back}");
    assert!(
        fell_back["expiry"].as_array().unwrap().iter().any(|e| e["what"] == "installer" && e["state"] == "expired"),
        "{fell_back}"
    );
    // New handshakes get the camera's own from the second of expiry (the monitor wakes then).
    let logged = wait_for(Duration::from_secs(10), || {
        site.camera.log_text().contains("expired and nothing replaced it").then_some(())
    });
    assert!(logged.is_some(), "{}", site.camera.log_text());
    let served = site.camera.dir.path().join("served.pem");
    let chain = served_chain(&format!("10.77.0.2:{HTTPS_PORT}"));
    std::fs::write(&served, &chain[0]).unwrap();
    let issuer = openssl_stdin(&["x509", "-noout", "-issuer"], chain[0].as_bytes());
    assert!(issuer.contains("IP Camera Issuing CA"), "a client gets the camera's own certificate: {issuer}");
    let events = site.get("/api/v1/events").to_string();
    assert!(events.contains("certificate_expired") && events.contains("enrollment_failed"), "{events}");
    assert_ne!(fell_back["certificate"]["sha256"], enrolled["certificate"]["sha256"]);
}

const SCEP_PORT: u16 = 5080;
const CHALLENGE: &str = "site-scep-challenge-1";

fn scep_settings(site: &Site, challenge: &str) -> Value {
    // No CN: the camera names itself (its host name), never by an address.
    json!({"protocol": "scep", "url": site.scep.as_ref().unwrap().url, "challenge": challenge})
}

/// SCEP with micromdm's SCEP library issuing server certificates: enrolled and served (verified by
/// openssl against the SCEP CA only), the CA pinned on first use; an added address leads to a
/// RenewalReq signed with the certificate in service, and the new certificate names it.
#[test]
fn scep_enrolls_serves_and_renews() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let scep = ScepServer::issuing_server_certificates(CHALLENGE, SCEP_PORT, Duration::from_secs(3600));
    let site = Site::with_scep(scep, CONFIG);
    let (status, state) = site.configure(scep_settings(&site, CHALLENGE));
    assert_eq!(status, 200, "{state}");
    let first = site.wait_enrolled(None, "SCEP enrollment");
    let names = Site::names(&first);
    for name in ["10.77.0.2", "fd77::2", "testcam.local"] {
        assert!(names.contains(&name.to_owned()), "{name} missing from {names:?}");
    }
    let subject = first["certificate"]["subject"].as_str().unwrap();
    assert!(subject.contains("CN=testcam") && !subject.contains("10.77"), "the default CN is the host name: {subject}");
    site.verify_served("10.77.0.2");
    let state = site.get("/api/v1/enrollment");
    let pinned = state["scep_ca_sha256"].as_str().unwrap().to_owned();
    assert_eq!(pinned.len(), 95, "{state}");
    assert!(!state.to_string().contains(CHALLENGE), "the challenge is never shown: {state}");

    ip(&["addr", "add", "10.77.0.3/24", "dev", "cam0"]);
    let renewed = site.wait_enrolled(first["certificate"]["sha256"].as_str(), "after an added address");
    assert!(Site::names(&renewed).contains(&"10.77.0.3".to_owned()), "{renewed}");
    site.verify_served("10.77.0.3");
    assert!(
        site.camera.log_text().contains("RenewalReq"),
        "the second request is a renewal:\n{}",
        site.camera.log_text()
    );
}

/// Debian's scepserver 2.1.0 as packaged: a wrong challenge is refused with the server's reason;
/// with the right one it issues a certificate, which is for TLS clients only (clientAuth): the
/// camera does not serve it, says why, and keeps its own.
#[test]
fn scep_with_debians_scepserver_refuses_a_wrong_challenge_and_a_client_only_certificate() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let scep = ScepServer::debian(CHALLENGE, SCEP_PORT);
    let site = Site::with_scep(scep, CONFIG);
    let own = site.get("/api/v1/certificate")["certificate"]["sha256"].clone();
    let mut last = String::new();
    site.configure(scep_settings(&site, "not-the-challenge"));
    let sentence = site.wait_failure(&mut last);
    assert!(sentence.contains("challenge password is wrong"), "{sentence}");
    site.configure(scep_settings(&site, CHALLENGE));
    let sentence = site.wait_failure(&mut last);
    assert!(sentence.contains("not installed") && sentence.to_lowercase().contains("server"), "{sentence}");
    let now = site.get("/api/v1/certificate");
    assert_eq!((now["source"].as_str(), &now["certificate"]["sha256"]), (Some("device"), &own), "{now}");
    assert!(!site.camera.log_text().contains(CHALLENGE), "the challenge is in the log");
}

/// Rounds of each enrollment in [`bench_enrollment_time_per_protocol`] (`ENROLL_BENCH_ROUNDS`
/// sets another count).
const BENCH_ROUNDS: usize = 5;

/// A benchmark, not a test (it asserts only that every enrollment worked): `cargo xtask bench
/// --only enroll` runs it from a release build and makes the table. Each round times, from the
/// request to a served certificate, the camera enrolling with a new state dir (new account, new
/// key), and a reference client enrolling for the same names from the same server in the same run:
/// lego (Debian's ACME client; http-01, P-256; as many DNS names as the camera has identifiers,
/// since it cannot ask for IP addresses) and micromdm's scepclient (Debian's; RSA-2048).
/// One `enroll-bench` line per sample: protocol, client, microseconds.
#[test]
#[ignore = "a benchmark: cargo xtask bench --only enroll"]
fn bench_enrollment_time_per_protocol() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let rounds = std::env::var("ENROLL_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(BENCH_ROUNDS);
    let sample = |protocol: &str, client: &str, took: Duration| {
        println!("enroll-bench\t{protocol}\t{client}\t{}", took.as_micros());
    };
    // The camera times from its request to the certificate in service (curl polls every 20 ms).
    let camera_enrolls = |site: &Site, settings: Value| {
        let started = std::time::Instant::now();
        let (status, state) = site.configure(settings);
        assert_eq!(status, 200, "{state}");
        let served = site.wait_enrolled(None, "bench");
        (started.elapsed(), Site::names(&served))
    };
    let reference = |cmd: &mut Command| {
        let started = std::time::Instant::now();
        run(cmd.stdin(Stdio::null()));
        started.elapsed()
    };

    let pebble = Pebble::start(&PebbleSpec {
        // Every nonce good: a refused one only adds a retry (and time) to the camera's enrollment.
        nonce_reject_percent: Some(0),
        http_port: HTTP_PORT,
        tls_port: HTTPS_PORT,
        dns: Some(("10.77.0.2", "fd77::2")),
        ..Default::default()
    });
    let pebble_root = pebble.root_pem();
    let bench_dir = TempDir::new("bench");
    let pebble_tls_ca = bench_dir.join("bench-tls-ca.pem");
    std::fs::write(&pebble_tls_ca, &pebble.tls_ca_pem).unwrap();
    let scep = ScepServer::issuing_server_certificates(CHALLENGE, SCEP_PORT, Duration::from_secs(3600));
    for _ in 0..rounds {
        // ACME http-01: the camera (stopped afterwards: lego answers on the same port).
        let names = {
            let site = Site::with_camera(CONFIG, &pebble_root);
            let settings = json!({"protocol": "acme", "url": pebble.directory, "trust": pebble.tls_ca_pem,
                "challenge_types": ["http-01"], "key_type": "ecdsa-p256"});
            let (took, names) = camera_enrolls(&site, settings);
            sample("ACME http-01, P-256", "camera", took);
            names
        };
        let lego = TempDir::new("lego");
        let mut cmd = Command::new("lego");
        cmd.env("LEGO_CA_CERTIFICATES", &pebble_tls_ca)
            .args(["--server", &pebble.directory, "--accept-tos", "--email", "bench@testcam.example", "--path"])
            .arg(lego.path())
            .args(["--key-type", "ec256", "--http", "--http.port", &format!(":{HTTP_PORT}")]);
        // Debian's lego (4.9) sends IP addresses as DNS identifiers, which Pebble refuses: it gets
        // as many DNS names as the camera has identifiers, all resolving to the camera's addresses.
        for i in 0..names.len() {
            cmd.args(["--domains", &format!("name{i}.testcam.local")]);
        }
        let took = reference(cmd.arg("run"));
        let issued = std::fs::read_dir(lego.path().join("certificates")).unwrap();
        assert!(
            issued.flatten().any(|e| e.path().extension().is_some_and(|x| x == "crt")),
            "lego wrote no certificate"
        );
        sample("ACME http-01, P-256", "lego", took);

        // SCEP with the challenge password, RSA-2048.
        {
            let site = Site::with_camera(CONFIG, &scep.ca_pem);
            let settings = json!({"protocol": "scep", "url": scep.url, "challenge": CHALLENGE,
                "subject": {"CN": "testcam"}, "key_type": "rsa-2048"});
            let (took, _) = camera_enrolls(&site, settings);
            sample("SCEP, RSA-2048", "camera", took);
        }
        let client = TempDir::new("scepclient");
        let took = reference(
            Command::new("scepclient")
                .args(["-server-url", &scep.url, "-challenge", CHALLENGE, "-cn", "testcam", "-keySize", "2048"])
                .arg("-private-key")
                .arg(client.path().join("key.pem"))
                .arg("-certificate")
                .arg(client.path().join("cert.pem")),
        );
        assert!(client.path().join("cert.pem").exists(), "scepclient wrote no certificate");
        sample("SCEP, RSA-2048", "scepclient", took);
    }
}
