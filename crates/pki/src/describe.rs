use ::time::format_description::well_known::Rfc3339;
use serde::Serialize;
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

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

fn rfc3339(t: ASN1Time) -> String {
    t.to_datetime().format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn general_names(names: &[GeneralName<'_>]) -> Vec<String> {
    let mut subject_alt_names = Vec::new();
    {
        for name in names {
            match name {
                GeneralName::DNSName(d) => subject_alt_names.push(d.to_string()),
                GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => subject_alt_names
                        .extend(<[u8; 4]>::try_from(*bytes).ok().map(|b| std::net::Ipv4Addr::from(b).to_string())),
                    16 => subject_alt_names
                        .extend(<[u8; 16]>::try_from(*bytes).ok().map(|b| std::net::Ipv6Addr::from(b).to_string())),
                    _ => {}
                },
                other => subject_alt_names.push(other.to_string()),
            }
        }
    }
    subject_alt_names
}

fn key_type(spki: &SubjectPublicKeyInfo<'_>) -> String {
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
        Ok(PublicKey::EC(_)) => {
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
            match curve.map(|oid| oid.to_id_string()).as_deref() {
                Some("1.2.840.10045.3.1.7") => "ECDSA P-256".to_owned(),
                Some("1.3.132.0.34") => "ECDSA P-384".to_owned(),
                Some("1.3.132.0.35") => "ECDSA P-521".to_owned(),
                Some(other) => format!("EC ({other})"),
                None => "EC".to_owned(),
            }
        }
        Ok(PublicKey::Unknown(_)) | Err(_) => spki.algorithm.algorithm.to_id_string(),
        Ok(_) => spki.algorithm.algorithm.to_id_string(),
    }
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
    let (_, csr) = X509CertificationRequest::from_der(der).map_err(|e| PkiError::ParseRequest(e.into()))?;
    let info = &csr.certification_request_info;
    let mut names = Vec::new();
    for ext in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            names.extend(general_names(&san.general_names));
        }
    }
    Ok(CsrInfo { subject: info.subject.to_string(), subject_alt_names: names, key_type: key_type(&info.subject_pki) })
}

/// Describes a DER certificate.
pub fn describe(der: &[u8]) -> Result<CertificateInfo, PkiError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| PkiError::ParseCertificate(e.into()))?;
    let subject_alt_names = match cert.subject_alternative_name() {
        Ok(Some(san)) => general_names(&san.value.general_names),
        _ => Vec::new(),
    };
    let spki = cert.public_key();
    let key_type = key_type(spki);
    Ok(CertificateInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: crate::text::hex_upper(cert.raw_serial(), Some(':')),
        not_before: rfc3339(cert.validity().not_before),
        not_after: rfc3339(cert.validity().not_after),
        not_before_unix: cert.validity().not_before.timestamp(),
        not_after_unix: cert.validity().not_after.timestamp(),
        sha256: fingerprint(der),
        public_key_sha256: fingerprint(spki.raw),
        subject_alt_names,
        key_type,
        is_ca: cert.is_ca(),
        self_signed: cert.subject() == cert.issuer(),
    })
}
