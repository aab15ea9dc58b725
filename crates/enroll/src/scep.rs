//! One SCEP enrollment (RFC 8894): the server's capabilities and CA certificates (checked against
//! the configured trust anchor, or pinned on first use when there is none), an RSA key and a
//! request made on the camera with the challenge password, the answer verified and opened, the
//! certificate installed like an upload. A renewal is signed with the current enrolled
//! certificate when the server offers RenewalReq.

use std::time::Duration;

use camera_http_client::{header, HttpClient, Method, Request};
use camera_pki::SanName;
use camera_scep::{
    build_csr, cert_poll, http, pkcs_req, renewal_req, CaCerts, Capabilities, CertRep, ChallengePassword, CsrSpec,
    ExpectedReply, RequesterKey, ScepError, Signer,
};

use crate::settings::ScepSettings;
use crate::{Done, Failure, Host};

/// How long a request the server holds as PENDING (awaiting an administrator) is polled for in
/// one attempt; after that the attempt fails and the schedule's backoff applies.
const POLL_FOR: Duration = Duration::from_secs(120);
const POLL_EVERY: Duration = Duration::from_secs(10);

impl From<ScepError> for Failure {
    fn from(e: ScepError) -> Self {
        Failure::new(e.to_string())
    }
}

async fn send(client: &HttpClient, request: &http::HttpRequest) -> Result<(Option<String>, Vec<u8>), Failure> {
    let method = match request.method {
        http::Method::Get => Method::GET,
        http::Method::Post => Method::POST,
    };
    let mut r = Request::new(method, request.url.clone()).body(request.body.clone());
    if let Some(ct) = request.content_type {
        r = r.header(header::CONTENT_TYPE, header::HeaderValue::from_static(ct));
    }
    let answer =
        client.send(r).await.map_err(|e| Failure::new(format!("the SCEP server could not be reached: {e}")))?;
    if !answer.status.is_success() {
        return Err(Failure::new(format!(
            "the SCEP server answered HTTP {} to {}",
            answer.status.as_u16(),
            request.url
        )));
    }
    let content_type = answer.header_str("content-type").map(str::to_owned);
    Ok((content_type, answer.body.to_vec()))
}

/// The server's CA certificates, trusted: by the configured anchor, or by the fingerprint pinned
/// at the first enrollment (returned, to keep).
fn trusted(ca: &CaCerts, trust_pem: Option<&str>, pinned: Option<&str>) -> Result<String, Failure> {
    // The camera's one fingerprint form (AB:CD:...), as the UI shows every other.
    let fingerprint = camera_pki::fingerprint(ca.ca());
    if let Some(pem) = trust_pem {
        let anchors = camera_pki::pem::certificates(pem.as_bytes()).map_err(|e| Failure::new(e.to_string()))?;
        let refs: Vec<&[u8]> = anchors.iter().map(Vec::as_slice).collect();
        ca.check_trust(&refs)?;
    } else if let Some(pinned) = pinned {
        if !pinned.eq_ignore_ascii_case(&fingerprint) {
            return Err(Failure::new(format!(
                "the SCEP server now presents another CA (SHA-256 {fingerprint}) than at the first enrollment ({pinned}); if the site changed its CA, configure enrollment again (with its certificate as trust anchor)"
            )));
        }
    }
    Ok(fingerprint)
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn enroll(
    settings: &ScepSettings,
    names: &[SanName],
    pinned_ca: Option<String>,
    host: &dyn Host,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<Done, Failure> {
    if names.is_empty() {
        return Err(Failure::new("the camera has no address or name to put in a certificate"));
    }
    let client = match &settings.trust {
        Some(pem) => HttpClient::with_trust_anchors_pem(pem.as_bytes())
            .map_err(|e| Failure::new(format!("the trust anchor cannot be used: {e}")))?,
        None => HttpClient::plain_http_only(),
    }
    .max_body(camera_scep::MAX_MESSAGE_SIZE);

    progress("Asking the SCEP server what it supports (GetCACaps).".into());
    let (_, body) = send(&client, &http::get_ca_caps(&settings.url)).await?;
    let caps = Capabilities::parse(&body)?;
    let (algorithms, why) = caps.algorithms();
    progress(format!("Fetching the SCEP server's CA certificates (GetCACert); {why}."));
    let (content_type, body) = send(&client, &http::get_ca_cert(&settings.url, None)).await?;
    let ca = CaCerts::parse(content_type.as_deref(), &body)?;
    let fingerprint = trusted(&ca, settings.trust.as_deref(), pinned_ca.as_deref())?;

    // The key and the request, on the blocking pool: RSA key generation takes seconds on a camera.
    let challenge = ChallengePassword::new(settings.challenge.expose())?;
    let mut subject = rcgen::DistinguishedName::new();
    let common_name = settings.subject.common_name.clone().or_else(|| names.first().map(ToString::to_string));
    for (kind, value) in [
        (rcgen::DnType::CommonName, common_name),
        (rcgen::DnType::OrganizationName, settings.subject.organization.clone()),
        (rcgen::DnType::OrganizationalUnitName, settings.subject.organizational_unit.clone()),
    ] {
        if let Some(value) = value {
            subject.push(kind, value);
        }
    }
    let spec = CsrSpec {
        subject: subject.clone(),
        dns_names: names
            .iter()
            .filter_map(|n| match n {
                SanName::Dns(d) => Some(d.clone()),
                SanName::Ip(_) => None,
            })
            .collect(),
        ip_addresses: names
            .iter()
            .filter_map(|n| match n {
                SanName::Ip(ip) => Some(*ip),
                SanName::Dns(_) => None,
            })
            .collect(),
        challenge_password: Some(challenge),
    };
    let current = host.enrolled_credentials("scep").filter(|_| caps.supports_renewal());
    let (signer, csr, message_kind) = tokio::task::spawn_blocking(move || -> Result<_, Failure> {
        let key = RequesterKey::generate(camera_scep::DEFAULT_RSA_BITS)?;
        let csr = build_csr(&key, &spec)?;
        // A renewal is signed with the certificate in service (and its key): the server knows it.
        if let Some((cert, old_key)) = current {
            let old = RequesterKey::from_pkcs8_der(&old_key)?;
            return Ok((Signer::with_certificate(old, &cert)?, csr, Some(key)));
        }
        let now = time::OffsetDateTime::now_utc();
        Ok((Signer::self_signed(key, &subject, now)?, csr, None))
    })
    .await
    .map_err(|_| Failure::new("the key could not be generated"))??;
    let (request, new_key) = match message_kind {
        Some(new_key) => (renewal_req(&signer, &ca, &csr, algorithms)?, Some(new_key)),
        None => (pkcs_req(&signer, &ca, &csr, algorithms)?, None),
    };
    progress(format!(
        "Sending the {} to the SCEP server.",
        if new_key.is_some() { "renewal request (RenewalReq)" } else { "certificate request (PKCSReq)" }
    ));
    let (content_type, body) = send(&client, &http::pki_operation(&settings.url, &caps, &request.der)).await?;
    let issued =
        wait_for_issue(&client, settings, &caps, &signer, &ca, request.reply, content_type, body, progress).await?;

    // The issued certificate pairs with the key of the request: the new key for a renewal.
    let how = if new_key.is_some() {
        "by a renewal request (RenewalReq, signed with the certificate in service)"
    } else {
        "by a certificate request (PKCSReq)"
    };
    let key = new_key.unwrap_or_else(|| signer.into_key());
    // Leaf, then what the answer and GetCACert hold (the upload checks order the chain and drop
    // what does not belong to it).
    let leaf = issued.certificate;
    let mut chain = vec![leaf.clone()];
    chain.extend(issued.chain.into_iter().filter(|der| *der != leaf));
    // The CA certificates only: an RA certificate is no part of the chain.
    let is_ca = |der: &&[u8]| camera_pki::describe(der).is_ok_and(|info| info.is_ca);
    chain.extend(ca.all().filter(|der| *der != leaf.as_slice()).filter(is_ca).map(<[u8]>::to_vec));
    let installed = host
        .install(&chain, key.pkcs8_der(), "scep")
        .map_err(|e| Failure::new(format!("the issued certificate was not installed: {e}")))?;
    Ok(Done { installed, account_url: None, scep_ca: Some(fingerprint), how })
}

/// Opens the answer; while the server says PENDING, asks again (CertPoll) for a while.
#[allow(clippy::too_many_arguments)]
async fn wait_for_issue(
    client: &HttpClient,
    settings: &ScepSettings,
    caps: &Capabilities,
    signer: &Signer,
    ca: &CaCerts,
    mut reply: ExpectedReply,
    mut content_type: Option<String>,
    mut body: Vec<u8>,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<camera_scep::Issued, Failure> {
    let started = std::time::Instant::now();
    loop {
        match reply.open(signer, ca, content_type.as_deref(), &body)? {
            CertRep::Issued(issued) => return Ok(issued),
            CertRep::Pending if started.elapsed() < POLL_FOR => {
                progress("The SCEP server holds the request for approval; the camera asks again in 10 seconds.".into());
                tokio::time::sleep(POLL_EVERY).await;
                let poll = cert_poll(signer, ca, &reply.poll, reply.algorithms)?;
                (content_type, body) = send(client, &http::pki_operation(&settings.url, caps, &poll.der)).await?;
                reply = poll.reply;
            }
            CertRep::Pending => {
                return Err(Failure::new(
                    "the SCEP server still holds the request for approval (PENDING) after two minutes",
                ))
            }
        }
    }
}
