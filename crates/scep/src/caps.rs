//! GetCACaps: what the server can do, and the algorithms a request uses as a result.

use std::fmt;

use crate::{ScepError, MAX_CAPS_SIZE};

/// Message digests: [`Algorithms::digest`] for requests; responses may use any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// Only when the server offers nothing better (SHA-1 is what the oldest servers verify).
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        }
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Content encryption of the request's enveloped data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentCipher {
    /// What the `AES` capability means (RFC 8894 section 3.5.2) and what the RFC recommends.
    Aes128Cbc,
    /// Stronger, for servers known to accept it; not chosen automatically (`AES` promises AES-128).
    Aes256Cbc,
    /// Triple DES, only when the server offers nothing else.
    Des3Cbc,
}

impl ContentCipher {
    pub fn name(self) -> &'static str {
        match self {
            Self::Aes128Cbc => "AES-128-CBC",
            Self::Aes256Cbc => "AES-256-CBC",
            Self::Des3Cbc => "3DES-CBC",
        }
    }
}

impl fmt::Display for ContentCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The algorithms a request is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Algorithms {
    pub digest: DigestAlgorithm,
    pub cipher: ContentCipher,
}

impl Algorithms {
    /// SHA-256 and AES-128-CBC, the pair RFC 8894 recommends.
    pub const RECOMMENDED: Self = Self { digest: DigestAlgorithm::Sha256, cipher: ContentCipher::Aes128Cbc };

    /// True when either algorithm is one kept only for old servers (SHA-1 or 3DES).
    pub fn is_legacy(&self) -> bool {
        self.digest == DigestAlgorithm::Sha1 || self.cipher == ContentCipher::Des3Cbc
    }
}

impl fmt::Display for Algorithms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} and {}", self.digest, self.cipher)
    }
}

/// The server's GetCACaps answer (RFC 8894 section 3.5.2). Keywords are matched without regard
/// to case; unknown ones are kept in [`Capabilities::other`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub aes: bool,
    pub des3: bool,
    pub get_next_ca_cert: bool,
    pub post_pki_operation: bool,
    pub renewal: bool,
    pub sha1: bool,
    pub sha256: bool,
    pub sha512: bool,
    /// `SCEPStandard`: the server implements RFC 8894's mandatory set (AES, SHA-256, POST).
    pub scep_standard: bool,
    /// `Update` (an old name for certificate update, not used by this client).
    pub update: bool,
    /// Keywords this client does not know, at most [`Capabilities::MAX_OTHER`] of them.
    pub other: Vec<String>,
}

impl Capabilities {
    pub const MAX_OTHER: usize = 32;

    /// Parses a GetCACaps body: keywords separated by line breaks (servers use LF or CRLF; some
    /// put several on a line separated by spaces). An empty body means "no capabilities", which
    /// RFC 8894 says is how a server that does not implement GetCACaps must be treated.
    pub fn parse(body: &[u8]) -> Result<Self, ScepError> {
        if body.len() > MAX_CAPS_SIZE {
            return Err(ScepError::TooLarge { what: "capability list", size: body.len(), max: MAX_CAPS_SIZE });
        }
        let text = std::str::from_utf8(body).map_err(|_| ScepError::CapabilitiesNotText)?;
        if text.chars().any(|c| c.is_control() && !c.is_whitespace()) {
            return Err(ScepError::CapabilitiesNotText);
        }
        let mut caps = Self::default();
        for word in text.split_whitespace() {
            match word.to_ascii_uppercase().as_str() {
                "AES" => caps.aes = true,
                "DES3" => caps.des3 = true,
                "GETNEXTCACERT" => caps.get_next_ca_cert = true,
                "POSTPKIOPERATION" => caps.post_pki_operation = true,
                "RENEWAL" => caps.renewal = true,
                "SHA-1" => caps.sha1 = true,
                "SHA-256" => caps.sha256 = true,
                "SHA-512" => caps.sha512 = true,
                "SCEPSTANDARD" => caps.scep_standard = true,
                "UPDATE" => caps.update = true,
                _ => {
                    if caps.other.len() < Self::MAX_OTHER {
                        caps.other.push(crate::error::server_text(word.as_bytes(), 64));
                    }
                }
            }
        }
        Ok(caps)
    }

    /// Whether PKIOperation may be sent with POST (else it goes in a GET query).
    pub fn supports_post(&self) -> bool {
        self.post_pki_operation || self.scep_standard
    }

    /// Whether the server accepts RenewalReq (a request signed with the current certificate).
    pub fn supports_renewal(&self) -> bool {
        self.renewal
    }

    /// The algorithms for requests to this server, with the reason in words.
    ///
    /// Digest: SHA-256 when offered (RFC 8894's recommendation, `SCEPStandard` implies it), else
    /// SHA-512, else SHA-1. Cipher: AES-128-CBC when offered (`AES` or `SCEPStandard`), else 3DES.
    /// A server that announces nothing gets SHA-1 and 3DES, the oldest pair every SCEP server
    /// understands; [`Algorithms::is_legacy`] tells the caller to say so.
    pub fn algorithms(&self) -> (Algorithms, &'static str) {
        let digest = if self.sha256 || self.scep_standard {
            DigestAlgorithm::Sha256
        } else if self.sha512 {
            DigestAlgorithm::Sha512
        } else {
            DigestAlgorithm::Sha1
        };
        let cipher = if self.aes || self.scep_standard { ContentCipher::Aes128Cbc } else { ContentCipher::Des3Cbc };
        let why = match (digest, cipher) {
            (DigestAlgorithm::Sha256, ContentCipher::Aes128Cbc) => "the server offers SHA-256 and AES",
            (DigestAlgorithm::Sha1, ContentCipher::Des3Cbc) if !self.sha1 && !self.des3 => {
                "the server announces no algorithms, so the request uses SHA-1 and 3DES, which every SCEP server supports"
            }
            (_, ContentCipher::Des3Cbc) => "the server does not offer AES, so the request falls back to 3DES",
            (DigestAlgorithm::Sha1, _) => "the server offers neither SHA-256 nor SHA-512, so the request uses SHA-1",
            _ => "the strongest digest and cipher the server offers",
        };
        (Algorithms { digest, cipher }, why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micromdm_list_picks_sha256_and_aes() {
        // scepserver 2.1.0's fixed answer (server/service.go).
        let caps = Capabilities::parse(b"Renewal\nSHA-1\nSHA-256\nAES\nDES3\nSCEPStandard\nPOSTPKIOperation").unwrap();
        assert!(caps.renewal && caps.sha1 && caps.sha256 && caps.aes && caps.des3 && caps.scep_standard);
        assert!(caps.supports_post() && caps.supports_renewal());
        assert!(caps.other.is_empty());
        let (algs, why) = caps.algorithms();
        assert_eq!(algs, Algorithms::RECOMMENDED);
        assert!(!algs.is_legacy());
        assert_eq!(why, "the server offers SHA-256 and AES");
        assert_eq!(algs.to_string(), "SHA-256 and AES-128-CBC");
    }

    #[test]
    fn ndes_style_crlf_and_case() {
        // NDES answers with CRLF line ends; some servers use other cases.
        let caps = Capabilities::parse(b"POSTPKIOperation\r\nrenewal\r\nSHA-512\r\nsha-1\r\nDES3\r\n").unwrap();
        assert!(caps.post_pki_operation && caps.renewal && caps.sha512 && caps.sha1 && caps.des3);
        assert!(!caps.aes && !caps.sha256);
        let (algs, why) = caps.algorithms();
        assert_eq!(algs, Algorithms { digest: DigestAlgorithm::Sha512, cipher: ContentCipher::Des3Cbc });
        assert!(algs.is_legacy());
        assert!(why.contains("3DES"), "{why}");
    }

    #[test]
    fn scep_standard_alone_implies_the_rfc_set() {
        let caps = Capabilities::parse(b"SCEPStandard\n").unwrap();
        assert!(caps.supports_post());
        assert!(!caps.supports_renewal());
        assert_eq!(caps.algorithms().0, Algorithms::RECOMMENDED);
    }

    #[test]
    fn nothing_announced_means_oldest_pair() {
        let caps = Capabilities::parse(b"").unwrap();
        assert_eq!(caps, Capabilities::default());
        assert!(!caps.supports_post());
        let (algs, why) = caps.algorithms();
        assert_eq!(algs, Algorithms { digest: DigestAlgorithm::Sha1, cipher: ContentCipher::Des3Cbc });
        assert!(why.contains("announces no algorithms"), "{why}");
    }

    #[test]
    fn only_des3_is_3des_even_with_sha256() {
        let caps = Capabilities::parse(b"SHA-256\nDES3\n").unwrap();
        assert_eq!(caps.algorithms().0, Algorithms { digest: DigestAlgorithm::Sha256, cipher: ContentCipher::Des3Cbc });
    }

    #[test]
    fn unknown_words_are_kept_bounded_and_clean() {
        let mut body = b"AES\nTrain\n".to_vec();
        for i in 0..100 {
            body.extend_from_slice(format!("X{i}\n").as_bytes());
        }
        let caps = Capabilities::parse(&body).unwrap();
        assert!(caps.aes);
        assert_eq!(caps.other.len(), Capabilities::MAX_OTHER);
        assert_eq!(caps.other[0], "Train");
    }

    #[test]
    fn binary_or_huge_bodies_are_refused() {
        assert!(matches!(Capabilities::parse(&[0xff, 0xfe, 0x00]), Err(ScepError::CapabilitiesNotText)));
        assert!(matches!(Capabilities::parse(b"AES\0SHA-256"), Err(ScepError::CapabilitiesNotText)));
        let huge = vec![b'A'; MAX_CAPS_SIZE + 1];
        assert!(matches!(Capabilities::parse(&huge), Err(ScepError::TooLarge { .. })));
    }
}
