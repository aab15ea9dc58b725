use ::time::format_description::well_known::Rfc3339;
use ::time::OffsetDateTime;
use serde::Serialize;

use crate::x509::{key_type, Certificate, GeneralName, Request};

use crate::PkiError;

/// What the UI and `GET /api/v1/certificate` show about one certificate.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CertificateInfo {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    /// RFC 3339, UTC.
    pub not_before: String,
    pub not_after: String,
    pub not_before_unix: i64,
    pub not_after_unix: i64,
    /// SHA-256 of the DER certificate, upper-case hex pairs separated by colons.
    pub sha256: String,
    /// SHA-256 of the DER SubjectPublicKeyInfo (stays the same when a certificate is renewed
    /// with the same key).
    pub public_key_sha256: String,
    pub subject_alt_names: Vec<String>,
    /// e.g. "ECDSA P-256", "RSA 2048".
    pub key_type: String,
    pub is_ca: bool,
    pub self_signed: bool,
}

/// SHA-256 fingerprint of `der` as `AB:CD:...`.
pub fn fingerprint(der: &[u8]) -> String {
    crate::text::hex_upper(ring::digest::digest(&ring::digest::SHA256, der).as_ref(), Some(':'))
}

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{unix} seconds after 1970"))
}

fn general_names(names: &[GeneralName<'_>]) -> Vec<String> {
    names
        .iter()
        .filter_map(|name| match name {
            GeneralName::Dns(d) => Some((*d).to_owned()),
            // An address of another length is not shown: it names nothing a client can reach.
            GeneralName::Ip(_) => name.ip().map(|ip| ip.to_string()),
            other => Some(other.describe()),
        })
        .collect()
}

/// Subject, names and key type of a certificate request.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CsrInfo {
    pub subject: String,
    pub subject_alt_names: Vec<String>,
    pub key_type: String,
}

/// Describes a DER certificate request.
pub fn describe_csr(der: &[u8]) -> Result<CsrInfo, PkiError> {
    let csr = Request::parse(der).map_err(PkiError::ParseRequest)?;
    Ok(CsrInfo {
        subject: csr.subject().to_string(),
        subject_alt_names: general_names(&csr.subject_alt_names()),
        key_type: key_type(csr.public_key()),
    })
}

/// Describes a DER certificate.
pub fn describe(der: &[u8]) -> Result<CertificateInfo, PkiError> {
    let cert = Certificate::parse(der).map_err(PkiError::ParseCertificate)?;
    // A damaged extension hides what it would add rather than the whole certificate: the UI
    // still shows the certificate in service.
    let subject_alt_names = match cert.subject_alt_names() {
        Ok(Some(names)) => general_names(&names),
        _ => Vec::new(),
    };
    Ok(CertificateInfo {
        subject: cert.subject_string(),
        issuer: cert.issuer_string(),
        serial: crate::text::hex_upper(cert.serial(), Some(':')),
        not_before: rfc3339(cert.not_before_unix()),
        not_after: rfc3339(cert.not_after_unix()),
        not_before_unix: cert.not_before_unix(),
        not_after_unix: cert.not_after_unix(),
        sha256: fingerprint(der),
        public_key_sha256: fingerprint(cert.spki_der()),
        subject_alt_names,
        key_type: key_type(cert.public_key()),
        is_ca: cert.is_ca().unwrap_or(false),
        self_signed: cert.subject() == cert.issuer(),
    })
}
