//! The client against real local servers: a hyper + tokio-rustls HTTPS server whose certificate
//! comes from a CA made here with rcgen, and raw TCP servers that misbehave on purpose.

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use camera_http_client::{Error, HttpClient, Method, Request, StatusCode, TimeoutPhase, VerificationFailure};
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, LOCATION};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

struct TestCa {
    cert_der: Vec<u8>,
    params: CertificateParams,
    key: KeyPair,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa { cert_der: cert.der().to_vec(), params, key }
    }

    /// A server certificate + key for `names` (IP addresses or DNS names).
    fn server_cert(&self, names: &[&str]) -> (Vec<u8>, Vec<u8>) {
        let params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &Issuer::from_params(&self.params, &self.key)).unwrap();
        (cert.der().to_vec(), key.serialize_der())
    }
}

async fn handler(req: hyper::Request<hyper::body::Incoming>) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let host = req.headers().get("host").map(|v| v.to_str().unwrap_or("?").to_owned()).unwrap_or_default();
    let agent = req.headers().get("user-agent").map(|v| v.to_str().unwrap_or("?").to_owned()).unwrap_or_default();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let response = match path.as_str() {
        "/hello" => hyper::Response::builder()
            .header("x-test", "yes")
            .body(Full::new(Bytes::from(format!("hello host={host} agent={agent}")))),
        "/echo" => hyper::Response::builder()
            .status(201)
            .body(Full::new(Bytes::from(format!("{method} {}", String::from_utf8_lossy(&body))))),
        "/big" => hyper::Response::builder().body(Full::new(Bytes::from(vec![b'x'; 2 * 1024 * 1024]))),
        "/redirect" => hyper::Response::builder().status(302).header(LOCATION, "/hello").body(Full::new(Bytes::new())),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            hyper::Response::builder().body(Full::new(Bytes::new()))
        }
        _ => hyper::Response::builder().status(404).body(Full::new(Bytes::new())),
    };
    Ok(response.unwrap())
}

/// Starts an HTTPS server on `bind` with `(cert, key)`; returns its address.
async fn https_server(bind: &str, cert: (Vec<u8>, Vec<u8>)) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(cert.0)], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.1)))
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), hyper::service::service_fn(handler))
                    .await;
            });
        }
    });
    addr
}

async fn http_server(bind: &str) -> SocketAddr {
    let listener = TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), hyper::service::service_fn(handler))
                    .await;
            });
        }
    });
    addr
}

/// A TCP server that reads the request head and then writes `answer` (or nothing, and holds the
/// connection, when `answer` is empty).
async fn raw_server(answer: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                if answer.is_empty() {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    return;
                }
                let _ = tcp.write_all(answer).await;
                // Chunked oversize test: keep sending until the client gives up.
                if answer.ends_with(b"\r\n\r\n") && answer.windows(7).any(|w| w == b"chunked") {
                    let chunk = format!("{:x}\r\n{}\r\n", 65536, "y".repeat(65536));
                    for _ in 0..64 {
                        if tcp.write_all(chunk.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    let _ = tcp.write_all(b"0\r\n\r\n").await;
                }
            });
        }
    });
    addr
}

fn text(body: &Bytes) -> &str {
    std::str::from_utf8(body).unwrap()
}

#[tokio::test]
async fn https_with_the_right_anchor_works_get_post_head() {
    let ca = TestCa::new("Test CA");
    let addr = https_server("127.0.0.1:0", ca.server_cert(&["127.0.0.1"])).await;
    let client = HttpClient::with_trust_anchors([ca.cert_der.as_slice()]).unwrap();

    let r = client.get(&format!("https://{addr}/hello")).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header_str("x-test"), Some("yes"));
    assert_eq!(text(&r.body), format!("hello host={addr} agent={}", camera_http_client::DEFAULT_USER_AGENT));

    let r = client
        .post(&format!("https://{addr}/echo"), HeaderValue::from_static("application/jose+json"), "{\"a\":1}")
        .await
        .unwrap();
    assert_eq!((r.status, text(&r.body)), (StatusCode::CREATED, "POST {\"a\":1}"));

    let r = client.head(&format!("https://{addr}/hello")).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());
    assert_eq!(r.header_str("x-test"), Some("yes"));

    // A DER anchor works the same.
    let der_client = HttpClient::with_trust_anchors([ca.cert_der.as_slice()]).unwrap();
    let r = der_client
        .send(
            Request::new(Method::GET, format!("https://{addr}/hello"))
                .header(hyper::header::USER_AGENT, HeaderValue::from_static("custom/1")),
        )
        .await
        .unwrap();
    assert!(text(&r.body).ends_with("agent=custom/1"), "{}", text(&r.body));
}

#[tokio::test]
async fn a_wrong_trust_anchor_fails_with_a_sentence_naming_the_cause() {
    let real = TestCa::new("Real CA");
    let other = TestCa::new("Other CA");
    let addr = https_server("127.0.0.1:0", real.server_cert(&["127.0.0.1"])).await;
    let client = HttpClient::with_trust_anchors([other.cert_der.as_slice()]).unwrap();
    let err = client.get(&format!("https://{addr}/hello")).await.unwrap_err();
    match &err {
        Error::CertificateVerification { reason: VerificationFailure::NotSignedByTrustAnchor, .. } => {}
        other => panic!("expected a verification failure, got {other:?}"),
    }
    assert!(err.is_certificate_verification());
    assert_eq!(
        err.to_string(),
        format!("the server's certificate is not signed by the configured trust anchor (server {addr})")
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let ca = TestCa::new("Test CA");
    let addr = https_server("127.0.0.1:0", ca.server_cert(&["10.9.9.9", "ca.example.home.arpa"])).await;
    let client = HttpClient::with_trust_anchors([ca.cert_der.as_slice()]).unwrap();
    let err = client.get(&format!("https://{addr}/hello")).await.unwrap_err();
    assert!(matches!(err, Error::CertificateVerification { reason: VerificationFailure::WrongName, .. }), "{err:?}");
    assert!(err.to_string().contains("does not name the address"), "{err}");
}

#[tokio::test]
async fn ipv6_loopback_and_dns_names_work() {
    let ca = TestCa::new("Test CA");
    let addr6 = https_server("[::1]:0", ca.server_cert(&["::1"])).await;
    let client = HttpClient::with_trust_anchors([ca.cert_der.as_slice()]).unwrap();
    let r = client.get(&format!("https://[::1]:{}/hello", addr6.port())).await.unwrap();
    assert!(text(&r.body).starts_with(&format!("hello host=[::1]:{}", addr6.port())), "{}", text(&r.body));

    // "localhost" resolves through /etc/hosts (no DNS traffic); the certificate names it.
    let addr4 = https_server("127.0.0.1:0", ca.server_cert(&["localhost"])).await;
    let r = client.get(&format!("https://localhost:{}/hello", addr4.port())).await.unwrap();
    assert!(text(&r.body).starts_with(&format!("hello host=localhost:{}", addr4.port())));

    let plain = http_server("127.0.0.1:0").await;
    let r = HttpClient::plain_http_only().get(&format!("http://localhost:{}/hello", plain.port())).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let plain = http_server("127.0.0.1:0").await;
    let r = HttpClient::plain_http_only().get(&format!("http://{plain}/redirect")).await.unwrap();
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.header_str("location"), Some("/hello"));
}

#[tokio::test]
async fn oversize_bodies_are_refused_whether_announced_or_chunked() {
    let plain = http_server("127.0.0.1:0").await;
    let client = HttpClient::plain_http_only();
    let err = client.get(&format!("http://{plain}/big")).await.unwrap_err();
    assert!(matches!(err, Error::BodyTooLarge { limit: 1048576, .. }), "{err:?}");
    assert!(err.to_string().contains("larger than the limit of 1048576 bytes"), "{err}");
    // A raised limit lets the same answer through.
    let r = client.clone().max_body(3 * 1024 * 1024).get(&format!("http://{plain}/big")).await.unwrap();
    assert_eq!(r.body.len(), 2 * 1024 * 1024);

    // No Content-Length: the cap applies while reading.
    let chunked = raw_server(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").await;
    let err = client.clone().max_body(100_000).get(&format!("http://{chunked}/")).await.unwrap_err();
    assert!(matches!(err, Error::BodyTooLarge { limit: 100_000, .. }), "{err:?}");
}

#[tokio::test]
async fn a_server_that_does_not_answer_times_out() {
    // TCP accepted, no TLS ServerHello: the connect phase (which includes the handshake) times out.
    let silent = raw_server(b"").await;
    let ca = TestCa::new("Test CA");
    let client = HttpClient::with_trust_anchors([ca.cert_der.as_slice()]).unwrap();
    let started = Instant::now();
    let err = client
        .clone()
        .connect_timeout(Duration::from_millis(300))
        .get(&format!("https://{silent}/"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { phase: TimeoutPhase::Connect, .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Connected, request sent, no answer: the whole-request deadline.
    let plain = http_server("127.0.0.1:0").await;
    let started = Instant::now();
    let err = HttpClient::plain_http_only()
        .request_timeout(Duration::from_millis(400))
        .get(&format!("http://{plain}/slow"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { phase: TimeoutPhase::Request, .. }), "{err:?}");
    assert!(err.to_string().contains("did not answer in time"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_server_that_is_down_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = HttpClient::plain_http_only().get(&format!("http://{addr}/")).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("could not connect to {addr} (is the server running and reachable?)"));
}

#[tokio::test]
async fn garbage_instead_of_http_is_a_protocol_error() {
    let garbage = raw_server(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").await;
    let err = HttpClient::plain_http_only().get(&format!("http://{garbage}/")).await.unwrap_err();
    assert!(matches!(err, Error::Http { .. }), "{err:?}");
}

#[tokio::test]
async fn https_to_a_plain_http_server_is_a_tls_error() {
    let plain = http_server("127.0.0.1:0").await;
    let ca = TestCa::new("Test CA");
    let client = HttpClient::with_trust_anchors([ca.cert_der.as_slice()]).unwrap();
    let err = client.get(&format!("https://{plain}/hello")).await.unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
}
