//! The camera's two-tier CA: a fresh camera gets a root whose key is nowhere and an
//! issuing CA that signs; a camera made before keeps its one-tier CA (users imported it); a
//! factory CA may have two tiers; a one-tier CA found beside a two-tier one is moved aside whole.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;
use std::time::SystemTime;

use camera_config::CameraConfig;
use camera_provision::{provision_for, reuse_or_provision};
use camera_state::Layout;
use common::*;

/// The tiers' certificates as openssl prints them.
fn text_of(dir: &TempDir, name: &str, pem: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    x509_text(&path)
}

#[test]
fn a_fresh_camera_gets_two_tiers_and_the_roots_key_is_nowhere() {
    let dir = TempDir::new("two-tier-fresh");
    let run = provision(&dir, &[]);
    run.assert_ok();
    assert!(run.summary().contains("(created)"), "{}", run.stdout);
    let state = dir.state();
    assert_eq!(entries(&state), [".lock", "ca-in-use.sha256", "ca.crt", "clock", "issuing-ca.pem"]);
    assert_eq!(entries(&dir.run()), ["server.pem"]);
    let ca = assert_two_tier(&state);
    let root_fingerprint = camera_pki::fingerprint(&ca.root_der);
    assert_eq!(read_string(&state.join("ca-in-use.sha256")), format!("{root_fingerprint}\n"));

    // The root: self-signed, pathlen 1. The issuing CA: pathlen 0, the name constraints, EKU
    // serverAuth, signed by the root.
    let root = text_of(&dir, "root.pem", &ca.root_pem);
    let issuing = text_of(&dir, "issuing.pem", &ca.issuing_pem);
    let (root_info, issuing_info) =
        (camera_pki::describe(&ca.root_der).unwrap(), camera_pki::describe(&ca.issuing_der).unwrap());
    assert!(root_info.self_signed && root_info.subject.contains("Root CA"), "{root_info:?}");
    assert!(root.contains("CA:TRUE, pathlen:1"), "{root}");
    assert!(issuing.contains("CA:TRUE, pathlen:0"), "{issuing}");
    assert!(issuing.contains("X509v3 Name Constraints: critical") && issuing.contains("IP:10.0.0.0/255.0.0.0"));
    assert!(issuing.contains("TLS Web Server Authentication"), "{issuing}");
    assert_eq!(issuing_info.issuer, root_info.subject);
    assert!(!issuing_info.self_signed && issuing_info.subject.contains("Issuing CA"), "{issuing_info:?}");
    let signed = openssl_verify(&dir.join("root.pem"), None, &dir.join("issuing.pem"), &["-purpose", "any"]);
    assert!(signed.accepted, "the root must have signed the issuing CA:\n{}", signed.said);

    // Every private key the camera keeps, compared with the root's public key: only the issuing
    // CA's and the server certificate's are found (which shows the comparison finds keys at all).
    let root_public = public_key_of_cert(&ca.root_der);
    let mut keys = private_keys_under(&state);
    keys.extend(private_keys_under(&dir.run()));
    let bundle = split_bundle(&dir.run().join("server.pem"));
    let found: Vec<(String, &str)> = keys
        .iter()
        .map(|(path, public)| {
            let whose = if *public == root_public {
                "root"
            } else if *public == public_key_of_cert(&ca.issuing_der) {
                "issuing"
            } else if *public == public_key_of_cert(&bundle.leaf_der) {
                "leaf"
            } else {
                "unknown"
            };
            (path.file_name().unwrap().to_string_lossy().into_owned(), whose)
        })
        .collect();
    assert_eq!(found, [("issuing-ca.pem".to_owned(), "issuing"), ("server.pem".to_owned(), "leaf")]);
    assert_eq!(bundle.signer_der, ca.issuing_der, "the issuing CA is served, not the root");
    verify_served(&dir, &[]).unwrap();
}

fn addresses(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

#[test]
fn a_one_tier_camera_keeps_its_ca() {
    let dir = TempDir::new("two-tier-one-tier");
    let seeded = seed_one_tier_ca(&dir.state(), false);
    for _ in 0..2 {
        let run = provision(&dir, &[]);
        run.assert_ok();
        assert!(run.summary().contains("(existing)") && run.summary().contains(&seeded.fingerprint), "{}", run.stdout);
        assert_one_tier_kept(&dir.state(), &seeded);
        let bundle = verify_served(&dir, &[]).unwrap();
        assert_eq!(bundle.signer_der, seeded.cert_der, "the one tier signs");
    }
    // camera-web's start keeps the boot step's certificate, and a new address re-mints, with the
    // same CA.
    let layout = Layout::new(dir.state(), dir.run());
    let config = CameraConfig::default();
    let kept = reuse_or_provision(&layout, &config).unwrap();
    assert!(kept.reused && !kept.ca_two_tier, "{}", kept.summary());
    assert_eq!(
        (kept.ca_anchor_der.as_slice(), kept.ca_signer_der.as_slice()),
        (&seeded.cert_der[..], &seeded.cert_der[..])
    );
    let moved = provision_for(&layout, &config, &addresses(&["10.9.8.7"]), SystemTime::now()).unwrap();
    assert!(!moved.reused && moved.minted.names.iter().any(|n| n.to_string() == "10.9.8.7"));
    assert_one_tier_kept(&dir.state(), &seeded);
    verify_served(&dir, &["10.9.8.7".into()]).unwrap();
}

/// A factory CA given as its issuing CA and root (`factory/ca.crt`) with the issuing key
/// (`factory/ca.key`).
fn write_factory_ca(dir: &TempDir, issuing_pem: &str, root_pem: &str, key_pem: &str) {
    let factory = dir.state().join("factory");
    std::fs::create_dir_all(&factory).unwrap();
    std::fs::write(factory.join("ca.crt"), format!("{issuing_pem}{root_pem}")).unwrap();
    std::fs::write(factory.join("ca.key"), key_pem).unwrap();
}

#[test]
fn a_two_tier_factory_ca_is_used_and_its_root_is_what_users_import() {
    let source = TempDir::new("two-tier-factory-source");
    provision(&source, &[]).assert_ok();
    let factory = read_issuing_ca(&source.state());
    let factory_fingerprint = camera_pki::fingerprint(&factory.root_der);
    let dir = TempDir::new("two-tier-factory");
    write_factory_ca(&dir, &factory.issuing_pem, &factory.root_pem, &factory.key_pem);
    let layout = Layout::new(dir.state(), dir.run());
    let config = CameraConfig::default();
    let outcome = provision_for(&layout, &config, &addresses(&["10.1.2.3"]), SystemTime::now()).unwrap();
    assert!(outcome.summary().contains("(factory)"), "{}", outcome.summary());
    assert!(outcome.ca_two_tier);
    assert_eq!(outcome.ca_anchor_der, factory.root_der, "users import the factory root");
    assert_eq!(outcome.ca_signer_der, factory.issuing_der);
    assert_eq!(outcome.ca_fingerprint, factory_fingerprint);
    assert_eq!(read_string(&layout.ca_in_use()).trim(), factory_fingerprint);
    let bundle = split_bundle(&layout.minted_bundle());
    assert_eq!(bundle.signer_der, factory.issuing_der);
    webpki_verify(&factory.root_der, &[&bundle.signer_der], &bundle.leaf_der, &["10.1.2.3".into()]).unwrap();
    assert!(!layout.issuing_ca().exists(), "no CA of its own while the factory CA is used");

    // A factory root that did not sign the factory issuing CA: a warning, the camera's own CA,
    // and the change of CA recorded.
    let stranger = TempDir::new("two-tier-factory-stranger");
    provision(&stranger, &[]).assert_ok();
    let stranger_root = read_issuing_ca(&stranger.state()).root_pem;
    write_factory_ca(&dir, &factory.issuing_pem, &stranger_root, &factory.key_pem);
    let run = provision(&dir, &[]);
    run.assert_ok();
    assert!(run.summary().contains("(created)"), "{}", run.stdout);
    assert!(run.stderr.contains("factory CA") && run.stderr.contains("did not sign it"), "{}", run.stderr);
    let own = assert_two_tier(&dir.state());
    let record: serde_json::Value = serde_json::from_slice(&read(&layout.ca_replaced_record())).unwrap();
    assert!(record["reason"].as_str().unwrap().contains(&factory_fingerprint), "{record}");
    assert_eq!(record["new_ca_sha256"], camera_pki::fingerprint(&own.root_der), "{record}");
    verify_served(&dir, &[]).unwrap();
}

/// A camera downgraded to a version before two tiers (which made itself a one-tier CA beside the
/// root it could not use) and upgraded again: the two-tier CA is kept and the one-tier CA moved
/// aside whole, its certificate too, not overwritten by the root's copy. A power cut between the
/// two moves leaves the key alone, which the next run moves aside.
#[test]
fn a_one_tier_ca_beside_a_two_tier_ca_is_moved_aside_whole() {
    let dir = TempDir::new("two-tier-beside");
    provision(&dir, &[]).assert_ok();
    let ca = read_issuing_ca(&dir.state());
    let (cert_pem, key_pem) = one_tier_ca(&camera_pki::NameConstraintsPolicy::default());
    let one_tier_fingerprint = camera_pki::fingerprint(&camera_provision::pem_certificates(cert_pem.as_bytes())[0]);
    write_one_tier_ca(&dir.state(), &cert_pem, &key_pem);
    std::fs::write(dir.state().join("ca-in-use.sha256"), format!("{one_tier_fingerprint}\n")).unwrap();

    let run = provision(&dir, &[]);
    run.assert_ok();
    assert!(run.summary().contains("(existing)"), "{}", run.stdout);
    assert_eq!(assert_two_tier(&dir.state()).issuing_der, ca.issuing_der, "the two-tier CA is kept");
    let names = entries(&dir.state());
    let aside = |file: &str| -> String {
        names
            .iter()
            .find(|n| n.starts_with(&format!("{file}.superseded-")))
            .unwrap_or_else(|| panic!("the one-tier {file} was not moved aside: {names:?}"))
            .clone()
    };
    assert_eq!(read_string(&dir.state().join(aside("ca.crt"))), cert_pem, "the one-tier certificate is kept");
    assert_eq!(read_string(&dir.state().join(aside("ca.key"))), key_pem);
    assert_eq!(mode(&dir.state().join(aside("ca.key"))), 0o600);
    let record = read_string(&dir.state().join("ca-replaced.json"));
    assert!(record.contains(&one_tier_fingerprint), "the change from the one-tier CA is recorded: {record}");
    verify_served(&dir, &[]).unwrap();

    // The key alone beside (ca.crt already the root): moved aside, ca.crt untouched.
    write_with_mode(&dir.state().join("ca.key"), &key_pem, 0o600);
    let run = provision(&dir, &[]);
    run.assert_ok();
    assert_two_tier(&dir.state());
    let names = entries(&dir.state());
    assert_eq!(names.iter().filter(|n| n.starts_with("ca.key.superseded-")).count(), 2, "{names:?}");
    assert_eq!(names.iter().filter(|n| n.starts_with("ca.crt.superseded-")).count(), 1, "{names:?}");
}
