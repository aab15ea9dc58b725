//! The parts of an X.509 certificate SCEP needs, read once with the camera's certificate reader
//! (`camera_pki::x509`), and signature verification with ring.

use camera_pki::x509::Certificate;
use der::asn1::{AnyRef, ObjectIdentifier};
use der::{Encode, Sequence, Tag};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};

use crate::caps::DigestAlgorithm;
use crate::{oid, ScepError, MAX_CERT_SIZE};

/// What kind of public key a certificate holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa { bits: usize },
    EcP256,
    EcP384,
    Other,
}

/// A certificate with the fields SCEP uses copied out.
#[derive(Clone)]
pub(crate) struct Cert {
    pub der: Vec<u8>,
    /// Full TLV of the subject Name.
    pub subject: Vec<u8>,
    /// Full TLV of the issuer Name.
    pub issuer: Vec<u8>,
    /// Content octets of the serial number INTEGER.
    pub serial: Vec<u8>,
    /// Full TLV of the SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    /// The subjectPublicKey BIT STRING contents (RSAPublicKey DER or an EC point).
    pub public_key: Vec<u8>,
    pub key: KeyKind,
    pub ski: Option<Vec<u8>>,
    pub is_ca: bool,
    /// (digitalSignature, keyEncipherment, dataEncipherment) when a keyUsage extension is present.
    pub key_usage: Option<(bool, bool, bool)>,
    tbs: Vec<u8>,
    signature_alg: Vec<u8>,
    signature: Vec<u8>,
}

impl std::fmt::Debug for Cert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cert").field("key", &self.key).field("is_ca", &self.is_ca).finish_non_exhaustive()
    }
}

impl Cert {
    pub fn parse(der: &[u8]) -> Result<Self, ScepError> {
        if der.len() > MAX_CERT_SIZE {
            return Err(ScepError::TooLarge { what: "certificate", size: der.len(), max: MAX_CERT_SIZE });
        }
        let bad = |reason: String| ScepError::BadCertificate { reason };
        let x = Certificate::parse(der).map_err(|e| bad(e.to_string()))?;
        let ski = x.subject_key_identifier().ok().flatten();
        let is_ca = matches!(x.is_ca(), Ok(true));
        let key_usage = match x.key_usage() {
            Ok(Some(ku)) => Some((ku.digital_signature(), ku.key_encipherment(), ku.data_encipherment())),
            Ok(None) => None,
            Err(e) => return Err(bad(format!("keyUsage: {e}"))),
        };
        let signature = x.signature().ok_or_else(|| bad("the signature is not whole bytes".into()))?;
        Ok(Self {
            der: der.to_vec(),
            subject: x.subject_der().to_vec(),
            issuer: x.issuer_der().to_vec(),
            serial: x.serial().to_vec(),
            spki: x.spki_der().to_vec(),
            public_key: x.public_key_bytes().to_vec(),
            key: key_kind(&x),
            ski,
            is_ca,
            key_usage,
            tbs: x.tbs_der().to_vec(),
            signature_alg: x.signature_algorithm().oid.as_bytes().to_vec(),
            signature: signature.to_vec(),
        })
    }

    pub fn is_rsa(&self) -> bool {
        matches!(self.key, KeyKind::Rsa { .. })
    }

    /// Whether the certificate may encrypt a content key (RFC 8894 section 2.2: an RA certificate
    /// for encryption has keyEncipherment or dataEncipherment).
    pub fn can_encrypt(&self) -> bool {
        self.is_rsa() && self.key_usage.is_none_or(|(_, ke, de)| ke || de)
    }

    /// The DER of CMS IssuerAndSerialNumber for this certificate, built from its own issuer and
    /// serial bytes (what SCEP servers copy into the SignerIdentifier and RecipientIdentifier).
    pub fn issuer_and_serial(&self) -> Result<Vec<u8>, ScepError> {
        issuer_and_serial_der(&self.issuer, &self.serial)
    }

    /// Whether `issuer` signed this certificate (the signature checks out with its key).
    pub fn is_signed_by(&self, issuer: &Cert) -> bool {
        self.issuer == issuer.subject
            && cert_signature_alg(&self.signature_alg, issuer.key)
                .is_some_and(|alg| verify(alg, &issuer.public_key, &self.tbs, &self.signature))
    }
}

#[derive(Sequence)]
struct IssuerAndSerialRef<'a> {
    issuer: AnyRef<'a>,
    serial: AnyRef<'a>,
}

pub(crate) fn issuer_and_serial_der(issuer_tlv: &[u8], serial: &[u8]) -> Result<Vec<u8>, ScepError> {
    let value = IssuerAndSerialRef {
        issuer: AnyRef::try_from(issuer_tlv).map_err(ScepError::Encode)?,
        serial: AnyRef::new(Tag::Integer, serial).map_err(ScepError::Encode)?,
    };
    value.to_der().map_err(ScepError::Encode)
}

fn key_kind(cert: &Certificate<'_>) -> KeyKind {
    let spki = cert.public_key();
    if spki.algorithm.oid == oid::RSA_ENCRYPTION {
        match camera_pki::x509::rsa_modulus_bits(spki) {
            Some(bits) => KeyKind::Rsa { bits },
            None => KeyKind::Other,
        }
    } else if spki.algorithm.oid == oid::EC_PUBLIC_KEY {
        match camera_pki::x509::named_curve(spki) {
            Some(c) if c == oid::P256 => KeyKind::EcP256,
            Some(c) if c == oid::P384 => KeyKind::EcP384,
            _ => KeyKind::Other,
        }
    } else {
        KeyKind::Other
    }
}

/// The ring algorithm for a certificate's signatureAlgorithm made with a key of kind `key`.
fn cert_signature_alg(sig_oid: &[u8], key: KeyKind) -> Option<&'static dyn VerificationAlgorithm> {
    let digest = if sig_oid == oid::SHA1_WITH_RSA.as_bytes() {
        DigestAlgorithm::Sha1
    } else if sig_oid == oid::SHA256_WITH_RSA.as_bytes() || sig_oid == oid::ECDSA_SHA256.as_bytes() {
        DigestAlgorithm::Sha256
    } else if sig_oid == oid::SHA384_WITH_RSA.as_bytes() || sig_oid == oid::ECDSA_SHA384.as_bytes() {
        DigestAlgorithm::Sha384
    } else if sig_oid == oid::SHA512_WITH_RSA.as_bytes() {
        DigestAlgorithm::Sha512
    } else {
        return None;
    };
    let is_rsa_sig = [&oid::SHA1_WITH_RSA, &oid::SHA256_WITH_RSA, &oid::SHA384_WITH_RSA, &oid::SHA512_WITH_RSA]
        .iter()
        .any(|o| o.as_bytes() == sig_oid);
    match (is_rsa_sig, key) {
        (true, KeyKind::Rsa { .. }) | (false, KeyKind::EcP256 | KeyKind::EcP384) => signature_alg(key, digest),
        _ => None,
    }
}

/// The ring verification algorithm for a key and digest, if ring has one.
pub(crate) fn signature_alg(key: KeyKind, digest: DigestAlgorithm) -> Option<&'static dyn VerificationAlgorithm> {
    use DigestAlgorithm::*;
    Some(match (key, digest) {
        (KeyKind::Rsa { .. }, Sha1) => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        (KeyKind::Rsa { .. }, Sha256) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (KeyKind::Rsa { .. }, Sha384) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (KeyKind::Rsa { .. }, Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (KeyKind::EcP256, Sha256) => &signature::ECDSA_P256_SHA256_ASN1,
        (KeyKind::EcP256, Sha384) => &signature::ECDSA_P256_SHA384_ASN1,
        (KeyKind::EcP384, Sha256) => &signature::ECDSA_P384_SHA256_ASN1,
        (KeyKind::EcP384, Sha384) => &signature::ECDSA_P384_SHA384_ASN1,
        _ => return None,
    })
}

pub(crate) fn verify(alg: &'static dyn VerificationAlgorithm, public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    UnparsedPublicKey::new(alg, public_key).verify(msg, sig).is_ok()
}

pub(crate) fn digest_from_oid(o: &ObjectIdentifier) -> Option<DigestAlgorithm> {
    Some(match *o {
        oid::SHA1 => DigestAlgorithm::Sha1,
        oid::SHA256 => DigestAlgorithm::Sha256,
        oid::SHA384 => DigestAlgorithm::Sha384,
        oid::SHA512 => DigestAlgorithm::Sha512,
        _ => return None,
    })
}

pub(crate) fn digest_oid(d: DigestAlgorithm) -> ObjectIdentifier {
    match d {
        DigestAlgorithm::Sha1 => oid::SHA1,
        DigestAlgorithm::Sha256 => oid::SHA256,
        DigestAlgorithm::Sha384 => oid::SHA384,
        DigestAlgorithm::Sha512 => oid::SHA512,
    }
}

pub(crate) fn digest(d: DigestAlgorithm, data: &[u8]) -> Vec<u8> {
    let alg = match d {
        DigestAlgorithm::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        DigestAlgorithm::Sha256 => &ring::digest::SHA256,
        DigestAlgorithm::Sha384 => &ring::digest::SHA384,
        DigestAlgorithm::Sha512 => &ring::digest::SHA512,
    };
    ring::digest::digest(alg, data).as_ref().to_vec()
}
