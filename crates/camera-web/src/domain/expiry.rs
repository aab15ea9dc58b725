//! Expiry monitoring of everything the camera holds: the served certificate, the installer's
//! (uploaded or enrolled), the camera CA. The API and the UI show days left and a state for each;
//! inside the warning window the log gets one line a day per certificate (and the event log one
//! event); an installer's certificate that expires with no successor gives way to the camera's
//! own, said in the log, the API and the event log.

use std::sync::Arc;
use std::time::Duration;

use camera_enroll::Enrollment;
use camera_events::{EventKind, EventLog};
use camera_pki::CertificateInfo;
use serde::Serialize;

use super::certificates::{Certificates, Origin, Role};
use super::clock::now;
use super::events::record_event;
use crate::log;

/// One monitored certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expiry {
    /// `served`, `installer` (when it is not the one served, e.g. expired), `camera_ca` (what
    /// users import) or `issuing_ca` (two tiers).
    pub what: &'static str,
    pub subject: String,
    pub not_after: String,
    pub not_after_unix: i64,
    /// Whole days left (negative once expired).
    pub days_left: i64,
    /// `ok`, `warning` (inside the warning window) or `expired`.
    pub state: &'static str,
}

/// Who replaces a certificate before it expires, which decides when its expiry is news.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// A person (an upload), or something this monitor does not schedule: warned about
    /// `web.expiry_warning_days` before expiry.
    ByHand,
    /// Enrollment renews it from `renew_at_unix` on (`camera_enroll::schedule::renew_at`).
    Automatic { renew_at_unix: i64 },
}

/// When the warning window of a certificate expiring at `not_after_unix` opens (seconds since
/// the epoch): the one rule for the API, the status page's notices, the log and the event log.
///
/// By hand: `warning_days` before expiry. Renewed by enrollment: not before the renewal is
/// overdue, a quarter of the time between its renewal point and its expiry past that point, so
/// a certificate living 24 hours or a week, shorter than the window, does not warn at every
/// renewal; only one that enrollment failed to replace for a while does (and never earlier than
/// the configured window).
pub fn warning_from(not_after_unix: i64, warning_days: u32, renewal: Renewal) -> i64 {
    let by_setting = not_after_unix - i64::from(warning_days) * 86_400;
    match renewal {
        Renewal::ByHand => by_setting,
        Renewal::Automatic { renew_at_unix } => {
            let overdue = renew_at_unix + (not_after_unix - renew_at_unix).max(0) / 4;
            by_setting.max(overdue)
        }
    }
}

fn expiry(what: &'static str, info: &CertificateInfo, now: i64, window_days: u32, renewal: Renewal) -> Expiry {
    let left = info.not_after_unix - now;
    let state = if left <= 0 {
        "expired"
    } else if now >= warning_from(info.not_after_unix, window_days, renewal) {
        "warning"
    } else {
        "ok"
    };
    Expiry {
        what,
        subject: info.subject.clone(),
        not_after: info.not_after.clone(),
        not_after_unix: info.not_after_unix,
        days_left: left.div_euclid(86_400),
        state,
    }
}

/// The monitored certificates now.
pub fn report(certs: &Certificates, enrollment: &Enrollment, window: u32) -> Vec<Expiry> {
    let now = now();
    let served = certs.served_info();
    let installer = certs.installer(Role::Https);
    let renewal = |info: &CertificateInfo| match &installer {
        Some(i) if i.info.sha256 == info.sha256 && matches!(i.origin, Origin::Enrolled(_)) => {
            enrolled_renewal(enrollment, info)
        }
        _ => Renewal::ByHand,
    };
    let mut list = vec![expiry("served", &served, now, window, renewal(&served))];
    if let Some(installer) = &installer {
        if installer.info.sha256 != served.sha256 {
            list.push(expiry("installer", &installer.info, now, window, renewal(&installer.info)));
        }
    }
    if let Some(dot1x) = certs.installer(Role::Dot1x) {
        list.push(expiry("dot1x", &dot1x.info, now, window, Renewal::ByHand));
    }
    list.push(expiry("camera_ca", certs.ca_info(), now, window, Renewal::ByHand));
    if let Some(issuing) = certs.issuing_info() {
        list.push(expiry("issuing_ca", issuing, now, window, Renewal::ByHand));
    }
    list
}

/// An enrolled certificate is renewed automatically while enrollment is configured, from the
/// point its schedule says, or the CA's suggested one (RFC 9773) when that is later; once
/// enrollment is stopped someone has to replace it.
fn enrolled_renewal(enrollment: &Enrollment, info: &CertificateInfo) -> Renewal {
    let status = enrollment.status();
    match status.certificate.filter(|c| status.settings.is_some() && c.not_after_unix as i64 == info.not_after_unix) {
        Some(c) => Renewal::Automatic {
            renew_at_unix: i64::try_from(c.renew_at_unix.max(c.scheduled_renew_at_unix)).unwrap_or(i64::MAX),
        },
        None => Renewal::ByHand,
    }
}

/// How often the monitor looks, at most (the wall clock may jump).
const LOOK_EVERY: Duration = Duration::from_secs(3600);

/// Runs for as long as the server: falls back from an expired installer's certificate at the
/// second it expires, and warns once a day for each certificate inside the window.
pub async fn watch(certs: Arc<Certificates>, events: Arc<EventLog>, enrollment: Arc<Enrollment>, window: u32) {
    let mut last_warning_day: Vec<(String, i64)> = Vec::new();
    loop {
        if certs.fall_back_if_expired() {
            let what = match certs.installer(Role::Https).map(|i| i.origin) {
                Some(Origin::Enrolled(p)) => format!("The certificate obtained by {p} enrollment"),
                _ => "The installer's certificate".to_owned(),
            };
            record_event(
                &events,
                EventKind::CertificateExpired,
                None,
                format!("{what} expired and nothing replaced it; the camera serves its own certificate (trusted by whoever imported cacert.crt)."),
            );
        }
        let today = now().div_euclid(86_400);
        for item in report(&certs, &enrollment, window).into_iter().filter(|i| i.state != "ok") {
            let key = format!("{}:{}", item.what, item.not_after_unix);
            if last_warning_day.iter().any(|(k, day)| *k == key && *day == today) {
                continue;
            }
            last_warning_day.retain(|(k, _)| *k != key);
            last_warning_day.push((key, today));
            let sentence = if item.state == "expired" {
                format!(
                    "the {} certificate \"{}\" expired on {}",
                    item.what.replace('_', " "),
                    item.subject,
                    item.not_after
                )
            } else {
                format!(
                    "the {} certificate \"{}\" expires in {} days ({})",
                    item.what.replace('_', " "),
                    item.subject,
                    item.days_left,
                    item.not_after
                )
            };
            log::warn(&format!("camera-web: {sentence}"));
            record_event(&events, EventKind::ExpiryWarning, None, format!("{}.", capitalised(&sentence)));
        }
        // Wake at the installer's expiry if it comes before the next regular look.
        let until_expiry = certs
            .installer(Role::Https)
            .map(|i| i.info.not_after_unix - now())
            .filter(|left| *left > 0)
            .map(|left| Duration::from_secs(u64::try_from(left).unwrap_or(0) + 1));
        tokio::select! {
            () = tokio::time::sleep(until_expiry.map_or(LOOK_EVERY, |d| d.min(LOOK_EVERY))) => {}
            () = certs.swapped() => {}
        }
    }
}

fn capitalised(sentence: &str) -> String {
    let mut chars = sentence.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(not_after_unix: i64) -> CertificateInfo {
        CertificateInfo {
            subject: "CN=x".into(),
            issuer: String::new(),
            serial: String::new(),
            not_before: String::new(),
            not_after: String::new(),
            not_before_unix: 0,
            not_after_unix,
            sha256: String::new(),
            public_key_sha256: String::new(),
            subject_alt_names: Vec::new(),
            key_type: String::new(),
            is_ca: false,
            self_signed: false,
        }
    }

    #[test]
    fn states_follow_the_warning_window() {
        let now = 1_000_000;
        assert_eq!(expiry("served", &info(now + 31 * 86_400), now, 30, Renewal::ByHand).state, "ok");
        let soon = expiry("served", &info(now + 29 * 86_400 + 5), now, 30, Renewal::ByHand);
        assert_eq!((soon.state, soon.days_left), ("warning", 29));
        let gone = expiry("served", &info(now - 10), now, 30, Renewal::ByHand);
        assert_eq!((gone.state, gone.days_left), ("expired", -1));
        // The configured window, whatever it is.
        assert_eq!(expiry("served", &info(now + 45 * 86_400), now, 60, Renewal::ByHand).state, "warning");
        assert_eq!(expiry("served", &info(now + 45 * 86_400), now, 7, Renewal::ByHand).state, "ok");
    }

    /// Enrolled certificates of 24 hours and of 160 hours, renewed on time by the schedule (two
    /// thirds in), never warn over a whole lifetime; one whose renewal is overdue does.
    #[test]
    fn short_lived_enrolled_certificates_warn_only_when_renewal_is_overdue() {
        for hours in [24, 160] {
            let not_before = 1_000_000;
            let lifetime = hours * 3600;
            let not_after = not_before + lifetime;
            let renewal = Renewal::Automatic { renew_at_unix: not_after - lifetime / 3 };
            let cert = CertificateInfo { not_before_unix: not_before, ..info(not_after) };
            // Every hourly look until a minute after the renewal point: nothing to say.
            let renewed = not_after - lifetime / 3 + 60;
            for now in (not_before..=renewed).step_by(3600).chain([renewed]) {
                assert_eq!(expiry("served", &cert, now, 30, renewal).state, "ok", "{hours} h, at {}", now - not_before);
            }
            // Never renewed: before it expires, the warning comes.
            let late = not_after - lifetime / 6;
            assert_eq!(expiry("served", &cert, late, 30, renewal).state, "warning", "{hours} h");
            // The same certificate uploaded by hand is inside the window all its life.
            assert_eq!(expiry("served", &cert, not_before, 30, Renewal::ByHand).state, "warning");
        }
        // A long-lived enrolled certificate never warns earlier than the configured window.
        let not_after = 100 * 86_400;
        let renewal = Renewal::Automatic { renew_at_unix: 20 * 86_400 };
        assert_eq!(warning_from(not_after, 30, renewal), 70 * 86_400);
    }
}
