//! Secrets stay secret (SECURITY.md cites these tests): no private key, passphrase
//! or password in any API response, response header or log line, error paths included; files that
//! hold secrets are readable by their owner only; a session really ends at logout and at a restart;
//! the CSRF token belongs to its session; the admin password is stored as salted PBKDF2; nothing is
//! changed over plain HTTP; Debug output of values holding keys or passwords shows none of them.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

const PEM_PASS: &str = "pem passphrase 9d21";
const P12_PASS: &str = "p12 passphrase 7f3c";
const WRONG_PASS: &str = "wrong passphrase 4b8e";
const WRONG_PASSWORD: &str = "not the password 5e1a";

// ---- Key material in every form a leak could take ----

fn base64(bytes: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() { char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]) } else { '=' });
        }
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Starts of `size`-byte windows every `step` bytes over `len` bytes, the last one flush with the end.
fn window_starts(len: usize, size: usize, step: usize) -> Vec<usize> {
    let mut starts: Vec<usize> = (0..=len.saturating_sub(size)).step_by(step).collect();
    starts.push(len.saturating_sub(size));
    starts.dedup();
    starts
}

/// The private numbers of a key (RSA: d, p, q, dP, dQ, qInv; EC: the scalar), as openssl reads
/// them from any file holding the key (other PEM blocks in the file are skipped). The public half
/// is left out on purpose: it is in the certificates the camera serves, and must be.
fn private_numbers(key_file: &Path) -> Vec<Vec<u8>> {
    const PRIVATE: [&str; 7] =
        ["privateExponent:", "prime1:", "prime2:", "exponent1:", "exponent2:", "coefficient:", "priv:"];
    let out = run(Command::new("openssl").args(["pkey", "-noout", "-text", "-in"]).arg(key_file));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut numbers = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let finish = |n: Vec<u8>| n.into_iter().skip_while(|&b| b == 0).collect::<Vec<u8>>();
    for line in text.lines() {
        if line.starts_with(' ') {
            if let Some(bytes) = current.as_mut() {
                bytes.extend(
                    line.trim().split(':').filter(|h| !h.is_empty()).map(|h| u8::from_str_radix(h, 16).unwrap()),
                );
            }
            continue;
        }
        numbers.extend(current.take().map(finish));
        if PRIVATE.contains(&line.trim()) {
            current = Some(Vec::new());
        }
    }
    numbers.extend(current.take().map(finish));
    numbers
}

/// The key as DER, PKCS#8 and traditional (PKCS#1 / SEC1): what the camera stores and what a
/// careless encoder would print.
fn key_ders(key_file: &Path) -> Vec<Vec<u8>> {
    [&[][..], &["-traditional"][..]]
        .iter()
        .map(|extra| {
            run(Command::new("openssl").args(["pkey", "-outform", "DER"]).args(*extra).arg("-in").arg(key_file)).stdout
        })
        .collect()
}

/// Strings that give one private key away.
struct KeyNeedles {
    what: String,
    /// Searched in the haystack with white space and JSON escapes taken out: base64 (at every
    /// alignment a PEM or base64 encoding of the key could have), hex, openssl's colon hex.
    flat: Vec<Vec<u8>>,
    /// Searched as they are: the raw bytes, Rust's Debug form of a byte slice.
    raw: Vec<Vec<u8>>,
}

fn key_needles(what: &str, key_file: &Path) -> KeyNeedles {
    let numbers = private_numbers(key_file);
    assert!(
        !numbers.is_empty() && numbers.iter().all(|n| n.len() >= 24),
        "{what}: private numbers not found in {}",
        key_file.display()
    );
    let (mut flat, mut raw) = (Vec::new(), Vec::new());
    for n in &numbers {
        for start in window_starts(n.len(), 16, 8) {
            let w = &n[start..start + 16];
            let hex: Vec<String> = w.iter().map(|b| format!("{b:02x}")).collect();
            flat.push(hex.concat().into_bytes());
            flat.push(hex.concat().to_uppercase().into_bytes());
            flat.push(hex.join(":").into_bytes());
            raw.push(w.to_vec());
            raw.push(w[..12].iter().map(u8::to_string).collect::<Vec<_>>().join(", ").into_bytes());
        }
        // The number base64-encoded on its own.
        for shift in 0..3 {
            let b64 = base64(&n[shift..]);
            for k in 0..(b64.len() / 4).saturating_sub(10) {
                flat.push(b64.as_bytes()[4 * k..4 * k + 40].to_vec());
            }
        }
    }
    // The key's DER base64-encoded (a PEM body): a 40-character group covers 30 bytes; keep the
    // groups that cover private bytes only, at each of the three alignments.
    for der in key_ders(key_file) {
        for n in &numbers {
            let Some(at) = find(&der, n) else { continue };
            for shift in 0..3 {
                let b64 = base64(&der[shift..]);
                for k in 0..(b64.len() / 4).saturating_sub(10) {
                    let first = shift + 3 * k;
                    if first >= at && first + 30 <= at + n.len() {
                        flat.push(b64.as_bytes()[4 * k..4 * k + 40].to_vec());
                    }
                }
            }
        }
    }
    KeyNeedles { what: what.to_owned(), flat, raw }
}

/// `text` without white space and without JSON's `\n`, `\r`, `\t` and `\/` escapes.
fn flatten(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match (text[i], text.get(i + 1)) {
            (b'\\', Some(b'n' | b'r' | b't')) => i += 2,
            (b'\\', Some(b'/')) => i += 1,
            (c, _) if c.is_ascii_whitespace() => i += 1,
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// What of `keys` and `strings` shows up in `haystack`.
fn leaks(haystack: &[u8], keys: &[KeyNeedles], strings: &[(&str, String)]) -> Vec<String> {
    let flat = flatten(haystack);
    let mut found = Vec::new();
    for key in keys {
        if let Some(n) = key
            .flat
            .iter()
            .find(|n| find(&flat, n).is_some())
            .or_else(|| key.raw.iter().find(|n| find(haystack, n).is_some()))
        {
            found.push(format!("{} ({})", key.what, String::from_utf8_lossy(n)));
        }
    }
    for (what, s) in strings {
        if find(haystack, s.as_bytes()).is_some() || find(&flat, &flatten(s.as_bytes())).is_some() {
            found.push(format!("{what} ({s:?})"));
        }
    }
    found
}

// ---- Talking to the camera, keeping every answer ----

/// The body of `curl -i` output (after any `100 Continue`).
fn body_of(text: &[u8]) -> Vec<u8> {
    let mut rest = text;
    loop {
        let Some(end) = find(rest, b"\r\n\r\n") else { return Vec::new() };
        let head = &rest[..end];
        rest = &rest[end + 4..];
        if !head.starts_with(b"HTTP/1.1 100") {
            return rest.to_vec();
        }
    }
}

/// The value of a response header in `curl -i` output.
fn header(text: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(text);
    let name = format!("{}:", name.to_ascii_lowercase());
    text.split("\r\n\r\n")
        .find(|head| !head.starts_with("HTTP/1.1 100"))
        .unwrap_or("")
        .lines()
        .find_map(|line| line.to_ascii_lowercase().starts_with(&name).then(|| line[name.len()..].trim().to_owned()))
}

/// Every request made and the whole answer to it (status line, headers, body).
struct Recorder<'a> {
    cam: &'a Camera,
    /// The CA certificates curl trusts: the camera's and the installer's (uploads are served).
    trust: PathBuf,
    seen: Vec<(String, Vec<u8>)>,
}

impl Recorder<'_> {
    fn call(&mut self, what: &str, args: &[&str]) -> (u16, Vec<u8>) {
        let mut all = vec!["-i"];
        all.extend_from_slice(args);
        let (status, text) = curl_with_ca(&self.trust, &all);
        let body = body_of(&text);
        self.seen.push((what.to_owned(), text));
        (status, body)
    }

    fn json(&mut self, what: &str, args: &[&str]) -> (u16, Value) {
        let (status, body) = self.call(what, args);
        let value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("{what}: not JSON ({status}): {}", String::from_utf8_lossy(&body)));
        (status, value)
    }

    /// An upload that must be refused with `code`; its message must be a sentence.
    fn refused(&mut self, what: &str, status: u16, code: &str, args: &[&str]) {
        let (got, body) = self.json(what, args);
        assert_eq!((got, body["error"].as_str()), (status, Some(code)), "{what}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| m.len() > 20), "{what}: {body}");
    }

    /// Every GET route (and HEAD, an unknown path, plain HTTP), anonymous and with the session.
    fn every_get(&mut self, when: &str, jar: &str) {
        let cam = self.cam;
        for path in [
            "/",
            "/index.html",
            "/app.js",
            "/app.css",
            "/cacert.crt",
            "/cacert.crt?format=der",
            "/api/v1/session",
            "/api/v1/certificate",
            "/api/v1/csr",
            "/nothing",
        ] {
            self.call(&format!("{when}: GET {path}"), &[&cam.url(path)]);
        }
        self.call(
            &format!("{when}: GET /api/v1/session with the session cookie"),
            &["-b", jar, &cam.url("/api/v1/session")],
        );
        self.call(
            &format!("{when}: GET /api/v1/certificate with the session cookie"),
            &["-b", jar, &cam.url("/api/v1/certificate")],
        );
        self.call(&format!("{when}: HEAD /cacert.crt"), &["-I", &cam.url("/cacert.crt")]);
        for path in ["/", "/cacert.crt", "/api/v1/certificate"] {
            self.call(&format!("{when}: plain HTTP GET {path}"), &[&format!("http://{}{path}", cam.http)]);
        }
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o7777
}

/// Installer material in `d`: an installer CA; an RSA key and certificate for 127.0.0.1 (as installers make them)
/// and the same key encrypted; an EC key and certificate in a PKCS#12 file; a key of nothing.
fn installer_material(d: &Path) {
    installer_ca(d);
    openssl(d, &["genrsa", "-out", "server.key", "2048"]);
    openssl(d, &["req", "-new", "-key", "server.key", "-out", "server.csr", "-subj", "/CN=Secrets Test RSA"]);
    installer_sign(d, "server.csr", "IP:127.0.0.1", "server.crt");
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-in",
            "server.key",
            "-out",
            "server.enc.key",
            "-passout",
            &format!("pass:{PEM_PASS}"),
            "-v2",
            "aes-256-cbc",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=Secrets Test EC",
        ],
    );
    installer_sign(d, "leaf.csr", "IP:127.0.0.1", "leaf.crt");
    openssl(
        d,
        &[
            "pkcs12",
            "-export",
            "-inkey",
            "leaf.key",
            "-in",
            "leaf.crt",
            "-passout",
            &format!("pass:{P12_PASS}"),
            "-out",
            "leaf.p12",
        ],
    );
    openssl(d, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "other.key"]);
    let key = std::fs::read_to_string(d.join("server.key")).unwrap();
    std::fs::write(d.join("half.key"), &key[..key.len() / 2]).unwrap();
}

fn password_json(password: &str) -> String {
    format!(r#"{{"password":"{password}"}}"#)
}

const CSR_REQUEST: &str =
    r#"{"subject":{"CN":"Secrets Test CSR"},"subject_alt_names":["127.0.0.1"],"key_type":"ecdsa-p256"}"#;

/// Logs in; returns the session token (from Set-Cookie) and the CSRF token.
fn login(cam: &Camera) -> (String, String, String) {
    let (status, text) = cam.curl(&["-i", "--json", &password_json(PASSWORD), &cam.url("/api/v1/login")]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&text));
    let cookie = header(&text, "set-cookie").unwrap();
    let token = cookie.strip_prefix("camera_session=").unwrap().split(';').next().unwrap().to_owned();
    let body: Value = serde_json::from_slice(&body_of(&text)).unwrap();
    (token, body["csrf_token"].as_str().unwrap().to_owned(), cookie)
}

fn restore_with(cam: &Camera, token: &str, csrf: &str, extra: &[&str]) -> (u16, Value) {
    let cookie = format!("Cookie: camera_session={token}");
    let csrf = format!("X-CSRF-Token: {csrf}");
    let mut args = vec!["-X", "DELETE", "-H", &cookie, "-H", &csrf];
    args.extend_from_slice(extra);
    let url = cam.url("/api/v1/certificate");
    args.push(&url);
    cam.curl_json(&args)
}

mod keys_never_leave_the_camera {
    use super::*;

    /// The detector itself: a key in PEM, in a JSON string, as hex or as Rust's Debug of its
    /// bytes is found; the certificate (with the same public key) is not a false alarm.
    #[test]
    fn the_leak_detector_finds_keys_in_every_form_and_not_in_certificates() {
        let w = TempDir::new("detector");
        let d = w.path();
        installer_material(d);
        for (key, cert) in [("server.key", "server.crt"), ("leaf.key", "leaf.crt")] {
            let needles = [key_needles(key, &d.join(key))];
            let pem = std::fs::read(d.join(key)).unwrap();
            assert!(!leaks(&pem, &needles, &[]).is_empty(), "{key}: PEM not detected");
            let in_json = serde_json::to_vec(&serde_json::json!({"message": String::from_utf8(pem).unwrap()})).unwrap();
            assert!(!leaks(&in_json, &needles, &[]).is_empty(), "{key}: PEM inside JSON not detected");
            for der in key_ders(&d.join(key)) {
                assert!(
                    !leaks(format!("{der:?}").as_bytes(), &needles, &[]).is_empty(),
                    "{key}: Debug bytes not detected"
                );
                let hex: String = der.iter().map(|b| format!("{b:02X}")).collect();
                assert!(!leaks(hex.as_bytes(), &needles, &[]).is_empty(), "{key}: hex not detected");
                let mut b64 = base64(&der[1..]);
                b64.insert(17, '\n');
                assert!(
                    !leaks(b64.as_bytes(), &needles, &[]).is_empty(),
                    "{key}: base64 at another alignment not detected"
                );
            }
            let cert_pem = std::fs::read(d.join(cert)).unwrap();
            let cert_der =
                run(Command::new("openssl").args(["x509", "-outform", "DER", "-in"]).arg(d.join(cert))).stdout;
            assert_eq!(leaks(&cert_pem, &needles, &[]), Vec::<String>::new(), "{cert}: false alarm");
            assert_eq!(leaks(&cert_der, &needles, &[]), Vec::<String>::new(), "{cert}: false alarm");
        }
    }

    /// A camera with installer material beside it, and a recorder of every answer it gives. What
    /// each route answered, and what the camera logged, is then searched for every private key
    /// there is (the installer's, the camera CA's, the minted server key, a pending request's), the
    /// passphrases, the passwords and their HTTP Basic forms, and the session's tokens.
    struct Visit {
        cam: Camera,
        work: TempDir,
    }

    impl Visit {
        fn start(tag: &str) -> Self {
            let cam = Camera::start();
            let work = TempDir::new(tag);
            installer_material(work.path());
            let mut trust = std::fs::read(cam.ca_path()).unwrap();
            trust.extend(std::fs::read(work.join("rootCA.crt")).unwrap());
            std::fs::write(work.join("trust.pem"), trust).unwrap();
            Self { cam, work }
        }

        fn recorder(&self) -> Recorder<'_> {
            Recorder { cam: &self.cam, trust: self.work.join("trust.pem"), seen: Vec::new() }
        }

        fn file(&self, name: &str) -> String {
            self.work.join(name).display().to_string()
        }

        fn field(&self, name: &str, file: &str) -> String {
            format!("{name}=@{}", self.file(file))
        }

        fn jar(&self) -> String {
            self.file("cookies")
        }

        fn put(&self) -> String {
            self.cam.url("/api/v1/certificate")
        }

        /// First visit: sets the password, logs in in a browser way (cookie jar), and fetches every
        /// GET route with the camera's own certificate. Returns the CSRF token.
        fn first_visit(&self, r: &mut Recorder<'_>) -> String {
            let cam = &self.cam;
            let (status, _) = r.json("setup", &["--json", &password_json(PASSWORD), &cam.url("/api/v1/setup")]);
            assert_eq!(status, 200);
            let (status, body) =
                r.json("login", &["-c", &self.jar(), "--json", &password_json(PASSWORD), &cam.url("/api/v1/login")]);
            assert_eq!(status, 200);
            r.every_get("the camera's own certificate", &self.jar());
            body["csrf_token"].as_str().unwrap().to_owned()
        }

        /// Stops the camera and searches every answer recorded and the whole log for the secrets.
        /// Returns the log, for the checks of what it must say.
        fn assert_nothing_leaked(mut self, seen: Vec<(String, Vec<u8>)>, csrf: &str) -> String {
            let d = self.work.path();
            let mut keys = vec![
                key_needles("the installer's RSA server key", &d.join("server.key")),
                key_needles("the PKCS#12 file's EC key", &d.join("leaf.key")),
                key_needles("the non-matching key", &d.join("other.key")),
                key_needles("the installer CA's key", &d.join("rootCA.key")),
                key_needles("the camera CA's issuing key", &self.cam.dir.path().join("state/issuing-ca.pem")),
                key_needles("the minted server key", &self.cam.dir.path().join("run/server.pem")),
            ];
            if d.join("pending.pem").exists() {
                keys.push(key_needles("the pending request's key", &d.join("pending.pem")));
            }
            let admin = self.cam.admin();
            let basic = |credentials: &str| base64(credentials.as_bytes());
            let strings = [
                ("the admin password", PASSWORD.to_owned()),
                ("a wrong password", WRONG_PASSWORD.to_owned()),
                ("the encrypted key's passphrase", PEM_PASS.to_owned()),
                ("the PKCS#12 passphrase", P12_PASS.to_owned()),
                ("a wrong passphrase", WRONG_PASS.to_owned()),
                ("the admin's HTTP Basic credentials", basic(&admin)),
                ("wrong HTTP Basic credentials", basic(&format!("admin:{WRONG_PASSWORD}"))),
                ("HTTP Basic credentials with a wrong user", basic(&format!("root:{PASSWORD}"))),
            ];
            let mut found = Vec::new();
            for (what, text) in &seen {
                found.extend(leaks(text, &keys, &strings).into_iter().map(|leak| format!("answer to {what}: {leak}")));
            }

            // The whole log (the server stopped, its stderr read to the end), without those, nor
            // the session's tokens.
            let log = self.cam.stop_for_log();
            let (_, login_answer) = seen.iter().find(|(what, _)| what == "login").unwrap();
            let token = header(login_answer, "set-cookie")
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .trim_start_matches("camera_session=")
                .to_owned();
            let log_strings: Vec<(&str, String)> = strings
                .iter()
                .cloned()
                .chain([("the session token", token), ("the CSRF token", csrf.to_owned())])
                .collect();
            found.extend(leaks(log.as_bytes(), &keys, &log_strings).into_iter().map(|leak| format!("the log: {leak}")));
            assert!(found.is_empty(), "secrets left the camera:\n{}", found.join("\n"));
            log
        }
    }

    /// Setup, login, logout, and every way to get a password wrong (HTTP Basic with a wrong
    /// password or user, a wrong login, login bodies with an extra field or not JSON, a second
    /// setup): each refusal explains itself, and no answer nor log line holds a password (typed or
    /// as HTTP Basic credentials), a session token or a CSRF token.
    #[test]
    fn account_routes_answer_and_log_no_password_or_token() {
        let visit = Visit::start("secrets-account");
        let cam = &visit.cam;
        let mut r = visit.recorder();
        let csrf = visit.first_visit(&mut r);
        let put = visit.put();
        // One wrong password of each kind (each success after it clears the failure count).
        let wrong_basic = format!("admin:{WRONG_PASSWORD}");
        r.refused(
            "HTTP Basic with a wrong password",
            401,
            "wrong_password",
            &["-u", &wrong_basic, "-X", "DELETE", &put],
        );
        let root_basic = format!("root:{PASSWORD}");
        r.refused(
            "HTTP Basic with the password and a wrong user",
            401,
            "wrong_user",
            &["-u", &root_basic, "-X", "DELETE", &put],
        );
        r.refused(
            "a login with a wrong password",
            401,
            "wrong_password",
            &["--json", &password_json(WRONG_PASSWORD), &cam.url("/api/v1/login")],
        );
        let extra_field = format!(r#"{{"password":"{PASSWORD}","user":"admin"}}"#);
        r.refused(
            "a login body with an extra field",
            400,
            "bad_json",
            &["--json", &extra_field, &cam.url("/api/v1/login")],
        );
        let not_json = format!(r#"{{"password":"{PASSWORD}""#);
        r.refused("a login body that is not JSON", 400, "bad_json", &["--json", &not_json, &cam.url("/api/v1/login")]);
        r.refused(
            "a second setup",
            409,
            "already_set",
            &["--json", &password_json(PASSWORD), &cam.url("/api/v1/setup")],
        );
        let (status, _) = r.json("logout", &["-b", &visit.jar(), "-X", "POST", &cam.url("/api/v1/logout")]);
        assert_eq!(status, 200);
        assert!(r.seen.len() >= 25, "{} answers checked", r.seen.len());
        let seen = r.seen;
        let log = visit.assert_nothing_leaked(seen, &csrf);
        assert!(log.contains("failed login from 127.0.0.1"), "{log}");
    }

    /// `PUT /api/v1/certificate`, accepted (PEM, encrypted PEM, PKCS#12 as a form field and as a
    /// raw body; via HTTP Basic and via the session) and refused (a key that does not match, a
    /// passphrase missing or wrong, a key alone or in the wrong field, a CA, half a key), and every
    /// GET route with the upload served: no answer nor log line holds a private key or a
    /// passphrase, and each refusal explains itself.
    #[test]
    fn certificate_uploads_answer_and_log_no_key_or_passphrase() {
        let visit = Visit::start("secrets-upload");
        let mut r = visit.recorder();
        let csrf = visit.first_visit(&mut r);
        let (admin, put, field) = (visit.cam.admin(), visit.put(), |n: &str, f: &str| visit.field(n, f));
        let csrf_header = format!("X-CSRF-Token: {csrf}");

        let p12_raw = format!("@{}", visit.file("leaf.p12"));
        let accepted: Vec<(&str, Vec<String>)> = vec![
            (
                "PEM certificate and key (HTTP Basic)",
                vec![
                    "-u".into(),
                    admin.clone(),
                    "-F".into(),
                    field("certificate", "server.crt"),
                    "-F".into(),
                    field("key", "server.key"),
                ],
            ),
            (
                "PEM certificate and key (session + CSRF token)",
                vec![
                    "-b".into(),
                    visit.jar(),
                    "-H".into(),
                    csrf_header.clone(),
                    "-F".into(),
                    field("certificate", "server.crt"),
                    "-F".into(),
                    field("key", "server.key"),
                ],
            ),
            (
                "encrypted PKCS#8 key with its passphrase",
                vec![
                    "-u".into(),
                    admin.clone(),
                    "-F".into(),
                    field("certificate", "server.crt"),
                    "-F".into(),
                    field("key", "server.enc.key"),
                    "-F".into(),
                    format!("passphrase={PEM_PASS}"),
                ],
            ),
            (
                "PKCS#12 with its passphrase (form)",
                vec![
                    "-u".into(),
                    admin.clone(),
                    "-F".into(),
                    field("certificate", "leaf.p12"),
                    "-F".into(),
                    format!("passphrase={P12_PASS}"),
                ],
            ),
            (
                "PKCS#12 with its passphrase (raw body, X-Passphrase)",
                vec![
                    "-u".into(),
                    admin.clone(),
                    "-H".into(),
                    "Content-Type: application/x-pkcs12".into(),
                    "-H".into(),
                    format!("X-Passphrase: {P12_PASS}"),
                    "--data-binary".into(),
                    p12_raw.clone(),
                ],
            ),
        ];
        for (what, args) in &accepted {
            let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
            args.extend(["-X", "PUT", &put]);
            let (status, body) = r.json(what, &args);
            assert_eq!(status, 200, "{what}: {body}");
            assert_eq!(body["source"], "uploaded", "{what}: {body}");
        }
        r.every_get("an uploaded certificate served", &visit.jar());

        // Refused uploads: the messages explain without quoting what was sent.
        let u = ["-u", admin.as_str(), "-X", "PUT"];
        let with = |extra: &[&str]| -> Vec<String> { u.iter().chain(extra).map(|s| (*s).to_owned()).collect() };
        let refusals: Vec<(&str, u16, &str, Vec<String>)> = vec![
            (
                "a key that does not match",
                422,
                "key_mismatch",
                with(&["-F", &field("certificate", "server.crt"), "-F", &field("key", "other.key")]),
            ),
            (
                "the encrypted key without its passphrase",
                422,
                "passphrase_required",
                with(&["-F", &field("certificate", "server.crt"), "-F", &field("key", "server.enc.key")]),
            ),
            (
                "the encrypted key with a wrong passphrase",
                422,
                "wrong_passphrase",
                with(&[
                    "-F",
                    &field("certificate", "server.crt"),
                    "-F",
                    &field("key", "server.enc.key"),
                    "-F",
                    &format!("passphrase={WRONG_PASS}"),
                ]),
            ),
            (
                "PKCS#12 with a wrong passphrase (form)",
                422,
                "wrong_passphrase",
                with(&["-F", &field("certificate", "leaf.p12"), "-F", &format!("passphrase={WRONG_PASS}")]),
            ),
            (
                "PKCS#12 with a wrong passphrase (raw body)",
                422,
                "wrong_passphrase",
                with(&[
                    "-H",
                    "Content-Type: application/x-pkcs12",
                    "-H",
                    &format!("X-Passphrase: {WRONG_PASS}"),
                    "--data-binary",
                    &p12_raw,
                ]),
            ),
            ("a key alone", 422, "certificate_missing", with(&["-F", &field("key", "server.key")])),
            (
                "a key in the certificate field",
                422,
                "certificate_missing",
                with(&["-F", &field("certificate", "server.key")]),
            ),
            (
                "a key alone as a raw body",
                422,
                "certificate_missing",
                with(&[
                    "-H",
                    "Content-Type: application/x-pem-file",
                    "--data-binary",
                    &format!("@{}", visit.file("server.key")),
                ]),
            ),
            (
                "the installer's CA certificate with its key",
                422,
                "ca_certificate",
                with(&["-F", &field("certificate", "rootCA.crt"), "-F", &field("key", "rootCA.key")]),
            ),
            ("a key in an unknown form field", 400, "unknown_field", with(&["-F", &field("privkey", "server.key")])),
        ];
        for (what, status, code, args) in &refusals {
            let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
            args.push(&put);
            r.refused(what, *status, code, &args);
        }
        let (status, body) = r.json(
            "half a key",
            &[
                "-u",
                &admin,
                "-X",
                "PUT",
                "-F",
                &field("certificate", "server.crt"),
                "-F",
                &field("key", "half.key"),
                &put,
            ],
        );
        assert_eq!(status, 422, "{body}");
        assert!(r.seen.len() >= 50, "{} answers checked", r.seen.len());
        let seen = r.seen;
        let log = visit.assert_nothing_leaked(seen, &csrf);
        assert!(log.contains("upload refused (wrong_passphrase)"), "{log}");
    }

    /// `POST /api/v1/csr`, every GET route while the request is pending, a certificate for another
    /// key refused, and the request's certificate uploaded without a key and served: the pending
    /// request's key (made on the camera) is in no answer and no log line, nor any other secret.
    #[test]
    fn a_request_made_on_the_camera_answers_and_logs_no_key() {
        let visit = Visit::start("secrets-request");
        let mut r = visit.recorder();
        let csrf = visit.first_visit(&mut r);
        let (cam, d) = (&visit.cam, visit.work.path());
        let (admin, put) = (cam.admin(), visit.put());
        let (status, csr) = r.call("create a request", &["-u", &admin, "--json", CSR_REQUEST, &cam.url("/api/v1/csr")]);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&csr));
        std::fs::write(d.join("certreq.pem"), &csr).unwrap();
        std::fs::copy(cam.dir.path().join("state/pending-csr.pem"), d.join("pending.pem")).unwrap();
        r.every_get("a request pending", &visit.jar());
        r.refused(
            "a certificate for another key, no key",
            422,
            "not_for_this_camera",
            &["-u", &admin, "-X", "PUT", "-F", &visit.field("certificate", "server.crt"), &put],
        );
        installer_sign(d, "certreq.pem", "IP:127.0.0.1", "signed.crt");
        let (status, body) = r.json(
            "the request's certificate",
            &["-u", &admin, "-X", "PUT", "-F", &visit.field("certificate", "signed.crt"), &put],
        );
        assert_eq!((status, &body["key_from_pending_csr"]), (200, &Value::Bool(true)), "{body}");
        r.every_get("the request's certificate served", &visit.jar());
        assert!(r.seen.len() >= 53, "{} answers checked", r.seen.len());
        let seen = r.seen;
        visit.assert_nothing_leaked(seen, &csrf);
    }

    /// `DELETE /api/v1/certificate` (restore), by script (HTTP Basic) and from the page (session
    /// and CSRF token), and every GET route after it: no answer nor log line holds a key or a
    /// password, and the restore is logged.
    #[test]
    fn restores_answer_and_log_no_key() {
        let visit = Visit::start("secrets-restore");
        let mut r = visit.recorder();
        let csrf = visit.first_visit(&mut r);
        let (admin, put) = (visit.cam.admin(), visit.put());
        let csrf_header = format!("X-CSRF-Token: {csrf}");
        let (status, body) = r.json(
            "an upload to restore from",
            &[
                "-u",
                &admin,
                "-F",
                &visit.field("certificate", "server.crt"),
                "-F",
                &visit.field("key", "server.key"),
                "-X",
                "PUT",
                &put,
            ],
        );
        assert_eq!(status, 200, "{body}");
        let (status, _) = r.json("restore (HTTP Basic)", &["-u", &admin, "-X", "DELETE", &put]);
        assert_eq!(status, 200);
        let (status, _) =
            r.json("restore (session + CSRF token)", &["-b", &visit.jar(), "-H", &csrf_header, "-X", "DELETE", &put]);
        assert_eq!(status, 200);
        r.every_get("restored", &visit.jar());
        assert!(r.seen.len() >= 37, "{} answers checked", r.seen.len());
        let seen = r.seen;
        let log = visit.assert_nothing_leaked(seen, &csrf);
        assert!(log.contains("(restore)"), "{log}");
    }

    /// Debug output (what a log line, a panic message or an `unwrap` would print) of every value
    /// that holds a key or a password shows none of it.
    #[test]
    fn debug_output_of_values_holding_keys_or_passwords_shows_none() {
        let w = TempDir::new("debug");
        let d = w.path();
        installer_material(d);
        let layout = camera_state::Layout::new(d.join("state"), d.join("run"));
        let config = camera_config::CameraConfig::default();
        let now = std::time::SystemTime::now();
        let outcome = camera_provision::provision_for(&layout, &config, &["10.0.0.5".parse().unwrap()], now).unwrap();
        let (ca, _) = camera_provision::provision::ensure_ca(&layout, &config, now).unwrap();
        let request = serde_json::from_str(CSR_REQUEST).unwrap();
        let pending = camera_pki::create_csr(&request).unwrap();
        std::fs::write(d.join("pending.pem"), pending.to_bundle_pem().as_bytes()).unwrap();
        let key = camera_pki::SecretKey::from_pkcs8_pem(&std::fs::read(d.join("leaf.key")).unwrap()).unwrap();

        let cert = std::fs::read(d.join("server.crt")).unwrap();
        let server_key = std::fs::read(d.join("server.key")).unwrap();
        let ips = ["127.0.0.1".parse().unwrap()];
        let ctx = camera_upload::Context {
            now,
            pending_key_pkcs8: None,
            current_ips: &ips,
            current_dns: &[],
            purpose: camera_upload::KeyPurpose::TlsServer,
        };
        let accepted = camera_upload::validate_upload(
            &camera_upload::UploadInput { certificate: Some(&cert), key: Some(&server_key), passphrase: None },
            &ctx,
        )
        .unwrap();

        let boundary = "secretsboundary";
        let mut form =
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"key\"; filename=\"server.key\"\r\n\r\n")
                .into_bytes();
        form.extend(&server_key);
        form.extend(format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"passphrase\"\r\n\r\n{PEM_PASS}\r\n--{boundary}--\r\n").as_bytes());
        let parts = camera_web::multipart::parse(&form, boundary, 8).unwrap();
        assert_eq!(parts.len(), 2);
        let body = camera_web::api::PasswordBody { password: PASSWORD.to_owned() };
        let auth = camera_web::auth::Auth::load(&d.join("admin-password.json")).unwrap().with_iterations(1000);
        auth.setup(PASSWORD).unwrap();

        let printed = [
            ("Outcome (minted server certificate and key)", format!("{outcome:?}")),
            ("CameraCa", format!("{ca:?}")),
            ("PendingCsr", format!("{pending:?}")),
            ("SecretKey", format!("{key:?}")),
            ("Accepted upload", format!("{accepted:?}")),
            ("multipart parts", format!("{parts:?}")),
            ("PasswordBody", format!("{body:?}")),
            ("Auth", format!("{auth:?}")),
        ];
        let keys = [
            key_needles("the minted server key", &layout.minted_bundle()),
            key_needles("the camera CA's issuing key", &layout.issuing_ca()),
            key_needles("the pending request's key", &d.join("pending.pem")),
            key_needles("the EC key", &d.join("leaf.key")),
            key_needles("the uploaded RSA key", &d.join("server.key")),
        ];
        let strings = [("the password", PASSWORD.to_owned()), ("the passphrase", PEM_PASS.to_owned())];
        let mut found = Vec::new();
        for (what, text) in &printed {
            assert!(!text.contains("PRIVATE KEY"), "{what}: {text}");
            found.extend(leaks(text.as_bytes(), &keys, &strings).into_iter().map(|leak| format!("{what}: {leak}")));
        }
        assert!(found.is_empty(), "Debug output shows secrets:\n{}", found.join("\n"));
    }
}

mod files {
    use super::*;

    /// After setup, a CSR and an upload, every file that holds a secret (a PRIVATE KEY block, or
    /// the password hash) is 0600, and the state and run directories are 0700. The CA
    /// certificate is public (0644).
    #[test]
    fn secrets_on_disk_are_owner_only_and_so_are_their_directories() {
        let cam = Camera::start();
        cam.setup();
        let (status, _) = cam.curl(&["-u", &cam.admin(), "--json", CSR_REQUEST, &cam.url("/api/v1/csr")]);
        assert_eq!(status, 200);
        let w = TempDir::new("modes");
        installer_material(w.path());
        let cert = format!("certificate=@{}", w.path().join("server.crt").display());
        let key = format!("key=@{}", w.path().join("server.key").display());
        let (status, body) =
            cam.curl_json(&["-u", &cam.admin(), "-X", "PUT", "-F", &cert, "-F", &key, &cam.url("/api/v1/certificate")]);
        assert_eq!(status, 200, "{body}");

        let state = cam.dir.path().join("state");
        let run_dir = cam.dir.path().join("run");
        assert_eq!(mode(&state), 0o700, "the state dir");
        assert_eq!(mode(&run_dir), 0o700, "the run dir");
        let expected: Vec<PathBuf> = ["issuing-ca.pem", "uploaded.pem", "pending-csr.pem", "admin-password.json"]
            .iter()
            .map(|name| state.join(name))
            .chain([run_dir.join("server.pem")])
            .collect();
        for path in &expected {
            assert_eq!(mode(path), 0o600, "{}", path.display());
        }
        assert_eq!(mode(&state.join("ca.crt")), 0o644, "cacert.crt is public");

        // Nothing else holds a secret, and nothing holding one is wider than 0600.
        let mut holding = Vec::new();
        for dir in [&state, &run_dir] {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    assert_eq!(mode(&path) & 0o077, 0, "{}", path.display());
                    continue;
                }
                let text = std::fs::read(&path).unwrap();
                if find(&text, b"PRIVATE KEY").is_some() || find(&text, b"pbkdf2").is_some() {
                    assert_eq!(mode(&path), 0o600, "{}", path.display());
                    holding.push(path);
                }
            }
        }
        holding.sort();
        let mut expected = expected;
        expected.sort();
        assert_eq!(holding, expected, "the files that hold secrets");
    }
}

mod sessions {
    use super::*;

    /// Set-Cookie is HttpOnly, Secure, SameSite=Strict, for the whole site, for at most 12 hours;
    /// session and CSRF tokens are 256-bit random values, new at each login; logout clears the cookie.
    #[test]
    fn the_session_cookie_is_httponly_secure_strict_and_its_tokens_are_random() {
        let cam = Camera::start();
        cam.setup();
        let (token, csrf, cookie) = login(&cam);
        let attributes: Vec<&str> = cookie.split(';').skip(1).map(str::trim).collect();
        for wanted in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
            assert!(attributes.contains(&wanted), "{wanted} missing: {cookie}");
        }
        for t in [&token, &csrf] {
            assert!(t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()), "not 32 random bytes in hex: {t}");
        }
        assert_ne!(token, csrf);
        let (token2, csrf2, _) = login(&cam);
        assert!(token2 != token && csrf2 != csrf, "each login makes new tokens");
        let (_, text) = cam.curl(&[
            "-i",
            "-X",
            "POST",
            "-H",
            &format!("Cookie: camera_session={token}"),
            &cam.url("/api/v1/logout"),
        ]);
        let cleared = header(&text, "set-cookie").unwrap();
        assert!(cleared.starts_with("camera_session=;") && cleared.contains("Max-Age=0"), "{cleared}");
    }

    /// Logout ends the session on the camera: the same cookie and CSRF token replayed afterwards
    /// are refused (a copy of the cookie kept by someone else is worthless too). Other sessions go on.
    #[test]
    fn logout_ends_the_session_on_the_camera_not_only_in_the_browser() {
        let cam = Camera::start();
        cam.setup();
        let (token, csrf, _) = login(&cam);
        let (other_token, other_csrf, _) = login(&cam);
        assert_eq!(restore_with(&cam, &token, &csrf, &[]).0, 200);
        let (status, _) = cam.curl_json(&[
            "-X",
            "POST",
            "-H",
            &format!("Cookie: camera_session={token}"),
            &cam.url("/api/v1/logout"),
        ]);
        assert_eq!(status, 200);
        let (status, body) = restore_with(&cam, &token, &csrf, &[]);
        assert_eq!((status, body["error"].as_str()), (401, Some("session_expired")), "{body}");
        let (_, session) =
            cam.curl_json(&["-H", &format!("Cookie: camera_session={token}"), &cam.url("/api/v1/session")]);
        assert_eq!((&session["logged_in"], &session["csrf_token"]), (&Value::Bool(false), &Value::Null), "{session}");
        assert_eq!(restore_with(&cam, &other_token, &other_csrf, &[]).0, 200, "another session is not ended");
    }

    /// Sessions live in the server's memory only: a restart ends every one of them.
    #[test]
    fn a_restart_ends_every_session() {
        let cam = Camera::start();
        cam.setup();
        let (token, csrf, _) = login(&cam);
        assert_eq!(restore_with(&cam, &token, &csrf, &[]).0, 200);
        let cam = Camera::start_in(cam.stop(), r#"{"camera": {"loopback": true}}"#);
        let (status, body) = restore_with(&cam, &token, &csrf, &[]);
        assert_eq!((status, body["error"].as_str()), (401, Some("session_expired")), "{body}");
        let state = std::fs::read_dir(cam.dir.path().join("state")).unwrap();
        for entry in state {
            let text = std::fs::read(entry.unwrap().path()).unwrap_or_default();
            assert!(
                find(&text, token.as_bytes()).is_none() && find(&text, csrf.as_bytes()).is_none(),
                "a token was written to disk"
            );
        }
    }

    /// A CSRF token works with its own session only; a forged cookie is refused; a valid cookie
    /// with its token is still refused when the browser says the request comes from another site,
    /// and JSON routes still need application/json. No answer allows cross-origin reading (CORS).
    #[test]
    fn a_csrf_token_works_with_its_own_session_only_and_never_cross_site() {
        let cam = Camera::start();
        cam.setup();
        let (token, csrf, _) = login(&cam);
        let (other_token, other_csrf, _) = login(&cam);
        let (status, body) = restore_with(&cam, &token, &other_csrf, &[]);
        assert_eq!((status, body["error"].as_str()), (403, Some("csrf")), "another session's token: {body}");
        let (status, body) = restore_with(&cam, &other_token, &csrf, &[]);
        assert_eq!((status, body["error"].as_str()), (403, Some("csrf")), "{body}");
        let (status, body) = restore_with(&cam, &"ab".repeat(32), &csrf, &[]);
        assert_eq!((status, body["error"].as_str()), (401, Some("session_expired")), "a forged cookie: {body}");
        let (status, _) = restore_with(&cam, &token, "", &[]);
        assert_eq!(status, 403, "an empty token");

        let own_origin = format!("Origin: https://{}", cam.https);
        for headers in [
            vec!["Sec-Fetch-Site: cross-site"],
            vec!["Sec-Fetch-Site: same-site"],
            vec!["Origin: https://evil.example"],
            vec!["Origin: null"],
            vec![&format!("Origin: http://{}", cam.https)],
            vec!["Sec-Fetch-Site: cross-site", &own_origin],
        ] {
            let extra: Vec<&str> = headers.iter().flat_map(|h| ["-H", *h]).collect();
            let (status, body) = restore_with(&cam, &token, &csrf, &extra);
            assert_eq!((status, body["error"].as_str()), (403, Some("cross_site")), "{headers:?}: {body}");
            // A browser that cached HTTP Basic credentials is refused the same way.
            let mut args = vec!["-u", Box::leak(cam.admin().into_boxed_str()) as &str, "-X", "DELETE"];
            args.extend(&extra);
            let url = cam.url("/api/v1/certificate");
            args.push(&url);
            let (status, body) = cam.curl_json(&args);
            assert_eq!((status, body["error"].as_str()), (403, Some("cross_site")), "HTTP Basic, {headers:?}: {body}");
        }
        // A form can only send text/plain, urlencoded or multipart: JSON routes refuse those.
        let cookie = format!("Cookie: camera_session={token}");
        let csrf_header = format!("X-CSRF-Token: {csrf}");
        let (status, body) = cam.curl_json(&[
            "-H",
            &cookie,
            "-H",
            &csrf_header,
            "-H",
            "Content-Type: text/plain",
            "-d",
            CSR_REQUEST,
            &cam.url("/api/v1/csr"),
        ]);
        assert_eq!((status, body["error"].as_str()), (415, Some("json_required")), "{body}");
        // The camera's own page.
        let (status, body) =
            restore_with(&cam, &token, &csrf, &["-H", "Sec-Fetch-Site: same-origin", "-H", &own_origin]);
        assert_eq!(status, 200, "{body}");

        for args in [
            vec!["-H", "Origin: https://evil.example", "-H", &cookie, cam.url("/api/v1/session").leak() as &str],
            vec![
                "-X",
                "OPTIONS",
                "-H",
                "Origin: https://evil.example",
                "-H",
                "Access-Control-Request-Method: DELETE",
                cam.url("/api/v1/certificate").leak(),
            ],
        ] {
            let (_, text) = cam.curl(&[&["-i"][..], &args[..]].concat());
            let head = String::from_utf8_lossy(&text).to_ascii_lowercase();
            assert!(!head.contains("access-control-allow"), "{args:?}: {head}");
        }
    }
}

mod passwords {
    use super::*;

    /// admin-password.json holds PBKDF2-HMAC-SHA256 with 200 000 rounds and a 16-byte random salt
    /// (checked by recomputing it with openssl); two cameras with the same password store
    /// different salts and hashes. Before setup there is no password file and no way in.
    #[test]
    fn the_password_is_stored_as_pbkdf2_sha256_200000_rounds_with_a_random_salt() {
        let cams = [Camera::start(), Camera::start()];
        let mut stored = Vec::new();
        for cam in &cams {
            let file = cam.dir.path().join("state/admin-password.json");
            assert!(!file.exists(), "no password before the first visit");
            let (status, body) = cam.curl_json(&["--json", &password_json(PASSWORD), &cam.url("/api/v1/login")]);
            assert_eq!((status, body["error"].as_str()), (403, Some("setup_required")), "{body}");
            cam.setup();
            let json: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
            let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["algorithm", "hash", "iterations", "salt"], "{json}");
            assert_eq!(json["algorithm"], "pbkdf2-hmac-sha256");
            assert_eq!(json["iterations"], 200_000);
            let (salt, hash) = (json["salt"].as_str().unwrap().to_owned(), json["hash"].as_str().unwrap().to_owned());
            assert!(salt.len() == 32 && hash.len() == 64, "16-byte salt, 32-byte hash: {json}");
            let out = run(Command::new("openssl")
                .args(["kdf", "-keylen", "32", "-kdfopt", "digest:SHA256", "-kdfopt"])
                .arg(format!("pass:{PASSWORD}"))
                .args(["-kdfopt", &format!("hexsalt:{salt}"), "-kdfopt", "iter:200000", "PBKDF2"]));
            let recomputed = String::from_utf8(out.stdout).unwrap().trim().replace(':', "").to_ascii_lowercase();
            assert_eq!(recomputed, hash, "openssl's PBKDF2-HMAC-SHA256 gives the stored hash");
            stored.push((salt, hash));
        }
        assert_ne!(stored[0].0, stored[1].0, "salts are random");
        assert_ne!(stored[0].1, stored[1].1, "the same password hashes differently on another camera");
    }

    /// Wrong HTTP Basic passwords count like failed logins: after five, even the right password
    /// waits (429 with Retry-After), and no password is checked meanwhile.
    #[test]
    fn wrong_http_basic_passwords_are_rate_limited_like_logins() {
        let cam = Camera::start();
        cam.setup();
        let wrong = format!("admin:{WRONG_PASSWORD}");
        let url = cam.url("/api/v1/certificate");
        for n in 0..5 {
            let (status, text) = cam.curl(&["-i", "-u", &wrong, "-X", "DELETE", &url]);
            assert_eq!(status, 401, "attempt {n}");
            assert!(header(&text, "www-authenticate").is_some_and(|v| v.starts_with("Basic")), "attempt {n}");
        }
        let (status, text) = cam.curl(&["-i", "-u", &cam.admin(), "-X", "DELETE", &url]);
        assert_eq!(status, 429, "{}", String::from_utf8_lossy(&text));
        let retry: u64 = header(&text, "retry-after").unwrap().parse().unwrap();
        assert!((1..=15 * 60).contains(&retry), "{retry}");
        let body: Value = serde_json::from_slice(&body_of(&text)).unwrap();
        assert_eq!(body["error"], "too_many_attempts");
    }
}

mod plain_http {
    use super::*;

    /// Port 80 only redirects (and serves cacert.crt): a setup, a request, an upload or a restore
    /// sent there changes nothing and sets no cookie, even with the right password.
    #[test]
    fn plain_http_never_accepts_a_change() {
        let cam = Camera::start();
        let http = |path: &str| format!("http://{}{path}", cam.http);
        let (status, text) = cam.curl(&["-i", "--json", &password_json(PASSWORD), &http("/api/v1/setup")]);
        assert_eq!(status, 301);
        assert!(header(&text, "set-cookie").is_none());
        let (_, session) = cam.curl_json(&[&cam.url("/api/v1/session")]);
        assert_eq!(session["password_set"], false, "setup over plain HTTP did nothing");
        cam.setup();
        let w = TempDir::new("http");
        installer_material(w.path());
        let cert = format!("certificate=@{}", w.path().join("server.crt").display());
        let key = format!("key=@{}", w.path().join("server.key").display());
        let admin = cam.admin();
        let before = cam.served_leaf_sha256();
        for args in [
            vec!["-u", &admin, "--json", CSR_REQUEST, http("/api/v1/csr").leak() as &str],
            vec!["-u", &admin, "-X", "PUT", "-F", &cert, "-F", &key, http("/api/v1/certificate").leak()],
            vec!["--json", Box::leak(password_json(PASSWORD).into_boxed_str()), http("/api/v1/login").leak()],
        ] {
            let (status, text) = cam.curl(&[&["-i"][..], &args[..]].concat());
            assert_eq!(status, 301, "{args:?}");
            assert!(header(&text, "set-cookie").is_none(), "{args:?}");
        }
        let (status, _) = cam.curl(&[&cam.url("/api/v1/csr")]);
        assert_eq!(status, 404, "no request was made");
        assert_eq!(cam.served_leaf_sha256(), before, "nothing was uploaded");
        // And a restore over plain HTTP leaves an upload in place.
        let (status, body) =
            cam.curl_json(&["-u", &admin, "-X", "PUT", "-F", &cert, "-F", &key, &cam.url("/api/v1/certificate")]);
        assert_eq!(status, 200, "{body}");
        let (status, _) = cam.curl(&["-u", &admin, "-X", "DELETE", &http("/api/v1/certificate")]);
        assert_eq!(status, 301);
        let (_, info) = curl_with_ca(&w.path().join("rootCA.crt"), &[&cam.url("/api/v1/certificate")]);
        let info: Value = serde_json::from_slice(&info).unwrap();
        assert_eq!(info["source"], "uploaded");
    }
}
