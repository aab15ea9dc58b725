//! Automatic enrollment and renewal from the site's CA: ACME (RFC 8555 + RFC 8738 IP identifiers)
//! or SCEP (RFC 8894). Pointed once at the CA, the camera gets a certificate for its current
//! names, renews it two thirds into its lifetime (or a configured margin before expiry) or as
//! soon as its addresses change, and backs off (doubling, up to six hours, longer when the server
//! says so) when the CA fails.
//!
//! - [`settings`]: what the installer configures (API and configuration file), secrets kept out
//!   of views.
//! - [`schedule`]: when to enroll, pure.
//! - [`Enrollment`]: the stored record, the state shown to users, and the loop ([`Enrollment::run`]).
//!
//! The web server is the [`Host`]: it knows the camera's names, installs a certificate exactly
//! like an upload (validated first, stored atomically, hot-swapped), and answers the ACME
//! challenges on its ports. The certificate key is generated here, on the camera, and never leaves.

mod acme;
mod scep;
pub mod schedule;
pub mod settings;

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use camera_events::EventKind;
use camera_pki::SanName;
use camera_state::{read_optional, write_atomic, Layout, SECRET_MODE};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use zeroize::Zeroizing;

pub use schedule::{Due, Installed, Reason};
pub use settings::{PublicSettings, Settings, SettingsError};

/// The longest the loop sleeps before looking again (the wall clock may jump).
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// What the web server does for enrollment.
pub trait Host: Send + Sync {
    /// The names the certificate should carry now: the camera's addresses, `hostname.local`,
    /// configured names (as the device certificate has them).
    fn names(&self) -> Vec<SanName>;
    /// The installer's certificate in service, if any.
    fn installed(&self) -> Option<Installed>;
    /// Validates (as an upload) and installs an enrolled certificate; the current one stays in
    /// service when this fails. The error is a sentence.
    fn install(&self, chain: &[Vec<u8>], key_pkcs8: &[u8], protocol: &'static str) -> Result<Installed, String>;
    /// Answers ACME challenges on the camera's ports.
    fn responder(&self) -> &dyn camera_acme::ChallengeResponder;
    /// The enrolled certificate in service (leaf DER) and its key, if it came by `protocol`:
    /// a SCEP renewal is signed with them.
    fn enrolled_credentials(&self, protocol: &str) -> Option<(Vec<u8>, Zeroizing<Vec<u8>>)>;
    /// A security event (never a secret), with the address of the client that caused it.
    fn event(&self, kind: EventKind, client: Option<IpAddr>, message: String);
}

/// The host as one attempt sees it: it installs only while the settings it runs with are still
/// the ones configured. The check and the install happen under the record's lock, so a stop
/// (`DELETE /api/v1/enrollment`, or a restore, which stops first) either comes before and nothing
/// is installed, or waits until the certificate is installed and the restore then removes it.
struct StillWanted<'a> {
    enrollment: &'a Enrollment,
    digest: String,
}

impl Host for StillWanted<'_> {
    fn names(&self) -> Vec<SanName> {
        self.enrollment.host.names()
    }

    fn installed(&self) -> Option<Installed> {
        self.enrollment.host.installed()
    }

    fn install(&self, chain: &[Vec<u8>], key_pkcs8: &[u8], protocol: &'static str) -> Result<Installed, String> {
        let record = self.enrollment.record();
        if record.settings.as_ref().map(Settings::digest).as_deref() != Some(self.digest.as_str()) {
            return Err(
                "enrollment was stopped or changed while this attempt ran, so its certificate was not installed".into(),
            );
        }
        let installed = self.enrollment.host.install(chain, key_pkcs8, protocol);
        drop(record);
        installed
    }

    fn responder(&self) -> &dyn camera_acme::ChallengeResponder {
        self.enrollment.host.responder()
    }

    fn enrolled_credentials(&self, protocol: &str) -> Option<(Vec<u8>, Zeroizing<Vec<u8>>)> {
        self.enrollment.host.enrolled_credentials(protocol)
    }

    fn event(&self, kind: EventKind, client: Option<IpAddr>, message: String) {
        self.enrollment.host.event(kind, client, message);
    }
}

/// The configured renewal margin (`renew_before_days`), if any.
fn renewal_margin(settings: &Settings) -> Option<Duration> {
    settings.renew_before_days().map(|days| Duration::from_secs(u64::from(days) * 86_400))
}

/// The last attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at_unix: u64,
    pub ok: bool,
    /// What happened, in a sentence an installer understands.
    pub message: String,
}

/// What is kept in `enrollment.json` (0600): the settings with their secrets, and what happened.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Record {
    settings: Option<Settings>,
    /// The configuration file's `enrollment` section last adopted, so a changed section is
    /// adopted again while an unchanged one does not undo a DELETE.
    adopted_config: Option<String>,
    account_url: Option<String>,
    /// SHA-256 of the SCEP server's CA, pinned at the first enrollment (checked on every later one
    /// when no trust anchor is configured).
    scep_ca_sha256: Option<String>,
    last_attempt: Option<Attempt>,
    failures: u32,
    /// No attempt before this time (seconds since the epoch): the backoff.
    not_before_unix: u64,
}

/// The stored record. A parse error says where, never what: serde's message can quote a value
/// from the file, and the file holds the EAB key or the SCEP challenge.
fn parse_record(bytes: &[u8]) -> Result<Record, String> {
    serde_json::from_slice(bytes).map_err(|e| {
        let kind = match e.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "not the expected fields",
            serde_json::error::Category::Eof => "cut short",
        };
        format!("{kind} at line {} column {}", e.line(), e.column())
    })
}

/// The state `GET /api/v1/enrollment` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// `off` (nothing configured), `waiting` (enrolled, or waiting to retry), `working`.
    pub state: &'static str,
    pub settings: Option<PublicSettings>,
    /// What the camera is doing right now, in a sentence (while working).
    pub progress: Option<String>,
    pub last_attempt: Option<Attempt>,
    /// Consecutive failures since the last success.
    pub failures: u32,
    /// When the camera will next try (a retry, or the renewal), seconds since the epoch.
    pub next_attempt_unix: Option<u64>,
    /// The enrolled certificate in service, if any.
    pub certificate: Option<EnrolledCertificate>,
    /// SCEP: the fingerprint of the server's CA, as the camera saw it at the first enrollment
    /// (compare it with the CA's, out of band, when no trust anchor is configured).
    pub scep_ca_sha256: Option<String>,
}

/// The enrolled certificate in service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnrolledCertificate {
    pub not_before_unix: u64,
    pub not_after_unix: u64,
    pub renew_at_unix: u64,
    pub names: Vec<String>,
}

/// Why a change to the enrollment was refused.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("{0}")]
    Settings(#[from] SettingsError),
    #[error("the enrollment settings could not be stored: {0}")]
    Storage(#[source] io::Error),
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Enrollment for one camera.
pub struct Enrollment {
    path: PathBuf,
    account_key_path: PathBuf,
    record: Mutex<Record>,
    progress: Mutex<Option<String>>,
    working: Mutex<bool>,
    wake: Notify,
    host: Arc<dyn Host>,
}

impl std::fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrollment").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Enrollment {
    /// Loads the stored record; adopts the configuration file's `enrollment` section when it is
    /// new or changed since it was last adopted. A damaged record is set aside with a warning in
    /// the returned list, never fatal: the camera must serve.
    pub fn load(layout: &Layout, from_config: Option<Settings>, host: Arc<dyn Host>) -> (Self, Vec<String>) {
        let path = layout.enrollment();
        let mut warnings = Vec::new();
        let mut changed = false;
        let mut record = match read_optional(&path) {
            Ok(Some(bytes)) => parse_record(&bytes).unwrap_or_else(|why| {
                warnings.push(format!(
                    "{} is damaged ({why}); enrollment is off until it is configured again",
                    path.display()
                ));
                Record::default()
            }),
            Ok(None) => Record::default(),
            Err(e) => {
                warnings.push(format!("cannot read {} ({e}); enrollment is off", path.display()));
                Record::default()
            }
        };
        if let Some(settings) = from_config {
            let digest = settings.digest();
            if record.adopted_config.as_deref() != Some(digest.as_str()) {
                match settings.check() {
                    Ok(()) => {
                        record.settings = Some(settings);
                        record.adopted_config = Some(digest);
                        record.failures = 0;
                        record.not_before_unix = 0;
                        changed = true;
                    }
                    Err(e) => warnings.push(format!("the configuration's enrollment section is not used: {e}")),
                }
            }
        }
        let this = Self {
            path,
            account_key_path: layout.acme_account_key(),
            record: Mutex::new(record),
            progress: Mutex::new(None),
            working: Mutex::new(false),
            wake: Notify::new(),
            host,
        };
        // Written only when the configuration brought something new: no flash write per start.
        if changed {
            if let Err(e) = this.save() {
                warnings.push(format!("cannot store {}: {e}", this.path.display()));
            }
        }
        (this, warnings)
    }

    fn record(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn save(&self) -> io::Result<()> {
        let json = Zeroizing::new(serde_json::to_vec(&*self.record()).map_err(io::Error::other)?);
        write_atomic(&self.path, &json, SECRET_MODE)
    }

    /// Whether settings are configured.
    pub fn enabled(&self) -> bool {
        self.record().settings.is_some()
    }

    /// The state for `GET /api/v1/enrollment`.
    pub fn status(&self) -> Status {
        let record = self.record().clone();
        let installed = self.host.installed().filter(|i| i.enrolled);
        let working = *self.working.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let margin = record.settings.as_ref().and_then(renewal_margin);
        let next = record.settings.as_ref().map(|_| {
            match schedule::due(now_unix(), installed.as_ref(), &self.host.names(), record.not_before_unix, margin) {
                Due::At(t) => t,
                Due::Now(_) => now_unix(),
            }
        });
        Status {
            state: match (&record.settings, working) {
                (None, _) => "off",
                (Some(_), true) => "working",
                (Some(_), false) => "waiting",
            },
            settings: record.settings.as_ref().map(Settings::public_view),
            progress: self.progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
            last_attempt: record.last_attempt,
            failures: record.failures,
            next_attempt_unix: next,
            scep_ca_sha256: record.scep_ca_sha256.clone(),
            certificate: installed.map(|i| EnrolledCertificate {
                renew_at_unix: schedule::renew_at(&i, margin),
                not_before_unix: i.not_before_unix,
                not_after_unix: i.not_after_unix,
                names: i.names.iter().map(ToString::to_string).collect(),
            }),
        }
    }

    /// `PUT /api/v1/enrollment`: stores the settings and starts at once. `by`: the client's address,
    /// for the event log.
    pub fn configure(&self, settings: Settings, by: Option<IpAddr>) -> Result<Status, EnrollError> {
        settings.check()?;
        let description = format!("Enrollment with {} at {} was configured.", settings.protocol(), settings.url());
        {
            let mut record = self.record();
            let same_server = record.settings.as_ref().is_some_and(|s| s.url() == settings.url());
            if !same_server {
                record.account_url = None;
                record.scep_ca_sha256 = None;
            }
            record.settings = Some(settings);
            record.failures = 0;
            record.not_before_unix = 0;
        }
        self.save().map_err(EnrollError::Storage)?;
        self.host.event(EventKind::EnrollmentConfigured, by, description);
        self.wake.notify_one();
        Ok(self.status())
    }

    /// `DELETE /api/v1/enrollment` (and restore): stops; the certificate in service stays until a
    /// restore. Returns whether enrollment was on. `by`: the client's address, for the event log.
    pub fn stop(&self, by: Option<IpAddr>) -> Result<bool, EnrollError> {
        let was_on = self.record().settings.take().is_some();
        if was_on {
            self.save().map_err(EnrollError::Storage)?;
            self.host.event(EventKind::EnrollmentStopped, by, "Automatic enrollment was stopped.".into());
            self.wake.notify_one();
        }
        Ok(was_on)
    }

    /// Something changed (the camera's addresses): look again now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn set_progress(&self, sentence: Option<String>) {
        *self.progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = sentence;
    }

    /// Enrolls and renews for as long as the camera runs.
    pub async fn run(self: Arc<Self>) {
        loop {
            let (settings, not_before) = {
                let record = self.record();
                (record.settings.clone(), record.not_before_unix)
            };
            let Some(settings) = settings else {
                self.wake.notified().await;
                continue;
            };
            let installed = self.host.installed();
            let names = self.host.names();
            match schedule::due(now_unix(), installed.as_ref(), &names, not_before, renewal_margin(&settings)) {
                Due::Now(reason) => self.attempt(&settings, &reason, &names).await,
                Due::At(t) => {
                    let wait = Duration::from_secs(t.saturating_sub(now_unix()).max(1)).min(MAX_SLEEP);
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = self.wake.notified() => {}
                    }
                }
            }
        }
    }

    async fn attempt(&self, settings: &Settings, reason: &Reason, names: &[SanName]) {
        *self.working.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        self.set_progress(Some(format!(
            "Enrolling with {} at {} because {reason}.",
            settings.protocol(),
            settings.url()
        )));
        let (account_url, pinned) = {
            let record = self.record();
            (record.account_url.clone(), record.scep_ca_sha256.clone())
        };
        let progress = |s: String| self.set_progress(Some(s));
        let host = StillWanted { enrollment: self, digest: settings.digest() };
        let outcome = match settings {
            Settings::Acme(acme) => {
                acme::enroll(acme, names, &self.account_key_path, account_url, &host, &progress).await
            }
            Settings::Scep(scep) => scep::enroll(scep, names, pinned, &host, &progress).await,
        };
        let now = now_unix();
        let event = {
            let mut record = self.record();
            // Settings changed or were removed while this ran: what it learnt no longer applies.
            let current = record.settings.as_ref().map(Settings::digest) == Some(settings.digest());
            match outcome {
                Ok(done) => {
                    if current {
                        record.account_url = done.account_url.or(record.account_url.take());
                        record.scep_ca_sha256 = done.scep_ca.or(record.scep_ca_sha256.take());
                    }
                    record.failures = 0;
                    record.not_before_unix = 0;
                    let message = format!(
                        "The {} server issued a certificate {} for {} (valid until {}); it is served.",
                        settings.protocol(),
                        done.how,
                        done.installed.names.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                        rfc3339(done.installed.not_after_unix)
                    );
                    record.last_attempt = Some(Attempt { at_unix: now, ok: true, message: message.clone() });
                    (EventKind::EnrollmentSucceeded, message)
                }
                Err(failure) => {
                    let wait = schedule::backoff(record.failures.saturating_add(1), failure.retry_after);
                    // New settings start at once: a failure under the old ones is no reason to wait.
                    if current {
                        record.failures = record.failures.saturating_add(1);
                        record.not_before_unix = now + wait.as_secs();
                    }
                    let message = format!(
                        "Enrollment with {} failed: {}. The certificate in service is unchanged; the camera tries again in {}.",
                        settings.protocol(),
                        failure.sentence,
                        human(wait)
                    );
                    record.last_attempt = Some(Attempt { at_unix: now, ok: false, message: message.clone() });
                    (EventKind::EnrollmentFailed, message)
                }
            }
        };
        if let Err(e) = self.save() {
            self.host.event(
                EventKind::EnrollmentFailed,
                None,
                format!("The enrollment record could not be stored: {e}."),
            );
        }
        self.host.event(event.0, None, event.1);
        self.set_progress(None);
        *self.working.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = false;
    }
}

/// A successful enrollment.
struct Done {
    installed: Installed,
    account_url: Option<String>,
    /// SCEP: the server's CA fingerprint (pinned when no trust anchor is configured).
    scep_ca: Option<String>,
    /// How it was asked for, for the record (e.g. "by a renewal request (RenewalReq)").
    how: &'static str,
}

/// A failed enrollment: a sentence, and how long the server asked to wait.
struct Failure {
    sentence: String,
    retry_after: Option<Duration>,
}

impl Failure {
    fn new(sentence: impl Into<String>) -> Self {
        Self { sentence: sentence.into(), retry_after: None }
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} seconds"),
        120..=7199 => format!("{} minutes", s / 60),
        _ => format!("{} hours", s / 3600),
    }
}

fn rfc3339(unix: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(unix).unwrap_or(i64::MAX))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// A certificate request and its key for `names`, made on the camera (blocking: RSA key
/// generation takes seconds on a camera's core).
async fn request_for(
    names: &[SanName],
    key_type: settings::EnrollKeyType,
    common_name: Option<String>,
) -> Result<camera_pki::PendingCsr, Failure> {
    let request = camera_pki::CsrRequest {
        subject: camera_pki::CsrSubject { common_name, ..Default::default() },
        subject_alt_names: names.iter().map(ToString::to_string).collect(),
        key_type: key_type.pki(),
    };
    tokio::task::spawn_blocking(move || camera_pki::create_csr(&request))
        .await
        .map_err(|_| Failure::new("the key could not be generated"))?
        .map_err(|e| Failure::new(format!("the certificate request could not be made: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host that counts what it installs.
    struct Counting(std::sync::atomic::AtomicUsize);

    impl camera_acme::ChallengeResponder for Counting {
        fn publish(&self, _: &camera_acme::ChallengeAnswer) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            Ok(())
        }
        fn withdraw(&self, _: &camera_acme::ChallengeAnswer) {}
    }

    impl Host for Counting {
        fn names(&self) -> Vec<SanName> {
            Vec::new()
        }
        fn installed(&self) -> Option<Installed> {
            None
        }
        fn install(&self, _: &[Vec<u8>], _: &[u8], _: &'static str) -> Result<Installed, String> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(Installed { enrolled: true, not_before_unix: 0, not_after_unix: 1, names: Vec::new() })
        }
        fn responder(&self) -> &dyn camera_acme::ChallengeResponder {
            self
        }
        fn enrolled_credentials(&self, _: &str) -> Option<(Vec<u8>, Zeroizing<Vec<u8>>)> {
            None
        }
        fn event(&self, _: EventKind, _: Option<IpAddr>, _: String) {}
    }

    /// A failure under settings replaced while the attempt ran sets no backoff: the new settings
    /// start at once (before, a PUT made during a failing attempt waited a minute).
    #[test]
    fn a_failure_under_replaced_settings_does_not_delay_the_new_ones() {
        let dir = std::env::temp_dir().join(format!("camera-enroll-replaced-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let scep = |url: &str| {
            Settings::from_json(serde_json::json!({"protocol": "scep", "url": url, "challenge": "one-time"})).unwrap()
        };
        let (old, new) = (scep("http://127.0.0.1:9/old"), scep("http://127.0.0.1:9/new"));
        let host = Arc::new(Counting(std::sync::atomic::AtomicUsize::new(0)));
        let (enrollment, _) = Enrollment::load(&Layout::new(&dir, &dir), Some(new), host);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // The attempt under the old settings fails (nothing listens on port 9).
        runtime.block_on(enrollment.attempt(&old, &Reason::NotEnrolled, &[]));
        let record = enrollment.record();
        assert!(record.last_attempt.as_ref().is_some_and(|a| !a.ok), "the attempt failed");
        assert_eq!((record.failures, record.not_before_unix), (0, 0), "the new settings wait for nothing");
        drop(record);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// An attempt that finishes after a stop (DELETE, or a restore, which stops first) installs
    /// nothing: before, its certificate was installed after the restore had removed the last one.
    #[test]
    fn an_attempt_finishing_after_a_stop_installs_nothing() {
        let dir = std::env::temp_dir().join(format!("camera-enroll-stop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let host = Arc::new(Counting(std::sync::atomic::AtomicUsize::new(0)));
        let settings = Settings::from_json(serde_json::json!({
            "protocol": "scep", "url": "http://ca.test/scep", "challenge": "one-time"
        }))
        .unwrap();
        let (enrollment, _) = Enrollment::load(&Layout::new(&dir, &dir), Some(settings.clone()), host.clone());
        let attempt = StillWanted { enrollment: &enrollment, digest: settings.digest() };
        assert!(attempt.install(&[], &[], "scep").is_ok(), "installs while it is still wanted");
        assert!(enrollment.stop(None).unwrap());
        let refused = attempt.install(&[], &[], "scep").unwrap_err();
        assert!(refused.contains("stopped or changed"), "{refused}");
        assert_eq!(host.0.load(std::sync::atomic::Ordering::SeqCst), 1, "nothing installed after the stop");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A damaged record is reported without quoting it: its secrets never reach the log.
    #[test]
    fn a_damaged_record_is_reported_without_its_secrets() {
        let secret = "hunter2-scep-challenge";
        for damaged in [
            format!(
                r#"{{"settings": {{"protocol": "scep", "url": "http://ca", "challenge": "x", "key_type": "{secret}"}}}}"#
            ),
            format!(r#"{{"settings": {{"protocol": "{secret}"}}}}"#),
            format!(r#"{{"settings": {{"protocol": "acme", "url": "{secret}"#),
        ] {
            // serde's own message quotes the value (what the log said before).
            let Err(serde_says) = serde_json::from_slice::<Record>(damaged.as_bytes()) else { panic!("accepted") };
            assert!(serde_says.to_string().contains(secret) || !damaged.ends_with('}'), "{serde_says}");
            let Err(why) = parse_record(damaged.as_bytes()) else { panic!("accepted") };
            assert!(!why.contains(secret), "{why}");
            assert!(why.contains("line 1"), "{why}");
        }
    }
}
