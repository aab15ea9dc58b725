//! What real clients make of the certificates: OpenSSL's verifier and rustls-webpki, including
//! that the CA's name constraints stop it from vouching for public names.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use common::*;

/// A provisioned directory with the leaf and the certificate sent after it (the issuing CA)
/// split out of server.pem.
struct Minted {
    dir: TempDir,
    /// `state/ca.crt`: the root, what users import.
    ca_crt: PathBuf,
    signer: PathBuf,
    leaf: PathBuf,
    bundle: Bundle,
}

const CONFIG: &str = r#"{"camera": {"hostname": "testcam", "loopback": true, "extra_names": ["door.home.arpa"]}}"#;

fn minted(tag: &str) -> Minted {
    minted_on(TempDir::new(tag))
}

/// [`minted`] on a camera made before two tiers.
fn minted_one_tier(tag: &str) -> Minted {
    let dir = TempDir::new(tag);
    seed_one_tier_ca(&dir.state(), true);
    minted_on(dir)
}

fn minted_on(dir: TempDir) -> Minted {
    let config = config_file(&dir, CONFIG);
    provision(&dir, &["--config", config.to_str().unwrap()]).assert_ok().summary();
    let bundle = split_bundle(&dir.run().join("server.pem"));
    let leaf = dir.join("leaf.pem");
    let signer = dir.join("signer.pem");
    std::fs::write(&leaf, &bundle.leaf_pem).unwrap();
    std::fs::write(&signer, &bundle.signer_pem).unwrap();
    Minted { ca_crt: dir.state().join("ca.crt"), dir, signer, leaf, bundle }
}

#[test]
fn openssl_verifies_the_server_certificate_strictly() {
    let m = minted("ossl-ok");
    // Trusting only ca.crt, with the chain the camera sends.
    let run = openssl_verify(&m.ca_crt, Some(&m.signer), &m.leaf, &[]);
    assert!(run.accepted && run.said.contains(": OK"), "openssl verify must accept the minted leaf:\n{}", run.said);
    // Without the issuing CA there is no path to the root: the chain is needed (and the root
    // alone is not what signed the leaf).
    let run = openssl_verify(&m.ca_crt, None, &m.leaf, &[]);
    assert!(!run.accepted && run.said.contains("unable to get local issuer certificate"), "{}", run.said);
    // Each name, as a client checks it against what it connected to.
    for (flag, name) in [
        ("-verify_ip", "127.0.0.1"),
        ("-verify_ip", "::1"),
        ("-verify_hostname", "testcam.local"),
        ("-verify_hostname", "door.home.arpa"),
        ("-verify_hostname", "localhost"),
    ] {
        let run = openssl_verify(&m.ca_crt, Some(&m.signer), &m.leaf, &[flag, name]);
        assert!(run.accepted, "openssl verify {flag} {name}:\n{}", run.said);
    }
    // And a name the certificate does not carry is refused (the check above is real).
    let run = openssl_verify(&m.ca_crt, Some(&m.signer), &m.leaf, &["-verify_hostname", "other.local"]);
    assert!(!run.accepted, "openssl accepted a name the certificate does not carry: {}", run.said);
}

/// Leaves for public names, signed by openssl with the key a stolen camera gives away (the
/// issuing CA's, or a one-tier CA's), and a control leaf for private names. Returns the control
/// leaf and the public ones with their subjectAltName.
fn leaves_signed_with_the_cameras_key(m: &Minted) -> (PathBuf, Vec<(&'static str, PathBuf)>) {
    let state = m.dir.state();
    let private = openssl_signed_leaf(m.dir.path(), &state, "private", "IP:10.1.2.3,DNS:cam.local,IP:fd00::5");
    let public =
        [("public-dns", "DNS:www.example.com"), ("public-ip", "IP:8.8.8.8"), ("public-v6", "IP:2001:4860::8888")]
            .into_iter()
            .map(|(tag, san)| (san, openssl_signed_leaf(m.dir.path(), &state, tag, san)))
            .collect();
    (private, public)
}

#[test]
fn openssl_and_webpki_refuse_public_names_signed_with_the_issuing_key() {
    for m in [minted("ossl-nc"), minted_one_tier("ossl-nc-one-tier")] {
        let ca_crt = cert_der(&m.ca_crt);
        let signer = m.bundle.signer_der.as_slice();
        let (private, public) = leaves_signed_with_the_cameras_key(&m);
        // Control: the same openssl-made leaf for private names verifies, so a failure below is
        // the name constraints' doing and not a defect of the hand-made leaf.
        let run = openssl_verify(&m.ca_crt, Some(&m.signer), &private, &[]);
        assert!(run.accepted, "control leaf for private names must verify:\n{}", run.said);
        webpki_verify(&ca_crt, &[signer], &cert_der(&private), &["10.1.2.3".into(), "cam.local".into()]).unwrap();
        for (san, leaf) in public {
            let run = openssl_verify(&m.ca_crt, Some(&m.signer), &leaf, &[]);
            let said = &run.said;
            assert!(!run.accepted, "openssl accepted {san} signed with the camera's key:\n{said}");
            assert!(said.contains("permitted subtree violation"), "{san}: expected a name-constraint refusal:\n{said}");
            let err =
                webpki_verify(&ca_crt, &[signer], &cert_der(&leaf), &[]).expect_err("webpki accepted a public name");
            assert!(err.contains("NameConstraintViolation"), "{san}: {err}");
        }
    }
}

/// RFC 5280 lets a validator ignore a trust anchor's name constraints, and Java's does. With two
/// tiers that does not matter: the issuing CA in the path carries them too. With one tier, the
/// trust anchor's were the only ones (which is also what shows the anchor's are really ignored).
#[test]
fn the_issuing_cas_constraints_refuse_public_names_where_the_anchors_are_ignored() {
    for (m, two_tier) in [(minted("nc-ignored"), true), (minted_one_tier("nc-ignored-one-tier"), false)] {
        let ca_crt = cert_der(&m.ca_crt);
        let signer = m.bundle.signer_der.as_slice();
        let (private, public) = leaves_signed_with_the_cameras_key(&m);
        webpki_verify_ignoring_anchor_constraints(&ca_crt, &[signer], &cert_der(&private), &["10.1.2.3".into()])
            .unwrap();
        for (san, leaf) in public {
            let verdict = webpki_verify_ignoring_anchor_constraints(&ca_crt, &[signer], &cert_der(&leaf), &[]);
            if two_tier {
                let err = verdict.expect_err("a public name passed the issuing CA's constraints");
                assert!(err.contains("NameConstraintViolation"), "{san}: {err}");
            } else {
                assert!(verdict.is_ok(), "{san}: a one-tier CA's constraints are on the anchor only: {verdict:?}");
            }
        }
    }
}

/// The name constraints say nothing about e-mail addresses or client names: the CAs' own
/// extendedKeyUsage (serverAuth only) is what keeps a stolen issuing key from signing e-mail
/// (S/MIME) or client certificates that a computer trusting the root "for all purposes" would accept.
#[test]
fn the_camera_ca_signs_for_web_servers_only() {
    for m in [minted("ossl-eku"), minted_one_tier("ossl-eku-one-tier")] {
        let state = m.dir.state();
        let leaf = openssl_signed_leaf_for(
            m.dir.path(),
            &state,
            "email",
            "email:ceo@bank.example,IP:10.1.2.3",
            "emailProtection,clientAuth",
        );
        for purpose in ["smimesign", "smimeencrypt", "sslclient"] {
            let run = openssl_verify(&m.ca_crt, Some(&m.signer), &leaf, &["-purpose", purpose]);
            let said = &run.said;
            assert!(!run.accepted, "openssl accepted a {purpose} certificate signed by the camera CA:\n{said}");
            assert!(said.contains("certificate purpose"), "{purpose}: {said}");
        }
    }
}

#[test]
fn openssl_shows_the_security_baseline_extensions() {
    let m = minted("ossl-text");
    let after = |text: &str, header: &str| -> String {
        let mut lines = text.lines().skip_while(|l| !l.contains(header));
        let head = lines.next().unwrap_or_else(|| panic!("no {header:?} in:\n{text}")).to_owned();
        format!("{head}\n{}", lines.next().unwrap_or(""))
    };
    let root_der = cert_der(&m.ca_crt);
    for (ca_path, ca_der, path_len, cn) in
        [(&m.ca_crt, &root_der, 1, "Root CA"), (&m.signer, &m.bundle.signer_der, 0, "Issuing CA")]
    {
        let ca = x509_text(ca_path);
        assert!(ca.contains("X509v3 Name Constraints: critical"), "{ca}");
        let bc = after(&ca, "X509v3 Basic Constraints");
        assert!(bc.contains("critical") && bc.contains(&format!("CA:TRUE, pathlen:{path_len}")), "{bc}");
        let ku = after(&ca, "X509v3 Key Usage");
        assert!(
            ku.contains("critical") && ku.contains("Certificate Sign, CRL Sign") && !ku.contains("Digital"),
            "{ku}"
        );
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
        let ca_info = camera_pki::describe(ca_der).unwrap();
        let ca_days = (ca_info.not_after_unix - ca_info.not_before_unix) / 86_400;
        assert!((3652..=3653).contains(&ca_days), "CA valid 10 years, not {ca_days} days");
        assert!(ca_info.subject.contains(cn), "{}", ca_info.subject);
    }
    let root_info = camera_pki::describe(&root_der).unwrap();
    assert!(root_info.self_signed, "{root_info:?}");
    assert_eq!(camera_pki::describe(&m.bundle.signer_der).unwrap().issuer, root_info.subject);
    assert!(x509_text(&m.signer).contains("X509v3 Authority Key Identifier"));

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
    verify_served(&m.dir, &names).unwrap();
    // A name it does not carry is refused.
    let err = verify_served(&m.dir, &["other.local".into()]).unwrap_err();
    assert!(err.contains("other.local"), "{err}");
    // Without the issuing CA there is no path to the root.
    assert!(webpki_verify(&cert_der(&m.ca_crt), &[], &m.bundle.leaf_der, &[]).is_err());
    // The leaf does not verify under another camera's root, with either camera's issuing CA.
    let other = minted("webpki-other");
    let other_root = cert_der(&other.ca_crt);
    for signer in [&m.bundle.signer_der, &other.bundle.signer_der] {
        assert!(webpki_verify(&other_root, &[signer], &m.bundle.leaf_der, &[]).is_err());
    }
}
