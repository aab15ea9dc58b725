//! The bodies the API answers with, as Rust types: the one source of the contract that the UI
//! (`assets/app.js`), the OpenAPI document (`openapi.yaml`) and the tests follow. Every field is
//! always present (`null` when empty), so a client can tell a field the server does not have from
//! one that is empty.

use camera_pki::CertificateInfo;
use serde::Serialize;

/// The certificate status view is the domain's ([`crate::domain::status`]); its JSON shapes are
/// listed here with every other answer's.
pub use crate::domain::status::{
    CaReplaced, CaStatus, CameraNames, CertificateStatus, IssuingCa, Notice, OpenedAs, PendingRequest, Source,
};

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

/// `PUT /api/v1/certificate`.
#[derive(Debug, Serialize)]
pub struct Uploaded {
    pub source: Source,
    pub certificate: CertificateInfo,
    pub warnings: Vec<Notice>,
    /// The certificate paired with the key of the request made on this camera.
    pub key_from_pending_csr: bool,
}

/// `GET /api/v1/dot1x`, and the answer to its changes.
#[derive(Debug, Serialize)]
pub struct Dot1xStatus {
    /// The settings and what the supplicant is doing.
    pub supplicant: camera_dot1x::View,
    /// The `dot1x` role's certificate, if one is installed.
    pub certificate: Option<CertificateInfo>,
    /// A request made on the camera for this role, waiting for its certificate.
    pub pending_csr: Option<PendingRequest>,
}

/// `GET /api/v1/events`: the security event log, newest first.
#[derive(Debug, Serialize)]
pub struct Events {
    pub events: Vec<camera_events::Event>,
}
