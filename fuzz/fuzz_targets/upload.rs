//! `camera_upload::validate_upload`: what `PUT /api/v1/certificate` does with the installer's
//! files (certificate, key, chain, PKCS#12, pasted text, passphrase).
//!
//! Input: one flags byte, then up to three fields separated by `--fuzz-field--`: certificate,
//! key, passphrase (an empty field is absent). Flags: bit 0 = the camera has a pending CSR key
//! (`data/pending-key.pk8`, the key the seed certificates `*-for-pending*` were issued for);
//! bits 1-2 = the camera's clock (2027-01-15, 1970, 2040, or 2026-06-01); bit 3 = the camera
//! has no addresses. With `FUZZ_VERBOSE=1` in the environment it prints each input's outcome
//! (`FUZZ_VERBOSE=1 fuzz/target/x86_64-unknown-linux-gnu/release/upload fuzz/corpus/upload/*`).

#![no_main]

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use camera_upload::{validate_upload, Context, KeyPurpose, UploadInput};
use libfuzzer_sys::fuzz_target;

const SEPARATOR: &[u8] = b"--fuzz-field--";
const PENDING_KEY: &[u8] = include_bytes!("../data/pending-key.pk8");

fn split_fields(mut data: &[u8]) -> [&[u8]; 3] {
    let mut fields: [&[u8]; 3] = [&[]; 3];
    for (i, field) in fields.iter_mut().enumerate() {
        let at = (i < 2).then(|| data.windows(SEPARATOR.len()).position(|w| w == SEPARATOR)).flatten();
        match at {
            Some(at) => {
                *field = &data[..at];
                data = &data[at + SEPARATOR.len()..];
            }
            None => {
                *field = data;
                break;
            }
        }
    }
    fields
}

fn verbose() -> bool {
    static VERBOSE: OnceLock<bool> = OnceLock::new();
    *VERBOSE.get_or_init(|| std::env::var_os("FUZZ_VERBOSE").is_some())
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let [certificate, key, passphrase] = split_fields(rest);
    let passphrase = String::from_utf8_lossy(passphrase);
    let input = UploadInput {
        certificate: (!certificate.is_empty()).then_some(certificate),
        key: (!key.is_empty()).then_some(key),
        passphrase: (!passphrase.is_empty()).then_some(&passphrase),
    };
    let now = SystemTime::UNIX_EPOCH
        + Duration::from_secs(match (flags >> 1) & 3 {
            0 => 1_800_000_000,
            1 => 0,
            2 => 2_208_988_800,
            _ => 1_780_272_000,
        });
    let (ips, dns): (Vec<IpAddr>, Vec<String>) = if flags & 8 == 0 {
        (
            vec![IpAddr::from([192, 168, 1, 120]), "fd00::120".parse().unwrap_or(IpAddr::from([0u8; 16]))],
            vec!["cam-lobby".into(), "cam-lobby.local".into()],
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let ctx = Context {
        now,
        pending_key_pkcs8: (flags & 1 != 0).then_some(PENDING_KEY),
        current_ips: &ips,
        current_dns: &dns,
        purpose: if flags & 16 == 0 { KeyPurpose::TlsServer } else { KeyPurpose::TlsClient },
    };
    let result = validate_upload(&input, &ctx);
    if verbose() {
        match &result {
            Ok(a) => eprintln!(
                "upload: accepted, chain of {}, warnings {:?}",
                a.chain_der.len(),
                a.warnings.iter().map(|w| w.code).collect::<Vec<_>>()
            ),
            Err(e) => eprintln!("upload: refused: {}", e.code()),
        }
    }
    match result {
        Ok(accepted) => {
            // What camera-web does next with an accepted upload must work too: describe the leaf,
            // load the key into rustls, store key + chain as one PEM file that loads back the same.
            let leaf = accepted.chain_der.first().expect("accepted without a certificate");
            camera_pki::describe(leaf).expect("an accepted leaf cannot be described");
            for der in &accepted.chain_der[1..] {
                let _ = camera_pki::describe(der);
            }
            rustls::crypto::ring::default_provider()
                .key_provider
                .load_private_key(accepted.private_key().clone_key())
                .expect("rustls cannot load an accepted key");
            let certs: Vec<&[u8]> = accepted.chain_der.iter().map(Vec::as_slice).collect();
            let bundle = camera_pki::pem::key_bundle(&accepted.key_pkcs8, &certs, "CERTIFICATE");
            let key = camera_pki::pem::pkcs8_key(bundle.as_bytes()).expect("stored bundle unreadable");
            assert_eq!(key.as_deref().map(Vec::as_slice), Some(&accepted.key_pkcs8[..]));
            assert_eq!(camera_pki::pem::certificates(bundle.as_bytes()).ok().as_ref(), Some(&accepted.chain_der));
        }
        Err(e) => {
            let notice = e.notice();
            assert!(!notice.message.is_empty());
        }
    }
});
