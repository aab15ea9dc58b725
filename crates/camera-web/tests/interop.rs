//! The two-tier CA's security promise, proved with every real client: a stolen camera cannot impersonate
//! public sites, because its CA is name-constrained to private addresses and `.local`/`.home.arpa`.
//!
//! In a private network namespace (camera-testns: cam0 = 10.77.0.2 + fd77::2), each client trusts
//! only the camera's `cacert.crt` and must
//! - accept the camera's served chain over IPv4, IPv6 and by name (`testcam.local`);
//! - refuse a certificate for a public DNS name (`www.example.com`) and one for a public IP
//!   (`8.8.8.8`), signed with the key the camera stores and sent with the camera's served chain by
//!   a rogue `openssl s_server` on the test address (rogue-DNS, rogue-IP);
//! - accept the same two names from an unconstrained CA it trusts the same way (ctl-DNS, ctl-IP):
//!   the control that shows the harness can see an acceptance, so a broken harness cannot pass the
//!   rogue cells.
//!
//! Clients: OpenSSL, GnuTLS, Go, Java (default PKIX TrustManager + HTTPS endpoint identification),
//! NSS (vfychain), Python's ssl, curl, headless Chromium, mbedTLS 2.28. The programs are in
//! `tests/interop/`; Go, Java and C are built once per test into its temporary dir.
//!
//! The matrix is printed (`--nocapture`) and every cell is checked against [`two_tier_expectations`].

#![allow(clippy::unwrap_used)]

mod common;
mod interop_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use camera_test_support::netns::{enter_private_netns, NetnsSetup};
use common::{camera_web_command, TempDir};
use interop_support::clients::{Client, Toolbox};
use interop_support::matrix::{self, observe_pki, Column, Expect, SServer, Target, CAM_IPV4, CAM_IPV6, CAM_NAME};
use interop_support::pki::two_tier;

/// What every client must do with a two-tier camera CA.
fn two_tier_expectations(client: Client, column: Column) -> Expect {
    // How each client says "this CA may not sign for this name".
    let constraint_refusal: &'static [&'static str] = match client {
        Client::OpenSsl | Client::Python | Client::Curl => &["permitted subtree violation"],
        Client::GnuTls => &["The certificate chain violates the signer's constraints"],
        Client::Go => &["is not permitted by any constraint"],
        Client::Java => &["CertPathValidatorException: name constraints check failed"],
        Client::Nss => &["ERROR -8080: The Certifying Authority for this certificate is not permitted to issue"],
        Client::Chromium => &["(certificate verifier: Not permitted by name constraints)"],
        Client::MbedTls => return mbedtls_expectations(column),
    };
    match (client, column) {
        (_, Column::RogueDns | Column::RogueIp) => Expect::Refuse(constraint_refusal),
        _ => Expect::Accept,
    }
}

/// Measured with Debian's mbedTLS 2.28: it does not parse a certificate carrying a critical
/// nameConstraints extension (to mbedTLS an unsupported critical extension; upstream issue
/// Mbed-TLS/mbedtls#8759), so the camera's `cacert.crt` cannot be loaded and nothing under it
/// verifies; and it does not match a name against IP-address subjectAltNames, so no certificate
/// verifies for an IP address, whatever its CA. The unconstrained control for a DNS name is
/// accepted: a site with mbedTLS clients gives the camera a certificate from its own CA and reaches
/// it by DNS name (README). If this changes (a newer mbedTLS), update README's note and this.
fn mbedtls_expectations(column: Column) -> Expect {
    match column {
        Column::ControlDns => Expect::Accept,
        Column::ControlIp => Expect::Refuse(&["The certificate Common Name (CN) does not match with the expected CN"]),
        _ => Expect::Refuse(&["parsing the CA file: -0x2562 X509 - The extension tag or value is invalid"]),
    }
}

/// The HTTPS port of the camera (or its stand-in) in the namespace.
const CAMERA_PORT: u16 = 8443;

/// Runs the matrix on `target`, prints it, and fails listing every cell that is not as expected.
fn check_matrix(work: &TempDir, toolbox: &Toolbox, target: &Target) {
    let matrix = matrix::run(work.path(), toolbox, target, two_tier_expectations);
    println!("{}", matrix.render());
    let mismatches = matrix.mismatches();
    assert!(mismatches.is_empty(), "interop cells not as expected:\n{}", mismatches.join("\n"));
}

/// The harness against a two-tier camera PKI made to the camera's spec with rcgen, served by
/// `openssl s_server` standing in for the camera (leaf for 10.77.0.2, fd77::2 and testcam.local,
/// sent with the issuing CA).
#[test]
fn two_tier_ca_constraints_hold_in_every_client() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let started = std::time::Instant::now();
    let work = TempDir::new("interop-fixture");
    let toolbox = Toolbox::build(work.path());
    let fixture = two_tier("Interop fixture camera", Some(interop_support::pki::camera_name_constraints()));
    let leaf = fixture.issue_server_cert(&[CAM_IPV4, CAM_IPV6, CAM_NAME], "Interop fixture camera");
    let _camera = SServer::start(work.path(), "camera", CAMERA_PORT, &leaf);
    let pki = observe_pki(work.path(), CAMERA_PORT, fixture.trust_anchor_pem.clone(), fixture.signing_key_pem.clone());
    assert_eq!(pki.served_chain_pem, fixture.served_chain_pem);
    let target = Target {
        description: "two-tier fixture (rcgen root + issuing CA, openssl s_server standing in for the camera)".into(),
        port: CAMERA_PORT,
        pki,
    };
    check_matrix(&work, &toolbox, &target);
    println!("interop: whole test {} ms", started.elapsed().as_millis());
}

/// The file in the camera's state dir holding the key that signs its server certificates (the
/// issuing CA's key, before its certificate and the root's).
const SIGNING_KEY_FILE: &str = "state/issuing-ca.pem";

/// A running camera-web on every address of the namespace; killed on drop.
struct RealCamera {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for RealCamera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RealCamera {
    fn start(dir: &std::path::Path) -> RealCamera {
        std::fs::write(dir.join("config.json"), r#"{"camera": {"hostname": "testcam"}}"#).unwrap();
        let mut child = camera_web_command(dir)
            .args(["--https", &format!("[::]:{CAMERA_PORT}"), "--http", "[::]:8080"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("camera-web starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.starts_with("camera-web: listening on") {
                    let _ = tx.send(());
                }
                log2.lock().unwrap().push(line);
            }
        });
        let camera = RealCamera { child, log };
        assert!(rx.recv_timeout(Duration::from_secs(30)).is_ok(), "camera-web did not start: {:?}", camera.log);
        camera
    }
}

/// The same matrix against the real camera-web: its `cacert.crt` (fetched over HTTP, as users
/// first do), the chain it serves, and the signing key from its state dir.
/// With a one-tier CA (a self-signed root with the constraints, no intermediate: what this
/// camera made before two tiers), Java's PKIX validator ignores the constraints of the trust anchor
/// and accepts both rogue certificates; this test failed that way until the two-tier CA.
#[test]
fn real_camera_ca_constraints_hold_in_every_client() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let started = std::time::Instant::now();
    let work = TempDir::new("interop-camera");
    let cam_dir = TempDir::new("interop-camera-state");
    let (toolbox, camera) = std::thread::scope(|s| {
        let build = s.spawn(|| Toolbox::build(work.path()));
        let camera = RealCamera::start(cam_dir.path());
        (build.join().unwrap(), camera)
    });
    let cacert = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", &format!("http://{CAM_IPV4}:8080/cacert.crt")])
        .output()
        .unwrap();
    assert!(cacert.status.success(), "GET /cacert.crt: {}", String::from_utf8_lossy(&cacert.stderr));
    let bundle = std::fs::read_to_string(cam_dir.path().join(SIGNING_KEY_FILE)).unwrap();
    let end = "-----END PRIVATE KEY-----\n";
    let signing_key = bundle[..bundle.find(end).expect("the issuing key comes first") + end.len()].to_owned();
    let pki = observe_pki(work.path(), CAMERA_PORT, String::from_utf8(cacert.stdout).unwrap(), signing_key);
    let target = Target { description: "the real camera-web (hostname testcam)".into(), port: CAMERA_PORT, pki };
    check_matrix(&work, &toolbox, &target);
    drop(camera);
    println!("interop: whole test {} ms", started.elapsed().as_millis());
}
