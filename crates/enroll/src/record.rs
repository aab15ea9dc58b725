//! What is kept in `enrollment.json` (0600): the settings with their secrets, and what happened.

use camera_pki::SanName;
use serde::{Deserialize, Serialize};

use crate::schedule::{AriWindow, Budget, PastWindows};
use crate::settings::Settings;

/// The last attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastAttempt {
    pub at_unix: u64,
    pub ok: bool,
    /// What happened, in a sentence an installer understands.
    pub message: String,
}

/// What the CA's renewal information (RFC 9773) said about the enrolled certificate in service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AriRecord {
    /// The certificate asked about (RFC 9773's CertID), and its validity and fingerprint spread
    /// so the schedule can tell it is still the one in service without reading it.
    pub cert_id: String,
    pub not_before_unix: u64,
    pub not_after_unix: u64,
    pub spread: u16,
    /// The CA's window and the point of it drawn; `None` when the CA offers none (or has not
    /// answered yet): the camera's own schedule applies.
    pub window: Option<AriWindow>,
    /// The page the CA gave to explain the window (escaped, bounded).
    #[serde(default)]
    pub explanation_url: Option<String>,
    /// When to ask again (seconds since the epoch); kept in memory only between writes.
    #[serde(default)]
    pub recheck_at_unix: u64,
    /// Questions in a row that got no answer, for the backoff before the next; in memory only
    /// between writes, like `recheck_at_unix`.
    #[serde(default)]
    pub unanswered: u32,
}

impl AriRecord {
    /// Whether this is about the certificate `installed` describes.
    pub fn is_for(&self, installed: &crate::schedule::Installed) -> bool {
        installed.enrolled
            && self.not_before_unix == installed.not_before_unix
            && self.not_after_unix == installed.not_after_unix
            && self.spread == installed.spread
    }
}

/// The stored record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Record {
    pub settings: Option<Settings>,
    /// The configuration file's `enrollment` section last adopted (or refused), so a changed
    /// section is looked at again while an unchanged one does not undo a DELETE.
    pub adopted_config: Option<String>,
    pub account_url: Option<String>,
    /// SHA-256 of the SCEP server's CA as first seen (shown to the installer to compare).
    pub scep_ca_sha256: Option<String>,
    /// The SCEP server's CA certificate (PEM), pinned at the first enrollment when no trust anchor
    /// is configured: every later GetCACert answer must chain to it.
    #[serde(default)]
    pub scep_ca_pem: Option<String>,
    pub last_attempt: Option<LastAttempt>,
    pub failures: u32,
    /// No attempt before this time (seconds since the epoch): the backoff.
    pub not_before_unix: u64,
    /// The names asked for by the last issuance.
    #[serde(default)]
    pub requested_names: Option<Vec<String>>,
    /// Why the last issuance could not be used as it was.
    #[serde(default)]
    pub unusable: Option<String>,
    /// What unscheduled enrollments may still spend.
    #[serde(default)]
    pub budget: Budget,
    /// Why the camera stopped enrolling by itself (an untrusted CA, settings this version
    /// refuses), until the installer configures enrollment again.
    #[serde(default)]
    pub stopped: Option<String>,
    /// The CA's renewal information for the enrolled certificate in service (ACME only).
    #[serde(default)]
    pub ari: Option<AriRecord>,
    /// Renewal windows that were over when the camera asked (see [`PastWindows`]).
    #[serde(default)]
    pub past_windows: PastWindows,
}

impl Record {
    pub fn requested(&self) -> Option<Vec<SanName>> {
        self.requested_names.as_ref().map(|names| names.iter().filter_map(|n| SanName::parse(n).ok()).collect())
    }

    /// Forgets what belongs to the previous settings.
    pub fn start_over(&mut self, same_server: bool) {
        if !same_server {
            self.account_url = None;
            self.scep_ca_sha256 = None;
            self.scep_ca_pem = None;
            self.ari = None;
            self.past_windows = PastWindows::default();
        }
        self.failures = 0;
        self.not_before_unix = 0;
        self.unusable = None;
        self.stopped = None;
    }
}

/// Why the stored record cannot be read. It says where, never what: serde's message can quote a
/// value from the file, and the file holds the EAB key or the SCEP challenge.
#[derive(Debug, thiserror::Error)]
#[error("{kind} at line {line} column {column}")]
pub struct RecordError {
    kind: &'static str,
    line: usize,
    column: usize,
}

pub(crate) fn parse_record(bytes: &[u8]) -> Result<Record, RecordError> {
    serde_json::from_slice(bytes).map_err(|e| RecordError {
        kind: match e.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "not the expected fields",
            serde_json::error::Category::Eof => "cut short",
        },
        line: e.line(),
        column: e.column(),
    })
}
