//! One provisioning run: make sure the CA exists, mint the server certificate for the camera's
//! current names, write it to the run directory.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use camera_config::CameraConfig;
use camera_log as log;
use camera_pki::{CaSpec, CameraCa, MintedServer, SanName, ServerSpec};
use camera_state::{read_optional, rename_durable, write_atomic, Layout, StateLock, PUBLIC_MODE, SECRET_MODE};
use zeroize::Zeroizing;

use crate::clock::{self, unix_seconds};
use crate::renewal;
use crate::ProvisionError;

fn write(path: &Path, contents: &[u8], mode: u32) -> Result<(), ProvisionError> {
    write_atomic(path, contents, mode).map_err(|source| ProvisionError::Write { path: path.to_owned(), source })
}

fn read(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, ProvisionError> {
    read_optional(path).map_err(|source| ProvisionError::Read { path: path.to_owned(), source })
}

/// Where the CA in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaOrigin {
    /// Loaded from the state directory.
    Existing,
    /// Generated now (first boot).
    Created,
    /// Provisioned at the factory.
    Factory,
    /// The stored CA was unusable: moved aside, a new one generated. Users must re-import.
    Replaced { reason: String, moved_aside: Vec<PathBuf> },
}

impl fmt::Display for CaOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Existing => f.write_str("existing"),
            Self::Created => f.write_str("created"),
            Self::Factory => f.write_str("factory"),
            Self::Replaced { .. } => f.write_str("replaced"),
        }
    }
}

/// Moves a file aside with a suffix, never deleting it.
fn move_aside(path: &Path, suffix: &str, now: SystemTime) -> Result<Option<PathBuf>, ProvisionError> {
    if !path.exists() {
        return Ok(None);
    }
    let secs = unix_seconds(now);
    // Cameras without a real-time clock boot at the same second of 1970 again and again: never
    // rename over a file moved aside before.
    let mut base = path.as_os_str().to_owned();
    base.push(format!(".{suffix}-{secs}"));
    let mut target = PathBuf::from(&base);
    let mut n = 0u32;
    while target.symlink_metadata().is_ok() {
        n += 1;
        let mut next = base.clone();
        next.push(format!(".{n}"));
        target = PathBuf::from(next);
    }
    rename_durable(path, &target).map_err(|source| ProvisionError::MoveAside {
        from: path.to_owned(),
        to: target.clone(),
        source,
    })?;
    Ok(Some(target))
}

/// Loads the camera's CA (a factory CA first), or creates it on first boot, and records any
/// change of the CA in use. The caller holds the state lock.
pub fn ensure_ca(
    layout: &Layout,
    config: &CameraConfig,
    now: SystemTime,
) -> Result<(CameraCa, CaOrigin), ProvisionError> {
    let (ca, origin) = select_ca(layout, config, now)?;
    unless_read_only(record_ca_in_use(layout, &ca, &origin, now), "the record of the CA in use")?;
    Ok((ca, origin))
}

/// Writes the replacement record the UI shows ("import the new cacert.crt") and logs loudly.
fn record_replacement(
    layout: &Layout,
    ca: &CameraCa,
    reason: &str,
    moved_aside: &[PathBuf],
    now: SystemTime,
) -> Result<(), ProvisionError> {
    let record = serde_json::json!({
        "replaced_at_unix": unix_seconds(now),
        "reason": reason,
        "moved_aside": moved_aside.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "new_ca_sha256": ca.fingerprint(),
    });
    write(&layout.ca_replaced_record(), record.to_string().as_bytes(), PUBLIC_MODE)?;
    log::warn(&format!("THE CAMERA CA WAS REPLACED: {reason}; users must import the new cacert.crt"));
    Ok(())
}

/// The CA in use never changes silently: whatever the cause (a factory CA added or removed, a
/// corrupt CA regenerated), a different fingerprint than last time is recorded and logged.
fn record_ca_in_use(layout: &Layout, ca: &CameraCa, origin: &CaOrigin, now: SystemTime) -> Result<(), ProvisionError> {
    let fingerprint = ca.fingerprint();
    let previous = read(&layout.ca_in_use())?.map(|b| String::from_utf8_lossy(&b).trim().to_owned());
    if previous.as_deref() == Some(fingerprint.as_str()) {
        return Ok(());
    }
    if let (Some(previous), false) = (&previous, matches!(origin, CaOrigin::Replaced { .. })) {
        let reason = format!("the CA in use changed from {previous} to this {origin} CA");
        record_replacement(layout, ca, &reason, &[], now)?;
    }
    write(&layout.ca_in_use(), format!("{fingerprint}\n").as_bytes(), PUBLIC_MODE)
}

fn select_ca(layout: &Layout, config: &CameraConfig, now: SystemTime) -> Result<(CameraCa, CaOrigin), ProvisionError> {
    if let (Some(cert), Some(key)) = (read(&layout.factory_ca_cert())?, read(&layout.factory_ca_key())?) {
        match CameraCa::from_pem(&cert, &key) {
            Ok(ca) => return Ok((ca, CaOrigin::Factory)),
            Err(e) => log::warn(&format!(
                "factory CA in {} is unusable ({}); using the camera's own CA",
                layout.factory_ca_cert().display(),
                log::chain(&e)
            )),
        }
    }
    let (replaced, moved_aside) = match read(&layout.issuing_ca())? {
        // Two tiers: one file is the whole CA.
        Some(bundle) => match CameraCa::from_pem(&bundle, &bundle) {
            Ok(ca) => {
                unless_read_only(keep_one_tier_ca_aside(layout, &ca, now), "moving the one-tier CA aside")?;
                unless_read_only(write_anchor(layout, &ca), "the root's copy in ca.crt")?;
                return Ok((ca, CaOrigin::Existing));
            }
            Err(e) => {
                let mut moved = Vec::new();
                moved.extend(move_aside(&layout.issuing_ca(), "corrupt", now)?);
                moved.extend(move_aside(&layout.ca_cert(), "corrupt", now)?);
                (Some(log::chain(&e)), moved)
            }
        },
        // One tier (a camera made before two tiers): kept as it is, users imported it.
        None => match (read(&layout.ca_cert())?, read(&layout.ca_key())?) {
            (Some(cert), Some(key)) => match CameraCa::from_pem(&cert, &key) {
                Ok(ca) => return Ok((ca, CaOrigin::Existing)),
                Err(e) => {
                    let mut moved = Vec::new();
                    moved.extend(move_aside(&layout.ca_cert(), "corrupt", now)?);
                    moved.extend(move_aside(&layout.ca_key(), "corrupt", now)?);
                    (Some(log::chain(&e)), moved)
                }
            },
            (Some(_), None) => (Some("the CA key file is missing".to_owned()), move_aside_all(layout, now)?),
            // A one-tier key without its certificate: an interrupted first boot of an older
            // version, so nobody can have imported it.
            (None, Some(_)) => {
                move_aside(&layout.ca_key(), "incomplete", now)?;
                (None, Vec::new())
            }
            (None, None) => (None, Vec::new()),
        },
    };
    let spec = CaSpec {
        model: config.model.clone(),
        constraints: config.constraints(),
        not_before: clock::not_before(now, clock::floor(layout, now)),
    };
    let ca = CameraCa::generate(&spec)?;
    // The commit point: one file holds the issuing key and both certificates. Before its rename
    // nothing exists (the root's key is gone with this process, and nobody saw the root); after it
    // the CA is whole. ca.crt, the copy users download, follows and is rewritten if missing.
    write(&layout.issuing_ca(), ca.bundle_pem().as_bytes(), SECRET_MODE)?;
    write_anchor(layout, &ca)?;
    let origin = match replaced {
        None => CaOrigin::Created,
        Some(reason) => {
            record_replacement(
                layout,
                &ca,
                &format!("{reason} (old files moved aside: {moved_aside:?})"),
                &moved_aside,
                now,
            )?;
            CaOrigin::Replaced { reason, moved_aside }
        }
    };
    Ok((ca, origin))
}

fn move_aside_all(layout: &Layout, now: SystemTime) -> Result<Vec<PathBuf>, ProvisionError> {
    let mut moved = Vec::new();
    moved.extend(move_aside(&layout.ca_cert(), "corrupt", now)?);
    moved.extend(move_aside(&layout.ca_key(), "corrupt", now)?);
    Ok(moved)
}

/// `ca.crt` is the copy of the CA's root that users download: written after the CA's commit
/// point, and again whenever it is missing or not the root (a power cut between the two).
fn write_anchor(layout: &Layout, ca: &CameraCa) -> Result<(), ProvisionError> {
    let pem = ca.anchor_pem();
    if read(&layout.ca_cert())?.is_some_and(|current| current.as_slice() == pem.as_bytes()) {
        return Ok(());
    }
    write(&layout.ca_cert(), pem.as_bytes(), PUBLIC_MODE)
}

/// A one-tier CA found beside a two-tier one (a camera downgraded to an older version and
/// upgraded again) is no longer the CA in use: its certificate and key are moved aside, never
/// deleted (invariant 2). The certificate goes first, so a power cut between the two leaves only
/// a key, which the next run moves aside too.
fn keep_one_tier_ca_aside(layout: &Layout, ca: &CameraCa, now: SystemTime) -> Result<(), ProvisionError> {
    if !layout.ca_key().exists() {
        return Ok(());
    }
    if read(&layout.ca_cert())?.is_some_and(|current| current.as_slice() != ca.anchor_pem().as_bytes()) {
        move_aside(&layout.ca_cert(), "superseded", now)?;
    }
    move_aside(&layout.ca_key(), "superseded", now)?;
    Ok(())
}

/// The writes that only sit beside a whole CA (the root's copy in `ca.crt`, moving a one-tier CA
/// aside, the record of the CA in use) wait for a writable state directory: flash remounted
/// read-only after a power cut past the commit point must not leave the camera without HTTPS.
/// `ca-in-use.sha256` still holds the old fingerprint then, so a change of CA is recorded later.
fn unless_read_only(result: Result<(), ProvisionError>, what: &str) -> Result<(), ProvisionError> {
    match result {
        Err(ProvisionError::Write { source, .. } | ProvisionError::MoveAside { source, .. })
            if source.kind() == std::io::ErrorKind::ReadOnlyFilesystem =>
        {
            log::warn(&format!("the state directory is read-only: {what} waits for the next writable boot"));
            Ok(())
        }
        other => other,
    }
}

/// The host name to use: configured, else the system's, if it is a usable DNS label.
pub fn hostname(config: &CameraConfig) -> Option<String> {
    let name = match &config.hostname {
        Some(name) => name.clone(),
        None => nix::unistd::gethostname().ok()?.into_string().ok()?,
    };
    let name = name.trim().trim_end_matches(".local").to_ascii_lowercase();
    match SanName::parse(&name) {
        Ok(SanName::Dns(dns)) if dns != "localhost" && !dns.starts_with("*.") && !dns.is_empty() => Some(dns),
        _ => None,
    }
}

/// Every name the camera answers to: its addresses, loopback when configured, the host name and
/// `hostname.local`, and configured extra names.
pub fn camera_names(config: &CameraConfig, addresses: &[IpAddr]) -> Vec<SanName> {
    let mut names: Vec<SanName> = addresses.iter().copied().map(SanName::Ip).collect();
    if config.loopback {
        names.push(SanName::Ip(IpAddr::from([127, 0, 0, 1])));
        names.push(SanName::Ip(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)));
        names.push(SanName::Dns("localhost".into()));
    }
    if let Some(host) = hostname(config) {
        if !host.contains('.') {
            names.push(SanName::Dns(format!("{host}.local")));
        }
        names.push(SanName::Dns(host));
    }
    names.extend(config.extra_names.iter().filter_map(|n| SanName::parse(n).ok()));
    let mut unique = Vec::new();
    for name in names {
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    unique
}

/// The names a certificate minted by `ca` for `names` carries: those the CA's constraints
/// permit, or `camera.local` when none is (no address, cable unplugged at boot).
pub fn certificate_names(ca: &CameraCa, names: &[SanName]) -> Vec<SanName> {
    let permitted: Vec<SanName> = names.iter().filter(|n| ca.permits(n)).cloned().collect();
    if permitted.is_empty() {
        vec![SanName::Dns("camera.local".into())]
    } else {
        permitted
    }
}

/// The CN of server certificates: names the camera without being an IP or host name.
fn server_common_name(config: &CameraConfig, ca: &CameraCa) -> String {
    let id: String = ca.fingerprint().replace(':', "").chars().take(8).collect();
    format!("{} HTTPS {id}", config.model)
}

/// Mints a server certificate for `names` and writes the bundle to the run directory.
/// The caller holds the state lock.
pub fn mint(
    layout: &Layout,
    config: &CameraConfig,
    ca: &CameraCa,
    names: &[SanName],
    now: SystemTime,
) -> Result<MintedServer, ProvisionError> {
    // All names go to the minter, so the ones the CA may not sign are reported as left out; the
    // fallback name keeps the certificate valid when none is permitted.
    let mut all = names.to_vec();
    if !names.iter().any(|n| ca.permits(n)) {
        all.extend(certificate_names(ca, names));
    }
    let spec = ServerSpec {
        names: all,
        common_name: server_common_name(config, ca),
        not_before: clock::not_before(now, clock::floor(layout, now)),
        validity_days: config.server_cert_days,
    };
    let minted = ca.mint_server(&spec)?;
    write(&layout.minted_bundle(), minted.bundle_pem(ca).as_bytes(), SECRET_MODE)?;
    Ok(minted)
}

/// What one provisioning run did.
#[derive(Debug)]
pub struct Outcome {
    pub ca_origin: CaOrigin,
    pub ca_fingerprint: String,
    /// The certificate users import (`cacert.crt`): the CA's root, or a one-tier CA.
    pub ca_anchor_der: Vec<u8>,
    /// The certificate sent after the server certificate: the issuing CA (or the one tier).
    pub ca_signer_der: Vec<u8>,
    /// The CA has two tiers (a root and an issuing CA).
    pub ca_two_tier: bool,
    pub minted: MintedServer,
    pub bundle_path: PathBuf,
    /// The certificate already in the run directory was kept (see [`reuse_or_provision`]).
    pub reused: bool,
    pub elapsed: std::time::Duration,
    /// Things worth a log line that did not stop provisioning (no address, netlink failure).
    pub warnings: Vec<String>,
}

impl Outcome {
    /// The one-line summary the CLI prints.
    pub fn summary(&self) -> String {
        let names: Vec<String> = self.minted.names.iter().map(ToString::to_string).collect();
        let mut line = format!(
            "CA {} ({}); server certificate for {} valid {} to {}, {} {} in {} ms",
            self.ca_fingerprint,
            self.ca_origin,
            names.join(", "),
            self.minted.not_before.date(),
            self.minted.not_after.date(),
            if self.reused { "kept from" } else { "written to" },
            self.bundle_path.display(),
            self.elapsed.as_millis()
        );
        // A bare host name can never be under a DNS name constraint: not worth a mention.
        let skipped: Vec<String> = self
            .minted
            .skipped
            .iter()
            .filter(|n| !matches!(n, SanName::Dns(d) if !d.contains('.')))
            .map(ToString::to_string)
            .collect();
        if !skipped.is_empty() {
            line.push_str(&format!("; left out (outside the CA's name constraints): {}", skipped.join(", ")));
        }
        line
    }
}

/// Creates the directories, takes the lock, ensures the CA, mints for `addresses`.
pub fn provision_for(
    layout: &Layout,
    config: &CameraConfig,
    addresses: &[IpAddr],
    now: SystemTime,
) -> Result<Outcome, ProvisionError> {
    provision_inner(layout, config, addresses, now, false)
}

/// Like [`provision`], but keeps the certificate already in the run directory (the boot step's)
/// when it is signed by the current CA, names exactly the current names and is not due for
/// renewal. The web server starts with this.
pub fn reuse_or_provision(layout: &Layout, config: &CameraConfig) -> Result<Outcome, ProvisionError> {
    let mut warnings = Vec::new();
    let addresses = current_addresses(&mut warnings);
    let mut outcome = provision_inner(layout, config, &addresses, SystemTime::now(), true)?;
    warnings.append(&mut outcome.warnings);
    outcome.warnings = warnings;
    Ok(outcome)
}

/// The boot step's certificate, if it can be served as it is.
fn reusable(
    layout: &Layout,
    config: &CameraConfig,
    ca: &CameraCa,
    names: &[SanName],
    now: SystemTime,
) -> Option<MintedServer> {
    let text = read_optional(&layout.minted_bundle()).ok()??;
    let minted = MintedServer::from_bundle_pem(&text).ok()?;
    let issued_by_ca = crate::pem_certificates(&text).get(1).is_some_and(|der| der.as_slice() == ca.signer_der());
    // A lifetime longer than configured now (e.g. after switching to High-Security) is re-minted.
    let lifetime_ok = (minted.not_after - minted.not_before).whole_days() <= config.server_cert_days;
    let reason = renewal::reason_to_replace(&minted, &certificate_names(ca, names), config.renew_before(), now);
    (issued_by_ca && lifetime_ok && reason.is_none()).then_some(minted)
}

/// Takes the state lock. A state directory on flash that went read-only (remounted after an
/// error) cannot change under us, so that is no reason to leave the camera without HTTPS: `None`,
/// and the caller goes on with the CA as it is (a missing CA still fails, on writing it).
pub(crate) fn lock_state(layout: &Layout) -> Result<Option<StateLock>, ProvisionError> {
    match StateLock::acquire(&layout.state_dir) {
        Ok(lock) => Ok(Some(lock)),
        Err(e) if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem => Ok(None),
        Err(source) => Err(ProvisionError::Lock { path: layout.state_dir.clone(), source }),
    }
}

fn provision_inner(
    layout: &Layout,
    config: &CameraConfig,
    addresses: &[IpAddr],
    now: SystemTime,
    reuse: bool,
) -> Result<Outcome, ProvisionError> {
    let started = Instant::now();
    for dir in [&layout.state_dir, &layout.run_dir] {
        camera_state::ensure_dir(dir, 0o700)
            .map_err(|source| ProvisionError::Directory { path: dir.clone(), source })?;
    }
    let mut warnings = Vec::new();
    let lock = lock_state(layout)?;
    if lock.is_none() {
        warnings.push(format!("{} is read-only: using the CA as it is", layout.state_dir.display()));
    }
    for dir in [&layout.state_dir, &layout.run_dir] {
        match camera_state::remove_stale_temporaries(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem => {}
            other => {
                other.map_err(|source| ProvisionError::CleanUp { path: dir.clone(), source })?;
            }
        }
    }
    if let Err(e) = clock::saved_time(layout) {
        warnings.push(format!("{}: ignored; the floor is the build time until the clock is set", log::chain(&e)));
    }
    let (ca, ca_origin) = ensure_ca(layout, config, now)?;
    if addresses.is_empty() {
        warnings.push("no network address (cable unplugged?): the certificate names only the host name".to_owned());
    }
    let names = camera_names(config, addresses);
    let kept = reuse.then(|| reusable(layout, config, &ca, &names, now)).flatten();
    let reused = kept.is_some();
    let minted = match kept {
        Some(minted) => minted,
        None => mint(layout, config, &ca, &names, now)?,
    };
    if let Err(e) = clock::save(layout, now) {
        warnings.push(format!("cannot save the clock floor to {}: {e}", layout.saved_clock().display()));
    }
    Ok(Outcome {
        ca_fingerprint: ca.fingerprint(),
        ca_anchor_der: ca.anchor_der().to_vec(),
        ca_signer_der: ca.signer_der().to_vec(),
        ca_two_tier: ca.is_two_tier(),
        ca_origin,
        minted,
        bundle_path: layout.minted_bundle(),
        reused,
        elapsed: started.elapsed(),
        warnings,
    })
}

/// The camera's usable addresses over netlink; a netlink failure is a warning, not a stop: the
/// camera must still serve HTTPS.
pub fn current_addresses(warnings: &mut Vec<String>) -> Vec<IpAddr> {
    match camera_netlink::current_addresses() {
        Ok(list) => list.into_iter().map(|a| a.address).collect(),
        Err(e) => {
            warnings.push(format!("cannot read the network addresses: {}", log::chain(&e)));
            Vec::new()
        }
    }
}

/// `cert-provisioner --new-ca`: deletes the camera's own CA (key first, so an interrupted run
/// still ends with a new CA), for the next provisioning to create a new one; that run records
/// the change in ca-replaced.json (the UI's "import the new cacert.crt" banner). Returns the old
/// CA's fingerprint. Deleting on flash does not erase the blocks: see SECURITY.md.
pub fn retire_ca(layout: &Layout) -> Result<Option<String>, ProvisionError> {
    for dir in [&layout.state_dir, &layout.run_dir] {
        camera_state::ensure_dir(dir, 0o700)
            .map_err(|source| ProvisionError::Directory { path: dir.clone(), source })?;
    }
    let _lock = StateLock::acquire(&layout.state_dir)
        .map_err(|source| ProvisionError::Lock { path: layout.state_dir.clone(), source })?;
    if layout.factory_ca_cert().exists() && layout.factory_ca_key().exists() {
        return Err(ProvisionError::FactoryCaInUse { path: layout.factory_ca_cert() });
    }
    let old = read(&layout.ca_cert())?
        .and_then(|pem| crate::pem_certificates(&pem).first().map(|der| camera_pki::fingerprint(der)));
    // Keys first (a two-tier CA's whole file, a one-tier CA's key), then the certificate.
    for path in [layout.issuing_ca(), layout.ca_key(), layout.ca_cert()] {
        match camera_state::remove_durable(&path) {
            Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
                return Err(ProvisionError::Delete { path, source })
            }
            _ => {}
        }
    }
    Ok(old)
}

/// Provisions for the addresses the kernel reports now.
pub fn provision(layout: &Layout, config: &CameraConfig) -> Result<Outcome, ProvisionError> {
    let mut warnings = Vec::new();
    let addresses = current_addresses(&mut warnings);
    let mut outcome = provision_for(layout, config, &addresses, SystemTime::now())?;
    warnings.append(&mut outcome.warnings);
    outcome.warnings = warnings;
    Ok(outcome)
}
