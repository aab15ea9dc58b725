//! The `web` section: camera-web's listeners, TLS profile and connection limits.

use std::net::SocketAddr;

use serde::Deserialize;

use crate::ConfigError;

/// Longest `handshake_timeout_secs`: a deadline far beyond any real handshake only keeps slots
/// busy, and hyper adds the value to an `Instant` (a huge one panicked there).
const MAX_HANDSHAKE_TIMEOUT_SECS: u64 = 3600;

/// TLS protocol profile ("Standard" and "High-Security", as camera makers name them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TlsProfile {
    /// TLS 1.2 and 1.3 (Mozilla "intermediate").
    #[serde(rename = "standard")]
    Standard,
    /// TLS 1.3 only (Mozilla "modern"); server certificates of 90 days unless
    /// `camera.server_cert_days` says otherwise.
    #[serde(rename = "high-security")]
    HighSecurity,
}

impl TlsProfile {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::HighSecurity => "high-security",
        }
    }
}

/// The `web` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    pub https: SocketAddr,
    /// `null` turns the plain-HTTP listener off.
    pub http: Option<SocketAddr>,
    pub tls: TlsProfile,
    /// Connections held at once (HTTP and HTTPS together); when all are taken, the oldest one
    /// that has not sent a request yet is closed to make room, else the new one is.
    pub max_connections: usize,
    /// Connections one client address may hold at once.
    pub max_connections_per_client: usize,
    /// Seconds a client has to finish the TLS handshake and to send each request's headers.
    pub handshake_timeout_secs: u64,
    /// Certificates that expire within this many days are shown with a warning (UI banner, API)
    /// and logged once a day.
    pub expiry_warning_days: u32,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            https: SocketAddr::from(([0u16; 8], 443)),
            http: Some(SocketAddr::from(([0u16; 8], 80))),
            tls: TlsProfile::Standard,
            max_connections: 256,
            // A browser opens at most 6 per host; scripts one or two.
            max_connections_per_client: 16,
            handshake_timeout_secs: 10,
            expiry_warning_days: 30,
        }
    }
}

impl WebConfig {
    /// The checks [`crate::ConfigFile::parse`] makes; for configurations built in code.
    pub fn check(&self) -> Result<(), ConfigError> {
        let positive = |setting: &'static str, value: usize| {
            if value == 0 {
                Err(ConfigError::OutOfRange { setting, requirement: "must be at least 1".into() })
            } else {
                Ok(())
            }
        };
        positive("web.max_connections", self.max_connections)?;
        positive("web.max_connections_per_client", self.max_connections_per_client)?;
        if !(1..=365).contains(&self.expiry_warning_days) {
            return Err(ConfigError::OutOfRange {
                setting: "web.expiry_warning_days",
                requirement: format!("must be 1 to 365, not {}", self.expiry_warning_days),
            });
        }
        if !(1..=MAX_HANDSHAKE_TIMEOUT_SECS).contains(&self.handshake_timeout_secs) {
            return Err(ConfigError::OutOfRange {
                setting: "web.handshake_timeout_secs",
                requirement: format!("must be 1 to {MAX_HANDSHAKE_TIMEOUT_SECS}, not {}", self.handshake_timeout_secs),
            });
        }
        Ok(())
    }
}
