use std::fmt;
use std::time::Duration;

use crate::wire::{Identifier, Problem, WireError};

/// The step of the conversation an error happened in, as a noun phrase for sentences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Directory,
    Nonce,
    NewAccount,
    AccountLookup,
    NewOrder,
    Authorization,
    Challenge,
    OrderStatus,
    Finalize,
    Certificate,
    RenewalInfo,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Directory => "the directory request",
            Operation::Nonce => "the nonce request",
            Operation::NewAccount => "the account registration",
            Operation::AccountLookup => "the account lookup",
            Operation::NewOrder => "the order",
            Operation::Authorization => "the authorization request",
            Operation::Challenge => "the challenge response",
            Operation::OrderStatus => "the order status request",
            Operation::Finalize => "the certificate request (finalize)",
            Operation::Certificate => "the certificate download",
            Operation::RenewalInfo => "the renewal information request",
        })
    }
}

/// Why getting a certificate failed. Each message is a sentence an installer can read in the UI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcmeError {
    #[error("the ACME server could not be reached: {0}")]
    Http(#[from] camera_http_client::Error),

    #[error("the ACME server refused {operation}: {problem}")]
    Problem { operation: Operation, problem: Box<Problem> },

    #[error("the ACME server is limiting requests and refused {operation}{}{}",
        retry_after.map(|d| format!("; it asks to retry in {} s", d.as_secs())).unwrap_or_default(),
        problem.as_ref().map(|p| format!(": {p}")).unwrap_or_default())]
    RateLimited { operation: Operation, retry_after: Option<Duration>, problem: Option<Box<Problem>> },

    #[error("the ACME server requires an external account binding (a key id and HMAC key from the CA's administrator), and none is configured")]
    ExternalAccountRequired { problem: Option<Box<Problem>> },

    /// An error status without a problem document (an HTML error page, say): described by status,
    /// content type and length only, never quoted, since the URL may point at any web server on
    /// the camera's network.
    #[error("the ACME server answered {operation} with HTTP status {status} and no explanation (content type \"{content_type}\", {length} bytes)")]
    UnexpectedStatus {
        operation: Operation,
        status: u16,
        /// The media type without parameters, escaped and bounded; `none` when there was none.
        content_type: String,
        length: usize,
    },

    #[error("the ACME server sent an answer to {operation} that cannot be used: {source}")]
    Malformed {
        operation: Operation,
        #[source]
        source: WireError,
    },

    #[error("the ACME server sent a {url_kind} URL that cannot be used: {source}")]
    BadServerUrl {
        url_kind: &'static str,
        #[source]
        source: Box<camera_http_client::Error>,
    },

    #[error("the ACME server sent an {url_kind} URL {url:?}, but the directory is on https: refusing to continue without TLS")]
    InsecureUrl { url_kind: &'static str, url: String },

    #[error("the ACME server could not validate {identifier} with {challenge}{}",
        problem.as_ref().map(|p| format!(": {p}")).unwrap_or_else(|| " (no reason given)".into()))]
    ChallengeFailed { identifier: Identifier, challenge: String, problem: Option<Box<Problem>> },

    #[error("the ACME server offers no allowed challenge for {identifier} (it offers {}; allowed: {})",
        offered.join(", "), allowed.join(", "))]
    NoUsableChallenge { identifier: Identifier, offered: Vec<String>, allowed: Vec<String> },

    #[error("the order for the certificate became {status}{}",
        problem.as_ref().map(|p| format!(": {p}")).unwrap_or_default())]
    OrderFailed { status: crate::wire::Status, problem: Option<Box<Problem>> },

    #[error("the account on the ACME server is {status} and can no longer be used")]
    AccountNotUsable { status: crate::wire::Status },

    #[error("gave up waiting for {what} after {} s{}", waited.as_secs(),
        retry_after.map(|d| format!(" (the server asked to wait {} s more)", d.as_secs())).unwrap_or_default())]
    Timeout { what: &'static str, waited: Duration, retry_after: Option<Duration> },

    #[error("the challenge answer for {identifier} could not be put in place: {reason}")]
    ChallengeSetup { identifier: Identifier, reason: String },

    #[error("the ACME account key cannot be used: {reason}")]
    BadAccountKey { reason: String },

    #[error("the certificate request is not valid: {reason}")]
    InvalidRequest { reason: String },
}

impl AcmeError {
    /// The server's problem document, if the error carries one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            AcmeError::Problem { problem, .. } => Some(problem),
            AcmeError::RateLimited { problem, .. }
            | AcmeError::ExternalAccountRequired { problem }
            | AcmeError::ChallengeFailed { problem, .. }
            | AcmeError::OrderFailed { problem, .. } => problem.as_deref(),
            _ => None,
        }
    }

    /// How long the server asked the client to wait before trying again, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AcmeError::RateLimited { retry_after, .. } | AcmeError::Timeout { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn is_problem(&self, acme_type: &str) -> bool {
        self.problem().is_some_and(|p| p.is(acme_type))
    }
}
