//! `camera-web`: the camera's HTTPS server. hyper + tokio + rustls (ring provider).
//!
//! - [`domain`]: the certificates (installer's > device-minted), the TLS resolver and hot swap,
//!   the status view, expiry, and enrollment's host. It never depends on the HTTP layer.
//! - [`api`]: the JSON API and the UI's routes, over `domain`.
//! - [`auth`]: admin password, sessions, CSRF, failed-login limiter.
//! - [`admission`]: connection slots: total and per-client caps, eviction of silent connections.
//! - [`server`]: listeners, TLS, timeouts, the watcher thread.
//! - [`respawn`]: `--respawn`, the supervisor that restarts the server if it dies.

pub mod admission;
pub mod api;
pub mod assets;
pub mod auth;
pub mod config;
pub mod domain;
pub mod entry;
pub mod multipart;
pub mod respawn;
pub mod server;

/// The one-line log both programs write (`camera-log`).
pub(crate) use camera_log as log;
