use std::fmt;
use std::io;
use std::time::Duration;

/// Why a request to the CA failed. Each variant's message is a sentence an installer can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("the URL {url:?} cannot be used: {reason}")]
    BadUrl { url: String, reason: &'static str },

    #[error("the trust anchor for the CA cannot be used: {reason}")]
    BadTrustAnchor { reason: String },

    #[error("{url} is an https URL, but no trust anchor is configured for the CA, so its identity cannot be checked")]
    NoTrustAnchor { url: String },

    #[error("the request header {name:?} cannot be sent: {reason}")]
    BadRequest { name: String, reason: &'static str },

    #[error("the host name {host:?} could not be resolved to an address")]
    Dns {
        host: String,
        #[source]
        source: Option<io::Error>,
    },

    #[error("could not connect to {addr} (is the server running and reachable?)")]
    Connect {
        addr: String,
        #[source]
        source: io::Error,
    },

    #[error("{reason} (server {host})")]
    CertificateVerification {
        host: String,
        reason: VerificationFailure,
        #[source]
        source: rustls::Error,
    },

    #[error("the TLS handshake with {host} failed")]
    Tls {
        host: String,
        #[source]
        source: io::Error,
    },

    #[error("{host} did not answer in time: {phase} took longer than {} s", after.as_secs_f32())]
    Timeout { host: String, phase: TimeoutPhase, after: Duration },

    #[error("the answer from {host} is larger than the limit of {limit} bytes")]
    BodyTooLarge { host: String, limit: usize },

    #[error("the HTTP exchange with {host} failed")]
    Http {
        host: String,
        #[source]
        source: hyper::Error,
    },
}

impl Error {
    /// True when the server's certificate was refused (wrong anchor, wrong name, expired...).
    pub fn is_certificate_verification(&self) -> bool {
        matches!(self, Error::CertificateVerification { .. })
    }
}

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// Name resolution, TCP connect and TLS handshake.
    Connect,
    /// The whole request, from the first connect to the last byte of the answer.
    Request,
}

impl fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutPhase::Connect => "connecting",
            TimeoutPhase::Request => "the whole request",
        })
    }
}

/// Why the server's certificate was refused, in words an installer can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerificationFailure {
    NotSignedByTrustAnchor,
    WrongName,
    Expired,
    NotYetValid,
    Revoked,
    NotForServers,
    Other(String),
}

impl VerificationFailure {
    pub(crate) fn from_rustls(e: &rustls::Error) -> Option<Self> {
        use rustls::CertificateError as C;
        let rustls::Error::InvalidCertificate(c) = e else { return None };
        Some(match c {
            C::UnknownIssuer => Self::NotSignedByTrustAnchor,
            C::NotValidForName | C::NotValidForNameContext { .. } => Self::WrongName,
            C::Expired | C::ExpiredContext { .. } => Self::Expired,
            C::NotValidYet | C::NotValidYetContext { .. } => Self::NotYetValid,
            C::Revoked => Self::Revoked,
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => Self::NotForServers,
            other => Self::Other(format!("{other:?}")),
        })
    }
}

impl fmt::Display for VerificationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotSignedByTrustAnchor => {
                f.write_str("the server's certificate is not signed by the configured trust anchor")
            }
            Self::WrongName => {
                f.write_str("the server's certificate does not name the address or host name in the URL")
            }
            Self::Expired => f.write_str("the server's certificate has expired (or the camera's clock is wrong)"),
            Self::NotYetValid => {
                f.write_str("the server's certificate is not valid yet (or the camera's clock is wrong)")
            }
            Self::Revoked => f.write_str("the server's certificate has been revoked"),
            Self::NotForServers => f.write_str("the server's certificate is not meant for a TLS server"),
            Self::Other(what) => write!(f, "the server's certificate was refused ({what})"),
        }
    }
}
