//! The bytes a full TLS 1.3 handshake costs the network with the two-tier chain: camera-web on a
//! fresh camera (two-tier CA: it sends leaf + issuing CA) against camera-web on a one-tier camera
//! (a camera made before two tiers: ca.crt + ca.key, made here with the openssl CLI; it sends
//! leaf + that CA). A rustls client that never resumes counts the bytes it reads from TCP until
//! its handshake is complete: the server's whole first flight (ServerHello, EncryptedExtensions,
//! Certificate, CertificateVerify, Finished, with their TLS record headers).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use camera_state::Layout;

use super::ca_creation::{bench_config, openssl_config, openssl_key, openssl_self_signed};
use super::client::{Client, Handshake, Signatures, Version};
use super::servers::{self, Bundle};
use task_support::Result;

/// Handshakes per chain: ECDSA signatures vary in length by a byte or two.
pub const HANDSHAKES: usize = 20;

/// What one server sent.
#[derive(Debug)]
pub struct Flight {
    /// DER size of each certificate sent, leaf first.
    pub cert_sizes: Vec<usize>,
    /// The TLS 1.3 Certificate handshake message, computed from the certificates: header (4),
    /// request context (1), list length (3), then per certificate its length (3), DER and an
    /// empty extensions block (2).
    pub certificate_message: usize,
    /// Bytes read until the handshake completed: min, median, max over [`HANDSHAKES`].
    pub first_flight: [usize; 3],
}

#[derive(Debug)]
pub struct Results {
    pub two_tier: Flight,
    pub one_tier: Flight,
}

pub fn run(camera_web: &Path, base: &Path, pin: bool) -> Result<Results> {
    let two_tier_dir = base.join("two-tier");
    fs::create_dir_all(&two_tier_dir).map_err(|e| format!("cannot create {}: {e}", two_tier_dir.display()))?;
    let web = servers::camera_web(camera_web, &two_tier_dir, pin, None)?;
    let layout = Layout::new(two_tier_dir.join("state"), two_tier_dir.join("run"));
    let issuing = camera_provision::pem_certificates(&read(&layout.issuing_ca())?);
    let [issuing_der, _root_der] = issuing.as_slice() else {
        return Err(format!("{} is not a two-tier CA", layout.issuing_ca().display()));
    };
    let two_tier = measure(&web, &layout, issuing_der)?;
    web.stop();

    let one_tier_dir = base.join("one-tier");
    let layout = Layout::new(one_tier_dir.join("state"), one_tier_dir.join("run"));
    layout.create_dirs().map_err(|e| format!("cannot create the one-tier camera's directories: {e}"))?;
    seed_one_tier_ca(&layout)?;
    let one_tier_ca = camera_provision::pem_certificates(&read(&layout.ca_cert())?);
    let web = servers::camera_web(camera_web, &one_tier_dir, pin, None)?;
    let one_tier_der = one_tier_ca.first().ok_or("the one-tier ca.crt holds no certificate")?;
    let one_tier = measure(&web, &layout, one_tier_der)?;
    web.stop();
    Ok(Results { two_tier, one_tier })
}

/// [`HANDSHAKES`] full TLS 1.3 handshakes; fails unless the server sent exactly its leaf and `ca_der`.
fn measure(server: &servers::Server, layout: &Layout, ca_der: &[u8]) -> Result<Flight> {
    let bundle = Bundle::read(&layout.minted_bundle())?;
    let client = Client::new(server.addr, Version::Tls13, &bundle.leaf_der, Signatures::Check, Handshake::Full)?;
    let mut flights = Vec::with_capacity(HANDSHAKES);
    let mut sent = Vec::new();
    for _ in 0..HANDSHAKES {
        let (bytes, certs) = client.handshake_bytes().map_err(|e| format!("{}: handshake failed: {e}", server.name))?;
        flights.push(bytes);
        sent = certs;
    }
    if sent.len() != 2 || sent[1] != ca_der {
        return Err(format!("{} sent {} certificates, not its leaf and the expected CA", server.name, sent.len()));
    }
    flights.sort_unstable();
    let cert_sizes: Vec<usize> = sent.iter().map(Vec::len).collect();
    let certificate_message = 4 + 1 + 3 + cert_sizes.iter().map(|der| 3 + der + 2).sum::<usize>();
    Ok(Flight {
        cert_sizes,
        certificate_message,
        first_flight: [flights[0], flights[HANDSHAKES / 2], flights[HANDSHAKES - 1]],
    })
}

/// A one-tier camera's CA (as cameras made before two tiers have): P-256, the same name
/// constraints, `ca.crt` + `ca.key` in the state directory.
fn seed_one_tier_ca(layout: &Layout) -> Result {
    let config = bench_config();
    let dir = &layout.state_dir;
    let cnf = dir.join("one-tier.cnf");
    fs::write(&cnf, openssl_config(&config.constraints()))
        .map_err(|e| format!("cannot write {}: {e}", cnf.display()))?;
    openssl_key(dir, "ca.key")?;
    // An older camera's subject: `<model> Root CA <8 hex digits>`.
    let subject = format!("/O={}/CN={} Root CA 00000000", config.model, config.model);
    openssl_self_signed(dir, &cnf, "one_tier", "ca.key", &subject, "ca.crt")?;
    fs::set_permissions(layout.ca_key(), fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict {}: {e}", layout.ca_key().display()))?;
    fs::remove_file(&cnf).map_err(|e| format!("cannot remove {}: {e}", cnf.display()))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}
