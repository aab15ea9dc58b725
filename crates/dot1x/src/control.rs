//! wpa_supplicant's control socket: a Unix datagram socket at `<control_dir>/<interface>`.
//!
//! The client binds a socket of its own in the control directory (wpa_supplicant answers to the
//! sender's address; the directory is root's, so nobody else can make one there) and connects
//! to wpa_supplicant's, so the kernel delivers only wpa_supplicant's datagrams to it: no other
//! local process can feed it forged events. Answers and events share the socket: events start
//! with `<level>`, answers never do; events read while waiting for an answer are queued.

use std::collections::VecDeque;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a command may take. wpa_supplicant answers at once; longer means it is gone or hung.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);
/// Prefix of client sockets, followed by `<pid>-<n>`.
const CLIENT_PREFIX: &str = ".camera-dot1x-";
/// Events carry certificates in hex: room for a large one.
const BUFFER: usize = 16 * 1024;

/// Why talking to wpa_supplicant failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    #[error("wpa_supplicant is not running on this interface: there is no control socket {}", .path.display())]
    Absent { path: PathBuf },
    #[error("wpa_supplicant's control socket {} does not answer (wpa_supplicant stopped?)", .path.display())]
    Refused {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot make a control client socket in {}", .dir.display())]
    Bind {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("wpa_supplicant did not answer {command} within {} s", ANSWER_TIMEOUT.as_secs())]
    Timeout { command: &'static str },
    #[error("wpa_supplicant refused {command} ({answer})")]
    Refusal { command: &'static str, answer: String },
    #[error("the control socket failed during {command}")]
    Io {
        command: &'static str,
        #[source]
        source: io::Error,
    },
}

/// A connection to one wpa_supplicant; its client socket is removed when dropped.
#[derive(Debug)]
pub struct Control {
    socket: UnixDatagram,
    local: PathBuf,
    events: VecDeque<String>,
    buffer: Vec<u8>,
}

impl Control {
    /// Connects to `<control_dir>/<interface>` (no ATTACH yet).
    pub fn connect(control_dir: &Path, interface: &str) -> Result<Self, ControlError> {
        let path = control_dir.join(interface);
        if !path.exists() {
            return Err(ControlError::Absent { path });
        }
        remove_stale_clients(control_dir);
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let local =
            control_dir.join(format!("{CLIENT_PREFIX}{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_file(&local);
        let socket =
            UnixDatagram::bind(&local).map_err(|source| ControlError::Bind { dir: control_dir.to_owned(), source })?;
        // From here on the socket file is removed by drop, whatever fails.
        let control = Self { socket, local, events: VecDeque::new(), buffer: vec![0; BUFFER] };
        match control.socket.connect(&path) {
            Ok(()) => Ok(control),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ControlError::Absent { path }),
            Err(source) => Err(ControlError::Refused { path, source }),
        }
    }

    /// Connects and subscribes to events.
    pub fn attach(control_dir: &Path, interface: &str) -> Result<Self, ControlError> {
        let mut control = Self::connect(control_dir, interface)?;
        control.expect_ok("ATTACH", "ATTACH")?;
        Ok(control)
    }

    /// Sends `command` and returns the answer. `name` names it in errors (a command may hold
    /// values; names never do). `FAIL` and `UNKNOWN COMMAND` answers are errors.
    pub fn request(&mut self, name: &'static str, command: &str) -> Result<String, ControlError> {
        self.socket.send(command.as_bytes()).map_err(|source| ControlError::Io { command: name, source })?;
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ControlError::Timeout { command: name });
            }
            match self.receive(left).map_err(|source| ControlError::Io { command: name, source })? {
                None => return Err(ControlError::Timeout { command: name }),
                Some(message) if message.starts_with('<') => self.events.push_back(message),
                Some(answer) => {
                    let trimmed = answer.trim_end();
                    if trimmed == "FAIL" || trimmed.starts_with("UNKNOWN COMMAND") {
                        return Err(ControlError::Refusal { command: name, answer: trimmed.to_owned() });
                    }
                    return Ok(answer);
                }
            }
        }
    }

    /// [`Control::request`] for commands that answer `OK`.
    pub fn expect_ok(&mut self, name: &'static str, command: &str) -> Result<(), ControlError> {
        let answer = self.request(name, command)?;
        if answer.trim_end() == "OK" {
            Ok(())
        } else {
            Err(ControlError::Refusal { command: name, answer: camera_log::escape_bounded(answer.trim_end(), 80) })
        }
    }

    /// The next event, waiting at most `timeout`; None when none came. Stray answers (to a
    /// command that timed out) are dropped.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<String>, ControlError> {
        if let Some(event) = self.events.pop_front() {
            return Ok(Some(event));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receive(left.max(Duration::from_millis(1))) {
                Ok(Some(message)) if message.starts_with('<') => return Ok(Some(message)),
                Ok(Some(_)) if !left.is_zero() => continue,
                Ok(_) => return Ok(None),
                Err(source) => return Err(ControlError::Io { command: "reading events", source }),
            }
        }
    }

    /// Forgets the events queued so far (they were about a configuration no longer in use).
    pub fn discard_events(&mut self) {
        self.events.clear();
    }

    fn receive(&mut self, timeout: Duration) -> io::Result<Option<String>> {
        self.socket.set_read_timeout(Some(timeout))?;
        match self.socket.recv(&mut self.buffer) {
            Ok(n) => Ok(Some(String::from_utf8_lossy(&self.buffer[..n]).into_owned())),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        // DETACH is a courtesy: wpa_supplicant drops monitors whose socket is gone.
        let _ = self.socket.send(b"DETACH");
        let _ = std::fs::remove_file(&self.local);
    }
}

/// Removes client sockets of processes that no longer run (a crash leaves them).
fn remove_stale_clients(control_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(control_dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(CLIENT_PREFIX)) else { continue };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A stand-in for wpa_supplicant's socket: answers PING with PONG after sending an event.
    #[test]
    fn answers_and_events_are_told_apart_and_the_client_socket_is_removed() {
        let dir = camera_test_support::TempDir::new("dot1x-control");
        let server = UnixDatagram::bind(dir.join("eth9")).unwrap();
        let stale = dir.join(format!("{CLIENT_PREFIX}4194304-0"));
        UnixDatagram::bind(&stale).unwrap();
        let mut control = Control::connect(dir.path(), "eth9").unwrap();
        assert!(!stale.exists(), "a dead process's client socket is removed");
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            let (n, from) = server.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"PING");
            let from = from.as_pathname().unwrap().to_owned();
            server.send_to(b"<3>CTRL-EVENT-EAP-STARTED EAP authentication started", &from).unwrap();
            server.send_to(b"PONG\n", &from).unwrap();
            let (n, _) = server.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"SET_NETWORK 0 x y");
            server.send_to(b"FAIL\n", &from).unwrap();
            server
        });
        assert_eq!(control.request("PING", "PING").unwrap(), "PONG\n");
        assert!(matches!(
            control.request("SET_NETWORK", "SET_NETWORK 0 x y"),
            Err(ControlError::Refusal { command: "SET_NETWORK", .. })
        ));
        assert_eq!(
            control.next_event(Duration::from_millis(10)).unwrap().as_deref(),
            Some("<3>CTRL-EVENT-EAP-STARTED EAP authentication started")
        );
        assert_eq!(control.next_event(Duration::from_millis(10)).unwrap(), None);
        let server = thread.join().unwrap();
        // Nobody answers: a timeout, not a hang.
        assert!(matches!(control.request("STATUS", "STATUS"), Err(ControlError::Timeout { command: "STATUS" })));
        let local = control.local.clone();
        assert!(local.exists());
        drop(control);
        assert!(!local.exists(), "the client socket is removed on drop");
        drop(server);
        assert!(matches!(Control::connect(dir.path(), "eth8"), Err(ControlError::Absent { .. })));
        // A socket file nobody listens on (wpa_supplicant killed): refused.
        assert!(matches!(Control::connect(dir.path(), "eth9"), Err(ControlError::Refused { .. })));
    }
}
