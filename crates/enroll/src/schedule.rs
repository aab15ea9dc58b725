//! When to enroll or renew, and how long to back off after a failure: pure, tested without a
//! clock or a network.

use std::time::Duration;

use camera_pki::SanName;

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
    /// Two thirds of the certificate's lifetime have passed, or the configured margin before expiry
    /// has begun.
    Renewal,
    /// The camera's addresses changed and the certificate no longer names them all.
    NamesChanged { missing: Vec<SanName> },
    /// The certificate has expired.
    Expired,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::NotEnrolled => f.write_str("no enrolled certificate is in service"),
            Reason::Renewal => f.write_str("the certificate is due for renewal"),
            Reason::NamesChanged { missing } => {
                let names: Vec<String> = missing.iter().map(ToString::to_string).collect();
                write!(f, "the certificate does not name {}", names.join(", "))
            }
            Reason::Expired => f.write_str("the certificate has expired"),
        }
    }
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    Now(Reason),
    /// Nothing until then (seconds since the epoch).
    At(u64),
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

/// What enrollment should do at `now`. `not_before_unix`: no attempt before then (backoff);
/// `margin`: the configured renewal margin, see [`renew_at`].
pub fn due(
    now: u64,
    installed: Option<&Installed>,
    wanted: &[SanName],
    not_before_unix: u64,
    margin: Option<Duration>,
) -> Due {
    let reason = match installed {
        Some(cert) if cert.enrolled => {
            let missing: Vec<SanName> = wanted.iter().filter(|n| !cert.names.contains(n)).cloned().collect();
            if now >= cert.not_after_unix {
                Some(Reason::Expired)
            } else if !missing.is_empty() {
                Some(Reason::NamesChanged { missing })
            } else if now >= renew_at(cert, margin) {
                Some(Reason::Renewal)
            } else {
                None
            }
        }
        _ => Some(Reason::NotEnrolled),
    };
    match reason {
        Some(_) if now < not_before_unix => Due::At(not_before_unix),
        Some(reason) => Due::Now(reason),
        None => Due::At(installed.map_or(now, |i| renew_at(i, margin))),
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

    #[test]
    fn renewal_starts_two_thirds_into_the_lifetime() {
        let names = [ip("10.0.0.5")];
        let c = cert(1000, 1900, &names);
        assert_eq!(due(1100, Some(&c), &names, 0, None), Due::At(1600));
        assert_eq!(due(1600, Some(&c), &names, 0, None), Due::Now(Reason::Renewal));
        assert_eq!(due(1900, Some(&c), &names, 0, None), Due::Now(Reason::Expired));
    }

    #[test]
    fn a_configured_margin_renews_that_long_before_expiry_but_never_before_halfway() {
        let names = [ip("10.0.0.5")];
        let day = 86_400;
        // 90 days with a 7-day margin: renewed on day 83 (two thirds in would be day 60).
        let c = cert(0, 90 * day, &names);
        let week = Some(Duration::from_secs(7 * day));
        assert_eq!(due(day, Some(&c), &names, 0, week), Due::At(83 * day));
        assert_eq!(due(83 * day, Some(&c), &names, 0, week), Due::Now(Reason::Renewal));
        assert_eq!(due(82 * day, Some(&c), &names, 0, week), Due::At(83 * day));
        // A margin longer than the lifetime: halfway, not at once.
        let year = Some(Duration::from_secs(365 * day));
        assert_eq!(due(day, Some(&c), &names, 0, year), Due::At(45 * day));
        assert_eq!(renew_at(&c, None), 60 * day);
    }

    #[test]
    fn a_new_address_or_a_hand_upload_means_enroll_now_but_backoff_holds() {
        let c = cert(1000, 1900, &[ip("10.0.0.5")]);
        let wanted = [ip("10.0.0.5"), ip("10.0.0.6")];
        assert_eq!(
            due(1100, Some(&c), &wanted, 0, None),
            Due::Now(Reason::NamesChanged { missing: vec![ip("10.0.0.6")] })
        );
        assert_eq!(due(1100, Some(&c), &wanted, 1500, None), Due::At(1500), "never hammer a server that just failed");
        let uploaded = Installed { enrolled: false, ..c };
        assert_eq!(due(1100, Some(&uploaded), &wanted, 0, None), Due::Now(Reason::NotEnrolled));
        assert_eq!(due(1100, None, &wanted, 0, None), Due::Now(Reason::NotEnrolled));
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
}
