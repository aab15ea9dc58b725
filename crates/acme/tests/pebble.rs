//! camera-acme against a real Pebble 2.4 (Debian package) on loopback, validating for real:
//! http-01 and tls-alpn-01 for IP identifiers (IPv4 and IPv6), a DNS identifier resolved through
//! pebble-challtestsrv, account lookup and reuse, and the failures an installer will meet.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::OnceLock;

use camera_acme::{
    find_account, obtain_certificate, AccountKey, AcmeError, CertificateRequest, ChallengeType, Identifier, Operation,
};
use camera_http_client::{HttpClient, VerificationFailure};
use support::{Fixture, PebbleSpec, Responder, Steps};

/// The blocked name Pebble refuses to issue for.
const BLOCKED: &str = "blocked.home.arpa";

fn pebble() -> &'static Fixture {
    static PEBBLE: OnceLock<Fixture> = OnceLock::new();
    PEBBLE.get_or_init(|| {
        support::start(PebbleSpec {
            domain_blocklist: vec![BLOCKED],
            // DNS names resolve, through challtestsrv, to the responder's 127.0.0.4.
            dns: Some(("127.0.0.4", "")),
            ..Default::default()
        })
    })
}

fn ip(s: &str) -> Identifier {
    Identifier::Ip(s.parse().unwrap())
}

/// One full order with `types` allowed; checks everything a caller relies on and returns the chain.
async fn issue(identifiers: &[Identifier], types: &[ChallengeType], name: &str) -> Vec<Vec<u8>> {
    let pebble = pebble();
    let key = AccountKey::generate().unwrap();
    let csr = support::csr_for(identifiers);
    let responder = Responder::new(pebble);
    let steps = Steps::default();
    let req = CertificateRequest {
        account_key: &key,
        account_url: None,
        contact: &[],
        eab: None,
        identifiers,
        challenge_types: types,
        csr_der: &csr,
        replaces: None,
        options: support::fast_options(),
    };
    let issued = obtain_certificate(&pebble.client(), &pebble.directory, &req, &responder, &|p| steps.record(p))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}\nPebble log:\n{}", pebble.log()));
    assert!(issued.account_url.starts_with("https://127.0.0.1:"), "{}", issued.account_url);
    assert!(issued.chain.len() >= 2, "leaf and at least one intermediate");
    support::openssl_verify(pebble, &issued.chain);
    assert_eq!(support::leaf_names(&issued.chain[0]), support::sorted(identifiers), "{name}: names in the leaf");
    responder.assert_all_withdrawn();
    let published = responder.published.lock().unwrap().clone();
    // Pebble may reuse a valid authorization (50 % by default), but never for a fresh account.
    assert_eq!(published.len(), identifiers.len(), "{name}: one answer per identifier: {published:?}");
    let steps = steps.all();
    assert!(steps.iter().any(|s| s == "registered a new account with the ACME server"), "{steps:?}");
    assert_eq!(
        steps.last().map(String::as_str),
        Some(format!("certificate issued ({} in the chain)", issued.chain.len()).as_str())
    );
    for id in identifiers {
        assert!(steps.contains(&format!("{id} validated")), "{name}: {steps:?}");
    }
    issued.chain
}

#[tokio::test]
async fn http01_for_ipv4_and_ipv6_addresses() {
    let before = support::hits(&pebble().answers.http_hits);
    let chain = issue(&[ip("127.0.0.2"), ip("::1")], &[ChallengeType::Http01], "http01").await;
    assert_eq!(chain.len(), 2);
    // Pebble's validator really fetched both answers from the responder.
    assert!(support::hits(&pebble().answers.http_hits) >= before + 2);
}

#[tokio::test]
async fn tls_alpn01_for_ipv4_and_ipv6_addresses() {
    let before = support::hits(&pebble().answers.tls_hits);
    // tls-alpn-01 preferred; http-01 allowed but must not be used.
    issue(&[ip("127.0.0.3"), ip("::1")], &[ChallengeType::TlsAlpn01, ChallengeType::Http01], "tlsalpn01").await;
    // The validation handshakes reached the resolver with the reverse-DNS SNI of each address.
    assert!(support::hits(&pebble().answers.tls_hits) >= before + 2);
}

#[tokio::test]
async fn a_dns_name_resolved_through_challtestsrv() {
    let names = [Identifier::Dns("cam-test.local".into())];
    issue(&names, &[ChallengeType::Http01], "dns").await;
}

#[tokio::test]
async fn the_account_is_found_again_and_a_remembered_url_is_reused() {
    let pebble = pebble();
    let client = pebble.client();
    let key = AccountKey::generate().unwrap();
    let options = support::fast_options();
    assert_eq!(find_account(&client, &pebble.directory, &key, &options).await.unwrap(), None);

    let ids = [ip("127.0.0.5")];
    let csr = support::csr_for(&ids);
    let responder = Responder::new(pebble);
    let mut req = CertificateRequest {
        account_key: &key,
        account_url: None,
        contact: &[],
        eab: None,
        identifiers: &ids,
        challenge_types: &[ChallengeType::Http01],
        csr_der: &csr,
        replaces: None,
        options: options.clone(),
    };
    let first = obtain_certificate(&client, &pebble.directory, &req, &responder, &|_| {}).await.unwrap();
    let found = find_account(&client, &pebble.directory, &key, &options).await.unwrap();
    assert_eq!(found.as_deref(), Some(first.account_url.as_str()));

    // Renewal: the remembered account URL, no registration step.
    let steps = Steps::default();
    req.account_url = Some(&first.account_url);
    let second = obtain_certificate(&client, &pebble.directory, &req, &responder, &|p| steps.record(p)).await.unwrap();
    assert_eq!(second.account_url, first.account_url);
    assert!(!steps.all().iter().any(|s| s.contains("account")), "{:?}", steps.all());
    assert_ne!(second.chain[0], first.chain[0]);
    responder.assert_all_withdrawn();

    // A remembered URL that the server does not know (a CA reset) leads to one new registration.
    let other_key = AccountKey::generate().unwrap();
    let stale = format!("{}/my-account/999999", pebble.directory.trim_end_matches("/dir"));
    let req = CertificateRequest { account_key: &other_key, account_url: Some(&stale), ..req };
    // Pebble answers the unknown kid with accountDoesNotExist; the client registers the key again.
    let third = obtain_certificate(&client, &pebble.directory, &req, &responder, &|_| {}).await.unwrap();
    assert_ne!(third.account_url, stale);
    assert_eq!(find_account(&client, &pebble.directory, &other_key, &options).await.unwrap(), Some(third.account_url));
}

#[tokio::test]
async fn a_wrong_trust_anchor_is_a_certificate_verification_error() {
    let pebble = pebble();
    let other_ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut other_ca = other_ca;
    other_ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other = other_ca.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap();
    let client = HttpClient::with_trust_anchors([other.der().as_ref()]).unwrap();
    let key = AccountKey::generate().unwrap();
    let err = find_account(&client, &pebble.directory, &key, &support::fast_options()).await.unwrap_err();
    match &err {
        AcmeError::Http(camera_http_client::Error::CertificateVerification {
            reason: VerificationFailure::NotSignedByTrustAnchor,
            ..
        }) => {}
        other => panic!("expected a verification error, got {other:?}"),
    }
    let port = pebble.directory.split(':').nth(2).unwrap().split('/').next().unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "the ACME server could not be reached: the server's certificate is not signed by the configured trust anchor (server 127.0.0.1:{port})"
        )
    );
}

#[tokio::test]
async fn a_server_that_is_down_is_a_connect_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let key = AccountKey::generate().unwrap();
    let err =
        find_account(&pebble().client(), &format!("https://127.0.0.1:{port}/dir"), &key, &support::fast_options())
            .await
            .unwrap_err();
    assert!(matches!(err, AcmeError::Http(camera_http_client::Error::Connect { .. })), "{err:?}");
    assert!(err.to_string().contains(&format!("could not connect to 127.0.0.1:{port}")), "{err}");
}

#[tokio::test]
async fn an_order_pebble_refuses_is_a_typed_problem_with_its_detail() {
    let pebble = pebble();
    let key = AccountKey::generate().unwrap();
    let ids = [Identifier::Dns(BLOCKED.into())];
    let csr = support::csr_for(&ids);
    let responder = Responder::new(pebble);
    let req = CertificateRequest {
        account_key: &key,
        account_url: None,
        contact: &[],
        eab: None,
        identifiers: &ids,
        challenge_types: &[ChallengeType::Http01],
        csr_der: &csr,
        replaces: None,
        options: support::fast_options(),
    };
    let err = obtain_certificate(&pebble.client(), &pebble.directory, &req, &responder, &|_| {}).await.unwrap_err();
    let AcmeError::Problem { operation: Operation::NewOrder, problem } = &err else { panic!("{err:?}") };
    assert!(problem.is("rejectedIdentifier"), "{problem:?}");
    assert_eq!(problem.status, Some(400));
    let detail = problem.detail.as_deref().unwrap();
    assert!(detail.contains(BLOCKED), "Pebble's detail names the identifier: {detail}");
    assert_eq!(err.to_string(), format!("the ACME server refused the order: {detail} (rejectedIdentifier)"));
    assert!(responder.published.lock().unwrap().is_empty());
}

/// A camera that cannot serve the answer (here: publish does nothing): Pebble's validator fails,
/// the error carries its reason, and the answer is still withdrawn.
#[tokio::test]
async fn a_failed_validation_reports_the_validators_reason_and_withdraws() {
    struct Deaf(Responder);
    impl camera_acme::ChallengeResponder for Deaf {
        fn publish(&self, a: &camera_acme::ChallengeAnswer) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            self.0.published.lock().unwrap().push(format!("{}:{}", a.challenge_type(), a.identifier()));
            Ok(())
        }
        fn withdraw(&self, a: &camera_acme::ChallengeAnswer) {
            self.0.withdrawn.lock().unwrap().push(format!("{}:{}", a.challenge_type(), a.identifier()));
        }
    }
    let pebble = pebble();
    let key = AccountKey::generate().unwrap();
    let ids = [ip("127.0.0.6")];
    let csr = support::csr_for(&ids);
    let responder = Deaf(Responder::new(pebble));
    let req = CertificateRequest {
        account_key: &key,
        account_url: None,
        contact: &[],
        eab: None,
        identifiers: &ids,
        challenge_types: &[ChallengeType::Http01],
        csr_der: &csr,
        replaces: None,
        options: support::fast_options(),
    };
    let err = obtain_certificate(&pebble.client(), &pebble.directory, &req, &responder, &|_| {}).await.unwrap_err();
    let AcmeError::ChallengeFailed { identifier, challenge, problem } = &err else { panic!("{err:?}") };
    assert_eq!((identifier, challenge.as_str()), (&ids[0], "http-01"));
    let problem = problem.as_ref().expect("Pebble says why");
    assert!(problem.detail.as_deref().unwrap_or("").contains("404"), "{problem:?}");
    assert!(err.to_string().starts_with("the ACME server could not validate 127.0.0.6 with http-01: "), "{err}");
    responder.0.assert_all_withdrawn();
    assert_eq!(responder.0.withdrawn.lock().unwrap().len(), 1);
}
