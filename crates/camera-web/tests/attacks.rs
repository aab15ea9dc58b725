//! Attacks on the real `camera-web` binary on loopback, each performed as an attacker would: a
//! setup race, abandoned password checks, keep-alive and idle floods, log forgery, and an
//! enrollment URL pointed at an internal page. Every test here failed on the code before its fix.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::client::{addr, read_response, request, request_keep_alive, runtime, Client};
use common::{wait_for, Camera, TempDir, PASSWORD};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A complete request; the connection is dropped right after it is sent, without reading the
/// answer (what a client that goes away does).
async fn send_and_abandon(client: &Client, from: std::net::Ipv4Addr, head: &str, body: &str) {
    let Ok(mut tls) = client.tls_from(from).await else { return };
    let request = format!(
        "{head}Host: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tls.write_all(request.as_bytes()).await;
    let _ = tls.flush().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
}

fn session(camera: &Camera) -> serde_json::Value {
    camera.curl_json(&[&camera.url("/api/v1/session")]).1
}

/// Whether `password` is the one stored on disk (what counts after a restart).
fn stored_password_is(camera: &Camera, password: &str) -> bool {
    let path = camera.dir.path().join("state/admin-password.json");
    let auth = camera_web::auth::Auth::load(&path).unwrap();
    auth.verify("192.0.2.1".parse::<IpAddr>().unwrap(), password).is_ok()
}

fn setup_as(camera: &Camera, password: &str) -> (u16, serde_json::Value) {
    camera.curl_json(&[
        "-X",
        "POST",
        &camera.url("/api/v1/setup"),
        "-H",
        "Content-Type: application/json",
        "-d",
        &format!(r#"{{"password":"{password}"}}"#),
    ])
}

/// The setup lock must not live in the request: a client that went away released it while its
/// password was still being hashed and written, so the file and the server's memory disagreed and
/// the owner could be told "set" while the attacker's password was on disk.
#[test]
fn an_abandoned_first_run_setup_is_finished_or_not_at_all_never_half() {
    // One abandoned setup: once the file is there, the server must say a password is set.
    let camera = Camera::start();
    let client = Client::new(&camera);
    let body = r#"{"password":"attacker password 0"}"#;
    runtime().block_on(send_and_abandon(&client, addr(0, 0, 66), "POST /api/v1/setup HTTP/1.1\r\n", body));
    let file = camera.dir.path().join("state/admin-password.json");
    assert!(wait_for(Duration::from_secs(20), || file.exists().then_some(())).is_some(), "the setup never finished");
    assert_eq!(session(&camera)["password_set"], true, "the password on disk is not the one in force");
    let (status, answer) = setup_as(&camera, PASSWORD);
    assert_eq!((status, answer["error"].as_str()), (409, Some("already_set")), "{answer}");
    assert!(stored_password_is(&camera, "attacker password 0"));
    drop(camera);

    // The race: 16 abandoned setups, then the owner's. Whatever the owner is told must
    // be what is on disk.
    for trial in 0..3 {
        let camera =
            Camera::start_in(TempDir::new(&format!("setup-race-{trial}")), r#"{"camera": {"loopback": true}}"#);
        let client = Client::new(&camera);
        runtime().block_on(async {
            let attackers = (0..16).map(|n| {
                let client = client.clone();
                let body = format!(r#"{{"password":"attacker password {n}"}}"#);
                tokio::spawn(async move {
                    send_and_abandon(&client, addr(0, 1, n + 1), "POST /api/v1/setup HTTP/1.1\r\n", &body).await;
                })
            });
            for attacker in attackers.collect::<Vec<_>>() {
                attacker.await.unwrap();
            }
        });
        let (status, answer) = setup_as(&camera, PASSWORD);
        match status {
            200 => {
                assert!(
                    stored_password_is(&camera, PASSWORD),
                    "trial {trial}: the owner was told set, the disk disagrees"
                );
            }
            409 => {
                assert!(!stored_password_is(&camera, PASSWORD), "trial {trial}");
                assert_eq!(session(&camera)["password_set"], true);
            }
            other => panic!("trial {trial}: {other} {answer}"),
        }
    }
}

/// The cap of two PBKDF2 checks at once must not be held by the request, or closing the
/// connection freed it while the check went on; 160 abandoned logins from 20 addresses queued 160
/// checks on the blocking pool, ahead of the owner's requests. Now at most two run at once and the
/// rest are refused unchecked. What shows it without a stopwatch: unfixed, the guesses were all
/// checked until every attacker address was blocked by them.
#[test]
fn abandoned_logins_do_not_queue_checks_ahead_of_the_owner() {
    let camera = Camera::start();
    camera.setup();
    let client = Client::new(&camera);
    runtime().block_on(async {
        // Connections first; then, one after another, a guess that is abandoned 2 ms after it is
        // sent (long enough for the server to start checking it).
        let mut connections = Vec::new();
        for n in 0..160u8 {
            connections.push(client.tls_from(addr(0, 2, n % 20 + 1)).await.unwrap());
        }
        let body = r#"{"password":"a wrong guess"}"#;
        let wire = format!(
            "POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        for mut tls in connections {
            tls.write_all(wire.as_bytes()).await.unwrap();
            tls.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let started = std::time::Instant::now();
    let (status, _) = camera.curl(&[&camera.url("/api/v1/certificate")]);
    let took = started.elapsed();
    assert_eq!(status, 200);
    let checked = camera.log_text().matches("failed login from").count();
    println!("the owner's status took {took:?} after 160 abandoned logins; {checked} of them had been checked");
    // Each attacker address logs in with the right password: blocked means its guesses were
    // checked (five failures) although their clients had gone.
    let blocked = runtime().block_on(async {
        let body = format!(r#"{{"password":"{PASSWORD}"}}"#);
        let head = "POST /api/v1/login HTTP/1.1\r\nContent-Type: application/json\r\n";
        let mut blocked = 0;
        for n in 0..20u8 {
            loop {
                let mut tls = client.tls_from(addr(0, 2, n + 1)).await.unwrap();
                match request(&mut tls, head, body.as_bytes()).await.unwrap() {
                    (200, _) => {}
                    (429, answer) if String::from_utf8_lossy(&answer).contains("\"busy\"") => {
                        // Two checks are running (maybe abandoned ones): come back as told.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    (429, answer) if String::from_utf8_lossy(&answer).contains("too_many_attempts") => blocked += 1,
                    (status, answer) => panic!("{status} {}", String::from_utf8_lossy(&answer)),
                }
                break;
            }
        }
        blocked
    });
    // Unfixed, every guess was queued and checked until its address was blocked (measured: 103 of
    // 160 checked). Fixed, a guess is checked only if one of the two slots is free as it arrives
    // (measured: 19 to 27); on a busy machine one address in 20 was seen blocked that way.
    let checked_in_all = camera.log_text().matches("failed login from").count();
    assert!(checked_in_all < 80, "{checked_in_all} of 160 abandoned guesses were checked");
    assert!(blocked < 10, "{blocked} of 20 attacker addresses had their abandoned guesses checked");
}

/// A connection that has sent one request must stay evictable, or 16 addresses x 16
/// keep-alive connections (one IPv6 host alone can be 16 addresses) held all 256 slots and the
/// owner could not connect until they stopped. Keep-alive connections between requests are now
/// idle and evictable, from the client holding the most slots first.
#[test]
fn keep_alive_clients_from_sixteen_addresses_cannot_lock_the_owner_out() {
    let camera = Camera::start();
    let client = Client::new(&camera);
    // The fewest descriptors over a few looks: the server may still hold a transient one (a file
    // it writes at start), and a baseline counted then would exceed what it holds afterwards.
    let baseline = (0..10)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(20));
            descriptors(camera.pid())
        })
        .min()
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Connections that have been opened and have sent a request (the attack's steady state).
    let used = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let attackers: Vec<_> = (0..16u8)
        .map(|a| {
            let (client, stop, used) = (client.clone(), stop.clone(), used.clone());
            std::thread::spawn(move || {
                runtime().block_on(async {
                    let from = addr(0, 3, a + 1);
                    // Every 3 s a request on each of 16 connections; a closed one is opened again
                    // and used at once, as a real client would.
                    let mut held = Vec::new();
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let mut kept = Vec::new();
                        for mut tls in held.drain(..) {
                            if request(&mut tls, "GET /cacert.crt HTTP/1.1\r\n", b"").await.is_ok() {
                                kept.push(tls);
                            }
                        }
                        while kept.len() < 16 {
                            let Ok(mut tls) = client.tls_from(from).await else { break };
                            if request(&mut tls, "GET /cacert.crt HTTP/1.1\r\n", b"").await.is_err() {
                                break;
                            }
                            used.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            kept.push(tls);
                        }
                        held = kept;
                        tokio::time::sleep(Duration::from_secs(3)).await;
                    }
                })
            })
        })
        .collect();
    // Give the attackers time to take every slot, then the owner comes from a 17th address.
    let held = || descriptors(camera.pid()).saturating_sub(baseline);
    // (Descriptors other than connections come and go: a margin of a few.)
    let ready = || (held() >= 250 && used.load(std::sync::atomic::Ordering::SeqCst) >= 256).then_some(());
    assert!(wait_for(Duration::from_secs(30), ready).is_some(), "{} held", held());
    let owner = addr(0, 3, 100);
    let mut answered = 0;
    for _ in 0..20 {
        let outcome = runtime().block_on(async {
            let mut tls = client.tls_from(owner).await?;
            request(&mut tls, "GET /api/v1/session HTTP/1.1\r\n", b"").await
        });
        match outcome {
            Ok((200, _)) => answered += 1,
            other => panic!("the owner was not answered: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for attacker in attackers {
        attacker.join().unwrap();
    }
    assert_eq!(answered, 20);
}

/// The descriptors the server process holds.
fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(Iterator::count).unwrap_or(0)
}

/// No client keeps a slot for ever by never going idle either. After 1000 requests on
/// one keep-alive connection the answer says `Connection: close` and the server closes it.
#[test]
fn a_keep_alive_connection_is_closed_after_a_thousand_requests() {
    let camera = Camera::start();
    let client = Client::new(&camera);
    runtime().block_on(async {
        let mut tls = client.tls_from(addr(0, 4, 1)).await.unwrap();
        for n in 1..=1000 {
            let (status, _, closes) = request_keep_alive(&mut tls, "GET /cacert.crt HTTP/1.1\r\n", b"").await.unwrap();
            assert_eq!(status, 200, "request {n}");
            assert_eq!(closes, n == 1000, "request {n}: Connection: close only on the 1000th answer");
        }
        let after = request(&mut tls, "GET /cacert.crt HTTP/1.1\r\n", b"").await;
        assert!(after.is_err(), "the server closed the connection: {after:?}");
    });
}

/// Beyond the per-address cap (16) a newcomer must not simply be refused, or behind one NAT address,
/// or with a program on the user's PC leaking idle sockets, the user could not reach the camera.
/// At the cap, the address's own longest-idle connection now makes room.
#[test]
fn idle_sockets_from_the_users_own_address_do_not_lock_the_user_out() {
    let camera = Camera::start();
    let client = Client::new(&camera);
    let user = addr(0, 0, 1);
    runtime().block_on(async {
        // Each leaked socket waits for the server to close it; once all but the cap's worth are
        // closed, the server has taken in every one of them, so the user's connection is the newest.
        const LEAKED: usize = 300;
        const PER_CLIENT_CAP: usize = 16;
        let (closed, mut closes) = tokio::sync::mpsc::unbounded_channel();
        let mut idle = Vec::new();
        for _ in 0..LEAKED {
            let mut socket = client.tcp_from(user).await.unwrap();
            let closed = closed.clone();
            idle.push(tokio::spawn(async move {
                let mut byte = [0u8; 1];
                if let Ok(0) | Err(_) = socket.read(&mut byte).await {
                    let _ = closed.send(());
                }
                socket
            }));
        }
        let all_taken_in = tokio::time::timeout(Duration::from_secs(30), async {
            for _ in 0..LEAKED - PER_CLIENT_CAP {
                closes.recv().await;
            }
        })
        .await;
        assert!(all_taken_in.is_ok(), "the server did not close the leaked sockets beyond the per-client cap");
        let mut tls = client.tls_from(user).await.expect("the user's handshake");
        let (status, _) = request(&mut tls, "GET /api/v1/session HTTP/1.1\r\n", b"").await.unwrap();
        assert_eq!(status, 200);
        // The same connection stays usable: it is the newest, the leaked sockets go first.
        tls.write_all(b"GET /cacert.crt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
        let (status, _) = read_response(&mut tls).await.unwrap();
        assert_eq!(status, 200);
        for socket in idle {
            socket.abort();
        }
    });
}

/// A certificate subject holding a line break cannot write a forged line into the log.
/// The installer's CN carries "\ncamera-web: the admin password was set"; the served-certificate
/// line prints the subject, escaped, so the log keeps exactly the one genuine line of that kind.
#[test]
fn a_certificate_subject_cannot_forge_a_log_line() {
    const FORGED: &str = "camera-web: the admin password was set";
    let camera = Camera::start();
    camera.setup();
    let genuine = |log: &str| log.lines().filter(|l| l.starts_with(FORGED)).count();
    // The line may reach the log a moment after the answer: wait for it, then it is there once.
    wait_for(Duration::from_secs(10), || (genuine(&camera.log_text()) > 0).then_some(()));
    assert_eq!(genuine(&camera.log_text()), 1, "setup logs its line once: {}", camera.log_text());

    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Forgery Test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, format!("Installer\n{FORGED}\r\x1b[2K"));
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = params.signed_by(&key, &rcgen::Issuer::from_params(&ca_params, &ca_key)).unwrap();
    let dir = TempDir::new("forgery");
    std::fs::write(dir.path().join("leaf.pem"), leaf.pem() + &ca_cert.pem()).unwrap();
    std::fs::write(dir.path().join("leaf.key"), key.serialize_pem()).unwrap();
    let cert = format!("certificate=@{}", dir.path().join("leaf.pem").display());
    let key = format!("key=@{}", dir.path().join("leaf.key").display());
    let (status, body) = camera.curl_json(&[
        "-u",
        &camera.admin(),
        "-X",
        "PUT",
        "-F",
        &cert,
        "-F",
        &key,
        &camera.url("/api/v1/certificate"),
    ]);
    assert_eq!(status, 200, "{body}");
    let served = wait_for(Duration::from_secs(5), || {
        let log = camera.log_text();
        log.lines().any(|l| l.contains("serving the uploaded certificate")).then_some(log)
    })
    .expect("the upload is logged");
    assert_eq!(genuine(&served), 1, "a forged line got into the log:\n{served}");
    assert!(served.contains("Installer\\ncamera-web: the admin password was set\\r\\x1b[2K"), "{served}");
    assert!(!served.contains('\x1b') && !served.contains('\r'), "control characters reached the log: {served:?}");
}

/// A web server on 127.0.0.1 that answers every request with 200 and an HTML page holding
/// `marker` (an intranet page the camera can reach and the administrator cannot). Its thread
/// lives as long as the test binary.
fn intranet_page(marker: &'static str) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let page = format!(
                "<!doctype html><html><head><title>{marker}</title></head>\n<body><h1>{marker}</h1>\
                 <p>Payroll {marker} salaries</p></body></html>\n"
            );
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    port
}

/// An enrollment URL pointed at a web page on the camera's network: the failure says what kind
/// of answer came (status, content type, length), never what the page says, in the API, the
/// event log (on disk too) and syslog.
#[test]
fn an_enrollment_url_at_a_web_page_never_shows_its_content() {
    const MARKER: &str = "INTRANET-7f3a91c2-PAYROLL";
    let port = intranet_page(MARKER);
    let camera = Camera::start();
    camera.setup();
    let settings = format!(r#"{{"protocol":"scep","url":"http://127.0.0.1:{port}/scep","challenge":"x"}}"#);
    let (status, body) = camera.curl_json(&[
        "-u",
        &camera.admin(),
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/json",
        "-d",
        &settings,
        &camera.url("/api/v1/enrollment"),
    ]);
    assert!(status == 200 || status == 202, "{status} {body}");
    let enrollment = wait_for(Duration::from_secs(60), || {
        let (_, e) = camera.curl_json(&["-u", &camera.admin(), &camera.url("/api/v1/enrollment")]);
        (e["last_attempt"]["ok"] == false).then_some(e)
    })
    .expect("the enrollment attempt fails");
    let answer = enrollment.to_string();
    assert!(!answer.contains(MARKER), "the page reached the API: {answer}");
    // The failure still says what came back.
    assert!(answer.contains("text/html") && answer.contains("bytes"), "{answer}");

    let (_, events) = camera.curl_json(&["-u", &camera.admin(), &camera.url("/api/v1/events?limit=1000")]);
    let events = events.to_string();
    assert!(events.contains("enrollment_failed"), "{events}");
    assert!(!events.contains(MARKER), "the page reached the event log: {events}");
    for entry in std::fs::read_dir(camera.dir.path().join("state")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
                "the page reached {}",
                path.display()
            );
        }
    }
    // The failure is logged (wait for it: the log comes through a pipe), without the page.
    let log = wait_for(Duration::from_secs(10), || {
        let log = camera.log_text();
        log.contains("text/html").then_some(log)
    })
    .unwrap_or_else(|| camera.log_text());
    assert!(!log.contains(MARKER), "the page reached syslog: {log}");
}
