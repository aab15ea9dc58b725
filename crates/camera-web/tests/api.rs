//! The JSON API as installers' scripts use it, with curl trusting only `cacert.crt`.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

mod export_and_view {
    use super::*;

    #[test]
    fn cacert_in_pem_and_der_needs_no_login_and_matches_the_state_dir() {
        let cam = Camera::start();
        let (status, pem) = cam.curl(&[&cam.url("/cacert.crt")]);
        assert_eq!(status, 200);
        assert_eq!(pem, std::fs::read(cam.ca_path()).unwrap());
        let (status, der) = cam.curl(&[&cam.url("/cacert.crt?format=der")]);
        assert_eq!(status, 200);
        let pem_from_der = openssl_stdin(&["x509", "-inform", "DER"], &der);
        assert_eq!(pem_from_der.trim(), String::from_utf8(pem).unwrap().trim());
        // Plain HTTP serves it too (fetched before anything is trusted), and redirects the rest.
        let out = std::process::Command::new("curl")
            .args(["-sS", "-D", "-", "-o", "/dev/null", &format!("http://{}/", cam.http)])
            .output()
            .unwrap();
        let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
        assert!(head.starts_with("http/1.1 301"), "{head}");
        assert!(
            head.contains(&format!("location: https://127.0.0.1:{}/", cam.https.rsplit(':').next().unwrap())),
            "{head}"
        );
        let out = std::process::Command::new("curl")
            .args(["-sS", &format!("http://{}/cacert.crt", cam.http)])
            .output()
            .unwrap();
        assert_eq!(out.stdout, std::fs::read(cam.ca_path()).unwrap());
    }

    #[test]
    fn certificate_json_describes_what_is_served() {
        let cam = Camera::start();
        let (status, info) = cam.curl_json(&[&cam.url("/api/v1/certificate")]);
        assert_eq!(status, 200);
        assert_eq!(info["source"], "device");
        let cert = &info["certificate"];
        for key in ["subject", "issuer", "not_before", "not_after", "sha256", "public_key_sha256"] {
            assert!(cert[key].as_str().is_some_and(|s| !s.is_empty()), "{key}: {info}");
        }
        let sans: Vec<&str> =
            cert["subject_alt_names"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert!(sans.contains(&"127.0.0.1") && sans.contains(&"localhost"), "{sans:?}");
        assert_eq!(
            cert["sha256"].as_str().unwrap(),
            cam.served_leaf_sha256(),
            "the JSON describes the served certificate"
        );
        assert!(info["ca"]["sha256"].as_str().unwrap().len() == 95);
        assert!(cam.log_text().contains("serving the device-minted certificate"), "{}", cam.log_text());
    }

    #[test]
    fn security_headers_are_on_every_https_response() {
        let cam = Camera::start();
        let out = std::process::Command::new("curl")
            .arg("--cacert")
            .arg(cam.ca_path())
            .args(["-sS", "-D", "-", "-o", "/dev/null", &cam.url("/")])
            .output()
            .unwrap();
        let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
        for h in [
            "strict-transport-security:",
            "content-security-policy: default-src 'self'",
            "x-frame-options: deny",
            "x-content-type-options: nosniff",
            "cache-control: no-store",
        ] {
            assert!(head.contains(h), "missing {h} in {head}");
        }
    }

    #[test]
    fn the_ui_is_sent_gzip_compressed_and_refused_with_a_sentence_to_clients_that_refuse_gzip() {
        let cam = Camera::start();
        let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for (path, file) in [("/", "assets/index.html"), ("/app.js", "assets/app.js"), ("/app.css", "assets/app.css")] {
            let source = std::fs::read(crate_dir.join(file)).unwrap();
            let fetch = |extra: &[&str]| {
                let out = std::process::Command::new("curl")
                    .arg("--cacert")
                    .arg(cam.ca_path())
                    .args(["-sS", "-D", "/dev/stderr", &cam.url(path)])
                    .args(extra)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                (String::from_utf8_lossy(&out.stderr).to_lowercase(), out.stdout)
            };
            // What a browser sends: gzip on the wire (less than half the file), the file decoded.
            let (head, wire) = fetch(&["-H", "Accept-Encoding: gzip, deflate, br"]);
            assert!(head.starts_with("http/1.1 200"), "{head}");
            assert!(head.contains("content-encoding: gzip") && head.contains("vary: accept-encoding"), "{head}");
            assert!(wire.len() * 2 < source.len(), "{path}: {} bytes on the wire for {}", wire.len(), source.len());
            let (head, _) = fetch(&["-H", "Accept-Encoding: br", "-H", "Accept-Encoding: gzip"]);
            assert!(head.contains("content-encoding: gzip"), "two header lines are one list: {head}");
            let (_, decoded) = fetch(&["--compressed"]);
            assert_eq!(decoded, source, "{path} decoded by curl");
            // A client that refuses gzip is told what to do instead of getting bytes it cannot read.
            let (head, body) = fetch(&["-H", "Accept-Encoding: identity"]);
            assert!(head.starts_with("http/1.1 406"), "{head}");
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["error"], "gzip_required");
            assert!(body["message"].as_str().unwrap().contains("curl --compressed"), "{body}");
        }
    }
}

mod authentication {
    use super::*;

    #[test]
    fn changes_need_a_password_that_is_set_once() {
        let cam = Camera::start();
        let (status, body) = cam.curl_json(&["-X", "DELETE", &cam.url("/api/v1/certificate")]);
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"], "setup_required");
        let (status, body) =
            cam.curl_json(&["-X", "POST", &cam.url("/api/v1/setup"), "--json", r#"{"password":"short"}"#]);
        assert_eq!(status, 400, "{body}");
        assert!(body["message"].as_str().unwrap().contains("at least 8"));
        cam.setup();
        let (status, body) =
            cam.curl_json(&["-X", "POST", &cam.url("/api/v1/setup"), "--json", r#"{"password":"another password"}"#]);
        assert_eq!(status, 409, "a second setup is refused: {body}");
        let (status, body) = cam.curl_json(&["-X", "DELETE", &cam.url("/api/v1/certificate")]);
        assert_eq!(status, 401, "{body}");
        let (status, _) =
            cam.curl_json(&["-u", "admin:wrong password", "-X", "DELETE", &cam.url("/api/v1/certificate")]);
        assert_eq!(status, 401);
        let (status, _) = cam.curl_json(&["-u", &cam.admin(), "-X", "DELETE", &cam.url("/api/v1/certificate")]);
        assert_eq!(status, 200);
        let secret_on_disk = std::fs::read_to_string(cam.dir.path().join("state/admin-password.json")).unwrap();
        assert!(!secret_on_disk.contains(PASSWORD), "the password is stored hashed");
    }

    #[test]
    fn session_cookie_needs_its_csrf_token() {
        let cam = Camera::start();
        cam.setup();
        let jar = cam.dir.path().join("cookies");
        let jar = jar.to_str().unwrap();
        let (status, body) = cam.curl_json(&[
            "-c",
            jar,
            "-X",
            "POST",
            &cam.url("/api/v1/login"),
            "--json",
            &format!(r#"{{"password":"{PASSWORD}"}}"#),
        ]);
        assert_eq!(status, 200);
        let csrf = body["csrf_token"].as_str().unwrap().to_owned();
        let cookies = std::fs::read_to_string(jar).unwrap();
        assert!(cookies.contains("#HttpOnly_") && cookies.contains("camera_session"), "{cookies}");
        let (status, body) = cam.curl_json(&["-b", jar, "-X", "DELETE", &cam.url("/api/v1/certificate")]);
        assert_eq!((status, body["error"].as_str()), (403, Some("csrf")));
        let (status, _) = cam.curl_json(&[
            "-b",
            jar,
            "-H",
            &format!("X-CSRF-Token: {csrf}"),
            "-X",
            "DELETE",
            &cam.url("/api/v1/certificate"),
        ]);
        assert_eq!(status, 200);
        let (_, session) = cam.curl_json(&["-b", jar, &cam.url("/api/v1/session")]);
        assert_eq!(session["logged_in"], true);
        cam.curl_json(&["-b", jar, "-c", jar, "-X", "POST", &cam.url("/api/v1/logout")]);
        let (status, _) = cam.curl_json(&[
            "-b",
            jar,
            "-H",
            &format!("X-CSRF-Token: {csrf}"),
            "-X",
            "DELETE",
            &cam.url("/api/v1/certificate"),
        ]);
        assert_eq!(status, 401);
    }

    #[test]
    fn another_sites_page_cannot_set_the_password_or_make_changes() {
        let cam = Camera::start();
        // A form or no-cors fetch from another site cannot send application/json...
        let (status, body) = cam.curl_json(&[
            "-X",
            "POST",
            &cam.url("/api/v1/setup"),
            "-H",
            "Content-Type: text/plain",
            "-d",
            r#"{"password":"attacker password"}"#,
        ]);
        assert_eq!((status, body["error"].as_str()), (415, Some("json_required")), "{body}");
        // ...and a browser names the site a request comes from.
        let (status, body) = cam.curl_json(&[
            "-X",
            "POST",
            &cam.url("/api/v1/setup"),
            "-H",
            "Sec-Fetch-Site: cross-site",
            "--json",
            r#"{"password":"attacker password"}"#,
        ]);
        assert_eq!((status, body["error"].as_str()), (403, Some("cross_site")), "{body}");
        let (status, _) = cam.curl_json(&[
            "-X",
            "POST",
            &cam.url("/api/v1/setup"),
            "-H",
            "Origin: https://evil.example",
            "--json",
            r#"{"password":"attacker password"}"#,
        ]);
        assert_eq!(status, 403);
        let (_, session) = cam.curl_json(&[&cam.url("/api/v1/session")]);
        assert_eq!(session["password_set"], false, "nothing was set");
        // The camera's own page (same origin) works.
        let origin = format!("Origin: https://{}", cam.https);
        let (status, body) = cam.curl_json(&[
            "-X",
            "POST",
            &cam.url("/api/v1/setup"),
            "-H",
            &origin,
            "-H",
            "Sec-Fetch-Site: same-origin",
            "--json",
            &format!(r#"{{"password":"{PASSWORD}"}}"#),
        ]);
        assert_eq!(status, 200, "{body}");
    }

    #[test]
    fn failed_logins_are_rate_limited() {
        let cam = Camera::start();
        cam.setup();
        let mut statuses = Vec::new();
        for _ in 0..7 {
            let (status, _) =
                cam.curl_json(&["-X", "POST", &cam.url("/api/v1/login"), "--json", r#"{"password":"guess guess"}"#]);
            statuses.push(status);
        }
        assert_eq!(&statuses[..5], &[401; 5]);
        assert_eq!(statuses[6], 429, "{statuses:?}");
        let (status, body) = cam.curl_json(&[
            "-X",
            "POST",
            &cam.url("/api/v1/login"),
            "--json",
            &format!(r#"{{"password":"{PASSWORD}"}}"#),
        ]);
        assert_eq!(status, 429, "even the right password waits while blocked: {body}");
        assert!(body["message"].as_str().unwrap().contains("wait"));
    }
}

mod factory_ca {
    use super::*;

    #[test]
    fn a_factory_ca_is_exported_and_signs_and_dropping_it_is_recorded() {
        let dir = TempDir::new("factory");
        let factory = dir.path().join("state/factory");
        std::fs::create_dir_all(&factory).unwrap();
        openssl_self_signed(
            &factory,
            SelfSignedKey::NewP256("ca.key"),
            "ca.crt",
            "/O=Camera Maker/CN=Camera Maker Factory CA 0042",
            3650,
            &["basicConstraints=critical,CA:true,pathlen:0", "keyUsage=critical,keyCertSign,cRLSign"],
        );
        let factory_pem = std::fs::read_to_string(factory.join("ca.crt")).unwrap();
        let cam = Camera::start_in(dir, r#"{"camera": {"loopback": true}}"#);
        let (status, exported) = curl_with_ca(&factory.join("ca.crt"), &[&cam.url("/cacert.crt")]);
        assert_eq!(status, 200);
        assert_eq!(String::from_utf8(exported).unwrap().trim(), factory_pem.trim(), "cacert.crt is the factory CA");
        assert!(served_chain(&cam.https)[1].trim() == factory_pem.trim(), "the chain ends in the factory CA");
        let (_, info) = curl_with_ca(&factory.join("ca.crt"), &[&cam.url("/api/v1/certificate")]);
        let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
        assert!(info["ca"]["replaced"].is_null(), "{info}");
        // A one-tier factory CA: the advice names its maker, not --new-ca (which refuses it).
        assert_eq!(info["ca"]["tiers"], 1, "{info}");
        let advice = info["ca"]["advice"].as_str().unwrap_or_default();
        assert!(advice.contains("camera maker") && !advice.contains("--new-ca"), "{info}");
        assert!(!cam.dir.path().join("state/ca.crt").exists(), "no own CA is made while a factory CA is there");

        // Taking the factory CA away makes the camera use (create) its own: recorded, not silent.
        let dir = cam.stop();
        std::fs::remove_dir_all(dir.path().join("state/factory")).unwrap();
        let cam = Camera::start_in(dir, r#"{"camera": {"loopback": true}}"#);
        let (_, info) = cam.curl_json(&[&cam.url("/api/v1/certificate")]);
        let reason = info["ca"]["replaced"]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("the CA in use changed"), "{info}");
        assert!(cam.log_text().contains("THE CAMERA CA WAS REPLACED"), "{}", cam.log_text());
    }
}

mod one_tier_ca {
    use super::*;

    /// A camera whose CA an earlier version made (one self-signed CA in `ca.crt` + `ca.key`) keeps
    /// it: exported, signing, shown as one tier with the advice to rotate to two tiers.
    #[test]
    fn a_one_tier_camera_keeps_its_ca_and_is_advised_to_rotate() {
        let dir = TempDir::new("onetier");
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        openssl_self_signed(
            &state,
            SelfSignedKey::NewP256("ca.key"),
            "ca.crt",
            "/O=IP Camera/CN=IP Camera Root CA 00000000",
            3650,
            &[
                "basicConstraints=critical,CA:true,pathlen:0",
                "keyUsage=critical,keyCertSign,cRLSign",
                "nameConstraints=critical,permitted;IP:127.0.0.0/255.0.0.0,permitted;DNS:localhost,permitted;DNS:.local",
            ],
        );
        let one_tier = std::fs::read_to_string(state.join("ca.crt")).unwrap();
        let cam = Camera::start_in(dir, r#"{"camera": {"loopback": true}}"#);
        let (status, exported) = curl_with_ca(&cam.ca_path(), &[&cam.url("/cacert.crt")]);
        assert_eq!(status, 200);
        assert_eq!(String::from_utf8(exported).unwrap().trim(), one_tier.trim(), "cacert.crt is the one-tier CA");
        assert_eq!(served_chain(&cam.https)[1].trim(), one_tier.trim(), "the one-tier CA signs");
        assert!(!cam.dir.path().join("state/issuing-ca.pem").exists(), "no second CA was made beside it");
        let (_, info) = curl_with_ca(&cam.ca_path(), &[&cam.url("/api/v1/certificate")]);
        let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
        assert_eq!((info["ca"]["tiers"].as_u64(), info["ca"]["issuing"].is_null()), (Some(1), true), "{info}");
        assert!(info["ca"]["advice"].as_str().unwrap_or_default().contains("cert-provisioner --new-ca"), "{info}");
        assert!(info["ca"]["replaced"].is_null(), "{info}");
    }
}

mod events {
    use super::*;

    /// Who pointed the camera at a CA, and who stopped it, is in the event log with their address
    /// (a rogue CA configured by someone who has the password is exactly what the log is for).
    #[test]
    fn enrollment_changes_are_recorded_with_the_clients_address() {
        let cam = Camera::start();
        cam.setup();
        // Nothing listens on port 9: the attempt fails, which does not matter here.
        let settings = r#"{"protocol": "scep", "url": "http://127.0.0.1:9/scep", "challenge": "one-time"}"#;
        let (status, body) =
            cam.curl_json(&["-u", &cam.admin(), "-X", "PUT", &cam.url("/api/v1/enrollment"), "--json", settings]);
        assert_eq!(status, 200, "{body}");
        let (status, body) = cam.curl_json(&["-u", &cam.admin(), "-X", "DELETE", &cam.url("/api/v1/enrollment")]);
        assert_eq!(status, 200, "{body}");
        let (status, events) = cam.curl_json(&["-u", &cam.admin(), &cam.url("/api/v1/events")]);
        assert_eq!(status, 200, "{events}");
        for kind in ["enrollment_configured", "enrollment_stopped"] {
            let event = events["events"].as_array().unwrap().iter().find(|e| e["kind"] == kind);
            let event = event.unwrap_or_else(|| panic!("no {kind} in {events}"));
            assert_eq!(event["client"], "127.0.0.1", "{event}");
        }
        assert!(!events.to_string().contains("one-time"), "the challenge is never in the log: {events}");
    }
}

/// The `dot1x` role: the same upload, request and delete as the HTTPS certificate, on its own
/// slot, with its own rules; the HTTPS certificate is untouched throughout.
mod dot1x_role {
    use super::*;

    fn admin_json(cam: &Camera, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        cam.curl_json(&["-u", &cam.admin(), "-X", method, &cam.url(path), "--json", body])
    }

    #[test]
    fn a_client_certificate_is_requested_uploaded_and_deleted_beside_the_https_one() {
        let cam = Camera::start();
        cam.setup();
        let served_before = cam.served_leaf_sha256();
        let work = TempDir::new("dot1x-role");
        let d = work.path();

        // Turning 802.1X on needs its certificate first.
        let settings = format!(
            r#"{{"enabled": true, "server_ca_pem": {}, "domain_match": "radius.site.example"}}"#,
            serde_json::to_string(&String::from_utf8(std::fs::read(cam.ca_path()).unwrap()).unwrap()).unwrap()
        );
        let (status, body) = admin_json(&cam, "PUT", "/api/v1/dot1x", &settings);
        assert_eq!((status, body["error"].as_str()), (409, Some("dot1x_needs_certificate")), "{body}");

        // A request with a common name alone, for client authentication; the HTTPS request slot stays empty.
        let (status, csr) = cam.curl(&[
            "-u",
            &cam.admin(),
            "-X",
            "POST",
            &cam.url("/api/v1/dot1x/csr"),
            "--json",
            r#"{"subject": {"CN": "camera-0042"}}"#,
        ]);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&csr));
        let text = openssl_stdin(&["req", "-noout", "-text"], &csr);
        assert!(text.contains("CN = camera-0042") && text.contains("TLS Web Client Authentication"), "{text}");
        assert_eq!(cam.curl(&[&cam.url("/api/v1/csr")]).0, 404, "the HTTPS role has no request");
        assert_eq!(cam.curl(&[&cam.url("/api/v1/dot1x/csr")]), (200, csr.clone()));

        // The site CA signs it; the certificate alone pairs with the key kept on the camera.
        installer_ca(d);
        std::fs::write(d.join("dot1x.csr"), &csr).unwrap();
        installer_sign_for(d, "dot1x.csr", "DNS:camera-0042.site.example", "dot1x.crt", "clientAuth");
        let cert_arg = format!("certificate=@{}", d.join("dot1x.crt").display());
        let (status, body) =
            cam.curl_json(&["-u", &cam.admin(), "-X", "PUT", "-F", &cert_arg, &cam.url("/api/v1/dot1x/certificate")]);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["key_from_pending_csr"], true, "{body}");
        assert!(
            !body["warnings"].as_array().unwrap().iter().any(|w| w["code"].as_str().unwrap().starts_with("name_")),
            "a client certificate's names are not compared with the camera's: {body}"
        );
        let state = cam.dir.path().join("state");
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(state.join("dot1x.pem")).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
        assert!(!state.join("uploaded.pem").exists(), "the HTTPS slot is untouched");
        assert_eq!(cam.served_leaf_sha256(), served_before, "HTTPS still serves the camera's own");
        let (_, status_json) = cam.curl_json(&[&cam.url("/api/v1/certificate")]);
        assert_eq!(status_json["source"], "device", "{status_json}");
        assert!(
            status_json["expiry"].as_array().unwrap().iter().any(|e| e["what"] == "dot1x"),
            "the 802.1X certificate's expiry is watched: {status_json}"
        );
        let (status, view) = cam.curl_json(&["-u", &cam.admin(), &cam.url("/api/v1/dot1x")]);
        assert_eq!(status, 200, "{view}");
        assert!(view["certificate"]["subject"].as_str().unwrap().contains("camera-0042"), "{view}");

        // A server certificate is not one for 802.1X.
        openssl(d, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "srv.key"]);
        openssl(d, &["req", "-new", "-key", "srv.key", "-out", "srv.csr", "-subj", "/CN=server"]);
        installer_sign(d, "srv.csr", "IP:127.0.0.1", "srv.crt");
        let (status, body) = cam.curl_json(&[
            "-u",
            &cam.admin(),
            "-X",
            "PUT",
            "-F",
            &format!("certificate=@{}", d.join("srv.crt").display()),
            "-F",
            &format!("key=@{}", d.join("srv.key").display()),
            &cam.url("/api/v1/dot1x/certificate"),
        ]);
        assert_eq!((status, body["error"].as_str()), (422, Some("not_client_certificate")), "{body}");

        // On, its certificate cannot be deleted; off, it can, and only it.
        let (status, body) = admin_json(&cam, "PUT", "/api/v1/dot1x", &settings);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["supplicant"]["settings"]["enabled"], true, "{body}");
        let (status, body) =
            cam.curl_json(&["-u", &cam.admin(), "-X", "DELETE", &cam.url("/api/v1/dot1x/certificate")]);
        assert_eq!((status, body["error"].as_str()), (409, Some("dot1x_certificate_in_use")), "{body}");
        let off = settings.replace(r#""enabled": true"#, r#""enabled": false"#);
        assert_eq!(admin_json(&cam, "PUT", "/api/v1/dot1x", &off).0, 200);
        let (status, body) =
            cam.curl_json(&["-u", &cam.admin(), "-X", "DELETE", &cam.url("/api/v1/dot1x/certificate")]);
        assert_eq!(status, 200, "{body}");
        assert!(body["certificate"].is_null(), "{body}");
        assert!(!state.join("dot1x.pem").exists());
        assert_eq!(cam.served_leaf_sha256(), served_before);

        let (_, events) = cam.curl_json(&["-u", &cam.admin(), &cam.url("/api/v1/events")]);
        for kind in ["request_created", "dot1x_certificate_changed", "dot1x_configured"] {
            assert!(events["events"].as_array().unwrap().iter().any(|e| e["kind"] == kind), "no {kind}: {events}");
        }
    }

    /// The configuration file's `dot1x` section is adopted once (a later change through the API
    /// survives a restart); a section that cannot be used turns 802.1X off with the reason, and
    /// the camera keeps serving.
    #[test]
    fn the_config_file_section_is_adopted_once_and_a_bad_one_turns_802_1x_off() {
        let ca = TempDir::new("dot1x-config-ca");
        installer_ca(ca.path());
        let ca_pem = String::from_utf8(std::fs::read(ca.join("rootCA.crt")).unwrap()).unwrap();
        use serde_json::json;
        let section = json!({"enabled": false, "interface": "eth7", "server_ca_pem": ca_pem});
        let config = json!({"camera": {"loopback": true}, "dot1x": section}).to_string();
        let cam = Camera::start_with(&config);
        cam.setup();
        let (_, view) = cam.curl_json(&["-u", &cam.admin(), &cam.url("/api/v1/dot1x")]);
        assert_eq!(view["supplicant"]["settings"]["interface"], "eth7", "{view}");
        let changed = json!({"enabled": false, "interface": "eth8", "server_ca_pem": ca_pem}).to_string();
        assert_eq!(admin_json(&cam, "PUT", "/api/v1/dot1x", &changed).0, 200);
        let mut cam = Camera::start_in(cam.stop(), &config);
        let (_, view) = cam.curl_json(&["-u", &cam.admin(), &cam.url("/api/v1/dot1x")]);
        assert_eq!(view["supplicant"]["settings"]["interface"], "eth8", "the installer's change stays: {view}");

        let bad = json!({"camera": {"loopback": true}, "dot1x": {"enabled": true, "interface": "eth8; reboot", "server_ca_pem": ca_pem}})
            .to_string();
        cam = Camera::start_in(cam.stop(), &bad);
        assert!(cam.is_running(), "a bad section never stops the server");
        let (_, events) = cam.curl_json(&["-u", &cam.admin(), &cam.url("/api/v1/events")]);
        let configured = events["events"].as_array().unwrap().iter().find(|e| e["kind"] == "dot1x_configured").cloned();
        let message = configured.map(|e| e["message"].to_string()).unwrap_or_default();
        assert!(message.contains("cannot be used") && message.contains("802.1X is off"), "{events}");
        let (_, view) = cam.curl_json(&["-u", &cam.admin(), &cam.url("/api/v1/dot1x")]);
        assert_ne!(view["supplicant"]["settings"]["enabled"], true, "{view}");
    }
}
