use ::time::{Duration, OffsetDateTime};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use ring::rand::SecureRandom;
use x509_parser::prelude::*;

use crate::names::Subnet;
use crate::{NameConstraintsPolicy, PkiError, SanName, SecretKey};

/// Ten years, counting leap days.
pub const CA_VALIDITY_DAYS: i64 = 3653;

/// What a new camera CA looks like.
#[derive(Debug, Clone)]
pub struct CaSpec {
    /// Camera model, shown in the CA's subject so users recognise it in their trust store.
    pub model: String,
    pub constraints: NameConstraintsPolicy,
    pub not_before: OffsetDateTime,
}

/// The camera's root CA: its certificate and signing key.
pub struct RootCa {
    cert_der: Vec<u8>,
    key: SecretKey,
    issuer: Issuer<'static, KeyPair>,
    /// `None` for a factory CA without name constraints.
    constraints: Option<NameConstraintsPolicy>,
}

impl std::fmt::Debug for RootCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCa").field("constraints", &self.constraints).finish_non_exhaustive()
    }
}

/// A positive, non-zero 16-byte serial number from the system RNG.
pub(crate) fn random_serial() -> Result<rcgen::SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| PkiError::Random)?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(rcgen::SerialNumber::from_slice(&bytes))
}

/// A short id derived from a public key: 8 hex digits, stable for the key's lifetime.
pub(crate) fn short_id(public_key: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, public_key);
    crate::text::hex_upper(&digest.as_ref()[..4], None)
}

impl RootCa {
    /// Creates a new CA: ECDSA P-256, ten years, pathlen 0, critical name constraints.
    pub fn generate(spec: &CaSpec) -> Result<Self, PkiError> {
        spec.constraints.check()?;
        let key = SecretKey::generate(crate::KeyType::EcdsaP256)?;
        let pair = key.key_pair()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, spec.model.clone());
        dn.push(DnType::CommonName, format!("{} Root CA {}", spec.model, short_id(pair.public_key_raw())));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        // Name constraints cover DNS names and IP addresses only; this keeps a stolen CA key from
        // signing e-mail or client certificates that clients would chain to it.
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.name_constraints = Some(spec.constraints.to_rcgen());
        params.serial_number = Some(random_serial()?);
        params.not_before = spec.not_before;
        params.not_after = spec.not_before + Duration::days(CA_VALIDITY_DAYS);
        let cert = params.self_signed(&pair).map_err(|source| PkiError::Sign { what: "CA certificate", source })?;
        Ok(Self {
            cert_der: cert.der().to_vec(),
            key,
            issuer: Issuer::new(params, pair),
            constraints: Some(spec.constraints.clone()),
        })
    }

    /// Loads a CA from its PEM certificate and PKCS#8 PEM key, checking that they pair and that
    /// the certificate really is a CA.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, PkiError> {
        let cert_der = crate::pem::certificates(cert_pem)?
            .into_iter()
            .next()
            .ok_or(PkiError::MissingPem { label: "CERTIFICATE" })?;
        let key = SecretKey::from_pkcs8_pem(key_pem)?;
        Self::from_parts(cert_der, key)
    }

    fn from_parts(cert_der: Vec<u8>, key: SecretKey) -> Result<Self, PkiError> {
        let pair = key.key_pair()?;
        let (_, cert) = X509Certificate::from_der(&cert_der).map_err(|e| PkiError::ParseCertificate(e.into()))?;
        if cert.public_key().subject_public_key.data.as_ref() != pair.public_key_raw() {
            return Err(PkiError::CaKeyMismatch);
        }
        if !cert.is_ca() {
            return Err(PkiError::NotCa);
        }
        let constraints = constraints_of(&cert)?;
        let issuer = Issuer::from_ca_cert_der(&cert_der.clone().into(), pair).map_err(PkiError::CaCannotIssue)?;
        Ok(Self { cert_der, key, issuer, constraints })
    }

    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    pub fn cert_pem(&self) -> String {
        crate::pem::encode("CERTIFICATE", &self.cert_der).to_string()
    }

    pub fn key(&self) -> &SecretKey {
        &self.key
    }

    /// SHA-256 of the CA certificate, as users compare it by eye.
    pub fn fingerprint(&self) -> String {
        crate::fingerprint(&self.cert_der)
    }

    /// The CA's name constraints; `None` means unconstrained (a factory CA may be).
    pub fn constraints(&self) -> Option<&NameConstraintsPolicy> {
        self.constraints.as_ref()
    }

    /// Whether this CA can sign a certificate for `name` that clients will accept.
    pub fn permits(&self, name: &SanName) -> bool {
        self.constraints.as_ref().is_none_or(|c| c.permits(name))
    }

    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }
}

/// Reads the permitted subtrees of a CA certificate's nameConstraints extension.
fn constraints_of(cert: &X509Certificate<'_>) -> Result<Option<NameConstraintsPolicy>, PkiError> {
    let ext = cert.name_constraints().map_err(PkiError::CaNameConstraints)?;
    let Some(ext) = ext else { return Ok(None) };
    let mut policy = NameConstraintsPolicy { permitted_subnets: Vec::new(), permitted_dns: Vec::new() };
    for subtree in ext.value.permitted_subtrees.iter().flatten() {
        match &subtree.base {
            GeneralName::DNSName(name) => policy.permitted_dns.push(name.to_string()),
            GeneralName::IPAddress(bytes) => {
                let bad_length = || PkiError::BadIpConstraint { len: bytes.len() };
                let (addr, mask): (std::net::IpAddr, &[u8]) = match bytes.len() {
                    8 => (<[u8; 4]>::try_from(&bytes[..4]).map(Into::into).map_err(|_| bad_length())?, &bytes[4..]),
                    32 => (<[u8; 16]>::try_from(&bytes[..16]).map(Into::into).map_err(|_| bad_length())?, &bytes[16..]),
                    _ => return Err(bad_length()),
                };
                let prefix = mask.iter().map(|b| b.count_ones()).sum::<u32>() as u8;
                policy.permitted_subnets.push(Subnet { addr, prefix });
            }
            _ => {}
        }
    }
    Ok(Some(policy))
}
