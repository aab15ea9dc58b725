//! Power cut at any moment: camera-web is SIGKILLed at random points during an upload, a restore,
//! a CSR creation, an 802.1X client certificate upload, its own first start on an empty state dir
//! (which creates the CA) and an ACME enrollment with Pebble (in a private network namespace),
//! then restarted on the same directories. Every round checks that it starts, that it serves a chain which
//! `openssl s_client -verify_return_error` accepts against the right trust anchor, that the state
//! on disk and the served certificate are exactly the old or exactly the new one (and the new one
//! whenever the API had already answered), that the CA never changes once it exists (no
//! `*.corrupt-*`, no `ca-replaced.json`), and that no `.tmp-*` file or other junk is left.
//!
//! Each kind first measures how long its operation takes, then spreads the kills over 0..1.5x of
//! that, one in four over 0..8x (`camera_test_support::kill_schedule`, microsecond resolution), so some
//! land before the commit point and some after;
//! both must happen for every kind, which shows the kills really hit the window. Every tenth kill
//! of an API operation (every fourth of an enrollment) waits for the commit itself (inotify reports
//! the rename or unlink) and strikes at once, so kills after the commit but before the answer are
//! never left to chance.
//!
//! `POWERCUT_ROUNDS` = kills per kind (default 100; 40 for the 802.1X certificate, whose write is
//! the HTTPS one's code into its own file; 16 for the enrollment); `POWERCUT_SEED` replays
//! a run (the seed is printed). SIGKILL proves the rename protocol is atomic against process death;
//! it does not drop the page cache, so durability against a real power loss rests on the fsyncs.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use camera_test_support::kill_schedule::{rounds, Counts, Rng};
use camera_test_support::netns::{enter_private_netns, NetnsSetup};
use camera_test_support::pebble::{Pebble, PebbleSpec};
use common::*;
use serde_json::json;

const CONFIG: &str = r#"{"camera": {"loopback": true}}"#;
const DEFAULT_ROUNDS: usize = 100;

/// Every this many rounds the kill follows the commit itself instead of a random delay: what
/// comes after the rename (directory fsync, the swap, the answer) is too short for random kills
/// to hit reliably, least of all at the fewer rounds run under qemu-user.
const AT_COMMIT_EVERY: usize = 10;

/// What the commit point of an operation looks like in the state directory.
#[derive(Clone, Copy)]
enum Commit {
    /// `name` renamed into place (a write).
    Renamed(&'static str),
    /// `name` unlinked (a restore).
    Removed(&'static str),
}

/// Watches the state directory for `commit`; call [`CommitWatch::wait`] after starting the operation.
struct CommitWatch {
    inotify: nix::sys::inotify::Inotify,
    commit: Commit,
}

impl CommitWatch {
    fn new(state: &Path, commit: Commit) -> Self {
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).unwrap();
        let mask = match commit {
            Commit::Renamed(_) => AddWatchFlags::IN_MOVED_TO,
            Commit::Removed(_) => AddWatchFlags::IN_DELETE,
        };
        inotify.add_watch(state, mask).unwrap();
        Self { inotify, commit }
    }

    /// Returns as soon as the commit happened (true), or after `limit` (false).
    fn wait(&self, limit: Duration) -> bool {
        let name = match self.commit {
            Commit::Renamed(n) | Commit::Removed(n) => n,
        };
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let mut fds =
                [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(&self.inotify), nix::poll::PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10u16));
            if let Ok(events) = self.inotify.read_events() {
                if events.iter().any(|e| e.name.as_ref().is_some_and(|n| n == name)) {
                    return true;
                }
            }
        }
        false
    }
}

/// Waits for the kill: a random delay, or every `at_commit_every` rounds the commit itself.
fn wait_to_kill(round: usize, at_commit_every: usize, watch: Option<&CommitWatch>, delay: Duration, window: Duration) {
    match watch {
        Some(watch) if round % at_commit_every == at_commit_every - 1 => {
            assert!(watch.wait(window * 20 + Duration::from_secs(5)), "round {round}: the commit never came");
        }
        _ => std::thread::sleep(delay),
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

// ---------------------------------------------------------------- helpers

/// An API answer (status, body), or `None` when the connection died (the server was killed).
type Reply = Option<(u16, Vec<u8>)>;

/// curl trusting `trust` (the operation itself; the checks verify separately).
fn api(trust: &Path, args: &[String]) -> Reply {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "--cacert"])
        .arg(trust)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let mut body = out.stdout;
    let split = body.iter().rposition(|&b| b == b'\n')?;
    let status = String::from_utf8_lossy(&body[split + 1..]).trim().parse().ok()?;
    body.truncate(split);
    Some((status, body))
}

/// Runs the operation `args` in a thread.
fn in_thread(trust: PathBuf, args: Vec<String>) -> std::thread::JoinHandle<Reply> {
    std::thread::spawn(move || api(&trust, &args))
}

fn answered_ok(reply: &Reply) -> bool {
    matches!(reply, Some((200, _)))
}

/// The chain served on a new handshake, verified by `openssl s_client -verify_return_error`
/// against `anchor` only (and for 127.0.0.1). DER, leaf first.
fn served_verified(addr: &str, anchor: &Path) -> Vec<Vec<u8>> {
    served_verified_for(addr, "127.0.0.1", anchor)
}

/// [`served_verified`] for the address `ip`.
fn served_verified_for(addr: &str, ip: &str, anchor: &Path) -> Vec<Vec<u8>> {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            addr,
            "-servername",
            "localhost",
            "-showcerts",
            "-verify_return_error",
            "-verify_ip",
            ip,
            "-CAfile",
        ])
        .arg(anchor)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Verify return code: 0 (ok)"),
        "the served chain does not verify against {}:\n{text}\n{}",
        anchor.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let chain = camera_pki::pem::certificates(&out.stdout).unwrap();
    assert!(!chain.is_empty(), "no certificate served");
    chain
}

fn names(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    }
}

/// After a restart: the CA is the first one, nothing half-written or unexpected remains, and no
/// path that treats the CA as corrupt was taken.
fn check_dirs(root: &Path, first_ca: &[u8], log: &str) {
    let state = root.join("state");
    assert_eq!(std::fs::read(state.join("ca.crt")).unwrap(), first_ca, "the camera CA changed");
    const KNOWN: [&str; 17] = [
        "events.log",
        "events.log.1",
        "logins.log",
        "logins.log.1",
        "enrollment.json",
        "acme-account.key",
        "ca.crt",
        "issuing-ca.pem",
        "ca-in-use.sha256",
        "clock",
        "uploaded.pem",
        "pending-csr.pem",
        "dot1x.pem",
        "dot1x-csr.pem",
        "dot1x",
        "admin-password.json",
        ".lock",
    ];
    for name in names(&state) {
        assert!(KNOWN.contains(&name.as_str()), "unexpected file {name} in the state dir: {:?}\n{log}", names(&state));
    }
    let run = names(&root.join("run"));
    assert!(run.iter().all(|n| n == "server.pem" || n == "wpa_supplicant"), "unexpected files in the run dir: {run:?}");
    assert!(!log.contains("REPLACED") && !log.contains("cannot be used") && !log.contains("damaged"), "{log}");
}

/// Starts camera-web on a fresh dir, stops it, and stores the admin password with few PBKDF2
/// rounds (each restart would otherwise pay the full KDF on the first authenticated request,
/// which only widens the window before the write).
fn fresh_camera(tag: &str) -> Camera {
    Camera::start_in(with_quick_password(Camera::start_in(TempDir::new(tag), CONFIG).stop()), CONFIG)
}

/// Stores the admin password of a stopped camera's `dir` with few PBKDF2 rounds.
fn with_quick_password(dir: TempDir) -> TempDir {
    let auth =
        camera_web::auth::Auth::load(&dir.path().join("state/admin-password.json")).unwrap().with_iterations(1000);
    auth.setup(PASSWORD).unwrap();
    dir
}

/// An installer's certificate and PKCS#8 key.
struct Pair {
    cert: PathBuf,
    key: PathBuf,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl Pair {
    /// Whether an `uploaded.pem` holds exactly this leaf and this key.
    fn is_bundle(&self, bundle: &[u8]) -> bool {
        let certs = camera_pki::pem::certificates(bundle).unwrap_or_default();
        let key = camera_pki::pem::pkcs8_key(bundle).ok().flatten();
        certs.first() == Some(&self.cert_der) && key.as_deref() == Some(&self.key_der)
    }

    fn upload_args(&self, cam: &Camera, role: Role) -> Vec<String> {
        vec![
            "-u".into(),
            cam.admin(),
            "-X".into(),
            "PUT".into(),
            "-F".into(),
            format!("certificate=@{}", self.cert.display()),
            "-F".into(),
            format!("key=@{}", self.key.display()),
            cam.url(role.path()),
        ]
    }
}

/// An installer CA (`installer.crt`) and two leaves for 127.0.0.1 it signed, plus `trust.pem`
/// (camera CA + installer CA) for curl, which may meet either certificate.
struct Installer {
    _work: TempDir,
    root: PathBuf,
    trust: PathBuf,
    pairs: [Pair; 2],
}

impl Installer {
    fn new(camera_ca: &[u8], role: Role) -> Self {
        let work = TempDir::new("installer");
        let d = work.path();
        openssl_self_signed(
            d,
            SelfSignedKey::NewP256("rootCA.key"),
            "rootCA.crt",
            "/CN=Powercut Installer CA",
            365,
            &[],
        );
        let pairs = ["a", "b"].map(|tag| {
            openssl(
                d,
                &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", &format!("{tag}.key")],
            );
            openssl(
                d,
                &[
                    "req",
                    "-new",
                    "-key",
                    &format!("{tag}.key"),
                    "-out",
                    &format!("{tag}.csr"),
                    "-subj",
                    &format!("/CN=powercut {tag}"),
                ],
            );
            installer_sign_for(
                d,
                &format!("{tag}.csr"),
                "IP:127.0.0.1,DNS:localhost",
                &format!("{tag}.crt"),
                role.usage,
            );
            let cert = d.join(format!("{tag}.crt"));
            let key = d.join(format!("{tag}.key"));
            let cert_der = camera_pki::pem::certificates(&std::fs::read(&cert).unwrap()).unwrap().remove(0);
            let key_der = camera_pki::pem::pkcs8_key(&std::fs::read(&key).unwrap()).unwrap().unwrap().to_vec();
            Pair { cert, key, cert_der, key_der }
        });
        let mut trust = camera_ca.to_vec();
        trust.extend(std::fs::read(d.join("rootCA.crt")).unwrap());
        std::fs::write(d.join("trust.pem"), trust).unwrap();
        Self { root: d.join("rootCA.crt"), trust: d.join("trust.pem"), pairs, _work: work }
    }
}

fn read_opt(path: &Path) -> Option<Vec<u8>> {
    camera_state::read_optional(path).unwrap().map(|contents| contents.to_vec())
}

// ---------------------------------------------------------------- upload and restore

/// Which certificate the camera serves: its own (`None`) or installer pair 0/1.
type Served = Option<usize>;

/// Checks a restarted camera against the on-disk state `served`, returns nothing on success.
fn check_served(cam: &Camera, inst: &Installer, served: Served, device_leaf: &[u8]) {
    let (anchor, leaf) = match served {
        None => (cam.ca_path(), device_leaf),
        Some(i) => (inst.root.clone(), inst.pairs[i].cert_der.as_slice()),
    };
    let chain = served_verified(&cam.https, &anchor);
    assert!(
        chain[0] == leaf,
        "the served leaf is neither the old nor the new one (expected {served:?})\n{}",
        cam.log_text()
    );
}

/// What the role's file holds: nothing, or exactly one of the pairs (never a mix).
fn disk_upload(root: &Path, inst: &Installer, role: Role) -> Served {
    read_opt(&root.join("state").join(role.file)).map(|bytes| {
        (0..2).find(|&i| inst.pairs[i].is_bundle(&bytes)).unwrap_or_else(|| {
            panic!("{} is not a complete known cert+key pair:\n{}", role.file, String::from_utf8_lossy(&bytes))
        })
    })
}

/// The certificate roles, as their uploads reach the API and the disk.
#[derive(Clone, Copy)]
struct Role {
    url: &'static str,
    file: &'static str,
    usage: &'static str,
    /// Whether the camera serves it over HTTPS (else only the API shows it).
    served: bool,
}

const HTTPS: Role = Role { url: "/api/v1/certificate", file: "uploaded.pem", usage: "serverAuth", served: true };
const DOT1X: Role = Role { url: "/api/v1/dot1x/certificate", file: "dot1x.pem", usage: "clientAuth", served: false };

impl Role {
    fn path(self) -> &'static str {
        self.url
    }
}

/// The 802.1X certificate the API reports: nothing, or one of the pairs.
fn dot1x_reported(cam: &Camera, inst: &Installer) -> Served {
    let reply = api(&cam.ca_path(), &["-u".into(), cam.admin(), cam.url("/api/v1/dot1x")]);
    let Some((200, body)) = reply else { panic!("GET /api/v1/dot1x failed: {reply:?}") };
    let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let sha = status["certificate"]["sha256"].as_str()?.replace(':', "").to_ascii_lowercase();
    let found =
        (0..2).find(|&i| camera_pki::fingerprint(&inst.pairs[i].cert_der).replace(':', "").to_ascii_lowercase() == sha);
    assert!(found.is_some(), "the API reports an 802.1X certificate that is neither pair: {status}");
    found
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Upload,
    Restore,
}

fn upload_or_restore(op: Op, kind: &str, role: Role, default_rounds: usize) {
    let started = Instant::now();
    let (mut rng, seed) = Rng::for_kind(kind);
    println!("powercut {kind}: seed {seed}");
    let mut cam = fresh_camera(kind);
    let first_ca = std::fs::read(cam.ca_path()).unwrap();
    let inst = Installer::new(&first_ca, role);
    let device_leaf = served_verified(&cam.https, &cam.ca_path()).remove(0);
    let mut served: Served = None;
    let upload = |cam: &Camera, served: &mut Served| {
        let next = served.map_or(0, |i| 1 - i);
        let reply = api(&inst.trust, &inst.pairs[next].upload_args(cam, role));
        assert!(answered_ok(&reply), "upload failed: {reply:?}");
        *served = Some(next);
    };
    let restore_args =
        |cam: &Camera| vec!["-u".to_owned(), cam.admin(), "-X".into(), "DELETE".into(), cam.url(role.path())];

    // How long the operation takes, unkilled.
    let mut samples = Vec::new();
    for _ in 0..3 {
        if op == Op::Restore && served.is_none() {
            upload(&cam, &mut served);
        }
        let t = Instant::now();
        match op {
            Op::Upload => upload(&cam, &mut served),
            Op::Restore => {
                assert!(answered_ok(&api(&inst.trust, &restore_args(&cam))));
                served = None;
            }
        }
        samples.push(t.elapsed());
    }
    let window = median(samples);

    let mut counts = Counts::default();
    for round in 0..rounds(default_rounds) {
        if op == Op::Restore && served.is_none() {
            upload(&cam, &mut served);
        }
        let new: Served = match op {
            Op::Upload => Some(served.map_or(0, |i| 1 - i)),
            Op::Restore => None,
        };
        let args = match (op, new) {
            (Op::Upload, Some(i)) => inst.pairs[i].upload_args(&cam, role),
            _ => restore_args(&cam),
        };
        let delay = rng.delay(window);
        let commit = match op {
            Op::Upload => Commit::Renamed(role.file),
            Op::Restore => Commit::Removed(role.file),
        };
        let watch = CommitWatch::new(&cam.dir.path().join("state"), commit);
        let op_thread = in_thread(inst.trust.clone(), args);
        wait_to_kill(round, AT_COMMIT_EVERY, Some(&watch), delay, window);
        let dir = cam.stop();
        let reply = op_thread.join().unwrap();
        counts.kills += 1;

        let on_disk = disk_upload(dir.path(), &inst, role);
        if on_disk == new {
            if answered_ok(&reply) {
                counts.record_after(false);
            } else {
                counts.record_after(true);
            }
        } else {
            assert_eq!(on_disk, served, "round {round} (delay {delay:?}): neither the old nor the new state");
            assert!(!answered_ok(&reply), "round {round}: the API answered 200 but the old state is on disk");
            counts.before += 1;
        }
        served = on_disk;

        cam = Camera::start_in(dir, CONFIG);
        if role.served {
            check_served(&cam, &inst, served, &device_leaf);
        } else {
            // The HTTPS certificate is untouched by the other role, and the API reports what is on disk.
            check_served(&cam, &inst, None, &device_leaf);
            assert_eq!(dot1x_reported(&cam, &inst), served, "round {round}: the API and the disk disagree");
        }
        check_dirs(cam.dir.path(), &first_ca, &cam.log_text());
    }
    counts.finish(&format!("powercut {kind}"), "before the client had an answer", seed, window, started);
}

#[test]
fn upload_killed_at_random_points_leaves_the_old_or_the_new_certificate() {
    upload_or_restore(Op::Upload, "upload", HTTPS, DEFAULT_ROUNDS);
}

#[test]
fn restore_killed_at_random_points_leaves_the_upload_or_the_cameras_own() {
    upload_or_restore(Op::Restore, "restore", HTTPS, DEFAULT_ROUNDS);
}

#[test]
fn dot1x_upload_killed_at_random_points_leaves_the_old_or_the_new_client_certificate() {
    upload_or_restore(Op::Upload, "dot1x-upload", DOT1X, 40);
}

// ---------------------------------------------------------------- CSR

/// The request in a `pending-csr.pem`, after checking the file is whole: a key, and a request
/// signed by that key (openssl checks the signature and compares the public keys).
fn complete_pending(root: &Path) -> Vec<u8> {
    let path = root.join("state/pending-csr.pem");
    let bytes = std::fs::read(&path).unwrap();
    let pending =
        camera_pki::PendingCsr::from_bundle_pem(&bytes).unwrap_or_else(|e| panic!("pending-csr.pem is not whole: {e}"));
    let p = path.to_str().unwrap();
    let req = run(Command::new("openssl").args(["req", "-in", p, "-noout", "-verify", "-pubkey"]));
    let key = run(Command::new("openssl").args(["pkey", "-in", p, "-pubout"]));
    let req_pub = String::from_utf8_lossy(&req.stdout);
    let key_pub = String::from_utf8_lossy(&key.stdout);
    assert!(req_pub.contains(key_pub.trim()), "the request and the key in pending-csr.pem do not belong together");
    pending.csr_der
}

fn csr_der_of(pem: &[u8]) -> Option<Vec<u8>> {
    camera_pki::pem::sections(pem)
        .ok()?
        .into_iter()
        .find(|(kind, _)| *kind == rustls_pki_types::pem::SectionKind::Csr)
        .map(|(_, der)| der.to_vec())
}

#[test]
fn csr_creation_killed_at_random_points_leaves_the_old_or_the_new_request() {
    let kind = "csr";
    let started = Instant::now();
    let (mut rng, seed) = Rng::for_kind(kind);
    println!("powercut {kind}: seed {seed}");
    let mut cam = fresh_camera(kind);
    let first_ca = std::fs::read(cam.ca_path()).unwrap();
    let device_leaf = served_verified(&cam.https, &cam.ca_path()).remove(0);
    let request =
        r#"{"subject":{"CN":"powercut"},"subject_alt_names":["127.0.0.1","cam.local"],"key_type":"ecdsa-p256"}"#;
    let args = |cam: &Camera| -> Vec<String> {
        [
            "-u",
            &cam.admin(),
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            request,
            &cam.url("/api/v1/csr"),
        ]
        .map(String::from)
        .to_vec()
    };
    let mut samples = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        assert!(answered_ok(&api(&cam.ca_path(), &args(&cam))));
        samples.push(t.elapsed());
    }
    let window = median(samples);
    let mut known = Some(complete_pending(cam.dir.path()));

    let mut counts = Counts::default();
    for round in 0..rounds(DEFAULT_ROUNDS) {
        let old = read_opt(&cam.dir.path().join("state/pending-csr.pem"));
        let delay = rng.delay(window);
        let watch = CommitWatch::new(&cam.dir.path().join("state"), Commit::Renamed("pending-csr.pem"));
        let op_thread = in_thread(cam.ca_path(), args(&cam));
        wait_to_kill(round, AT_COMMIT_EVERY, Some(&watch), delay, window);
        let dir = cam.stop();
        let reply = op_thread.join().unwrap();
        counts.kills += 1;

        let now = read_opt(&dir.path().join("state/pending-csr.pem"));
        let csr = if now == old {
            assert!(!answered_ok(&reply), "round {round}: the API answered 200 but the old request is on disk");
            counts.before += 1;
            known.clone()
        } else {
            // New bytes: must be a whole key + request pair (never half of one, never nothing).
            assert!(now.is_some(), "round {round} (delay {delay:?}): neither the old nor the new request is on disk");
            let csr = complete_pending(dir.path());
            match &reply {
                Some((200, body)) => {
                    assert_eq!(
                        csr_der_of(body).as_ref(),
                        Some(&csr),
                        "round {round}: the answered request is not the one stored"
                    );
                    counts.record_after(false);
                }
                _ => counts.record_after(true),
            }
            Some(csr)
        };
        known.clone_from(&csr);

        cam = Camera::start_in(dir, CONFIG);
        let chain = served_verified(&cam.https, &cam.ca_path());
        assert!(chain[0] == device_leaf, "round {round}: the served certificate changed");
        let (status, body) = api(&cam.ca_path(), &[cam.url("/api/v1/csr")]).unwrap();
        match &csr {
            Some(der) => {
                assert_eq!(status, 200, "round {round}: the stored request is not offered");
                assert_eq!(
                    csr_der_of(&body).as_ref(),
                    Some(der),
                    "round {round}: another request is offered than the one stored"
                );
            }
            None => assert_eq!(status, 404, "round {round}: a request is offered but none is stored"),
        }
        check_dirs(cam.dir.path(), &first_ca, &cam.log_text());
    }
    counts.finish(&format!("powercut {kind}"), "before the client had an answer", seed, window, started);
}

// ---------------------------------------------------------------- first start (CA creation)

/// Starts camera-web on `root` without waiting; the receiver gets `()` once it listens.
fn spawn_web(root: &Path) -> (Child, mpsc::Receiver<()>) {
    std::fs::write(root.join("config.json"), CONFIG).unwrap();
    let mut child = camera_web_command(root)
        .args(["--https", "127.0.0.1:0", "--http", "off"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with("camera-web: listening on") {
                let _ = tx.send(());
            }
        }
    });
    (child, rx)
}

#[test]
fn first_start_killed_at_random_points_creates_one_whole_ca() {
    let kind = "first-boot";
    let started = Instant::now();
    let (mut rng, seed) = Rng::for_kind(kind);
    println!("powercut {kind}: seed {seed}");
    let mut samples = Vec::new();
    for _ in 0..3 {
        let dir = TempDir::new("firstboot-measure");
        let t = Instant::now();
        let (mut child, listening) = spawn_web(dir.path());
        listening.recv_timeout(Duration::from_secs(30)).expect("camera-web starts");
        samples.push(t.elapsed());
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let window = median(samples);

    let mut counts = Counts::default();
    for round in 0..rounds(DEFAULT_ROUNDS) {
        let dir = TempDir::new("firstboot");
        let delay = rng.delay(window);
        let t = Instant::now();
        let (mut child, listening) = spawn_web(dir.path());
        std::thread::sleep(delay.saturating_sub(t.elapsed()));
        child.kill().unwrap();
        child.wait().unwrap();
        let answered = listening.try_recv().is_ok();
        counts.kills += 1;

        let state = dir.path().join("state");
        let (issuing, cert) = (read_opt(&state.join("issuing-ca.pem")), read_opt(&state.join("ca.crt")));
        assert!(read_opt(&state.join("ca.key")).is_none(), "round {round}: a two-tier camera wrote a ca.key");
        let kept_ca = match (&issuing, &cert) {
            // issuing-ca.pem is the commit point: whole, and ca.crt (if written) is its root.
            (Some(bundle), cert) => {
                let ca = camera_pki::CameraCa::from_pem(bundle, bundle)
                    .unwrap_or_else(|e| panic!("round {round}: a CA on disk is not whole: {e}"));
                assert!(ca.is_two_tier(), "round {round}: first boot made a one-tier CA");
                if let Some(cert) = cert {
                    assert_eq!(cert, ca.anchor_pem().as_bytes(), "round {round}: ca.crt is not the CA's root");
                    counts.record_after(!answered);
                } else {
                    assert!(!answered, "round {round}: listening before ca.crt was written");
                    counts.between += 1;
                }
                Some(ca.anchor_pem().into_bytes())
            }
            (None, None) => {
                assert!(!answered, "round {round}: listening without a CA on disk");
                counts.before += 1;
                None
            }
            (None, Some(_)) => {
                panic!("round {round}: ca.crt without issuing-ca.pem (the CA must be committed first)")
            }
        };

        let cam = Camera::start_in(dir, CONFIG);
        let ca = std::fs::read(cam.ca_path()).unwrap();
        if let Some(kept) = &kept_ca {
            assert!(&ca == kept, "round {round}: the CA created before the kill was replaced");
        }
        served_verified(&cam.https, &cam.ca_path());
        check_dirs(cam.dir.path(), &ca, &cam.log_text());
    }
    counts.finish(&format!("powercut {kind}"), "before the client had an answer", seed, window, started);
}

// ---------------------------------------------------------------- enrollment (ACME)

/// The camera's ports in the namespace: Pebble validates http-01 on `ENROLL_HTTP` of the
/// camera's addresses.
const ENROLL_HTTPS: u16 = 5001;
const ENROLL_HTTP: u16 = 5002;
const ENROLL_ADDRESS: &str = "10.77.0.2";
const ENROLL_CONFIG: &str = r#"{"camera": {"hostname": "testcam"}}"#;
/// Fewer rounds than the other kinds: a round costs a restart, an enrollment and its checks
/// (and 2 s more when Pebble has not issued at the client's first look).
const ENROLL_ROUNDS: usize = 16;
/// A quarter of the kills wait for the commit: with so few rounds the milliseconds between the
/// rename and the recorded success are left to chance otherwise.
const ENROLL_AT_COMMIT_EVERY: usize = 4;

/// The configuration a restart gets: an `enrollment` section pointing at a port where nothing
/// listens, new at each start (the camera adopts a section it has not seen), so a camera with no
/// enrolled certificate tries, fails at once and keeps serving its own, instead of enrolling
/// again before the test has looked at what it serves. The spread is off: the first attempt after
/// a start would otherwise wait up to five minutes.
fn unreachable_enrollment_config(round: usize, pebble: &Pebble) -> String {
    let url = format!("https://127.0.0.1:9/restart-{round}");
    json!({
        "camera": {"hostname": "testcam"},
        "enrollment": {"protocol": "acme", "url": url, "trust": pebble.tls_ca_pem, "spread": false},
    })
    .to_string()
}

fn start_enrolling_camera(dir: TempDir, config: &str) -> Camera {
    Camera::start_listening(dir, config, &format!("[::]:{ENROLL_HTTPS}"), &format!("[::]:{ENROLL_HTTP}"))
}

fn enroll_url(path: &str) -> String {
    format!("https://{ENROLL_ADDRESS}:{ENROLL_HTTPS}{path}")
}

/// The kind of the last enrollment event in the security event log (oldest file first): the
/// success is recorded after the certificate is installed and the enrollment record stored.
fn last_enrollment_event(state: &Path) -> Option<String> {
    let mut text = read_opt(&state.join("events.log.1")).unwrap_or_default();
    text.extend(read_opt(&state.join("events.log")).unwrap_or_default());
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|event| event["kind"].as_str().map(str::to_owned))
        .rfind(|kind| kind.starts_with("enrollment_"))
}

/// Checks an `uploaded.pem` left by an enrollment is whole: the mark of its origin on the first
/// line, a key that belongs to the leaf (openssl compares the public keys), and a chain that
/// openssl verifies against Pebble's root for a TLS server. Returns the leaf (DER).
fn whole_enrolled(path: &Path, pebble_root: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(text.lines().next(), Some("Enrolled-via: acme"), "uploaded.pem does not say it was enrolled");
    let chain = camera_pki::pem::certificates(&bytes).unwrap_or_else(|e| panic!("uploaded.pem is not whole: {e}"));
    assert!(chain.len() >= 2, "uploaded.pem lacks Pebble's intermediate: {} certificates", chain.len());
    assert!(camera_pki::pem::pkcs8_key(&bytes).ok().flatten().is_some(), "uploaded.pem holds no key");
    let p = path.to_str().unwrap();
    let cert_pub = run(Command::new("openssl").args(["x509", "-in", p, "-noout", "-pubkey"]));
    let key_pub = run(Command::new("openssl").args(["pkey", "-in", p, "-pubout"]));
    assert_eq!(
        String::from_utf8_lossy(&cert_pub.stdout),
        String::from_utf8_lossy(&key_pub.stdout),
        "the key in uploaded.pem does not belong to its certificate"
    );
    let root = std::fs::read_to_string(pebble_root).unwrap();
    let verified = openssl_verify_der(&chain, &root, &["-verify_ip", ENROLL_ADDRESS]);
    assert!(verified.accepted && verified.said.contains(": OK"), "{}", verified.said);
    chain.into_iter().next().unwrap()
}

/// Power cut during the install of an enrolled certificate: camera-web is SIGKILLed
/// while it enrolls with a real Pebble (which validates http-01 on the camera's port), between
/// `PUT /api/v1/enrollment` and the enrolled certificate served, a quarter of the kills at the
/// rename of `uploaded.pem` itself. After each kill `uploaded.pem` is absent or whole (marked as
/// enrolled, key and certificate together, chain verified by openssl against Pebble's root), and
/// present whenever the success was recorded; after a restart the camera serves exactly its own
/// certificate or exactly the enrolled one (openssl), and no temporary file is left.
#[test]
fn enrollment_install_killed_at_random_points_leaves_no_certificate_or_the_enrolled_one() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let kind = "enrollment";
    let started = Instant::now();
    let (mut rng, seed) = Rng::for_kind(kind);
    println!("powercut {kind}: seed {seed}");
    let pebble = Pebble::start(&PebbleSpec {
        // Every nonce good: a refused one only adds a retry (and time) to the camera's enrollment.
        nonce_reject_percent: Some(0),
        http_port: ENROLL_HTTP,
        tls_port: ENROLL_HTTPS,
        dns: Some((ENROLL_ADDRESS, "fd77::2")),
        reuse_valid_authorizations: true,
        ..Default::default()
    });
    let first = start_enrolling_camera(TempDir::new(kind), ENROLL_CONFIG).stop();
    let mut cam = start_enrolling_camera(with_quick_password(first), ENROLL_CONFIG);
    let first_ca = std::fs::read(cam.ca_path()).unwrap();
    let work = TempDir::new("enrollment-work");
    let pebble_root = work.path().join("pebble-root.pem");
    std::fs::write(&pebble_root, pebble.root_pem()).unwrap();
    // curl may meet either certificate.
    let trust = work.path().join("trust.pem");
    std::fs::write(&trust, [first_ca.clone(), pebble.root_pem().into_bytes()].concat()).unwrap();
    let https = format!("{ENROLL_ADDRESS}:{ENROLL_HTTPS}");
    let device_leaf = served_verified_for(&https, ENROLL_ADDRESS, &cam.ca_path()).remove(0);
    let settings = json!({
        "protocol": "acme",
        "url": pebble.directory,
        "trust": pebble.tls_ca_pem,
        "challenge_types": ["http-01"],
    });
    let admin = cam.admin();
    let configure: Vec<String> =
        ["-u", &admin, "-X", "PUT", "-H", "Content-Type: application/json", "-d", &settings.to_string()]
            .into_iter()
            .map(String::from)
            .chain([enroll_url("/api/v1/enrollment")])
            .collect();
    let restore = |cam: &Camera| {
        let reply =
            api(&trust, &["-u".into(), cam.admin(), "-X".into(), "DELETE".into(), enroll_url("/api/v1/certificate")]);
        assert!(answered_ok(&reply), "restore failed: {reply:?}\n{}", cam.log_text());
    };
    let state = cam.dir.path().join("state");

    // How long from the request to the enrolled certificate served, unkilled. The first
    // enrollment validates the names and is not measured: later orders reuse its authorizations.
    let mut samples = Vec::new();
    for measured in [false, true, true, true] {
        let watch = CommitWatch::new(&state, Commit::Renamed("uploaded.pem"));
        let t = Instant::now();
        assert!(answered_ok(&api(&trust, &configure)), "configuring enrollment failed\n{}", cam.log_text());
        assert!(watch.wait(Duration::from_secs(60)), "no enrolled certificate:\n{}\n{}", cam.log_text(), pebble.log());
        if measured {
            samples.push(t.elapsed());
        }
        let leaf = whole_enrolled(&state.join("uploaded.pem"), &pebble_root);
        assert!(
            served_verified_for(&https, ENROLL_ADDRESS, &pebble_root)[0] == leaf,
            "the enrolled certificate is not served"
        );
        restore(&cam);
    }
    // The fastest: when Pebble's issuance (asynchronous) is not done at the client's first look,
    // the client waits 2 s before it looks again, and nothing happens on the camera meanwhile.
    let window = samples.iter().copied().min().unwrap();

    let mut counts = Counts::default();
    let mut enrolled_leaves: Vec<Vec<u8>> = Vec::new();
    for round in 0..rounds(ENROLL_ROUNDS) {
        let delay = rng.delay(window);
        let watch = CommitWatch::new(&state, Commit::Renamed("uploaded.pem"));
        let request = in_thread(trust.clone(), configure.clone());
        wait_to_kill(round, ENROLL_AT_COMMIT_EVERY, Some(&watch), delay, window);
        let dir = cam.stop();
        let _ = request.join().unwrap();
        counts.kills += 1;

        let finished = last_enrollment_event(&state).as_deref() == Some("enrollment_succeeded");
        let uploaded = state.join("uploaded.pem");
        let enrolled = uploaded.exists().then(|| whole_enrolled(&uploaded, &pebble_root));
        match &enrolled {
            Some(leaf) => {
                assert!(!enrolled_leaves.contains(leaf), "round {round}: an earlier enrolled certificate came back");
                enrolled_leaves.push(leaf.clone());
                counts.record_after(!finished);
            }
            None => {
                assert!(
                    !finished,
                    "round {round} (delay {delay:?}): the success was recorded but no certificate is on disk"
                );
                counts.before += 1;
            }
        }

        cam = start_enrolling_camera(dir, &unreachable_enrollment_config(round, &pebble));
        match &enrolled {
            Some(leaf) => {
                let served = served_verified_for(&https, ENROLL_ADDRESS, &pebble_root);
                assert!(
                    served[0] == *leaf,
                    "round {round}: the served certificate is not the enrolled one\n{}",
                    cam.log_text()
                );
                restore(&cam);
            }
            None => {
                // Its attempt at the unreachable CA is over: nothing else can change what it serves.
                let failed = wait_for(Duration::from_secs(30), || {
                    cam.log_text().contains("Enrollment with acme failed").then_some(())
                });
                assert!(failed.is_some(), "round {round}: no attempt after the restart:\n{}", cam.log_text());
                let served = served_verified_for(&https, ENROLL_ADDRESS, &cam.ca_path());
                assert!(
                    served[0] == device_leaf,
                    "round {round}: the camera's own certificate is not served\n{}",
                    cam.log_text()
                );
            }
        }
        check_dirs(cam.dir.path(), &first_ca, &cam.log_text());
    }
    counts.finish(&format!("powercut {kind}"), "before the success was recorded", seed, window, started);
}
