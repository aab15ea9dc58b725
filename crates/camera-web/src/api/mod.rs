//! The HTTPS routes (the UI, `cacert.crt`, the JSON API) and plain HTTP's redirect.
//!
//! - [`routes`]: the route table (path, method, endpoint, who may call it).
//! - [`error`]: every error answer (code, status, sentence).
//! - [`model`]: every JSON answer's body.
//! - [`http`]: body reading, answers, headers, cookies, the cross-site check.
//! - [`app`]: what every handler needs (the [`App`], [`ApiResult`], the blocking pool).
//! - [`access`]: who is asking (HTTP Basic, sessions and CSRF, password checks).
//! - [`account`], [`certificate`], [`request`]: the handlers.
//!
//! Work that changes state runs in a blocking task that owns everything it needs (locks,
//! permits): a client that goes away cannot cancel it half-way.

pub mod access;
pub mod account;
pub mod app;
pub mod certificate;
pub mod dot1x;
pub mod enrollment;
pub mod error;
pub mod events;
pub mod http;
pub mod model;
pub mod request;
pub mod routes;

use std::net::IpAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

pub use account::PasswordBody;
pub use app::{ApiResult, App};
pub use error::ApiError;
pub use http::{parse_json, Body};
pub use routes::{Endpoint, ROUTES};

use crate::assets;

/// Plain HTTP: `/cacert.crt` (users fetch it before they trust anything), else a redirect.
pub fn handle_http(app: &App, req: &Request<Incoming>) -> Response<Body> {
    let readable = req.method() == Method::GET || req.method() == Method::HEAD;
    if req.uri().path() == "/cacert.crt" && readable {
        return certificate::cacert(&app.certs, req.uri().query());
    }
    // ACME http-01 (RFC 8555 section 8.3): the key authorization, while an enrollment runs.
    if let Some(answer) = readable.then(|| app.http01.answer(req.uri().path())).flatten() {
        return http::file("application/octet-stream", answer, None);
    }
    let host = request_host(req.headers()).unwrap_or_else(|| "camera.local".to_owned());
    let port = app.web.https.port();
    let authority = if port == 443 { host } else { format!("{host}:{port}") };
    let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
    if let Ok(location) = HeaderValue::from_str(&format!("https://{authority}{path}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// The host a request was sent to (its `Host` header without the port), if plausible.
pub fn request_host(headers: &hyper::HeaderMap) -> Option<String> {
    headers.get(header::HOST).and_then(|h| h.to_str().ok()).and_then(http::host_without_port)
}

/// HTTPS: every route.
pub async fn handle_https(app: Arc<App>, peer: IpAddr, req: Request<Incoming>) -> Response<Body> {
    let mut response = route(&app, peer, req).await.unwrap_or_else(ApiError::into_response);
    http::secure_headers(response.headers_mut());
    response
}

async fn route(app: &Arc<App>, peer: IpAddr, req: Request<Incoming>) -> ApiResult {
    let path = req.uri().path();
    let route = match routes::lookup(path, req.method()) {
        routes::Lookup::Found(route) => route,
        routes::Lookup::WrongMethod(allow) => {
            return Err(ApiError::MethodNotAllowed { method: req.method().to_string(), path: path.to_owned(), allow })
        }
        routes::Lookup::NotFound => return Err(ApiError::NotFound { path: path.to_owned() }),
    };
    if route.verb != routes::Verb::Get {
        http::refuse_cross_site(req.headers())?;
    }
    if route.access == routes::Access::Admin {
        access::authorize(app, peer, req.headers(), route.verb != routes::Verb::Get).await?;
    }
    dispatch(route.endpoint, app, peer, req).await
}

async fn dispatch(endpoint: Endpoint, app: &Arc<App>, peer: IpAddr, req: Request<Incoming>) -> ApiResult {
    match endpoint {
        Endpoint::Page => http::asset(&assets::INDEX_HTML, req.headers()),
        Endpoint::Script => http::asset(&assets::APP_JS, req.headers()),
        Endpoint::Style => http::asset(&assets::APP_CSS, req.headers()),
        Endpoint::CaCertificate => Ok(certificate::cacert(&app.certs, req.uri().query())),
        Endpoint::Session => Ok(account::session(app, req.headers())),
        Endpoint::Events => events::list(app, req.uri().query()).await,
        Endpoint::Setup => account::setup(app, peer, req).await,
        Endpoint::Login => account::login(app, peer, req).await,
        Endpoint::Logout => Ok(account::logout(app, req.headers())),
        Endpoint::CertificateStatus => certificate::status(app, request_host(req.headers())).await,
        Endpoint::Upload(role) => certificate::upload(app, peer, req, role).await,
        Endpoint::Restore(role) => certificate::restore(app, peer, role).await,
        Endpoint::RequestDownload(role) => request::download(app, role),
        Endpoint::RequestCreate(role) => request::create(app, peer, req, role).await,
        Endpoint::EnrollmentStatus(role) => enrollment::status(app, role).await,
        Endpoint::EnrollmentConfigure(role) => enrollment::configure(app, peer, req, role).await,
        Endpoint::EnrollmentStop(role) => enrollment::stop(app, peer, role).await,
        Endpoint::Dot1xStatus => dot1x::status(app).await,
        Endpoint::Dot1xConfigure => dot1x::configure(app, peer, req).await,
    }
}
