//! camera-scep against the real micromdm scepserver (Debian package `scep`, 2.1.0), each test in
//! its own network namespace (scepserver 2.1.0 listens on every interface; there it only has
//! loopback). The HTTP is a few lines of HTTP/1.0 over a TcpStream.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use camera_scep::http::{self, HttpRequest, Method};
use camera_scep::{
    build_csr, pkcs_req, renewal_req, Algorithms, CaCerts, Capabilities, CertRep, ChallengePassword, ContentCipher,
    CsrSpec, DigestAlgorithm, FailInfo, Issued, RequesterKey, ScepError, Signer,
};
use camera_testns::{in_private_netns, NetnsSetup};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

const PORT: u16 = 8080;
const CHALLENGE: &str = "s3cret-Challenge";
const URL: &str = "http://127.0.0.1:8080/scep";

/// A running scepserver with its own CA depot; killed (by its pid) when dropped.
struct Server {
    child: Child,
    depot: tempfile::TempDir,
    log: PathBuf,
}

impl Server {
    fn start(extra: &[&str]) -> Self {
        let depot = tempfile::tempdir().expect("temp dir");
        let dir = depot.path().join("depot");
        let init = Command::new("scepserver")
            .args(["ca", "-init", "-depot"])
            .arg(&dir)
            .args(["-keySize", "2048", "-organization", "Test SCEP CA"])
            .output()
            .expect("run scepserver ca -init (apt-get install scep)");
        assert!(init.status.success(), "scepserver ca -init: {}", String::from_utf8_lossy(&init.stderr));
        let log = depot.path().join("server.log");
        let child = Command::new("scepserver")
            .arg("-depot")
            .arg(&dir)
            .args(["-port", &PORT.to_string(), "-challenge", CHALLENGE, "-debug"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start scepserver");
        let server = Self { child, depot, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", PORT)).is_err() {
            assert!(Instant::now() < deadline, "scepserver did not listen within 10 s:\n{}", server.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn ca_pem_path(&self) -> PathBuf {
        self.depot.path().join("depot/ca.pem")
    }

    fn ca_der(&self) -> Vec<u8> {
        pem_to_der(&std::fs::read_to_string(self.ca_pem_path()).expect("read depot ca.pem"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Response {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// HTTP/1.0 so the answer is never chunked: the body runs to the end of the connection.
fn send(req: &HttpRequest) -> Response {
    let path = req.url.strip_prefix("http://127.0.0.1:8080").expect("loopback URL");
    let mut stream = TcpStream::connect(("127.0.0.1", PORT)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let method = if req.method == Method::Post { "POST" } else { "GET" };
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{PORT}\r\n");
    if let Some(ct) = req.content_type {
        head.push_str(&format!("Content-Type: {ct}\r\nContent-Length: {}\r\n", req.body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
    stream.write_all(&req.body).expect("write body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read answer");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    let content_type = head.lines().find_map(|l| {
        l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-type")).map(|(_, v)| v.trim().to_owned())
    });
    Response { status, content_type, body: raw[split + 4..].to_vec() }
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    use base64ct::{Base64, Encoding};
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    Base64::decode_vec(&b64).expect("PEM base64")
}

fn der_to_pem(der: &[u8]) -> String {
    use base64ct::{Base64, Encoding};
    let b64 = Base64::encode_string(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("ascii")).collect();
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
}

fn caps_and_ca(server: &Server) -> (Capabilities, CaCerts) {
    let caps = send(&http::get_ca_caps(URL));
    assert_eq!(caps.status, 200);
    let caps = Capabilities::parse(&caps.body).expect("GetCACaps");
    let ca = send(&http::get_ca_cert(URL, None));
    assert_eq!(ca.status, 200);
    let ca = CaCerts::parse(ca.content_type.as_deref(), &ca.body).expect("GetCACert");
    ca.check_trust(&[&server.ca_der()]).expect("the depot CA is the server's CA");
    (caps, ca)
}

fn subject(cn: &str) -> rcgen::DistinguishedName {
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CountryName, "DE");
    dn.push(rcgen::DnType::OrganizationName, "Camera Site");
    dn.push(rcgen::DnType::CommonName, cn);
    dn
}

fn spec(cn: &str, challenge: &str) -> CsrSpec {
    CsrSpec {
        subject: subject(cn),
        dns_names: vec![format!("{cn}.local")],
        ip_addresses: vec!["10.77.0.2".parse().expect("ip"), "fd77::2".parse().expect("ip")],
        challenge_password: Some(ChallengePassword::new(challenge).expect("challenge")),
    }
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// One PKCSReq through the server; the signer comes back for renewal.
fn enroll(
    caps: &Capabilities,
    ca: &CaCerts,
    cn: &str,
    challenge: &str,
    algs: Algorithms,
) -> (Signer, Result<CertRep, ScepError>) {
    let key = RequesterKey::generate(2048).expect("key");
    let csr = build_csr(&key, &spec(cn, challenge)).expect("csr");
    let signer = Signer::self_signed(key, &subject(cn), now()).expect("signer");
    let request = pkcs_req(&signer, ca, &csr, algs).expect("PKCSReq");
    let answer = send(&http::pki_operation(URL, caps, &request.der));
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let rep = request.reply.open(&signer, ca, answer.content_type.as_deref(), &answer.body);
    (signer, rep)
}

fn issued(rep: Result<CertRep, ScepError>, server: &Server) -> Issued {
    match rep {
        Ok(CertRep::Issued(issued)) => issued,
        other => panic!("expected a certificate, got {other:?}\nserver log:\n{}", server.log()),
    }
}

fn openssl_verify(server: &Server, cert_der: &[u8], dir: &Path) {
    let path = dir.join("issued.pem");
    std::fs::write(&path, der_to_pem(cert_der)).expect("write");
    let out = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(server.ca_pem_path())
        .arg(&path)
        .output()
        .expect("run openssl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim().ends_with(": OK"),
        "openssl verify: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn check_issued(cert_der: &[u8], key: &RequesterKey, cn: &str) {
    let (_, cert) = X509Certificate::from_der(cert_der).expect("issued certificate parses");
    assert_eq!(cert.public_key().raw, key.public_key_der(), "the certificate is for the requester's key");
    let subject = cert.subject();
    assert_eq!(subject.iter_common_name().next().and_then(|c| c.as_str().ok()), Some(cn));
    assert_eq!(subject.iter_organization().next().and_then(|c| c.as_str().ok()), Some("Camera Site"));
    assert_eq!(subject.iter_country().next().and_then(|c| c.as_str().ok()), Some("DE"));
    let san = cert.subject_alternative_name().expect("SAN parses").expect("SAN present");
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => format!("dns:{d}"),
            GeneralName::IPAddress(ip) => format!("ip:{ip:?}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        vec![
            format!("dns:{cn}.local"),
            "ip:[10, 77, 0, 2]".to_owned(),
            "ip:[253, 119, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]".to_owned()
        ]
    );
}

#[test]
fn get_ca_caps_and_get_ca_cert_from_the_real_server() {
    if !in_private_netns("get_ca_caps_and_get_ca_cert_from_the_real_server", &NetnsSetup::loopback_only()) {
        return;
    }
    let server = Server::start(&[]);
    let caps = send(&http::get_ca_caps(URL));
    let parsed = Capabilities::parse(&caps.body).expect("caps");
    assert!(parsed.renewal && parsed.sha1 && parsed.sha256 && parsed.aes && parsed.des3);
    assert!(parsed.scep_standard && parsed.post_pki_operation && parsed.supports_post());
    assert_eq!(parsed.algorithms().0, Algorithms::RECOMMENDED);

    let answer = send(&http::get_ca_cert(URL, None));
    assert_eq!(answer.content_type.as_deref(), Some(camera_scep::CA_CERT_CONTENT_TYPE));
    let ca = CaCerts::parse(answer.content_type.as_deref(), &answer.body).expect("GetCACert");
    assert_eq!(ca.ca(), server.ca_der().as_slice());
    assert_eq!(ca.recipient(), ca.ca(), "no RA: requests are encrypted to the CA");
    assert!(!ca.has_ra());
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(server.ca_pem_path())
        .output()
        .expect("openssl");
    let openssl_fp = String::from_utf8_lossy(&out.stdout)
        .split('=')
        .nth(1)
        .unwrap_or_default()
        .trim()
        .replace(':', "")
        .to_lowercase();
    assert_eq!(ca.ca_fingerprint_sha256(), openssl_fp);
    ca.check_trust(&[&server.ca_der()]).expect("trusted");
    let other = rcgen::generate_simple_self_signed(vec!["other.local".into()]).expect("other CA");
    assert!(matches!(ca.check_trust(&[other.cert.der()]), Err(ScepError::Untrusted)));
}

#[test]
fn enrollment_with_the_right_challenge_gives_a_verifiable_certificate() {
    if !in_private_netns(
        "enrollment_with_the_right_challenge_gives_a_verifiable_certificate",
        &NetnsSetup::loopback_only(),
    ) {
        return;
    }
    let server = Server::start(&[]);
    let (caps, ca) = caps_and_ca(&server);
    let (signer, rep) = enroll(&caps, &ca, "cam-lobby", CHALLENGE, caps.algorithms().0);
    let issued = issued(rep, &server);
    check_issued(&issued.certificate, signer.key(), "cam-lobby");
    openssl_verify(&server, &issued.certificate, server.depot.path());
    // scepserver 2.1.0 signs its CertRep with SHA-1, and the envelope holds the issued
    // certificate alone (the CA comes from GetCACert).
    assert_eq!(issued.reply_digest, DigestAlgorithm::Sha1);
    assert!(issued.chain.is_empty());
    // What scepserver 2.1.0 puts in every certificate (depot/signer.go): keyUsage
    // digitalSignature and extendedKeyUsage clientAuth only, no serverAuth. camera-upload's
    // validation refuses such a certificate for the web server; this records the fact.
    let (_, cert) = X509Certificate::from_der(&issued.certificate).expect("parse");
    let eku = cert.extended_key_usage().expect("EKU parses").expect("EKU present").value;
    assert!(eku.client_auth && !eku.server_auth);
    let ku = cert.key_usage().expect("KU parses").expect("KU present").value;
    assert!(ku.digital_signature() && !ku.key_encipherment());
}

#[test]
fn every_cipher_and_digest_is_accepted_by_the_real_server() {
    if !in_private_netns("every_cipher_and_digest_is_accepted_by_the_real_server", &NetnsSetup::loopback_only()) {
        return;
    }
    let server = Server::start(&[]);
    let (caps, ca) = caps_and_ca(&server);
    let mut n = 0;
    for cipher in [ContentCipher::Aes128Cbc, ContentCipher::Aes256Cbc, ContentCipher::Des3Cbc] {
        for digest in [DigestAlgorithm::Sha1, DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
            n += 1;
            let cn = format!("cam-{n}");
            let (signer, rep) = enroll(&caps, &ca, &cn, CHALLENGE, Algorithms { digest, cipher });
            let issued = issued(rep, &server);
            check_issued(&issued.certificate, signer.key(), &cn);
        }
    }
}

#[test]
fn pki_operation_over_get_works_with_the_real_server() {
    if !in_private_netns("pki_operation_over_get_works_with_the_real_server", &NetnsSetup::loopback_only()) {
        return;
    }
    let server = Server::start(&[]);
    let (mut caps, ca) = caps_and_ca(&server);
    // As if the server had not offered POST: the message goes base64 in the query.
    caps.post_pki_operation = false;
    caps.scep_standard = false;
    let key = RequesterKey::generate(2048).expect("key");
    let csr = build_csr(&key, &spec("cam-get", CHALLENGE)).expect("csr");
    let signer = Signer::self_signed(key, &subject("cam-get"), now()).expect("signer");
    let request = pkcs_req(&signer, &ca, &csr, Algorithms::RECOMMENDED).expect("PKCSReq");
    let http_request = http::pki_operation(URL, &caps, &request.der);
    assert_eq!(http_request.method, Method::Get);
    let answer = send(&http_request);
    let issued = issued(request.reply.open(&signer, &ca, answer.content_type.as_deref(), &answer.body), &server);
    openssl_verify(&server, &issued.certificate, server.depot.path());
}

#[test]
fn a_wrong_challenge_is_refused_with_a_clear_error() {
    if !in_private_netns("a_wrong_challenge_is_refused_with_a_clear_error", &NetnsSetup::loopback_only()) {
        return;
    }
    let server = Server::start(&[]);
    let (caps, ca) = caps_and_ca(&server);
    let (_, rep) = enroll(&caps, &ca, "cam-wrong", "not-the-challenge", caps.algorithms().0);
    let err = rep.expect_err("a wrong challenge must be refused");
    assert!(
        matches!(err, ScepError::Refused { fail_info: Some(FailInfo::BadRequest), .. }),
        "{err:?}\nserver log:\n{}",
        server.log()
    );
    let text = err.to_string();
    assert_eq!(
        text,
        "the SCEP server refused the request: the challenge password is wrong or expired, or the server's policy \
         does not allow this request (badRequest)"
    );
    assert!(!text.contains("not-the-challenge") && !text.contains(CHALLENGE));
}

#[test]
fn renewal_signed_with_the_issued_certificate_gives_a_new_certificate() {
    if !in_private_netns(
        "renewal_signed_with_the_issued_certificate_gives_a_new_certificate",
        &NetnsSetup::loopback_only(),
    ) {
        return;
    }
    // -allowrenew 0: scepserver 2.1.0 refuses a second certificate for the same subject until 14
    // days before the first expires unless told otherwise (see the next test).
    let server = Server::start(&["-allowrenew", "0"]);
    let (caps, ca) = caps_and_ca(&server);
    assert!(caps.supports_renewal());
    let (signer, rep) = enroll(&caps, &ca, "cam-renew", CHALLENGE, caps.algorithms().0);
    let first = issued(rep, &server);

    // Renewal: a new key, signed with the current certificate and key. scepserver 2.1.0 checks
    // the challenge on RenewalReq too (its ChallengeMiddleware runs for every request type).
    let current = Signer::with_certificate(signer.into_key(), &first.certificate).expect("current certificate");
    let new_key = RequesterKey::generate(2048).expect("new key");
    let csr = build_csr(&new_key, &spec("cam-renew", CHALLENGE)).expect("csr");
    let request = renewal_req(&current, &ca, &csr, caps.algorithms().0).expect("RenewalReq");
    let answer = send(&http::pki_operation(URL, &caps, &request.der));
    let second = issued(request.reply.open(&current, &ca, answer.content_type.as_deref(), &answer.body), &server);
    check_issued(&second.certificate, &new_key, "cam-renew");
    openssl_verify(&server, &second.certificate, server.depot.path());
    assert_ne!(second.certificate, first.certificate);
    let serial = |der: &[u8]| X509Certificate::from_der(der).expect("parse").1.raw_serial().to_vec();
    assert_ne!(serial(&second.certificate), serial(&first.certificate));
}

#[test]
fn renewal_before_the_servers_window_is_refused() {
    if !in_private_netns("renewal_before_the_servers_window_is_refused", &NetnsSetup::loopback_only()) {
        return;
    }
    // scepserver's default: a subject that already has a certificate valid for more than 14 more
    // days gets no second one ("DN ... already exists"), answered as badRequest.
    let server = Server::start(&[]);
    let (caps, ca) = caps_and_ca(&server);
    let (signer, rep) = enroll(&caps, &ca, "cam-early", CHALLENGE, caps.algorithms().0);
    let first = issued(rep, &server);
    let current = Signer::with_certificate(signer.into_key(), &first.certificate).expect("current certificate");
    let new_key = RequesterKey::generate(2048).expect("new key");
    let csr = build_csr(&new_key, &spec("cam-early", CHALLENGE)).expect("csr");
    let request = renewal_req(&current, &ca, &csr, caps.algorithms().0).expect("RenewalReq");
    let answer = send(&http::pki_operation(URL, &caps, &request.der));
    let err = request.reply.open(&current, &ca, answer.content_type.as_deref(), &answer.body).expect_err("refused");
    assert!(matches!(err, ScepError::Refused { fail_info: Some(FailInfo::BadRequest), .. }), "{err:?}");
    assert!(server.log().contains("already exists"), "server log:\n{}", server.log());
}
