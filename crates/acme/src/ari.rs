//! ACME Renewal Information (RFC 9773): the CA's suggested window for renewing a certificate, so
//! that a CA can spread a fleet's renewals and ask for early ones (revocation, an incident).
//!
//! A certificate is named by its CertID (section 4.1): base64url(the keyIdentifier of its
//! Authority Key Identifier) "." base64url(the content bytes of its serial number's DER
//! encoding), both unpadded. The leaf is read with a small DER walker here: bounded, never
//! panicking, a pure function of bytes. The same CertID goes into a new order's `replaces`
//! (section 5).

use std::time::Duration;

use base64ct::{Base64UrlUnpadded, Encoding};
use camera_http_client::{HttpClient, Scheme, Url};
use serde::Deserialize;

use crate::error::{AcmeError, Operation};
use crate::wire::{self, WireError};

/// A `Retry-After` on a renewal information answer is honoured within these bounds: sooner would
/// let a CA make the camera poll it in a tight loop, later would miss a revocation for days.
pub const MIN_RECHECK: Duration = Duration::from_secs(60);
pub const MAX_RECHECK: Duration = Duration::from_secs(24 * 3600);
/// When the answer carries no `Retry-After` (RFC 9773 section 4.3.2 suggests six hours).
pub const DEFAULT_RECHECK: Duration = Duration::from_secs(6 * 3600);
/// Longest explanation URL kept (it is shown to the installer, escaped).
pub const MAX_EXPLANATION_URL: usize = 200;

/// The CA's suggested renewal window for one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalInfo {
    /// The window, seconds since the epoch (`end` is never before `start`).
    pub start_unix: u64,
    pub end_unix: u64,
    /// When to ask again: the answer's `Retry-After` clamped to [`MIN_RECHECK`, `MAX_RECHECK`],
    /// [`DEFAULT_RECHECK`] without one.
    pub recheck_after: Duration,
    /// A page explaining the window, if the CA gave one (escaped, bounded).
    pub explanation_url: Option<String>,
}

/// When to ask again after `failures` questions in a row got no answer (the CA down, an error
/// page): its `Retry-After` if it sent one (clamped as [`recheck_after`]), else [`MIN_RECHECK`]
/// doubling with each failure up to [`DEFAULT_RECHECK`] (RFC 9773 section 4.3.3: retry with
/// exponential backoff). A camera whose question fell into an outage hears from the CA minutes
/// after it is back, windows it moved meanwhile (a revocation) included, not hours later.
pub fn recheck_after_failure(retry_after: Option<Duration>, failures: u32) -> Duration {
    match retry_after {
        Some(_) => recheck_after(retry_after),
        None => MIN_RECHECK.saturating_mul(1 << failures.saturating_sub(1).min(16)).min(DEFAULT_RECHECK),
    }
}

/// The `Retry-After` of a renewal information answer, clamped (see [`MIN_RECHECK`]).
pub fn recheck_after(retry_after: Option<Duration>) -> Duration {
    retry_after.unwrap_or(DEFAULT_RECHECK).clamp(MIN_RECHECK, MAX_RECHECK)
}

/// One DER element: (tag, content, rest). Lengths up to four bytes; nothing here panics.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
/// `[0] EXPLICIT Version` in a TBSCertificate.
const VERSION: u8 = 0xa0;
/// `[3] EXPLICIT Extensions` in a TBSCertificate.
const EXTENSIONS: u8 = 0xa3;
/// `[0] IMPLICIT KeyIdentifier` in an AuthorityKeyIdentifier.
const KEY_IDENTIFIER: u8 = 0x80;
/// id-ce-authorityKeyIdentifier, 2.5.29.35.
const AKI_OID: &[u8] = &[0x55, 0x1d, 0x23];

/// The CertID of two parts (RFC 9773 section 4.1): the Authority Key Identifier's keyIdentifier
/// and the serial number's DER content bytes (with the leading zero a positive number may need).
pub fn cert_id_of(key_identifier: &[u8], serial: &[u8]) -> String {
    format!("{}.{}", Base64UrlUnpadded::encode_string(key_identifier), Base64UrlUnpadded::encode_string(serial))
}

/// The CertID of a DER certificate (RFC 9773 section 4.1). A certificate without an Authority
/// Key Identifier has none (the camera then renews on its own schedule).
pub fn cert_id(leaf_der: &[u8]) -> Result<String, WireError> {
    let bad = || WireError::Invalid("certificate (for its renewal information)");
    let (tag, certificate, _) = element(leaf_der).ok_or_else(bad)?;
    if tag != SEQUENCE {
        return Err(bad());
    }
    let (tbs_tag, tbs, _) = element(certificate).ok_or_else(bad)?;
    if tbs_tag != SEQUENCE {
        return Err(bad());
    }
    let (mut field_tag, mut content, mut fields) = element(tbs).ok_or_else(bad)?;
    if field_tag == VERSION {
        (field_tag, content, fields) = element(fields).ok_or_else(bad)?;
    }
    if field_tag != INTEGER || content.is_empty() || content.len() > 64 {
        return Err(bad());
    }
    let serial = content;
    let mut key_identifier = None;
    while !fields.is_empty() {
        let (tag, content, rest) = element(fields).ok_or_else(bad)?;
        fields = rest;
        if tag != EXTENSIONS {
            continue;
        }
        let (seq, mut extensions, _) = element(content).ok_or_else(bad)?;
        if seq != SEQUENCE {
            return Err(bad());
        }
        while !extensions.is_empty() {
            let (extension_tag, extension, rest) = element(extensions).ok_or_else(bad)?;
            extensions = rest;
            if extension_tag != SEQUENCE {
                return Err(bad());
            }
            let (oid_tag, oid, inner) = element(extension).ok_or_else(bad)?;
            if oid_tag != OID || oid != AKI_OID {
                continue;
            }
            let (mut tag, mut value, after) = element(inner).ok_or_else(bad)?;
            if tag == BOOLEAN {
                (tag, value, _) = element(after).ok_or_else(bad)?;
            }
            if tag != OCTET_STRING {
                return Err(bad());
            }
            let (aki_tag, mut aki, _) = element(value).ok_or_else(bad)?;
            if aki_tag != SEQUENCE {
                return Err(bad());
            }
            while !aki.is_empty() {
                let (tag, content, rest) = element(aki).ok_or_else(bad)?;
                aki = rest;
                if tag == KEY_IDENTIFIER && !content.is_empty() && content.len() <= 64 {
                    key_identifier = Some(content);
                }
            }
        }
    }
    let key_identifier = key_identifier.ok_or(WireError::Invalid("certificate (no authority key identifier)"))?;
    Ok(cert_id_of(key_identifier, serial))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    suggested_window: Window,
    #[serde(default, rename = "explanationURL")]
    explanation_url: Option<String>,
}

#[derive(Deserialize)]
struct Window {
    start: String,
    end: String,
}

/// Reads a renewal information answer; `retry_after` is the answer's header, if any.
pub fn parse_renewal_info(bytes: &[u8], retry_after: Option<Duration>) -> Result<RenewalInfo, WireError> {
    if bytes.len() > wire::MAX_JSON {
        return Err(WireError::TooLarge);
    }
    let answer: Answer = serde_json::from_slice(bytes).map_err(|e| WireError::Json(wire::JsonFault::from(&e)))?;
    let start = parse_rfc3339(&answer.suggested_window.start).ok_or(WireError::Invalid("suggestedWindow start"))?;
    let end = parse_rfc3339(&answer.suggested_window.end).ok_or(WireError::Invalid("suggestedWindow end"))?;
    if end < start {
        return Err(WireError::Invalid("suggestedWindow (it ends before it starts)"));
    }
    let explanation_url = answer.explanation_url.filter(|u| {
        let lower = u.get(..8).map(str::to_ascii_lowercase).unwrap_or_default();
        u.len() <= wire::MAX_URL && (lower.starts_with("https://") || lower.starts_with("http://"))
    });
    Ok(RenewalInfo {
        start_unix: start,
        end_unix: end,
        recheck_after: recheck_after(retry_after),
        explanation_url: explanation_url.map(|u| camera_log::escape_bounded(&u, MAX_EXPLANATION_URL)),
    })
}

/// An RFC 3339 time (`2025-01-02T04:00:00Z`, fractions and offsets allowed) as seconds since the
/// epoch; `None` before 1970 or when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let digits = |from: usize, to: usize| -> Option<i64> {
        let part = b.get(from..to)?;
        part.iter().all(u8::is_ascii_digit).then(|| part.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 7)?, digits(8, 10)?);
    let (hour, minute, second) = (digits(11, 13)?, digits(14, 16)?, digits(17, 19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=12).contains(&month) || !(1..=month_days).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut at = 19;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let from = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == from {
            return None;
        }
    }
    let offset = match b.get(at..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (digits(at + 1, at + 3)?, digits(at + 4, at + 6)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = (hours * 60 + minutes) * 60;
            if *sign == b'+' {
                seconds
            } else {
                -seconds
            }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let unix = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    u64::try_from(unix).ok()
}

/// Where the CA answers renewal information questions (its directory's `renewalInfo`): `None`
/// when it offers none. An https directory that points to plain http is refused. The caller keeps
/// the answer and asks each question with [`renewal_info_at`]: one request per question.
pub async fn renewal_info_url(http: &HttpClient, directory_url: &str) -> Result<Option<String>, AcmeError> {
    let directory_https = Url::parse(directory_url)
        .map_err(|e| AcmeError::InvalidRequest { reason: format!("the ACME directory URL is wrong: {e}") })?
        .scheme()
        == Scheme::Https;
    let response = http.get(directory_url).await?;
    if !response.status.is_success() {
        return Err(crate::session::status_error(Operation::Directory, &response));
    }
    let directory = wire::parse_directory(&response.body)
        .map_err(|source| AcmeError::Malformed { operation: Operation::Directory, source })?;
    let Some(base) = directory.renewal_info else { return Ok(None) };
    let parsed = Url::parse(&base)
        .map_err(|source| AcmeError::BadServerUrl { url_kind: "renewalInfo", source: Box::new(source) })?;
    if directory_https && parsed.scheme() != Scheme::Https {
        return Err(AcmeError::InsecureUrl { url_kind: "renewalInfo", url: camera_log::escape_bounded(&base, 200) });
    }
    Ok(Some(base))
}

/// Asks the CA, at its `renewalInfo` URL ([`renewal_info_url`]), for its suggested renewal window
/// for the certificate `cert_id` names. An unauthenticated GET (RFC 9773 section 4.1), the answer
/// bounded by the HTTP client and [`wire::MAX_JSON`]; an error answer is a typed error that never
/// quotes the body.
pub async fn renewal_info_at(
    http: &HttpClient,
    renewal_info_url: &str,
    cert_id: &str,
) -> Result<RenewalInfo, AcmeError> {
    let url = format!("{}/{cert_id}", renewal_info_url.trim_end_matches('/'));
    Url::parse(&url).map_err(|source| AcmeError::BadServerUrl { url_kind: "renewalInfo", source: Box::new(source) })?;
    let response = http.get(&url).await?;
    if !response.status.is_success() {
        return Err(crate::session::status_error(Operation::RenewalInfo, &response));
    }
    let retry_after = crate::session::retry_after(&response);
    parse_renewal_info(&response.body, retry_after)
        .map_err(|source| AcmeError::Malformed { operation: Operation::RenewalInfo, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Questions that got no answer are asked again after a minute, doubling up to six hours; a
    /// `Retry-After` the CA sent with its error wins (clamped).
    #[test]
    fn a_question_without_an_answer_is_asked_again_with_a_backoff() {
        let waits: Vec<u64> = (1..=10).map(|n| recheck_after_failure(None, n).as_secs()).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3840, 7680, 15360, 21600]);
        assert_eq!(recheck_after_failure(None, u32::MAX), DEFAULT_RECHECK);
        assert_eq!(recheck_after_failure(Some(Duration::from_secs(5)), 7), MIN_RECHECK);
        assert_eq!(recheck_after_failure(Some(Duration::from_secs(900)), 1), Duration::from_secs(900));
    }

    /// RFC 9773 section 4.1's example: keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:
    /// AE:2C:DE:01:C8:D4 and serial 00:87:65:43:21 give `aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE`;
    /// a leaf with those values, read from its DER, gives the same.
    #[test]
    fn cert_id_is_the_authority_key_id_and_the_serial_as_in_the_rfc() {
        let aki = [
            0x69, 0x88, 0x5b, 0x6b, 0x87, 0x46, 0x40, 0x41, 0xe1, 0xb3, 0x7b, 0x84, 0x7b, 0xa0, 0xae, 0x2c, 0xde, 0x01,
            0xc8, 0xd4,
        ];
        let serial = [0x00, 0x87, 0x65, 0x43, 0x21];
        assert_eq!(cert_id_of(&aki, &serial), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");

        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(aki.to_vec());
        let issuer = rcgen::Issuer::from_params(&ca, &ca_key);
        let mut leaf = rcgen::CertificateParams::new(vec!["10.0.0.5".to_owned()]).unwrap();
        leaf.use_authority_key_identifier_extension = true;
        leaf.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
        let key = rcgen::KeyPair::generate().unwrap();
        let der = leaf.signed_by(&key, &issuer).unwrap().der().to_vec();
        assert_eq!(cert_id(&der).unwrap(), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");

        let self_signed = rcgen::CertificateParams::new(vec!["x".to_owned()]).unwrap().self_signed(&key).unwrap();
        assert_eq!(
            cert_id(self_signed.der()).unwrap_err(),
            WireError::Invalid("certificate (no authority key identifier)")
        );
        for cut in [0, 1, 5, der.len() / 2, der.len() - 1] {
            assert!(cert_id(&der[..cut]).is_err(), "cut at {cut}");
        }
        assert!(cert_id(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(cert_id(&[0x30, 0x02, 0x30, 0x00]).is_err());
    }

    #[test]
    fn windows_and_their_recheck() {
        let body = br#"{"suggestedWindow":{"start":"2025-01-02T04:00:00Z","end":"2025-01-03T04:00:00.5+01:00"},"explanationURL":"https://ca/why"}"#;
        let info = parse_renewal_info(body, Some(Duration::from_secs(5))).unwrap();
        assert_eq!((info.start_unix, info.end_unix), (1_735_790_400, 1_735_873_200));
        assert_eq!(info.recheck_after, MIN_RECHECK, "5 s is raised to a minute");
        let month = Some(Duration::from_secs(30 * 86_400));
        assert_eq!(parse_renewal_info(body, month).unwrap().recheck_after, MAX_RECHECK, "a month is cut to a day");
        assert_eq!(parse_renewal_info(body, None).unwrap().recheck_after, DEFAULT_RECHECK, "none: six hours");
        assert_eq!(recheck_after(Some(Duration::from_secs(3600))), Duration::from_secs(3600));
        assert_eq!(info.explanation_url.as_deref(), Some("https://ca/why"));
        let odd = br#"{"suggestedWindow":{"start":"2025-01-02T04:00:00Z","end":"2025-01-02T04:00:00Z"},"explanationURL":"javascript:x"}"#;
        assert_eq!(parse_renewal_info(odd, None).unwrap().explanation_url, None, "only web pages");
        let backwards = br#"{"suggestedWindow":{"start":"2025-01-03T00:00:00Z","end":"2025-01-02T00:00:00Z"}}"#;
        assert!(parse_renewal_info(backwards, None).is_err());
        let words = br#"{"suggestedWindow":{"start":"soon \"secret\"","end":"later"}}"#;
        let e = parse_renewal_info(words, None).unwrap_err();
        assert!(!e.to_string().contains("secret"), "never quotes the answer: {e}");
        let wrong = br#"{"suggestedWindow":{"start":"secret"}}"#;
        assert!(!parse_renewal_info(wrong, None).unwrap_err().to_string().contains("secret"));
        assert_eq!(parse_renewal_info(&vec![b' '; wire::MAX_JSON + 1], None), Err(WireError::TooLarge));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2000-02-29T12:00:00-00:30"), Some(951_827_400));
        for bad in [
            "1969-12-31T23:59:59Z",
            "2025-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2025-01-01T00:00:00",
            "2025-01-01T00:00:00.Z",
            "2025-01-01T00:00:00+24:00",
            "",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
