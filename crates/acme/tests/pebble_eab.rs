//! A Pebble that requires external account binding, issues short-lived certificates
//! (`certificateValidityPeriod`) and refuses 30 % of good nonces (so `badNonce` retry is exercised).

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::OnceLock;

use camera_acme::{
    find_account, obtain_certificate, AccountKey, AcmeError, CertificateRequest, ChallengeType, Eab, Identifier,
    Operation, Options,
};
use support::{Fixture, PebbleSpec, Responder};

const KID: &str = "kid-1";
/// An HMAC key in the form CAs hand out (base64url); made up for this test.
const HMAC_KEY: &str = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
const VALIDITY_SECS: u64 = 600;

fn pebble() -> &'static Fixture {
    static PEBBLE: OnceLock<Fixture> = OnceLock::new();
    PEBBLE.get_or_init(|| {
        support::start(PebbleSpec {
            eab_keys: vec![(KID, HMAC_KEY)],
            validity_secs: Some(VALIDITY_SECS),
            nonce_reject_percent: Some(30),
            ..Default::default()
        })
    })
}

fn options() -> Options {
    // With 30 % of nonces refused, allow more retries than the default so no test is flaky
    // (0.3^11 per request).
    Options { bad_nonce_retries: 10, ..support::fast_options() }
}

fn request<'a>(
    key: &'a AccountKey,
    eab: Option<&'a Eab>,
    ids: &'a [Identifier],
    csr: &'a [u8],
) -> CertificateRequest<'a> {
    CertificateRequest {
        account_key: key,
        account_url: None,
        contact: &[],
        eab,
        identifiers: ids,
        challenge_types: &[ChallengeType::Http01],
        csr_der: csr,
        replaces: None,
        options: options(),
    }
}

#[tokio::test]
async fn without_eab_the_camera_says_what_is_missing() {
    let pebble = pebble();
    let key = AccountKey::generate().unwrap();
    let ids = [Identifier::Ip("127.0.0.1".parse().unwrap())];
    let csr = support::csr_for(&ids);
    let err = obtain_certificate(
        &pebble.client(),
        &pebble.directory,
        &request(&key, None, &ids, &csr),
        &Responder::new(pebble),
        &|_| {},
    )
    .await
    .unwrap_err();
    assert!(matches!(err, AcmeError::ExternalAccountRequired { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the ACME server requires an external account binding (a key id and HMAC key from the CA's administrator), and none is configured"
    );
}

#[tokio::test]
async fn a_wrong_hmac_key_is_refused_by_the_server_with_its_reason() {
    let pebble = pebble();
    let key = AccountKey::generate().unwrap();
    let wrong = Eab::new(KID, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
    let ids = [Identifier::Ip("127.0.0.1".parse().unwrap())];
    let csr = support::csr_for(&ids);
    let err = obtain_certificate(
        &pebble.client(),
        &pebble.directory,
        &request(&key, Some(&wrong), &ids, &csr),
        &Responder::new(pebble),
        &|_| {},
    )
    .await
    .unwrap_err();
    let AcmeError::Problem { operation: Operation::NewAccount, problem } = &err else { panic!("{err:?}") };
    assert!(problem.detail.is_some(), "{problem:?}");
    assert!(err.to_string().starts_with("the ACME server refused the account registration: "), "{err}");
    // Nothing secret in what the installer sees.
    assert!(!err.to_string().contains(HMAC_KEY) && !format!("{err:?}").contains(HMAC_KEY));
}

#[tokio::test]
async fn with_eab_a_short_lived_certificate_is_issued_despite_refused_nonces() {
    let pebble = pebble();
    let eab = Eab::new(KID, HMAC_KEY).unwrap();
    let mut retries = 0;
    for addr in ["127.0.0.1", "::1"] {
        let key = AccountKey::generate().unwrap();
        let ids = [Identifier::Ip(addr.parse().unwrap())];
        let csr = support::csr_for(&ids);
        let responder = Responder::new(pebble);
        let issued = obtain_certificate(
            &pebble.client(),
            &pebble.directory,
            &request(&key, Some(&eab), &ids, &csr),
            &responder,
            &|_| {},
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", pebble.log()));
        retries += issued.bad_nonce_retries;
        support::openssl_verify(pebble, &issued.chain);
        assert_eq!(support::leaf_names(&issued.chain[0]), ids);
        // Pebble 2.4: notAfter = notBefore + certificateValidityPeriod - 1 s.
        assert_eq!(support::leaf_lifetime_secs(&issued.chain[0]), VALIDITY_SECS as i64 - 1);
        responder.assert_all_withdrawn();
        // The account exists now and is found by its key alone.
        let found = find_account(&pebble.client(), &pebble.directory, &key, &options()).await.unwrap();
        assert_eq!(found.as_deref(), Some(issued.account_url.as_str()));
    }
    // ~25 signed requests at 30 %: the retry path ran (chance of none: 0.7^25, about 1e-4).
    assert!(retries > 0, "no badNonce was retried");
}
