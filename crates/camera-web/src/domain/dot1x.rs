//! 802.1X: camera-web's side of `camera_dot1x`. The supplicant worker runs on a thread of its own;
//! this hands it the settings and the `dot1x` role's certificate, and turns what it reports into
//! security events.

use std::net::IpAddr;
use std::sync::Arc;

use camera_dot1x::{ApplyError, Handle, Notice, Paths, Settings, View};
use camera_events::{EventKind, EventLog};
use camera_state::Layout;

use super::certificates::{Certificates, Role};
use super::events::record_event;
use crate::log;

/// Why a change of the 802.1X settings was not made. Nothing changed in any case.
#[derive(Debug, thiserror::Error)]
pub enum Dot1xError {
    #[error("{0}")]
    Settings(#[source] camera_dot1x::SettingsError),
    #[error("802.1X needs a client certificate first: upload one or make a request and upload its certificate")]
    NoCertificate,
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// The 802.1X supplicant, as camera-web drives it.
pub struct Dot1x {
    handle: Handle,
}

impl std::fmt::Debug for Dot1x {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dot1x").finish_non_exhaustive()
    }
}

/// The security event a notice makes; `None`: only logged (a trial starting follows the
/// settings change already recorded; the supplicant coming back follows its absence).
fn event_kind(notice: &Notice) -> Option<EventKind> {
    match notice {
        Notice::Authenticated { .. } => Some(EventKind::Dot1xAuthenticated),
        Notice::RolledBack { .. } | Notice::TrialInterrupted => Some(EventKind::Dot1xRolledBack),
        Notice::Failed { .. } | Notice::ServerRejected { .. } | Notice::SupplicantMissing { .. } => {
            Some(EventKind::Dot1xFailed)
        }
        _ => None,
    }
}

impl Dot1x {
    /// Starts following wpa_supplicant. A `dot1x` section of the configuration file is adopted
    /// when it is new or changed since it was last adopted (as the `enrollment` section is), so the
    /// installer's later changes through the API survive restarts; it goes through a trial like any
    /// change. A section that is not usable turns 802.1X off with the reason; the server goes on.
    pub fn start(
        layout: &Layout,
        events: Arc<EventLog>,
        certs: &Certificates,
        section: Option<serde_json::Value>,
    ) -> Self {
        let paths = Paths { dir: layout.dot1x_dir(), control_dir: layout.dot1x_control_dir() };
        let sink_events = events.clone();
        let handle = camera_dot1x::spawn(
            paths,
            Box::new(move |notice: Notice| {
                let sentence = notice.to_string();
                log::info(&format!("camera-web: 802.1X: {sentence}"));
                if let Some(kind) = event_kind(&notice) {
                    record_event(&sink_events, kind, None, sentence);
                }
            }),
        );
        let this = Self { handle };
        if let Some(section) = section {
            let digest = camera_enroll::settings::digest_json(&section);
            let adopted = camera_state::read_optional(&layout.dot1x_adopted_config()).ok().flatten();
            if adopted.as_deref().map(Vec::as_slice) == Some(digest.as_bytes()) {
                return this;
            }
            let outcome = match Settings::from_json(&section) {
                Ok(settings) => this.configure(settings, certs),
                Err(e) => Err(Dot1xError::Settings(e)),
            };
            let recorded = camera_state::ensure_dir(&layout.dot1x_dir(), 0o700).and_then(|()| {
                camera_state::write_atomic(&layout.dot1x_adopted_config(), digest.as_bytes(), camera_state::PUBLIC_MODE)
            });
            if let Err(e) = recorded {
                log::warn(&format!(
                    "camera-web: 802.1X: cannot record the configuration file's section as adopted: {e}"
                ));
            }
            match outcome {
                Ok(()) => record_event(
                    &events,
                    EventKind::Dot1xConfigured,
                    None,
                    "The 802.1X settings of the configuration file were applied.",
                ),
                Err(e) => {
                    let off =
                        this.turn_off().err().map(|e| format!(" (turning it off failed too: {e})")).unwrap_or_default();
                    let sentence =
                        format!("The configuration file's \"dot1x\" section cannot be used ({e}); 802.1X is off{off}.");
                    log::warn(&format!("camera-web: {sentence}"));
                    record_event(&events, EventKind::Dot1xConfigured, None, sentence);
                }
            }
        }
        this
    }

    /// What the API and the UI show.
    pub fn view(&self) -> View {
        self.handle.view()
    }

    /// New settings, with the `dot1x` certificate now installed.
    pub fn configure(&self, settings: Settings, certs: &Certificates) -> Result<(), Dot1xError> {
        let credential = certs.bundle(Role::Dot1x);
        if settings.enabled && credential.is_none() {
            return Err(Dot1xError::NoCertificate);
        }
        self.handle.apply(settings, credential).map_err(Dot1xError::Apply)
    }

    fn turn_off(&self) -> Result<(), ApplyError> {
        let mut settings = self.view().settings.unwrap_or_default();
        settings.enabled = false;
        self.handle.apply(settings, None)
    }

    /// Whether 802.1X is on (its certificate must then stay).
    pub fn enabled(&self) -> bool {
        self.view().settings.is_some_and(|s| s.enabled)
    }

    /// The `dot1x` certificate changed: hand it to the supplicant (a trial, like any change; the
    /// old certificate stays in use until the new one authenticated).
    pub fn certificate_changed(&self, certs: &Certificates, client: Option<IpAddr>, events: &EventLog) {
        let Some(settings) = self.view().settings.filter(|s| s.enabled) else { return };
        if let Err(e) = self.handle.apply(settings, certs.bundle(Role::Dot1x)) {
            let sentence = format!("The new 802.1X client certificate could not be handed to the supplicant: {e}.");
            log::warn(&format!("camera-web: {sentence}"));
            record_event(events, EventKind::Dot1xFailed, client, sentence);
        }
    }
}

/// What enrollment of the `dot1x` certificate (SCEP) needs from the web server: the same
/// enrollment as the HTTPS certificate's, installing into the `dot1x` role and handing the result
/// to the supplicant. Names are informational for a client certificate: the request names the
/// camera by its host name (or device id), which no address change alters, so only renewal and
/// the installer start a `dot1x` enrollment.
pub struct Dot1xHost {
    pub certs: Arc<Certificates>,
    pub events: Arc<EventLog>,
    pub camera: camera_config::CameraConfig,
    pub dot1x: Arc<Dot1x>,
}

impl std::fmt::Debug for Dot1xHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dot1xHost").finish_non_exhaustive()
    }
}

impl Dot1xHost {
    fn name(&self) -> camera_pki::SanName {
        camera_pki::SanName::Dns(camera_enroll::Host::device_name(self))
    }
}

impl camera_enroll::Host for Dot1xHost {
    fn names(&self) -> Vec<camera_pki::SanName> {
        vec![self.name()]
    }

    fn device_name(&self) -> String {
        super::enrollment::device_name(&self.camera, &self.certs)
    }

    fn installed(&self) -> Option<camera_enroll::Installed> {
        self.certs.installer(Role::Dot1x).map(|i| {
            let mut installed = camera_enroll::Installed::from_info(
                &i.info,
                matches!(i.origin, super::certificates::Origin::Enrolled(_)),
            );
            // Whatever names the site's CA wrote (often none, by its template), the certificate
            // serves 802.1X: it counts as naming the camera, so no name makes it enroll again.
            installed.names = vec![self.name()];
            installed
        })
    }

    fn install(
        &self,
        chain: &[Vec<u8>],
        key_pkcs8: &[u8],
        protocol: camera_enroll::Protocol,
    ) -> Result<camera_enroll::Installed, camera_enroll::InstallError> {
        let others: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
        let pem = camera_pki::pem::key_bundle(key_pkcs8, &others, "CERTIFICATE");
        let accepted = super::camera::check_upload(&self.camera, Role::Dot1x, None, Some(pem.as_bytes()), None, None)?;
        let origin = super::certificates::Origin::Enrolled(protocol);
        self.certs.install(Role::Dot1x, &accepted.chain_der, &accepted.key_pkcs8, origin).map_err(|e| match e {
            super::certificates::InstallError::Storage(io) => camera_enroll::InstallError::Storage(io),
            other => camera_enroll::InstallError::Unusable(Box::new(other)),
        })?;
        self.dot1x.certificate_changed(&self.certs, None, &self.events);
        self.installed().ok_or_else(|| camera_enroll::InstallError::Storage(std::io::ErrorKind::NotFound.into()))
    }

    fn responder(&self) -> &dyn camera_acme::ChallengeResponder {
        self
    }

    fn challenge_port(&self, _: camera_acme::ChallengeType) -> Option<u16> {
        None
    }

    fn enrolled_credentials(
        &self,
        protocol: camera_enroll::Protocol,
    ) -> Option<(Vec<u8>, zeroize::Zeroizing<Vec<u8>>)> {
        self.certs.installer_credentials(Role::Dot1x, &super::certificates::Origin::Enrolled(protocol))
    }

    fn event(&self, kind: EventKind, client: Option<IpAddr>, message: String) {
        let message = format!("802.1X certificate: {message}");
        log::info(&format!("camera-web: enrollment: {message}"));
        record_event(&self.events, kind, client, message);
    }
}

/// ACME proves control of names and addresses: what a server certificate needs, not a client's.
/// Enrollment of the `dot1x` certificate is refused before it starts.
impl camera_acme::ChallengeResponder for Dot1xHost {
    fn publish(&self, _: &camera_acme::ChallengeAnswer) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Err("the 802.1X certificate is not enrolled by ACME".into())
    }

    fn withdraw(&self, _: &camera_acme::ChallengeAnswer) {}
}
