//! Private keys: PKCS#8 / PKCS#1 / SEC1 to canonical PKCS#8 DER, type and size policy, and the public
//! key as ring derives it from the private key (so "key matches certificate" compares what TLS uses).

use camera_pki::x509::{self, Certificate};
use pkcs8::der::asn1::{AnyRef, Null, ObjectIdentifier};
use pkcs8::der::{Decode, Encode};
use pkcs8::spki::AlgorithmIdentifierRef;
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair};
use zeroize::Zeroizing;

use crate::crypto::{self, Budget, DecryptError, Passphrase};
use crate::UploadError;

const RSA_OID: &str = "1.2.840.113549.1.1.1";
const EC_OID: &str = "1.2.840.10045.2.1";
const P256_OID: &str = "1.2.840.10045.3.1.7";
const P384_OID: &str = "1.3.132.0.34";

/// ring, rustls' crypto provider here, loads RSA private keys of 2048 to 4096 bits whose primes'
/// sizes are multiples of 512 bits: 2048, 3072 and 4096-bit keys.
pub(crate) const MIN_RSA_BITS: usize = 2048;
pub(crate) const MAX_RSA_BITS: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
}

/// A public key in the form both sides can be compared in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PublicKey {
    /// Modulus and exponent, big-endian without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// Curve and uncompressed point (or compressed, when a certificate carries it so).
    Ec { curve: Curve, point: Vec<u8> },
}

impl PublicKey {
    /// Whether `self` (from a private key: always uncompressed) is the same key as `cert`.
    pub(crate) fn matches(&self, cert: &PublicKey) -> bool {
        match (self, cert) {
            (PublicKey::Rsa { .. }, PublicKey::Rsa { .. }) => self == cert,
            (PublicKey::Ec { curve: c1, point: p1 }, PublicKey::Ec { curve: c2, point: p2 }) => {
                if c1 != c2 {
                    return false;
                }
                if p1 == p2 {
                    return true;
                }
                // A compressed point in the certificate: same x, same parity of y.
                let coord = (p1.len().saturating_sub(1)) / 2;
                match (p1.first(), p2.first()) {
                    (Some(4), Some(&tag @ (2 | 3))) if p2.len() == coord + 1 && p1.len() == 2 * coord + 1 => {
                        let y_odd = p1.last().is_some_and(|b| b & 1 == 1);
                        p1[1..=coord] == p2[1..] && (tag == 3) == y_odd
                    }
                    _ => false,
                }
            }
            _ => false,
        }
    }
}

/// A validated private key.
pub(crate) struct PrivateKey {
    pub pkcs8: Zeroizing<Vec<u8>>,
    pub public: PublicKey,
}

fn strip_zeros(b: &[u8]) -> Vec<u8> {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b[start..].to_vec()
}

fn unsupported(found: impl Into<String>) -> UploadError {
    UploadError::UnsupportedKey { found: found.into() }
}

fn malformed_key(e: impl std::error::Error + Send + Sync + 'static) -> UploadError {
    UploadError::malformed_by("private key", e)
}

/// ring's reason for refusing a key (`KeyRejected` is an `std::error::Error` only with ring's
/// "std" feature, which nothing else here needs).
#[derive(Debug)]
struct RejectedByRing(String);

impl std::fmt::Display for RejectedByRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ring refused the key: {}", self.0)
    }
}

impl std::error::Error for RejectedByRing {}

fn rejected_by_ring(e: ring::error::KeyRejected) -> UploadError {
    UploadError::invalid_key(Some(crate::Cause::new(RejectedByRing(e.to_string()))))
}

/// Names an algorithm or curve OID that is not supported.
fn describe_oid(oid: &str) -> String {
    match oid {
        "1.3.101.112" => "an Ed25519 key".into(),
        "1.3.101.113" => "an Ed448 key".into(),
        "1.3.101.110" | "1.3.101.111" => "an X25519/X448 key-agreement key".into(),
        "1.2.840.10040.4.1" => "a DSA key".into(),
        "1.2.840.113549.1.1.10" => "an RSA-PSS-only key".into(),
        "1.2.840.10046.2.1" | "1.2.840.113549.1.3.1" => "a Diffie-Hellman key".into(),
        "1.3.132.0.35" => "an EC key on curve P-521".into(),
        "1.3.132.0.10" => "an EC key on curve secp256k1".into(),
        "1.2.156.10197.1.301" => "an SM2 key".into(),
        o if o.starts_with("1.3.36.3.3.2.8.1.1.") => "an EC key on a Brainpool curve".into(),
        o if o.starts_with("1.2.643.") => "a GOST key".into(),
        other => format!("a key of unknown type ({other})"),
    }
}

fn curve_of(oid: &str) -> Result<Curve, UploadError> {
    match oid {
        P256_OID => Ok(Curve::P256),
        P384_OID => Ok(Curve::P384),
        other => Err(unsupported(describe_oid(other))),
    }
}

fn curve_oid(curve: Curve) -> ObjectIdentifier {
    match curve {
        Curve::P256 => ObjectIdentifier::new_unwrap(P256_OID),
        Curve::P384 => ObjectIdentifier::new_unwrap(P384_OID),
    }
}

/// Number of significant bits of a big-endian unsigned integer.
fn bit_len(b: &[u8]) -> usize {
    match b.iter().position(|&x| x != 0) {
        Some(i) => (b.len() - i - 1) * 8 + (8 - b[i].leading_zeros() as usize),
        None => 0,
    }
}

/// Parses a PKCS#8 `PrivateKeyInfo`.
pub(crate) fn from_pkcs8(der: &[u8]) -> Result<PrivateKey, UploadError> {
    let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(malformed_key)?;
    let oid = info.algorithm.oid.to_string();
    match oid.as_str() {
        RSA_OID => from_pkcs1(info.private_key),
        EC_OID => {
            let curve_param = info
                .algorithm
                .parameters
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                .ok_or_else(|| unsupported("an EC key with explicit (unnamed) curve parameters"))?;
            from_sec1(info.private_key, Some(curve_param))
        }
        other => Err(unsupported(describe_oid(other))),
    }
}

/// Parses a PKCS#1 `RSAPrivateKey`.
pub(crate) fn from_pkcs1(der: &[u8]) -> Result<PrivateKey, UploadError> {
    let rsa = pkcs1::RsaPrivateKey::from_der(der).map_err(malformed_key)?;
    let bits = bit_len(rsa.modulus.as_bytes());
    if bits > MAX_RSA_BITS {
        return Err(UploadError::RsaKeyTooLarge { bits });
    }
    if bits < MIN_RSA_BITS || bits.div_ceil(2) % 512 != 0 {
        return Err(unsupported(format!("an RSA {bits}-bit key")));
    }
    if rsa.other_prime_infos.is_some() {
        return Err(unsupported("a multi-prime RSA key"));
    }
    let alg =
        AlgorithmIdentifierRef { oid: ObjectIdentifier::new_unwrap(RSA_OID), parameters: Some(AnyRef::from(Null)) };
    let pkcs8 = encode_pkcs8(alg, der)?;
    let pair = signature::RsaKeyPair::from_pkcs8(&pkcs8).map_err(rejected_by_ring)?;
    let components = signature::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
    Ok(PrivateKey { pkcs8, public: PublicKey::Rsa { n: strip_zeros(&components.n), e: strip_zeros(&components.e) } })
}

/// Parses a SEC1 `ECPrivateKey`; `curve_hint` comes from the PKCS#8 algorithm or an `EC PARAMETERS` block.
pub(crate) fn from_sec1(der: &[u8], curve_hint: Option<ObjectIdentifier>) -> Result<PrivateKey, UploadError> {
    let ec = sec1::EcPrivateKey::from_der(der).map_err(malformed_key)?;
    let inner_curve = ec.parameters.and_then(|p| p.named_curve());
    let oid = match (inner_curve, curve_hint) {
        (Some(a), Some(b)) if a != b => return Err(UploadError::invalid_key(None)),
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => return Err(unsupported("an EC key without a named curve")),
    };
    let curve = curve_of(&oid.to_string())?;
    if ec.public_key.is_none() {
        return Err(unsupported(
            "an EC key saved without its public part (re-save it with: openssl ec -in key.pem -out key2.pem)",
        ));
    }
    let coid = curve_oid(curve);
    let alg =
        AlgorithmIdentifierRef { oid: ObjectIdentifier::new_unwrap(EC_OID), parameters: Some(AnyRef::from(&coid)) };
    let pkcs8 = encode_pkcs8(alg, der)?;
    let ring_alg = match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
    };
    let pair = signature::EcdsaKeyPair::from_pkcs8(ring_alg, &pkcs8, &SystemRandom::new()).map_err(rejected_by_ring)?;
    Ok(PrivateKey { public: PublicKey::Ec { curve, point: pair.public_key().as_ref().to_vec() }, pkcs8 })
}

fn encode_pkcs8(algorithm: AlgorithmIdentifierRef<'_>, private_key: &[u8]) -> Result<Zeroizing<Vec<u8>>, UploadError> {
    let info = pkcs8::PrivateKeyInfo { algorithm, private_key, public_key: None };
    let mut out =
        Zeroizing::new(vec![0u8; usize::try_from(info.encoded_len().map_err(malformed_key)?).map_err(malformed_key)?]);
    let len = info.encode_to_slice(&mut out).map_err(malformed_key)?.len();
    out.truncate(len);
    Ok(out)
}

/// The public key of a certificate, if it is of a supported type; otherwise a description of it.
pub(crate) fn cert_public_key(cert: &Certificate<'_>) -> Result<PublicKey, String> {
    let spki = cert.public_key();
    let alg = spki.algorithm.oid.to_string();
    match alg.as_str() {
        RSA_OID => match x509::rsa_public_key(spki) {
            Some((n, e)) => Ok(PublicKey::Rsa { n: strip_zeros(n), e: strip_zeros(e) }),
            None => Err("a damaged RSA key".into()),
        },
        EC_OID => {
            let curve_oid = x509::named_curve(spki).map(|o| o.to_string()).unwrap_or_default();
            let curve = curve_of(&curve_oid).map_err(|_| describe_oid(&curve_oid))?;
            Ok(PublicKey::Ec { curve, point: cert.public_key_bytes().to_vec() })
        }
        other => Err(describe_oid(other)),
    }
}

/// Decrypts an `EncryptedPrivateKeyInfo` (PBES2, or PKCS#12 PBE) and parses the key inside.
pub(crate) fn encrypted_pkcs8(
    der: &[u8],
    pass: Option<&Passphrase>,
    budget: &mut Budget,
) -> Result<PrivateKey, UploadError> {
    let info = pkcs12::pbe_params::EncryptedPrivateKeyInfo::from_der(der)
        .map_err(|e| UploadError::malformed_by("encrypted private key", e))?;
    let alg = crypto::alg_ref(&info.encryption_algorithm);
    let empty = Passphrase::empty();
    let plain = match crypto::decrypt(alg, info.encrypted_data.as_bytes(), pass.unwrap_or(&empty), budget) {
        Ok(p) => p,
        Err(DecryptError::Wrong) => return Err(wrong_or_required(pass)),
        Err(DecryptError::Refused(e)) => return Err(e),
    };
    match from_pkcs8(&plain) {
        Err(UploadError::Malformed { .. }) => Err(wrong_or_required(pass)),
        other => other,
    }
}

pub(crate) fn wrong_or_required(pass: Option<&Passphrase>) -> UploadError {
    if pass.is_some() {
        UploadError::WrongPassphrase
    } else {
        UploadError::PassphraseRequired
    }
}
