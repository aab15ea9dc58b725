//! Orders certificates into a chain, pairs the leaf with a key, and applies the acceptance rules.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;
use x509_parser::time::ASN1Time;
use x509_parser::x509::X509Version;

use crate::detect::Material;
use crate::keys::{self, PrivateKey};
use crate::{Accepted, Context, Notice, UploadError};

const DAY: i64 = 86_400;
/// CA/Browser Forum and Apple limit for publicly trusted TLS certificates.
const MAX_VALIDITY_DAYS: i64 = 398;
const EXPIRY_WARNING_DAYS: i64 = 30;

fn malformed_cert() -> UploadError {
    UploadError::Malformed { what: "certificate" }
}

/// A short name for a certificate: its CN, or the whole subject.
fn display_name(cert: &X509Certificate<'_>) -> String {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| cert.subject().to_string())
}

fn issuer_name(cert: &X509Certificate<'_>) -> String {
    cert.issuer()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| cert.issuer().to_string())
}

fn same_name(a: &x509_parser::x509::X509Name<'_>, b: &x509_parser::x509::X509Name<'_>) -> bool {
    a.as_raw() == b.as_raw() || a.to_string() == b.to_string()
}

/// `issuer`'s subject is the name `child` says issued it (and they are not the same certificate).
fn names_issuer(issuer: &X509Certificate<'_>, child: &X509Certificate<'_>) -> bool {
    same_name(issuer.subject(), child.issuer())
}

fn self_issued(c: &X509Certificate<'_>) -> bool {
    same_name(c.subject(), c.issuer())
}

/// A CA certificate: basicConstraints CA:true, or (as OpenSSL treats it) a self-signed version 1
/// certificate, which is what `openssl x509 -req -signkey` makes for a root CA (seed 002).
fn is_ca(c: &X509Certificate<'_>) -> Result<bool, UploadError> {
    let bc = c.basic_constraints().map_err(|_| malformed_cert())?;
    Ok(bc.is_some_and(|bc| bc.value.ca) || (c.version() == X509Version::V1 && self_issued(c)))
}

fn format_time(t: &ASN1Time) -> String {
    let dt = t.to_datetime();
    format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", dt.year(), u8::from(dt.month()), dt.day(), dt.hour(), dt.minute())
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

fn format_unix(secs: i64) -> String {
    ASN1Time::from_timestamp(secs).map_or_else(|_| format!("{secs} seconds after 1970"), |t| format_time(&t))
}

/// Checks the validity period of one certificate at `now`.
fn check_validity(c: &X509Certificate<'_>, now: i64, leaf: bool) -> Result<(), UploadError> {
    let v = c.validity();
    if v.not_before.timestamp() > now {
        return Err(UploadError::NotYetValid {
            subject: display_name(c),
            not_before: format_time(&v.not_before),
            now: format_unix(now),
        });
    }
    if v.not_after.timestamp() < now {
        return Err(UploadError::Expired { subject: display_name(c), not_after: format_time(&v.not_after), leaf });
    }
    Ok(())
}

/// Picks the server certificate among the uploaded ones.
fn pick_leaf(certs: &[X509Certificate<'_>], keys_to_try: &[&PrivateKey]) -> Result<usize, UploadError> {
    let n = certs.len();
    let candidates: Vec<usize> = (0..n)
        .filter(|&i| !(0..n).any(|j| j != i && names_issuer(&certs[i], &certs[j]) && !self_issued(&certs[j])))
        .collect();
    if candidates.len() == 1 {
        return Ok(candidates[0]);
    }
    let mut non_ca = Vec::new();
    for &i in &candidates {
        if !is_ca(&certs[i])? {
            non_ca.push(i);
        }
    }
    if non_ca.len() == 1 {
        return Ok(non_ca[0]);
    }
    let pool = if non_ca.is_empty() { &candidates } else { &non_ca };
    let matching: Vec<usize> = pool
        .iter()
        .copied()
        .filter(|&i| keys::cert_public_key(&certs[i]).is_ok_and(|p| keys_to_try.iter().any(|k| k.public.matches(&p))))
        .collect();
    if matching.len() == 1 {
        return Ok(matching[0]);
    }
    if !candidates.is_empty() && non_ca.is_empty() {
        // Only CA certificates were uploaded (e.g. the root CA instead of the server certificate).
        return Err(UploadError::CaCertificate);
    }
    let shown = if pool.is_empty() { (0..n).collect::<Vec<_>>() } else { pool.clone() };
    Err(UploadError::AmbiguousChain { candidates: shown.iter().map(|&i| display_name(&certs[i])).collect() })
}

/// The names a leaf certificate claims: SAN IPs and DNS names, or the CN when there is no SAN.
#[derive(Debug, Clone, Default)]
pub struct CertificateNames {
    pub ips: Vec<IpAddr>,
    pub dns: Vec<String>,
    pub has_san: bool,
}

fn names_of(c: &X509Certificate<'_>) -> Result<CertificateNames, UploadError> {
    let mut names = CertificateNames { ips: Vec::new(), dns: Vec::new(), has_san: false };
    if let Some(san) = c.subject_alternative_name().map_err(|_| malformed_cert())? {
        names.has_san = true;
        for gn in &san.value.general_names {
            match gn {
                GeneralName::DNSName(d) => names.dns.push(d.to_string()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => names.ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).map_err(|_| malformed_cert())?)),
                    16 => names.ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).map_err(|_| malformed_cert())?)),
                    _ => {}
                },
                _ => {}
            }
        }
    } else {
        for cn in c.subject().iter_common_name() {
            if let Ok(s) = cn.as_str() {
                match s.trim().parse::<IpAddr>() {
                    Ok(ip) => names.ips.push(ip),
                    Err(_) => names.dns.push(s.trim().to_string()),
                }
            }
        }
    }
    Ok(names)
}

/// Whether a certificate DNS name (possibly a wildcard) matches a host name, as browsers do it:
/// case-insensitive, a wildcard only as the whole left-most label, matching exactly one label, and
/// never directly under a single-label suffix (`*.local` does not match `cam.local`).
pub fn dns_name_matches(pattern: &str, host: &str) -> bool {
    let p = pattern.trim_end_matches('.').to_ascii_lowercase();
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if p.is_empty() || h.is_empty() {
        return false;
    }
    match p.strip_prefix("*.") {
        None => !p.contains('*') && p == h,
        Some(suffix) => {
            if suffix.contains('*') || !suffix.contains('.') {
                return false;
            }
            match h.split_once('.') {
                Some((label, rest)) => !label.is_empty() && rest == suffix,
                None => false,
            }
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

fn relevant_ip(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_unspecified(),
        IpAddr::V6(v6) => !v6.is_loopback() && !v6.is_unspecified() && (v6.segments()[0] & 0xffc0) != 0xfe80,
    }
}

fn join_ips(ips: &[IpAddr]) -> String {
    ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Warnings about the camera's addresses a certificate does not name: the one rule both the
/// upload check and the camera's status page use. `current_ips` are the camera's addresses,
/// `current_dns` its names (e.g. `cam.local`).
pub fn address_notices(names: &CertificateNames, current_ips: &[IpAddr], current_dns: &[String]) -> Vec<Notice> {
    let mut warnings = Vec::new();
    if !names.has_san {
        warnings.push(Notice::new(
            "no_subject_alt_name",
            "This certificate has no subjectAltName, and browsers ignore the common name: they will warn. Ask for a certificate with subjectAltName=IP:<camera address> (and/or DNS:<name>).",
        ));
    }
    let relevant: Vec<IpAddr> = current_ips.iter().copied().filter(relevant_ip).map(canonical).collect();
    if relevant.is_empty() {
        return warnings;
    }
    let cert_ips: Vec<IpAddr> = names.ips.iter().copied().map(canonical).collect();
    let covered: Vec<IpAddr> = relevant.iter().copied().filter(|ip| cert_ips.contains(ip)).collect();
    let missing: Vec<IpAddr> = relevant.iter().copied().filter(|ip| !cert_ips.contains(ip)).collect();
    if missing.is_empty() {
        return warnings;
    }
    let dns_covered: Vec<&String> =
        current_dns.iter().filter(|h| names.dns.iter().any(|p| dns_name_matches(p, h))).collect();
    if covered.is_empty() {
        if let Some(name) = dns_covered.first() {
            warnings.push(Notice::new(
                "address_not_named",
                format!(
                    "This certificate names the camera as {name} but not its address {}: open the camera by that name, otherwise browsers will warn.",
                    join_ips(&missing)
                ),
            ));
        } else {
            let mut listed: Vec<String> = names.ips.iter().map(ToString::to_string).collect();
            listed.extend(names.dns.iter().cloned());
            listed.truncate(8);
            let claimed = if listed.is_empty() { "no address or name".to_string() } else { listed.join(", ") };
            warnings.push(Notice::new(
                "name_mismatch",
                format!(
                    "This certificate names {claimed} but the camera is at {}: browsers will warn. Ask for a certificate naming the camera's address, or change the camera's address.",
                    join_ips(&relevant)
                ),
            ));
        }
    } else {
        warnings.push(Notice::new(
            "name_partial",
            format!(
                "This certificate does not name {}, where the camera can also be reached: browsers will warn when the camera is opened at that address.",
                join_ips(&missing)
            ),
        ));
    }
    warnings
}

/// Turns the collected material into an accepted (chain, key) pair, or an error.
pub(crate) fn assemble(material: Material, ctx: &Context<'_>) -> Result<Accepted, UploadError> {
    let Material { certs: cert_ders, keys: uploaded_keys, saw_csr, saw_public_key } = material;
    if cert_ders.is_empty() {
        return Err(if !uploaded_keys.is_empty() || saw_public_key {
            UploadError::CertificateMissing
        } else if saw_csr {
            UploadError::CertificateRequest
        } else {
            UploadError::Unrecognised
        });
    }
    let mut certs = Vec::with_capacity(cert_ders.len());
    for der in &cert_ders {
        let (_, c) = x509_parser::parse_x509_certificate(der).map_err(|_| malformed_cert())?;
        certs.push(c);
    }
    let pending = ctx.pending_key_pkcs8.and_then(|p| keys::from_pkcs8(p).ok());
    let keys_to_try: Vec<&PrivateKey> =
        if uploaded_keys.is_empty() { pending.iter().collect() } else { uploaded_keys.iter().collect() };

    let leaf_idx = pick_leaf(&certs, &keys_to_try)?;
    let leaf = &certs[leaf_idx];
    if is_ca(leaf)? {
        return Err(UploadError::CaCertificate);
    }

    // Pair the leaf with a key.
    let leaf_pub = keys::cert_public_key(leaf).map_err(|found| UploadError::UnsupportedKey { found })?;
    let pending_matches = pending.as_ref().is_some_and(|p| p.public.matches(&leaf_pub));
    let (key_pkcs8, key_from_pending_csr) = if !uploaded_keys.is_empty() {
        match uploaded_keys.into_iter().find(|k| k.public.matches(&leaf_pub)) {
            Some(k) => (k.pkcs8, false),
            None => return Err(UploadError::KeyMismatch { matches_pending: pending_matches }),
        }
    } else {
        match pending {
            Some(p) if pending_matches => (p.pkcs8, true),
            Some(_) => return Err(UploadError::NotForThisCamera),
            None => return Err(UploadError::KeyRequired),
        }
    };

    // The leaf's own rules.
    let now = unix_seconds(ctx.now);
    check_validity(leaf, now, true)?;
    if let Some(eku) = leaf.extended_key_usage().map_err(|_| malformed_cert())? {
        if !eku.value.server_auth && !eku.value.any {
            return Err(UploadError::NotServerCertificate);
        }
    }
    if let Some(ku) = leaf.key_usage().map_err(|_| malformed_cert())? {
        if !ku.value.digital_signature() {
            return Err(UploadError::KeyUsageNoSignature);
        }
    }

    // Build the chain upwards, verifying each signature.
    let mut order = vec![leaf_idx];
    let mut used: HashSet<usize> = HashSet::from([leaf_idx]);
    let mut cur = leaf_idx;
    let mut reached_self_signed = self_issued(leaf);
    while !self_issued(&certs[cur]) {
        let child = &certs[cur];
        let named: Vec<usize> =
            (0..certs.len()).filter(|j| !used.contains(j) && names_issuer(&certs[*j], child)).collect();
        let Some(&first) = named.first() else { break };
        let mut found = None;
        let mut reason = String::new();
        for &j in &named {
            match child.verify_signature(Some(certs[j].public_key())) {
                Ok(()) => {
                    found = Some(j);
                    break;
                }
                Err(X509Error::SignatureUnsupportedAlgorithm) if reason.is_empty() => {
                    reason = "its signature algorithm is not supported".into();
                }
                Err(_) if reason.is_empty() => {
                    reason = "the signature does not verify: this CA certificate has the right name but not the key that signed it".into();
                }
                Err(_) => {}
            }
        }
        let Some(j) = found else {
            return Err(UploadError::BrokenChain {
                subject: display_name(child),
                issuer: display_name(&certs[first]),
                reason,
            });
        };
        let issuer = &certs[j];
        if !self_issued(issuer) {
            // An intermediate must be a CA allowed to sign certificates (a root is trusted as such).
            let ca_ok = is_ca(issuer)? || issuer.version() == X509Version::V1;
            let ku_ok = issuer.key_usage().map_err(|_| malformed_cert())?.is_none_or(|ku| ku.value.key_cert_sign());
            if !ca_ok || !ku_ok {
                return Err(UploadError::BrokenChain {
                    subject: display_name(child),
                    issuer: display_name(issuer),
                    reason: "the issuer is not a CA certificate allowed to sign certificates".into(),
                });
            }
        }
        check_validity(issuer, now, false)?;
        order.push(j);
        used.insert(j);
        cur = j;
        reached_self_signed = self_issued(issuer);
    }

    // Warnings.
    let mut warnings = Vec::new();
    warnings.extend(address_notices(&names_of(leaf)?, ctx.current_ips, ctx.current_dns));
    let v = leaf.validity();
    let lifetime_days = (v.not_after.timestamp() - v.not_before.timestamp()) / DAY;
    if lifetime_days > MAX_VALIDITY_DAYS {
        warnings.push(Notice::new(
            "long_validity",
            format!(
                "This certificate is valid for {lifetime_days} days, more than the {MAX_VALIDITY_DAYS} days browsers accept for public CAs (825 for private CAs on Apple devices): some browsers may refuse it."
            ),
        ));
    }
    let days_left = (v.not_after.timestamp() - now) / DAY;
    if days_left < EXPIRY_WARNING_DAYS {
        warnings.push(Notice::new(
            "expires_soon",
            format!(
                "This certificate expires on {} (in {days_left} days): plan to upload a renewed one.",
                format_time(&v.not_after)
            ),
        ));
    }
    let top = &certs[cur];
    if !reached_self_signed {
        warnings.push(Notice::new(
            "issuer_not_included",
            format!(
                "The chain ends at \"{}\", issued by \"{}\", which was not uploaded: that is fine, but each PC must trust \"{}\" (import that CA certificate into the PC), or browsers will warn.",
                display_name(top),
                issuer_name(top),
                issuer_name(top)
            ),
        ));
    } else if order.len() == 1 {
        warnings.push(Notice::new(
            "self_signed",
            "This certificate is self-signed: each PC must import it as trusted, or browsers will warn.",
        ));
    }
    let extra: Vec<String> = (0..certs.len()).filter(|i| !used.contains(i)).map(|i| display_name(&certs[i])).collect();
    if !extra.is_empty() {
        warnings.push(Notice::new(
            "extra_certificates_ignored",
            format!("Ignored certificate(s) that are not part of this certificate's chain: {}.", extra.join("; ")),
        ));
    }

    let chain_der = order.iter().map(|&i| cert_ders[i].clone()).collect();
    Ok(Accepted { chain_der, key_pkcs8, key_from_pending_csr, warnings })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::dns_name_matches;

    #[test]
    fn wildcards() {
        assert!(dns_name_matches("cam.example.com", "CAM.example.com."));
        assert!(dns_name_matches("*.example.com", "cam.example.com"));
        assert!(!dns_name_matches("*.example.com", "example.com"));
        assert!(!dns_name_matches("*.example.com", "a.cam.example.com"));
        assert!(!dns_name_matches("*.local", "cam.local"));
        assert!(!dns_name_matches("c*.example.com", "cam.example.com"));
        assert!(!dns_name_matches("*.*.example.com", "a.b.example.com"));
        assert!(!dns_name_matches("*.example.com", ".example.com"));
    }
}
