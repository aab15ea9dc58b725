use ::time::{Duration, OffsetDateTime};
use rcgen::{CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose};
use zeroize::Zeroizing;

use crate::{CameraCa, KeyType, PkiError, RequestError, SanName, SecretKey};

/// Mozilla's TLS policy caps server certificates below 366 days; Apple's 825-day limit is looser.
pub const MAX_SERVER_VALIDITY_DAYS: i64 = 365;

/// What a server certificate should say.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// Every name of the camera. Names the CA may not sign for are left out and reported.
    pub names: Vec<SanName>,
    /// Not an IP or host name: OpenSSL rejects IP-like CNs under name constraints.
    pub common_name: String,
    pub not_before: OffsetDateTime,
    pub validity_days: i64,
}

/// A freshly minted server certificate and its key.
#[derive(Debug)]
pub struct MintedServer {
    pub cert_der: Vec<u8>,
    pub key: SecretKey,
    /// The names the certificate carries.
    pub names: Vec<SanName>,
    /// Names left out because the CA's name constraints do not permit them.
    pub skipped: Vec<SanName>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl MintedServer {
    /// Key, certificate and CA certificate in one PEM text: one file, replaced atomically.
    pub fn bundle_pem(&self, ca: &CameraCa) -> Zeroizing<String> {
        crate::pem::key_bundle(self.key.pkcs8_der(), &[&self.cert_der, ca.signer_der()], "CERTIFICATE")
    }
}

impl CameraCa {
    /// Mints an ECDSA P-256 server certificate for `spec.names`.
    pub fn mint_server(&self, spec: &ServerSpec) -> Result<MintedServer, PkiError> {
        if !(1..=MAX_SERVER_VALIDITY_DAYS).contains(&spec.validity_days) {
            return Err(RequestError::Validity { days: spec.validity_days, max: MAX_SERVER_VALIDITY_DAYS }.into());
        }
        let mut names = Vec::new();
        let mut skipped = Vec::new();
        for name in &spec.names {
            if names.contains(name) || skipped.contains(name) {
                continue;
            }
            if self.permits(name) {
                names.push(name.clone());
            } else {
                skipped.push(name.clone());
            }
        }
        if names.is_empty() {
            return Err(RequestError::NoPermittedName.into());
        }
        let key = SecretKey::generate(KeyType::EcdsaP256)?;
        let pair = key.key_pair()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, spec.common_name.clone());
        params.distinguished_name = dn;
        params.subject_alt_names = names.iter().map(SanName::to_rcgen).collect::<Result<_, _>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(crate::ca::random_serial()?);
        params.not_before = spec.not_before;
        // RFC 5280 validity includes both ends: one second less keeps it at exactly N days.
        params.not_after = spec.not_before + Duration::days(spec.validity_days) - Duration::seconds(1);
        let cert = params
            .signed_by(&pair, self.issuer())
            .map_err(|source| PkiError::Sign { what: "server certificate", source })?;
        self.check_issued(cert.der())?;
        Ok(MintedServer {
            cert_der: cert.der().to_vec(),
            key,
            names,
            skipped,
            not_before: params.not_before,
            not_after: params.not_after,
        })
    }
}

impl MintedServer {
    /// Reads back a bundle written by [`MintedServer::bundle_pem`]: key, leaf, CA.
    pub fn from_bundle_pem(text: &[u8]) -> Result<Self, PkiError> {
        let key = SecretKey::from_pkcs8_pem(text)?;
        let leaf =
            crate::pem::certificates(text)?.into_iter().next().ok_or(PkiError::MissingPem { label: "CERTIFICATE" })?;
        let info = crate::describe(&leaf)?;
        let names = info.subject_alt_names.iter().filter_map(|n| SanName::parse(n).ok()).collect();
        let time = |unix: i64| OffsetDateTime::from_unix_timestamp(unix).map_err(PkiError::Date);
        Ok(Self {
            cert_der: leaf,
            key,
            names,
            skipped: Vec::new(),
            not_before: time(info.not_before_unix)?,
            not_after: time(info.not_after_unix)?,
        })
    }
}
