//! Provisioning: ensures the camera's CA exists in the state directory and mints the server
//! certificate for the camera's current addresses into the run directory. The boot step
//! (`cert-provisioner`, a thin binary) runs it once; `camera-web` uses it to provision on its own
//! and to re-mint when addresses or the clock change.
//!
//! - [`provision`]: one provisioning run (CA, names, mint, write).
//! - [`renewal`]: when a certificate must be replaced (shared by provisioning and the watcher).
//! - [`watch`]: the loop that follows address changes, clock jumps and expiry.
//! - [`clock`]: the clock floor for cameras without a real-time clock.
//!
//! The configuration file and the shared command-line flags are `camera-config`'s; the log lines
//! are `camera-log`'s.

pub mod clock;
mod error;
pub mod provision;
pub mod renewal;
pub mod watch;

pub use error::ProvisionError;
pub use provision::{provision, provision_for, reuse_or_provision, CaOrigin, Outcome};

/// The DER of every certificate in a PEM text (unparseable text gives none).
pub fn pem_certificates(text: &[u8]) -> Vec<Vec<u8>> {
    camera_pki::pem::certificates(text).unwrap_or_default()
}
