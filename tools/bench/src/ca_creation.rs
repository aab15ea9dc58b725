//! First boot's CA creation: the two-tier camera CA (two P-256 key generations, the root's
//! self-signature, the root's signature on the issuing CA), three ways:
//! - the library in-process (`camera_pki::CameraCa::generate`), in memory only;
//! - the same two tiers with the openssl CLI (the reference): genpkey + req -x509 for the root,
//!   genpkey + req + x509 -req -CA for the issuing CA, the same extensions (it has to write both
//!   keys to files: a CLI cannot keep the root's key in memory);
//! - the `cert-provisioner` binary's first boot end to end on a fresh state dir each time
//!   (fork+exec, CA creation, its durable writes, netlink, mint, bundle write).

use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use camera_config::CameraConfig;
use camera_pki::{CaSpec, CameraCa, NameConstraintsPolicy};
use camera_state::Layout;

use super::procs::run_quiet;
use super::stats::Stats;
use task_support::Result;

pub use super::provisioning::Counts;

#[derive(Debug)]
pub struct Results {
    pub library: Stats,
    pub openssl: Stats,
    pub first_boot: Stats,
}

/// The config every run uses: the default model and name constraints, loopback permitted (as the
/// other sections, so camera-web can serve 127.0.0.1).
pub fn bench_config() -> CameraConfig {
    CameraConfig { loopback: true, ..CameraConfig::default() }
}

pub fn run(base: &Path, provisioner_bin: &Path, counts: Counts) -> Result<Results> {
    let config = bench_config();

    let spec =
        CaSpec { model: config.model.clone(), constraints: config.constraints(), not_before: SystemTime::now().into() };
    let mut samples = Vec::with_capacity(counts.library);
    for i in 0..counts.library + 3 {
        let started = Instant::now();
        let ca = CameraCa::generate(&spec).map_err(|e| format!("cannot create the CA: {e}"))?;
        let elapsed = started.elapsed();
        if !ca.is_two_tier() {
            return Err("CameraCa::generate made a one-tier CA".into());
        }
        if i >= 3 {
            samples.push(elapsed); // the first three warm caches up
        }
    }
    let library = Stats::of(&samples).ok_or("no library samples")?;

    let work = base.join("openssl-ca");
    fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let cnf = work.join("ca.cnf");
    fs::write(&cnf, openssl_config(&config.constraints()))
        .map_err(|e| format!("cannot write {}: {e}", cnf.display()))?;
    let mut samples = Vec::with_capacity(counts.openssl);
    for i in 0..counts.openssl + 1 {
        let started = Instant::now();
        openssl_two_tier(&work, &cnf, &config.model)?;
        if i >= 1 {
            samples.push(started.elapsed());
        }
    }
    let openssl = Stats::of(&samples).ok_or("no openssl samples")?;
    // The reference must be a valid two-tier CA: OpenSSL accepts the issuing CA under the root.
    run_quiet(
        Command::new("openssl")
            .args(["verify", "-x509_strict", "-CAfile", "root.crt", "issuing.crt"])
            .current_dir(&work),
    )
    .map_err(|e| format!("the openssl two-tier CA does not verify: {e}"))?;

    let config_file = base.join("config.json");
    fs::write(&config_file, "{\"camera\": {\"loopback\": true}}\n")
        .map_err(|e| format!("cannot write the config: {e}"))?;
    let mut samples = Vec::with_capacity(counts.binary);
    for i in 0..counts.binary + 1 {
        let layout = Layout::new(base.join(format!("boot-{i}/state")), base.join(format!("boot-{i}/run")));
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
        let elapsed = started.elapsed();
        // A first boot made a two-tier CA: its one file, no one-tier key.
        if !layout.issuing_ca().is_file() || layout.ca_key().exists() || !layout.minted_bundle().is_file() {
            return Err(format!(
                "first boot in {} did not make a two-tier CA and a certificate",
                layout.state_dir.display()
            ));
        }
        if i >= 1 {
            samples.push(elapsed);
        }
        let _ = fs::remove_dir_all(base.join(format!("boot-{i}")));
    }
    let first_boot = Stats::of(&samples).ok_or("no first-boot samples")?;

    Ok(Results { library, openssl, first_boot })
}

/// An openssl config with the extensions of the camera's CAs: `[root]` (pathlen 1), `[issuing]`
/// (pathlen 0, authority key id) and `[one_tier]` (a one-tier camera's CA: pathlen 0).
pub fn openssl_config(constraints: &NameConstraintsPolicy) -> String {
    let mut permitted: Vec<String> = constraints
        .permitted_subnets
        .iter()
        .map(|net| format!("permitted;IP:{}/{}", net.addr, netmask(net.addr, net.prefix)))
        .collect();
    permitted.extend(constraints.permitted_dns.iter().map(|d| format!("permitted;DNS:{}", d.trim_start_matches('.'))));
    let common = format!(
        "keyUsage = critical, keyCertSign, cRLSign\n\
         extendedKeyUsage = serverAuth\n\
         nameConstraints = critical, {}\n\
         subjectKeyIdentifier = hash\n",
        permitted.join(", ")
    );
    let mut cnf = String::from("[req]\ndistinguished_name = dn\n[dn]\n");
    let _ = write!(cnf, "[root]\nbasicConstraints = critical, CA:TRUE, pathlen:1\n{common}");
    let _ = write!(
        cnf,
        "[issuing]\nbasicConstraints = critical, CA:TRUE, pathlen:0\n{common}authorityKeyIdentifier = keyid\n"
    );
    let _ = write!(cnf, "[one_tier]\nbasicConstraints = critical, CA:TRUE, pathlen:0\n{common}");
    cnf
}

/// The netmask of a prefix, in the address form openssl's `IP:addr/mask` takes.
fn netmask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(_) => Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)).into(),
        IpAddr::V6(_) => Ipv6Addr::from(u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)).into(),
    }
}

fn openssl(dir: &Path, args: &[&str]) -> Result {
    run_quiet(Command::new("openssl").args(args).current_dir(dir))
}

const P256: [&str; 4] = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];

/// A P-256 key in `dir/name` (PKCS#8 PEM).
pub fn openssl_key(dir: &Path, name: &str) -> Result {
    openssl(dir, &[&["genpkey"], &P256[..], &["-out", name]].concat())
}

/// A self-signed CA certificate `cert` for `key`, ten years, with the `extensions` section of `cnf`.
pub fn openssl_self_signed(dir: &Path, cnf: &Path, extensions: &str, key: &str, subject: &str, cert: &str) -> Result {
    let cnf = cnf.to_str().ok_or("the openssl config path is not UTF-8")?;
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-sha256",
            "-days",
            "3653",
            "-config",
            cnf,
            "-extensions",
            extensions,
            "-key",
            key,
            "-subj",
            subject,
            "-out",
            cert,
        ],
    )
}

/// One two-tier CA with the openssl CLI in `dir`: root.key/root.crt, issuing.key/issuing.crt.
fn openssl_two_tier(dir: &Path, cnf: &Path, model: &str) -> Result {
    openssl_key(dir, "root.key")?;
    openssl_self_signed(dir, cnf, "root", "root.key", &format!("/O={model}/CN={model} Root CA 00000000"), "root.crt")?;
    openssl_key(dir, "issuing.key")?;
    let cnf = cnf.to_str().ok_or("the openssl config path is not UTF-8")?;
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-config",
            cnf,
            "-key",
            "issuing.key",
            "-subj",
            &format!("/O={model}/CN={model} Issuing CA 00000000"),
            "-out",
            "issuing.csr",
        ],
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-sha256",
            "-days",
            "3653",
            "-in",
            "issuing.csr",
            "-CA",
            "root.crt",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-extfile",
            cnf,
            "-extensions",
            "issuing",
            "-out",
            "issuing.crt",
        ],
    )
}
