//! Hardening: sslyze against the real server meets Mozilla's "intermediate" profile in
//! Standard mode and "modern" in High-Security mode, with no deviations; no compression, no
//! renegotiation, no legacy versions, no known TLS vulnerability; and the UI's security headers.
//!
//! sslyze (PyPI; `cargo xtask deps` installs it) writes its scan results as JSON but prints its
//! compliance verdict only as console text, so each run is judged twice: `deviations` checks the
//! JSON against the Mozilla profile sslyze ships (the same checks as sslyze's own checker, under
//! the same names), and sslyze's own verdict must agree.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

/// One sslyze run against one server.
struct Scan {
    /// `server_scan_results[0]` of `--json_out`.
    result: Value,
    /// The "COMPLIANCE AGAINST TLS CONFIGURATION" section of the console output.
    verdict: String,
    /// sslyze's exit status: 0 only when the server is compliant.
    compliant: bool,
}

impl Scan {
    fn command(&self, name: &str) -> &Value {
        let attempt = &self.result["scan_result"][name];
        assert_eq!(attempt["status"], "COMPLETED", "sslyze's {name} did not complete: {attempt}");
        &attempt["result"]
    }

    fn version_accepted(&self, field: &str) -> bool {
        self.command(field)["is_tls_version_supported"].as_bool().unwrap()
    }

    fn accepted_suites(&self, field: &str) -> Vec<String> {
        self.command(field)["accepted_cipher_suites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["cipher_suite"]["name"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Runs sslyze on the camera's HTTPS address (an IP, as installers use it, so the certificate is
/// validated for that IP address) with `--mozilla_config=<profile>`, trusting only `ca`.
fn sslyze(cam: &Camera, profile: &str, ca: &Path) -> Scan {
    let json = cam.dir.path().join(format!("sslyze-{profile}.json"));
    let out = Command::new("python3")
        .args(["-m", "sslyze", &format!("--mozilla_config={profile}"), "--certinfo_ca_file"])
        .arg(ca)
        .args(["--http_headers", "--early_data", "--json_out"])
        .arg(&json)
        .arg(&cam.https)
        .output()
        .expect("python3 runs");
    let console = String::from_utf8_lossy(&out.stdout).into_owned();
    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| {
        panic!(
            "sslyze wrote no JSON ({e}); is it installed (`cargo xtask deps` or `python3 -m pip install sslyze`)?\n{console}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut all: Value = serde_json::from_str(&quote_huge_numbers(&text)).unwrap();
    let results = all["server_scan_results"].as_array_mut().unwrap();
    assert_eq!(results.len(), 1, "{text}");
    let result = results.remove(0);
    assert_eq!(
        result["connectivity_status"], "COMPLETED",
        "sslyze could not connect: {}",
        result["connectivity_error_trace"]
    );
    assert_eq!(result["scan_status"], "COMPLETED", "{console}");
    let verdict = console
        .split_once("COMPLIANCE AGAINST TLS CONFIGURATION")
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    assert!(
        verdict.contains(&format!("Mozilla's \"{profile}\" configuration")),
        "sslyze did not check the {profile} profile:\n{console}"
    );
    Scan { result, verdict, compliant: out.status.success() }
}

/// RSA moduli are written as JSON numbers of 600+ digits, beyond what serde_json reads; they
/// become strings (nothing here reads them).
fn quote_huge_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(at) = rest.find(": ") {
        out.push_str(&rest[..at + 2]);
        rest = &rest[at + 2..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 300 {
            out.push('"');
            out.push_str(&rest[..digits]);
            out.push('"');
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

/// Mozilla's profile as sslyze ships and reads it (curve names already in SECG form).
fn mozilla_profile(name: &str) -> Value {
    let script = format!(
        "from sslyze.mozilla_tls_profile.tls_config_checker import MozillaTlsConfiguration, TlsConfigurationEnum\n\
         print(MozillaTlsConfiguration.get(TlsConfigurationEnum('{name}')).model_dump_json())"
    );
    let out = run(Command::new("python3").args(["-c", &script]));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn names(value: &Value) -> BTreeSet<String> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

/// What `have` holds beyond `allowed`.
fn beyond(have: &BTreeSet<String>, allowed: &BTreeSet<String>) -> Vec<String> {
    have.difference(allowed).cloned().collect()
}

/// Seconds since 1970 of an RFC 3339 UTC time as sslyze writes it ("2026-11-23T14:26:39Z").
fn unix_time(text: &str) -> i64 {
    let n = |range: std::ops::Range<usize>| -> i64 { text[range].parse().unwrap() };
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

/// Every way the scan departs from `profile`, named as sslyze's checker names them. The HSTS
/// check, which sslyze leaves disabled, is made here too. Not checked, like sslyze:
/// `ocsp_staple` (a camera's own CA has no OCSP responder) and the *recommended* lifespan.
fn deviations(scan: &Scan, profile: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let set = |key: &str| names(&profile[key]);

    // The certificate.
    let mut key_types = BTreeSet::new();
    let mut signatures = BTreeSet::new();
    for deployment in scan.command("certificate_info")["certificate_deployments"].as_array().unwrap() {
        let leaf = &deployment["received_certificate_chain"][0];
        if deployment["verified_certificate_chain"].is_null() {
            found.push(format!(
                "certificate_path_validation: Certificate path validation failed for {}.",
                leaf["subject"]["rfc4514_string"].as_str().unwrap()
            ));
        }
        let key = &leaf["public_key"];
        match key["algorithm"].as_str().unwrap() {
            "EllipticCurvePublicKey" | "ECPublicKey" => {
                key_types.insert("ecdsa".to_owned());
                let curve = key["ec_curve_name"].as_str().unwrap();
                if !set("certificate_curves").contains(curve) {
                    found.push(format!(
                        "certificate_curves: Certificate curve is {curve}, should be one of {:?}.",
                        set("certificate_curves")
                    ));
                }
            }
            "RSAPublicKey" => {
                key_types.insert("rsa".to_owned());
                let size = key["key_size"].as_u64().unwrap();
                if profile["rsa_key_size"].as_u64().is_some_and(|min| size < min) {
                    found.push(format!(
                        "rsa_key_size: RSA key size is {size}, minimum allowed is {}.",
                        profile["rsa_key_size"]
                    ));
                }
            }
            other => {
                key_types.insert(other.to_owned());
            }
        }
        signatures.insert(leaf["signature_algorithm_oid"]["name"].as_str().unwrap().to_owned());
        let days = (unix_time(leaf["not_valid_after"].as_str().unwrap())
            - unix_time(leaf["not_valid_before"].as_str().unwrap()))
        .div_euclid(86_400);
        let max = profile["maximum_certificate_lifespan"].as_i64().unwrap();
        if days > max {
            found.push(format!(
                "maximum_certificate_lifespan: Certificate life span is {days} days, should be less than {max}."
            ));
        }
    }
    if key_types.is_disjoint(&set("certificate_types")) {
        found.push(format!(
            "certificate_types: Deployed certificate types are {key_types:?}, should have at least one of {:?}.",
            set("certificate_types")
        ));
    }
    if signatures.is_disjoint(&set("certificate_signatures")) {
        found.push(format!("certificate_signatures: Deployed certificate signatures are {signatures:?}, should have at least one of {:?}.", set("certificate_signatures")));
    }

    // Versions, cipher suites, key exchange.
    let mut versions = BTreeSet::new();
    let mut suites_13 = BTreeSet::new();
    let mut suites = BTreeSet::new();
    let mut smallest_ecdh = u64::MAX;
    let mut smallest_dh = u64::MAX;
    for (field, version) in [
        ("ssl_2_0_cipher_suites", "SSLv2"),
        ("ssl_3_0_cipher_suites", "SSLv3"),
        ("tls_1_0_cipher_suites", "TLSv1"),
        ("tls_1_1_cipher_suites", "TLSv1.1"),
        ("tls_1_2_cipher_suites", "TLSv1.2"),
        ("tls_1_3_cipher_suites", "TLSv1.3"),
    ] {
        if !scan.version_accepted(field) {
            continue;
        }
        versions.insert(version.to_owned());
        for accepted in scan.command(field)["accepted_cipher_suites"].as_array().unwrap() {
            let name = accepted["cipher_suite"]["name"].as_str().unwrap().to_owned();
            if version == "TLSv1.3" {
                suites_13.insert(name)
            } else {
                suites.insert(name)
            };
            let key = &accepted["ephemeral_key"];
            match key["type_name"].as_str() {
                // OpenSSL reports 253 bits for X25519 (sslyze adds 3 the same way).
                Some("ECDH") => smallest_ecdh = smallest_ecdh.min(key["size"].as_u64().unwrap() + 3),
                Some("DH") => smallest_dh = smallest_dh.min(key["size"].as_u64().unwrap()),
                _ => {}
            }
        }
    }
    let extra = beyond(&versions, &set("tls_versions"));
    if !extra.is_empty() {
        found.push(format!("tls_versions: TLS versions {extra:?} are supported, but should be rejected."));
    }
    let extra = beyond(&suites_13, &set("ciphersuites"));
    if !extra.is_empty() {
        found.push(format!("ciphersuites: TLS 1.3 cipher suites {extra:?} are supported, but should be rejected."));
    }
    let extra = beyond(&suites, &names(&profile["ciphers"]["iana"]));
    if !extra.is_empty() {
        found.push(format!("ciphers: Cipher suites {extra:?} are supported, but should be rejected."));
    }
    if profile["ecdh_param_size"].as_u64().is_some_and(|min| smallest_ecdh < min) {
        found.push(format!(
            "ecdh_param_size: ECDH parameter size is {smallest_ecdh}, should be superior or equal to {}.",
            profile["ecdh_param_size"]
        ));
    }
    if profile["dh_param_size"].as_u64().is_some_and(|min| smallest_dh < min) {
        found.push(format!(
            "dh_param_size: DH parameter size is {smallest_dh}, should be superior or equal to {}.",
            profile["dh_param_size"]
        ));
    }
    let curves = names(&Value::Array(
        scan.command("elliptic_curves")["supported_curves"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c["name"].clone())
            .collect(),
    ));
    let extra = beyond(&curves, &set("tls_curves"));
    if !extra.is_empty() {
        found.push(format!("tls_curves: TLS curves {extra:?} are supported, but should be rejected."));
    }

    // Vulnerabilities, as sslyze's checker lists them.
    let flag = |command: &str, field: &str| scan.command(command)[field].as_bool().unwrap();
    if flag("tls_compression", "supports_compression") {
        found.push("tls_vulnerability_compression: Server is vulnerable to TLS compression attacks.".into());
    }
    if flag("openssl_ccs_injection", "is_vulnerable_to_ccs_injection") {
        found.push("tls_vulnerability_ccs_injection: Server is vulnerable to the OpenSSL CCS injection attack.".into());
    }
    if !flag("tls_fallback_scsv", "supports_fallback_scsv") {
        found.push("tls_vulnerability_fallback_scsv: Server does not support the TLS_FALLBACK_SCSV mechanism.".into());
    }
    if flag("heartbleed", "is_vulnerable_to_heartbleed") {
        found.push("tls_vulnerability_heartbleed: Server is vulnerable to the OpenSSL Heartbleed attack.".into());
    }
    if scan.command("robot")["robot_result"] == "VULNERABLE_STRONG_ORACLE" {
        found.push("tls_vulnerability_robot: Server is vulnerable to the ROBOT attack.".into());
    }
    if !flag("session_renegotiation", "supports_secure_renegotiation") {
        found
            .push("tls_vulnerability_renegotiation: Server is vulnerable to the insecure renegotiation attack.".into());
    }
    if !flag("tls_extended_master_secret", "supports_ems_extension") {
        found.push("tls_vulnerability_extended_master_secret: Server does not support the Extended Master Secret TLS extension.".into());
    }

    // HSTS (in Mozilla's profile; sslyze's checker has it switched off).
    let hsts = &scan.command("http_headers")["strict_transport_security_header"];
    let min_age = profile["hsts_min_age"].as_u64().unwrap();
    match hsts["max_age"].as_u64() {
        None => found.push(format!("hsts_min_age: HSTS header or its max-age is missing: {hsts}")),
        Some(age) if age < min_age => {
            found.push(format!("hsts_min_age: HSTS max-age is {age}, should be superior or equal to {min_age}."))
        }
        Some(_) => {}
    }
    found
}

/// The profile's checks, sslyze's own verdict, and the hardening the issue lists.
fn assert_meets(scan: &Scan, profile: &str) {
    let found = deviations(scan, &mozilla_profile(profile));
    assert!(
        found.is_empty(),
        "deviations from Mozilla's \"{profile}\" profile:\n  {}\nsslyze says:\n{}",
        found.join("\n  "),
        scan.verdict
    );
    assert!(
        scan.compliant && scan.verdict.contains("OK - Compliant."),
        "sslyze's own verdict disagrees:\n{}",
        scan.verdict
    );

    // The camera's CA alone validates the chain for the address sslyze connected to.
    let deployment = &scan.command("certificate_info")["certificate_deployments"][0];
    let supplied = deployment["path_validation_results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["trust_store"]["name"] == "Supplied CA file")
        .unwrap();
    assert_eq!(supplied["was_validation_successful"], true, "{supplied}");
    assert_eq!(deployment["received_chain_has_valid_order"], true);

    for legacy in ["ssl_2_0_cipher_suites", "ssl_3_0_cipher_suites", "tls_1_0_cipher_suites", "tls_1_1_cipher_suites"] {
        assert!(!scan.version_accepted(legacy), "{legacy} accepted: {:?}", scan.accepted_suites(legacy));
    }
    assert!(scan.version_accepted("tls_1_3_cipher_suites"));
    assert!(!scan.command("tls_compression")["supports_compression"].as_bool().unwrap(), "TLS compression");
    let reneg = scan.command("session_renegotiation");
    assert_eq!(reneg["is_vulnerable_to_client_renegotiation_dos"], false, "client-initiated renegotiation: {reneg}");
    assert_eq!(reneg["client_renegotiations_success_count"], 0, "client-initiated renegotiation: {reneg}");
    assert_eq!(reneg["supports_secure_renegotiation"], true, "no RFC 5746 protection: {reneg}");
    assert_eq!(scan.command("heartbleed")["is_vulnerable_to_heartbleed"], false);
    assert_eq!(scan.command("openssl_ccs_injection")["is_vulnerable_to_ccs_injection"], false);
    let robot = scan.command("robot")["robot_result"].as_str().unwrap();
    assert!(robot.starts_with("NOT_VULNERABLE"), "ROBOT: {robot}");
    assert_eq!(scan.command("tls_fallback_scsv")["supports_fallback_scsv"], true);
    assert_eq!(scan.command("tls_extended_master_secret")["supports_ems_extension"], true);
    assert_eq!(scan.command("tls_1_3_early_data")["supports_early_data"], false, "0-RTT data can be replayed");
}

mod mozilla_profiles {
    use super::*;

    #[test]
    fn standard_mode_meets_intermediate() {
        let cam = Camera::start_with(r#"{"camera": {"loopback": true}, "web": {"tls": "standard"}}"#);
        let scan = sslyze(&cam, "intermediate", &cam.ca_path());
        assert_meets(&scan, "intermediate");
        assert!(scan.version_accepted("tls_1_2_cipher_suites"), "Standard serves TLS 1.2");
    }

    /// With the camera's defaults (High-Security mints 90-day certificates).
    #[test]
    fn high_security_mode_meets_modern() {
        let cam = Camera::start_with(r#"{"camera": {"loopback": true}, "web": {"tls": "high-security"}}"#);
        let scan = sslyze(&cam, "modern", &cam.ca_path());
        assert!(
            !scan.version_accepted("tls_1_2_cipher_suites"),
            "High-Security accepts TLS 1.2: {:?}",
            scan.accepted_suites("tls_1_2_cipher_suites")
        );
        assert_meets(&scan, "modern");
    }

    /// High-Security mints 90-day certificates ("modern" caps them at 90 days), also on a camera
    /// that served a 365-day certificate in Standard mode before the switch.
    #[test]
    fn switching_to_high_security_replaces_a_longer_lived_certificate() {
        let cam = Camera::start_with(r#"{"camera": {"loopback": true}, "web": {"tls": "standard"}}"#);
        let before = cam.served_leaf_sha256();
        let cam = Camera::start_in(cam.stop(), r#"{"camera": {"loopback": true}, "web": {"tls": "high-security"}}"#);
        assert_ne!(cam.served_leaf_sha256(), before, "the 365-day certificate was kept");
        let scan = sslyze(&cam, "modern", &cam.ca_path());
        assert_meets(&scan, "modern");
    }

    /// An installer's certificate as the camera's manual tells installers to make it (RSA 2048, 365 days) served in Standard mode.
    /// The installer CA gets a keyUsage extension, which the manual's `openssl req -x509` leaves out
    /// and sslyze's (cryptography's) path validation requires of a CA.
    #[test]
    fn standard_mode_with_an_installers_rsa_certificate_meets_intermediate() {
        let cam = Camera::start_with(r#"{"camera": {"loopback": true}, "web": {"tls": "standard"}}"#);
        cam.setup();
        let work = TempDir::new("sslyze-rsa");
        openssl(work.path(), &["genrsa", "-out", "rootCA.key", "2048"]);
        openssl_self_signed(
            work.path(),
            SelfSignedKey::Existing("rootCA.key"),
            "rootCA.crt",
            "/O=Installer/CN=Installer Root CA",
            365,
            &["keyUsage=critical,keyCertSign,cRLSign"],
        );
        openssl(work.path(), &["genrsa", "-out", "server.key", "2048"]);
        openssl(work.path(), &["req", "-new", "-key", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
        installer_sign(work.path(), "server.csr", "IP:127.0.0.1", "server.crt");
        let cert = format!("certificate=@{}", work.path().join("server.crt").display());
        let key = format!("key=@{}", work.path().join("server.key").display());
        let (status, body) =
            cam.curl_json(&["-u", &cam.admin(), "-X", "PUT", "-F", &cert, "-F", &key, &cam.url("/api/v1/certificate")]);
        assert_eq!(status, 200, "{body}");
        let scan = sslyze(&cam, "intermediate", &work.path().join("rootCA.crt"));
        let leaf = &scan.command("certificate_info")["certificate_deployments"][0]["received_certificate_chain"][0];
        assert_eq!(leaf["public_key"]["algorithm"], "RSAPublicKey", "the uploaded certificate is served");
        assert_meets(&scan, "intermediate");
        assert!(
            scan.accepted_suites("tls_1_2_cipher_suites").iter().all(|s| s.starts_with("TLS_ECDHE_RSA_WITH_")),
            "forward secrecy only"
        );
    }
}

mod security_headers {
    use super::*;

    /// (status, lower-cased header names and values) of one curl request.
    fn head(cam: &Camera, args: &[&str]) -> (u16, Vec<(String, String)>) {
        let out = Command::new("curl")
            .arg("--cacert")
            .arg(cam.ca_path())
            .args(["-sS", "-D", "-", "-o", "/dev/null"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        parse_head(&String::from_utf8_lossy(&out.stdout))
    }

    fn parse_head(text: &str) -> (u16, Vec<(String, String)>) {
        let mut lines = text.lines();
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        (status, headers)
    }

    fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Checks one HTTPS response's headers; `what` names it in failures.
    fn assert_secure(what: &str, headers: &[(String, String)]) {
        let value =
            |name: &str| get(headers, name).unwrap_or_else(|| panic!("{what}: no {name} header in {headers:?}"));
        let hsts = value("strict-transport-security");
        let max_age: u64 = hsts
            .split(';')
            .find_map(|d| d.trim().strip_prefix("max-age="))
            .unwrap_or_else(|| panic!("{what}: {hsts}"))
            .parse()
            .unwrap();
        assert!(max_age >= 63_072_000, "{what}: HSTS max-age below Mozilla's two years: {hsts}");

        let csp = value("content-security-policy");
        let directives: Vec<(&str, Vec<&str>)> = csp
            .split(';')
            .filter_map(|d| {
                let mut words = d.split_whitespace();
                Some((words.next()?, words.collect()))
            })
            .collect();
        let directive = |name: &str| directives.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
        let scripts = directive("script-src")
            .or_else(|| directive("default-src"))
            .unwrap_or_else(|| panic!("{what}: CSP without script-src or default-src: {csp}"));
        for unsafe_source in ["'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"] {
            assert!(!scripts.contains(&unsafe_source), "{what}: CSP lets scripts from {unsafe_source}: {csp}");
        }
        assert!(directive("default-src").is_some(), "{what}: CSP without default-src: {csp}");
        assert_eq!(directive("frame-ancestors"), Some(vec!["'none'"]), "{what}: {csp}");
        for (name, expected) in
            [("x-frame-options", "DENY"), ("x-content-type-options", "nosniff"), ("cache-control", "no-store")]
        {
            assert!(value(name).eq_ignore_ascii_case(expected), "{what}: {name}: {}", value(name));
        }
        let referrer = value("referrer-policy");
        assert!(
            ["no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"].contains(&referrer),
            "{what}: Referrer-Policy {referrer}"
        );
    }

    #[test]
    fn every_https_response_carries_them_and_nothing_is_cached() {
        let cam = Camera::start();
        let url = |p: &str| cam.url(p);
        let json = |s: &str| format!(r#"{{"password":"{s}"}}"#);
        let jar = cam.dir.path().join("cookies");
        let jar = jar.to_str().unwrap();
        let admin = cam.admin();
        let csr = r#"{"subject":{"CN":"cam"},"subject_alt_names":["127.0.0.1"],"key_type":"ecdsa-p256"}"#;
        // Before setup: the page, assets, CA, public API, errors.
        let requests: Vec<(&str, u16, Vec<String>)> = vec![
            ("the UI page", 200, vec![url("/")]),
            ("index.html", 200, vec![url("/index.html")]),
            ("app.js", 200, vec![url("/app.js")]),
            ("app.css", 200, vec![url("/app.css")]),
            ("cacert.crt", 200, vec![url("/cacert.crt")]),
            ("the session", 200, vec![url("/api/v1/session")]),
            ("the certificate", 200, vec![url("/api/v1/certificate")]),
            ("no pending request", 404, vec![url("/api/v1/csr")]),
            ("a change before setup", 403, vec!["-X".into(), "DELETE".into(), url("/api/v1/certificate")]),
            ("an unknown path", 404, vec![url("/nothing")]),
            ("a wrong method", 405, vec!["-X".into(), "PATCH".into(), url("/")]),
            ("setup", 200, vec!["--json".into(), json(PASSWORD), url("/api/v1/setup")]),
            ("a failed login", 401, vec!["--json".into(), json("wrong password"), url("/api/v1/login")]),
            (
                "a login (sets the session cookie, returns the CSRF token)",
                200,
                vec!["-c".into(), jar.into(), "--json".into(), json(PASSWORD), url("/api/v1/login")],
            ),
            ("the logged-in session", 200, vec!["-b".into(), jar.into(), url("/api/v1/session")]),
            ("a change without credentials", 401, vec!["-X".into(), "DELETE".into(), url("/api/v1/certificate")]),
            (
                "creating a request",
                200,
                vec!["-u".into(), admin.clone(), "--json".into(), csr.into(), url("/api/v1/csr")],
            ),
            ("the pending request", 200, vec![url("/api/v1/csr")]),
            (
                "a restore",
                200,
                vec!["-u".into(), admin.clone(), "-X".into(), "DELETE".into(), url("/api/v1/certificate")],
            ),
            ("a logout", 200, vec!["-b".into(), jar.into(), "-X".into(), "POST".into(), url("/api/v1/logout")]),
        ];
        for (what, expected, args) in requests {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (status, headers) = head(&cam, &args);
            assert_eq!(status, expected, "{what}: {headers:?}");
            assert_secure(what, &headers);
        }
    }

    #[test]
    fn plain_http_sends_no_hsts_and_only_redirects_or_serves_the_ca() {
        // RFC 6797 7.2: HSTS over plain HTTP is ignored, and must not be sent.
        let cam = Camera::start();
        for path in ["/", "/api/v1/session", "/cacert.crt"] {
            let out = Command::new("curl")
                .args(["-sS", "-D", "-", "-o", "/dev/null", &format!("http://{}{path}", cam.http)])
                .output()
                .unwrap();
            let (status, headers) = parse_head(&String::from_utf8_lossy(&out.stdout));
            assert_eq!(status, if path == "/cacert.crt" { 200 } else { 301 }, "{path}: {headers:?}");
            assert!(get(&headers, "strict-transport-security").is_none(), "{path}: {headers:?}");
            assert!(get(&headers, "set-cookie").is_none(), "{path}: {headers:?}");
        }
    }

    #[test]
    fn the_page_needs_no_inline_script_or_style() {
        // The CSP allows scripts and styles from the camera's own files only; the page must work so.
        let cam = Camera::start();
        let (status, page) = cam.curl(&["--compressed", &cam.url("/")]);
        assert_eq!(status, 200);
        let page = String::from_utf8(page).unwrap().to_ascii_lowercase();
        let mut rest = page.as_str();
        while let Some(at) = rest.find("<script") {
            let tag = &rest[at..at + rest[at..].find('>').unwrap()];
            assert!(tag.contains(" src="), "inline script: {tag}");
            rest = &rest[at + tag.len()..];
        }
        assert!(!page.contains("<style"), "inline <style>");
        assert!(!page.contains(" style="), "inline style attribute");
        assert!(!page.contains("javascript:"), "javascript: URL");
        for handler in [" onclick=", " onload=", " onsubmit=", " onchange=", " oninput=", " onerror="] {
            assert!(!page.contains(handler), "inline event handler {handler}");
        }
    }
}
