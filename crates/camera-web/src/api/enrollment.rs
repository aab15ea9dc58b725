//! `/api/v1/enrollment`: automatic enrollment from the site's CA (admin only; the settings'
//! secrets are stored 0600 and never answered).

use std::net::IpAddr;
use std::sync::Arc;

use camera_enroll::{EnrollError, Settings};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::app::{blocking, ApiResult, App};
use super::error::ApiError;
use super::http;

pub async fn status(app: &Arc<App>) -> ApiResult {
    let worker = app.clone();
    let status = blocking("Reading the enrollment state", move || worker.enrollment.status()).await?;
    Ok(http::json(StatusCode::OK, &status))
}

/// The largest settings body: the trust anchors' PEM (escaped in JSON) and the rest.
const MAX_SETTINGS_JSON: usize = camera_enroll::settings::MAX_TRUST + 16 * 1024;

/// Stores the settings and starts enrolling at once; answers with the state right away (an
/// enrollment takes seconds to minutes: `GET` shows how it goes).
pub async fn configure(app: &Arc<App>, peer: IpAddr, req: Request<Incoming>) -> ApiResult {
    let json: serde_json::Value = http::read_json_up_to(req, MAX_SETTINGS_JSON).await?;
    let settings = Settings::from_json(json).map_err(|e| ApiError::BadEnrollment { detail: e.to_string() })?;
    let worker = app.clone();
    let status = blocking("Storing the enrollment settings", move || worker.enrollment.configure(settings, Some(peer)))
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
pub async fn stop(app: &Arc<App>, peer: IpAddr) -> ApiResult {
    let worker = app.clone();
    let status =
        blocking("Stopping enrollment", move || worker.enrollment.stop(Some(peer)).map(|_| worker.enrollment.status()))
            .await?
            .map_err(|e| match e {
                EnrollError::Storage(io) => ApiError::storage("the enrollment settings", &io),
                other => ApiError::BadEnrollment { detail: other.to_string() },
            })?;
    Ok(http::json(StatusCode::OK, &status))
}
