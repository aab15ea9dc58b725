//! Measures what each key derivation costs relative to one PBKDF2-HMAC-SHA256 iteration: the
//! weights `crypto::work` charges uploads for. Run on the target in release mode:
//! `cargo run --release -p camera-upload --example kdf_cost` (best of five runs each).

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Instant;

fn best(mut f: impl FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    const ITERATIONS: u32 = 200_000;
    let count = NonZeroU32::new(ITERATIONS).unwrap_or(NonZeroU32::MIN);
    let mut key = [0u8; 64];
    let unit = best(|| ring::pbkdf2::derive(ring::pbkdf2::PBKDF2_HMAC_SHA256, count, b"salt", b"pw", &mut key[..32]))
        / f64::from(ITERATIONS);
    println!("unit: one PBKDF2-HMAC-SHA256 iteration = {:.0} ns", unit * 1e9);
    for (name, alg, len) in [
        ("HMAC-SHA1", ring::pbkdf2::PBKDF2_HMAC_SHA1, 20),
        ("HMAC-SHA384", ring::pbkdf2::PBKDF2_HMAC_SHA384, 48),
        ("HMAC-SHA512", ring::pbkdf2::PBKDF2_HMAC_SHA512, 64),
    ] {
        let t = best(|| ring::pbkdf2::derive(alg, count, b"salt", b"pw", &mut key[..len])) / f64::from(ITERATIONS);
        println!("PBKDF2 {name} iteration: {:.2} units", t / unit);
    }
    for (name, alg) in [("SHA-1", &ring::digest::SHA1_FOR_LEGACY_USE_ONLY), ("SHA-256", &ring::digest::SHA256)] {
        let t = best(|| {
            let mut a = ring::digest::digest(alg, b"x");
            for _ in 0..ITERATIONS {
                a = ring::digest::digest(alg, a.as_ref());
            }
            black_box(a);
        }) / f64::from(ITERATIONS);
        println!("PKCS#12 KDF {name} hash: {:.2} units", t / unit);
    }
    for (log_n, r, p) in [(14u8, 8u32, 1u32), (10, 8, 16), (14, 1, 8), (1, 8, 4096), (1, 1, 32768)] {
        let Ok(params) = scrypt::Params::new(log_n, r, p, 32) else { continue };
        let t = best(|| {
            let _ = scrypt::scrypt(b"pw", b"salt", &params, &mut key[..32]);
        });
        let rp = f64::from(r) * f64::from(p);
        println!(
            "scrypt N=2^{log_n} r={r} p={p}: {:.1} ms, {:.2} units per N*r*p, {:.1} units per r*p",
            t * 1e3,
            t / unit / (rp * f64::from(1u32 << log_n)),
            t / unit / rp
        );
    }
}
