//! Provisioning: minting a server certificate with an existing CA and writing the key + certificate
//! bundle to the run directory, three ways:
//! - the library in-process (`camera_provision::provision::mint`), as `camera-web` re-mints;
//! - the equivalent openssl CLI pipeline on the same CA (the reference);
//! - the `cert-provisioner` binary end to end (fork+exec, CA load, netlink, mint, write), as boot does.

use std::fmt::Write as _;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use camera_config::CameraConfig;
use camera_pki::SanName;
use camera_provision::provision::{camera_names, ensure_ca, mint};
use camera_state::{write_atomic, Layout, StateLock, SECRET_MODE};

use super::procs::run_quiet;
use super::stats::Stats;
use task_support::Result;

/// Iteration counts.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub library: usize,
    pub openssl: usize,
    pub binary: usize,
}

#[derive(Debug)]
pub struct Results {
    pub library: Stats,
    pub openssl: Stats,
    pub binary: Stats,
    /// The names both pipelines put in the certificate.
    pub names: Vec<String>,
    pub state_dir: PathBuf,
    pub run_dir: PathBuf,
}

/// Addresses a camera on a LAN typically has (the bench must not depend on this machine's).
fn sample_addresses() -> Vec<IpAddr> {
    vec![IpAddr::from([192, 168, 1, 64]), "fd00::64".parse().unwrap_or(IpAddr::from([10, 0, 0, 64]))]
}

pub fn run(state_base: &Path, run_base: &Path, provisioner_bin: &Path, counts: Counts) -> Result<Results> {
    let layout = Layout::new(state_base.join("state"), run_base.join("run"));
    layout.create_dirs().map_err(|e| format!("cannot create the bench directories: {e}"))?;
    let config = CameraConfig { loopback: true, ..CameraConfig::default() };
    let config_file = state_base.join("config.json");
    fs::write(&config_file, "{\"camera\": {\"loopback\": true}}\n")
        .map_err(|e| format!("cannot write the config: {e}"))?;

    // The library, in-process: the CA is made once, then only minted with.
    let (library, names, signer_pem) = {
        let _lock = StateLock::acquire(&layout.state_dir).map_err(|e| format!("cannot lock the state dir: {e}"))?;
        let (ca, _) =
            ensure_ca(&layout, &config, SystemTime::now()).map_err(|e| format!("cannot create the CA: {e}"))?;
        let names = camera_names(&config, &sample_addresses());
        let mut samples = Vec::with_capacity(counts.library);
        let mut minted_names = Vec::new();
        for i in 0..counts.library + 3 {
            let started = Instant::now();
            let minted =
                mint(&layout, &config, &ca, &names, SystemTime::now()).map_err(|e| format!("mint failed: {e}"))?;
            let elapsed = started.elapsed();
            if i >= 3 {
                samples.push(elapsed); // the first three warm caches up
            }
            minted_names = minted.names;
        }
        let signer_pem = camera_pki::pem::encode("CERTIFICATE", ca.signer_der()).to_string();
        (Stats::of(&samples).ok_or("no library samples")?, minted_names, signer_pem)
    };
    let library_bundle = layout.minted_bundle();
    openssl_verify(&layout.ca_cert(), &library_bundle, "the library's certificate")?;

    // The openssl CLI pipeline, on the same CA and for the same names: its signing key and
    // certificate are the issuing CA's (one file) on a two-tier camera, ca.key + ca.crt on a
    // one-tier one; the bundle ends with that certificate, as the product's.
    let signer = if layout.issuing_ca().is_file() {
        Signer { cert: layout.issuing_ca(), key: layout.issuing_ca(), pem: signer_pem }
    } else {
        Signer { cert: layout.ca_cert(), key: layout.ca_key(), pem: signer_pem }
    };
    let work = layout.run_dir.join("openssl");
    fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let ext = work.join("server.ext");
    fs::write(&ext, extensions(&names)).map_err(|e| format!("cannot write {}: {e}", ext.display()))?;
    let mut samples = Vec::with_capacity(counts.openssl);
    for i in 0..counts.openssl + 1 {
        let started = Instant::now();
        openssl_pipeline(&signer, &work, &ext)?;
        if i >= 1 {
            samples.push(started.elapsed());
        }
    }
    let openssl = Stats::of(&samples).ok_or("no openssl samples")?;
    openssl_verify(&layout.ca_cert(), &work.join("server.pem"), "the openssl pipeline's certificate")?;

    // The binary, as the boot script runs it: the CA is loaded from the state dir each time.
    let mut samples = Vec::with_capacity(counts.binary);
    for i in 0..counts.binary + 1 {
        let started = Instant::now();
        run_quiet(
            Command::new(provisioner_bin)
                .arg("--config")
                .arg(&config_file)
                .arg("--state-dir")
                .arg(&layout.state_dir)
                .arg("--run-dir")
                .arg(&layout.run_dir)
                .stdout(Stdio::null()),
        )?;
        if i >= 1 {
            samples.push(started.elapsed());
        }
    }
    let binary = Stats::of(&samples).ok_or("no binary samples")?;

    Ok(Results {
        library,
        openssl,
        binary,
        names: names.iter().map(ToString::to_string).collect(),
        state_dir: layout.state_dir.clone(),
        run_dir: layout.run_dir.clone(),
    })
}

/// The openssl `-extfile` that gives what the camera's server certificates carry.
fn extensions(names: &[SanName]) -> String {
    let san: Vec<String> = names
        .iter()
        .map(|name| match name {
            SanName::Ip(ip) => format!("IP:{ip}"),
            SanName::Dns(dns) => format!("DNS:{dns}"),
        })
        .collect();
    let mut ext = String::new();
    let _ = writeln!(ext, "basicConstraints = critical, CA:FALSE");
    let _ = writeln!(ext, "keyUsage = critical, digitalSignature");
    let _ = writeln!(ext, "extendedKeyUsage = serverAuth");
    let _ = writeln!(ext, "subjectKeyIdentifier = hash");
    let _ = writeln!(ext, "authorityKeyIdentifier = keyid");
    let _ = writeln!(ext, "subjectAltName = {}", san.join(", "));
    ext
}

/// The CA that signs server certificates, as the openssl CLI reads it.
struct Signer {
    cert: PathBuf,
    key: PathBuf,
    /// Its certificate, sent after the leaf.
    pem: String,
}

/// One mint with the openssl CLI: new P-256 key, CSR, CA-signed certificate with a random
/// 16-byte serial, then the same durable bundle write as the product.
fn openssl_pipeline(signer: &Signer, work: &Path, ext: &Path) -> Result {
    let (key, csr, cert) = (work.join("server.key"), work.join("server.csr"), work.join("server.crt"));
    run_quiet(
        Command::new("openssl")
            .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"])
            .arg(&key),
    )?;
    run_quiet(
        Command::new("openssl")
            .args(["req", "-new", "-subj", "/CN=IP Camera HTTPS bench", "-key"])
            .arg(&key)
            .arg("-out")
            .arg(&csr),
    )?;
    let serial = random_serial()?;
    run_quiet(
        Command::new("openssl")
            .args(["x509", "-req", "-sha256", "-days", "365", "-set_serial", &serial, "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(&signer.cert)
            .arg("-CAkey")
            .arg(&signer.key)
            .arg("-extfile")
            .arg(ext)
            .arg("-out")
            .arg(&cert),
    )?;
    let mut bundle = read(&key)?;
    bundle.extend(read(&cert)?);
    bundle.extend(signer.pem.as_bytes());
    let target = work.join("server.pem");
    write_atomic(&target, &bundle, SECRET_MODE).map_err(|e| format!("cannot write {}: {e}", target.display()))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// 16 random bytes as `0x…` (top bit clear so the serial stays positive).
fn random_serial() -> Result<String> {
    let mut bytes = [0u8; 16];
    let mut urandom = fs::File::open("/dev/urandom").map_err(|e| format!("cannot open /dev/urandom: {e}"))?;
    std::io::Read::read_exact(&mut urandom, &mut bytes).map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    bytes[0] &= 0x7f;
    Ok(bytes.iter().fold("0x".to_owned(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

/// Checks that OpenSSL accepts the bundle's leaf under the CA users import, with the bundle's other
/// certificates as intermediates (name constraints included), so both pipelines are known to
/// produce a usable certificate and chain.
fn openssl_verify(ca: &Path, bundle: &Path, what: &str) -> Result {
    let text = fs::read_to_string(bundle).map_err(|e| format!("cannot read {}: {e}", bundle.display()))?;
    let begin =
        text.find("-----BEGIN CERTIFICATE-----").ok_or_else(|| format!("{what}: no certificate in the bundle"))?;
    let end_marker = "-----END CERTIFICATE-----";
    let end = text[begin..]
        .find(end_marker)
        .map(|i| begin + i + end_marker.len())
        .ok_or_else(|| format!("{what}: truncated bundle"))?;
    let leaf = bundle.with_extension("leaf.pem");
    fs::write(&leaf, &text[begin..end]).map_err(|e| format!("cannot write {}: {e}", leaf.display()))?;
    run_quiet(
        Command::new("openssl")
            .args(["verify", "-x509_strict", "-purpose", "sslserver", "-CAfile"])
            .arg(ca)
            .arg("-untrusted")
            .arg(bundle)
            .arg(&leaf),
    )
    .map_err(|e| format!("{what} does not verify: {e}"))
}
