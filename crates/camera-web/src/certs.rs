//! Which certificate is served, and swapping it without a restart.
//!
//! Precedence: an installer's uploaded certificate, else the device-minted one. Every change
//! (upload, restore, re-mint after an address or clock change) replaces one `Arc<CertifiedKey>`
//! that the TLS resolver hands to each new handshake; open connections keep theirs.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};

use camera_pki::{describe, CertificateInfo, MintedServer, PendingCsr, SanName};
use camera_state::{read_optional, remove_durable, write_atomic, Layout, SECRET_MODE};
use cert_provisioner::clock::unix_seconds;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::Serialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::log;

/// The certificate new handshakes get. Swapped whole; readers never see a mix.
#[derive(Debug)]
pub struct CurrentCertificate(RwLock<Arc<CertifiedKey>>);

impl CurrentCertificate {
    fn set(&self, key: Arc<CertifiedKey>) {
        if let Ok(mut current) = self.0.write() {
            *current = key;
        }
    }
}

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.read().ok().map(|current| current.clone())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Device,
    Uploaded,
}

/// A certificate chain with its key, ready to serve.
#[derive(Debug)]
struct Served {
    certified: Arc<CertifiedKey>,
    info: CertificateInfo,
    chain_info: Vec<CertificateInfo>,
}

impl Served {
    fn new(provider: &CryptoProvider, chain: &[Vec<u8>], key_pkcs8: &[u8]) -> Result<Self, String> {
        let leaf = chain.first().ok_or("no certificate")?;
        let info = describe(leaf).map_err(|e| e.to_string())?;
        let chain_info = chain[1..].iter().filter_map(|der| describe(der).ok()).collect();
        let key = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pkcs8.to_vec())))
            .map_err(|e| format!("the TLS stack cannot use the key: {e}"))?;
        let certs = chain.iter().map(|der| CertificateDer::from(der.clone())).collect();
        Ok(Self { certified: Arc::new(CertifiedKey::new(certs, key)), info, chain_info })
    }

    /// Key and chain from one PEM text.
    fn from_bundle(provider: &CryptoProvider, text: &[u8]) -> Result<Self, String> {
        let key = camera_pki::pem::pkcs8_key(text).map_err(|e| e.to_string())?.ok_or("no PRIVATE KEY block")?;
        let chain = camera_pki::pem::certificates(text).map_err(|e| e.to_string())?;
        Self::new(provider, &chain, &key)
    }
}

/// A pending certificate request made on the camera.
#[derive(Debug, Serialize, Clone)]
pub struct PendingInfo {
    pub subject: String,
    pub subject_alt_names: Vec<String>,
    pub key_type: String,
    pub created_at_unix: u64,
}

struct Inner {
    device: Served,
    uploaded: Option<Served>,
    pending: Option<(PendingInfo, String)>,
}

/// All certificate state of the web server.
pub struct Certificates {
    layout: Layout,
    provider: Arc<CryptoProvider>,
    resolver: Arc<CurrentCertificate>,
    ca_pem: String,
    ca_der: Vec<u8>,
    ca_info: CertificateInfo,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates").field("layout", &self.layout).finish_non_exhaustive()
    }
}

fn now_unix() -> u64 {
    unix_seconds(std::time::SystemTime::now())
}

fn pending_info(pending: &PendingCsr, created_at_unix: u64) -> Option<(PendingInfo, String)> {
    let csr = camera_pki::describe_csr(&pending.csr_der).ok()?;
    let info = PendingInfo {
        subject: csr.subject,
        subject_alt_names: csr.subject_alt_names,
        key_type: csr.key_type,
        created_at_unix,
    };
    Some((info, pending.csr_pem()))
}

impl Certificates {
    /// Loads the device certificate just provisioned, its CA (the one in use: a factory CA when
    /// there is one), and any upload and pending request.
    pub fn load(
        layout: Layout,
        provider: Arc<CryptoProvider>,
        minted: &MintedServer,
        ca_der: Vec<u8>,
    ) -> Result<Self, String> {
        let ca_info = describe(&ca_der).map_err(|e| e.to_string())?;
        let ca_pem = camera_pki::pem::encode("CERTIFICATE", &ca_der).to_string();
        let device = Served::new(&provider, &[minted.cert_der.clone(), ca_der.clone()], minted.key.pkcs8_der())?;
        let uploaded = match read_optional(&layout.uploaded_bundle()) {
            Ok(Some(text)) => match Served::from_bundle(&provider, &text) {
                Ok(served) => Some(served),
                Err(e) => {
                    log::warn(&format!("the uploaded certificate cannot be used ({e}); serving the camera's own"));
                    None
                }
            },
            Ok(None) => None,
            Err(e) => return Err(format!("cannot read {}: {e}", layout.uploaded_bundle().display())),
        };
        let pending = match read_optional(&layout.pending_csr()) {
            Ok(Some(text)) => PendingCsr::from_bundle_pem(&text).ok().and_then(|p| {
                let created =
                    std::fs::metadata(layout.pending_csr()).and_then(|m| m.modified()).map(unix_seconds).unwrap_or(0);
                pending_info(&p, created)
            }),
            _ => None,
        };
        let active = uploaded.as_ref().unwrap_or(&device).certified.clone();
        let this = Self {
            resolver: Arc::new(CurrentCertificate(RwLock::new(active))),
            layout,
            provider,
            ca_pem,
            ca_der,
            ca_info,
            inner: Mutex::new(Inner { device, uploaded, pending }),
        };
        this.log_served("the web server started");
        Ok(this)
    }

    pub fn resolver(&self) -> Arc<CurrentCertificate> {
        self.resolver.clone()
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn log_served(&self, why: &str) {
        let inner = self.lock();
        let (source, served) = match &inner.uploaded {
            Some(up) => ("uploaded", up),
            None => ("device-minted", &inner.device),
        };
        log::info(&format!(
            "camera-web: serving the {source} certificate \"{}\" (issuer \"{}\") for [{}], expires {}: {why}",
            served.info.subject,
            served.info.issuer,
            served.info.subject_alt_names.join(", "),
            served.info.not_after
        ));
    }

    fn swap(&self, why: &str) {
        {
            // Under the lock, so a re-mint racing an upload cannot leave the device certificate
            // served while an upload exists.
            let inner = self.lock();
            self.resolver.set(inner.uploaded.as_ref().unwrap_or(&inner.device).certified.clone());
        }
        self.log_served(why);
    }

    /// A new device certificate from the watcher.
    pub fn set_device(&self, minted: &MintedServer, why: &str) {
        match Served::new(&self.provider, &[minted.cert_der.clone(), self.ca_der.clone()], minted.key.pkcs8_der()) {
            Ok(served) => {
                let uploaded_active = {
                    let mut inner = self.lock();
                    inner.device = served;
                    inner.uploaded.is_some()
                };
                if uploaded_active {
                    log::info(&format!(
                        "camera-web: re-minted the camera's own certificate ({why}); the uploaded one stays in use"
                    ));
                } else {
                    self.swap(why);
                }
            }
            Err(e) => log::warn(&format!("camera-web: the re-minted certificate cannot be served: {e}")),
        }
    }

    /// Stores and serves a validated upload. Nothing changes if storing fails.
    pub fn install_upload(&self, chain: &[Vec<u8>], key_pkcs8: &[u8]) -> Result<CertificateInfo, String> {
        let served = Served::new(&self.provider, chain, key_pkcs8)?;
        let certs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
        let bundle = camera_pki::pem::key_bundle(key_pkcs8, &certs, "CERTIFICATE");
        write_atomic(&self.layout.uploaded_bundle(), bundle.as_bytes(), SECRET_MODE)
            .map_err(|e| format!("the certificate could not be stored ({e}); nothing was changed"))?;
        let info = served.info.clone();
        self.lock().uploaded = Some(served);
        self.swap("an installer uploaded it (uploaded certificates take precedence)");
        Ok(info)
    }

    /// Deletes the uploaded certificate (also one on disk that could not be loaded) and goes back
    /// to the camera's own. False if there was none in use.
    pub fn restore(&self) -> Result<bool, String> {
        if self.lock().uploaded.is_none() {
            remove_durable(&self.layout.uploaded_bundle())
                .map_err(|e| format!("the unusable uploaded certificate could not be deleted ({e})"))?;
            return Ok(false);
        }
        remove_durable(&self.layout.uploaded_bundle())
            .map_err(|e| format!("the uploaded certificate could not be deleted ({e}); it stays in use"))?;
        self.lock().uploaded = None;
        self.swap("the uploaded certificate was deleted (restore)");
        Ok(true)
    }

    /// Stores a new pending request, replacing any earlier one.
    pub fn store_pending(&self, pending: &PendingCsr) -> Result<(), String> {
        let info = pending_info(pending, now_unix()).ok_or("the request could not be described")?;
        write_atomic(&self.layout.pending_csr(), pending.to_bundle_pem().as_bytes(), SECRET_MODE)
            .map_err(|e| format!("the request could not be stored ({e})"))?;
        self.lock().pending = Some(info);
        Ok(())
    }

    /// The pending request's PEM, if any.
    pub fn pending_csr_pem(&self) -> Option<String> {
        self.lock().pending.as_ref().map(|(_, pem)| pem.clone())
    }

    /// The pending request's key, read from disk only when needed.
    pub fn pending_key(&self) -> Option<Zeroizing<Vec<u8>>> {
        let text = read_optional(&self.layout.pending_csr()).ok()??;
        camera_pki::pem::pkcs8_key(&text).ok()?
    }

    pub fn source(&self) -> Source {
        if self.lock().uploaded.is_some() {
            Source::Uploaded
        } else {
            Source::Device
        }
    }

    /// The state `GET /api/v1/certificate` reports.
    pub fn status(&self, addresses: &[IpAddr], names: &[SanName], hostname: Option<&str>, tls_profile: &str) -> Value {
        let inner = self.lock();
        let (source, served, reason) = match &inner.uploaded {
            Some(up) => (Source::Uploaded, up, "An installer uploaded this certificate; uploaded certificates take precedence over the camera's own."),
            None => (Source::Device, &inner.device, "No certificate is uploaded, so the camera serves its own, made for its current addresses and renewed automatically when they change."),
        };
        let warnings = coverage_warnings(&served.info, addresses, source);
        let ca_replaced = read_optional(&self.layout.ca_replaced_record())
            .ok()
            .flatten()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
        json!({
            "source": source,
            "reason": reason,
            "certificate": served.info,
            "chain": served.chain_info,
            "camera": {
                "addresses": addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "names": names.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "hostname": hostname,
            },
            "warnings": warnings,
            "ca": {
                "sha256": self.ca_info.sha256,
                "subject": self.ca_info.subject,
                "not_after": self.ca_info.not_after,
                "replaced": ca_replaced,
            },
            "pending_csr": inner.pending.as_ref().map(|(info, _)| info),
            "tls_profile": tls_profile,
        })
    }
}

/// Plain-language warnings about the served certificate: addresses it does not name (the same
/// rule as the upload check, `camera_upload::address_notices`), expiry.
pub fn coverage_warnings(info: &CertificateInfo, addresses: &[IpAddr], source: Source) -> Vec<Value> {
    let mut names =
        camera_upload::CertificateNames { has_san: !info.subject_alt_names.is_empty(), ..Default::default() };
    for name in &info.subject_alt_names {
        match name.parse::<IpAddr>() {
            Ok(ip) => names.ips.push(ip),
            Err(_) => names.dns.push(name.clone()),
        }
    }
    let advice = match source {
        Source::Uploaded => "Or Restore to use the camera's own certificate, which follows address changes.",
        Source::Device => "The camera's CA may only sign private addresses: use a private address, or upload an installer's certificate.",
    };
    let mut warnings: Vec<Value> = camera_upload::address_notices(&names, addresses, &[])
        .into_iter()
        .map(|notice| json!({"code": notice.code, "message": format!("{} {advice}", notice.message)}))
        .collect();
    let now = now_unix() as i64;
    let days_left = (info.not_after_unix - now) / 86_400;
    if info.not_after_unix <= now {
        warnings.push(json!({"code": "expired", "message": format!("This certificate expired on {}: browsers refuse it.", info.not_after)}));
    } else if days_left < 30 && source == Source::Uploaded {
        warnings.push(json!({"code": "expires_soon", "message": format!("This certificate expires in {days_left} days ({}): upload a renewed one.", info.not_after)}));
    }
    warnings
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn info(names: &[&str]) -> CertificateInfo {
        CertificateInfo {
            subject: String::new(),
            issuer: String::new(),
            serial: String::new(),
            not_before: String::new(),
            not_after: "2099-01-01T00:00:00Z".into(),
            not_before_unix: 0,
            not_after_unix: 4_070_908_800,
            sha256: String::new(),
            public_key_sha256: String::new(),
            subject_alt_names: names.iter().map(|n| (*n).to_owned()).collect(),
            key_type: String::new(),
            is_ca: false,
            self_signed: false,
        }
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    /// The status page and the upload check say the same thing, each with its own advice.
    #[test]
    fn coverage_uses_the_upload_rule_with_advice_for_the_source() {
        let covered = coverage_warnings(&info(&["10.0.0.5", "cam.local"]), &ips(&["10.0.0.5"]), Source::Device);
        assert!(covered.is_empty(), "{covered:?}");

        let public_left_out =
            coverage_warnings(&info(&["10.0.0.5"]), &ips(&["10.0.0.5", "2001:db8::5"]), Source::Device);
        assert_eq!(public_left_out[0]["code"], "name_partial");
        let message = public_left_out[0]["message"].as_str().unwrap();
        assert!(message.contains("2001:db8::5") && message.contains("may only sign private addresses"), "{message}");

        let moved = coverage_warnings(&info(&["192.168.1.50"]), &ips(&["10.0.0.5"]), Source::Uploaded);
        assert_eq!(moved[0]["code"], "name_mismatch");
        let message = moved[0]["message"].as_str().unwrap();
        assert!(
            message.contains("names 192.168.1.50 but the camera is at 10.0.0.5") && message.contains("Restore"),
            "{message}"
        );
    }
}
