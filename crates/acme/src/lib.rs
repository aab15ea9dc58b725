//! An ACME client (RFC 8555) for the camera to get its certificate from a site's CA: IP identifiers
//! (RFC 8738) and DNS names, http-01 and tls-alpn-01 (RFC 8737) answered by the camera itself
//! through a [`ChallengeResponder`], external account binding, `badNonce` retry, `Retry-After`
//! honoured, problems as typed errors with installer-readable sentences. ACME Renewal Information
//! (RFC 9773, [`ari`]): [`ari::renewal_info_url`] reads where the CA answers renewal-information
//! questions, [`ari::renewal_info_at`] asks it for its suggested renewal window of a certificate
//! named by its [`cert_id`], and [`CertificateRequest::replaces`] names the
//! certificate a new order replaces.
//!
//! The one call a scheduler needs is [`obtain_certificate`]. The certificate key stays with the
//! caller: it passes a CSR (DER) made on the camera and gets back the chain, leaf first.
//!
//! ```no_run
//! # async fn run(responder: &dyn camera_acme::ChallengeResponder, csr_der: &[u8], trust_der: &[u8])
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! use camera_acme::{obtain_certificate, AccountKey, CertificateRequest, ChallengeType, Identifier, Options};
//! let http = camera_http_client::HttpClient::with_trust_anchors([trust_der])?;
//! let key = AccountKey::generate()?; // store key.pkcs8_der() (0600) and reuse it
//! let identifiers = [Identifier::Ip("192.168.1.120".parse()?), Identifier::Dns("cam-lobby.local".into())];
//! let request = CertificateRequest {
//!     account_key: &key,
//!     account_url: None, // or the Issued::account_url kept from last time
//!     contact: &[],
//!     eab: None,
//!     identifiers: &identifiers,
//!     challenge_types: &[ChallengeType::Http01, ChallengeType::TlsAlpn01],
//!     csr_der,
//!     replaces: None, // or camera_acme::cert_id(&certificate_in_service).ok()
//!     options: Options::default(),
//! };
//! let issued = obtain_certificate(&http, "https://ca.site.home.arpa/acme/directory", &request, responder,
//!     &|step| eprintln!("{step}")).await?;
//! let (leaf, intermediates) = issued.chain.split_first().ok_or("empty chain")?;
//! # let _ = (leaf, intermediates); Ok(()) }
//! ```

pub mod ari;
mod challenge;
mod error;
mod key;
mod session;
pub mod wire;

use std::fmt;
use std::time::Duration;

use camera_http_client::HttpClient;

pub use crate::ari::{cert_id, RenewalInfo};
pub use crate::challenge::{
    tls_alpn01_answer, tls_alpn_sni, ChallengeAnswer, ChallengeResponder, ChallengeType, ACME_TLS_ALPN,
};
pub use crate::error::{AcmeError, Operation};
pub use crate::key::{AccountKey, Eab};
pub use crate::wire::{Identifier, Problem, Status};

use crate::session::{Session, Signer};
use crate::wire::WireError;

/// Polling never runs faster than this, whatever the configuration or the server says.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// The most identifiers one order may name.
pub const MAX_IDENTIFIERS: usize = 100;
/// The largest CSR accepted from the caller.
pub const MAX_CSR: usize = 16 * 1024;

/// Tuning of one conversation.
#[derive(Debug, Clone)]
pub struct Options {
    /// Wait between status polls when the server sends no `Retry-After` (default 2 s), reached by
    /// doubling from `first_poll_interval`.
    pub poll_interval: Duration,
    /// The first such wait (default 250 ms): validation and issuance often take well under a
    /// second, and a fixed 2 s made every enrollment that needed one poll take two seconds more.
    pub first_poll_interval: Duration,
    /// Longest total wait for one object (authorization or order) to settle (default 5 min).
    pub max_wait: Duration,
    /// How often one request is re-signed with a fresh nonce after `badNonce` (default 5).
    pub bad_nonce_retries: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            poll_interval: Duration::from_secs(2),
            first_poll_interval: Duration::from_millis(250),
            max_wait: Duration::from_secs(300),
            bad_nonce_retries: 5,
        }
    }
}

/// What to ask for. `account_url` is the URL returned by an earlier call ([`Issued::account_url`]);
/// without it the account is registered (or found again: newAccount with a known key returns the
/// existing account), which costs one request more.
#[derive(Debug, Clone)]
pub struct CertificateRequest<'a> {
    pub account_key: &'a AccountKey,
    pub account_url: Option<&'a str>,
    /// `mailto:` URLs for the CA's notices; may be empty.
    pub contact: &'a [String],
    pub eab: Option<&'a Eab>,
    pub identifiers: &'a [Identifier],
    /// Allowed challenge types in order of preference, e.g. `[Http01, TlsAlpn01]`.
    pub challenge_types: &'a [ChallengeType],
    /// The CSR (DER) for the key made on the camera; it must name exactly `identifiers`.
    pub csr_der: &'a [u8],
    /// The CertID ([`ari::cert_id`]) of the certificate this one replaces, when it came from this
    /// CA: sent as the order's `replaces` (RFC 9773 section 5) when the directory offers renewal
    /// information. A CA that answers `alreadyReplaced` gets the order again without it.
    pub replaces: Option<&'a str>,
    pub options: Options,
}

/// A certificate, and the account it was issued to (keep the URL for the next call).
#[derive(Debug, Clone)]
pub struct Issued {
    pub account_url: String,
    /// DER certificates, leaf first, as the server sent them.
    pub chain: Vec<Vec<u8>>,
    /// Requests that had to be re-signed because the server refused their nonce (`badNonce`).
    pub bad_nonce_retries: u32,
}

/// Where the conversation is, for a state sentence in the UI (each one displays as a sentence).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    Directory { url: String },
    Account { url: String, created: bool },
    OrderCreated { url: String },
    AlreadyAuthorized { identifier: Identifier },
    ChallengePublished { identifier: Identifier, challenge: ChallengeType },
    Validating { identifier: Identifier, challenge: ChallengeType },
    Validated { identifier: Identifier },
    Waiting { what: &'static str, delay: Duration },
    Finalizing,
    Downloading,
    Issued { certificates: usize },
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Directory { url } => write!(f, "contacting the ACME server at {url}"),
            Progress::Account { created: true, .. } => write!(f, "registered a new account with the ACME server"),
            Progress::Account { created: false, .. } => write!(f, "using the camera's account on the ACME server"),
            Progress::OrderCreated { .. } => write!(f, "ordered a certificate"),
            Progress::AlreadyAuthorized { identifier } => write!(f, "{identifier} is already validated"),
            Progress::ChallengePublished { identifier, challenge } => {
                write!(f, "ready to answer the {challenge} check for {identifier}")
            }
            Progress::Validating { identifier, challenge } => {
                write!(f, "the ACME server is checking {identifier} with {challenge}")
            }
            Progress::Validated { identifier } => write!(f, "{identifier} validated"),
            Progress::Waiting { what, delay } => write!(f, "waiting {} s for {what}", delay.as_secs_f32()),
            Progress::Finalizing => write!(f, "sending the certificate request"),
            Progress::Downloading => write!(f, "downloading the certificate"),
            Progress::Issued { certificates } => write!(f, "certificate issued ({certificates} in the chain)"),
        }
    }
}

/// Withdraws every published answer when dropped: on success, on error, and when the caller drops
/// the future half-way (a scheduler's timeout).
struct Published<'r> {
    responder: &'r dyn ChallengeResponder,
    answers: Vec<ChallengeAnswer>,
}

impl Drop for Published<'_> {
    fn drop(&mut self) {
        for answer in self.answers.drain(..) {
            self.responder.withdraw(&answer);
        }
    }
}

/// Looks up the account registered for `key` (newAccount with `onlyReturnExisting`): its URL, or
/// `None` when the server knows no account for this key.
pub async fn find_account(
    http: &HttpClient,
    directory_url: &str,
    key: &AccountKey,
    options: &Options,
) -> Result<Option<String>, AcmeError> {
    let mut session = Session::open(http, directory_url, key, options).await?;
    let payload = serde_json::json!({"onlyReturnExisting": true});
    let url = session.directory.new_account.clone();
    match session.post(Operation::AccountLookup, &url, Some(&payload), Signer::Jwk, None).await {
        Ok(response) => Ok(Some(account_from(&session, &response)?)),
        Err(e) if e.is_problem("accountDoesNotExist") => Ok(None),
        Err(e) => Err(e),
    }
}

fn account_from(session: &Session<'_>, response: &camera_http_client::Response) -> Result<String, AcmeError> {
    let account = wire::parse_account(&response.body)
        .map_err(|source| AcmeError::Malformed { operation: Operation::NewAccount, source })?;
    if account.status != Status::Valid {
        return Err(AcmeError::AccountNotUsable { status: account.status });
    }
    let url = location(response, Operation::NewAccount)?;
    session.check_url("account", &url)?;
    Ok(url)
}

fn location(response: &camera_http_client::Response, operation: Operation) -> Result<String, AcmeError> {
    match response.header_str("location") {
        Some(l) if l.len() <= wire::MAX_URL => Ok(l.to_owned()),
        _ => Err(AcmeError::Malformed { operation, source: WireError::Invalid("Location header") }),
    }
}

async fn register(
    session: &mut Session<'_>,
    key: &AccountKey,
    contact: &[String],
    eab: Option<&Eab>,
    progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Result<String, AcmeError> {
    if session.directory.external_account_required() && eab.is_none() {
        return Err(AcmeError::ExternalAccountRequired { problem: None });
    }
    let url = session.directory.new_account.clone();
    let mut payload = serde_json::json!({"termsOfServiceAgreed": true});
    if !contact.is_empty() {
        payload["contact"] = serde_json::json!(contact);
    }
    if let Some(eab) = eab {
        payload["externalAccountBinding"] = eab.binding(key, &url);
    }
    let response = session.post(Operation::NewAccount, &url, Some(&payload), Signer::Jwk, None).await?;
    let account_url = account_from(session, &response)?;
    progress(&Progress::Account { url: account_url.clone(), created: response.status.as_u16() == 201 });
    Ok(account_url)
}

fn check_request(req: &CertificateRequest<'_>) -> Result<(), AcmeError> {
    let invalid = |reason: &str| Err(AcmeError::InvalidRequest { reason: reason.to_owned() });
    if req.identifiers.is_empty() {
        return invalid("it names no address or host name");
    }
    if req.identifiers.len() > MAX_IDENTIFIERS {
        return invalid("it names too many addresses and host names");
    }
    if req.challenge_types.is_empty() {
        return invalid("no challenge type (http-01, tls-alpn-01) is allowed");
    }
    if req.csr_der.is_empty() || req.csr_der.len() > MAX_CSR || req.csr_der[0] != 0x30 {
        return invalid("the CSR is empty, too large or not DER");
    }
    Ok(())
}

/// Runs a whole order: account (registered unless `req.account_url` is given), newOrder, one
/// challenge per pending authorization (the first of `req.challenge_types` the server offers),
/// polling, finalize with the caller's CSR, download. Every published challenge answer is
/// withdrawn before this returns. `progress` is called at each step.
pub async fn obtain_certificate(
    http: &HttpClient,
    directory_url: &str,
    req: &CertificateRequest<'_>,
    responder: &dyn ChallengeResponder,
    progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Result<Issued, AcmeError> {
    check_request(req)?;
    progress(&Progress::Directory { url: camera_log::escape_bounded(directory_url, 200) });
    let mut session = Session::open(http, directory_url, req.account_key, &req.options).await?;

    let mut account_url = match req.account_url {
        Some(url) => url.to_owned(),
        None => register(&mut session, req.account_key, req.contact, req.eab, progress).await?,
    };
    session.kid = Some(account_url.clone());

    let mut order_payload = serde_json::json!({
        "identifiers": req.identifiers.iter().map(Identifier::to_json).collect::<Vec<_>>(),
    });
    // `replaces` only to a CA that offers renewal information (RFC 9773 section 5).
    let replaces = req.replaces.filter(|_| session.directory.renewal_info.is_some());
    if let Some(cert_id) = replaces {
        order_payload["replaces"] = serde_json::json!(cert_id);
    }
    let new_order = session.directory.new_order.clone();
    let mut answer = session.post(Operation::NewOrder, &new_order, Some(&order_payload), Signer::Kid, None).await;
    // A remembered account URL the server no longer knows (CA reset): register again, once.
    if matches!(&answer, Err(e) if req.account_url.is_some() && e.is_problem("accountDoesNotExist")) {
        account_url = register(&mut session, req.account_key, req.contact, req.eab, progress).await?;
        session.kid = Some(account_url.clone());
        answer = session.post(Operation::NewOrder, &new_order, Some(&order_payload), Signer::Kid, None).await;
    }
    // The certificate was already replaced (or the CA will not say it is being replaced): order
    // again without `replaces`, once.
    if replaces.is_some() && matches!(&answer, Err(e) if e.is_problem("alreadyReplaced")) {
        if let Some(payload) = order_payload.as_object_mut() {
            payload.remove("replaces");
        }
        answer = session.post(Operation::NewOrder, &new_order, Some(&order_payload), Signer::Kid, None).await;
    }
    let response = answer?;
    let order_url = location(&response, Operation::NewOrder)?;
    session.check_url("order", &order_url)?;
    let mut order = wire::parse_order(&response.body)
        .map_err(|source| AcmeError::Malformed { operation: Operation::NewOrder, source })?;
    progress(&Progress::OrderCreated { url: order_url.clone() });

    if order.status == Status::Pending {
        authorize(&mut session, &order.authorizations, req, responder, progress).await?;
        order = session
            .poll(
                Operation::OrderStatus,
                "the order to become ready",
                &order_url,
                wire::parse_order,
                |o| o.status != Status::Pending,
                |delay| progress(&Progress::Waiting { what: "the order to become ready", delay }),
            )
            .await?;
    }

    if order.status == Status::Ready {
        progress(&Progress::Finalizing);
        session.check_url("finalize", &order.finalize)?;
        let payload = serde_json::json!({"csr": key::b64(req.csr_der)});
        let finalize = order.finalize.clone();
        let response = session.post(Operation::Finalize, &finalize, Some(&payload), Signer::Kid, None).await?;
        order = wire::parse_order(&response.body)
            .map_err(|source| AcmeError::Malformed { operation: Operation::Finalize, source })?;
    }
    if order.status == Status::Processing {
        order = session
            .poll(
                Operation::OrderStatus,
                "the certificate to be issued",
                &order_url,
                wire::parse_order,
                |o| o.status != Status::Processing,
                |delay| progress(&Progress::Waiting { what: "the certificate to be issued", delay }),
            )
            .await?;
    }
    if order.status != Status::Valid {
        return Err(AcmeError::OrderFailed { status: order.status, problem: order.error.map(Box::new) });
    }
    let certificate_url = order.certificate.ok_or(AcmeError::Malformed {
        operation: Operation::OrderStatus,
        source: WireError::Invalid("order: valid but without a certificate URL"),
    })?;
    session.check_url("certificate", &certificate_url)?;

    progress(&Progress::Downloading);
    let response = session
        .post(Operation::Certificate, &certificate_url, None, Signer::Kid, Some("application/pem-certificate-chain"))
        .await?;
    let chain = wire::parse_pem_chain(&response.body)
        .map_err(|source| AcmeError::Malformed { operation: Operation::Certificate, source })?;
    progress(&Progress::Issued { certificates: chain.len() });
    Ok(Issued { account_url, chain, bad_nonce_retries: session.bad_nonce_retries })
}

/// Publishes an answer for every pending authorization, asks the server to validate them, and
/// waits until each is valid. Answers are withdrawn on every way out.
async fn authorize(
    session: &mut Session<'_>,
    authorization_urls: &[String],
    req: &CertificateRequest<'_>,
    responder: &dyn ChallengeResponder,
    progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Result<(), AcmeError> {
    let mut published = Published { responder, answers: Vec::new() };
    // (authorization URL, challenge URL, identifier, type) of each challenge to trigger.
    let mut pending = Vec::new();
    for authz_url in authorization_urls {
        session.check_url("authorization", authz_url)?;
        let response = session.post(Operation::Authorization, authz_url, None, Signer::Kid, None).await?;
        let authz = wire::parse_authorization(&response.body)
            .map_err(|source| AcmeError::Malformed { operation: Operation::Authorization, source })?;
        let identifier = Identifier::from_wire(&authz.identifier).ok_or(AcmeError::Malformed {
            operation: Operation::Authorization,
            source: WireError::Invalid("identifier"),
        })?;
        match authz.status {
            Status::Valid => {
                progress(&Progress::AlreadyAuthorized { identifier });
                continue;
            }
            Status::Pending => {}
            status => {
                let problem = authz.challenges.iter().find_map(|c| c.error.clone()).map(Box::new);
                return Err(AcmeError::OrderFailed { status, problem });
            }
        }
        let chosen = req
            .challenge_types
            .iter()
            .find_map(|t| authz.challenges.iter().find(|c| c.kind == t.as_str()).map(|c| (*t, c)));
        let Some((kind, challenge)) = chosen else {
            return Err(AcmeError::NoUsableChallenge {
                identifier,
                offered: authz.challenges.iter().map(|c| camera_log::escape_bounded(&c.kind, 40)).collect(),
                allowed: req.challenge_types.iter().map(|t| t.as_str().to_owned()).collect(),
            });
        };
        session.check_url("challenge", &challenge.url)?;
        let token = challenge
            .checked_token()
            .map_err(|source| AcmeError::Malformed { operation: Operation::Authorization, source })?;
        let key_authorization = req.account_key.key_authorization(token);
        let answer = match kind {
            ChallengeType::Http01 => {
                ChallengeAnswer::Http01 { identifier: identifier.clone(), token: token.to_owned(), key_authorization }
            }
            ChallengeType::TlsAlpn01 => tls_alpn01_answer(&identifier, &key_authorization)?,
        };
        responder
            .publish(&answer)
            .map_err(|e| AcmeError::ChallengeSetup { identifier: identifier.clone(), reason: e.to_string() })?;
        published.answers.push(answer);
        progress(&Progress::ChallengePublished { identifier: identifier.clone(), challenge: kind });
        pending.push((authz_url.clone(), challenge.url.clone(), identifier, kind, challenge.status));
    }

    for (_, challenge_url, identifier, kind, status) in &pending {
        if *status == Status::Pending {
            session.post(Operation::Challenge, challenge_url, Some(&serde_json::json!({})), Signer::Kid, None).await?;
        }
        progress(&Progress::Validating { identifier: identifier.clone(), challenge: *kind });
    }

    for (authz_url, _, identifier, kind, _) in &pending {
        let authz = session
            .poll(
                Operation::Authorization,
                "the ACME server to validate the camera",
                authz_url,
                wire::parse_authorization,
                |a| a.status != Status::Pending,
                |delay| progress(&Progress::Waiting { what: "the validation", delay }),
            )
            .await?;
        if authz.status != Status::Valid {
            let problem = authz
                .challenges
                .iter()
                .find(|c| c.kind == kind.as_str())
                .and_then(|c| c.error.clone())
                .or_else(|| authz.challenges.iter().find_map(|c| c.error.clone()))
                .map(Box::new);
            return Err(AcmeError::ChallengeFailed {
                identifier: identifier.clone(),
                challenge: kind.as_str().to_owned(),
                problem,
            });
        }
        progress(&Progress::Validated { identifier: identifier.clone() });
    }
    drop(published);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    struct Nothing;
    impl ChallengeResponder for Nothing {
        fn publish(&self, _: &ChallengeAnswer) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            Ok(())
        }
        fn withdraw(&self, _: &ChallengeAnswer) {}
    }

    #[test]
    fn the_future_can_be_spawned_on_a_multithreaded_runtime() {
        let http = HttpClient::plain_http_only();
        let key = AccountKey::generate().unwrap();
        let ids = [Identifier::Ip("127.0.0.1".parse().unwrap())];
        let req = CertificateRequest {
            account_key: &key,
            account_url: None,
            contact: &[],
            eab: None,
            identifiers: &ids,
            challenge_types: &[ChallengeType::Http01],
            csr_der: &[0x30],
            replaces: None,
            options: Options::default(),
        };
        let fut = obtain_certificate(&http, "http://127.0.0.1:1/dir", &req, &Nothing, &|_| {});
        assert_send(&fut);
    }

    #[test]
    fn requests_are_checked_before_any_traffic() {
        let key = AccountKey::generate().unwrap();
        let ids = [Identifier::Ip("127.0.0.1".parse().unwrap())];
        let base = CertificateRequest {
            account_key: &key,
            account_url: None,
            contact: &[],
            eab: None,
            identifiers: &ids,
            challenge_types: &[ChallengeType::Http01],
            csr_der: &[0x30, 0],
            replaces: None,
            options: Options::default(),
        };
        assert!(check_request(&base).is_ok());
        let e = check_request(&CertificateRequest { identifiers: &[], ..base.clone() }).unwrap_err();
        assert_eq!(e.to_string(), "the certificate request is not valid: it names no address or host name");
        assert!(check_request(&CertificateRequest { challenge_types: &[], ..base.clone() }).is_err());
        assert!(check_request(&CertificateRequest { csr_der: b"PEM", ..base.clone() }).is_err());
        let many: Vec<Identifier> = (0..=MAX_IDENTIFIERS).map(|i| Identifier::Dns(format!("c{i}.local"))).collect();
        assert!(check_request(&CertificateRequest { identifiers: &many, ..base }).is_err());
    }

    #[test]
    fn a_bad_directory_url_is_the_installers_mistake_not_a_network_error() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let key = AccountKey::generate().unwrap();
        let err = rt
            .block_on(find_account(&HttpClient::plain_http_only(), "ftp://ca/dir", &key, &Options::default()))
            .unwrap_err();
        assert!(matches!(err, AcmeError::InvalidRequest { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the certificate request is not valid: the ACME directory URL is wrong: the URL \"ftp://ca/dir\" cannot be used: only http:// and https:// URLs are supported"
        );
    }

    #[test]
    fn progress_reads_as_sentences() {
        let ip = Identifier::Ip("192.168.1.20".parse().unwrap());
        let p = Progress::Validating { identifier: ip.clone(), challenge: ChallengeType::TlsAlpn01 };
        assert_eq!(p.to_string(), "the ACME server is checking 192.168.1.20 with tls-alpn-01");
        assert_eq!(Progress::Validated { identifier: ip }.to_string(), "192.168.1.20 validated");
    }
}
