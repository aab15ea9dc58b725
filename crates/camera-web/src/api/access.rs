//! Who is asking: HTTP Basic (`admin`) for scripts, a session cookie with its CSRF token for the
//! camera's own page; and the password check behind both.

use std::net::IpAddr;
use std::sync::Arc;

use hyper::HeaderMap;
use zeroize::Zeroizing;

use super::app::{blocking, App};
use super::error::ApiError;
use super::http;
use crate::auth::{tokens_equal, AuthError, SESSION_COOKIE};
use crate::log;

/// The admin: HTTP Basic (`admin`), or a session cookie, with its CSRF token for a change (a
/// read of an admin route, e.g. the event log, needs only the cookie: it is SameSite=Strict, and
/// another site's page cannot read the answer).
pub async fn authorize(app: &Arc<App>, peer: IpAddr, headers: &HeaderMap, change: bool) -> Result<(), ApiError> {
    if !app.auth.password_set() {
        return Err(ApiError::SetupRequired {});
    }
    if let Some((user, password)) = http::basic_credentials(headers)? {
        if user != "admin" {
            return Err(ApiError::WrongUser {});
        }
        return check_password(app, peer, password, true).await;
    }
    let token = http::cookie(headers, SESSION_COOKIE).ok_or(ApiError::LoginRequired {})?;
    let csrf = app.auth.session_csrf(token).ok_or(ApiError::SessionExpired {})?;
    if !change {
        return Ok(());
    }
    let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !tokens_equal(sent, &csrf) {
        return Err(ApiError::Csrf {});
    }
    Ok(())
}

/// Checks the admin password (PBKDF2, slow on purpose). At most a few checks run at once; the
/// permit goes into the blocking task with the check, so a client that closes its connection
/// does not free it before the work is done. `basic`: the client uses HTTP Basic.
pub async fn check_password(
    app: &Arc<App>,
    peer: IpAddr,
    password: Zeroizing<String>,
    basic: bool,
) -> Result<(), ApiError> {
    let permit = app.password_checks.clone().try_acquire_owned().map_err(|_| ApiError::Busy { retry_after_secs: 1 })?;
    let worker = app.clone();
    let verdict = blocking("The password check", move || {
        let _permit = permit;
        let verdict = worker.auth.verify(peer, &password);
        // Here, not in the request: a guess whose client went away still counts and is recorded,
        // and the event log's fsync never holds up the runtime serving handshakes.
        if verdict.is_ok() && !basic {
            worker.event(camera_events::EventKind::Login, Some(peer), "The admin logged in to the web page.");
        }
        if verdict == Err(AuthError::WrongPassword) {
            log::info(&format!("camera-web: failed login from {peer}"));
            if let Err(e) = worker.events.failed_login(peer) {
                log::warn(&format!("camera-web: the security event log cannot be written: {e}"));
            }
        }
        verdict
    })
    .await?;
    match verdict {
        Ok(()) => Ok(()),
        Err(AuthError::NoPassword) => Err(ApiError::SetupRequired {}),
        Err(AuthError::Damaged) => Err(ApiError::PasswordFileDamaged {}),
        Err(AuthError::WrongPassword) => Err(ApiError::WrongPassword { basic }),
        Err(AuthError::TooManyAttempts { retry_after }) => {
            Err(ApiError::TooManyAttempts { retry_after_secs: retry_after.as_secs().max(1) })
        }
    }
}
