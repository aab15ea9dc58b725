//! A small async HTTP/1.1 client for talking to a site's CA (ACME and SCEP).
//!
//! Built on what the camera already ships: hyper 1's `client::conn::http1` over a tokio
//! `TcpStream` or a tokio-rustls client stream (ring provider, TLS 1.2 and 1.3). HTTPS is always
//! verified against the trust anchors the caller gives; there is no way to turn that off. One
//! connection per request (a CA conversation is a handful of requests), answers are size-capped,
//! redirects are returned to the caller, never followed.

mod error;
mod url;

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use rustls::client::WebPkiServerVerifier;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub use crate::error::{Error, TimeoutPhase, VerificationFailure};
pub use crate::url::{Host, Scheme, Url, MAX_URL_LEN};
pub use hyper::{header, HeaderMap, Method, StatusCode};

/// Default cap on a response body.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
/// Default time allowed for name resolution + TCP connect + TLS handshake.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time allowed for a whole request, answer included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Sent when the caller sets no `User-Agent` (RFC 8555 section 6.1 asks clients to send one).
pub const DEFAULT_USER_AGENT: &str = concat!("camera-https/", env!("CARGO_PKG_VERSION"));

/// At most this many addresses of a DNS name are tried.
const MAX_ADDRESSES_TRIED: usize = 8;

/// A request: method, URL, headers and body.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Request {
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request { method, url: url.into(), headers: HeaderMap::new(), body: Bytes::new() }
    }

    /// Adds a header (several values of one name are all sent).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }
}

/// An answer: status, headers and the whole (capped) body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    /// The first value of a header, if present and visible ASCII.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The client. Cheap to clone; holds the TLS configuration and the limits.
#[derive(Clone)]
pub struct HttpClient {
    tls: Option<Arc<rustls::ClientConfig>>,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_body: usize,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("https", &self.tls.is_some())
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_body", &self.max_body)
            .finish()
    }
}

impl HttpClient {
    /// A client for `http://` URLs only: an `https://` URL fails with [`Error::NoTrustAnchor`].
    pub fn plain_http_only() -> Self {
        HttpClient {
            tls: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// A client that accepts HTTPS servers whose certificate chains to one of `anchors` (DER).
    pub fn with_trust_anchors<'a>(anchors: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, Error> {
        let mut roots = RootCertStore::empty();
        for (i, der) in anchors.into_iter().enumerate() {
            roots.add(CertificateDer::from(der)).map_err(|e| Error::BadTrustAnchor {
                reason: format!("certificate {} is not a usable CA certificate ({e})", i + 1),
            })?;
        }
        if roots.is_empty() {
            return Err(Error::BadTrustAnchor { reason: "no certificate was given".into() });
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| Error::BadTrustAnchor { reason: e.to_string() })?;
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| Error::BadTrustAnchor { reason: e.to_string() })?
            .with_webpki_verifier(verifier)
            .with_no_client_auth();
        Ok(HttpClient { tls: Some(Arc::new(config)), ..Self::plain_http_only() })
    }

    /// Time allowed for name resolution, TCP connect and TLS handshake (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for a whole request (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Largest response body accepted (default 1 MiB).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    pub fn max_body_limit(&self) -> usize {
        self.max_body
    }

    pub async fn get(&self, url: &str) -> Result<Response, Error> {
        self.send(Request::new(Method::GET, url)).await
    }

    pub async fn head(&self, url: &str) -> Result<Response, Error> {
        self.send(Request::new(Method::HEAD, url)).await
    }

    pub async fn post(&self, url: &str, content_type: HeaderValue, body: impl Into<Bytes>) -> Result<Response, Error> {
        self.send(Request::new(Method::POST, url).header(hyper::header::CONTENT_TYPE, content_type).body(body)).await
    }

    /// Sends `request` on a new connection and reads the whole answer. Redirects are not followed.
    pub async fn send(&self, request: Request) -> Result<Response, Error> {
        let url = Url::parse(&request.url)?;
        if url.scheme() == Scheme::Https && self.tls.is_none() {
            return Err(Error::NoTrustAnchor { url: url.to_string() });
        }
        let host = url.authority();
        let http_request = build_request(&url, request)?;
        match tokio::time::timeout(self.request_timeout, self.exchange(&url, http_request)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout { host, phase: TimeoutPhase::Request, after: self.request_timeout }),
        }
    }

    async fn exchange(&self, url: &Url, request: hyper::Request<Full<Bytes>>) -> Result<Response, Error> {
        let host = url.authority();
        let connecting = async {
            let tcp = connect_tcp(url).await?;
            match (&self.tls, url.scheme()) {
                (Some(config), Scheme::Https) => {
                    let name = match url.host() {
                        Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
                        Host::Dns(name) => ServerName::try_from(name.clone()).map_err(|_| Error::BadUrl {
                            url: url.to_string(),
                            reason: "the host name is not valid",
                        })?,
                    };
                    let tls = tokio_rustls::TlsConnector::from(config.clone())
                        .connect(name, tcp)
                        .await
                        .map_err(|e| tls_error(&host, e))?;
                    Ok(Stream::Tls(Box::new(tls)))
                }
                _ => Ok(Stream::Plain(tcp)),
            }
        };
        let stream = match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(stream) => stream?,
            Err(_) => return Err(Error::Timeout { host, phase: TimeoutPhase::Connect, after: self.connect_timeout }),
        };
        match stream {
            Stream::Plain(s) => http1_exchange(s, request, &host, self.max_body).await,
            Stream::Tls(s) => http1_exchange(*s, request, &host, self.max_body).await,
        }
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

fn build_request(url: &Url, request: Request) -> Result<hyper::Request<Full<Bytes>>, Error> {
    let host_header = HeaderValue::from_str(&url.host_header())
        .map_err(|_| Error::BadUrl { url: url.to_string(), reason: "the host cannot be sent in a Host header" })?;
    let mut builder = hyper::Request::builder().method(request.method).uri(url.path_and_query());
    let headers = builder
        .headers_mut()
        .ok_or(Error::BadUrl { url: url.to_string(), reason: "the path cannot be sent on a request line" })?;
    for (name, _) in request.headers.iter() {
        if name == HOST || name == CONTENT_LENGTH || name == hyper::header::TRANSFER_ENCODING {
            return Err(Error::BadRequest { name: name.to_string(), reason: "the client sets it itself" });
        }
    }
    *headers = request.headers;
    headers.insert(HOST, host_header);
    if !headers.contains_key(USER_AGENT) {
        headers.insert(USER_AGENT, HeaderValue::from_static(DEFAULT_USER_AGENT));
    }
    builder
        .body(Full::new(request.body))
        .map_err(|_| Error::BadUrl { url: url.to_string(), reason: "the path cannot be sent on a request line" })
}

async fn connect_tcp(url: &Url) -> Result<TcpStream, Error> {
    let addrs: Vec<SocketAddr> = match url.host() {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, url.port())],
        Host::Dns(name) => {
            let found = tokio::net::lookup_host((name.as_str(), url.port()))
                .await
                .map_err(|e| Error::Dns { host: name.clone(), source: Some(e) })?;
            let addrs: Vec<SocketAddr> = found.take(MAX_ADDRESSES_TRIED).collect();
            if addrs.is_empty() {
                return Err(Error::Dns { host: name.clone(), source: None });
            }
            addrs
        }
    };
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                // Requests are small and written at once; do not wait for ACKs of the headers.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = Some((addr, e)),
        }
    }
    let (addr, source) = last.unwrap_or_else(|| {
        (SocketAddr::from(([0, 0, 0, 0], url.port())), std::io::Error::other("no address to connect to"))
    });
    Err(Error::Connect { addr: addr.to_string(), source })
}

fn tls_error(host: &str, e: std::io::Error) -> Error {
    let is_rustls = e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>());
    if is_rustls {
        let kind = e.kind();
        if let Some(inner) = e.into_inner() {
            if let Ok(rustls_error) = inner.downcast::<rustls::Error>() {
                let rustls_error = *rustls_error;
                if let Some(reason) = VerificationFailure::from_rustls(&rustls_error) {
                    return Error::CertificateVerification { host: host.to_owned(), reason, source: rustls_error };
                }
                return Error::Tls { host: host.to_owned(), source: std::io::Error::new(kind, rustls_error) };
            }
        }
        return Error::Tls { host: host.to_owned(), source: std::io::Error::from(kind) };
    }
    Error::Tls { host: host.to_owned(), source: e }
}

async fn http1_exchange<S>(
    stream: S,
    request: hyper::Request<Full<Bytes>>,
    host: &str,
    max_body: usize,
) -> Result<Response, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http = |source| Error::Http { host: host.to_owned(), source };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(http)?;
    let exchange = async move {
        let response = sender.send_request(request).await.map_err(http)?;
        let (parts, mut body) = response.into_parts();
        let too_large = || Error::BodyTooLarge { host: host.to_owned(), limit: max_body };
        let announced = parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if announced.is_some_and(|n| n > max_body as u64) {
            return Err(too_large());
        }
        let mut collected = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.map_err(http)?.into_data() {
                if collected.len() + data.len() > max_body {
                    return Err(too_large());
                }
                collected.extend_from_slice(&data);
            }
        }
        Ok(Response { status: parts.status, headers: parts.headers, body: Bytes::from(collected) })
    };
    // The connection future does the I/O; drive it alongside the exchange without spawning a task,
    // so nothing outlives this call. It may finish first (the server closed after answering).
    let mut exchange = pin!(exchange);
    let mut connection = pin!(connection);
    let mut connection_done = false;
    loop {
        tokio::select! {
            result = &mut exchange => return result,
            done = &mut connection, if !connection_done => {
                connection_done = true;
                done.map_err(http)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_without_anchor_is_refused_before_any_connection() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let err = rt.block_on(HttpClient::plain_http_only().get("https://127.0.0.1:1/dir")).unwrap_err();
        assert!(matches!(err, Error::NoTrustAnchor { .. }), "{err:?}");
        assert!(err.to_string().contains("no trust anchor is configured"), "{err}");
    }

    #[test]
    fn trust_anchor_input_is_checked() {
        for (input, want) in [
            (&[0x30, 0x03, 0x02, 0x01, 0x01][..], "not a usable CA certificate"),
            (b"AAAA", "not a usable CA certificate"),
        ] {
            let err = HttpClient::with_trust_anchors([input]).unwrap_err();
            assert!(matches!(err, Error::BadTrustAnchor { .. }) && err.to_string().contains(want), "{err}");
        }
        let none = HttpClient::with_trust_anchors(std::iter::empty()).unwrap_err();
        assert!(none.to_string().contains("no certificate was given"), "{none}");
    }

    #[test]
    fn caller_cannot_forge_framing_headers() {
        let url = Url::parse("http://127.0.0.1/x").unwrap();
        let req = Request::new(Method::POST, "http://127.0.0.1/x")
            .header(CONTENT_LENGTH, HeaderValue::from_static("0"))
            .body("abc");
        assert!(matches!(build_request(&url, req), Err(Error::BadRequest { .. })));
        let ok = build_request(&url, Request::new(Method::GET, "http://127.0.0.1/x")).unwrap();
        assert_eq!(ok.headers()[HOST], "127.0.0.1");
        assert_eq!(ok.headers()[USER_AGENT], DEFAULT_USER_AGENT);
        assert_eq!(ok.uri(), "/x");
    }

    #[test]
    fn verification_failures_read_as_sentences() {
        let e = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let reason = VerificationFailure::from_rustls(&e).unwrap();
        let err = Error::CertificateVerification { host: "ca:443".into(), reason, source: e };
        assert_eq!(
            err.to_string(),
            "the server's certificate is not signed by the configured trust anchor (server ca:443)"
        );
        assert!(VerificationFailure::from_rustls(&rustls::Error::HandshakeNotComplete).is_none());
    }
}
