//! 802.1X with the real programs: the camera (camera-web and Debian's wpa_supplicant, started as
//! its init script does) on a switch port that demands EAP-TLS (hostapd as a wired authenticator
//! with its own EAP server, in a namespace of its own, whose port drops the camera's traffic until
//! it is authorized). "Locked out" is real: the camera's HTTPS cannot be reached from the switch.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use camera_test_support::dot1x::{SitePki, Supplicant, Switch, SwitchSpec, SERVER_NAME};
use camera_test_support::netns::{enter_private_netns, NetnsSetup};
use common::scep::ScepServer;
use common::*;
use serde_json::{json, Value};

const CAMERA_IF: &str = "eth1";
const CAMERA_IPV4: &str = "10.66.0.2";
const HTTPS_PORT: u16 = 8443;
/// Long enough for hostapd's answer (it refuses at once), short enough for the test.
const TRIAL_SECONDS: u32 = 20;

/// The camera: camera-web listening on every address, and its supplicant on [`CAMERA_IF`].
struct Site {
    camera: Camera,
    supplicant: Supplicant,
}

impl Site {
    fn start() -> Self {
        let dir = TempDir::new("dot1x-camera");
        let control = dir.run().join("wpa_supplicant");
        std::fs::create_dir_all(&control).unwrap();
        // The init script's order: the supplicant first (idle, no configuration yet), then camera-web.
        let supplicant = Supplicant::start(CAMERA_IF, &control, None);
        let config = r#"{"camera": {"hostname": "testcam", "loopback": true}}"#;
        // On the port's address: the test's own requests stay inside its namespace, the
        // switch's cross the port.
        let https = format!("{CAMERA_IPV4}:{HTTPS_PORT}");
        let http = format!("127.0.0.1:{}", free_port());
        let camera = Camera::start_listening(dir, config, &https, &http);
        camera.setup();
        Self { camera, supplicant }
    }

    fn admin(&self, method: &str, path: &str, extra: &[&str]) -> (u16, Value) {
        let url = self.camera.url(path);
        let mut args = vec!["-u", "", "-X", method];
        let admin = self.camera.admin();
        args[1] = &admin;
        args.extend_from_slice(extra);
        args.push(&url);
        self.camera.curl_json(&args)
    }

    fn upload(&self, bundle_pem: &str) -> Value {
        let work = TempDir::new("dot1x-upload");
        let file = work.join("client.pem");
        std::fs::write(&file, bundle_pem).unwrap();
        let field = format!("certificate=@{}", file.display());
        let (status, body) = self.admin("PUT", "/api/v1/dot1x/certificate", &["-F", &field]);
        assert_eq!(status, 200, "{body}");
        body
    }

    fn configure(&self, server_ca_pem: &str) -> Value {
        let settings = json!({
            "enabled": true, "interface": CAMERA_IF, "server_ca_pem": server_ca_pem,
            "domain_match": SERVER_NAME, "trial_seconds": TRIAL_SECONDS,
        });
        let (status, body) = self.admin("PUT", "/api/v1/dot1x", &["--json", &settings.to_string()]);
        assert_eq!(status, 200, "{body}");
        body
    }

    fn view(&self) -> Value {
        let (status, body) = self.admin("GET", "/api/v1/dot1x", &[]);
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits until the supplicant's state is `state` with the client certificate `fingerprint`.
    fn wait_state(&self, state: &str, fingerprint: Option<&str>, what: &str) -> Value {
        let limit = Duration::from_secs(u64::from(TRIAL_SECONDS) * 2 + 20);
        let mut last = Value::Null;
        let found = wait_for(limit, || {
            last = self.view();
            let s = &last["supplicant"];
            let matches = s["state"] == state && fingerprint.is_none_or(|f| s["in_use_fingerprint"] == f);
            matches.then(|| last.clone())
        });
        found.unwrap_or_else(|| {
            panic!("{what}: not {state} after {limit:?}: {last:#}\nsupplicant:\n{}", self.supplicant.log())
        })
    }

    fn events(&self) -> Vec<Value> {
        let (_, events) = self.admin("GET", "/api/v1/events", &[]);
        events["events"].as_array().unwrap().clone()
    }
}

fn switch_for(server: &camera_test_support::dot1x::Issued, client_ca_pem: &str) -> Switch {
    Switch::start(&SwitchSpec {
        camera_if: CAMERA_IF,
        camera_ipv4: &format!("{CAMERA_IPV4}/24"),
        switch_ipv4: "10.66.0.1/24",
        server,
        client_ca_pem,
        reauth_seconds: 0,
    })
}

/// The port opens for an uploaded certificate; a renewed one re-authenticates while the old one
/// stays in use until then; a certificate the server refuses and a setting that makes the camera
/// refuse the server are each rolled back to what worked, with the reason; HTTPS serves the
/// camera's own certificate throughout, and no EAPOL-Logoff ever reaches the switch.
#[test]
fn an_uploaded_certificate_opens_the_port_and_bad_changes_are_rolled_back() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let pki = SitePki::new();
    let server = pki.server(SERVER_NAME);
    let switch = switch_for(&server, &pki.ca_pem);
    let site = Site::start();
    let served = site.camera.served_leaf_sha256();
    assert!(!switch.reach(HTTPS_PORT), "the port is closed before the camera authenticates");

    let first = pki.client("camera-0042");
    site.upload(&first.bundle_pem());
    site.configure(&pki.ca_pem);
    site.wait_state("authenticated", Some(&first.sha256()), "uploaded certificate");
    // wpa_supplicant's PAE follows its EAP success within a moment; the view reads its STATUS.
    let authorized =
        wait_for(Duration::from_secs(5), || site.view()["supplicant"]["port_authorized"].as_bool().filter(|a| *a));
    assert!(authorized.is_some(), "{:#}", site.view());
    assert!(switch.authorized() && switch.reach(HTTPS_PORT), "the switch let the camera in:\n{}", switch.gate_log());
    let conf = site.camera.dir.path().join("state/dot1x/wpa_supplicant.conf");
    let committed = std::fs::read_to_string(&conf).unwrap();

    // Renewal: the new certificate authenticates, and the switch saw it.
    let renewed = pki.client("camera-0042-renewed");
    site.upload(&renewed.bundle_pem());
    site.wait_state("authenticated", Some(&renewed.sha256()), "renewed certificate");
    assert!(
        switch.client_subjects_seen().iter().any(|s| s.contains("camera-0042-renewed")),
        "the authenticator verified the renewed certificate: {:?}",
        switch.client_subjects_seen()
    );
    assert!(switch.reach(HTTPS_PORT));
    let renewed_conf = std::fs::read_to_string(&conf).unwrap();
    assert_ne!(renewed_conf, committed, "the configuration the camera boots with is the renewed one");

    // A certificate the authentication server does not trust: tried, refused, rolled back.
    let refused = pki.rogue_client("camera-0042");
    site.upload(&refused.bundle_pem());
    let view = site.wait_state("rolled_back", Some(&renewed.sha256()), "a refused client certificate");
    let reason = view["supplicant"]["last_failure"].as_str().unwrap_or_default().to_lowercase();
    assert!(reason.contains("certificate"), "the reason says what failed: {view:#}");
    wait_until("the switch lets the camera in again", Duration::from_secs(30), || switch.authorized());
    assert!(switch.reach(HTTPS_PORT), "not locked out by a bad certificate");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), renewed_conf, "the boot configuration is still the good one");

    // The camera told to trust another CA refuses the real server: rolled back too, with its name.
    site.configure(&pki.rogue_ca_pem);
    let view = site.wait_state("rolled_back", Some(&renewed.sha256()), "a server the camera does not trust");
    let reason = view["supplicant"]["last_failure"].as_str().unwrap_or_default();
    assert!(reason.contains("trust") || reason.contains(SERVER_NAME), "the reason names the server: {view:#}");
    wait_until("the switch lets the camera in again", Duration::from_secs(30), || switch.authorized());
    assert!(switch.reach(HTTPS_PORT), "not locked out by a bad setting");

    // Never retried on its own: still rolled back a while later.
    std::thread::sleep(Duration::from_secs(u64::from(TRIAL_SECONDS) / 2));
    assert_eq!(site.view()["supplicant"]["state"], "rolled_back");

    let kinds: Vec<String> = site.events().iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect();
    for kind in ["dot1x_certificate_changed", "dot1x_configured", "dot1x_authenticated", "dot1x_rolled_back"] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in {kinds:?}");
    }
    assert_eq!(site.camera.served_leaf_sha256(), served, "HTTPS is not touched by 802.1X");
    assert_eq!(switch.eapol_logoffs_received(), 0, "the camera never logs off the port");

    // Keys stay in their 0600 files: nothing of them in the log, the events or the answers.
    let answers = format!("{}{:?}{}", site.view(), site.events(), site.camera.log_text());
    for key in [&first, &renewed, &refused].map(|issued| issued.key_pem.clone()) {
        let body = key.lines().find(|l| !l.starts_with("-----")).unwrap();
        assert!(!answers.contains(body), "a client key leaked");
    }
    let dir = site.camera.dir.path().join("state/dot1x");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains("PRIVATE KEY") {
            let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
            assert_eq!(mode & 0o777, 0o600, "{}", path.display());
        }
    }
}

/// The client certificate enrolled by SCEP (micromdm's library issuing 40-second clientAuth
/// certificates) for the `dot1x` role opens the port; the camera renews it by itself before it
/// expires (a RenewalReq signed with the certificate in service), and re-authenticates with the
/// new one while the old one stays in use until then.
#[test]
fn a_scep_enrolled_certificate_opens_the_port_and_is_renewed_by_itself() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let pki = SitePki::new();
    let scep = ScepServer::issuing_client_certificates("dot1x-challenge", 5081, Duration::from_secs(40));
    let server = pki.server(SERVER_NAME);
    // The RADIUS server trusts the CA that SCEP issues from.
    let switch = switch_for(&server, &scep.ca_pem);
    let site = Site::start();

    let enroll = json!({"protocol": "scep", "url": scep.url, "challenge": "dot1x-challenge"});
    let (status, body) = site.admin("PUT", "/api/v1/dot1x/enrollment", &["--json", &enroll.to_string()]);
    assert_eq!(status, 200, "{body}");
    let enrolled = wait_for(Duration::from_secs(60), || {
        let view = site.view();
        view["certificate"]["sha256"].as_str().map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("no 802.1X certificate enrolled: {:#}\n{}", site.view(), scep.log()));
    let view = site.view();
    assert!(view["certificate"]["subject"].as_str().unwrap().contains("testcam"), "named by its host name: {view:#}");
    assert!(site.camera.dir.path().join("state/uploaded.pem").metadata().is_err(), "the HTTPS slot is untouched");

    site.configure(&pki.ca_pem);
    site.wait_state("authenticated", Some(&enrolled), "SCEP-enrolled certificate");
    assert!(switch.reach(HTTPS_PORT));

    // Renewed by the schedule, 60 % to 75 % into its 40 seconds: nobody asks.
    let renewed = wait_for(Duration::from_secs(60), || {
        site.view()["certificate"]["sha256"].as_str().filter(|s| *s != enrolled).map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("not renewed: {:#}\n{}", site.view(), scep.log()));
    site.wait_state("authenticated", Some(&renewed), "renewed SCEP certificate");
    assert!(switch.authorized() && switch.reach(HTTPS_PORT));
    let log = site.camera.log_text();
    assert!(log.contains("RenewalReq"), "a renewal, signed with the certificate in service:\n{log}");
    let kinds: Vec<String> = site.events().iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect();
    assert!(!kinds.iter().any(|k| k == "certificate_expired"), "renewed before it expired: {kinds:?}");
    assert_eq!(switch.eapol_logoffs_received(), 0);
}
