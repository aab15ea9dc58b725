//! Challenge answers the camera must serve, and the trait through which it serves them.

use std::fmt;
use std::net::IpAddr;

use zeroize::{Zeroize, Zeroizing};

use crate::error::AcmeError;
use crate::wire::Identifier;

/// The ALPN protocol a tls-alpn-01 validation offers (RFC 8737 section 6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Challenge types this client can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChallengeType {
    /// `GET http://<identifier>/.well-known/acme-challenge/<token>` on port 80.
    Http01,
    /// TLS on port 443, ALPN `acme-tls/1`, a self-signed certificate naming the identifier.
    TlsAlpn01,
}

impl ChallengeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeType::Http01 => "http-01",
            ChallengeType::TlsAlpn01 => "tls-alpn-01",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "http-01" => Some(ChallengeType::Http01),
            "tls-alpn-01" => Some(ChallengeType::TlsAlpn01),
            _ => None,
        }
    }
}

impl fmt::Display for ChallengeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the camera must serve while the server validates one identifier.
pub enum ChallengeAnswer {
    /// Serve `key_authorization` (as `application/octet-stream` or text) at
    /// `/.well-known/acme-challenge/<token>` on port 80. `token` is base64url only (checked).
    Http01 { identifier: Identifier, token: String, key_authorization: String },
    /// To a TLS ClientHello that offers ALPN `acme-tls/1` (and only to such) whose SNI is `sni`,
    /// answer with `certificate_der` / `key_pkcs8` and negotiate `acme-tls/1`. For an IP
    /// identifier `sni` is the reverse-DNS name (RFC 8738 section 6), e.g. `1.0.0.127.in-addr.arpa`.
    TlsAlpn01 { identifier: Identifier, sni: String, certificate_der: Vec<u8>, key_pkcs8: Zeroizing<Vec<u8>> },
}

impl ChallengeAnswer {
    pub fn identifier(&self) -> &Identifier {
        match self {
            ChallengeAnswer::Http01 { identifier, .. } | ChallengeAnswer::TlsAlpn01 { identifier, .. } => identifier,
        }
    }

    pub fn challenge_type(&self) -> ChallengeType {
        match self {
            ChallengeAnswer::Http01 { .. } => ChallengeType::Http01,
            ChallengeAnswer::TlsAlpn01 { .. } => ChallengeType::TlsAlpn01,
        }
    }

    /// The http-01 path, `/.well-known/acme-challenge/<token>`.
    pub fn http01_path(&self) -> Option<String> {
        match self {
            ChallengeAnswer::Http01 { token, .. } => Some(format!("/.well-known/acme-challenge/{token}")),
            ChallengeAnswer::TlsAlpn01 { .. } => None,
        }
    }
}

impl fmt::Debug for ChallengeAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChallengeAnswer::Http01 { identifier, token, .. } => {
                f.debug_struct("Http01").field("identifier", identifier).field("token", token).finish_non_exhaustive()
            }
            ChallengeAnswer::TlsAlpn01 { identifier, sni, .. } => {
                f.debug_struct("TlsAlpn01").field("identifier", identifier).field("sni", sni).finish_non_exhaustive()
            }
        }
    }
}

/// Implemented by whatever serves the camera's ports (camera-web). `publish` must make the answer
/// visible before it returns; `withdraw` is called for every published answer once the server is
/// done with it, on success and on failure alike (also when the future is dropped).
pub trait ChallengeResponder: Send + Sync {
    fn publish(&self, answer: &ChallengeAnswer) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
    fn withdraw(&self, answer: &ChallengeAnswer);
}

/// The SNI a validation server sends for `identifier` in tls-alpn-01: the name itself, or for an
/// IP address its reverse-DNS name (RFC 8738 section 6), without the trailing dot.
pub fn tls_alpn_sni(identifier: &Identifier) -> String {
    match identifier {
        Identifier::Dns(name) => name.clone(),
        Identifier::Ip(IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        Identifier::Ip(IpAddr::V6(v6)) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

/// Builds the tls-alpn-01 answer: a fresh self-signed P-256 certificate whose only subjectAltName is
/// `identifier` and which carries the critical id-pe-acmeIdentifier extension holding
/// SHA-256(key authorization) (RFC 8737 section 3).
pub fn tls_alpn01_answer(identifier: &Identifier, key_authorization: &str) -> Result<ChallengeAnswer, AcmeError> {
    let setup = |e: rcgen::Error| AcmeError::ChallengeSetup { identifier: identifier.clone(), reason: e.to_string() };
    let digest = ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes());
    let mut params = rcgen::CertificateParams::default();
    params.subject_alt_names = vec![match identifier {
        Identifier::Ip(ip) => rcgen::SanType::IpAddress(*ip),
        Identifier::Dns(name) => rcgen::SanType::DnsName(name.clone().try_into().map_err(setup)?),
    }];
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, "ACME tls-alpn-01 challenge");
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest.as_ref())];
    let mut key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(setup)?;
    let cert = params.self_signed(&key).map_err(setup)?;
    let key_pkcs8 = Zeroizing::new(key.serialize_der());
    key.zeroize();
    Ok(ChallengeAnswer::TlsAlpn01 {
        identifier: identifier.clone(),
        sni: tls_alpn_sni(identifier),
        certificate_der: cert.der().to_vec(),
        key_pkcs8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_follow_rfc8738() {
        assert_eq!(tls_alpn_sni(&Identifier::Ip("127.0.0.1".parse().unwrap())), "1.0.0.127.in-addr.arpa");
        assert_eq!(tls_alpn_sni(&Identifier::Ip("192.0.2.10".parse().unwrap())), "10.2.0.192.in-addr.arpa");
        // RFC 8738 section 6's example address.
        assert_eq!(
            tls_alpn_sni(&Identifier::Ip("2001:db8::1".parse().unwrap())),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
        assert_eq!(tls_alpn_sni(&Identifier::Dns("cam.local".into())), "cam.local");
    }

    #[test]
    fn tls_alpn_certificate_has_the_acme_extension_and_only_the_identifier() {
        let ident = Identifier::Ip("127.0.0.1".parse().unwrap());
        let answer = tls_alpn01_answer(&ident, "tok.thumb").unwrap();
        let ChallengeAnswer::TlsAlpn01 { certificate_der, key_pkcs8, sni, .. } = &answer else { panic!() };
        assert_eq!(sni, "1.0.0.127.in-addr.arpa");
        assert!(!key_pkcs8.is_empty());
        use x509_cert::der::{oid::ObjectIdentifier, Decode};
        use x509_cert::ext::pkix::{name::GeneralName, SubjectAltName};
        let cert = x509_cert::Certificate::from_der(certificate_der).unwrap();
        let acme_oid = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.31");
        let extensions = cert.tbs_certificate.extensions.as_deref().unwrap_or(&[]);
        let ext = extensions.iter().find(|e| e.extn_id == acme_oid).expect("acmeIdentifier extension");
        assert!(ext.critical);
        let digest = ring::digest::digest(&ring::digest::SHA256, b"tok.thumb");
        let mut want = vec![0x04, 0x20];
        want.extend_from_slice(digest.as_ref());
        assert_eq!(ext.extn_value.as_bytes(), want.as_slice());
        let (_, san) = cert.tbs_certificate.get::<SubjectAltName>().unwrap().unwrap();
        assert_eq!(san.0.len(), 1);
        assert!(matches!(&san.0[0], GeneralName::IpAddress(b) if b.as_bytes() == [127, 0, 0, 1]));
        let debug = format!("{answer:?}");
        assert!(debug.contains("1.0.0.127.in-addr.arpa") && !debug.contains("key_pkcs8"), "{debug}");
    }
}
