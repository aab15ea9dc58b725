//! camera-dot1x against the real wpa_supplicant 2.10 and a switch port (hostapd, wired, its own
//! EAP-TLS server) in a network namespace of its own that really drops the camera's traffic
//! until it authenticates. Each test runs in a private network namespace.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camera_dot1x::{Handle, Notice, Paths, Settings, State, CONF, RECORD};
use camera_test_support::dot1x::{Issued, SitePki, Supplicant, Switch, SwitchSpec, SERVER_NAME};
use camera_test_support::netns::{enter_private_netns, NetnsSetup};
use camera_test_support::{wait_until, TempDir};
use zeroize::Zeroizing;

/// The camera's interface (its end of the veth pair to the switch).
const IF: &str = "eth1";
/// A trial as short as the settings allow.
const TRIAL: u32 = 20;

fn enter() -> bool {
    enter_private_netns(&NetnsSetup::loopback_only())
}

fn start_switch(pki: &SitePki, server: &Issued, reauth_seconds: u32) -> Switch {
    Switch::start(&SwitchSpec {
        camera_if: IF,
        camera_ipv4: "10.66.0.2/24",
        switch_ipv4: "10.66.0.1/24",
        server,
        client_ca_pem: &pki.ca_pem,
        reauth_seconds,
    })
}

/// The camera's side: its 802.1X directory, control directory, and what it notified.
struct Camera {
    dir: TempDir,
    paths: Paths,
    notices: Arc<Mutex<Vec<Notice>>>,
}

impl Camera {
    fn new() -> Self {
        let dir = TempDir::new("dot1x-camera");
        let paths = Paths { dir: dir.join("state/dot1x"), control_dir: dir.join("run/wpa_supplicant") };
        Self { dir, paths, notices: Arc::default() }
    }

    /// camera-web starting: spawns the worker.
    fn spawn(&self) -> Handle {
        let notices = self.notices.clone();
        camera_dot1x::spawn(self.paths.clone(), Box::new(move |notice| notices.lock().unwrap().push(notice)))
    }

    /// wpa_supplicant as the init script starts it, with the configuration file or without.
    fn supplicant(&self, with_conf: bool) -> Supplicant {
        let conf = self.paths.dir.join(CONF);
        Supplicant::start(IF, &self.paths.control_dir, with_conf.then_some(conf.as_path()))
    }

    fn notices(&self) -> Vec<Notice> {
        self.notices.lock().unwrap().clone()
    }

    fn count(&self, kind: &str) -> usize {
        self.notices().iter().filter(|n| n.kind() == kind).count()
    }

    fn conf(&self) -> String {
        std::fs::read_to_string(self.paths.dir.join(CONF)).unwrap_or_default()
    }

    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.paths.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn settings(pki: &SitePki) -> Settings {
    Settings {
        enabled: true,
        interface: IF.to_owned(),
        server_ca_pem: pki.ca_pem.clone(),
        domain_match: Some(SERVER_NAME.to_owned()),
        trial_seconds: TRIAL,
        ..Settings::default()
    }
}

fn credential(client: &Issued) -> Option<Zeroizing<Vec<u8>>> {
    Some(Zeroizing::new(client.bundle_pem().into_bytes()))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A listener on the camera's address: what the network tries to reach.
fn listener(switch: &Switch) -> (TcpListener, u16) {
    let listener = TcpListener::bind((switch.camera_ip(), 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

fn wait_state(handle: &Handle, state: State, within: Duration) {
    let start = Instant::now();
    while handle.view().state != state {
        assert!(start.elapsed() < within, "not {state:?} within {within:?}: {:#?}", handle.view());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn eap_tls_authenticates_and_the_configuration_survives_a_reboot() {
    if !enter() {
        return;
    }
    let pki = SitePki::new();
    // The switch re-authenticates every 3 s: periodic re-authentications must not make notices.
    let switch = start_switch(&pki, &pki.server(SERVER_NAME), 3);
    let (_listener, port) = listener(&switch);
    assert!(!switch.reach(port), "the port is closed before the camera authenticates");
    let camera = Camera::new();
    let mut supplicant = camera.supplicant(false);
    let handle = camera.spawn();
    let client = pki.client("camera-1");
    handle.apply(settings(&pki), credential(&client)).unwrap();

    wait_state(&handle, State::Authenticated, Duration::from_secs(20));
    wait_until("the switch authorizes the port", Duration::from_secs(10), || switch.authorized());
    wait_until("the network reaches the camera", Duration::from_secs(10), || switch.reach(port));
    let view = handle.view();
    assert_eq!(view.in_use_fingerprint, Some(client.sha256()));
    assert_eq!(view.identity.as_deref(), Some("camera-1"));
    assert_eq!(view.server_subject.as_deref(), Some("/CN=radius.site.example"));
    // Only the short trial of these tests deserves a warning (domain_match is set).
    assert_eq!(view.warnings.len(), 1, "{:?}", view.warnings);
    assert!(view.warnings[0].starts_with("trial_seconds is shorter"), "{:?}", view.warnings);
    wait_until("wpa_supplicant's port is authorized", Duration::from_secs(5), || handle.view().port_authorized);
    assert_eq!(switch.client_subjects_seen().last().map(String::as_str), Some("/CN=camera-1"));

    // What the init script starts wpa_supplicant with: the configuration that authenticated.
    let conf = camera.conf();
    assert!(conf.starts_with("# interface=eth1\n"), "the init script's interface line: {conf}");
    for line in [
        "ap_scan=0",
        "eapol_version=1",
        "identity=\"camera-1\"",
        "domain_match=\"radius.site.example\"",
        "eapol_flags=0",
    ] {
        assert!(conf.contains(line), "{line} missing:\n{conf}");
    }
    assert_eq!(mode(&camera.paths.dir), 0o700);
    let files = camera.files();
    let client_file = files.iter().find(|f| f.starts_with("client-")).unwrap();
    assert_eq!(mode(&camera.paths.dir.join(client_file)), 0o600, "the key's file");
    assert!(conf.contains(&format!("private_key=\"{}\"", camera.paths.dir.join(client_file).display())), "{conf}");
    assert_eq!(files.len(), 4, "settings, conf, credential, CA: {files:?}");

    // Re-authentications are coalesced.
    let successes = || switch.log().matches("CTRL-EVENT-EAP-SUCCESS").count();
    let now = successes();
    wait_until("two periodic re-authentications", Duration::from_secs(15), || successes() >= now + 2);
    assert_eq!(camera.count("dot1x_authenticated"), 1, "{:?}", camera.notices());
    assert_eq!(handle.view().state, State::Authenticated);

    // A reboot: everything stops; wpa_supplicant comes up from its configuration file alone.
    drop(handle);
    supplicant.kill();
    let seen = switch.client_subjects_seen().len();
    let fresh = camera.supplicant(true);
    wait_until("the rebooted supplicant authenticates from wpa_supplicant.conf", Duration::from_secs(20), || {
        switch.client_subjects_seen().len() > seen && fresh.cli(&["status"]).contains("suppPortStatus=Authorized")
    });
    let handle = camera.spawn();
    wait_state(&handle, State::Authenticated, Duration::from_secs(10));
    assert!(switch.reach(port));
    assert_eq!(camera.count("dot1x_authenticated"), 1, "a restart finding it authenticated is not news");
    assert_eq!(switch.eapol_logoffs_received(), 0, "{}", switch.log());
}

#[test]
fn a_rogue_authentication_server_is_refused() {
    if !enter() {
        return;
    }
    let pki = SitePki::new();
    // The same name, from a CA the camera does not trust.
    let switch = start_switch(&pki, &pki.rogue_server(SERVER_NAME), 0);
    let (_listener, port) = listener(&switch);
    let camera = Camera::new();
    let _supplicant = camera.supplicant(false);
    let handle = camera.spawn();
    handle.apply(settings(&pki), credential(&pki.client("camera-1"))).unwrap();

    wait_state(&handle, State::Failed, Duration::from_secs(20));
    let view = handle.view();
    let failure = view.last_failure.clone().unwrap();
    assert!(
        failure.contains("certificate (subject '/CN=radius.site.example') is not trusted: unable to get local issuer"),
        "{failure}"
    );
    assert!(view.sentence.contains(&failure), "{}", view.sentence);
    assert!(camera
        .notices()
        .iter()
        .any(|n| matches!(n, Notice::ServerRejected { subject, .. } if subject == "/CN=radius.site.example")));
    assert_eq!(camera.count("dot1x_failed"), 1, "{:?}", camera.notices());
    // No previous success: nothing to go back to, and the configuration stays the one applied.
    assert!(view.trial.is_none());
    assert!(camera.conf().contains("identity=\"camera-1\""));
    std::thread::sleep(Duration::from_secs(2));
    assert!(!switch.authorized() && !switch.reach(port));
    assert!(switch.client_subjects_seen().is_empty(), "the camera's certificate never reached the impostor");
    assert_eq!(switch.eapol_logoffs_received(), 0);
}

#[test]
fn a_client_certificate_the_server_refuses_is_rolled_back_and_not_retried() {
    if !enter() {
        return;
    }
    let pki = SitePki::new();
    let switch = start_switch(&pki, &pki.server(SERVER_NAME), 0);
    let (_listener, port) = listener(&switch);
    let camera = Camera::new();
    let _supplicant = camera.supplicant(false);
    let handle = camera.spawn();
    let good = pki.client("camera-1");
    handle.apply(settings(&pki), credential(&good)).unwrap();
    wait_state(&handle, State::Authenticated, Duration::from_secs(20));
    wait_until("the network reaches the camera", Duration::from_secs(10), || switch.reach(port));
    let good_conf = camera.conf();

    let refused = pki.rogue_client("camera-1");
    let failures = || switch.log().matches("CTRL-EVENT-EAP-FAILURE").count();
    handle.apply(settings(&pki), credential(&refused)).unwrap();
    assert_eq!(handle.view().state, State::Trial);
    assert!(camera.notices().iter().any(|n| matches!(n, Notice::TrialStarted { seconds: TRIAL, .. })));
    assert_eq!(camera.conf(), good_conf, "a trial does not touch wpa_supplicant.conf");
    wait_until("the switch refuses the new certificate", Duration::from_secs(15), || failures() > 0);
    wait_until("the port is closed", Duration::from_secs(10), || !switch.authorized() && !switch.reach(port));

    wait_state(&handle, State::RolledBack, Duration::from_secs(u64::from(TRIAL) + 15));
    let reason = camera
        .notices()
        .iter()
        .find_map(|n| match n {
            Notice::RolledBack { reason } => Some(reason.clone()),
            _ => None,
        })
        .unwrap();
    assert!(reason.contains("refused the camera's client certificate"), "{reason}");
    wait_until("the old certificate opens the port again", Duration::from_secs(20), || {
        switch.authorized() && switch.reach(port)
    });
    assert_eq!(switch.client_subjects_seen().last().map(String::as_str), Some("/CN=camera-1"));
    assert_eq!(camera.conf(), good_conf);
    wait_until("the camera sees itself authenticated again", Duration::from_secs(5), || {
        camera.count("dot1x_authenticated") == 2
    });
    let view = handle.view();
    assert_eq!(view.in_use_fingerprint, Some(good.sha256()));
    assert!(view.sentence.contains(&reason), "{}", view.sentence);
    assert_eq!(view.last_failure.as_deref(), Some(reason.as_str()), "still said once authenticated again");
    assert!(
        !camera.files().iter().any(|f| f.starts_with("client-") && !good_conf.contains(f.as_str())),
        "{:?}",
        camera.files()
    );

    // Never retried on its own.
    let after = failures();
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(failures(), after, "the rolled-back configuration was tried again");
    assert_eq!(handle.view().state, State::RolledBack);
    assert!(switch.authorized());
    assert_eq!(camera.count("dot1x_rolled_back"), 1);
    assert_eq!(switch.eapol_logoffs_received(), 0, "{}", switch.log());
}

#[test]
fn a_restart_during_a_trial_goes_back_to_the_configuration_that_worked() {
    if !enter() {
        return;
    }
    let pki = SitePki::new();
    let switch = start_switch(&pki, &pki.server(SERVER_NAME), 0);
    let (_listener, port) = listener(&switch);
    let camera = Camera::new();
    let supplicant = camera.supplicant(false);
    // hostapd ignores EAPOL-Starts for 5 s after a failure; retry sooner than every 30 s.
    assert_eq!(supplicant.cli(&["set", "EAPOL::startPeriod", "3"]).trim(), "OK");
    let handle = camera.spawn();
    let good = pki.client("camera-1");
    handle.apply(settings(&pki), credential(&good)).unwrap();
    wait_state(&handle, State::Authenticated, Duration::from_secs(20));
    let good_conf = camera.conf();

    let failures = || switch.log().matches("CTRL-EVENT-EAP-FAILURE").count();
    handle.apply(settings(&pki), credential(&pki.rogue_client("camera-1"))).unwrap();
    wait_until("the switch refuses the new certificate", Duration::from_secs(15), || failures() > 0);
    // camera-web restarts in the middle of the trial.
    drop(handle);
    let handle = camera.spawn();
    wait_until("the interrupted trial is reported", Duration::from_secs(5), || {
        camera.count("dot1x_trial_interrupted") == 1
    });
    wait_state(&handle, State::RolledBack, Duration::from_secs(5));
    assert!(handle.view().sentence.contains("interrupted"), "{}", handle.view().sentence);
    wait_until("the old certificate opens the port again", Duration::from_secs(20), || {
        switch.authorized() && switch.reach(port)
    });
    assert_eq!(handle.view().in_use_fingerprint, Some(good.sha256()));
    assert_eq!(camera.conf(), good_conf);
    assert_eq!(camera.files().len(), 4, "the refused credential's file is gone: {:?}", camera.files());
    assert_eq!(switch.eapol_logoffs_received(), 0);
}

#[test]
fn a_renewed_certificate_takes_over_without_closing_the_port() {
    if !enter() {
        return;
    }
    let pki = SitePki::new();
    let switch = start_switch(&pki, &pki.server(SERVER_NAME), 0);
    let (_listener, port) = listener(&switch);
    let camera = Camera::new();
    let supplicant = camera.supplicant(false);
    let handle = camera.spawn();
    handle.apply(settings(&pki), credential(&pki.client("camera-1"))).unwrap();
    wait_state(&handle, State::Authenticated, Duration::from_secs(20));
    wait_until("the network reaches the camera", Duration::from_secs(10), || switch.reach(port));
    let old_files = camera.files();

    // Settings unchanged, a new credential: what camera-web does when the certificate changes.
    let renewed = pki.client("camera-1-renewed");
    handle.apply(settings(&pki), credential(&renewed)).unwrap();
    wait_until("the renewed certificate is in use", Duration::from_secs(20), || {
        let view = handle.view();
        view.state == State::Authenticated && view.in_use_fingerprint == Some(renewed.sha256())
    });
    assert!(switch.client_subjects_seen().iter().any(|s| s == "/CN=camera-1-renewed"), "{}", switch.log());
    assert!(camera.notices().iter().any(|n| matches!(n, Notice::Authenticated { committed: true, .. })));
    assert!(camera.conf().contains("identity=\"camera-1-renewed\""), "the identity follows the certificate's CN");
    let files = camera.files();
    assert_eq!(files.len(), old_files.len(), "the old credential's file is gone: {files:?}");
    assert!(!files.contains(old_files.iter().find(|f| f.starts_with("client-")).unwrap()));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(camera.paths.dir.join(RECORD)).unwrap()).unwrap();
    assert!(record["trial"].is_null(), "{record}");
    assert!(switch.authorized() && switch.reach(port));
    assert!(!switch.gate_log().contains("closed"), "the port closed during the renewal: {}", switch.gate_log());
    assert_eq!(switch.eapol_logoffs_received(), 0);

    // The harness does see a Logoff when one is sent (wpa_cli's, never the camera's), and the port
    // closes for real.
    assert_eq!(supplicant.cli(&["logoff"]).trim(), "OK");
    wait_until("the switch counts the Logoff", Duration::from_secs(5), || switch.eapol_logoffs_received() == 1);
    wait_until("the port closes", Duration::from_secs(5), || !switch.authorized() && !switch.reach(port));
}

#[test]
fn without_wpa_supplicant_settings_are_stored_and_applied_when_it_appears() {
    if !enter() {
        return;
    }
    let pki = SitePki::new();
    let switch = start_switch(&pki, &pki.server(SERVER_NAME), 0);
    let (_listener, port) = listener(&switch);
    let camera = Camera::new();
    let handle = camera.spawn();
    assert_eq!(handle.view().state, State::Off);
    let client = pki.client("camera-1");
    handle.apply(settings(&pki), credential(&client)).unwrap();
    let view = handle.view();
    assert_eq!(view.state, State::NoSupplicant);
    assert!(view.sentence.contains("wpa_supplicant is not running on eth1"), "{}", view.sentence);
    assert!(camera.conf().contains("identity=\"camera-1\""), "stored for the init script");
    wait_until("the missing supplicant is reported", Duration::from_secs(10), || {
        camera.count("dot1x_supplicant_missing") == 1
    });

    // Started like the init script does on a camera that never had a configuration file.
    let supplicant = Supplicant::start(IF, &camera.paths.control_dir, None);
    wait_state(&handle, State::Authenticated, Duration::from_secs(20));
    wait_until("the network reaches the camera", Duration::from_secs(10), || switch.reach(port));
    assert_eq!(camera.count("dot1x_supplicant_back"), 1);
    assert_eq!(camera.count("dot1x_supplicant_missing"), 1);
    assert_eq!(handle.view().in_use_fingerprint, Some(client.sha256()));

    // Turned off: the network leaves wpa_supplicant, without an EAPOL-Logoff (the switch keeps the
    // port open until it re-authenticates), and the files the configuration named go.
    handle.apply(Settings { enabled: false, ..settings(&pki) }, None).unwrap();
    assert_eq!(handle.view().state, State::Off);
    assert_eq!(supplicant.cli(&["list_networks"]).lines().count(), 1, "only the header");
    assert!(!camera.conf().contains("network="), "{}", camera.conf());
    assert_eq!(camera.files(), [RECORD, CONF]);
    std::thread::sleep(Duration::from_secs(1));
    assert!(switch.authorized());
    assert_eq!(switch.eapol_logoffs_received(), 0, "{}", switch.log());
    assert!(camera.dir.path().exists());
}
