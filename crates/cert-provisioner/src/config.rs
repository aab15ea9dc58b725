//! The configuration file shared by both programs. Each program reads its own section and
//! ignores the others; unknown keys inside a section are refused, so typos are caught.

use std::path::{Path, PathBuf};

use camera_pki::{NameConstraintsPolicy, MAX_SERVER_VALIDITY_DAYS};
use serde::Deserialize;

/// Where the boot scripts and the web server look by default.
pub const DEFAULT_CONFIG: &str = "/etc/camera-https/config.json";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/camera-https";
pub const DEFAULT_RUN_DIR: &str = "/run/camera-https";

/// Server certificate lifetime when the web server runs High-Security (TLS 1.3 only) and the
/// configuration does not say otherwise.
pub const HIGH_SECURITY_SERVER_CERT_DAYS: i64 = 90;

/// The `camera` section: what the certificates say.
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

    fn check(&self) -> Result<(), String> {
        if !(1..=MAX_SERVER_VALIDITY_DAYS).contains(&self.server_cert_days) {
            return Err(format!("camera.server_cert_days must be 1 to {MAX_SERVER_VALIDITY_DAYS}"));
        }
        if !(1..self.server_cert_days).contains(&self.renew_before_days) {
            return Err("camera.renew_before_days must be at least 1 and less than server_cert_days".into());
        }
        if self.model.trim().is_empty() || self.model.len() > 40 {
            return Err("camera.model must be 1 to 40 characters".into());
        }
        self.name_constraints.check().map_err(|e| format!("camera.name_constraints: {e}"))?;
        for name in &self.extra_names {
            camera_pki::SanName::parse(name).map_err(|e| format!("camera.extra_names: {e}"))?;
        }
        Ok(())
    }
}

/// The whole file: the `camera` section, plus any other program's sections (kept as JSON).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConfigFile {
    #[serde(default)]
    pub camera: CameraConfig,
    #[serde(default)]
    pub web: serde_json::Value,
    #[serde(default)]
    pub enrollment: serde_json::Value,
}

impl ConfigFile {
    /// Reads `path`; when `path` is the default and missing, the built-in defaults apply.
    pub fn load(path: Option<&Path>) -> Result<Self, String> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG), false),
        };
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(Self::default()),
            Err(e) => return Err(format!("cannot read config {}: {e}", path.display())),
        };
        Self::parse(&text).map_err(|e| format!("config {}: {e}", path.display()))
    }

    pub fn parse(text: &[u8]) -> Result<Self, String> {
        let mut file: Self = serde_json::from_slice(text).map_err(|e| e.to_string())?;
        // Mozilla's "modern" profile (High-Security) takes server certificates of 90 days at most.
        if file.web.get("tls").and_then(|t| t.as_str()) == Some("high-security") {
            let raw: serde_json::Value = serde_json::from_slice(text).map_err(|e| e.to_string())?;
            if raw.get("camera").and_then(|c| c.get("server_cert_days")).is_none() {
                file.camera.server_cert_days = HIGH_SECURITY_SERVER_CERT_DAYS;
            }
        }
        file.camera.check()?;
        Ok(file)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults_and_other_sections_are_kept() {
        let file = ConfigFile::parse(br#"{"web": {"tls": "standard"}}"#).unwrap();
        assert_eq!(file.camera.server_cert_days, 365);
        assert_eq!(file.web["tls"], "standard");
    }

    #[test]
    fn high_security_mints_90_day_certificates_unless_told_otherwise() {
        let file = ConfigFile::parse(br#"{"web": {"tls": "high-security"}}"#).unwrap();
        assert_eq!(file.camera.server_cert_days, HIGH_SECURITY_SERVER_CERT_DAYS);
        let file =
            ConfigFile::parse(br#"{"camera": {"server_cert_days": 200}, "web": {"tls": "high-security"}}"#).unwrap();
        assert_eq!(file.camera.server_cert_days, 200);
    }

    #[test]
    fn typos_and_bad_values_are_refused() {
        assert!(ConfigFile::parse(br#"{"camera": {"modle": "x"}}"#).unwrap_err().contains("modle"));
        assert!(ConfigFile::parse(br#"{"camera": {"server_cert_days": 400}}"#).is_err());
        assert!(ConfigFile::parse(br#"{"camera": {"extra_names": ["not a name"]}}"#).is_err());
        assert!(ConfigFile::parse(
            br#"{"camera": {"name_constraints": {"permitted_subnets": ["10.0.0.0/40"], "permitted_dns": []}}}"#
        )
        .is_err());
        assert!(ConfigFile::parse(b"{").is_err());
        // The config fuzz target's first crash: rcgen panicked on this when making the CA.
        let e = ConfigFile::parse(
            r#"{"camera": {"name_constraints": {"permitted_subnets": [], "permitted_dns": [".site\u0397ome.arpa"]}}}"#
                .as_bytes(),
        )
        .unwrap_err();
        assert!(e.contains("camera.name_constraints: permitted_dns"), "{e}");
    }
}
