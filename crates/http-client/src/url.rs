//! The small subset of URLs a CA endpoint uses: `http`/`https`, a host (IPv4, bracketed IPv6 or a
//! DNS name), an optional port, a path and a query. No user info, nothing else: a CA's URL comes
//! from an installer's configuration or from the CA itself, and anything unusual is refused.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::Error;

/// The longest URL accepted (ACME URLs are well under 200 characters).
pub const MAX_URL_LEN: usize = 4096;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Where a URL points: an address literal or a DNS name (lower case, without a trailing dot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    Dns(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
            Host::Ip(IpAddr::V4(v4)) => write!(f, "{v4}"),
            Host::Dns(name) => f.write_str(name),
        }
    }
}

/// A parsed `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    scheme: Scheme,
    host: Host,
    port: u16,
    explicit_port: bool,
    path_and_query: String,
}

impl Url {
    /// Parses `url`. A fragment (`#...`) is dropped, as a browser would; it is never sent.
    pub fn parse(url: &str) -> Result<Url, Error> {
        let bad = |reason: &'static str| Error::BadUrl { url: shorten(url), reason };
        if url.len() > MAX_URL_LEN {
            return Err(bad("it is too long"));
        }
        if url.bytes().any(|b| b <= b' ' || b == 0x7f || !b.is_ascii()) {
            return Err(bad("it contains spaces, control characters or non-ASCII characters"));
        }
        let (scheme, rest) = if let Some(rest) = strip_prefix_ignore_case(url, "https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(url, "http://") {
            (Scheme::Http, rest)
        } else {
            return Err(bad("only http:// and https:// URLs are supported"));
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_and_query) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(bad("user names or passwords in the URL are not supported"));
        }
        let (host, port) = if let Some(after_bracket) = authority.strip_prefix('[') {
            let close = after_bracket.find(']').ok_or_else(|| bad("the IPv6 address has no closing ']'"))?;
            let v6: Ipv6Addr =
                after_bracket[..close].parse().map_err(|_| bad("the address between [ ] is not an IPv6 address"))?;
            let after = &after_bracket[close + 1..];
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("unexpected text after the IPv6 address"))?),
            };
            (Host::Ip(IpAddr::V6(v6)), port)
        } else {
            let (name, port) = match authority.rsplit_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (authority, None),
            };
            (parse_host(name).ok_or_else(|| bad("the host is neither an IP address nor a DNS name"))?, port)
        };
        let (port, explicit_port) = match port {
            None => (scheme.default_port(), false),
            Some(p) => {
                if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("the port is not a number"));
                }
                match p.parse::<u16>() {
                    Ok(0) | Err(_) => return Err(bad("the port is not between 1 and 65535")),
                    Ok(port) => (port, true),
                }
            }
        };
        let path_and_query = match path_and_query {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Ok(Url { scheme, host, port, explicit_port, path_and_query })
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The port, the scheme's default when the URL names none.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What goes on the request line: the path and the query, at least `/`.
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// The `Host` header value: the host, and the port when the URL named one.
    pub fn host_header(&self) -> String {
        if self.explicit_port {
            format!("{}:{}", self.host, self.port)
        } else {
            self.host.to_string()
        }
    }

    /// `host:port`, for messages.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme.as_str(), self.host_header(), self.path_and_query)
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

fn parse_host(name: &str) -> Option<Host> {
    if let Ok(v4) = name.parse::<Ipv4Addr>() {
        return Some(Host::Ip(IpAddr::V4(v4)));
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return None;
    }
    // All-numeric dotted names that are not valid IPv4 addresses (e.g. 1.2.3.999) are mistakes.
    if name.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    Some(Host::Dns(name.to_ascii_lowercase()))
}

/// URLs end up in error messages: keep a hostile one from flooding a log.
pub(crate) fn shorten(url: &str) -> String {
    const MAX: usize = 200;
    if url.len() <= MAX {
        return url.to_owned();
    }
    let mut end = MAX;
    while !url.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &url[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Url {
        match Url::parse(s) {
            Ok(u) => u,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn parses_the_forms_a_ca_uses() {
        let u = ok("https://ca.example.home.arpa/directory");
        assert_eq!((u.scheme(), u.port(), u.path_and_query()), (Scheme::Https, 443, "/directory"));
        assert_eq!(u.host(), &Host::Dns("ca.example.home.arpa".into()));
        assert_eq!(u.host_header(), "ca.example.home.arpa");

        let u = ok("http://192.168.1.5:8080?x=1");
        assert_eq!(u.host(), &Host::Ip("192.168.1.5".parse().unwrap()));
        assert_eq!((u.port(), u.path_and_query(), u.host_header().as_str()), (8080, "/?x=1", "192.168.1.5:8080"));

        let u = ok("HTTPS://[fd00::1]:14000/dir?a=b#frag");
        assert_eq!(u.host(), &Host::Ip("fd00::1".parse().unwrap()));
        assert_eq!((u.port(), u.path_and_query()), (14000, "/dir?a=b"));
        assert_eq!(u.host_header(), "[fd00::1]:14000");
        assert_eq!(u.to_string(), "https://[fd00::1]:14000/dir?a=b");

        let u = ok("http://[::1]");
        assert_eq!((u.port(), u.path_and_query(), u.authority().as_str()), (80, "/", "[::1]:80"));

        assert_eq!(ok("http://CAM.Local./x").host(), &Host::Dns("cam.local".into()));
    }

    #[test]
    fn refuses_what_a_ca_url_never_is() {
        for bad in [
            "ftp://x/",
            "https//x",
            "https://",
            "https://user:pw@ca/",
            "https://[fd00::1/",
            "https://[zz::1]/",
            "https://[::1]x/",
            "https://ca:0/",
            "https://ca:65536/",
            "https://ca:/",
            "https://ca:12a/",
            "https://ca host/",
            "https://ca/\u{e9}",
            "https://-ca/",
            "https://ca..x/",
            "https://1.2.3.999/",
            "https://a:b:c/",
        ] {
            assert!(matches!(Url::parse(bad), Err(Error::BadUrl { .. })), "{bad} was accepted");
        }
        let long = format!("https://ca/{}", "a".repeat(MAX_URL_LEN));
        let err = Url::parse(&long).unwrap_err().to_string();
        assert!(err.contains("too long") && err.len() < 400, "{err}");
    }
}
