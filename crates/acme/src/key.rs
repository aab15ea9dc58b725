//! The ACME account key (ECDSA P-256, JWS ES256) and the external account binding key (HS256).

use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use zeroize::{Zeroize, Zeroizing};

use crate::error::AcmeError;

pub(crate) fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// The account key: a P-256 key pair, kept as PKCS#8 DER in a buffer that is zeroed when dropped.
/// `Debug` shows only the public thumbprint.
pub struct AccountKey {
    pkcs8: Zeroizing<Vec<u8>>,
    pair: EcdsaKeyPair,
    jwk: String,
    thumbprint: String,
}

impl AccountKey {
    /// A new random key (the camera makes one once and keeps it in its state dir).
    pub fn generate() -> Result<Self, AcmeError> {
        let mut pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| AcmeError::BadAccountKey { reason: format!("it could not be generated ({e})") })?;
        let der = Zeroizing::new(pair.serialize_der());
        pair.zeroize();
        Self::from_pkcs8_der(&der)
    }

    /// Loads a key saved with [`AccountKey::pkcs8_der`].
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, AcmeError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
            .map_err(|_| AcmeError::BadAccountKey { reason: "it is not an ECDSA P-256 key in PKCS#8 form".into() })?;
        let jwk = jwk_of(pair.public_key().as_ref())?;
        let thumbprint = b64(ring::digest::digest(&ring::digest::SHA256, jwk.as_bytes()).as_ref());
        Ok(AccountKey { pkcs8: Zeroizing::new(der.to_vec()), pair, jwk, thumbprint })
    }

    /// The PKCS#8 DER to store (mode 0600); zeroed when the returned buffer is dropped.
    pub fn pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        self.pkcs8.clone()
    }

    /// The public key as a JWK, in the canonical member order of RFC 7638 (no whitespace).
    pub fn jwk(&self) -> &str {
        &self.jwk
    }

    /// RFC 7638 thumbprint of the JWK (SHA-256, base64url).
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// `token.thumbprint` (RFC 8555 section 8.1).
    pub fn key_authorization(&self, token: &str) -> String {
        format!("{token}.{}", self.thumbprint)
    }

    /// ES256 signature (r || s, 64 bytes) over `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, AcmeError> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| AcmeError::BadAccountKey { reason: "signing failed".into() })
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountKey").field("thumbprint", &self.thumbprint).finish_non_exhaustive()
    }
}

fn jwk_of(uncompressed_point: &[u8]) -> Result<String, AcmeError> {
    match uncompressed_point {
        [0x04, xy @ ..] if xy.len() == 64 => {
            let (x, y) = xy.split_at(32);
            // Members in lexicographic order, as RFC 7638 requires for the thumbprint.
            Ok(format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, b64(x), b64(y)))
        }
        _ => Err(AcmeError::BadAccountKey { reason: "its public key is not an uncompressed P-256 point".into() }),
    }
}

/// External account binding credentials (RFC 8555 section 7.3.4): the key id and the HMAC key the
/// CA's administrator hands out. The HMAC key is zeroed when dropped and never printed.
#[derive(Clone)]
pub struct Eab {
    kid: String,
    hmac_key: Zeroizing<Vec<u8>>,
}

impl Eab {
    /// `hmac_key_b64url` is the base64url key as CAs print it (padding tolerated).
    pub fn new(kid: impl Into<String>, hmac_key_b64url: &str) -> Result<Self, AcmeError> {
        let kid = kid.into();
        if kid.is_empty() || kid.len() > 256 || kid.chars().any(char::is_control) {
            return Err(AcmeError::InvalidRequest {
                reason: "the external account key id is empty or not valid".into(),
            });
        }
        let trimmed = hmac_key_b64url.trim().trim_end_matches('=');
        let hmac_key = Zeroizing::new(Base64UrlUnpadded::decode_vec(trimmed).map_err(|_| {
            AcmeError::InvalidRequest { reason: "the external account HMAC key is not base64url text".into() }
        })?);
        if hmac_key.is_empty() {
            return Err(AcmeError::InvalidRequest { reason: "the external account HMAC key is empty".into() });
        }
        Ok(Eab { kid, hmac_key })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The `externalAccountBinding` member of a newAccount payload: an HS256 JWS over the account
    /// JWK, with this key id and the newAccount URL in its protected header.
    pub(crate) fn binding(&self, account: &AccountKey, new_account_url: &str) -> serde_json::Value {
        let protected = serde_json::json!({"alg": "HS256", "kid": self.kid, "url": new_account_url}).to_string();
        let protected = b64(protected.as_bytes());
        let payload = b64(account.jwk().as_bytes());
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.hmac_key);
        let signature = ring::hmac::sign(&key, format!("{protected}.{payload}").as_bytes());
        serde_json::json!({"protected": protected, "payload": payload, "signature": b64(signature.as_ref())})
    }
}

impl fmt::Debug for Eab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Eab").field("kid", &self.kid).field("hmac_key", &"<hidden>").finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_round_trips_and_thumbprint_is_rfc7638() {
        let key = AccountKey::generate().unwrap();
        let again = AccountKey::from_pkcs8_der(&key.pkcs8_der()).unwrap();
        assert_eq!(key.jwk(), again.jwk());
        assert_eq!(key.thumbprint(), again.thumbprint());
        // Recompute from a parsed JWK: canonical members, sorted, no whitespace.
        let v: serde_json::Value = serde_json::from_str(key.jwk()).unwrap();
        let canonical = format!(
            r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
            v["crv"].as_str().unwrap(),
            v["kty"].as_str().unwrap(),
            v["x"].as_str().unwrap(),
            v["y"].as_str().unwrap()
        );
        let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
        assert_eq!(key.thumbprint(), b64(digest.as_ref()));
        assert_eq!(key.thumbprint().len(), 43);
        assert_eq!(key.key_authorization("tok"), format!("tok.{}", key.thumbprint()));
        assert!(!format!("{key:?}").contains(&b64(&key.pkcs8_der())));
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 section 3.1 uses an RSA key; the same rule on an EC JWK from RFC 7517 A.1.
        let jwk = r#"{"crv":"P-256","kty":"EC","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}"#;
        let x = Base64UrlUnpadded::decode_vec("MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4").unwrap();
        let y = Base64UrlUnpadded::decode_vec("4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM").unwrap();
        let mut point = vec![4u8];
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        assert_eq!(jwk_of(&point).unwrap(), jwk);
        // Thumbprint of that JWK, computed independently with openssl:
        // printf '%s' "$jwk" | openssl dgst -sha256 -binary | basenc --base64url
        assert_eq!(
            b64(ring::digest::digest(&ring::digest::SHA256, jwk.as_bytes()).as_ref()),
            "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s"
        );
    }

    #[test]
    fn signatures_verify_with_the_public_key() {
        let key = AccountKey::generate().unwrap();
        let sig = key.sign(b"abc.def").unwrap();
        assert_eq!(sig.len(), 64);
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            key.pair.public_key().as_ref().to_vec(),
        );
        public.verify(b"abc.def", &sig).unwrap();
        assert!(public.verify(b"abc.deg", &sig).is_err());
    }

    #[test]
    fn bad_keys_are_refused_with_a_sentence() {
        let err = AccountKey::from_pkcs8_der(b"not a key").unwrap_err();
        assert!(err.to_string().contains("not an ECDSA P-256 key"), "{err}");
    }

    #[test]
    fn eab_binding_is_hs256_over_the_jwk() {
        let key = AccountKey::generate().unwrap();
        let eab = Eab::new("kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W").unwrap();
        let v = eab.binding(&key, "https://ca/new-acct");
        let protected = Base64UrlUnpadded::decode_vec(v["protected"].as_str().unwrap()).unwrap();
        let protected: serde_json::Value = serde_json::from_slice(&protected).unwrap();
        assert_eq!(protected, serde_json::json!({"alg": "HS256", "kid": "kid-1", "url": "https://ca/new-acct"}));
        let payload = Base64UrlUnpadded::decode_vec(v["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload, key.jwk().as_bytes());
        let mac_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &eab.hmac_key);
        let signed = format!("{}.{}", v["protected"].as_str().unwrap(), v["payload"].as_str().unwrap());
        let sig = Base64UrlUnpadded::decode_vec(v["signature"].as_str().unwrap()).unwrap();
        ring::hmac::verify(&mac_key, signed.as_bytes(), &sig).unwrap();
        let debug = format!("{eab:?}");
        assert!(debug.contains("kid-1") && !debug.contains("zWNDZM6e") && debug.contains("<hidden>"), "{debug}");
        assert!(Eab::new("k", "not base64!").is_err());
        assert!(Eab::new("", "AAAA").is_err());
        assert_eq!(Eab::new("k", "AAAA==").unwrap().hmac_key.len(), 3);
    }
}
