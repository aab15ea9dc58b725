//! Which certificate is served, and swapping it without a restart.
//!
//! Precedence: the installer's certificate (uploaded by hand or obtained by enrollment) unless it
//! has expired, else the device-minted one. Every change (upload, enrollment, restore, expiry,
//! re-mint after an address or clock change) replaces one `Arc<CertifiedKey>` that the TLS
//! resolver hands to each new handshake; open connections keep theirs.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};

use camera_pki::{describe, CertificateInfo, MintedServer, PendingCsr, PkiError, SanName};
use camera_provision::clock::unix_seconds;
use camera_state::{read_optional, remove_durable, write_atomic, Layout, SECRET_MODE};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroizing;

use crate::api::model::{
    CaReplaced, CaStatus, CameraNames, CertificateStatus, IssuingCa, Notice, OpenedAs, PendingRequest, Source,
};
use crate::log;

/// Why a certificate could not be made the served one. Nothing changed in any case.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("the certificate cannot be read back: {0}")]
    Certificate(#[source] PkiError),
    #[error("the chain is empty")]
    EmptyChain,
    #[error("the TLS stack cannot use the key: {0}")]
    Key(#[source] rustls::Error),
    #[error("the bundle on disk is unreadable: {0}")]
    Bundle(String),
    #[error("the state directory could not be written: {0}")]
    Storage(#[source] std::io::Error),
}

/// The camera's CA, as the provisioner used it.
#[derive(Debug, Clone)]
pub struct CaInUse {
    /// What users import (`cacert.crt`).
    pub anchor_der: Vec<u8>,
    /// What signs the device certificate and is sent after it.
    pub signer_der: Vec<u8>,
    pub two_tier: bool,
    /// Placed by the camera maker (`state/factory/`): `--new-ca` does not replace it.
    pub factory: bool,
}

/// Said about a one-tier factory CA: only its maker can replace it.
const ONE_TIER_FACTORY_ADVICE: &str = "This camera's factory CA is a single certificate. Java clients do not apply the name constraints of a certificate they trust directly, so a stolen camera could vouch for public names to them. Ask the camera maker for a factory CA with two tiers (an issuing CA and its root in factory/ca.crt), or remove the factory CA so the camera makes its own.";

/// Said about a one-tier CA of the camera's own (made before two tiers).
const ONE_TIER_ADVICE: &str = "This camera's CA is a single self-signed certificate (made before two-tier CAs). Java clients do not apply the name constraints of a certificate they trust directly, so a stolen camera could vouch for public names to them. Rotate it (cert-provisioner --new-ca) to get a two-tier CA whose constraints every client applies, then import the new cacert.crt.";

/// What the camera is and how the request reached it, for [`Certificates::status`].
#[derive(Debug)]
pub struct StatusContext<'a> {
    pub addresses: &'a [IpAddr],
    pub names: &'a [SanName],
    pub hostname: Option<&'a str>,
    pub tls_profile: &'static str,
    /// The host part of the request's `Host` header.
    pub opened_as: Option<&'a str>,
    /// `web.expiry_warning_days`.
    pub expiry_warning_days: u32,
}

/// The certificate new handshakes get, swapped whole (readers never see a mix), and the
/// tls-alpn-01 validation certificates of an ACME enrollment in progress, which only a ClientHello
/// offering ALPN `acme-tls/1` for their name gets.
#[derive(Debug)]
pub struct CurrentCertificate {
    served: RwLock<ServedNow>,
    validation: RwLock<Vec<(String, Arc<CertifiedKey>)>>,
}

/// What the resolver hands out: the active certificate, and from the second an installer's
/// certificate expires, the camera's own (no handshake ever gets an expired certificate, even
/// before the expiry monitor has woken up to log it).
#[derive(Debug, Clone)]
struct ServedNow {
    key: Arc<CertifiedKey>,
    expires_unix: Option<i64>,
    fallback: Arc<CertifiedKey>,
}

impl ServedNow {
    fn key(&self, now: i64) -> &Arc<CertifiedKey> {
        match self.expires_unix {
            Some(expires) if expires <= now => &self.fallback,
            _ => &self.key,
        }
    }
}

impl CurrentCertificate {
    fn set(&self, now: ServedNow) {
        if let Ok(mut current) = self.served.write() {
            *current = now;
        }
    }

    /// The certificate a handshake gets now.
    fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.served.read().ok().map(|s| s.key(now_signed()).clone())
    }

    /// Serves `key` to tls-alpn-01 validations for `sni` until [`Self::withdraw_validation`].
    pub fn publish_validation(&self, sni: &str, key: Arc<CertifiedKey>) {
        if let Ok(mut list) = self.validation.write() {
            list.retain(|(name, _)| name != sni);
            list.push((sni.to_ascii_lowercase(), key));
        }
    }

    pub fn withdraw_validation(&self, sni: &str) {
        if let Ok(mut list) = self.validation.write() {
            list.retain(|(name, _)| !name.eq_ignore_ascii_case(sni));
        }
    }
}

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let acme = hello.alpn().is_some_and(|mut offered| offered.any(|p| p == camera_acme::ACME_TLS_ALPN));
        if acme {
            // Only an ACME validation offers acme-tls/1; it never gets the served certificate.
            let sni = hello.server_name()?.to_ascii_lowercase();
            let list = self.validation.read().ok()?;
            return list.iter().find(|(name, _)| *name == sni).map(|(_, key)| key.clone());
        }
        self.current()
    }
}

/// A certificate chain with its key, ready to serve.
#[derive(Debug)]
struct Served {
    certified: Arc<CertifiedKey>,
    info: CertificateInfo,
    chain_info: Vec<CertificateInfo>,
}

impl Served {
    fn new(provider: &CryptoProvider, chain: &[Vec<u8>], key_pkcs8: &[u8]) -> Result<Self, InstallError> {
        let leaf = chain.first().ok_or(InstallError::EmptyChain)?;
        let info = describe(leaf).map_err(InstallError::Certificate)?;
        let chain_info = chain[1..].iter().filter_map(|der| describe(der).ok()).collect();
        let key = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pkcs8.to_vec())))
            .map_err(InstallError::Key)?;
        let certs = chain.iter().map(|der| CertificateDer::from(der.clone())).collect();
        Ok(Self { certified: Arc::new(CertifiedKey::new(certs, key)), info, chain_info })
    }

    /// Key and chain from one PEM text.
    fn from_bundle(provider: &CryptoProvider, text: &[u8]) -> Result<Self, InstallError> {
        let key = camera_pki::pem::pkcs8_key(text)
            .map_err(|e| InstallError::Bundle(e.to_string()))?
            .ok_or_else(|| InstallError::Bundle("no PRIVATE KEY block".into()))?;
        let chain = camera_pki::pem::certificates(text).map_err(|e| InstallError::Bundle(e.to_string()))?;
        Self::new(provider, &chain, &key)
    }

    fn expired(&self, now: i64) -> bool {
        self.info.not_after_unix <= now
    }
}

/// Where the installer's certificate came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Uploaded by hand (`PUT /api/v1/certificate`).
    Uploaded,
    /// Obtained by automatic enrollment with this protocol (`acme`, `scep`).
    Enrolled(String),
}

/// The first line of `uploaded.pem` for an enrolled certificate: explanatory text before the
/// PEM blocks (RFC 7468 section 2), so the origin changes with the certificate in one rename.
const ENROLLED_MARK: &str = "Enrolled-via: ";

impl Origin {
    fn of_bundle(text: &[u8]) -> Self {
        let first = text.split(|b| *b == b'\n').next().unwrap_or_default();
        match std::str::from_utf8(first).ok().and_then(|l| l.strip_prefix(ENROLLED_MARK)) {
            Some(protocol) if matches!(protocol.trim(), "acme" | "scep") => Self::Enrolled(protocol.trim().to_owned()),
            _ => Self::Uploaded,
        }
    }

    fn source(&self) -> Source {
        match self {
            Self::Uploaded => Source::Uploaded,
            Self::Enrolled(_) => Source::Enrolled,
        }
    }
}

/// The installer's certificate (uploaded or enrolled).
#[derive(Debug)]
struct Installer {
    served: Served,
    origin: Origin,
    /// Its expiry was logged ([`Certificates::fall_back_if_expired`]).
    expiry_told: bool,
}

struct Inner {
    device: Served,
    installer: Option<Installer>,
    pending: Option<(PendingRequest, String)>,
}

impl Inner {
    /// What new handshakes get: the installer's certificate unless it has expired (then the
    /// camera's own, which users who imported cacert.crt trust), else the camera's own.
    fn active(&self, now: i64) -> (Source, &Served) {
        match &self.installer {
            Some(i) if !i.served.expired(now) => (i.origin.source(), &i.served),
            _ => (Source::Device, &self.device),
        }
    }

    /// What the resolver needs to hand out [`Inner::active`] at any second.
    fn served_now(&self) -> ServedNow {
        match &self.installer {
            Some(i) => ServedNow {
                key: i.served.certified.clone(),
                expires_unix: Some(i.served.info.not_after_unix),
                fallback: self.device.certified.clone(),
            },
            None => ServedNow {
                key: self.device.certified.clone(),
                expires_unix: None,
                fallback: self.device.certified.clone(),
            },
        }
    }
}

/// All certificate state of the web server.
pub struct Certificates {
    layout: Layout,
    provider: Arc<CryptoProvider>,
    resolver: Arc<CurrentCertificate>,
    /// `cacert.crt`: the CA's root (two tiers) or the one tier.
    ca_pem: String,
    ca_der: Vec<u8>,
    ca_info: CertificateInfo,
    /// The certificate sent after the device certificate: the issuing CA (two tiers), else the
    /// one tier itself.
    signer_der: Vec<u8>,
    /// The issuing CA, when the CA has two tiers.
    issuing_info: Option<CertificateInfo>,
    one_tier_advice: Option<&'static str>,
    inner: Mutex<Inner>,
    /// Held across each change of the served certificate (write to disk, then swap in memory), so
    /// two uploads, or an upload and a restore, cannot leave disk and memory different.
    changes: Mutex<()>,
    /// Told after every swap (the expiry monitor sleeps until the served certificate changes).
    swapped: tokio::sync::Notify,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates").field("layout", &self.layout).finish_non_exhaustive()
    }
}

fn now_unix() -> u64 {
    unix_seconds(std::time::SystemTime::now())
}

fn now_signed() -> i64 {
    i64::try_from(now_unix()).unwrap_or(i64::MAX)
}

fn pending_info(pending: &PendingCsr, created_at_unix: u64) -> Option<(PendingRequest, String)> {
    let csr = camera_pki::describe_csr(&pending.csr_der).ok()?;
    let info = PendingRequest {
        subject: csr.subject,
        subject_alt_names: csr.subject_alt_names,
        key_type: csr.key_type,
        created_at_unix,
    };
    Some((info, pending.csr_pem()))
}

/// The installer's certificate as enrollment sees it.
#[derive(Debug, Clone)]
pub struct InstallerSummary {
    pub origin: Origin,
    pub info: CertificateInfo,
}

impl Certificates {
    /// Loads the device certificate just provisioned, its CA (the one in use: a factory CA when
    /// there is one), and any installer's certificate and pending request.
    pub fn load(
        layout: Layout,
        provider: Arc<CryptoProvider>,
        minted: &MintedServer,
        ca: CaInUse,
    ) -> Result<Self, InstallError> {
        let CaInUse { anchor_der: ca_der, signer_der, two_tier, factory } = ca;
        let one_tier_advice = match (two_tier, factory) {
            (true, _) => None,
            (false, true) => Some(ONE_TIER_FACTORY_ADVICE),
            (false, false) => Some(ONE_TIER_ADVICE),
        };
        let ca_info = describe(&ca_der).map_err(InstallError::Certificate)?;
        let issuing_info =
            if two_tier { Some(describe(&signer_der).map_err(InstallError::Certificate)?) } else { None };
        let ca_pem = camera_pki::pem::encode("CERTIFICATE", &ca_der).to_string();
        let device = Served::new(&provider, &[minted.cert_der.clone(), signer_der.clone()], minted.key.pkcs8_der())?;
        let installer = match read_optional(&layout.uploaded_bundle()) {
            Ok(Some(text)) => match Served::from_bundle(&provider, &text) {
                Ok(served) => Some(Installer { served, origin: Origin::of_bundle(&text), expiry_told: false }),
                Err(e) => {
                    log::warn(&format!("the uploaded certificate cannot be used ({e}); serving the camera's own"));
                    None
                }
            },
            Ok(None) => None,
            Err(e) => return Err(InstallError::Storage(e)),
        };
        let pending = match read_optional(&layout.pending_csr()) {
            Ok(Some(text)) => PendingCsr::from_bundle_pem(&text).ok().and_then(|p| {
                let created =
                    std::fs::metadata(layout.pending_csr()).and_then(|m| m.modified()).map(unix_seconds).unwrap_or(0);
                pending_info(&p, created)
            }),
            _ => None,
        };
        let inner = Inner { device, installer, pending };
        let served = RwLock::new(inner.served_now());
        let this = Self {
            resolver: Arc::new(CurrentCertificate { served, validation: RwLock::default() }),
            layout,
            provider,
            ca_pem,
            ca_der,
            ca_info,
            signer_der,
            issuing_info,
            one_tier_advice,
            inner: Mutex::new(inner),
            changes: Mutex::new(()),
            swapped: tokio::sync::Notify::new(),
        };
        this.log_served("the web server started");
        Ok(this)
    }

    pub fn resolver(&self) -> Arc<CurrentCertificate> {
        self.resolver.clone()
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// The camera CA's description (its expiry is monitored too).
    pub fn ca_info(&self) -> &CertificateInfo {
        &self.ca_info
    }

    /// The issuing CA's description, when the CA has two tiers.
    pub fn issuing_info(&self) -> Option<&CertificateInfo> {
        self.issuing_info.as_ref()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn log_served(&self, why: &str) {
        let inner = self.lock();
        let (source, served) = inner.active(now_signed());
        let source = match source {
            Source::Device => "device-minted",
            Source::Uploaded => "uploaded",
            Source::Enrolled => "enrolled",
        };
        log::info(&format!(
            "camera-web: serving the {source} certificate \"{}\" (issuer \"{}\") for [{}], expires {}: {why}",
            served.info.subject,
            served.info.issuer,
            served.info.subject_alt_names.join(", "),
            served.info.not_after
        ));
    }

    /// Hands new handshakes what [`Inner::active`] says; logs the change with `why`.
    fn swap(&self, why: &str) {
        {
            // Under the lock, so a re-mint racing an upload cannot leave the device certificate
            // served while an upload exists.
            let inner = self.lock();
            self.resolver.set(inner.served_now());
        }
        self.log_served(why);
        self.swapped.notify_one();
    }

    /// Resolves at the next change of the served certificate (one waiter: the expiry monitor; a
    /// change while it is busy is kept for its next wait).
    pub async fn swapped(&self) {
        self.swapped.notified().await;
    }

    /// Whether the installer's certificate expired since the last call (the resolver already
    /// hands out the camera's own from that second); logs it once.
    pub fn fall_back_if_expired(&self) -> bool {
        let newly_expired = {
            let mut inner = self.lock();
            match &mut inner.installer {
                Some(i) if i.served.expired(now_signed()) && !i.expiry_told => {
                    i.expiry_told = true;
                    true
                }
                _ => false,
            }
        };
        if newly_expired {
            self.log_served("the installer's certificate expired and nothing replaced it, so the camera serves its own (trusted by whoever imported cacert.crt)");
        }
        newly_expired
    }

    /// A new device certificate from the watcher.
    pub fn set_device(&self, minted: &MintedServer, why: &str) {
        match Served::new(&self.provider, &[minted.cert_der.clone(), self.signer_der.clone()], minted.key.pkcs8_der()) {
            Ok(served) => {
                let device_active = {
                    let mut inner = self.lock();
                    inner.device = served;
                    inner.active(now_signed()).0 == Source::Device
                };
                if device_active {
                    self.swap(why);
                } else {
                    log::info(&format!(
                        "camera-web: re-minted the camera's own certificate ({why}); the installer's stays in use"
                    ));
                }
            }
            Err(e) => log::warn(&format!("camera-web: the re-minted certificate cannot be served: {e}")),
        }
    }

    /// Stores and serves an installer's certificate (validated by the caller). Nothing changes if
    /// storing fails.
    pub fn install(
        &self,
        chain: &[Vec<u8>],
        key_pkcs8: &[u8],
        origin: Origin,
    ) -> Result<CertificateInfo, InstallError> {
        let served = Served::new(&self.provider, chain, key_pkcs8)?;
        let certs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
        let bundle = camera_pki::pem::key_bundle(key_pkcs8, &certs, "CERTIFICATE");
        let mut text = Zeroizing::new(String::with_capacity(bundle.len() + 32));
        if let Origin::Enrolled(protocol) = &origin {
            text.push_str(&format!("{ENROLLED_MARK}{protocol}\n"));
        }
        text.push_str(&bundle);
        let info = served.info.clone();
        let why = match &origin {
            Origin::Uploaded => "an installer uploaded it (the installer's certificate takes precedence)".to_owned(),
            Origin::Enrolled(p) => {
                format!("the site's CA issued it by {p} enrollment (the installer's certificate takes precedence)")
            }
        };
        let _change = self.changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        write_atomic(&self.layout.uploaded_bundle(), text.as_bytes(), SECRET_MODE).map_err(InstallError::Storage)?;
        self.lock().installer = Some(Installer { served, origin, expiry_told: false });
        self.swap(&why);
        Ok(info)
    }

    /// Deletes the installer's certificate (also one on disk that could not be loaded) and goes
    /// back to the camera's own. False if there was none in use. On failure it stays in use.
    pub fn restore(&self) -> Result<bool, std::io::Error> {
        let _change = self.changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        remove_durable(&self.layout.uploaded_bundle())?;
        if self.lock().installer.take().is_none() {
            return Ok(false);
        }
        self.swap("the installer's certificate was deleted (restore)");
        Ok(true)
    }

    /// Stores a new pending request, replacing any earlier one.
    pub fn store_pending(&self, pending: &PendingCsr) -> Result<(), InstallError> {
        let (info, pem) = pending_info(pending, now_unix())
            .ok_or_else(|| InstallError::Bundle("the request just made cannot be described".into()))?;
        let _change = self.changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        write_atomic(&self.layout.pending_csr(), pending.to_bundle_pem().as_bytes(), SECRET_MODE)
            .map_err(InstallError::Storage)?;
        self.lock().pending = Some((info, pem));
        Ok(())
    }

    /// The pending request's PEM, if any.
    pub fn pending_csr_pem(&self) -> Option<String> {
        self.lock().pending.as_ref().map(|(_, pem)| pem.clone())
    }

    /// The pending request's key, read from disk only when needed.
    pub fn pending_key(&self) -> Option<Zeroizing<Vec<u8>>> {
        let text = read_optional(&self.layout.pending_csr()).ok()??;
        camera_pki::pem::pkcs8_key(&text).ok()?
    }

    /// Which certificate new handshakes get.
    pub fn source(&self) -> Source {
        self.lock().active(now_signed()).0
    }

    /// The installer's certificate, in service or expired.
    pub fn installer(&self) -> Option<InstallerSummary> {
        self.lock()
            .installer
            .as_ref()
            .map(|i| InstallerSummary { origin: i.origin.clone(), info: i.served.info.clone() })
    }

    /// The installer's certificate (leaf DER) and key, read from disk, if it has `origin`.
    pub fn installer_credentials(&self, origin: &Origin) -> Option<(Vec<u8>, Zeroizing<Vec<u8>>)> {
        if self.lock().installer.as_ref().map(|i| &i.origin) != Some(origin) {
            return None;
        }
        let text = read_optional(&self.layout.uploaded_bundle()).ok()??;
        let key = camera_pki::pem::pkcs8_key(&text).ok()??;
        let leaf = camera_pki::pem::certificates(&text).ok()?.into_iter().next()?;
        Some((leaf, key))
    }

    /// The leaf new handshakes get.
    pub fn served_info(&self) -> CertificateInfo {
        self.lock().active(now_signed()).1.info.clone()
    }

    /// The state `GET /api/v1/certificate` reports.
    pub fn status(&self, ctx: &StatusContext<'_>) -> CertificateStatus {
        let inner = self.lock();
        let now = now_signed();
        let (source, served) = inner.active(now);
        let reason = match (source, &inner.installer) {
            (Source::Uploaded, _) => {
                "An installer uploaded this certificate; the installer's certificate takes precedence over the camera's own."
            }
            (Source::Enrolled, _) => {
                "The site's CA issued this certificate to the camera by automatic enrollment; it is renewed before it expires."
            }
            (Source::Device, Some(_)) => {
                "The installer's certificate has expired and nothing replaced it, so the camera serves its own (trusted by whoever imported cacert.crt)."
            }
            (Source::Device, None) => {
                "No certificate is uploaded, so the camera serves its own, made for its current addresses and renewed automatically when they change."
            }
        };
        let replaced = read_optional(&self.layout.ca_replaced_record())
            .ok()
            .flatten()
            .and_then(|bytes| serde_json::from_slice::<CaReplaced>(&bytes).ok());
        CertificateStatus {
            source,
            reason,
            certificate: served.info.clone(),
            chain: served.chain_info.clone(),
            camera: CameraNames {
                addresses: ctx.addresses.iter().map(ToString::to_string).collect(),
                names: ctx.names.iter().map(ToString::to_string).collect(),
                hostname: ctx.hostname.map(str::to_owned),
            },
            opened_as: ctx.opened_as.map(|host| OpenedAs {
                host: host.to_owned(),
                covered: names_cover(&served.info.subject_alt_names, host),
            }),
            warnings: coverage_warnings(&served.info, ctx.addresses, source, ctx.expiry_warning_days),
            ca: CaStatus {
                sha256: self.ca_info.sha256.clone(),
                subject: self.ca_info.subject.clone(),
                not_after: self.ca_info.not_after.clone(),
                tiers: if self.issuing_info.is_some() { 2 } else { 1 },
                issuing: self.issuing_info.as_ref().map(|i| IssuingCa {
                    subject: i.subject.clone(),
                    sha256: i.sha256.clone(),
                    not_after: i.not_after.clone(),
                }),
                advice: self.one_tier_advice,
                replaced,
            },
            pending_csr: inner.pending.as_ref().map(|(info, _)| info.clone()),
            tls_profile: ctx.tls_profile,
            expiry: Vec::new(),
        }
    }
}

/// Whether a certificate naming `names` is valid for `host` (an address or a DNS name, as in a
/// `Host` header), by the same rule as the upload check.
fn names_cover(names: &[String], host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let (ips, dns) = certificate_names(names);
    match host.parse::<IpAddr>() {
        Ok(ip) => ips.iter().any(|named| named.to_canonical() == ip.to_canonical()),
        Err(_) => dns.iter().any(|name| camera_upload::dns_name_matches(name, host)),
    }
}

/// The IP addresses and DNS names among a certificate's subjectAltNames.
fn certificate_names(names: &[String]) -> (Vec<IpAddr>, Vec<String>) {
    let mut ips = Vec::new();
    let mut dns = Vec::new();
    for name in names {
        match name.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => dns.push(name.clone()),
        }
    }
    (ips, dns)
}

/// Plain-language warnings about the served certificate: addresses it does not name (the same
/// rule as the upload check, `camera_upload::address_notices`), expiry of an uploaded one inside
/// the configured window (`web.expiry_warning_days`, the expiry monitor's rule).
pub fn coverage_warnings(
    info: &CertificateInfo,
    addresses: &[IpAddr],
    source: Source,
    expiry_warning_days: u32,
) -> Vec<Notice> {
    let (ips, dns) = certificate_names(&info.subject_alt_names);
    let names = camera_upload::CertificateNames { ips, dns, has_san: !info.subject_alt_names.is_empty() };
    let advice = match source {
        Source::Uploaded => "Or Restore to use the camera's own certificate, which follows address changes.",
        Source::Enrolled => "The camera asks the site's CA for a new certificate naming its addresses.",
        Source::Device => {
            "The camera's CA may only sign private addresses: use a private address, or upload an installer's certificate."
        }
    };
    let mut warnings: Vec<Notice> = camera_upload::address_notices(&names, addresses, &[])
        .into_iter()
        .map(|notice| Notice { code: notice.code, message: format!("{} {advice}", notice.message) })
        .collect();
    let now = now_unix() as i64;
    let days_left = (info.not_after_unix - now) / 86_400;
    if info.not_after_unix <= now {
        warnings.push(Notice {
            code: "expired",
            message: format!("This certificate expired on {}: browsers refuse it.", info.not_after),
        });
    } else if source == Source::Uploaded
        && now >= crate::expiry::warning_from(info.not_after_unix, expiry_warning_days, crate::expiry::Renewal::ByHand)
    {
        warnings.push(Notice {
            code: "expires_soon",
            message: format!(
                "This certificate expires in {days_left} days ({}): upload a renewed one.",
                info.not_after
            ),
        });
    }
    warnings
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn info(names: &[&str]) -> CertificateInfo {
        CertificateInfo {
            subject: String::new(),
            issuer: String::new(),
            serial: String::new(),
            not_before: String::new(),
            not_after: "2099-01-01T00:00:00Z".into(),
            not_before_unix: 0,
            not_after_unix: 4_070_908_800,
            sha256: String::new(),
            public_key_sha256: String::new(),
            subject_alt_names: names.iter().map(|n| (*n).to_owned()).collect(),
            key_type: String::new(),
            is_ca: false,
            self_signed: false,
        }
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    /// The status page and the upload check say the same thing, each with its own advice.
    #[test]
    fn coverage_uses_the_upload_rule_with_advice_for_the_source() {
        let covered = coverage_warnings(&info(&["10.0.0.5", "cam.local"]), &ips(&["10.0.0.5"]), Source::Device, 30);
        assert!(covered.is_empty(), "{covered:?}");
        assert!(names_cover(&["10.0.0.5".into(), "cam.local".into()], "cam.local"));
        assert!(names_cover(&["fd00::5".into()], "[fd00::5]"));
        assert!(!names_cover(&["10.0.0.5".into()], "10.0.0.6"));
        // The UI used to accept *.local for cam.local; the server's rule does not (one label
        // under a public-suffix-like name is no wildcard target), and the UI shows this verdict.
        assert_eq!(
            names_cover(&["*.local".into()], "cam.local"),
            camera_upload::dns_name_matches("*.local", "cam.local")
        );

        let public_left_out =
            coverage_warnings(&info(&["10.0.0.5"]), &ips(&["10.0.0.5", "2001:db8::5"]), Source::Device, 30);
        assert_eq!(public_left_out[0].code, "name_partial");
        let message = &public_left_out[0].message;
        assert!(message.contains("2001:db8::5") && message.contains("may only sign private addresses"), "{message}");

        let moved = coverage_warnings(&info(&["192.168.1.50"]), &ips(&["10.0.0.5"]), Source::Uploaded, 30);
        assert_eq!(moved[0].code, "name_mismatch");
        let message = &moved[0].message;
        assert!(
            message.contains("names 192.168.1.50 but the camera is at 10.0.0.5") && message.contains("Restore"),
            "{message}"
        );
    }

    /// The status page warns of an uploaded certificate's expiry by the configured window, the
    /// same rule the expiry monitor and the log follow.
    #[test]
    fn expires_soon_follows_the_configured_window() {
        let in_45_days = now_unix() as i64 + 45 * 86_400;
        let cert = CertificateInfo { not_after_unix: in_45_days, ..info(&["10.0.0.5"]) };
        let addresses = ips(&["10.0.0.5"]);
        let codes = |days| -> Vec<&str> {
            coverage_warnings(&cert, &addresses, Source::Uploaded, days).iter().map(|n| n.code).collect()
        };
        assert_eq!(codes(60), ["expires_soon"]);
        assert!(codes(30).is_empty());
        assert!(codes(7).is_empty());
        // The monitor agrees at the same setting.
        let now = now_unix() as i64;
        let warn = |days| now >= crate::expiry::warning_from(in_45_days, days, crate::expiry::Renewal::ByHand);
        assert!(warn(60) && !warn(30));
        // Enrolled certificates are the enrollment's to renew: no notice to upload one.
        assert!(coverage_warnings(&cert, &addresses, Source::Enrolled, 60).is_empty());
    }
}
