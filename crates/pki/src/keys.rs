use std::fmt;

use rcgen::{KeyPair, SignatureAlgorithm};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::PkiError;

/// Key types the camera can generate for a certificate request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyType {
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    #[serde(rename = "ecdsa-p384")]
    EcdsaP384,
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    #[serde(rename = "rsa-3072")]
    Rsa3072,
}

impl KeyType {
    pub const ALL: [KeyType; 4] = [Self::EcdsaP256, Self::EcdsaP384, Self::Rsa2048, Self::Rsa3072];

    /// The name used in the API (`ecdsa-p256`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa3072 => "rsa-3072",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    fn signature_algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            Self::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Self::Rsa2048 | Self::Rsa3072 => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

/// A private key as PKCS#8 DER. Zeroized when dropped; Debug never shows it.
pub struct SecretKey {
    pkcs8: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// Generates a fresh key of the given type.
    pub fn generate(key_type: KeyType) -> Result<Self, PkiError> {
        match key_type {
            KeyType::EcdsaP256 | KeyType::EcdsaP384 => {
                let pair = KeyPair::generate_for(key_type.signature_algorithm()).map_err(PkiError::GenerateKey)?;
                Ok(Self { pkcs8: Zeroizing::new(pair.serialize_der()) })
            }
            KeyType::Rsa2048 | KeyType::Rsa3072 => {
                use rsa::pkcs8::EncodePrivateKey;
                let bits = if key_type == KeyType::Rsa2048 { 2048 } else { 3072 };
                let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, bits).map_err(PkiError::GenerateRsaKey)?;
                let doc = key.to_pkcs8_der().map_err(PkiError::EncodeRsaKey)?;
                Ok(Self { pkcs8: Zeroizing::new(doc.as_bytes().to_vec()) })
            }
        }
    }

    /// Wraps PKCS#8 DER, checking that it is a key we can sign with.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, PkiError> {
        let key = Self { pkcs8: Zeroizing::new(der.to_vec()) };
        key.key_pair()?;
        Ok(key)
    }

    /// Reads the first `PRIVATE KEY` block of a PEM text.
    pub fn from_pkcs8_pem(text: &[u8]) -> Result<Self, PkiError> {
        let der = crate::pem::pkcs8_key(text)?.ok_or(PkiError::MissingPem { label: "PRIVATE KEY" })?;
        Self::from_pkcs8_der(&der)
    }

    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    pub fn to_pem(&self) -> Zeroizing<String> {
        crate::pem::encode("PRIVATE KEY", &self.pkcs8)
    }

    /// An rcgen key pair for signing; RSA keys sign with SHA-256.
    pub(crate) fn key_pair(&self) -> Result<KeyPair, PkiError> {
        let der = rustls_pki_types::PrivatePkcs8KeyDer::from(self.pkcs8.as_slice());
        match KeyPair::try_from(&der) {
            Ok(pair) => Ok(pair),
            Err(_) => {
                KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256).map_err(PkiError::UnusableKey)
            }
        }
    }
}
