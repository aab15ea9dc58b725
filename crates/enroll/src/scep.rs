//! One SCEP enrollment (RFC 8894): the server's capabilities and CA certificates, an RSA key and a
//! request made on the camera with the challenge password, the answer verified and opened, the
//! certificate installed like an upload. A renewal is signed with the current enrolled
//! certificate when the server offers RenewalReq.
//!
//! Trust is a chain, not a fingerprint: every certificate of a GetCACert answer (the CA, its
//! chain, the RA that requests are encrypted to and that may sign answers) must chain to the
//! anchor, and so must the issued certificate. The anchor is the configured `trust`, else the CA
//! certificate pinned at the first enrollment, else (first contact) the CA of the answer itself,
//! which must match `ca_sha256` when the installer gave one. Anything else stops enrollment:
//! nothing is sent to a server the camera cannot trust.

use std::time::Duration;

use camera_http_client::{header, HttpClient, Method, Request};
use camera_pki::SanName;
use camera_scep::{
    build_csr, cert_poll, http, pkcs_req, renewal_req, CaCerts, Capabilities, CertRep, ChallengePassword, CsrSpec,
    ExpectedReply, RequesterKey, Signer,
};

use crate::attempt::{Attempt, Cause, Done, Failure, Pinned};
use crate::settings::{normalised_sha256, trust_anchors, Protocol, ScepSettings};

/// How long a request the server holds as PENDING (awaiting an administrator) is polled for in
/// one attempt; after that the attempt fails and the schedule's backoff applies.
const POLL_FOR: Duration = Duration::from_secs(120);
const POLL_EVERY: Duration = Duration::from_secs(10);

async fn send(client: &HttpClient, request: &http::HttpRequest) -> Result<(Option<String>, Vec<u8>), Cause> {
    let method = match request.method {
        http::Method::Get => Method::GET,
        http::Method::Post => Method::POST,
    };
    let mut r = Request::new(method, request.url.clone()).body(request.body.clone());
    if let Some(ct) = request.content_type {
        r = r.header(header::CONTENT_TYPE, header::HeaderValue::from_static(ct));
    }
    let answer = client.send(r).await.map_err(Cause::ScepUnreachable)?;
    if !answer.status.is_success() {
        return Err(Cause::ScepStatus { status: answer.status.as_u16(), url: request.url.clone() });
    }
    let content_type = answer.header_str("content-type").map(str::to_owned);
    Ok((content_type, answer.body.to_vec()))
}

/// What the record holds of the SCEP server's CA.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pin {
    /// The CA certificate pinned at the first enrollment (PEM).
    pub ca_pem: Option<String>,
    /// Its fingerprint (`AB:CD:...`); a camera that pinned only this pins the certificate that
    /// matches it at its next GetCACert.
    pub sha256: Option<String>,
}

/// Checks the GetCACert answer against the anchor (see the module documentation); returns the
/// CA to pin.
fn trusted(ca: &CaCerts, settings: &ScepSettings, pin: &Pin) -> Result<Pinned, Cause> {
    let fingerprint = camera_pki::fingerprint(ca.ca());
    if let Some(expected) = settings.ca_sha256.as_deref().and_then(normalised_sha256) {
        if expected != fingerprint {
            return Err(Cause::OtherCa { presented: fingerprint, expected, configured: true });
        }
    }
    let anchors = match (&settings.trust, &pin.ca_pem) {
        (Some(pem), _) => trust_anchors(pem).map_err(Cause::TrustSetting)?,
        (None, Some(pem)) => camera_pki::pem::certificates(pem.as_bytes())
            .ok()
            .filter(|certs| !certs.is_empty())
            .ok_or(Cause::PinDamaged)?,
        (None, None) => {
            if let Some(pinned) = pin.sha256.as_deref().and_then(normalised_sha256) {
                if pinned != fingerprint {
                    return Err(Cause::OtherCa { presented: fingerprint, expected: pinned, configured: false });
                }
            }
            vec![ca.ca().to_vec()]
        }
    };
    let refs: Vec<&[u8]> = anchors.iter().map(Vec::as_slice).collect();
    ca.check_trust(&refs).map_err(|source| Cause::Unchained {
        source,
        anchor: if settings.trust.is_some() {
            "the configured trust anchor"
        } else {
            "the CA pinned at the first enrollment"
        },
    })?;
    Ok(Pinned { sha256: fingerprint, pem: camera_pki::pem::encode("CERTIFICATE", ca.ca()).to_string() })
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn enroll(
    settings: &ScepSettings,
    names: &[SanName],
    pin: &Pin,
    attempt: &Attempt<'_>,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<Done, Failure> {
    if names.is_empty() {
        return Err(Cause::NoNames.into());
    }
    let client = match &settings.trust {
        Some(pem) => {
            let anchors = trust_anchors(pem).map_err(Cause::TrustSetting)?;
            HttpClient::with_trust_anchors(anchors.iter().map(Vec::as_slice)).map_err(Cause::TrustAnchor)?
        }
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
    let pinned = trusted(&ca, settings, pin)?;

    // The key and the request, on the blocking pool: RSA key generation takes seconds on a camera.
    let challenge = ChallengePassword::new(settings.challenge.expose())?;
    let mut subject = rcgen::DistinguishedName::new();
    let common_name = Some(settings.subject.common_name.clone().unwrap_or_else(|| attempt.host.device_name()));
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
    let current = attempt.host.enrolled_credentials(Protocol::Scep).filter(|_| caps.supports_renewal());
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
    .map_err(|_| Cause::KeyGeneration)??;
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
    ca.check_issued(&leaf).map_err(Cause::IssuedByAnother)?;
    let mut chain = vec![leaf.clone()];
    chain.extend(issued.chain.into_iter().filter(|der| *der != leaf));
    // The CA certificates only: an RA certificate is no part of the chain.
    let is_ca = |der: &&[u8]| camera_pki::describe(der).is_ok_and(|info| info.is_ca);
    chain.extend(ca.all().filter(|der| *der != leaf.as_slice()).filter(is_ca).map(<[u8]>::to_vec));
    let installed = attempt.install(&chain, key.pkcs8_der(), Protocol::Scep)?;
    Ok(Done { installed, account_url: None, scep_ca: Some(pinned), how })
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
            CertRep::Pending => return Err(Cause::StillPending.into()),
        }
    }
}
