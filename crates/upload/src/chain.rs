//! Orders certificates into a chain, pairs the leaf with a key, and applies the acceptance rules.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use camera_log::escape;
use camera_pki::x509::{Certificate, GeneralName, KeyPurpose, Name, SignatureError};
use pkcs8::der::DateTime;
use zeroize::Zeroizing;

use crate::keys::{self, PrivateKey};
use crate::material::Material;
use crate::{Accepted, Context, Notice, UploadError};

const DAY: i64 = 86_400;
/// CA/Browser Forum and Apple limit for publicly trusted TLS certificates.
const MAX_VALIDITY_DAYS: i64 = 398;
const EXPIRY_WARNING_DAYS: i64 = 30;

fn malformed_cert(e: impl std::error::Error + Send + Sync + 'static) -> UploadError {
    UploadError::malformed_by("certificate", e)
}

/// A short name for a certificate: its CN, or the whole subject.
fn display_name(cert: &Certificate<'_>) -> String {
    cert.subject().common_names().next().flatten().unwrap_or_else(|| cert.subject_string())
}

fn issuer_name(cert: &Certificate<'_>) -> String {
    cert.issuer().common_names().next().flatten().unwrap_or_else(|| cert.issuer_string())
}

/// The same name: the same bytes, or (written with other string types) the same text.
fn same_name(a: &Name<'_>, b: &Name<'_>) -> bool {
    a == b || a.to_string() == b.to_string()
}

/// `issuer`'s subject is the name `child` says issued it (and they are not the same certificate).
fn names_issuer(issuer: &Certificate<'_>, child: &Certificate<'_>) -> bool {
    same_name(issuer.subject(), child.issuer())
}

fn self_issued(c: &Certificate<'_>) -> bool {
    same_name(c.subject(), c.issuer())
}

/// A CA certificate: basicConstraints CA:true, or (as OpenSSL treats it) a self-signed version 1
/// certificate, which is what `openssl x509 -req -signkey` makes for a root CA (the camera makers' own instructions do that).
fn is_ca(c: &Certificate<'_>) -> Result<bool, UploadError> {
    Ok(c.is_ca().map_err(malformed_cert)? || (c.is_v1() && self_issued(c)))
}

fn format_time(unix: i64) -> String {
    match u64::try_from(unix).ok().and_then(|s| DateTime::from_unix_duration(std::time::Duration::from_secs(s)).ok()) {
        Some(dt) => {
            format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", dt.year(), dt.month(), dt.day(), dt.hour(), dt.minutes())
        }
        None => format!("{unix} seconds after 1970"),
    }
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Checks the validity period of one certificate at `now`.
fn check_validity(c: &Certificate<'_>, now: i64, leaf: bool) -> Result<(), UploadError> {
    if c.not_before_unix() > now {
        return Err(UploadError::NotYetValid {
            subject: display_name(c),
            not_before: format_time(c.not_before_unix()),
            now: format_time(now),
        });
    }
    if c.not_after_unix() < now {
        return Err(UploadError::Expired {
            subject: display_name(c),
            not_after: format_time(c.not_after_unix()),
            leaf,
        });
    }
    Ok(())
}

/// Picks the server certificate among the uploaded ones.
fn pick_leaf(certs: &[Certificate<'_>], keys_to_try: &[&PrivateKey]) -> Result<usize, UploadError> {
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

fn names_of(c: &Certificate<'_>) -> Result<CertificateNames, UploadError> {
    let mut names = CertificateNames { ips: Vec::new(), dns: Vec::new(), has_san: false };
    if let Some(san) = c.subject_alt_names().map_err(malformed_cert)? {
        names.has_san = true;
        for gn in &san {
            match gn {
                GeneralName::Dns(d) => names.dns.push((*d).to_string()),
                // Neither 4 nor 16 bytes: names no address.
                GeneralName::Ip(_) => names.ips.extend(gn.ip()),
                _ => {}
            }
        }
    } else {
        for s in c.subject().common_names().flatten() {
            match s.trim().parse::<IpAddr>() {
                Ok(ip) => names.ips.push(ip),
                Err(_) => names.dns.push(s.trim().to_string()),
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

/// Names from a certificate, quoted in a sentence: control characters escaped.
fn join_names<S: AsRef<str>>(names: &[S]) -> String {
    names.iter().map(|n| escape(n.as_ref())).collect::<Vec<_>>().join("; ")
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
                    "This certificate names the camera as {} but not its address {}: open the camera by that name, otherwise browsers will warn.",
                    escape(name),
                    join_ips(&missing)
                ),
            ));
        } else {
            let mut listed: Vec<String> = names.ips.iter().map(ToString::to_string).collect();
            listed.extend(names.dns.iter().cloned());
            listed.truncate(8);
            let claimed = if listed.is_empty() {
                "no address or name".to_string()
            } else {
                listed.iter().map(|n| escape(n)).collect::<Vec<_>>().join(", ")
            };
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

/// Turns the collected material into an accepted (chain, key) pair, or an error: parse the
/// certificates, pick the server certificate, pair it with a key, apply its own rules, build and
/// verify the chain above it, then collect the warnings.
pub(crate) fn assemble(material: Material, ctx: &Context<'_>) -> Result<Accepted, UploadError> {
    let Material { certs: cert_ders, keys: uploaded_keys, saw_csr, saw_public_key } = material;
    if cert_ders.is_empty() {
        return Err(no_certificate(!uploaded_keys.is_empty() || saw_public_key, saw_csr));
    }
    let certs = parse_all(&cert_ders)?;
    let pending = ctx.pending_key_pkcs8.and_then(|p| keys::from_pkcs8(p).ok());
    let keys_to_try: Vec<&PrivateKey> =
        if uploaded_keys.is_empty() { pending.iter().collect() } else { uploaded_keys.iter().collect() };
    let leaf_idx = pick_leaf(&certs, &keys_to_try)?;
    let leaf = &certs[leaf_idx];
    if is_ca(leaf)? {
        return Err(UploadError::CaCertificate);
    }
    let (key_pkcs8, key_from_pending_csr) = pair_key(leaf, uploaded_keys, pending)?;
    let now = unix_seconds(ctx.now);
    check_leaf(leaf, now, ctx.purpose)?;
    let chain = build_chain(&certs, leaf_idx, now)?;
    let warnings = warnings(&certs, &chain, ctx, now)?;
    let chain_der = chain.order.iter().map(|&i| cert_ders[i].clone()).collect();
    Ok(Accepted { chain_der, key_pkcs8, key_from_pending_csr, warnings })
}

/// Why an upload without any certificate is refused.
fn no_certificate(saw_key: bool, saw_csr: bool) -> UploadError {
    if saw_key {
        UploadError::CertificateMissing
    } else if saw_csr {
        UploadError::CertificateRequest
    } else {
        UploadError::Unrecognised
    }
}

fn parse_all(ders: &[Vec<u8>]) -> Result<Vec<Certificate<'_>>, UploadError> {
    ders.iter().map(|der| Certificate::parse(der).map_err(malformed_cert)).collect()
}

/// The key that goes with the leaf: an uploaded one that pairs with it, or else the camera's
/// pending CSR key. Returns the key and whether it is the pending one.
fn pair_key(
    leaf: &Certificate<'_>,
    uploaded_keys: Vec<PrivateKey>,
    pending: Option<PrivateKey>,
) -> Result<(Zeroizing<Vec<u8>>, bool), UploadError> {
    let leaf_pub = keys::cert_public_key(leaf).map_err(|found| UploadError::UnsupportedKey { found })?;
    let pending_matches = pending.as_ref().is_some_and(|p| p.public.matches(&leaf_pub));
    if !uploaded_keys.is_empty() {
        return match uploaded_keys.into_iter().find(|k| k.public.matches(&leaf_pub)) {
            Some(k) => Ok((k.pkcs8, false)),
            None => Err(UploadError::KeyMismatch { matches_pending: pending_matches }),
        };
    }
    match pending {
        Some(p) if pending_matches => Ok((p.pkcs8, true)),
        Some(_) => Err(UploadError::NotForThisCamera),
        None => Err(UploadError::KeyRequired),
    }
}

/// The leaf's own rules: valid now, allowed for its purpose (TLS server or client), allowed to sign.
fn check_leaf(leaf: &Certificate<'_>, now: i64, purpose: KeyPurpose) -> Result<(), UploadError> {
    check_validity(leaf, now, true)?;
    if leaf.allows_usage(purpose).map_err(malformed_cert)? == Some(false) {
        return Err(match purpose {
            KeyPurpose::TlsServer => UploadError::NotServerCertificate,
            KeyPurpose::TlsClient => UploadError::NotClientCertificate,
        });
    }
    if let Some(ku) = leaf.key_usage().map_err(malformed_cert)? {
        if !ku.digital_signature() {
            return Err(UploadError::KeyUsageNoSignature);
        }
    }
    Ok(())
}

/// The chain from the leaf upwards, as indices into the uploaded certificates.
struct Chain {
    /// Leaf first, each certificate followed by its issuer.
    order: Vec<usize>,
    /// Whether the last one is self-issued (a root), rather than issued by one not uploaded.
    reached_self_signed: bool,
}

impl Chain {
    fn top(&self) -> usize {
        self.order.last().copied().unwrap_or_default()
    }
}

/// Builds the chain upwards from the leaf, verifying each signature and that each intermediate
/// may sign certificates, until a self-issued certificate or one whose issuer was not uploaded.
fn build_chain(certs: &[Certificate<'_>], leaf_idx: usize, now: i64) -> Result<Chain, UploadError> {
    let mut order = vec![leaf_idx];
    let mut used: HashSet<usize> = HashSet::from([leaf_idx]);
    let mut cur = leaf_idx;
    while !self_issued(&certs[cur]) {
        let Some(j) = find_issuer(certs, cur, &used)? else { break };
        check_issuer(&certs[cur], &certs[j])?;
        check_validity(&certs[j], now, false)?;
        order.push(j);
        used.insert(j);
        cur = j;
    }
    Ok(Chain { reached_self_signed: self_issued(&certs[cur]), order })
}

/// The unused certificate that names and signed `certs[child]`: `None` if none is named as its
/// issuer, an error if some are named but none signed it.
fn find_issuer(certs: &[Certificate<'_>], child: usize, used: &HashSet<usize>) -> Result<Option<usize>, UploadError> {
    let child_cert = &certs[child];
    let named: Vec<usize> =
        (0..certs.len()).filter(|j| !used.contains(j) && names_issuer(&certs[*j], child_cert)).collect();
    let Some(&first) = named.first() else { return Ok(None) };
    let mut first_error = None;
    for &j in &named {
        match child_cert.verify_signed_by(&certs[j]) {
            Ok(()) => return Ok(Some(j)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let reason = match first_error {
        Some(SignatureError::UnsupportedAlgorithm) => "its signature algorithm is not supported",
        _ => "the signature does not verify: this CA certificate has the right name but not the key that signed it",
    };
    Err(UploadError::BrokenChain {
        subject: display_name(child_cert),
        issuer: display_name(&certs[first]),
        reason: reason.into(),
        source: first_error.map(crate::Cause::new),
    })
}

/// An intermediate must be a CA allowed to sign certificates (a root is trusted as such).
fn check_issuer(child: &Certificate<'_>, issuer: &Certificate<'_>) -> Result<(), UploadError> {
    if self_issued(issuer) {
        return Ok(());
    }
    let ca_ok = is_ca(issuer)? || issuer.is_v1();
    let ku_ok = issuer.key_usage().map_err(malformed_cert)?.is_none_or(|ku| ku.key_cert_sign());
    if ca_ok && ku_ok {
        return Ok(());
    }
    Err(UploadError::BrokenChain {
        subject: display_name(child),
        issuer: display_name(issuer),
        reason: "the issuer is not a CA certificate allowed to sign certificates".into(),
        source: None,
    })
}

/// What does not prevent use but the installer should know: names versus the camera's addresses
/// and lifetime (a server's: browsers check them), expiry, the chain's end, certificates left out.
fn warnings(certs: &[Certificate<'_>], chain: &Chain, ctx: &Context<'_>, now: i64) -> Result<Vec<Notice>, UploadError> {
    let leaf = &certs[chain.order[0]];
    let mut warnings = Vec::new();
    if ctx.purpose == KeyPurpose::TlsServer {
        warnings = address_notices(&names_of(leaf)?, ctx.current_ips, ctx.current_dns);
    }
    warnings.extend(validity_notices(leaf, now, ctx.purpose));
    warnings.extend(chain_notices(certs, chain));
    Ok(warnings)
}

fn validity_notices(leaf: &Certificate<'_>, now: i64, purpose: KeyPurpose) -> Vec<Notice> {
    let mut warnings = Vec::new();
    let lifetime_days = (leaf.not_after_unix() - leaf.not_before_unix()) / DAY;
    if lifetime_days > MAX_VALIDITY_DAYS && purpose == KeyPurpose::TlsServer {
        warnings.push(Notice::new(
            "long_validity",
            format!(
                "This certificate is valid for {lifetime_days} days, more than the {MAX_VALIDITY_DAYS} days browsers accept for public CAs (825 for private CAs on Apple devices): some browsers may refuse it."
            ),
        ));
    }
    let days_left = (leaf.not_after_unix() - now) / DAY;
    if days_left < EXPIRY_WARNING_DAYS {
        warnings.push(Notice::new(
            "expires_soon",
            format!(
                "This certificate expires on {} (in {days_left} days): plan to upload a renewed one.",
                format_time(leaf.not_after_unix())
            ),
        ));
    }
    warnings
}

fn chain_notices(certs: &[Certificate<'_>], chain: &Chain) -> Vec<Notice> {
    let mut warnings = Vec::new();
    let top = &certs[chain.top()];
    if !chain.reached_self_signed {
        warnings.push(Notice::new(
            "issuer_not_included",
            format!(
                "The chain ends at \"{}\", issued by \"{}\", which was not uploaded: that is fine, but each PC must trust \"{}\" (import that CA certificate into the PC), or browsers will warn.",
                escape(&display_name(top)),
                escape(&issuer_name(top)),
                escape(&issuer_name(top))
            ),
        ));
    } else if chain.order.len() == 1 {
        warnings.push(Notice::new(
            "self_signed",
            "This certificate is self-signed: each PC must import it as trusted, or browsers will warn.",
        ));
    }
    let extra: Vec<String> =
        (0..certs.len()).filter(|i| !chain.order.contains(i)).map(|i| display_name(&certs[i])).collect();
    if !extra.is_empty() {
        warnings.push(Notice::new(
            "extra_certificates_ignored",
            format!("Ignored certificate(s) that are not part of this certificate's chain: {}.", join_names(&extra)),
        ));
    }
    warnings
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
