use std::fmt;

/// Why the SCEP server refused a request (RFC 8894 section 3.2.1.4, the `failInfo` attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailInfo {
    /// `badAlg` (0): unrecognized or unsupported algorithm.
    BadAlg,
    /// `badMessageCheck` (1): integrity check (signature) failed.
    BadMessageCheck,
    /// `badRequest` (2): transaction not permitted or supported; what servers answer to a wrong
    /// challenge password.
    BadRequest,
    /// `badTime` (3): the message time was not close enough to the server's time.
    BadTime,
    /// `badCertId` (4): no certificate could be identified matching the criteria.
    BadCertId,
}

impl FailInfo {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s.trim() {
            "0" => Self::BadAlg,
            "1" => Self::BadMessageCheck,
            "2" => Self::BadRequest,
            "3" => Self::BadTime,
            "4" => Self::BadCertId,
            _ => return None,
        })
    }

    /// The RFC 8894 name (`badRequest`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::BadAlg => "badAlg",
            Self::BadMessageCheck => "badMessageCheck",
            Self::BadRequest => "badRequest",
            Self::BadTime => "badTime",
            Self::BadCertId => "badCertId",
        }
    }

    /// The code as it appears on the wire (`"2"` for badRequest).
    pub fn code(self) -> &'static str {
        match self {
            Self::BadAlg => "0",
            Self::BadMessageCheck => "1",
            Self::BadRequest => "2",
            Self::BadTime => "3",
            Self::BadCertId => "4",
        }
    }
}

impl fmt::Display for FailInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Self::BadAlg => "it does not support the algorithms the request uses",
            Self::BadMessageCheck => "it could not verify the request's signature",
            Self::BadRequest => {
                "the challenge password is wrong or expired, or the server's policy does not allow this request"
            }
            Self::BadTime => "the request's time is too far from the server's time: check the camera's clock",
            Self::BadCertId => "it does not know the certificate the request refers to",
        };
        write!(f, "{what} ({})", self.name())
    }
}

/// Everything that can go wrong building a SCEP request or reading the server's answer. Each
/// variant's text is a sentence an installer can act on; none contains a key or the challenge
/// password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScepError {
    /// The server refused the request (pkiStatus FAILURE).
    #[error("the SCEP server refused the request: {}{}", describe_refusal(.fail_info), fmt_server_text(.server_text))]
    Refused {
        /// The `failInfo` the server gave, if it gave a known one.
        fail_info: Option<FailInfo>,
        /// The server's own explanation (`failInfoText`, the protocol's field for it), escaped
        /// and bounded.
        server_text: Option<String>,
    },

    #[error("the SCEP server's {what} is too large ({size} bytes; at most {max} are accepted)")]
    TooLarge { what: &'static str, size: usize, max: usize },

    /// An answer of the wrong kind (an HTML page where a certificate belongs): described by its
    /// content type and length only. Its text is never quoted: the URL may point at any web
    /// server on the camera's network, and what that server says is not the installer's to read
    /// through the camera.
    #[error(
        "the SCEP server answered {operation} with content type \"{content_type}\" ({length} bytes) instead of {expected}: check the SCEP URL"
    )]
    UnexpectedContentType {
        operation: &'static str,
        /// The media type without parameters, escaped and bounded; `none` when there was none.
        content_type: String,
        expected: &'static str,
        /// The body's length in bytes.
        length: usize,
    },

    #[error("the SCEP server's capability list (GetCACaps) is not text")]
    CapabilitiesNotText,

    #[error("the SCEP server's CA certificate answer (GetCACert) holds no certificate")]
    NoCaCertificate,

    #[error("the SCEP server's CA certificate answer (GetCACert) holds more than {max} certificates")]
    TooManyCertificates { max: usize },

    #[error("a certificate from the SCEP server could not be read: {reason}")]
    BadCertificate { reason: String },

    #[error("the SCEP server's answer is not a well-formed {what}")]
    Malformed {
        what: &'static str,
        #[source]
        source: Option<der::Error>,
    },

    #[error("the SCEP server's answer lacks the {0} attribute that every SCEP reply must carry")]
    MissingAttribute(&'static str),

    #[error("the SCEP server's answer has the {0} attribute more than once")]
    DuplicateAttribute(&'static str),

    #[error("the SCEP server's answer is not a certificate reply (messageType \"{0}\")")]
    NotCertRep(String),

    #[error("the SCEP server's answer has an unknown pkiStatus \"{0}\"")]
    UnknownStatus(String),

    #[error("the SCEP server's answer is not signed by the SCEP server's certificate (from GetCACert)")]
    UnknownSigner,

    #[error(
        "the SCEP server's answer has a bad signature: it was changed on the way or was not made by the SCEP server"
    )]
    BadSignature,

    #[error("the SCEP server's answer does not match its own content digest: it was changed on the way")]
    DigestMismatch,

    #[error(
        "the SCEP server's answer belongs to another transaction (transactionID \"{got}\", expected \"{expected}\")"
    )]
    WrongTransaction { got: String, expected: String },

    #[error(
        "the SCEP server's answer does not echo this request's nonce: it is a replay or the answer to another request"
    )]
    WrongNonce,

    #[error("the SCEP server's answer could not be decrypted with this camera's key")]
    DecryptFailed,

    #[error("the SCEP server's answer is not encrypted to this camera's certificate")]
    NotForUs,

    #[error("the SCEP server's certificate reply holds no certificate for the key this camera asked for")]
    WrongKey,

    #[error("the SCEP server uses {0}, which this camera does not support")]
    UnsupportedAlgorithm(String),

    #[error(
        "the SCEP server's {0} certificate does not have an RSA key; SCEP encrypts requests with RSA key transport"
    )]
    RecipientNotRsa(&'static str),

    #[error(
        "the key for SCEP must be RSA: the server encrypts its answer to the requester with RSA key transport, which \
         EC keys cannot do"
    )]
    NotRsa,

    #[error("the RSA key for SCEP must have between 2048 and 8192 bits, not {0}")]
    RsaKeySize(usize),

    #[error("the private key for SCEP could not be read (expected PKCS#8 DER)")]
    BadKey,

    #[error("the certificate given for renewal does not belong to the given key")]
    CertificateKeyMismatch,

    #[error("the SCEP server's certificates do not all chain to the CA this camera trusts (a certificate in its GetCACert answer is signed by another key)")]
    Untrusted,

    #[error("the issued certificate is not signed by the SCEP server's trusted CA")]
    IssuedByAnother,

    #[error("the certificate request could not be built: {0}")]
    Csr(String),

    #[error("the challenge password must be at most {max} characters without control characters")]
    BadChallengePassword { max: usize },

    #[error("could not build the SCEP message: {0}")]
    Encode(#[source] der::Error),

    #[error("the system random number generator failed")]
    Random,
}

impl ScepError {
    pub(crate) fn malformed(what: &'static str) -> Self {
        Self::Malformed { what, source: None }
    }

    pub(crate) fn der(what: &'static str) -> impl FnOnce(der::Error) -> Self {
        move |e| Self::Malformed { what, source: Some(e) }
    }
}

fn describe_refusal(fail_info: &Option<FailInfo>) -> String {
    match fail_info {
        Some(info) => info.to_string(),
        None => "it gave no reason this camera understands".into(),
    }
}

fn fmt_server_text(text: &Option<String>) -> String {
    match text {
        Some(t) => format!("; the server says: \"{t}\""),
        None => String::new(),
    }
}

/// Server-provided text a protocol field defines as a message for people (`failInfoText`) or a
/// short value quoted in a sentence (`messageType`), ready for a log line or an API answer: at
/// most `max` characters, escaped by the one escaper of both programs, surrounding space trimmed.
/// Bytes that are not UTF-8 show as U+FFFD.
pub(crate) fn server_text(bytes: &[u8], max: usize) -> String {
    camera_log::escape_bounded(String::from_utf8_lossy(bytes).trim(), max)
}
