//! Certificate requests made on the camera: the key is generated here and never leaves it.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::Request;

use super::app::{blocking, ApiResult, App};
use super::error::ApiError;
use super::http;
use crate::domain::certificates::{InstallError, Role};
use crate::log;

/// `GET /api/v1/csr` (`/api/v1/dot1x/csr`): the role's pending request as `certreq.pem`.
pub fn download(app: &App, role: Role) -> ApiResult {
    let pem = app.certs.pending_csr_pem(role).ok_or(ApiError::NoRequest {})?;
    Ok(http::file("application/pkcs10", pem, Some("certreq.pem")))
}

/// `POST /api/v1/csr` (`/api/v1/dot1x/csr`): a new key and request for the role, replacing any
/// earlier pending one of that role.
pub async fn create(app: &Arc<App>, peer: std::net::IpAddr, req: Request<Incoming>, role: Role) -> ApiResult {
    let request: camera_pki::CsrRequest = http::read_json(req).await?;
    let worker = app.clone();
    let pending = blocking("Creating the request", move || {
        // What was asked for is wrong: 400 with the reason; anything else failed inside the camera.
        let pending = camera_pki::create_csr_for(&request, role.purpose()).map_err(|e| match e {
            camera_pki::PkiError::InvalidRequest(reason) => {
                ApiError::BadRequest { detail: reason.to_string().trim_end_matches('.').to_owned() }
            }
            other => {
                log::warn(&format!("camera-web: a certificate request could not be made: {}", log::chain(&other)));
                ApiError::Internal { what: "Making the key and the request" }
            }
        })?;
        worker.certs.store_pending(role, &pending).map_err(|e| match e {
            InstallError::Storage(io) => ApiError::storage("the request and its key", &io),
            other => ApiError::Internal { what: leak_free_what(&other) },
        })?;
        let what = match role {
            Role::Https => "A certificate request",
            Role::Dot1x => "An 802.1X client certificate request",
        };
        log::info(&format!("camera-web: {what} was created; its key stays on the camera"));
        worker.event(
            camera_events::EventKind::RequestCreated,
            Some(peer),
            format!("{what} was created on the camera; its key stays on the camera."),
        );
        Ok::<_, ApiError>(pending)
    })
    .await??;
    Ok(http::file("application/pkcs10", pending.csr_pem(), Some("certreq.pem")))
}

/// A fixed description: the error's own text stays in the log, never in the answer.
fn leak_free_what(e: &InstallError) -> &'static str {
    log::warn(&format!("camera-web: the new request could not be stored: {e}"));
    "Storing the request"
}
