//! A real Pebble on loopback (`camera_test_support::pebble`, validating for real), started once per
//! test file, plus the challenge responder the tests' "camera" runs: an HTTP server for http-01
//! and a rustls server whose resolver answers only ClientHellos offering `acme-tls/1`.

#![allow(clippy::unwrap_used, dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use camera_acme::{ChallengeAnswer, ChallengeResponder, Identifier};
use camera_http_client::HttpClient;
use camera_test_support::pebble::Pebble;
pub use camera_test_support::pebble::PebbleSpec;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The loopback addresses the camera's responder listens on (each test uses its own, so tests
/// running at once never fight over one tls-alpn-01 certificate).
pub const RESPONDER_V4: [&str; 6] = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"];

/// Pebble and the responder it validates against.
pub struct Fixture {
    pub pebble: Pebble,
    pub answers: Arc<Answers>,
}

impl std::ops::Deref for Fixture {
    type Target = Pebble;

    fn deref(&self) -> &Pebble {
        &self.pebble
    }
}

/// What the camera currently serves, shared by every test of the file.
#[derive(Default)]
pub struct Answers {
    http: Mutex<HashMap<String, String>>,
    tls: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    /// Requests the validation server made to the responder (proof that it really validated).
    pub http_hits: AtomicUsize,
    pub tls_hits: AtomicUsize,
}

impl std::fmt::Debug for Answers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Answers")
    }
}

/// One test's responder: publishes into the shared answers and records what it did.
pub struct Responder {
    answers: Arc<Answers>,
    pub published: Mutex<Vec<String>>,
    pub withdrawn: Mutex<Vec<String>>,
}

impl Responder {
    pub fn new(pebble: &Fixture) -> Responder {
        Responder { answers: pebble.answers.clone(), published: Mutex::default(), withdrawn: Mutex::default() }
    }

    fn label(answer: &ChallengeAnswer) -> String {
        format!("{}:{}", answer.challenge_type(), answer.identifier())
    }

    /// Every published answer was withdrawn, and nothing is left in the shared tables for it.
    pub fn assert_all_withdrawn(&self) {
        let mut published = self.published.lock().unwrap().clone();
        let mut withdrawn = self.withdrawn.lock().unwrap().clone();
        published.sort();
        withdrawn.sort();
        assert_eq!(published, withdrawn, "every published challenge answer must be withdrawn");
    }
}

impl ChallengeResponder for Responder {
    fn publish(&self, answer: &ChallengeAnswer) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        match answer {
            ChallengeAnswer::Http01 { token, key_authorization, .. } => {
                self.answers.http.lock().unwrap().insert(token.clone(), key_authorization.clone());
            }
            ChallengeAnswer::TlsAlpn01 { sni, certificate_der, key_pkcs8, .. } => {
                let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pkcs8.to_vec()));
                let signing = rustls::crypto::ring::sign::any_supported_type(&key)?;
                let certified = CertifiedKey::new(vec![CertificateDer::from(certificate_der.clone())], signing);
                self.answers.tls.lock().unwrap().insert(sni.clone(), Arc::new(certified));
            }
        }
        self.published.lock().unwrap().push(Self::label(answer));
        Ok(())
    }

    fn withdraw(&self, answer: &ChallengeAnswer) {
        match answer {
            ChallengeAnswer::Http01 { token, .. } => {
                self.answers.http.lock().unwrap().remove(token);
            }
            ChallengeAnswer::TlsAlpn01 { sni, .. } => {
                self.answers.tls.lock().unwrap().remove(sni);
            }
        }
        self.withdrawn.lock().unwrap().push(Self::label(answer));
    }
}

/// Picks the validation certificate only for `acme-tls/1`, by SNI, as camera-web's resolver will.
#[derive(Debug)]
struct AlpnResolver(Arc<Answers>);

impl ResolvesServerCert for AlpnResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let offers_acme = hello.alpn().is_some_and(|mut protocols| protocols.any(|p| p == camera_acme::ACME_TLS_ALPN));
        if !offers_acme {
            return None;
        }
        let found = self.0.tls.lock().unwrap().get(hello.server_name()?).cloned();
        if found.is_some() {
            self.0.tls_hits.fetch_add(1, Ordering::SeqCst);
        }
        found
    }
}

fn loopback_addrs() -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = RESPONDER_V4.iter().map(|a| a.parse().unwrap()).collect();
    v.push("::1".parse().unwrap());
    v
}

async fn serve_responder(answers: Arc<Answers>, http_port: u16, tls_port: u16) {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(AlpnResolver(answers.clone())));
    config.alpn_protocols = vec![camera_acme::ACME_TLS_ALPN.to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    for ip in loopback_addrs() {
        let http = tokio::net::TcpListener::bind(SocketAddr::new(ip, http_port)).await.unwrap();
        let answers = answers.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = http.accept().await else { return };
                let answers = answers.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let answers = answers.clone();
                        async move {
                            let token = req.uri().path().strip_prefix("/.well-known/acme-challenge/").unwrap_or("");
                            let found = answers.http.lock().unwrap().get(token).cloned();
                            let response = match found {
                                Some(key_authorization) => {
                                    answers.http_hits.fetch_add(1, Ordering::SeqCst);
                                    hyper::Response::new(Full::new(Bytes::from(key_authorization)))
                                }
                                None => {
                                    let mut r = hyper::Response::new(Full::new(Bytes::new()));
                                    *r.status_mut() = hyper::StatusCode::NOT_FOUND;
                                    r
                                }
                            };
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
                });
            }
        });
        let tls = tokio::net::TcpListener::bind(SocketAddr::new(ip, tls_port)).await.unwrap();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = tls.accept().await else { return };
                let acceptor = acceptor.clone();
                // The validator only checks the handshake; completing it is all the server does.
                tokio::spawn(async move {
                    if let Ok(mut stream) = acceptor.accept(tcp).await {
                        use tokio::io::AsyncWriteExt;
                        let _ = stream.shutdown().await;
                    }
                });
            }
        });
    }
}

/// Starts the fixture: the responder on a thread that lives as long as the test process (a tokio
/// runtime of its own), then Pebble validating against it. Returns once Pebble's directory answers.
pub fn start(spec: PebbleSpec) -> Fixture {
    let [http_port, tls_port] = camera_test_support::free_ports();
    let answers = Arc::new(Answers::default());
    let (listening, ready) = std::sync::mpsc::channel();
    let thread_answers = answers.clone();
    std::thread::Builder::new()
        .name("acme-responder".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(serve_responder(thread_answers, http_port, tls_port));
            listening.send(()).unwrap();
            rt.block_on(std::future::pending::<()>());
        })
        .unwrap();
    ready.recv().expect("the responder failed to start (see the panic above)");
    let pebble = Pebble::start(&PebbleSpec { http_port, tls_port, ..spec });
    Fixture { pebble, answers }
}

/// A client trusting the certificates of a PEM file (Pebble's TLS CA).
pub fn client_trusting(pem: &str) -> HttpClient {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<_, _>>().unwrap();
    HttpClient::with_trust_anchors(certs.iter().map(|c| c.as_ref())).unwrap()
}

impl Fixture {
    pub fn client(&self) -> HttpClient {
        client_trusting(&self.tls_ca_pem)
    }
}

/// A CSR for `identifiers`, with a fresh P-256 key (as the camera would make it).
pub fn csr_for(identifiers: &[Identifier]) -> Vec<u8> {
    let names: Vec<String> = identifiers.iter().map(|i| i.to_string()).collect();
    let params = rcgen::CertificateParams::new(names).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    params.serialize_request(&key).unwrap().der().to_vec()
}

/// `openssl verify` of the chain (leaf first) against Pebble's root; panics with openssl's words
/// if it fails.
pub fn openssl_verify(pebble: &Fixture, chain: &[Vec<u8>]) {
    let verified = camera_test_support::openssl_verify_der(chain, &pebble.root_pem(), &[]);
    assert!(verified.accepted && verified.said.trim().ends_with(": OK"), "openssl verify failed: {}", verified.said);
}

/// The leaf's subjectAltNames, as identifiers, sorted.
pub fn leaf_names(leaf_der: &[u8]) -> Vec<Identifier> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf_der).unwrap();
    let san = cert.subject_alternative_name().unwrap().expect("a subjectAltName").value;
    let mut names: Vec<Identifier> = san
        .general_names
        .iter()
        .map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Identifier::Dns(d.to_string()),
            x509_parser::extensions::GeneralName::IPAddress(b) if b.len() == 4 => {
                Identifier::Ip(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()))
            }
            x509_parser::extensions::GeneralName::IPAddress(b) => {
                Identifier::Ip(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()))
            }
            other => panic!("unexpected name {other:?}"),
        })
        .collect();
    names.sort_by_key(|i| i.to_string());
    names
}

/// notAfter - notBefore of the leaf, in seconds.
pub fn leaf_lifetime_secs(leaf_der: &[u8]) -> i64 {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf_der).unwrap();
    cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()
}

pub fn sorted(ids: &[Identifier]) -> Vec<Identifier> {
    let mut v = ids.to_vec();
    v.sort_by_key(|i| i.to_string());
    v
}

/// Options for tests: poll quickly (Pebble with NOSLEEP validates at once), give up in a minute.
pub fn fast_options() -> camera_acme::Options {
    camera_acme::Options {
        poll_interval: Duration::from_millis(200),
        max_wait: Duration::from_secs(60),
        ..Default::default()
    }
}

/// Progress sentences, collected.
#[derive(Default)]
pub struct Steps(pub Mutex<Vec<String>>);

impl Steps {
    pub fn record(&self, p: &camera_acme::Progress) {
        self.0.lock().unwrap().push(p.to_string());
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

pub fn hits(counter: &AtomicUsize) -> usize {
    counter.load(Ordering::SeqCst)
}
