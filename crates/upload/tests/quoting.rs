//! Names quoted from an upload (subjects, issuers, alternative names, PEM header values) cannot
//! forge a line or an escape sequence in the sentences the API returns and camera-web logs:
//! their control characters come out escaped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::time::SystemTime;

use camera_upload::{validate_upload, Context, Notice, UploadError, UploadInput};
use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};

/// A CN that would write a forged log line and recolour a terminal.
const FORGED: &str = "cam\n2026-01-01T00:00:00Z camera-web: the admin password was set\x1b[31m\u{202E}";

fn params(cn: &str, sans: &[&str]) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    let now = ::time::OffsetDateTime::now_utc();
    p.not_before = now - ::time::Duration::days(1);
    p.not_after = now + ::time::Duration::days(90);
    p.distinguished_name.push(DnType::CommonName, cn);
    p.subject_alt_names = sans.iter().map(|s| SanType::DnsName((*s).try_into().unwrap())).collect();
    p
}

fn ca(cn: &str) -> (Vec<u8>, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut p = params(cn, &[]);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = p.self_signed(&key).unwrap();
    (cert.der().to_vec(), Issuer::new(p, key))
}

/// A leaf signed by `issuer`, and its PKCS#8 key.
fn leaf(cn: &str, sans: &[&str], issuer: &Issuer<'_, KeyPair>) -> (Vec<u8>, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let cert = params(cn, sans).signed_by(&key, issuer).unwrap();
    (cert.der().to_vec(), key.serialize_der())
}

fn pem(ders: &[&[u8]]) -> Vec<u8> {
    ders.iter().flat_map(|d| camera_pki::pem::encode("CERTIFICATE", d).as_bytes().to_vec()).collect()
}

/// The sentence has no control character left, and shows the escapes instead.
fn assert_escaped(what: &str, sentence: &str) {
    assert!(!sentence.chars().any(|c| c.is_control() || c == '\u{202E}'), "{what}: control characters in {sentence:?}");
    assert!(sentence.contains("cam\\n2026") && sentence.contains("\\x1b[31m"), "{what}: {sentence}");
}

fn refused(cert: &[u8], key: Option<&[u8]>, ctx: &Context) -> UploadError {
    match validate_upload(&UploadInput { certificate: Some(cert), key, passphrase: None }, ctx) {
        Ok(a) => panic!("accepted with warnings {:?}", a.warnings),
        Err(e) => e,
    }
}

fn warning<'a>(warnings: &'a [Notice], code: &str) -> &'a Notice {
    warnings.iter().find(|w| w.code == code).unwrap_or_else(|| panic!("no {code} in {warnings:?}"))
}

#[test]
fn errors_escape_quoted_subjects() {
    let (_, issuer) = ca("Installer CA");
    let (cert, key) = leaf(FORGED, &["cam.example"], &issuer);
    let later = Context { now: SystemTime::now() + days(100), ..ctx() };
    let e = refused(&cert, Some(&key), &later);
    assert_eq!(e.code(), "expired");
    assert_escaped("expired", &e.to_string());
    // The fields keep the name as it is, for programs.
    assert!(matches!(&e, UploadError::Expired { subject, .. } if subject == FORGED));

    let (other, _) = leaf(&format!("{FORGED} 2"), &["cam2.example"], &issuer);
    let e = refused(&pem(&[&cert, &other]), None, &ctx());
    assert_eq!(e.code(), "ambiguous_chain");
    assert_escaped("ambiguous_chain", &e.to_string());

    // A CA of the right name but another key: the chain is broken between two quoted names.
    let (real_ca, real) = ca(FORGED);
    let (fake_ca, _) = ca(FORGED);
    let (cert, key) = leaf("cam", &["cam.example"], &real);
    let e = refused(&pem(&[&cert, &fake_ca]), Some(&key), &ctx());
    assert_eq!(e.code(), "broken_chain");
    assert_escaped("broken_chain", &e.to_string());
    assert!(validate_upload(
        &UploadInput { certificate: Some(&pem(&[&cert, &real_ca])), key: Some(&key), passphrase: None },
        &ctx()
    )
    .is_ok());
}

#[test]
fn warnings_escape_quoted_names() {
    let (_, issuer) = ca(FORGED);
    let dns = "cam\n2026-01-01T00:00:00Z camera-web: the admin password was set\x1b[31m.example";
    let (cert, key) = leaf("cam", &[dns], &issuer);
    let (_, other_ca) = ca("Other CA");
    let (stray, _) = leaf(&format!("{FORGED} stray"), &["other.example"], &other_ca);
    let ips: Vec<IpAddr> = vec!["192.168.1.50".parse().unwrap()];
    let ctx = Context { current_ips: &ips, ..ctx() };
    let accepted = validate_upload(
        &UploadInput { certificate: Some(&pem(&[&cert, &stray])), key: Some(&key), passphrase: None },
        &ctx,
    )
    .unwrap();
    for code in ["issuer_not_included", "extra_certificates_ignored", "name_mismatch"] {
        assert_escaped(code, &warning(&accepted.warnings, code).message);
    }
}

#[test]
fn a_pem_header_value_is_escaped() {
    let f = fixture();
    let key = String::from_utf8(f.read("server.legacy.key")).unwrap();
    // The cipher name is quoted in the refusal; a newline would end the header line, so the forged
    // value carries a vertical tab and an escape sequence instead.
    let forged = key.replace("DEK-Info: AES-256-CBC,", "DEK-Info: AES\x1b[31mX\x0bY,");
    assert_ne!(forged, key);
    let e = validate_upload(
        &UploadInput {
            certificate: Some(&f.read("server.crt")),
            key: Some(forged.as_bytes()),
            passphrase: Some("s3cret"),
        },
        &ctx(),
    )
    .unwrap_err();
    assert_eq!(e.code(), "unsupported_encryption");
    let text = e.to_string();
    assert!(!text.chars().any(char::is_control), "{text:?}");
    assert!(text.contains("AES\\x1b[31MX\\x0bY"), "{text}");
}
