//! The clock floor. Cameras often boot without a real-time clock, at 1970; a certificate that
//! starts then would be fine, but one minted "now" when now is 1970 expires in 1971. So while the
//! clock is unset (earlier than the build time), notBefore is the floor: the build time, or the
//! last time this camera saw, whichever is later.
//!
//! A clock later than the build time is taken as set, and trusted both ways: it is what
//! certificates start from, and it is saved as the floor even when that lowers it. So one bad
//! jump forward (a spoofed NTP answer saying 2040) costs certificates that are not yet valid only
//! until the clock is set right again, never for good.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use camera_state::{read_optional, write_atomic, Layout, PUBLIC_MODE};
use time::OffsetDateTime;

/// Clients whose clocks run a little behind still accept a fresh certificate.
const BACKDATE: Duration = Duration::from_secs(300);

/// When this program was built (seconds since the epoch).
pub fn build_time() -> SystemTime {
    let secs: u64 = env!("CAMERA_BUILD_TIME").parse().unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Whole seconds since the epoch (0 for times before it).
pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The earliest notBefore at `now`: the build time once the clock is set; before that, the later
/// of the build time and the time saved in the state directory.
pub fn floor(layout: &Layout, now: SystemTime) -> SystemTime {
    if now >= build_time() {
        return build_time();
    }
    build_time().max(saved_time(layout).unwrap_or(UNIX_EPOCH))
}

fn saved_time(layout: &Layout) -> Option<SystemTime> {
    let bytes = read_optional(&layout.saved_clock()).ok()??;
    let secs: u64 = std::str::from_utf8(&bytes).ok()?.trim().parse().ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Saves a set clock (later than the build time) as the floor, forward or back.
pub fn save(layout: &Layout, now: SystemTime) -> std::io::Result<()> {
    if now <= build_time() || saved_time(layout).is_some_and(|saved| unix_seconds(saved) == unix_seconds(now)) {
        return Ok(());
    }
    let secs = unix_seconds(now);
    write_atomic(&layout.saved_clock(), format!("{secs}\n").as_bytes(), PUBLIC_MODE)
}

/// The notBefore for a certificate minted at `now`.
pub fn not_before(now: SystemTime, floor: SystemTime) -> OffsetDateTime {
    let start = now.checked_sub(BACKDATE).unwrap_or(UNIX_EPOCH).max(floor);
    OffsetDateTime::from_unix_timestamp(unix_seconds(start) as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
