//! Automatic enrollment and renewal from the site's CA: ACME (RFC 8555 + RFC 8738 IP identifiers,
//! over https only) or SCEP (RFC 8894). Pointed once at the CA, the camera gets a certificate for
//! its current names and renews it at its own point 60 % to 75 % into its lifetime (or a configured
//! margin before expiry), or, when an ACME CA offers renewal information (RFC 9773), at a random
//! point of the window the CA suggests for the certificate (drawn once per window, kept in the
//! record, asked again when the CA's `Retry-After` says). It enrolls because something changed,
//! never in a loop: see [`schedule`].
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
mod attempt;
mod host;
mod record;
mod scep;
pub mod schedule;
pub mod settings;

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camera_events::EventKind;
use camera_pki::SanName;
use camera_state::{read_optional, write_atomic, Layout, SECRET_MODE};
use serde::Serialize;
use tokio::sync::Notify;
use zeroize::Zeroizing;

pub use host::{Host, InstallError};
pub use record::{LastAttempt, RecordError};
pub use schedule::{Due, Installed, Reason};
pub use settings::{Protocol, PublicSettings, Settings, SettingsError};

use attempt::{judge, list, rfc3339, Attempt, FailureKind};
use record::{parse_record, Record};

/// The longest the loop sleeps before looking again (the wall clock may jump).
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// `PUT /api/v1/enrollment` enrolls at once: this many in a row, then one per [`PUT_INTERVAL`].
const PUT_BURST: u64 = 5;
const PUT_INTERVAL: Duration = Duration::from_secs(60);

/// The configured renewal margin (`renew_before_days`), if any.
fn renewal_margin(settings: &Settings) -> Option<Duration> {
    settings.renew_before_days().map(|days| Duration::from_secs(u64::from(days) * 86_400))
}

/// The state `GET /api/v1/enrollment` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// `off` (nothing configured), `waiting` (enrolled, or waiting to retry), `working`,
    /// `stopped` (configured, but the camera stopped: see `stopped`).
    pub state: &'static str,
    pub settings: Option<PublicSettings>,
    /// What the camera is doing right now, in a sentence (while working).
    pub progress: Option<String>,
    pub last_attempt: Option<LastAttempt>,
    /// Consecutive failures since the last success.
    pub failures: u32,
    /// When the camera will next try (a retry, or the renewal), seconds since the epoch.
    pub next_attempt_unix: Option<u64>,
    /// The enrolled certificate in service, if any.
    pub certificate: Option<EnrolledCertificate>,
    /// SCEP: the fingerprint of the server's CA, as the camera saw it at the first enrollment
    /// (compare it with the CA's, out of band, when no trust anchor is configured).
    pub scep_ca_sha256: Option<String>,
    /// Why the camera stopped enrolling by itself, in a sentence (until configured again).
    pub stopped: Option<String>,
}

/// The enrolled certificate in service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnrolledCertificate {
    pub not_before_unix: u64,
    pub not_after_unix: u64,
    pub renew_at_unix: u64,
    /// Where `renew_at_unix` comes from: `ari` (the CA's suggested window, RFC 9773) or
    /// `schedule` (the camera's own point of its window).
    pub renewal_source: &'static str,
    pub names: Vec<String>,
    /// When the camera's own schedule would renew it (the same as `renew_at_unix` without renewal
    /// information). Not in the API: the expiry warning waits for the later of the two, so a CA
    /// that asks for renewal now (a window that is over) or later than the camera would does not
    /// set off a warning the renewal is about to make moot.
    #[serde(skip)]
    pub scheduled_renew_at_unix: u64,
}

/// Why a change to the enrollment was refused.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("{0}")]
    Settings(#[from] SettingsError),
    #[error("the enrollment settings could not be stored: {0}")]
    Storage(#[source] io::Error),
    #[error("enrollment was started {PUT_BURST} times in a row; wait {} seconds before starting it again", .retry_after.as_secs())]
    TooFrequent { retry_after: Duration },
}

use camera_state::now_unix;

/// Enrollment for one camera.
pub struct Enrollment {
    path: PathBuf,
    account_key_path: PathBuf,
    record: Mutex<Record>,
    progress: Mutex<Option<String>>,
    working: AtomicBool,
    /// The installer asked for an enrollment now.
    asked: AtomicBool,
    /// The first attempt after a start or a renumbering waits until then (seconds since the
    /// epoch; 0: nothing held), for the state shown.
    held_until: AtomicU64,
    /// Where the ACME CA answered renewal information questions, for its directory URL: asked
    /// there directly next time (one request, not two; a fleet asks every few minutes), forgotten
    /// when an answer fails, so the directory is read again.
    renewal_info_url: Mutex<Option<(String, String)>>,
    /// The `PUT` limiter (a budget like the unscheduled enrollments', in memory).
    puts: Mutex<schedule::Budget>,
    wake: Notify,
    host: Arc<dyn Host>,
}

impl std::fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrollment").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Enrollment {
    /// Loads the stored record; adopts the configuration file's `enrollment` section (raw JSON)
    /// when it is new or changed since it was last adopted. Settings this version refuses (stored
    /// or in the file) turn enrollment off with the reason in the state and an event. A damaged
    /// record is set aside with a warning in the returned list. Never fatal: the camera must serve.
    pub fn load(layout: &Layout, from_config: Option<serde_json::Value>, host: Arc<dyn Host>) -> (Self, Vec<String>) {
        Self::load_at(layout.enrollment(), layout.acme_account_key(), from_config, host)
    }

    /// [`Enrollment::load`] with its record at `path`: each certificate role that enrolls has
    /// its own record (one ACME account key serves them all).
    pub fn load_at(
        path: PathBuf,
        account_key_path: PathBuf,
        from_config: Option<serde_json::Value>,
        host: Arc<dyn Host>,
    ) -> (Self, Vec<String>) {
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
        let mut turned_off = None;
        if let Some(Err(e)) = record.settings.as_ref().map(Settings::check) {
            turned_off = Some(format!("the stored enrollment settings are no longer accepted ({e})"));
        }
        if let Some(section) = from_config {
            match Settings::from_json(section.clone()) {
                Ok(settings) => {
                    let digest = settings.digest();
                    if record.adopted_config.as_deref() != Some(digest.as_str()) {
                        let same_server = record.settings.as_ref().is_some_and(|s| s.url() == settings.url());
                        record.start_over(same_server);
                        record.settings = Some(settings);
                        record.adopted_config = Some(digest);
                        turned_off = None;
                        changed = true;
                    }
                }
                Err(e) => {
                    let digest = settings::digest_json(&section);
                    if record.adopted_config.as_deref() != Some(digest.as_str()) {
                        record.adopted_config = Some(digest);
                        turned_off = Some(format!("the configuration file's enrollment section is refused ({e})"));
                    }
                }
            }
        }
        if let Some(why) = turned_off {
            record.settings = None;
            let sentence = format!("Enrollment was turned off: {why}. Configure it again to resume.");
            warnings.push(sentence.clone());
            host.event(EventKind::EnrollmentStopped, None, sentence.clone());
            record.stopped = Some(sentence);
            changed = true;
        }
        let this = Self {
            path,
            account_key_path,
            record: Mutex::new(record),
            progress: Mutex::new(None),
            working: AtomicBool::new(false),
            asked: AtomicBool::new(false),
            held_until: AtomicU64::new(0),
            renewal_info_url: Mutex::new(None),
            puts: Mutex::default(),
            wake: Notify::new(),
            host,
        };
        // Written only when something changed: no flash write per start.
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

    /// The certificate in service as the schedule sees it: with the spread off (a measured
    /// baseline) every certificate renews at its window's start.
    fn installed(&self) -> Option<Installed> {
        let spread = self.record().settings.as_ref().is_none_or(Settings::spread);
        self.host.installed().map(|i| if spread { i } else { Installed { spread: 0, ..i } })
    }

    /// A random draw, or with the spread off the full backoff and no delay.
    fn jitter(&self, settings: &Settings) -> u16 {
        if settings.spread() {
            random_u16()
        } else {
            u16::MAX
        }
    }

    /// What the schedule decides from, now.
    fn due(&self, record: &Record, installed: Option<&Installed>, names: &[SanName]) -> Due {
        let requested = record.requested();
        schedule::due(&schedule::Inputs {
            now: now_unix(),
            installed,
            wanted: names,
            requested: requested.as_deref(),
            unusable: record.unusable.as_deref(),
            asked: self.asked.load(Ordering::SeqCst),
            halted: record.stopped.is_some(),
            not_before_unix: record.not_before_unix,
            margin: record.settings.as_ref().and_then(renewal_margin),
            ari_renew_at: installed.and_then(|i| ari_renew_at(record, i)),
            budget: record.budget,
        })
    }

    /// The state for `GET /api/v1/enrollment`.
    pub fn status(&self) -> Status {
        let record = self.record().clone();
        let installed = self.installed().filter(|i| i.enrolled);
        let working = self.working.load(Ordering::SeqCst);
        let margin = record.settings.as_ref().and_then(renewal_margin);
        let held_until = self.held_until.load(Ordering::SeqCst);
        let next = match record.settings {
            Some(_) => match self.due(&record, installed.as_ref(), &self.host.names()) {
                Due::At(t) => Some(t),
                Due::Now(Reason::Requested) => Some(now_unix()),
                Due::Now(_) => Some(now_unix().max(held_until)),
                Due::Never => None,
            },
            None => None,
        };
        Status {
            state: match (&record.settings, working, &record.stopped) {
                (None, _, _) => "off",
                (Some(_), true, _) => "working",
                (Some(_), false, Some(_)) => "stopped",
                (Some(_), false, None) => "waiting",
            },
            settings: record.settings.as_ref().map(Settings::public_view),
            progress: self.progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
            last_attempt: record.last_attempt.clone(),
            failures: record.failures,
            next_attempt_unix: next,
            scep_ca_sha256: record.scep_ca_sha256.clone(),
            stopped: record.stopped.clone(),
            certificate: installed.map(|i| {
                let (ari, scheduled) = (ari_renew_at(&record, &i), schedule::renew_at(&i, margin));
                EnrolledCertificate {
                    renew_at_unix: ari.unwrap_or(scheduled),
                    renewal_source: if ari.is_some() { "ari" } else { "schedule" },
                    scheduled_renew_at_unix: scheduled,
                    not_before_unix: i.not_before_unix,
                    not_after_unix: i.not_after_unix,
                    names: i.names.iter().map(ToString::to_string).collect(),
                }
            }),
        }
    }

    /// `PUT /api/v1/enrollment`: stores the settings and enrolls at once, even when an enrolled
    /// certificate is in service (the installer may be moving the camera to another CA).
    /// Rate-limited: a script repeating it cannot make the camera flood the CA. `by`: the client's
    /// address, for the event log.
    pub fn configure(&self, settings: Settings, by: Option<IpAddr>) -> Result<Status, EnrollError> {
        settings.check()?;
        {
            let now = now_unix();
            let mut puts = self.puts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let ready = puts.ready_at_with(PUT_BURST, PUT_INTERVAL);
            if ready > now {
                return Err(EnrollError::TooFrequent { retry_after: Duration::from_secs(ready - now) });
            }
            puts.spend_with(now, PUT_INTERVAL);
        }
        let description = format!("Enrollment with {} at {} was configured.", settings.protocol(), settings.url());
        {
            let mut record = self.record();
            let same_server = record.settings.as_ref().is_some_and(|s| s.url() == settings.url());
            record.start_over(same_server);
            record.settings = Some(settings);
        }
        self.save().map_err(EnrollError::Storage)?;
        self.host.event(EventKind::EnrollmentConfigured, by, description);
        self.asked.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        Ok(self.status())
    }

    /// `DELETE /api/v1/enrollment` (and restore): stops; the certificate in service stays until a
    /// restore. Returns whether enrollment was on. `by`: the client's address, for the event log.
    pub fn stop(&self, by: Option<IpAddr>) -> Result<bool, EnrollError> {
        let was_on = {
            let mut record = self.record();
            record.stopped = None;
            record.settings.take().is_some()
        };
        if was_on {
            self.asked.store(false, Ordering::SeqCst);
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

    /// Sleeps `wait` (at most [`MAX_SLEEP`]: the wall clock may jump) or until woken.
    async fn sleep_or_wake(&self, wait: Duration) {
        tokio::select! {
            () = tokio::time::sleep(wait.min(MAX_SLEEP)) => {}
            () = self.wake.notified() => {}
        }
    }

    /// Enrolls and renews for as long as the camera runs.
    pub async fn run(self: Arc<Self>) {
        let started = Instant::now();
        let mut settling = schedule::Settling::default();
        let mut hold = Hold::default();
        loop {
            let record = self.record().clone();
            let Some(settings) = record.settings.clone() else {
                settling.reset();
                self.wake.notified().await;
                continue;
            };
            let installed = self.installed();
            self.refresh_renewal_info(&settings, installed.as_ref()).await;
            // Read again after that wait: a PUT may have replaced the settings meanwhile, and an
            // attempt must run with the settings the record holds now.
            let record = self.record().clone();
            let Some(settings) = record.settings.clone() else { continue };
            let names = self.host.names();
            match self.due(&record, installed.as_ref(), &names) {
                Due::Now(reason) => {
                    // A burst of address changes is one change.
                    if matches!(reason, Reason::NamesChanged { .. }) {
                        let now_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                        if let Err(wait) = settling.settled(&names, now_ms) {
                            self.sleep_or_wake(wait).await;
                            continue;
                        }
                    }
                    if let Some(wait) = hold.wait(&reason, settings.spread()) {
                        self.held_until.store(now_unix() + wait.as_secs(), Ordering::SeqCst);
                        self.sleep_or_wake(wait).await;
                        continue;
                    }
                    hold.went();
                    self.held_until.store(0, Ordering::SeqCst);
                    settling.reset();
                    self.attempt(&settings, &reason, &names).await;
                }
                Due::At(t) => {
                    hold.scheduled();
                    // The CA's renewal information is asked again when its Retry-After says.
                    let recheck = record.ari.as_ref().map_or(u64::MAX, |a| a.recheck_at_unix);
                    let t = t.min(recheck);
                    self.sleep_or_wake(Duration::from_secs(t.saturating_sub(now_unix()).max(1))).await;
                }
                Due::Never => {
                    hold.scheduled();
                    self.wake.notified().await;
                }
            }
        }
    }

    /// Asks the CA for its renewal window (RFC 9773) for the enrolled certificate in service,
    /// unless it was asked about this certificate and it is not time to ask again. ACME only.
    async fn refresh_renewal_info(&self, settings: &Settings, installed: Option<&Installed>) {
        let Settings::Acme(acme) = settings else { return };
        let Some(installed) = installed.filter(|i| i.enrolled) else { return };
        let now = now_unix();
        if self.record().ari.as_ref().is_some_and(|a| a.is_for(installed) && now < a.recheck_at_unix) {
            return;
        }
        let Some((leaf, _key)) = self.host.enrolled_credentials(Protocol::Acme) else { return };
        let answer = match camera_acme::cert_id(&leaf) {
            Ok(cert_id) => {
                let known = self.known_renewal_info_url(&acme.url);
                let answer = acme::renewal_info(acme, &cert_id, known).await;
                *self.renewal_info_url.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = match &answer {
                    Ok((_, Some(url))) => Some((acme.url.clone(), url.clone())),
                    _ => None,
                };
                (cert_id, answer.map(|(info, _)| info))
            }
            // No Authority Key Identifier: no renewal information; the schedule applies.
            Err(_) => (String::new(), Ok(None)),
        };
        // Settings changed or were removed while the CA was asked: its answer no longer applies.
        if self.record().settings.as_ref().map(Settings::digest) != Some(settings.digest()) {
            return;
        }
        let draw = if settings.spread() { random_u16() } else { 0 };
        self.apply_renewal_info(installed, answer.0, answer.1, now_unix(), draw, self.jitter(settings));
    }

    /// Where the CA at `directory_url` answered renewal information questions last time.
    fn known_renewal_info_url(&self, directory_url: &str) -> Option<String> {
        let known = self.renewal_info_url.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        known.as_ref().filter(|(directory, _)| directory == directory_url).map(|(_, url)| url.clone())
    }

    /// Keeps what the CA said: a new window gets its point drawn (`draw`), a known one keeps it;
    /// no answer keeps the window known for this certificate, if any. A window that is over renews
    /// at once, once per certificate; for a certificate that replaced one whose window was over,
    /// it is a failure waiting its backoff (`jitter`). Written only when something changed.
    fn apply_renewal_info(
        &self,
        installed: &Installed,
        cert_id: String,
        answer: Result<Option<camera_acme::RenewalInfo>, attempt::Cause>,
        now: u64,
        draw: u16,
        jitter: u16,
    ) {
        let mut event = None;
        let changed = {
            let mut record = self.record();
            let previous = record.ari.take().filter(|a| a.is_for(installed) && a.cert_id == cert_id);
            let known = previous.as_ref().and_then(|p| p.window);
            let mut unanswered = 0;
            let (window, explanation_url, recheck) = match answer {
                Ok(Some(info)) => {
                    let kept = known.filter(|w| (w.start_unix, w.end_unix) == (info.start_unix, info.end_unix));
                    let window = kept.unwrap_or(schedule::AriWindow {
                        start_unix: info.start_unix,
                        end_unix: info.end_unix,
                        draw,
                    });
                    (Some(window), info.explanation_url, camera_acme::ari::recheck_after(Some(info.recheck_after)))
                }
                Ok(None) => (None, None, camera_acme::ari::DEFAULT_RECHECK),
                Err(e) => {
                    unanswered = previous.as_ref().map_or(0, |p| p.unanswered).saturating_add(1);
                    let retry_after = match &e {
                        attempt::Cause::Acme(e) => e.retry_after(),
                        _ => None,
                    };
                    (
                        known,
                        previous.as_ref().and_then(|p| p.explanation_url.clone()),
                        camera_acme::ari::recheck_after_failure(retry_after, unanswered),
                    )
                }
            };
            let mut changed =
                previous.as_ref().map(|p| (p.window, &p.explanation_url)) != Some((window, &explanation_url));
            match window {
                Some(w) if w.end_unix <= now && !cert_id.is_empty() => match record.past_windows.over(&cert_id) {
                    schedule::PastWindow::RenewNow => changed = true,
                    schedule::PastWindow::AlreadySeen => {}
                    schedule::PastWindow::Failure { failures } => {
                        changed = true;
                        let wait = schedule::retry_wait(failures, None, now, Some(installed), jitter);
                        record.failures = record.failures.saturating_add(1);
                        record.not_before_unix = record.not_before_unix.max(now + wait.as_secs());
                        let message = format!(
                            "The ACME server's renewal window for the certificate it issued at once is over already, too; the camera renews it in {}.",
                            human(wait)
                        );
                        record.last_attempt = Some(LastAttempt { at_unix: now, ok: false, message: message.clone() });
                        event = Some(message);
                    }
                },
                Some(_) if record.past_windows != schedule::PastWindows::default() => {
                    record.past_windows.ahead();
                    changed = true;
                }
                _ => {}
            }
            record.ari = Some(record::AriRecord {
                cert_id,
                not_before_unix: installed.not_before_unix,
                not_after_unix: installed.not_after_unix,
                spread: installed.spread,
                window,
                explanation_url,
                recheck_at_unix: now.saturating_add(schedule::recheck_wait(recheck, jitter).as_secs()),
                unanswered,
            });
            changed
        };
        if changed {
            if let Err(e) = self.save() {
                self.host.event(
                    EventKind::EnrollmentFailed,
                    None,
                    format!("The enrollment record could not be stored: {e}."),
                );
            }
        }
        if let Some(message) = event {
            self.host.event(EventKind::EnrollmentFailed, None, message);
        }
    }

    async fn attempt(&self, settings: &Settings, reason: &Reason, names: &[SanName]) {
        self.working.store(true, Ordering::SeqCst);
        self.asked.store(false, Ordering::SeqCst);
        self.set_progress(Some(format!(
            "Enrolling with {} at {} because {reason}.",
            settings.protocol(),
            settings.url()
        )));
        let in_service = self.installed();
        let (account_url, pin, replaces) = {
            let mut record = self.record();
            if reason.is_unscheduled() {
                record.budget.spend(now_unix());
            }
            // The certificate in service came from this CA when its renewal information covers it.
            let replaces = record
                .ari
                .as_ref()
                .filter(|a| a.window.is_some() && in_service.as_ref().is_some_and(|i| a.is_for(i)))
                .map(|a| a.cert_id.clone());
            (
                record.account_url.clone(),
                scep::Pin { ca_pem: record.scep_ca_pem.clone(), sha256: record.scep_ca_sha256.clone() },
                replaces,
            )
        };
        let progress = |s: String| self.set_progress(Some(s));
        let attempt =
            Attempt { record: &self.record, host: self.host.as_ref(), digest: settings.digest(), asked: names, reason };
        let outcome = match settings {
            Settings::Acme(acme) => {
                acme::enroll(acme, names, &self.account_key_path, account_url, replaces, &attempt, &progress).await
            }
            Settings::Scep(scep) => scep::enroll(scep, names, &pin, &attempt, &progress).await,
        };
        let now = now_unix();
        let margin = renewal_margin(settings);
        let in_service = self.installed();
        let (kind, message) = {
            let mut record = self.record();
            // Settings changed or were removed while this ran: what it learnt no longer applies.
            let current = record.settings.as_ref().map(Settings::digest) == Some(settings.digest());
            let outcome = outcome.and_then(|done| judge(done, names, now, margin));
            let learnt = match &outcome {
                Ok(done) => Some(done),
                Err(failure) => failure.done.as_deref(),
            };
            if let (true, Some(done)) = (current, learnt) {
                record.account_url = done.account_url.clone().or(record.account_url.take());
                if let Some(pinned) = &done.scep_ca {
                    record.scep_ca_sha256.get_or_insert_with(|| pinned.sha256.clone());
                    record.scep_ca_pem = Some(pinned.pem.clone());
                }
            }
            match outcome {
                Ok(done) => {
                    record.failures = 0;
                    record.not_before_unix = 0;
                    record.unusable = None;
                    record.requested_names = Some(names.iter().map(ToString::to_string).collect());
                    let message = format!(
                        "The {} server issued a certificate {} for {} (valid until {}); it is served.",
                        settings.protocol(),
                        done.how,
                        list(&done.installed.names),
                        rfc3339(done.installed.not_after_unix)
                    );
                    record.last_attempt = Some(LastAttempt { at_unix: now, ok: true, message: message.clone() });
                    (EventKind::EnrollmentSucceeded, message)
                }
                Err(failure) => {
                    let failures = record.failures.saturating_add(1);
                    let wait = schedule::retry_wait(
                        failures,
                        failure.retry_after,
                        now,
                        in_service.as_ref(),
                        self.jitter(settings),
                    );
                    let served = if failure.done.is_some() {
                        "The certificate is served all the same: it names at least as many of the camera's names as the one before"
                    } else {
                        "The certificate in service is unchanged"
                    };
                    let (kind, message) = match failure.kind() {
                        FailureKind::Untrusted => (
                            EventKind::EnrollmentUntrusted,
                            format!(
                                "Enrollment with {} stopped: {}. {served}. Nothing more is sent to this server until enrollment is configured again.",
                                settings.protocol(),
                                failure.cause
                            ),
                        ),
                        _ => (
                            EventKind::EnrollmentFailed,
                            format!(
                                "Enrollment with {} failed: {}. {served}; the camera tries again in {}.",
                                settings.protocol(),
                                failure.cause,
                                human(wait)
                            ),
                        ),
                    };
                    // New settings start at once: a failure under the old ones is no reason to wait.
                    if current {
                        record.failures = failures;
                        record.not_before_unix = now + wait.as_secs();
                        match failure.kind() {
                            FailureKind::Transient => {}
                            FailureKind::Unusable => {
                                record.unusable = Some(failure.cause.to_string());
                                record.requested_names = Some(names.iter().map(ToString::to_string).collect());
                            }
                            FailureKind::Untrusted => record.stopped = Some(message.clone()),
                        }
                    }
                    record.last_attempt = Some(LastAttempt { at_unix: now, ok: false, message: message.clone() });
                    (kind, message)
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
        self.host.event(kind, None, message);
        self.set_progress(None);
        self.working.store(false, Ordering::SeqCst);
    }
}

/// The renewal time the CA's window gives the enrolled certificate in service, if the record has
/// one for it.
fn ari_renew_at(record: &Record, installed: &Installed) -> Option<u64> {
    let ari = record.ari.as_ref().filter(|a| a.is_for(installed))?;
    Some(schedule::ari_renew_at(ari.window.as_ref()?, installed))
}

/// A uniformly random number for a retry's jitter; 0 (the shortest wait, still at least half
/// the backoff) if the system's random source fails.
fn random_u16() -> u16 {
    let mut bytes = [0u8; 2];
    match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes) {
        Ok(()) => u16::from_be_bytes(bytes),
        Err(_) => 0,
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

/// When the next unscheduled attempt may go. The first one after a start (a site's power comes
/// back, or a configuration file reaches a fleet) and the first after the camera's addresses were
/// all replaced (a site renumbered) wait a random part of `START_SPREAD`, drawn once, so a fleet
/// does not reach its CA in one second. The installer's PUT never waits, nor does anything with
/// the spread turned off.
#[derive(Debug)]
struct Hold {
    /// A start whose first attempt has not gone yet (nor found nothing due).
    starting: bool,
    until: Option<Instant>,
}

impl Default for Hold {
    fn default() -> Self {
        Self { starting: true, until: None }
    }
}

impl Hold {
    /// How long an attempt for `reason` must still wait; `None`: it may go now.
    fn wait(&mut self, reason: &Reason, spread: bool) -> Option<Duration> {
        if *reason == Reason::Requested || !spread {
            return None;
        }
        let renumbered =
            matches!(reason, Reason::NamesChanged { added, removed } if !added.is_empty() && !removed.is_empty());
        if self.until.is_none() && (self.starting || renumbered) {
            self.until = Some(Instant::now() + schedule::spread_delay(random_u16(), schedule::START_SPREAD));
        }
        self.until.and_then(|until| until.checked_duration_since(Instant::now()))
    }

    /// The attempt went.
    fn went(&mut self) {
        (self.starting, self.until) = (false, None);
    }

    /// Nothing was due at once: the start is over (a scheduled renewal keeps its own time).
    fn scheduled(&mut self) {
        self.starting = false;
    }
}

/// The one `Host` the unit tests use: it counts installs, may have a certificate in service and
/// has its listeners on given ports.
#[cfg(test)]
pub(crate) struct TestHost {
    pub installs: std::sync::atomic::AtomicUsize,
    /// The enrolled certificate in service; while there is one, installs are refused.
    pub serving: Mutex<Option<Installed>>,
    /// The http-01 and tls-alpn-01 ports (`None`: plain HTTP off).
    pub ports: (Option<u16>, u16),
}

#[cfg(test)]
impl TestHost {
    /// Nothing in service; installs succeed and are counted.
    pub fn counting() -> Self {
        Self { installs: 0.into(), serving: Mutex::new(None), ports: (Some(80), 443) }
    }

    /// `installed` in service.
    pub fn serving(installed: Installed) -> Self {
        Self { serving: Mutex::new(Some(installed)), ..Self::counting() }
    }

    /// Listeners on these ports.
    pub fn ports(http: Option<u16>, https: u16) -> Self {
        Self { ports: (http, https), ..Self::counting() }
    }
}

#[cfg(test)]
impl camera_acme::ChallengeResponder for TestHost {
    fn publish(&self, _: &camera_acme::ChallengeAnswer) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(())
    }
    fn withdraw(&self, _: &camera_acme::ChallengeAnswer) {}
}

#[cfg(test)]
impl Host for TestHost {
    fn names(&self) -> Vec<SanName> {
        Vec::new()
    }
    fn device_name(&self) -> String {
        "test-camera".into()
    }
    fn installed(&self) -> Option<Installed> {
        self.serving.lock().unwrap().clone()
    }
    fn install(&self, _: &[Vec<u8>], _: &[u8], _: Protocol) -> Result<Installed, InstallError> {
        if self.serving.lock().unwrap().is_some() {
            return Err(InstallError::Storage(io::ErrorKind::Unsupported.into()));
        }
        self.installs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Installed { enrolled: true, not_before_unix: 0, not_after_unix: 1, names: Vec::new(), spread: 0 })
    }
    fn responder(&self) -> &dyn camera_acme::ChallengeResponder {
        self
    }
    fn challenge_port(&self, challenge: camera_acme::ChallengeType) -> Option<u16> {
        match challenge {
            camera_acme::ChallengeType::Http01 => self.ports.0,
            camera_acme::ChallengeType::TlsAlpn01 => Some(self.ports.1),
        }
    }
    fn enrolled_credentials(&self, _: Protocol) -> Option<(Vec<u8>, Zeroizing<Vec<u8>>)> {
        None
    }
    fn event(&self, _: EventKind, _: Option<IpAddr>, _: String) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start spread: the first attempt after a start waits (once drawn, the same time), a PUT
    /// and a camera with the spread off never wait, a later renewal does not wait, a renumbering
    /// (names added and removed) waits again, a single added address does not.
    #[test]
    fn a_start_and_a_renumbering_wait_a_put_never_does() {
        let ip = |s: &str| SanName::Ip(s.parse().unwrap());
        let mut hold = Hold::default();
        assert_eq!(hold.wait(&Reason::Requested, true), None);
        assert_eq!(hold.wait(&Reason::NotEnrolled, false), None);
        let first = hold.wait(&Reason::NotEnrolled, true);
        assert!(first.is_some_and(|w| w <= schedule::START_SPREAD), "{first:?}");
        let again = hold.wait(&Reason::Renewal, true);
        assert!(again.is_some_and(|w| w <= first.unwrap()), "the drawn time is kept: {first:?} then {again:?}");
        hold.went();
        assert_eq!(hold.wait(&Reason::Renewal, true), None);
        let added = Reason::NamesChanged { added: vec![ip("10.0.0.3")], removed: Vec::new() };
        assert_eq!(hold.wait(&added, true), None);
        let renumbered = Reason::NamesChanged { added: vec![ip("10.1.0.3")], removed: vec![ip("10.0.0.3")] };
        assert!(hold.wait(&renumbered, true).is_some_and(|w| w <= schedule::START_SPREAD));
        let mut scheduled = Hold::default();
        scheduled.scheduled();
        assert_eq!(scheduled.wait(&Reason::Renewal, true), None, "a start that found nothing due is over");
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
        let host = Arc::new(TestHost::counting());
        let (enrollment, _) =
            Enrollment::load(&Layout::new(&dir, &dir), Some(serde_json::to_value(&new).unwrap()), host);
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
        let host = Arc::new(TestHost::counting());
        let settings = Settings::from_json(serde_json::json!({
            "protocol": "scep", "url": "http://ca.test/scep", "challenge": "one-time"
        }))
        .unwrap();
        let (enrollment, _) =
            Enrollment::load(&Layout::new(&dir, &dir), Some(serde_json::to_value(&settings).unwrap()), host.clone());
        let attempt = Attempt {
            record: &enrollment.record,
            host: host.as_ref(),
            digest: settings.digest(),
            asked: &[],
            reason: &Reason::NotEnrolled,
        };
        assert!(attempt.install(&[], &[], Protocol::Scep).is_ok(), "installs while it is still wanted");
        assert!(enrollment.stop(None).unwrap());
        let Err(refused) = attempt.install(&[], &[], Protocol::Scep) else { panic!("installed after the stop") };
        assert!(refused.cause.to_string().contains("stopped or changed"), "{}", refused.cause);
        assert_eq!(host.installs.load(std::sync::atomic::Ordering::SeqCst), 1, "nothing installed after the stop");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn info(start: u64, end: u64, recheck: u64) -> Option<camera_acme::RenewalInfo> {
        Some(camera_acme::RenewalInfo {
            start_unix: start,
            end_unix: end,
            recheck_after: Duration::from_secs(recheck),
            explanation_url: None,
        })
    }

    /// The CA's window gives the renewal time (drawn once per window, kept when asked again, drawn
    /// anew when the window moves); without an answer the known window stays; without renewal
    /// information the schedule applies. A window that is over renews at once once, and the
    /// replacement's window over too is a failure with a backoff.
    #[test]
    fn renewal_information_sets_the_renewal_time_and_a_window_that_is_over_renews_once() {
        let dir = std::env::temp_dir().join(format!("camera-enroll-ari-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let settings = Settings::from_json(serde_json::json!({
            "protocol": "scep", "url": "http://ca.test/scep", "challenge": "one-time"
        }))
        .unwrap();
        // Times from now: the schedule reads the clock.
        let t = now_unix();
        let first =
            Installed { enrolled: true, not_before_unix: t, not_after_unix: t + 10_000, names: vec![], spread: 0 };
        let host = Arc::new(TestHost::serving(first.clone()));
        let (enrollment, _) =
            Enrollment::load(&Layout::new(&dir, &dir), Some(serde_json::to_value(&settings).unwrap()), host.clone());
        let certificate = || enrollment.status().certificate.unwrap();
        assert_eq!((certificate().renew_at_unix, certificate().renewal_source), (t + 6000, "schedule"));

        // Jitter u16::MAX (the spread off): asked again exactly at Retry-After.
        let (no_spread, most_spread) = (u16::MAX, 0);
        enrollment.apply_renewal_info(
            &first,
            "A.1".into(),
            Ok(info(t + 2000, t + 3000, 5)),
            t + 100,
            u16::MAX / 2,
            no_spread,
        );
        assert_eq!((certificate().renew_at_unix, certificate().renewal_source), (t + 2499, "ari"));
        let ari = enrollment.record().ari.clone().unwrap();
        assert_eq!(ari.recheck_at_unix, t + 160, "Retry-After 5 s is raised to a minute");
        // Asked again: the same window keeps its point whatever is drawn now; with the spread, the
        // next question waits up to half as long again.
        enrollment.apply_renewal_info(
            &first,
            "A.1".into(),
            Ok(info(t + 2000, t + 3000, 3600)),
            t + 200,
            0,
            most_spread,
        );
        assert_eq!(certificate().renew_at_unix, t + 2499);
        assert_eq!(enrollment.record().ari.as_ref().unwrap().recheck_at_unix, t + 200 + 5400);
        // A failed answer keeps the known window; a moved window is drawn anew.
        let down = camera_acme::AcmeError::Timeout { what: "x", waited: Duration::ZERO, retry_after: None };
        enrollment.apply_renewal_info(&first, "A.1".into(), Err(down.into()), t + 300, 0, no_spread);
        assert_eq!(certificate().renew_at_unix, t + 2499);
        assert_eq!(enrollment.record().ari.as_ref().unwrap().recheck_at_unix, t + 300 + 60, "no answer: a minute");
        let down = camera_acme::AcmeError::Timeout { what: "x", waited: Duration::ZERO, retry_after: None };
        enrollment.apply_renewal_info(&first, "A.1".into(), Err(down.into()), t + 360, 0, no_spread);
        assert_eq!(enrollment.record().ari.as_ref().unwrap().recheck_at_unix, t + 360 + 120, "then two");
        assert_eq!(certificate().renew_at_unix, t + 2499);
        enrollment.apply_renewal_info(&first, "A.1".into(), Ok(info(t + 4000, t + 5000, 60)), t + 400, 0, 0);
        assert_eq!(certificate().renew_at_unix, t + 4000);
        // No renewal information: the camera's own schedule.
        enrollment.apply_renewal_info(&first, "A.1".into(), Ok(None), t + 500, 0, 0);
        assert_eq!((certificate().renew_at_unix, certificate().renewal_source), (t + 6000, "schedule"));

        // A window that is over: renew now, no failure.
        enrollment.apply_renewal_info(&first, "A.1".into(), Ok(info(t - 20, t - 10, 60)), t, 0, 0);
        assert_eq!((certificate().renew_at_unix, enrollment.record().failures), (t - 20, 0));
        assert!(matches!(enrollment.status().next_attempt_unix, Some(n) if n <= t + 1));
        {
            let record = enrollment.record().clone();
            let installed = host.installed();
            assert_eq!(enrollment.due(&record, installed.as_ref(), &[]), Due::Now(Reason::Renewal));
        }
        enrollment.apply_renewal_info(&first, "A.1".into(), Ok(info(t - 20, t - 10, 60)), t, 0, 0);
        assert_eq!(enrollment.record().failures, 0, "the same certificate asked again: no failure");
        // Its replacement has a window over too: a failure with a backoff, once per certificate.
        let second = Installed { not_before_unix: t, not_after_unix: t + 20_000, ..first.clone() };
        *host.serving.lock().unwrap() = Some(second.clone());
        enrollment.apply_renewal_info(&second, "A.2".into(), Ok(info(t - 20, t - 10, 60)), t, 0, 0);
        let record = enrollment.record().clone();
        assert_eq!((record.failures, record.not_before_unix), (1, t + 60));
        assert!(!record.last_attempt.as_ref().unwrap().ok);
        assert_eq!(enrollment.due(&record, Some(&second), &[]), Due::At(t + 60), "renewed after the backoff");
        enrollment.apply_renewal_info(&second, "A.2".into(), Ok(info(t - 20, t - 10, 60)), t, 0, 0);
        assert_eq!(enrollment.record().failures, 1, "counted once per certificate");
        // Stored: a restart keeps the drawn point and the streak.
        let (again, _) = Enrollment::load(&Layout::new(&dir, &dir), None, host.clone());
        assert_eq!(again.record().past_windows, enrollment.record().past_windows);
        assert_eq!(again.record().ari.as_ref().map(|a| a.window), enrollment.record().ari.as_ref().map(|a| a.window));
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
            let why = why.to_string();
            assert!(!why.contains(secret), "{why}");
            assert!(why.contains("line 1"), "{why}");
        }
    }
}
