//! The admin account: first-run setup, login, logout, and the session the page asks about.

use std::net::IpAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{self, HeaderMap};
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::access;
use super::app::{blocking, ApiResult, App};
use super::error::ApiError;
use super::http;
use super::http::Body;
use super::model::{LoggedIn, LoggedOut, SessionState};
use crate::auth::{SetupError, SESSION_COOKIE};
use crate::log;
use camera_events::EventKind;

/// Session cookies live at most this long (the server also ends them earlier when idle).
const SESSION_COOKIE_MAX_AGE: u64 = 12 * 3600;

/// The body of `POST /api/v1/setup` and `/login`.
#[derive(Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    pub password: String,
}

impl std::fmt::Debug for PasswordBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordBody(..)")
    }
}

/// A password body; its parse errors never quote the body (serde can echo values).
async fn read_password(req: Request<Incoming>) -> Result<PasswordBody, ApiError> {
    http::read_json::<PasswordBody>(req).await.map_err(|e| match e {
        ApiError::BadJson { .. } => ApiError::BadPasswordJson {},
        other => other,
    })
}

pub fn session(app: &App, headers: &HeaderMap) -> Response<Body> {
    let csrf = http::cookie(headers, SESSION_COOKIE).and_then(|t| app.auth.session_csrf(t));
    http::json(
        StatusCode::OK,
        &SessionState { password_set: app.auth.password_set(), logged_in: csrf.is_some(), csrf_token: csrf },
    )
}

fn logged_in(app: &App) -> ApiResult {
    let (token, csrf) = app.auth.new_session().ok_or(ApiError::NoRandomness {})?;
    let mut response = http::json(StatusCode::OK, &LoggedIn { csrf_token: csrf });
    response
        .headers_mut()
        .insert(header::SET_COOKIE, http::session_cookie(SESSION_COOKIE, &token, SESSION_COOKIE_MAX_AGE));
    Ok(response)
}

/// First run: sets the admin password. The whole of it (the "already set" decision, hashing,
/// the durable write, making it current) runs in one blocking task that finishes even if the
/// client goes away, so the answer and the disk always agree.
pub async fn setup(app: &Arc<App>, peer: IpAddr, req: Request<Incoming>) -> ApiResult {
    let body = read_password(req).await?;
    let password = Zeroizing::new(body.password.clone());
    let worker = app.clone();
    blocking("Setting the password", move || {
        let set = worker.auth.setup(&password);
        if set.is_ok() {
            worker.event(EventKind::PasswordSet, Some(peer), "The admin password was set (first run).");
        }
        set
    })
    .await?
    .map_err(|e| match e {
        SetupError::AlreadySet => ApiError::AlreadySet {},
        SetupError::Weak(rule) => ApiError::WeakPassword { rule: capitalised(&rule.to_string()) },
        SetupError::NoRandomness => ApiError::NoRandomness {},
        SetupError::Storage(e) => ApiError::storage("the password", &e),
    })?;
    log::info("camera-web: the admin password was set");
    logged_in(app)
}

pub async fn login(app: &Arc<App>, peer: IpAddr, req: Request<Incoming>) -> ApiResult {
    let body = read_password(req).await?;
    // A web login (not HTTP Basic): the check records the Login event.
    access::check_password(app, peer, Zeroizing::new(body.password.clone()), false).await?;
    logged_in(app)
}

pub fn logout(app: &App, headers: &HeaderMap) -> Response<Body> {
    if let Some(token) = http::cookie(headers, SESSION_COOKIE) {
        app.auth.end_session(token);
    }
    let mut response = http::json(StatusCode::OK, &LoggedOut { logged_in: false });
    response.headers_mut().insert(header::SET_COOKIE, http::session_cookie(SESSION_COOKIE, "", 0));
    response
}

fn capitalised(sentence: &str) -> String {
    let mut chars = sentence.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
