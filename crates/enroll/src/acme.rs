//! One ACME enrollment: account key (made once, kept 0600), a key and request made on the camera
//! for its current names, the order answered through the web server's ports, the certificate
//! installed like an upload.

use std::path::Path;

use camera_acme::{AccountKey, CertificateRequest, ChallengeType, Eab, Identifier, Options};
use camera_http_client::HttpClient;
use camera_pki::SanName;
use camera_state::{read_optional, write_atomic, SECRET_MODE};

use crate::attempt::{request_for, AccountKeyError, Attempt, Cause, Done, Failure};
use crate::host::Host;
use crate::settings::{trust_anchors, AcmeSettings, Protocol};

/// The account key in the state directory, made on first use.
fn account_key(path: &Path) -> Result<AccountKey, Failure> {
    match read_optional(path) {
        Ok(Some(pem)) => {
            let der =
                camera_pki::pem::pkcs8_key(&pem).map_err(AccountKeyError::Damaged)?.ok_or(AccountKeyError::Empty)?;
            Ok(AccountKey::from_pkcs8_der(&der)?)
        }
        Ok(None) => {
            let key = AccountKey::generate()?;
            let pem = camera_pki::pem::encode("PRIVATE KEY", &key.pkcs8_der());
            write_atomic(path, pem.as_bytes(), SECRET_MODE).map_err(AccountKeyError::Store)?;
            Ok(key)
        }
        Err(e) => Err(AccountKeyError::Read(e).into()),
    }
}

fn identifier(name: &SanName) -> Identifier {
    match name {
        SanName::Ip(ip) => Identifier::Ip(*ip),
        SanName::Dns(dns) => Identifier::Dns(dns.clone()),
    }
}

/// The CA's renewal information (RFC 9773) for the certificate `cert_id` names, asked at
/// `known_url` (where the CA answered before) or else where the directory says; with the URL it
/// was asked at, to be kept. `(None, None)` when the directory offers none.
pub(crate) async fn renewal_info(
    settings: &AcmeSettings,
    cert_id: &str,
    known_url: Option<String>,
) -> Result<(Option<camera_acme::RenewalInfo>, Option<String>), Cause> {
    let anchors = trust_anchors(settings.trust.as_deref().unwrap_or_default()).map_err(Cause::TrustSetting)?;
    let http = HttpClient::with_trust_anchors(anchors.iter().map(Vec::as_slice)).map_err(Cause::TrustAnchor)?;
    let url = match known_url {
        Some(url) => url,
        None => match camera_acme::ari::renewal_info_url(&http, &settings.url).await? {
            Some(url) => url,
            None => return Ok((None, None)),
        },
    };
    let info = camera_acme::ari::renewal_info_at(&http, &url, cert_id).await?;
    Ok((Some(info), Some(url)))
}

/// `replaces`: the CertID of the certificate in service when the CA's renewal information covers
/// it (so it came from this CA).
pub(crate) async fn enroll(
    settings: &AcmeSettings,
    names: &[SanName],
    account_key_path: &Path,
    account_url: Option<String>,
    replaces: Option<String>,
    attempt: &Attempt<'_>,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<Done, Failure> {
    if names.is_empty() {
        return Err(Cause::NoNames.into());
    }
    // ACME is https only (the settings check refuses anything else), always verified.
    let anchors = trust_anchors(settings.trust.as_deref().unwrap_or_default()).map_err(Cause::TrustSetting)?;
    let http = HttpClient::with_trust_anchors(anchors.iter().map(Vec::as_slice)).map_err(Cause::TrustAnchor)?;
    let key = account_key(account_key_path)?;
    let eab = settings.eab.as_ref().map(|e| Eab::new(e.kid.clone(), e.hmac_key.expose())).transpose()?;
    let challenge_types = answerable(&settings.challenge_types, attempt.host)?;
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
        replaces: replaces.as_deref(),
        options: Options::default(),
    };
    let report = |step: &camera_acme::Progress| progress(format!("{}.", capitalised(&step.to_string())));
    let issued =
        camera_acme::obtain_certificate(&http, &settings.url, &request, attempt.host.responder(), &report).await?;
    let installed = attempt.install(&issued.chain, pending.key.pkcs8_der(), Protocol::Acme)?;
    Ok(Done { installed, account_url: Some(issued.account_url), scep_ca: None, how: "by an ACME order" })
}

/// The allowed challenges the camera can answer, in the order to try them: a challenge whose
/// listener is off is left out; one whose listener is on its standard port (80 for http-01,
/// 443 for tls-alpn-01: where a CA validates, RFC 8555 section 8.3, RFC 8737 section 3) comes
/// before one that only a port forward could reach.
fn answerable(allowed: &[String], host: &dyn Host) -> Result<Vec<ChallengeType>, Cause> {
    let standard = |c: ChallengeType| match c {
        ChallengeType::Http01 => 80,
        ChallengeType::TlsAlpn01 => 443,
    };
    let mut off = Vec::new();
    let mut usable: Vec<(bool, ChallengeType)> = Vec::new();
    for challenge in allowed.iter().filter_map(|c| ChallengeType::parse(c)) {
        match host.challenge_port(challenge) {
            Some(port) => usable.push((port != standard(challenge), challenge)),
            None => off.push(challenge.as_str()),
        }
    }
    if usable.is_empty() {
        return Err(Cause::NoChallenge(off));
    }
    usable.sort_by_key(|(elsewhere, _)| *elsewhere);
    Ok(usable.into_iter().map(|(_, c)| c).collect())
}

fn capitalised(sentence: &str) -> String {
    let mut chars = sentence.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(allowed: &[&str], host: &crate::TestHost) -> Result<Vec<&'static str>, String> {
        let allowed: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        answerable(&allowed, host)
            .map(|v| v.into_iter().map(ChallengeType::as_str).collect())
            .map_err(|c| c.to_string())
    }

    /// With `--http off`, http-01 is never tried; with plain HTTP on another port than 80, a
    /// tls-alpn-01 on 443 goes first (a CA validates http-01 on port 80 only).
    #[test]
    fn challenges_follow_the_cameras_listeners() {
        let both = ["http-01", "tls-alpn-01"];
        assert_eq!(order(&both, &crate::TestHost::ports(Some(80), 443)).unwrap(), ["http-01", "tls-alpn-01"]);
        assert_eq!(order(&both, &crate::TestHost::ports(None, 443)).unwrap(), ["tls-alpn-01"]);
        assert_eq!(order(&both, &crate::TestHost::ports(Some(8080), 443)).unwrap(), ["tls-alpn-01", "http-01"]);
        assert_eq!(
            order(&both, &crate::TestHost::ports(Some(8080), 8443)).unwrap(),
            ["http-01", "tls-alpn-01"],
            "both forwarded: as configured"
        );
        let off = order(&["http-01"], &crate::TestHost::ports(None, 443)).unwrap_err();
        assert!(off.contains("listener for http-01 is off"), "{off}");
    }
}
