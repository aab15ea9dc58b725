//! The certificate in use: `cacert.crt`, the status, uploads and restore.

use std::net::IpAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header;
use hyper::{Request, Response, StatusCode};
use zeroize::Zeroizing;

use super::app::{blocking, ApiResult, App};
use super::error::ApiError;
use super::http::Body;
use super::http::{self, MAX_FILE, MAX_MULTIPART};
use super::model::{Source, Uploaded};
use crate::domain::camera::{camera_now, check_upload};
use crate::domain::certificates::{Certificates, InstallError, Origin, Role};
use crate::domain::status::StatusContext;
use crate::{log, multipart};
use camera_events::EventKind;

/// The CA certificate, PEM or (`?format=der`) DER.
pub fn cacert(certs: &Certificates, query: Option<&str>) -> Response<Body> {
    let der = query.is_some_and(|q| q.split('&').any(|kv| kv == "format=der"));
    if der {
        http::file("application/x-x509-ca-cert", certs.ca_der().to_vec(), Some("cacert.crt"))
    } else {
        http::file("application/x-pem-file", certs.ca_pem().to_owned(), Some("cacert.crt"))
    }
}

/// The status as `GET /api/v1/certificate` and a restore answer it.
fn status_body(app: &App, opened_as: Option<&str>) -> Response<Body> {
    let (addresses, names, host) = camera_now(&app.camera);
    let ctx = StatusContext {
        addresses: &addresses,
        names: &names,
        hostname: host.as_deref(),
        tls_profile: app.web.tls.as_str(),
        opened_as,
        expiry_warning_days: app.web.expiry_warning_days,
    };
    let mut status = app.certs.status(&ctx);
    status.expiry = crate::domain::expiry::report(&app.certs, &app.enrollment, app.web.expiry_warning_days);
    http::json(StatusCode::OK, &status)
}

pub async fn status(app: &Arc<App>, opened_as: Option<String>) -> ApiResult {
    let worker = app.clone();
    blocking("Reading the certificate status", move || status_body(&worker, opened_as.as_deref())).await
}

/// Deleting when nothing is uploaded is not an error: the camera's own certificate is in use
/// either way, and scripts can call this unconditionally. The 802.1X certificate is not deleted
/// while 802.1X is on (the port would close at the next re-authentication).
pub async fn restore(app: &Arc<App>, peer: IpAddr, role: Role) -> ApiResult {
    if role == Role::Dot1x {
        return super::dot1x::remove_certificate(app, peer).await;
    }
    let worker = app.clone();
    blocking("Restoring the camera's certificate", move || {
        // Restore also stops enrollment, or it would fetch a certificate again at once.
        worker.enrollment.stop(Some(peer)).map_err(|e| match e {
            camera_enroll::EnrollError::Storage(io) => {
                ApiError::storage("the change (the uploaded certificate stays in use)", &io)
            }
            other => ApiError::Internal { what: leak_free(&other) },
        })?;
        let removed = worker
            .certs
            .restore(Role::Https)
            .map_err(|e| ApiError::storage("the change (the uploaded certificate stays in use)", &e))?;
        if removed {
            worker.event(
                EventKind::CertificateRestored,
                Some(peer),
                "The installer's certificate was deleted; the camera serves its own again.",
            );
        }
        Ok(status_body(&worker, None))
    })
    .await?
}

/// What an upload carried: the certificate (or bundle, or PKCS#12), a key, a passphrase.
#[derive(Default)]
struct UploadParts {
    certificate: Option<Zeroizing<Vec<u8>>>,
    key: Option<Zeroizing<Vec<u8>>>,
    passphrase: Option<Zeroizing<String>>,
}

/// The fields of a `multipart/form-data` upload.
fn form_parts(body: &[u8], boundary: &str) -> Result<UploadParts, ApiError> {
    let parts = multipart::parse(body, boundary, 8).map_err(|m| ApiError::BadForm { detail: m })?;
    let mut upload = UploadParts::default();
    for part in parts {
        if part.data.len() > MAX_FILE {
            return Err(ApiError::FieldTooLarge { name: part.name });
        }
        let empty = part.data.iter().all(u8::is_ascii_whitespace);
        match part.name.as_str() {
            "certificate" if !empty => upload.certificate = Some(part.data),
            "key" if !empty => upload.key = Some(part.data),
            "passphrase" if !part.data.is_empty() => {
                let text = std::str::from_utf8(&part.data).map_err(|_| ApiError::BadPassphrase {})?;
                upload.passphrase = Some(Zeroizing::new(text.to_owned()));
            }
            "certificate" | "key" | "passphrase" => {}
            other => return Err(ApiError::UnknownField { name: other.chars().take(40).collect() }),
        }
    }
    Ok(upload)
}

/// The upload's parts: multipart (`certificate`, `key`, `passphrase`) or a raw PEM / DER /
/// PKCS#12 body (passphrase in `X-Passphrase`).
async fn read_upload(req: Request<Incoming>) -> Result<UploadParts, ApiError> {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    if let Some(boundary) = multipart::boundary(&content_type) {
        let body = http::read_body(req, MAX_MULTIPART, "upload").await?;
        return form_parts(&body, &boundary);
    }
    let passphrase =
        req.headers().get("x-passphrase").and_then(|v| v.to_str().ok()).map(|s| Zeroizing::new(s.to_owned()));
    let body = http::read_body(req, MAX_FILE, "certificate file").await?;
    Ok(UploadParts { certificate: Some(body), key: None, passphrase })
}

/// `PUT /api/v1/certificate` (`/api/v1/dot1x/certificate`): validated completely before anything
/// changes, then stored and served (for 802.1X: handed to the supplicant). The checks (with any
/// KDF) and the store run in one blocking task holding the upload permit, so at most one upload's
/// KDF memory is in use at a time, even if clients go away.
pub async fn upload(app: &Arc<App>, peer: IpAddr, req: Request<Incoming>, role: Role) -> ApiResult {
    let parts = read_upload(req).await?;
    if parts.certificate.is_none() && parts.key.is_none() {
        return Err(ApiError::Empty {});
    }
    let permit =
        app.upload_checks.clone().acquire_owned().await.map_err(|_| ApiError::Internal { what: "The upload" })?;
    let worker = app.clone();
    blocking("Checking the upload", move || {
        let _permit = permit;
        install(&worker, peer, &parts, role)
    })
    .await?
}

fn install(app: &App, peer: IpAddr, parts: &UploadParts, role: Role) -> ApiResult {
    let pending_key = app.certs.pending_key(role);
    let accepted = check_upload(
        &app.camera,
        role,
        pending_key.as_deref().map(Vec::as_slice),
        parts.certificate.as_deref().map(Vec::as_slice),
        parts.key.as_deref().map(Vec::as_slice),
        parts.passphrase.as_deref().map(String::as_str),
    )
    .map_err(|e| {
        log::info(&format!("camera-web: upload refused ({}): the served certificate is unchanged", e.code()));
        app.event(EventKind::UploadRefused, Some(peer), format!("An upload was refused ({}).", e.code()));
        ApiError::from(e)
    })?;
    let info =
        app.certs.install(role, &accepted.chain_der, &accepted.key_pkcs8, Origin::Uploaded).map_err(|e| match e {
            InstallError::Storage(io) => ApiError::storage("the certificate", &io),
            other => ApiError::Unusable { detail: other.to_string() },
        })?;
    match role {
        Role::Https => app.event(
            EventKind::CertificateUploaded,
            Some(peer),
            format!(
                "An installer's certificate was uploaded and is served: {} (SHA-256 {}).",
                info.subject, info.sha256
            ),
        ),
        Role::Dot1x => {
            app.event(
                EventKind::Dot1xCertificateChanged,
                Some(peer),
                format!("An 802.1X client certificate was uploaded: {} (SHA-256 {}).", info.subject, info.sha256),
            );
            app.dot1x.certificate_changed(&app.certs, Some(peer), &app.events);
        }
    }
    Ok(http::json(
        StatusCode::OK,
        &Uploaded {
            source: Source::Uploaded,
            certificate: info,
            warnings: accepted.warnings.into_iter().map(Into::into).collect(),
            key_from_pending_csr: accepted.key_from_pending_csr,
        },
    ))
}

/// A fixed description for an unexpected error: its text goes to the log, not the answer.
fn leak_free(e: &dyn std::fmt::Display) -> &'static str {
    log::warn(&format!("camera-web: restore: {e}"));
    "Stopping enrollment"
}
