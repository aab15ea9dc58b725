//! `GET /api/v1/events`: the security event log (admin only).

use std::sync::Arc;

use hyper::StatusCode;

use super::app::{blocking, ApiResult, App};
use super::error::ApiError;
use super::http;
use super::model::Events;

/// Events answered when the request does not say how many.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

pub async fn list(app: &Arc<App>, query: Option<&str>) -> ApiResult {
    let limit = query
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("limit=")))
        .map(|v| {
            v.parse::<usize>()
                .map_err(|_| ApiError::BadRequest { detail: format!("limit must be a number from 1 to {MAX_LIMIT}") })
        })
        .transpose()?
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1, MAX_LIMIT);
    let worker = app.clone();
    let events = blocking("Reading the event log", move || worker.events.recent(limit)).await?;
    let events = events.map_err(|e| ApiError::Storage { what: "the event log (reading)", detail: e.to_string() })?;
    Ok(http::json(StatusCode::OK, &Events { events }))
}
