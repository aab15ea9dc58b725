//! `--watch`: stays running and re-mints when an address changes, when the wall clock jumps
//! (NTP sync after a boot at 1970), and before the certificate expires. The web server runs the
//! same loop in a thread and swaps the served certificate from the callback.
//!
//! Flash wear: every wakeup offers the clock floor to [`clock::save`], which writes it at most once
//! per [`clock::SAVE_INTERVAL`] however many re-mints address churn causes; the loop also wakes
//! when the next save is due, so the floor on flash is never much more than that interval old.

use std::ops::ControlFlow;
use std::os::fd::AsFd;
use std::time::{Duration, Instant, SystemTime};

use camera_config::CameraConfig;
use camera_log as log;
use camera_netlink::AddressWatcher;
use camera_pki::MintedServer;
use camera_state::Layout;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use crate::provision::{camera_names, certificate_names, current_addresses, ensure_ca, lock_state, mint};
use crate::renewal::{reason_to_replace, MintReason};
use crate::{clock, ProvisionError};

/// The longest sleep: how often renewal is checked when nothing else happens.
const HOUSEKEEPING: Duration = Duration::from_secs(3600);
/// Address changes come in bursts (an interface going up adds several); wait for the burst.
const SETTLE: Duration = Duration::from_millis(50);

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

/// What woke the watcher.
struct Wakeup {
    addresses: bool,
    clock: bool,
}

/// Sleeps until an address or link changes, the clock is set, or `timeout` passes.
fn wait(addresses: &AddressWatcher, timer: &TimerFd, timeout: Duration) -> Result<Wakeup, ProvisionError> {
    let mut fds = [PollFd::new(addresses.as_fd(), PollFlags::POLLIN), PollFd::new(timer.as_fd(), PollFlags::POLLIN)];
    // Rounded up: a sub-millisecond remainder must not spin with a zero timeout.
    let millis = timeout.as_millis().saturating_add(u128::from(timeout.subsec_nanos() % 1_000_000 != 0));
    match poll(&mut fds, PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => {}
        Err(e) => return Err(ProvisionError::Poll(e)),
    }
    let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
    Ok(Wakeup { addresses: ready(&fds[0]), clock: ready(&fds[1]) })
}

/// Watches until `on_mint` says stop. `served` is the certificate minted before the call.
///
/// Subscribes first and then compares the addresses at once, without waiting: an address that
/// changed between the caller's provisioning (its read of the addresses) and the subscription is
/// followed right away, and every later change wakes the loop.
pub fn watch(
    layout: &Layout,
    config: &CameraConfig,
    mut served: MintedServer,
    mut on_mint: impl FnMut(&MintedServer, &MintReason) -> ControlFlow<()>,
) -> Result<(), ProvisionError> {
    let mut addresses = AddressWatcher::subscribe().map_err(ProvisionError::Subscribe)?;
    let timer = clock_jump_timer().map_err(ProvisionError::ClockTimer)?;
    let ca = {
        let _lock = lock_state(layout)?;
        ensure_ca(layout, config, SystemTime::now())?.0
    };
    // After a failed save (flash read-only or full) the next try waits an interval: retrying at
    // every wakeup would log a warning per netlink event.
    let mut retry_save_at: Option<Instant> = None;
    let mut wakeup = Wakeup { addresses: false, clock: false };
    loop {
        let jumped = wakeup.clock && clock_jumped(&timer);
        if wakeup.addresses {
            std::thread::sleep(SETTLE);
            if let Err(e) = addresses.drain() {
                log::warn(&format!("netlink: {}", log::chain(&e)));
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
            reason_to_replace(&served, &certificate_names(&ca, &wanted), config.renew_before(), now)
        };
        let mut minted = None;
        if let Some(reason) = reason {
            let result = {
                let _lock = lock_state(layout)?;
                mint(layout, config, &ca, &wanted, now)
            };
            match result {
                Ok(new) => minted = Some((new, reason)),
                // A full disk or similar: keep serving the old certificate, try again next event.
                Err(e) => log::warn(&format!("re-minting after {reason} failed: {}", log::chain(&e))),
            }
        }
        let next_save = match retry_save_at.map(|at| at.saturating_duration_since(Instant::now())) {
            Some(wait) if !wait.is_zero() => wait,
            _ => match clock::save(layout, now) {
                Ok(due) => {
                    retry_save_at = None;
                    due
                }
                Err(e) => {
                    log::warn(&format!("cannot save the clock floor to {}: {e}", layout.saved_clock().display()));
                    retry_save_at = Some(Instant::now() + clock::SAVE_INTERVAL);
                    clock::SAVE_INTERVAL
                }
            },
        };
        if let Some((new, reason)) = minted {
            if on_mint(&new, &reason).is_break() {
                return Ok(());
            }
            served = new;
        }
        wakeup = wait(&addresses, &timer, next_save.min(HOUSEKEEPING))?;
    }
}
