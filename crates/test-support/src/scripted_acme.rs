//! A scripted ACME CA over HTTPS, for enrollment against a careless or hostile site CA and for a
//! fleet's load on its CA: it issues at once (orders are `ready`, no challenge) whatever it is
//! asked, but can leave a name out of the certificate, backdate it, or make it short-lived, and it
//! counts what the camera asks of it. It can announce ACME Renewal Information (RFC 9773) and
//! answer each certificate's CertID with a window set relative to the moment that certificate was
//! issued, counting the polls and recording each order's `replaces`; an incident
//! ([`ScriptedAcme::incident`]) moves every window issued so far into the past, as a CA does after
//! a revocation. It can go down ([`ScriptedAcme::set_down`]: connections refused, open ones cut)
//! and come back on the same address. Every request is logged with its time
//! ([`Counts::requests`]), every issue with its names and window ([`Counts::issues`]).
//!
//! Requests are not authenticated (the JWS payload is read, its signature is not checked): what is
//! under test is the camera's schedule, not the CA's checks.

// A fixture: whatever fails here (a port, a key, a lock a panicking test poisoned) fails the
// test, with the error `unwrap` prints.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64ct::Encoding;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// What the CA does to the certificates it issues.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// A name (as the camera writes it, e.g. `fd77::2`) left out of every certificate.
    pub leave_out: Option<String>,
    /// How long before the moment of issue the certificate's validity starts.
    pub backdate: Duration,
    /// The certificate's lifetime.
    pub lifetime: Duration,
    /// Renewal information (RFC 9773): announced in the directory when set.
    pub ari: Option<Ari>,
}

/// The renewal window offered for each certificate, in seconds from the moment it was issued
/// (negative: before; a window that ends before the question is over).
#[derive(Debug, Clone, Copy)]
pub struct Ari {
    pub start: i64,
    pub end: i64,
    /// The answers' `Retry-After`, in seconds (none when `None`).
    pub retry_after: Option<u64>,
    /// How long each answer takes (a slow CA).
    pub delay: Duration,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            leave_out: None,
            backdate: Duration::from_secs(2),
            lifetime: Duration::from_secs(90 * 86_400),
            ari: None,
        }
    }
}

/// What a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    Directory,
    NewOrder,
    RenewalInfo,
    /// A nonce, the account, a finalization, a certificate download.
    Other,
}

/// One request, when it arrived (milliseconds since the epoch).
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub at_ms: u64,
    pub asked: Asked,
}

/// One certificate issued.
#[derive(Debug, Clone)]
pub struct Issue {
    pub at_ms: u64,
    /// The names in the request, as the camera wrote them (IP addresses first as it orders them).
    pub names: Vec<String>,
    /// Its RFC 9773 CertID, and its renewal window (seconds since the epoch) as first offered;
    /// only when renewal information is announced.
    pub cert_id: Option<String>,
    pub window: Option<(i64, i64)>,
    /// The order's `replaces`.
    pub replaces: Option<String>,
}

/// What the CA saw and did: every request and every issue with its time, and each new order's
/// `replaces`; the counts are read off these.
#[derive(Debug, Default)]
pub struct Counts {
    requests: Mutex<Vec<Seen>>,
    issues: Mutex<Vec<Issue>>,
    orders: Mutex<Vec<Option<String>>>,
}

impl Counts {
    /// Every request, in order of arrival.
    pub fn requests(&self) -> Vec<Seen> {
        self.requests.lock().unwrap().clone()
    }

    /// How many requests asked for `what`.
    pub fn asked(&self, what: Asked) -> usize {
        self.requests.lock().unwrap().iter().filter(|r| r.asked == what).count()
    }

    /// Every certificate issued, in order of issue.
    pub fn issues(&self) -> Vec<Issue> {
        self.issues.lock().unwrap().clone()
    }

    pub fn issued(&self) -> usize {
        self.issues.lock().unwrap().len()
    }

    /// Orders created (new-order requests answered).
    pub fn orders(&self) -> usize {
        self.orders.lock().unwrap().len()
    }

    /// Each new order's `replaces`, in order.
    pub fn replaces(&self) -> Vec<Option<String>> {
        self.orders.lock().unwrap().clone()
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis())
        .unwrap_or(u64::MAX)
}

struct Ca {
    base: String,
    behaviour: Behaviour,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    root_pem: String,
    counts: Arc<Counts>,
    certificates: Mutex<Vec<String>>,
    /// (CertID, window start, window end) of each issued certificate, seconds since the epoch.
    windows: Mutex<Vec<(String, i64, i64)>>,
    nonce: AtomicUsize,
}

pub struct ScriptedAcme {
    pub directory: String,
    /// The CA's certificate: it signs both the server's TLS certificate and what it issues.
    pub root_pem: String,
    pub counts: Arc<Counts>,
    ca: Arc<Ca>,
    down: Arc<tokio::sync::watch::Sender<bool>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::fmt::Debug for ScriptedAcme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedAcme").field("directory", &self.directory).finish_non_exhaustive()
    }
}

impl Drop for ScriptedAcme {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl ScriptedAcme {
    /// Starts the CA on 127.0.0.1 (inside the test's namespace).
    pub fn start(behaviour: Behaviour) -> Self {
        Self::start_on(IpAddr::V4(Ipv4Addr::LOCALHOST), behaviour)
    }

    /// Starts the CA on `ip`, a free port; its TLS certificate names `ip`.
    pub fn start_on(ip: IpAddr, behaviour: Behaviour) -> Self {
        let listener = std::net::TcpListener::bind(SocketAddr::new(ip, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        // A name of its own: clients pick the anchor by name when several CAs are trusted at once.
        let name = format!("Scripted site ACME CA {}", addr.port());
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let root = params.self_signed(&key).unwrap();
        let root_pem = root.pem();
        let issuer = rcgen::Issuer::new(params, key);

        let tls_key = rcgen::KeyPair::generate().unwrap();
        let tls_cert =
            rcgen::CertificateParams::new(vec![ip.to_string()]).unwrap().signed_by(&tls_key, &issuer).unwrap();
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(tls_cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(tls_key.serialize_der())),
            )
            .unwrap();

        let counts = Arc::new(Counts::default());
        let ca = Arc::new(Ca {
            base: format!("https://{addr}"),
            behaviour,
            issuer,
            root_pem: root_pem.clone(),
            counts: counts.clone(),
            certificates: Mutex::new(Vec::new()),
            windows: Mutex::new(Vec::new()),
            nonce: AtomicUsize::new(0),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let down = Arc::new(tokio::sync::watch::Sender::new(false));
        let (served, watch) = (ca.clone(), down.subscribe());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(serve(listener, Arc::new(tls), served, watch, stopped));
        });
        Self { directory: format!("https://{addr}/dir"), root_pem, counts, ca, down, stop: Some(stop) }
    }

    /// Takes the CA down (its port refuses connections, open ones are cut) or brings it back on
    /// the same address.
    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }

    /// Moves the renewal window of every certificate issued so far into the past (an hour ago),
    /// as a CA does after a revocation or an incident; what it issues later gets the usual window.
    pub fn incident(&self) {
        let now = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
        for window in self.ca.windows.lock().unwrap().iter_mut() {
            (window.1, window.2) = (now - 7200, now - 3600);
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    ca: Arc<Ca>,
    mut down: tokio::sync::watch::Receiver<bool>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let addr = listener.local_addr().unwrap();
    let mut listener = Some(tokio::net::TcpListener::from_std(listener).unwrap());
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let is_down = *down.borrow_and_update();
        if is_down {
            // Closed: a connection is refused, as by a stopped server.
            listener = None;
        } else if listener.is_none() {
            listener = Some(tokio::net::TcpListener::bind(addr).await.expect("the CA's port again"));
        }
        let stream = tokio::select! {
            accepted = async { listener.as_ref().unwrap().accept().await }, if listener.is_some() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            changed = down.changed() => match changed {
                Ok(()) => continue,
                Err(_) => return,
            },
            _ = &mut stopped => return,
        };
        let (acceptor, ca, mut cut) = (acceptor.clone(), ca.clone(), down.clone());
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(stream).await else { return };
            let service = hyper::service::service_fn(move |req| {
                let ca = ca.clone();
                async move { Ok::<_, Infallible>(ca.answer(req).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = cut.wait_for(|down| *down) => {}
            }
        });
    }
}

impl Ca {
    fn reply(&self, status: u16, content_type: &str, body: String, location: Option<String>) -> Response<Full<Bytes>> {
        let nonce = format!("nonce-{}", self.nonce.fetch_add(1, Ordering::SeqCst));
        let mut response = Response::builder()
            .status(status)
            .header("content-type", content_type)
            .header("replay-nonce", nonce)
            .header("cache-control", "no-store");
        if let Some(location) = location {
            response = response.header("location", location);
        }
        response.body(Full::new(Bytes::from(body))).unwrap()
    }

    fn json(&self, status: u16, body: serde_json::Value, location: Option<String>) -> Response<Full<Bytes>> {
        self.reply(status, "application/json", body.to_string(), location)
    }

    async fn answer(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_owned();
        let asked = match path.as_str() {
            "/dir" => Asked::Directory,
            "/order" => Asked::NewOrder,
            p if p.starts_with("/renewal-info/") => Asked::RenewalInfo,
            _ => Asked::Other,
        };
        self.counts.requests.lock().unwrap().push(Seen { at_ms: now_ms(), asked });
        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let base = &self.base;
        let order = |n: usize, status: &str, certificate: Option<String>| {
            serde_json::json!({
                "status": status,
                "identifiers": [],
                "authorizations": [],
                "finalize": format!("{base}/finalize/{n}"),
                "certificate": certificate,
            })
        };
        match path.as_str() {
            "/dir" => {
                let mut directory = serde_json::json!({
                    "newNonce": format!("{base}/nonce"),
                    "newAccount": format!("{base}/account"),
                    "newOrder": format!("{base}/order"),
                });
                if self.behaviour.ari.is_some() {
                    directory["renewalInfo"] = serde_json::json!(format!("{base}/renewal-info"));
                }
                self.json(200, directory, None)
            }
            p if p.starts_with("/renewal-info/") && self.behaviour.ari.is_some() => {
                tokio::time::sleep(self.behaviour.ari.map_or(Duration::ZERO, |a| a.delay)).await;
                let id = &p["/renewal-info/".len()..];
                let window = self.windows.lock().unwrap().iter().find(|w| w.0 == id).map(|w| (w.1, w.2));
                match window {
                    Some((start, end)) => {
                        let time = |t: i64| {
                            time::OffsetDateTime::from_unix_timestamp(t)
                                .unwrap()
                                .format(&time::format_description::well_known::Rfc3339)
                                .unwrap()
                        };
                        let body = serde_json::json!({"suggestedWindow": {"start": time(start), "end": time(end)}});
                        let mut response = self.json(200, body, None);
                        if let Some(seconds) = self.behaviour.ari.and_then(|a| a.retry_after) {
                            response.headers_mut().insert("retry-after", seconds.into());
                        }
                        response
                    }
                    None => self.reply(404, "text/plain", String::new(), None),
                }
            }
            "/nonce" => self.reply(200, "text/plain", String::new(), None),
            "/account" => self.json(201, serde_json::json!({"status": "valid"}), Some(format!("{base}/account/1"))),
            "/order" => {
                let replaces = payload(&body).and_then(|p| p["replaces"].as_str().map(str::to_owned));
                let n = {
                    let mut orders = self.counts.orders.lock().unwrap();
                    orders.push(replaces);
                    orders.len()
                };
                self.json(201, order(n, "ready", None), Some(format!("{base}/orders/{n}")))
            }
            p if p.starts_with("/finalize/") => {
                let n: usize = p["/finalize/".len()..].parse().unwrap_or(0);
                match self.issue(&body, n) {
                    Some(index) => self.json(200, order(n, "valid", Some(format!("{base}/cert/{index}"))), None),
                    None => self.json(
                        400,
                        serde_json::json!({"type": "urn:ietf:params:acme:error:badCSR", "detail": "unreadable CSR"}),
                        None,
                    ),
                }
            }
            p if p.starts_with("/cert/") => {
                let index: usize = p["/cert/".len()..].parse().unwrap_or(usize::MAX);
                match self.certificates.lock().unwrap().get(index) {
                    Some(pem) => self.reply(200, "application/pem-certificate-chain", pem.clone(), None),
                    None => self.reply(404, "text/plain", String::new(), None),
                }
            }
            _ => self.reply(404, "text/plain", String::new(), None),
        }
    }

    /// Issues a certificate for the CSR in order `n`'s finalize request; returns its index.
    fn issue(&self, jws: &[u8], n: usize) -> Option<usize> {
        let payload = payload(jws)?;
        let csr_der = base64ct::Base64UrlUnpadded::decode_vec(payload["csr"].as_str()?).ok()?;
        let mut csr = rcgen::CertificateSigningRequestParams::from_der(&csr_der.into()).ok()?;
        let name = |san: &rcgen::SanType| match san {
            rcgen::SanType::IpAddress(ip) => ip.to_string(),
            rcgen::SanType::DnsName(dns) => dns.as_str().to_owned(),
            other => format!("{other:?}"),
        };
        let names: Vec<String> = csr.params.subject_alt_names.iter().map(name).collect();
        if let Some(left_out) = &self.behaviour.leave_out {
            csr.params.subject_alt_names.retain(|san| name(san) != *left_out);
        }
        let start = SystemTime::now() - self.behaviour.backdate;
        csr.params.not_before = start.into();
        csr.params.not_after = (start + self.behaviour.lifetime).into();
        csr.params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        csr.params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        // What a CA's certificates carry (RFC 9773 names a certificate by it).
        csr.params.use_authority_key_identifier_extension = true;
        let certificate = csr.signed_by(&self.issuer).ok()?;
        let at_ms = now_ms();
        let mut issue = Issue {
            at_ms,
            names,
            cert_id: None,
            window: None,
            replaces: n.checked_sub(1).and_then(|i| self.counts.orders.lock().unwrap().get(i).cloned().flatten()),
        };
        if let Some(ari) = self.behaviour.ari {
            let id = camera_acme::cert_id(certificate.der()).ok()?;
            let issued = i64::try_from(at_ms / 1000).ok()?;
            let window = (issued + ari.start, issued + ari.end);
            self.windows.lock().unwrap().push((id.clone(), window.0, window.1));
            (issue.cert_id, issue.window) = (Some(id), Some(window));
        }
        self.counts.issues.lock().unwrap().push(issue);
        let mut certificates = self.certificates.lock().unwrap();
        certificates.push(format!("{}{}", certificate.pem(), self.root_pem));
        Some(certificates.len() - 1)
    }
}

/// The JWS payload of a request, as JSON.
fn payload(jws: &[u8]) -> Option<serde_json::Value> {
    let jws: serde_json::Value = serde_json::from_slice(jws).ok()?;
    let payload = base64ct::Base64UrlUnpadded::decode_vec(jws["payload"].as_str()?).ok()?;
    serde_json::from_slice(&payload).ok()
}
