//! What the web server does for enrollment: the [`Host`] trait and how an install fails.

use std::net::IpAddr;

use camera_acme::{ChallengeResponder, ChallengeType};
use camera_events::EventKind;
use camera_pki::SanName;
use zeroize::Zeroizing;

use crate::schedule::Installed;
use crate::settings::Protocol;

/// Why the host did not install an enrolled certificate; the one in service stays.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// It does not pass the checks a hand upload passes.
    #[error(transparent)]
    Refused(#[from] camera_upload::UploadError),
    /// It passed the checks but the TLS stack cannot use it.
    #[error("the TLS stack cannot use it ({0})")]
    Unusable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// It could not be stored.
    #[error("it could not be stored ({0})")]
    Storage(#[source] std::io::Error),
}

/// What the web server does for enrollment.
pub trait Host: Send + Sync {
    /// The names the certificate should carry now: the camera's addresses, `hostname.local`,
    /// configured names (as the device certificate has them).
    fn names(&self) -> Vec<SanName>;
    /// The common name of a request when the installer set none: the host name, else an id of
    /// this camera; never an address (some CAs refuse an IP address as a common name).
    fn device_name(&self) -> String;
    /// The installer's certificate in service, if any.
    fn installed(&self) -> Option<Installed>;
    /// Validates (as an upload) and installs an enrolled certificate; the current one stays in
    /// service when this fails.
    fn install(&self, chain: &[Vec<u8>], key_pkcs8: &[u8], protocol: Protocol) -> Result<Installed, InstallError>;
    /// Answers ACME challenges on the camera's ports.
    fn responder(&self) -> &dyn ChallengeResponder;
    /// The port of the listener that answers `challenge` (plain HTTP for http-01, HTTPS for
    /// tls-alpn-01), or `None` when that listener is off.
    fn challenge_port(&self, challenge: ChallengeType) -> Option<u16>;
    /// The enrolled certificate in service (leaf DER) and its key, if it came by `protocol`:
    /// a SCEP renewal is signed with them.
    fn enrolled_credentials(&self, protocol: Protocol) -> Option<(Vec<u8>, Zeroizing<Vec<u8>>)>;
    /// A security event (never a secret), with the address of the client that caused it.
    fn event(&self, kind: EventKind, client: Option<IpAddr>, message: String);
}
