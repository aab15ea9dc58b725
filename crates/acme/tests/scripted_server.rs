//! What Pebble never does, from a scripted ACME server on loopback: `Retry-After` while polling,
//! rate limiting, a validation that never ends, a nonce refused forever, a downgrade to http, and a
//! caller that gives up half-way. Each checks the client's timing or its way out.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use camera_acme::{
    obtain_certificate, AccountKey, AcmeError, CertificateRequest, ChallengeAnswer, ChallengeResponder, ChallengeType,
    Identifier, Operation, Options,
};
use camera_http_client::HttpClient;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

/// (status, extra headers, body) for the n-th request (from 0) to a path.
type Route = Box<dyn Fn(usize, &str) -> (u16, Vec<(&'static str, String)>, String) + Send + Sync>;

#[derive(Default)]
struct Log {
    hits: HashMap<String, Vec<Instant>>,
    /// The request bodies each path received, in order.
    bodies: HashMap<String, Vec<Vec<u8>>>,
}

struct Server {
    base: String,
    log: Arc<Mutex<Log>>,
}

impl Server {
    fn times(&self, path: &str) -> Vec<Instant> {
        self.log.lock().unwrap().hits.get(path).cloned().unwrap_or_default()
    }

    /// The JWS payloads (decoded JSON) each request to `path` carried.
    fn payloads(&self, path: &str) -> Vec<serde_json::Value> {
        use base64ct::{Base64UrlUnpadded, Encoding};
        let bodies = self.log.lock().unwrap().bodies.get(path).cloned().unwrap_or_default();
        bodies
            .iter()
            .map(|body| {
                let jws: serde_json::Value = serde_json::from_slice(body).unwrap();
                let payload = Base64UrlUnpadded::decode_vec(jws["payload"].as_str().unwrap()).unwrap();
                serde_json::from_slice(&payload).unwrap()
            })
            .collect()
    }
}

fn problem(kind: &str, detail: &str) -> (u16, Vec<(&'static str, String)>, String) {
    (
        400,
        vec![("content-type", "application/problem+json".into())],
        format!(r#"{{"type":"urn:ietf:params:acme:error:{kind}","detail":"{detail}","status":400}}"#),
    )
}

fn json(status: u16, body: String) -> (u16, Vec<(&'static str, String)>, String) {
    (status, vec![("content-type", "application/json".into())], body)
}

fn test_certificate_pem() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().self_signed(&key).unwrap().pem()
}

/// A plain-http ACME server whose every path follows the happy path unless `overrides` says otherwise.
async fn start(overrides: Vec<(&'static str, Route)>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Log::default()));
    let pem = test_certificate_pem();
    let b = base.clone();
    let mut routes: HashMap<&'static str, Route> = HashMap::new();
    routes.insert(
        "/dir",
        Box::new(move |_, _| {
            json(200, format!(r#"{{"newNonce":"{b}/nonce","newAccount":"{b}/acct","newOrder":"{b}/order"}}"#))
        }),
    );
    routes.insert("/nonce", Box::new(|_, _| (200, vec![], String::new())));
    let b = base.clone();
    routes.insert(
        "/acct",
        Box::new(move |_, _| {
            let (s, mut h, body) = json(201, r#"{"status":"valid"}"#.into());
            h.push(("location", format!("{b}/acct/1")));
            (s, h, body)
        }),
    );
    let b = base.clone();
    routes.insert(
        "/order",
        Box::new(move |_, _| {
            let (s, mut h, body) = json(
                201,
                format!(r#"{{"status":"pending","authorizations":["{b}/authz/1"],"finalize":"{b}/finalize/1"}}"#),
            );
            h.push(("location", format!("{b}/order/1")));
            (s, h, body)
        }),
    );
    let b = base.clone();
    let pending_authz = move |status: &str| {
        format!(
            r#"{{"status":"{status}","identifier":{{"type":"ip","value":"127.0.0.1"}},"challenges":[{{"type":"http-01","url":"{b}/chall/1","token":"tok_1","status":"pending"}}]}}"#
        )
    };
    // First fetch pending (to publish), then valid.
    routes.insert("/authz/1", Box::new(move |n, _| json(200, pending_authz(if n == 0 { "pending" } else { "valid" }))));
    let b = base.clone();
    routes.insert(
        "/chall/1",
        Box::new(move |_, _| {
            json(200, format!(r#"{{"type":"http-01","url":"{b}/chall/1","token":"tok_1","status":"processing"}}"#))
        }),
    );
    let b = base.clone();
    routes.insert(
        "/order/1",
        Box::new(move |_, _| {
            json(200, format!(r#"{{"status":"ready","authorizations":[],"finalize":"{b}/finalize/1"}}"#))
        }),
    );
    let b = base.clone();
    routes.insert(
        "/finalize/1",
        Box::new(move |_, _| {
            json(200, format!(r#"{{"status":"valid","finalize":"{b}/finalize/1","certificate":"{b}/cert/1"}}"#))
        }),
    );
    routes.insert(
        "/cert/1",
        Box::new(move |_, _| (200, vec![("content-type", "application/pem-certificate-chain".into())], pem.clone())),
    );
    for (path, route) in overrides {
        routes.insert(path, route);
    }
    let routes = Arc::new(routes);
    let server_log = log.clone();
    tokio::spawn(async move {
        let nonce = Arc::new(Mutex::new(0u64));
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (routes, log, nonce) = (routes.clone(), server_log.clone(), nonce.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (routes, log, nonce) = (routes.clone(), log.clone(), nonce.clone());
                    async move {
                        use http_body_util::BodyExt;
                        let path = req.uri().path().to_owned();
                        let body = req.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
                        let n = {
                            let mut log = log.lock().unwrap();
                            log.bodies.entry(path.clone()).or_default().push(body);
                            let hits = log.hits.entry(path.clone()).or_default();
                            hits.push(Instant::now());
                            hits.len() - 1
                        };
                        let (status, headers, body) = match routes.get(path.as_str()) {
                            Some(route) => route(n, &path),
                            None => (404, vec![], String::new()),
                        };
                        let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
                        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        let fresh = {
                            let mut n = nonce.lock().unwrap();
                            *n += 1;
                            format!("nonce{n}")
                        };
                        response.headers_mut().insert("replay-nonce", fresh.parse().unwrap());
                        for (k, v) in headers {
                            response.headers_mut().insert(k, v.parse().unwrap());
                        }
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
            });
        }
    });
    Server { base, log }
}

#[derive(Default)]
struct Recorder {
    published: Mutex<usize>,
    withdrawn: Mutex<usize>,
}

impl ChallengeResponder for Recorder {
    fn publish(&self, _: &ChallengeAnswer) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        *self.published.lock().unwrap() += 1;
        Ok(())
    }
    fn withdraw(&self, _: &ChallengeAnswer) {
        *self.withdrawn.lock().unwrap() += 1;
    }
}

struct Case {
    key: AccountKey,
    ids: Vec<Identifier>,
    csr: Vec<u8>,
}

impl Case {
    fn new() -> Case {
        Case {
            key: AccountKey::generate().unwrap(),
            ids: vec![Identifier::Ip("127.0.0.1".parse().unwrap())],
            csr: vec![0x30, 0],
        }
    }

    fn request(&self, options: Options) -> CertificateRequest<'_> {
        CertificateRequest {
            account_key: &self.key,
            account_url: None,
            contact: &[],
            eab: None,
            identifiers: &self.ids,
            challenge_types: &[ChallengeType::Http01],
            csr_der: &self.csr,
            replaces: None,
            options,
        }
    }
}

/// A server whose one authorization stays pending whatever the client does.
async fn start_with_an_authorization_pending_forever() -> Server {
    let base = Arc::new(Mutex::new(String::new()));
    let base_in_route = base.clone();
    let server = start(vec![(
        "/authz/1",
        Box::new(move |_, _| {
            let b = base_in_route.lock().unwrap().clone();
            json(
                200,
                format!(
                    r#"{{"status":"pending","identifier":{{"type":"ip","value":"127.0.0.1"}},"challenges":[{{"type":"http-01","url":"{b}/chall/1","token":"tok_1","status":"pending"}}]}}"#
                ),
            )
        }),
    )])
    .await;
    *base.lock().unwrap() = server.base.clone();
    server
}

fn quick() -> Options {
    Options {
        poll_interval: Duration::from_millis(100),
        first_poll_interval: Duration::from_millis(100),
        max_wait: Duration::from_secs(20),
        bad_nonce_retries: 3,
    }
}

#[tokio::test]
async fn polling_waits_as_long_as_retry_after_says() {
    let b = Arc::new(Mutex::new(String::new()));
    let bb = b.clone();
    let server = start(vec![(
        "/authz/1",
        Box::new(move |n, _| {
            let b = bb.lock().unwrap().clone();
            let status = if n < 3 { "pending" } else { "valid" };
            let (s, mut h, body) = json(
                200,
                format!(
                    r#"{{"status":"{status}","identifier":{{"type":"ip","value":"127.0.0.1"}},"challenges":[{{"type":"http-01","url":"{b}/chall/1","token":"tok_1","status":"pending"}}]}}"#
                ),
            );
            h.push(("retry-after", "1".into()));
            (s, h, body)
        }),
    )])
    .await;
    *b.lock().unwrap() = server.base.clone();
    let case = Case::new();
    let responder = Recorder::default();
    let issued = obtain_certificate(
        &HttpClient::plain_http_only(),
        &format!("{}/dir", server.base),
        &case.request(quick()),
        &responder,
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(issued.chain.len(), 1);
    // Fetch (publish), then polls: each poll after a pending answer waited the 1 s asked for,
    // although the configured interval is 100 ms.
    let t = server.times("/authz/1");
    assert_eq!(t.len(), 4, "one fetch and three polls");
    for pair in t[1..].windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(990), "polled after {gap:?}");
    }
    assert_eq!((*responder.published.lock().unwrap(), *responder.withdrawn.lock().unwrap()), (1, 1));
}

#[tokio::test]
async fn rate_limiting_is_its_own_error_with_the_delay() {
    let server = start(vec![(
        "/order",
        Box::new(|_, _| {
            let (_, mut h, body) = problem("rateLimited", "too many new orders recently");
            h.push(("retry-after", "3600".into()));
            (429, h, body)
        }),
    )])
    .await;
    let case = Case::new();
    let err = obtain_certificate(
        &HttpClient::plain_http_only(),
        &format!("{}/dir", server.base),
        &case.request(quick()),
        &Recorder::default(),
        &|_| {},
    )
    .await
    .unwrap_err();
    assert!(matches!(err, AcmeError::RateLimited { operation: Operation::NewOrder, .. }), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
    assert_eq!(
        err.to_string(),
        "the ACME server is limiting requests and refused the order; it asks to retry in 3600 s: too many new orders recently (rateLimited)"
    );
    assert_eq!(server.times("/order").len(), 1, "a rate-limited request is not retried");
}

#[tokio::test]
async fn a_validation_that_never_ends_gives_up_in_time_and_withdraws() {
    let server = start_with_an_authorization_pending_forever().await;
    let case = Case::new();
    let responder = Recorder::default();
    let options = Options { poll_interval: Duration::from_millis(300), max_wait: Duration::from_secs(2), ..quick() };
    let started = Instant::now();
    let err = obtain_certificate(
        &HttpClient::plain_http_only(),
        &format!("{}/dir", server.base),
        &case.request(options),
        &responder,
        &|_| {},
    )
    .await
    .unwrap_err();
    assert!(matches!(err, AcmeError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().starts_with("gave up waiting for the ACME server to validate the camera after "), "{err}");
    assert!(started.elapsed() < Duration::from_secs(4));
    // 2 s at one poll per 300 ms: no tight loop.
    let polls = server.times("/authz/1").len();
    assert!((5..=9).contains(&polls), "{polls} requests");
    assert_eq!(*responder.withdrawn.lock().unwrap(), 1);
}

/// Without `Retry-After` the waits start short and double up to the configured interval: an
/// authorization that settles in half a second costs no two-second wait, and a slow one is not
/// polled faster than the interval.
#[tokio::test]
async fn polling_without_retry_after_starts_short_and_backs_off_to_the_interval() {
    let server = start_with_an_authorization_pending_forever().await;
    let case = Case::new();
    let options = Options {
        first_poll_interval: Duration::from_millis(100),
        poll_interval: Duration::from_millis(800),
        max_wait: Duration::from_secs(3),
        ..quick()
    };
    let err = obtain_certificate(
        &HttpClient::plain_http_only(),
        &format!("{}/dir", server.base),
        &case.request(options),
        &Recorder::default(),
        &|_| {},
    )
    .await
    .unwrap_err();
    assert!(matches!(err, AcmeError::Timeout { .. }), "{err:?}");
    // The authorization is read once for its challenges, then polled after waits of 100, 200, 400,
    // 800, 800 ms (each gap also holds a request's round trip).
    let times = server.times("/authz/1");
    let gaps: Vec<u128> = times.windows(2).skip(1).map(|w| (w[1] - w[0]).as_millis()).collect();
    assert!(gaps.len() >= 5, "a fixed 800 ms would poll 3 times in 3 s: {gaps:?}");
    assert!(gaps[0] < 400, "the first wait is short: {gaps:?}");
    for (gap, wait) in gaps.iter().zip([100, 200, 400, 800, 800, 800]) {
        assert!(*gap >= wait, "never sooner than the backoff: {gaps:?}");
    }
}

#[tokio::test]
async fn a_nonce_refused_forever_is_retried_a_bounded_number_of_times() {
    let server =
        start(vec![("/acct", Box::new(|_, _| problem("badNonce", "JWS has an invalid anti-replay nonce")))]).await;
    let case = Case::new();
    let err = obtain_certificate(
        &HttpClient::plain_http_only(),
        &format!("{}/dir", server.base),
        &case.request(quick()),
        &Recorder::default(),
        &|_| {},
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, AcmeError::Problem { operation: Operation::NewAccount, problem } if problem.is("badNonce")),
        "{err:?}"
    );
    assert_eq!(server.times("/acct").len(), 4, "the first try and 3 retries");
    // The nonce of each error answer was used: only the first request needed newNonce.
    assert_eq!(server.times("/nonce").len(), 1);
}

#[tokio::test]
async fn a_caller_that_gives_up_half_way_still_gets_every_answer_withdrawn() {
    let server = start_with_an_authorization_pending_forever().await;
    let case = Case::new();
    let responder = Recorder::default();
    let req = case.request(Options { poll_interval: Duration::from_secs(10), ..quick() });
    let client = HttpClient::plain_http_only();
    let dir = format!("{}/dir", server.base);
    // A scheduler's deadline drops the future while it sleeps between polls.
    let result =
        tokio::time::timeout(Duration::from_secs(1), obtain_certificate(&client, &dir, &req, &responder, &|_| {}))
            .await;
    assert!(result.is_err(), "the deadline cut it");
    assert_eq!(*responder.published.lock().unwrap(), 1);
    assert_eq!(*responder.withdrawn.lock().unwrap(), 1);
}

#[tokio::test]
async fn an_https_directory_that_points_to_http_is_refused() {
    // The directory itself is served over https by a CA made here; its newOrder URL is http.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &rcgen::Issuer::from_params(&ca_params, &ca_key))
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper::service::service_fn(
                    move |_req: hyper::Request<hyper::body::Incoming>| async move {
                        let body = format!(
                            r#"{{"newNonce":"https://{addr}/nonce","newAccount":"https://{addr}/acct","newOrder":"http://{addr}/order"}}"#
                        );
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(body))))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
            });
        }
    });
    let client = HttpClient::with_trust_anchors([ca.der().as_ref()]).unwrap();
    let case = Case::new();
    let err = obtain_certificate(
        &client,
        &format!("https://{addr}/dir"),
        &case.request(quick()),
        &Recorder::default(),
        &|_| {},
    )
    .await
    .unwrap_err();
    assert!(matches!(err, AcmeError::InsecureUrl { url_kind: "newOrder", .. }), "{err:?}");
    assert!(err.to_string().contains("refusing to continue without TLS"), "{err}");
}

/// The RFC 9773 example CertID.
const CERT_ID: &str = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE";

fn directory_with_renewal_info(base: &Arc<Mutex<String>>) -> Route {
    let base = base.clone();
    Box::new(move |_, _| {
        let b = base.lock().unwrap().clone();
        json(
            200,
            format!(
                r#"{{"newNonce":"{b}/nonce","newAccount":"{b}/acct","newOrder":"{b}/order","renewalInfo":"{b}/ari/"}}"#
            ),
        )
    })
}

/// A renewal goes to a CA that offers renewal information with `replaces`; when the CA answers
/// `alreadyReplaced` the order is sent again, once, without it. A CA without renewal information
/// never sees `replaces`.
#[tokio::test]
async fn replaces_is_sent_to_an_ari_ca_and_dropped_after_already_replaced() {
    let b = Arc::new(Mutex::new(String::new()));
    let bb = b.clone();
    let server = start(vec![
        ("/dir", directory_with_renewal_info(&b)),
        (
            "/order",
            Box::new(move |n, _| {
                if n == 0 {
                    return problem("alreadyReplaced", "that certificate was already replaced");
                }
                let b = bb.lock().unwrap().clone();
                let (s, mut h, body) = json(
                    201,
                    format!(r#"{{"status":"pending","authorizations":["{b}/authz/1"],"finalize":"{b}/finalize/1"}}"#),
                );
                h.push(("location", format!("{b}/order/1")));
                (s, h, body)
            }),
        ),
    ])
    .await;
    *b.lock().unwrap() = server.base.clone();
    let case = Case::new();
    let request = CertificateRequest { replaces: Some(CERT_ID), ..case.request(quick()) };
    let http = HttpClient::plain_http_only();
    let issued =
        obtain_certificate(&http, &format!("{}/dir", server.base), &request, &Recorder::default(), &|_| {}).await;
    assert_eq!(issued.unwrap().chain.len(), 1);
    let orders = server.payloads("/order");
    assert_eq!(orders.len(), 2, "{orders:?}");
    assert_eq!(orders[0]["replaces"], CERT_ID);
    assert!(orders[1].get("replaces").is_none(), "{}", orders[1]);

    // Without renewalInfo in the directory, no `replaces`.
    let plain = start(vec![]).await;
    obtain_certificate(&http, &format!("{}/dir", plain.base), &request, &Recorder::default(), &|_| {}).await.unwrap();
    let orders = plain.payloads("/order");
    assert_eq!(orders.len(), 1);
    assert!(orders[0].get("replaces").is_none(), "{}", orders[0]);
}

/// Another problem after `replaces` is not retried: it is the order's error.
#[tokio::test]
async fn other_problems_with_replaces_are_not_retried() {
    let b = Arc::new(Mutex::new(String::new()));
    let server =
        start(vec![("/dir", directory_with_renewal_info(&b)), ("/order", Box::new(|_, _| problem("malformed", "no")))])
            .await;
    *b.lock().unwrap() = server.base.clone();
    let case = Case::new();
    let request = CertificateRequest { replaces: Some(CERT_ID), ..case.request(quick()) };
    let http = HttpClient::plain_http_only();
    let err = obtain_certificate(&http, &format!("{}/dir", server.base), &request, &Recorder::default(), &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, AcmeError::Problem { operation: Operation::NewOrder, .. }), "{err:?}");
    assert_eq!(server.times("/order").len(), 1);
}

/// `GET {renewalInfo}/{CertID}`: the window, the explanation, `Retry-After` clamped; no
/// renewalInfo in the directory is `None`; an error page is described, never quoted.
#[tokio::test]
async fn renewal_information_is_read_from_the_ca() {
    let b = Arc::new(Mutex::new(String::new()));
    let path: &'static str = Box::leak(format!("/ari/{CERT_ID}").into_boxed_str());
    let server = start(vec![
        ("/dir", directory_with_renewal_info(&b)),
        (
            path,
            Box::new(|n, _| {
                if n > 0 {
                    return (500, vec![("content-type", "text/html".into())], "<h1>secret page</h1>".into());
                }
                let (s, mut h, body) = json(
                    200,
                    r#"{"suggestedWindow":{"start":"2025-01-02T04:00:00Z","end":"2025-01-03T04:00:00Z"},"explanationURL":"https://ca.example/why"}"#.into(),
                );
                h.push(("retry-after", "20".into()));
                (s, h, body)
            }),
        ),
    ])
    .await;
    *b.lock().unwrap() = server.base.clone();
    let http = HttpClient::plain_http_only();
    let directory = format!("{}/dir", server.base);
    let url = camera_acme::ari::renewal_info_url(&http, &directory).await.unwrap().unwrap();
    assert_eq!(url, format!("{}/ari/", server.base));
    let info = camera_acme::ari::renewal_info_at(&http, &url, CERT_ID).await.unwrap();
    assert_eq!((info.start_unix, info.end_unix), (1_735_790_400, 1_735_876_800));
    assert_eq!(info.recheck_after, camera_acme::ari::MIN_RECHECK, "20 s is raised to a minute");
    assert_eq!(info.explanation_url.as_deref(), Some("https://ca.example/why"));

    // Asked again at the same URL: no directory request.
    let err = camera_acme::ari::renewal_info_at(&http, &url, CERT_ID).await.unwrap_err();
    assert!(matches!(err, AcmeError::UnexpectedStatus { operation: Operation::RenewalInfo, status: 500, .. }));
    assert!(!err.to_string().contains("secret"), "{err}");
    assert_eq!(server.times("/dir").len(), 1, "one directory request per renewal_info_url, none per question");

    let plain = start(vec![]).await;
    assert_eq!(camera_acme::ari::renewal_info_url(&http, &format!("{}/dir", plain.base)).await.unwrap(), None);
}
