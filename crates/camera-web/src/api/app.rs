//! What every handler needs: the [`App`] (certificates, enrollment, events, password checks and
//! their permits), the result type, and running work on the blocking pool.

use std::net::IpAddr;
use std::sync::Arc;

use camera_config::CameraConfig;
use camera_enroll::Enrollment;
use camera_events::{EventKind, EventLog};
use camera_state::Layout;
use hyper::Response;
use tokio::sync::Semaphore;

use super::error::ApiError;
use super::http::Body;
use crate::auth::Auth;
use crate::config::WebConfig;
use crate::domain::certificates::Certificates;
use crate::domain::certificates::Role;
use crate::domain::dot1x::{Dot1x, Dot1xHost};
use crate::domain::enrollment::{Http01Answers, WebHost};

/// PBKDF2 checks at once: slow on purpose, so a flood of guesses must not take every core.
const PASSWORD_CHECKS: usize = 2;
/// Upload checks at once: a KDF in an encrypted upload may take up to
/// `camera_upload::MAX_KDF_MEMORY` of RAM, and a camera has little.
const UPLOAD_CHECKS: usize = 1;

/// The configuration file's sections applied at start, as written (each checked by its crate: one
/// it refuses turns that function off, never the server).
#[derive(Debug, Clone, Default)]
pub struct ConfigSections {
    pub enrollment: Option<serde_json::Value>,
    pub dot1x: Option<serde_json::Value>,
}

/// Everything a request handler needs.
pub struct App {
    pub certs: Arc<Certificates>,
    pub auth: Auth,
    pub layout: Layout,
    pub camera: CameraConfig,
    pub web: WebConfig,
    /// The security event log (`GET /api/v1/events`).
    pub events: Arc<EventLog>,
    /// Automatic enrollment (`/api/v1/enrollment`).
    pub enrollment: Arc<Enrollment>,
    /// ACME http-01 answers the plain-HTTP listener serves while an enrollment runs.
    pub http01: Arc<Http01Answers>,
    /// 802.1X (`/api/v1/dot1x`): the supplicant's settings and state.
    pub dot1x: Arc<Dot1x>,
    /// Automatic enrollment of the 802.1X certificate (`/api/v1/dot1x/enrollment`, SCEP).
    pub dot1x_enrollment: Arc<Enrollment>,
    /// A permit travels with each password check into its blocking task.
    pub password_checks: Arc<Semaphore>,
    /// A permit travels with each upload check (and its KDFs) into its blocking task.
    pub upload_checks: Arc<Semaphore>,
}

impl App {
    /// Everything the server needs, with enrollment wired to the certificates and the ports.
    /// Also returns warnings about the stored enrollment record (logged by the caller).
    pub fn new(
        certs: Certificates,
        auth: Auth,
        layout: Layout,
        camera: CameraConfig,
        web: WebConfig,
        provider: Arc<rustls::crypto::CryptoProvider>,
        sections: ConfigSections,
    ) -> (Self, Vec<String>) {
        let ConfigSections { enrollment: enrollment_config, dot1x: dot1x_config } = sections;
        let certs = Arc::new(certs);
        let events = Arc::new(EventLog::in_layout(&layout));
        let http01 = Arc::new(Http01Answers::default());
        let host = Arc::new(WebHost {
            certs: certs.clone(),
            events: events.clone(),
            camera: camera.clone(),
            provider,
            http01: http01.clone(),
            listeners: (web.http, web.https),
        });
        let (enrollment, warnings) = Enrollment::load(&layout, enrollment_config, host);
        let dot1x = Arc::new(Dot1x::start(&layout, events.clone(), &certs, dot1x_config));
        let dot1x_host = Arc::new(Dot1xHost {
            certs: certs.clone(),
            events: events.clone(),
            camera: camera.clone(),
            dot1x: dot1x.clone(),
        });
        let (dot1x_enrollment, dot1x_warnings) =
            Enrollment::load_at(layout.dot1x_enrollment(), layout.acme_account_key(), None, dot1x_host);
        let mut warnings = warnings;
        warnings.extend(dot1x_warnings);
        let app = Self {
            certs,
            auth,
            layout,
            camera,
            web,
            events,
            enrollment: Arc::new(enrollment),
            http01,
            dot1x,
            dot1x_enrollment: Arc::new(dot1x_enrollment),
            password_checks: Arc::new(Semaphore::new(PASSWORD_CHECKS)),
            upload_checks: Arc::new(Semaphore::new(UPLOAD_CHECKS)),
        };
        (app, warnings)
    }

    /// The enrollment of the role's certificate.
    pub fn enrollment(&self, role: Role) -> &Arc<Enrollment> {
        match role {
            Role::Https => &self.enrollment,
            Role::Dot1x => &self.dot1x_enrollment,
        }
    }

    /// Records a security event; a failed write is logged, never fatal to the request.
    pub fn event(&self, kind: EventKind, client: Option<IpAddr>, message: impl Into<String>) {
        crate::domain::events::record_event(&self.events, kind, client, message);
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("layout", &self.layout).finish_non_exhaustive()
    }
}

/// What a handler answers: a response, or an error the router turns into one.
pub type ApiResult = Result<Response<Body>, ApiError>;

/// Runs `work` on the blocking pool (netlink dumps, fsyncs, KDFs must not stall the TLS
/// handshakes on the runtime thread). The task runs to the end even if the client goes away.
pub(crate) async fn blocking<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|_| ApiError::Internal { what })
}
