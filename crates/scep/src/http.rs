//! The HTTP shape of SCEP (RFC 8894 section 4): URLs, methods, content types. No I/O here: the
//! caller's HTTP client sends what these describe, reading at most [`crate::MAX_MESSAGE_SIZE`]
//! bytes of any answer.

use base64ct::{Base64, Encoding};

use crate::caps::Capabilities;
use crate::message::PKI_MESSAGE_CONTENT_TYPE;

/// SCEP operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    GetCaCaps,
    GetCaCert,
    PkiOperation,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Self::GetCaCaps => "GetCACaps",
            Self::GetCaCert => "GetCACert",
            Self::PkiOperation => "PKIOperation",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// One HTTP request to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    /// The Content-Type of the body (POST only).
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
}

/// `GET <url>?operation=GetCACaps`.
pub fn get_ca_caps(url: &str) -> HttpRequest {
    get(with_query(url, Operation::GetCaCaps, None))
}

/// `GET <url>?operation=GetCACert`, with `&message=<ca_ident>` when the server needs a CA
/// identifier to tell several CAs apart.
pub fn get_ca_cert(url: &str, ca_ident: Option<&str>) -> HttpRequest {
    get(with_query(url, Operation::GetCaCert, ca_ident.map(percent_encode).as_deref()))
}

/// A PKIOperation: `POST <url>?operation=PKIOperation` with the DER as an
/// `application/x-pki-message` body when the server offers POSTPKIOperation (or SCEPStandard),
/// else `GET <url>?operation=PKIOperation&message=<base64, percent-encoded>`.
pub fn pki_operation(url: &str, caps: &Capabilities, der: &[u8]) -> HttpRequest {
    if caps.supports_post() {
        HttpRequest {
            method: Method::Post,
            url: with_query(url, Operation::PkiOperation, None),
            content_type: Some(PKI_MESSAGE_CONTENT_TYPE),
            body: der.to_vec(),
        }
    } else {
        let message = percent_encode(&Base64::encode_string(der));
        get(with_query(url, Operation::PkiOperation, Some(&message)))
    }
}

fn get(url: String) -> HttpRequest {
    HttpRequest { method: Method::Get, url, content_type: None, body: Vec::new() }
}

/// Appends `operation=...` (and `message=...`, already encoded) to the URL's query, keeping a
/// query the installer's URL already has (some NDES set-ups need one) and dropping a fragment.
fn with_query(url: &str, op: Operation, message: Option<&str>) -> String {
    let url = url.split('#').next().unwrap_or_default();
    let sep = match url.rfind('?') {
        Some(i) if i + 1 == url.len() => "",
        Some(_) => "&",
        None => "?",
    };
    let mut out = format!("{url}{sep}operation={}", op.name());
    if let Some(m) = message {
        out.push_str("&message=");
        out.push_str(m);
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters (so base64's `+`, `/` and
/// `=` are escaped, as RFC 8894 section 4.1 requires).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(get_ca_caps("http://ca.local/scep").url, "http://ca.local/scep?operation=GetCACaps");
        assert_eq!(get_ca_caps("http://ca.local/scep?").url, "http://ca.local/scep?operation=GetCACaps");
        assert_eq!(
            get_ca_cert("http://ca.local/certsrv/mscep/mscep.dll?x=1#frag", Some("My CA")).url,
            "http://ca.local/certsrv/mscep/mscep.dll?x=1&operation=GetCACert&message=My%20CA"
        );
        assert_eq!(get_ca_cert("http://ca.local/scep", None).method, Method::Get);
    }

    #[test]
    fn post_when_offered_get_otherwise() {
        let der = [0xfb, 0xff, 0x3e, 0x00];
        let post = pki_operation("http://ca/scep", &Capabilities::parse(b"POSTPKIOperation").unwrap(), &der);
        assert_eq!(post.method, Method::Post);
        assert_eq!(post.url, "http://ca/scep?operation=PKIOperation");
        assert_eq!(post.content_type, Some("application/x-pki-message"));
        assert_eq!(post.body, der);
        let get = pki_operation("http://ca/scep", &Capabilities::default(), &der);
        assert_eq!(get.method, Method::Get);
        assert!(get.body.is_empty() && get.content_type.is_none());
        // base64 "+/8+AA==" with +, / and = escaped.
        assert_eq!(get.url, "http://ca/scep?operation=PKIOperation&message=%2B%2F8%2BAA%3D%3D");
    }
}
