//! `/api/v1/enrollment`: automatic enrollment from the site's CA (admin only; the settings'
//! secrets are stored 0600 and never answered).

use std::net::IpAddr;
use std::sync::Arc;

use camera_enroll::{EnrollError, Protocol, Settings};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::app::{blocking, ApiResult, App};
use super::error::ApiError;
use super::http;
use crate::domain::certificates::Role;

pub async fn status(app: &Arc<App>, role: Role) -> ApiResult {
    let worker = app.clone();
    let status = blocking("Reading the enrollment state", move || worker.enrollment(role).status()).await?;
    Ok(http::json(StatusCode::OK, &status))
}

/// The largest settings body: the trust anchors' PEM (escaped in JSON) and the rest.
const MAX_SETTINGS_JSON: usize = camera_enroll::settings::MAX_TRUST + 16 * 1024;

/// Stores the settings and starts enrolling at once; answers with the state right away (an
/// enrollment takes seconds to minutes: `GET` shows how it goes).
pub async fn configure(app: &Arc<App>, peer: IpAddr, req: Request<Incoming>, role: Role) -> ApiResult {
    let json: serde_json::Value = http::read_json_up_to(req, MAX_SETTINGS_JSON).await?;
    let settings = Settings::from_json(json).map_err(|e| ApiError::BadEnrollment { detail: e.to_string() })?;
    if role == Role::Dot1x && settings.protocol() != Protocol::Scep {
        return Err(ApiError::BadEnrollment {
            detail: "the 802.1X certificate is enrolled by SCEP (ACME issues server certificates, proving names and addresses, which a client certificate does not need)".into(),
        });
    }
    let worker = app.clone();
    let status =
        blocking("Storing the enrollment settings", move || worker.enrollment(role).configure(settings, Some(peer)))
            .await?
            .map_err(|e| match e {
                EnrollError::Settings(e) => ApiError::BadEnrollment { detail: e.to_string() },
                EnrollError::Storage(io) => ApiError::storage("the enrollment settings", &io),
                EnrollError::TooFrequent { retry_after } => {
                    ApiError::EnrollmentTooFrequent { retry_after_secs: retry_after.as_secs().max(1) }
                }
            })?;
    Ok(http::json(StatusCode::OK, &status))
}

/// Stops enrolling; the certificate in service stays until a restore.
pub async fn stop(app: &Arc<App>, peer: IpAddr, role: Role) -> ApiResult {
    let worker = app.clone();
    let status = blocking("Stopping enrollment", move || {
        let enrollment = worker.enrollment(role);
        enrollment.stop(Some(peer)).map(|_| enrollment.status())
    })
    .await?
    .map_err(|e| match e {
        EnrollError::Storage(io) => ApiError::storage("the enrollment settings", &io),
        other => ApiError::BadEnrollment { detail: other.to_string() },
    })?;
    Ok(http::json(StatusCode::OK, &status))
}
