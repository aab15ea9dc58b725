//! Encrypted keys whose key derivation would cost the camera too much memory or CPU are refused
//! before the work starts, and the costliest ones allowed still open.
//!
//! A counting allocator measures what one validation allocates on the calling thread, so the
//! scrypt memory rule is checked against the scrypt crate's real allocations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use camera_upload::{validate_upload, UploadError, UploadInput, MAX_KDF_MEMORY};
use common::*;
use pkcs5::pbes2;
use pkcs8::der::asn1::{ObjectIdentifier, OctetString};
use pkcs8::der::Encode;

/// The system allocator, counting the bytes live on threads that asked to be measured.
struct Counting;

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    // try_with: the allocator also runs while thread-locals are being torn down.
    let _ = MEASURING.try_with(|m| {
        if m.get() {
            let live = LIVE.with(|l| {
                l.set(l.get() + delta);
                l.get()
            });
            PEAK.with(|p| p.set(p.get().max(live)));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counting only reads the
// sizes it is given and touches const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours, forwarded.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours, forwarded.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize));
        // SAFETY: `ptr` came from this allocator (so from System) with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as ours, forwarded.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f`, returning its result and the most bytes it had allocated at once on this thread.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    MEASURING.with(|m| m.set(true));
    let out = f();
    MEASURING.with(|m| m.set(false));
    (out, PEAK.with(Cell::get).max(0) as usize)
}

const MIB: usize = 1 << 20;

/// An encrypted PKCS#8 key whose scrypt parameters are (n, r, p); the ciphertext is random-looking
/// filler, since a refusal must come before any decryption.
fn scrypt_pkcs8(n: u64, r: u16, p: u16) -> Vec<u8> {
    let salt = [7u8; 16];
    let params = pbes2::Parameters {
        kdf: pbes2::Kdf::Scrypt(pbes2::ScryptParams {
            salt: &salt,
            cost_parameter: n,
            block_size: r,
            parallelization: p,
            key_length: None,
        }),
        encryption: pbes2::EncryptionScheme::Aes256Cbc { iv: &[1u8; 16] },
    };
    pkcs8::EncryptedPrivateKeyInfo {
        encryption_algorithm: pkcs5::EncryptionScheme::Pbes2(params),
        encrypted_data: &[0x5a; 1232],
    }
    .to_der()
    .unwrap()
}

fn refused_at_once(key: &[u8], what: &str) {
    let f = fixture();
    let cert = f.read("server.crt");
    let start = Instant::now();
    let (result, peak) = peak_of(|| {
        validate_upload(&UploadInput { certificate: Some(&cert), key: Some(key), passphrase: Some("s3cret") }, &ctx())
    });
    let elapsed = start.elapsed();
    match result {
        Err(UploadError::KdfTooExpensive) => {}
        Err(e) => {
            panic!("{what}: refused as {} ({e}), not kdf_too_expensive, after {elapsed:?}, {peak} bytes", e.code())
        }
        Ok(_) => panic!("{what}: accepted after {elapsed:?}, {peak} bytes"),
    }
    assert!(peak < MIB, "{what}: {peak} bytes allocated before the refusal");
    assert!(elapsed < Duration::from_secs(1), "{what}: took {elapsed:?} before the refusal");
}

/// A hostile file: N=2, r=65535, p=2 makes scrypt allocate 128·r·(N+p+1) = 40 MiB (a check of N·r
/// alone lets it through); four uploads at once would need 168 MB on a camera with 64-128 MiB.
#[test]
fn scrypt_needing_40_mib_is_refused_before_allocating() {
    refused_at_once(&scrypt_pkcs8(2, 65535, 2), "scrypt N=2 r=65535 p=2");
    // The same memory through p instead of r, and twice OpenSSL's default table.
    refused_at_once(&scrypt_pkcs8(2, 8, 40_000), "scrypt N=2 r=8 p=40000");
    refused_at_once(&scrypt_pkcs8(1 << 15, 8, 1), "scrypt N=32768 r=8 p=1");
}

/// OpenSSL's default scrypt (N=16384, r=8, p=1) needs 16 MiB + 2 KiB, the most allowed: one more
/// parallel lane (1 KiB) is refused, and opening the default file allocates no more than the cap
/// plus the upload's own few kilobytes, so the formula matches the scrypt crate's allocations.
#[test]
fn the_largest_scrypt_allowed_opens_within_the_cap() {
    assert_eq!(MAX_KDF_MEMORY, 16 * MIB + 2048);
    refused_at_once(&scrypt_pkcs8(1 << 14, 8, 2), "scrypt N=16384 r=8 p=2");
    let f = fixture();
    let (cert, key) = (f.read("server.crt"), f.read("server.scrypt.p8"));
    let (result, peak) = peak_of(|| {
        validate_upload(&UploadInput { certificate: Some(&cert), key: Some(&key), passphrase: Some("s3cret") }, &ctx())
    });
    let accepted = result.unwrap_or_else(|e| panic!("{} ({e})", e.code()));
    eprintln!("opening OpenSSL's default scrypt file: {peak} bytes at the peak, cap {MAX_KDF_MEMORY}");
    assert_key_matches(&accepted);
    assert!(peak >= MAX_KDF_MEMORY, "only {peak} bytes: is this still scrypt N=16384 r=8 p=1?");
    assert!(peak < MAX_KDF_MEMORY + 256 * 1024, "{peak} bytes at the peak, cap {MAX_KDF_MEMORY}");
}

/// A PKCS#8 key encrypted with PKCS#12's `pbeWithSHAAnd3-KeyTripleDES-CBC` at `iterations`;
/// filler ciphertext.
fn pkcs12_3des_pkcs8(iterations: i32) -> Vec<u8> {
    use pkcs12::pbe_params::{EncryptedPrivateKeyInfo, Pkcs12PbeParams};
    let params = Pkcs12PbeParams { salt: OctetString::new([3u8; 8]).unwrap(), iterations };
    EncryptedPrivateKeyInfo {
        encryption_algorithm: pkcs8::spki::AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.3"),
            parameters: Some(pkcs8::der::Any::encode_from(&params).unwrap()),
        },
        encrypted_data: OctetString::new(vec![0x5a; 1232]).unwrap(),
    }
    .to_der()
    .unwrap()
}

/// A 24-byte 3DES key from SHA-1 (20-byte blocks) takes two rounds of the iteration count, and the
/// IV one more: three rounds of SHA-1, charged as two. At 9 million iterations that was 27 million
/// SHA-1 hashes (seconds of CPU on a camera per upload) inside a budget meant for 20 million
/// iterations of the cheapest derivation.
#[test]
fn pkcs12_3des_is_charged_for_every_round() {
    refused_at_once(&pkcs12_3des_pkcs8(9_000_000), "PKCS#12 3DES, 9M iterations");
}

/// PBKDF2 also runs its iterations once per output block: AES-256 (32 bytes) from HMAC-SHA1 (20)
/// is two blocks, charged as one.
#[test]
fn pbkdf2_is_charged_for_every_block() {
    let params = pbes2::Parameters {
        kdf: pbes2::Kdf::Pbkdf2(pbes2::Pbkdf2Params {
            salt: &[9u8; 16],
            iteration_count: 6_000_000,
            key_length: None,
            prf: pbes2::Pbkdf2Prf::HmacWithSha1,
        }),
        encryption: pbes2::EncryptionScheme::Aes256Cbc { iv: &[1u8; 16] },
    };
    let der = pkcs8::EncryptedPrivateKeyInfo {
        encryption_algorithm: pkcs5::EncryptionScheme::Pbes2(params),
        encrypted_data: &[0x5a; 1232],
    }
    .to_der()
    .unwrap();
    refused_at_once(&der, "PBKDF2-HMAC-SHA1 AES-256, 6M iterations");
}
