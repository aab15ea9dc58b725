//! `camera-web --respawn`: a small supervisor for the init script. The release build aborts on
//! panic, so a bug in one request handler would otherwise leave the camera without its UI
//! until the next reboot. The supervisor forks the server, and starts it again when it dies
//! (after 1 s, doubling up to a minute while it keeps dying young). SIGTERM and SIGINT are
//! passed on and end both. The server dies with the supervisor (parent-death signal), so a
//! SIGKILL to the pidfile's process leaves nothing behind.
//!
//! A server that fails before it is ready on its first start (bad config, port taken) is not
//! retried: the supervisor exits with its status, as the plain program would.

use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, getpid, getppid, ForkResult, Pid};

/// A server that ran this long resets the back-off.
const HEALTHY: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Runs `serve` in a child process, again and again while it crashes. `serve` calls its argument
/// once it is listening. Must be called before any thread is started (it forks).
pub fn supervise(serve: impl Fn(&dyn Fn()) -> ExitCode) -> ExitCode {
    match supervise_inner(&serve) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("camera-web: the supervisor failed ({e}); running the server without it");
            // The server's own SIGTERM handling needs the signals the supervisor blocked.
            let _ = supervisor_signals().thread_unblock();
            serve(&|| {})
        }
    }
}

/// What the supervisor waits for: a stop request, or its server ending.
fn supervisor_signals() -> SigSet {
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGCHLD] {
        signals.add(signal);
    }
    signals
}

fn supervise_inner(serve: &impl Fn(&dyn Fn()) -> ExitCode) -> Result<ExitCode, nix::Error> {
    let signals = supervisor_signals();
    signals.thread_block()?;
    let signal_fd = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    let supervisor = getpid();
    let mut backoff = Duration::from_secs(1);
    let mut first_start = true;
    loop {
        let started = Instant::now();
        // The server writes one byte here once it listens.
        let (ready_read, ready_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        // SAFETY: no other thread exists yet (the caller runs before the runtime is built), so
        // the child holds no lock another thread could have taken, and may run any code.
        let child = match unsafe { fork() }? {
            ForkResult::Child => {
                let _ = signals.thread_unblock();
                // Die with the supervisor; if it is already gone, do not serve unsupervised.
                if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err() || getppid() != supervisor {
                    std::process::exit(1);
                }
                drop(signal_fd);
                drop(ready_read);
                let code = serve(&|| {
                    let _ = nix::unistd::write(&ready_write, b"r");
                });
                std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 });
            }
            ForkResult::Parent { child } => child,
        };
        drop(ready_write);
        let status = loop {
            match wait_for(child, &signal_fd, None)? {
                Wake::Stop(signal) => return Ok(stop(child, signal)),
                Wake::Exited(status) => break status,
                Wake::Timeout => {}
            }
        };
        let lived = started.elapsed();
        let clean_exit = matches!(status, WaitStatus::Exited(_, 0));
        let was_ready = nix::unistd::read(&ready_read, &mut [0u8; 1]).is_ok_and(|n| n == 1);
        if clean_exit || (first_start && !was_ready) {
            return Ok(if clean_exit { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        first_start = false;
        if lived >= HEALTHY {
            backoff = Duration::from_secs(1);
        }
        eprintln!(
            "camera-web: the server stopped ({}) after {} s; starting it again in {} s",
            describe(status),
            lived.as_secs(),
            backoff.as_secs()
        );
        if let Wake::Stop(_) = wait_for(Pid::from_raw(-1), &signal_fd, Some(backoff))? {
            return Ok(ExitCode::SUCCESS);
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

enum Wake {
    Stop(Signal),
    Exited(WaitStatus),
    Timeout,
}

/// Waits until `child` ends, a stop signal arrives, or `timeout` passes.
fn wait_for(child: Pid, signal_fd: &SignalFd, timeout: Option<Duration>) -> Result<Wake, nix::Error> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        if child.as_raw() > 0 {
            match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => {}
                Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => return Ok(Wake::Exited(status)),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        let left = match deadline {
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) => PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
                None => return Ok(Wake::Timeout),
            },
            None => PollTimeout::NONE,
        };
        let mut fds = [PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, left) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e),
        }
        while let Ok(Some(info)) = signal_fd.read_signal() {
            // SIGCHLD needs nothing here: the child is checked at the top of the loop.
            if let Ok(signal @ (Signal::SIGTERM | Signal::SIGINT)) = Signal::try_from(info.ssi_signo as i32) {
                return Ok(Wake::Stop(signal));
            }
        }
    }
}

/// Passes the stop signal on and waits for the server to finish (the init script gives up after 10 s).
fn stop(child: Pid, signal: Signal) -> ExitCode {
    let _ = kill(child, signal);
    let _ = waitpid(child, None);
    ExitCode::SUCCESS
}

fn describe(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("exit status {code}"),
        WaitStatus::Signaled(_, signal, _) => format!("killed by {}", signal.as_str()),
        other => format!("{other:?}"),
    }
}
