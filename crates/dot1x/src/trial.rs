//! What one configuration did since it was put into the supplicant, and the trial of a new
//! configuration: pure, time injected.
//!
//! A trial exists only when there is something to go back to: a configuration that reached EAP
//! success on the same link. It ends with EAP success (commit) or, after `trial_seconds` of
//! link-up time without success, with a rollback. The clock pauses while the link is down (an
//! unplugged cable says nothing about the configuration).

use std::time::Duration;

use camera_log::escape_bounded;

use crate::event::Event;

/// Longest outside text (a subject, an OpenSSL error) quoted in a sentence.
const MAX_QUOTED: usize = 200;

/// What the supplicant reported about the configuration in use since it was put in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// An EAP exchange began (the authenticator answered).
    pub eap_started: bool,
    /// EAP-TLS was selected (the TLS handshake began).
    pub tls_selected: bool,
    /// The last server certificate refused: subject and why (outside text, unescaped).
    pub server_rejected: Option<(String, String)>,
    /// The last server certificate seen (depth 0).
    pub server_subject: Option<String>,
    /// EAP failures after an exchange began.
    pub failures: u32,
    /// EAP success after an exchange began.
    pub succeeded: bool,
}

impl Observed {
    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::EapStarted => self.eap_started = true,
            Event::EapMethod { method } => self.tls_selected |= method == "TLS",
            Event::ServerCertError { subject, error, .. } => {
                self.server_rejected = Some((subject.clone(), error.clone()));
            }
            Event::PeerCert { depth: 0, subject } => self.server_subject = Some(subject.clone()),
            Event::EapFailure if self.eap_started => self.failures += 1,
            Event::EapSuccess if self.eap_started => self.succeeded = true,
            _ => {}
        }
    }

    /// Whether authentication failed outright (not merely unanswered yet).
    pub fn failed(&self) -> bool {
        self.failures > 0 || self.server_rejected.is_some()
    }

    /// Why this configuration did not authenticate, one sentence (outside text escaped).
    pub fn failure_reason(&self, interface: &str, seconds: u64) -> String {
        if let Some((subject, error)) = &self.server_rejected {
            let subject = escape_bounded(subject, MAX_QUOTED);
            if error == "Domain mismatch" {
                return format!(
                    "the authentication server's certificate (subject '{subject}') does not carry the name domain_match expects"
                );
            }
            return format!(
                "the authentication server's certificate (subject '{subject}') is not trusted: {}",
                escape_bounded(error, MAX_QUOTED)
            );
        }
        if self.failures > 0 && self.tls_selected {
            return "the authentication server refused the camera's client certificate (EAP-Failure after the TLS \
                    handshake)"
                .to_owned();
        }
        if self.failures > 0 {
            return "the authentication server refused the camera before the TLS handshake (EAP-Failure: is EAP-TLS \
                    allowed for this identity?)"
                .to_owned();
        }
        if self.eap_started {
            return format!("authentication began but did not complete within {seconds} s");
        }
        format!("no authenticator answered on {interface} within {seconds} s (no EAP request)")
    }
}

/// The trial clock of a new configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trial {
    limit: Duration,
    counted: Duration,
    last: Option<Duration>,
}

/// What a trial says now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Continue {
        seconds_left: u64,
    },
    /// The new configuration authenticated: it becomes the configuration.
    Commit,
    /// Time is up without success: go back, for this reason.
    RollBack {
        reason: String,
    },
}

impl Trial {
    pub fn new(seconds: u32) -> Self {
        Self { limit: Duration::from_secs(seconds.into()), counted: Duration::ZERO, last: None }
    }

    /// Advances the clock to `now` (monotonic, any origin) counting the time since the last call
    /// only if the link is up (carrier, and the supplicant following it), and judges.
    pub fn tick(&mut self, now: Duration, link_up: bool, observed: &Observed, interface: &str) -> Verdict {
        if let Some(last) = self.last {
            if link_up {
                self.counted += now.saturating_sub(last);
            }
        }
        self.last = Some(now);
        if observed.succeeded {
            return Verdict::Commit;
        }
        if self.counted >= self.limit {
            return Verdict::RollBack { reason: observed.failure_reason(interface, self.limit.as_secs()) };
        }
        Verdict::Continue { seconds_left: self.seconds_left() }
    }

    pub fn seconds_left(&self) -> u64 {
        let left = self.limit.saturating_sub(self.counted);
        left.as_secs() + u64::from(left.subsec_nanos() > 0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn observed(events: &[Event]) -> Observed {
        let mut observed = Observed::default();
        for event in events {
            observed.observe(event);
        }
        observed
    }

    #[test]
    fn success_commits_and_counts_only_after_an_exchange_began() {
        let mut trial = Trial::new(20);
        let stale = observed(&[Event::EapSuccess]);
        assert_eq!(trial.tick(secs(0), true, &stale, "eth0"), Verdict::Continue { seconds_left: 20 });
        let ok = observed(&[Event::EapStarted, Event::EapMethod { method: "TLS".into() }, Event::EapSuccess]);
        assert_eq!(trial.tick(secs(5), true, &ok, "eth0"), Verdict::Commit);
    }

    #[test]
    fn the_clock_pauses_while_the_link_is_down() {
        let mut trial = Trial::new(20);
        let none = Observed::default();
        assert_eq!(trial.tick(secs(100), true, &none, "eth0"), Verdict::Continue { seconds_left: 20 });
        assert_eq!(trial.tick(secs(110), true, &none, "eth0"), Verdict::Continue { seconds_left: 10 });
        // Unplugged for an hour.
        assert_eq!(trial.tick(secs(3710), false, &none, "eth0"), Verdict::Continue { seconds_left: 10 });
        assert_eq!(trial.tick(secs(3719), true, &none, "eth0"), Verdict::Continue { seconds_left: 1 });
        assert!(matches!(
            trial.tick(Duration::from_millis(3_719_500), true, &none, "eth0"),
            Verdict::Continue { seconds_left: 1 }
        ));
        match trial.tick(secs(3720), true, &none, "eth0") {
            Verdict::RollBack { reason } => {
                assert_eq!(reason, "no authenticator answered on eth0 within 20 s (no EAP request)")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_reason_says_what_failed() {
        let tls = Event::EapMethod { method: "TLS".into() };
        let untrusted = observed(&[
            Event::EapStarted,
            tls.clone(),
            Event::ServerCertError {
                depth: 0,
                subject: "/CN=evil\nforged line".into(),
                error: "unable to get local issuer certificate".into(),
            },
            Event::EapFailure,
        ]);
        assert!(untrusted.failed());
        assert_eq!(
            untrusted.failure_reason("eth0", 20),
            "the authentication server's certificate (subject '/CN=evil\\nforged line') is not trusted: unable to get \
             local issuer certificate"
        );
        let mismatch = observed(&[Event::ServerCertError {
            depth: 0,
            subject: "/CN=other".into(),
            error: "Domain mismatch".into(),
        }]);
        assert!(mismatch.failure_reason("eth0", 20).contains("does not carry the name domain_match expects"));
        let refused = observed(&[Event::EapStarted, tls, Event::EapFailure]);
        assert!(refused.failure_reason("eth0", 20).contains("refused the camera's client certificate"));
        let early = observed(&[Event::EapStarted, Event::EapFailure]);
        assert!(early.failure_reason("eth0", 20).contains("before the TLS handshake"));
        let slow = observed(&[Event::EapStarted]);
        assert!(!slow.failed());
        assert_eq!(slow.failure_reason("eth0", 20), "authentication began but did not complete within 20 s");
        let failure_before_start = observed(&[Event::EapFailure]);
        assert_eq!(failure_before_start.failures, 0, "a failure of an exchange begun before this configuration");
    }

    #[test]
    fn a_failure_waits_for_the_deadline() {
        let mut trial = Trial::new(20);
        let refused = observed(&[Event::EapStarted, Event::EapFailure]);
        assert_eq!(trial.tick(secs(0), true, &refused, "eth0"), Verdict::Continue { seconds_left: 20 });
        assert_eq!(trial.tick(secs(19), true, &refused, "eth0"), Verdict::Continue { seconds_left: 1 });
        assert!(matches!(trial.tick(secs(20), true, &refused, "eth0"), Verdict::RollBack { .. }));
    }
}
