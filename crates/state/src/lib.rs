//! Crash-safe files for the camera's state and run directories.
//!
//! Every file the camera keeps is replaced whole: written to a temporary file in the same
//! directory, fsynced, renamed over the old one, and the directory fsynced. A power cut at any
//! moment leaves the old or the new file, never a mix. Files that belong together (a key and its
//! certificate) are kept in one file for the same reason.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use zeroize::Zeroizing;

/// Mode of files holding private keys.
/// Whole seconds since the Unix epoch (0 for times before it): the one way the camera turns a
/// time into the numbers its files, events and schedules hold.
pub fn unix_seconds(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// [`unix_seconds`] of the camera's clock now.
pub fn now_unix() -> u64 {
    unix_seconds(std::time::SystemTime::now())
}

pub const SECRET_MODE: u32 = 0o600;
/// Mode of files holding only public material.
pub const PUBLIC_MODE: u32 = 0o644;

/// Prefix of temporary files; [`remove_stale_temporaries`] cleans up what a power cut leaves.
const TEMP_PREFIX: &str = ".tmp-";

/// The largest file [`read_optional`] reads. The camera's own files are a few KiB (an uploaded
/// chain at most a few hundred); anything larger did not come from this camera (a link to a
/// device, a file copied over by mistake), and reading it whole could exhaust a camera's memory.
pub const MAX_STATE_FILE: u64 = 1024 * 1024;

/// Replaces `path` with `contents` atomically and durably, with the given file mode.
///
/// The temporary file is created with `mode` from the start, so a secret is never readable by
/// others, not even for a moment.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = parent_dir(path);
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    // Unique per process and call (threads may write at once); the boot and the pid let a later
    // cleanup tell a dead writer's leftovers from a live writer's file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let temp = dir.join(format!(
        "{TEMP_PREFIX}{}-{}-{}-{}",
        name.to_string_lossy(),
        boot_tag(),
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(nix::libc::O_CLOEXEC)
            .open(&temp)?;
        // The umask may have narrowed the mode; secrets must not be wider, public files must be readable.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Removes `path` durably; a missing file is not an error.
pub fn remove_durable(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(parent_dir(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Renames `from` to `to` durably (both in the same directory).
pub fn rename_durable(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)?;
    sync_dir(parent_dir(to))
}

/// Reads a file if it exists, into memory that is wiped when dropped (most state files hold keys).
/// A file larger than [`MAX_STATE_FILE`] is an error (`FileTooLarge`), not read.
pub fn read_optional(path: &Path) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let too_large = || {
        io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("larger than {} KiB: not a camera state file", MAX_STATE_FILE / 1024),
        )
    };
    let len = file.metadata()?.len();
    if len > MAX_STATE_FILE {
        return Err(too_large());
    }
    // Sized up front (one byte spare to see the end) so no unwiped smaller buffer is freed. The
    // limit holds for files whose size says 0 too (a device, a file growing while read).
    let mut contents = Zeroizing::new(Vec::with_capacity(len as usize + 1));
    io::Read::read_to_end(&mut io::Read::take(file, MAX_STATE_FILE + 1), &mut contents)?;
    if contents.len() as u64 > MAX_STATE_FILE {
        return Err(too_large());
    }
    Ok(Some(contents))
}

/// Deletes temporary files that an interrupted [`write_atomic`] left in `dir`.
pub fn remove_stale_temporaries(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(TEMP_PREFIX) && !writer_alive(&name) {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// Whether the process that named a temporary file (`.tmp-<name>-<boot>-<pid>-<n>`) still runs.
/// It may be writing it right now (the web server while the boot script's provisioner cleans
/// up). A file from an earlier boot is always stale, whatever process has its pid now.
fn writer_alive(temp_name: &str) -> bool {
    let mut parts = temp_name.rsplit('-');
    let _counter = parts.next();
    let pid = parts.next().and_then(|pid| pid.parse::<u32>().ok());
    let this_boot = parts.next() == Some(boot_tag());
    match pid {
        Some(pid) => this_boot && pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists(),
        None => false,
    }
}

/// This boot's id, short (the kernel's random boot_id, hex digits only; "0" if unreadable).
fn boot_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let id = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        let hex: String = id.chars().filter(char::is_ascii_hexdigit).take(12).collect();
        if hex.is_empty() {
            "0".to_owned()
        } else {
            hex
        }
    })
}

/// Creates `dir` (and parents) with the given mode if missing, and checks it is a directory.
pub fn ensure_dir(dir: &Path, mode: u32) -> io::Result<()> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("{} exists but is not a directory", dir.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new().recursive(true).mode(mode).create(dir)?;
            if let Some(parent) = dir.parent() {
                sync_dir(if parent.as_os_str().is_empty() { Path::new(".") } else { parent })?;
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes the directory's entries (a new, renamed or removed file) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// An exclusive lock on a state directory, held until dropped.
///
/// The boot script's provisioner and the web server may both provision; the lock makes them take
/// turns so neither sees the other's half-finished work.
#[derive(Debug)]
pub struct StateLock {
    _lock: Flock<File>,
}

impl StateLock {
    /// Blocks until the lock on `dir/.lock` is ours.
    pub fn acquire(dir: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(PUBLIC_MODE)
            .custom_flags(nix::libc::O_CLOEXEC)
            .open(dir.join(".lock"))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| io::Error::from(errno))?;
        Ok(Self { _lock: lock })
    }
}

/// Where each file lives. One place decides every path, so the provisioner, the web server and the
/// documentation agree.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Persistent (flash): the CA, uploads, pending CSR key, saved clock.
    pub state_dir: PathBuf,
    /// Volatile (tmpfs): the minted server certificate and its key.
    pub run_dir: PathBuf,
}

impl Layout {
    pub fn new(state_dir: impl Into<PathBuf>, run_dir: impl Into<PathBuf>) -> Self {
        Self { state_dir: state_dir.into(), run_dir: run_dir.into() }
    }
    /// The certificate users import as `cacert.crt` (PEM): the two-tier CA's root, or a one-tier
    /// CA (cameras made before two tiers).
    pub fn ca_cert(&self) -> PathBuf {
        self.state_dir.join("ca.crt")
    }
    /// A one-tier CA's private key (PKCS#8 PEM, 0600); two-tier CAs have none here.
    pub fn ca_key(&self) -> PathBuf {
        self.state_dir.join("ca.key")
    }
    /// The two-tier CA, whole, in one file (0600): the issuing CA's key, its certificate and the
    /// root's certificate. Writing it is the commit point of a new CA; the root's key is never
    /// written anywhere.
    pub fn issuing_ca(&self) -> PathBuf {
        self.state_dir.join("issuing-ca.pem")
    }
    /// A factory-provisioned CA, used instead of generating one when both files are present:
    /// `ca.crt` holds the signing CA's certificate (then its root, for two tiers), `ca.key` its key.
    pub fn factory_ca_cert(&self) -> PathBuf {
        self.state_dir.join("factory").join("ca.crt")
    }
    pub fn factory_ca_key(&self) -> PathBuf {
        self.state_dir.join("factory").join("ca.key")
    }
    /// Record of the last time the CA was replaced (JSON), so the UI can ask users to re-import it.
    pub fn ca_replaced_record(&self) -> PathBuf {
        self.state_dir.join("ca-replaced.json")
    }
    /// SHA-256 fingerprint of the CA in use last time, so a change of CA is always recorded.
    pub fn ca_in_use(&self) -> PathBuf {
        self.state_dir.join("ca-in-use.sha256")
    }
    /// The last wall-clock time seen (seconds since the epoch, text): the clock floor.
    pub fn saved_clock(&self) -> PathBuf {
        self.state_dir.join("clock")
    }
    /// An installer's certificate chain and key, in one PEM file (0600).
    pub fn uploaded_bundle(&self) -> PathBuf {
        self.state_dir.join("uploaded.pem")
    }
    /// The key and request of a CSR made on the camera, in one PEM file (0600).
    pub fn pending_csr(&self) -> PathBuf {
        self.state_dir.join("pending-csr.pem")
    }
    /// The admin password hash (JSON, 0600).
    pub fn password(&self) -> PathBuf {
        self.state_dir.join("admin-password.json")
    }
    /// Automatic enrollment: the settings (with their secrets: EAB key, SCEP challenge) and
    /// what the camera last did (JSON, 0600).
    pub fn enrollment(&self) -> PathBuf {
        self.state_dir.join("enrollment.json")
    }
    /// The ACME account key (PKCS#8 PEM, 0600).
    pub fn acme_account_key(&self) -> PathBuf {
        self.state_dir.join("acme-account.key")
    }
    /// The security event log's changes (JSON lines) and its predecessor `events.log.1`.
    pub fn events(&self) -> PathBuf {
        self.state_dir.join("events.log")
    }
    /// The security event log's logins, failed logins and expiry warnings (JSON lines), apart so
    /// that their floods cannot rotate the changes out, and its predecessor `logins.log.1`.
    pub fn logins(&self) -> PathBuf {
        self.state_dir.join("logins.log")
    }
    /// The 802.1X (EAP-TLS) client certificate's chain and key, in one PEM file (0600): the
    /// `dot1x` role's slot, as `uploaded.pem` is the `https` role's.
    pub fn dot1x_bundle(&self) -> PathBuf {
        self.state_dir.join("dot1x.pem")
    }
    /// The key and request of a `dot1x` CSR made on the camera, in one PEM file (0600).
    pub fn dot1x_pending_csr(&self) -> PathBuf {
        self.state_dir.join("dot1x-csr.pem")
    }
    /// Automatic enrollment of the `dot1x` certificate (SCEP): as `enrollment.json` is the
    /// `https` certificate's (JSON, 0600).
    pub fn dot1x_enrollment(&self) -> PathBuf {
        self.state_dir.join("dot1x-enrollment.json")
    }
    /// 802.1X: the settings and the supplicant's files (0700): `settings.json`, the configuration
    /// that last authenticated (`wpa_supplicant.conf`, what the init script starts with) and the
    /// copies of the certificates and keys it names.
    pub fn dot1x_dir(&self) -> PathBuf {
        self.state_dir.join("dot1x")
    }
    /// The digest of the configuration file's `dot1x` section last adopted (text), so the file is
    /// applied once when it changes, not over the installer's later changes at every start.
    pub fn dot1x_adopted_config(&self) -> PathBuf {
        self.dot1x_dir().join("adopted-config.sha256")
    }
    /// The control sockets of wpa_supplicant (tmpfs, `-C` of the init script).
    pub fn dot1x_control_dir(&self) -> PathBuf {
        self.run_dir.join("wpa_supplicant")
    }
    /// The minted server certificate, its key and the CA certificate, in one PEM file (0600).
    pub fn minted_bundle(&self) -> PathBuf {
        self.run_dir.join("server.pem")
    }
    /// Creates both directories (state 0700, run 0700) if missing.
    pub fn create_dirs(&self) -> io::Result<()> {
        ensure_dir(&self.state_dir, 0o700)?;
        ensure_dir(&self.run_dir, 0o700)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("camera-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn write_atomic_replaces_whole_file_with_mode() {
        let dir = temp_dir("write");
        let path = dir.join("key.pem");
        write_atomic(&path, b"old", SECRET_MODE).unwrap();
        write_atomic(&path, b"new contents", SECRET_MODE).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new contents");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left behind");
    }

    #[test]
    fn failed_write_leaves_old_file_and_no_temporary() {
        let dir = temp_dir("fail");
        let path = dir.join("x");
        write_atomic(&path, b"old", PUBLIC_MODE).unwrap();
        // A path whose parent is a file cannot be written.
        let err = write_atomic(&path.join("child"), b"new", PUBLIC_MODE).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotADirectory);
        assert_eq!(fs::read(&path).unwrap(), b"old");
    }

    #[test]
    fn stale_temporaries_are_removed() {
        let dir = temp_dir("stale");
        let boot = boot_tag();
        // pid 4194304 is above Linux's pid_max: that writer is surely gone.
        fs::write(dir.join(format!(".tmp-ca.key-{boot}-4194304-0")), b"half").unwrap();
        // pid 1 is alive in this boot: its file may be in the middle of being written.
        fs::write(dir.join(format!(".tmp-uploaded.pem-{boot}-1-0")), b"busy").unwrap();
        // pid 1 of an earlier boot (the power was cut): gone, whatever runs as pid 1 now.
        fs::write(dir.join(".tmp-uploaded.pem-0123456789ab-1-0"), b"half").unwrap();
        // The format before boot ids: from an earlier firmware, so an earlier boot.
        fs::write(dir.join(".tmp-server.pem-1-0"), b"half").unwrap();
        fs::write(dir.join("ca.crt"), b"keep").unwrap();
        assert_eq!(remove_stale_temporaries(&dir).unwrap(), 3);
        assert!(dir.join("ca.crt").exists());
        assert!(dir.join(format!(".tmp-uploaded.pem-{boot}-1-0")).exists());
    }

    #[test]
    fn ensure_dir_refuses_a_file() {
        let dir = temp_dir("ensure");
        let file = dir.join("state");
        fs::write(&file, b"").unwrap();
        let err = ensure_dir(&file, 0o700).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotADirectory);
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    #[test]
    fn read_optional_reads_small_files_and_refuses_huge_ones() {
        let dir = temp_dir("read");
        assert!(read_optional(&dir.join("absent")).unwrap().is_none());
        let path = dir.join("clock");
        fs::write(&path, b"1700000000\n").unwrap();
        assert_eq!(read_optional(&path).unwrap().unwrap().as_slice(), b"1700000000\n");
        let exact = vec![b'x'; MAX_STATE_FILE as usize];
        fs::write(&path, &exact).unwrap();
        assert_eq!(read_optional(&path).unwrap().unwrap().len(), exact.len());
        fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"x").unwrap();
        assert_eq!(read_optional(&path).unwrap_err().kind(), io::ErrorKind::FileTooLarge);
        // A file whose size says nothing: stopped at the limit, not read to the end of memory.
        let zero = std::os::unix::fs::symlink("/dev/zero", dir.join("zero"));
        zero.unwrap();
        assert_eq!(read_optional(&dir.join("zero")).unwrap_err().kind(), io::ErrorKind::FileTooLarge);
    }

    #[test]
    fn lock_is_exclusive_across_processes_and_released_on_drop() {
        let dir = temp_dir("lock");
        let lock = StateLock::acquire(&dir).unwrap();
        let file = OpenOptions::new().read(true).open(dir.join(".lock")).unwrap();
        let busy = Flock::lock(file, FlockArg::LockExclusiveNonblock);
        assert!(busy.is_err(), "a second open file description must not get the lock");
        drop(lock);
        let file = OpenOptions::new().read(true).open(dir.join(".lock")).unwrap();
        assert!(Flock::lock(file, FlockArg::LockExclusiveNonblock).is_ok());
    }
}
