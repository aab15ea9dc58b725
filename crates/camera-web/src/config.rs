//! The `web` section of the configuration file and the command line.

use std::net::SocketAddr;

use serde::Deserialize;

/// TLS protocol profile (seed 000's "Standard" and "High-Security").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TlsProfile {
    /// TLS 1.2 and 1.3 (Mozilla "intermediate").
    #[serde(rename = "standard")]
    Standard,
    /// TLS 1.3 only (Mozilla "modern").
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
    pub fn from_json(value: &serde_json::Value) -> Result<Self, String> {
        if value.is_null() {
            return Ok(Self::default());
        }
        let config: Self = serde_json::from_value(value.clone()).map_err(|e| format!("web section: {e}"))?;
        if config.max_connections == 0 || config.max_connections_per_client == 0 || config.handshake_timeout_secs == 0 {
            return Err(
                "web section: max_connections, max_connections_per_client and handshake_timeout_secs must be positive"
                    .into(),
            );
        }
        Ok(config)
    }
}
