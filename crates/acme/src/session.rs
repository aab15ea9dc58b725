//! One conversation with an ACME server: the directory, the nonce, signed requests (JWS ES256) with
//! retry on `badNonce`, problem documents turned into typed errors, and polling that honours
//! `Retry-After`.

use std::time::{Duration, Instant, SystemTime};

use camera_http_client::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use camera_http_client::{HttpClient, Method, Request, Response, Scheme, Url};

use crate::error::{AcmeError, Operation};
use crate::key::{b64, AccountKey};
use crate::wire::{self, Directory, Problem};
use crate::Options;

/// Longest `Replay-Nonce` accepted (RFC 8555 nonces are short base64url strings).
const MAX_NONCE: usize = 256;
/// Longest wait a `Retry-After` may ask for that is taken as given (a month); longer is capped.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30 * 24 * 3600);

pub(crate) struct Session<'a> {
    http: &'a HttpClient,
    key: &'a AccountKey,
    options: &'a Options,
    pub(crate) directory: Directory,
    directory_is_https: bool,
    nonce: Option<String>,
    pub(crate) kid: Option<String>,
    /// Requests re-sent after `badNonce` (reported in [`crate::Issued`]).
    pub(crate) bad_nonce_retries: u32,
}

pub(crate) enum Signer {
    /// `jwk` in the protected header: newAccount and account lookup.
    Jwk,
    /// `kid` (the account URL): every other request.
    Kid,
}

impl<'a> Session<'a> {
    pub(crate) async fn open(
        http: &'a HttpClient,
        directory_url: &str,
        key: &'a AccountKey,
        options: &'a Options,
    ) -> Result<Session<'a>, AcmeError> {
        let url = Url::parse(directory_url)
            .map_err(|e| AcmeError::InvalidRequest { reason: format!("the ACME directory URL is wrong: {e}") })?;
        let response = http.get(directory_url).await?;
        if !response.status.is_success() {
            return Err(status_error(Operation::Directory, &response));
        }
        let directory = wire::parse_directory(&response.body)
            .map_err(|source| AcmeError::Malformed { operation: Operation::Directory, source })?;
        let session = Session {
            http,
            key,
            options,
            directory,
            directory_is_https: url.scheme() == Scheme::Https,
            nonce: None,
            kid: None,
            bad_nonce_retries: 0,
        };
        for (kind, u) in [
            ("newNonce", session.directory.new_nonce.clone()),
            ("newAccount", session.directory.new_account.clone()),
            ("newOrder", session.directory.new_order.clone()),
        ] {
            session.check_url(kind, &u)?;
        }
        Ok(session)
    }

    /// Every URL the server hands out is followed only over https when the directory was on https.
    pub(crate) fn check_url(&self, kind: &'static str, url: &str) -> Result<(), AcmeError> {
        let parsed =
            Url::parse(url).map_err(|source| AcmeError::BadServerUrl { url_kind: kind, source: Box::new(source) })?;
        if self.directory_is_https && parsed.scheme() != Scheme::Https {
            return Err(AcmeError::InsecureUrl { url_kind: kind, url: camera_log::escape_bounded(url, 200) });
        }
        Ok(())
    }

    async fn new_nonce(&mut self) -> Result<String, AcmeError> {
        let url = self.directory.new_nonce.clone();
        let response = self.http.send(Request::new(Method::HEAD, url)).await?;
        if !response.status.is_success() {
            return Err(status_error(Operation::Nonce, &response));
        }
        replay_nonce(&response).ok_or(AcmeError::Malformed {
            operation: Operation::Nonce,
            source: wire::WireError::Invalid("Replay-Nonce header"),
        })
    }

    /// Sends a signed POST (`payload` None = POST-as-GET), retrying on `badNonce`. An error
    /// status becomes a typed error; a success is returned with its body for the caller to parse.
    pub(crate) async fn post(
        &mut self,
        operation: Operation,
        url: &str,
        payload: Option<&serde_json::Value>,
        signer: Signer,
        accept: Option<&'static str>,
    ) -> Result<Response, AcmeError> {
        let payload_b64 = match payload {
            Some(p) => b64(p.to_string().as_bytes()),
            None => String::new(),
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let nonce = match self.nonce.take() {
                Some(n) => n,
                None => self.new_nonce().await?,
            };
            let mut protected = serde_json::json!({"alg": "ES256", "nonce": nonce, "url": url});
            match signer {
                Signer::Jwk => {
                    let jwk: serde_json::Value = serde_json::from_str(self.key.jwk())
                        .map_err(|e| AcmeError::BadAccountKey { reason: e.to_string() })?;
                    protected["jwk"] = jwk;
                }
                Signer::Kid => {
                    let kid =
                        self.kid.clone().ok_or(AcmeError::InvalidRequest { reason: "no account URL yet".into() })?;
                    protected["kid"] = serde_json::Value::String(kid);
                }
            }
            let protected_b64 = b64(protected.to_string().as_bytes());
            let signature = self.key.sign(format!("{protected_b64}.{payload_b64}").as_bytes())?;
            let body = serde_json::json!({
                "protected": protected_b64,
                "payload": payload_b64,
                "signature": b64(&signature),
            })
            .to_string();
            let mut request = Request::new(Method::POST, url)
                .body(body)
                .header(CONTENT_TYPE, HeaderValue::from_static("application/jose+json"));
            if let Some(accept) = accept {
                request = request.header(ACCEPT, HeaderValue::from_static(accept));
            }
            let response = self.http.send(request).await?;
            self.nonce = replay_nonce(&response);
            if response.status.is_success() {
                return Ok(response);
            }
            let error = status_error(operation, &response);
            if error.is_problem("badNonce") && attempts <= self.options.bad_nonce_retries {
                self.bad_nonce_retries += 1;
                continue;
            }
            return Err(error);
        }
    }

    /// POST-as-GET `url` until `done` says the object is settled, sleeping between requests for the
    /// server's `Retry-After` or else a wait doubling from `first_poll_interval` to `poll_interval`
    /// (never less than [`crate::MIN_POLL_INTERVAL`]), for at most `options.max_wait` in total.
    pub(crate) async fn poll<T>(
        &mut self,
        operation: Operation,
        what: &'static str,
        url: &str,
        parse: fn(&[u8]) -> Result<T, wire::WireError>,
        done: impl Fn(&T) -> bool,
        mut on_wait: impl FnMut(Duration),
    ) -> Result<T, AcmeError> {
        let started = Instant::now();
        let mut backoff = self.options.first_poll_interval.min(self.options.poll_interval);
        loop {
            let response = self.post(operation, url, None, Signer::Kid, None).await?;
            let object = parse(&response.body).map_err(|source| AcmeError::Malformed { operation, source })?;
            if done(&object) {
                return Ok(object);
            }
            let asked = retry_after(&response);
            let wait = asked.unwrap_or(backoff).max(crate::MIN_POLL_INTERVAL);
            backoff = (backoff * 2).min(self.options.poll_interval);
            let waited = started.elapsed();
            if waited + wait > self.options.max_wait {
                return Err(AcmeError::Timeout { what, waited, retry_after: asked });
            }
            on_wait(wait);
            tokio::time::sleep(wait).await;
        }
    }
}

fn replay_nonce(response: &Response) -> Option<String> {
    let n = response.header_str("replay-nonce")?;
    let ok =
        !n.is_empty() && n.len() <= MAX_NONCE && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| n.to_owned())
}

/// `Retry-After` as seconds or an HTTP date (RFC 9110 section 10.2.3), capped.
pub(crate) fn retry_after(response: &Response) -> Option<Duration> {
    parse_retry_after(response.header_str("retry-after")?, SystemTime::now())
}

pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = if value.bytes().all(|b| b.is_ascii_digit()) && !value.is_empty() {
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX).min(MAX_RETRY_AFTER.as_secs()))
    } else {
        let when = httpdate::parse_http_date(value).ok()?;
        when.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// Turns an error answer into a typed error: a problem document when there is one, rate limiting
/// (the `rateLimited` type, 429, or 503 with `Retry-After`) as its own variant with the delay.
pub(crate) fn status_error(operation: Operation, response: &Response) -> AcmeError {
    let status = response.status.as_u16();
    let is_problem = response
        .header_str("content-type")
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("application/problem+json"));
    let problem: Option<Box<Problem>> =
        if is_problem { wire::parse_problem(&response.body).ok().map(Box::new) } else { None };
    let retry = retry_after(response);
    let rate_limited =
        problem.as_ref().is_some_and(|p| p.is("rateLimited")) || status == 429 || (status == 503 && retry.is_some());
    if rate_limited {
        return AcmeError::RateLimited { operation, retry_after: retry, problem };
    }
    match problem {
        Some(p) if p.is("externalAccountRequired") => AcmeError::ExternalAccountRequired { problem: Some(p) },
        Some(problem) => AcmeError::Problem { operation, problem },
        None => AcmeError::UnexpectedStatus {
            operation,
            status,
            content_type: response
                .header_str("content-type")
                .and_then(|ct| ct.split(';').next())
                .map(str::trim)
                .filter(|ct| !ct.is_empty())
                .map_or_else(|| "none".to_owned(), |ct| camera_log::escape_bounded(&ct.to_ascii_lowercase(), 64)),
            length: response.body.len(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use camera_http_client::{HeaderMap, StatusCode};

    fn response(status: u16, headers: &[(&'static str, &str)], body: &str) -> Response {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, v.parse().unwrap());
        }
        Response { status: StatusCode::from_u16(status).unwrap(), headers: map, body: body.to_owned().into() }
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("99999999999999999999999", now), Some(MAX_RETRY_AFTER));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn error_answers_become_typed_errors() {
        let problem = |t: &str| format!(r#"{{"type":"urn:ietf:params:acme:error:{t}","detail":"d {t}","status":400}}"#);
        let ct = ("content-type", "application/problem+json");

        let e = status_error(Operation::NewOrder, &response(400, &[ct], &problem("rejectedIdentifier")));
        assert!(matches!(&e, AcmeError::Problem { operation: Operation::NewOrder, .. }));
        assert_eq!(e.to_string(), "the ACME server refused the order: d rejectedIdentifier (rejectedIdentifier)");

        let e =
            status_error(Operation::NewOrder, &response(429, &[ct, ("retry-after", "3600")], &problem("rateLimited")));
        assert!(matches!(e, AcmeError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(3600)));
        assert_eq!(
            e.to_string(),
            "the ACME server is limiting requests and refused the order; it asks to retry in 3600 s: d rateLimited (rateLimited)"
        );
        let e = status_error(Operation::NewOrder, &response(503, &[("retry-after", "5")], "busy"));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(5)));
        assert!(matches!(
            status_error(Operation::NewOrder, &response(503, &[], "")),
            AcmeError::UnexpectedStatus { status: 503, .. }
        ));

        let e = status_error(Operation::NewAccount, &response(403, &[ct], &problem("externalAccountRequired")));
        assert!(matches!(e, AcmeError::ExternalAccountRequired { .. }));
        assert!(e.to_string().contains("requires an external account binding"));

        let e = status_error(Operation::Finalize, &response(500, &[("content-type", "text/html")], "<h1>oops</h1>"));
        assert_eq!(
            e.to_string(),
            "the ACME server answered the certificate request (finalize) with HTTP status 500 and no explanation \
             (content type \"text/html\", 13 bytes)"
        );
        // An error page is described, never quoted, even under the problem content type.
        const MARKER: &str = "INTRANET-PAGE-7f3a91";
        let page = format!("<html><title>{MARKER}</title><body>{MARKER}</body></html>");
        for content_type in ["text/html; charset=utf-8", "application/problem+json", "application/json"] {
            let e = status_error(Operation::Directory, &response(404, &[("content-type", content_type)], &page));
            assert!(matches!(&e, AcmeError::UnexpectedStatus { status: 404, length, .. } if *length == page.len()));
            assert!(!e.to_string().contains(MARKER) && !format!("{e:?}").contains(MARKER), "{e}");
        }
        let e = status_error(Operation::Finalize, &response(400, &[ct], "not json"));
        assert!(matches!(e, AcmeError::UnexpectedStatus { status: 400, .. }));
    }

    #[test]
    fn nonces_are_checked() {
        assert_eq!(replay_nonce(&response(200, &[("replay-nonce", "abc-_9")], "")).as_deref(), Some("abc-_9"));
        assert_eq!(replay_nonce(&response(200, &[("replay-nonce", "a\"b")], "")), None);
        assert_eq!(replay_nonce(&response(200, &[], "")), None);
        let long = "a".repeat(MAX_NONCE + 1);
        assert_eq!(replay_nonce(&response(200, &[("replay-nonce", &long)], "")), None);
    }
}
