//! The security event log (the EU Cyber Resilience Act asks security cameras for one): logins and
//! failed logins, the password being set, uploads, restores, requests, enrollment results, CA
//! changes and expiry warnings, each with its time and the client's address. Never a secret:
//! callers pass sentences about what happened, not what was sent.
//!
//! On disk: two files in the state directory, one JSON object per line, appended and fsynced (an
//! event is written before the action it records is answered):
//! - `logins.log` (`camera_state::Layout::logins`) holds the kinds anyone who reaches the camera
//!   can cause again and again ([`EventKind::is_recurring`]: logins, failed logins, and the daily
//!   expiry warnings, which say again tomorrow what they said today);
//! - `events.log` (`camera_state::Layout::events`) holds everything else: the changes an
//!   administrator or the enrollment made, which must outlive any flood of the first kind.
//!
//! Each file, when it passes [`ROTATE_AT`] bytes, becomes its `.1` (replacing the older one), so
//! the log never takes more than four times that, and a flood of failed logins only ever rotates
//! `logins.log`. Readers merge both files by time. A power cut can tear at most the last line of a
//! file, which readers skip. An `events.log` written before the split (logins in it too) reads
//! the same way.
//!
//! Flash wear: a flood of wrong passwords writes at most one line per client address per
//! [`COALESCE`] (carrying the count) and at most [`MAX_FLOOD_LINES_PER_HOUR`] such lines an hour.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Size at which the log is rotated.
pub const ROTATE_AT: u64 = 64 * 1024;
/// Failed logins from one address within this time share one line.
pub const COALESCE: Duration = Duration::from_secs(60);
/// Failed-login lines written per hour at most (a guesser rotating addresses).
pub const MAX_FLOOD_LINES_PER_HOUR: u32 = 120;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Login,
    LoginFailed,
    PasswordSet,
    CertificateUploaded,
    UploadRefused,
    CertificateRestored,
    RequestCreated,
    EnrollmentConfigured,
    EnrollmentStopped,
    EnrollmentSucceeded,
    EnrollmentFailed,
    /// The site's CA could not be trusted (a certificate that does not chain to the pinned or
    /// configured CA): enrollment stopped.
    EnrollmentUntrusted,
    CaReplaced,
    ExpiryWarning,
    CertificateExpired,
    /// The 802.1X settings were changed (or turned off, also by a bad config file section).
    Dot1xConfigured,
    /// The 802.1X client certificate was installed, replaced or deleted.
    Dot1xCertificateChanged,
    /// The network let the camera in (EAP success) with a new configuration or after a failure;
    /// periodic re-authentications are not logged.
    Dot1xAuthenticated,
    /// 802.1X authentication failed, with the reason (server not trusted, certificate refused,
    /// no authenticator answering), or wpa_supplicant is missing.
    Dot1xFailed,
    /// A configuration that failed after one that worked was replaced by the one that worked.
    Dot1xRolledBack,
}

impl EventKind {
    pub const ALL: [EventKind; 20] = [
        Self::Login,
        Self::LoginFailed,
        Self::PasswordSet,
        Self::CertificateUploaded,
        Self::UploadRefused,
        Self::CertificateRestored,
        Self::RequestCreated,
        Self::EnrollmentConfigured,
        Self::EnrollmentStopped,
        Self::EnrollmentSucceeded,
        Self::EnrollmentFailed,
        Self::EnrollmentUntrusted,
        Self::CaReplaced,
        Self::ExpiryWarning,
        Self::CertificateExpired,
        Self::Dot1xConfigured,
        Self::Dot1xCertificateChanged,
        Self::Dot1xAuthenticated,
        Self::Dot1xFailed,
        Self::Dot1xRolledBack,
    ];

    /// Kinds that come again and again without anyone changing anything (a client can log in or
    /// guess as often as it likes; an expiry warning repeats daily): kept in their own file, so
    /// they can never rotate a change out of the log.
    pub fn is_recurring(self) -> bool {
        matches!(self, Self::Login | Self::LoginFailed | Self::ExpiryWarning)
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Seconds since the epoch, by the camera's clock when it happened (a camera that booted
    /// without a real-time clock may say 1970 until NTP sets it).
    pub time_unix: u64,
    pub kind: EventKind,
    /// The client's address, for events a client caused.
    pub client: Option<IpAddr>,
    /// What happened, in a sentence.
    pub message: String,
}

#[derive(Default)]
struct Flood {
    /// Per client: when its last failed-login line was written, and failures since.
    per_client: HashMap<IpAddr, (Instant, u32)>,
    hour_started: Option<Instant>,
    lines_this_hour: u32,
    /// Failures not written because of the hourly cap, told in the next line.
    untold: u32,
}

/// One rotated file of the log.
#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    /// Serialises appends and rotation.
    writing: Mutex<()>,
}

impl LogFile {
    fn new(path: &Path) -> Self {
        Self { path: path.to_owned(), writing: Mutex::new(()) }
    }

    fn rotated(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".1");
        PathBuf::from(name)
    }

    fn append(&self, line: &[u8], rotate_at: u64) -> io::Result<()> {
        let _writing = self.writing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() + line.len() as u64 > rotate_at) {
            camera_state::rename_durable(&self.path, &self.rotated())?;
        }
        let created = !self.path.exists();
        let mut file = OpenOptions::new().append(true).create(true).mode(camera_state::PUBLIC_MODE).open(&self.path)?;
        file.write_all(line)?;
        file.sync_data()?;
        if created {
            camera_state::sync_dir(self.path.parent().unwrap_or(Path::new(".")))?;
        }
        Ok(())
    }

    /// Every event of the file and its predecessor, oldest first.
    fn read(&self) -> io::Result<Vec<Event>> {
        let mut events = Vec::new();
        for path in [self.rotated(), self.path.clone()] {
            match std::fs::read(&path) {
                Ok(bytes) => events
                    .extend(bytes.split(|b| *b == b'\n').filter_map(|line| serde_json::from_slice::<Event>(line).ok())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(events)
    }
}

/// The event log of one state directory.
pub struct EventLog {
    /// Changes: everything not [`EventKind::is_recurring`].
    changes: LogFile,
    /// Logins, failed logins and expiry warnings.
    recurring: LogFile,
    rotate_at: u64,
    flood: Mutex<Flood>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("changes", &self.changes.path)
            .field("recurring", &self.recurring.path)
            .finish_non_exhaustive()
    }
}

use camera_state::now_unix;

impl EventLog {
    /// The log in `changes` (`camera_state::Layout::events`) and `recurring`
    /// (`camera_state::Layout::logins`); each file is created on its first event.
    pub fn new(changes: &Path, recurring: &Path) -> Self {
        Self {
            changes: LogFile::new(changes),
            recurring: LogFile::new(recurring),
            rotate_at: ROTATE_AT,
            flood: Mutex::default(),
        }
    }

    /// The log of the state directory `layout` names.
    pub fn in_layout(layout: &camera_state::Layout) -> Self {
        Self::new(&layout.events(), &layout.logins())
    }

    /// Rotates at `bytes` instead of [`ROTATE_AT`] (tests, so they need fewer fsyncs).
    pub fn with_rotation_at(mut self, bytes: u64) -> Self {
        self.rotate_at = bytes;
        self
    }

    /// Records an event. A failure to write is returned (the caller decides whether the action
    /// may go on without its record; the web server logs it and goes on).
    pub fn record(&self, kind: EventKind, client: Option<IpAddr>, message: impl Into<String>) -> io::Result<()> {
        self.append(&Event { time_unix: now_unix(), kind, client, message: message.into() })
    }

    /// Records a failed login from `client`, coalesced (see the module documentation).
    pub fn failed_login(&self, client: IpAddr) -> io::Result<()> {
        let message = {
            let mut flood = self.flood.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            if flood.hour_started.is_none_or(|start| now.duration_since(start) >= Duration::from_secs(3600)) {
                flood.hour_started = Some(now);
                flood.lines_this_hour = 0;
            }
            if flood.per_client.len() > 1024 {
                flood.per_client.retain(|_, (last, _)| now.duration_since(*last) < COALESCE);
            }
            let entry = flood.per_client.entry(client).or_insert((now - COALESCE, 0));
            entry.1 += 1;
            if now.duration_since(entry.0) < COALESCE {
                return Ok(());
            }
            if flood.lines_this_hour >= MAX_FLOOD_LINES_PER_HOUR {
                flood.untold += 1;
                return Ok(());
            }
            let entry = flood.per_client.get_mut(&client).map(|e| std::mem::replace(e, (now, 0)));
            let count = entry.map_or(1, |(_, n)| n);
            flood.lines_this_hour += 1;
            let untold = std::mem::take(&mut flood.untold);
            let mut message = if count == 1 {
                "A wrong admin password was given.".to_owned()
            } else {
                format!("{count} wrong admin passwords were given from this address within a minute.")
            };
            if untold > 0 {
                message.push_str(&format!(
                    " {untold} more wrong passwords from other addresses were not recorded one by one (too many this hour)."
                ));
            }
            message
        };
        self.record(EventKind::LoginFailed, Some(client), message)
    }

    fn append(&self, event: &Event) -> io::Result<()> {
        let mut line = serde_json::to_vec(event).map_err(io::Error::other)?;
        line.push(b'\n');
        let file = if event.kind.is_recurring() { &self.recurring } else { &self.changes };
        file.append(&line, self.rotate_at)
    }

    /// The newest `limit` events of both files, newest first. Lines that do not parse (a torn
    /// last line after a power cut) are skipped.
    pub fn recent(&self, limit: usize) -> io::Result<Vec<Event>> {
        let mut events = merge_by_time(self.changes.read()?, self.recurring.read()?);
        events.reverse();
        events.truncate(limit);
        Ok(events)
    }
}

/// Two logs, each oldest first, as one oldest first. Each file keeps its own order (its lines
/// were appended in the order things happened, even when the clock jumped back, as it does when
/// NTP first sets a camera that booted in 1970); between the two, the earlier time goes first and
/// on a tie the change goes first.
fn merge_by_time(changes: Vec<Event>, recurring: Vec<Event>) -> Vec<Event> {
    let mut merged = Vec::with_capacity(changes.len() + recurring.len());
    let mut changes = changes.into_iter().peekable();
    let mut recurring = recurring.into_iter().peekable();
    loop {
        let take_change = match (changes.peek(), recurring.peek()) {
            (Some(c), Some(r)) => c.time_unix <= r.time_unix,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        merged.extend(if take_change { changes.next() } else { recurring.next() });
    }
    merged
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const FILE_NAME: &str = "events.log";
    const LOGINS: &str = "logins.log";

    fn log_in(dir: &Path) -> EventLog {
        EventLog::new(&dir.join(FILE_NAME), &dir.join(LOGINS))
    }

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("camera-events-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn events_are_kept_newest_first_and_a_torn_line_is_skipped() {
        let dir = temp("order");
        let log = log_in(&dir);
        log.record(EventKind::PasswordSet, Some("10.0.0.5".parse().unwrap()), "The admin password was set.").unwrap();
        log.record(EventKind::CertificateUploaded, None, "An installer's certificate was uploaded.").unwrap();
        // A power cut in the middle of a line.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join(FILE_NAME))
            .unwrap()
            .write_all(b"{\"time_unix\":1,\"ki")
            .unwrap();
        let events = log.recent(10).unwrap();
        assert_eq!(
            events.iter().map(|e| e.kind).collect::<Vec<_>>(),
            [EventKind::CertificateUploaded, EventKind::PasswordSet]
        );
        assert_eq!(events[1].client, Some("10.0.0.5".parse().unwrap()));
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.join(FILE_NAME)).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o644);
    }

    #[test]
    fn the_log_is_bounded_by_rotation() {
        let dir = temp("rotate");
        let log = log_in(&dir).with_rotation_at(4096);
        for n in 0..200 {
            log.record(EventKind::RequestCreated, None, format!("request {n} with some words to make the line longer"))
                .unwrap();
        }
        let size = |name: &str| std::fs::metadata(dir.join(name)).map(|m| m.len()).unwrap_or(0);
        assert!(size(FILE_NAME) <= 4096 && size("events.log.1") <= 4096);
        assert!(size("events.log.1") > 2048, "the rotated file holds the older events");
        let recent = log.recent(5).unwrap();
        assert_eq!(recent[0].message, "request 199 with some words to make the line longer");
    }

    #[test]
    fn a_flood_of_wrong_passwords_writes_one_line_per_address_per_minute() {
        let dir = temp("flood");
        let log = log_in(&dir);
        let guesser: IpAddr = "10.0.0.66".parse().unwrap();
        for _ in 0..500 {
            log.failed_login(guesser).unwrap();
        }
        log.failed_login("10.0.0.7".parse().unwrap()).unwrap();
        let events = log.recent(100).unwrap();
        assert_eq!(events.len(), 2, "{events:?}");
        // The guesser's next line (after the minute) would carry the count; force the minute by hand.
        log.flood.lock().unwrap().per_client.get_mut(&guesser).unwrap().0 -= COALESCE;
        log.failed_login(guesser).unwrap();
        let newest = &log.recent(1).unwrap()[0];
        assert!(newest.message.starts_with("500 wrong admin passwords"), "{newest:?}");
    }

    #[test]
    fn a_guesser_rotating_addresses_is_capped_per_hour_and_told_in_a_count() {
        let dir = temp("rotating");
        let log = log_in(&dir);
        for n in 0..1000u32 {
            log.failed_login(IpAddr::from([10, 1, (n >> 8) as u8, n as u8])).unwrap();
        }
        assert_eq!(log.recent(10_000).unwrap().len(), MAX_FLOOD_LINES_PER_HOUR as usize);
        log.flood.lock().unwrap().hour_started = Some(Instant::now() - Duration::from_secs(3600));
        log.failed_login("10.2.0.1".parse().unwrap()).unwrap();
        let newest = &log.recent(1).unwrap()[0];
        assert!(newest.message.contains("880 more wrong passwords"), "{newest:?}");
    }

    /// A guesser with thousands of addresses, hours long, rotates only the login file: the last
    /// change of every kind that matters is still answered.
    #[test]
    fn a_flood_of_failed_logins_never_evicts_a_change() {
        let dir = temp("evict");
        let log = log_in(&dir).with_rotation_at(4096);
        let kept = [
            (EventKind::PasswordSet, "The admin password was set."),
            (EventKind::EnrollmentConfigured, "Enrollment with SCEP was configured."),
            (EventKind::CertificateUploaded, "An installer's certificate was uploaded."),
            (EventKind::EnrollmentSucceeded, "A certificate was enrolled with SCEP."),
            (EventKind::CaReplaced, "The camera CA changed."),
        ];
        for (kind, message) in kept {
            log.record(kind, None, message).unwrap();
        }
        let mut hours = 0;
        for n in 0..5000u32 {
            if n % MAX_FLOOD_LINES_PER_HOUR == 0 {
                // The next hour of the flood: the hourly cap starts again.
                log.flood.lock().unwrap().hour_started = Some(Instant::now() - Duration::from_secs(3600));
                hours += 1;
            }
            log.failed_login(IpAddr::from([10, (n >> 16) as u8, (n >> 8) as u8, n as u8])).unwrap();
            log.record(EventKind::Login, Some(IpAddr::from([10, 9, 0, 1])), "The admin logged in to the web page.")
                .unwrap();
        }
        assert!(hours > 40, "the flood lasted {hours} hours");
        let events = log.recent(10_000).unwrap();
        for (kind, message) in kept {
            assert!(events.iter().any(|e| e.kind == kind && e.message == message), "{kind:?} was evicted");
        }
        // The flood is still visible (the newest of it), and both files stay bounded.
        assert_eq!(events[0].kind, EventKind::Login);
        assert!(events.iter().any(|e| e.kind == EventKind::LoginFailed));
        for name in [FILE_NAME, "events.log.1", LOGINS, "logins.log.1"] {
            let size = std::fs::metadata(dir.join(name)).map(|m| m.len()).unwrap_or(0);
            assert!(size <= 4096, "{name}: {size} bytes");
        }
        assert!(!dir.join("events.log.1").exists(), "the changes file was never rotated");
    }

    /// An `events.log` from before the split holds logins and changes together; it is still read,
    /// and merged by time with what is written now.
    #[test]
    fn an_old_single_file_log_is_still_read_and_merged_by_time() {
        let dir = temp("upgrade");
        let old = [
            r#"{"time_unix":100,"kind":"password_set","client":"10.0.0.5","message":"The admin password was set."}"#,
            r#"{"time_unix":200,"kind":"login_failed","client":"10.0.0.6","message":"A wrong admin password was given."}"#,
        ];
        std::fs::write(dir.join(FILE_NAME), format!("{}\n{}\n", old[0], old[1])).unwrap();
        let log = log_in(&dir);
        std::fs::write(
            dir.join(LOGINS),
            "{\"time_unix\":300,\"kind\":\"login\",\"client\":\"10.0.0.5\",\"message\":\"The admin logged in.\"}\n",
        )
        .unwrap();
        log.record(EventKind::RequestCreated, None, "A certificate request was created.").unwrap();
        let kinds: Vec<EventKind> = log.recent(10).unwrap().iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [EventKind::RequestCreated, EventKind::Login, EventKind::LoginFailed, EventKind::PasswordSet]
        );
    }

    #[test]
    fn merging_keeps_each_file_in_its_own_order() {
        let event = |time_unix, kind| Event { time_unix, kind, client: None, message: String::new() };
        // The changes file saw the clock jump back (1970 until NTP); its order stands.
        let changes = vec![event(5_000, EventKind::PasswordSet), event(10, EventKind::RequestCreated)];
        let recurring = vec![event(20, EventKind::Login), event(6_000, EventKind::LoginFailed)];
        let merged: Vec<EventKind> = merge_by_time(changes, recurring).iter().map(|e| e.kind).collect();
        assert_eq!(
            merged,
            [EventKind::Login, EventKind::PasswordSet, EventKind::RequestCreated, EventKind::LoginFailed]
        );
        assert!(EventKind::ALL.iter().filter(|k| k.is_recurring()).count() == 3);
    }
}
