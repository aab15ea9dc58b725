use crate::pem::PemError;
use camera_log::Escaped;

/// What went wrong while making or reading a certificate. Each variant says what failed; a
/// lower-level cause is its [`source`](std::error::Error::source), not repeated in the sentence.
/// Messages never contain key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// What the caller asked for (a request's subject and names, a validity, a name constraint) is
    /// not acceptable; the sentence says why, for the person who typed it.
    #[error(transparent)]
    InvalidRequest(#[from] RequestError),
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// ring (through rcgen) could not generate an EC key.
    #[error("generating an EC key failed")]
    GenerateKey(#[source] rcgen::Error),
    /// The rsa crate could not generate an RSA key.
    #[error("generating an RSA key failed")]
    GenerateRsaKey(#[source] rsa::Error),
    /// A new RSA key could not be written as PKCS#8.
    #[error("encoding the new RSA key as PKCS#8 failed")]
    EncodeRsaKey(#[source] rsa::pkcs8::Error),
    /// A private key is not one the camera can sign with (PKCS#8 ECDSA P-256/P-384 or RSA).
    #[error("the private key is not a PKCS#8 ECDSA P-256, P-384 or RSA key the camera can sign with")]
    UnusableKey(#[source] rcgen::Error),
    /// rcgen could not build or sign a certificate or request.
    #[error("signing the {what} failed")]
    Sign {
        /// "CA certificate", "server certificate" or "certificate request".
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    /// PEM text could not be read.
    #[error("the PEM text is damaged")]
    Pem(#[from] PemError),
    /// PEM text holds no block of the kind needed.
    #[error("the PEM text holds no {label} block")]
    MissingPem {
        /// The label looked for, e.g. `PRIVATE KEY`.
        label: &'static str,
    },
    /// A DER certificate does not parse.
    #[error("the certificate does not parse")]
    ParseCertificate(#[source] der::Error),
    /// A DER certificate request does not parse.
    #[error("the certificate request does not parse")]
    ParseRequest(#[source] der::Error),
    /// A certificate's date cannot be represented.
    #[error("a certificate date is out of range")]
    Date(#[source] ::time::error::ComponentRange),
    /// The CA key does not pair with the CA certificate.
    #[error("the CA key does not belong to the CA certificate")]
    CaKeyMismatch,
    /// The CA certificate lacks basicConstraints CA:TRUE.
    #[error("the CA certificate is not a CA certificate (no basicConstraints CA:TRUE)")]
    NotCa,
    /// The CA certificate's nameConstraints extension cannot be read.
    #[error("the CA certificate's name constraints cannot be read")]
    CaNameConstraints(#[source] crate::x509::ExtensionError),
    /// The CA certificate's basicConstraints or subjectKeyIdentifier extension cannot be read.
    #[error("the CA certificate's extensions cannot be read")]
    CaExtension(#[source] crate::x509::ExtensionError),
    /// The CA certificate's subject cannot be written back as the issuer of the certificates it
    /// signs, byte for byte (clients match a certificate's issuer to its CA's subject exactly).
    #[error(
        "the CA certificate's subject cannot be written as the issuer name of the certificates it signs: {reason}"
    )]
    CaSubject {
        /// What in the subject cannot be reproduced.
        reason: &'static str,
    },
    /// A certificate just signed names its issuer differently from the CA's subject.
    #[error("a certificate signed by the CA does not name the CA's subject exactly as its issuer")]
    IssuerNameMismatch,
    /// An IP address name constraint is neither 8 (IPv4) nor 32 (IPv6) bytes long.
    #[error("an IP address name constraint of the CA certificate is {len} bytes long instead of 8 or 32")]
    BadIpConstraint {
        /// Its length.
        len: usize,
    },
    /// rcgen cannot issue certificates from the CA certificate.
    #[error("the CA certificate cannot be used to issue certificates")]
    CaCannotIssue(#[source] rcgen::Error),
    /// The certificate after the issuing CA's is not the root that signed it.
    #[error("the root certificate stored with the issuing CA did not sign it")]
    RootMismatch,
    /// A CA file holds more certificates than an issuing CA and its root.
    #[error("the CA file holds {count} certificates; it holds the issuing CA and its root, or one CA")]
    TooManyCaCertificates {
        /// How many.
        count: usize,
    },
}

/// A request that is not acceptable, in a sentence for the person who made it. Values quoted from
/// the request have their control characters escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// A subject field is too long.
    #[error("{field} is longer than {max} characters")]
    FieldTooLong {
        /// e.g. "Common name (CN)".
        field: &'static str,
        /// The most characters allowed.
        max: usize,
    },
    /// A subject field holds control characters.
    #[error("{field} contains control characters")]
    ControlCharacters {
        /// e.g. "Common name (CN)".
        field: &'static str,
    },
    /// The country is not a two-letter code.
    #[error("Country (C) must be a two-letter ISO 3166 code such as CN or DE, not \"{}\"", Escaped(.value))]
    Country {
        /// What was given.
        value: String,
    },
    /// Too many subject alternative names.
    #[error("at most {max} subject alternative names")]
    TooManyNames {
        /// The most allowed.
        max: usize,
    },
    /// A name is neither an IP address nor a DNS name.
    #[error("\"{}\" is neither an IP address nor a valid DNS name", Escaped(.input))]
    NotAName {
        /// What was given (its first 80 characters).
        input: String,
    },
    /// A request without any subject alternative name.
    #[error(
        "give at least one subject alternative name (the camera's IP address or DNS name): browsers ignore the CN"
    )]
    NoNames,
    /// A server certificate validity outside the allowed range.
    #[error("server certificate validity must be 1 to {max} days, not {days}")]
    Validity {
        /// What was asked.
        days: i64,
        /// The most allowed.
        max: i64,
    },
    /// None of the names to certify is permitted by the CA's name constraints.
    #[error("none of the camera's names is permitted by its CA, so no certificate can name it")]
    NoPermittedName,
    /// A permitted DNS name constraint is not a DNS domain.
    #[error(
        "permitted_dns \"{}\" is not a DNS domain such as local or site.home.arpa (ASCII letters, digits, '-' and '.')",
        Escaped(.suffix)
    )]
    DnsConstraint {
        /// What was given (its first 80 characters).
        suffix: String,
    },
    /// A subnet is not written as address/prefix.
    #[error("\"{}\" is not in CIDR form (a.b.c.d/n)", Escaped(.input))]
    NotCidr {
        /// What was given.
        input: String,
    },
    /// The address part of a subnet is not an IP address.
    #[error("\"{}\" is not an IP address", Escaped(.input))]
    NotAnAddress {
        /// What was given.
        input: String,
    },
    /// The prefix part of a subnet is not a number.
    #[error("\"{}\" is not a prefix length", Escaped(.input))]
    NotAPrefix {
        /// What was given.
        input: String,
    },
    /// The prefix is longer than the address.
    #[error("prefix /{prefix} is longer than {max} bits")]
    PrefixTooLong {
        /// What was given.
        prefix: u8,
        /// 32 or 128.
        max: u8,
    },
}
