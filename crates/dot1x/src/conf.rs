//! One supplicant configuration (what goes into wpa_supplicant's network block), the client
//! credential and CA files it names, and `wpa_supplicant.conf` rendered from it.
//!
//! wpa_supplicant's syntax has no escapes: a quoted value runs to the line's last `"`, and a line
//! ends at a newline. Every value written here passes [`quoted`] or [`bare`], which refuse what
//! could end a value or a line, so no setting can add a line or a field.

use std::path::Path;

use camera_pki::pem::PemError;
use camera_pki::PkiError;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::settings::valid_identity;

/// The longest line wpa_supplicant 2.10 reads outside a network block is 511 bytes.
const MAX_LINE: usize = 500;
/// The most a client credential may hold (a key and a chain).
pub const MAX_CREDENTIAL: usize = 64 * 1024;

/// A configuration of the supplicant: everything that decides whether it authenticates. Two
/// configurations are the same exactly when these are, files named by their content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetConfig {
    pub identity: String,
    pub eapol_version: u8,
    /// `server-ca-<sha256 prefix>.pem` in the 802.1X directory.
    pub ca_file: String,
    /// `client-<sha256 prefix>.pem` in the 802.1X directory: PKCS#8 key and chain, leaf first.
    pub client_file: String,
    /// SHA-256 of the client certificate (leaf), `AB:CD:...`.
    pub client_sha256: String,
    /// The client certificate's common name (the identity when none is set).
    pub client_cn: Option<String>,
    pub domain_match: Option<String>,
}

/// Why a value cannot be written into wpa_supplicant's configuration.
#[derive(Debug, thiserror::Error)]
#[error("{what} cannot be written into wpa_supplicant's configuration (it must be printable ASCII without '\"', spaces or '=' in paths, and short)")]
pub struct ConfError {
    pub what: &'static str,
}

/// Why a client credential cannot be used. Never quotes the credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    #[error("it is larger than {} KiB", MAX_CREDENTIAL / 1024)]
    TooLarge,
    #[error("it is not readable PEM")]
    Pem(#[source] PemError),
    #[error("it holds no PKCS#8 private key (a PRIVATE KEY block)")]
    NoKey,
    #[error("its private key cannot be used")]
    Key(#[source] PkiError),
    #[error("it holds no certificate")]
    NoCertificate,
    #[error("its certificate {index} cannot be read")]
    Certificate {
        index: usize,
        #[source]
        source: PkiError,
    },
}

/// A client credential, checked and normalised: the text wpa_supplicant reads (one file for
/// `client_cert` and `private_key`: wpa_supplicant 2.10 with OpenSSL skips the blocks it does not
/// look for in each), wiped when dropped.
pub struct ClientFile {
    pub text: Zeroizing<String>,
    pub name: String,
    pub leaf_sha256: String,
    pub leaf_cn: Option<String>,
}

impl std::fmt::Debug for ClientFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientFile").field("name", &self.name).field("leaf_sha256", &self.leaf_sha256).finish()
    }
}

impl ClientFile {
    /// Reads the camera's credential: one PEM text with a PKCS#8 key and the chain, leaf first.
    pub fn parse(bundle_pem: &[u8]) -> Result<Self, CredentialError> {
        if bundle_pem.len() > MAX_CREDENTIAL {
            return Err(CredentialError::TooLarge);
        }
        let key =
            camera_pki::pem::pkcs8_key(bundle_pem).map_err(CredentialError::Pem)?.ok_or(CredentialError::NoKey)?;
        camera_pki::SecretKey::from_pkcs8_der(&key).map_err(CredentialError::Key)?;
        let chain = camera_pki::pem::certificates(bundle_pem).map_err(CredentialError::Pem)?;
        let leaf = chain.first().ok_or(CredentialError::NoCertificate)?;
        let mut leaf_cn = None;
        for (i, der) in chain.iter().enumerate() {
            let cert = camera_pki::x509::Certificate::parse(der)
                .map_err(|e| CredentialError::Certificate { index: i + 1, source: PkiError::ParseCertificate(e) })?;
            if i == 0 {
                leaf_cn = cert.subject().common_names().next().flatten();
            }
        }
        let ders: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
        let text = camera_pki::pem::key_bundle(&key, &ders, "CERTIFICATE");
        Ok(Self {
            name: format!("client-{}.pem", content_tag(text.as_bytes())),
            text,
            leaf_sha256: camera_pki::fingerprint(leaf),
            leaf_cn,
        })
    }
}

/// The CA file for these certificates: its name and text.
pub fn ca_file(certificates: &[Vec<u8>]) -> (String, String) {
    let text: String = certificates.iter().map(|der| camera_pki::pem::encode("CERTIFICATE", der).to_string()).collect();
    (format!("server-ca-{}.pem", content_tag(text.as_bytes())), text)
}

/// The first 16 hex digits of the SHA-256 of `content`: names a file by what it holds.
fn content_tag(content: &[u8]) -> String {
    camera_pki::fingerprint(content).chars().filter(char::is_ascii_hexdigit).take(16).collect::<String>().to_lowercase()
}

/// Whether `name` is one of the credential or CA files this crate writes.
pub fn is_our_file(name: &str) -> bool {
    (name.starts_with("client-") || name.starts_with("server-ca-")) && name.ends_with(".pem")
}

/// The identity for a configuration: the one set, else the client certificate's common name if
/// wpa_supplicant's syntax can carry it.
pub fn identity(set: Option<&str>, client_cn: Option<&str>) -> Option<String> {
    set.or(client_cn).filter(|id| valid_identity(id)).map(str::to_owned)
}

/// `"value"`, if nothing in `value` could end the quoted value or the line.
pub fn quoted(what: &'static str, value: &str) -> Result<String, ConfError> {
    if value.is_empty()
        || value.len() > MAX_LINE - 40
        || !value.bytes().all(|c| (b' '..=b'~').contains(&c) && c != b'"')
    {
        return Err(ConfError { what });
    }
    Ok(format!("\"{value}\""))
}

/// A path written as is (`ctrl_interface`): no spaces or `=` either, which would read as
/// `DIR=... GROUP=...`.
fn bare_path(what: &'static str, path: &Path) -> Result<String, ConfError> {
    let text = path.to_str().ok_or(ConfError { what })?;
    if text.is_empty()
        || text.len() > MAX_LINE - 40
        || !text.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'.' | b'_' | b'-' | b'+' | b','))
    {
        return Err(ConfError { what });
    }
    Ok(text.to_owned())
}

fn path_in(what: &'static str, dir: &Path, file: &str) -> Result<String, ConfError> {
    let joined = dir.join(file);
    // The file name is ours; the directory is the camera's own: both must be plain.
    bare_path(what, &joined)?;
    quoted(what, joined.to_str().ok_or(ConfError { what })?)
}

/// The network block's fields, in order, each value as both the file and `SET_NETWORK` take it.
pub fn network_fields(config: &NetConfig, dir: &Path) -> Result<Vec<(&'static str, String)>, ConfError> {
    let mut fields = vec![
        ("key_mgmt", "IEEE8021X".to_owned()),
        ("eap", "TLS".to_owned()),
        ("identity", quoted("identity", &config.identity)?),
        ("ca_cert", path_in("the CA file's path", dir, &config.ca_file)?),
        ("client_cert", path_in("the client credential's path", dir, &config.client_file)?),
        ("private_key", path_in("the client credential's path", dir, &config.client_file)?),
    ];
    if let Some(names) = &config.domain_match {
        fields.push(("domain_match", quoted("domain_match", names)?));
    }
    fields.push(("eapol_flags", "0".to_owned()));
    Ok(fields)
}

/// `wpa_supplicant.conf` for `config` (None: no network, so wpa_supplicant idles) on
/// `interface`. The init script reads the interface from the `# interface=` line (wpa_supplicant
/// takes it from its command line, not from the file).
pub fn render(
    config: Option<&NetConfig>,
    interface: &str,
    dir: &Path,
    control_dir: &Path,
) -> Result<String, ConfError> {
    if !crate::settings::valid_interface(interface) {
        return Err(ConfError { what: "the interface" });
    }
    let mut text = format!(
        "# interface={interface}\n\
         # Written by the camera (802.1X): the configuration that last authenticated, or the one applied while\n\
         # none has. Replaced whole on every change.\n"
    );
    text.push_str(&format!("ctrl_interface={}\n", bare_path("the control directory", control_dir)?));
    text.push_str("ap_scan=0\n");
    text.push_str(&format!("eapol_version={}\n", config.map_or(1, |c| c.eapol_version)));
    if let Some(config) = config {
        text.push_str("network={\n");
        for (name, value) in network_fields(config, dir)? {
            text.push_str(&format!("\t{name}={value}\n"));
        }
        text.push_str("}\n");
    }
    Ok(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use camera_test_support::dot1x::SitePki;

    fn config() -> NetConfig {
        NetConfig {
            identity: "camera-1".into(),
            eapol_version: 1,
            ca_file: "server-ca-0123456789abcdef.pem".into(),
            client_file: "client-fedcba9876543210.pem".into(),
            client_sha256: "AB:CD".into(),
            client_cn: Some("camera-1".into()),
            domain_match: Some("radius.site.example".into()),
        }
    }

    #[test]
    fn renders_the_wired_eap_tls_network() {
        let text =
            render(Some(&config()), "eth0", Path::new("/state/dot1x"), Path::new("/run/wpa_supplicant")).unwrap();
        assert!(text.starts_with("# interface=eth0\n"), "the init script's line comes first: {text}");
        assert_eq!(
            text.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>(),
            [
                "ctrl_interface=/run/wpa_supplicant",
                "ap_scan=0",
                "eapol_version=1",
                "network={",
                "\tkey_mgmt=IEEE8021X",
                "\teap=TLS",
                "\tidentity=\"camera-1\"",
                "\tca_cert=\"/state/dot1x/server-ca-0123456789abcdef.pem\"",
                "\tclient_cert=\"/state/dot1x/client-fedcba9876543210.pem\"",
                "\tprivate_key=\"/state/dot1x/client-fedcba9876543210.pem\"",
                "\tdomain_match=\"radius.site.example\"",
                "\teapol_flags=0",
                "}",
            ]
        );
        let idle = render(None, "eth0", Path::new("/d"), Path::new("/c")).unwrap();
        assert!(!idle.contains("network"), "{idle}");
    }

    #[test]
    fn nothing_can_end_a_value_or_a_line() {
        for bad in ["a\"b", "a\nb", "a\rb", "tab\there", "é", "", &"x".repeat(500)] {
            assert!(quoted("identity", bad).is_err(), "{bad:?}");
            let config = NetConfig { identity: bad.to_owned(), ..config() };
            assert!(render(Some(&config), "eth0", Path::new("/d"), Path::new("/c")).is_err(), "{bad:?}");
            let config = NetConfig { domain_match: Some(bad.to_owned()), ..self::config() };
            assert!(render(Some(&config), "eth0", Path::new("/d"), Path::new("/c")).is_err(), "{bad:?}");
        }
        for dir in ["/a b", "/a\"b", "/a\nb", "/x=y"] {
            assert!(render(Some(&config()), "eth0", Path::new(dir), Path::new("/c")).is_err(), "{dir:?}");
            assert!(render(None, "eth0", Path::new("/d"), Path::new(dir)).is_err(), "{dir:?}");
        }
        assert!(render(None, "eth0\nx", Path::new("/d"), Path::new("/c")).is_err());
        assert_eq!(quoted("identity", "a b#c").unwrap(), "\"a b#c\"", "a comment sign inside quotes is text");
    }

    #[test]
    fn identity_falls_back_to_a_usable_common_name() {
        assert_eq!(identity(Some("set"), Some("cn")).as_deref(), Some("set"));
        assert_eq!(identity(None, Some("cn")).as_deref(), Some("cn"));
        assert_eq!(identity(None, Some("c\"n")), None);
        assert_eq!(identity(None, None), None);
    }

    #[test]
    fn a_credential_is_normalised_and_named_by_content() {
        let pki = SitePki::new();
        let client = pki.client("camera-1");
        let file = ClientFile::parse(client.bundle_pem().as_bytes()).unwrap();
        assert_eq!(file.leaf_cn.as_deref(), Some("camera-1"));
        assert!(file.name.starts_with("client-") && file.name.len() == "client-.pem".len() + 16, "{}", file.name);
        assert!(file.text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert_eq!(camera_pki::pem::certificates(file.text.as_bytes()).unwrap().len(), 1);
        let again = ClientFile::parse(file.text.as_bytes()).unwrap();
        assert_eq!(again.name, file.name, "same content, same name");
        let other = ClientFile::parse(pki.client("camera-1").bundle_pem().as_bytes()).unwrap();
        assert_ne!(other.name, file.name);
        assert!(format!("{file:?}").len() < 200, "Debug shows no key");

        let cert_only = client.cert_pem.clone();
        assert!(matches!(ClientFile::parse(cert_only.as_bytes()), Err(CredentialError::NoKey)));
        let key_only = client.key_pem.clone();
        assert!(matches!(ClientFile::parse(key_only.as_bytes()), Err(CredentialError::NoCertificate)));
        let (name, text) = ca_file(&camera_pki::pem::certificates(pki.ca_pem.as_bytes()).unwrap());
        assert!(name.starts_with("server-ca-") && is_our_file(&name) && is_our_file(&file.name));
        assert_eq!(text, pki.ca_pem.replace("\r\n", "\n"));
    }
}
