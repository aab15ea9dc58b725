//! IEEE 802.1X (EAP-TLS) for the camera.
//!
//! The camera's init script runs the real `wpa_supplicant -Dwired -i <if> -C <control_dir>
//! [-c <dir>/wpa_supplicant.conf]`; this crate configures it over its control socket and follows
//! it, on a thread of its own ([`spawn`]; blocking std code, no async runtime).
//!
//! - `settings.json` (module `store`) is the commit point of every change; `wpa_supplicant.conf`
//!   is rendered from it (module `conf`) and holds the configuration that last authenticated
//!   (while none has, the one applied last), so the camera boots with one that worked. Credential
//!   and CA files are named by their content and written before either.
//! - A new configuration is tried in the running supplicant without touching
//!   `wpa_supplicant.conf`: EAP success commits it; `trial_seconds` of link-up time without
//!   success puts the last good configuration back (module `trial`), if there is one (it
//!   authenticated on the same interface). A configuration rolled back is never retried on its
//!   own. A restart during a trial goes back too.
//! - The camera never sends EAPOL-Logoff. Besides reading (`ATTACH`, `STATUS`, `LIST_NETWORKS`,
//!   `GET`, `GET_NETWORK`) it only uses `ADD_NETWORK`, `SET_NETWORK`, `SET eapol_version`,
//!   `ENABLE_NETWORK`, `REASSOCIATE` (on a wired link: a new association, so EAP starts again
//!   with an EAPOL-Start; the switch keeps the port authorized while it re-authenticates) and,
//!   when 802.1X is turned off or a stray network is found, `REMOVE_NETWORK`. wpa_supplicant 2.10
//!   sends EAPOL-Logoff only on `LOGOFF` or a port forced unauthorized (a testing option), not on
//!   `REMOVE_NETWORK` nor on SIGTERM: checked in its source and by the tests (the switch counts
//!   the Logoffs it receives).
//! - Key bytes are never logged, returned or put in an error; the credential file is 0600.

mod conf;
mod control;
mod event;
mod settings;
mod store;
mod trial;
mod worker;

use std::path::PathBuf;

use serde::Serialize;

pub use conf::{ConfError, CredentialError, NetConfig};
pub use control::{Control, ControlError};
pub use event::{parse_event, parse_networks, parse_status, Event, Network, Status};
pub use settings::{
    Settings, SettingsError, DEFAULT_TRIAL_SECONDS, MAX_SERVER_CA_CERTS, MAX_SERVER_CA_PEM, MAX_TRIAL_SECONDS,
    MIN_TRIAL_SECONDS,
};
pub use store::{CONF, RECORD};
pub use trial::{Observed, Trial, Verdict};
pub use worker::{spawn, Handle};

/// Where the 802.1X files live (`Layout::dot1x_dir`, `Layout::dot1x_control_dir`).
#[derive(Debug, Clone)]
pub struct Paths {
    /// Persistent, 0700: `settings.json`, `wpa_supplicant.conf`, the credential and CA files.
    pub dir: PathBuf,
    /// wpa_supplicant's control sockets (`-C`, tmpfs).
    pub control_dir: PathBuf,
}

/// The client credential, as the camera stores it: one PEM text, PKCS#8 key + certificate chain
/// (leaf first).
#[derive(Clone, Copy)]
pub struct Credential<'a> {
    pub bundle_pem: &'a [u8],
}

impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(..)")
    }
}

impl Credential<'_> {
    /// Checks the credential as [`Handle::apply`] will, and returns its leaf's SHA-256.
    pub fn check(&self) -> Result<String, CredentialError> {
        conf::ClientFile::parse(self.bundle_pem).map(|file| file.leaf_sha256)
    }
}

/// Where 802.1X stands, as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not set up, or turned off.
    Off,
    /// On, but wpa_supplicant does not run (no control socket, or it does not answer).
    NoSupplicant,
    /// Waiting for the switch and the authentication server.
    Connecting,
    Authenticated,
    /// The configuration did not authenticate and there is none to go back to.
    Failed,
    /// A new configuration is on trial.
    Trial,
    /// The last new configuration did not authenticate; the one before is back.
    RolledBack,
}

/// The trial in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrialView {
    pub started_unix: u64,
    /// Link-up seconds left before the camera goes back.
    pub seconds_left: u64,
}

/// A snapshot of 802.1X, cheap to take ([`Handle::view`]). Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct View {
    pub state: State,
    /// What a person reads.
    pub sentence: String,
    pub settings: Option<Settings>,
    pub warnings: Vec<String>,
    pub interface: String,
    pub supplicant_running: bool,
    /// The link's carrier, as last seen.
    pub link_up: bool,
    /// wpa_supplicant's `Supplicant PAE state` and `EAP state`.
    pub pae_state: Option<String>,
    pub eap_state: Option<String>,
    /// wpa_supplicant's `suppPortStatus`.
    pub port_authorized: bool,
    pub last_authenticated_unix: Option<u64>,
    /// Why the last configuration did not authenticate (outside text escaped).
    pub last_failure: Option<String>,
    pub trial: Option<TrialView>,
    /// SHA-256 of the client certificate (leaf) of the configuration in use, `AB:CD:...`.
    pub in_use_fingerprint: Option<String>,
    /// The EAP identity in use.
    pub identity: Option<String>,
    /// The authentication server's certificate subject last seen (escaped).
    pub server_subject: Option<String>,
}

impl Default for View {
    fn default() -> Self {
        Self {
            state: State::Off,
            sentence: OFF.to_owned(),
            settings: None,
            warnings: Vec::new(),
            interface: Settings::default().interface,
            supplicant_running: false,
            link_up: false,
            pae_state: None,
            eap_state: None,
            port_authorized: false,
            last_authenticated_unix: None,
            last_failure: None,
            trial: None,
            in_use_fingerprint: None,
            identity: None,
            server_subject: None,
        }
    }
}

const OFF: &str = "802.1X is off: the camera does not authenticate to the network port.";

/// What happened, for the security event log: [`Notice::kind`] and a sentence (Display).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// A configuration reached EAP success (not repeated for periodic re-authentications).
    Authenticated {
        interface: String,
        /// SHA-256 of the client certificate, `AB:CD:...`.
        fingerprint: String,
        /// A new configuration on trial authenticated and is now the one the camera boots with.
        committed: bool,
    },
    /// Authentication failed and there is nothing to go back to.
    Failed {
        reason: String,
    },
    /// The camera refused the authentication server's certificate (subject escaped).
    ServerRejected {
        subject: String,
        error: String,
    },
    /// A new configuration is on trial.
    TrialStarted {
        interface: String,
        seconds: u32,
    },
    /// The new configuration did not authenticate in time; the last good one is back.
    RolledBack {
        reason: String,
    },
    /// A restart interrupted a trial; the last good configuration is back.
    TrialInterrupted,
    /// wpa_supplicant stopped running (or never started) while 802.1X is on.
    SupplicantMissing {
        interface: String,
    },
    SupplicantBack {
        interface: String,
    },
}

impl Notice {
    /// The event log's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::Authenticated { .. } => "dot1x_authenticated",
            Notice::Failed { .. } => "dot1x_failed",
            Notice::ServerRejected { .. } => "dot1x_server_rejected",
            Notice::TrialStarted { .. } => "dot1x_trial_started",
            Notice::RolledBack { .. } => "dot1x_rolled_back",
            Notice::TrialInterrupted => "dot1x_trial_interrupted",
            Notice::SupplicantMissing { .. } => "dot1x_supplicant_missing",
            Notice::SupplicantBack { .. } => "dot1x_supplicant_back",
        }
    }
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Authenticated { interface, fingerprint, committed } => {
                write!(
                    f,
                    "Authenticated to the network on {interface} with the client certificate SHA-256 {fingerprint}"
                )?;
                if *committed {
                    f.write_str("; the new configuration is now the one the camera starts with")?;
                }
                f.write_str(".")
            }
            Notice::Failed { reason } => write!(f, "802.1X authentication failed: {reason}."),
            Notice::ServerRejected { subject, error } => {
                write!(f, "The camera refused the authentication server's certificate (subject '{subject}'): {error}.")
            }
            Notice::TrialStarted { interface, seconds } => write!(
                f,
                "Trying a new 802.1X configuration on {interface}: without success within {seconds} s of link time \
                 the camera goes back to the configuration that last authenticated."
            ),
            Notice::RolledBack { reason } => write!(
                f,
                "The new 802.1X configuration did not authenticate ({reason}); the camera went back to the \
                 configuration that last authenticated."
            ),
            Notice::TrialInterrupted => f.write_str(
                "A restart interrupted the trial of a new 802.1X configuration; the camera went back to the \
                 configuration that last authenticated.",
            ),
            Notice::SupplicantMissing { interface } => write!(
                f,
                "wpa_supplicant is not running on {interface}: the camera is not authenticating to the network port."
            ),
            Notice::SupplicantBack { interface } => write!(f, "wpa_supplicant is running on {interface} again."),
        }
    }
}

/// Why [`Handle::apply`] did not apply settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("802.1X needs the camera's client certificate, and none is installed")]
    NoCredential,
    #[error("the 802.1X client certificate cannot be used: {0}")]
    Credential(#[source] CredentialError),
    #[error("identity is not set and the client certificate has no common name that can be the EAP identity")]
    NoIdentity,
    #[error("the 802.1X {what} could not be stored")]
    Store {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Conf(#[from] ConfError),
    #[error("the 802.1X settings are stored, but wpa_supplicant refused them: {0}")]
    Supplicant(#[source] ControlError),
    #[error("the 802.1X worker has stopped")]
    Stopped,
}
