//! What the installer configures: the site's CA and how to reach it. The same JSON comes from
//! `PUT /api/v1/enrollment` and from the `enrollment` section of the configuration file, and is
//! stored in the state directory (0600: it holds secrets). Secrets never leave through
//! [`Settings::public_view`] or `Debug`.

use std::fmt;

use base64ct::Encoding;
use camera_http_client::{Scheme, Url};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Why settings were refused; the sentence names the field.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct SettingsError {
    pub field: &'static str,
    pub reason: String,
}

fn refuse(field: &'static str, reason: impl Into<String>) -> SettingsError {
    SettingsError { field, reason: reason.into() }
}

/// How the camera enrolls: the name settings, the record, the installed certificate's origin and
/// the events share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// ACME (RFC 8555).
    Acme,
    /// SCEP (RFC 8894).
    Scep,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Acme => "acme",
            Self::Scep => "scep",
        }
    }

    /// The protocol a name written by [`Protocol::as_str`] stands for.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "acme" => Some(Self::Acme),
            "scep" => Some(Self::Scep),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Key types an enrolled certificate may have (the key is generated on the camera).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnrollKeyType {
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    #[serde(rename = "rsa-2048")]
    Rsa2048,
}

impl EnrollKeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::Rsa2048 => "rsa-2048",
        }
    }

    pub fn pki(self) -> camera_pki::KeyType {
        match self {
            Self::EcdsaP256 => camera_pki::KeyType::EcdsaP256,
            Self::Rsa2048 => camera_pki::KeyType::Rsa2048,
        }
    }
}

/// A secret string: zeroized on drop, never printed.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| Secret(Zeroizing::new(s)))
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// External account binding: the key id and base64url HMAC key the CA's administrator gives.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EabSettings {
    pub kid: String,
    pub hmac_key: Secret,
}

/// ACME (RFC 8555 with RFC 8738 IP identifiers).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeSettings {
    /// The directory URL.
    pub url: String,
    /// The CA certificate(s) (PEM) that the ACME server's TLS certificate must chain to.
    #[serde(default)]
    pub trust: Option<String>,
    #[serde(default)]
    pub eab: Option<EabSettings>,
    /// Allowed challenges in order of preference.
    #[serde(default = "default_challenges")]
    pub challenge_types: Vec<String>,
    #[serde(default = "default_acme_key")]
    pub key_type: EnrollKeyType,
    /// `mailto:` addresses for the CA's notices.
    #[serde(default)]
    pub contact: Vec<String>,
    /// Renew this many days (up to a quarter more) before expiry instead of 60 % to 75 % into the lifetime.
    #[serde(default)]
    pub renew_before_days: Option<u16>,
    /// Spread what a fleet would do at once (on unless set false): the renewal point in its window,
    /// retries within their backoff, the first attempt after a start and after the camera's
    /// addresses were all replaced. Off: every camera renews at the window's start and retries at
    /// the full backoff (a measured baseline). Stored only when off, so settings written before it
    /// existed keep their digest.
    #[serde(default = "on", skip_serializing_if = "is_on")]
    pub spread: bool,
}

fn on() -> bool {
    true
}

// serde's skip_serializing_if passes a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_on(value: &bool) -> bool {
    *value
}

fn default_challenges() -> Vec<String> {
    vec!["http-01".into(), "tls-alpn-01".into()]
}

fn default_acme_key() -> EnrollKeyType {
    EnrollKeyType::EcdsaP256
}

fn default_scep_key() -> EnrollKeyType {
    EnrollKeyType::Rsa2048
}

/// The subject a SCEP request carries (SCEP servers often want a CN; names go in subjectAltName).
/// Without a CN the request carries the camera's host name, else its device id: never an address.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScepSubject {
    #[serde(rename = "CN", default)]
    pub common_name: Option<String>,
    #[serde(rename = "O", default)]
    pub organization: Option<String>,
    #[serde(rename = "OU", default)]
    pub organizational_unit: Option<String>,
}

/// SCEP (RFC 8894).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScepSettings {
    /// The SCEP URL (e.g. `http://ca.site/scep` or an NDES `.../mscep/mscep.dll`).
    pub url: String,
    /// The CA certificate(s) (PEM) that the SCEP server's certificates (CA, RA) and an https
    /// URL's TLS certificate must chain to. Optional for http: without it the camera pins the CA
    /// certificate of the first GetCACert (or the one matching `ca_sha256`), and every later
    /// answer must chain to that.
    #[serde(default)]
    pub trust: Option<String>,
    /// The SHA-256 fingerprint of the SCEP server's CA certificate, given out of band: the camera
    /// then trusts the CA that matches it instead of the one it meets first. Left out of the
    /// stored form when absent, so settings written before it existed keep their digest (a
    /// changed digest would adopt the configuration file's section again and undo a DELETE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_sha256: Option<String>,
    /// The challenge password the SCEP server expects.
    pub challenge: Secret,
    #[serde(default)]
    pub subject: ScepSubject,
    #[serde(default = "default_scep_key")]
    pub key_type: EnrollKeyType,
    /// Renew this many days (up to a quarter more) before expiry instead of 60 % to 75 % into the lifetime.
    #[serde(default)]
    pub renew_before_days: Option<u16>,
    /// Spread what a fleet would do at once (on unless set false): the renewal point in its window,
    /// retries within their backoff, the first attempt after a start and after the camera's
    /// addresses were all replaced. Off: every camera renews at the window's start and retries at
    /// the full backoff (a measured baseline). Stored only when off, so settings written before it
    /// existed keep their digest.
    #[serde(default = "on", skip_serializing_if = "is_on")]
    pub spread: bool,
}

/// The enrollment settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "protocol", rename_all = "lowercase")]
pub enum Settings {
    Acme(AcmeSettings),
    Scep(ScepSettings),
}

/// What `GET /api/v1/enrollment` shows of the settings: everything but the secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicSettings {
    pub protocol: Protocol,
    pub url: String,
    /// The trust anchors' subjects (the PEM itself is not repeated).
    pub trust: Vec<String>,
    pub challenge_types: Vec<String>,
    pub key_type: &'static str,
    pub eab_kid: Option<String>,
    /// A SCEP challenge password is configured (it is never shown).
    pub has_challenge: bool,
    /// The configured renewal margin; none: 60 % to 75 % into the lifetime.
    pub renew_before_days: Option<u16>,
    /// SCEP: the CA fingerprint given out of band, if any.
    pub ca_sha256: Option<String>,
    /// What a fleet would do at once is spread (see [`AcmeSettings::spread`]).
    pub spread: bool,
}

/// The longest renewal margin accepted: longer than any certificate a browser accepts (398 days).
pub const MAX_RENEW_BEFORE_DAYS: u16 = 397;

const MAX_URL: usize = 512;
/// The largest trust PEM accepted.
pub const MAX_TRUST: usize = 32 * 1024;

/// Which URL schemes a protocol may use.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Schemes {
    /// ACME: https only (RFC 8555 section 6.1: over http nothing authenticates the issued chain).
    HttpsOnly,
    /// SCEP: http too (its messages are signed and encrypted; the CA is pinned or configured).
    HttpOrHttps,
}

fn check_url(url: &str, schemes: Schemes, trust: Option<&str>) -> Result<(), SettingsError> {
    if url.len() > MAX_URL {
        return Err(refuse("url", format!("is longer than {MAX_URL} characters")));
    }
    let parsed = Url::parse(url).map_err(|e| refuse("url", e.to_string()))?;
    if parsed.scheme() != Scheme::Https && schemes == Schemes::HttpsOnly {
        return Err(refuse(
            "url",
            "ACME must use https (RFC 8555 section 6.1): over plain http nothing proves who issued the certificate; give the CA's https directory URL and its TLS CA certificate as trust",
        ));
    }
    if parsed.scheme() == Scheme::Https && trust.is_none() {
        return Err(refuse(
            "trust",
            "give the certificate (PEM) of the CA that signed the server's TLS certificate: the camera never talks to a server it cannot verify",
        ));
    }
    Ok(())
}

/// A SHA-256 fingerprint as the camera shows them (`AB:CD:...`), from hex with or without colons
/// or spaces; `None` when it is not 32 bytes of hex.
pub fn normalised_sha256(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
    if digits.len() != 64 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let upper = digits.to_ascii_uppercase();
    Some(
        upper.as_bytes().chunks(2).map(|pair| String::from_utf8_lossy(pair).into_owned()).collect::<Vec<_>>().join(":"),
    )
}

/// The certificates (DER) of a trust PEM, read by the camera's one PEM reader.
pub fn trust_anchors(pem: &str) -> Result<Vec<Vec<u8>>, SettingsError> {
    if pem.len() > MAX_TRUST {
        return Err(refuse("trust", format!("is larger than {} KiB", MAX_TRUST / 1024)));
    }
    let certs = camera_pki::pem::certificates(pem.as_bytes()).map_err(|e| refuse("trust", e.to_string()))?;
    if certs.is_empty() {
        return Err(refuse("trust", "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
    }
    Ok(certs)
}

/// A digest of a configuration section as written (also one this version refuses), to tell
/// whether it changed since it was last looked at.
pub fn digest_json(section: &serde_json::Value) -> String {
    digest_of(&Zeroizing::new(serde_json::to_vec(section).unwrap_or_default()))
}

fn digest_of(json: &[u8]) -> String {
    base64ct::Base64UrlUnpadded::encode_string(ring::digest::digest(&ring::digest::SHA256, json).as_ref())
}

/// The subjects of the certificates in a trust PEM; refused when it holds none.
pub fn trust_subjects(pem: &str) -> Result<Vec<String>, SettingsError> {
    trust_anchors(pem)?
        .iter()
        .map(|der| camera_pki::describe(der).map(|i| i.subject).map_err(|e| refuse("trust", e.to_string())))
        .collect()
}

/// serde's message with quoted strings cut out: it may quote a secret ("invalid type: string
/// \"...\""), so it says where the problem is, not what was sent. (Field names come in
/// backticks and stay.)
fn without_values(detail: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in detail.chars() {
        match c {
            '"' if !quoted => {
                quoted = true;
                out.push_str("\"...");
            }
            '"' => {
                quoted = false;
                out.push('"');
            }
            c if !quoted => out.push(c),
            _ => {}
        }
    }
    out
}

impl Settings {
    /// Parses and checks settings from JSON (the API's body, the configuration's section).
    pub fn from_json(value: serde_json::Value) -> Result<Self, SettingsError> {
        let settings: Self =
            serde_json::from_value(value).map_err(|e| refuse("settings", without_values(&e.to_string())))?;
        settings.check()?;
        Ok(settings)
    }

    /// Checks everything that can be checked without the network.
    pub fn check(&self) -> Result<(), SettingsError> {
        if self.renew_before_days().is_some_and(|d| d == 0 || d > MAX_RENEW_BEFORE_DAYS) {
            return Err(refuse(
                "renew_before_days",
                format!(
                    "must be 1 to {MAX_RENEW_BEFORE_DAYS} days (leave it out to renew 60 % to 75 % into the lifetime)"
                ),
            ));
        }
        match self {
            Settings::Acme(a) => {
                check_url(&a.url, Schemes::HttpsOnly, a.trust.as_deref())?;
                if let Some(trust) = &a.trust {
                    trust_subjects(trust)?;
                }
                if a.challenge_types.is_empty() {
                    return Err(refuse("challenge_types", "name at least one of http-01, tls-alpn-01"));
                }
                for c in &a.challenge_types {
                    if camera_acme::ChallengeType::parse(c).is_none() {
                        return Err(refuse("challenge_types", format!("{c:?} is not one of http-01, tls-alpn-01")));
                    }
                }
                if let Some(eab) = &a.eab {
                    if eab.kid.is_empty() || eab.kid.len() > 256 {
                        return Err(refuse("eab.kid", "must be 1 to 256 characters"));
                    }
                    camera_acme::Eab::new(eab.kid.clone(), eab.hmac_key.expose()).map_err(|_| {
                        refuse("eab.hmac_key", "is not a base64url key (as the CA's administrator gives it)")
                    })?;
                }
                for contact in &a.contact {
                    if !contact.starts_with("mailto:") || contact.len() > 256 {
                        return Err(refuse("contact", format!("{contact:?} is not a mailto: address")));
                    }
                }
                Ok(())
            }
            Settings::Scep(s) => {
                check_url(&s.url, Schemes::HttpOrHttps, s.trust.as_deref())?;
                if s.ca_sha256.as_deref().is_some_and(|f| normalised_sha256(f).is_none()) {
                    return Err(refuse(
                        "ca_sha256",
                        "is not a SHA-256 fingerprint (64 hexadecimal digits, colons allowed)",
                    ));
                }
                if let Some(trust) = &s.trust {
                    trust_subjects(trust)?;
                }
                if s.challenge.expose().is_empty() || s.challenge.expose().len() > 255 {
                    return Err(refuse("challenge", "give the SCEP challenge password (1 to 255 characters)"));
                }
                if s.key_type != EnrollKeyType::Rsa2048 {
                    return Err(refuse(
                        "key_type",
                        "SCEP encrypts its answers to the camera's key with RSA, so the key must be rsa-2048",
                    ));
                }
                for (field, value) in [
                    ("subject.CN", &s.subject.common_name),
                    ("subject.O", &s.subject.organization),
                    ("subject.OU", &s.subject.organizational_unit),
                ] {
                    if value.as_ref().is_some_and(|v| v.len() > 64 || v.chars().any(char::is_control)) {
                        return Err(refuse(field, "must be at most 64 characters, without control characters"));
                    }
                }
                Ok(())
            }
        }
    }

    pub fn protocol(&self) -> Protocol {
        match self {
            Settings::Acme(_) => Protocol::Acme,
            Settings::Scep(_) => Protocol::Scep,
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Settings::Acme(a) => &a.url,
            Settings::Scep(s) => &s.url,
        }
    }

    pub fn trust(&self) -> Option<&str> {
        match self {
            Settings::Acme(a) => a.trust.as_deref(),
            Settings::Scep(s) => s.trust.as_deref(),
        }
    }

    /// How long before expiry to renew, if configured (else 60 % to 75 % into the lifetime).
    pub fn renew_before_days(&self) -> Option<u16> {
        match self {
            Settings::Acme(a) => a.renew_before_days,
            Settings::Scep(s) => s.renew_before_days,
        }
    }

    /// Whether what a fleet would do at once is spread (see [`AcmeSettings::spread`]).
    pub fn spread(&self) -> bool {
        match self {
            Settings::Acme(a) => a.spread,
            Settings::Scep(s) => s.spread,
        }
    }

    pub fn key_type(&self) -> EnrollKeyType {
        match self {
            Settings::Acme(a) => a.key_type,
            Settings::Scep(s) => s.key_type,
        }
    }

    /// Everything but the secrets.
    pub fn public_view(&self) -> PublicSettings {
        let trust = self.trust().and_then(|t| trust_subjects(t).ok()).unwrap_or_default();
        match self {
            Settings::Acme(a) => PublicSettings {
                protocol: Protocol::Acme,
                url: a.url.clone(),
                trust,
                challenge_types: a.challenge_types.clone(),
                key_type: a.key_type.as_str(),
                eab_kid: a.eab.as_ref().map(|e| e.kid.clone()),
                has_challenge: false,
                renew_before_days: a.renew_before_days,
                ca_sha256: None,
                spread: a.spread,
            },
            Settings::Scep(s) => PublicSettings {
                protocol: Protocol::Scep,
                url: s.url.clone(),
                trust,
                challenge_types: Vec::new(),
                key_type: s.key_type.as_str(),
                eab_kid: None,
                has_challenge: true,
                renew_before_days: s.renew_before_days,
                ca_sha256: s.ca_sha256.as_deref().and_then(normalised_sha256),
                spread: s.spread,
            },
        }
    }

    /// A digest of the settings (secrets included), to tell whether a configuration file's
    /// `enrollment` section changed since it was last adopted.
    pub fn digest(&self) -> String {
        digest_of(&Zeroizing::new(serde_json::to_vec(self).unwrap_or_default()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Settings, String> {
        let json = json.replace("ACME", &acme_fields());
        Settings::from_json(serde_json::from_str(&json).map_err(|e| e.to_string())?).map_err(|e| e.to_string())
    }

    /// `"protocol":"acme"`, an https directory and a trust anchor, as JSON fields.
    fn acme_fields() -> String {
        let ca =
            rcgen::KeyPair::generate().and_then(|key| rcgen::CertificateParams::new(vec![]).unwrap().self_signed(&key));
        let pem = camera_pki::pem::encode("CERTIFICATE", ca.unwrap().der());
        format!(
            r#""protocol":"acme","url":"https://ca.site.home.arpa/dir","trust":{}"#,
            serde_json::json!(pem.as_str())
        )
    }

    #[test]
    fn acme_and_scep_settings_parse_with_defaults_and_typos_are_refused() {
        let acme = parse(r#"{ACME}"#).unwrap();
        assert_eq!(acme.public_view().challenge_types, ["http-01", "tls-alpn-01"]);
        assert_eq!(acme.key_type(), EnrollKeyType::EcdsaP256);
        let scep =
            parse(r#"{"protocol":"scep","url":"http://10.0.0.9/scep","challenge":"s3cret","subject":{"CN":"cam"}}"#)
                .unwrap();
        assert_eq!(scep.key_type(), EnrollKeyType::Rsa2048);
        assert!(parse(r#"{ACME,"challenge_type":["http-01"]}"#).unwrap_err().contains("challenge_type"));
        assert!(parse(r#"{"protocol":"est","url":"http://x/"}"#).is_err());
        assert!(parse(r#"{"protocol":"acme","url":"ftp://x/"}"#).is_err());
        assert!(parse(r#"{"protocol":"scep","url":"http://ca/scep","challenge":"x","ca_sha256":"AB:CD"}"#)
            .unwrap_err()
            .starts_with("ca_sha256:"));
        let pinned = parse(&format!(
            r#"{{"protocol":"scep","url":"http://ca/scep","challenge":"x","ca_sha256":"{}"}}"#,
            "ab".repeat(32)
        ))
        .unwrap();
        assert_eq!(pinned.public_view().ca_sha256.unwrap(), ["AB"; 32].join(":"));
    }

    /// RFC 8555 section 6.1: ACME over plain http is refused, with a sentence that says why; a
    /// trust anchor does not make it acceptable.
    #[test]
    fn acme_over_plain_http_is_refused() {
        for url in ["http://10.0.0.9:14000/dir", "HTTP://ca/dir"] {
            let e = parse(&format!(r#"{{"protocol":"acme","url":"{url}"}}"#)).unwrap_err();
            assert!(e.starts_with("url: ACME must use https"), "{e}");
        }
        let with_trust = parse(r#"{ACME}"#).unwrap();
        let Settings::Acme(mut a) = with_trust else { panic!("acme") };
        a.url = "http://ca/dir".into();
        let e = Settings::Acme(a).check().unwrap_err().to_string();
        assert!(e.contains("https"), "{e}");
    }

    /// The camera's one PEM reader takes what an installer pastes (indented, CRLF); the trust
    /// anchors that pass the settings check are the ones enrollment uses.
    #[test]
    fn a_pasted_trust_anchor_is_read_by_the_cameras_pem_reader() {
        let fields = acme_fields();
        let settings: serde_json::Value = serde_json::from_str(&format!("{{{fields}}}")).unwrap();
        let pem = settings["trust"].as_str().unwrap();
        let indented: String = pem.lines().map(|l| format!("    {l}\r\n")).collect();
        let anchors = trust_anchors(&indented).unwrap();
        assert_eq!(anchors, trust_anchors(pem).unwrap());
        assert_eq!(anchors.len(), 1);
    }

    #[test]
    fn https_needs_a_trust_anchor_and_scep_needs_rsa_and_a_challenge() {
        let e = parse(r#"{"protocol":"acme","url":"https://ca.site.home.arpa/dir"}"#).unwrap_err();
        assert!(e.starts_with("trust:"), "{e}");
        assert!(parse(r#"{"protocol":"acme","url":"https://ca/dir","trust":"not pem"}"#).is_err());
        let e =
            parse(r#"{"protocol":"scep","url":"http://ca/scep","challenge":"x","key_type":"ecdsa-p256"}"#).unwrap_err();
        assert!(e.starts_with("key_type:"), "{e}");
        assert!(parse(r#"{"protocol":"scep","url":"http://ca/scep","challenge":""}"#).is_err());
        assert!(parse(r#"{ACME,"challenge_types":["dns-01"]}"#).is_err());
        assert!(parse(r#"{ACME,"eab":{"kid":"k","hmac_key":"not base64!"}}"#).is_err());
    }

    #[test]
    fn a_renewal_margin_is_optional_and_bounded() {
        let s = parse(r#"{ACME,"renew_before_days":30}"#).unwrap();
        assert_eq!((s.renew_before_days(), s.public_view().renew_before_days), (Some(30), Some(30)));
        assert_eq!(parse(r#"{ACME}"#).unwrap().renew_before_days(), None);
        let with = |days: &str| {
            parse(&format!(
                r#"{{"protocol":"scep","url":"http://ca/scep","challenge":"x","renew_before_days":{days}}}"#
            ))
        };
        for days in ["0", "398"] {
            let e = with(days).unwrap_err();
            assert!(e.starts_with("renew_before_days: must be 1 to 397 days"), "{days}: {e}");
        }
        assert!(with("-1").is_err() && with("\"30\"").is_err());
        assert_eq!(with("397").unwrap().renew_before_days(), Some(397));
    }

    #[test]
    fn parse_errors_never_quote_what_was_sent() {
        let e = parse(r#"{"protocol":"scep","url":"http://ca/scep","challenge":["hunter2-secret"]}"#).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        let e = parse(r#"{ACME,"eab":{"kid":"k","hmac_key":7,"x":"hunter2"}}"#).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }

    /// The digest of settings without the newer optional fields is the one earlier versions
    /// stored in `adopted_config`: an upgrade must not adopt an unchanged configuration section
    /// again (that would undo an installer's DELETE).
    #[test]
    fn the_digest_of_older_settings_does_not_change() {
        let scep = parse(r#"{"protocol":"scep","url":"http://ca/scep","challenge":"x"}"#).unwrap();
        let as_stored_before = r#"{"protocol":"scep","url":"http://ca/scep","trust":null,"challenge":"x","subject":{"CN":null,"O":null,"OU":null},"key_type":"rsa-2048","renew_before_days":null}"#;
        assert_eq!(serde_json::to_string(&scep).unwrap(), as_stored_before);
        assert_eq!(scep.digest(), digest_of(as_stored_before.as_bytes()));
    }

    /// The spread is on unless turned off; off is stored (and shown), on is not (older digests).
    #[test]
    fn the_spread_is_on_unless_turned_off() {
        let on = parse(r#"{ACME}"#).unwrap();
        assert!(on.spread() && on.public_view().spread);
        assert!(!serde_json::to_string(&on).unwrap().contains("spread"));
        let off = parse(r#"{ACME,"spread":false}"#).unwrap();
        assert!(!off.spread() && !off.public_view().spread);
        let stored = serde_json::to_string(&off).unwrap();
        assert!(stored.contains(r#""spread":false"#), "{stored}");
        assert_ne!(on.digest(), off.digest(), "turning it off is a change of the configuration section");
        assert!(parse(r#"{ACME,"spread":"no"}"#).is_err());
    }

    #[test]
    fn secrets_never_show() {
        let s = parse(r#"{ACME,"eab":{"kid":"kid-1","hmac_key":"c2VjcmV0LWhtYWMta2V5LWJ5dGVz"}}"#).unwrap();
        let shown = format!("{s:?} {}", serde_json::to_string(&s.public_view()).unwrap());
        assert!(!shown.contains("c2VjcmV0") && shown.contains("kid-1"), "{shown}");
        let scep = parse(r#"{"protocol":"scep","url":"http://ca/scep","challenge":"pa55word-xyz"}"#).unwrap();
        let shown = format!("{scep:?} {}", serde_json::to_string(&scep.public_view()).unwrap());
        assert!(!shown.contains("pa55word"), "{shown}");
    }
}
