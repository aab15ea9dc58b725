//! When to enroll or renew, and how long to wait after a failure: pure, tested without a clock or
//! a network.
//!
//! Enrollment happens because something changed, never in a loop:
//! - scheduled: no enrolled certificate, the renewal point, expiry. These are never held back by
//!   the budget; after a failure they wait the backoff, capped at half the remaining lifetime, so a
//!   certificate is renewed before it expires however short its life;
//! - asked for: the installer's `PUT` (rate-limited at the API);
//! - unscheduled: the camera's names differ from the ones last requested, or the last issuance
//!   was unusable (names missing, already due on arrival). These share one [`Budget`] and wait
//!   the backoff too.
//!
//! The names compared are the ones the camera *asked for* last time, not the ones the certificate
//! carries: a CA that leaves a name out cannot make the camera ask again and again.
//!
//! A fleet must not synchronise: cameras enrolled in one afternoon would otherwise all renew in
//! the same second, and retry in lock-step after every CA outage. Each certificate renews at its
//! own point of a renewal window (drawn from its fingerprint: fixed for the certificate, with no
//! state to store, and as random as the certificate's serial and key), and each retry waits a
//! random time between half and all of the backoff.

use std::collections::BTreeSet;
use std::time::Duration;

use camera_pki::SanName;
use serde::{Deserialize, Serialize};

/// The installer's certificate in service, as far as enrollment cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// It came from enrollment (not uploaded by hand).
    pub enrolled: bool,
    pub not_before_unix: u64,
    pub not_after_unix: u64,
    pub names: Vec<SanName>,
    /// Where in its renewal window this certificate renews, from 0 (the start) to `u16::MAX` (the
    /// end): see [`renew_at`].
    pub spread: u16,
}

impl Installed {
    /// The certificate `info` describes; its place in the renewal window comes from its SHA-256
    /// fingerprint.
    pub fn from_info(info: &camera_pki::CertificateInfo, enrolled: bool) -> Self {
        let fingerprint = camera_pki::text::unhex(&info.sha256.replace(':', "")).unwrap_or_default();
        Self {
            enrolled,
            not_before_unix: u64::try_from(info.not_before_unix).unwrap_or(0),
            not_after_unix: u64::try_from(info.not_after_unix).unwrap_or(0),
            names: info.subject_alt_names.iter().filter_map(|n| SanName::parse(n).ok()).collect(),
            spread: match fingerprint.as_slice() {
                [a, b, ..] => u16::from_be_bytes([*a, *b]),
                _ => 0,
            },
        }
    }
}

/// Why the camera enrolls now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// No enrolled certificate is in service (first enrollment, or after an upload by hand).
    NotEnrolled,
    /// The installer asked for it (`PUT /api/v1/enrollment`).
    Requested,
    /// The certificate's renewal point has come (see [`renew_at`]).
    Renewal,
    /// The certificate has expired.
    Expired,
    /// The camera's names are no longer the ones it last asked for.
    NamesChanged { added: Vec<SanName>, removed: Vec<SanName> },
    /// The last certificate issued could not be used as it was (the sentence says why, e.g.
    /// "the issued certificate does not name fd77::2").
    Unusable(String),
}

impl Reason {
    /// Whether this reason draws on the [`Budget`]: everything that is neither scheduled nor
    /// asked for by the installer.
    pub fn is_unscheduled(&self) -> bool {
        matches!(self, Reason::NamesChanged { .. } | Reason::Unusable(_))
    }
}

fn list(names: &[SanName]) -> String {
    names.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::NotEnrolled => f.write_str("no enrolled certificate is in service"),
            Reason::Requested => f.write_str("the installer asked for it"),
            Reason::Renewal => f.write_str("the certificate is due for renewal"),
            Reason::Expired => f.write_str("the certificate has expired"),
            Reason::NamesChanged { added, removed } => match (added.is_empty(), removed.is_empty()) {
                (false, true) => write!(f, "the camera now also has {}", list(added)),
                (true, false) => write!(f, "the camera no longer has {}", list(removed)),
                _ => write!(f, "the camera's names changed (new: {}; gone: {})", list(added), list(removed)),
            },
            Reason::Unusable(why) => f.write_str(why),
        }
    }
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    Now(Reason),
    /// Nothing until then (seconds since the epoch).
    At(u64),
    /// Nothing until something changes (enrollment halted).
    Never,
}

/// The first retry after a failure; each further failure doubles it, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(60);
pub const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// The wait after `failures` consecutive failures; a server's `Retry-After` makes it longer,
/// never shorter.
pub fn backoff(failures: u32, retry_after: Option<Duration>) -> Duration {
    let doubled = FIRST_BACKOFF.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    doubled.min(MAX_BACKOFF).max(retry_after.unwrap_or_default())
}

/// The wait after a failure at `now`: a random time between half and all of [`backoff`]
/// (`jitter` from 0 to `u16::MAX` picks it; never under [`FIRST_BACKOFF`], never under the
/// server's `Retry-After`), but never more than half of what is left of the enrolled certificate
/// in service (at least a second), so that a failed renewal is retried before the certificate
/// expires however short its life. No limit outlasts a certificate.
pub fn retry_wait(
    failures: u32,
    retry_after: Option<Duration>,
    now: u64,
    installed: Option<&Installed>,
    jitter: u16,
) -> Duration {
    let half = backoff(failures, None).as_secs() / 2;
    let spread = half * u64::from(jitter) / u64::from(u16::MAX);
    let wait = Duration::from_secs(half + spread).max(FIRST_BACKOFF).max(retry_after.unwrap_or_default());
    match installed.filter(|i| i.enrolled && i.not_after_unix > now) {
        Some(cert) => wait.min(Duration::from_secs(((cert.not_after_unix - now) / 2).max(1))),
        None => wait,
    }
}

/// Where the renewal window starts and how long it is, as shares of the lifetime in percent:
/// 60 % to 75 % into it.
const WINDOW_START_PERCENT: u64 = 60;
const WINDOW_PERCENT: u64 = 15;

/// The wait before asking the CA for renewal information again: its `Retry-After` (clamped by
/// `camera_acme::ari::recheck_after`), plus a random part of half of it (`jitter` from `u16::MAX`,
/// nothing, to 0, half) when the spread is on. A fleet enrolled at once would otherwise ask in the
/// same second every time (RFC 9773 asks for no more than Retry-After, so only later is allowed).
pub fn recheck_wait(recheck: Duration, jitter: u16) -> Duration {
    let half = recheck.as_secs() / 2;
    recheck + Duration::from_secs(half * u64::from(u16::MAX - jitter) / u64::from(u16::MAX))
}

/// When the certificate in service should be renewed: at its [`Installed::spread`] point of a
/// window 60 % to 75 % into its lifetime; with a configured margin, between the margin and a
/// quarter more before expiry (never later than the margin asks), and never earlier than halfway
/// (a margin longer than the CA's lifetimes would otherwise renew each certificate the moment it
/// is installed).
pub fn renew_at(installed: &Installed, margin: Option<Duration>) -> u64 {
    let lifetime = installed.not_after_unix.saturating_sub(installed.not_before_unix);
    let share = |whole: u64| {
        u64::try_from(u128::from(whole) * u128::from(installed.spread) / u128::from(u16::MAX)).unwrap_or(whole)
    };
    match margin {
        Some(margin) => {
            let margin = margin.as_secs();
            let before_expiry = margin.saturating_add(share(margin / 4)).min(lifetime / 2);
            installed.not_after_unix.saturating_sub(before_expiry)
        }
        None => {
            let start = u64::try_from(u128::from(lifetime) * u128::from(WINDOW_START_PERCENT) / 100).unwrap_or(0);
            let window = u64::try_from(u128::from(lifetime) * u128::from(WINDOW_PERCENT) / 100).unwrap_or(0);
            installed.not_before_unix + start + share(window)
        }
    }
}

/// The CA's suggested renewal window for the enrolled certificate in service (RFC 9773), and the
/// point of it this camera renews at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AriWindow {
    pub start_unix: u64,
    pub end_unix: u64,
    /// Where in the window the camera renews, from 0 (the start) to `u16::MAX` (the end): a
    /// uniformly random draw, made once per window and kept, so asking again does not move it.
    pub draw: u16,
}

/// When to renew in the CA's window: its drawn point, clamped to before expiry (at the latest a
/// tenth of the lifetime, and at least a second, before it). A window that is over gives a time in
/// the past: see [`PastWindows`] for what that means.
pub fn ari_renew_at(window: &AriWindow, installed: &Installed) -> u64 {
    let width = window.end_unix.saturating_sub(window.start_unix);
    let share = u64::try_from(u128::from(width) * u128::from(window.draw) / u128::from(u16::MAX)).unwrap_or(width);
    let lifetime = installed.not_after_unix.saturating_sub(installed.not_before_unix);
    let latest = installed.not_after_unix.saturating_sub((lifetime / 10).max(1));
    window.start_unix.saturating_add(share).min(latest)
}

/// Windows that are over when the camera asks (a revocation, an incident at the CA): RFC 9773 says
/// to renew at once. That happens at most once per certificate, and a certificate issued that way
/// whose window is over too counts as a failure with its backoff, doubling along the streak: a CA
/// cannot make the camera renew without end. Kept in the enrollment record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastWindows {
    /// The CertID of the last certificate whose window was over.
    pub cert_id: Option<String>,
    /// How many certificates in a row came with a window that was over.
    pub streak: u32,
}

/// What a window that is over means for the certificate in service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PastWindow {
    /// Renew now: the first certificate of a streak.
    RenewNow,
    /// This certificate's window was already found over: renewing it is due, retries wait their
    /// backoff.
    AlreadySeen,
    /// The certificate that replaced one with a window over has one over too: a failure, waiting
    /// the backoff of this many failures.
    Failure { failures: u32 },
}

impl PastWindows {
    /// The window of the certificate `cert_id` names is over: what to do (and remember it).
    pub fn over(&mut self, cert_id: &str) -> PastWindow {
        match &self.cert_id {
            Some(seen) if seen == cert_id => PastWindow::AlreadySeen,
            Some(_) => {
                self.streak = self.streak.saturating_add(1);
                self.cert_id = Some(cert_id.to_owned());
                PastWindow::Failure { failures: self.streak.saturating_sub(1).max(1) }
            }
            None => {
                self.streak = 1;
                self.cert_id = Some(cert_id.to_owned());
                PastWindow::RenewNow
            }
        }
    }

    /// A window still ahead: the streak is over.
    pub fn ahead(&mut self) {
        *self = PastWindows::default();
    }
}

/// The window the first attempt after a start, or after the camera's addresses were all replaced,
/// is spread over: a fleet that starts at once (a site's power comes back) or is renumbered at once
/// reaches its CA over five minutes instead of in one second.
pub const START_SPREAD: Duration = Duration::from_secs(300);

/// A random part of `window` (`jitter` from 0 to `u16::MAX` picks it).
pub fn spread_delay(jitter: u16, window: Duration) -> Duration {
    let millis = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(
        u64::try_from(u128::from(millis) * u128::from(jitter) / u128::from(u16::MAX)).unwrap_or(millis),
    )
}

/// Unscheduled enrollments allowed at once, and then one per [`BUDGET_INTERVAL`].
pub const BUDGET_BURST: u64 = 3;
pub const BUDGET_INTERVAL: Duration = Duration::from_secs(300);

/// The budget unscheduled enrollments share (a generic cell rate: a burst of [`BUDGET_BURST`],
/// then one per [`BUDGET_INTERVAL`]). One number, kept in the enrollment record so a restart
/// does not refill it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// When the budget is back to full (seconds since the epoch).
    full_at_unix: u64,
}

impl Budget {
    /// When the next unscheduled enrollment may start.
    pub fn ready_at(&self) -> u64 {
        self.ready_at_with(BUDGET_BURST, BUDGET_INTERVAL)
    }

    /// Spends one unscheduled enrollment at `now` (callers check [`Budget::ready_at`] first).
    pub fn spend(&mut self, now: u64) {
        self.spend_with(now, BUDGET_INTERVAL);
    }

    /// When the next use may start, for a burst of `burst` then one per `interval`.
    pub fn ready_at_with(&self, burst: u64, interval: Duration) -> u64 {
        self.full_at_unix.saturating_sub(burst.saturating_sub(1) * interval.as_secs())
    }

    /// Spends one use at `now`, for a budget refilled one per `interval`.
    pub fn spend_with(&mut self, now: u64, interval: Duration) {
        self.full_at_unix = self.full_at_unix.max(now) + interval.as_secs();
    }
}

/// Everything [`due`] decides from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub now: u64,
    /// The installer's certificate in service.
    pub installed: Option<&'a Installed>,
    /// The names the camera should carry now.
    pub wanted: &'a [SanName],
    /// The names asked for by the last issuance (`None`: none recorded; the certificate's names
    /// stand in for them).
    pub requested: Option<&'a [SanName]>,
    /// Why the last issuance was unusable, if it was.
    pub unusable: Option<&'a str>,
    /// The installer asked for an enrollment now.
    pub asked: bool,
    /// Enrollment is halted until the installer configures it again.
    pub halted: bool,
    /// No attempt before then (the backoff).
    pub not_before_unix: u64,
    /// The configured renewal margin, see [`renew_at`].
    pub margin: Option<Duration>,
    /// The renewal time the CA's renewal information (RFC 9773) gives the certificate in service
    /// ([`ari_renew_at`]), which replaces [`renew_at`]'s.
    pub ari_renew_at: Option<u64>,
    pub budget: Budget,
}

/// The difference between two sets of names: (in `now` only, in `before` only).
fn difference(now: &[SanName], before: &[SanName]) -> (Vec<SanName>, Vec<SanName>) {
    let now: BTreeSet<&SanName> = now.iter().collect();
    let before: BTreeSet<&SanName> = before.iter().collect();
    (now.difference(&before).map(|n| (*n).clone()).collect(), before.difference(&now).map(|n| (*n).clone()).collect())
}

/// What enrollment should do.
pub fn due(inputs: &Inputs<'_>) -> Due {
    let Inputs {
        now,
        installed,
        wanted,
        requested,
        unusable,
        asked,
        halted,
        not_before_unix,
        margin,
        ari_renew_at,
        budget,
    } = *inputs;
    if halted {
        return Due::Never;
    }
    if asked {
        return Due::Now(Reason::Requested);
    }
    let Some(cert) = installed.filter(|i| i.enrolled) else {
        return after_backoff(now, not_before_unix, Reason::NotEnrolled);
    };
    let renewal = ari_renew_at.unwrap_or_else(|| renew_at(cert, margin));
    if now >= cert.not_after_unix {
        return after_backoff(now, not_before_unix, Reason::Expired);
    }
    if now >= renewal {
        return after_backoff(now, not_before_unix, Reason::Renewal);
    }
    let (added, removed) = difference(wanted, requested.unwrap_or(&cert.names));
    let reason = if !added.is_empty() || !removed.is_empty() {
        Reason::NamesChanged { added, removed }
    } else if let Some(why) = unusable {
        Reason::Unusable(why.to_owned())
    } else {
        return Due::At(renewal);
    };
    // Unscheduled: the backoff and the budget both hold it; the renewal point never waits for them.
    let start = not_before_unix.max(budget.ready_at());
    if start <= now {
        Due::Now(reason)
    } else {
        Due::At(start.min(renewal))
    }
}

fn after_backoff(now: u64, not_before_unix: u64, reason: Reason) -> Due {
    if now < not_before_unix {
        Due::At(not_before_unix)
    } else {
        Due::Now(reason)
    }
}

/// A burst of address changes is one change: the names must stay the same for [`SETTLE`], and a
/// change is followed at most [`SETTLE_AT_MOST`] after it was first seen, however long the churn.
pub const SETTLE: Duration = Duration::from_secs(3);
pub const SETTLE_AT_MOST: Duration = Duration::from_secs(10);

/// Debounces changes of the camera's names (times in milliseconds of a monotonic clock).
#[derive(Debug, Default, Clone)]
pub struct Settling {
    first_seen_ms: Option<u64>,
    last_change_ms: u64,
    names: Vec<SanName>,
}

impl Settling {
    /// `Ok` when `names` may be acted on now, else how long to wait before looking again.
    pub fn settled(&mut self, names: &[SanName], now_ms: u64) -> Result<(), Duration> {
        let first = *self.first_seen_ms.get_or_insert(now_ms);
        if self.names != names {
            self.names = names.to_vec();
            self.last_change_ms = now_ms;
        }
        let quiet_until = self.last_change_ms + SETTLE.as_millis() as u64;
        let latest = first + SETTLE_AT_MOST.as_millis() as u64;
        let ready = quiet_until.min(latest);
        if now_ms >= ready {
            Ok(())
        } else {
            Err(Duration::from_millis(ready - now_ms))
        }
    }

    /// Forgets the change being settled (after it was acted on, or when there is none).
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> SanName {
        SanName::Ip(s.parse().unwrap())
    }

    fn cert(from: u64, to: u64, names: &[SanName]) -> Installed {
        Installed { enrolled: true, not_before_unix: from, not_after_unix: to, names: names.to_vec(), spread: 0 }
    }

    fn inputs<'a>(now: u64, installed: Option<&'a Installed>, wanted: &'a [SanName]) -> Inputs<'a> {
        Inputs {
            now,
            installed,
            wanted,
            requested: None,
            unusable: None,
            asked: false,
            halted: false,
            not_before_unix: 0,
            margin: None,
            ari_renew_at: None,
            budget: Budget::default(),
        }
    }

    /// The CA's window replaces the 60-75 % point: the drawn point of it, clamped before expiry.
    #[test]
    fn a_cas_window_gives_the_renewal_time_at_its_drawn_point_before_expiry() {
        let names = [ip("10.0.0.5")];
        let c = cert(1000, 2000, &names);
        let window = |start, end, draw| AriWindow { start_unix: start, end_unix: end, draw };
        assert_eq!(ari_renew_at(&window(1200, 1300, 0), &c), 1200);
        assert_eq!(ari_renew_at(&window(1200, 1300, u16::MAX), &c), 1300);
        assert_eq!(ari_renew_at(&window(1200, 1300, u16::MAX / 2), &c), 1249);
        // A window reaching past expiry is cut to a tenth of the lifetime before it.
        assert_eq!(ari_renew_at(&window(1950, 5000, u16::MAX), &c), 1900);
        assert_eq!(ari_renew_at(&window(9000, 9999, 0), &c), 1900);
        // A one-second certificate still renews before it expires.
        assert_eq!(ari_renew_at(&window(0, u64::MAX, u16::MAX), &cert(10, 11, &names)), 10);
        // A window that is over gives a time in the past (renew now, see PastWindows).
        assert_eq!(ari_renew_at(&window(100, 200, u16::MAX), &c), 200);
        // The schedule follows it instead of its own point (1600..1750).
        let at = |now, ari| due(&Inputs { ari_renew_at: Some(ari), ..inputs(now, Some(&c), &names) });
        assert_eq!(at(1100, 1249), Due::At(1249));
        assert_eq!(at(1249, 1249), Due::Now(Reason::Renewal));
        assert_eq!(at(1300, 200), Due::Now(Reason::Renewal));
        let backoff = Inputs { ari_renew_at: Some(200), not_before_unix: 1400, ..inputs(1300, Some(&c), &names) };
        assert_eq!(due(&backoff), Due::At(1400), "a failed renewal waits its backoff");
        assert_eq!(due(&inputs(1100, Some(&c), &names)), Due::At(1600), "without one, the schedule");
    }

    /// A window that is over renews at once, once per certificate; the replacement's window over
    /// too is a failure whose backoff grows along the streak; a window ahead ends the streak.
    #[test]
    fn a_window_that_is_over_renews_at_once_only_once_per_certificate() {
        let mut past = PastWindows::default();
        assert_eq!(past.over("A.1"), PastWindow::RenewNow);
        assert_eq!(past.over("A.1"), PastWindow::AlreadySeen, "asked again before the renewal");
        assert_eq!(past.over("A.1"), PastWindow::AlreadySeen);
        assert_eq!(past.over("A.2"), PastWindow::Failure { failures: 1 }, "its replacement: over too");
        assert_eq!(past.over("A.2"), PastWindow::AlreadySeen);
        assert_eq!(past.over("A.3"), PastWindow::Failure { failures: 2 });
        assert_eq!(past.over("A.4"), PastWindow::Failure { failures: 3 });
        // The waits grow (half to all of 1, 2, 4 minutes ... up to 6 hours), never under a minute.
        let waits: Vec<u64> =
            (1..=12).map(|failures| retry_wait(failures, None, 0, None, u16::MAX).as_secs()).collect();
        assert!(waits.windows(2).all(|w| w[0] <= w[1]) && waits[0] >= 60 && waits[11] == 6 * 3600, "{waits:?}");
        past.ahead();
        assert_eq!(past, PastWindows::default());
        assert_eq!(past.over("B.1"), PastWindow::RenewNow, "a new streak");
        let stored = serde_json::to_string(&past).unwrap();
        assert_eq!(serde_json::from_str::<PastWindows>(&stored).unwrap(), past);
    }

    #[test]
    fn renewal_starts_at_the_certificates_point_of_a_window_60_to_75_percent_into_the_lifetime() {
        let names = [ip("10.0.0.5")];
        let c = cert(1000, 1900, &names);
        assert_eq!(due(&inputs(1100, Some(&c), &names)), Due::At(1540), "the window's start");
        assert_eq!(due(&inputs(1540, Some(&c), &names)), Due::Now(Reason::Renewal));
        assert_eq!(due(&inputs(1900, Some(&c), &names)), Due::Now(Reason::Expired));
        let last = Installed { spread: u16::MAX, ..c.clone() };
        assert_eq!(due(&inputs(1100, Some(&last), &names)), Due::At(1675), "the window's end");
        let middle = Installed { spread: u16::MAX / 2, ..c };
        assert_eq!(renew_at(&middle, None), 1607);
    }

    /// 200 cameras enrolled in the same second by one CA: their certificates differ (keys,
    /// serials), so their fingerprints place them all over the window, none outside it.
    #[test]
    fn a_fleet_issued_at_once_renews_spread_over_the_window() {
        let day = 86_400;
        let (start, end) = (54 * day, 54 * day + 90 * day * 15 / 100);
        let mut buckets = [0usize; 10];
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::Issuer::new(ca_params, ca_key);
        for camera in 0u32..200 {
            let mut params = rcgen::CertificateParams::new(vec![format!("cam{camera}.example")]).unwrap();
            params.not_before = time::OffsetDateTime::UNIX_EPOCH;
            params.not_after = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(90);
            let leaf = params.signed_by(&rcgen::KeyPair::generate().unwrap(), &ca).unwrap();
            let info = camera_pki::describe(leaf.der()).unwrap();
            let at = renew_at(&Installed::from_info(&info, true), None);
            assert!((start..=end).contains(&at), "camera {camera}: {at}");
            let bucket = usize::try_from((at - start) * 10 / (end - start + 1)).unwrap();
            buckets[bucket] += 1;
        }
        println!("200 certificates issued at once, renewals per tenth of the window: {buckets:?}");
        // 20 per tenth on average; none empty, none with a third of the fleet.
        assert!(buckets.iter().all(|&n| (5..=66).contains(&n)), "{buckets:?}");
    }

    /// The first attempt after a start (or a renumbering) of 200 cameras at once: their draws
    /// place them all over the five minutes, none after them. The draws are injected: a fixed
    /// pseudo-random sequence stands in for the random source.
    #[test]
    fn a_fleet_started_at_once_spreads_its_first_attempts_over_five_minutes() {
        assert_eq!(spread_delay(0, START_SPREAD), Duration::ZERO);
        assert_eq!(spread_delay(u16::MAX, START_SPREAD), START_SPREAD);
        let mut state = 0x2545_f491_u32;
        let mut buckets = [0usize; 10];
        for _ in 0..200 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let delay = spread_delay((state >> 16) as u16, START_SPREAD);
            assert!(delay <= START_SPREAD);
            buckets[usize::try_from(delay.as_secs() * 10 / (START_SPREAD.as_secs() + 1)).unwrap()] += 1;
        }
        assert!(buckets.iter().all(|&n| (5..=60).contains(&n)), "{buckets:?}");
    }

    /// Let's Encrypt's 160-hour IP certificates and 24-hour ones: the renewal point leaves most of
    /// a day (or hours) before expiry, and a CA that keeps failing is retried many times before
    /// the certificate expires, whatever the jitter draws (the backoff alone would wait 6 hours).
    #[test]
    fn short_lived_certificates_are_renewed_and_retried_before_they_expire() {
        let names = [ip("10.0.0.5")];
        let hour = 3600;
        for lifetime in [160 * hour, 24 * hour] {
            for spread in [0, u16::MAX / 2, u16::MAX] {
                let c = Installed { spread, ..cert(0, lifetime, &names) };
                let at = renew_at(&c, None);
                assert!(at >= lifetime * 60 / 100 && at <= lifetime * 75 / 100, "{lifetime}: {at}");
                for jitter in [0, u16::MAX] {
                    // Every renewal attempt fails: how many are made before expiry?
                    let (mut now, mut tries) = (at, 0);
                    while now < c.not_after_unix && tries < 1000 {
                        tries += 1;
                        now += retry_wait(tries, None, now, Some(&c), jitter).as_secs();
                    }
                    assert!(tries >= 8, "{lifetime} s, jitter {jitter}: only {tries} tries before expiry");
                    assert!(now >= c.not_after_unix, "the retries reach expiry");
                }
            }
        }
    }

    #[test]
    fn a_configured_margin_renews_that_long_before_expiry_but_never_before_halfway() {
        let names = [ip("10.0.0.5")];
        let day = 86_400;
        // 90 days with a 7-day margin: renewed on day 83 at the window's start (without a margin,
        // day 54).
        let c = cert(0, 90 * day, &names);
        let week = Some(Duration::from_secs(7 * day));
        let at = |now, margin| due(&Inputs { margin, ..inputs(now, Some(&c), &names) });
        assert_eq!(at(day, week), Due::At(83 * day));
        assert_eq!(at(83 * day, week), Due::Now(Reason::Renewal));
        assert_eq!(at(82 * day, week), Due::At(83 * day));
        // A margin longer than the lifetime: halfway, not at once.
        assert_eq!(at(day, Some(Duration::from_secs(365 * day))), Due::At(45 * day));
        assert_eq!(renew_at(&c, None), 54 * day, "no margin: the window's start, 60 % in");
        // The margin's window: up to a quarter more before expiry, never later than asked.
        let last = Installed { spread: u16::MAX, ..c.clone() };
        assert_eq!(renew_at(&last, week), 83 * day - 7 * day / 4);
    }

    #[test]
    fn a_new_address_means_enroll_but_the_backoff_holds_and_a_hand_upload_means_enroll() {
        let c = cert(1000, 1900, &[ip("10.0.0.5")]);
        let wanted = [ip("10.0.0.5"), ip("10.0.0.6")];
        let added = Due::Now(Reason::NamesChanged { added: vec![ip("10.0.0.6")], removed: vec![] });
        assert_eq!(due(&inputs(1100, Some(&c), &wanted)), added);
        let held = Inputs { not_before_unix: 1500, ..inputs(1100, Some(&c), &wanted) };
        assert_eq!(due(&held), Due::At(1500), "never hammer a server that just failed");
        let uploaded = Installed { enrolled: false, ..c.clone() };
        assert_eq!(due(&inputs(1100, Some(&uploaded), &wanted)), Due::Now(Reason::NotEnrolled));
        assert_eq!(due(&inputs(1100, None, &wanted)), Due::Now(Reason::NotEnrolled));
    }

    /// A CA that leaves a name out: the camera compares with what it asked for, so the same names
    /// never start another enrollment; only a real change does.
    #[test]
    fn names_the_ca_left_out_do_not_start_another_enrollment() {
        let asked = [ip("10.0.0.5"), ip("fd00::5")];
        let c = cert(1000, 1900, &[ip("10.0.0.5")]);
        let same = Inputs { requested: Some(&asked), ..inputs(1100, Some(&c), &asked) };
        assert_eq!(due(&same), Due::At(1540));
        let moved = [ip("10.0.0.6"), ip("fd00::5")];
        let changed = Inputs { requested: Some(&asked), ..inputs(1100, Some(&c), &moved) };
        assert_eq!(
            due(&changed),
            Due::Now(Reason::NamesChanged { added: vec![ip("10.0.0.6")], removed: vec![ip("10.0.0.5")] })
        );
    }

    #[test]
    fn an_unusable_issuance_is_retried_after_the_backoff_and_within_the_budget() {
        let names = [ip("10.0.0.5")];
        let c = cert(1000, 100_000, &names);
        let base =
            Inputs { requested: Some(&names), unusable: Some("was already due"), ..inputs(1100, Some(&c), &names) };
        assert_eq!(due(&base), Due::Now(Reason::Unusable("was already due".into())));
        assert_eq!(due(&Inputs { not_before_unix: 1160, ..base }), Due::At(1160));
        let mut budget = Budget::default();
        for _ in 0..BUDGET_BURST {
            assert!(budget.ready_at() <= 1100);
            budget.spend(1100);
        }
        assert_eq!(due(&Inputs { budget, ..base }), Due::At(1100 + BUDGET_INTERVAL.as_secs()));
    }

    #[test]
    fn the_budget_allows_a_burst_then_one_per_interval() {
        let mut budget = Budget::default();
        let mut spent = 0;
        // One hour of trying every second.
        for now in 10_000..10_000 + 3600 {
            if budget.ready_at() <= now {
                budget.spend(now);
                spent += 1;
            }
        }
        assert_eq!(spent, BUDGET_BURST + 3600 / BUDGET_INTERVAL.as_secs() - 1);
    }

    /// Scheduled renewals never wait for the budget, and a retry never waits past half the
    /// remaining lifetime: a 24-second certificate is renewed before it expires.
    #[test]
    fn a_short_lived_certificate_is_renewed_before_it_expires_under_every_limit() {
        let names = [ip("10.0.0.5")];
        let c = cert(1000, 1024, &names);
        let mut budget = Budget::default();
        for _ in 0..10 {
            budget.spend(1000);
        }
        let spent = Inputs { budget, requested: Some(&names), unusable: Some("x"), ..inputs(1010, Some(&c), &names) };
        assert_eq!(due(&spent), Due::At(1014), "the renewal point does not wait for the budget");
        assert_eq!(due(&Inputs { now: 1014, ..spent }), Due::Now(Reason::Renewal));
        // Failures keep retrying within what is left, whatever the jitter.
        for jitter in [0, u16::MAX / 2, u16::MAX] {
            let mut now = 1014;
            for failures in 1..5 {
                let wait = retry_wait(failures, Some(Duration::from_secs(3600)), now, Some(&c), jitter);
                assert!(now + wait.as_secs() < 1024 || wait.as_secs() == 1, "{failures}: {wait:?} at {now}");
                now += wait.as_secs();
            }
        }
        assert_eq!(retry_wait(3, None, 1000, None, u16::MAX), Duration::from_secs(240), "no certificate: the backoff");
    }

    #[test]
    fn a_retry_waits_between_half_and_all_of_the_backoff_at_least_a_minute_and_never_less_than_retry_after() {
        let minute = Duration::from_secs(60);
        assert_eq!(retry_wait(3, None, 0, None, 0), 2 * minute, "half of 4 minutes");
        assert_eq!(retry_wait(3, None, 0, None, u16::MAX), 4 * minute);
        assert_eq!(retry_wait(3, None, 0, None, u16::MAX / 2), Duration::from_secs(179));
        assert_eq!(retry_wait(1, None, 0, None, 0), minute, "never under a minute");
        assert_eq!(retry_wait(3, Some(10 * minute), 0, None, 0), 10 * minute, "Retry-After holds");
        // 200 cameras failing together spread their next attempts over the second half.
        let waits: BTreeSet<u64> = (0..200u16).map(|i| retry_wait(3, None, 0, None, i * 327).as_secs()).collect();
        assert!(waits.len() > 100 && *waits.first().unwrap() == 120 && *waits.last().unwrap() >= 238, "{waits:?}");
    }

    #[test]
    fn the_installers_request_starts_at_once_and_a_halt_stops_everything() {
        let names = [ip("10.0.0.5")];
        let c = cert(1000, 1900, &names);
        let asked = Inputs { asked: true, not_before_unix: 5000, ..inputs(1100, Some(&c), &names) };
        assert_eq!(due(&asked), Due::Now(Reason::Requested));
        assert_eq!(due(&Inputs { halted: true, ..asked }), Due::Never);
        assert_eq!(due(&Inputs { halted: true, ..inputs(1900, Some(&c), &names) }), Due::Never);
    }

    #[test]
    fn backoff_doubles_to_six_hours_and_honours_retry_after() {
        assert_eq!(backoff(1, None), Duration::from_secs(60));
        assert_eq!(backoff(2, None), Duration::from_secs(120));
        assert_eq!(backoff(9, None), Duration::from_secs(60 << 8));
        assert_eq!(backoff(10, None), Duration::from_secs(6 * 3600));
        assert_eq!(backoff(40, None), MAX_BACKOFF);
        assert_eq!(backoff(1, Some(Duration::from_secs(900))), Duration::from_secs(900));
        assert_eq!(backoff(10, Some(Duration::from_secs(10))), MAX_BACKOFF);
    }

    #[test]
    fn a_burst_of_changes_is_one_change_followed_within_ten_seconds() {
        let a = [ip("10.0.0.5")];
        let b = [ip("10.0.0.6")];
        let mut settling = Settling::default();
        assert_eq!(settling.settled(&a, 0), Err(SETTLE));
        assert_eq!(settling.settled(&a, 3000), Ok(()));
        settling.reset();
        // Churn every second: acted on ten seconds after the first change, not later.
        let mut now = 0;
        let acted = loop {
            let names = if now / 1000 % 2 == 0 { &a } else { &b };
            if settling.settled(names, now).is_ok() {
                break now;
            }
            now += 1000;
        };
        assert_eq!(acted, SETTLE_AT_MOST.as_millis() as u64);
    }
}
