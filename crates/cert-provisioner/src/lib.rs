//! The boot step: ensures the camera's root CA exists in the state directory and mints the server
//! certificate for the camera's current addresses into the run directory. `camera-web` uses the
//! same library to provision on its own and to re-mint when addresses or the clock change.

pub mod cli;
pub mod clock;
pub mod config;
pub mod entry;
pub mod log;
pub mod provision;
pub mod watch;

pub use config::{CameraConfig, ConfigFile};
pub use provision::{provision, provision_for, reuse_or_provision, CaOrigin, Outcome, ProvisionError};

/// The DER of every certificate in a PEM text (unparseable text gives none).
pub fn pem_certificates(text: &[u8]) -> Vec<Vec<u8>> {
    camera_pki::pem::certificates(text).unwrap_or_default()
}
