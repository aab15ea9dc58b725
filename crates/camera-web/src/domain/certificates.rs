//! The certificate state machine: which certificate is served, and swapping it without a restart.
//!
//! Precedence: the installer's certificate (uploaded by hand or obtained by enrollment) unless it
//! has expired, else the device-minted one. Every change (upload, enrollment, restore, expiry,
//! re-mint after an address or clock change) replaces one `Arc<CertifiedKey>` that the TLS
//! resolver hands to each new handshake; open connections keep theirs.

use std::sync::{Arc, Mutex};

use camera_enroll::Protocol;
use camera_pki::{describe, CertificateInfo, MintedServer, PendingCsr, PkiError};
use camera_state::{now_unix, read_optional, remove_durable, write_atomic, Layout, SECRET_MODE};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::Serialize;
use zeroize::Zeroizing;

use super::clock::now as now_signed;
use super::resolver::{CurrentCertificate, ServedNow};
use crate::log;

/// Which certificate is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Minted by the camera for its current addresses.
    Device,
    /// An installer's certificate, uploaded by hand.
    Uploaded,
    /// An installer's certificate, obtained by automatic enrollment from the site's CA.
    Enrolled,
}

/// What an installer's certificate is for. Each role has its own slot (installed certificate and
/// key, pending request) stored and changed by the same code; only `https` is served, with the
/// camera's own certificate as its fallback, and `dot1x` has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The camera's HTTPS server certificate.
    Https,
    /// The 802.1X (EAP-TLS) client certificate.
    Dot1x,
}

impl Role {
    fn bundle(self, layout: &Layout) -> std::path::PathBuf {
        match self {
            Self::Https => layout.uploaded_bundle(),
            Self::Dot1x => layout.dot1x_bundle(),
        }
    }

    fn pending_csr(self, layout: &Layout) -> std::path::PathBuf {
        match self {
            Self::Https => layout.pending_csr(),
            Self::Dot1x => layout.dot1x_pending_csr(),
        }
    }

    /// The extended key usage an upload for this role must allow.
    pub fn purpose(self) -> camera_upload::KeyPurpose {
        match self {
            Self::Https => camera_upload::KeyPurpose::TlsServer,
            Self::Dot1x => camera_upload::KeyPurpose::TlsClient,
        }
    }

    /// How people call the certificate of this role, for the log and the event log.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Https => "installer's certificate",
            Self::Dot1x => "802.1X client certificate",
        }
    }
}

/// A certificate request made on the camera whose key is waiting for its certificate.
#[derive(Debug, Clone, Serialize)]
pub struct PendingRequest {
    pub subject: String,
    pub subject_alt_names: Vec<String>,
    pub key_type: String,
    pub created_at_unix: u64,
}

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

/// A certificate chain with its key, ready to serve.
#[derive(Debug)]
pub(super) struct Served {
    certified: Arc<CertifiedKey>,
    pub(super) info: CertificateInfo,
    pub(super) chain_info: Vec<CertificateInfo>,
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
    /// Obtained by automatic enrollment with this protocol.
    Enrolled(Protocol),
}

/// The first line of `uploaded.pem` for an enrolled certificate: explanatory text before the
/// PEM blocks (RFC 7468 section 2), so the origin changes with the certificate in one rename.
const ENROLLED_MARK: &str = "Enrolled-via: ";

impl Origin {
    fn of_bundle(text: &[u8]) -> Self {
        let first = text.split(|b| *b == b'\n').next().unwrap_or_default();
        match std::str::from_utf8(first).ok().and_then(|l| l.strip_prefix(ENROLLED_MARK)) {
            Some(name) => Protocol::parse(name.trim()).map_or(Self::Uploaded, Self::Enrolled),
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
pub(super) struct Installer {
    served: Served,
    origin: Origin,
    /// Its expiry was logged ([`Certificates::fall_back_if_expired`]).
    expiry_told: bool,
}

/// One role's certificate and pending request.
#[derive(Debug, Default)]
pub(super) struct Slot {
    pub(super) installer: Option<Installer>,
    pub(super) pending: Option<(PendingRequest, String)>,
}

impl Slot {
    fn load(layout: &Layout, provider: &CryptoProvider, role: Role) -> Result<Self, InstallError> {
        let installer = match read_optional(&role.bundle(layout)) {
            Ok(Some(text)) => match Served::from_bundle(provider, &text) {
                Ok(served) => Some(Installer { served, origin: Origin::of_bundle(&text), expiry_told: false }),
                Err(e) => {
                    let fallback = match role {
                        Role::Https => "; serving the camera's own",
                        Role::Dot1x => "",
                    };
                    log::warn(&format!("the {} cannot be used ({e}){fallback}", role.noun()));
                    None
                }
            },
            Ok(None) => None,
            Err(e) => return Err(InstallError::Storage(e)),
        };
        let path = role.pending_csr(layout);
        let pending = match read_optional(&path) {
            Ok(Some(text)) => PendingCsr::from_bundle_pem(&text).ok().and_then(|p| {
                let created =
                    std::fs::metadata(&path).and_then(|m| m.modified()).map(camera_state::unix_seconds).unwrap_or(0);
                pending_info(&p, created)
            }),
            _ => None,
        };
        Ok(Self { installer, pending })
    }
}

pub(super) struct Inner {
    device: Served,
    https: Slot,
    dot1x: Slot,
}

impl Inner {
    pub(super) fn slot(&self, role: Role) -> &Slot {
        match role {
            Role::Https => &self.https,
            Role::Dot1x => &self.dot1x,
        }
    }

    fn slot_mut(&mut self, role: Role) -> &mut Slot {
        match role {
            Role::Https => &mut self.https,
            Role::Dot1x => &mut self.dot1x,
        }
    }
}

impl Inner {
    /// What new handshakes get: the installer's certificate unless it has expired (then the
    /// camera's own, which users who imported cacert.crt trust), else the camera's own.
    pub(super) fn active(&self, now: i64) -> (Source, &Served) {
        match &self.https.installer {
            Some(i) if !i.served.expired(now) => (i.origin.source(), &i.served),
            _ => (Source::Device, &self.device),
        }
    }

    /// What the resolver needs to hand out [`Inner::active`] at any second.
    fn served_now(&self) -> ServedNow {
        match &self.https.installer {
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
    pub(super) layout: Layout,
    provider: Arc<CryptoProvider>,
    resolver: Arc<CurrentCertificate>,
    /// `cacert.crt`: the CA's root (two tiers) or the one tier.
    ca_pem: String,
    ca_der: Vec<u8>,
    pub(super) ca_info: CertificateInfo,
    /// The certificate sent after the device certificate: the issuing CA (two tiers), else the
    /// one tier itself.
    signer_der: Vec<u8>,
    /// The issuing CA, when the CA has two tiers.
    pub(super) issuing_info: Option<CertificateInfo>,
    pub(super) one_tier_advice: Option<&'static str>,
    pub(super) inner: Mutex<Inner>,
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
        let https = Slot::load(&layout, &provider, Role::Https)?;
        let dot1x = Slot::load(&layout, &provider, Role::Dot1x)?;
        let inner = Inner { device, https, dot1x };
        let this = Self {
            resolver: Arc::new(CurrentCertificate::new(inner.served_now())),
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

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
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
            match &mut inner.https.installer {
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

    /// Stores an installer's certificate for `role` (validated by the caller) and, for `https`,
    /// serves it. Nothing changes if storing fails.
    pub fn install(
        &self,
        role: Role,
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
        write_atomic(&role.bundle(&self.layout), text.as_bytes(), SECRET_MODE).map_err(InstallError::Storage)?;
        self.lock().slot_mut(role).installer = Some(Installer { served, origin, expiry_told: false });
        match role {
            Role::Https => self.swap(&why),
            Role::Dot1x => {
                log::info(&format!("camera-web: a new 802.1X client certificate \"{}\" was stored", info.subject))
            }
        }
        Ok(info)
    }

    /// Deletes the installer's certificate of `role` (also one on disk that could not be loaded);
    /// `https` goes back to the camera's own. False if there was none in use. On failure it stays.
    pub fn restore(&self, role: Role) -> Result<bool, std::io::Error> {
        let _change = self.changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        remove_durable(&role.bundle(&self.layout))?;
        if self.lock().slot_mut(role).installer.take().is_none() {
            return Ok(false);
        }
        match role {
            Role::Https => self.swap("the installer's certificate was deleted (restore)"),
            Role::Dot1x => log::info("camera-web: the 802.1X client certificate was deleted"),
        }
        Ok(true)
    }

    /// Stores a new pending request for `role`, replacing any earlier one.
    pub fn store_pending(&self, role: Role, pending: &PendingCsr) -> Result<(), InstallError> {
        let (info, pem) = pending_info(pending, now_unix())
            .ok_or_else(|| InstallError::Bundle("the request just made cannot be described".into()))?;
        let _change = self.changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        write_atomic(&role.pending_csr(&self.layout), pending.to_bundle_pem().as_bytes(), SECRET_MODE)
            .map_err(InstallError::Storage)?;
        self.lock().slot_mut(role).pending = Some((info, pem));
        Ok(())
    }

    /// The pending request's PEM, if any.
    pub fn pending_csr_pem(&self, role: Role) -> Option<String> {
        self.lock().slot(role).pending.as_ref().map(|(_, pem)| pem.clone())
    }

    /// The pending request, if any.
    pub fn pending_request(&self, role: Role) -> Option<PendingRequest> {
        self.lock().slot(role).pending.as_ref().map(|(info, _)| info.clone())
    }

    /// The pending request's key, read from disk only when needed.
    pub fn pending_key(&self, role: Role) -> Option<Zeroizing<Vec<u8>>> {
        let text = read_optional(&role.pending_csr(&self.layout)).ok()??;
        camera_pki::pem::pkcs8_key(&text).ok()?
    }

    /// The installer's certificate of `role` as stored: key and chain in one PEM text.
    pub fn bundle(&self, role: Role) -> Option<Zeroizing<Vec<u8>>> {
        self.lock().slot(role).installer.as_ref()?;
        read_optional(&role.bundle(&self.layout)).ok()?
    }

    /// Which certificate new handshakes get.
    pub fn source(&self) -> Source {
        self.lock().active(now_signed()).0
    }

    /// The installer's certificate of `role`, in service or expired.
    pub fn installer(&self, role: Role) -> Option<InstallerSummary> {
        self.lock()
            .slot(role)
            .installer
            .as_ref()
            .map(|i| InstallerSummary { origin: i.origin.clone(), info: i.served.info.clone() })
    }

    /// The installer's certificate of `role` (leaf DER) and key, read from disk, if it has `origin`.
    pub fn installer_credentials(&self, role: Role, origin: &Origin) -> Option<(Vec<u8>, Zeroizing<Vec<u8>>)> {
        if self.lock().slot(role).installer.as_ref().map(|i| &i.origin) != Some(origin) {
            return None;
        }
        let text = read_optional(&role.bundle(&self.layout)).ok()??;
        let key = camera_pki::pem::pkcs8_key(&text).ok()??;
        let leaf = camera_pki::pem::certificates(&text).ok()?.into_iter().next()?;
        Some((leaf, key))
    }

    /// The leaf new handshakes get.
    pub fn served_info(&self) -> CertificateInfo {
        self.lock().active(now_signed()).1.info.clone()
    }
}
