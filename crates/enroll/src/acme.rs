//! One ACME enrollment: account key (made once, kept 0600), a key and request made on the camera
//! for its current names, the order answered through the web server's ports, the certificate
//! installed like an upload.

use std::path::Path;

use camera_acme::{AccountKey, AcmeError, CertificateRequest, ChallengeType, Eab, Identifier, Options};
use camera_http_client::HttpClient;
use camera_pki::SanName;
use camera_state::{read_optional, write_atomic, SECRET_MODE};

use crate::settings::AcmeSettings;
use crate::settings::trust_anchors;
use crate::{request_for, Attempt, Done, Failure};

impl From<AcmeError> for Failure {
    fn from(e: AcmeError) -> Self {
        Failure { retry_after: e.retry_after(), ..Failure::new(e.to_string()) }
    }
}

/// The account key in the state directory, made on first use.
fn account_key(path: &Path) -> Result<AccountKey, Failure> {
    match read_optional(path) {
        Ok(Some(pem)) => {
            let der = camera_pki::pem::pkcs8_key(&pem)
                .map_err(|e| Failure::new(format!("the ACME account key file is damaged ({e})")))?
                .ok_or_else(|| Failure::new("the ACME account key file holds no key"))?;
            AccountKey::from_pkcs8_der(&der).map_err(Failure::from)
        }
        Ok(None) => {
            let key = AccountKey::generate()?;
            let pem = camera_pki::pem::encode("PRIVATE KEY", &key.pkcs8_der());
            write_atomic(path, pem.as_bytes(), SECRET_MODE)
                .map_err(|e| Failure::new(format!("the ACME account key could not be stored ({e})")))?;
            Ok(key)
        }
        Err(e) => Err(Failure::new(format!("the ACME account key cannot be read ({e})"))),
    }
}

fn identifier(name: &SanName) -> Identifier {
    match name {
        SanName::Ip(ip) => Identifier::Ip(*ip),
        SanName::Dns(dns) => Identifier::Dns(dns.clone()),
    }
}

pub(crate) async fn enroll(
    settings: &AcmeSettings,
    names: &[SanName],
    account_key_path: &Path,
    account_url: Option<String>,
    attempt: &Attempt<'_>,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<Done, Failure> {
    if names.is_empty() {
        return Err(Failure::new("the camera has no address or name to put in a certificate"));
    }
    // ACME is https only (the settings check refuses anything else), always verified.
    let anchors = trust_anchors(settings.trust.as_deref().unwrap_or_default())
        .map_err(|e| Failure::new(format!("the trust anchor cannot be used: {e}")))?;
    let http = HttpClient::with_trust_anchors(anchors.iter().map(Vec::as_slice))
        .map_err(|e| Failure::new(format!("the trust anchor cannot be used: {e}")))?;
    let key = account_key(account_key_path)?;
    let eab = settings
        .eab
        .as_ref()
        .map(|e| Eab::new(e.kid.clone(), e.hmac_key.expose()))
        .transpose()
        .map_err(Failure::from)?;
    // Only the challenges a CA can validate against the camera's listeners as they are.
    let mut unanswerable = Vec::new();
    let challenge_types: Vec<ChallengeType> = settings
        .challenge_types
        .iter()
        .filter_map(|c| ChallengeType::parse(c))
        .filter(|&c| attempt.host().answerable(c).map_err(|why| unanswerable.push(why)).is_ok())
        .collect();
    if challenge_types.is_empty() {
        return Err(Failure::new(format!("no allowed challenge can be answered: {}", unanswerable.join("; "))));
    }
    let identifiers: Vec<Identifier> = names.iter().map(identifier).collect();
    let pending = request_for(names, settings.key_type, None).await?;
    let request = CertificateRequest {
        account_key: &key,
        account_url: account_url.as_deref(),
        contact: &settings.contact,
        eab: eab.as_ref(),
        identifiers: &identifiers,
        challenge_types: &challenge_types,
        csr_der: &pending.csr_der,
        options: Options::default(),
    };
    let report = |step: &camera_acme::Progress| progress(format!("{}.", capitalised(&step.to_string())));
    let issued =
        camera_acme::obtain_certificate(&http, &settings.url, &request, attempt.host().responder(), &report).await?;
    let installed = attempt.install(&issued.chain, pending.key.pkcs8_der(), "acme")?;
    Ok(Done { installed, account_url: Some(issued.account_url), scep_ca: None, how: "by an ACME order" })
}

fn capitalised(sentence: &str) -> String {
    let mut chars = sentence.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
