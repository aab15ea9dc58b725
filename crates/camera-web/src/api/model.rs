//! The bodies the API answers with, as Rust types: the one source of the contract that the UI
//! (`assets/app.js`), the OpenAPI document (`openapi.yaml`) and the tests follow. Every field is
//! always present (`null` when empty), so a client can tell a field the server does not have from
//! one that is empty.

use camera_pki::CertificateInfo;
use serde::{Deserialize, Serialize};

/// `GET /api/v1/session`.
#[derive(Debug, Serialize)]
pub struct SessionState {
    pub password_set: bool,
    pub logged_in: bool,
    /// Echo it in `X-CSRF-Token` on changes made with the session cookie.
    pub csrf_token: Option<String>,
}

/// `POST /api/v1/setup` and `/login`: the session cookie comes in `Set-Cookie`.
#[derive(Debug, Serialize)]
pub struct LoggedIn {
    pub csrf_token: String,
}

/// `POST /api/v1/logout`.
#[derive(Debug, Serialize)]
pub struct LoggedOut {
    pub logged_in: bool,
}

/// Which certificate is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Minted by the camera for its current addresses.
    Device,
    /// An installer's certificate, uploaded by hand.
    Uploaded,
    /// An installer's certificate, obtained by automatic enrollment from the site's CA.
    Enrolled,
}

/// A warning or notice: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub code: &'static str,
    pub message: String,
}

impl From<camera_upload::Notice> for Notice {
    fn from(n: camera_upload::Notice) -> Self {
        Self { code: n.code, message: n.message }
    }
}

/// The camera's addresses and names right now.
#[derive(Debug, Serialize)]
pub struct CameraNames {
    pub addresses: Vec<String>,
    pub names: Vec<String>,
    pub hostname: Option<String>,
}

/// Whether the served certificate names the host this request was sent to (the `Host` header):
/// the UI shows this verdict instead of matching names itself.
#[derive(Debug, Serialize)]
pub struct OpenedAs {
    pub host: String,
    pub covered: bool,
}

/// The record written when the camera CA changed (`ca-replaced.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaReplaced {
    pub replaced_at_unix: u64,
    pub reason: String,
    pub new_ca_sha256: Option<String>,
}

/// The camera CA that `cacert.crt` exports.
#[derive(Debug, Serialize)]
pub struct CaStatus {
    pub sha256: String,
    pub subject: String,
    pub not_after: String,
    pub replaced: Option<CaReplaced>,
    /// 2: a root (exported) and an issuing CA (signs, carries the name constraints every client
    /// applies); 1: a single CA (cameras made before two tiers).
    pub tiers: u8,
    pub issuing: Option<IssuingCa>,
    /// For a one-tier CA: what to do about it.
    pub advice: Option<&'static str>,
}

/// The issuing CA of a two-tier camera CA.
#[derive(Debug, Serialize)]
pub struct IssuingCa {
    pub subject: String,
    pub sha256: String,
    pub not_after: String,
}

/// A certificate request made on the camera whose key is waiting for its certificate.
#[derive(Debug, Clone, Serialize)]
pub struct PendingRequest {
    pub subject: String,
    pub subject_alt_names: Vec<String>,
    pub key_type: String,
    pub created_at_unix: u64,
}

/// `GET /api/v1/certificate`, and the answer to a restore.
#[derive(Debug, Serialize)]
pub struct CertificateStatus {
    pub source: Source,
    /// Why this certificate is the one served, in a sentence.
    pub reason: &'static str,
    pub certificate: CertificateInfo,
    /// The certificates sent after the leaf.
    pub chain: Vec<CertificateInfo>,
    pub camera: CameraNames,
    pub opened_as: Option<OpenedAs>,
    pub warnings: Vec<Notice>,
    pub ca: CaStatus,
    pub pending_csr: Option<PendingRequest>,
    pub tls_profile: &'static str,
    /// Days left for each certificate the camera holds (served, installer's, camera CA).
    pub expiry: Vec<crate::expiry::Expiry>,
}

/// `PUT /api/v1/certificate`.
#[derive(Debug, Serialize)]
pub struct Uploaded {
    pub source: Source,
    pub certificate: CertificateInfo,
    pub warnings: Vec<Notice>,
    /// The certificate paired with the key of the request made on this camera.
    pub key_from_pending_csr: bool,
}

/// `GET /api/v1/events`: the security event log, newest first.
#[derive(Debug, Serialize)]
pub struct Events {
    pub events: Vec<camera_events::Event>,
}
