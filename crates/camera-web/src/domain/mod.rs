//! The camera's certificates as a web server holds them, below the HTTP layer (which depends on
//! this, never the reverse):
//!
//! - [`certificates`]: the state machine (device, installer's, pending request; install, restore,
//!   fallback) and its files.
//! - [`resolver`]: the TLS resolver new handshakes ask.
//! - [`status`]: the status view and its warnings about names the certificate does not cover.
//! - [`camera`]: the camera's addresses and names now, and the upload checks against them.
//! - [`expiry`]: days left of everything held, daily warnings, fallback at expiry.
//! - [`enrollment`]: the [`camera_enroll::Host`] (installs like an upload, answers challenges).
//! - [`clock`], [`events`]: now as certificate times count; recording a security event.

pub mod camera;
pub mod certificates;
pub mod clock;
pub mod dot1x;
pub mod enrollment;
pub mod events;
pub mod expiry;
pub mod resolver;
pub mod status;
