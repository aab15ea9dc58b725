//! Installers' real workflows (the openssl commands of the camera's manual and the variants installers produce),
//! the CSR round trip, restore, persistence, and a table of broken uploads.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

fn upload(cam: &Camera, fields: &[&str]) -> (u16, serde_json::Value) {
    let mut args = vec!["-u", Box::leak(cam.admin().into_boxed_str()) as &str, "-X", "PUT"];
    for f in fields {
        args.push("-F");
        args.push(f);
    }
    let url = cam.url("/api/v1/certificate");
    args.push(&url);
    cam.curl_json(&args)
}

/// The manual step by step: installer CA, server key, CSR with the camera's IP, signed with SAN.
fn maker_instructions_certificate(dir: &std::path::Path) {
    installer_ca(dir);
    openssl(dir, &["genrsa", "-out", "server.key", "2048"]);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/C=CN/ST=GD/L=SZ/O=SNL/OU=TECH/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
    );
    installer_sign(dir, "server.csr", "IP:127.0.0.1,DNS:localhost", "server.crt");
}

fn verify_served_with(cam: &Camera, ca: &std::path::Path) {
    let out = std::process::Command::new("curl")
        .arg("--cacert")
        .arg(ca)
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", &cam.url("/api/v1/certificate")])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "curl trusting {}: {}",
        ca.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed server certificate that expired in 2021 (OpenSSL 3.0's CLI cannot backdate).
fn expired_certificate(dir: &std::path::Path) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join("old.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("old.key"), key.serialize_pem()).unwrap();
}

mod installer_workflows {
    use super::*;

    #[test]
    fn maker_instructions_certificate_and_key_are_served_and_survive_a_restart_then_restore() {
        let cam = Camera::start();
        cam.setup();
        let work = TempDir::new("seed002");
        maker_instructions_certificate(work.path());
        let device_sha = cam.served_leaf_sha256();
        let cert = format!("certificate=@{}", work.path().join("server.crt").display());
        let key = format!("key=@{}", work.path().join("server.key").display());
        let (status, body) = upload(&cam, &[&cert, &key]);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["source"], "uploaded");
        // New handshakes get it at once, and it chains to the installer's CA.
        assert_ne!(cam.served_leaf_sha256(), device_sha);
        verify_served_with(&cam, &work.path().join("rootCA.crt"));
        assert!(cam.log_text().contains("serving the uploaded certificate"), "{}", cam.log_text());
        let uploaded_sha = cam.served_leaf_sha256();
        // Restart: still served.
        let ca_before = std::fs::read(cam.ca_path()).unwrap();
        let dir = cam.stop();
        let cam = Camera::start_in(dir, r#"{"camera": {"loopback": true}}"#);
        assert_eq!(cam.served_leaf_sha256(), uploaded_sha);
        assert_eq!(std::fs::read(cam.ca_path()).unwrap(), ca_before, "the camera CA never changes");
        // Restore (the installer's CA is what verifies the camera until then).
        let (status, body) = curl_with_ca(
            &work.path().join("rootCA.crt"),
            &["-u", &cam.admin(), "-X", "DELETE", &cam.url("/api/v1/certificate")],
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["source"], "device");
        verify_served_with(&cam, &cam.ca_path());
        assert!(!cam.dir.path().join("state/uploaded.pem").exists());
    }

    #[test]
    fn pkcs12_with_an_intermediate_is_served_with_the_whole_chain() {
        let cam = Camera::start();
        cam.setup();
        let w = TempDir::new("p12");
        let d = w.path();
        installer_ca(d);
        openssl(
            d,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "int.key",
                "-out",
                "int.csr",
                "-subj",
                "/CN=Installer Intermediate",
            ],
        );
        std::fs::write(
            d.join("int.cnf"),
            "basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n",
        )
        .unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "int.csr",
                "-CA",
                "rootCA.crt",
                "-CAkey",
                "rootCA.key",
                "-CAcreateserial",
                "-out",
                "int.crt",
                "-days",
                "365",
                "-extfile",
                "int.cnf",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-new",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "leaf.key",
                "-out",
                "leaf.csr",
                "-subj",
                "/CN=camera",
            ],
        );
        std::fs::write(d.join("leaf.cnf"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n").unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "int.crt",
                "-CAkey",
                "int.key",
                "-CAcreateserial",
                "-out",
                "leaf.crt",
                "-days",
                "300",
                "-extfile",
                "leaf.cnf",
            ],
        );
        openssl(
            d,
            &[
                "pkcs12",
                "-export",
                "-inkey",
                "leaf.key",
                "-in",
                "leaf.crt",
                "-certfile",
                "int.crt",
                "-passout",
                "pass:p12 secret",
                "-out",
                "camera.p12",
            ],
        );
        let file = format!("certificate=@{}", d.join("camera.p12").display());
        let (status, body) = upload(&cam, &[&file, "passphrase=wrong"]);
        assert_eq!(status, 422, "{body}");
        let (status, body) = upload(&cam, &[&file, "passphrase=p12 secret"]);
        assert_eq!(status, 200, "{body}");
        let chain = cam.served_chain();
        assert_eq!(chain.len(), 2, "leaf and intermediate are served");
        verify_served_with(&cam, &d.join("rootCA.crt"));

        // The same file as a raw body, passphrase in X-Passphrase (for scripts).
        let (status, _) =
            curl_with_ca(&d.join("rootCA.crt"), &["-u", &cam.admin(), "-X", "DELETE", &cam.url("/api/v1/certificate")]);
        assert_eq!(status, 200);
        let body = format!("@{}", d.join("camera.p12").display());
        let (status, reply) = cam.curl(&[
            "-u",
            &cam.admin(),
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/x-pkcs12",
            "-H",
            "X-Passphrase: p12 secret",
            "--data-binary",
            &body,
            &cam.url("/api/v1/certificate"),
        ]);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
        verify_served_with(&cam, &d.join("rootCA.crt"));
    }

    #[test]
    fn raw_pem_body_with_key_and_chain_works_for_scripts() {
        let cam = Camera::start();
        cam.setup();
        let w = TempDir::new("raw");
        maker_instructions_certificate(w.path());
        let mut bundle = std::fs::read(w.path().join("server.key")).unwrap();
        bundle.extend(std::fs::read(w.path().join("server.crt")).unwrap());
        std::fs::write(w.path().join("cert.pem"), bundle).unwrap();
        let body = format!("@{}", w.path().join("cert.pem").display());
        let (status, reply) = cam.curl_json(&[
            "-u",
            &cam.admin(),
            "-X",
            "PUT",
            "--data-binary",
            &body,
            "-H",
            "Content-Type: application/x-pem-file",
            &cam.url("/api/v1/certificate"),
        ]);
        assert_eq!(status, 200, "{reply}");
        verify_served_with(&cam, &w.path().join("rootCA.crt"));
    }
}

mod certificate_request {
    use super::*;

    #[test]
    fn csr_made_on_the_camera_signed_by_the_installer_pairs_with_the_kept_key() {
        let cam = Camera::start();
        cam.setup();
        let request = r#"{"subject":{"C":"CN","ST":"GD","L":"SZ","O":"SNL","OU":"TECH","CN":"MyCamera"},"subject_alt_names":["127.0.0.1","cam.local"],"key_type":"rsa-2048"}"#;
        let (status, pem) = cam.curl(&[
            "-u",
            &cam.admin(),
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            request,
            &cam.url("/api/v1/csr"),
        ]);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&pem));
        let (status, downloaded) = cam.curl(&[&cam.url("/api/v1/csr")]);
        assert_eq!(status, 200);
        assert_eq!(downloaded, pem);
        let w = TempDir::new("csr");
        std::fs::write(w.path().join("certreq.pem"), &downloaded).unwrap();
        let text = openssl(w.path(), &["req", "-in", "certreq.pem", "-noout", "-text", "-verify"]);
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(
            text.contains("CN = MyCamera") && text.contains("IP Address:127.0.0.1") && text.contains("DNS:cam.local"),
            "{text}"
        );
        installer_ca(w.path());
        installer_sign(w.path(), "certreq.pem", "IP:127.0.0.1,DNS:cam.local", "signed.crt");
        let (_, info) = cam.curl_json(&[&cam.url("/api/v1/certificate")]);
        assert_eq!(info["pending_csr"]["key_type"], "RSA 2048", "{info}");
        let cert = format!("certificate=@{}", w.path().join("signed.crt").display());
        let (status, body) = upload(&cam, &[&cert]);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["key_from_pending_csr"], true);
        verify_served_with(&cam, &w.path().join("rootCA.crt"));
        assert!(!String::from_utf8_lossy(&pem).contains("PRIVATE KEY"));
    }

    #[test]
    fn a_certificate_from_another_cameras_request_is_refused_with_an_explanation() {
        let cam = Camera::start();
        cam.setup();
        let (status, _) = cam.curl(&[
            "-u",
            &cam.admin(),
            "-X",
            "POST",
            "--json",
            r#"{"subject_alt_names":["127.0.0.1"]}"#,
            &cam.url("/api/v1/csr"),
        ]);
        assert_eq!(status, 200);
        let w = TempDir::new("other");
        maker_instructions_certificate(w.path()); // a certificate for some other key
        let sha_before = cam.served_leaf_sha256();
        let cert = format!("certificate=@{}", w.path().join("server.crt").display());
        let (status, body) = upload(&cam, &[&cert]);
        assert_eq!(status, 422, "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("camera") && message.contains("request"), "{message}");
        assert_eq!(cam.served_leaf_sha256(), sha_before);
    }
}

mod bad_uploads {
    use super::*;

    #[test]
    fn each_broken_upload_gets_a_4xx_message_and_the_served_certificate_stays() {
        let cam = Camera::start();
        cam.setup();
        let w = TempDir::new("bad");
        let d = w.path();
        maker_instructions_certificate(d);
        openssl(d, &["genrsa", "-out", "other.key", "2048"]);
        openssl(d, &["genpkey", "-algorithm", "ed25519", "-out", "ed.key"]);
        openssl_self_signed(
            d,
            SelfSignedKey::Existing("ed.key"),
            "ed.crt",
            "/CN=ed",
            30,
            &["subjectAltName=IP:127.0.0.1"],
        );
        expired_certificate(d);
        std::fs::write(d.join("garbage.pem"), b"this is not a certificate\n").unwrap();
        let cert = std::fs::read_to_string(d.join("server.crt")).unwrap();
        std::fs::write(d.join("truncated.crt"), &cert[..cert.len() / 2]).unwrap();
        std::fs::write(d.join("huge.pem"), vec![b'A'; 70 * 1024]).unwrap();
        openssl(
            d,
            &[
                "pkcs8",
                "-topk8",
                "-in",
                "server.key",
                "-out",
                "enc.key",
                "-passout",
                "pass:secret",
                "-v2",
                "aes-256-cbc",
            ],
        );
        let p = |name: &str| d.join(name).display().to_string();
        let cases: Vec<(&str, Vec<String>, u16)> = vec![
            ("wrong key", vec![format!("certificate=@{}", p("server.crt")), format!("key=@{}", p("other.key"))], 422),
            ("garbage", vec![format!("certificate=@{}", p("garbage.pem")), format!("key=@{}", p("server.key"))], 422),
            (
                "truncated",
                vec![format!("certificate=@{}", p("truncated.crt")), format!("key=@{}", p("server.key"))],
                422,
            ),
            ("oversized", vec![format!("certificate=@{}", p("huge.pem")), format!("key=@{}", p("server.key"))], 413),
            (
                "missing passphrase",
                vec![format!("certificate=@{}", p("server.crt")), format!("key=@{}", p("enc.key"))],
                422,
            ),
            (
                "wrong passphrase",
                vec![
                    format!("certificate=@{}", p("server.crt")),
                    format!("key=@{}", p("enc.key")),
                    "passphrase=nope".into(),
                ],
                422,
            ),
            ("expired", vec![format!("certificate=@{}", p("old.crt")), format!("key=@{}", p("old.key"))], 422),
            (
                "CA certificate",
                vec![format!("certificate=@{}", p("rootCA.crt")), format!("key=@{}", p("rootCA.key"))],
                422,
            ),
            ("Ed25519 key", vec![format!("certificate=@{}", p("ed.crt")), format!("key=@{}", p("ed.key"))], 422),
            ("no certificate and no pending request", vec![format!("certificate=@{}", p("server.crt"))], 422),
            ("unknown field", vec![format!("cert=@{}", p("server.crt"))], 400),
        ];
        let sha_before = cam.served_leaf_sha256();
        let mut seen = std::collections::HashSet::new();
        for (what, fields, expected) in &cases {
            let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
            let (status, body) = upload(&cam, &fields);
            assert_eq!(status, *expected, "{what}: {body}");
            let message = body["message"].as_str().unwrap_or_default();
            assert!(
                message.len() > 20 && message.ends_with('.') || message.ends_with('!'),
                "{what}: a sentence, got {message:?}"
            );
            assert!(!message.contains("PRIVATE KEY") && !message.contains("secret"), "{what}: {message}");
            seen.insert(body["error"].as_str().unwrap().to_owned());
            assert_eq!(cam.served_leaf_sha256(), sha_before, "{what}: the served certificate stays");
        }
        assert!(seen.len() >= 9, "each case has its own error code: {seen:?}");
        let (_, info) = cam.curl_json(&[&cam.url("/api/v1/certificate")]);
        assert_eq!(info["source"], "device");
        assert!(!d.join("state/uploaded.pem").exists());
    }
    // A certificate for another address is accepted with a warning: tests/netns.rs, where the
    // camera's addresses are known.
}
