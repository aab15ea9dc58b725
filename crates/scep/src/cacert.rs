//! GetCACert: the CA certificate, or the CA and RA certificates, and which one does what.

use crate::cert::Cert;
use crate::{cms, ScepError, MAX_MESSAGE_SIZE};

/// Content type of a GetCACert answer with one CA certificate (DER).
pub const CA_CERT_CONTENT_TYPE: &str = "application/x-x509-ca-cert";
/// Content type of a GetCACert answer with CA and RA certificates (certs-only PKCS#7).
pub const CA_RA_CERT_CONTENT_TYPE: &str = "application/x-x509-ca-ra-cert";

/// Most certificates accepted in one GetCACert answer (a CA, its chain and two RA certificates
/// is the usual most).
pub const MAX_CA_CERTS: usize = 16;

/// The server's certificates from GetCACert, sorted out: the issuing CA, the certificate
/// requests are encrypted to, and the certificates that may sign the server's answers.
#[derive(Debug, Clone)]
pub struct CaCerts {
    certs: Vec<Cert>,
    ca: usize,
    recipient: usize,
}

impl CaCerts {
    /// Parses a GetCACert answer. `content_type` is the HTTP Content-Type (parameters ignored);
    /// the body decides between one DER certificate and a certs-only PKCS#7, since servers are
    /// not all careful with the header, but an answer that is plainly not a certificate (an HTML
    /// error page, say) is reported with its content type.
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, ScepError> {
        if body.len() > MAX_MESSAGE_SIZE {
            return Err(ScepError::TooLarge { what: "CA certificate answer", size: body.len(), max: MAX_MESSAGE_SIZE });
        }
        let ders: Vec<&[u8]> = if looks_like_content_info(body) {
            cms::degenerate_certs(body)?
        } else if body.first() == Some(&0x30) {
            vec![body]
        } else {
            return Err(not_expected(
                "GetCACert",
                content_type,
                &[CA_CERT_CONTENT_TYPE, CA_RA_CERT_CONTENT_TYPE],
                "a certificate (application/x-x509-ca-cert or application/x-x509-ca-ra-cert)",
                "CA certificate (GetCACert) answer",
                body,
            ));
        };
        if ders.is_empty() {
            return Err(ScepError::NoCaCertificate);
        }
        if ders.len() > MAX_CA_CERTS {
            return Err(ScepError::TooManyCertificates { max: MAX_CA_CERTS });
        }
        let certs = ders.into_iter().map(Cert::parse).collect::<Result<Vec<_>, _>>()?;
        Self::sort_out(certs)
    }

    /// Works out the roles (RFC 8894 section 3.5.1.2 and 2.2): the RA certificates are the ones
    /// that are not CAs; the issuing CA is the CA that issued them, or with no RA the CA that
    /// issued no other CA in the set (the lowest of a chain).
    fn sort_out(certs: Vec<Cert>) -> Result<Self, ScepError> {
        let is_ca = |c: &Cert| {
            c.is_ca || certs.iter().any(|o| !std::ptr::eq(o, c) && o.issuer == c.subject && o.issuer != o.subject)
        };
        let ras: Vec<usize> = (0..certs.len()).filter(|&i| !is_ca(&certs[i])).collect();
        let cas: Vec<usize> = (0..certs.len()).filter(|&i| is_ca(&certs[i])).collect();
        let ca = if let Some(&ra) = ras.first() {
            cas.iter().copied().find(|&i| certs[ra].issuer == certs[i].subject).or(cas.first().copied())
        } else {
            cas.iter()
                .copied()
                .find(|&i| {
                    !cas.iter()
                        .any(|&j| j != i && certs[j].issuer == certs[i].subject && certs[j].issuer != certs[j].subject)
                })
                .or(cas.first().copied())
        };
        // With a single non-CA certificate and nothing else (some servers send only the RA or
        // a CA without basicConstraints), that certificate is all there is.
        let ca = ca.unwrap_or(0);
        // An RA meant for encryption first, then any RSA RA, then the CA. The CA's keyUsage is
        // not checked: CAs such as scepserver's carry keyCertSign only, and clients encrypt to
        // them all the same (RFC 8894 section 2.2: with no RA, the CA is the recipient).
        let recipient = ras
            .iter()
            .copied()
            .find(|&i| certs[i].can_encrypt())
            .or_else(|| ras.iter().copied().find(|&i| certs[i].is_rsa()))
            .or_else(|| certs[ca].is_rsa().then_some(ca))
            .ok_or(ScepError::RecipientNotRsa(if ras.is_empty() { "CA" } else { "RA" }))?;
        Ok(Self { certs, ca, recipient })
    }

    /// The issuing CA's certificate (DER).
    pub fn ca(&self) -> &[u8] {
        &self.certs[self.ca].der
    }

    /// The certificate requests are encrypted to (DER): an RA certificate for encryption, or
    /// the CA.
    pub fn recipient(&self) -> &[u8] {
        &self.certs[self.recipient].der
    }

    /// Whether the server uses an RA (the recipient is not the CA).
    pub fn has_ra(&self) -> bool {
        self.recipient != self.ca
    }

    /// Every certificate of the answer, in the order received (DER).
    pub fn all(&self) -> impl Iterator<Item = &[u8]> {
        self.certs.iter().map(|c| c.der.as_slice())
    }

    /// The SHA-256 fingerprint of the CA certificate, lowercase hex: what an installer compares
    /// with the CA's own (RFC 8894 section 2.2 asks for this out-of-band check).
    pub fn ca_fingerprint_sha256(&self) -> String {
        camera_pki::text::hex_lower(ring::digest::digest(&ring::digest::SHA256, self.ca()).as_ref())
    }

    /// Checks these certificates against trust anchors the camera was configured with. Every
    /// certificate of the answer must be an anchor, be signed by an anchor, or be linked by a
    /// verified signature to one trusted this way (signed by a trusted CA certificate, or the CA
    /// certificate that signed a trusted one). Over plain HTTP this is what stops a machine in the middle from posing as the SCEP
    /// server: all of these certificates are accepted as signers of the server's answers.
    pub fn check_trust(&self, anchors_der: &[&[u8]]) -> Result<(), ScepError> {
        let anchors = anchors_der.iter().map(|d| Cert::parse(d)).collect::<Result<Vec<_>, _>>()?;
        let mut trusted: Vec<bool> =
            self.certs.iter().map(|c| anchors.iter().any(|a| a.der == c.der || c.is_signed_by(a))).collect();
        // Extend trust down the chains in the answer (a handful of certificates at most).
        loop {
            let mut changed = false;
            for i in 0..self.certs.len() {
                if trusted[i] {
                    continue;
                }
                let is_ca = |k: usize| self.certs[k].is_ca || k == self.ca;
                // Signed by a trusted CA, or the CA (proven by its signature) of a trusted one.
                let by_trusted_ca = (0..self.certs.len()).any(|j| {
                    j != i
                        && trusted[j]
                        && ((is_ca(j) && self.certs[i].is_signed_by(&self.certs[j]))
                            || (is_ca(i) && self.certs[j].is_signed_by(&self.certs[i])))
                });
                if by_trusted_ca {
                    trusted[i] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        if trusted.iter().all(|t| *t) {
            Ok(())
        } else {
            Err(ScepError::Untrusted)
        }
    }

    /// Checks that `leaf` (an issued certificate) is signed by a CA certificate of this answer,
    /// which [`CaCerts::check_trust`] vouched for: a certificate from anyone else is not the
    /// site's, whatever its issuer name says.
    pub fn check_issued(&self, leaf_der: &[u8]) -> Result<(), ScepError> {
        let leaf = Cert::parse(leaf_der)?;
        let by_a_ca = self.certs.iter().enumerate().any(|(i, c)| (c.is_ca || i == self.ca) && leaf.is_signed_by(c));
        if by_a_ca {
            Ok(())
        } else {
            Err(ScepError::IssuedByAnother)
        }
    }

    pub(crate) fn recipient_cert(&self) -> &Cert {
        &self.certs[self.recipient]
    }

    pub(crate) fn ca_cert(&self) -> &Cert {
        &self.certs[self.ca]
    }

    /// The certificates accepted as signers of the server's answers (DER): every certificate
    /// of the GetCACert answer, since NDES signs with its signing RA certificate and scepserver
    /// with the CA. [`CaCerts::check_trust`] vouches for all of them.
    pub fn response_signers(&self) -> impl Iterator<Item = &[u8]> {
        self.all()
    }

    pub(crate) fn signer_candidates(&self) -> Vec<&Cert> {
        self.certs.iter().collect()
    }
}

/// A ContentInfo starts SEQUENCE { OBJECT IDENTIFIER ...; a certificate SEQUENCE { SEQUENCE ...
fn looks_like_content_info(body: &[u8]) -> bool {
    let reader = match der::SliceReader::new(body) {
        Ok(r) => r,
        Err(_) => return false,
    };
    use der::{Encode, Reader};
    let Ok(header) = reader.peek_header() else { return false };
    if header.tag != der::Tag::Sequence {
        return false;
    }
    let Ok(header_len) = header.encoded_len() else { return false };
    let Ok(skip) = usize::try_from(header_len) else { return false };
    body.get(skip) == Some(&0x06)
}

/// The error for an answer that is not what `operation` should return: the wrong kind of
/// answer (an error page) when its content type says something else, else a malformed one.
pub(crate) fn not_expected(
    operation: &'static str,
    content_type: Option<&str>,
    expected_types: &[&str],
    expected: &'static str,
    malformed: &'static str,
    body: &[u8],
) -> ScepError {
    let essence = content_type.map(essence).unwrap_or_default();
    if expected_types.contains(&essence.as_str()) {
        return ScepError::malformed(malformed);
    }
    ScepError::UnexpectedContentType {
        operation,
        content_type: if essence.is_empty() {
            "none".into()
        } else {
            crate::error::server_text(essence.as_bytes(), 64)
        },
        expected,
        length: body.len(),
    }
}

/// The media type without parameters, lowercased.
pub(crate) fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}
