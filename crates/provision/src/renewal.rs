//! When the served device certificate must be replaced: the decisions shared by provisioning
//! (keep the boot step's certificate or mint) and the watcher (mint after a change). Pure, so they
//! are tested without a kernel.

use std::time::{Duration, SystemTime};

use camera_pki::{MintedServer, SanName};

/// How far in the future a notBefore may lie before the certificate counts as not yet valid (a
/// clock that was set back).
const NOT_YET_VALID_SLACK: Duration = Duration::from_secs(600);

/// Why a new certificate is minted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MintReason {
    AddressChange { added: Vec<SanName>, removed: Vec<SanName> },
    ClockJump,
    Renewal,
}

impl std::fmt::Display for MintReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[SanName]| v.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        match self {
            Self::AddressChange { added, removed } => {
                write!(f, "addresses changed (added: [{}], removed: [{}])", list(added), list(removed))
            }
            Self::ClockJump => f.write_str("the wall clock jumped"),
            Self::Renewal => f.write_str("the certificate is due for renewal"),
        }
    }
}

/// Whether a certificate for `served` names, valid from `not_before` to `not_after`, must be
/// replaced at `now` by one for `wanted`: the names differ, it is due for renewal (`renew_before`
/// its end, or already expired), or it is not yet valid (the clock went back).
pub fn mint_reason(
    served: &[SanName],
    wanted: &[SanName],
    not_before: SystemTime,
    not_after: SystemTime,
    renew_before: Duration,
    now: SystemTime,
) -> Option<MintReason> {
    let added: Vec<SanName> = wanted.iter().filter(|n| !served.contains(n)).cloned().collect();
    let removed: Vec<SanName> = served.iter().filter(|n| !wanted.contains(n)).cloned().collect();
    if !added.is_empty() || !removed.is_empty() {
        return Some(MintReason::AddressChange { added, removed });
    }
    let renew_at = not_after.checked_sub(renew_before).unwrap_or(not_before);
    let not_yet_valid = now.checked_add(NOT_YET_VALID_SLACK).is_none_or(|later| later < not_before);
    if now >= renew_at || not_yet_valid {
        return Some(MintReason::Renewal);
    }
    None
}

/// [`mint_reason`] for a minted certificate.
pub fn reason_to_replace(
    served: &MintedServer,
    wanted: &[SanName],
    renew_before: Duration,
    now: SystemTime,
) -> Option<MintReason> {
    mint_reason(
        &served.names,
        wanted,
        to_system_time(served.not_before),
        to_system_time(served.not_after),
        renew_before,
        now,
    )
}

/// A certificate time as a `SystemTime` (times before 1970 as 1970; X.509 times end at year 9999,
/// well inside `SystemTime`).
pub fn to_system_time(t: time::OffsetDateTime) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(t.unix_timestamp()).unwrap_or(0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    fn at(days: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(20_000 * DAY + days * DAY)
    }

    fn names(list: &[&str]) -> Vec<SanName> {
        list.iter().map(|n| SanName::parse(n).unwrap()).collect()
    }

    #[test]
    fn same_names_inside_the_validity_need_nothing() {
        let n = names(&["10.0.0.5", "cam.local"]);
        assert_eq!(mint_reason(&n, &n, at(0), at(365), Duration::from_secs(30 * DAY), at(100)), None);
        // The order of the names does not matter.
        let reordered = names(&["cam.local", "10.0.0.5"]);
        assert_eq!(mint_reason(&n, &reordered, at(0), at(365), Duration::from_secs(30 * DAY), at(100)), None);
    }

    #[test]
    fn a_changed_name_says_what_was_added_and_removed() {
        let served = names(&["10.0.0.5", "cam.local"]);
        let wanted = names(&["10.0.0.6", "cam.local"]);
        let reason = mint_reason(&served, &wanted, at(0), at(365), Duration::from_secs(30 * DAY), at(1)).unwrap();
        assert_eq!(reason, MintReason::AddressChange { added: names(&["10.0.0.6"]), removed: names(&["10.0.0.5"]) });
        assert_eq!(reason.to_string(), "addresses changed (added: [10.0.0.6], removed: [10.0.0.5])");
    }

    #[test]
    fn renewal_is_due_before_the_end_and_when_not_yet_valid() {
        let n = names(&["cam.local"]);
        let renew = Duration::from_secs(30 * DAY);
        assert_eq!(mint_reason(&n, &n, at(0), at(365), renew, at(334)), None);
        assert_eq!(mint_reason(&n, &n, at(0), at(365), renew, at(335)), Some(MintReason::Renewal));
        assert_eq!(mint_reason(&n, &n, at(0), at(365), renew, at(400)), Some(MintReason::Renewal));
        // The clock went back more than ten minutes before notBefore.
        assert_eq!(mint_reason(&n, &n, at(10), at(365), renew, at(9)), Some(MintReason::Renewal));
        // A renewal window longer than the certificate: renew at once, no underflow.
        let huge = Duration::from_secs(u64::MAX);
        assert_eq!(mint_reason(&n, &n, at(0), at(365), huge, at(0)), Some(MintReason::Renewal));
        // The latest time there is: no overflow either.
        let end = SystemTime::UNIX_EPOCH + Duration::from_secs(i64::MAX as u64);
        assert_eq!(mint_reason(&n, &n, at(0), at(365), renew, end), Some(MintReason::Renewal));
    }

    #[test]
    fn certificate_times_convert_at_both_ends() {
        assert_eq!(to_system_time(time::OffsetDateTime::UNIX_EPOCH), SystemTime::UNIX_EPOCH);
        let before_1970 = time::OffsetDateTime::from_unix_timestamp(-86_400).unwrap();
        assert_eq!(to_system_time(before_1970), SystemTime::UNIX_EPOCH);
        let last = time::OffsetDateTime::from_unix_timestamp(253_402_300_799).unwrap();
        assert_eq!(to_system_time(last), SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799));
    }
}
