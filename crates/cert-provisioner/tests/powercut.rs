//! Power cut at any moment: the cert-provisioner binary is SIGKILLed at random points during
//! first-boot CA creation and during a re-mint (a config change), then run again. At the kill the
//! CA is absent, or whole (`issuing-ca.pem`, its commit point, written; `ca.crt`, the copy of its
//! root, written after it or not yet); there is never a `ca.key`; the minted bundle is the old one
//! or a whole new one. The rerun exits 0, keeps a CA that was committed and writes its `ca.crt`,
//! never takes the corrupt-CA path (no `*.corrupt-*`, no `ca-replaced.json`), leaves no `.tmp-*`
//! file, and its server certificate verifies against `ca.crt` with the issuing CA as the chain.
//!
//! Each kind measures an unkilled run first and spreads the kills over 0..1.5x of it, one in four
//! over 0..8x (`camera_test_support::kill_schedule`, microsecond resolution). Every tenth kill instead
//! waits for the commit itself (inotify reports the rename of `issuing-ca.pem`, or of
//! `server.pem`) and strikes at once: what follows the commit (the directory fsync, `ca.crt`, the
//! clock, the exit) is too short for random kills to hit reliably. Kills must land on both sides
//! of the commit point, and some after it while the run was still going (`after_in_window`).
//! `POWERCUT_ROUNDS` = kills per kind (default 150), `POWERCUT_SEED` replays a run (the seed is
//! printed). SIGKILL proves atomicity against process death; durability against a real power
//! loss rests on the fsyncs.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use camera_test_support::kill_schedule::{rounds, Counts, Rng};
use common::*;

const DEFAULT_ROUNDS: usize = 150;

fn spawn(dir: &TempDir, config: &Path) -> Child {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(dir.state())
        .arg("--run-dir")
        .arg(dir.run())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Measures an unkilled run (median of three, each on a directory `prepare` made).
fn measure(mut prepare: impl FnMut() -> (TempDir, std::path::PathBuf)) -> Duration {
    let mut samples: Vec<Duration> = (0..3)
        .map(|_| {
            let (dir, config) = prepare();
            let t = Instant::now();
            let status = spawn(&dir, &config).wait().unwrap();
            assert!(status.success());
            t.elapsed()
        })
        .collect();
    samples.sort();
    samples[1]
}

/// Runs until `delay` after it started, then SIGKILL. True if it was still running.
fn run_and_kill(dir: &TempDir, config: &Path, delay: Duration) -> bool {
    let t = Instant::now();
    let mut child = spawn(dir, config);
    std::thread::sleep(delay.saturating_sub(t.elapsed()));
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    child.wait().unwrap();
    running
}

/// Every this many rounds, the kill follows the commit instead of a random delay.
const AT_COMMIT_EVERY: usize = 10;

/// How one round kills the run.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// This long after the start.
    After(Duration),
    /// As soon as `file` is renamed into place in its directory (the commit point).
    AtCommit { file: &'static str },
}

/// Runs until the kill, then SIGKILL. True if it was still running.
fn run_and(dir: &TempDir, config: &Path, kill: Kill) -> bool {
    match kill {
        Kill::After(delay) => run_and_kill(dir, config, delay),
        Kill::AtCommit { file } => run_and_kill_at_commit(dir, config, file),
    }
}

/// Runs until `file` is renamed into place, then SIGKILL at once. True if it was still running.
fn run_and_kill_at_commit(dir: &TempDir, config: &Path, file: &str) -> bool {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let watched = if file == "server.pem" { dir.run() } else { dir.state() };
    // The provisioner accepts existing directories (on a camera the state dir is a mount point).
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&watched).unwrap();
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).unwrap();
    inotify.add_watch(&watched, AddWatchFlags::IN_MOVED_TO).unwrap();
    let mut child = spawn(dir, config);
    let deadline = Instant::now() + Duration::from_secs(30);
    'wait: while Instant::now() < deadline {
        let mut fds = [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(&inotify), nix::poll::PollFlags::POLLIN)];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16));
        if let Ok(events) = inotify.read_events() {
            if events.iter().any(|e| e.name.as_deref() == Some(std::ffi::OsStr::new(file))) {
                break 'wait;
            }
        }
        if child.try_wait().unwrap().is_some() {
            break; // finished without the commit being seen: counted as not running
        }
    }
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    child.wait().unwrap();
    running
}

/// The kill of round `round`: at the commit of `file` every [`AT_COMMIT_EVERY`] rounds, else random.
fn kill_for(round: usize, rng: &mut Rng, window: Duration, file: &'static str) -> Kill {
    if round % AT_COMMIT_EVERY == AT_COMMIT_EVERY - 1 {
        Kill::AtCommit { file }
    } else {
        Kill::After(rng.delay(window))
    }
}

/// Whether the first key and the first certificate of a PEM file belong together (openssl).
fn key_matches_certificate(path: &Path) -> bool {
    let key = openssl([std::ffi::OsStr::new("pkey"), "-in".as_ref(), path.as_os_str(), "-pubout".as_ref()]);
    let cert = openssl([
        std::ffi::OsStr::new("x509"),
        "-in".as_ref(),
        path.as_os_str(),
        "-noout".as_ref(),
        "-pubkey".as_ref(),
    ]);
    key.ok() && cert.ok() && key.stdout == cert.stdout
}

/// After a rerun: it succeeded without replacing the CA, the CA is whole with `ca.crt` its root
/// (and `issuing-ca.pem` is `expected` if given), the bundle verifies against it, and only known
/// files are left. Returns `issuing-ca.pem`.
fn check_rerun(dir: &TempDir, config: &Path, expected: Option<&[u8]>) -> Vec<u8> {
    let rerun = provision(dir, &["--config", config.to_str().unwrap()]);
    rerun.assert_ok();
    let summary = rerun.summary();
    assert!(!summary.contains("(replaced)"), "{summary}");
    assert!(!rerun.stderr.contains("REPLACED"), "{}", rerun.stderr);
    let state = dir.state();
    let ca = assert_two_tier(&state);
    let committed = read(&state.join("issuing-ca.pem"));
    if let Some(expected) = expected {
        assert!(committed == expected, "the CA committed before the kill was replaced ({summary})");
        assert!(summary.contains("(existing)"), "{summary}");
    }
    let bundle = verify_served(dir, &["127.0.0.1".to_owned()]).unwrap();
    assert_eq!(bundle.signer_der, ca.issuing_der, "the bundle carries another issuing CA");
    assert_no_temporaries(&state);
    assert_no_temporaries(&dir.run());
    assert_eq!(entries(&state), [".lock", "ca-in-use.sha256", "ca.crt", "clock", "issuing-ca.pem"]);
    assert_eq!(entries(&dir.run()), ["server.pem"]);
    committed
}

#[test]
fn first_boot_killed_at_random_points_creates_one_whole_ca() {
    let kind = "first-boot";
    let started = Instant::now();
    let (mut rng, seed) = Rng::for_kind(kind);
    println!("powercut provisioner {kind}: seed {seed}");
    let json = r#"{"camera": {"loopback": true}}"#;
    let window = measure(|| {
        let dir = TempDir::new("powercut-measure");
        let config = config_file(&dir, json);
        (dir, config)
    });
    let mut counts = Counts::default();
    let mut at_commit = (0, 0);
    for round in 0..rounds(DEFAULT_ROUNDS) {
        let dir = TempDir::new("powercut-firstboot");
        let config = config_file(&dir, json);
        let delay = kill_for(round, &mut rng, window, "issuing-ca.pem");
        let running = run_and(&dir, &config, delay);
        if matches!(delay, Kill::AtCommit { .. }) {
            at_commit = (at_commit.0 + 1, at_commit.1 + usize::from(running));
        }
        counts.kills += 1;
        let state = dir.state();
        assert!(!state.join("ca.key").exists(), "round {round} ({delay:?}): a two-tier camera writes no ca.key");
        let issuing_ca = std::fs::read(state.join("issuing-ca.pem")).ok();
        let ca_crt = std::fs::read(state.join("ca.crt")).ok();
        let committed = match (&issuing_ca, &ca_crt) {
            (Some(issuing_ca), ca_crt) => {
                assert_eq!(mode(&state.join("issuing-ca.pem")), 0o600, "round {round}");
                let ca = camera_pki::CameraCa::from_pem(issuing_ca, issuing_ca)
                    .unwrap_or_else(|e| panic!("round {round} ({delay:?}): a committed CA is not whole: {e}"));
                assert!(ca.is_two_tier(), "round {round}");
                match ca_crt {
                    Some(ca_crt) => {
                        assert!(
                            *ca_crt == ca.anchor_pem().as_bytes(),
                            "round {round} ({delay:?}): ca.crt is not the root"
                        );
                        counts.record_after(running);
                    }
                    None => counts.between += 1,
                }
                Some(issuing_ca.clone())
            }
            (None, None) => {
                counts.before += 1;
                None
            }
            (None, Some(_)) => panic!("round {round} ({delay:?}): ca.crt before the CA's commit point"),
        };
        check_rerun(&dir, &config, committed.as_deref());
    }
    println!(
        "powercut provisioner {kind}: {} kills at the commit, {} of them while it still ran",
        at_commit.0, at_commit.1
    );
    counts.finish(&format!("powercut provisioner {kind}"), "while it still ran", seed, window, started);
    assert!(
        counts.after_in_window > 0,
        "{kind}: no kill landed after the commit point while the run went on: {counts:?}"
    );
}

#[test]
fn re_mint_killed_at_random_points_leaves_the_old_or_a_whole_new_certificate() {
    let kind = "re-mint";
    let started = Instant::now();
    let (mut rng, seed) = Rng::for_kind(kind);
    println!("powercut provisioner {kind}: seed {seed}");
    let json = |n: usize| format!(r#"{{"camera": {{"loopback": true, "extra_names": ["cam-{n}.home.arpa"]}}}}"#);
    let dir = TempDir::new("powercut-remint");
    let config = config_file(&dir, &json(0));
    let ca = check_rerun(&dir, &config, None);
    let root = read(&dir.state().join("ca.crt"));
    let window = measure(|| {
        let d = TempDir::new("powercut-remint-measure");
        for name in ["state", "run"] {
            // Same CA, so the measured run re-mints like the killed ones do.
            let _ = Command::new("cp").arg("-a").arg(dir.join(name)).arg(d.path()).status();
        }
        let config = config_file(&d, &json(1));
        (d, config)
    });
    let bundle_path = dir.run().join("server.pem");
    let mut counts = Counts::default();
    let mut at_commit = (0, 0);
    for round in 1..=rounds(DEFAULT_ROUNDS) {
        let old = read(&bundle_path);
        let config = config_file(&dir, &json(round));
        let delay = kill_for(round, &mut rng, window, "server.pem");
        let running = run_and(&dir, &config, delay);
        if matches!(delay, Kill::AtCommit { .. }) {
            at_commit = (at_commit.0 + 1, at_commit.1 + usize::from(running));
        }
        counts.kills += 1;
        let now = std::fs::read(&bundle_path).ok();
        assert!(now.is_some(), "round {round} ({delay:?}): neither the old nor a new server.pem");
        if now.as_ref() == Some(&old) {
            counts.before += 1;
        } else {
            let bundle = split_bundle(&bundle_path);
            assert!(
                san_names(&bundle.leaf_der).contains(&format!("cam-{round}.home.arpa")),
                "round {round}: a new bundle for other names"
            );
            assert!(
                key_matches_certificate(&bundle_path),
                "round {round}: the key in the new bundle is not the leaf's"
            );
            assert_eq!(bundle.signer_der, read_issuing_ca(&dir.state()).issuing_der);
            counts.record_after(running);
        }
        assert!(read(&dir.state().join("issuing-ca.pem")) == ca, "round {round}: the CA changed");
        assert!(read(&dir.state().join("ca.crt")) == root, "round {round}: ca.crt changed");
        check_rerun(&dir, &config, Some(&ca));
    }
    println!(
        "powercut provisioner {kind}: {} kills at the commit, {} of them while it still ran",
        at_commit.0, at_commit.1
    );
    counts.finish(&format!("powercut provisioner {kind}"), "while it still ran", seed, window, started);
    assert!(
        counts.after_in_window > 0,
        "{kind}: no kill landed after the commit point while the run went on: {counts:?}"
    );
}
