//! Enrollment under a careless or hostile site CA, and under a restless LAN: the camera enrolls
//! because something changed, never in a loop. A scripted ACME CA (https on loopback, inside a
//! private network namespace) issues at once whatever it is asked, but leaves a name out,
//! backdates, or issues 24-second certificates; the tests count its orders and the camera's
//! writes to flash while the camera runs for real (`camera-web`, ports 80 and 443 in the
//! namespace, cam0 with 10.77.0.2/24 and fd77::2/64).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use camera_test_support::netns::{enter_private_netns, ip, NetnsSetup};
use camera_test_support::scripted_acme::{Ari, Asked, Behaviour, ScriptedAcme};
use common::*;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use serde_json::{json, Value};

const CONFIG: &str = r#"{"camera": {"hostname": "testcam"}}"#;

/// A camera enrolled (or enrolling) with the scripted CA.
struct Site {
    camera: Camera,
    ca: ScriptedAcme,
    /// The camera CA and the scripted CA's root: curl follows the switch to the enrolled certificate.
    trust: PathBuf,
}

impl Site {
    fn start(behaviour: Behaviour) -> Self {
        let ca = ScriptedAcme::start(behaviour);
        let camera = Camera::start_listening(TempDir::new("hostile-ca"), CONFIG, "[::]:443", "[::]:80");
        let trust = camera.dir.path().join("trust.pem");
        let mut pem = std::fs::read(camera.ca_path()).unwrap();
        pem.extend(ca.root_pem.as_bytes());
        std::fs::write(&trust, pem).unwrap();
        let site = Self { camera, ca, trust };
        let (status, body) = site.api("POST", "/api/v1/setup", Some(json!({"password": PASSWORD})));
        assert_eq!(status, 200, "{body}");
        site
    }

    fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let admin = format!("admin:{PASSWORD}");
        let url = format!("https://10.77.0.2{path}");
        let mut args = vec!["-u", &admin, "-X", method, &url];
        let body = body.map(|b| b.to_string());
        if let Some(body) = &body {
            args.extend(["-H", "Content-Type: application/json", "-d", body]);
        }
        let (status, answer) = curl_with_ca(&self.trust, &args);
        (status, serde_json::from_slice(&answer).unwrap_or(Value::Null))
    }

    fn get(&self, path: &str) -> Value {
        let (status, body) = self.api("GET", path, None);
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    fn enroll(&self) {
        self.enroll_with(&self.ca);
    }

    fn enroll_with(&self, ca: &ScriptedAcme) {
        let settings = json!({"protocol": "acme", "url": ca.directory, "trust": ca.root_pem});
        let (status, body) = self.api("PUT", "/api/v1/enrollment", Some(settings));
        assert_eq!(status, 200, "{body}");
    }

    fn orders(&self) -> usize {
        self.ca.counts.orders()
    }

    /// Waits for the first attempt to end; returns the enrollment state.
    fn wait_enrolled(&self) -> Value {
        wait_for(Duration::from_secs(30), || {
            let served = self.get("/api/v1/certificate");
            (served["source"] == "enrolled").then_some(served)
        })
        .unwrap_or_else(|| panic!("not enrolled: {}", self.camera.log_text()))
    }

    fn wait_attempt(&self) -> Value {
        wait_for(Duration::from_secs(60), || {
            let state = self.get("/api/v1/enrollment");
            (!state["last_attempt"].is_null() && state["state"] != "working").then_some(state)
        })
        .unwrap_or_else(|| panic!("no attempt ended: {}", self.camera.log_text()))
    }

    /// An installer moving the camera to a second scripted CA (trusted beside the first): `PUT`s
    /// its settings and waits up to 30 s for the served certificate to change from `first`'s;
    /// the new CA when it did.
    fn move_to_new_ca(&self, first: &Value) -> Option<ScriptedAcme> {
        let new_ca = ScriptedAcme::start(Behaviour::default());
        let mut trust = std::fs::read(&self.trust).unwrap();
        trust.extend(new_ca.root_pem.as_bytes());
        std::fs::write(&self.trust, trust).unwrap();
        self.enroll_with(&new_ca);
        wait_for(Duration::from_secs(30), || {
            let served = self.get("/api/v1/certificate");
            (served["certificate"]["sha256"] != first["certificate"]["sha256"]).then_some(())
        })
        .map(|()| new_ca)
    }

    fn events_of(&self, kind: &str) -> usize {
        let events = self.get("/api/v1/events");
        events["events"].as_array().unwrap().iter().filter(|e| e["kind"] == kind).count()
    }
}

/// Files replaced in `dir` while `during` runs (every state change is a rename into the
/// directory, each after an fsync): what the camera costs its flash.
fn writes_to(dir: &Path, during: impl FnOnce()) -> Vec<String> {
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK).unwrap();
    inotify.add_watch(dir, AddWatchFlags::IN_MOVED_TO).unwrap();
    during();
    let mut written = Vec::new();
    // Drain what queued up (the descriptor is non-blocking).
    while let Ok(events) = inotify.read_events() {
        written.extend(events.into_iter().filter_map(|e| e.name.map(|n| n.to_string_lossy().into_owned())));
    }
    written
}

/// Runs the camera against `behaviour` for 30 seconds after `PUT`; returns the site, the
/// orders the CA received and the state dir writes in that time.
fn thirty_seconds_against(behaviour: Behaviour) -> (Site, usize, Vec<String>) {
    let site = Site::start(behaviour);
    let state_dir = site.camera.dir.path().join("state");
    let started = Instant::now();
    let written = writes_to(&state_dir, || {
        site.enroll();
        site.wait_attempt();
        std::thread::sleep(Duration::from_secs(30).saturating_sub(started.elapsed()));
    });
    let orders = site.orders();
    (site, orders, written)
}

/// A CA whose template leaves the IPv6 address out (many SCEP/NDES/EJBCA templates filter
/// names): the camera asks once, serves what it got (better than nothing), says which name is
/// missing, and waits the backoff instead of asking again at once. Before, the same 30 seconds
/// gave 1,224 to 1,708 orders, each rewriting uploaded.pem and enrollment.json.
#[test]
fn a_ca_that_leaves_a_name_out_gets_one_order_not_a_loop() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let behaviour = Behaviour { leave_out: Some("fd77::2".into()), ..Behaviour::default() };
    let (site, orders, written) = thirty_seconds_against(behaviour);
    println!("leaves a name out: {orders} orders and {} state-dir writes in 30 s: {written:?}", written.len());
    assert!(orders <= 2, "{orders} orders in 30 s");
    assert!(site.ca.counts.issues()[0].names.contains(&"fd77::2".to_owned()), "the camera asked for it");

    let state = site.get("/api/v1/enrollment");
    let sentence = state["last_attempt"]["message"].as_str().unwrap();
    assert!(sentence.contains("does not name fd77::2") && state["last_attempt"]["ok"] == false, "{state}");
    assert!(state["next_attempt_unix"].as_u64().unwrap() > state["last_attempt"]["at_unix"].as_u64().unwrap() + 30);
    let served = site.get("/api/v1/certificate");
    assert_eq!(served["source"], "enrolled", "the certificate names more than none: {served}");
    assert!(written.iter().filter(|w| *w == "uploaded.pem").count() <= 1, "{written:?}");
    assert!(site.events_of("enrollment_failed") <= 2);
}

/// A CA whose certificate is already past the camera's renewal point when it arrives (a
/// backdated notBefore, or a camera clock running ahead): one order, then the backoff. Before,
/// 845 to 886 orders in 20 seconds.
#[test]
fn a_ca_that_backdates_gets_one_order_not_a_loop() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let day = 86_400;
    let behaviour = Behaviour {
        backdate: Duration::from_secs(300 * day),
        lifetime: Duration::from_secs(365 * day),
        ..Behaviour::default()
    };
    let (site, orders, written) = thirty_seconds_against(behaviour);
    println!("backdates: {orders} orders and {} state-dir writes in 30 s: {written:?}", written.len());
    assert!(orders <= 2, "{orders} orders in 30 s");
    let state = site.get("/api/v1/enrollment");
    let sentence = state["last_attempt"]["message"].as_str().unwrap();
    assert!(sentence.contains("already due for renewal when it arrived"), "{state}");
    assert!(written.iter().filter(|w| *w == "enrollment.json").count() <= 2, "{written:?}");
}

/// Scheduled renewals are never held back by a limit: 24-second certificates from a CA that also
/// leaves a name out (each issuance is "unusable", so the budget and the backoff are in play) are
/// renewed before they expire, for a minute; the camera never falls back to its own certificate,
/// and the CA sees a bounded number of orders.
#[test]
fn short_lived_certificates_from_a_careless_ca_are_renewed_before_they_expire() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let behaviour = Behaviour {
        leave_out: Some("fd77::2".into()),
        backdate: Duration::from_secs(1),
        lifetime: Duration::from_secs(24),
        ari: None,
    };
    let site = Site::start(behaviour);
    site.enroll();
    site.wait_enrolled();
    let watched = Instant::now();
    let mut served = std::collections::BTreeSet::new();
    while watched.elapsed() < Duration::from_secs(60) {
        let now = site.get("/api/v1/certificate");
        assert_eq!(now["source"], "enrolled", "fell back after {:?}: {now}", watched.elapsed());
        served.insert(now["certificate"]["sha256"].as_str().unwrap().to_owned());
        std::thread::sleep(Duration::from_millis(250));
    }
    let orders = site.orders();
    println!("24-second certificates for 60 s: {} served, {orders} orders", served.len());
    assert!(served.len() >= 3, "renewed {} times in 60 s", served.len() - 1);
    assert!(orders <= 15, "{orders} orders in 60 s");
    assert_eq!(site.events_of("certificate_expired"), 0);
}

/// Twenty addresses added in ten seconds (router advertisements, a DHCP server flapping) are one
/// change to the camera's names, not twenty enrollments: the camera waits until its addresses
/// settle (at most ten seconds after the first change) and asks once or twice. Before, twenty
/// enrollments.
#[test]
fn address_churn_leads_to_a_few_enrollments_not_one_per_change() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let site = Site::start(Behaviour::default());
    site.enroll();
    site.wait_enrolled();
    let before = site.orders();
    let state_dir = site.camera.dir.path().join("state");
    let written = writes_to(&state_dir, || {
        for i in 10..30 {
            ip(&["addr", "add", &format!("10.77.0.{i}/24"), "dev", "cam0"]);
            std::thread::sleep(Duration::from_millis(500));
        }
        let all_named = wait_for(Duration::from_secs(30), || {
            let names = site.get("/api/v1/certificate")["certificate"]["subject_alt_names"].to_string();
            (10..30).all(|i| names.contains(&format!("\"10.77.0.{i}\""))).then_some(())
        });
        assert!(all_named.is_some(), "the last address was never named: {}", site.get("/api/v1/enrollment"));
    });
    let orders = site.orders() - before;
    println!("20 addresses in 10 s: {orders} orders, {} state-dir writes: {written:?}", written.len());
    assert!((1..=3).contains(&orders), "{orders} orders for one burst of changes");
    assert!(written.iter().filter(|w| *w == "uploaded.pem").count() <= 2, "{written:?}");
}

/// An installer moving a camera to another CA: `PUT` enrolls at once, although the enrolled
/// certificate in service is valid for months (before, nothing happened until its renewal point).
#[test]
fn a_put_enrolls_at_once_over_a_valid_enrolled_certificate() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let site = Site::start(Behaviour::default());
    site.enroll();
    let first = site.wait_enrolled();
    let new_ca = site
        .move_to_new_ca(&first)
        .unwrap_or_else(|| panic!("still the first CA's certificate: {}", site.get("/api/v1/enrollment")));
    assert_eq!(new_ca.counts.issued(), 1);
    assert_eq!(site.ca.counts.orders(), 1, "the first CA was asked once");
}

/// A `PUT` that arrives while the camera is asking its CA for renewal information (a slow answer)
/// is not lost: the attempt runs with the new settings (before, it ran with the settings read
/// before the wait, found them replaced at its end, and installed nothing).
#[test]
fn a_put_during_a_renewal_information_request_enrolls_with_the_new_settings() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let slow = Behaviour {
        ari: Some(Ari { start: 3600, end: 7200, retry_after: None, delay: Duration::from_secs(3) }),
        ..Behaviour::default()
    };
    let site = Site::start(slow);
    site.enroll();
    let first = site.wait_enrolled();
    wait_until("the camera asks for renewal information", Duration::from_secs(10), || {
        site.ca.counts.asked(Asked::RenewalInfo) >= 1
    });
    let new_ca =
        site.move_to_new_ca(&first).unwrap_or_else(|| panic!("the PUT was lost: {}", site.get("/api/v1/enrollment")));
    assert_eq!(new_ca.counts.issued(), 1);
}

/// A CA with renewal information (RFC 9773) suggesting a window 8 to 12 seconds after each
/// certificate is issued: the camera renews inside it (not at its own point, 36 to 45 seconds into
/// these one-minute certificates), says the time came from the CA, and the renewal's order names
/// the certificate it replaces.
#[test]
fn a_cas_renewal_window_is_followed_and_the_order_says_what_it_replaces() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let behaviour = Behaviour {
        backdate: Duration::ZERO,
        lifetime: Duration::from_secs(60),
        ari: Some(Ari { start: 8, end: 12, retry_after: None, delay: Duration::ZERO }),
        ..Behaviour::default()
    };
    let site = Site::start(behaviour);
    site.enroll();
    let first = site.wait_enrolled();
    let issued = first["certificate"]["not_before_unix"].as_u64().unwrap();
    let state = wait_for(Duration::from_secs(10), || {
        let state = site.get("/api/v1/enrollment");
        (state["certificate"]["renewal_source"] == "ari").then_some(state)
    })
    .unwrap_or_else(|| panic!("no renewal time from the CA: {}", site.get("/api/v1/enrollment")));
    let renew_at = state["certificate"]["renew_at_unix"].as_u64().unwrap();
    assert!((issued + 8..=issued + 12).contains(&renew_at), "renews at {renew_at}, issued at {issued}: {state}");
    let renewed = wait_for(Duration::from_secs(30), || {
        let served = site.get("/api/v1/certificate");
        (served["certificate"]["sha256"] != first["certificate"]["sha256"]).then_some(served)
    })
    .unwrap_or_else(|| panic!("not renewed: {}", site.get("/api/v1/enrollment")));
    let renewed_at = renewed["certificate"]["not_before_unix"].as_u64().unwrap();
    println!("issued at {issued}, renewal time {renew_at}, renewed at {renewed_at}");
    assert!((issued + 8..=issued + 14).contains(&renewed_at), "renewed at {renewed_at}, issued at {issued}");
    let replaces = site.ca.counts.replaces();
    let issues = site.ca.counts.issues();
    assert_eq!(replaces[0], None, "the first order replaces nothing");
    assert_eq!(replaces[1], issues[0].cert_id, "{replaces:?} {issues:?}");
    assert_eq!(issues[1].replaces, issues[0].cert_id, "the issue records what it replaced");
    wait_until("the camera asks about its second certificate", Duration::from_secs(10), || {
        site.ca.counts.asked(Asked::RenewalInfo) >= 2
    });
    // The directory is read once per order and once for the first question: later questions go
    // straight to the renewal information URL (one request each, not two).
    let counts = &site.ca.counts;
    assert_eq!(counts.asked(Asked::Directory), site.orders() + 1, "{} questions", counts.asked(Asked::RenewalInfo));
}

/// A CA whose every window is already over (a revocation, an incident): the camera renews at
/// once, once; when the replacement's window is over too, that is a failure with a backoff, not
/// a loop: two orders in 25 seconds.
#[test]
fn a_window_that_is_over_renews_once_not_in_a_loop() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let behaviour = Behaviour {
        lifetime: Duration::from_secs(600),
        // Over an hour ago, as after a revocation: the expiry warning must not take that for a
        // renewal long overdue.
        ari: Some(Ari { start: -7200, end: -3600, retry_after: Some(1), delay: Duration::ZERO }),
        ..Behaviour::default()
    };
    let site = Site::start(behaviour);
    let started = Instant::now();
    site.enroll();
    site.wait_enrolled();
    let twice = wait_for(Duration::from_secs(20), || (site.orders() >= 2).then_some(()));
    assert!(twice.is_some(), "not renewed at once: {}", site.get("/api/v1/enrollment"));
    std::thread::sleep(Duration::from_secs(25).saturating_sub(started.elapsed()));
    let orders = site.orders();
    let polls = site.ca.counts.asked(Asked::RenewalInfo);
    println!("windows over: {orders} orders and {polls} renewal information requests in 25 s");
    assert_eq!(orders, 2, "{}", site.get("/api/v1/enrollment"));
    assert!(polls <= 4, "{polls} renewal information requests (Retry-After 1 s is raised to a minute)");
    let state = site.get("/api/v1/enrollment");
    assert_eq!(state["failures"], 1, "{state}");
    assert!(state["last_attempt"]["message"].as_str().unwrap().contains("over already"), "{state}");
    assert!(state["next_attempt_unix"].as_u64().unwrap() >= state["last_attempt"]["at_unix"].as_u64().unwrap() + 59);
    let replaces = site.ca.counts.replaces();
    assert!(replaces[1].is_some(), "{replaces:?}");
    let served = site.get("/api/v1/certificate");
    let warned: Vec<&Value> = served["expiry"].as_array().unwrap().iter().filter(|e| e["state"] != "ok").collect();
    assert!(warned.is_empty(), "a renewal the CA asked for now is not overdue: {warned:?}");
    assert_eq!(site.events_of("expiry_warning"), 0, "{}", site.get("/api/v1/events"));
}
