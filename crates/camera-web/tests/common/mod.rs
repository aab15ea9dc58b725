//! Starts the real `camera-web` binary with its own state and run dirs on free loopback ports,
//! and talks to it with real clients (curl, openssl) that trust only the camera's `cacert.crt`.
#![allow(dead_code)]

pub mod client;

pub mod scep;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// Each test binary uses some of these.
#[allow(unused_imports)]
pub use camera_test_support::{
    free_port, openssl, openssl_self_signed, openssl_stdin, openssl_verify, openssl_verify_der, pem, run, wait_for,
    wait_until, SelfSignedKey, TempDir,
};

pub const PASSWORD: &str = "correct horse battery";

/// A running camera-web; killed on drop.
pub struct Camera {
    child: Child,
    pub dir: TempDir,
    pub https: String,
    pub http: String,
    pub log: Arc<Mutex<Vec<String>>>,
    /// Set once the server's stderr has been read to its end.
    log_complete: Arc<AtomicBool>,
    /// The state directory is a mount only the server sees ([`Camera::start_on_small_state_disk`]).
    private_state: bool,
}

impl Camera {
    pub fn start() -> Self {
        Self::start_with(r#"{"camera": {"loopback": true}}"#)
    }

    pub fn start_with(config: &str) -> Self {
        Self::start_in(TempDir::new("cam"), config)
    }

    /// Starts on an existing directory (a restart keeps state).
    pub fn start_in(dir: TempDir, config: &str) -> Self {
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        let mut command = camera_web_command(dir.path());
        command.args(["--https", "127.0.0.1:0", "--http", "127.0.0.1:0"]);
        Self::spawn(dir, command)
    }

    /// Starts listening on the given addresses (inside a private network namespace).
    pub fn start_listening(dir: TempDir, config: &str, https: &str, http: &str) -> Self {
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        let mut command = camera_web_command(dir.path());
        command.args(["--https", https, "--http", http]);
        Self::spawn(dir, command)
    }

    /// Starts with the state directory on a tmpfs of `kib` KiB, mounted in a mount namespace of
    /// the server's own (`unshare -rm`): a flash that fills up. The test reaches the files
    /// through [`Camera::state_as_seen_by_server`].
    pub fn start_on_small_state_disk(dir: TempDir, config: &str, kib: u32) -> Self {
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        let inner = camera_web_command(dir.path());
        let mut command = Command::new("unshare");
        command
            .args(["-rm", "sh", "-c", r#"mount -t tmpfs -o size="$1"k tmpfs "$2" && shift 2 && exec "$@""#, "sh"])
            .arg(kib.to_string())
            .arg(dir.path().join("state"))
            .arg(inner.get_program())
            .args(inner.get_args())
            .args(["--https", "127.0.0.1:0", "--http", "127.0.0.1:0"]);
        let mut camera = Self::spawn(dir, command);
        camera.private_state = true;
        camera
    }

    /// The state directory as the server sees it (through its mount namespace).
    pub fn state_as_seen_by_server(&self) -> PathBuf {
        let state = self.dir.path().join("state");
        PathBuf::from(format!("/proc/{}/root{}", self.pid(), state.display()))
    }

    fn spawn(dir: TempDir, mut command: Command) -> Self {
        let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("camera-web starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log_complete = Arc::new(AtomicBool::new(false));
        let (log2, complete) = (log.clone(), log_complete.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("camera-web: listening on https://") {
                    let (https, http) = rest.split_once(" (HTTP ").unwrap();
                    let _ = tx.send((https.to_owned(), http.trim_end_matches(')').to_owned()));
                }
                log2.lock().unwrap().push(line);
            }
            complete.store(true, Ordering::SeqCst);
        });
        let (https, http) = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addrs) => addrs,
            Err(_) => {
                let _ = child.kill();
                panic!("camera-web did not start: {:?}", log.lock().unwrap());
            }
        };
        Self { child, dir, https, http, log, log_complete, private_state: false }
    }

    pub fn ca_path(&self) -> PathBuf {
        if self.private_state {
            self.state_as_seen_by_server().join("ca.crt")
        } else {
            self.dir.path().join("state/ca.crt")
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.https)
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Stops the server and hands back its directory (for a restart).
    pub fn stop(mut self) -> TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir.take()
    }

    /// Stops the server and returns all it logged: its stderr read to the end, so no line is
    /// still on its way.
    pub fn stop_for_log(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        wait_until("camera-web's log is read to its end", Duration::from_secs(10), || {
            self.log_complete.load(Ordering::SeqCst)
        });
        self.log_text()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// curl trusting only the camera CA; returns (status, body).
    pub fn curl(&self, args: &[&str]) -> (u16, Vec<u8>) {
        curl_with_ca(&self.ca_path(), args)
    }

    pub fn curl_json(&self, args: &[&str]) -> (u16, serde_json::Value) {
        let (status, body) = self.curl(args);
        let value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("not JSON ({status}): {}", String::from_utf8_lossy(&body)));
        (status, value)
    }

    /// Sets the admin password through the API.
    pub fn setup(&self) {
        let (status, body) = self.curl_json(&[
            "-X",
            "POST",
            &self.url("/api/v1/setup"),
            "-H",
            "Content-Type: application/json",
            "-d",
            &format!(r#"{{"password":"{PASSWORD}"}}"#),
        ]);
        assert_eq!(status, 200, "{body}");
    }

    pub fn admin(&self) -> String {
        format!("admin:{PASSWORD}")
    }

    /// The certificate chain served on a new handshake, as PEM blocks (leaf first).
    pub fn served_chain(&self) -> Vec<String> {
        served_chain(&self.https)
    }

    pub fn served_leaf_sha256(&self) -> String {
        let chain = self.served_chain();
        let out = openssl_stdin(&["x509", "-noout", "-fingerprint", "-sha256"], chain[0].as_bytes());
        out.trim().split('=').nth(1).unwrap().to_owned()
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `camera-web` with `dir`'s config.json, state and run directories.
pub fn camera_web_command(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_camera-web"));
    camera_test_support::camera_web_dirs(&mut command, dir);
    command
}

pub fn curl_with_ca(ca: &Path, args: &[&str]) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "--cacert"])
        .arg(ca)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "curl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut body = out.stdout;
    let split = body.iter().rposition(|&b| b == b'\n').unwrap();
    let status = String::from_utf8_lossy(&body[split + 1..]).trim().parse().unwrap();
    body.truncate(split);
    (status, body)
}

/// The PEM certificates a server sends, via `openssl s_client -showcerts`.
pub fn served_chain(addr: &str) -> Vec<String> {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", addr, "-showcerts", "-servername", "localhost"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let certs = pem::certificates(&String::from_utf8_lossy(&out.stdout));
    assert!(!certs.is_empty(), "no certificate served: {}", String::from_utf8_lossy(&out.stderr));
    certs
}

/// An installer's CA as installers make it with the openssl CLI (RSA 2048, 365 days, no
/// extensions of its own), in `dir`: rootCA.key, rootCA.crt.
pub fn installer_ca(dir: &Path) {
    openssl(dir, &["genrsa", "-out", "rootCA.key", "2048"]);
    let subject = "/C=CN/ST=GD/L=SZ/O=SNL/OU=TECH/CN=ipc.security.com";
    openssl_self_signed(dir, SelfSignedKey::Existing("rootCA.key"), "rootCA.crt", subject, 365, &[]);
}

/// Signs `csr` with the installer CA in `dir`, for `san` (e.g. "IP:127.0.0.1"), into `out`.
pub fn installer_sign(dir: &Path, csr: &str, san: &str, out: &str) {
    installer_sign_for(dir, csr, san, out, "serverAuth");
}

/// [`installer_sign`] with another extended key usage (`clientAuth` for 802.1X).
pub fn installer_sign_for(dir: &Path, csr: &str, san: &str, out: &str, usage: &str) {
    std::fs::write(
        dir.join("ext.cnf"),
        format!("subjectAltName={san}\nextendedKeyUsage={usage}\nkeyUsage=critical,digitalSignature,keyEncipherment\n"),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            "rootCA.crt",
            "-CAkey",
            "rootCA.key",
            "-CAcreateserial",
            "-out",
            out,
            "-days",
            "365",
            "-sha256",
            "-extfile",
            "ext.cnf",
        ],
    );
}
