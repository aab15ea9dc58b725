use rcgen::{CertificateParams, DistinguishedName, DnType};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::x509::KeyPurpose;
use crate::{KeyType, PkiError, RequestError, SanName, SecretKey};

/// The subject fields of the camera's certificate request form (the fields cameras' request forms
/// have always had).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsrSubject {
    #[serde(rename = "C", default)]
    pub country: Option<String>,
    #[serde(rename = "ST", default)]
    pub state: Option<String>,
    #[serde(rename = "L", default)]
    pub locality: Option<String>,
    #[serde(rename = "O", default)]
    pub organization: Option<String>,
    #[serde(rename = "OU", default)]
    pub organizational_unit: Option<String>,
    #[serde(rename = "CN", default)]
    pub common_name: Option<String>,
}

/// A request as the API receives it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsrRequest {
    #[serde(default)]
    pub subject: CsrSubject,
    #[serde(default)]
    pub subject_alt_names: Vec<String>,
    #[serde(default = "default_key_type")]
    pub key_type: KeyType,
}

fn default_key_type() -> KeyType {
    KeyType::EcdsaP256
}

/// Upper bound on names in one request; a camera has a handful.
const MAX_NAMES: usize = 32;

/// A request made on the camera, with the key that stays on the camera until the signed
/// certificate comes back.
#[derive(Debug)]
pub struct PendingCsr {
    pub csr_der: Vec<u8>,
    pub key: SecretKey,
}

impl PendingCsr {
    pub fn csr_pem(&self) -> String {
        crate::pem::encode("CERTIFICATE REQUEST", &self.csr_der).to_string()
    }

    /// Key and request in one PEM text (one file, replaced atomically).
    pub fn to_bundle_pem(&self) -> Zeroizing<String> {
        crate::pem::key_bundle(self.key.pkcs8_der(), &[&self.csr_der], "CERTIFICATE REQUEST")
    }

    pub fn from_bundle_pem(text: &[u8]) -> Result<Self, PkiError> {
        let key = SecretKey::from_pkcs8_pem(text)?;
        let csr_der = crate::pem::sections(text)?
            .into_iter()
            .find(|(kind, _)| *kind == rustls_pki_types::pem::SectionKind::Csr)
            .map(|(_, der)| der.to_vec())
            .ok_or(PkiError::MissingPem { label: "CERTIFICATE REQUEST" })?;
        Ok(Self { csr_der, key })
    }
}

fn checked_field(field: &'static str, value: &Option<String>, max: usize) -> Result<Option<String>, RequestError> {
    let Some(value) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > max {
        return Err(RequestError::FieldTooLong { field, max });
    }
    if value.chars().any(char::is_control) {
        return Err(RequestError::ControlCharacters { field });
    }
    Ok(Some(value.to_owned()))
}

/// Creates a request and its key. A CN that is an IP address or DNS name is also put in the
/// subjectAltNames, since browsers ignore the CN.
pub fn create_csr(request: &CsrRequest) -> Result<PendingCsr, PkiError> {
    create_csr_for(request, KeyPurpose::TlsServer)
}

/// [`create_csr`] for a purpose: a `TlsClient` request (802.1X) asks for clientAuth and needs no
/// subject alternative name (the common name identifies the camera; names are informational).
pub fn create_csr_for(request: &CsrRequest, purpose: KeyPurpose) -> Result<PendingCsr, PkiError> {
    let s = &request.subject;
    let country = checked_field("Country (C)", &s.country, 64)?;
    if let Some(c) = &country {
        if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(RequestError::Country { value: c.clone() }.into());
        }
    }
    let fields = [
        (DnType::CountryName, country.map(|c| c.to_ascii_uppercase())),
        (DnType::StateOrProvinceName, checked_field("State (ST)", &s.state, 128)?),
        (DnType::LocalityName, checked_field("Locality (L)", &s.locality, 128)?),
        (DnType::OrganizationName, checked_field("Organization (O)", &s.organization, 64)?),
        (DnType::OrganizationalUnitName, checked_field("Organizational unit (OU)", &s.organizational_unit, 64)?),
        (DnType::CommonName, checked_field("Common name (CN)", &s.common_name, 64)?),
    ];
    if request.subject_alt_names.len() > MAX_NAMES {
        return Err(RequestError::TooManyNames { max: MAX_NAMES }.into());
    }
    let mut names = Vec::new();
    for raw in request.subject_alt_names.iter().filter(|n| !n.trim().is_empty()) {
        let name = SanName::parse(raw)?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if let Some(cn) = &fields[5].1 {
        if let Ok(name) = SanName::parse(cn) {
            if !names.contains(&name) && (matches!(name, SanName::Ip(_)) || cn.contains('.')) {
                names.push(name);
            }
        }
    }
    let client = purpose == KeyPurpose::TlsClient;
    if names.is_empty() && !(client && fields[5].1.is_some()) {
        return Err(RequestError::NoNames.into());
    }
    let mut dn = DistinguishedName::new();
    for (ty, value) in fields {
        if let Some(value) = value {
            dn.push(ty, value);
        }
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.subject_alt_names = names.iter().map(SanName::to_rcgen).collect::<Result<_, _>>()?;
    if client {
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    }
    let key = SecretKey::generate(request.key_type)?;
    let csr = params
        .serialize_request(&key.key_pair()?)
        .map_err(|source| PkiError::Sign { what: "certificate request", source })?;
    Ok(PendingCsr { csr_der: csr.der().to_vec(), key })
}
