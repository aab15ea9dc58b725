//! Changes that race: whatever order concurrent uploads and restores finish in, the certificate on
//! disk (what a restart serves) is the one being served.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::*;

/// SHA-256 (as `AB:CD:...`) of the first certificate in a PEM file, if the file exists.
fn leaf_sha256_of(path: &Path) -> Option<String> {
    let pem = std::fs::read(path).ok()?;
    let out = openssl_stdin(&["x509", "-noout", "-fingerprint", "-sha256"], &pem);
    Some(out.trim().split('=').nth(1).unwrap().to_owned())
}

/// Uploads and restores are serialised: an upload whose write lands just before a restore's
/// delete must never be served while nothing is on disk (or the other way round).
#[test]
fn racing_uploads_and_restores_leave_disk_and_memory_the_same() {
    let camera = Camera::start();
    camera.setup();
    let work = TempDir::new("race-work");
    installer_ca(work.path());
    let mut forms = Vec::new();
    for name in ["a", "b"] {
        openssl(
            work.path(),
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-subj",
                &format!("/CN=cam-{name}"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        installer_sign(work.path(), &format!("{name}.csr"), "IP:127.0.0.1", &format!("{name}.crt"));
        forms.push((
            format!("certificate=@{}", work.path().join(format!("{name}.crt")).display()),
            format!("key=@{}", work.path().join(format!("{name}.key")).display()),
        ));
    }
    // Either the camera's own certificate or an uploaded one is served: trust both issuers.
    let both = work.path().join("both-cas.pem");
    let mut pem = std::fs::read(camera.ca_path()).unwrap();
    pem.extend(std::fs::read(work.path().join("rootCA.crt")).unwrap());
    std::fs::write(&both, pem).unwrap();
    let curl = |args: &[&str]| curl_with_ca(&both, args);
    let device = camera.served_leaf_sha256();
    let bundle = camera.dir.path().join("state/uploaded.pem");
    for round in 0..12 {
        std::thread::scope(|s| {
            for (cert, key) in &forms {
                s.spawn(|| {
                    curl(&[
                        "-u",
                        &camera.admin(),
                        "-X",
                        "PUT",
                        &camera.url("/api/v1/certificate"),
                        "-F",
                        cert,
                        "-F",
                        key,
                    ]);
                });
            }
            for _ in 0..2 {
                s.spawn(|| {
                    curl(&["-u", &camera.admin(), "-X", "DELETE", &camera.url("/api/v1/certificate")]);
                });
            }
        });
        let on_disk = leaf_sha256_of(&bundle).unwrap_or_else(|| device.clone());
        let status: serde_json::Value = serde_json::from_slice(&curl(&[&camera.url("/api/v1/certificate")]).1).unwrap();
        assert_eq!(
            status["certificate"]["sha256"],
            on_disk.as_str(),
            "round {round}: the status and the disk disagree"
        );
        assert_eq!(camera.served_leaf_sha256(), on_disk, "round {round}: the served certificate and the disk disagree");
    }
}
