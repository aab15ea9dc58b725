//! `camera-web`: the camera's HTTPS server. hyper + tokio + rustls (ring provider).
//!
//! - [`certs`]: which certificate is served (uploaded > device-minted) and the hot swap.
//! - [`api`]: the JSON API and the UI's routes.
//! - [`auth`]: admin password, sessions, CSRF, failed-login limiter.
//! - [`admission`]: connection slots: total and per-client caps, eviction of silent connections.
//! - [`server`]: listeners, TLS, timeouts, the watcher thread.
//! - [`respawn`]: `--respawn`, the supervisor that restarts the server if it dies.

pub mod admission;
pub mod api;
pub mod assets;
pub mod auth;
pub mod certs;
pub mod config;
pub mod enrollment;
pub mod entry;
pub mod expiry;
pub mod multipart;
pub mod respawn;
pub mod server;

/// The one-line log both programs write (`camera-log`).
pub(crate) use camera_log as log;
