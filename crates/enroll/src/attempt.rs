//! One enrollment attempt as the protocols see it: the host that installs only what is still
//! wanted, what a successful attempt learnt, and why a failed one failed (typed, with what it
//! means for the schedule).

use std::sync::Mutex;
use std::time::Duration;

use camera_pki::SanName;

use crate::host::{Host, InstallError};
use crate::record::Record;
use crate::schedule::{self, Installed, Reason};
use crate::settings::{EnrollKeyType, Protocol, Settings, SettingsError};

/// The host as one attempt sees it: it installs only while the settings it runs with are still
/// the ones configured, and, when the attempt was not scheduled (names changed, a retry after an
/// unusable issuance), only a certificate at least as good as the enrolled one in service. A
/// renewal takes what the CA gives (the certificate in service is due), and so does the
/// installer's own request. The checks and the install happen under the record's lock, so a stop
/// (`DELETE /api/v1/enrollment`, or a restore, which stops first) either comes before and nothing
/// is installed, or waits until the certificate is installed and the restore then removes it.
pub(crate) struct Attempt<'a> {
    pub record: &'a Mutex<Record>,
    pub host: &'a dyn Host,
    pub digest: String,
    /// The names this attempt asks for.
    pub asked: &'a [SanName],
    /// Why it runs.
    pub reason: &'a Reason,
}

impl Attempt<'_> {
    /// Installs what the CA issued, or says why not.
    pub fn install(&self, chain: &[Vec<u8>], key_pkcs8: &[u8], protocol: Protocol) -> Result<Installed, Failure> {
        let record = self.record.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if record.settings.as_ref().map(Settings::digest).as_deref() != Some(self.digest.as_str()) {
            return Err(Cause::Superseded.into());
        }
        if let (true, Some(issued), Some(current)) = (
            self.reason.is_unscheduled(),
            chain.first().and_then(|leaf| issued_installed(leaf)),
            self.host.installed().filter(|i| i.enrolled && i.not_after_unix > camera_state::now_unix()),
        ) {
            let (new, old) = (covered(&issued, self.asked), covered(&current, self.asked));
            if new < old || (new == old && issued.not_after_unix <= current.not_after_unix) {
                let lacking = missing(self.asked, &issued);
                return Err(Cause::NotBetter(if lacking.is_empty() {
                    Shortfall::NoLater { in_service_until: current.not_after_unix }
                } else {
                    Shortfall::FewerNames(lacking)
                })
                .into());
            }
        }
        let installed = self.host.install(chain, key_pkcs8, protocol).map_err(Cause::Install)?;
        drop(record);
        Ok(installed)
    }
}

/// An issued leaf as enrollment sees it (before it is installed).
fn issued_installed(leaf: &[u8]) -> Option<Installed> {
    camera_pki::describe(leaf).ok().map(|info| Installed::from_info(&info, true))
}

/// How many of `wanted` the certificate names.
fn covered(cert: &Installed, wanted: &[SanName]) -> usize {
    wanted.iter().filter(|n| cert.names.contains(n)).count()
}

fn missing(wanted: &[SanName], cert: &Installed) -> Vec<SanName> {
    wanted.iter().filter(|n| !cert.names.contains(n)).cloned().collect()
}

pub(crate) fn list(names: &[SanName]) -> String {
    names.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// The CA this attempt trusted, to pin.
#[derive(Debug, Clone)]
pub(crate) struct Pinned {
    pub sha256: String,
    pub pem: String,
}

/// A successful enrollment.
pub(crate) struct Done {
    pub installed: Installed,
    pub account_url: Option<String>,
    /// SCEP: the server's CA as trusted in this attempt.
    pub scep_ca: Option<Pinned>,
    /// How it was asked for, for the record (e.g. "by a renewal request (RenewalReq)").
    pub how: &'static str,
}

/// A certificate that was issued and installed but is not what was asked for counts as a
/// failure for the schedule (backoff, never an immediate retry): one that lacks names asked
/// for, or one already due for renewal when it arrived (backdated, or a camera clock running
/// ahead).
pub(crate) fn judge(done: Done, asked: &[SanName], now: u64, margin: Option<Duration>) -> Result<Done, Failure> {
    let lacking = missing(asked, &done.installed);
    let cause = if !lacking.is_empty() {
        Cause::Lacking(lacking)
    } else if now >= schedule::renew_at(&done.installed, margin) {
        Cause::DueOnArrival {
            not_before_unix: done.installed.not_before_unix,
            not_after_unix: done.installed.not_after_unix,
        }
    } else {
        return Ok(done);
    };
    Err(Failure { done: Some(Box::new(done)), ..cause.into() })
}

/// What a failure means for the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// The CA could not be reached, refused, or failed: back off and retry.
    Transient,
    /// The CA issued something that cannot be used as it is: back off, retry within the budget.
    Unusable,
    /// The server is not the CA it must be: stop until the installer configures it again.
    Untrusted,
}

/// Why a new certificate is no better than the enrolled one in service.
#[derive(Debug)]
pub(crate) enum Shortfall {
    FewerNames(Vec<SanName>),
    NoLater { in_service_until: u64 },
}

/// The ACME account key's file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AccountKeyError {
    #[error("the ACME account key file is damaged ({0})")]
    Damaged(#[source] camera_pki::pem::PemError),
    #[error("the ACME account key file holds no key")]
    Empty,
    #[error("the ACME account key file cannot be read ({0})")]
    Read(#[source] std::io::Error),
    #[error("the ACME account key could not be stored ({0})")]
    Store(#[source] std::io::Error),
}

/// Why an attempt failed, in the words the state and the event log use.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Cause {
    #[error(transparent)]
    Acme(#[from] camera_acme::AcmeError),
    #[error(transparent)]
    Scep(#[from] camera_scep::ScepError),
    #[error(transparent)]
    AccountKey(#[from] AccountKeyError),
    #[error("the SCEP server could not be reached: {0}")]
    ScepUnreachable(#[source] camera_http_client::Error),
    #[error("the SCEP server answered HTTP {status} to {url}")]
    ScepStatus { status: u16, url: String },
    #[error("the SCEP server still holds the request for approval (PENDING) after two minutes")]
    StillPending,
    #[error("the trust anchor cannot be used: {0}")]
    TrustSetting(#[source] SettingsError),
    #[error("the trust anchor cannot be used: {0}")]
    TrustAnchor(#[source] camera_http_client::Error),
    #[error("the pinned SCEP CA in the enrollment record is damaged; configure enrollment again")]
    PinDamaged,
    #[error("the camera has no address or name to put in a certificate")]
    NoNames,
    #[error("no allowed challenge can be answered: the camera's listener for {} is off", .0.join(" and "))]
    NoChallenge(Vec<&'static str>),
    #[error("the key could not be generated")]
    KeyGeneration,
    #[error("the certificate request could not be made: {0}")]
    Request(#[source] camera_pki::PkiError),
    #[error("enrollment was stopped or changed while this attempt ran, so its certificate was not installed")]
    Superseded,
    #[error("the issued certificate was not installed: {0}")]
    Install(#[source] InstallError),
    #[error("the issued certificate was not installed: it {}", match .0 {
        Shortfall::FewerNames(lacking) => format!("names fewer of the camera's names than the one in service (it lacks {})", list(lacking)),
        Shortfall::NoLater { in_service_until } => format!("expires no later than the one in service ({})", rfc3339(*in_service_until)),
    })]
    NotBetter(Shortfall),
    #[error("the issued certificate does not name {} (the CA left {} out)", list(.0), if .0.len() == 1 { "it" } else { "them" })]
    Lacking(Vec<SanName>),
    #[error("the issued certificate was already due for renewal when it arrived (valid from {} until {})", rfc3339(*.not_before_unix), rfc3339(*.not_after_unix))]
    DueOnArrival { not_before_unix: u64, not_after_unix: u64 },
    #[error("the SCEP server presents a CA (SHA-256 {presented}) other than {} ({expected}); the camera sent it nothing", if *.configured { "the one configured in ca_sha256" } else { "at the first enrollment" })]
    OtherCa { presented: String, expected: String, configured: bool },
    #[error("{source}, so it is not {anchor}; the camera sent it nothing")]
    Unchained { source: camera_scep::ScepError, anchor: &'static str },
    #[error("{0}; it was not installed")]
    IssuedByAnother(#[source] camera_scep::ScepError),
}

impl Cause {
    fn kind(&self) -> FailureKind {
        match self {
            Cause::NotBetter(_) | Cause::Lacking(_) | Cause::DueOnArrival { .. } => FailureKind::Unusable,
            Cause::OtherCa { .. } | Cause::Unchained { .. } | Cause::IssuedByAnother(_) => FailureKind::Untrusted,
            _ => FailureKind::Transient,
        }
    }
}

/// A failed enrollment: why, how long the server asked to wait, and (for an unusable
/// certificate that was installed all the same) what was done.
pub(crate) struct Failure {
    pub cause: Box<Cause>,
    pub retry_after: Option<Duration>,
    pub done: Option<Box<Done>>,
}

impl Failure {
    pub fn kind(&self) -> FailureKind {
        self.cause.kind()
    }
}

impl From<Cause> for Failure {
    fn from(cause: Cause) -> Self {
        let retry_after = match &cause {
            Cause::Acme(e) => e.retry_after(),
            _ => None,
        };
        Failure { cause: Box::new(cause), retry_after, done: None }
    }
}

impl From<camera_acme::AcmeError> for Failure {
    fn from(e: camera_acme::AcmeError) -> Self {
        Cause::Acme(e).into()
    }
}

impl From<camera_scep::ScepError> for Failure {
    fn from(e: camera_scep::ScepError) -> Self {
        Cause::Scep(e).into()
    }
}

impl From<AccountKeyError> for Failure {
    fn from(e: AccountKeyError) -> Self {
        Cause::AccountKey(e).into()
    }
}

pub(crate) fn rfc3339(unix: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(unix).unwrap_or(i64::MAX))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// A certificate request and its key for `names`, made on the camera (blocking: RSA key
/// generation takes seconds on a camera's core).
pub(crate) async fn request_for(
    names: &[SanName],
    key_type: EnrollKeyType,
    common_name: Option<String>,
) -> Result<camera_pki::PendingCsr, Failure> {
    let request = camera_pki::CsrRequest {
        subject: camera_pki::CsrSubject { common_name, ..Default::default() },
        subject_alt_names: names.iter().map(ToString::to_string).collect(),
        key_type: key_type.pki(),
    };
    tokio::task::spawn_blocking(move || camera_pki::create_csr(&request))
        .await
        .map_err(|_| Cause::KeyGeneration)?
        .map_err(|e| Cause::Request(e).into())
}
