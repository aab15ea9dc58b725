//! What the crates' integration tests share (a dev-dependency only, never in what ships):
//! temporary directories, polling until something happens, running the openssl CLI (verifying,
//! self-signed certificates), free ports, PEM text ([`pem`]), a real Pebble
//! ([`pebble`]), a scripted ACME CA that can misbehave, go down and suggest renewal windows
//! ([`scripted_acme`]), a fleet of cameras each in a namespace of its own ([`fleet`]), an 802.1X switch port with its site PKI and the camera's wpa_supplicant
//! ([`dot1x`]), running a test inside a private network namespace ([`netns`]), and when the
//! power-cut tests kill ([`kill_schedule`]). Every helper panics with what went wrong: a failed
//! helper is a failed test.

pub mod dot1x;
pub mod fleet;
pub mod kill_schedule;
pub mod netns;
pub mod pebble;
pub mod pem;
pub mod scripted_acme;

// The netns helpers under the names dependents that call this crate `camera-testns` use.
pub use netns::{in_private_netns, inside_private_netns, ip, sysctl, try_ip, wait_for_ipv6_settled, NetnsSetup};

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A fresh directory under the system temp dir (`camera-test-<tag>-<random>`, made by `tempfile`),
/// removed with everything in it when dropped, unreadable subdirectories too.
#[derive(Debug)]
pub struct TempDir(Option<tempfile::TempDir>);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("camera-test-{tag}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("create a temporary directory for {tag}: {e}"));
        Self(Some(dir))
    }

    /// # Panics
    /// After [`TempDir::take`].
    pub fn path(&self) -> &Path {
        self.0.as_ref().expect("a directory not handed on").path()
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path().join(p)
    }

    /// `state/` inside this directory (not created: the programs under test create it).
    pub fn state(&self) -> PathBuf {
        self.join("state")
    }

    /// `run/` inside this directory (not created).
    pub fn run(&self) -> PathBuf {
        self.join("run")
    }

    /// Hands the directory on (e.g. a stopped camera's, for a restart), leaving this value empty:
    /// its drop then removes nothing.
    pub fn take(&mut self) -> TempDir {
        TempDir(self.0.take())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let Some(dir) = self.0.take() else { return };
        let path = dir.path().to_owned();
        if dir.close().is_ok() {
            return;
        }
        // Directories a test made unreadable must be opened again before removal.
        let _ = Command::new("chmod").arg("-R").arg("u+rwx").arg(&path).status();
        let _ = std::fs::remove_dir_all(&path);
    }
}

/// `N` different free TCP ports on 127.0.0.1: the listeners are held until all are chosen, as a
/// port released at once may be handed out again by the next bind.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<_> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind 127.0.0.1:0: {e}")))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("a bound listener's address").port())
}

/// One free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let [port] = free_ports();
    port
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
    run_stdin(Command::new("openssl").args(args), input).stdout
}

/// Runs `cmd` with `input` on its stdin; panics with its stderr (never the input, which may be a
/// key) unless it exits 0.
pub fn run_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
    child.stdin.take().expect("its stdin").write_all(input).expect("write its input");
    let out = child.wait_with_output().expect("it runs");
    assert!(
        out.status.success(),
        "{:?} {:?} failed: {}",
        cmd.get_program(),
        cmd.get_args().collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What `openssl verify` said.
#[derive(Debug)]
pub struct Verification {
    /// It exited 0 (the chain and every check given held).
    pub accepted: bool,
    /// Its stdout and stderr.
    pub said: String,
}

/// `openssl verify -x509_strict` of `leaf` trusting only `anchor` (no system store), with
/// `untrusted` as the intermediates a server sends, for `-purpose sslserver` unless `extra` names
/// another purpose, plus `extra` (e.g. `-verify_ip 10.0.0.1`).
pub fn openssl_verify(anchor: &Path, untrusted: Option<&Path>, leaf: &Path, extra: &[&str]) -> Verification {
    let mut cmd = Command::new("openssl");
    cmd.args(["verify", "-x509_strict"]);
    if !extra.contains(&"-purpose") {
        cmd.args(["-purpose", "sslserver"]);
    }
    cmd.args(["-no-CApath", "-no-CAstore", "-CAfile"]).arg(anchor);
    if let Some(untrusted) = untrusted {
        cmd.arg("-untrusted").arg(untrusted);
    }
    let out = cmd.args(extra).arg(leaf).output().unwrap_or_else(|e| panic!("cannot run the openssl CLI ({e})"));
    Verification {
        accepted: out.status.success(),
        said: String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    }
}

/// [`openssl_verify`] of a chain as DER (leaf first, then what the server sends) against an anchor
/// as PEM.
pub fn openssl_verify_der(chain: &[impl AsRef<[u8]>], anchor_pem: &str, extra: &[&str]) -> Verification {
    let work = TempDir::new("verify");
    let (anchor, untrusted, leaf) = (work.join("anchor.pem"), work.join("untrusted.pem"), work.join("leaf.pem"));
    std::fs::write(&anchor, anchor_pem).expect("write the anchor");
    let (first, rest) = chain.split_first().expect("a chain with a leaf");
    std::fs::write(&leaf, pem::encode("CERTIFICATE", first.as_ref())).expect("write the leaf");
    let rest: String = rest.iter().map(|der| pem::encode("CERTIFICATE", der.as_ref())).collect();
    if rest.is_empty() {
        return openssl_verify(&anchor, None, &leaf, extra);
    }
    std::fs::write(&untrusted, rest).expect("write the intermediates");
    openssl_verify(&anchor, Some(&untrusted), &leaf, extra)
}

/// The key `openssl req -x509` signs a self-signed certificate with.
#[derive(Debug, Clone, Copy)]
pub enum SelfSignedKey<'a> {
    /// A new P-256 key, written (unencrypted) to this file.
    NewP256(&'a str),
    /// The key in this file.
    Existing(&'a str),
}

/// A self-signed certificate made by `openssl req -x509` in `dir` (an installer's or a factory's
/// CA, as the openssl CLI makes them): `key`, `subject`, `days`, and each of `extensions` as an
/// `-addext` (e.g. `keyUsage=critical,keyCertSign,cRLSign`), written to `cert`.
pub fn openssl_self_signed(
    dir: &Path,
    key: SelfSignedKey<'_>,
    cert: &str,
    subject: &str,
    days: u32,
    extensions: &[&str],
) {
    let days = days.to_string();
    let mut args = vec!["req", "-x509"];
    match key {
        SelfSignedKey::NewP256(file) => {
            args.extend(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", file]);
        }
        SelfSignedKey::Existing(file) => args.extend(["-new", "-key", file]),
    }
    args.extend(["-days", &days, "-subj", subject, "-out", cert]);
    for extension in extensions {
        args.extend(["-addext", extension]);
    }
    openssl(dir, &args);
}

/// Makes `command`'s process get SIGKILL when the thread that spawns it ends
/// (`PR_SET_PDEATHSIG`): a test's servers and tools die with the test, however it ends.
pub fn dies_with_spawner(command: &mut Command) -> &mut Command {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which is
    // async-signal-safe; it allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from)
        })
    }
}

/// Spawns `command` (stdout and stderr to `log`, else discarded) so that it dies with the
/// spawning thread ([`dies_with_spawner`]).
pub fn spawn_dying(command: &mut Command, log: Option<std::fs::File>) -> Child {
    command.stdin(Stdio::null());
    match log {
        Some(log) => {
            command.stdout(log.try_clone().expect("dup the log")).stderr(log);
        }
        None => {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    dies_with_spawner(command).spawn().unwrap_or_else(|e| panic!("cannot start {:?}: {e}", command.get_program()))
}

/// Adds camera-web's arguments for `dir`'s `config.json`, `state/` and `run/` (the layout every
/// test camera, and each camera of a fleet, has).
pub fn camera_web_dirs<'c>(command: &'c mut Command, dir: &Path) -> &'c mut Command {
    command
        .arg("--config")
        .arg(dir.join("config.json"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--run-dir")
        .arg(dir.join("run"))
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
    fn a_taken_temp_dir_stays_until_its_new_owner_drops_it() {
        let mut first = TempDir::new("taken");
        let path = first.path().to_owned();
        let second = first.take();
        drop(first);
        assert!(path.is_dir(), "dropped by the value it was taken from");
        drop(second);
        assert!(!path.exists());
    }

    /// Free means free when asked: another test of this binary may take one of the ports between
    /// the answer and the bind (the kernel hands a port that was just let go out again), so a set
    /// that cannot all be bound is asked for again; a `free_ports` that never gives bindable
    /// distinct ports still fails.
    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let bound = (0..5).any(|_| {
            let ports: [u16; 4] = free_ports();
            for (i, port) in ports.iter().enumerate() {
                assert!(!ports[..i].contains(port), "{ports:?}");
            }
            let listeners: Vec<_> = ports.iter().map(|p| std::net::TcpListener::bind(("127.0.0.1", *p))).collect();
            listeners.iter().all(Result::is_ok)
        });
        assert!(bound, "five sets of free ports in a row could not all be bound");
    }

    #[test]
    fn openssl_verify_accepts_a_self_signed_server_certificate_and_refuses_other_names() {
        let dir = TempDir::new("verify-self-test");
        openssl_self_signed(
            dir.path(),
            SelfSignedKey::NewP256("ca.key"),
            "ca.crt",
            "/CN=Self Test CA",
            30,
            &["basicConstraints=critical,CA:true", "keyUsage=critical,keyCertSign,cRLSign"],
        );
        let ca = dir.join("ca.crt");
        let as_ca = openssl_verify(&ca, None, &ca, &["-purpose", "any"]);
        assert!(as_ca.accepted && as_ca.said.contains(": OK"), "{}", as_ca.said);
        openssl_self_signed(
            dir.path(),
            SelfSignedKey::Existing("ca.key"),
            "leaf.crt",
            "/CN=leaf",
            30,
            &["subjectAltName=IP:127.0.0.1"],
        );
        let wrong_ip = openssl_verify(&ca, None, &dir.join("leaf.crt"), &["-verify_ip", "127.0.0.2"]);
        assert!(!wrong_ip.accepted, "{}", wrong_ip.said);
        let der = openssl_stdin_bytes(&["x509", "-outform", "DER"], &std::fs::read(&ca).unwrap());
        let pem_ca = std::fs::read_to_string(&ca).unwrap();
        let from_der = openssl_verify_der(&[der], &pem_ca, &["-purpose", "any"]);
        assert!(from_der.accepted, "{}", from_der.said);
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
