use ::time::{Duration, OffsetDateTime};
use der::Tag;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose,
};
use ring::rand::SecureRandom;
use zeroize::Zeroizing;

use crate::names::Subnet;
use crate::x509::{Certificate, GeneralName};
use crate::{NameConstraintsPolicy, PkiError, SanName, SecretKey};

/// Ten years, counting leap days.
pub const CA_VALIDITY_DAYS: i64 = 3653;

/// What a new camera CA looks like.
#[derive(Debug, Clone)]
pub struct CaSpec {
    /// Camera model, shown in the CAs' subjects so users recognise them in their trust store.
    pub model: String,
    pub constraints: NameConstraintsPolicy,
    pub not_before: OffsetDateTime,
}

/// The camera's CA.
///
/// Two tiers (every camera made since they were introduced): a root, self-signed, that users
/// import as `cacert.crt`, whose key existed only in memory while it signed the one certificate it
/// ever signs: the issuing CA's (pathlen 0), which signs server certificates. Both carry the
/// critical name constraints; those on the issuing CA bind every RFC 5280 validator, since it is in
/// the path (constraints on a trust anchor are optional, and Java ignores them).
///
/// One tier (cameras made before, and factory CAs that are a single certificate): the CA users
/// import signs server certificates itself.
pub struct CameraCa {
    /// The certificate whose key signs server certificates (the issuing CA, or the one tier).
    signer_der: Vec<u8>,
    /// The root above it (two tiers), which users import.
    root_der: Option<Vec<u8>>,
    key: SecretKey,
    issuer: Issuer<'static, KeyPair>,
    /// The signer's subject Name as its certificate holds it: what every certificate it signs
    /// must name as its issuer, byte for byte.
    subject_der: Vec<u8>,
    /// `None` for a factory CA without name constraints.
    constraints: Option<NameConstraintsPolicy>,
}

impl std::fmt::Debug for CameraCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraCa")
            .field("two_tier", &self.root_der.is_some())
            .field("constraints", &self.constraints)
            .finish_non_exhaustive()
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

/// The parameters of a camera CA certificate: P-256, ten years, keyCertSign + cRLSign, EKU
/// serverAuth (name constraints cover DNS names and IP addresses only; this keeps a stolen CA key
/// from signing e-mail or client certificates that clients would chain to it), critical name
/// constraints, and the path length given.
fn ca_params(spec: &CaSpec, common_name: String, path_len: u8) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, spec.model.clone());
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.name_constraints = Some(spec.constraints.to_rcgen());
    params.use_authority_key_identifier_extension = path_len == 0;
    params.serial_number = Some(random_serial()?);
    params.not_before = spec.not_before;
    params.not_after = spec.not_before + Duration::days(CA_VALIDITY_DAYS);
    Ok(params)
}

impl CameraCa {
    /// Creates a new two-tier CA. The root key is generated here, signs the issuing CA's
    /// certificate and is dropped (wiped) before this returns: it is never written anywhere.
    pub fn generate(spec: &CaSpec) -> Result<Self, PkiError> {
        spec.constraints.check()?;
        let root_key = SecretKey::generate(crate::KeyType::EcdsaP256)?;
        let root_pair = root_key.key_pair()?;
        let id = short_id(root_pair.public_key_raw());
        let root_params = ca_params(spec, format!("{} Root CA {id}", spec.model), 1)?;
        let root = root_params
            .self_signed(&root_pair)
            .map_err(|source| PkiError::Sign { what: "root CA certificate", source })?;
        let root_issuer = Issuer::new(root_params, root_pair);

        let key = SecretKey::generate(crate::KeyType::EcdsaP256)?;
        let pair = key.key_pair()?;
        let params = ca_params(spec, format!("{} Issuing CA {id}", spec.model), 0)?;
        let issuing = params
            .signed_by(&pair, &root_issuer)
            .map_err(|source| PkiError::Sign { what: "issuing CA certificate", source })?;
        drop(root_issuer);
        drop(root_key);
        let subject_der = Certificate::parse(issuing.der()).map_err(PkiError::ParseCertificate)?.subject_der().to_vec();
        Ok(Self {
            signer_der: issuing.der().to_vec(),
            root_der: Some(root.der().to_vec()),
            key,
            issuer: Issuer::new(params, pair),
            subject_der,
            constraints: Some(spec.constraints.clone()),
        })
    }

    /// Loads a CA: `certs_pem` holds the certificate of `key_pem`'s key, then (two tiers) the root
    /// that signed it. Checks that the key pairs, that both are CAs, and that the root signed it.
    pub fn from_pem(certs_pem: &[u8], key_pem: &[u8]) -> Result<Self, PkiError> {
        let mut certs = crate::pem::certificates(certs_pem)?.into_iter();
        let signer_der = certs.next().ok_or(PkiError::MissingPem { label: "CERTIFICATE" })?;
        let root_der = certs.next();
        let extra = certs.count();
        if extra > 0 {
            return Err(PkiError::TooManyCaCertificates { count: extra + 2 });
        }
        let key = SecretKey::from_pkcs8_pem(key_pem)?;
        Self::from_parts(signer_der, root_der, key)
    }

    fn from_parts(signer_der: Vec<u8>, root_der: Option<Vec<u8>>, key: SecretKey) -> Result<Self, PkiError> {
        let pair = key.key_pair()?;
        let cert = Certificate::parse(&signer_der).map_err(PkiError::ParseCertificate)?;
        if cert.public_key_bytes() != pair.public_key_raw() {
            return Err(PkiError::CaKeyMismatch);
        }
        if !cert.is_ca().map_err(PkiError::CaExtension)? {
            return Err(PkiError::NotCa);
        }
        if let Some(root_der) = &root_der {
            let root = Certificate::parse(root_der).map_err(PkiError::ParseCertificate)?;
            if !root.is_ca().map_err(PkiError::CaExtension)? {
                return Err(PkiError::NotCa);
            }
            if cert.issuer_der() != root.subject_der() || cert.verify_signed_by(&root).is_err() {
                return Err(PkiError::RootMismatch);
            }
        }
        let constraints = constraints_of(&cert)?;
        let issuer = Issuer::new(issuer_params(&cert)?, pair);
        let subject_der = cert.subject_der().to_vec();
        Ok(Self { signer_der, root_der, key, issuer, subject_der, constraints })
    }

    /// Two tiers: a root users import and an issuing CA that signs.
    pub fn is_two_tier(&self) -> bool {
        self.root_der.is_some()
    }

    /// The certificate users import (`cacert.crt`): the root, or the one tier.
    pub fn anchor_der(&self) -> &[u8] {
        self.root_der.as_deref().unwrap_or(&self.signer_der)
    }

    pub fn anchor_pem(&self) -> String {
        crate::pem::encode("CERTIFICATE", self.anchor_der()).to_string()
    }

    /// The certificate whose key signs server certificates: sent after the leaf.
    pub fn signer_der(&self) -> &[u8] {
        &self.signer_der
    }

    /// The signing key.
    pub fn key(&self) -> &SecretKey {
        &self.key
    }

    /// The signing key, then its certificate, then the root (two tiers): one file, replaced
    /// atomically (the commit point of a new CA).
    pub fn bundle_pem(&self) -> Zeroizing<String> {
        let mut certs: Vec<&[u8]> = vec![&self.signer_der];
        certs.extend(self.root_der.as_deref());
        crate::pem::key_bundle(self.key.pkcs8_der(), &certs, "CERTIFICATE")
    }

    /// SHA-256 of the certificate users import, as they compare it by eye.
    pub fn fingerprint(&self) -> String {
        crate::fingerprint(self.anchor_der())
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

    /// Checks that a certificate this CA just signed names it as its issuer byte for byte, as
    /// clients compare names: rcgen writes the name from its own model of it, and a subject it
    /// cannot model exactly must fail here rather than in every client.
    pub(crate) fn check_issued(&self, cert_der: &[u8]) -> Result<(), PkiError> {
        let cert = Certificate::parse(cert_der).map_err(PkiError::ParseCertificate)?;
        if cert.issuer_der() == self.subject_der.as_slice() {
            Ok(())
        } else {
            Err(PkiError::IssuerNameMismatch)
        }
    }
}

/// What rcgen needs to sign as this CA: its subject, to be written as each certificate's issuer
/// exactly as the CA's certificate holds it (string types included: a factory CA named in
/// PrintableString must not become UTF8String in its leaves, or clients will not match them), and
/// its subjectKeyIdentifier for the leaves' authorityKeyIdentifier.
fn issuer_params(cert: &Certificate<'_>) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = issuer_name(cert)?;
    let ski = cert.subject_key_identifier().map_err(PkiError::CaExtension)?;
    if let Some(ski) = ski {
        params.key_identifier_method = KeyIdMethod::PreSpecified(ski);
    }
    Ok(params)
}

/// The subject of `cert` as rcgen writes names: one attribute per RDN, in order. A type that
/// appears twice (two OUs) is written the second time under rcgen's custom type with the same OID.
fn issuer_name(cert: &Certificate<'_>) -> Result<DistinguishedName, PkiError> {
    let unsupported = |reason| PkiError::CaSubject { reason };
    let mut dn = DistinguishedName::new();
    for rdn in cert.subject().rdns() {
        let mut attrs = rdn.iter();
        let (Some(attr), None) = (attrs.next(), attrs.next()) else {
            return Err(unsupported("a relative name holds several attributes (or none)"));
        };
        let arcs: Vec<u64> = attr.oid.arcs().map(u64::from).collect();
        let mut ty = DnType::from_oid(&arcs);
        if dn.get(&ty).is_some() {
            ty = match ty {
                DnType::CustomDnType(_) => return Err(unsupported("an attribute type appears more than twice")),
                _ => DnType::CustomDnType(arcs),
            };
            if dn.get(&ty).is_some() {
                return Err(unsupported("an attribute type appears more than twice"));
            }
        }
        let bytes = attr.value;
        let text = || std::str::from_utf8(bytes).map_err(|_| unsupported("a text value is not valid UTF-8"));
        let value = match attr.tag {
            Tag::Utf8String => DnValue::Utf8String(text()?.to_owned()),
            Tag::PrintableString => DnValue::PrintableString(text()?.try_into().map_err(PkiError::CaCannotIssue)?),
            Tag::Ia5String => DnValue::Ia5String(text()?.try_into().map_err(PkiError::CaCannotIssue)?),
            Tag::TeletexString => DnValue::TeletexString(text()?.try_into().map_err(PkiError::CaCannotIssue)?),
            Tag::BmpString => DnValue::BmpString(
                rcgen::string::BmpString::from_utf16be(bytes.to_vec()).map_err(PkiError::CaCannotIssue)?,
            ),
            _ => return Err(unsupported("a value is not one of the string types rcgen writes")),
        };
        dn.push(ty, value);
    }
    Ok(dn)
}

/// Reads the permitted subtrees of a CA certificate's nameConstraints extension.
fn constraints_of(cert: &Certificate<'_>) -> Result<Option<NameConstraintsPolicy>, PkiError> {
    let Some(subtrees) = cert.permitted_subtrees().map_err(PkiError::CaNameConstraints)? else { return Ok(None) };
    let mut policy = NameConstraintsPolicy { permitted_subnets: Vec::new(), permitted_dns: Vec::new() };
    for base in subtrees {
        match base {
            GeneralName::Dns(name) => policy.permitted_dns.push(name.to_owned()),
            GeneralName::Ip(bytes) => {
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
