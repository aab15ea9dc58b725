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

/// Largest PBKDF2 / PKCS#12-KDF iteration count accepted for one derivation.
pub(crate) const MAX_ITERATIONS: u64 = 10_000_000;
/// Total key-derivation work (in iterations) one upload may cost.
const TOTAL_BUDGET: u64 = 20_000_000;
/// scrypt: largest N*r (memory is 128*N*r bytes: 16 MiB) and N*r*p (CPU).
const MAX_SCRYPT_NR: u64 = 1 << 17;
const MAX_SCRYPT_NRP: u64 = 1 << 18;

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
    pub(crate) fn charge(&mut self, iterations: u64) -> Result<(), UploadError> {
        if iterations > MAX_ITERATIONS || iterations > self.left {
            return Err(UploadError::KdfTooExpensive);
        }
        self.left -= iterations;
        Ok(())
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
    DecryptError::Refused(UploadError::Malformed { what: "encryption parameters" })
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
            let params = pbes2::Parameters::try_from(params_any).map_err(|_| malformed_params())?;
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
                .map_err(|_| malformed_params())?;
            let iterations = u64::try_from(params.iterations).map_err(|_| malformed_params())?;
            if iterations == 0 {
                return Err(malformed_params());
            }
            // Key and IV are two derivations.
            budget.charge(iterations)?;
            budget.charge(iterations)?;
            let salt = params.salt.as_bytes();
            let bmp = pass.bmp();
            let alg = &digest::SHA1_FOR_LEGACY_USE_ONLY;
            let mut buf = Zeroizing::new(data.to_vec());
            let plain_len = match oid.as_str() {
                PKCS12_3DES_OID => {
                    let key = pkcs12_kdf(alg, &bmp, salt, 1, iterations, 24);
                    let iv = pkcs12_kdf(alg, &bmp, salt, 2, iterations, 8);
                    cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
                        .map_err(|_| malformed_params())?
                        .decrypt_padded_mut::<Pkcs7>(&mut buf)
                        .map_err(|_| DecryptError::Wrong)?
                        .len()
                }
                _ => {
                    let (key_len, eff_bits) = if oid == PKCS12_RC2_40_OID { (5, 40) } else { (16, 128) };
                    let key = pkcs12_kdf(alg, &bmp, salt, 1, iterations, key_len);
                    let iv = pkcs12_kdf(alg, &bmp, salt, 2, iterations, 8);
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
            let iterations = p.iteration_count;
            budget.charge(u64::from(iterations))?;
            let prf = match p.prf {
                pbes2::Pbkdf2Prf::HmacWithSha1 => pbkdf2::PBKDF2_HMAC_SHA1,
                pbes2::Pbkdf2Prf::HmacWithSha256 => pbkdf2::PBKDF2_HMAC_SHA256,
                pbes2::Pbkdf2Prf::HmacWithSha384 => pbkdf2::PBKDF2_HMAC_SHA384,
                pbes2::Pbkdf2Prf::HmacWithSha512 => pbkdf2::PBKDF2_HMAC_SHA512,
                _ => return Err(unsupported("PBKDF2 with HMAC-SHA224")),
            };
            let iterations = std::num::NonZeroU32::new(iterations).ok_or_else(malformed_params)?;
            pbkdf2::derive(prf, iterations, p.salt, pass.bytes(), &mut key);
        }
        pbes2::Kdf::Scrypt(p) => {
            let n = p.cost_parameter;
            let r = u64::from(p.block_size);
            let par = u64::from(p.parallelization);
            if !n.is_power_of_two() || n < 2 || r == 0 || par == 0 {
                return Err(malformed_params());
            }
            let nr = n.saturating_mul(r);
            if nr > MAX_SCRYPT_NR || nr.saturating_mul(par) > MAX_SCRYPT_NRP {
                return Err(DecryptError::Refused(UploadError::KdfTooExpensive));
            }
            // Charge roughly what PBKDF2 iterations of the same cost would be.
            budget.charge(nr.saturating_mul(par) / 8)?;
            let log_n = u8::try_from(n.trailing_zeros()).map_err(|_| malformed_params())?;
            let sp = scrypt::Params::new(log_n, u32::from(p.block_size), u32::from(p.parallelization), key_len)
                .map_err(|_| malformed_params())?;
            scrypt::scrypt(pass.bytes(), p.salt, &sp, &mut key).map_err(|_| malformed_params())?;
        }
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
pub(crate) fn pkcs12_kdf(
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
    fn budget_refuses_absurd_counts() {
        let mut b = Budget::default();
        assert!(b.charge(MAX_ITERATIONS + 1).is_err());
        assert!(b.charge(2048).is_ok());
    }
}
