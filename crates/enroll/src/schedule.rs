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
}

/// Why the camera enrolls now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// No enrolled certificate is in service (first enrollment, or after an upload by hand).
    NotEnrolled,
    /// The installer asked for it (`PUT /api/v1/enrollment`).
    Requested,
    /// Two thirds of the certificate's lifetime have passed, or the configured margin before expiry
    /// has begun.
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

/// The wait after a failure at `now`: [`backoff`], but never more than half of what is left of
/// the enrolled certificate in service (at least a second), so that a failed renewal is retried
/// before the certificate expires however short its life. No limit outlasts a certificate.
pub fn retry_wait(failures: u32, retry_after: Option<Duration>, now: u64, installed: Option<&Installed>) -> Duration {
    let wait = backoff(failures, retry_after);
    match installed.filter(|i| i.enrolled && i.not_after_unix > now) {
        Some(cert) => wait.min(Duration::from_secs(((cert.not_after_unix - now) / 2).max(1))),
        None => wait,
    }
}

/// When the certificate in service should be renewed: two thirds into its lifetime, or with a
/// configured margin that long before expiry, but never earlier than halfway (a margin longer than
/// the CA's lifetimes would otherwise renew each certificate the moment it is installed).
pub fn renew_at(installed: &Installed, margin: Option<Duration>) -> u64 {
    let lifetime = installed.not_after_unix.saturating_sub(installed.not_before_unix);
    let before_expiry = match margin {
        Some(margin) => margin.as_secs().min(lifetime / 2),
        None => lifetime - lifetime / 3 * 2,
    };
    installed.not_after_unix.saturating_sub(before_expiry)
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
    let Inputs { now, installed, wanted, requested, unusable, asked, halted, not_before_unix, margin, budget } =
        *inputs;
    if halted {
        return Due::Never;
    }
    if asked {
        return Due::Now(Reason::Requested);
    }
    let Some(cert) = installed.filter(|i| i.enrolled) else {
        return after_backoff(now, not_before_unix, Reason::NotEnrolled);
    };
    let renewal = renew_at(cert, margin);
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
        Installed { enrolled: true, not_before_unix: from, not_after_unix: to, names: names.to_vec() }
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
            budget: Budget::default(),
        }
    }

    #[test]
    fn renewal_starts_two_thirds_into_the_lifetime() {
        let names = [ip("10.0.0.5")];
        let c = cert(1000, 1900, &names);
        assert_eq!(due(&inputs(1100, Some(&c), &names)), Due::At(1600));
        assert_eq!(due(&inputs(1600, Some(&c), &names)), Due::Now(Reason::Renewal));
        assert_eq!(due(&inputs(1900, Some(&c), &names)), Due::Now(Reason::Expired));
    }

    #[test]
    fn a_configured_margin_renews_that_long_before_expiry_but_never_before_halfway() {
        let names = [ip("10.0.0.5")];
        let day = 86_400;
        // 90 days with a 7-day margin: renewed on day 83 (two thirds in would be day 60).
        let c = cert(0, 90 * day, &names);
        let week = Some(Duration::from_secs(7 * day));
        let at = |now, margin| due(&Inputs { margin, ..inputs(now, Some(&c), &names) });
        assert_eq!(at(day, week), Due::At(83 * day));
        assert_eq!(at(83 * day, week), Due::Now(Reason::Renewal));
        assert_eq!(at(82 * day, week), Due::At(83 * day));
        // A margin longer than the lifetime: halfway, not at once.
        assert_eq!(at(day, Some(Duration::from_secs(365 * day))), Due::At(45 * day));
        assert_eq!(renew_at(&c, None), 60 * day);
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
        assert_eq!(due(&same), Due::At(1600));
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
        assert_eq!(due(&spent), Due::At(1016), "the renewal point does not wait for the budget");
        assert_eq!(due(&Inputs { now: 1016, ..spent }), Due::Now(Reason::Renewal));
        // Failures keep retrying within what is left.
        let mut now = 1016;
        for failures in 1..5 {
            let wait = retry_wait(failures, Some(Duration::from_secs(3600)), now, Some(&c));
            assert!(now + wait.as_secs() < 1024 || wait.as_secs() == 1, "{failures}: {wait:?} at {now}");
            now += wait.as_secs();
        }
        assert_eq!(retry_wait(3, None, 1000, None), Duration::from_secs(240), "no certificate: the plain backoff");
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
