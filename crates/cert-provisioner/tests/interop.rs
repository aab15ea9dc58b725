//! What real clients make of the certificates: OpenSSL's verifier and rustls-webpki, including
//! that the CA's name constraints stop it from vouching for public names.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use common::*;

/// A provisioned directory with the leaf and CA split out of server.pem.
struct Minted {
    dir: TempDir,
    ca: PathBuf,
    leaf: PathBuf,
    bundle: Bundle,
}

fn minted(tag: &str) -> Minted {
    let dir = TempDir::new(tag);
    let config = config_file(
        &dir,
        r#"{"camera": {"hostname": "testcam", "loopback": true, "extra_names": ["door.home.arpa"]}}"#,
    );
    provision(&dir, &["--config", config.to_str().unwrap()]).assert_ok().summary();
    let bundle = split_bundle(&dir.run().join("server.pem"));
    let leaf = dir.join("leaf.pem");
    let ca = dir.join("ca-from-bundle.pem");
    std::fs::write(&leaf, &bundle.leaf_pem).unwrap();
    std::fs::write(&ca, &bundle.ca_pem).unwrap();
    Minted { dir, ca, leaf, bundle }
}

#[test]
fn openssl_verifies_the_server_certificate_strictly() {
    let m = minted("ossl-ok");
    let ca_crt = m.dir.state().join("ca.crt");
    for ca in [&ca_crt, &m.ca] {
        let run = openssl_verify(ca, &m.leaf, &[]);
        if !run.ok() || !run.stdout.contains(": OK") {
            run.fail("openssl verify must accept the minted leaf");
        }
    }
    // Each name, as a client checks it against what it connected to.
    for (flag, name) in [
        ("-verify_ip", "127.0.0.1"),
        ("-verify_ip", "::1"),
        ("-verify_hostname", "testcam.local"),
        ("-verify_hostname", "door.home.arpa"),
        ("-verify_hostname", "localhost"),
    ] {
        let run = openssl_verify(&ca_crt, &m.leaf, &[flag, name]);
        if !run.ok() {
            run.fail(&format!("openssl verify {flag} {name}"));
        }
    }
    // And a name the certificate does not carry is refused (the check above is real).
    let run = openssl_verify(&ca_crt, &m.leaf, &["-verify_hostname", "other.local"]);
    assert!(!run.ok(), "openssl accepted a name the certificate does not carry: {}", run.stdout);
}

#[test]
fn openssl_refuses_public_names_signed_by_the_camera_ca() {
    let m = minted("ossl-nc");
    let state = m.dir.state();
    let ca_crt = state.join("ca.crt");
    // Control: the same openssl-made leaf for private names verifies, so a failure below is the
    // name constraints' doing and not a defect of the hand-made leaf.
    let private = openssl_signed_leaf(m.dir.path(), &state, "private", "IP:10.1.2.3,DNS:cam.local,IP:fd00::5");
    let run = openssl_verify(&ca_crt, &private, &[]);
    if !run.ok() {
        run.fail("control leaf for private names must verify");
    }
    for (tag, san) in
        [("public-ip", "IP:8.8.8.8"), ("public-dns", "DNS:example.com"), ("public-v6", "IP:2001:4860::8888")]
    {
        let leaf = openssl_signed_leaf(m.dir.path(), &state, tag, san);
        let run = openssl_verify(&ca_crt, &leaf, &[]);
        let said = format!("{}{}", run.stdout, run.stderr);
        assert!(!run.ok(), "openssl accepted {san} signed by the camera CA:\n{said}");
        assert!(said.contains("permitted subtree violation"), "{san}: expected a name-constraint refusal:\n{said}");
        // rustls-webpki refuses it too.
        let leaf_der = cert_der(&leaf);
        let err = webpki_verify(&cert_der(&ca_crt), &leaf_der, &[]).expect_err("webpki accepted a public name");
        assert!(err.contains("NameConstraintViolation"), "{san}: {err}");
    }
    assert!(webpki_verify(&cert_der(&ca_crt), &cert_der(&private), &["10.1.2.3".into(), "cam.local".into()]).is_ok());
}

/// The name constraints say nothing about e-mail addresses or client names: the CA's own
/// extendedKeyUsage (serverAuth only) is what keeps a stolen CA key from signing e-mail (S/MIME)
/// or client certificates that a computer trusting the CA "for all purposes" would accept.
#[test]
fn the_camera_ca_signs_for_web_servers_only() {
    let m = minted("ossl-eku");
    let state = m.dir.state();
    let ca_crt = state.join("ca.crt");
    let leaf = openssl_signed_leaf_for(
        m.dir.path(),
        &state,
        "email",
        "email:ceo@bank.example,IP:10.1.2.3",
        "emailProtection,clientAuth",
    );
    for purpose in ["smimesign", "smimeencrypt", "sslclient"] {
        let run = openssl(["verify", "-purpose", purpose, "-CAfile", ca_crt.to_str().unwrap(), leaf.to_str().unwrap()]);
        let said = format!("{}{}", run.stdout, run.stderr);
        assert!(!run.ok(), "openssl accepted a {purpose} certificate signed by the camera CA:\n{said}");
        assert!(said.contains("certificate purpose"), "{purpose}: {said}");
    }
}

#[test]
fn openssl_shows_the_security_baseline_extensions() {
    let m = minted("ossl-text");
    let ca = x509_text(&m.dir.state().join("ca.crt"));
    let after = |text: &str, header: &str| -> String {
        let mut lines = text.lines().skip_while(|l| !l.contains(header));
        let head = lines.next().unwrap_or_else(|| panic!("no {header:?} in:\n{text}")).to_owned();
        format!("{head}\n{}", lines.next().unwrap_or(""))
    };
    assert!(ca.contains("X509v3 Name Constraints: critical"), "{ca}");
    let bc = after(&ca, "X509v3 Basic Constraints");
    assert!(bc.contains("critical") && bc.contains("CA:TRUE, pathlen:0"), "{bc}");
    let ku = after(&ca, "X509v3 Key Usage");
    assert!(ku.contains("critical") && ku.contains("Certificate Sign, CRL Sign") && !ku.contains("Digital"), "{ku}");
    assert!(ca.contains("ASN1 OID: prime256v1"), "ECDSA P-256 CA:\n{ca}");
    assert!(ca.contains("ecdsa-with-SHA256"), "{ca}");
    for permitted in [
        "IP:10.0.0.0/255.0.0.0",
        "IP:172.16.0.0/255.240.0.0",
        "IP:192.168.0.0/255.255.0.0",
        "IP:169.254.0.0/255.255.0.0",
        "IP:100.64.0.0/255.192.0.0",
        "IP:FC00:0:0:0:0:0:0:0/FE00:0:0:0:0:0:0:0",
        "IP:FE80:0:0:0:0:0:0:0/FFC0:0:0:0:0:0:0:0",
        "DNS:local",
        "DNS:home.arpa",
        // loopback is in this config
        "IP:127.0.0.0/255.0.0.0",
        "DNS:localhost",
    ] {
        assert!(ca.lines().any(|l| l.trim() == permitted), "permitted subtree {permitted} missing:\n{ca}");
    }
    assert!(!ca.contains("DNS:.local"), "RFC 5280 form has no leading dot:\n{ca}");
    assert!(!ca.contains("Excluded"), "{ca}");
    let eku = after(&ca, "X509v3 Extended Key Usage");
    assert!(
        eku.contains("TLS Web Server Authentication") && !eku.contains(','),
        "the CA is for web servers only: {eku}"
    );
    let ca_info = camera_pki::describe(&m.bundle.ca_der).unwrap();
    let ca_days = (ca_info.not_after_unix - ca_info.not_before_unix) / 86_400;
    assert!((3652..=3653).contains(&ca_days), "CA valid 10 years, not {ca_days} days");
    assert!(ca_info.subject.contains("Root CA"), "{}", ca_info.subject);

    let leaf = x509_text(&m.leaf);
    assert!(leaf.contains("TLS Web Server Authentication"), "EKU serverAuth:\n{leaf}");
    let ku = after(&leaf, "X509v3 Key Usage");
    assert!(ku.contains("Digital Signature") && !ku.contains("Certificate Sign"), "{ku}");
    assert!(leaf.contains("CA:FALSE"), "{leaf}");
    assert!(leaf.contains("X509v3 Subject Alternative Name"), "{leaf}");
    assert!(leaf.contains("X509v3 Authority Key Identifier"), "{leaf}");
    assert!(leaf.contains("ASN1 OID: prime256v1"), "{leaf}");
    let leaf_info = camera_pki::describe(&m.bundle.leaf_der).unwrap();
    assert!(leaf_info.not_after_unix - leaf_info.not_before_unix <= 365 * 86_400, "validity at most 365 days");
    // CN is neither an IP address nor a host name.
    let cn = leaf_info.subject.split("CN=").nth(1).unwrap_or_default().to_owned();
    assert!(cn.contains(' '), "CN {cn:?} should not look like a host name");
    assert!(cn.parse::<std::net::IpAddr>().is_err());

    // Serial: 16 random bytes, positive: openssl prints 32 hex digits (first below 0x80).
    let serial = openssl(["x509", "-noout", "-serial", "-in", m.leaf.to_str().unwrap()]);
    let hex = serial.stdout.trim().trim_start_matches("serial=").to_owned();
    assert_eq!(hex.len(), 32, "16-byte serial, got {hex}");
    assert!(u8::from_str_radix(&hex[..2], 16).unwrap() < 0x80);
    let other = minted("ossl-text-2");
    let serial2 = openssl(["x509", "-noout", "-serial", "-in", other.leaf.to_str().unwrap()]);
    assert_ne!(serial.stdout, serial2.stdout, "serials are random");
}

#[test]
fn webpki_verifies_the_server_certificate_for_every_name() {
    let m = minted("webpki");
    let names = san_names(&m.bundle.leaf_der);
    for want in ["127.0.0.1", "::1", "testcam.local", "door.home.arpa", "localhost"] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
    webpki_verify(&cert_der(&m.dir.state().join("ca.crt")), &m.bundle.leaf_der, &names).unwrap();
    // A name it does not carry is refused.
    let err = webpki_verify(&m.bundle.ca_der, &m.bundle.leaf_der, &["other.local".into()]).unwrap_err();
    assert!(err.contains("other.local"), "{err}");
    // The leaf does not verify under another camera's CA.
    let other = minted("webpki-other");
    assert!(webpki_verify(&other.bundle.ca_der, &m.bundle.leaf_der, &[]).is_err());
}
