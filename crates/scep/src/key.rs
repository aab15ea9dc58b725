//! The requester's RSA key and the certificate it signs SCEP messages with.

use std::fmt;

use rand_core::OsRng;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Encrypt, Pkcs1v15Sign, RsaPrivateKey};
use zeroize::Zeroizing;

use crate::caps::DigestAlgorithm;
use crate::cert::{Cert, KeyKind};
use crate::ScepError;

/// The key size [`RequesterKey::generate`] uses by default.
pub const DEFAULT_RSA_BITS: usize = 2048;

/// The requester's private key. SCEP needs RSA: the server encrypts its answer to the
/// requester's certificate with RSA key transport (RFC 8894 section 2.3), so an EC key cannot
/// enroll. Debug shows the key size only; the PKCS#8 bytes are wiped when dropped.
pub struct RequesterKey {
    pkcs8: Zeroizing<Vec<u8>>,
    rsa: RsaPrivateKey,
    ring: ring::signature::RsaKeyPair,
    spki: Vec<u8>,
}

impl fmt::Debug for RequesterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequesterKey(RSA {} bits)", self.bits())
    }
}

impl RequesterKey {
    /// Generates a new RSA key (2048 bits is [`DEFAULT_RSA_BITS`]; 2048 to 8192 are accepted).
    pub fn generate(bits: usize) -> Result<Self, ScepError> {
        if !(2048..=8192).contains(&bits) {
            return Err(ScepError::RsaKeySize(bits));
        }
        let key = RsaPrivateKey::new(&mut OsRng, bits).map_err(|_| ScepError::Random)?;
        let doc = key.to_pkcs8_der().map_err(|_| ScepError::BadKey)?;
        Self::from_pkcs8_der(doc.as_bytes())
    }

    /// Reads a PKCS#8 private key. EC keys are refused with [`ScepError::NotRsa`].
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, ScepError> {
        // Tell EC (or other) keys apart from garbage, for a clear message.
        let info = rsa::pkcs8::PrivateKeyInfo::try_from(der).map_err(|_| ScepError::BadKey)?;
        if info.algorithm.oid != crate::oid::RSA_ENCRYPTION {
            return Err(ScepError::NotRsa);
        }
        let rsa = RsaPrivateKey::from_pkcs8_der(der).map_err(|_| ScepError::BadKey)?;
        let bits = rsa.n().bits();
        if !(2048..=8192).contains(&bits) {
            return Err(ScepError::RsaKeySize(bits));
        }
        let ring = ring::signature::RsaKeyPair::from_pkcs8(der).map_err(|_| ScepError::BadKey)?;
        let spki = rsa.to_public_key().to_public_key_der().map_err(|_| ScepError::BadKey)?.as_bytes().to_vec();
        Ok(Self { pkcs8: Zeroizing::new(der.to_vec()), rsa, ring, spki })
    }

    /// The key as PKCS#8 DER, for storing (0600) next to the certificate.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The SubjectPublicKeyInfo DER of the public key.
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    pub fn bits(&self) -> usize {
        self.rsa.n().bits()
    }

    /// PKCS#1 v1.5 signature of `msg` with the given digest.
    pub(crate) fn sign(&self, digest: DigestAlgorithm, msg: &[u8]) -> Result<Vec<u8>, ScepError> {
        let encoding: &'static dyn ring::signature::RsaEncoding = match digest {
            DigestAlgorithm::Sha256 => &ring::signature::RSA_PKCS1_SHA256,
            DigestAlgorithm::Sha384 => &ring::signature::RSA_PKCS1_SHA384,
            DigestAlgorithm::Sha512 => &ring::signature::RSA_PKCS1_SHA512,
            DigestAlgorithm::Sha1 => {
                // ring does not sign with SHA-1; the rsa crate does, with blinding. Only servers
                // that offer nothing newer get this.
                const SHA1_DIGEST_INFO: [u8; 15] =
                    [0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14];
                let hash = crate::cert::digest(DigestAlgorithm::Sha1, msg);
                let scheme = Pkcs1v15Sign { hash_len: Some(20), prefix: Box::new(SHA1_DIGEST_INFO) };
                return self.rsa.sign_with_rng(&mut OsRng, scheme, &hash).map_err(|_| ScepError::Random);
            }
        };
        let mut sig = vec![0; self.ring.public().modulus_len()];
        self.ring.sign(encoding, &ring::rand::SystemRandom::new(), msg, &mut sig).map_err(|_| ScepError::Random)?;
        Ok(sig)
    }

    /// Decrypts an RSA PKCS#1 v1.5 key-transport block (the content-encryption key).
    pub(crate) fn decrypt_key(&self, encrypted: &[u8]) -> Result<Zeroizing<Vec<u8>>, ScepError> {
        self.rsa
            .decrypt_blinded(&mut OsRng, Pkcs1v15Encrypt, encrypted)
            .map(Zeroizing::new)
            .map_err(|_| ScepError::DecryptFailed)
    }

    pub(crate) fn rcgen_key_pair(&self) -> Result<rcgen::KeyPair, ScepError> {
        let der = rustls_pki_types::PrivatePkcs8KeyDer::from(self.pkcs8.as_slice());
        rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256).map_err(|_| ScepError::BadKey)
    }
}

/// The identity a SCEP message is signed with, and to which the server encrypts its answer: the
/// requester's key with either a self-signed certificate (PKCSReq, RFC 8894 section 2.3) or the
/// current certificate issued by the CA (RenewalReq).
#[derive(Debug)]
pub struct Signer {
    pub(crate) key: RequesterKey,
    pub(crate) cert: Cert,
}

impl Signer {
    /// A signer with a new self-signed certificate for `key`, for PKCSReq. The subject should be
    /// the one in the request (RFC 8894 section 2.3); the validity runs from a day before
    /// `now` to a year after it (servers do not check it, but some compare it with signingTime).
    pub fn self_signed(
        key: RequesterKey,
        subject: &rcgen::DistinguishedName,
        now: time::OffsetDateTime,
    ) -> Result<Self, ScepError> {
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = subject.clone();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(365);
        let cert = params.self_signed(&key.rcgen_key_pair()?).map_err(|e| ScepError::Csr(e.to_string()))?;
        let cert = Cert::parse(cert.der())?;
        Ok(Self { key, cert })
    }

    /// A signer made of a certificate the CA issued and its key, for RenewalReq (and for
    /// polling a PKCSReq after a restart, with the self-signed certificate kept from before).
    pub fn with_certificate(key: RequesterKey, cert_der: &[u8]) -> Result<Self, ScepError> {
        let cert = Cert::parse(cert_der)?;
        if cert.spki != key.spki || !matches!(cert.key, KeyKind::Rsa { .. }) {
            return Err(ScepError::CertificateKeyMismatch);
        }
        Ok(Self { key, cert })
    }

    /// The signer's certificate (DER).
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert.der
    }

    pub fn key(&self) -> &RequesterKey {
        &self.key
    }

    /// Gives the key back (after enrollment, the issued certificate pairs with it).
    pub fn into_key(self) -> RequesterKey {
        self.key
    }
}
