//! Turns whatever an installer uploads into a validated (certificate chain, private key) pair, or
//! refuses it with a message a camera installer understands, before anything is stored.
//!
//! Pure functions over bytes: no file I/O, no HTTP. The web server calls [`validate_upload`]; fuzzers
//! can drive it directly.
//!
//! Accepted forms are auto-detected from the bytes (never from file names), in either upload field:
//! PEM (any number of blocks, any order, with surrounding text, CRLF or indentation) or DER
//! certificates; PKCS#8, PKCS#1 (RSA) and SEC1 (EC) keys in PEM or DER; encrypted PKCS#8 (PBES2 with
//! PBKDF2 or scrypt, AES-CBC or 3DES-CBC); legacy encrypted PEM (`Proc-Type: 4,ENCRYPTED`);
//! PKCS#12/PFX (OpenSSL 3 default and `-legacy`); and bare base64 pasted without the PEM armour.
//!
//! Keys come out as PKCS#8 DER in [`zeroize::Zeroizing`] buffers. Error messages and `Debug` output
//! never contain key bytes or the passphrase.

mod chain;
mod crypto;
mod detect;
mod keys;
mod material;
mod p12;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use camera_log::{escape, Escaped};
use zeroize::Zeroizing;

pub use camera_pki::x509::KeyPurpose;
pub use chain::{address_notices, dns_name_matches, CertificateNames};
pub use crypto::MAX_KDF_MEMORY;

/// What the installer sent. Either field may hold anything (certificate, key, chain, PKCS#12):
/// the content decides, not the field.
#[derive(Clone, Copy, Default)]
pub struct UploadInput<'a> {
    /// A file or pasted text; may also hold the key and chain, or be a PKCS#12.
    pub certificate: Option<&'a [u8]>,
    /// The private key, if sent separately.
    pub key: Option<&'a [u8]>,
    /// Passphrase for an encrypted key or a PKCS#12 file.
    pub passphrase: Option<&'a str>,
}

impl fmt::Debug for UploadInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadInput")
            .field("certificate", &self.certificate.map(<[u8]>::len))
            .field("key", &self.key.map(|_| "<redacted>"))
            .field("passphrase", &self.passphrase.map(|_| "<redacted>"))
            .finish()
    }
}

/// The camera's situation when the upload arrives.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The camera's clock.
    pub now: SystemTime,
    /// Key kept on the camera from a CSR the camera made, if any (PKCS#8 DER).
    pub pending_key_pkcs8: Option<&'a [u8]>,
    /// The camera's addresses right now.
    pub current_ips: &'a [IpAddr],
    /// Hostname / hostname.local if set.
    pub current_dns: &'a [String],
    /// What the certificate is for: the camera's HTTPS (serverAuth, names checked against the
    /// camera's) or 802.1X (clientAuth; names are only informational).
    pub purpose: KeyPurpose,
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("now", &self.now)
            .field("pending_key_pkcs8", &self.pending_key_pkcs8.map(|_| "<redacted>"))
            .field("current_ips", &self.current_ips)
            .field("current_dns", &self.current_dns)
            .field("purpose", &self.purpose)
            .finish()
    }
}

/// A validated upload, ready to be stored and served.
pub struct Accepted {
    /// Leaf first, then issuers in order (leaf -> ... -> closest to root); a root CA certificate is
    /// included only if it was uploaded.
    pub chain_der: Vec<Vec<u8>>,
    /// The private key as PKCS#8 DER (what rustls and ring want).
    pub key_pkcs8: Zeroizing<Vec<u8>>,
    /// True when no key was uploaded and the certificate pairs with the key of the camera's pending CSR.
    pub key_from_pending_csr: bool,
    /// Problems that do not prevent use, to show to the installer.
    pub warnings: Vec<Notice>,
}

impl Accepted {
    /// The chain as rustls wants it.
    pub fn certificate_chain(&self) -> Vec<rustls_pki_types::CertificateDer<'static>> {
        self.chain_der.iter().map(|c| rustls_pki_types::CertificateDer::from(c.clone())).collect()
    }

    /// The key as rustls wants it, borrowed from [`Accepted::key_pkcs8`] (no unzeroized copy; use
    /// `clone_key()` for an owned one, which implements `zeroize::Zeroize`).
    pub fn private_key(&self) -> rustls_pki_types::PrivateKeyDer<'_> {
        rustls_pki_types::PrivateKeyDer::Pkcs8(rustls_pki_types::PrivatePkcs8KeyDer::from(&self.key_pkcs8[..]))
    }
}

impl fmt::Debug for Accepted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accepted")
            .field("chain_len", &self.chain_der.len())
            .field("key_pkcs8", &"<redacted>")
            .field("key_from_pending_csr", &self.key_from_pending_csr)
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// A warning or an error, as shown to the installer: a stable snake_case code and one sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// Stable machine-readable code, e.g. `"key_mismatch"`.
    pub code: &'static str,
    /// A sentence a camera installer understands, saying what to do.
    pub message: String,
}

impl Notice {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why an upload was refused. [`UploadError::code`] is stable; `Display` is the installer-facing sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UploadError {
    /// Both fields empty.
    NothingUploaded,
    /// Not a certificate or key in any supported form.
    Unrecognised,
    /// Looks like a supported form but is damaged or cut short.
    Malformed {
        /// What it looked like ("PEM", "DER certificate", "PKCS#12 file", ...).
        what: &'static str,
        /// The parser's complaint, if one said more.
        source: Option<Cause>,
    },
    /// A certificate request (CSR) was uploaded instead of the certificate.
    CertificateRequest,
    /// Only a key (or public key) was uploaded.
    CertificateMissing,
    /// Several certificates could be the server certificate and they cannot be ordered.
    AmbiguousChain {
        /// Subjects of the candidates.
        candidates: Vec<String>,
    },
    /// Too many certificates or keys in one upload.
    TooManyItems,
    /// No key uploaded and no pending CSR key on the camera.
    KeyRequired,
    /// No key uploaded, and the certificate does not pair with the camera's pending CSR key.
    NotForThisCamera,
    /// The uploaded key does not pair with the certificate.
    KeyMismatch {
        /// The certificate does pair with the camera's pending CSR key.
        matches_pending: bool,
    },
    /// The key or PKCS#12 is encrypted and no passphrase was given.
    PassphraseRequired,
    /// The passphrase does not decrypt the key or PKCS#12.
    WrongPassphrase,
    /// Key-derivation parameters that would take the camera too long, or more memory than
    /// [`MAX_KDF_MEMORY`], to compute.
    KdfTooExpensive,
    /// Encryption scheme not supported.
    UnsupportedEncryption {
        /// The scheme, as far as it is known.
        scheme: String,
    },
    /// Key type or size not supported.
    UnsupportedKey {
        /// What was found, e.g. "RSA 1024-bit", "Ed25519", "EC P-521".
        found: String,
    },
    /// The key is damaged or internally inconsistent.
    InvalidKey {
        /// ring's reason for refusing it, if it was ring that refused.
        source: Option<Cause>,
    },
    /// An RSA private key larger than the TLS stack (ring) can load: 4096 bits.
    RsaKeyTooLarge {
        /// The key's modulus size.
        bits: usize,
    },
    /// A certificate is past its notAfter at the camera's time.
    Expired {
        /// Whose certificate.
        subject: String,
        /// notAfter, formatted.
        not_after: String,
        /// Whether it is the server certificate (leaf) or one of its issuers.
        leaf: bool,
    },
    /// A certificate's notBefore is after the camera's time.
    NotYetValid {
        /// Whose certificate.
        subject: String,
        /// notBefore, formatted.
        not_before: String,
        /// The camera's time, formatted.
        now: String,
    },
    /// The server certificate is a CA certificate.
    CaCertificate,
    /// A chain certificate does not sign the one before it.
    BrokenChain {
        /// The certificate whose signature fails.
        subject: String,
        /// The certificate that should have signed it.
        issuer: String,
        /// Why, in words.
        reason: String,
        /// The signature check's error, if that is what failed.
        source: Option<Cause>,
    },
    /// The server certificate has an extendedKeyUsage without serverAuth.
    NotServerCertificate,
    /// The 802.1X client certificate has an extendedKeyUsage without clientAuth.
    NotClientCertificate,
    /// The server certificate's keyUsage forbids signing, which TLS needs.
    KeyUsageNoSignature,
}

impl UploadError {
    /// Stable snake_case code for the API's `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NothingUploaded => "nothing_uploaded",
            Self::Unrecognised => "unrecognised_format",
            Self::Malformed { .. } => "malformed_data",
            Self::CertificateRequest => "certificate_request_uploaded",
            Self::CertificateMissing => "certificate_missing",
            Self::AmbiguousChain { .. } => "ambiguous_chain",
            Self::TooManyItems => "too_many_items",
            Self::KeyRequired => "key_required",
            Self::NotForThisCamera => "not_for_this_camera",
            Self::KeyMismatch { .. } => "key_mismatch",
            Self::PassphraseRequired => "passphrase_required",
            Self::WrongPassphrase => "wrong_passphrase",
            Self::KdfTooExpensive => "kdf_too_expensive",
            Self::UnsupportedEncryption { .. } => "unsupported_encryption",
            Self::UnsupportedKey { .. } => "unsupported_key_type",
            Self::InvalidKey { .. } => "invalid_key",
            Self::RsaKeyTooLarge { .. } => "key_too_large",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::CaCertificate => "ca_certificate",
            Self::BrokenChain { .. } => "broken_chain",
            Self::NotServerCertificate => "not_server_certificate",
            Self::NotClientCertificate => "not_client_certificate",
            Self::KeyUsageNoSignature => "key_usage_forbids_signing",
        }
    }

    /// Every code [`UploadError::code`] can return (the API's contract lists them).
    pub const CODES: &'static [&'static str] = &[
        "nothing_uploaded",
        "unrecognised_format",
        "malformed_data",
        "certificate_request_uploaded",
        "certificate_missing",
        "ambiguous_chain",
        "too_many_items",
        "key_required",
        "not_for_this_camera",
        "key_mismatch",
        "passphrase_required",
        "wrong_passphrase",
        "kdf_too_expensive",
        "unsupported_encryption",
        "unsupported_key_type",
        "invalid_key",
        "key_too_large",
        "expired",
        "not_yet_valid",
        "ca_certificate",
        "broken_chain",
        "not_server_certificate",
        "not_client_certificate",
        "key_usage_forbids_signing",
    ];

    /// Code and message together, as the API returns them.
    pub fn notice(&self) -> Notice {
        Notice::new(self.code(), self.to_string())
    }
}

impl From<&UploadError> for Notice {
    fn from(e: &UploadError) -> Self {
        e.notice()
    }
}

const SUPPORTED_KEYS: &str = "RSA of 2048, 3072 or 4096 bits, or EC P-256 or P-384";

impl fmt::Display for UploadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NothingUploaded => f.write_str(
                "Nothing was uploaded: choose the server certificate file (and its key, unless the request was created on this camera).",
            ),
            Self::Unrecognised => f.write_str(
                "The upload is not a certificate or key in PEM, DER or PKCS#12 form: upload the server certificate file (.crt/.pem/.cer/.der/.pfx/.p12) as the CA sent it.",
            ),
            Self::Malformed { what, .. } => write!(
                f,
                "The uploaded {what} is damaged or incomplete: upload the original file again, unchanged (do not edit it, and copy all of it including the BEGIN and END lines)."
            ),
            Self::CertificateRequest => f.write_str(
                "This is a certificate request (CSR), not a certificate: send it to your certificate authority and upload the certificate it returns.",
            ),
            Self::CertificateMissing => f.write_str(
                "Only a key was uploaded: upload the server certificate too (it can be in the same file).",
            ),
            Self::AmbiguousChain { candidates } => write!(
                f,
                "The upload holds several unrelated server certificates ({}) and it is not clear which one to use: upload only the certificate for this camera and its CA chain.",
                candidates.iter().map(|c| escape(c)).collect::<Vec<_>>().join("; ")
            ),
            Self::TooManyItems => f.write_str(
                "The upload holds too many certificates or keys: upload only the server certificate, its key and its CA chain.",
            ),
            Self::KeyRequired => f.write_str(
                "No private key was uploaded and this camera has no pending certificate request: upload the key too, or create the request on this camera first.",
            ),
            Self::NotForThisCamera => f.write_str(
                "This certificate was issued for another certificate request (perhaps made on another camera): a certificate signed from a camera's request only works with the key of the camera that made that request, so upload the certificate issued for this camera's request, or upload the certificate together with its own private key.",
            ),
            Self::KeyMismatch { matches_pending: true } => f.write_str(
                "The uploaded key does not belong to this certificate, but the certificate matches the request created on this camera: upload the certificate alone, without a key.",
            ),
            Self::KeyMismatch { matches_pending: false } => f.write_str(
                "The private key does not belong to this certificate: upload the key that was used to create the certificate request.",
            ),
            Self::PassphraseRequired => f.write_str(
                "The key or PKCS#12 file is protected by a passphrase: enter the passphrase and upload again.",
            ),
            Self::WrongPassphrase => f.write_str(
                "The passphrase does not open the key or PKCS#12 file: check the passphrase and upload again.",
            ),
            Self::KdfTooExpensive => f.write_str(
                "The file is encrypted with settings that would take the camera too long or too much memory to open (too many key-derivation iterations, or scrypt parameters above N=16384, r=8, p=1): export it again with default settings (for example openssl pkcs12 -export or openssl pkcs8 -topk8 without -iter or -scrypt_N).",
            ),
            Self::UnsupportedEncryption { scheme } => write!(
                f,
                "The file is encrypted with {}, which the camera does not support: export it again with AES-256-CBC (the OpenSSL default) or without encryption.",
                Escaped(scheme)
            ),
            Self::UnsupportedKey { found } => write!(
                f,
                "The key is {}, which browsers or the camera do not support for HTTPS: use {SUPPORTED_KEYS}.",
                Escaped(found)
            ),
            Self::InvalidKey { .. } => f.write_str(
                "The private key is damaged or inconsistent: export it again from where it was created.",
            ),
            Self::RsaKeyTooLarge { bits } => write!(
                f,
                "The key is a {bits}-bit RSA key, and RSA keys larger than 4096 bits are not supported by the camera's TLS stack: use a 2048-, 3072- or 4096-bit RSA key (or EC P-256 or P-384)."
            ),
            Self::Expired { subject, not_after, leaf: true } => write!(
                f,
                "The certificate \"{}\" expired on {not_after}: ask your certificate authority for a new one (and check that the camera's clock is right).",
                Escaped(subject)
            ),
            Self::Expired { subject, not_after, leaf: false } => write!(
                f,
                "The CA certificate \"{}\" in the chain expired on {not_after}: get the current CA certificate from your certificate authority (and check that the camera's clock is right).",
                Escaped(subject)
            ),
            Self::NotYetValid { subject, not_before, now } => write!(
                f,
                "The certificate \"{}\" is only valid from {not_before}, but the camera's clock says {now}: check the camera's date and time (or NTP), or wait until the certificate becomes valid.",
                Escaped(subject)
            ),
            Self::CaCertificate => f.write_str(
                "This is a CA certificate: import it in your PC, upload the server certificate signed by it.",
            ),
            Self::BrokenChain { subject, issuer, reason, .. } => write!(
                f,
                "The chain is broken: \"{}\" is not validly signed by \"{}\" ({reason}): upload the CA certificates that actually issued the server certificate.",
                Escaped(subject),
                Escaped(issuer)
            ),
            Self::NotServerCertificate => f.write_str(
                "This certificate is not allowed for web servers (its extended key usage lacks TLS server authentication): ask your certificate authority for a server certificate.",
            ),
            Self::NotClientCertificate => f.write_str(
                "This certificate is not allowed for 802.1X (its extended key usage lacks TLS client authentication): ask your certificate authority for a client certificate.",
            ),
            Self::KeyUsageNoSignature => f.write_str(
                "This certificate's key usage does not allow digital signatures, which HTTPS needs: ask your certificate authority for a server certificate with keyUsage digitalSignature.",
            ),
        }
    }
}

impl std::error::Error for UploadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Malformed { source, .. } | Self::InvalidKey { source } | Self::BrokenChain { source, .. } => {
                source.as_ref().map(|c| c as &(dyn std::error::Error + 'static))
            }
            _ => None,
        }
    }
}

impl UploadError {
    pub(crate) fn malformed(what: &'static str) -> Self {
        Self::Malformed { what, source: None }
    }

    pub(crate) fn malformed_by(what: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Malformed { what, source: Some(Cause::new(source)) }
    }

    pub(crate) fn invalid_key(source: Option<Cause>) -> Self {
        Self::InvalidKey { source }
    }
}

/// The lower-level error behind an [`UploadError`] (a DER or PEM parser's, ring's), for logs and
/// debugging; the installer-facing sentence never includes it. It says what the parser expected
/// and where, never the bytes. Two causes are equal when they say the same.
#[derive(Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl Cause {
    pub(crate) fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(e))
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl Eq for Cause {}

/// Validates an upload. Errors refuse it; warnings in [`Accepted::warnings`] inform.
pub fn validate_upload(input: &UploadInput, ctx: &Context) -> Result<Accepted, UploadError> {
    let fields: Vec<&[u8]> = [input.certificate, input.key]
        .into_iter()
        .flatten()
        .filter(|b| b.iter().any(|c| !c.is_ascii_whitespace()))
        .collect();
    if fields.is_empty() {
        return Err(UploadError::NothingUploaded);
    }
    let passphrase = input.passphrase.map(crypto::Passphrase::new);
    let mut budget = crypto::Budget::default();
    let mut material = material::Material::default();
    for field in fields {
        detect::read_field(field, passphrase.as_ref(), &mut budget, &mut material)?;
    }
    chain::assemble(material, ctx)
}
