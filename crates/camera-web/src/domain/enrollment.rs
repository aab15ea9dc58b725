//! The web server's side of automatic enrollment ([`camera_enroll`]): the camera's names, the
//! install (validated exactly like an upload), and the ACME challenge answers on its own ports:
//! http-01 on the plain-HTTP listener, tls-alpn-01 through the TLS resolver.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use camera_acme::{ChallengeAnswer, ChallengeResponder, ChallengeType};
use camera_config::CameraConfig;
use camera_enroll::{Host, InstallError, Installed, Protocol};
use camera_events::{EventKind, EventLog};
use camera_pki::SanName;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::camera::{camera_now, check_upload};
use super::certificates::{Certificates, InstallError as CertificatesError, Origin, Role};
use crate::log;

/// The http-01 answers being served: token -> key authorization.
#[derive(Debug, Default)]
pub struct Http01Answers(Mutex<HashMap<String, String>>);

impl Http01Answers {
    /// The key authorization for `/.well-known/acme-challenge/<token>`, if one is published.
    pub fn answer(&self, path: &str) -> Option<String> {
        let token = path.strip_prefix("/.well-known/acme-challenge/")?;
        self.0.lock().ok()?.get(token).cloned()
    }
}

/// What enrollment needs from the web server.
pub struct WebHost {
    pub certs: Arc<Certificates>,
    pub events: Arc<EventLog>,
    pub camera: CameraConfig,
    pub provider: Arc<CryptoProvider>,
    pub http01: Arc<Http01Answers>,
    /// The plain-HTTP and HTTPS listeners (which challenges a CA can validate).
    pub listeners: (Option<SocketAddr>, SocketAddr),
}

impl std::fmt::Debug for WebHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebHost").finish_non_exhaustive()
    }
}

/// The camera's names for an enrolled certificate: its addresses and the DNS names with a dot
/// (`hostname.local`, configured names). A bare host name is no name a site's CA can vouch for.
pub fn enrollment_names(camera: &CameraConfig) -> Vec<SanName> {
    let (_, names, _) = camera_now(camera);
    names
        .into_iter()
        .filter(|n| matches!(n, SanName::Ip(_)) || matches!(n, SanName::Dns(d) if d.contains('.')))
        .collect()
}

/// The camera's own name for a request's common name: its host name, else `camera-` and the
/// start of its CA's fingerprint (the same for the camera's whole life, unique per camera).
pub fn device_name(camera: &CameraConfig, certs: &Certificates) -> String {
    camera_provision::provision::hostname(camera).unwrap_or_else(|| {
        let id: String = certs.ca_info().sha256.chars().filter(char::is_ascii_hexdigit).take(12).collect();
        format!("camera-{}", id.to_ascii_lowercase())
    })
}

impl Host for WebHost {
    fn names(&self) -> Vec<SanName> {
        enrollment_names(&self.camera)
    }

    fn device_name(&self) -> String {
        device_name(&self.camera, &self.certs)
    }

    fn installed(&self) -> Option<Installed> {
        self.certs
            .installer(Role::Https)
            .map(|i| Installed::from_info(&i.info, matches!(i.origin, Origin::Enrolled(_))))
    }

    fn install(&self, chain: &[Vec<u8>], key_pkcs8: &[u8], protocol: Protocol) -> Result<Installed, InstallError> {
        // The same checks as an upload: the key pairs, the chain is ordered and signed, the
        // certificate is valid now and for a server, its names are compared with the camera's.
        // One bundle sized up front: no unwiped copy of the key is freed on the way.
        let others: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
        let pem = camera_pki::pem::key_bundle(key_pkcs8, &others, "CERTIFICATE");
        let accepted = check_upload(&self.camera, Role::Https, None, Some(pem.as_bytes()), None, None)?;
        let info = self
            .certs
            .install(Role::Https, &accepted.chain_der, &accepted.key_pkcs8, Origin::Enrolled(protocol))
            .map_err(|e| match e {
                CertificatesError::Storage(io) => InstallError::Storage(io),
                other => InstallError::Unusable(Box::new(other)),
            })?;
        Ok(Installed::from_info(&info, true))
    }

    fn responder(&self) -> &dyn ChallengeResponder {
        self
    }

    fn challenge_port(&self, challenge: ChallengeType) -> Option<u16> {
        match challenge {
            ChallengeType::Http01 => self.listeners.0.map(|addr| addr.port()),
            ChallengeType::TlsAlpn01 => Some(self.listeners.1.port()),
        }
    }

    fn enrolled_credentials(&self, protocol: Protocol) -> Option<(Vec<u8>, zeroize::Zeroizing<Vec<u8>>)> {
        self.certs.installer_credentials(Role::Https, &Origin::Enrolled(protocol))
    }

    fn event(&self, kind: EventKind, client: Option<IpAddr>, message: String) {
        log::info(&format!("camera-web: enrollment: {message}"));
        super::events::record_event(&self.events, kind, client, message);
    }
}

impl ChallengeResponder for WebHost {
    fn publish(&self, answer: &ChallengeAnswer) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        match answer {
            ChallengeAnswer::Http01 { token, key_authorization, .. } => {
                self.http01
                    .0
                    .lock()
                    .map_err(|_| "the http-01 answers are unavailable")?
                    .insert(token.clone(), key_authorization.clone());
            }
            ChallengeAnswer::TlsAlpn01 { sni, certificate_der, key_pkcs8, .. } => {
                let key = self
                    .provider
                    .key_provider
                    .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pkcs8.to_vec())))?;
                let certified = CertifiedKey::new(vec![CertificateDer::from(certificate_der.clone())], key);
                self.certs.resolver().publish_validation(sni, Arc::new(certified));
            }
        }
        Ok(())
    }

    fn withdraw(&self, answer: &ChallengeAnswer) {
        match answer {
            ChallengeAnswer::Http01 { token, .. } => {
                if let Ok(mut answers) = self.http01.0.lock() {
                    answers.remove(token);
                }
            }
            ChallengeAnswer::TlsAlpn01 { sni, .. } => self.certs.resolver().withdraw_validation(sni),
        }
    }
}
