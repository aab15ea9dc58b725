//! The `camera` section: what the CA and the server certificates say, and when to renew.

use std::time::Duration;

use camera_pki::{NameConstraintsPolicy, SanName, MAX_SERVER_VALIDITY_DAYS};
use serde::Deserialize;

use crate::ConfigError;

/// The `camera` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CameraConfig {
    /// Shown in the CA's and server certificate's subject.
    pub model: String,
    /// Host name for `hostname.local`; the system host name when absent.
    pub hostname: Option<String>,
    /// Extra names for the server certificate (e.g. a site DNS name under a permitted domain).
    pub extra_names: Vec<String>,
    /// Adds loopback to the names and to the CA's constraints: development machines and tests only.
    pub loopback: bool,
    pub name_constraints: NameConstraintsPolicy,
    /// Server certificate lifetime in days (90 under High-Security unless set: see
    /// [`crate::ConfigFile::parse`]).
    pub server_cert_days: i64,
    /// The watcher renews the server certificate this many days before it expires.
    pub renew_before_days: i64,
}

impl Default for CameraConfig {
    fn default() -> Self {
        Self {
            model: "IP Camera".into(),
            hostname: None,
            extra_names: Vec::new(),
            loopback: false,
            name_constraints: NameConstraintsPolicy::default(),
            server_cert_days: MAX_SERVER_VALIDITY_DAYS,
            renew_before_days: 30,
        }
    }
}

impl CameraConfig {
    /// The CA constraints with loopback added when configured.
    pub fn constraints(&self) -> NameConstraintsPolicy {
        if self.loopback {
            self.name_constraints.clone().with_loopback()
        } else {
            self.name_constraints.clone()
        }
    }

    /// How long before expiry the server certificate is renewed (none for a negative count, which
    /// [`CameraConfig::check`] refuses; never an overflow).
    pub fn renew_before(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.renew_before_days).unwrap_or(0).saturating_mul(86_400))
    }

    /// The checks [`crate::ConfigFile::parse`] makes; for configurations built in code.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_SERVER_VALIDITY_DAYS).contains(&self.server_cert_days) {
            return Err(ConfigError::OutOfRange {
                setting: "camera.server_cert_days",
                requirement: format!("must be 1 to {MAX_SERVER_VALIDITY_DAYS}, not {}", self.server_cert_days),
            });
        }
        if !(1..self.server_cert_days).contains(&self.renew_before_days) {
            return Err(ConfigError::OutOfRange {
                setting: "camera.renew_before_days",
                requirement: format!(
                    "must be at least 1 and less than server_cert_days ({}), not {}",
                    self.server_cert_days, self.renew_before_days
                ),
            });
        }
        if self.model.trim().is_empty() || self.model.len() > 40 {
            return Err(ConfigError::OutOfRange {
                setting: "camera.model",
                requirement: "must be 1 to 40 characters".into(),
            });
        }
        self.name_constraints
            .check()
            .map_err(|source| ConfigError::Rejected { setting: "camera.name_constraints", source })?;
        for name in &self.extra_names {
            SanName::parse(name).map_err(|source| ConfigError::Rejected { setting: "camera.extra_names", source })?;
        }
        Ok(())
    }
}
