//! The parts of an X.509 certificate SCEP needs, read once with x509-parser, and signature
//! verification with ring.

use der::asn1::{AnyRef, ObjectIdentifier};
use der::{Encode, Sequence, Tag};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::prelude::{FromDer, X509Certificate};

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
        let (rest, x) = X509Certificate::from_der(der).map_err(|e| bad(e.to_string()))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes after the certificate".into()));
        }
        let spki = x.public_key();
        let key = key_kind(spki);
        let ski = match x
            .tbs_certificate
            .get_extension_unique(&x509_parser::oid_registry::OID_X509_EXT_SUBJECT_KEY_IDENTIFIER)
        {
            Ok(Some(ext)) => match ext.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            },
            _ => None,
        };
        let is_ca = matches!(x.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
        let key_usage = match x.key_usage() {
            Ok(Some(ku)) => {
                Some((ku.value.digital_signature(), ku.value.key_encipherment(), ku.value.data_encipherment()))
            }
            Ok(None) => None,
            Err(e) => return Err(bad(format!("keyUsage: {e}"))),
        };
        Ok(Self {
            der: der.to_vec(),
            subject: x.subject().as_raw().to_vec(),
            issuer: x.issuer().as_raw().to_vec(),
            serial: x.raw_serial().to_vec(),
            spki: spki.raw.to_vec(),
            public_key: spki.subject_public_key.data.to_vec(),
            key,
            ski,
            is_ca,
            key_usage,
            tbs: x.tbs_certificate.as_ref().to_vec(),
            signature_alg: x.signature_algorithm.algorithm.as_bytes().to_vec(),
            signature: x.signature_value.data.to_vec(),
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

fn key_kind(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> KeyKind {
    let alg = spki.algorithm.algorithm.as_bytes();
    if alg == oid::RSA_ENCRYPTION.as_bytes() {
        match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => KeyKind::Rsa { bits: rsa.key_size() },
            _ => KeyKind::Other,
        }
    } else if alg == oid::EC_PUBLIC_KEY.as_bytes() {
        let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
        match curve.as_ref().map(|c| c.as_bytes()) {
            Some(c) if c == oid::P256.as_bytes() => KeyKind::EcP256,
            Some(c) if c == oid::P384.as_bytes() => KeyKind::EcP384,
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
