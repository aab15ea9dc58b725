//! SCEP servers for the enrollment tests, inside the test's network namespace:
//! - Debian's micromdm `scepserver` 2.1.0 as packaged (it issues clientAuth-only certificates);
//! - `tests/enrollment/scep-server`: micromdm's SCEP library (Debian's
//!   golang-github-micromdm-scep-dev) issuing server certificates (or, with `-client`, client
//!   certificates of a chosen lifetime), built here once with Debian's Go.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{wait_for, TempDir};

pub struct ScepServer {
    pub url: String,
    /// The CA certificate (PEM) of the server's depot.
    pub ca_pem: String,
    child: Child,
    pub dir: TempDir,
}

impl Drop for ScepServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A depot (CA) made by Debian's scepserver: RSA 2048 to keep it quick.
fn depot(dir: &Path) -> PathBuf {
    let depot = dir.join("depot");
    let out = Command::new("scepserver")
        .args(["ca", "-init", "-keySize", "2048", "-organization", "Site SCEP test CA", "-depot"])
        .arg(&depot)
        .output()
        .expect("scepserver (Debian package scep) runs");
    assert!(out.status.success(), "scepserver ca -init: {}", String::from_utf8_lossy(&out.stderr));
    depot
}

/// The Go build of `tests/enrollment/scep-server`, made once per target directory.
fn server_certificates_binary() -> PathBuf {
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scep-test-server");
    let binary = out_dir.join("scep-test-server");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/enrollment/scep-server/main.go");
    let fresh = |b: &Path| {
        let built = b.metadata().and_then(|m| m.modified()).ok();
        let changed = source.metadata().and_then(|m| m.modified()).ok();
        built.is_some() && built >= changed
    };
    // One build at a time (tests run in parallel); a lock file around it.
    let _ = std::fs::create_dir_all(&out_dir);
    let lock = std::fs::File::create(out_dir.join(".lock")).unwrap();
    let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
    if fresh(&binary) {
        return binary;
    }
    // micromdm's library is packaged for GOPATH builds under its v1 path; its code imports v2.
    let gopath = out_dir.join("gopath");
    let link_dir = gopath.join("src/github.com/micromdm/scep");
    std::fs::create_dir_all(&link_dir).unwrap();
    let link = link_dir.join("v2");
    if !link.exists() {
        std::os::unix::fs::symlink("/usr/share/gocode/src/github.com/micromdm/scep", &link).unwrap();
    }
    let build = out_dir.join("src");
    std::fs::create_dir_all(&build).unwrap();
    std::fs::copy(&source, build.join("main.go")).unwrap();
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(&build)
        .env("GOPATH", format!("{}:/usr/share/gocode", gopath.display()))
        .env("GO111MODULE", "off")
        .env("GOCACHE", out_dir.join("cache"))
        .env("GOFLAGS", "")
        .output()
        .expect("go (Debian package golang-go) runs");
    assert!(
        out.status.success(),
        "building the SCEP test server (needs golang-github-micromdm-scep-dev): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    binary
}

fn start(mut command: Command, dir: TempDir, port: u16) -> ScepServer {
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let child = command.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
    let ca_pem = {
        let der = std::fs::read(dir.path().join("depot/ca.pem")).unwrap();
        String::from_utf8(der).unwrap()
    };
    let url = format!("http://127.0.0.1:{port}/scep");
    let server = ScepServer { url: url.clone(), ca_pem, child, dir };
    let up = wait_for(Duration::from_secs(20), || {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "2", &format!("{url}?operation=GetCACaps")])
            .output()
            .ok()?;
        out.status.success().then_some(())
    });
    assert!(up.is_some(), "the SCEP server did not start:\n{}", server.log());
    server
}

impl ScepServer {
    /// Debian's scepserver 2.1.0 with `challenge`, renewal always allowed.
    pub fn debian(challenge: &str, port: u16) -> Self {
        let dir = TempDir::new("scepserver");
        let depot = depot(dir.path());
        let mut command = Command::new("scepserver");
        command.arg("-depot").arg(&depot).args([
            "-port",
            &port.to_string(),
            "-challenge",
            challenge,
            "-allowrenew",
            "0",
        ]);
        start(command, dir, port)
    }

    /// micromdm's SCEP library issuing server certificates that live `validity`.
    pub fn issuing_server_certificates(challenge: &str, port: u16, validity: Duration) -> Self {
        Self::issuing(challenge, port, validity, &[])
    }

    /// The same issuing client certificates (clientAuth, as an 802.1X template does), starting
    /// now: a short `validity` is then the whole lifetime (backdated a minute, a 40-second
    /// certificate would already be 60 % through its life when it arrives).
    pub fn issuing_client_certificates(challenge: &str, port: u16, validity: Duration) -> Self {
        Self::issuing(challenge, port, validity, &["-client", "-backdate", "0s"])
    }

    fn issuing(challenge: &str, port: u16, validity: Duration, extra: &[&str]) -> Self {
        let dir = TempDir::new("scep-server-certs");
        let depot = depot(dir.path());
        let mut command = Command::new(server_certificates_binary());
        command
            .arg("-depot")
            .arg(&depot)
            .args(["-listen", &format!("127.0.0.1:{port}"), "-challenge", challenge])
            .args(["-validity", &format!("{}s", validity.as_secs())])
            .args(extra);
        start(command, dir, port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}
