//! The `dot1x` thread: applies settings, keeps wpa_supplicant holding the configuration it
//! should, follows its events and status, runs trials, and publishes a [`View`].

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::conf::{self, ClientFile, ConfError, NetConfig};
use crate::control::{Control, ControlError};
use crate::event::{parse_event, parse_networks, parse_status, Event, Status};
use crate::store::{self, Authenticated, Record, RolledBack, TrialMarker};
use crate::trial::{Observed, Trial, Verdict};
use crate::{ApplyError, Notice, Paths, Settings, State, TrialView, View, OFF};

/// How long the thread waits on the socket (or for a request) per round.
const ROUND: Duration = Duration::from_millis(100);
/// How often `STATUS` and the carrier are read.
const STATUS_EVERY: Duration = Duration::from_secs(2);
/// How often a missing wpa_supplicant is looked for.
const RETRY_EVERY: Duration = Duration::from_secs(2);
/// How long wpa_supplicant may be missing before it is reported (the init script may start it a
/// moment after the web server).
const MISSING_GRACE: Duration = Duration::from_secs(5);
const INTERRUPTED: &str = "a restart interrupted the trial before the new configuration authenticated";

enum Request {
    Apply { settings: Box<Settings>, credential: Option<Zeroizing<Vec<u8>>>, reply: Sender<Result<(), ApplyError>> },
}

/// Talks to the `dot1x` thread. Cloned freely; the last clone's drop stops the thread and waits
/// for it (at most one command's answer), so a new [`spawn`] on the same files never overlaps it.
#[derive(Clone)]
pub struct Handle {
    inner: Arc<Inner>,
}

struct Inner {
    requests: Option<Sender<Request>>,
    view: Arc<Mutex<View>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A closed channel is the thread's signal to end.
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            // Not from the thread itself (a sink holding a handle).
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

// camera-web keeps a Handle in state shared across threads.
const _: fn() = || {
    fn shared<T: Send + Sync + Clone>() {}
    shared::<Handle>();
};

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl Handle {
    /// Applies new settings and/or a new client credential (None: keep the one in use). Checks
    /// them, stores them, writes the files and starts a trial (when there is a configuration to
    /// go back to). Returns once wpa_supplicant was told, or, when it is not running, once
    /// everything is stored (it is told when it appears).
    pub fn apply(&self, settings: Settings, credential: Option<Zeroizing<Vec<u8>>>) -> Result<(), ApplyError> {
        let (reply, answer) = mpsc::channel();
        let requests = self.inner.requests.as_ref().ok_or(ApplyError::Stopped)?;
        requests
            .send(Request::Apply { settings: Box::new(settings), credential, reply })
            .map_err(|_| ApplyError::Stopped)?;
        answer.recv().map_err(|_| ApplyError::Stopped)?
    }

    /// The latest snapshot.
    pub fn view(&self) -> View {
        self.inner.view.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// Starts the `dot1x` thread. The record is read before this returns (so [`Handle::view`] shows
/// the stored settings at once); everything else happens on the thread. `sink` hears every
/// [`Notice`], on that thread: it may read [`Handle::view`] but must not call [`Handle::apply`]
/// (the thread would wait for itself).
pub fn spawn(paths: Paths, sink: Box<dyn Fn(Notice) + Send>) -> Handle {
    let (requests, receiver) = mpsc::channel();
    let mut worker = Worker::new(paths, sink);
    worker.load();
    let view = Arc::new(Mutex::new(worker.view()));
    worker.published = view.clone();
    let thread = match std::thread::Builder::new().name("dot1x".into()).spawn(move || worker.run(receiver)) {
        Ok(thread) => Some(thread),
        Err(e) => {
            camera_log::warn(&format!("camera: 802.1X: cannot start its thread: {e}"));
            None
        }
    };
    Handle { inner: Arc::new(Inner { requests: Some(requests), view, thread }) }
}

/// Why a configuration could not be put into wpa_supplicant.
enum PushError {
    Control(ControlError),
    Conf(ConfError),
}

struct Worker {
    paths: Paths,
    sink: Box<dyn Fn(Notice) + Send>,
    published: Arc<Mutex<View>>,
    record: Record,
    /// The record could not be read: change nothing in wpa_supplicant until an apply.
    record_error: Option<String>,
    control: Option<Control>,
    control_interface: String,
    last_attempt: Option<Instant>,
    missing_since: Option<Instant>,
    missing_reported: bool,
    /// What wpa_supplicant holds over this connection (Some(None): no network); None: unknown.
    in_supplicant: Option<Option<NetConfig>>,
    /// A configuration was changed in wpa_supplicant and EAP not yet restarted with it (a
    /// connection lost half-way): until it is, its PAE state says nothing about what it holds.
    restart_pending: bool,
    observed: Observed,
    status: Status,
    last_status: Option<Instant>,
    link_up: bool,
    /// The link was seen without carrier since the last (re)start of EAP on it.
    link_was_down: bool,
    trial: Option<Trial>,
    /// The configuration that authenticated over this connection (re-authentications coalesced).
    authenticated: Option<NetConfig>,
    /// The configuration the last [`Notice::Authenticated`] was about, across connections and
    /// restarts: a new connection to a supplicant still authenticated is not news.
    announced: Option<NetConfig>,
    last_authenticated_unix: Option<u64>,
    last_failure: Option<String>,
    failure_reported: bool,
    rejection_reported: bool,
    epoch: Instant,
}

impl Worker {
    fn new(paths: Paths, sink: Box<dyn Fn(Notice) + Send>) -> Self {
        Self {
            paths,
            sink,
            published: Arc::default(),
            record: Record::default(),
            record_error: None,
            control: None,
            control_interface: String::new(),
            last_attempt: None,
            missing_since: None,
            missing_reported: false,
            in_supplicant: None,
            restart_pending: false,
            observed: Observed::default(),
            status: Status::default(),
            last_status: None,
            link_up: false,
            link_was_down: false,
            trial: None,
            authenticated: None,
            announced: None,
            last_authenticated_unix: None,
            last_failure: None,
            failure_reported: false,
            rejection_reported: false,
            epoch: Instant::now(),
        }
    }

    /// Reads the record (no writes: this runs on the caller of [`spawn`]).
    fn load(&mut self) {
        match Record::load(&self.paths.dir) {
            Ok(record) => self.record = record.unwrap_or_default(),
            Err(e) => {
                let message = format!("{} cannot be read: {e}", self.paths.dir.join(store::RECORD).display());
                camera_log::warn(&format!("camera: 802.1X: {message}; wpa_supplicant is left as it is"));
                self.record_error = Some(message);
            }
        }
        self.last_authenticated_unix = self.record.authenticated.as_ref().map(|a| a.unix);
        self.announced = self.record.authenticated.as_ref().and(self.record.conf.clone());
    }

    /// What a restart must do before anything else: end an interrupted trial, bring the
    /// configuration file in line with the record, remove files nothing names.
    fn recover(&mut self) {
        if let Err(e) = camera_state::ensure_dir(&self.paths.dir, 0o700) {
            self.warn("cannot create its directory", &e);
            return;
        }
        let _ = camera_state::remove_stale_temporaries(&self.paths.dir);
        if self.record_error.is_some() {
            return;
        }
        if self.record.trial.take().is_some() {
            self.record.rolled_back =
                Some(RolledBack { reason: INTERRUPTED.to_owned(), unix: camera_state::now_unix() });
            self.last_failure = Some(INTERRUPTED.to_owned());
            if let Err(e) = self.record.save(&self.paths.dir) {
                self.warn("cannot record the interrupted trial", &e);
            }
            self.notify(Notice::TrialInterrupted);
        }
        if let Err(e) = self.write_conf(&self.record) {
            self.warn("cannot write wpa_supplicant.conf", &e);
        }
        self.collect_garbage();
    }

    fn run(mut self, requests: Receiver<Request>) {
        self.recover();
        self.maintain();
        self.publish();
        loop {
            if self.unconfigured() {
                // 802.1X was never set up: nothing to follow, so no timer wakes the thread (a
                // camera that does not use 802.1X pays nothing for it).
                match requests.recv() {
                    Ok(request) => self.handle(request),
                    Err(_) => return,
                }
            } else if self.control.is_some() {
                match requests.try_recv() {
                    Ok(request) => self.handle(request),
                    Err(TryRecvError::Disconnected) => return,
                    Err(TryRecvError::Empty) => self.read_events(),
                }
            } else {
                match requests.recv_timeout(ROUND) {
                    Ok(request) => self.handle(request),
                    Err(RecvTimeoutError::Disconnected) => return,
                    Err(RecvTimeoutError::Timeout) => {}
                }
            }
            self.maintain();
            self.publish();
        }
    }

    fn publish(&self) {
        let view = self.view();
        *self.published.lock().unwrap_or_else(PoisonError::into_inner) = view;
    }

    fn handle(&mut self, request: Request) {
        match request {
            Request::Apply { settings, credential, reply } => {
                let result = self.apply(*settings, credential);
                // What the caller reads next shows what it did.
                self.publish();
                let _ = reply.send(result);
            }
        }
    }

    fn read_events(&mut self) {
        let Some(control) = self.control.as_mut() else { return };
        let mut timeout = ROUND;
        let mut messages = Vec::new();
        loop {
            match control.next_event(timeout) {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(e) => {
                    self.lose(&e);
                    break;
                }
            }
            if messages.len() >= 64 {
                break;
            }
            timeout = Duration::from_millis(1);
        }
        for message in messages {
            self.on_event(&message);
        }
    }

    /// Connects when due, reads STATUS when due, judges the trial.
    /// Never configured (and nothing on record to put right): there is no supplicant to follow.
    fn unconfigured(&self) -> bool {
        self.record.settings.is_none() && self.record_error.is_none() && self.control.is_none()
    }

    fn maintain(&mut self) {
        let now = Instant::now();
        if self.unconfigured() {
            return;
        }
        if self.control.is_none() && self.last_attempt.is_none_or(|t| now - t >= RETRY_EVERY) {
            self.connect();
        }
        if self.control.is_some() && self.last_status.is_none_or(|t| now - t >= STATUS_EVERY) {
            self.poll_status();
        }
        self.judge_trial();
    }

    fn interface(&self) -> String {
        self.record.settings.as_ref().map_or_else(|| Settings::default().interface, |s| s.interface.clone())
    }

    fn enabled(&self) -> bool {
        self.record.settings.as_ref().is_some_and(|s| s.enabled)
    }

    fn connect(&mut self) {
        let now = Instant::now();
        self.last_attempt = Some(now);
        let interface = self.interface();
        match Control::attach(&self.paths.control_dir, &interface) {
            Ok(control) => {
                self.control = Some(control);
                self.control_interface = interface.clone();
                self.missing_since = None;
                if std::mem::take(&mut self.missing_reported) {
                    self.notify(Notice::SupplicantBack { interface });
                }
                self.in_supplicant = None;
                self.authenticated = None;
                self.observed = Observed::default();
                self.status = Status::default();
                self.last_status = None;
                self.push_quietly();
                if self.control.is_some() {
                    self.poll_status();
                }
            }
            Err(_) => {
                let since = *self.missing_since.get_or_insert(now);
                if self.enabled() && !self.missing_reported && now - since >= MISSING_GRACE {
                    self.missing_reported = true;
                    self.notify(Notice::SupplicantMissing { interface });
                }
            }
        }
    }

    /// The connection is gone (wpa_supplicant stopped, restarted or hangs).
    fn lose(&mut self, error: &ControlError) {
        if self.control.take().is_some() {
            camera_log::info(&format!("camera: 802.1X: lost wpa_supplicant: {}", camera_log::chain(error)));
        }
        self.in_supplicant = None;
        self.authenticated = None;
        self.status = Status::default();
        self.missing_since.get_or_insert_with(Instant::now);
    }

    /// What wpa_supplicant should hold: None to leave it alone (nothing was ever set here, or the
    /// record is damaged), Some(None) for no network (802.1X off).
    fn desired(&self) -> Option<Option<NetConfig>> {
        if self.record_error.is_some() {
            return None;
        }
        let settings = self.record.settings.as_ref()?;
        if !settings.enabled {
            return Some(None);
        }
        Some(self.record.trial.as_ref().map(|t| t.config.clone()).or_else(|| self.record.conf.clone()))
    }

    /// Puts the desired configuration into wpa_supplicant, changing only what differs; restarts
    /// EAP when anything changed. Returns whether it did.
    fn sync(&mut self) -> Result<bool, PushError> {
        let Some(desired) = self.desired() else { return Ok(false) };
        let dir = self.paths.dir.clone();
        let Some(control) = self.control.as_mut() else { return Ok(false) };
        let c = PushError::Control;
        let networks = parse_networks(&control.request("LIST_NETWORKS", "LIST_NETWORKS").map_err(c)?);
        let mut changed = false;
        match &desired {
            None => {
                if !networks.is_empty() {
                    // Removing the network stops authenticating without an EAPOL-Logoff.
                    control.expect_ok("REMOVE_NETWORK", "REMOVE_NETWORK all").map_err(c)?;
                    changed = true;
                }
                self.restart_pending = false;
            }
            Some(config) => {
                let fields = conf::network_fields(config, &dir).map_err(PushError::Conf)?;
                let (id, fresh) = match networks.first() {
                    Some(network) => (network.id, false),
                    None => {
                        self.restart_pending = true;
                        let answer = control.request("ADD_NETWORK", "ADD_NETWORK").map_err(c)?;
                        let id = answer.trim().parse::<u32>().map_err(|_| {
                            c(ControlError::Refusal {
                                command: "ADD_NETWORK",
                                answer: camera_log::escape_bounded(&answer, 40),
                            })
                        })?;
                        (id, true)
                    }
                };
                for extra in networks.iter().skip(1) {
                    self.restart_pending = true;
                    control.expect_ok("REMOVE_NETWORK", &format!("REMOVE_NETWORK {}", extra.id)).map_err(c)?;
                    changed = true;
                }
                let version = config.eapol_version.to_string();
                if control.request("GET", "GET eapol_version").map_err(c)?.trim() != version {
                    self.restart_pending = true;
                    control.expect_ok("SET", &format!("SET eapol_version {version}")).map_err(c)?;
                    changed = true;
                }
                for (name, value) in &fields {
                    let current = if fresh {
                        None
                    } else {
                        control.request("GET_NETWORK", &format!("GET_NETWORK {id} {name}")).ok()
                    };
                    if current.as_deref().map(str::trim_end) != Some(value.as_str()) {
                        self.restart_pending = true;
                        control.expect_ok("SET_NETWORK", &format!("SET_NETWORK {id} {name} {value}")).map_err(c)?;
                        changed = true;
                    }
                }
                if config.domain_match.is_none()
                    && !fresh
                    && control.request("GET_NETWORK", &format!("GET_NETWORK {id} domain_match")).is_ok()
                {
                    self.restart_pending = true;
                    control.expect_ok("SET_NETWORK", &format!("SET_NETWORK {id} domain_match NULL")).map_err(c)?;
                    changed = true;
                }
                if fresh || networks.first().is_some_and(|n| n.disabled) {
                    control.expect_ok("ENABLE_NETWORK", &format!("ENABLE_NETWORK {id}")).map_err(c)?;
                    changed = true;
                } else if changed || self.restart_pending {
                    // On a wired link this makes a new association: EAP starts again (EAPOL-Start)
                    // with the new configuration, and wpa_supplicant's port is invalid until EAP
                    // succeeds. REAUTHENTICATE only works while authenticated.
                    control.expect_ok("REASSOCIATE", "REASSOCIATE").map_err(c)?;
                    changed = true;
                }
                self.restart_pending = false;
            }
        }
        if changed {
            control.discard_events();
            self.observed = Observed::default();
            self.authenticated = None;
            self.failure_reported = false;
            self.rejection_reported = false;
        }
        self.in_supplicant = Some(desired);
        Ok(changed)
    }

    fn poll_status(&mut self) {
        self.last_status = Some(Instant::now());
        let Some(control) = self.control.as_mut() else { return };
        match control.request("STATUS", "STATUS") {
            Ok(text) => self.status = parse_status(&text),
            Err(e) => {
                self.lose(&e);
                return;
            }
        }
        self.link_up = carrier(&self.control_interface);
        if !self.link_up {
            self.link_was_down = true;
        } else if std::mem::take(&mut self.link_was_down) && matches!(self.in_supplicant, Some(Some(_))) {
            // Plugged in again. wpa_supplicant's wired driver does not follow the carrier: its
            // EAPOL-Starts went unanswered on the dead link, so it sits in HELD or takes the port
            // for one without 802.1X, and a switch that waits for the supplicant never hears from
            // it. Start EAP again now, as after a change of configuration.
            if let Some(Err(e)) = self.control.as_mut().map(|c| c.expect_ok("REASSOCIATE", "REASSOCIATE")) {
                self.lose(&e);
                return;
            }
        }
        // An EAP success not seen as an event (before this connection: at boot, from
        // wpa_supplicant.conf; or an event lost). wpa_supplicant's PAE reaches AUTHENTICATED on
        // a wired link only through EAP success since its last association, and every change of
        // configuration here is followed by a new association.
        let authenticated = self.status.port_authorized && self.status.pae_state.as_deref() == Some("AUTHENTICATED");
        if authenticated && !self.restart_pending && self.authenticated.is_none() {
            self.on_success();
        }
    }

    fn on_event(&mut self, message: &str) {
        let Some(event) = parse_event(message) else { return };
        self.observed.observe(&event);
        match event {
            Event::EapSuccess if self.observed.succeeded => self.on_success(),
            Event::EapFailure if self.observed.failures > 0 => self.on_failure(),
            Event::ServerCertError { subject, error, .. } if !self.rejection_reported => {
                self.rejection_reported = true;
                self.notify(Notice::ServerRejected {
                    subject: camera_log::escape_bounded(&subject, 200),
                    error: camera_log::escape_bounded(&error, 200),
                });
            }
            Event::Terminating => {
                self.lose(&ControlError::Absent { path: self.paths.control_dir.join(&self.control_interface) })
            }
            _ => {}
        }
    }

    fn on_success(&mut self) {
        // The port's state changes with it: read STATUS at the next round, not up to two seconds later.
        self.last_status = None;
        let Some(Some(config)) = self.in_supplicant.clone() else { return };
        let now = camera_state::now_unix();
        self.last_authenticated_unix = Some(now);
        if self.authenticated.as_ref() == Some(&config) {
            return; // a periodic re-authentication
        }
        self.authenticated = Some(config.clone());
        self.failure_reported = false;
        self.last_failure = None;
        let interface = self.control_interface.clone();
        let committed = self.record.trial.as_ref().is_some_and(|t| t.config == config);
        if committed {
            self.record.trial = None;
            self.record.conf = Some(config.clone());
            self.record.rolled_back = None;
            self.trial = None;
        }
        // Written when it is news for the record (not at each reconnection: flash).
        let recorded = self.record.authenticated.as_ref().is_some_and(|a| a.interface == interface);
        if self.record.conf.as_ref() == Some(&config) && (committed || !recorded) {
            self.record.authenticated = Some(Authenticated { interface: interface.clone(), unix: now });
            if let Err(e) = self.record.save(&self.paths.dir) {
                self.warn("cannot record the authentication", &e);
            }
            if committed {
                if let Err(e) = self.write_conf(&self.record) {
                    self.warn("cannot write wpa_supplicant.conf", &e);
                }
                self.collect_garbage();
            }
        }
        if committed || self.announced.as_ref() != Some(&config) {
            self.announced = Some(config.clone());
            self.notify(Notice::Authenticated { interface, fingerprint: config.client_sha256, committed });
        }
    }

    fn on_failure(&mut self) {
        self.authenticated = None;
        self.announced = None;
        if self.trial.is_some() || self.failure_reported {
            return;
        }
        self.failure_reported = true;
        let reason = self.observed.failure_reason(&self.control_interface, 0);
        self.last_failure = Some(reason.clone());
        self.notify(Notice::Failed { reason });
    }

    fn judge_trial(&mut self) {
        let Some(trial) = self.trial.as_mut() else { return };
        let trying = self.record.trial.as_ref().map(|t| &t.config);
        let in_effect = self.control.is_some() && self.in_supplicant.as_ref().and_then(Option::as_ref) == trying;
        let interface = self.control_interface.clone();
        if let Verdict::RollBack { reason } =
            trial.tick(self.epoch.elapsed(), in_effect && self.link_up, &self.observed, &interface)
        {
            self.roll_back(reason);
        }
    }

    fn roll_back(&mut self, reason: String) {
        self.trial = None;
        // The configuration that comes back authenticating again is news.
        self.announced = None;
        self.record.trial = None;
        self.record.rolled_back = Some(RolledBack { reason: reason.clone(), unix: camera_state::now_unix() });
        self.last_failure = Some(reason.clone());
        if let Err(e) = self.record.save(&self.paths.dir) {
            self.warn("cannot record the rollback", &e);
        }
        self.push_quietly();
        self.collect_garbage();
        self.notify(Notice::RolledBack { reason });
    }

    fn push_quietly(&mut self) {
        match self.sync() {
            Ok(_) => {}
            Err(PushError::Control(e)) => self.lose(&e),
            Err(PushError::Conf(e)) => self.warn("cannot configure wpa_supplicant", &e),
        }
    }

    fn apply(&mut self, settings: Settings, credential: Option<Zeroizing<Vec<u8>>>) -> Result<(), ApplyError> {
        settings.check()?;
        let store = |what| move |source| ApplyError::Store { what, source };
        camera_state::ensure_dir(&self.paths.dir, 0o700).map_err(store("directory"))?;
        // A damaged record is replaced by this one.
        let mut record = if self.record_error.is_some() { Record::default() } else { self.record.clone() };
        record.rolled_back = None;
        if settings.enabled {
            let config = self.new_config(&settings, credential.as_deref().map(Vec::as_slice), &record)?;
            match record.good_on(&settings.interface) {
                Some(good) if *good == config => record.trial = None,
                Some(_) => record.trial = Some(TrialMarker { config, started_unix: camera_state::now_unix() }),
                None => {
                    record.trial = None;
                    record.conf = Some(config);
                    record.authenticated = None;
                }
            }
        } else {
            record.trial = None;
            record.conf = None;
            record.authenticated = None;
        }
        record.settings = Some(settings.clone());
        // The record is the commit point; the configuration file follows it (a restart renders
        // it again from the record, whatever a power cut left).
        self.write_conf(&record).map_err(store("wpa_supplicant.conf"))?;
        record.save(&self.paths.dir).map_err(store("settings"))?;
        self.record = record;
        self.record_error = None;
        self.last_failure = None;
        self.trial = self.record.trial.as_ref().map(|_| Trial::new(settings.trial_seconds));
        if self.trial.is_some() {
            self.notify(Notice::TrialStarted {
                interface: settings.interface.clone(),
                seconds: settings.trial_seconds,
            });
        }
        if self.control.is_some() && self.control_interface != settings.interface {
            self.lose(&ControlError::Absent { path: self.paths.control_dir.join(&self.control_interface) });
        }
        let result = if self.control.is_none() {
            self.connect();
            Ok(())
        } else {
            match self.sync() {
                Ok(_) => Ok(()),
                Err(PushError::Conf(e)) => Err(ApplyError::Conf(e)),
                // Refused: a real error. Gone: it is told when it is back.
                Err(PushError::Control(e @ ControlError::Refusal { .. })) => Err(ApplyError::Supplicant(e)),
                Err(PushError::Control(e)) => {
                    self.lose(&e);
                    Ok(())
                }
            }
        };
        self.collect_garbage();
        result
    }

    /// The configuration for `settings`: the client and CA files written (before the record).
    fn new_config(
        &self,
        settings: &Settings,
        credential: Option<&[u8]>,
        record: &Record,
    ) -> Result<NetConfig, ApplyError> {
        let current = record.trial.as_ref().map(|t| &t.config).or(record.conf.as_ref());
        let (client_file, client_sha256, client_cn) = match credential {
            Some(bundle) => {
                let file = ClientFile::parse(bundle).map_err(ApplyError::Credential)?;
                self.write_file(&file.name, file.text.as_bytes(), camera_state::SECRET_MODE, "client credential")?;
                (file.name, file.leaf_sha256, file.leaf_cn)
            }
            None => {
                let current = current.ok_or(ApplyError::NoCredential)?;
                (current.client_file.clone(), current.client_sha256.clone(), current.client_cn.clone())
            }
        };
        let (ca_file, ca_text) = conf::ca_file(&settings.server_ca_certificates()?);
        self.write_file(&ca_file, ca_text.as_bytes(), camera_state::PUBLIC_MODE, "server CA certificates")?;
        let identity =
            conf::identity(settings.identity.as_deref(), client_cn.as_deref()).ok_or(ApplyError::NoIdentity)?;
        let config = NetConfig {
            identity,
            eapol_version: settings.eapol_version,
            ca_file,
            client_file,
            client_sha256,
            client_cn,
            domain_match: settings.domain_match.clone(),
        };
        conf::network_fields(&config, &self.paths.dir)?;
        Ok(config)
    }

    /// Writes a file named by its content, unless it is there already.
    fn write_file(&self, name: &str, content: &[u8], mode: u32, what: &'static str) -> Result<(), ApplyError> {
        let path = self.paths.dir.join(name);
        if camera_state::read_optional(&path).ok().flatten().is_some_and(|old| old.as_slice() == content) {
            return Ok(());
        }
        camera_state::write_atomic(&path, content, mode).map_err(|source| ApplyError::Store { what, source })
    }

    /// `wpa_supplicant.conf` from the record's `conf`, written when it differs (never created to
    /// say nothing).
    fn write_conf(&self, record: &Record) -> std::io::Result<()> {
        let path = store::conf_path(&self.paths.dir);
        let old = camera_state::read_optional(&path)?;
        if old.is_none() && record.conf.is_none() {
            return Ok(());
        }
        let interface = record.settings.as_ref().map_or_else(|| Settings::default().interface, |s| s.interface.clone());
        let text = conf::render(record.conf.as_ref(), &interface, &self.paths.dir, &self.paths.control_dir)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        if old.is_some_and(|old| old.as_slice() == text.as_bytes()) {
            return Ok(());
        }
        camera_state::write_atomic(&path, text.as_bytes(), camera_state::PUBLIC_MODE)
    }

    fn collect_garbage(&self) {
        if self.record_error.is_none() {
            if let Err(e) = store::collect_garbage(&self.paths.dir, &self.record) {
                self.warn("cannot remove files no configuration names", &e);
            }
        }
    }

    fn notify(&self, notice: Notice) {
        (self.sink)(notice);
    }

    fn warn(&self, what: &str, error: &dyn std::error::Error) {
        camera_log::warn(&format!("camera: 802.1X: {what}: {}", camera_log::chain(error)));
    }

    fn view(&self) -> View {
        let settings = self.record.settings.clone();
        let interface = self.interface();
        let in_use = match &self.in_supplicant {
            Some(config) => config.clone(),
            None => self.desired().flatten(),
        };
        let trial =
            self.record.trial.as_ref().zip(self.trial.as_ref()).map(|(marker, trial)| TrialView {
                started_unix: marker.started_unix,
                seconds_left: trial.seconds_left(),
            });
        let connected = self.control.is_some();
        let (state, sentence) = if let Some(error) = &self.record_error {
            (
                State::Failed,
                format!("The 802.1X settings cannot be read ({error}); wpa_supplicant keeps what it has until they are set again."),
            )
        } else if !self.enabled() {
            (State::Off, OFF.to_owned())
        } else if !connected && self.last_attempt.is_none() {
            (State::Connecting, format!("Looking for wpa_supplicant on {interface}."))
        } else if !connected {
            (
                State::NoSupplicant,
                format!(
                    "wpa_supplicant is not running on {interface} (no answer on {}): the camera is not authenticating \
                     to the network port. The settings are stored and are applied when it starts.",
                    self.paths.control_dir.join(&interface).display()
                ),
            )
        } else if let Some(trial) = &trial {
            let waiting = if self.link_up { "" } else { "the link is down, so the trial waits for it; " };
            (
                State::Trial,
                format!(
                    "Trying the new configuration on {interface}: {waiting}{} s of link time left before the camera goes \
                     back to the configuration that last authenticated.",
                    trial.seconds_left
                ),
            )
        } else if let Some(rolled_back) = &self.record.rolled_back {
            let now = if self.authenticated.is_some() { "it is authenticated again" } else { "it is authenticating" };
            (
                State::RolledBack,
                format!(
                    "The new configuration did not authenticate ({}); the camera went back to the configuration that \
                     last authenticated, and {now}.",
                    rolled_back.reason
                ),
            )
        } else if self.authenticated.is_some() {
            (
                State::Authenticated,
                format!(
                    "Authenticated on {interface} with the client certificate SHA-256 {}.",
                    in_use.as_ref().map_or("?", |c| c.client_sha256.as_str())
                ),
            )
        } else if self.observed.failed() {
            (
                State::Failed,
                format!("Authentication on {interface} failed: {}.", self.observed.failure_reason(&interface, 0)),
            )
        } else if !self.link_up {
            (State::Connecting, format!("Waiting for the link on {interface} to come up."))
        } else {
            (
                State::Connecting,
                format!("Authenticating on {interface}: waiting for the switch and the authentication server."),
            )
        };
        let last_failure = self
            .last_failure
            .clone()
            .or_else(|| self.record.rolled_back.as_ref().map(|r| r.reason.clone()))
            .or_else(|| self.observed.failed().then(|| self.observed.failure_reason(&interface, 0)));
        View {
            state,
            sentence,
            warnings: settings
                .as_ref()
                .map(|s| s.warnings().into_iter().map(str::to_owned).collect())
                .unwrap_or_default(),
            settings,
            supplicant_running: connected,
            link_up: self.link_up,
            pae_state: self.status.pae_state.clone(),
            eap_state: self.status.eap_state.clone(),
            port_authorized: self.status.port_authorized,
            last_authenticated_unix: self.last_authenticated_unix,
            last_failure,
            trial,
            in_use_fingerprint: in_use.as_ref().map(|c| c.client_sha256.clone()),
            identity: in_use.map(|c| c.identity),
            server_subject: self.observed.server_subject.as_deref().map(|s| camera_log::escape_bounded(s, 200)),
            interface,
        }
    }
}

/// Whether `interface` has carrier (IFF_LOWER_UP), read through netlink so it is this network
/// namespace's; unknown counts as up (the trial clock must not stop for good).
fn carrier(interface: &str) -> bool {
    match nix::ifaddrs::getifaddrs() {
        Ok(addresses) => addresses
            .filter(|a| a.interface_name == interface)
            .any(|a| a.flags.contains(nix::net::if_::InterfaceFlags::IFF_LOWER_UP)),
        Err(_) => true,
    }
}
