//! The two servers compared, started on loopback and pinned to one core: `camera-web`, and nginx
//! (one worker) serving the same certificate and key, each with its default session resumption:
//! - camera-web: rustls' defaults as camera-web configures them: a stateful in-memory session
//!   cache of 256 entries, no ticket encryption; TLS 1.2 resumes by session id, TLS 1.3 by the two
//!   tickets sent after each handshake (each the id of a cache entry, usable once).
//! - nginx: `ssl_session_cache none` and `ssl_session_tickets on` (its defaults): no server-side
//!   cache; TLS 1.2 and TLS 1.3 resume by stateless tickets that OpenSSL encrypts with a key made
//!   at start.
//!
//! The certificates: the camera's own (P-256, minted by camera-web at start) and an installer's
//! (RSA-2048 CA and leaf made with the openssl CLI, served by camera-web as its uploaded bundle).

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::procs::{children, free_port, run_quiet, ChildGuard};
use task_support::which;
use task_support::Result;

/// The core the servers run on; the load generator gets [`CLIENT_CORE`].
pub const SERVER_CORE: usize = 0;
pub const CLIENT_CORE: usize = 1;

/// A started server.
#[derive(Debug)]
pub struct Server {
    pub name: &'static str,
    pub addr: SocketAddr,
    /// The process that does the TLS work (nginx: the worker).
    pub pid: u32,
    guard: ChildGuard,
}

impl Server {
    /// Stops the server now (the guard would do it when dropped anyway).
    pub fn stop(self) {
        drop(self.guard);
    }
}

fn pinned(program: &Path, pin: bool) -> Command {
    if pin {
        let mut cmd = Command::new("taskset");
        cmd.arg("-c").arg(SERVER_CORE.to_string()).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// The certificate a server presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// The camera's own, minted at start.
    P256,
    /// An installer's upload.
    Rsa2048,
}

impl KeyType {
    pub fn label(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::Rsa2048 => "RSA-2048",
        }
    }
}

/// `camera-web` with its own state and run directories under `dir`, loopback names. With
/// `uploaded`, that bundle (key + leaf + CA) is in the state directory as an installer's upload
/// would be, so camera-web serves it instead of its own certificate.
pub fn camera_web(bin: &Path, dir: &Path, pin: bool, uploaded: Option<&Path>) -> Result<Server> {
    if let Some(bundle) = uploaded {
        let state = dir.join("state");
        fs::create_dir_all(&state).map_err(|e| format!("cannot create {}: {e}", state.display()))?;
        fs::set_permissions(&state, fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot restrict {}: {e}", state.display()))?;
        let target = state.join("uploaded.pem");
        fs::copy(bundle, &target).map_err(|e| format!("cannot copy {} into the state dir: {e}", bundle.display()))?;
        fs::set_permissions(&target, fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot restrict {}: {e}", target.display()))?;
    }
    let config = dir.join("config.json");
    // Every bench client comes from 127.0.0.1, so the per-client cap is lifted to the total.
    fs::write(&config, "{\"camera\":{\"loopback\":true},\"web\":{\"max_connections_per_client\":256}}\n")
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let addr = free_port()?;
    let mut cmd = pinned(bin, pin);
    cmd.arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--run-dir")
        .arg(dir.join("run"))
        .arg("--https")
        .arg(addr.to_string())
        .arg("--http")
        .arg("off");
    let mut guard = ChildGuard::spawn("camera-web", cmd, &dir.join("camera-web.log"))?;
    guard.wait_listening(addr, Duration::from_secs(20))?;
    let pid = guard.pid();
    Ok(Server { name: "camera-web", addr, pid, guard })
}

/// The key, leaf and CA of `camera-web`'s run-dir bundle (`server.pem`), as PEM blocks.
#[derive(Debug)]
pub struct Bundle {
    pub key_pem: String,
    pub leaf_pem: String,
    pub ca_pem: String,
    pub leaf_der: Vec<u8>,
}

impl Bundle {
    pub fn read(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let blocks = pem_blocks(&text);
        let key_pem = blocks.iter().find(|(label, _)| label.ends_with("PRIVATE KEY")).map(|(_, b)| b.clone());
        let certs: Vec<&String> = blocks.iter().filter(|(label, _)| label == "CERTIFICATE").map(|(_, b)| b).collect();
        let (Some(key_pem), [leaf, ca, ..]) = (key_pem, certs.as_slice()) else {
            return Err(format!("{} is not key + leaf + CA", path.display()));
        };
        let leaf_der = camera_provision::pem_certificates(leaf.as_bytes())
            .into_iter()
            .next()
            .ok_or("cannot decode the leaf certificate")?;
        Ok(Self { key_pem, leaf_pem: (*leaf).clone(), ca_pem: (*ca).clone(), leaf_der })
    }

    /// The PKCS#8 key, DER, in a buffer wiped when dropped.
    pub fn key_der(&self) -> Result<impl std::ops::Deref<Target = Vec<u8>>> {
        camera_pki::pem::pkcs8_key(self.key_pem.as_bytes())
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the bundle has no PKCS#8 key".to_owned())
    }
}

/// An installer's certificate: an RSA-2048 CA and an RSA-2048 leaf for 127.0.0.1 it signed,
/// made with the openssl CLI as an installer would. Writes `dir/uploaded.pem` (PKCS#8 key + leaf +
/// CA, the layout of camera-web's uploaded bundle) and returns its path.
pub fn installer_bundle(dir: &Path) -> Result<PathBuf> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot restrict {}: {e}", dir.display()))?;
    fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
    )
    .map_err(|e| format!("cannot write {}: {e}", dir.join("leaf.ext").display()))?;
    // Each step is one openssl command line (arguments without spaces).
    for step in [
        "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out ca.key",
        "req -x509 -new -key ca.key -subj /CN=Installer-Bench-CA -days 30 -out ca.crt \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
        "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out leaf.key",
        "req -new -key leaf.key -subj /CN=127.0.0.1 -out leaf.csr",
        "x509 -req -in leaf.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile leaf.ext -out leaf.crt",
    ] {
        run_quiet(Command::new("openssl").args(step.split_whitespace()).current_dir(dir))?;
    }
    let read = |name: &str| fs::read_to_string(dir.join(name)).map_err(|e| format!("cannot read {name}: {e}"));
    let bundle = dir.join("uploaded.pem");
    fs::write(&bundle, format!("{}{}{}", read("leaf.key")?, read("leaf.crt")?, read("ca.crt")?))
        .map_err(|e| format!("cannot write {}: {e}", bundle.display()))?;
    fs::set_permissions(&bundle, fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict {}: {e}", bundle.display()))?;
    Ok(bundle)
}

/// `(label, whole block)` for each PEM block.
fn pem_blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else { break };
        let label = after[..label_end].to_owned();
        let end_marker = format!("-----END {label}-----");
        let Some(end) = rest[start..].find(&end_marker) else { break };
        let end = start + end + end_marker.len();
        out.push((label, format!("{}\n", &rest[start..end])));
        rest = &rest[end..];
    }
    out
}

/// nginx under `dir` (its prefix), serving `bundle`'s key and chain and a tiny `GET /` response,
/// with nginx's default session resumption (no `ssl_session_cache` or `ssl_session_tickets` line).
pub fn nginx(dir: &Path, bundle: &Bundle, pin: bool) -> Result<Server> {
    let nginx = which("nginx")
        .or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.exists()))
        .ok_or("nginx is not installed (apt-get install nginx)")?;
    let write = |name: &str, text: &str| -> Result<PathBuf> {
        let path = dir.join(name);
        fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    };
    let key = write("server.key", &bundle.key_pem)?;
    let chain = write("chain.pem", &format!("{}{}", bundle.leaf_pem, bundle.ca_pem))?;
    let addr = free_port()?;
    let d = dir.display();
    let conf = format!(
        "worker_processes 1;\n\
         daemon off;\n\
         master_process on;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         \x20 access_log off;\n\
         \x20 client_body_temp_path {d}/body;\n\
         \x20 proxy_temp_path {d}/proxy;\n\
         \x20 fastcgi_temp_path {d}/fastcgi;\n\
         \x20 uwsgi_temp_path {d}/uwsgi;\n\
         \x20 scgi_temp_path {d}/scgi;\n\
         \x20 keepalive_timeout 75s;\n\
         \x20 server {{\n\
         \x20   listen {addr} ssl;\n\
         \x20   ssl_certificate {chain};\n\
         \x20   ssl_certificate_key {key};\n\
         \x20   ssl_protocols TLSv1.2 TLSv1.3;\n\
         \x20   location / {{ default_type text/plain; return 200 \"ok\\n\"; }}\n\
         \x20 }}\n\
         }}\n",
        chain = chain.display(),
        key = key.display(),
    );
    let conf_path = write("nginx.conf", &conf)?;
    let mut cmd = pinned(&nginx, pin);
    cmd.arg("-p").arg(dir).arg("-c").arg(&conf_path).arg("-e").arg(dir.join("error.log"));
    let mut guard = ChildGuard::spawn("nginx", cmd, &dir.join("nginx.out"))?;
    guard.wait_listening(addr, Duration::from_secs(10))?;
    // The worker is the master's only child once it listens; give it a moment to appear.
    let mut workers = Vec::new();
    for _ in 0..100 {
        workers = children(guard.pid());
        if !workers.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for &worker in &workers {
        guard.adopt(worker);
    }
    let [pid] = workers.as_slice() else {
        return Err(format!("expected one nginx worker, found {workers:?}:\n  {}", guard.log_tail()));
    };
    Ok(Server { name: "nginx", addr, pid: *pid, guard })
}

/// `nginx -v`, for the report.
pub fn nginx_version() -> String {
    let out = Command::new("nginx").arg("-v").output();
    out.map(|o| String::from_utf8_lossy(&o.stderr).trim().trim_start_matches("nginx version: ").to_owned())
        .unwrap_or_default()
}

pub fn openssl_version() -> String {
    let out = Command::new("openssl").arg("version").output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default()
}
