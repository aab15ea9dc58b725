//! The command-line contract: `cert-provisioner [--config FILE] [--state-dir DIR] [--run-dir DIR]`
//! prints one summary line and exits 0; a failure exits non-zero with a one-line reason.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use common::*;

#[test]
fn first_run_creates_the_ca_and_the_server_certificate_with_safe_modes() {
    let dir = TempDir::new("cli-first");
    let run = provision(&dir, &[]);
    run.assert_ok();
    let summary = run.summary();
    assert!(summary.contains("(created)"), "first run must create the CA: {summary}");
    assert!(summary.contains(&dir.run().join("server.pem").display().to_string()), "{summary}");

    let state = dir.state();
    // issuing-ca.pem 0600, ca.crt 0644 and the root, no ca.key.
    let ca = assert_two_tier(&state);
    assert!(read_string(&state.join("issuing-ca.pem")).starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8 PEM key");
    assert_eq!(mode(&dir.run().join("server.pem")), 0o600, "server.pem holds the server key");
    assert_eq!(mode(&state) & 0o077, 0, "the state dir is private");
    assert_eq!(mode(&dir.run()) & 0o077, 0, "the run dir is private");
    assert_no_temporaries(&state);
    assert_no_temporaries(&dir.run());

    // The bundle is key, leaf, issuing CA; the summary names the fingerprint of the root users
    // import, not the issuing CA's.
    let bundle = split_bundle(&dir.run().join("server.pem"));
    assert_eq!(bundle.signer_der, ca.issuing_der);
    let fingerprint = camera_pki::fingerprint(&cert_der(&state.join("ca.crt")));
    assert!(summary.contains(&fingerprint), "summary names the CA fingerprint {fingerprint}: {summary}");
    assert!(!summary.contains(&camera_pki::fingerprint(&ca.issuing_der)), "{summary}");
    verify_served(&dir, &[]).unwrap();
}

#[test]
fn second_run_keeps_the_ca_and_mints_a_new_server_certificate() {
    let dir = TempDir::new("cli-second");
    provision(&dir, &[]).assert_ok();
    let ca_crt = read(&dir.state().join("ca.crt"));
    let issuing_ca = read(&dir.state().join("issuing-ca.pem"));
    let first = split_bundle(&dir.run().join("server.pem"));

    let run = provision(&dir, &[]);
    run.assert_ok();
    let summary = run.summary();
    assert!(summary.contains("(existing)"), "{summary}");
    assert_eq!(read(&dir.state().join("ca.crt")), ca_crt, "the CA certificate must not change");
    assert_eq!(read(&dir.state().join("issuing-ca.pem")), issuing_ca, "the issuing CA must not change");
    let second = split_bundle(&dir.run().join("server.pem"));
    assert_ne!(first.leaf_der, second.leaf_der, "a new server certificate is minted each run");
    assert_eq!(first.signer_der, second.signer_der);
    assert!(!dir.state().join("ca-replaced.json").exists());
}

#[test]
fn equals_form_of_flags_works_and_help_exits_zero() {
    let dir = TempDir::new("cli-equals");
    let state = format!("--state-dir={}", dir.state().display());
    let run_dir = format!("--run-dir={}", dir.run().display());
    let run = run_bin([state.as_str(), run_dir.as_str()]);
    run.assert_ok();
    run.summary();
    assert!(dir.run().join("server.pem").exists());

    let help = run_bin(["--help"]);
    help.assert_ok();
    assert!(help.stdout.starts_with("usage: cert-provisioner"), "{}", help.stdout);
}

#[test]
fn unknown_flag_is_refused_with_one_line() {
    let dir = TempDir::new("cli-unknown");
    let run = provision(&dir, &["--frobnicate"]);
    let line = run.assert_one_line_failure();
    assert!(line.contains("--frobnicate"), "{line}");
    assert!(!dir.state().exists(), "nothing is created when the arguments are wrong");

    let run = run_bin(["--state-dir"]);
    let line = run.assert_one_line_failure();
    assert!(line.contains("--state-dir needs a value"), "{line}");

    let run = run_bin(["positional"]);
    run.assert_one_line_failure();
}

#[test]
fn invalid_config_json_is_refused_with_one_line() {
    let dir = TempDir::new("cli-badjson");
    let config = config_file(&dir, "{\"camera\": {\"model\": \"X\",\n");
    let run = provision(&dir, &["--config", config.to_str().unwrap()]);
    let line = run.assert_one_line_failure();
    assert!(line.contains("config.json"), "the line names the file: {line}");
    assert!(!dir.state().exists());
}

#[test]
fn config_with_a_typo_key_is_refused_with_one_line() {
    let dir = TempDir::new("cli-typo");
    let config = config_file(&dir, r#"{"camera": {"modle": "Cam"}}"#);
    let run = provision(&dir, &["--config", config.to_str().unwrap()]);
    let line = run.assert_one_line_failure();
    assert!(line.contains("modle"), "the line names the unknown key: {line}");

    let config = config_file(&dir, r#"{"camera": {"server_cert_days": 400}}"#);
    let line = provision(&dir, &["--config", config.to_str().unwrap()]).assert_one_line_failure();
    assert!(line.contains("server_cert_days"), "{line}");
    assert!(!dir.state().exists());
}

/// Found by the `config` fuzz target: a non-ASCII permitted_dns passed the checks, then rcgen
/// panicked writing it into the CA (the shipped binary aborts on panic: no HTTPS at all). The
/// fuzzer's file also has typos in the `web` section, which both programs now refuse first; with
/// that section fixed, the line names the constraint.
#[test]
fn non_ascii_dns_constraint_is_refused_with_one_line() {
    let dir = TempDir::new("cli-nonascii-constraint");
    let crash = include_str!("data/fuzz-config-non-ascii-dns-constraint.json");
    let fixed_web = crash.replace(r#""(http":null,"#, "").replace(r#","handshake_timet_oesucs":5"#, "");
    assert_ne!(fixed_web, crash);
    for (text, setting) in [(crash, "(http"), (fixed_web.as_str(), "permitted_dns")] {
        let config = config_file(&dir, text);
        let run = provision(&dir, &["--config", config.to_str().unwrap()]);
        run.assert_no_panic();
        let line = run.assert_one_line_failure();
        assert!(line.contains(setting), "the line names the setting: {line}");
        assert!(!dir.state().join("issuing-ca.pem").exists() && !dir.state().join("ca.key").exists());
    }
}

/// Both programs read the whole file: camera-web's section is checked at boot too (a typo there
/// would stop camera-web anyway), and High-Security's 90-day rule applies to the boot step's
/// certificate.
#[test]
fn the_web_section_is_checked_and_high_security_mints_90_days() {
    let dir = TempDir::new("cli-web-section");
    let config = config_file(&dir, r#"{"web": {"tsl": "high-security"}}"#);
    let line = provision(&dir, &["--config", config.to_str().unwrap()]).assert_one_line_failure();
    assert!(line.contains(r#"section "web""#) && line.contains("tsl"), "{line}");
    assert!(!dir.state().exists());

    let config = config_file(&dir, r#"{"web": {"tls": "high-security"}}"#);
    provision(&dir, &["--config", config.to_str().unwrap()]).assert_ok();
    let leaf = camera_pki::describe(&split_bundle(&dir.run().join("server.pem")).leaf_der).unwrap();
    assert_eq!(leaf.not_after_unix - leaf.not_before_unix, 90 * 86_400 - 1);
}

#[test]
fn missing_explicit_config_is_refused_with_one_line() {
    let dir = TempDir::new("cli-noconfig");
    let missing = dir.join("nope.json");
    let line = provision(&dir, &["--config", missing.to_str().unwrap()]).assert_one_line_failure();
    assert!(line.contains("nope.json"), "{line}");
}

#[test]
fn valid_config_is_applied() {
    let dir = TempDir::new("cli-config");
    let config = config_file(
        &dir,
        r#"{"camera": {"model": "Test Cam 9", "hostname": "testcam", "extra_names": ["door.home.arpa"], "server_cert_days": 90},
            "web": {"tls": "standard"}}"#,
    );
    let run = provision(&dir, &["--config", config.to_str().unwrap()]);
    run.assert_ok();
    let summary = run.summary();
    let bundle = split_bundle(&dir.run().join("server.pem"));
    let names = san_names(&bundle.leaf_der);
    for want in ["testcam.local", "door.home.arpa"] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
        assert!(summary.contains(want), "{summary}");
    }
    // "testcam" alone is not under a permitted domain: left out.
    assert!(!names.iter().any(|n| n == "testcam"), "{names:?}");
    let leaf = camera_pki::describe(&bundle.leaf_der).unwrap();
    // RFC 5280 counts both ends: notAfter is one second short of 90 days after notBefore.
    assert_eq!(leaf.not_after_unix - leaf.not_before_unix, 90 * 86_400 - 1);
    for der in [&bundle.signer_der, &cert_der(&dir.state().join("ca.crt"))] {
        let ca = camera_pki::describe(der).unwrap();
        assert!(ca.subject.contains("Test Cam 9"), "{}", ca.subject);
    }
}

/// Asserts what `--new-ca` leaves: a new two-tier CA signs the server certificate, no file in the
/// state dir holds the old signing key (`old_key_pem`, one PEM block), and the change is recorded
/// with the old fingerprint for the UI's "import the new cacert.crt" banner.
fn assert_rotated(dir: &TempDir, run: &Run, old_key_pem: &str, old_fingerprint: &str) {
    run.assert_ok();
    assert!(run.summary().contains("(created)"), "{}", run.summary());
    let ca = assert_two_tier(&dir.state());
    assert_ne!(camera_pki::fingerprint(&ca.root_der), old_fingerprint);
    let body: String = old_key_pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = camera_pki::pem::pkcs8_key(old_key_pem.as_bytes()).unwrap().unwrap();
    for needle in [body.as_bytes(), &der[..]] {
        let found = files_containing(&dir.state(), needle);
        assert!(found.is_empty(), "the old CA key survives in {found:?}");
    }
    let old_public = public_key_of_private_pem(old_key_pem);
    let keys = private_keys_under(&dir.state());
    assert_eq!(keys.len(), 1, "one key in the state dir, the new issuing CA's: {keys:?}");
    assert_ne!(keys[0].1, old_public);
    let record = read_string(&dir.state().join("ca-replaced.json"));
    assert!(record.contains(old_fingerprint), "the record names the old CA: {record}");
    let bundle = verify_served(dir, &[]).unwrap();
    assert_eq!(bundle.signer_der, ca.issuing_der, "the server certificate is from the new CA");

    // The next ordinary run keeps the new CA.
    let again = provision(dir, &[]);
    again.assert_ok();
    assert!(again.summary().contains("(existing)"), "{}", again.summary());
}

/// Rotating the camera CA: the old issuing key is gone, a new CA signs the server certificate,
/// and the change is recorded.
#[test]
fn new_ca_replaces_the_ca_deletes_the_old_key_and_records_the_change() {
    let dir = TempDir::new("cli-new-ca");
    provision(&dir, &[]).assert_ok();
    let old = assert_two_tier(&dir.state());
    let old_fingerprint = camera_pki::fingerprint(&old.root_der);
    let run = provision(&dir, &["--new-ca"]);
    assert_rotated(&dir, &run, &old.key_pem, &old_fingerprint);
    assert!(run.stderr.contains(&old_fingerprint), "the warning names the deleted CA: {}", run.stderr);
}

/// `--new-ca` is how a camera made before two tiers gets them: its one-tier key is deleted too.
#[test]
fn new_ca_on_a_one_tier_camera_gives_it_two_tiers() {
    let dir = TempDir::new("cli-new-ca-one-tier");
    let old = seed_one_tier_ca(&dir.state(), false);
    provision(&dir, &[]).assert_ok();
    assert_one_tier_kept(&dir.state(), &old);
    let run = provision(&dir, &["--new-ca"]);
    assert_rotated(&dir, &run, &old.key_pem, &old.fingerprint);
}

#[test]
fn new_ca_refuses_to_touch_a_factory_ca_and_watch_mode() {
    let dir = TempDir::new("cli-new-ca-factory");
    let factory_source = TempDir::new("cli-new-ca-factory-source");
    provision(&factory_source, &[]).assert_ok();
    // A two-tier factory CA: the issuing CA and its root in ca.crt, the issuing key in ca.key.
    let factory_ca = read_issuing_ca(&factory_source.state());
    let factory = dir.state().join("factory");
    std::fs::create_dir_all(&factory).unwrap();
    std::fs::write(factory.join("ca.crt"), format!("{}{}", factory_ca.issuing_pem, factory_ca.root_pem)).unwrap();
    std::fs::write(factory.join("ca.key"), &factory_ca.key_pem).unwrap();
    let run = provision(&dir, &[]);
    run.assert_ok();
    assert!(run.summary().contains("(factory)"), "{}", run.summary());
    let before: Vec<(PathBuf, Vec<u8>)> =
        files_under(&dir.state()).into_iter().map(|p| (p.clone(), read(&p))).collect();
    let said = provision(&dir, &["--new-ca"]).assert_one_line_failure();
    assert!(said.contains("factory CA"), "{said}");
    let after: Vec<(PathBuf, Vec<u8>)> = files_under(&dir.state()).into_iter().map(|p| (p.clone(), read(&p))).collect();
    assert_eq!(after, before, "the state dir is unchanged, byte for byte");
    let said = provision(&dir, &["--new-ca", "--watch"]).assert_one_line_failure();
    assert!(said.contains("--watch"), "{said}");
}
