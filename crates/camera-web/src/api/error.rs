//! Every error the API answers with: one enum, each variant with its stable code, its HTTP status
//! and the sentence a person reads. The UI, the OpenAPI document and installers' scripts all key on
//! the codes; [`ERROR_CODES`] lists them for the contract tests.
//!
//! 4xx: something is wrong with the request. 5xx: the camera itself failed (507: storage full).

use hyper::header::{self, HeaderName};
use hyper::StatusCode;

/// Defines [`ApiError`], its `code`, `status`, `Display` (the sentence) and [`ERROR_CODES`] from
/// one table, so a code cannot exist in one place and not the others.
macro_rules! api_errors {
    ($(
        $(#[$doc:meta])*
        $variant:ident { $($field:ident : $ty:ty),* $(,)? } => ($status:ident, $code:literal, $($sentence:tt)+)
    ),+ $(,)?) => {
        /// An API error: see the module documentation.
        #[derive(Debug)]
        pub enum ApiError {
            $( $(#[$doc])* $variant { $($field: $ty),* }, )+
            /// An upload the checks refused; code and sentence come from `camera-upload`.
            Upload(camera_upload::UploadError),
        }

        /// Every code the API can answer with, and its status (upload codes included).
        pub fn error_codes() -> Vec<(&'static str, u16)> {
            let mut codes = vec![$( ($code, StatusCode::$status.as_u16()) ),+];
            codes.extend(camera_upload::UploadError::CODES.iter().map(|code| (*code, UPLOAD_STATUS.as_u16())));
            codes
        }

        impl ApiError {
            /// The stable code of the error body's `error` field.
            pub fn code(&self) -> &'static str {
                match self {
                    $( Self::$variant { .. } => $code, )+
                    Self::Upload(e) => e.code(),
                }
            }

            pub fn status(&self) -> StatusCode {
                match self {
                    $( Self::$variant { .. } => StatusCode::$status, )+
                    Self::Upload(_) => UPLOAD_STATUS,
                }
            }
        }

        impl std::fmt::Display for ApiError {
            #[allow(unused_variables)]
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $( Self::$variant { $($field),* } => write!(f, $($sentence)+), )+
                    Self::Upload(e) => write!(f, "{e}"),
                }
            }
        }
    };
}

/// Refused uploads: the request was well-formed, its content is not acceptable.
const UPLOAD_STATUS: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;

api_errors! {
    // The request itself.
    NotFound { path: String } => (NOT_FOUND, "not_found", "There is nothing at {path}."),
    MethodNotAllowed { method: String, path: String, allow: String } =>
        (METHOD_NOT_ALLOWED, "method_not_allowed", "{method} is not supported on {path}; use {allow}."),
    TooLarge { what: &'static str, limit_kib: usize } =>
        (PAYLOAD_TOO_LARGE, "too_large", "The {what} is larger than {limit_kib} KiB."),
    TooSlow { what: &'static str } => (REQUEST_TIMEOUT, "too_slow", "The {what} took too long to arrive."),
    BadBody { what: &'static str } => (BAD_REQUEST, "bad_body", "The {what} could not be read completely."),
    JsonRequired {} => (UNSUPPORTED_MEDIA_TYPE, "json_required",
        "Send the request as JSON with the header Content-Type: application/json."),
    BadJson { detail: String } => (BAD_REQUEST, "bad_json", "The request is not the JSON this API expects: {detail}."),
    /// A password body that does not parse; never quotes the body (it may hold the password).
    BadPasswordJson {} => (BAD_REQUEST, "bad_json", "Send {{\"password\": \"...\"}} as the request body."),
    GzipRefused {} => (NOT_ACCEPTABLE, "gzip_required",
        "The camera's web page is stored gzip-compressed and this client refuses gzip: open it in a browser, or use curl --compressed."),
    CrossSite {} => (FORBIDDEN, "cross_site", "Changes are only accepted from the camera's own page."),

    // Who is asking.
    SetupRequired {} => (FORBIDDEN, "setup_required",
        "No admin password is set yet: set one first (the web page asks for it, or POST /api/v1/setup)."),
    AlreadySet {} => (CONFLICT, "already_set", "The admin password is already set; log in with it."),
    WeakPassword { rule: String } => (BAD_REQUEST, "weak_password", "{rule}."),
    PasswordFileDamaged {} => (SERVICE_UNAVAILABLE, "password_file_damaged",
        "The camera's admin password file is damaged, so changes are refused; remove admin-password.json on the camera to set a new password."),
    /// `basic`: answer with a `WWW-Authenticate` challenge (HTTP Basic clients only: a browser
    /// page's fetch would otherwise pop up the browser's own password dialog).
    WrongPassword { basic: bool } => (UNAUTHORIZED, "wrong_password", "The password is not correct."),
    TooManyAttempts { retry_after_secs: u64 } => (TOO_MANY_REQUESTS, "too_many_attempts",
        "Too many wrong passwords from this address: wait {retry_after_secs} seconds and try again."),
    Busy { retry_after_secs: u64 } => (TOO_MANY_REQUESTS, "busy",
        "The camera is checking other passwords: try again in a moment."),
    UnsupportedAuth {} => (UNAUTHORIZED, "unsupported_auth", "Only HTTP Basic authentication (user admin) is supported."),
    BadAuth {} => (UNAUTHORIZED, "bad_auth", "The Authorization header is malformed."),
    WrongUser {} => (UNAUTHORIZED, "wrong_user", "The user name is admin."),
    LoginRequired {} => (UNAUTHORIZED, "login_required", "Log in first (or use HTTP Basic with the user admin)."),
    SessionExpired {} => (UNAUTHORIZED, "session_expired", "Your session has ended: log in again."),
    Csrf {} => (FORBIDDEN, "csrf",
        "The request did not come from the camera's own page (missing or wrong X-CSRF-Token)."),

    // Certificates and requests.
    NoRequest {} => (NOT_FOUND, "no_request", "No certificate request has been created on this camera yet."),
    BadRequest { detail: String } => (BAD_REQUEST, "bad_request", "{detail}."),
    BadForm { detail: String } => (BAD_REQUEST, "bad_form", "{detail}."),
    BadPassphrase {} => (BAD_REQUEST, "bad_passphrase", "The passphrase is not valid UTF-8 text."),
    UnknownField { name: String } => (BAD_REQUEST, "unknown_field",
        "Unknown form field \"{name}\": use certificate, key and passphrase."),
    FieldTooLarge { name: String } => (PAYLOAD_TOO_LARGE, "too_large", "The {name} field is larger than 64 KiB."),
    Empty {} => (BAD_REQUEST, "empty", "Nothing was uploaded: choose a certificate file or paste PEM text."),
    /// The checks passed but the TLS stack refused the key.
    Unusable { detail: String } => (UNPROCESSABLE_ENTITY, "unusable",
        "The TLS stack cannot use this certificate and key ({detail}); the certificate in use is unchanged."),

    // Enrollment.
    BadEnrollment { detail: String } => (BAD_REQUEST, "bad_enrollment", "The enrollment settings are not usable: {detail}."),
    EnrollmentTooFrequent { retry_after_secs: u64 } => (TOO_MANY_REQUESTS, "enrollment_too_frequent",
        "Enrollment was started several times in a row: wait {retry_after_secs} seconds before starting it again (the camera renews by itself)."),

    // 802.1X.
    BadDot1x { detail: String } => (BAD_REQUEST, "bad_dot1x", "The 802.1X settings are not usable: {detail}."),
    Dot1xNeedsCertificate {} => (CONFLICT, "dot1x_needs_certificate",
        "802.1X needs a client certificate first: upload one (or make a request on the camera and upload its certificate), then turn 802.1X on."),
    Dot1xCertificateInUse {} => (CONFLICT, "dot1x_certificate_in_use",
        "802.1X is on and uses this certificate: turn 802.1X off first, or upload a new certificate to replace it."),

    // The camera itself.
    StorageFull { what: &'static str } => (INSUFFICIENT_STORAGE, "storage_full",
        "The camera's storage is full, so {what} could not be saved; nothing was changed. Free space on the camera (or restore its own certificate) and try again."),
    Storage { what: &'static str, detail: String } => (INSUFFICIENT_STORAGE, "storage",
        "The camera could not save {what} ({detail}); nothing was changed."),
    NoRandomness {} => (SERVICE_UNAVAILABLE, "no_randomness",
        "The camera's random number generator failed; nothing was changed. Try again."),
    Internal { what: &'static str } => (INTERNAL_SERVER_ERROR, "internal", "{what} failed inside the camera; try again."),
}

impl ApiError {
    /// A failed write of `what`: 507 either way, with the full-disk sentence when that is the cause.
    pub fn storage(what: &'static str, e: &std::io::Error) -> Self {
        if e.raw_os_error() == Some(nix::libc::ENOSPC) || e.raw_os_error() == Some(nix::libc::EDQUOT) {
            Self::StorageFull { what }
        } else {
            Self::Storage { what, detail: e.to_string() }
        }
    }

    /// Headers the answer carries besides the JSON body.
    pub fn headers(&self) -> Vec<(HeaderName, String)> {
        match self {
            Self::TooManyAttempts { retry_after_secs }
            | Self::Busy { retry_after_secs }
            | Self::EnrollmentTooFrequent { retry_after_secs } => {
                vec![(header::RETRY_AFTER, retry_after_secs.to_string())]
            }
            Self::WrongPassword { basic: true } => {
                vec![(header::WWW_AUTHENTICATE, "Basic realm=\"camera\", charset=\"UTF-8\"".to_owned())]
            }
            Self::MethodNotAllowed { allow, .. } => vec![(header::ALLOW, allow.clone())],
            _ => Vec::new(),
        }
    }
}

impl From<camera_upload::UploadError> for ApiError {
    fn from(e: camera_upload::UploadError) -> Self {
        Self::Upload(e)
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Upload(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_per_status_and_sentences_end_with_a_full_stop() {
        let codes = error_codes();
        for (i, (code, status)) in codes.iter().enumerate() {
            assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{code}");
            // One code may appear twice only with the same status (bad_json, too_large).
            for (other, other_status) in &codes[i + 1..] {
                assert!(code != other || status == other_status, "{code} has two statuses");
            }
        }
        let samples = [
            ApiError::TooLarge { what: "upload", limit_kib: 64 },
            ApiError::StorageFull { what: "the certificate" },
            ApiError::WrongPassword { basic: true },
        ];
        for e in samples {
            assert!(e.to_string().ends_with('.'), "{e}");
            assert!(codes.iter().any(|(c, s)| *c == e.code() && *s == e.status().as_u16()), "{}", e.code());
        }
    }

    #[test]
    fn a_full_disk_is_507_with_a_sentence_that_says_so() {
        let full = ApiError::storage("the certificate", &std::io::Error::from_raw_os_error(nix::libc::ENOSPC));
        assert_eq!((full.status().as_u16(), full.code()), (507, "storage_full"));
        assert!(full.to_string().contains("storage is full"), "{full}");
        let other = ApiError::storage("the certificate", &std::io::Error::from_raw_os_error(nix::libc::EROFS));
        assert_eq!((other.status().as_u16(), other.code()), (507, "storage"));
    }
}
