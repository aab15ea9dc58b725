//! HTTP plumbing shared by the handlers: bounded body reads, JSON and file answers, the headers
//! every HTTPS answer carries, cookies, and the cross-site check.

use base64ct::Encoding;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::error::ApiError;
use crate::assets;

pub type Body = Full<Bytes>;

/// Largest certificate, key or PKCS#12 file accepted.
pub const MAX_FILE: usize = 64 * 1024;
/// Largest multipart upload: three fields and their headers.
pub const MAX_MULTIPART: usize = 3 * MAX_FILE + 8 * 1024;
/// Largest JSON request.
pub const MAX_JSON: usize = 16 * 1024;
/// Time allowed for a whole upload body (up to 200 KiB) to arrive.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Time allowed for a JSON body (up to 16 KiB, the only bodies anonymous clients may send).
const SMALL_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A JSON answer.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Body> {
    // Serialising our own structs cannot fail; an empty object is the harmless fallback.
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The body of every error answer.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub error: &'static str,
    pub message: &'a str,
}

impl ApiError {
    pub fn into_response(self) -> Response<Body> {
        let message = self.to_string();
        let mut response = json(self.status(), &ErrorBody { error: self.code(), message: &message });
        for (name, value) in self.headers() {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

/// A file answer (`download_name` makes browsers save it under that name).
pub fn file(content_type: &'static str, body: impl Into<Bytes>, download_name: Option<&'static str>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(name) = download_name {
        if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
        }
    }
    response
}

/// A file of the UI, gzip-compressed as stored; refused with 406 to a client that refuses gzip.
pub fn asset(asset: &assets::Asset, request: &HeaderMap) -> Result<Response<Body>, ApiError> {
    // Several Accept-Encoding lines are one list (RFC 9110 section 5.3).
    let lines: Vec<&str> = request.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).collect();
    let accept_encoding = (!lines.is_empty()).then(|| lines.join(","));
    if assets::refuses_gzip(accept_encoding.as_deref()) {
        return Err(ApiError::GzipRefused {});
    }
    let mut response = file(asset.content_type, Bytes::from_static(asset.gzip), None);
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    Ok(response)
}

/// Headers every HTTPS answer carries.
pub fn secure_headers(headers: &mut HeaderMap) {
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

/// Reads a body of at most `limit` bytes into memory that is wiped when dropped (bodies carry
/// passwords and keys). Hyper's own receive buffers are not ours to wipe (SECURITY.md).
pub async fn read_body(
    req: Request<Incoming>,
    limit: usize,
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    let too_large = || ApiError::TooLarge { what, limit_kib: limit / 1024 };
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    if declared.is_some_and(|len: usize| len > limit) {
        return Err(too_large());
    }
    // A client trickling its body must not hold a connection slot for long.
    let timeout = if limit <= MAX_JSON { SMALL_BODY_TIMEOUT } else { BODY_TIMEOUT };
    let collected = tokio::time::timeout(timeout, Limited::new(req.into_body(), limit).collect())
        .await
        .map_err(|_| ApiError::TooSlow { what })?;
    match collected {
        Ok(collected) => {
            // One copy, into a buffer sized up front, so no unwiped intermediate is left behind.
            let bytes = collected.to_bytes();
            let mut body = Zeroizing::new(Vec::with_capacity(bytes.len()));
            body.extend_from_slice(&bytes);
            Ok(body)
        }
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(too_large()),
        Err(_) => Err(ApiError::BadBody { what }),
    }
}

/// Whether the request says its body is JSON. A cross-site page cannot send that without a CORS
/// preflight, which this server never grants.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Reads and parses a JSON body of at most [`MAX_JSON`] bytes.
pub async fn read_json<T: for<'de> Deserialize<'de>>(req: Request<Incoming>) -> Result<T, ApiError> {
    read_json_up_to(req, MAX_JSON).await
}

/// Reads and parses a JSON body of at most `limit` bytes (a route whose body may carry
/// certificates).
pub async fn read_json_up_to<T: for<'de> Deserialize<'de>>(
    req: Request<Incoming>,
    limit: usize,
) -> Result<T, ApiError> {
    if !is_json(req.headers()) {
        return Err(ApiError::JsonRequired {});
    }
    let body = read_body(req, limit, "request").await?;
    parse_json(&body)
}

/// Parses a JSON request body as the routes do. Public for the fuzz targets in `fuzz/`.
pub fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadJson { detail: e.to_string() })
}

/// Browsers say where a request comes from; a change must come from the camera's own page (or
/// from a client that is not a browser page: curl sends neither header).
pub fn refuse_cross_site(headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return Err(ApiError::CrossSite {});
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        if origin.strip_prefix("https://") != Some(host) {
            return Err(ApiError::CrossSite {});
        }
    }
    Ok(())
}

/// The value of cookie `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The session cookie: HttpOnly, Secure, SameSite=Strict; `max_age` 0 deletes it.
pub fn session_cookie(name: &str, token: &str, max_age: u64) -> HeaderValue {
    let value = format!("{name}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age}");
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// `user:password` from an `Authorization: Basic` header, in wiped memory. `Ok(None)` when the
/// request has no Authorization header.
pub fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, Zeroizing<String>)>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| ApiError::BadAuth {})?;
    let encoded = value.strip_prefix("Basic ").ok_or(ApiError::UnsupportedAuth {})?;
    // Strict RFC 4648 (padding only at the end), constant time over the secret.
    let decoded = Zeroizing::new(base64ct::Base64::decode_vec(encoded.trim()).map_err(|_| ApiError::BadAuth {})?);
    let text = std::str::from_utf8(&decoded).map_err(|_| ApiError::BadAuth {})?;
    let (user, password) = text.split_once(':').ok_or(ApiError::BadAuth {})?;
    Ok(Some((user.to_owned(), Zeroizing::new(password.to_owned()))))
}

/// The host part of a Host header, if it is a plausible host name or address.
pub fn host_without_port(host: &str) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("")));
        }
        map
    }

    #[test]
    fn basic_auth_is_strict_base64() {
        let ok = headers(&[("authorization", "Basic YWRtaW46c2VjcmV0IHBhc3M=")]);
        let (user, password) = basic_credentials(&ok).ok().flatten().unwrap_or_default();
        assert_eq!((user.as_str(), password.as_str()), ("admin", "secret pass"));
        // Padding in the middle, stray characters and missing separators are refused.
        for bad in ["Basic YW=RtaW46c2VjcmV0", "Basic YWRtaW46c2VjcmV0*", "Basic YWRtaW4="] {
            assert!(
                matches!(basic_credentials(&headers(&[("authorization", bad)])), Err(ApiError::BadAuth {})),
                "{bad}"
            );
        }
        assert!(matches!(
            basic_credentials(&headers(&[("authorization", "Bearer x")])),
            Err(ApiError::UnsupportedAuth {})
        ));
        assert!(matches!(basic_credentials(&HeaderMap::new()), Ok(None)));
    }

    #[test]
    fn cross_site_requests_are_refused_and_same_origin_ones_pass() {
        assert!(refuse_cross_site(&headers(&[("sec-fetch-site", "cross-site")])).is_err());
        assert!(refuse_cross_site(&headers(&[("origin", "https://evil.example"), ("host", "10.0.0.5")])).is_err());
        assert!(refuse_cross_site(&headers(&[("origin", "https://10.0.0.5"), ("host", "10.0.0.5")])).is_ok());
        assert!(refuse_cross_site(&HeaderMap::new()).is_ok(), "curl sends neither header");
    }

    #[test]
    fn cookies_and_hosts() {
        let h = headers(&[("cookie", "a=1; camera_session=abc"), ("cookie", "b=2")]);
        assert_eq!(cookie(&h, "camera_session"), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(host_without_port("[fd00::5]:8443").as_deref(), Some("[fd00::5]"));
        assert_eq!(host_without_port("cam.local:443").as_deref(), Some("cam.local"));
        assert_eq!(host_without_port("evil\"host"), None);
    }
}
