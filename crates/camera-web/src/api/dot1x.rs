//! `/api/v1/dot1x`: the 802.1X settings and state, and removing its certificate (admin only;
//! uploads and requests for the role go through the certificate and request handlers).

use std::net::IpAddr;
use std::sync::Arc;

use camera_dot1x::Settings;
use camera_events::EventKind;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use super::app::{blocking, ApiResult, App};
use super::error::ApiError;
use super::http::{self, Body};
use super::model::Dot1xStatus;
use crate::domain::certificates::Role;
use crate::domain::dot1x::Dot1xError;

fn status_body(app: &App) -> Response<Body> {
    let status = Dot1xStatus {
        supplicant: app.dot1x.view(),
        certificate: app.certs.installer(Role::Dot1x).map(|i| i.info),
        pending_csr: app.certs.pending_request(Role::Dot1x),
    };
    http::json(StatusCode::OK, &status)
}

pub async fn status(app: &Arc<App>) -> ApiResult {
    let worker = app.clone();
    blocking("Reading the 802.1X state", move || status_body(&worker)).await
}

/// The largest settings body: the server CA certificates' PEM (escaped in JSON) and the rest.
const MAX_SETTINGS_JSON: usize = 48 * 1024;

/// Stores the settings and hands them to the supplicant, which tries them (and goes back to the
/// last settings that authenticated if they fail); answers at once: `GET` shows how it goes.
pub async fn configure(app: &Arc<App>, peer: IpAddr, req: Request<Incoming>) -> ApiResult {
    let json: serde_json::Value = http::read_json_up_to(req, MAX_SETTINGS_JSON).await?;
    let settings = Settings::from_json(&json).map_err(|e| ApiError::BadDot1x { detail: e.to_string() })?;
    let worker = app.clone();
    blocking("Storing the 802.1X settings", move || {
        let enabled = settings.enabled;
        worker.dot1x.configure(settings, &worker.certs).map_err(|e| match e {
            Dot1xError::Settings(e) => ApiError::BadDot1x { detail: e.to_string() },
            Dot1xError::NoCertificate => ApiError::Dot1xNeedsCertificate {},
            Dot1xError::Apply(e) => ApiError::BadDot1x { detail: e.to_string() },
        })?;
        let what = if enabled { "changed" } else { "turned off" };
        worker.event(EventKind::Dot1xConfigured, Some(peer), format!("The 802.1X settings were {what}."));
        Ok(status_body(&worker))
    })
    .await?
}

/// `DELETE /api/v1/dot1x/certificate`: refused while 802.1X is on; stops its enrollment; not an
/// error when none is installed (scripts can call it unconditionally).
pub async fn remove_certificate(app: &Arc<App>, peer: IpAddr) -> ApiResult {
    let worker = app.clone();
    blocking("Deleting the 802.1X certificate", move || {
        if worker.dot1x.enabled() {
            return Err(ApiError::Dot1xCertificateInUse {});
        }
        // Deleting also stops its enrollment, or that would fetch a certificate again at once.
        worker
            .dot1x_enrollment
            .stop(Some(peer))
            .map_err(|_| ApiError::Internal { what: "Stopping the 802.1X certificate's enrollment" })?;
        let removed = worker
            .certs
            .restore(Role::Dot1x)
            .map_err(|e| ApiError::storage("the change (the 802.1X certificate stays)", &e))?;
        if removed {
            worker.event(EventKind::Dot1xCertificateChanged, Some(peer), "The 802.1X client certificate was deleted.");
        }
        Ok(status_body(&worker))
    })
    .await?
}
