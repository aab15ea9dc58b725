//! Listeners, TLS, limits and the watcher thread.

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use camera_config::CameraConfig;
use camera_state::Layout;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::crypto::CryptoProvider;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::admission::{Admission, Slot};
use crate::api::app::ConfigSections;
use crate::api::{self, App};
use crate::auth::Auth;
use crate::config::{TlsProfile, WebConfig};
use crate::domain::certificates::{CaInUse, Certificates, InstallError};
use crate::log;

/// Largest request head (request line + headers).
const MAX_HEAD: usize = 16 * 1024;

/// Why the server could not start; printed as one line with its causes.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot provision the server certificate")]
    Provision(#[from] camera_provision::ProvisionError),
    #[error("cannot load the certificates")]
    Certificates(#[source] InstallError),
    #[error("TLS setup")]
    Tls(#[from] rustls::Error),
    #[error("no random numbers for the session keys")]
    NoRandomness,
    #[error("cannot listen on {addr} for {what}")]
    Listen { addr: SocketAddr, what: &'static str, source: std::io::Error },
}

/// The TLS configuration: ring provider, the profile's versions, the swappable certificate.
pub fn tls_config(
    provider: Arc<CryptoProvider>,
    profile: TlsProfile,
    certs: &Certificates,
) -> Result<ServerConfig, rustls::Error> {
    let versions: &[&rustls::SupportedProtocolVersion] = match profile {
        TlsProfile::Standard => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsProfile::HighSecurity => &[&rustls::version::TLS13],
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_cert_resolver(certs.resolver());
    // acme-tls/1 only for ACME tls-alpn-01 validations (the resolver answers those with the
    // validation certificate, and the connection is closed after the handshake).
    config.alpn_protocols = vec![b"http/1.1".to_vec(), camera_acme::ACME_TLS_ALPN.to_vec()];
    Ok(config)
}

/// Everything `camera-web` needs to start.
#[derive(Debug, Clone)]
pub struct Options {
    pub layout: Layout,
    pub camera: CameraConfig,
    pub web: WebConfig,
    /// The configuration file's `enrollment` section as written, if any (checked by
    /// enrollment: a section it refuses turns enrollment off, never the server).
    pub enrollment: Option<serde_json::Value>,
    /// The configuration file's `dot1x` section as written, if any (a section that is not
    /// usable turns 802.1X off, never the server).
    pub dot1x: Option<serde_json::Value>,
    /// PBKDF2 rounds override, for tests.
    pub pbkdf2_iterations: Option<u32>,
}

/// A started server: its bound addresses, and a handle to run it.
pub struct Server {
    app: Arc<App>,
    https: TcpListener,
    http: Option<TcpListener>,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("https", &self.https.local_addr().ok()).finish_non_exhaustive()
    }
}

impl Server {
    /// Provisions (or reuses the boot step's certificate), loads state, binds the listeners,
    /// and starts the watcher thread.
    pub async fn start(options: Options) -> Result<Self, StartError> {
        let Options { layout, camera, web, enrollment, dot1x, pbkdf2_iterations } = options;
        let outcome = camera_provision::reuse_or_provision(&layout, &camera)?;
        for warning in &outcome.warnings {
            log::warn(warning);
        }
        log::info(&format!("camera-web: provisioned: {}", outcome.summary()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let ca = CaInUse {
            anchor_der: outcome.ca_anchor_der.clone(),
            signer_der: outcome.ca_signer_der.clone(),
            two_tier: outcome.ca_two_tier,
            factory: outcome.ca_origin == camera_provision::CaOrigin::Factory,
        };
        let certs = Certificates::load(layout.clone(), provider.clone(), &outcome.minted, ca)
            .map_err(StartError::Certificates)?;
        let tls = tls_config(provider.clone(), web.tls, &certs)?;
        let mut auth = Auth::load(&layout.password()).ok_or(StartError::NoRandomness)?;
        if let Some(iterations) = pbkdf2_iterations {
            auth = auth.with_iterations(iterations);
        }
        let https = TcpListener::bind(web.https).await.map_err(|source| StartError::Listen {
            addr: web.https,
            what: "HTTPS",
            source,
        })?;
        let http = match web.http {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|source| StartError::Listen {
                addr,
                what: "HTTP",
                source,
            })?),
            None => None,
        };
        let mut web = web;
        // With port 0 the kernel picks; redirects must name the port really bound.
        if let Ok(bound) = https.local_addr() {
            web.https = bound;
        }
        let (app, warnings) =
            App::new(certs, auth, layout, camera, web, provider, ConfigSections { enrollment, dot1x });
        for warning in warnings {
            log::warn(&format!("camera-web: enrollment: {warning}"));
        }
        let app = Arc::new(app);
        spawn_watcher(app.clone(), outcome.minted);
        Ok(Self { app, https, http, acceptor: TlsAcceptor::from(Arc::new(tls)) })
    }

    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https.local_addr().ok()
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until the process is told to stop.
    pub async fn run(self) {
        let admission = Admission::new(self.app.web.max_connections, self.app.web.max_connections_per_client);
        let timeout = Duration::from_secs(self.app.web.handshake_timeout_secs);
        if let Some(http) = self.http {
            tokio::spawn(serve_http(http, self.app.clone(), admission.clone(), timeout));
        }
        spawn_housekeeping(self.app.clone());
        serve_https(self.https, self.acceptor, self.app, admission, timeout).await;
    }
}

/// Enrollment and the expiry monitor write to flash (fsync) between their waits: they run on a
/// thread and runtime of their own, so the runtime serving handshakes never waits for the disk.
fn spawn_housekeeping(app: Arc<App>) {
    let started = std::thread::Builder::new().name("housekeeping".into()).spawn(move || {
        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime.block_on(async move {
                tokio::spawn(app.enrollment.clone().run());
                tokio::spawn(app.dot1x_enrollment.clone().run());
                let window = app.web.expiry_warning_days;
                crate::domain::expiry::watch(app.certs.clone(), app.events.clone(), app.enrollment.clone(), window)
                    .await;
            }),
            Err(e) => log::warn(&format!("camera-web: no enrollment or expiry monitoring: {e}")),
        }
    });
    if let Err(e) = started {
        log::warn(&format!("camera-web: no enrollment or expiry monitoring: {e}"));
    }
}

fn http1_builder(timeout: Duration) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(timeout).max_buf_size(MAX_HEAD).keep_alive(true);
    builder
}

/// The next connection that gets a slot; connections refused a slot are closed at once.
async fn accept(listener: &TcpListener, admission: &Arc<Admission>) -> (tokio::net::TcpStream, std::net::IpAddr, Slot) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                log::warn(&format!("camera-web: accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let peer = peer.ip();
        // Closed connections give their slots back only when their tasks run: let them run
        // (one pass over the ready tasks and the I/O events) before refusing or evicting.
        for _ in 0..3 {
            if !admission.is_full() {
                break;
            }
            tokio::task::yield_now().await;
        }
        if let Some(slot) = admission.admit(peer) {
            return (stream, peer, slot);
        }
    }
}

/// A connection is asked to close (`Connection: close` on its next answer) after this many
/// requests or this long, so no client keeps a slot for ever by never going idle.
const MAX_REQUESTS_PER_CONNECTION: u32 = 1000;
const MAX_CONNECTION_AGE: Duration = Duration::from_secs(600);

/// Serves HTTP/1.1 on one connection until it closes. Each request marks the slot busy while it
/// is served and idle (evictable) once its answer is out.
async fn serve_connection<I, H, F>(io: I, slot: Arc<Slot>, timeout: Duration, handler: H)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    H: Fn(hyper::Request<hyper::body::Incoming>) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = hyper::Response<api::Body>> + Send + 'static,
{
    let opened = std::time::Instant::now();
    let served = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let handler = Arc::new(handler);
    let service = service_fn(move |req| {
        let (slot, handler, served) = (slot.clone(), handler.clone(), served.clone());
        async move {
            slot.request_started();
            let mut response = handler(req).await;
            let count = served.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if count >= MAX_REQUESTS_PER_CONNECTION || opened.elapsed() >= MAX_CONNECTION_AGE {
                response
                    .headers_mut()
                    .insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
            }
            slot.request_finished();
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let _ = http1_builder(timeout).serve_connection(TokioIo::new(io), service).await;
}

async fn serve_https(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Arc<App>,
    admission: Arc<Admission>,
    timeout: Duration,
) {
    loop {
        let (stream, peer_ip, slot) = accept(&listener, &admission).await;
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let slot = Arc::new(slot);
            let connection = async {
                let _ = stream.set_nodelay(true);
                let Ok(Ok(tls)) = tokio::time::timeout(timeout, acceptor.accept(stream)).await else { return };
                if tls.get_ref().1.alpn_protocol() == Some(camera_acme::ACME_TLS_ALPN) {
                    return; // an ACME validation: the handshake was the answer (RFC 8737 section 3)
                }
                serve_connection(tls, slot.clone(), timeout, move |req| api::handle_https(app.clone(), peer_ip, req))
                    .await;
            };
            tokio::select! {
                () = connection => {}
                () = slot.evicted() => {}
            }
        });
    }
}

async fn serve_http(listener: TcpListener, app: Arc<App>, admission: Arc<Admission>, timeout: Duration) {
    loop {
        let (stream, _, slot) = accept(&listener, &admission).await;
        let app = app.clone();
        tokio::spawn(async move {
            let slot = Arc::new(slot);
            let connection = serve_connection(stream, slot.clone(), timeout, move |req| {
                let response = api::handle_http(&app, &req);
                async move { response }
            });
            tokio::select! {
                () = connection => {}
                () = slot.evicted() => {}
            }
        });
    }
}

/// Runs the provisioner's watch loop in a thread; each new device certificate is swapped in.
fn spawn_watcher(app: Arc<App>, minted: camera_pki::MintedServer) {
    let spawned = std::thread::Builder::new().name("cert-watch".into()).spawn(move || {
        let result = camera_provision::watch::watch(&app.layout, &app.camera, minted, |minted, reason| {
            app.certs.set_device(minted, &reason.to_string());
            // The enrolled certificate may no longer name the camera's addresses.
            app.enrollment.wake();
            ControlFlow::Continue(())
        });
        if let Err(e) = result {
            log::warn(&format!(
                "camera-web: the address watcher stopped ({}); certificates will follow address changes after a restart only",
                log::chain(&e)
            ));
        }
    });
    if let Err(e) = spawned {
        log::warn(&format!("camera-web: cannot start the address watcher: {e}"));
    }
}
