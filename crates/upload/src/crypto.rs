//! Decryption of encrypted keys and PKCS#12 contents, with bounded key-derivation cost.
//!
//! Parameters are parsed by RustCrypto's `pkcs5`/`pkcs12` types; key derivation uses ring (PBKDF2,
//! SHA digests for the PKCS#12 KDF) or `scrypt`, writing into zeroized buffers owned here, and the
//! block ciphers come from RustCrypto (`aes`, `des`, `rc2` with `cbc`).

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, InnerIvInit, KeyInit, KeyIvInit};
use pkcs5::pbes2;
use pkcs8::der::{asn1::AnyRef, Decode};
use pkcs8::spki::AlgorithmIdentifierRef;
use ring::{digest, pbkdf2};
use zeroize::Zeroizing;

use crate::UploadError;

/// Largest iteration count accepted in any one derivation (PBKDF2, PKCS#12 KDF).
pub(crate) const MAX_ITERATIONS: u64 = 10_000_000;

/// Key-derivation work one upload may cost, in units of one PBKDF2-HMAC-SHA256 iteration for one
/// output block (about 0.2 µs on the x86-64 build host, which has SHA extensions; see [`work`]).
const TOTAL_BUDGET: u64 = 20_000_000;

/// Most memory one upload's key derivation may allocate: what OpenSSL's default scrypt parameters
/// (N=16384, r=8, p=1) need, 16 MiB + 2 KiB. scrypt allocates 128·r·(N+p+1) bytes (its B, V and
/// T buffers, as `tests/kdf_limits.rs` measures); PBKDF2 and the PKCS#12 KDF need a few hundred
/// bytes. Parameters that would need more are refused before anything is allocated.
pub const MAX_KDF_MEMORY: usize = 128 * 8 * ((1 << 14) + 1 + 1);

/// What each derivation costs, in budget units, counted from the parameters before any work is
/// done. The weights are ratios measured on the build host (x86-64 with SHA extensions, release
/// profile, `cargo run --release -p camera-upload --example kdf_cost`, over several loaded and
/// quiet runs), rounded up: one PBKDF2 iteration of HMAC-SHA1 2.3 to 3.0 units, HMAC-SHA384 2.7 to
/// 3.0, HMAC-SHA512 2.7 to 2.8 (charged 3); one PKCS#12-KDF hash of SHA-1 1.2 (charged 2), SHA-256
/// 0.5 to 0.7 (charged 1); scrypt 2.5 to 4.9 units per N·r·p when N is large and 15 to 23 per r·p
/// when N=2, its two PBKDF2 passes over 128·r·p bytes (charged 5·N·r·p + 16·r·p). A camera's CPU
/// has other ratios (an ARMv8 core without SHA-512 instructions makes SHA-512 dearer): the weights
/// bound the work, they do not time it.
pub(crate) mod work {
    use ring::digest;

    /// PBKDF2 runs its iterations once per output block of the PRF's size.
    pub(crate) fn pbkdf2(iterations: u64, key_len: usize, prf_len: usize, weight: u64) -> u64 {
        iterations.saturating_mul(blocks(key_len, prf_len)).saturating_mul(weight)
    }

    /// Units per PBKDF2 iteration of an HMAC over `prf_len`-byte digests.
    pub(crate) fn hmac_weight(prf_len: usize) -> u64 {
        if prf_len == 32 {
            1
        } else {
            3
        }
    }

    /// The PKCS#12 KDF (RFC 7292 B.2) hashes `iterations` times for every `u`-byte block of output:
    /// a 24-byte 3DES key from SHA-1 is two blocks.
    pub(crate) fn pkcs12_kdf(alg: &'static digest::Algorithm, iterations: u64, out_len: usize) -> u64 {
        let weight = if alg.output_len() == 32 { 1 } else { 2 };
        iterations.saturating_mul(blocks(out_len, alg.output_len())).saturating_mul(weight)
    }

    /// scrypt: 4·N·r·p Salsa20/8 blocks in ROMix, and two PBKDF2-HMAC-SHA256 passes over
    /// 128·r·p bytes.
    pub(crate) fn scrypt(n: u64, r: u64, p: u64) -> u64 {
        let rp = r.saturating_mul(p);
        n.saturating_mul(rp).saturating_mul(5).saturating_add(rp.saturating_mul(16))
    }

    /// Bytes scrypt allocates: B (128·r·p), V (128·r·N) and T (128·r).
    pub(crate) fn scrypt_memory(n: u64, r: u64, p: u64) -> u128 {
        128 * u128::from(r) * (u128::from(n) + u128::from(p) + 1)
    }

    fn blocks(out_len: usize, block_len: usize) -> u64 {
        u64::try_from(out_len.div_ceil(block_len.max(1))).unwrap_or(u64::MAX)
    }
}

/// The passphrase as typed (UTF-8 bytes), zeroized on drop.
pub(crate) struct Passphrase {
    utf8: Zeroizing<Vec<u8>>,
}

impl Passphrase {
    pub(crate) fn new(s: &str) -> Self {
        Self { utf8: Zeroizing::new(s.as_bytes().to_vec()) }
    }

    pub(crate) fn empty() -> Self {
        Self { utf8: Zeroizing::new(Vec::new()) }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.utf8
    }

    /// BMPString (UTF-16BE) with the two-byte terminator, as the PKCS#12 KDF wants it.
    pub(crate) fn bmp(&self) -> Zeroizing<Vec<u8>> {
        let s = String::from_utf8_lossy(&self.utf8);
        let mut out = Zeroizing::new(Vec::with_capacity(s.len() * 2 + 2));
        for unit in s.encode_utf16() {
            out.extend_from_slice(&unit.to_be_bytes());
        }
        out.extend_from_slice(&[0, 0]);
        if let std::borrow::Cow::Owned(mut owned) = s {
            zeroize::Zeroize::zeroize(&mut owned);
        }
        out
    }
}

/// Key-derivation work left for this upload.
pub(crate) struct Budget {
    left: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Self { left: TOTAL_BUDGET }
    }
}

impl Budget {
    /// Takes `work` units for a derivation of `iterations` rounds, or refuses it, before any work.
    pub(crate) fn charge(&mut self, iterations: u64, work: u64) -> Result<(), UploadError> {
        if iterations > MAX_ITERATIONS || work > self.left {
            return Err(UploadError::KdfTooExpensive);
        }
        self.left -= work;
        Ok(())
    }

    /// Charges for every output of the PKCS#12 KDF, then derives them: `outputs` are (id, length)
    /// pairs (1 key, 2 IV, 3 MAC key).
    pub(crate) fn pkcs12_kdf<const K: usize>(
        &mut self,
        alg: &'static digest::Algorithm,
        pass_bmp: &[u8],
        salt: &[u8],
        iterations: u64,
        outputs: [(u8, usize); K],
    ) -> Result<[Zeroizing<Vec<u8>>; K], UploadError> {
        let total =
            outputs.iter().fold(0u64, |sum, &(_, len)| sum.saturating_add(work::pkcs12_kdf(alg, iterations, len)));
        self.charge(iterations, total)?;
        Ok(outputs.map(|(id, len)| pkcs12_kdf(alg, pass_bmp, salt, id, iterations, len)))
    }

    /// Charges for PBKDF2 into `out`, then derives it.
    fn pbkdf2(
        &mut self,
        prf: pbkdf2::Algorithm,
        prf_len: usize,
        iterations: std::num::NonZeroU32,
        salt: &[u8],
        pass: &[u8],
        out: &mut [u8],
    ) -> Result<(), UploadError> {
        let count = u64::from(iterations.get());
        self.charge(count, work::pbkdf2(count, out.len(), prf_len, work::hmac_weight(prf_len)))?;
        pbkdf2::derive(prf, iterations, salt, pass, out);
        Ok(())
    }

    /// Checks scrypt's memory and charges its work, then derives into `out`.
    fn scrypt(&mut self, p: &pbes2::ScryptParams<'_>, pass: &[u8], out: &mut [u8]) -> Result<(), DecryptError> {
        let (n, r, par) = (p.cost_parameter, u64::from(p.block_size), u64::from(p.parallelization));
        if !n.is_power_of_two() || n < 2 || r == 0 || par == 0 {
            return Err(malformed_params());
        }
        let max = u128::try_from(MAX_KDF_MEMORY).unwrap_or(u128::MAX);
        if work::scrypt_memory(n, r, par) > max {
            return Err(DecryptError::Refused(UploadError::KdfTooExpensive));
        }
        self.charge(0, work::scrypt(n, r, par))?;
        let log_n = u8::try_from(n.trailing_zeros()).map_err(|_| malformed_params())?;
        let sp = scrypt::Params::new(log_n, u32::from(p.block_size), u32::from(p.parallelization), out.len())
            .map_err(|_| malformed_params())?;
        scrypt::scrypt(pass, p.salt, &sp, out).map_err(|_| malformed_params())
    }
}

/// Why decryption failed.
#[derive(Debug)]
pub(crate) enum DecryptError {
    /// Bad padding: almost always the wrong passphrase.
    Wrong,
    /// A definite refusal (unsupported scheme, too expensive, malformed parameters).
    Refused(UploadError),
}

impl From<UploadError> for DecryptError {
    fn from(e: UploadError) -> Self {
        Self::Refused(e)
    }
}

fn unsupported(scheme: &str) -> DecryptError {
    DecryptError::Refused(UploadError::UnsupportedEncryption { scheme: scheme.to_string() })
}

fn malformed_params() -> DecryptError {
    DecryptError::Refused(UploadError::malformed("encryption parameters"))
}

fn malformed_params_by(e: impl std::error::Error + Send + Sync + 'static) -> DecryptError {
    DecryptError::Refused(UploadError::malformed_by("encryption parameters", e))
}

const PBES2_OID: &str = "1.2.840.113549.1.5.13";
const PKCS12_3DES_OID: &str = "1.2.840.113549.1.12.1.3";
const PKCS12_RC2_128_OID: &str = "1.2.840.113549.1.12.1.5";
const PKCS12_RC2_40_OID: &str = "1.2.840.113549.1.12.1.6";

/// Borrows an owned algorithm identifier.
pub(crate) fn alg_ref(a: &pkcs8::spki::AlgorithmIdentifierOwned) -> AlgorithmIdentifierRef<'_> {
    AlgorithmIdentifierRef { oid: a.oid, parameters: a.parameters.as_ref().map(AnyRef::from) }
}

/// Decrypts `data` encrypted under the algorithm identifier `alg` (PBES2, or a PKCS#12 PBE scheme).
pub(crate) fn decrypt(
    alg: AlgorithmIdentifierRef<'_>,
    data: &[u8],
    pass: &Passphrase,
    budget: &mut Budget,
) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    let oid = alg.oid.to_string();
    match oid.as_str() {
        PBES2_OID => {
            let params_any: AnyRef<'_> = alg.parameters.ok_or_else(malformed_params)?;
            let params = pbes2::Parameters::try_from(params_any).map_err(malformed_params_by)?;
            pbes2_decrypt(&params, data, pass, budget)
        }
        PKCS12_3DES_OID | PKCS12_RC2_128_OID | PKCS12_RC2_40_OID => {
            let params_any: AnyRef<'_> = alg.parameters.ok_or_else(malformed_params)?;
            let params = pkcs12::pbe_params::Pkcs12PbeParams::from_der(params_any.value())
                .or_else(|_| {
                    pkcs8::der::Encode::to_der(&params_any)
                        .map_err(|_| ())
                        .and_then(|d| pkcs12::pbe_params::Pkcs12PbeParams::from_der(&d).map_err(|_| ()))
                })
                .map_err(|()| malformed_params())?;
            let iterations = u64::try_from(params.iterations).map_err(malformed_params_by)?;
            if iterations == 0 {
                return Err(malformed_params());
            }
            let salt = params.salt.as_bytes();
            let bmp = pass.bmp();
            let alg = &digest::SHA1_FOR_LEGACY_USE_ONLY;
            let mut buf = Zeroizing::new(data.to_vec());
            let plain_len = match oid.as_str() {
                PKCS12_3DES_OID => {
                    let [key, iv] = budget.pkcs12_kdf(alg, &bmp, salt, iterations, [(1, 24), (2, 8)])?;
                    cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
                        .map_err(|_| malformed_params())?
                        .decrypt_padded_mut::<Pkcs7>(&mut buf)
                        .map_err(|_| DecryptError::Wrong)?
                        .len()
                }
                _ => {
                    let (key_len, eff_bits) = if oid == PKCS12_RC2_40_OID { (5, 40) } else { (16, 128) };
                    let [key, iv] = budget.pkcs12_kdf(alg, &bmp, salt, iterations, [(1, key_len), (2, 8)])?;
                    let cipher = rc2::Rc2::new_with_eff_key_len(&key, eff_bits);
                    cbc::Decryptor::<rc2::Rc2>::inner_iv_slice_init(cipher, &iv)
                        .map_err(|_| malformed_params())?
                        .decrypt_padded_mut::<Pkcs7>(&mut buf)
                        .map_err(|_| DecryptError::Wrong)?
                        .len()
                }
            };
            buf.truncate(plain_len);
            Ok(buf)
        }
        "1.2.840.113549.1.12.1.1" | "1.2.840.113549.1.12.1.2" => Err(unsupported("RC4")),
        "1.2.840.113549.1.12.1.4" => Err(unsupported("two-key triple DES")),
        "1.2.840.113549.1.5.3" | "1.2.840.113549.1.5.6" | "1.2.840.113549.1.5.10" | "1.2.840.113549.1.5.11" => {
            Err(unsupported("PKCS#5 v1.5 DES or RC2 (PBES1)"))
        }
        other => Err(unsupported(&format!("an unknown scheme ({other})"))),
    }
}

fn pbes2_decrypt(
    params: &pbes2::Parameters<'_>,
    data: &[u8],
    pass: &Passphrase,
    budget: &mut Budget,
) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    let key_len = params.encryption.key_size();
    if let Some(len) = params.kdf.key_length() {
        if usize::from(len) != key_len {
            return Err(malformed_params());
        }
    }
    let mut key = Zeroizing::new(vec![0u8; key_len]);
    match &params.kdf {
        pbes2::Kdf::Pbkdf2(p) => {
            let (prf, prf_len) = match p.prf {
                pbes2::Pbkdf2Prf::HmacWithSha1 => (pbkdf2::PBKDF2_HMAC_SHA1, 20),
                pbes2::Pbkdf2Prf::HmacWithSha256 => (pbkdf2::PBKDF2_HMAC_SHA256, 32),
                pbes2::Pbkdf2Prf::HmacWithSha384 => (pbkdf2::PBKDF2_HMAC_SHA384, 48),
                pbes2::Pbkdf2Prf::HmacWithSha512 => (pbkdf2::PBKDF2_HMAC_SHA512, 64),
                _ => return Err(unsupported("PBKDF2 with HMAC-SHA224")),
            };
            let iterations = std::num::NonZeroU32::new(p.iteration_count).ok_or_else(malformed_params)?;
            budget.pbkdf2(prf, prf_len, iterations, p.salt, pass.bytes(), &mut key)?;
        }
        pbes2::Kdf::Scrypt(p) => budget.scrypt(p, pass.bytes(), &mut key)?,
        _ => return Err(unsupported("an unknown key-derivation function")),
    }
    let mut buf = Zeroizing::new(data.to_vec());
    let len = match params.encryption {
        pbes2::EncryptionScheme::Aes128Cbc { iv } => cbc_decrypt::<aes::Aes128>(&key, iv, &mut buf)?,
        pbes2::EncryptionScheme::Aes192Cbc { iv } => cbc_decrypt::<aes::Aes192>(&key, iv, &mut buf)?,
        pbes2::EncryptionScheme::Aes256Cbc { iv } => cbc_decrypt::<aes::Aes256>(&key, iv, &mut buf)?,
        pbes2::EncryptionScheme::DesEde3Cbc { iv } => cbc_decrypt::<des::TdesEde3>(&key, iv, &mut buf)?,
        _ => return Err(unsupported("single DES")),
    };
    buf.truncate(len);
    Ok(buf)
}

/// CBC decryption with PKCS#7 padding, in place.
pub(crate) fn cbc_decrypt<C>(key: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<usize, DecryptError>
where
    C: aes::cipher::BlockDecryptMut + aes::cipher::BlockCipher + KeyInit,
{
    let dec = cbc::Decryptor::<C>::new_from_slices(key, iv).map_err(|_| malformed_params())?;
    dec.decrypt_padded_mut::<Pkcs7>(buf).map(|p| p.len()).map_err(|_| DecryptError::Wrong)
}

/// The PKCS#12 key-derivation function (RFC 7292 appendix B.2), over ring's digests, with every
/// buffer derived from the password zeroized.
fn pkcs12_kdf(
    alg: &'static digest::Algorithm,
    pass_bmp: &[u8],
    salt: &[u8],
    id: u8,
    iterations: u64,
    out_len: usize,
) -> Zeroizing<Vec<u8>> {
    let v = alg.block_len();
    let u = alg.output_len();
    let d = vec![id; v];
    let fill = |src: &[u8]| -> Zeroizing<Vec<u8>> {
        let len = if src.is_empty() { 0 } else { v * src.len().div_ceil(v) };
        Zeroizing::new((0..len).map(|i| src[i % src.len()]).collect())
    };
    let s = fill(salt);
    let p = fill(pass_bmp);
    let mut i_buf = Zeroizing::new([&s[..], &p[..]].concat());
    let mut out = Zeroizing::new(Vec::with_capacity(out_len + u));
    loop {
        let mut ctx = digest::Context::new(alg);
        ctx.update(&d);
        ctx.update(&i_buf);
        let mut a = Zeroizing::new(ctx.finish().as_ref().to_vec());
        for _ in 1..iterations {
            let next = digest::digest(alg, &a);
            a.copy_from_slice(next.as_ref());
        }
        let take = (out_len - out.len()).min(u);
        out.extend_from_slice(&a[..take]);
        if out.len() >= out_len {
            break;
        }
        // B = A repeated to v bytes; each v-byte block I_j = (I_j + B + 1) mod 2^v.
        let b: Zeroizing<Vec<u8>> = Zeroizing::new((0..v).map(|k| a[k % u]).collect());
        for chunk in i_buf.chunks_mut(v) {
            let mut carry: u16 = 1;
            for k in (0..chunk.len()).rev() {
                let sum = u16::from(chunk[k]) + u16::from(b[k]) + carry;
                chunk[k] = (sum & 0xff) as u8;
                carry = sum >> 8;
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        camera_pki::text::unhex(s).unwrap()
    }

    #[test]
    fn pkcs12_kdf_known_answer() {
        // Vectors from RustCrypto's pkcs12 crate tests (SHA-256, "ge@äheim", salt 01..08, 100 rounds).
        let pass = Passphrase::new("ge@äheim");
        let salt = [1, 2, 3, 4, 5, 6, 7, 8];
        let key = pkcs12_kdf(&digest::SHA256, &pass.bmp(), &salt, 1, 100, 32);
        assert_eq!(&key[..], &hex("fae4d4957a3cc781e1180b9d4fb79c1e0c8579b746a3177e5b0768a3118bf863")[..]);
        let iv = pkcs12_kdf(&digest::SHA256, &pass.bmp(), &salt, 2, 100, 32);
        assert_eq!(&iv[..], &hex("e5ff813bc6547de5155b14d2fada85b3201a977349db6e26ccc998d9e8f83d6c")[..]);
        let short = pkcs12_kdf(&digest::SHA256, &pass.bmp(), &salt, 1, 100, 20);
        assert_eq!(&short[..], &hex("fae4d4957a3cc781e1180b9d4fb79c1e0c8579b7")[..]);
    }

    #[test]
    fn budget_refuses_absurd_counts_and_overdrafts() {
        let mut b = Budget::default();
        assert!(b.charge(MAX_ITERATIONS + 1, 1).is_err());
        assert!(b.charge(2048, 2048).is_ok());
        assert!(b.charge(1, TOTAL_BUDGET - 2048 + 1).is_err(), "one unit over what is left");
        assert!(b.charge(1, TOTAL_BUDGET - 2048).is_ok(), "exactly what is left");
        assert!(b.charge(0, 1).is_err());
    }

    #[test]
    fn work_counts_every_block_and_round() {
        let sha1 = &digest::SHA1_FOR_LEGACY_USE_ONLY;
        // 3DES: a 24-byte key is two SHA-1 blocks, the IV one more.
        assert_eq!(work::pkcs12_kdf(sha1, 1000, 24), 2 * 1000 * 2);
        assert_eq!(work::pkcs12_kdf(sha1, 1000, 8), 1000 * 2);
        assert_eq!(work::pkcs12_kdf(sha1, 1000, 20), 1000 * 2);
        assert_eq!(work::pkcs12_kdf(&digest::SHA256, 1000, 32), 1000);
        // PBKDF2: AES-256 from HMAC-SHA1 is two blocks; from HMAC-SHA256 one.
        assert_eq!(work::pbkdf2(1000, 32, 20, work::hmac_weight(20)), 2 * 1000 * 3);
        assert_eq!(work::pbkdf2(1000, 32, 32, work::hmac_weight(32)), 1000);
        assert_eq!(work::pbkdf2(1000, 16, 64, work::hmac_weight(64)), 1000 * 3);
        // scrypt's memory: a hostile file's parameters, and OpenSSL's default at the cap.
        assert_eq!(work::scrypt_memory(2, 65535, 2), 128 * 65535 * 5);
        assert_eq!(work::scrypt_memory(1 << 14, 8, 1), MAX_KDF_MEMORY as u128);
        assert_eq!(work::scrypt_memory(u64::MAX, 65535, 65535), 128 * 65535 * (u128::from(u64::MAX) + 65536));
        assert_eq!(work::scrypt(1 << 14, 8, 1), 5 * (1 << 17) + 16 * 8);
    }

    /// The derivation charges what it computes: with the budget for two rounds left, a 3DES key
    /// and IV (three rounds) are refused before any hashing.
    #[test]
    fn pkcs12_3des_needs_three_rounds_of_budget() {
        let pass = Passphrase::new("pw");
        let sha1 = &digest::SHA1_FOR_LEGACY_USE_ONLY;
        let three = work::pkcs12_kdf(sha1, 1000, 24) + work::pkcs12_kdf(sha1, 1000, 8);
        let mut b = Budget { left: three - 1 };
        assert!(b.pkcs12_kdf(sha1, &pass.bmp(), b"salt", 1000, [(1, 24), (2, 8)]).is_err());
        assert_eq!(b.left, three - 1, "nothing charged for a refusal");
        let mut b = Budget { left: three };
        let [key, iv] = b.pkcs12_kdf(sha1, &pass.bmp(), b"salt", 1000, [(1, 24), (2, 8)]).unwrap();
        assert_eq!((key.len(), iv.len(), b.left), (24, 8, 0));
    }
}
