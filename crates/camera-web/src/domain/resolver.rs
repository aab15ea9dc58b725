//! The TLS resolver: the certificate new handshakes get, swapped whole (readers never see a mix),
//! and the tls-alpn-01 validation certificates of an ACME enrollment in progress.

use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::clock::now as now_signed;

/// The certificate new handshakes get, swapped whole (readers never see a mix), and the
/// tls-alpn-01 validation certificates of an ACME enrollment in progress, which only a ClientHello
/// offering ALPN `acme-tls/1` for their name gets.
#[derive(Debug)]
pub struct CurrentCertificate {
    served: RwLock<ServedNow>,
    validation: RwLock<Vec<(String, Arc<CertifiedKey>)>>,
}

/// What the resolver hands out: the active certificate, and from the second an installer's
/// certificate expires, the camera's own (no handshake ever gets an expired certificate, even
/// before the expiry monitor has woken up to log it).
#[derive(Debug, Clone)]
pub(super) struct ServedNow {
    pub(super) key: Arc<CertifiedKey>,
    pub(super) expires_unix: Option<i64>,
    pub(super) fallback: Arc<CertifiedKey>,
}

impl ServedNow {
    fn key(&self, now: i64) -> &Arc<CertifiedKey> {
        match self.expires_unix {
            Some(expires) if expires <= now => &self.fallback,
            _ => &self.key,
        }
    }
}

impl CurrentCertificate {
    pub(super) fn new(now: ServedNow) -> Self {
        Self { served: RwLock::new(now), validation: RwLock::default() }
    }

    pub(super) fn set(&self, now: ServedNow) {
        if let Ok(mut current) = self.served.write() {
            *current = now;
        }
    }

    /// The certificate a handshake gets now.
    fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.served.read().ok().map(|s| s.key(now_signed()).clone())
    }

    /// Serves `key` to tls-alpn-01 validations for `sni` until [`Self::withdraw_validation`].
    pub fn publish_validation(&self, sni: &str, key: Arc<CertifiedKey>) {
        if let Ok(mut list) = self.validation.write() {
            list.retain(|(name, _)| name != sni);
            list.push((sni.to_ascii_lowercase(), key));
        }
    }

    pub fn withdraw_validation(&self, sni: &str) {
        if let Ok(mut list) = self.validation.write() {
            list.retain(|(name, _)| !name.eq_ignore_ascii_case(sni));
        }
    }
}

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let acme = hello.alpn().is_some_and(|mut offered| offered.any(|p| p == camera_acme::ACME_TLS_ALPN));
        if acme {
            // Only an ACME validation offers acme-tls/1; it never gets the served certificate.
            let sni = hello.server_name()?.to_ascii_lowercase();
            let list = self.validation.read().ok()?;
            return list.iter().find(|(name, _)| *name == sni).map(|(_, key)| key.clone());
        }
        self.current()
    }
}
