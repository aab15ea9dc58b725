//! Why provisioning or watching failed. Each variant says what failed and where; the cause is its
//! source (the CLI and camera-web log the whole chain on one line with `camera_log::chain`).
//! Never key material.

use std::path::PathBuf;

use camera_netlink::NetlinkError;
use camera_pki::PkiError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// The state or run directory cannot be created, or is not a directory.
    #[error("cannot use the directory {}", path.display())]
    Directory { path: PathBuf, source: std::io::Error },
    /// The state directory's lock cannot be taken.
    #[error("cannot lock the state directory {}", path.display())]
    Lock { path: PathBuf, source: std::io::Error },
    /// Temporary files that an interrupted write left cannot be removed.
    #[error("cannot remove the temporary files of interrupted writes in {}", path.display())]
    CleanUp { path: PathBuf, source: std::io::Error },
    /// A file cannot be read.
    #[error("cannot read {}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// A file cannot be written (full disk, read-only flash, permissions).
    #[error("cannot write {}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    /// An unusable CA file cannot be moved aside.
    #[error("cannot move {} aside to {}", from.display(), to.display())]
    MoveAside { from: PathBuf, to: PathBuf, source: std::io::Error },
    /// `--new-ca`: the old CA file cannot be deleted.
    #[error("cannot delete {}", path.display())]
    Delete { path: PathBuf, source: std::io::Error },
    /// Making a key or a certificate failed.
    #[error("cannot make the certificate")]
    Pki(#[from] PkiError),
    /// `--new-ca` on a camera whose CA is the factory's (the installer's to change).
    #[error("this camera uses the factory CA in {}: replace or remove those files to change it", path.display())]
    FactoryCaInUse { path: PathBuf },
    /// The watcher cannot subscribe to the kernel's address notifications.
    #[error("cannot subscribe to address changes")]
    Subscribe(#[source] NetlinkError),
    /// The watcher cannot make the timer that notices when the wall clock is set.
    #[error("cannot set up the timer that notices clock changes")]
    ClockTimer(#[source] nix::Error),
    /// The watcher cannot wait for address or clock changes.
    #[error("cannot wait for address or clock changes")]
    Poll(#[source] nix::Error),
}
