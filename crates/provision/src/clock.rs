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

pub use camera_state::unix_seconds;

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

/// How often, at most, the floor is written while the clock runs forward. The state directory is
/// on flash, and re-mints follow address changes, which come about once a second on a LAN with
/// churning router advertisements or a flapping DHCP server. A power cut loses at most this much
/// of the floor: a camera that then boots without a clock mints certificates starting up to this
/// much earlier than they could have, which no client minds.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(3600);

/// Saves a set clock (later than the build time) as the floor, when the saved one is missing,
/// unusable, at least [`SAVE_INTERVAL`] behind, or ahead of the clock (a clock set back is
/// trusted: a spoofed jump forward must not stay the floor). Otherwise nothing is written.
///
/// The rule reads only the saved file, so it holds across every caller (the boot step, the
/// watcher in either program, a restarted web server): however often this is called, the clock
/// running forward writes the file at most once per interval. Returns how long until a call
/// could write again (the time to sleep before the next periodic save): the whole interval after
/// a write or while the clock is unset (setting it wakes the watcher anyway).
pub fn save(layout: &Layout, now: SystemTime) -> std::io::Result<Duration> {
    let secs = unix_seconds(now);
    if now <= build_time() || secs > LATEST_START_UNIX {
        return Ok(SAVE_INTERVAL);
    }
    if let Ok(Some(saved)) = saved_time(layout) {
        let behind = secs.checked_sub(unix_seconds(saved)).map(Duration::from_secs);
        if let Some(behind) = behind.filter(|behind| *behind < SAVE_INTERVAL) {
            return Ok(SAVE_INTERVAL - behind);
        }
    }
    write_atomic(&layout.saved_clock(), format!("{secs}\n").as_bytes(), PUBLIC_MODE)?;
    Ok(SAVE_INTERVAL)
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
