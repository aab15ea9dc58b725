//! The PKCS#10 request inside PKCSReq / RenewalReq, with the challenge password.

use std::fmt;
use std::net::IpAddr;

use der::asn1::{PrintableStringRef, SetOfVec, Utf8StringRef};
use der::{Any, Encode};
use zeroize::Zeroizing;

use crate::key::RequesterKey;
use crate::ScepError;

/// The SCEP challenge password. Its Debug prints nothing of it, and the memory is wiped when it
/// is dropped.
#[derive(Clone)]
pub struct ChallengePassword(Zeroizing<String>);

impl ChallengePassword {
    /// Longest accepted (RFC 2985 bounds challengePassword at 255 characters).
    pub const MAX_LEN: usize = 255;

    pub fn new(password: impl Into<String>) -> Result<Self, ScepError> {
        let password = Zeroizing::new(password.into());
        if password.is_empty() || password.chars().count() > Self::MAX_LEN || password.chars().any(char::is_control) {
            return Err(ScepError::BadChallengePassword { max: Self::MAX_LEN });
        }
        Ok(Self(password))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ChallengePassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChallengePassword(..)")
    }
}

/// What goes into the certificate request.
#[derive(Debug, Clone, Default)]
pub struct CsrSpec {
    pub subject: rcgen::DistinguishedName,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    /// RFC 8894 section 2.3: the shared secret for PKCSReq; scepserver also checks it on
    /// RenewalReq.
    pub challenge_password: Option<ChallengePassword>,
}

/// Builds a PKCS#10 request for `key` (signed with SHA-256), with the subject, the
/// subjectAltNames in an extensionRequest, and the challengePassword attribute. The DER holds
/// the password, so it comes back in a buffer that is wiped when dropped.
pub fn build_csr(key: &RequesterKey, spec: &CsrSpec) -> Result<Zeroizing<Vec<u8>>, ScepError> {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = spec.subject.clone();
    for name in &spec.dns_names {
        let ia5 = rcgen::string::Ia5String::try_from(name.as_str())
            .map_err(|_| ScepError::Csr(format!("{name:?} is not a valid DNS name")))?;
        params.subject_alt_names.push(rcgen::SanType::DnsName(ia5));
    }
    params.subject_alt_names.extend(spec.ip_addresses.iter().map(|ip| rcgen::SanType::IpAddress(*ip)));
    let mut attrs = Vec::new();
    if let Some(password) = &spec.challenge_password {
        // DirectoryString (RFC 2985 section 5.4.1): PrintableString when the password allows,
        // else UTF8String. rcgen takes the SET of values as DER.
        let value = match PrintableStringRef::new(password.expose()) {
            Ok(p) => Any::from(p),
            Err(_) => Any::from(Utf8StringRef::new(password.expose()).map_err(ScepError::Encode)?),
        };
        let set = SetOfVec::try_from(vec![value]).map_err(ScepError::Encode)?;
        let values = Zeroizing::new(set.to_der().map_err(ScepError::Encode)?);
        attrs.push(rcgen::Attribute { oid: CHALLENGE_PASSWORD_ARCS, values: values.to_vec() });
    }
    let csr = params
        .serialize_request_with_attributes(&key.rcgen_key_pair()?, attrs)
        .map_err(|e| ScepError::Csr(e.to_string()))?;
    Ok(Zeroizing::new(csr.der().to_vec()))
}

const CHALLENGE_PASSWORD_ARCS: &[u64] = &[1, 2, 840, 113549, 1, 9, 7];

/// The subject Name (DER) and SubjectPublicKeyInfo (DER) of a PKCS#10 request, as written.
pub(crate) fn csr_subject_and_key(csr_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), ScepError> {
    let csr = camera_pki::x509::Request::parse(csr_der)
        .map_err(|e| ScepError::Csr(format!("the certificate request cannot be read: {e}")))?;
    Ok((csr.subject_der().to_vec(), csr.spki_der().to_vec()))
}

/// The challengePassword of a request, as a server reads it (tests only).
#[cfg(test)]
pub(crate) fn challenge_in_csr(csr_der: &[u8]) -> Option<String> {
    let challenge_password = der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.7");
    camera_pki::x509::Request::parse(csr_der).ok()?.attribute_text(challenge_password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_password_never_shows_in_debug() {
        let p = ChallengePassword::new("s3cret-Challenge").unwrap();
        assert_eq!(format!("{p:?}"), "ChallengePassword(..)");
        let spec = CsrSpec { challenge_password: Some(p), ..Default::default() };
        assert!(!format!("{spec:?}").contains("s3cret"));
    }

    #[test]
    fn challenge_password_rules() {
        assert!(ChallengePassword::new("").is_err());
        assert!(ChallengePassword::new("a\nb").is_err());
        assert!(ChallengePassword::new("x".repeat(256)).is_err());
        assert!(ChallengePassword::new("x".repeat(255)).is_ok());
        let err = ChallengePassword::new("bad\u{7}").unwrap_err().to_string();
        assert!(!err.contains("bad"), "{err}");
    }
}
