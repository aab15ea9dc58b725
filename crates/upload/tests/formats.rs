//! Every input form installers produce is accepted, auto-detected, with the chain in order and the
//! key matching the certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use camera_upload::{validate_upload, Context, UploadInput};
use common::*;

fn ok(cert: &[u8], key: Option<&[u8]>, pass: Option<&str>, chain: &[&str]) -> camera_upload::Accepted {
    let acc = upload(Some(cert), key, pass).unwrap_or_else(|e| panic!("{chain:?}: {} ({e})", e.code()));
    assert_accepted(&acc, chain);
    assert!(!acc.key_from_pending_csr);
    acc
}

#[test]
fn maker_instructions_rsa_pkcs8_pem() {
    let f = fixture();
    let acc = ok(&f.read("server.crt"), Some(&f.read("server.key")), None, &["server.crt"]);
    // Root not uploaded: the PC must trust it.
    assert_eq!(codes(&acc), vec!["issuer_not_included"]);
}

#[test]
fn rsa_key_encodings() {
    let f = fixture();
    let cert = f.read("server.crt");
    for key in ["server.pkcs1.key", "server.pkcs1.der", "server.pkcs8.der"] {
        ok(&cert, Some(&f.read(key)), None, &["server.crt"]);
    }
    // DER certificate too, and the same PKCS#8 bytes come out whatever the input form.
    let a = ok(&f.read("server.der"), Some(&f.read("server.pkcs1.der")), None, &["server.crt"]);
    let b = ok(&cert, Some(&f.read("server.key")), None, &["server.crt"]);
    assert_eq!(a.key_pkcs8, b.key_pkcs8);
}

#[test]
fn ec_keys_sec1_and_pkcs8() {
    let f = fixture();
    for n in ["256", "384"] {
        let cert = f.read(&format!("ec{n}.crt"));
        let chain = format!("ec{n}.crt");
        for key in ["params.key", "sec1.key", "p8.key", "sec1.der"] {
            let acc = ok(&cert, Some(&f.read(&format!("ec{n}.{key}"))), None, &[&chain]);
            assert!(acc.warnings.iter().all(|w| w.code == "issuer_not_included"), "{:?}", acc.warnings);
        }
        ok(&cert, Some(&f.read(&format!("ec{n}.legacy.key"))), Some("s3cret"), &[&chain]);
    }
}

#[test]
fn encrypted_keys() {
    let f = fixture();
    let cert = f.read("server.crt");
    for key in [
        "server.enc.p8",
        "server.enc.p8.der",
        "server.scrypt.p8",
        "server.sha1.p8",
        "server.legacy.key",
        "server.legacy3des.key",
        "server.legacy128.key",
    ] {
        ok(&cert, Some(&f.read(key)), Some("s3cret"), &["server.crt"]);
    }
}

#[test]
fn chain_in_shuffled_order_with_root() {
    let f = fixture();
    let certs = f.cat(&["rootCA.crt", "leaf2.crt", "int.crt"]);
    let acc = ok(&certs, Some(&f.read("leaf2.key")), None, &["leaf2.crt", "int.crt", "rootCA.crt"]);
    assert!(acc.warnings.is_empty(), "{:?}", acc.warnings);
    // Without the root: leaf then intermediate, and a note that the PC must trust the root.
    let certs = f.cat(&["int.crt", "leaf2.crt"]);
    let acc = ok(&certs, Some(&f.read("leaf2.key")), None, &["leaf2.crt", "int.crt"]);
    assert_eq!(codes(&acc), vec!["issuer_not_included"]);
}

#[test]
fn pasted_text_with_crlf_indent_and_surrounding_text() {
    let f = fixture();
    let mut text = b"Here is your certificate:\r\n\r\n".to_vec();
    for name in ["leaf2.crt", "int.crt"] {
        let pem = String::from_utf8(f.read(name)).unwrap();
        for line in pem.lines() {
            text.extend_from_slice(b"   ");
            text.extend_from_slice(line.as_bytes());
            text.extend_from_slice(b"\r\n");
        }
        text.extend_from_slice(b"Regards, the CA\r\n");
    }
    ok(&text, Some(&f.read("leaf2.key")), None, &["leaf2.crt", "int.crt"]);
    // Base64 body pasted without the BEGIN/END lines.
    let pem = String::from_utf8(f.read("server.crt")).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().join("\n");
    ok(body.as_bytes(), Some(&f.read("server.key")), None, &["server.crt"]);
}

#[test]
fn combined_key_cert_chain_in_one_file() {
    let f = fixture();
    let acc = ok(&f.read("combined.pem"), None, None, &["leaf2.crt", "int.crt", "rootCA.crt"]);
    assert!(acc.warnings.is_empty(), "{:?}", acc.warnings);
    // Swapped fields (key in the certificate field and the other way round) work too.
    ok(&f.read("leaf2.key"), Some(&f.cat(&["leaf2.crt", "int.crt"])), None, &["leaf2.crt", "int.crt"]);
}

#[test]
fn pkcs12_default_openssl3() {
    let f = fixture();
    ok(&f.read("server.p12"), None, Some("s3cret"), &["server.crt"]);
    ok(&f.read("server.chain.p12"), None, Some("s3cret"), &["server.crt", "rootCA.crt"]);
    ok(&f.read("leaf2.chain.p12"), None, Some("s3cret"), &["leaf2.crt", "int.crt"]);
}

#[test]
fn pkcs12_legacy_and_empty_passphrase() {
    let f = fixture();
    ok(&f.read("server.legacy.p12"), None, Some("s3cret"), &["server.crt", "rootCA.crt"]);
    ok(&f.read("server.empty.p12"), None, None, &["server.crt"]);
    ok(&f.read("server.empty.p12"), None, Some(""), &["server.crt"]);
}

#[test]
fn certificate_alone_for_the_pending_csr() {
    let f = fixture();
    let pending = f.read("cam.key.der");
    let ctx = Context { pending_key_pkcs8: Some(&pending), ..ctx() };
    let cert = f.read("cam.crt");
    let acc = validate_upload(&UploadInput { certificate: Some(&cert), key: None, passphrase: None }, &ctx).unwrap();
    assert!(acc.key_from_pending_csr);
    assert_accepted(&acc, &["cam.crt"]);
    assert_eq!(&acc.key_pkcs8[..], &pending[..]);
}

#[test]
fn rustls_forms() {
    let f = fixture();
    let acc = ok(&f.read("server.crt"), Some(&f.read("server.pkcs1.key")), None, &["server.crt"]);
    assert_eq!(acc.certificate_chain().len(), 1);
    assert!(matches!(acc.private_key(), rustls_pki_types::PrivateKeyDer::Pkcs8(_)));
    let dbg = format!("{acc:?}");
    assert!(dbg.contains("redacted"));
}
