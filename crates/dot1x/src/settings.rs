//! The installer's 802.1X settings: read from JSON (the API, the configuration file's `dot1x`
//! section), every field checked, and the warnings they deserve.

use camera_log::Escaped;
use camera_pki::pem::PemError;
use camera_pki::PkiError;
use serde::{Deserialize, Serialize};

/// wpa_supplicant gives up after 3 EAPOL-Starts 30 s apart and then holds for 60 s: a trial
/// shorter than that may end before a slow authentication server had its chance.
pub const DEFAULT_TRIAL_SECONDS: u32 = 180;
pub const MIN_TRIAL_SECONDS: u32 = 20;
pub const MAX_TRIAL_SECONDS: u32 = 3600;
/// The most text `server_ca_pem` may hold.
pub const MAX_SERVER_CA_PEM: usize = 32 * 1024;
/// The most certificates `server_ca_pem` may hold.
pub const MAX_SERVER_CA_CERTS: usize = 8;
const MAX_NAME: usize = 253;

/// The 802.1X settings the installer chose. They hold no secret: the client key is the camera's
/// `dot1x` credential, handed over apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub enabled: bool,
    /// The wired interface wpa_supplicant runs on (its control socket's name).
    pub interface: String,
    /// The EAP identity; None: the client certificate's common name.
    pub identity: Option<String>,
    /// 1 (what wpa_supplicant sends by default and switches expect) or 2.
    pub eapol_version: u8,
    /// The CA certificate(s) the authentication server's certificate must chain to.
    pub server_ca_pem: String,
    /// The authentication server's expected name (wpa_supplicant's `domain_match`: a suffix
    /// match on its DNS names; several separated by `;`).
    pub domain_match: Option<String>,
    /// How long a new configuration may take to authenticate before the camera goes back to the
    /// one that last worked (seconds the link is up).
    pub trial_seconds: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            enabled: false,
            interface: "eth0".to_owned(),
            identity: None,
            eapol_version: 1,
            server_ca_pem: String::new(),
            domain_match: None,
            trial_seconds: DEFAULT_TRIAL_SECONDS,
        }
    }
}

/// Why 802.1X settings are refused: one sentence naming the setting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    #[error("the 802.1X settings must be a JSON object")]
    NotAnObject,
    #[error("there is no 802.1X setting named \"{}\"", Escaped(.0))]
    Unknown(String),
    #[error("the 802.1X setting {setting} must be {expected}")]
    WrongType { setting: &'static str, expected: &'static str },
    #[error("interface must be a network interface name: 1 to 15 letters, digits, '.', '_' or '-'")]
    Interface,
    #[error("identity must be 1 to 253 printable ASCII characters without '\"'")]
    Identity,
    #[error("eapol_version must be 1 or 2")]
    EapolVersion,
    #[error("trial_seconds must be between {MIN_TRIAL_SECONDS} and {MAX_TRIAL_SECONDS}")]
    TrialSeconds,
    #[error(
        "domain_match must be DNS names (letters, digits, '-' and '.'), separated by ';', at most 253 characters each"
    )]
    DomainMatch,
    #[error("server_ca_pem is required when 802.1X is on: the CA certificate the authentication server's certificate must chain to")]
    ServerCaMissing,
    #[error("server_ca_pem is larger than {} KiB", MAX_SERVER_CA_PEM / 1024)]
    ServerCaTooLarge,
    #[error("server_ca_pem is not readable PEM")]
    ServerCaPem(#[source] PemError),
    #[error("server_ca_pem holds a \"{}\" block: only CERTIFICATE blocks belong there", Escaped(.0))]
    ServerCaBlock(String),
    #[error("server_ca_pem holds no certificate")]
    ServerCaEmpty,
    #[error("server_ca_pem holds more than {MAX_SERVER_CA_CERTS} certificates")]
    ServerCaTooMany,
    #[error("server_ca_pem: certificate {index} cannot be read")]
    ServerCaCertificate {
        /// 1 for the first.
        index: usize,
        #[source]
        source: PkiError,
    },
}

impl Settings {
    /// Reads settings from JSON: an object of the settings above, any left out at its default,
    /// `null` or "" for a setting that may be unset. Every setting is checked ([`Settings::check`]).
    pub fn from_json(value: &serde_json::Value) -> Result<Settings, SettingsError> {
        let object = value.as_object().ok_or(SettingsError::NotAnObject)?;
        let mut settings = Settings::default();
        for (name, value) in object {
            match name.as_str() {
                "enabled" => {
                    settings.enabled = value
                        .as_bool()
                        .ok_or(SettingsError::WrongType { setting: "enabled", expected: "true or false" })?
                }
                "interface" => settings.interface = text(value, "interface")?.unwrap_or_default(),
                "identity" => settings.identity = text(value, "identity")?,
                "eapol_version" => {
                    settings.eapol_version =
                        value.as_u64().and_then(|n| u8::try_from(n).ok()).ok_or(SettingsError::EapolVersion)?
                }
                "server_ca_pem" => settings.server_ca_pem = text(value, "server_ca_pem")?.unwrap_or_default(),
                "domain_match" => settings.domain_match = text(value, "domain_match")?,
                "trial_seconds" => {
                    settings.trial_seconds =
                        value.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or(SettingsError::TrialSeconds)?
                }
                other => return Err(SettingsError::Unknown(other.to_owned())),
            }
        }
        settings.check()?;
        Ok(settings)
    }

    /// Checks every setting (settings made in code, or read back, as well as from JSON).
    pub fn check(&self) -> Result<(), SettingsError> {
        if !valid_interface(&self.interface) {
            return Err(SettingsError::Interface);
        }
        if let Some(identity) = &self.identity {
            if !valid_identity(identity) {
                return Err(SettingsError::Identity);
            }
        }
        if !(1..=2).contains(&self.eapol_version) {
            return Err(SettingsError::EapolVersion);
        }
        if !(MIN_TRIAL_SECONDS..=MAX_TRIAL_SECONDS).contains(&self.trial_seconds) {
            return Err(SettingsError::TrialSeconds);
        }
        if let Some(names) = &self.domain_match {
            if !valid_domain_match(names) {
                return Err(SettingsError::DomainMatch);
            }
        }
        if self.enabled || !self.server_ca_pem.trim().is_empty() {
            self.server_ca_certificates()?;
        }
        Ok(())
    }

    /// The DER of each certificate of `server_ca_pem`, each one parsed.
    pub fn server_ca_certificates(&self) -> Result<Vec<Vec<u8>>, SettingsError> {
        if self.server_ca_pem.trim().is_empty() {
            return Err(SettingsError::ServerCaMissing);
        }
        if self.server_ca_pem.len() > MAX_SERVER_CA_PEM {
            return Err(SettingsError::ServerCaTooLarge);
        }
        let blocks = camera_pki::pem::parse(self.server_ca_pem.as_bytes()).map_err(SettingsError::ServerCaPem)?;
        let mut certificates = Vec::new();
        for block in blocks {
            if block.label != "CERTIFICATE" {
                return Err(SettingsError::ServerCaBlock(block.label.clone()));
            }
            if certificates.len() == MAX_SERVER_CA_CERTS {
                return Err(SettingsError::ServerCaTooMany);
            }
            camera_pki::x509::Certificate::parse(&block.der).map_err(|e| SettingsError::ServerCaCertificate {
                index: certificates.len() + 1,
                source: PkiError::ParseCertificate(e),
            })?;
            certificates.push(block.der.to_vec());
        }
        if certificates.is_empty() {
            return Err(SettingsError::ServerCaEmpty);
        }
        Ok(certificates)
    }

    /// What the installer should know about these settings, one sentence each.
    pub fn warnings(&self) -> Vec<&'static str> {
        let mut warnings = Vec::new();
        if !self.enabled {
            return warnings;
        }
        if self.domain_match.is_none() {
            warnings.push(
                "No domain_match: any server whose certificate the CA ever issued could pose as the site's \
                 authentication server.",
            );
        }
        if self.eapol_version == 2 {
            warnings.push(
                "eapol_version 2: some switches ignore EAPOL version 2 frames; 1 is what wpa_supplicant and \
                 most switches use.",
            );
        }
        if self.trial_seconds < 120 {
            warnings.push(
                "trial_seconds is shorter than wpa_supplicant's own retries (EAPOL-Starts 30 s apart, then 60 s \
                 held): a slow authentication server may see a new configuration rolled back before it answered.",
            );
        }
        warnings
    }
}

/// A JSON string, or None for null or "".
fn text(value: &serde_json::Value, setting: &'static str) -> Result<Option<String>, SettingsError> {
    match value {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) if s.is_empty() => Ok(None),
        serde_json::Value::String(s) => Ok(Some(s.clone())),
        _ => Err(SettingsError::WrongType { setting, expected: "a string" }),
    }
}

/// A Linux interface name (IFNAMSIZ - 1), also safe as a file name in the control directory.
pub(crate) fn valid_interface(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        && !name.bytes().all(|c| c == b'.')
}

/// Printable ASCII without the double quote (it ends a quoted value in wpa_supplicant's syntax).
pub(crate) fn valid_identity(identity: &str) -> bool {
    (1..=MAX_NAME).contains(&identity.len()) && identity.bytes().all(|c| (b' '..=b'~').contains(&c) && c != b'"')
}

fn valid_domain_match(names: &str) -> bool {
    !names.is_empty() && names.split(';').all(valid_dns_name)
}

fn valid_dns_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ca_pem() -> String {
        camera_test_support::dot1x::SitePki::new().ca_pem
    }

    #[test]
    fn defaults_are_filled_and_round_trip() {
        let ca = ca_pem();
        let settings = Settings::from_json(&json!({"enabled": true, "server_ca_pem": ca})).unwrap();
        assert_eq!(settings.interface, "eth0");
        assert_eq!(settings.eapol_version, 1);
        assert_eq!(settings.trial_seconds, 180);
        assert_eq!(settings.identity, None);
        assert_eq!(settings.server_ca_certificates().unwrap().len(), 1);
        let back = Settings::from_json(&serde_json::to_value(&settings).unwrap()).unwrap();
        assert_eq!(back, settings);
        assert_eq!(Settings::from_json(&json!({})).unwrap(), Settings::default());
        assert_eq!(
            Settings::from_json(&json!({"identity": "", "domain_match": null})).unwrap(),
            Settings::default(),
            "empty and null mean unset"
        );
    }

    #[test]
    fn every_setting_is_checked_and_named() {
        let ca = ca_pem();
        let cases = [
            (json!([]), "JSON object"),
            (json!({"enable": true}), "no 802.1X setting named \"enable\""),
            (json!({"enabled": "yes"}), "enabled must be true or false"),
            (json!({"interface": "a-very-long-interface"}), "interface must"),
            (json!({"interface": ".."}), "interface must"),
            (json!({"interface": "eth0/../x"}), "interface must"),
            (json!({"identity": "a\"b"}), "identity must"),
            (json!({"identity": "line\nbreak"}), "identity must"),
            (json!({"identity": "é"}), "identity must"),
            (json!({"identity": "x".repeat(254)}), "identity must"),
            (json!({"eapol_version": 3}), "eapol_version must be 1 or 2"),
            (json!({"eapol_version": 0}), "eapol_version must be 1 or 2"),
            (json!({"eapol_version": "1"}), "eapol_version must be 1 or 2"),
            (json!({"trial_seconds": 19}), "trial_seconds must be between 20 and 3600"),
            (json!({"trial_seconds": 3601}), "trial_seconds must"),
            (json!({"domain_match": "radius.site.example\""}), "domain_match must"),
            (json!({"domain_match": "a..b"}), "domain_match must"),
            (json!({"domain_match": "ok.example;"}), "domain_match must"),
            (json!({"enabled": true}), "server_ca_pem is required"),
            (json!({"enabled": true, "server_ca_pem": "not pem"}), "server_ca_pem holds no certificate"),
            (json!({"enabled": true, "server_ca_pem": "-----BEGIN CERTIFICATE-----\nAAA"}), "not readable PEM"),
            (
                json!({"enabled": true, "server_ca_pem": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}),
                "holds a \"PRIVATE KEY\" block",
            ),
            (
                json!({"enabled": true, "server_ca_pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}),
                "certificate 1 cannot be read",
            ),
            (json!({"enabled": true, "server_ca_pem": ca.repeat(9)}), "more than 8 certificates"),
            (json!({"enabled": true, "server_ca_pem": "x".repeat(33 * 1024)}), "larger than 32 KiB"),
        ];
        for (value, expected) in cases {
            let err = Settings::from_json(&value).unwrap_err().to_string();
            assert!(err.contains(expected), "{value}: {err}");
        }
        let ok = Settings::from_json(&json!({
            "enabled": true, "interface": "eth0.100", "identity": "camera-1@site.example",
            "eapol_version": 2, "server_ca_pem": ca.repeat(8), "domain_match": "radius.site.example;radius2.site.example",
            "trial_seconds": 20,
        }))
        .unwrap();
        assert_eq!(ok.server_ca_certificates().unwrap().len(), 8);
    }

    #[test]
    fn warnings_say_what_is_risky() {
        let settings = Settings { enabled: true, server_ca_pem: ca_pem(), ..Settings::default() };
        let warnings = settings.warnings();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("could pose as the site's"), "{warnings:?}");
        let tight = Settings {
            domain_match: Some("radius.site.example".into()),
            eapol_version: 2,
            trial_seconds: 30,
            ..settings.clone()
        };
        assert_eq!(tight.warnings().len(), 2);
        assert!(Settings { domain_match: Some("r.example".into()), ..settings }.warnings().is_empty());
        assert!(Settings::default().warnings().is_empty(), "off: nothing to warn about");
    }
}
