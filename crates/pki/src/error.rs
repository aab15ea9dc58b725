use std::fmt;

/// What went wrong while making or reading a certificate. Messages never contain key material.
#[derive(Debug)]
pub enum PkiError {
    /// The random number generator or the signer failed.
    Crypto(String),
    /// A CA certificate or key file could not be understood.
    CorruptCa(String),
    /// A request (CSR subject, names, validity) was not acceptable; the message says why.
    InvalidRequest(String),
    /// A certificate could not be parsed.
    BadCertificate(String),
}

impl fmt::Display for PkiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Crypto(m) => write!(f, "cryptographic operation failed: {m}"),
            Self::CorruptCa(m) => write!(f, "the CA is unusable: {m}"),
            Self::InvalidRequest(m) => f.write_str(m),
            Self::BadCertificate(m) => write!(f, "not a valid certificate: {m}"),
        }
    }
}

impl std::error::Error for PkiError {}

impl From<rcgen::Error> for PkiError {
    fn from(e: rcgen::Error) -> Self {
        Self::Crypto(e.to_string())
    }
}
