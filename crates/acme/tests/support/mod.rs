//! A real Pebble (and, when asked, pebble-challtestsrv as its DNS server) on loopback, started once
//! per test file, plus the challenge responder the tests' "camera" runs: an HTTP server for
//! http-01 and a rustls server whose resolver answers only ClientHellos offering `acme-tls/1`.
//!
//! Pebble validates for real (no PEBBLE_VA_ALWAYS_VALID); PEBBLE_VA_NOSLEEP only removes its
//! artificial delay. Every process started here gets SIGKILL when the fixture thread dies.

#![allow(clippy::unwrap_used, dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use camera_acme::{ChallengeAnswer, ChallengeResponder, Identifier};
use camera_http_client::HttpClient;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The loopback addresses the camera's responder listens on (each test uses its own, so tests
/// running at once never fight over one tls-alpn-01 certificate).
pub const RESPONDER_V4: [&str; 6] = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"];

#[derive(Debug, Default, Clone)]
pub struct PebbleSpec {
    pub eab_keys: Vec<(&'static str, &'static str)>,
    pub validity_secs: Option<u64>,
    pub domain_blocklist: Vec<&'static str>,
    /// Start pebble-challtestsrv as Pebble's DNS server, answering A queries with this address.
    pub dns_default_ipv4: Option<&'static str>,
    /// PEBBLE_WFE_NONCEREJECT (Pebble's default, 5 %, when None).
    pub nonce_reject_percent: Option<u32>,
}

pub struct Pebble {
    pub directory: String,
    pub management: String,
    /// The test CA that signed Pebble's own HTTPS certificate (the client's trust anchor).
    pub tls_ca_pem: String,
    pub answers: Arc<Answers>,
    pub dir: PathBuf,
    pub http_port: u16,
    pub tls_port: u16,
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
    pub fn new(pebble: &Pebble) -> Responder {
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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

/// Pebble's HTTPS certificate and the CA that signed it, made here.
fn pebble_tls_files(dir: &Path) -> String {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Pebble test TLS CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "::1".to_owned(), "localhost".to_owned()]).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &rcgen::Issuer::from_params(&ca_params, &ca_key)).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    ca_cert.pem()
}

fn spawn_dying_with_this_thread(cmd: &mut Command, log: &Path) -> std::process::Child {
    let out = std::fs::File::create(log).unwrap();
    cmd.stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(out);
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which is
    // async-signal-safe; it allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
    cmd.spawn().unwrap()
}

/// Earlier runs leave their directory (certificates, Pebble's log) for a look after a failure;
/// drop those whose process is gone.
fn remove_dirs_of_finished_runs(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("pebble-").and_then(|rest| rest.rsplit('-').next()) else { continue };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Starts the fixture on a thread that lives as long as the test process: a tokio runtime with the
/// responder, Pebble (and challtestsrv). Returns once Pebble's directory answers.
pub fn start(spec: PebbleSpec, tag: &str) -> Pebble {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    remove_dirs_of_finished_runs(&tmp);
    let dir = tmp.join(format!("pebble-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let tls_ca_pem = pebble_tls_files(&dir);
    let (acme_port, management_port, http_port, tls_port) = (free_port(), free_port(), free_port(), free_port());
    let mut pebble_config = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{acme_port}"),
        "managementListenAddress": format!("127.0.0.1:{management_port}"),
        "certificate": dir.join("cert.pem"),
        "privateKey": dir.join("key.pem"),
        "httpPort": http_port,
        "tlsPort": tls_port,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": !spec.eab_keys.is_empty(),
        "domainBlocklist": spec.domain_blocklist,
    }});
    if !spec.eab_keys.is_empty() {
        pebble_config["pebble"]["externalAccountMACKeys"] =
            spec.eab_keys.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect();
    }
    if let Some(secs) = spec.validity_secs {
        pebble_config["pebble"]["certificateValidityPeriod"] = serde_json::json!(secs);
    }
    std::fs::File::create(dir.join("pebble.json")).unwrap().write_all(pebble_config.to_string().as_bytes()).unwrap();

    let answers = Arc::new(Answers::default());
    let (tx, rx) = std::sync::mpsc::channel();
    let thread_answers = answers.clone();
    let thread_dir = dir.clone();
    let thread_ca = tls_ca_pem.clone();
    std::thread::Builder::new()
        .name(format!("pebble-fixture-{tag}"))
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(serve_responder(thread_answers, http_port, tls_port));
            let mut pebble = Command::new("/usr/bin/pebble");
            pebble.arg("-config").arg(thread_dir.join("pebble.json")).env("PEBBLE_VA_NOSLEEP", "1");
            pebble.env_remove("PEBBLE_VA_ALWAYS_VALID");
            if let Some(p) = spec.nonce_reject_percent {
                pebble.env("PEBBLE_WFE_NONCEREJECT", p.to_string());
            }
            let mut children = Vec::new();
            if let Some(ipv4) = spec.dns_default_ipv4 {
                let (dns_port, dns_management) = (free_port(), free_port());
                let mut dns = Command::new("/usr/bin/pebble-challtestsrv");
                dns.args(["-dns01", &format!("127.0.0.1:{dns_port}")])
                    .args(["-management", &format!("127.0.0.1:{dns_management}")])
                    .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
                    .args(["-defaultIPv4", ipv4, "-defaultIPv6", ""]);
                children.push(spawn_dying_with_this_thread(&mut dns, &thread_dir.join("challtestsrv.log")));
                pebble.args(["-dnsserver", &format!("127.0.0.1:{dns_port}")]);
            }
            children.push(spawn_dying_with_this_thread(&mut pebble, &thread_dir.join("pebble.log")));
            let directory = format!("https://127.0.0.1:{acme_port}/dir");
            let client = client_trusting(&thread_ca).connect_timeout(Duration::from_secs(1));
            let started = Instant::now();
            loop {
                if rt.block_on(client.get(&directory)).is_ok_and(|r| r.status.is_success()) {
                    break;
                }
                let log = std::fs::read_to_string(thread_dir.join("pebble.log")).unwrap_or_default();
                assert!(started.elapsed() < Duration::from_secs(30), "Pebble did not start:\n{log}");
                std::thread::sleep(Duration::from_millis(50));
            }
            tx.send(()).unwrap();
            rt.block_on(std::future::pending::<()>());
        })
        .unwrap();
    rx.recv().expect("the Pebble fixture failed to start (see the panic above)");

    let fixture = Pebble {
        directory: format!("https://127.0.0.1:{acme_port}/dir"),
        management: format!("https://127.0.0.1:{management_port}"),
        tls_ca_pem,
        answers,
        dir,
        http_port,
        tls_port,
    };
    fixture
}

/// A client trusting the certificates of a PEM file (Pebble's TLS CA).
pub fn client_trusting(pem: &str) -> HttpClient {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<_, _>>().unwrap();
    HttpClient::with_trust_anchors(certs.iter().map(|c| c.as_ref())).unwrap()
}

impl Pebble {
    pub fn client(&self) -> HttpClient {
        client_trusting(&self.tls_ca_pem)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pebble.log")).unwrap_or_default()
    }

    /// Pebble's root for issued certificates (regenerated at each start), PEM.
    pub async fn root_pem(&self) -> String {
        let r = self.client().get(&format!("{}/roots/0", self.management)).await.unwrap();
        assert!(r.status.is_success());
        String::from_utf8(r.body.to_vec()).unwrap()
    }
}

/// A CSR for `identifiers`, with a fresh P-256 key (as the camera would make it).
pub fn csr_for(identifiers: &[Identifier]) -> Vec<u8> {
    let names: Vec<String> = identifiers.iter().map(|i| i.to_string()).collect();
    let params = rcgen::CertificateParams::new(names).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    params.serialize_request(&key).unwrap().der().to_vec()
}

fn pem(der: &[u8]) -> String {
    use base64ct::{Base64, Encoding};
    let b64 = Base64::encode_string(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
}

/// `openssl verify` of the chain (leaf first) against `root_pem`; panics with openssl's words if it fails.
pub fn openssl_verify(dir: &Path, name: &str, chain: &[Vec<u8>], root_pem: &str) {
    let leaf = dir.join(format!("{name}-leaf.pem"));
    let untrusted = dir.join(format!("{name}-intermediates.pem"));
    let root = dir.join(format!("{name}-root.pem"));
    std::fs::write(&leaf, pem(&chain[0])).unwrap();
    std::fs::write(&untrusted, chain[1..].iter().map(|c| pem(c)).collect::<String>()).unwrap();
    std::fs::write(&root, root_pem).unwrap();
    let out = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&root)
        .arg("-untrusted")
        .arg(&untrusted)
        .arg(&leaf)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.trim().ends_with(": OK"), "openssl verify failed: {text}");
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
