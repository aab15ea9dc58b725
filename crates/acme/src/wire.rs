//! The ACME server's JSON answers, parsed as untrusted input: sizes and counts are bounded, every
//! string that is shown to a person is cleaned, nothing here panics. Pure functions of bytes, so a
//! fuzz target can call them directly.

use std::fmt;
use std::net::IpAddr;

use camera_log::escape_bounded;
use serde::Deserialize;

/// Largest JSON answer accepted from the server.
pub const MAX_JSON: usize = 64 * 1024;
/// Most entries accepted in any list (identifiers, authorizations, challenges, subproblems).
pub const MAX_LIST: usize = 100;
/// Longest problem detail kept, in characters (longer ones are cut): it ends up in a sentence on
/// the UI.
pub const MAX_DETAIL: usize = 500;
/// Longest URL accepted from the server.
pub const MAX_URL: usize = 2048;
/// Longest challenge token accepted.
pub const MAX_TOKEN: usize = 256;

/// Why an answer could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("the answer is larger than {MAX_JSON} bytes")]
    TooLarge,
    #[error("the answer is not the expected JSON object ({0})")]
    Json(JsonFault),
    #[error("the answer has too many {0} (at most {MAX_LIST})")]
    TooMany(&'static str),
    #[error("the answer has an unusable {0}")]
    Invalid(&'static str),
}

/// Where and how a JSON answer failed to parse. Only positions, never the parser's message: that
/// quotes values from the answer (`invalid type: string "..."`), and the answer may come from any
/// web server the URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonFault {
    pub kind: JsonFaultKind,
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonFaultKind {
    /// Not JSON at all (an HTML page, say).
    NotJson,
    /// JSON, but not the object expected (a field missing or of the wrong type).
    WrongShape,
    /// JSON that ends too early.
    CutShort,
}

impl From<&serde_json::Error> for JsonFault {
    fn from(e: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let kind = match e.classify() {
            Category::Data => JsonFaultKind::WrongShape,
            Category::Eof => JsonFaultKind::CutShort,
            Category::Syntax | Category::Io => JsonFaultKind::NotJson,
        };
        Self { kind, line: e.line(), column: e.column() }
    }
}

impl fmt::Display for JsonFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            JsonFaultKind::NotJson => "not JSON",
            JsonFaultKind::WrongShape => "JSON of another shape",
            JsonFaultKind::CutShort => "JSON cut short",
        };
        write!(f, "{what} at line {}, column {}", self.line, self.column)
    }
}

/// Status of an account, order, authorization or challenge (RFC 8555 section 7.1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Ready,
    Processing,
    Valid,
    Invalid,
    Deactivated,
    Expired,
    Revoked,
    #[serde(other)]
    Unknown,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pending => "pending",
            Status::Ready => "ready",
            Status::Processing => "processing",
            Status::Valid => "valid",
            Status::Invalid => "invalid",
            Status::Deactivated => "deactivated",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
            Status::Unknown => "unknown",
        })
    }
}

/// An identifier as the server writes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WireIdentifier {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

/// What a certificate is for: an IP address (RFC 8738) or a DNS name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identifier {
    Ip(IpAddr),
    Dns(String),
}

impl Identifier {
    /// The JSON form for newOrder: `{"type":"ip","value":"192.0.2.1"}` (IPv6 in RFC 5952 form).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Identifier::Ip(ip) => serde_json::json!({"type": "ip", "value": ip.to_string()}),
            Identifier::Dns(name) => serde_json::json!({"type": "dns", "value": name}),
        }
    }

    /// Reads the server's form back; `None` for a type this client does not know or a bad value.
    pub fn from_wire(w: &WireIdentifier) -> Option<Identifier> {
        match w.kind.as_str() {
            "ip" => w.value.parse().ok().map(Identifier::Ip),
            "dns" if !w.value.is_empty() && w.value.len() <= 253 && w.value.is_ascii() => {
                Some(Identifier::Dns(w.value.to_ascii_lowercase()))
            }
            _ => None,
        }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identifier::Ip(ip) => write!(f, "{ip}"),
            Identifier::Dns(name) => f.write_str(name),
        }
    }
}

/// The directory (RFC 8555 section 7.1.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    pub new_nonce: String,
    pub new_account: String,
    pub new_order: String,
    /// ACME Renewal Information (RFC 9773), when the CA offers it.
    #[serde(default)]
    pub renewal_info: Option<String>,
    #[serde(default)]
    pub meta: Option<DirectoryMeta>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryMeta {
    #[serde(default)]
    pub terms_of_service: Option<String>,
    #[serde(default)]
    pub website: Option<String>,
    #[serde(default)]
    pub external_account_required: Option<bool>,
}

impl Directory {
    pub fn external_account_required(&self) -> bool {
        self.meta.as_ref().and_then(|m| m.external_account_required).unwrap_or(false)
    }
}

/// An account object (RFC 8555 section 7.1.2); only what the client uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub status: Status,
}

/// An order object (RFC 8555 section 7.1.3).
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub status: Status,
    #[serde(default)]
    pub identifiers: Vec<WireIdentifier>,
    #[serde(default)]
    pub authorizations: Vec<String>,
    pub finalize: String,
    #[serde(default)]
    pub certificate: Option<String>,
    #[serde(default)]
    pub error: Option<Problem>,
}

/// An authorization object (RFC 8555 section 7.1.4).
#[derive(Debug, Clone, Deserialize)]
pub struct Authorization {
    pub status: Status,
    pub identifier: WireIdentifier,
    #[serde(default)]
    pub challenges: Vec<Challenge>,
    #[serde(default)]
    pub wildcard: bool,
}

/// A challenge object (RFC 8555 section 8).
#[derive(Debug, Clone, Deserialize)]
pub struct Challenge {
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    pub status: Status,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub error: Option<Problem>,
}

impl Challenge {
    /// The token, if it is safe to use in a URL path and a file name: base64url only, bounded
    /// length (RFC 8555 section 8.3 and 8.4 require base64url).
    pub fn checked_token(&self) -> Result<&str, WireError> {
        match self.token.as_deref() {
            Some(t)
                if !t.is_empty()
                    && t.len() <= MAX_TOKEN
                    && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                Ok(t)
            }
            _ => Err(WireError::Invalid("challenge token")),
        }
    }
}

/// A problem document (RFC 7807, RFC 8555 section 6.7).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Problem {
    #[serde(rename = "type", default = "about_blank")]
    pub kind: String,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub subproblems: Vec<Subproblem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Subproblem {
    #[serde(rename = "type", default = "about_blank")]
    pub kind: String,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub identifier: Option<WireIdentifier>,
}

fn about_blank() -> String {
    "about:blank".to_owned()
}

const ACME_ERROR_PREFIX: &str = "urn:ietf:params:acme:error:";

impl Problem {
    /// The ACME error name (`badNonce`, `rateLimited`...) when the type is in the ACME namespace.
    pub fn acme_type(&self) -> Option<&str> {
        self.kind.strip_prefix(ACME_ERROR_PREFIX)
    }

    pub fn is(&self, acme_type: &str) -> bool {
        self.acme_type() == Some(acme_type)
    }

    /// The problem document is the protocol's message for people (RFC 7807), so it is shown,
    /// escaped and bounded: nothing in it reaches a log line or the UI raw.
    fn clean(&mut self) {
        self.kind = escape_bounded(&self.kind, 200);
        self.detail = self.detail.as_deref().map(|d| escape_bounded(d, MAX_DETAIL));
        self.subproblems.truncate(MAX_LIST);
        for s in &mut self.subproblems {
            s.kind = escape_bounded(&s.kind, 200);
            s.detail = s.detail.as_deref().map(|d| escape_bounded(d, MAX_DETAIL));
            if let Some(i) = &mut s.identifier {
                i.kind = escape_bounded(&i.kind, 20);
                i.value = escape_bounded(&i.value, 300);
            }
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.acme_type().unwrap_or(&self.kind);
        match &self.detail {
            Some(detail) if !detail.is_empty() => write!(f, "{detail} ({name})")?,
            _ => write!(f, "{name}")?,
        }
        for s in &self.subproblems {
            let what = s.identifier.as_ref().map(|i| i.value.as_str()).unwrap_or("?");
            let name = s.kind.strip_prefix(ACME_ERROR_PREFIX).unwrap_or(&s.kind);
            write!(f, "; {what}: {} ({name})", s.detail.as_deref().unwrap_or(""))?;
        }
        Ok(())
    }
}

fn json<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, WireError> {
    if bytes.len() > MAX_JSON {
        return Err(WireError::TooLarge);
    }
    serde_json::from_slice(bytes).map_err(|e| WireError::Json(JsonFault::from(&e)))
}

fn check_url(url: &str, what: &'static str) -> Result<(), WireError> {
    let lower = url.get(..8).map(str::to_ascii_lowercase).unwrap_or_default();
    if url.len() > MAX_URL || !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(WireError::Invalid(what));
    }
    Ok(())
}

fn check_count<T>(list: &[T], what: &'static str) -> Result<(), WireError> {
    if list.len() > MAX_LIST {
        return Err(WireError::TooMany(what));
    }
    Ok(())
}

pub fn parse_directory(bytes: &[u8]) -> Result<Directory, WireError> {
    let mut d: Directory = json(bytes)?;
    check_url(&d.new_nonce, "newNonce URL")?;
    check_url(&d.new_account, "newAccount URL")?;
    check_url(&d.new_order, "newOrder URL")?;
    // Renewal information is optional: an unusable renewalInfo URL is ignored, never a reason to
    // refuse the directory (the camera then renews on its own schedule).
    if d.renewal_info.as_deref().is_some_and(|url| check_url(url, "renewalInfo URL").is_err()) {
        d.renewal_info = None;
    }
    Ok(d)
}

pub fn parse_account(bytes: &[u8]) -> Result<Account, WireError> {
    json(bytes)
}

pub fn parse_order(bytes: &[u8]) -> Result<Order, WireError> {
    let mut o: Order = json(bytes)?;
    check_count(&o.identifiers, "identifiers")?;
    check_count(&o.authorizations, "authorizations")?;
    check_url(&o.finalize, "finalize URL")?;
    for a in &o.authorizations {
        check_url(a, "authorization URL")?;
    }
    if let Some(c) = &o.certificate {
        check_url(c, "certificate URL")?;
    }
    if let Some(p) = &mut o.error {
        p.clean();
    }
    Ok(o)
}

pub fn parse_authorization(bytes: &[u8]) -> Result<Authorization, WireError> {
    let mut a: Authorization = json(bytes)?;
    check_count(&a.challenges, "challenges")?;
    for c in &mut a.challenges {
        check_url(&c.url, "challenge URL")?;
        if let Some(p) = &mut c.error {
            p.clean();
        }
    }
    Ok(a)
}

pub fn parse_challenge(bytes: &[u8]) -> Result<Challenge, WireError> {
    let mut c: Challenge = json(bytes)?;
    check_url(&c.url, "challenge URL")?;
    if let Some(p) = &mut c.error {
        p.clean();
    }
    Ok(c)
}

pub fn parse_problem(bytes: &[u8]) -> Result<Problem, WireError> {
    let mut p: Problem = json(bytes)?;
    if p.subproblems.len() > MAX_LIST {
        return Err(WireError::TooMany("subproblems"));
    }
    p.clean();
    Ok(p)
}

/// The most certificates accepted in an issued chain.
pub const MAX_CHAIN: usize = 10;

/// Reads an `application/pem-certificate-chain` body into DER certificates, leaf first.
pub fn parse_pem_chain(bytes: &[u8]) -> Result<Vec<Vec<u8>>, WireError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let mut chain = Vec::new();
    for cert in CertificateDer::pem_slice_iter(bytes) {
        let cert = cert.map_err(|_| WireError::Invalid("PEM certificate chain"))?;
        if chain.len() == MAX_CHAIN {
            return Err(WireError::TooMany("certificates"));
        }
        // A DER certificate is a SEQUENCE; anything else is not worth handing on.
        if cert.first() != Some(&0x30) {
            return Err(WireError::Invalid("certificate in the chain"));
        }
        chain.push(cert.to_vec());
    }
    if chain.is_empty() {
        return Err(WireError::Invalid("certificate chain (no certificate in it)"));
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pebble_shaped_answers_parse() {
        let d = parse_directory(br#"{"keyChange":"https://127.0.0.1:14000/rollover-account-key","meta":{"externalAccountRequired":true,"termsOfService":"data:text/plain,Do%20what%20thou%20wilt"},"newAccount":"https://127.0.0.1:14000/sign-me-up","newNonce":"https://127.0.0.1:14000/nonce-plz","newOrder":"https://127.0.0.1:14000/order-plz","revokeCert":"https://127.0.0.1:14000/revoke-cert"}"#).unwrap();
        assert!(d.external_account_required());
        assert_eq!(d.new_order, "https://127.0.0.1:14000/order-plz");

        let o = parse_order(br#"{"status":"pending","expires":"2026-12-02T08:00:00Z","identifiers":[{"type":"ip","value":"127.0.0.1"}],"finalize":"https://127.0.0.1:14000/finalize-order/x","authorizations":["https://127.0.0.1:14000/authZ/y"]}"#).unwrap();
        assert_eq!((o.status, o.authorizations.len(), o.certificate), (Status::Pending, 1, None));
        assert_eq!(Identifier::from_wire(&o.identifiers[0]), Some(Identifier::Ip("127.0.0.1".parse().unwrap())));

        let a = parse_authorization(br#"{"status":"pending","identifier":{"type":"ip","value":"::1"},"challenges":[{"type":"http-01","url":"https://ca/chalZ/1","token":"abc_DEF-123","status":"pending"},{"type":"tls-alpn-01","url":"https://ca/chalZ/2","token":"x","status":"pending"},{"type":"future-99","url":"https://ca/chalZ/3","status":"weird"}],"expires":"x"}"#).unwrap();
        assert_eq!(a.challenges.len(), 3);
        assert_eq!(a.challenges[0].checked_token(), Ok("abc_DEF-123"));
        assert_eq!(a.challenges[2].status, Status::Unknown);
        assert_eq!(Identifier::from_wire(&a.identifier), Some(Identifier::Ip("::1".parse().unwrap())));
    }

    #[test]
    fn problems_are_cleaned_and_read_as_text() {
        let p = parse_problem(br#"{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"no\nway\u001b[31m","status":400,"subproblems":[{"type":"urn:ietf:params:acme:error:malformed","detail":"bad name","identifier":{"type":"dns","value":"x..y"}}]}"#).unwrap();
        assert!(p.is("rejectedIdentifier"));
        assert_eq!(p.status, Some(400));
        assert_eq!(p.to_string(), "no\\nway\\x1b[31m (rejectedIdentifier); x..y: bad name (malformed)");
        let long = format!(r#"{{"detail":"{}"}}"#, "é".repeat(2000));
        let p = parse_problem(long.as_bytes()).unwrap();
        assert_eq!(p.kind, "about:blank");
        assert_eq!(p.detail.unwrap(), format!("{}...", "é".repeat(MAX_DETAIL)));
    }

    /// A problem's detail is shown (the protocol made it for people), escaped: no newline, escape
    /// sequence, bidirectional override or isolate of it reaches a log line or the UI raw.
    #[test]
    fn problem_details_are_escaped_never_raw() {
        let body = r#"{"type":"urn:ietf:params:acme:error:unauthorized","detail":"denied\ncamera-web: the admin password was set\u001b[2K \u202etxt.exe\u2066x","subproblems":[{"type":"urn:ietf:params:acme:error:malformed","detail":"a\u202eb","identifier":{"type":"ip","value":"10.0.0.1\n"}}]}"#;
        let text = parse_problem(body.as_bytes()).unwrap().to_string();
        for raw in ['\n', '\u{1b}', '\u{202e}', '\u{2066}'] {
            assert!(!text.contains(raw), "{raw:?} raw in {text:?}");
        }
        assert_eq!(
            text,
            "denied\\ncamera-web: the admin password was set\\x1b[2K \\u{202e}txt.exe\\u{2066}x (unauthorized); \
             10.0.0.1\\n: a\\u{202e}b (malformed)"
        );
    }

    /// A JSON parse error names a position, never a value of the answer.
    #[test]
    fn json_errors_quote_nothing_of_the_answer() {
        const MARKER: &str = "INTRANET-PAGE-7f3a91";
        let html = format!("<html><title>{MARKER}</title></html>");
        let wrong_shape = format!(r#"{{"status":"pending","finalize":"https://x/f","authorizations":"{MARKER}"}}"#);
        let cut = format!(r#"{{"status":"pending","finalize":"{MARKER}"#);
        for (body, kind) in [
            (html.as_str(), JsonFaultKind::NotJson),
            (wrong_shape.as_str(), JsonFaultKind::WrongShape),
            (cut.as_str(), JsonFaultKind::CutShort),
        ] {
            let err = parse_order(body.as_bytes()).unwrap_err();
            assert!(matches!(err, WireError::Json(JsonFault { kind: k, .. }) if k == kind), "{err:?}");
            assert!(!err.to_string().contains(MARKER), "{err}");
            let err = parse_directory(body.as_bytes()).unwrap_err();
            assert!(!err.to_string().contains(MARKER), "{err}");
        }
        assert_eq!(
            parse_order(html.as_bytes()).unwrap_err().to_string(),
            "the answer is not the expected JSON object (not JSON at line 1, column 1)"
        );
    }

    #[test]
    fn hostile_answers_are_refused_not_panicked_on() {
        assert_eq!(parse_order(&vec![b' '; MAX_JSON + 1]).unwrap_err(), WireError::TooLarge);
        assert!(matches!(parse_order(b"[]"), Err(WireError::Json(_))));
        assert!(matches!(parse_order(b"{\"status\":1}"), Err(WireError::Json(_))));
        let many = format!(
            r#"{{"status":"pending","finalize":"https://x/f","authorizations":[{}]}}"#,
            vec!["\"https://x/a\""; MAX_LIST + 1].join(",")
        );
        assert_eq!(parse_order(many.as_bytes()).unwrap_err(), WireError::TooMany("authorizations"));
        assert_eq!(
            parse_order(br#"{"status":"pending","finalize":"file:///etc/passwd"}"#).unwrap_err(),
            WireError::Invalid("finalize URL")
        );
        assert!(parse_directory(br#"{"newNonce":"x","newAccount":"https://a","newOrder":"https://b"}"#).is_err());
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse_problem(deep.as_bytes()).is_err());
        for token in ["../../etc/passwd", "", "a b", "a/b", &"a".repeat(MAX_TOKEN + 1)] {
            let c = Challenge {
                kind: "http-01".into(),
                url: "https://x".into(),
                status: Status::Pending,
                token: Some(token.to_owned()),
                error: None,
            };
            assert!(c.checked_token().is_err(), "{token:?}");
        }
    }

    #[test]
    fn identifiers_in_wire_form() {
        assert_eq!(
            Identifier::Ip("fd00:0:0::1".parse().unwrap()).to_json(),
            serde_json::json!({"type":"ip","value":"fd00::1"})
        );
        assert_eq!(
            Identifier::Dns("cam.local".into()).to_json(),
            serde_json::json!({"type":"dns","value":"cam.local"})
        );
        let w = WireIdentifier { kind: "ip".into(), value: "not-an-ip".into() };
        assert_eq!(Identifier::from_wire(&w), None);
        let w = WireIdentifier { kind: "email".into(), value: "a@b".into() };
        assert_eq!(Identifier::from_wire(&w), None);
    }

    #[test]
    fn pem_chains() {
        let pem = b"-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMAMCAQI=\n-----END CERTIFICATE-----\n";
        assert_eq!(parse_pem_chain(pem).unwrap(), vec![vec![0x30, 3, 2, 1, 1], vec![0x30, 3, 2, 1, 2]]);
        assert!(parse_pem_chain(b"").is_err());
        assert!(parse_pem_chain(b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n").is_err());
        assert!(parse_pem_chain(b"-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n").is_err());
        let many = String::from_utf8(pem.to_vec()).unwrap().repeat(MAX_CHAIN);
        assert_eq!(parse_pem_chain(many.as_bytes()).unwrap_err(), WireError::TooMany("certificates"));
    }
}
