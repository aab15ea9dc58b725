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
use camera_test_support::dot1x::{Issued, SitePki, Supplicant, Switch, SwitchSpec, SERVER_NAME, SWITCH_IF};
use camera_test_support::netns::{enter_private_netns, NetnsSetup};
use camera_test_support::{wait_until, TempDir};
use zeroize::Zeroizing;

/// The camera's interface (its end of the veth pair to the switch).
const IF: &str = "eth1";
/// A trial as short as the settings allow.
const TRIAL: u32 = 20;

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

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// wpa_supplicant when camera-web starts.
enum Wpa {
    /// Not running (yet).
    Absent,
    /// Running, as the init script starts it without a configuration file.
    Running,
    /// Running, and sending EAPOL-Start every 3 s rather than every 30 s: hostapd ignores
    /// EAPOL-Starts for 5 s after a failure; retry sooner.
    RetryingSooner,
}

/// One test's world: the site's PKI, the switch, a listener on the camera's address, the camera
/// and camera-web's worker (spawned, nothing applied yet). Fields drop in the order they are
/// declared: camera-web, wpa_supplicant, the camera's files, the listener, the switch.
struct Rig {
    handle: Handle,
    supplicant: Option<Supplicant>,
    camera: Camera,
    _listener: TcpListener,
    /// The listener's port: what the network tries to reach.
    port: u16,
    switch: Switch,
    pki: SitePki,
    /// The camera's first client certificate, "camera-1" from the site's CA.
    client: Issued,
}

impl Rig {
    /// In a private network namespace (`None` when one cannot be had: the test is skipped), a
    /// switch authenticating with `server`'s certificate for `SERVER_NAME`, re-authenticating
    /// every `reauth_seconds` (0: never).
    fn new(server: fn(&SitePki, &str) -> Issued, reauth_seconds: u32, wpa: Wpa) -> Option<Self> {
        if !enter_private_netns(&NetnsSetup::loopback_only()) {
            return None;
        }
        let pki = SitePki::new();
        let client = pki.client("camera-1");
        let switch = Switch::start(&SwitchSpec {
            camera_if: IF,
            camera_ipv4: "10.66.0.2/24",
            switch_ipv4: "10.66.0.1/24",
            server: &server(&pki, SERVER_NAME),
            client_ca_pem: &pki.ca_pem,
            reauth_seconds,
        });
        let listener = TcpListener::bind((switch.camera_ip(), 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let camera = Camera::new();
        let supplicant = match wpa {
            Wpa::Absent => None,
            Wpa::Running => Some(camera.supplicant(false)),
            Wpa::RetryingSooner => {
                let supplicant = camera.supplicant(false);
                assert_eq!(supplicant.cli(&["set", "EAPOL::startPeriod", "3"]).trim(), "OK");
                Some(supplicant)
            }
        };
        let handle = camera.spawn();
        Some(Self { handle, supplicant, camera, _listener: listener, port, switch, pki, client })
    }

    fn supplicant(&self) -> &Supplicant {
        self.supplicant.as_ref().unwrap()
    }

    /// What camera-web does with the settings of these tests and `client`'s credential.
    fn apply(&self, client: &Issued) {
        let credential = Zeroizing::new(client.bundle_pem().into_bytes());
        self.handle.apply(settings(&self.pki), Some(credential)).unwrap();
    }

    fn wait_state(&self, state: State, within: Duration) {
        let start = Instant::now();
        while self.handle.view().state != state {
            assert!(start.elapsed() < within, "not {state:?} within {within:?}: {:#?}", self.handle.view());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_authenticated(&self) {
        self.wait_state(State::Authenticated, Duration::from_secs(20));
    }

    fn wait_reachable(&self) {
        wait_until("the network reaches the camera", Duration::from_secs(10), || self.switch.reach(self.port));
    }

    /// After a refused change: the certificate that worked authenticates again.
    fn wait_open_again(&self) {
        wait_until("the old certificate opens the port again", Duration::from_secs(20), || self.open());
    }

    fn wait_refused(&self) {
        wait_until("the switch refuses the new certificate", Duration::from_secs(15), || self.eap_failures() > 0);
    }

    /// The switch's port is authorized and the network reaches the camera.
    fn open(&self) -> bool {
        self.switch.authorized() && self.switch.reach(self.port)
    }

    /// The switch's port is unauthorized and the network does not reach the camera.
    fn closed(&self) -> bool {
        !self.switch.authorized() && !self.switch.reach(self.port)
    }

    fn eap_successes(&self) -> usize {
        self.switch.log().matches("CTRL-EVENT-EAP-SUCCESS").count()
    }

    fn eap_failures(&self) -> usize {
        self.switch.log().matches("CTRL-EVENT-EAP-FAILURE").count()
    }

    /// The subject of the last client certificate the switch saw.
    fn last_client_seen(&self) -> Option<String> {
        self.switch.client_subjects_seen().pop()
    }

    /// The camera never sent an EAPOL-Logoff.
    fn assert_no_logoff(&self) {
        assert_eq!(self.switch.eapol_logoffs_received(), 0, "{}", self.switch.log());
    }
}

#[test]
fn eap_tls_authenticates_and_the_configuration_survives_a_reboot() {
    // The switch re-authenticates every 3 s: periodic re-authentications must not make notices.
    let Some(mut rig) = Rig::new(SitePki::server, 3, Wpa::Running) else { return };
    assert!(!rig.switch.reach(rig.port), "the port is closed before the camera authenticates");
    rig.apply(&rig.client);

    rig.wait_authenticated();
    wait_until("the switch authorizes the port", Duration::from_secs(10), || rig.switch.authorized());
    rig.wait_reachable();
    let view = rig.handle.view();
    assert_eq!(view.in_use_fingerprint, Some(rig.client.sha256()));
    assert_eq!(view.identity.as_deref(), Some("camera-1"));
    assert_eq!(view.server_subject.as_deref(), Some("/CN=radius.site.example"));
    // Only the short trial of these tests deserves a warning (domain_match is set).
    assert_eq!(view.warnings.len(), 1, "{:?}", view.warnings);
    assert!(view.warnings[0].starts_with("trial_seconds is shorter"), "{:?}", view.warnings);
    wait_until("wpa_supplicant's port is authorized", Duration::from_secs(5), || rig.handle.view().port_authorized);
    assert_eq!(rig.last_client_seen().as_deref(), Some("/CN=camera-1"));

    // What the init script starts wpa_supplicant with: the configuration that authenticated.
    let conf = rig.camera.conf();
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
    let dir = &rig.camera.paths.dir;
    assert_eq!(mode(dir), 0o700);
    let files = rig.camera.files();
    let client_file = files.iter().find(|f| f.starts_with("client-")).unwrap();
    assert_eq!(mode(&dir.join(client_file)), 0o600, "the key's file");
    assert!(conf.contains(&format!("private_key=\"{}\"", dir.join(client_file).display())), "{conf}");
    assert_eq!(files.len(), 4, "settings, conf, credential, CA: {files:?}");

    // Re-authentications are coalesced.
    let now = rig.eap_successes();
    wait_until("two periodic re-authentications", Duration::from_secs(15), || rig.eap_successes() >= now + 2);
    assert_eq!(rig.camera.count("dot1x_authenticated"), 1, "{:?}", rig.camera.notices());
    assert_eq!(rig.handle.view().state, State::Authenticated);

    // A reboot: everything stops; wpa_supplicant comes up from its configuration file alone.
    drop(rig.handle);
    rig.supplicant.as_mut().unwrap().kill();
    let seen = rig.switch.client_subjects_seen().len();
    let fresh = rig.camera.supplicant(true);
    wait_until("the rebooted supplicant authenticates from wpa_supplicant.conf", Duration::from_secs(20), || {
        rig.switch.client_subjects_seen().len() > seen && fresh.cli(&["status"]).contains("suppPortStatus=Authorized")
    });
    rig.handle = rig.camera.spawn();
    rig.wait_state(State::Authenticated, Duration::from_secs(10));
    assert!(rig.switch.reach(rig.port));
    assert_eq!(rig.camera.count("dot1x_authenticated"), 1, "a restart finding it authenticated is not news");
    rig.assert_no_logoff();
}

#[test]
fn a_rogue_authentication_server_is_refused() {
    // The same name, from a CA the camera does not trust.
    let Some(rig) = Rig::new(SitePki::rogue_server, 0, Wpa::Running) else { return };
    rig.apply(&rig.client);

    rig.wait_state(State::Failed, Duration::from_secs(20));
    let view = rig.handle.view();
    let failure = view.last_failure.clone().unwrap();
    assert!(
        failure.contains("certificate (subject '/CN=radius.site.example') is not trusted: unable to get local issuer"),
        "{failure}"
    );
    assert!(view.sentence.contains(&failure), "{}", view.sentence);
    assert!(rig
        .camera
        .notices()
        .iter()
        .any(|n| matches!(n, Notice::ServerRejected { subject, .. } if subject == "/CN=radius.site.example")));
    assert_eq!(rig.camera.count("dot1x_failed"), 1, "{:?}", rig.camera.notices());
    // No previous success: nothing to go back to, and the configuration stays the one applied.
    assert!(view.trial.is_none());
    assert!(rig.camera.conf().contains("identity=\"camera-1\""));
    std::thread::sleep(Duration::from_secs(2));
    assert!(rig.closed());
    assert!(rig.switch.client_subjects_seen().is_empty(), "the camera's certificate never reached the impostor");
    rig.assert_no_logoff();
}

#[test]
fn a_client_certificate_the_server_refuses_is_rolled_back_and_not_retried() {
    let Some(rig) = Rig::new(SitePki::server, 0, Wpa::Running) else { return };
    let good = &rig.client;
    rig.apply(good);
    rig.wait_authenticated();
    rig.wait_reachable();
    let good_conf = rig.camera.conf();

    rig.apply(&rig.pki.rogue_client("camera-1"));
    assert_eq!(rig.handle.view().state, State::Trial);
    assert!(rig.camera.notices().iter().any(|n| matches!(n, Notice::TrialStarted { seconds: TRIAL, .. })));
    assert_eq!(rig.camera.conf(), good_conf, "a trial does not touch wpa_supplicant.conf");
    rig.wait_refused();
    wait_until("the port is closed", Duration::from_secs(10), || rig.closed());

    rig.wait_state(State::RolledBack, Duration::from_secs(u64::from(TRIAL) + 15));
    let reason = rig
        .camera
        .notices()
        .iter()
        .find_map(|n| match n {
            Notice::RolledBack { reason } => Some(reason.clone()),
            _ => None,
        })
        .unwrap();
    assert!(reason.contains("refused the camera's client certificate"), "{reason}");
    rig.wait_open_again();
    assert_eq!(rig.last_client_seen().as_deref(), Some("/CN=camera-1"));
    assert_eq!(rig.camera.conf(), good_conf);
    wait_until("the camera sees itself authenticated again", Duration::from_secs(5), || {
        rig.camera.count("dot1x_authenticated") == 2
    });
    let view = rig.handle.view();
    assert_eq!(view.in_use_fingerprint, Some(good.sha256()));
    assert!(view.sentence.contains(&reason), "{}", view.sentence);
    assert_eq!(view.last_failure.as_deref(), Some(reason.as_str()), "still said once authenticated again");
    assert!(
        !rig.camera.files().iter().any(|f| f.starts_with("client-") && !good_conf.contains(f.as_str())),
        "{:?}",
        rig.camera.files()
    );

    // Never retried on its own.
    let after = rig.eap_failures();
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(rig.eap_failures(), after, "the rolled-back configuration was tried again");
    assert_eq!(rig.handle.view().state, State::RolledBack);
    assert!(rig.switch.authorized());
    assert_eq!(rig.camera.count("dot1x_rolled_back"), 1);
    rig.assert_no_logoff();
}

#[test]
fn a_restart_during_a_trial_goes_back_to_the_configuration_that_worked() {
    let Some(mut rig) = Rig::new(SitePki::server, 0, Wpa::RetryingSooner) else { return };
    rig.apply(&rig.client);
    rig.wait_authenticated();
    let good_conf = rig.camera.conf();

    rig.apply(&rig.pki.rogue_client("camera-1"));
    rig.wait_refused();
    // camera-web restarts in the middle of the trial.
    drop(rig.handle);
    rig.handle = rig.camera.spawn();
    wait_until("the interrupted trial is reported", Duration::from_secs(5), || {
        rig.camera.count("dot1x_trial_interrupted") == 1
    });
    rig.wait_state(State::RolledBack, Duration::from_secs(5));
    assert!(rig.handle.view().sentence.contains("interrupted"), "{}", rig.handle.view().sentence);
    rig.wait_open_again();
    assert_eq!(rig.handle.view().in_use_fingerprint, Some(rig.client.sha256()));
    assert_eq!(rig.camera.conf(), good_conf);
    assert_eq!(rig.camera.files().len(), 4, "the refused credential's file is gone: {:?}", rig.camera.files());
    rig.assert_no_logoff();
}

/// An unplugged cable says nothing about a new configuration: while the link is down the trial's
/// clock stands (carrier read in the camera's own namespace), so the camera does not go back
/// however long it stays down. Plugged in again, the camera starts EAP at once (wpa_supplicant
/// alone sits out its held period, and this switch waits for the supplicant), so the trial ends
/// on what the switch said, not on silence.
#[test]
fn the_trial_clock_stands_while_the_link_is_down() {
    let Some(rig) = Rig::new(SitePki::server, 0, Wpa::RetryingSooner) else { return };
    rig.apply(&rig.client);
    rig.wait_authenticated();
    let good_conf = rig.camera.conf();

    rig.switch.run(&["ip", "link", "set", SWITCH_IF, "down"]);
    wait_until("the camera sees its link down", Duration::from_secs(5), || !rig.handle.view().link_up);
    rig.apply(&rig.pki.rogue_client("camera-1"));
    assert_eq!(rig.handle.view().state, State::Trial);
    // Down for longer than the whole trial.
    std::thread::sleep(Duration::from_secs(u64::from(TRIAL) + 5));
    let view = rig.handle.view();
    assert_eq!(view.state, State::Trial, "rolled back while the link was down: {view:#?}");
    let left = view.trial.as_ref().map(|t| t.seconds_left).unwrap_or_default();
    assert!(left + 3 >= u64::from(TRIAL), "{left} s of {TRIAL} left: the clock ran while the link was down");
    assert!(view.sentence.contains("the link is down, so the trial waits"), "{}", view.sentence);
    assert_eq!(rig.camera.count("dot1x_rolled_back"), 0);

    rig.switch.run(&["ip", "link", "set", SWITCH_IF, "up"]);
    rig.wait_refused();
    rig.wait_state(State::RolledBack, Duration::from_secs(u64::from(TRIAL) + 15));
    let reason = rig.handle.view().last_failure.unwrap_or_default();
    assert!(reason.contains("refused the camera's client certificate"), "{reason}");
    rig.wait_open_again();
    assert_eq!(rig.camera.conf(), good_conf);
    assert_eq!(rig.camera.count("dot1x_rolled_back"), 1);
}

/// A damaged settings record (flash gone bad, a half-written file from elsewhere) is not taken for
/// "802.1X off": that would take the network out of wpa_supplicant and close the port. The camera
/// leaves the supplicant authenticated as it is, says why, and settings set again repair it.
#[test]
fn a_damaged_settings_record_leaves_the_port_open_and_is_repaired_by_new_settings() {
    let Some(mut rig) = Rig::new(SitePki::server, 0, Wpa::Running) else { return };
    rig.apply(&rig.client);
    rig.wait_authenticated();
    rig.wait_reachable();
    let good_conf = rig.camera.conf();

    drop(rig.handle);
    std::fs::write(rig.camera.paths.dir.join(RECORD), b"{\"settings\": {\"enab").unwrap();
    rig.handle = rig.camera.spawn();
    rig.wait_state(State::Failed, Duration::from_secs(5));
    let view = rig.handle.view();
    assert!(view.sentence.contains("settings cannot be read"), "{}", view.sentence);
    assert!(view.sentence.contains(RECORD), "names the file: {}", view.sentence);
    std::thread::sleep(Duration::from_secs(3));
    assert!(rig.open(), "the port closed over a damaged record");
    assert_eq!(rig.camera.conf(), good_conf, "wpa_supplicant.conf is left as it is");
    assert_eq!(rig.camera.files().len(), 4, "the files it names are kept: {:?}", rig.camera.files());
    assert!(rig.supplicant().cli(&["status"]).contains("suppPortStatus=Authorized"));

    rig.apply(&rig.client);
    rig.wait_authenticated();
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rig.camera.paths.dir.join(RECORD)).unwrap()).unwrap();
    assert_eq!(record["settings"]["enabled"], true, "the record is whole again: {record}");
    assert_eq!(record["authenticated"]["interface"], IF, "{record}");
    assert!(rig.open());
    rig.assert_no_logoff();
}

#[test]
fn a_renewed_certificate_takes_over_without_closing_the_port() {
    let Some(rig) = Rig::new(SitePki::server, 0, Wpa::Running) else { return };
    rig.apply(&rig.client);
    rig.wait_authenticated();
    rig.wait_reachable();
    let old_files = rig.camera.files();

    // Settings unchanged, a new credential: what camera-web does when the certificate changes.
    let renewed = rig.pki.client("camera-1-renewed");
    rig.apply(&renewed);
    wait_until("the renewed certificate is in use", Duration::from_secs(20), || {
        let view = rig.handle.view();
        view.state == State::Authenticated && view.in_use_fingerprint == Some(renewed.sha256())
    });
    assert!(rig.switch.client_subjects_seen().iter().any(|s| s == "/CN=camera-1-renewed"), "{}", rig.switch.log());
    assert!(rig.camera.notices().iter().any(|n| matches!(n, Notice::Authenticated { committed: true, .. })));
    assert!(rig.camera.conf().contains("identity=\"camera-1-renewed\""), "the identity follows the certificate's CN");
    let files = rig.camera.files();
    assert_eq!(files.len(), old_files.len(), "the old credential's file is gone: {files:?}");
    assert!(!files.contains(old_files.iter().find(|f| f.starts_with("client-")).unwrap()));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rig.camera.paths.dir.join(RECORD)).unwrap()).unwrap();
    assert!(record["trial"].is_null(), "{record}");
    assert!(rig.open());
    assert!(!rig.switch.gate_log().contains("closed"), "the port closed during the renewal: {}", rig.switch.gate_log());
    rig.assert_no_logoff();

    // The harness does see a Logoff when one is sent (wpa_cli's, never the camera's), and the port
    // closes for real.
    assert_eq!(rig.supplicant().cli(&["logoff"]).trim(), "OK");
    wait_until("the switch counts the Logoff", Duration::from_secs(5), || rig.switch.eapol_logoffs_received() == 1);
    wait_until("the port closes", Duration::from_secs(5), || rig.closed());
}

#[test]
fn without_wpa_supplicant_settings_are_stored_and_applied_when_it_appears() {
    let Some(rig) = Rig::new(SitePki::server, 0, Wpa::Absent) else { return };
    assert_eq!(rig.handle.view().state, State::Off);
    rig.apply(&rig.client);
    let view = rig.handle.view();
    assert_eq!(view.state, State::NoSupplicant);
    assert!(view.sentence.contains("wpa_supplicant is not running on eth1"), "{}", view.sentence);
    assert!(rig.camera.conf().contains("identity=\"camera-1\""), "stored for the init script");
    wait_until("the missing supplicant is reported", Duration::from_secs(10), || {
        rig.camera.count("dot1x_supplicant_missing") == 1
    });

    // Started like the init script does on a camera that never had a configuration file.
    let supplicant = Supplicant::start(IF, &rig.camera.paths.control_dir, None);
    rig.wait_authenticated();
    rig.wait_reachable();
    assert_eq!(rig.camera.count("dot1x_supplicant_back"), 1);
    assert_eq!(rig.camera.count("dot1x_supplicant_missing"), 1);
    assert_eq!(rig.handle.view().in_use_fingerprint, Some(rig.client.sha256()));

    // Turned off: the network leaves wpa_supplicant, without an EAPOL-Logoff (the switch keeps the
    // port open until it re-authenticates), and the files the configuration named go.
    rig.handle.apply(Settings { enabled: false, ..settings(&rig.pki) }, None).unwrap();
    assert_eq!(rig.handle.view().state, State::Off);
    assert_eq!(supplicant.cli(&["list_networks"]).lines().count(), 1, "only the header");
    assert!(!rig.camera.conf().contains("network="), "{}", rig.camera.conf());
    assert_eq!(rig.camera.files(), [RECORD, CONF]);
    std::thread::sleep(Duration::from_secs(1));
    assert!(rig.switch.authorized());
    rig.assert_no_logoff();
    assert!(rig.camera.dir.path().exists());
}
