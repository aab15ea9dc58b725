//! The configuration file both camera programs read (`/etc/camera-https/config.json`), one typed
//! struct per section, and the command-line flags they share.
//!
//! - [`CameraConfig`], the `camera` section: what the certificates say (cert-provisioner).
//! - [`WebConfig`], the `web` section: listeners, TLS profile, connection limits (camera-web).
//!
//! Both programs parse the whole file, so they agree on whether it is valid and on every rule
//! that joins two sections (High-Security mints 90-day certificates). Every key is optional;
//! unknown sections and unknown keys inside a section are refused, so typos are caught; every
//! error is one line that names the file, the section and the setting.

mod camera;
mod cli;
mod web;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;

pub use camera::CameraConfig;
pub use cli::{normalize, CommonArgs, MissingValue};
pub use web::{TlsProfile, WebConfig};

/// Where the boot scripts and the web server look by default.
pub const DEFAULT_CONFIG: &str = "/etc/camera-https/config.json";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/camera-https";
pub const DEFAULT_RUN_DIR: &str = "/run/camera-https";

/// Server certificate lifetime when the web server runs High-Security (Mozilla's "modern" profile
/// takes certificates of 90 days at most) and the `camera` section does not say otherwise.
pub const HIGH_SECURITY_SERVER_CERT_DAYS: i64 = 90;

/// Why the configuration cannot be used. The one-line message is the error with its sources
/// (`camera_log::chain`): "configuration file F: section "camera": unknown field `modle`, ...".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file exists (or was named on the command line) but cannot be read.
    #[error("cannot read the configuration file {}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// Something is wrong inside the file (the source says what).
    #[error("configuration file {}", path.display())]
    InFile { path: PathBuf, source: Box<ConfigError> },
    /// Not JSON.
    #[error("not valid JSON")]
    Syntax(#[source] serde_json::Error),
    /// JSON, but not an object of known sections.
    #[error("not an object of the sections \"camera\", \"web\", \"enrollment\" and \"dot1x\"")]
    Sections(#[source] serde_json::Error),
    /// A section holds an unknown key or a value of the wrong type.
    #[error("section \"{section}\"")]
    Section { section: &'static str, source: serde_json::Error },
    /// A value is outside what the camera can use.
    #[error("{setting} {requirement}")]
    OutOfRange { setting: &'static str, requirement: String },
    /// A name or name constraint the certificates could not carry.
    #[error("{setting} is not usable")]
    Rejected { setting: &'static str, source: camera_pki::RequestError },
}

/// The whole file.
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    pub camera: CameraConfig,
    pub web: WebConfig,
    /// The `enrollment` section (automatic enrollment from the site's CA), as JSON: its type and
    /// checks are `camera_enroll::Settings` (they need the PKI and the ACME client to check a
    /// trust anchor or an EAB key), applied by camera-web at start; cert-provisioner ignores it.
    pub enrollment: Option<serde_json::Value>,
    /// The `dot1x` section (802.1X with EAP-TLS), as JSON: checked by `camera_dot1x::Settings`
    /// and applied by camera-web at start (a section it refuses turns 802.1X off).
    pub dot1x: Option<serde_json::Value>,
}

/// The file as JSON: each section still raw, so a section's errors name it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Sections {
    #[serde(default)]
    camera: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    web: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    enrollment: Option<serde_json::Value>,
    #[serde(default)]
    dot1x: Option<serde_json::Value>,
}

/// A section from its JSON object; absent or `null`: the defaults.
fn section<T: DeserializeOwned + Default>(
    name: &'static str,
    value: Option<serde_json::Map<String, serde_json::Value>>,
) -> Result<T, ConfigError> {
    match value {
        None => Ok(T::default()),
        Some(map) => serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|source| ConfigError::Section { section: name, source }),
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

impl ConfigFile {
    /// Reads `path`; with no path, the default file, and the built-in defaults when it is missing.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG), false),
        };
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(Self::default()),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        Self::parse(&text).map_err(|e| ConfigError::InFile { path, source: Box::new(e) })
    }

    /// Parses and checks the file's contents.
    pub fn parse(text: &[u8]) -> Result<Self, ConfigError> {
        let value: serde_json::Value = serde_json::from_slice(text).map_err(ConfigError::Syntax)?;
        // From the value, not the text: serde would also take a list for a struct.
        let sections = match value {
            serde_json::Value::Object(map) => {
                Sections::deserialize(serde_json::Value::Object(map)).map_err(ConfigError::Sections)?
            }
            other => {
                let e = serde::de::Error::invalid_type(serde::de::Unexpected::Other(json_kind(&other)), &"an object");
                return Err(ConfigError::Sections(e));
            }
        };
        let days_set = sections.camera.as_ref().is_some_and(|c| c.contains_key("server_cert_days"));
        let mut camera: CameraConfig = section("camera", sections.camera)?;
        let web: WebConfig = section("web", sections.web)?;
        if web.tls == TlsProfile::HighSecurity && !days_set {
            camera.server_cert_days = HIGH_SECURITY_SERVER_CERT_DAYS;
        }
        camera.check()?;
        web.check()?;
        Ok(Self {
            camera,
            web,
            enrollment: sections.enrollment.filter(|v| !v.is_null()),
            dot1x: sections.dot1x.filter(|v| !v.is_null()),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        camera_log::chain(&ConfigFile::parse(text.as_bytes()).unwrap_err())
    }

    #[test]
    fn empty_sections_give_the_defaults() {
        for text in ["{}", r#"{"camera": {}, "web": {}}"#, r#"{"camera": null, "web": null}"#] {
            let file = ConfigFile::parse(text.as_bytes()).unwrap();
            assert_eq!(file.camera.server_cert_days, 365, "{text}");
            assert_eq!(file.web.tls, TlsProfile::Standard, "{text}");
            assert_eq!(file.web.https.port(), 443, "{text}");
        }
    }

    #[test]
    fn high_security_mints_90_day_certificates_unless_told_otherwise() {
        let file = ConfigFile::parse(br#"{"web": {"tls": "high-security"}}"#).unwrap();
        assert_eq!(file.camera.server_cert_days, HIGH_SECURITY_SERVER_CERT_DAYS);
        let file =
            ConfigFile::parse(br#"{"camera": {"server_cert_days": 200}, "web": {"tls": "high-security"}}"#).unwrap();
        assert_eq!(file.camera.server_cert_days, 200);
        // Set to the default value explicitly still counts as set.
        let file =
            ConfigFile::parse(br#"{"camera": {"server_cert_days": 365}, "web": {"tls": "high-security"}}"#).unwrap();
        assert_eq!(file.camera.server_cert_days, 365);
        let file = ConfigFile::parse(br#"{"web": {"tls": "standard"}}"#).unwrap();
        assert_eq!(file.camera.server_cert_days, 365);
    }

    #[test]
    fn typos_are_refused_naming_the_section_and_the_key() {
        let e = error(r#"{"camera": {"modle": "x"}}"#);
        assert!(e.contains("section \"camera\"") && e.contains("modle"), "{e}");
        let e = error(r#"{"web": {"tsl": "standard"}}"#);
        assert!(e.contains("section \"web\"") && e.contains("tsl"), "{e}");
        let e = error(r#"{"wbe": {}}"#);
        assert!(e.contains("wbe"), "an unknown section is refused: {e}");
        let e = error(r#"{"web": {"tls": "paranoid"}}"#);
        assert!(e.contains("paranoid"), "{e}");
        assert!(error("{").starts_with("not valid JSON: "), "{}", error("{"));
        for text in ["[]", "null", "3", r#"{"camera": []}"#, r#"{"camera": 1}"#] {
            assert!(error(text).starts_with("not an object of the sections"), "{text}: {}", error(text));
        }
    }

    #[test]
    fn values_out_of_range_are_refused_naming_the_setting() {
        for (text, setting) in [
            (r#"{"camera": {"server_cert_days": 400}}"#, "camera.server_cert_days"),
            (r#"{"camera": {"server_cert_days": 0}}"#, "camera.server_cert_days"),
            (r#"{"camera": {"server_cert_days": 90, "renew_before_days": 90}}"#, "camera.renew_before_days"),
            (r#"{"camera": {"renew_before_days": -1}}"#, "camera.renew_before_days"),
            (r#"{"camera": {"model": ""}}"#, "camera.model"),
            (r#"{"camera": {"extra_names": ["not a name"]}}"#, "camera.extra_names"),
            (
                r#"{"camera": {"name_constraints": {"permitted_subnets": ["10.0.0.0/40"], "permitted_dns": []}}}"#,
                "prefix /40",
            ),
            (r#"{"web": {"max_connections": 0}}"#, "web.max_connections"),
            (r#"{"web": {"max_connections_per_client": 0}}"#, "web.max_connections_per_client"),
            (r#"{"web": {"handshake_timeout_secs": 0}}"#, "web.handshake_timeout_secs"),
            // hyper adds this to an Instant: a huge value panicked at the first request.
            (r#"{"web": {"handshake_timeout_secs": 18446744073709551615}}"#, "web.handshake_timeout_secs"),
        ] {
            let e = error(text);
            assert!(e.contains(setting), "{text}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        // Too large for the type at all: serde names the value.
        let e = error(r#"{"camera": {"server_cert_days": 99999999999999999999}}"#);
        assert!(e.contains("section \"camera\""), "{e}");
    }

    /// The config fuzz target's first crash: rcgen panicked on this when making the CA.
    #[test]
    fn a_non_ascii_dns_constraint_is_refused() {
        let e = error(
            r#"{"camera": {"name_constraints": {"permitted_subnets": [], "permitted_dns": [".site\u0397ome.arpa"]}}}"#,
        );
        assert!(e.contains("camera.name_constraints") && e.contains("permitted_dns"), "{e}");
    }

    #[test]
    fn a_missing_default_file_gives_the_defaults_and_a_missing_named_file_is_an_error() {
        let missing = std::env::temp_dir().join(format!("camera-config-missing-{}.json", std::process::id()));
        let e = ConfigFile::load(Some(&missing)).unwrap_err();
        let line = camera_log::chain(&e);
        assert!(line.contains(&missing.display().to_string()) && line.contains("No such file"), "{line}");

        let path = std::env::temp_dir().join(format!("camera-config-bad-{}.json", std::process::id()));
        std::fs::write(&path, r#"{"camera": {"modle": 1}}"#).unwrap();
        let line = camera_log::chain(&ConfigFile::load(Some(&path)).unwrap_err());
        let _ = std::fs::remove_file(&path);
        assert!(line.starts_with(&format!("configuration file {}: section \"camera\": ", path.display())), "{line}");
        assert!(line.contains("modle"), "{line}");
    }
}
