//! Routes: the UI, `cacert.crt`, and the JSON API. Errors are `{"error", "message"}` with a 4xx
//! status and a sentence a person understands.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use camera_state::{write_atomic, Layout, SECRET_MODE};
use cert_provisioner::provision::{camera_names, hostname};
use cert_provisioner::CameraConfig;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::auth::{tokens_equal, Auth, AuthError, SESSION_COOKIE};
use crate::certs::Certificates;
use crate::config::WebConfig;
use crate::{assets, log, multipart};

/// Largest certificate, key or PKCS#12 file accepted.
pub const MAX_FILE: usize = 64 * 1024;
/// Largest multipart upload: three fields and their headers.
const MAX_MULTIPART: usize = 3 * MAX_FILE + 8 * 1024;
/// Largest JSON request.
const MAX_JSON: usize = 16 * 1024;
/// Time allowed for a whole upload body (up to 200 KiB) to arrive.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Time allowed for a JSON body (up to 16 KiB, the only bodies anonymous clients may send).
const SMALL_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub type Body = Full<Bytes>;

const BASIC_CHALLENGE: &str = "Basic realm=\"camera\", charset=\"UTF-8\"";

/// Everything a request handler needs.
pub struct App {
    pub certs: Certificates,
    pub auth: Auth,
    pub layout: Layout,
    pub camera: CameraConfig,
    pub web: WebConfig,
    /// Serialises first-run setup so two first visits cannot both set the password.
    pub setup_lock: tokio::sync::Mutex<()>,
    /// PBKDF2 checks running at once.
    pub password_checks: tokio::sync::Semaphore,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("layout", &self.layout).finish_non_exhaustive()
    }
}

/// An API error: status, stable code, sentence.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    extra_headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), extra_headers: Vec::new() }
    }

    fn with_header(mut self, name: header::HeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.extra_headers.push((name, value));
        }
        self
    }

    pub fn into_response(self) -> Response<Body> {
        let mut response = json_response(self.status, &json!({"error": self.code, "message": self.message}));
        for (name, value) in self.extra_headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

type ApiResult = Result<Response<Body>, ApiError>;

pub fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn bytes_response(
    content_type: &'static str,
    body: impl Into<Bytes>,
    download_name: Option<&'static str>,
) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(name) = download_name {
        if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
        }
    }
    response
}

/// Headers every HTTPS response carries.
fn secure_headers(headers: &mut HeaderMap) {
    let fixed = [
        // Two years: the minimum in Mozilla's TLS profiles. Browsers ignore HSTS for IP addresses.
        (header::STRICT_TRANSPORT_SECURITY, "max-age=63072000"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// The CA certificate, PEM or (`?format=der`) DER.
fn cacert(certs: &Certificates, query: Option<&str>) -> Response<Body> {
    let der = query.is_some_and(|q| q.split('&').any(|kv| kv == "format=der"));
    if der {
        bytes_response("application/x-x509-ca-cert", certs.ca_der().to_vec(), Some("cacert.crt"))
    } else {
        bytes_response("application/x-pem-file", certs.ca_pem().to_owned(), Some("cacert.crt"))
    }
}

/// Plain HTTP: `/cacert.crt` (users fetch it before they trust anything), else a redirect.
pub fn handle_http(app: &App, req: &Request<Incoming>) -> Response<Body> {
    if req.uri().path() == "/cacert.crt" && (req.method() == Method::GET || req.method() == Method::HEAD) {
        return cacert(&app.certs, req.uri().query());
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(host_without_port)
        .unwrap_or_else(|| "camera.local".to_owned());
    let port = app.web.https.port();
    let authority = if port == 443 { host } else { format!("{host}:{port}") };
    let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
    if let Ok(location) = HeaderValue::from_str(&format!("https://{authority}{path}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// The host part of a Host header, if it is a plausible host name or address.
fn host_without_port(host: &str) -> Option<String> {
    let host = if let Some(rest) = host.strip_prefix('[') {
        format!("[{}]", rest.split(']').next()?)
    } else {
        host.split(':').next()?.to_owned()
    };
    let plausible = !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b));
    plausible.then_some(host)
}

/// HTTPS: every route.
pub async fn handle_https(app: Arc<App>, peer: IpAddr, req: Request<Incoming>) -> Response<Body> {
    let mut response = route(&app, peer, req).await.unwrap_or_else(ApiError::into_response);
    secure_headers(response.headers_mut());
    response
}

async fn route(app: &Arc<App>, peer: IpAddr, req: Request<Incoming>) -> ApiResult {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    if method != Method::GET && method != Method::HEAD {
        refuse_cross_site(req.headers())?;
    }
    match (method, path.as_str()) {
        (Method::GET, "/" | "/index.html") => Ok(bytes_response("text/html; charset=utf-8", assets::INDEX_HTML, None)),
        (Method::GET, "/app.js") => Ok(bytes_response("text/javascript; charset=utf-8", assets::APP_JS, None)),
        (Method::GET, "/app.css") => Ok(bytes_response("text/css; charset=utf-8", assets::APP_CSS, None)),
        (Method::GET | Method::HEAD, "/cacert.crt") => Ok(cacert(&app.certs, req.uri().query())),
        (Method::GET, "/api/v1/session") => Ok(session(app, req.headers())),
        (Method::GET, "/api/v1/certificate") => blocking(app, status).await,
        (Method::PUT, "/api/v1/certificate") => {
            authorize(app, peer, req.headers()).await?;
            upload(app, req).await
        }
        (Method::DELETE, "/api/v1/certificate") => {
            authorize(app, peer, req.headers()).await?;
            blocking(app, restore).await?
        }
        (Method::GET, "/api/v1/csr") => match app.certs.pending_csr_pem() {
            Some(pem) => Ok(bytes_response("application/pkcs10", pem, Some("certreq.pem"))),
            None => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "no_request",
                "No certificate request has been created on this camera yet.",
            )),
        },
        (Method::POST, "/api/v1/csr") => {
            authorize(app, peer, req.headers()).await?;
            create_csr(app, req).await
        }
        (Method::POST, "/api/v1/setup") => setup(app, req).await,
        (Method::POST, "/api/v1/login") => login(app, peer, req).await,
        (Method::POST, "/api/v1/logout") => Ok(logout(app, req.headers())),
        (
            _,
            "/"
            | "/index.html"
            | "/app.js"
            | "/app.css"
            | "/cacert.crt"
            | "/api/v1/session"
            | "/api/v1/certificate"
            | "/api/v1/csr"
            | "/api/v1/setup"
            | "/api/v1/login"
            | "/api/v1/logout",
        ) => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{} is not supported on {path}.", req.method()),
        )),
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("There is nothing at {path}."))),
    }
}

/// Reads a body of at most `limit` bytes.
async fn read_body(req: Request<Incoming>, limit: usize, what: &str) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("The {what} is larger than {} KiB.", limit / 1024),
        )
    };
    if req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|len| len > limit)
    {
        return Err(too_large());
    }
    // A client trickling its body must not hold a connection slot for long.
    let timeout = if limit <= MAX_JSON { SMALL_BODY_TIMEOUT } else { BODY_TIMEOUT };
    let collected =
        tokio::time::timeout(timeout, Limited::new(req.into_body(), limit).collect()).await.map_err(|_| {
            ApiError::new(StatusCode::REQUEST_TIMEOUT, "too_slow", format!("The {what} took too long to arrive."))
        })?;
    match collected {
        Ok(collected) => Ok(Zeroizing::new(collected.to_bytes().to_vec())),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(too_large()),
        Err(_) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_body", format!("The {what} could not be read completely.")))
        }
    }
}

/// Reads a JSON body. The content type must say JSON: a cross-site page cannot send that
/// without a CORS preflight, which this server never grants.
async fn read_json<T: for<'de> Deserialize<'de>>(req: Request<Incoming>) -> Result<T, ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "json_required",
            "Send the request as JSON with the header Content-Type: application/json.",
        ));
    }
    let body = read_body(req, MAX_JSON, "request").await?;
    parse_json(&body)
}

/// Parses a JSON request body (a [`PasswordBody`], a [`camera_pki::CsrRequest`]) as the routes do.
/// Public for the fuzz targets in `fuzz/`.
pub fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("The request is not the JSON this API expects: {e}."),
        )
    })
}

/// A password body; its parse errors never quote the body (serde can echo values).
async fn read_password(req: Request<Incoming>) -> Result<PasswordBody, ApiError> {
    read_json::<PasswordBody>(req).await.map_err(|e| {
        if e.code == "bad_json" {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_json", "Send {\"password\": \"...\"} as the request body.")
        } else {
            e
        }
    })
}

/// Browsers say where a request comes from; a change must come from the camera's own page
/// (or from a client that is not a browser page: curl sends neither header).
fn refuse_cross_site(headers: &HeaderMap) -> Result<(), ApiError> {
    let cross_site =
        ApiError::new(StatusCode::FORBIDDEN, "cross_site", "Changes are only accepted from the camera's own page.");
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return Err(cross_site);
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        if origin.strip_prefix("https://") != Some(host) {
            return Err(cross_site);
        }
    }
    Ok(())
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

fn session_cookie(token: &str, max_age: u32) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

fn decode_base64(input: &str) -> Option<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(input.len() * 3 / 4));
    let mut acc = 0u32;
    let mut bits = 0;
    for c in input.trim().bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// `challenge`: answer a wrong password with `WWW-Authenticate` (HTTP Basic clients only; a
/// browser page's fetch would otherwise pop up the browser's own password dialog).
async fn check_password(
    app: &Arc<App>,
    peer: IpAddr,
    password: Zeroizing<String>,
    challenge: bool,
) -> Result<(), ApiError> {
    // PBKDF2 is slow on purpose; a flood of guesses must not take the CPU from everything else.
    let Ok(_slot) = app.password_checks.try_acquire() else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            "The camera is checking other passwords: try again in a moment.",
        )
        .with_header(header::RETRY_AFTER, "1"));
    };
    let app2 = app.clone();
    let verdict = tokio::task::spawn_blocking(move || app2.auth.verify(peer, &password)).await.map_err(|_| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "The password check failed; try again.")
    })?;
    match verdict {
        Ok(()) => Ok(()),
        Err(AuthError::NoPassword) => Err(setup_required()),
        Err(AuthError::Damaged) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "password_file_damaged",
            "The camera's admin password file is damaged, so changes are refused; remove admin-password.json on the camera to set a new password.",
        )),
        Err(AuthError::WrongPassword) => {
            log::info(&format!("camera-web: failed login from {peer}"));
            let error = ApiError::new(StatusCode::UNAUTHORIZED, "wrong_password", "The password is not correct.");
            Err(if challenge { error.with_header(header::WWW_AUTHENTICATE, BASIC_CHALLENGE) } else { error })
        }
        Err(AuthError::TooManyAttempts { retry_after }) => {
            let secs = retry_after.as_secs().max(1);
            Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                format!("Too many wrong passwords from this address: wait {secs} seconds and try again."),
            )
            .with_header(header::RETRY_AFTER, &secs.to_string()))
        }
    }
}

fn setup_required() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "setup_required",
        "No admin password is set yet: set one first (the web page asks for it, or POST /api/v1/setup).",
    )
}

/// A change needs HTTP Basic (`admin`) or a session cookie with its CSRF token.
async fn authorize(app: &Arc<App>, peer: IpAddr, headers: &HeaderMap) -> Result<(), ApiError> {
    if !app.auth.password_set() {
        return Err(setup_required());
    }
    if let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let encoded = auth.strip_prefix("Basic ").ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unsupported_auth",
                "Only HTTP Basic authentication (user admin) is supported.",
            )
        })?;
        let decoded = decode_base64(encoded).ok_or_else(|| {
            ApiError::new(StatusCode::UNAUTHORIZED, "bad_auth", "The Authorization header is malformed.")
        })?;
        let text = std::str::from_utf8(&decoded).map_err(|_| {
            ApiError::new(StatusCode::UNAUTHORIZED, "bad_auth", "The Authorization header is malformed.")
        })?;
        let (user, password) = text.split_once(':').ok_or_else(|| {
            ApiError::new(StatusCode::UNAUTHORIZED, "bad_auth", "The Authorization header is malformed.")
        })?;
        if user != "admin" {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong_user", "The user name is admin."));
        }
        return check_password(app, peer, Zeroizing::new(password.to_owned()), true).await;
    }
    let token = cookie_value(headers, SESSION_COOKIE).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "login_required",
            "Log in first (or use HTTP Basic with the user admin).",
        )
    })?;
    let csrf = app.auth.session_csrf(token).ok_or_else(|| {
        ApiError::new(StatusCode::UNAUTHORIZED, "session_expired", "Your session has ended: log in again.")
    })?;
    let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !tokens_equal(sent, &csrf) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "The request did not come from the camera's own page (missing or wrong X-CSRF-Token).",
        ));
    }
    Ok(())
}

fn session(app: &App, headers: &HeaderMap) -> Response<Body> {
    let csrf = cookie_value(headers, SESSION_COOKIE).and_then(|t| app.auth.session_csrf(t));
    json_response(
        StatusCode::OK,
        &json!({"password_set": app.auth.password_set(), "logged_in": csrf.is_some(), "csrf_token": csrf}),
    )
}

/// The camera's addresses, names and host name right now.
fn camera_now(camera: &CameraConfig) -> (Vec<IpAddr>, Vec<camera_pki::SanName>, Option<String>) {
    let mut warnings = Vec::new();
    let addresses = cert_provisioner::provision::current_addresses(&mut warnings);
    for warning in warnings {
        log::warn(&warning);
    }
    let names = camera_names(camera, &addresses);
    (addresses, names, hostname(camera))
}

fn status(app: &App) -> Response<Body> {
    let (addresses, names, host) = camera_now(&app.camera);
    json_response(StatusCode::OK, &app.certs.status(&addresses, &names, host.as_deref(), app.web.tls.as_str()))
}

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

fn logged_in_response(app: &App, status: StatusCode) -> ApiResult {
    let (token, csrf) = app.auth.new_session().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_randomness",
            "The camera cannot make a session right now; try again.",
        )
    })?;
    let mut response = json_response(status, &json!({"csrf_token": csrf}));
    response.headers_mut().insert(header::SET_COOKIE, session_cookie(&token, 12 * 3600));
    Ok(response)
}

async fn setup(app: &Arc<App>, req: Request<Incoming>) -> ApiResult {
    let body = read_password(req).await?;
    let _guard = app.setup_lock.lock().await;
    if app.auth.password_set() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_set",
            "The admin password is already set; log in with it.",
        ));
    }
    Auth::check_new_password(&body.password)
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "weak_password", format!("{m}.")))?;
    let app2 = app.clone();
    let password = Zeroizing::new(body.password.clone());
    let stored = tokio::task::spawn_blocking(move || {
        let stored = app2.auth.hash_password(&password).ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_randomness",
                "The camera's random number generator failed; nothing was changed. Try again.",
            )
        })?;
        write_atomic(&app2.layout.password(), &stored, SECRET_MODE).map_err(|e| {
            ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "storage",
                format!("The password could not be stored ({e}); nothing was changed."),
            )
        })?;
        Ok::<_, ApiError>(stored)
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "The password could not be hashed."))??;
    app.auth
        .install_password(&stored)
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "The password could not be set."))?;
    app.auth.end_all_sessions();
    log::info("camera-web: the admin password was set");
    logged_in_response(app, StatusCode::OK)
}

async fn login(app: &Arc<App>, peer: IpAddr, req: Request<Incoming>) -> ApiResult {
    let body = read_password(req).await?;
    check_password(app, peer, Zeroizing::new(body.password.clone()), false).await?;
    logged_in_response(app, StatusCode::OK)
}

fn logout(app: &App, headers: &HeaderMap) -> Response<Body> {
    if let Some(token) = cookie_value(headers, SESSION_COOKIE) {
        app.auth.end_session(token);
    }
    let mut response = json_response(StatusCode::OK, &json!({"logged_in": false}));
    response.headers_mut().insert(header::SET_COOKIE, session_cookie("", 0));
    response
}

async fn create_csr(app: &Arc<App>, req: Request<Incoming>) -> ApiResult {
    let request: camera_pki::CsrRequest = read_json(req).await?;
    let app2 = app.clone();
    let pending = tokio::task::spawn_blocking(move || {
        let pending = camera_pki::create_csr(&request)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("{e}.").replace("..", ".")))?;
        app2.certs
            .store_pending(&pending)
            .map_err(|m| ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "storage", m))?;
        Ok::<_, ApiError>(pending)
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "The request could not be created."))??;
    log::info("camera-web: a certificate request was created; its key stays on the camera");
    Ok(bytes_response("application/pkcs10", pending.csr_pem(), Some("certreq.pem")))
}

/// Runs `f` on the blocking pool: netlink dumps and fsyncs must not stall TLS handshakes on the
/// runtime thread.
async fn blocking<T: Send + 'static>(app: &Arc<App>, f: fn(&App) -> T) -> Result<T, ApiError> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || f(&app)).await.map_err(|_| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "The request could not be completed; try again.")
    })
}

/// Deleting when nothing is uploaded is not an error: the camera's own certificate is in use
/// either way, and scripts can call this unconditionally.
fn restore(app: &App) -> ApiResult {
    app.certs.restore().map_err(|m| ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "storage", m))?;
    Ok(status(app))
}

/// `PUT /api/v1/certificate`: multipart (`certificate`, `key`, `passphrase`) or a raw PEM /
/// DER / PKCS#12 body (passphrase in `X-Passphrase`).
async fn upload(app: &Arc<App>, req: Request<Incoming>) -> ApiResult {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let header_passphrase =
        req.headers().get("x-passphrase").and_then(|v| v.to_str().ok()).map(|s| Zeroizing::new(s.to_owned()));
    let (certificate, key, passphrase) = if let Some(boundary) = multipart::boundary(&content_type) {
        let body = read_body(req, MAX_MULTIPART, "upload").await?;
        let parts = multipart::parse(&body, &boundary, 8)
            .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "bad_form", format!("{m}.")))?;
        let (mut certificate, mut key, mut passphrase) = (None, None, None);
        for part in parts {
            if part.data.len() > MAX_FILE {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("The {} field is larger than 64 KiB.", part.name),
                ));
            }
            let empty = part.data.iter().all(u8::is_ascii_whitespace);
            match part.name.as_str() {
                "certificate" if !empty => certificate = Some(part.data),
                "key" if !empty => key = Some(part.data),
                "passphrase" if !part.data.is_empty() => {
                    let text = String::from_utf8(part.data.to_vec()).map_err(|_| {
                        ApiError::new(
                            StatusCode::BAD_REQUEST,
                            "bad_passphrase",
                            "The passphrase is not valid UTF-8 text.",
                        )
                    })?;
                    passphrase = Some(Zeroizing::new(text));
                }
                "certificate" | "key" | "passphrase" => {}
                other => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "unknown_field",
                        format!(
                            "Unknown form field \"{}\": use certificate, key and passphrase.",
                            other.chars().take(40).collect::<String>()
                        ),
                    ))
                }
            }
        }
        (certificate, key, passphrase)
    } else {
        let body = read_body(req, MAX_FILE, "certificate file").await?;
        (Some(body), None, header_passphrase)
    };
    if certificate.is_none() && key.is_none() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "empty",
            "Nothing was uploaded: choose a certificate file or paste PEM text.",
        ));
    }
    // Reading the pending key and the addresses, the checks (KDFs) and the fsynced store all
    // block: off the runtime thread.
    let app2 = app.clone();
    let (accepted, info) = tokio::task::spawn_blocking(move || {
        let pending_key = app2.certs.pending_key();
        let (addresses, names, _) = camera_now(&app2.camera);
        let dns: Vec<String> = names
            .iter()
            .filter_map(|n| match n {
                camera_pki::SanName::Dns(d) => Some(d.clone()),
                camera_pki::SanName::Ip(_) => None,
            })
            .collect();
        let input = camera_upload::UploadInput {
            certificate: certificate.as_deref().map(|v| v.as_slice()),
            key: key.as_deref().map(|v| v.as_slice()),
            passphrase: passphrase.as_deref().map(String::as_str),
        };
        let ctx = camera_upload::Context {
            now: std::time::SystemTime::now(),
            pending_key_pkcs8: pending_key.as_deref().map(|v| v.as_slice()),
            current_ips: &addresses,
            current_dns: &dns,
        };
        let accepted = camera_upload::validate_upload(&input, &ctx).map_err(|e| {
            log::info(&format!("camera-web: upload refused ({}): the served certificate is unchanged", e.code()));
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
        })?;
        let info = app2
            .certs
            .install_upload(&accepted.chain_der, &accepted.key_pkcs8)
            .map_err(|m| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unusable", m))?;
        Ok::<_, ApiError>((accepted, info))
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "The upload could not be checked."))??;
    let warnings: Vec<Value> =
        accepted.warnings.iter().map(|w| json!({"code": w.code, "message": w.message})).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"source": "uploaded", "certificate": info, "warnings": warnings, "key_from_pending_csr": accepted.key_from_pending_csr}),
    ))
}
