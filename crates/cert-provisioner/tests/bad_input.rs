//! Bad input and a hostile environment: each failure is a clear one-line message with a non-zero
//! exit, nothing is left half-written, and nothing that was there is lost. A corrupt CA is moved
//! aside (never deleted) and replaced loudly.
//!
//! The tests run as root (CI does), and permission bits do not stop root. To get a real
//! "permission denied" the directory is owned by a user id (65534) that is not mapped into a user
//! namespace made with `unshare -r`: inside it the process is root of its own namespace, but
//! CAP_DAC_OVERRIDE only applies to files whose owner is mapped, so mode 000 holds. A read-only
//! state directory is a read-only bind mount inside `unshare -rm`; a full disk is a tmpfs made
//! exactly as large as what it holds, inside `unshare -rm`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use camera_state::Layout;
use cert_provisioner::{provision_for, CameraConfig};
use common::*;

/// Snapshot of every regular file in a directory: name -> contents.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    entries(dir)
        .into_iter()
        .filter(|n| dir.join(n).is_file())
        .map(|n| {
            let bytes = read(&dir.join(&n));
            (n, bytes)
        })
        .collect()
}

/// Runs `script` under `unshare <flags>` with $BIN set; fails clearly if namespaces are unavailable.
fn in_namespace(flags: &str, script: &str) -> Run {
    assert!(
        unshare_works(flags),
        "`unshare {flags}` does not work here: these tests need unprivileged user and mount namespaces (util-linux unshare)"
    );
    let out = std::process::Command::new("unshare")
        .args(flags.split_whitespace())
        .args(["sh", "-c", script])
        .env("BIN", BIN)
        .env("RUST_BACKTRACE", "0")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    Run::from_output(out)
}

#[test]
fn state_dir_that_is_a_regular_file_is_refused() {
    let dir = TempDir::new("bad-file");
    std::fs::write(dir.state(), b"precious").unwrap();
    let line = provision(&dir, &[]).assert_one_line_failure();
    assert!(line.contains("not a directory"), "{line}");
    assert!(line.contains(&dir.state().display().to_string()), "the line names the path: {line}");
    assert_eq!(read(&dir.state()), b"precious", "the file is untouched");
}

#[test]
fn run_dir_that_is_a_regular_file_is_refused_and_the_ca_is_kept() {
    let dir = TempDir::new("bad-runfile");
    provision(&dir, &[]).assert_ok();
    let before = snapshot(&dir.state());
    std::fs::remove_dir_all(dir.run()).unwrap();
    std::fs::write(dir.run(), b"x").unwrap();
    let line = provision(&dir, &[]).assert_one_line_failure();
    assert!(line.contains("not a directory"), "{line}");
    assert_eq!(snapshot(&dir.state()), before);
}

#[test]
fn unreadable_state_dir_is_refused() {
    let dir = TempDir::new("bad-unreadable");
    provision(&dir, &[]).assert_ok();
    let before = snapshot(&dir.state());
    sh(&format!("chown -R 65534:65534 {0} && chmod 000 {0}", q(dir.state()))).assert_ok();
    let run = in_namespace("-r", &format!("exec \"$BIN\" --state-dir {} --run-dir {}", q(dir.state()), q(dir.run())));
    let line = run.assert_one_line_failure();
    assert!(line.contains("Permission denied"), "{line}");
    assert!(line.contains(&dir.state().display().to_string()), "{line}");
    sh(&format!("chmod 700 {}", q(dir.state()))).assert_ok();
    assert_eq!(snapshot(&dir.state()), before, "nothing in the state dir changed");
    assert_no_temporaries(&dir.state());
}

#[test]
fn unreadable_ca_key_is_an_error_not_a_reason_to_replace_the_ca() {
    let dir = TempDir::new("bad-unreadable-key");
    provision(&dir, &[]).assert_ok();
    let before = snapshot(&dir.state());
    sh(&format!("chown 65534:65534 {0} && chmod 000 {0}", q(dir.state().join("ca.key")))).assert_ok();
    let run = in_namespace("-r", &format!("exec \"$BIN\" --state-dir {} --run-dir {}", q(dir.state()), q(dir.run())));
    let line = run.assert_one_line_failure();
    assert!(line.contains("ca.key") && line.contains("Permission denied"), "{line}");
    assert_eq!(snapshot(&dir.state()), before, "the CA must not be replaced because it could not be read");
    assert!(!entries(&dir.state()).iter().any(|n| n.contains("corrupt")));
}

#[test]
fn read_only_state_dir_on_first_boot_is_refused() {
    let dir = TempDir::new("bad-ro");
    std::fs::create_dir_all(dir.state()).unwrap();
    let script = format!(
        "mount --bind {s} {s} && mount -o remount,bind,ro {s} && exec \"$BIN\" --state-dir {s} --run-dir {r}",
        s = q(dir.state()),
        r = q(dir.run())
    );
    let run = in_namespace("-rm", &script);
    let line = run.assert_one_line_failure();
    assert!(line.contains("Read-only file system"), "{line}");
    assert!(entries(&dir.state()).is_empty());
}

#[test]
fn read_only_state_dir_with_a_ca_still_mints_the_server_certificate() {
    // Flash remounted read-only after an error must not leave the camera without HTTPS: the CA is
    // there and the server certificate goes to the run dir (tmpfs).
    let dir = TempDir::new("bad-ro-existing");
    provision(&dir, &[]).assert_ok();
    let before = snapshot(&dir.state());
    let old_leaf = split_bundle(&dir.run().join("server.pem")).leaf_der;
    let script = format!(
        "mount --bind {s} {s} && mount -o remount,bind,ro {s} && exec \"$BIN\" --state-dir {s} --run-dir {r}",
        s = q(dir.state()),
        r = q(dir.run())
    );
    let run = in_namespace("-rm", &script);
    run.assert_ok();
    assert!(run.summary().contains("(existing)"), "{}", run.stdout);
    assert!(run.stderr.contains("read-only"), "a warning says so: {}", run.stderr);
    assert_eq!(snapshot(&dir.state()), before);
    let bundle = split_bundle(&dir.run().join("server.pem"));
    assert_ne!(bundle.leaf_der, old_leaf);
    webpki_verify(&cert_der(&dir.state().join("ca.crt")), &bundle.leaf_der, &[]).unwrap();
}

/// Copies `src`'s state and run dirs onto a tmpfs inside a mount namespace, shrinks the tmpfs to
/// exactly what they use (or to `size_kib`), runs the provisioner, and copies the result to `out`.
fn on_full_tmpfs(src: &TempDir, out: &TempDir, size_kib: Option<u64>) -> Run {
    let mnt = out.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let shrink = match size_kib {
        Some(k) => format!("mount -o remount,size={k}k \"$M\""),
        None => {
            "used=$(df -k --output=used \"$M\" | tail -n 1 | tr -d ' ') && mount -o remount,size=${used}k \"$M\"".into()
        }
    };
    let script = format!(
        r#"M={mnt}
mount -t tmpfs -o size=1m,mode=700 tmpfs "$M" || exit 90
if [ -d {src_state} ]; then cp -a {src_state} "$M/state" && cp -a {src_run} "$M/run" || exit 91; fi
{shrink} || exit 92
echo "tmpfs: $(df -k --output=size,used,avail "$M" | tail -n 1)" >&3
"$BIN" --state-dir "$M/state" --run-dir "$M/run"
rc=$?
mkdir -p {out}/result && cp -a "$M/." {out}/result/ || exit 93
exit $rc"#,
        mnt = q(&mnt),
        src_state = q(src.state()),
        src_run = q(src.run()),
        out = q(out.path()),
    );
    // fd 3 carries the tmpfs figures to the test's own stderr.
    in_namespace("-rm", &format!("{{ {script}\n}} 3>&2"))
}

#[test]
fn full_disk_keeps_the_old_certificate_and_leaves_no_temporary() {
    let src = TempDir::new("full-src");
    provision(&src, &[]).assert_ok();
    let state_before = snapshot(&src.state());
    let run_before = snapshot(&src.run());
    let out = TempDir::new("full-out");
    let run = on_full_tmpfs(&src, &out, None);
    eprintln!("{}", run.stderr);
    // The tmpfs line is ours; the provisioner's is the last.
    let stderr: Vec<&str> = run.stderr.lines().filter(|l| !l.starts_with("tmpfs:")).collect();
    let run = Run { stderr: stderr.iter().map(|l| format!("{l}\n")).collect(), ..run };
    let line = run.assert_one_line_failure();
    assert!(line.contains("No space left on device") && line.contains("server.pem"), "{line}");
    let result = out.join("result");
    assert_eq!(snapshot(&result.join("state")), state_before, "the CA is intact");
    assert_eq!(snapshot(&result.join("run")), run_before, "the old server certificate is still in place");
    assert_no_temporaries(&result.join("state"));
    assert_no_temporaries(&result.join("run"));
}

#[test]
fn disk_too_small_for_the_ca_fails_cleanly_and_the_next_boot_recovers() {
    let empty = TempDir::new("tiny-src");
    let out = TempDir::new("tiny-out");
    let page_kib = sh("getconf PAGESIZE").stdout.trim().parse::<u64>().unwrap() / 1024;
    // One page: the CA key fits, its certificate does not.
    let run = on_full_tmpfs(&empty, &out, Some(page_kib));
    let stderr: String = run.stderr.lines().filter(|l| !l.starts_with("tmpfs:")).map(|l| format!("{l}\n")).collect();
    let run = Run { stderr, ..run };
    let line = run.assert_one_line_failure();
    assert!(line.contains("No space left on device"), "{line}");
    let result = out.join("result");
    let state = entries(&result.join("state"));
    assert!(!state.iter().any(|n| n == "ca.crt"), "no certificate without room for it: {state:?}");
    assert_no_temporaries(&result.join("state"));
    assert_no_temporaries(&result.join("run"));

    // Next boot with room: the lone key (an interrupted first boot) is moved aside, a new CA is made.
    let dir = TempDir::new("tiny-next");
    sh(&format!("cp -a {}/. {}/", q(&result), q(dir.path()))).assert_ok();
    let run = provision(&dir, &[]);
    run.assert_ok();
    assert!(run.summary().contains("(created)"), "{}", run.stdout);
    let names = entries(&dir.state());
    if state.iter().any(|n| n == "ca.key") {
        assert!(names.iter().any(|n| n.starts_with("ca.key.incomplete-")), "{names:?}");
    }
    assert!(!names.iter().any(|n| n == "ca-replaced.json"), "{names:?}");
}

fn assert_replaced(dir: &TempDir, run: &Run, old_crt: &[u8], old_key: &[u8], suffix: &str) {
    run.assert_ok();
    let summary = run.summary();
    assert!(summary.contains("(replaced)"), "{summary}");
    assert!(run.stderr.contains("warning: THE CAMERA CA WAS REPLACED"), "a loud warning: {}", run.stderr);
    assert!(!run.stderr.contains("PRIVATE KEY"));
    let state = dir.state();
    let names = entries(&state);
    let moved_crt = names.iter().find(|n| n.starts_with(&format!("ca.crt.{suffix}-")));
    let moved_key = names.iter().find(|n| n.starts_with(&format!("ca.key.{suffix}-")));
    if !old_crt.is_empty() {
        let moved = moved_crt.unwrap_or_else(|| panic!("old ca.crt not moved aside: {names:?}"));
        assert_eq!(read(&state.join(moved)), old_crt, "moved aside unchanged");
    }
    if !old_key.is_empty() {
        let moved = moved_key.unwrap_or_else(|| panic!("old ca.key not moved aside: {names:?}"));
        assert_eq!(read(&state.join(moved)), old_key, "moved aside unchanged");
        assert_eq!(mode(&state.join(moved)) & 0o077, 0, "a moved-aside key stays private");
    }
    let record: serde_json::Value = serde_json::from_slice(&read(&state.join("ca-replaced.json"))).unwrap();
    assert!(record["reason"].as_str().is_some_and(|r| !r.is_empty()), "{record}");
    assert!(record["moved_aside"].as_array().is_some_and(|a| !a.is_empty()), "{record}");
    let new_ca = cert_der(&state.join("ca.crt"));
    assert_eq!(record["new_ca_sha256"], camera_pki::fingerprint(&new_ca), "{record}");
    assert_ne!(read(&state.join("ca.crt")), old_crt);
    assert_eq!(mode(&state.join("ca.key")), 0o600);
    let bundle = split_bundle(&dir.run().join("server.pem"));
    assert_eq!(bundle.ca_der, new_ca, "the server certificate is from the new CA");
    webpki_verify(&new_ca, &bundle.leaf_der, &[]).unwrap();
    // The next run uses the new CA quietly.
    let again = provision(dir, &[]);
    again.assert_ok();
    assert!(again.summary().contains("(existing)"), "{}", again.stdout);
}

#[test]
fn garbage_in_ca_crt_replaces_the_ca_loudly_and_keeps_the_old_files() {
    let dir = TempDir::new("bad-corrupt-crt");
    provision(&dir, &[]).assert_ok();
    let garbage = b"\x00\x01 this is not a certificate \xff\n".to_vec();
    std::fs::write(dir.state().join("ca.crt"), &garbage).unwrap();
    let old_key = read(&dir.state().join("ca.key"));
    let run = provision(&dir, &[]);
    assert_replaced(&dir, &run, &garbage, &old_key, "corrupt");
}

#[test]
fn truncated_ca_key_replaces_the_ca_loudly_and_keeps_the_old_files() {
    let dir = TempDir::new("bad-truncated-key");
    provision(&dir, &[]).assert_ok();
    let key = read(&dir.state().join("ca.key"));
    let truncated = key[..key.len() / 2].to_vec();
    std::fs::write(dir.state().join("ca.key"), &truncated).unwrap();
    let old_crt = read(&dir.state().join("ca.crt"));
    let run = provision(&dir, &[]);
    assert_replaced(&dir, &run, &old_crt, &truncated, "corrupt");
}

#[test]
fn ca_key_of_another_ca_replaces_the_ca() {
    let dir = TempDir::new("bad-mismatch");
    let other = TempDir::new("bad-mismatch-other");
    provision(&dir, &[]).assert_ok();
    provision(&other, &[]).assert_ok();
    let foreign_key = read(&other.state().join("ca.key"));
    std::fs::write(dir.state().join("ca.key"), &foreign_key).unwrap();
    let old_crt = read(&dir.state().join("ca.crt"));
    let run = provision(&dir, &[]);
    assert_replaced(&dir, &run, &old_crt, &foreign_key, "corrupt");
    let record = read_string(&dir.state().join("ca-replaced.json"));
    assert!(record.contains("does not belong"), "{record}");
}

#[test]
fn ca_crt_without_key_replaces_the_ca() {
    let dir = TempDir::new("bad-nokey");
    provision(&dir, &[]).assert_ok();
    std::fs::remove_file(dir.state().join("ca.key")).unwrap();
    let old_crt = read(&dir.state().join("ca.crt"));
    let run = provision(&dir, &[]);
    assert_replaced(&dir, &run, &old_crt, &[], "corrupt");
}

#[test]
fn ca_key_without_certificate_is_an_interrupted_first_boot() {
    let dir = TempDir::new("bad-incomplete");
    provision(&dir, &[]).assert_ok();
    // What a power cut between writing ca.key and ca.crt leaves: the key only (the CA was never
    // in use, so its fingerprint was never recorded either).
    std::fs::remove_file(dir.state().join("ca.crt")).unwrap();
    std::fs::remove_file(dir.state().join("ca-in-use.sha256")).unwrap();
    let old_key = read(&dir.state().join("ca.key"));
    let run = provision(&dir, &[]);
    run.assert_ok();
    assert!(run.summary().contains("(created)"), "{}", run.stdout);
    let names = entries(&dir.state());
    let moved = names
        .iter()
        .find(|n| n.starts_with("ca.key.incomplete-"))
        .unwrap_or_else(|| panic!("lone key not moved aside: {names:?}"));
    assert_eq!(read(&dir.state().join(moved)), old_key);
    assert!(!names.iter().any(|n| n == "ca-replaced.json"), "nobody imported that CA: no replacement record");
    assert!(!run.stderr.contains("REPLACED"), "{}", run.stderr);
}

#[test]
fn stale_temporaries_from_a_power_cut_are_cleaned_up() {
    let dir = TempDir::new("bad-stale");
    provision(&dir, &[]).assert_ok();
    let before = read(&dir.state().join("ca.crt"));
    std::fs::write(dir.state().join(".tmp-ca.crt-4242"), b"-----BEGIN CERT").unwrap();
    std::fs::write(dir.run().join(".tmp-server.pem-4242"), b"half").unwrap();
    let run = provision(&dir, &[]);
    run.assert_ok();
    assert!(run.summary().contains("(existing)"));
    assert_no_temporaries(&dir.state());
    assert_no_temporaries(&dir.run());
    assert_eq!(read(&dir.state().join("ca.crt")), before);
}

#[test]
fn a_second_replacement_at_the_same_clock_second_does_not_overwrite_the_first() {
    // Cameras without a real-time clock boot at the same second of 1970 every time, so two
    // replacements can get the same timestamp suffix.
    let dir = TempDir::new("bad-same-second");
    let layout = Layout::new(dir.state(), dir.run());
    let config = CameraConfig { hostname: Some("testcam".into()), ..CameraConfig::default() };
    let now = UNIX_EPOCH + Duration::from_secs(12);
    let addrs = ["10.0.0.5".parse().unwrap()];
    provision_for(&layout, &config, &addrs, now).unwrap();
    std::fs::write(layout.ca_cert(), b"first garbage").unwrap();
    provision_for(&layout, &config, &addrs, now).unwrap();
    std::fs::write(layout.ca_cert(), b"second garbage").unwrap();
    provision_for(&layout, &config, &addrs, now).unwrap();
    let moved: Vec<Vec<u8>> = entries(&layout.state_dir)
        .iter()
        .filter(|n| n.starts_with("ca.crt.corrupt-"))
        .map(|n| read(&layout.state_dir.join(n)))
        .collect();
    assert!(moved.contains(&b"first garbage".to_vec()), "the first moved-aside file was overwritten");
    assert!(moved.contains(&b"second garbage".to_vec()));
    let keys = entries(&layout.state_dir).iter().filter(|n| n.starts_with("ca.key.corrupt-")).count();
    assert_eq!(keys, 2, "both old keys are kept");
}
