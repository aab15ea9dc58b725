//! Whom enrollment trusts, performed against the real camera-web: a machine in the middle of a
//! SCEP exchange (a forwarding proxy written here, in front of micromdm's SCEP library in a
//! private network namespace) that swaps in a foreign RA at renewal or an impostor CA at first
//! contact gets nothing from the camera, not even the challenge; ACME over plain http is refused
//! at the API, and such settings stored or configured by an older version turn enrollment off
//! with the reason while the camera goes on serving; `PUT /api/v1/enrollment` is rate-limited.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use camera_test_support::netns::{enter_private_netns, ip, NetnsSetup};
use common::scep::ScepServer;
use common::*;
use serde_json::{json, Value};

const HTTPS_PORT: u16 = 5001;
const HTTP_PORT: u16 = 5002;
const SCEP_PORT: u16 = 5080;
const CONFIG: &str = r#"{"camera": {"hostname": "testcam"}}"#;
const LOOPBACK_CONFIG: &str = r#"{"camera": {"loopback": true}}"#;
const CHALLENGE: &str = "site-scep-challenge-trust-7";
/// ACME settings an older version accepted: a plain http directory.
const PLAIN_HTTP_ACME: &str = r#"{"protocol":"acme","url":"http://10.77.0.9:14000/dir","challenge_types":["http-01"],"key_type":"ecdsa-p256","contact":[]}"#;

/// The camera and an admin's curl that trusts the camera's CA and, when given, the site's CA (the
/// enrolled certificate chains to it).
struct Site {
    camera: Camera,
    trust: PathBuf,
    base: String,
}

impl Site {
    /// The camera in the namespace on every address, its password set.
    fn in_namespace(site_ca_pem: &str) -> Self {
        let camera = Camera::start_listening(
            TempDir::new("trust"),
            CONFIG,
            &format!("[::]:{HTTPS_PORT}"),
            &format!("[::]:{HTTP_PORT}"),
        );
        let site = Self::new(camera, site_ca_pem, format!("https://10.77.0.2:{HTTPS_PORT}"));
        let password = json!({"password": PASSWORD}).to_string();
        let (status, body) =
            site.call(&["-X", "POST", "-H", "Content-Type: application/json", "-d", &password], "/api/v1/setup");
        assert_eq!(status, 200, "{body}");
        site
    }

    /// The camera on loopback (`start_in`, `start_with`); the password is set by the caller.
    fn on_loopback(camera: Camera) -> Self {
        let base = camera.url("");
        Self::new(camera, "", base)
    }

    fn new(camera: Camera, site_ca_pem: &str, base: String) -> Self {
        let trust = camera.dir.path().join("trust.pem");
        let mut pem = std::fs::read(camera.ca_path()).unwrap();
        pem.extend(site_ca_pem.as_bytes());
        std::fs::write(&trust, pem).unwrap();
        Self { camera, trust, base }
    }

    /// curl as the admin: `args`, then the URL of `path`.
    fn call(&self, args: &[&str], path: &str) -> (u16, Value) {
        let admin = self.camera.admin();
        let url = format!("{}{path}", self.base);
        let mut all = vec!["-u", admin.as_str()];
        all.extend(args);
        all.push(&url);
        let (status, body) = curl_with_ca(&self.trust, &all);
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(&[], path);
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// `PUT /api/v1/enrollment`; the answer's headers are written to `headers` when given.
    fn configure(&self, settings: &Value, headers: Option<&Path>) -> (u16, Value) {
        let body = settings.to_string();
        let mut args = vec!["-X", "PUT", "-H", "Content-Type: application/json", "-d", body.as_str()];
        if let Some(path) = headers {
            args.extend(["-D", path.to_str().unwrap()]);
        }
        self.call(&args, "/api/v1/enrollment")
    }

    fn events(&self, kind: &str) -> Vec<Value> {
        let events = self.get("/api/v1/events");
        events["events"].as_array().unwrap().iter().filter(|e| e["kind"] == kind).cloned().collect()
    }

    /// Waits until the served certificate is an enrolled one other than `previous`.
    fn wait_enrolled(&self, previous: Option<&str>, why: &str) -> Value {
        wait_for(Duration::from_secs(60), || {
            let status = self.get("/api/v1/certificate");
            let fresh = status["source"] == "enrolled" && Some(status["certificate"]["sha256"].as_str()?) != previous;
            fresh.then_some(status)
        })
        .unwrap_or_else(|| {
            panic!(
                "{why}: no enrolled certificate; enrollment: {}\ncamera log:\n{}",
                self.get("/api/v1/enrollment"),
                self.camera.log_text()
            )
        })
    }

    /// Waits until the camera has made up its mind about a GetCACert answer the proxy forged: it
    /// stopped, or it sent a request on (as the previous version did). Returns the enrollment state.
    fn wait_stopped_or_sent(&self, proxy: &Proxy) -> Value {
        wait_for(Duration::from_secs(60), || {
            let state = self.get("/api/v1/enrollment");
            (state["state"] == "stopped" || proxy.count("PKIOperation") > 0).then_some(state)
        })
        .unwrap_or_else(|| {
            panic!(
                "the camera neither stopped nor sent a request: {}\n{}",
                self.get("/api/v1/enrollment"),
                self.camera.log_text()
            )
        })
    }

    fn served_sha256(&self) -> (String, String) {
        let now = self.get("/api/v1/certificate");
        (now["source"].as_str().unwrap().to_owned(), now["certificate"]["sha256"].as_str().unwrap().to_owned())
    }
}

fn names(status: &Value) -> Vec<String> {
    status["certificate"]["subject_alt_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// What the proxy answers to GetCACert instead of the server.
#[derive(Clone)]
struct Forged {
    content_type: &'static str,
    body: Vec<u8>,
}

/// A machine in the middle of the camera's SCEP exchanges: an HTTP proxy on 127.0.0.1 that
/// forwards each request to the real server (one connection each, `Connection: close`) and relays
/// the whole answer, except GetCACert while it holds a forgery. It notes the `operation=` of every
/// request it receives.
struct Proxy {
    port: u16,
    shared: Arc<ProxyShared>,
}

struct ProxyShared {
    upstream: u16,
    forged: Mutex<Option<Forged>>,
    operations: Mutex<Vec<String>>,
}

impl Proxy {
    fn start(upstream: u16, forged: Option<Forged>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(ProxyShared { upstream, forged: Mutex::new(forged), operations: Mutex::default() });
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let shared = accepting.clone();
                // A broken exchange shows as the camera's failure; the proxy has nothing to add.
                std::thread::spawn(move || drop(shared.serve(client)));
            }
        });
        Self { port, shared }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/scep", self.port)
    }

    /// From now on GetCACert is answered with `forged` (`None`: forwarded); counting starts again.
    fn answer_get_ca_cert(&self, forged: Option<Forged>) {
        *self.shared.forged.lock().unwrap() = forged;
        self.shared.operations.lock().unwrap().clear();
    }

    /// Requests received for `operation` since the proxy started or was last switched.
    fn count(&self, operation: &str) -> usize {
        self.shared.operations.lock().unwrap().iter().filter(|op| *op == operation).count()
    }
}

impl ProxyShared {
    fn serve(&self, mut client: TcpStream) -> io::Result<()> {
        client.set_read_timeout(Some(Duration::from_secs(30)))?;
        let (head, body) = read_request(&mut client)?;
        let target = head.split(' ').nth(1).unwrap_or_default();
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let operation = query.split('&').find_map(|kv| kv.strip_prefix("operation=")).unwrap_or_default();
        self.operations.lock().unwrap().push(operation.to_owned());
        let forged = self.forged.lock().unwrap().clone().filter(|_| operation == "GetCACert");
        let answer = match forged {
            Some(Forged { content_type, body }) => {
                let mut answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                answer.extend(body);
                answer
            }
            None => {
                let mut upstream = TcpStream::connect(("127.0.0.1", self.upstream))?;
                upstream.set_read_timeout(Some(Duration::from_secs(30)))?;
                let mut forwarded = String::new();
                for line in head.lines().filter(|l| !l.to_ascii_lowercase().starts_with("connection:")) {
                    forwarded.push_str(line);
                    forwarded.push_str("\r\n");
                }
                // The server closes after its answer, so the whole answer is what it sent.
                forwarded.push_str("Connection: close\r\n\r\n");
                upstream.write_all(forwarded.as_bytes())?;
                upstream.write_all(&body)?;
                let mut answer = Vec::new();
                upstream.read_to_end(&mut answer)?;
                answer
            }
        };
        client.write_all(&answer)?;
        client.shutdown(Shutdown::Write)
    }
}

/// One request: its head (request line and headers, without the blank line) and its
/// Content-Length body.
fn read_request(stream: &mut TcpStream) -> io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if buf.len() > 64 * 1024 {
            return Err(io::Error::other("request head too large"));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    if header("transfer-encoding").is_some() {
        return Err(io::Error::other("chunked bodies are not forwarded"));
    }
    let length: usize = header("content-length").map_or(Ok(0), |v| v.parse().map_err(io::Error::other))?;
    let mut body = buf[end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok((head, body))
}

/// An impostor of the SCEP server's CA and what it signs, made with the openssl CLI.
struct Forgeries {
    /// The genuine CA's SHA-256 fingerprint (`AB:CD:...`), as its administrator would give it.
    genuine_sha256: String,
    /// The impostor CA certificate (DER): the genuine one re-signed with another key, so subject,
    /// serial and key identifiers are the genuine CA's byte for byte (`openssl req -subj` would
    /// re-encode the name as UTF8String where the depot's CA has PrintableString).
    impostor_ca_der: Vec<u8>,
    /// A certs-only PKCS#7 (DER) holding the genuine CA certificate and an RSA RA certificate for
    /// key encipherment whose issuer name and authority key identifier are the genuine CA's, but
    /// which the impostor signed.
    genuine_ca_and_foreign_ra: Vec<u8>,
}

fn forge(scep: &ScepServer) -> Forgeries {
    let dir = scep.dir.path().join("forged");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), &scep.ca_pem).unwrap();
    openssl(&dir, &["genrsa", "-out", "impostor.key", "2048"]);
    openssl(&dir, &["x509", "-in", "ca.pem", "-signkey", "impostor.key", "-days", "2", "-out", "impostor.pem"]);
    openssl(&dir, &["x509", "-in", "impostor.pem", "-outform", "DER", "-out", "impostor.der"]);
    openssl(&dir, &["genrsa", "-out", "ra.key", "2048"]);
    openssl(&dir, &["req", "-new", "-key", "ra.key", "-subj", "/CN=Site SCEP RA", "-out", "ra.csr"]);
    std::fs::write(
        dir.join("ra.cnf"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyEncipherment,digitalSignature\nauthorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "ra.csr",
            "-CA",
            "impostor.pem",
            "-CAkey",
            "impostor.key",
            "-set_serial",
            "7",
            "-days",
            "1",
            "-extfile",
            "ra.cnf",
            "-out",
            "ra.pem",
        ],
    );
    openssl(
        &dir,
        &["crl2pkcs7", "-nocrl", "-certfile", "ca.pem", "-certfile", "ra.pem", "-outform", "DER", "-out", "ca-ra.p7b"],
    );
    // The forgery is the one intended: the RA names the genuine CA as its issuer, which did not sign it.
    let subject = |file: &str, what: &str| {
        let out = openssl(&dir, &["x509", "-in", file, "-noout", what, "-nameopt", "compat"]);
        let text = String::from_utf8(out.stdout).unwrap();
        text.split_once('=').unwrap().1.trim().to_owned()
    };
    assert_eq!(subject("ra.pem", "-issuer"), subject("ca.pem", "-subject"));
    assert_eq!(subject("impostor.pem", "-subject"), subject("ca.pem", "-subject"));
    let verified = openssl_verify(&dir.join("ca.pem"), None, &dir.join("ra.pem"), &["-purpose", "any"]);
    assert!(!verified.accepted, "the genuine CA vouches for the forged RA: {}", verified.said);
    let fingerprint = openssl(&dir, &["x509", "-in", "ca.pem", "-noout", "-fingerprint", "-sha256"]);
    let fingerprint = String::from_utf8(fingerprint.stdout).unwrap();
    Forgeries {
        genuine_sha256: fingerprint.trim().split_once('=').unwrap().1.to_owned(),
        impostor_ca_der: std::fs::read(dir.join("impostor.der")).unwrap(),
        genuine_ca_and_foreign_ra: std::fs::read(dir.join("ca-ra.p7b")).unwrap(),
    }
}

fn scep_settings(proxy: &Proxy) -> Value {
    json!({"protocol": "scep", "url": proxy.url(), "challenge": CHALLENGE, "subject": {"CN": "testcam"}})
}

/// A machine in the middle at renewal, with no trust anchor configured: once the camera enrolled
/// (pinning the CA it met), a GetCACert answer holding the genuine CA and an RA certificate that
/// names that CA as issuer but was signed by another key stops enrollment. The camera sends no
/// request (so neither its challenge nor a request signed with its certificate reaches the
/// impostor, to which the previous version encrypted its RenewalReq: the CA's fingerprint matched
/// the pin), keeps serving what it enrolled, records `enrollment_untrusted`, and never logs the
/// challenge. Configured again, with the CA's fingerprint given out of band, it resumes and
/// enrolls for the new address.
#[test]
fn scep_renewal_through_a_foreign_ra_stops_and_sends_nothing() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let scep = ScepServer::issuing_server_certificates(CHALLENGE, SCEP_PORT, Duration::from_secs(3600));
    let forged = forge(&scep);
    let proxy = Proxy::start(SCEP_PORT, None);
    let site = Site::in_namespace(&scep.ca_pem);
    let mut settings = scep_settings(&proxy);
    let (status, state) = site.configure(&settings, None);
    assert_eq!(status, 200, "{state}");
    let first = site.wait_enrolled(None, "first enrollment through the proxy");
    let first_sha256 = first["certificate"]["sha256"].as_str().unwrap().to_owned();
    assert!(proxy.count("PKIOperation") >= 1, "the first enrollment went through the proxy");

    proxy.answer_get_ca_cert(Some(Forged {
        content_type: "application/x-x509-ca-ra-cert",
        body: forged.genuine_ca_and_foreign_ra.clone(),
    }));
    // A new address: the camera enrolls again once its addresses settle (about 3 s).
    ip(&["addr", "add", "10.77.0.3/24", "dev", "cam0"]);
    let state = site.wait_stopped_or_sent(&proxy);
    assert_eq!(
        proxy.count("PKIOperation"),
        0,
        "the camera sent a request encrypted to the foreign RA: {state}\n{}",
        site.camera.log_text()
    );
    assert!(proxy.count("GetCACert") >= 1, "the camera met the forged answer");
    assert_eq!(state["state"], "stopped", "{state}");
    let stopped = state["stopped"].as_str().unwrap();
    assert!(stopped.contains("do not all chain") && stopped.contains("sent it nothing"), "{stopped}");
    assert_eq!(site.served_sha256(), ("enrolled".to_owned(), first_sha256.clone()), "the enrolled certificate stays");
    let untrusted = site.events("enrollment_untrusted");
    assert_eq!(untrusted.len(), 1, "{untrusted:?}");
    assert!(!site.camera.log_text().contains(CHALLENGE), "the challenge is in the log");
    // Stopped means stopped: the camera asks for nothing more until configured again.
    assert_eq!(site.get("/api/v1/enrollment")["next_attempt_unix"], Value::Null);

    // Configured again with the fingerprint the CA's administrator gives, the real server reachable.
    proxy.answer_get_ca_cert(None);
    settings["ca_sha256"] = json!(forged.genuine_sha256);
    let (status, state) = site.configure(&settings, None);
    assert_eq!(status, 200, "{state}");
    assert_ne!(state["state"], "stopped", "{state}");
    assert_eq!(state["stopped"], Value::Null, "{state}");
    let renewed = site.wait_enrolled(Some(&first_sha256), "after configuring again");
    assert!(names(&renewed).contains(&"10.77.0.3".to_owned()), "{renewed}");
    let state = site.get("/api/v1/enrollment");
    assert_eq!((state["state"].as_str(), &state["stopped"]), (Some("waiting"), &Value::Null), "{state}");
    assert!(!site.camera.log_text().contains(CHALLENGE), "the challenge is in the log");
}

/// `ca_sha256` pins the SCEP CA out of band from the first contact: a machine in the middle that
/// answers GetCACert with an impostor CA (same subject, serial and key identifiers, another key)
/// gets no request, nothing is installed and nothing is pinned. (The previous version had no
/// `ca_sha256` and pinned whatever CA it met first.)
#[test]
fn scep_ca_sha256_refuses_an_impostor_ca_at_first_contact() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let scep = ScepServer::issuing_server_certificates(CHALLENGE, SCEP_PORT, Duration::from_secs(3600));
    let forged = forge(&scep);
    let impostor = Forged { content_type: "application/x-x509-ca-cert", body: forged.impostor_ca_der.clone() };
    let proxy = Proxy::start(SCEP_PORT, Some(impostor));
    let site = Site::in_namespace(&scep.ca_pem);
    let own = site.served_sha256();
    assert_eq!(own.0, "device");
    let mut settings = scep_settings(&proxy);
    settings["ca_sha256"] = json!(forged.genuine_sha256);
    let (status, state) = site.configure(&settings, None);
    assert_eq!(status, 200, "{state}");
    let state = site.wait_stopped_or_sent(&proxy);
    assert_eq!(proxy.count("PKIOperation"), 0, "the camera sent a request to the impostor: {state}");
    assert!(proxy.count("GetCACert") >= 1, "the camera met the impostor");
    assert_eq!(state["state"], "stopped", "{state}");
    let stopped = state["stopped"].as_str().unwrap();
    assert!(stopped.contains("ca_sha256") && stopped.contains(&forged.genuine_sha256), "{stopped}");
    assert_eq!((&state["certificate"], &state["scep_ca_sha256"]), (&Value::Null, &Value::Null), "{state}");
    assert_eq!(site.served_sha256(), own, "nothing installed");
    assert_eq!(site.events("enrollment_untrusted").len(), 1);
    assert!(!site.camera.log_text().contains(CHALLENGE), "the challenge is in the log");
}

/// RFC 8555 section 6.1: ACME over plain http is refused at the API with a sentence that says so
/// (the previous version accepted it, and nothing authenticated the chain it was handed).
#[test]
fn acme_over_plain_http_is_refused() {
    if !enter_private_netns(&NetnsSetup::loopback_only()) {
        return;
    }
    let site = Site::on_loopback(Camera::start_with(LOOPBACK_CONFIG));
    site.camera.setup();
    let (status, body) = site.configure(&json!({"protocol": "acme", "url": "http://127.0.0.1:14000/dir"}), None);
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_enrollment")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("ACME must use https"), "{body}");
    assert_eq!(site.get("/api/v1/enrollment")["state"], "off");
}

/// An `enrollment.json` holding plain-http ACME settings an older version accepted: the camera
/// serves, enrollment is off with the reason shown, one `enrollment_stopped` event; the record is
/// rewritten once, so a restart neither writes it again nor adds an event.
#[test]
fn stored_plain_http_acme_settings_turn_enrollment_off_once() {
    if !enter_private_netns(&NetnsSetup::loopback_only()) {
        return;
    }
    let dir = TempDir::new("stored-http-acme");
    let state_dir = dir.path().join("state");
    std::fs::DirBuilder::new().mode(0o700).create(&state_dir).unwrap();
    let record = state_dir.join("enrollment.json");
    std::fs::write(&record, format!(r#"{{"settings":{PLAIN_HTTP_ACME},"failures":0,"not_before_unix":0}}"#)).unwrap();
    std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o600)).unwrap();

    let site = Site::on_loopback(Camera::start_in(dir, LOOPBACK_CONFIG));
    site.camera.setup();
    let check = |site: &Site| {
        let state = site.get("/api/v1/enrollment");
        assert_eq!((state["state"].as_str(), &state["settings"]), (Some("off"), &Value::Null), "{state}");
        let stopped = state["stopped"].as_str().unwrap_or_default();
        assert!(stopped.contains("stored enrollment settings") && stopped.contains("ACME must use https"), "{state}");
        let events = site.events("enrollment_stopped");
        assert_eq!(events.len(), 1, "{events:?}");
    };
    check(&site);
    let rewritten = std::fs::read(&record).unwrap();
    assert!(!String::from_utf8_lossy(&rewritten).contains("10.77.0.9"), "the refused settings are gone");

    let site = Site::on_loopback(Camera::start_in(site.camera.stop(), LOOPBACK_CONFIG));
    check(&site);
    assert_eq!(std::fs::read(&record).unwrap(), rewritten, "the record is written again at each start");
}

/// A configuration file whose `enrollment` section holds plain-http ACME settings: camera-web
/// starts and serves, enrollment is off with the reason, one `enrollment_stopped` event, and a
/// restart with the same file does not turn it off again.
#[test]
fn configured_plain_http_acme_settings_turn_enrollment_off_and_the_camera_serves() {
    if !enter_private_netns(&NetnsSetup::loopback_only()) {
        return;
    }
    let config = format!(r#"{{"camera": {{"loopback": true}}, "enrollment": {PLAIN_HTTP_ACME}}}"#);
    let site = Site::on_loopback(Camera::start_with(&config));
    site.camera.setup();
    let check = |site: &Site| {
        let state = site.get("/api/v1/enrollment");
        assert_eq!((state["state"].as_str(), &state["settings"]), (Some("off"), &Value::Null), "{state}");
        let stopped = state["stopped"].as_str().unwrap_or_default();
        assert!(stopped.contains("configuration file") && stopped.contains("ACME must use https"), "{state}");
        assert_eq!(site.events("enrollment_stopped").len(), 1);
    };
    check(&site);
    let site = Site::on_loopback(Camera::start_in(site.camera.stop(), &config));
    check(&site);
}

/// `PUT /api/v1/enrollment` enrolls at once, so it is rate-limited like logins: five in a row,
/// then 429 `enrollment_too_frequent` with `Retry-After` (a script repeating it cannot make the
/// camera flood the site's CA).
#[test]
fn enrollment_put_is_rate_limited() {
    if !enter_private_netns(&NetnsSetup::loopback_only()) {
        return;
    }
    let site = Site::on_loopback(Camera::start_with(LOOPBACK_CONFIG));
    site.camera.setup();
    // Nothing listens on port 9 in the namespace: each attempt fails at once.
    let settings = json!({"protocol": "scep", "url": "http://127.0.0.1:9/scep", "challenge": CHALLENGE});
    for i in 1..=5 {
        let (status, body) = site.configure(&settings, None);
        assert_eq!(status, 200, "PUT {i}: {body}");
    }
    let headers = site.camera.dir.path().join("put-6-headers.txt");
    let (status, body) = site.configure(&settings, Some(&headers));
    assert_eq!((status, body["error"].as_str()), (429, Some("enrollment_too_frequent")), "{body}");
    let headers = std::fs::read_to_string(&headers).unwrap();
    let retry_after: u64 = headers
        .lines()
        .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case("retry-after")))
        .map(|(_, v)| v.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no Retry-After: {headers}"));
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(site.events("enrollment_configured").len(), 5);
}
