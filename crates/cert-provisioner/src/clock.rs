//! The clock floor. Cameras often boot without a real-time clock, at 1970; a certificate that
//! starts then would be fine, but one minted "now" when now is 1970 expires in 1971. So while the
//! clock is unset (earlier than the build time), notBefore is the floor: the build time, or the
//! last time this camera saw, whichever is later.
//!
//! A clock later than the build time is taken as set, and trusted both ways: it is what
//! certificates start from, and it is saved as the floor even when that lowers it. So one bad
//! jump forward (a spoofed NTP answer saying 2040) costs certificates that are not yet valid only
//! until the clock is set right again, never for good.
//!
//! The saved time is read from flash, so it is checked like any input: a file that cannot be
//! read, is not a number, or is later than any certificate could start is ignored (the build time
//! is the floor) and replaced at the next save.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use camera_pki::CA_VALIDITY_DAYS;
use camera_state::{read_optional, write_atomic, Layout, PUBLIC_MODE};
use time::OffsetDateTime;

/// Clients whose clocks run a little behind still accept a fresh certificate.
const BACKDATE: Duration = Duration::from_secs(300);

/// The latest notBefore: a CA starting then still ends (ten years later) by 9999-12-31T23:59:59Z,
/// the last time X.509 can write. Nothing later is a time this camera could have seen.
pub const LATEST_START_UNIX: u64 = 253_402_300_799 - (CA_VALIDITY_DAYS as u64 + 1) * 86_400;

/// When this program was built (seconds since the epoch).
pub fn build_time() -> SystemTime {
    let secs: u64 = env!("CAMERA_BUILD_TIME").parse().unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs.min(LATEST_START_UNIX))
}

/// Whole seconds since the epoch (0 for times before it).
pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Why the saved clock is ignored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SavedClockError {
    #[error("cannot read the saved clock {}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the saved clock {} does not hold a number of seconds", path.display())]
    NotANumber { path: PathBuf },
    #[error("the saved clock {} says {seconds}, later than any certificate can start", path.display())]
    OutOfRange { path: PathBuf, seconds: u64 },
}

/// The time saved in the state directory: `Ok(None)` when there is none.
pub fn saved_time(layout: &Layout) -> Result<Option<SystemTime>, SavedClockError> {
    let path = layout.saved_clock();
    let bytes = match read_optional(&path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        Err(source) => return Err(SavedClockError::Read { path, source }),
    };
    let seconds: u64 = match std::str::from_utf8(&bytes).ok().and_then(|s| s.trim().parse().ok()) {
        Some(seconds) => seconds,
        None => return Err(SavedClockError::NotANumber { path }),
    };
    if seconds > LATEST_START_UNIX {
        return Err(SavedClockError::OutOfRange { path, seconds });
    }
    Ok(Some(UNIX_EPOCH + Duration::from_secs(seconds)))
}

/// The earliest notBefore at `now`: the build time once the clock is set; before that, the later
/// of the build time and the time saved in the state directory (an unusable one is ignored; the
/// provisioning run that reads it first says so).
pub fn floor(layout: &Layout, now: SystemTime) -> SystemTime {
    if now >= build_time() {
        return build_time();
    }
    build_time().max(saved_time(layout).ok().flatten().unwrap_or(UNIX_EPOCH))
}

/// Saves a set clock (later than the build time) as the floor, forward or back; nothing is
/// written when the file already holds this second. Every call may write flash: callers save at
/// start, on a re-mint and hourly, never per event.
pub fn save(layout: &Layout, now: SystemTime) -> std::io::Result<()> {
    let secs = unix_seconds(now);
    let unchanged = saved_time(layout).ok().flatten().is_some_and(|saved| unix_seconds(saved) == secs);
    if now <= build_time() || secs > LATEST_START_UNIX || unchanged {
        return Ok(());
    }
    write_atomic(&layout.saved_clock(), format!("{secs}\n").as_bytes(), PUBLIC_MODE)
}

/// The notBefore for a certificate minted at `now`.
pub fn not_before(now: SystemTime, floor: SystemTime) -> OffsetDateTime {
    let start = unix_seconds(now.checked_sub(BACKDATE).unwrap_or(UNIX_EPOCH).max(floor)).min(LATEST_START_UNIX);
    // In range by construction: at most LATEST_START_UNIX, far below i64::MAX and year 9999.
    OffsetDateTime::from_unix_timestamp(i64::try_from(start).unwrap_or(0)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_start_leaves_room_for_a_ca() {
        let latest = not_before(UNIX_EPOCH + Duration::from_secs(u64::MAX / 4), UNIX_EPOCH);
        assert_eq!(latest.unix_timestamp(), LATEST_START_UNIX as i64);
        let end = latest + time::Duration::days(CA_VALIDITY_DAYS);
        assert!(end.year() <= 9999, "{end}");
    }

    #[test]
    fn not_before_is_backdated_and_never_earlier_than_the_floor() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(not_before(now, UNIX_EPOCH).unix_timestamp(), 1_800_000_000 - 300);
        let floor = now + Duration::from_secs(60);
        assert_eq!(not_before(now, floor).unix_timestamp(), 1_800_000_060);
        assert_eq!(not_before(UNIX_EPOCH, UNIX_EPOCH).unix_timestamp(), 0);
    }
}
