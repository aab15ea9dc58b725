//! The private-key operation of a full handshake alone, on the server core: ring, called the way
//! rustls calls it in camera-web's handshakes, against OpenSSL's libcrypto (nginx's) through
//! `openssl speed`. Both are counted per second of CPU time of the signing thread or process.
//!
//! On x86_64 CPUs with AVX-512 IFMA, OpenSSL 3 computes RSA-2048 with a 52-bit-limb AVX-512 code
//! path that ring does not have; a second `openssl speed` run with that feature masked
//! (`OPENSSL_ia32cap`) shows how much of the difference that path makes.

use std::process::Command;
use std::time::Duration;

use nix::time::{clock_gettime, ClockId};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::SignatureScheme;

use super::handshakes::pin_this_thread;
use super::servers::{KeyType, SERVER_CORE};
use task_support::Result;

/// Signatures per second of CPU time, for one key type.
#[derive(Debug, Clone, Copy)]
pub struct SignRate {
    pub key: KeyType,
    /// ring, as camera-web signs.
    pub ring: f64,
    /// The signature scheme rustls chose for the bench client's offer (the one the handshakes use).
    pub scheme: SignatureScheme,
    /// OpenSSL's libcrypto as installed (`openssl speed`).
    pub openssl: f64,
    /// OpenSSL with AVX-512 IFMA masked off: only for RSA, on CPUs that have IFMA.
    pub openssl_without_ifma: Option<f64>,
}

/// `keys`: each key type with its PKCS#8 key (the very keys the servers use).
pub fn measure(keys: &[(KeyType, &[u8])], seconds: u64, pin: bool) -> Result<Vec<SignRate>> {
    let openssl = openssl_speed(seconds, pin, false)?;
    let ifma = std::env::consts::ARCH == "x86_64" && cpu_has("avx512ifma");
    let masked = if ifma { Some(openssl_speed(seconds, pin, true)?) } else { None };
    let mut rates = Vec::new();
    for &(key, pkcs8) in keys {
        let (ring, scheme) = ring_rate(pkcs8, Duration::from_secs(seconds), pin)?;
        let pick = |speed: &OpensslSpeed| match key {
            KeyType::P256 => speed.ecdsa_p256,
            KeyType::Rsa2048 => speed.rsa2048,
        };
        let openssl = pick(&openssl).ok_or_else(|| format!("openssl speed printed no {} result", key.label()))?;
        let openssl_without_ifma = match key {
            KeyType::Rsa2048 => masked.as_ref().and_then(pick),
            KeyType::P256 => None,
        };
        rates.push(SignRate { key, ring, scheme, openssl, openssl_without_ifma });
    }
    Ok(rates)
}

fn thread_cpu() -> Result<Duration> {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).map_err(|e| format!("thread CPU clock: {e}"))?;
    Ok(Duration::from(t))
}

/// Signs a CertificateVerify-sized message with ring through rustls' signer, in a thread pinned to
/// the server core, for `duration` of that thread's CPU time.
fn ring_rate(pkcs8: &[u8], duration: Duration, pin: bool) -> Result<(f64, SignatureScheme)> {
    let provider = rustls::crypto::ring::default_provider();
    let key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.to_vec())))
        .map_err(|e| format!("ring cannot load the key: {e}"))?;
    // The schemes the bench client offers, in its order: rustls picks as in the handshakes.
    let offered = provider.signature_verification_algorithms.supported_schemes();
    let signer = key.choose_scheme(&offered).ok_or("ring offers no scheme for the key")?;
    let scheme = signer.scheme();
    // 64 spaces, the context string, a zero byte and a SHA-256 transcript hash (RFC 8446, 4.4.3).
    let mut message = vec![b' '; 64];
    message.extend_from_slice(b"TLS 1.3, server CertificateVerify\0");
    message.extend_from_slice(&[0x5a; 32]);
    let thread = std::thread::spawn(move || -> Result<f64> {
        if pin {
            pin_this_thread(SERVER_CORE)?;
        }
        // A few first, so that one-time setup (tables, page faults) is not counted.
        for _ in 0..10 {
            signer.sign(&message).map_err(|e| format!("ring sign: {e}"))?;
        }
        let start = thread_cpu()?;
        let mut count = 0u64;
        loop {
            for _ in 0..20 {
                signer.sign(&message).map_err(|e| format!("ring sign: {e}"))?;
            }
            count += 20;
            let used = thread_cpu()? - start;
            if used >= duration {
                return Ok(count as f64 / used.as_secs_f64());
            }
        }
    });
    let rate = thread.join().map_err(|_| "the signing thread panicked".to_owned())??;
    Ok((rate, scheme))
}

#[derive(Debug, Default)]
struct OpensslSpeed {
    rsa2048: Option<f64>,
    ecdsa_p256: Option<f64>,
}

/// `openssl speed -mr rsa2048 ecdsap256` (machine-readable: `+F2:index:bits:sign/s:verify/s` for
/// RSA, `+F4:...` for ECDSA), pinned like the servers. `mask_ifma`: RSA-2048 only, with AVX-512
/// IFMA (CPUID.7.0:EBX bit 21) hidden from OpenSSL.
fn openssl_speed(seconds: u64, pin: bool, mask_ifma: bool) -> Result<OpensslSpeed> {
    let mut cmd = if pin {
        let mut cmd = Command::new("taskset");
        cmd.arg("-c").arg(SERVER_CORE.to_string()).arg("openssl");
        cmd
    } else {
        Command::new("openssl")
    };
    cmd.args(["speed", "-mr", "-seconds"]).arg(seconds.to_string()).arg("rsa2048");
    if mask_ifma {
        cmd.env("OPENSSL_ia32cap", ":~0x200000");
    } else {
        cmd.arg("ecdsap256");
    }
    let out = cmd.output().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    let mut speed = OpensslSpeed::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let fields: Vec<&str> = line.split(':').collect();
        let sign = fields.get(3).and_then(|f| f.parse::<f64>().ok());
        match (fields.first(), fields.get(2)) {
            (Some(&"+F2"), Some(&"2048")) => speed.rsa2048 = sign,
            (Some(&"+F4"), Some(&"256")) => speed.ecdsa_p256 = sign,
            _ => {}
        }
    }
    Ok(speed)
}

/// Whether `/proc/cpuinfo` lists `flag` for the first CPU.
fn cpu_has(flag: &str) -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| text.lines().find(|l| l.starts_with("flags")).map(|l| l.split_whitespace().any(|f| f == flag)))
        .unwrap_or(false)
}
