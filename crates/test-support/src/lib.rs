//! What the crates' integration tests share (a dev-dependency only, never in what ships):
//! temporary directories, polling until something happens, running the openssl CLI, and when the
//! power-cut tests kill ([`kill_schedule`]). Every helper panics with what went wrong: a failed
//! helper is a failed test.

pub mod kill_schedule;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A fresh directory under the system temp dir, removed (with everything in it) when dropped.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `camera-test-<tag>-<pid>-<n>`: unique within the test process and across processes.
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("camera-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.0.join(p)
    }

    /// `state/` inside this directory (not created: the programs under test create it).
    pub fn state(&self) -> PathBuf {
        self.0.join("state")
    }

    /// `run/` inside this directory (not created).
    pub fn run(&self) -> PathBuf {
        self.0.join("run")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Empty once handed on (e.g. a stopped camera gives its directory back for a restart).
        if self.0.as_os_str().is_empty() || std::fs::remove_dir_all(&self.0).is_ok() {
            return;
        }
        // Directories a test made unreadable must be opened again before removal.
        let _ = Command::new("chmod").arg("-R").arg("u+rwx").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `f` every 20 ms until it returns Some (returned) or `timeout` passes (None).
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`wait_for`] a condition; panics with `what` if it does not hold within `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let held = wait_for(timeout, || condition().then_some(()));
    assert!(held.is_some(), "timed out waiting until {what}");
}

/// Runs `cmd`; panics with its stdout and stderr unless it exits 0.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The openssl CLI in `dir`; panics with what it said unless it exits 0.
pub fn openssl(dir: &Path, args: &[&str]) -> Output {
    run(Command::new("openssl").args(args).current_dir(dir))
}

/// The openssl CLI reading `input` on stdin; its stdout as text. Panics with its stderr (never
/// the input, which may be a key) unless it exits 0.
pub fn openssl_stdin(args: &[&str], input: &[u8]) -> String {
    String::from_utf8(openssl_stdin_bytes(args, input)).expect("openssl printed UTF-8")
}

/// [`openssl_stdin`] for binary output (DER).
pub fn openssl_stdin_bytes(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run the openssl CLI ({e})"));
    child.stdin.take().expect("openssl's stdin").write_all(input).expect("write to openssl");
    let out = child.wait_with_output().expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    /// As a user, only the chmod fallback removes the locked subdirectory; root is not stopped
    /// by its mode, so there the test only shows that everything goes.
    fn a_temp_dir_with_an_unreadable_subdirectory_is_removed() {
        let dir = TempDir::new("self-test");
        let path = dir.path().to_owned();
        let locked = dir.join("locked");
        std::fs::create_dir_all(locked.join("inner")).unwrap();
        std::fs::write(locked.join("inner/file"), b"x").unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        drop(dir);
        assert!(!path.exists(), "{} left behind", path.display());
    }

    #[test]
    fn temp_dirs_are_distinct() {
        let (a, b) = (TempDir::new("same"), TempDir::new("same"));
        assert_ne!(a.path(), b.path());
        assert!(a.path().is_dir() && b.path().is_dir());
    }

    #[test]
    fn wait_for_gives_up_after_the_timeout_and_returns_what_appears() {
        let start = Instant::now();
        assert_eq!(wait_for(Duration::from_millis(100), || None::<()>), None);
        assert!(start.elapsed() >= Duration::from_millis(100));
        let mut calls = 0;
        assert_eq!(
            wait_for(Duration::from_secs(5), || {
                calls += 1;
                (calls == 3).then_some(calls)
            }),
            Some(3)
        );
    }

    #[test]
    #[should_panic(expected = "timed out waiting until never")]
    fn wait_until_panics_with_what_it_waited_for() {
        wait_until("never", Duration::from_millis(50), || false);
    }

    #[test]
    #[should_panic(expected = "load certificate")]
    fn openssl_stdin_panics_with_openssl_s_words() {
        openssl_stdin(&["x509", "-noout"], b"not a certificate");
    }

    #[test]
    fn openssl_stdin_returns_stdout() {
        assert!(openssl_stdin(&["version"], b"").starts_with("OpenSSL"));
    }
}
