//! What `GET /api/v1/certificate` shows of the served certificate: the status view, its JSON
//! shape, and the plain-language warnings about names the certificate does not cover.

use std::net::IpAddr;

use camera_pki::{CertificateInfo, SanName};
use camera_state::read_optional;
use serde::{Deserialize, Serialize};

use super::certificates::{Certificates, Role};
pub use super::certificates::{PendingRequest, Source};
use super::clock::now as now_signed;

/// What the camera is and how the request reached it, for [`Certificates::status`].
#[derive(Debug)]
pub struct StatusContext<'a> {
    pub addresses: &'a [IpAddr],
    pub names: &'a [SanName],
    pub hostname: Option<&'a str>,
    pub tls_profile: &'static str,
    /// The host part of the request's `Host` header.
    pub opened_as: Option<&'a str>,
    /// `web.expiry_warning_days`.
    pub expiry_warning_days: u32,
}

/// A warning or notice: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub code: &'static str,
    pub message: String,
}

impl From<camera_upload::Notice> for Notice {
    fn from(n: camera_upload::Notice) -> Self {
        Self { code: n.code, message: n.message }
    }
}

/// The camera's addresses and names right now.
#[derive(Debug, Serialize)]
pub struct CameraNames {
    pub addresses: Vec<String>,
    pub names: Vec<String>,
    pub hostname: Option<String>,
}

/// Whether the served certificate names the host this request was sent to (the `Host` header):
/// the UI shows this verdict instead of matching names itself.
#[derive(Debug, Serialize)]
pub struct OpenedAs {
    pub host: String,
    pub covered: bool,
}

/// The record written when the camera CA changed (`ca-replaced.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaReplaced {
    pub replaced_at_unix: u64,
    pub reason: String,
    pub new_ca_sha256: Option<String>,
}

/// The camera CA that `cacert.crt` exports.
#[derive(Debug, Serialize)]
pub struct CaStatus {
    pub sha256: String,
    pub subject: String,
    pub not_after: String,
    pub replaced: Option<CaReplaced>,
    /// 2: a root (exported) and an issuing CA (signs, carries the name constraints every client
    /// applies); 1: a single CA (cameras made before two tiers).
    pub tiers: u8,
    pub issuing: Option<IssuingCa>,
    /// For a one-tier CA: what to do about it.
    pub advice: Option<&'static str>,
}

/// The issuing CA of a two-tier camera CA.
#[derive(Debug, Serialize)]
pub struct IssuingCa {
    pub subject: String,
    pub sha256: String,
    pub not_after: String,
}

/// `GET /api/v1/certificate`, and the answer to a restore.
#[derive(Debug, Serialize)]
pub struct CertificateStatus {
    pub source: Source,
    /// Why this certificate is the one served, in a sentence.
    pub reason: &'static str,
    pub certificate: CertificateInfo,
    /// The certificates sent after the leaf.
    pub chain: Vec<CertificateInfo>,
    pub camera: CameraNames,
    pub opened_as: Option<OpenedAs>,
    pub warnings: Vec<Notice>,
    pub ca: CaStatus,
    pub pending_csr: Option<PendingRequest>,
    pub tls_profile: &'static str,
    /// Days left for each certificate the camera holds (served, installer's, camera CA).
    pub expiry: Vec<super::expiry::Expiry>,
}

impl Certificates {
    /// The state `GET /api/v1/certificate` reports.
    pub fn status(&self, ctx: &StatusContext<'_>) -> CertificateStatus {
        let inner = self.lock();
        let now = now_signed();
        let (source, served) = inner.active(now);
        let reason = match (source, &inner.slot(Role::Https).installer) {
            (Source::Uploaded, _) => {
                "An installer uploaded this certificate; the installer's certificate takes precedence over the camera's own."
            }
            (Source::Enrolled, _) => {
                "The site's CA issued this certificate to the camera by automatic enrollment; it is renewed before it expires."
            }
            (Source::Device, Some(_)) => {
                "The installer's certificate has expired and nothing replaced it, so the camera serves its own (trusted by whoever imported cacert.crt)."
            }
            (Source::Device, None) => {
                "No certificate is uploaded, so the camera serves its own, made for its current addresses and renewed automatically when they change."
            }
        };
        let replaced = read_optional(&self.layout.ca_replaced_record())
            .ok()
            .flatten()
            .and_then(|bytes| serde_json::from_slice::<CaReplaced>(&bytes).ok());
        CertificateStatus {
            source,
            reason,
            certificate: served.info.clone(),
            chain: served.chain_info.clone(),
            camera: CameraNames {
                addresses: ctx.addresses.iter().map(ToString::to_string).collect(),
                names: ctx.names.iter().map(ToString::to_string).collect(),
                hostname: ctx.hostname.map(str::to_owned),
            },
            opened_as: ctx.opened_as.map(|host| OpenedAs {
                host: host.to_owned(),
                covered: names_cover(&served.info.subject_alt_names, host),
            }),
            warnings: coverage_warnings(&served.info, ctx.addresses, source, ctx.expiry_warning_days),
            ca: CaStatus {
                sha256: self.ca_info.sha256.clone(),
                subject: self.ca_info.subject.clone(),
                not_after: self.ca_info.not_after.clone(),
                tiers: if self.issuing_info.is_some() { 2 } else { 1 },
                issuing: self.issuing_info.as_ref().map(|i| IssuingCa {
                    subject: i.subject.clone(),
                    sha256: i.sha256.clone(),
                    not_after: i.not_after.clone(),
                }),
                advice: self.one_tier_advice,
                replaced,
            },
            pending_csr: inner.slot(Role::Https).pending.as_ref().map(|(info, _)| info.clone()),
            tls_profile: ctx.tls_profile,
            expiry: Vec::new(),
        }
    }
}

/// Whether a certificate naming `names` is valid for `host` (an address or a DNS name, as in a
/// `Host` header), by the same rule as the upload check.
fn names_cover(names: &[String], host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let (ips, dns) = certificate_names(names);
    match host.parse::<IpAddr>() {
        Ok(ip) => ips.iter().any(|named| named.to_canonical() == ip.to_canonical()),
        Err(_) => dns.iter().any(|name| camera_upload::dns_name_matches(name, host)),
    }
}

/// The IP addresses and DNS names among a certificate's subjectAltNames.
fn certificate_names(names: &[String]) -> (Vec<IpAddr>, Vec<String>) {
    let mut ips = Vec::new();
    let mut dns = Vec::new();
    for name in names {
        match name.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => dns.push(name.clone()),
        }
    }
    (ips, dns)
}

/// Plain-language warnings about the served certificate: addresses it does not name (the same
/// rule as the upload check, `camera_upload::address_notices`), expiry of an uploaded one inside
/// the configured window (`web.expiry_warning_days`, the expiry monitor's rule).
pub fn coverage_warnings(
    info: &CertificateInfo,
    addresses: &[IpAddr],
    source: Source,
    expiry_warning_days: u32,
) -> Vec<Notice> {
    let (ips, dns) = certificate_names(&info.subject_alt_names);
    let names = camera_upload::CertificateNames { ips, dns, has_san: !info.subject_alt_names.is_empty() };
    let advice = match source {
        Source::Uploaded => "Or Restore to use the camera's own certificate, which follows address changes.",
        Source::Enrolled => "The camera asks the site's CA for a new certificate naming its addresses.",
        Source::Device => {
            "The camera's CA may only sign private addresses: use a private address, or upload an installer's certificate."
        }
    };
    let mut warnings: Vec<Notice> = camera_upload::address_notices(&names, addresses, &[])
        .into_iter()
        .map(|notice| Notice { code: notice.code, message: format!("{} {advice}", notice.message) })
        .collect();
    let now = now_signed();
    let days_left = (info.not_after_unix - now) / 86_400;
    if info.not_after_unix <= now {
        warnings.push(Notice {
            code: "expired",
            message: format!("This certificate expired on {}: browsers refuse it.", info.not_after),
        });
    } else if source == Source::Uploaded
        && now >= super::expiry::warning_from(info.not_after_unix, expiry_warning_days, super::expiry::Renewal::ByHand)
    {
        warnings.push(Notice {
            code: "expires_soon",
            message: format!(
                "This certificate expires in {days_left} days ({}): upload a renewed one.",
                info.not_after
            ),
        });
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
        let covered = coverage_warnings(&info(&["10.0.0.5", "cam.local"]), &ips(&["10.0.0.5"]), Source::Device, 30);
        assert!(covered.is_empty(), "{covered:?}");
        assert!(names_cover(&["10.0.0.5".into(), "cam.local".into()], "cam.local"));
        assert!(names_cover(&["fd00::5".into()], "[fd00::5]"));
        assert!(!names_cover(&["10.0.0.5".into()], "10.0.0.6"));
        // *.local does not cover cam.local (one label under a public-suffix-like name is no
        // wildcard target); the UI shows the server's verdict rather than a rule of its own.
        assert_eq!(
            names_cover(&["*.local".into()], "cam.local"),
            camera_upload::dns_name_matches("*.local", "cam.local")
        );

        let public_left_out =
            coverage_warnings(&info(&["10.0.0.5"]), &ips(&["10.0.0.5", "2001:db8::5"]), Source::Device, 30);
        assert_eq!(public_left_out[0].code, "name_partial");
        let message = &public_left_out[0].message;
        assert!(message.contains("2001:db8::5") && message.contains("may only sign private addresses"), "{message}");

        let moved = coverage_warnings(&info(&["192.168.1.50"]), &ips(&["10.0.0.5"]), Source::Uploaded, 30);
        assert_eq!(moved[0].code, "name_mismatch");
        let message = &moved[0].message;
        assert!(
            message.contains("names 192.168.1.50 but the camera is at 10.0.0.5") && message.contains("Restore"),
            "{message}"
        );
    }

    /// The status page warns of an uploaded certificate's expiry by the configured window, the
    /// same rule the expiry monitor and the log follow.
    #[test]
    fn expires_soon_follows_the_configured_window() {
        let in_45_days = now_signed() + 45 * 86_400;
        let cert = CertificateInfo { not_after_unix: in_45_days, ..info(&["10.0.0.5"]) };
        let addresses = ips(&["10.0.0.5"]);
        let codes = |days| -> Vec<&str> {
            coverage_warnings(&cert, &addresses, Source::Uploaded, days).iter().map(|n| n.code).collect()
        };
        assert_eq!(codes(60), ["expires_soon"]);
        assert!(codes(30).is_empty());
        assert!(codes(7).is_empty());
        // The monitor agrees at the same setting.
        let now = now_signed();
        let warn =
            |days| now >= crate::domain::expiry::warning_from(in_45_days, days, crate::domain::expiry::Renewal::ByHand);
        assert!(warn(60) && !warn(30));
        // Enrolled certificates are the enrollment's to renew: no notice to upload one.
        assert!(coverage_warnings(&cert, &addresses, Source::Enrolled, 60).is_empty());
    }
}
