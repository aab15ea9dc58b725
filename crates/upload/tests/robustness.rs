//! Damaged, hostile or absurd uploads are refused without panics and without burning the CPU.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use camera_upload::{validate_upload, Context, UploadInput};
use common::*;
use pkcs8::der::Encode;

fn run(cert: Option<&[u8]>, key: Option<&[u8]>, pass: Option<&str>, ctx: &Context, what: &str) {
    let input = UploadInput { certificate: cert, key, passphrase: pass };
    let result = catch_unwind(AssertUnwindSafe(|| validate_upload(&input, ctx)));
    assert!(result.is_ok(), "panic on {what}");
}

/// Deterministic positions spread over the input (no rand dependency needed).
fn positions(len: usize, count: usize) -> impl Iterator<Item = usize> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..count).map(move |_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % len as u64) as usize
    })
}

#[test]
fn truncations_and_bit_flips_never_panic() {
    let f = fixture();
    let pending = f.read("cam.key.der");
    let ctx = Context { pending_key_pkcs8: Some(&pending), ..ctx() };
    let server_key = f.read("server.key");
    let inputs: Vec<(&str, Vec<u8>, Option<&[u8]>, Option<&str>)> = vec![
        ("server.crt", f.read("server.crt"), Some(&server_key), None),
        ("server.der", f.read("server.der"), Some(&server_key), None),
        ("combined.pem", f.read("combined.pem"), None, None),
        ("server.p12", f.read("server.p12"), None, Some("s3cret")),
        ("server.legacy.p12", f.read("server.legacy.p12"), None, Some("s3cret")),
        ("cam.crt", f.read("cam.crt"), None, None),
    ];
    let keys: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("server.enc.p8", f.read("server.enc.p8"), Some("s3cret")),
        ("server.legacy.key", f.read("server.legacy.key"), Some("s3cret")),
        ("server.pkcs8.der", f.read("server.pkcs8.der"), None),
        ("ec256.params.key", f.read("ec256.params.key"), None),
    ];
    let server_crt = f.read("server.crt");
    let mut cases: Vec<(String, Vec<u8>, Option<Vec<u8>>, Option<&str>, bool)> = Vec::new();
    for (name, data, key, pass) in &inputs {
        cases.push((name.to_string(), data.clone(), key.map(<[u8]>::to_vec), *pass, true));
    }
    for (name, data, pass) in &keys {
        cases.push((name.to_string(), data.clone(), Some(server_crt.clone()), *pass, false));
    }
    let mut runs = 0;
    for (name, data, other, pass, data_is_cert) in &cases {
        let call = |bytes: &[u8], what: &str| {
            if *data_is_cert {
                run(Some(bytes), other.as_deref(), *pass, &ctx, what);
            } else {
                run(other.as_deref(), Some(bytes), *pass, &ctx, what);
            }
        };
        let len = data.len();
        for cut in (0..len.min(64)).chain((0..len).step_by(len / 48 + 1)) {
            call(&data[..cut], &format!("{name} truncated at {cut}"));
            runs += 1;
        }
        for pos in positions(len, 120) {
            let mut flipped = data.clone();
            flipped[pos] ^= 1 << (pos % 8);
            call(&flipped, &format!("{name} bit flip at {pos}"));
            runs += 1;
        }
    }
    assert!(runs > 1000);
}

#[test]
fn absurd_kdf_iterations_are_refused_quickly() {
    // PBES2 (PBKDF2-SHA256, AES-256-CBC) with 99 million iterations: refused before any work.
    let salt = [7u8; 16];
    let iv = [1u8; 16];
    let params = pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(99_000_000, &salt, &iv).unwrap();
    let info = pkcs8::EncryptedPrivateKeyInfo {
        encryption_algorithm: pkcs5::EncryptionScheme::Pbes2(params),
        encrypted_data: &[0u8; 48],
    };
    let der = info.to_der().unwrap();
    let f = fixture();
    let start = Instant::now();
    let e = validate_upload(
        &UploadInput { certificate: Some(&f.read("server.crt")), key: Some(&der), passphrase: Some("x") },
        &ctx(),
    )
    .unwrap_err();
    assert_eq!(e.code(), "kdf_too_expensive");
    assert!(start.elapsed() < Duration::from_secs(1));
    // Just above the limit is refused too.
    let params = pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(10_000_001, &salt, &iv).unwrap();
    let info = pkcs8::EncryptedPrivateKeyInfo {
        encryption_algorithm: pkcs5::EncryptionScheme::Pbes2(params),
        encrypted_data: &[0u8; 48],
    };
    let der = info.to_der().unwrap();
    let e = validate_upload(&UploadInput { certificate: None, key: Some(&der), passphrase: Some("x") }, &ctx())
        .unwrap_err();
    assert_eq!(e.code(), "kdf_too_expensive");
}

#[test]
fn pathological_64k_inputs_finish_fast() {
    const MAX: usize = 64 * 1024;
    let repeat = |unit: &[u8]| -> Vec<u8> { unit.iter().copied().cycle().take(MAX).collect() };
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("BEGIN markers", repeat(b"-----BEGIN ")),
        ("BEGIN CERTIFICATE without END", [b"-----BEGIN CERTIFICATE-----\n".as_slice(), &repeat(b"A")].concat()),
        ("many empty blocks", repeat(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")),
        ("dashes", repeat(b"-")),
        ("nested DER", repeat(&[0x30, 0x80])),
        ("DER with huge length", [[0x30u8, 0x84, 0x7f, 0xff, 0xff, 0xff].as_slice(), &repeat(&[0])].concat()),
        ("zeros", vec![0; MAX]),
        ("base64", repeat(b"MIIB")),
        ("NUL-free binary", (0..MAX).map(|i| (i % 251 + 1) as u8).collect()),
    ];
    for (name, data) in &inputs {
        let start = Instant::now();
        run(Some(data), Some(data), Some("pw"), &ctx(), name);
        assert!(start.elapsed() < Duration::from_secs(2), "{name} took {:?}", start.elapsed());
    }
}

#[test]
fn many_certificates_are_bounded() {
    let f = fixture();
    let one = f.read("server.crt");
    // The same certificate many times is deduplicated; many different ones would be refused.
    let many: Vec<u8> = one.iter().copied().cycle().take(one.len() * 40).collect();
    let acc = validate_upload(
        &UploadInput { certificate: Some(&many), key: Some(&f.read("server.key")), passphrase: None },
        &ctx(),
    )
    .unwrap();
    assert_eq!(acc.chain_der.len(), 1);
}
