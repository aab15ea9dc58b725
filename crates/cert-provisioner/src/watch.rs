//! `--watch`: stays running and re-mints when an address changes, when the wall clock jumps
//! (NTP sync after a boot at 1970), and before the certificate expires. The web server runs the
//! same loop in a thread and swaps the served certificate from the callback.

use std::ops::ControlFlow;
use std::os::fd::AsFd;
use std::time::{Duration, SystemTime};

use camera_netlink::AddressWatcher;
use camera_pki::{MintedServer, SanName};
use camera_state::Layout;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use crate::config::CameraConfig;
use crate::provision::{
    camera_names, certificate_names, current_addresses, ensure_ca, lock_state, mint, ProvisionError,
};
use crate::{clock, log};

/// Why the watcher minted a new certificate.
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

/// How long the watcher sleeps at most: it saves the clock floor this often.
const HOUSEKEEPING: Duration = Duration::from_secs(3600);
/// Address changes come in bursts (an interface going up adds several); wait for the burst.
const SETTLE: Duration = Duration::from_millis(50);

/// What decides whether to mint: pure, so it is tested without a kernel.
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
    if now >= renew_at || now + Duration::from_secs(600) < not_before {
        return Some(MintReason::Renewal);
    }
    None
}

pub(crate) fn to_system_time(t: time::OffsetDateTime) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(t.unix_timestamp().max(0) as u64)
}

/// A timer that fires when CLOCK_REALTIME is set (ECANCELED on read).
fn clock_jump_timer() -> Result<TimerFd, nix::Error> {
    let timer = TimerFd::new(ClockId::CLOCK_REALTIME, TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC)?;
    arm(&timer)?;
    Ok(timer)
}

fn arm(timer: &TimerFd) -> Result<(), nix::Error> {
    // An absolute expiry far in the future: it never fires by itself, only cancels on a clock set.
    // 2038-01-19: the latest absolute time every target's time_t can hold.
    let far = TimeSpec::from_duration(Duration::from_secs(i32::MAX as u64 - 1));
    timer.set(
        Expiration::OneShot(far),
        TimerSetTimeFlags::TFD_TIMER_ABSTIME | TimerSetTimeFlags::TFD_TIMER_CANCEL_ON_SET,
    )
}

/// Whether the timer saw a clock set; re-arms it.
fn clock_jumped(timer: &TimerFd) -> bool {
    let mut buf = [0u8; 8];
    let jumped = matches!(nix::unistd::read(timer.as_fd(), &mut buf), Err(nix::errno::Errno::ECANCELED));
    if jumped {
        let _ = arm(timer);
    }
    jumped
}

/// Watches until `on_mint` says stop. `served` is the certificate minted before the call.
pub fn watch(
    layout: &Layout,
    config: &CameraConfig,
    mut served: MintedServer,
    mut on_mint: impl FnMut(&MintedServer, &MintReason) -> ControlFlow<()>,
) -> Result<(), ProvisionError> {
    let watch_error = |what: &str, e: &dyn std::fmt::Display| ProvisionError::Directory {
        path: layout.run_dir.clone(),
        source: std::io::Error::other(format!("{what}: {e}")),
    };
    let mut addresses = AddressWatcher::subscribe().map_err(|e| watch_error("netlink subscription", &e))?;
    let timer = clock_jump_timer().map_err(|e| watch_error("clock timer", &e))?;
    let renew_before = Duration::from_secs(config.renew_before_days as u64 * 86_400);
    let ca = {
        let _lock = lock_state(layout)?;
        ensure_ca(layout, config, SystemTime::now())?.0
    };
    loop {
        let (net_ready, clock_ready) = {
            let mut fds =
                [PollFd::new(addresses.as_fd(), PollFlags::POLLIN), PollFd::new(timer.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::try_from(HOUSEKEEPING).unwrap_or(PollTimeout::MAX)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(watch_error("poll", &e)),
            }
            let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), ready(&fds[1]))
        };
        let jumped = clock_ready && clock_jumped(&timer);
        if net_ready {
            std::thread::sleep(SETTLE);
            if let Err(e) = addresses.drain() {
                log::warn(&format!("netlink: {e}"));
            }
        }
        let now = SystemTime::now();
        let mut warnings = Vec::new();
        let wanted = camera_names(config, &current_addresses(&mut warnings));
        for w in warnings {
            log::warn(&w);
        }
        let reason = if jumped {
            Some(MintReason::ClockJump)
        } else {
            mint_reason(
                &served.names,
                &certificate_names(&ca, &wanted),
                to_system_time(served.not_before),
                to_system_time(served.not_after),
                renew_before,
                now,
            )
        };
        if let Err(e) = clock::save(layout, now) {
            log::warn(&format!("cannot save the clock floor: {e}"));
        }
        let Some(reason) = reason else { continue };
        let minted = {
            let _lock = lock_state(layout)?;
            mint(layout, config, &ca, &wanted, now)
        };
        match minted {
            Ok(minted) => {
                if on_mint(&minted, &reason).is_break() {
                    return Ok(());
                }
                served = minted;
            }
            // A full disk or similar: keep serving the old certificate, try again next event.
            Err(e) => log::warn(&format!("re-minting after {reason} failed: {e}")),
        }
    }
}
