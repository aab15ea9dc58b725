use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use rcgen::{CidrSubnet, GeneralSubtree, NameConstraints};
use serde::{Deserialize, Serialize};

use crate::RequestError;

/// A name a server certificate can carry in its subjectAltName.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SanName {
    Ip(IpAddr),
    Dns(String),
}

impl SanName {
    /// Parses an IP address or a DNS name (lower-cased; letters, digits, '-' and '.', labels of
    /// 1-63 characters). A leading `*.` wildcard is allowed for requests only.
    pub fn parse(s: &str) -> Result<Self, RequestError> {
        let s = s.trim();
        if let Ok(ip) = IpAddr::from_str(s.trim_start_matches('[').trim_end_matches(']')) {
            return Ok(Self::Ip(ip));
        }
        let name = s.trim_end_matches('.').to_ascii_lowercase();
        let body = name.strip_prefix("*.").unwrap_or(&name);
        let valid = !body.is_empty()
            && name.len() <= 253
            && body.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if valid {
            Ok(Self::Dns(name))
        } else {
            Err(RequestError::NotAName { input: s.chars().take(80).collect() })
        }
    }

    pub(crate) fn to_rcgen(&self) -> Result<rcgen::SanType, RequestError> {
        Ok(match self {
            Self::Ip(ip) => rcgen::SanType::IpAddress(*ip),
            Self::Dns(name) => rcgen::SanType::DnsName(
                name.clone()
                    .try_into()
                    .map_err(|_| RequestError::NotAName { input: name.chars().take(80).collect() })?,
            ),
        })
    }
}

impl fmt::Display for SanName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Dns(name) => f.write_str(name),
        }
    }
}

/// An IP network in CIDR form, e.g. `192.168.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Subnet {
    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(*ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(*ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Subnet {
    type Err = RequestError;
    fn from_str(s: &str) -> Result<Self, RequestError> {
        let quoted = |t: &str| t.chars().take(80).collect::<String>();
        let (addr, prefix) = s.split_once('/').ok_or_else(|| RequestError::NotCidr { input: quoted(s) })?;
        let addr: IpAddr = addr.parse().map_err(|_| RequestError::NotAnAddress { input: quoted(addr) })?;
        let prefix: u8 = prefix.parse().map_err(|_| RequestError::NotAPrefix { input: quoted(prefix) })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(RequestError::PrefixTooLong { prefix, max });
        }
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What the camera's CA may sign for. Written into the CA as a critical nameConstraints
/// extension, so even a stolen camera CA cannot sign for public sites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameConstraintsPolicy {
    pub permitted_subnets: Vec<Subnet>,
    /// DNS suffixes in RFC 5280 form: `local` permits `cam.local` and `local`.
    pub permitted_dns: Vec<String>,
}

impl Default for NameConstraintsPolicy {
    /// Private IPv4 (RFC 1918, link-local, CGNAT), IPv6 ULA and link-local, `.local` and `.home.arpa`.
    fn default() -> Self {
        let subnets = [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "169.254.0.0/16",
            "100.64.0.0/10",
            "fc00::/7",
            "fe80::/10",
        ];
        Self {
            permitted_subnets: subnets.iter().filter_map(|s| s.parse().ok()).collect(),
            permitted_dns: vec!["local".into(), "home.arpa".into()],
        }
    }
}

impl NameConstraintsPolicy {
    /// Adds loopback (127.0.0.0/8, ::1, `localhost`): for development machines and tests.
    pub fn with_loopback(mut self) -> Self {
        for s in ["127.0.0.0/8", "::1/128"] {
            if let Ok(net) = s.parse() {
                if !self.permitted_subnets.contains(&net) {
                    self.permitted_subnets.push(net);
                }
            }
        }
        if !self.permitted_dns.iter().any(|d| d == "localhost") {
            self.permitted_dns.push("localhost".into());
        }
        self
    }

    /// Checks that every permitted DNS suffix is a DNS domain (`local`, `.site.home.arpa`: labels of
    /// letters, digits and '-'). The extension stores them as ASCII (IA5) strings; rcgen panics on
    /// anything else, so this runs before a CA is made.
    pub fn check(&self) -> Result<(), RequestError> {
        for suffix in &self.permitted_dns {
            let domain = suffix.strip_prefix('.').unwrap_or(suffix);
            let valid = matches!(SanName::parse(domain), Ok(SanName::Dns(d)) if !d.starts_with("*.") && d == domain.to_ascii_lowercase());
            if !valid {
                return Err(RequestError::DnsConstraint { suffix: suffix.chars().take(80).collect() });
            }
        }
        Ok(())
    }

    /// Whether a certificate for `name` issued under these constraints would be accepted.
    pub fn permits(&self, name: &SanName) -> bool {
        match name {
            SanName::Ip(ip) => self.permitted_subnets.iter().any(|net| net.contains(ip)),
            SanName::Dns(dns) => self.permitted_dns.iter().any(|suffix| {
                // DNS names compare case-insensitively (RFC 5280 4.2.1.10); `dns` is lower-case.
                let suffix = suffix.trim_start_matches('.').to_ascii_lowercase();
                *dns == suffix
                    || (dns.len() > suffix.len()
                        && dns.ends_with(&suffix)
                        && dns.as_bytes()[dns.len() - suffix.len() - 1] == b'.')
            }),
        }
    }

    pub(crate) fn to_rcgen(&self) -> NameConstraints {
        let mut permitted: Vec<GeneralSubtree> = self
            .permitted_subnets
            .iter()
            .map(|net| GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(net.addr, net.prefix)))
            .collect();
        permitted
            .extend(self.permitted_dns.iter().map(|d| GeneralSubtree::DnsName(d.trim_start_matches('.').to_owned())));
        NameConstraints { permitted_subtrees: permitted, excluded_subtrees: Vec::new() }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_permits_private_and_refuses_public() {
        let policy = NameConstraintsPolicy::default();
        for ok in [
            "10.1.2.3",
            "172.31.0.1",
            "192.168.1.120",
            "169.254.9.9",
            "100.64.0.1",
            "fd00::1",
            "fe80::1",
            "cam.local",
            "local",
            "cam.home.arpa",
        ] {
            assert!(policy.permits(&SanName::parse(ok).unwrap()), "{ok}");
        }
        for bad in ["8.8.8.8", "172.32.0.1", "127.0.0.1", "2001:db8::1", "example.com", "notlocal", "localhost"] {
            assert!(!policy.permits(&SanName::parse(bad).unwrap()), "{bad}");
        }
        assert!(policy.clone().with_loopback().permits(&SanName::parse("127.0.0.1").unwrap()));
    }

    #[test]
    fn names_are_validated() {
        assert_eq!(SanName::parse("Cam.Local.").unwrap(), SanName::Dns("cam.local".into()));
        assert_eq!(SanName::parse("[fd00::1]").unwrap(), SanName::Ip("fd00::1".parse().unwrap()));
        for bad in ["", "a..b", "-x.local", "has space", "x_y.local", "*."] {
            assert!(SanName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dns_constraints_must_be_ascii_domains() {
        let with = |dns: &str| NameConstraintsPolicy { permitted_subnets: Vec::new(), permitted_dns: vec![dns.into()] };
        for ok in ["local", ".home.arpa", "Site.Home.Arpa", "localhost"] {
            assert!(with(ok).check().is_ok(), "{ok}");
        }
        // ".siteΗome.arpa" (a Greek capital eta) is the config fuzz target's crash input.
        for bad in [".site\u{397}ome.arpa", "", ".", "a b", "*.local", "local.", "10.0.0.1", " local", "x_y"] {
            assert!(with(bad).check().is_err(), "{bad:?}");
        }
        assert!(with("Home.Arpa").permits(&SanName::parse("cam.home.arpa").unwrap()));
    }

    #[test]
    fn subnet_parsing_rejects_nonsense() {
        assert!("10.0.0.0/33".parse::<Subnet>().is_err());
        assert!("10.0.0.0".parse::<Subnet>().is_err());
        assert!("0.0.0.0/0".parse::<Subnet>().unwrap().contains(&"8.8.8.8".parse().unwrap()));
    }
}
