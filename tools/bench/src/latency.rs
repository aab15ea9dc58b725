//! Address change to new certificate served (design brief: under 1 second, including a change that
//! lands during start-up), measured in a private network namespace.
//!
//! `unshare -rn` re-runs this bench binary as `bench latency-inside CAMERA_WEB DIR` (see
//! [`inside`]), which makes a veth pair, starts the release `camera-web`, changes addresses and
//! times each change until a TLS handshake to the server presents a certificate that says so. It
//! prints one line per sample; [`measure`] reads them back.
//!
//! - start-up: a fresh camera-web; the address is added the moment its first certificate is in
//!   the run directory (it has read the addresses; its watcher may not be subscribed yet), and the
//!   time runs until the served certificate names it;
//! - add / remove: a running camera-web; `ip addr add` (or `del`), then handshakes until the served
//!   certificate names the address (or no longer does).

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

use super::procs::{self, ChildGuard, TempDir};
use super::stats::Stats;
use camera_test_support::netns::try_ip;
use task_support::Result;

/// The hidden task name the namespace runs.
pub const INSIDE_TASK: &str = "latency-inside";
/// Set by [`measure`] for the run inside; without it [`inside`] refuses to touch any interface.
const CAM_IF: &str = "cam0";
const STARTUPS: usize = 5;
const CHANGES: usize = 20;
/// How long one change may take before the sample counts as failed.
const GIVE_UP: Duration = Duration::from_secs(30);

/// The samples, by kind.
#[derive(Debug)]
pub struct Latency {
    pub startup: Stats,
    pub add: Stats,
    pub remove: Stats,
}

/// Runs the measurement in a new user + network namespace and collects its samples.
pub fn measure(camera_web: &Path, work: &Path) -> Result<Latency> {
    let stdout =
        procs::reenter_in_netns(INSIDE_TASK, &[camera_web.as_os_str(), work.as_os_str()], "the latency measurement")?;
    let samples = |kind: &str| -> Result<Stats> {
        let list: Vec<Duration> = stdout
            .lines()
            .filter_map(|line| line.strip_prefix(kind)?.strip_prefix(' ')?.trim().parse().ok())
            .map(Duration::from_micros)
            .collect();
        Stats::of(&list).ok_or_else(|| format!("no {kind} samples from the namespace: {stdout}"))
    };
    Ok(Latency { startup: samples("startup")?, add: samples("add")?, remove: samples("remove")? })
}

/// The measurement itself, inside the namespace: `bench latency-inside CAMERA_WEB DIR`.
pub fn inside(mut args: impl Iterator<Item = String>) -> Result {
    let usage = "usage: bench latency-inside CAMERA_WEB DIR (run by cargo xtask bench)";
    let camera_web = PathBuf::from(args.next().ok_or(usage)?);
    let work = PathBuf::from(args.next().ok_or(usage)?);
    procs::fresh_netns(INSIDE_TASK)?;
    for args in [
        &["link", "add", CAM_IF, "type", "veth", "peer", "name", "peer0"][..],
        &["addr", "add", "10.77.0.2/24", "dev", CAM_IF],
        &["link", "set", CAM_IF, "up"],
        &["link", "set", "peer0", "up"],
    ] {
        try_ip(args)?;
    }
    let client = any_certificate_client()?;

    for i in 0..STARTUPS {
        let dir = TempDir::new(&work, &format!("latency-start-{i}"))?;
        let address = format!("10.77.8.{}", 10 + i);
        let server = start(&camera_web, dir.path())?;
        let bundle = dir.path().join("run/server.pem");
        let deadline = Instant::now() + GIVE_UP;
        while !bundle.exists() {
            if Instant::now() > deadline {
                return Err(format!("camera-web wrote no certificate in {GIVE_UP:?}: {}", server.0.log_tail()));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let started = Instant::now();
        try_ip(&["addr", "add", &format!("{address}/24"), "dev", CAM_IF])?;
        wait_served(&client, server.1, &address, true, started)?;
        println!("startup {}", started.elapsed().as_micros());
        drop(server);
        try_ip(&["addr", "del", &format!("{address}/24"), "dev", CAM_IF])?;
    }

    let dir = TempDir::new(&work, "latency-run")?;
    let server = start(&camera_web, dir.path())?;
    wait_served(&client, server.1, "10.77.0.2", true, Instant::now())?;
    for i in 0..CHANGES {
        let address = format!("10.77.9.{}", 10 + i);
        for (kind, action, present) in [("add", "add", true), ("remove", "del", false)] {
            let started = Instant::now();
            try_ip(&["addr", action, &format!("{address}/24"), "dev", CAM_IF])?;
            wait_served(&client, server.1, &address, present, started)?;
            println!("{kind} {}", started.elapsed().as_micros());
        }
    }
    Ok(())
}

/// A TLS client that takes whatever certificate the server presents ([`AnyCertificate`]); also
/// the 802.1X measurement's API client.
pub fn any_certificate_client() -> Result<Arc<ClientConfig>> {
    let verifier = Arc::new(AnyCertificate(rustls::crypto::ring::default_provider()));
    Ok(Arc::new(
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("client TLS setup: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    ))
}

/// camera-web on a free loopback port with fresh state under `dir`; its log is `dir/camera-web.log`.
pub fn start(camera_web: &Path, dir: &Path) -> Result<(ChildGuard, SocketAddr)> {
    let config = dir.join("config.json");
    std::fs::write(&config, "{\"camera\":{\"hostname\":\"benchcam\",\"loopback\":true}}\n")
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let addr = super::procs::free_port()?;
    let mut cmd = Command::new(camera_web);
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
    Ok((ChildGuard::spawn("camera-web", cmd, &dir.join("camera-web.log"))?, addr))
}

/// Handshakes with the server until its certificate names `address` (or, with `present` false, no
/// longer does). Connection failures (not listening yet) are retried.
fn wait_served(client: &Arc<ClientConfig>, addr: SocketAddr, address: &str, present: bool, since: Instant) -> Result {
    let wanted: IpAddr = address.parse().map_err(|_| format!("{address} is not an address"))?;
    loop {
        if let Some(names) = served_names(client, addr) {
            let named = names.iter().any(|n| n.parse::<IpAddr>().is_ok_and(|ip| ip == wanted));
            if named == present {
                return Ok(());
            }
        }
        if since.elapsed() > GIVE_UP {
            let what = if present { "names" } else { "still names" };
            return Err(format!("{GIVE_UP:?} after the change, no certificate served that {what} {address}"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The subjectAltNames of the certificate one handshake presents.
fn served_names(client: &Arc<ClientConfig>, addr: SocketAddr) -> Option<Vec<String>> {
    let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    tcp.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    let name = ServerName::IpAddress(IpAddr::from([127, 0, 0, 1]).into());
    let mut conn = ClientConnection::new(client.clone(), name).ok()?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).ok()?;
    }
    let leaf = conn.peer_certificates()?.first()?.to_vec();
    conn.send_close_notify();
    let _ = conn.complete_io(&mut tcp);
    camera_pki::describe(&leaf).ok().map(|info| info.subject_alt_names)
}

/// Takes whatever certificate the server presents: only its names are measured here (the
/// handshake signature is still checked).
#[derive(Debug)]
struct AnyCertificate(rustls::crypto::CryptoProvider);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
