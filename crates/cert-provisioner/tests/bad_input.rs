//! Bad input and a hostile environment: each failure is a clear one-line message with a non-zero
//! exit, nothing is left half-written, and nothing that was there is lost. A corrupt CA is moved
//! aside (never deleted) and replaced loudly by a two-tier CA. The damaged-file cases run on a
//! one-tier CA (`ca.crt` + `ca.key`, what cameras made before two tiers keep) and on a two-tier one
//! (`issuing-ca.pem`, the whole CA, and `ca.crt`, the copy of its root).
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

use camera_config::CameraConfig;
use camera_provision::provision_for;
use camera_state::Layout;
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

/// [`snapshot`] without the clock floor, which a run saves with the wall clock's second.
fn snapshot_but_the_clock(dir: &Path) -> Vec<(String, Vec<u8>)> {
    snapshot(dir).into_iter().filter(|(name, _)| name != "clock").collect()
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

/// Makes `file` in `dir`'s state unreadable (owned by an unmapped user, mode 000) and runs the
/// provisioner in a user namespace: a one-line failure naming the file, and nothing changed.
fn assert_unreadable_file_is_an_error(dir: &TempDir, file: &str) {
    let before = snapshot(&dir.state());
    sh(&format!("chown 65534:65534 {0} && chmod 000 {0}", q(dir.state().join(file)))).assert_ok();
    let run = in_namespace("-r", &format!("exec \"$BIN\" --state-dir {} --run-dir {}", q(dir.state()), q(dir.run())));
    let line = run.assert_one_line_failure();
    assert!(line.contains(file) && line.contains("Permission denied"), "{line}");
    sh(&format!("chmod 600 {}", q(dir.state().join(file)))).assert_ok();
    assert_eq!(snapshot(&dir.state()), before, "the CA must not be replaced because it could not be read");
    assert!(!entries(&dir.state()).iter().any(|n| n.contains("corrupt")));
}

#[test]
fn unreadable_ca_key_is_an_error_not_a_reason_to_replace_the_ca() {
    let dir = TempDir::new("bad-unreadable-key");
    one_tier_camera(&dir);
    assert_unreadable_file_is_an_error(&dir, "ca.key");
}

#[test]
fn unreadable_issuing_ca_is_an_error_not_a_reason_to_replace_the_ca() {
    let dir = TempDir::new("bad-unreadable-issuing");
    provision(&dir, &[]).assert_ok();
    assert_unreadable_file_is_an_error(&dir, "issuing-ca.pem");
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
    for one_tier in [false, true] {
        let dir = TempDir::new("bad-ro-existing");
        if one_tier {
            seed_one_tier_ca(&dir.state(), false);
        }
        provision(&dir, &[]).assert_ok();
        let before = snapshot(&dir.state());
        let old_leaf = split_bundle(&dir.run().join("server.pem")).leaf_der;
        let run = on_read_only_state_dir(&dir);
        run.assert_ok();
        assert!(run.summary().contains("(existing)"), "{}", run.stdout);
        assert!(run.stderr.contains("read-only"), "a warning says so: {}", run.stderr);
        assert_eq!(snapshot(&dir.state()), before);
        let bundle = verify_served(&dir, &[]).unwrap();
        assert_ne!(bundle.leaf_der, old_leaf);
    }
}

/// Runs the provisioner with `dir`'s state dir bind-mounted read-only (flash remounted read-only
/// after an error).
fn on_read_only_state_dir(dir: &TempDir) -> Run {
    let script = format!(
        "mount --bind {s} {s} && mount -o remount,bind,ro {s} && exec \"$BIN\" --state-dir {s} --run-dir {r}",
        s = q(dir.state()),
        r = q(dir.run())
    );
    in_namespace("-rm", &script)
}

/// A power cut after the commit point of first boot (`issuing-ca.pem` written) leaves a whole CA
/// without `ca.crt`, or without the record of the CA in use; a one-tier CA found beside a two-tier
/// one waits to be moved aside. If the flash then comes back read-only, the writes that sit
/// beside the CA wait for a writable boot: the camera still serves HTTPS from the CA it has.
#[test]
fn read_only_state_dir_after_a_power_cut_past_the_commit_point_still_mints() {
    type Leave = fn(&Path);
    let leftovers: [(&str, Leave); 3] = [
        ("ca.crt missing", |state| std::fs::remove_file(state.join("ca.crt")).unwrap()),
        ("ca-in-use.sha256 missing", |state| std::fs::remove_file(state.join("ca-in-use.sha256")).unwrap()),
        ("a one-tier CA beside", |state| {
            let (cert, key) = one_tier_ca(&camera_pki::NameConstraintsPolicy::default());
            write_one_tier_ca(state, &cert, &key);
        }),
    ];
    for (case, leave) in leftovers {
        let dir = TempDir::new("bad-ro-committed");
        provision(&dir, &[]).assert_ok();
        let ca = read_issuing_ca(&dir.state());
        leave(&dir.state());
        let before = snapshot(&dir.state());
        let run = on_read_only_state_dir(&dir);
        if !run.ok() {
            run.fail(&format!("{case}: no HTTPS on a read-only state dir with a whole CA"));
        }
        assert!(run.summary().contains("(existing)"), "{case}: {}", run.stdout);
        assert!(run.stderr.contains("read-only"), "{case}: a warning says so: {}", run.stderr);
        assert_eq!(snapshot(&dir.state()), before, "{case}");
        let bundle = split_bundle(&dir.run().join("server.pem"));
        assert_eq!(bundle.signer_der, ca.issuing_der, "{case}");
        webpki_verify(&ca.root_der, &[&bundle.signer_der], &bundle.leaf_der, &[]).unwrap();

        // The next writable boot does what waited, and nothing else.
        let run = provision(&dir, &[]);
        run.assert_ok();
        assert_two_tier(&dir.state());
        assert_eq!(read_string(&dir.state().join("ca-in-use.sha256")).trim(), camera_pki::fingerprint(&ca.root_der));
        let names = entries(&dir.state());
        assert!(!names.iter().any(|n| n.contains("corrupt")), "{case}: {names:?}");
        if case == "a one-tier CA beside" {
            assert!(names.iter().filter(|n| n.contains(".superseded-")).count() == 2, "{case}: {names:?}");
        } else {
            assert!(!names.iter().any(|n| n == "ca-replaced.json"), "{case}: {names:?}");
        }
    }
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
    // One page: issuing-ca.pem (the commit point) fits, ca.crt does not.
    let run = on_full_tmpfs(&empty, &out, Some(page_kib));
    let stderr: String = run.stderr.lines().filter(|l| !l.starts_with("tmpfs:")).map(|l| format!("{l}\n")).collect();
    let run = Run { stderr, ..run };
    let line = run.assert_one_line_failure();
    assert!(line.contains("No space left on device") && line.contains("ca.crt"), "{line}");
    let result = out.join("result");
    let state = entries(&result.join("state"));
    assert!(state.iter().any(|n| n == "issuing-ca.pem"), "the CA was committed: {state:?}");
    assert!(!state.iter().any(|n| n == "ca.crt"), "no certificate without room for it: {state:?}");
    let committed = read(&result.join("state").join("issuing-ca.pem"));
    assert_no_temporaries(&result.join("state"));
    assert_no_temporaries(&result.join("run"));

    // Next boot with room: the committed CA is kept, and its root copied to ca.crt.
    let dir = TempDir::new("tiny-next");
    sh(&format!("cp -a {}/. {}/", q(&result), q(dir.path()))).assert_ok();
    let run = provision(&dir, &[]);
    run.assert_ok();
    assert!(run.summary().contains("(existing)"), "{}", run.stdout);
    assert_two_tier(&dir.state());
    assert_eq!(read(&dir.state().join("issuing-ca.pem")), committed, "the same CA");
    let names = entries(&dir.state());
    assert!(!names.iter().any(|n| n == "ca-replaced.json" || n.contains("corrupt")), "{names:?}");
    verify_served(&dir, &[]).unwrap();
}

/// A replaced CA: the run says so loudly, each `(file, contents)` in `moved` was moved aside with
/// `suffix` unchanged (keys stay private) and is listed in `ca-replaced.json` with `reason`, and a
/// new two-tier CA signs the server certificate. Returns the new CA's files.
fn assert_replaced(dir: &TempDir, run: &Run, moved: &[(&str, &[u8])], suffix: &str, reason: &str) -> IssuingCa {
    run.assert_ok();
    let summary = run.summary();
    assert!(summary.contains("(replaced)"), "{summary}");
    assert!(run.stderr.contains("warning: THE CAMERA CA WAS REPLACED"), "a loud warning: {}", run.stderr);
    assert!(!run.stderr.contains("PRIVATE KEY"));
    let state = dir.state();
    let names = entries(&state);
    let record: serde_json::Value = serde_json::from_slice(&read(&state.join("ca-replaced.json"))).unwrap();
    let listed: Vec<&str> = record["moved_aside"].as_array().unwrap().iter().filter_map(|p| p.as_str()).collect();
    assert_eq!(listed.len(), moved.len(), "{record}");
    for (file, old) in moved {
        let aside = names
            .iter()
            .find(|n| n.starts_with(&format!("{file}.{suffix}-")))
            .unwrap_or_else(|| panic!("old {file} not moved aside: {names:?}"));
        assert_eq!(read(&state.join(aside)), *old, "{file} moved aside unchanged");
        if *file == "ca.crt" {
            assert_ne!(read(&state.join("ca.crt")), *old, "ca.crt is the new root");
        } else {
            assert_eq!(mode(&state.join(aside)), 0o600, "a moved-aside key stays private");
        }
        assert!(listed.contains(&state.join(aside).to_str().unwrap()), "{aside} not in the record: {record}");
    }
    assert!(record["reason"].as_str().is_some_and(|r| r.contains(reason)), "the reason is {reason:?}: {record}");
    let ca = assert_two_tier(&state);
    assert_eq!(record["new_ca_sha256"], camera_pki::fingerprint(&ca.root_der), "{record}");
    let bundle = verify_served(dir, &[]).unwrap();
    assert_eq!(bundle.signer_der, ca.issuing_der, "the server certificate is from the new CA");
    // The next run uses the new CA quietly.
    let again = provision(dir, &[]);
    again.assert_ok();
    assert!(again.summary().contains("(existing)"), "{}", again.stdout);
    ca
}

/// A one-tier camera (made before two tiers) that ran once.
fn one_tier_camera(dir: &TempDir) -> OneTier {
    let seeded = seed_one_tier_ca(&dir.state(), false);
    provision(dir, &[]).assert_ok();
    assert_one_tier_kept(&dir.state(), &seeded);
    seeded
}

/// Overwrites (or, given `None`, deletes) `file` in `dir`'s state, then runs the provisioner.
fn damage_and_run(dir: &TempDir, file: &str, contents: Option<&[u8]>) -> Run {
    let path = dir.state().join(file);
    match contents {
        Some(contents) => std::fs::write(path, contents).unwrap(),
        None => std::fs::remove_file(path).unwrap(),
    }
    provision(dir, &[])
}

#[test]
fn garbage_in_ca_crt_replaces_the_ca_loudly_and_keeps_the_old_files() {
    let dir = TempDir::new("bad-corrupt-crt");
    let old = one_tier_camera(&dir);
    let garbage = b"\x00\x01 this is not a certificate \xff\n".to_vec();
    let run = damage_and_run(&dir, "ca.crt", Some(&garbage));
    let moved: [(&str, &[u8]); 2] = [("ca.crt", &garbage), ("ca.key", old.key_pem.as_bytes())];
    assert_replaced(&dir, &run, &moved, "corrupt", "no CERTIFICATE block");
}

#[test]
fn truncated_ca_key_replaces_the_ca_loudly_and_keeps_the_old_files() {
    let dir = TempDir::new("bad-truncated-key");
    let old = one_tier_camera(&dir);
    let truncated = old.key_pem.as_bytes()[..old.key_pem.len() / 2].to_vec();
    let run = damage_and_run(&dir, "ca.key", Some(&truncated));
    let moved: [(&str, &[u8]); 2] = [("ca.crt", old.cert_pem.as_bytes()), ("ca.key", &truncated)];
    assert_replaced(&dir, &run, &moved, "corrupt", "cut short");
}

#[test]
fn ca_key_of_another_ca_replaces_the_ca() {
    let dir = TempDir::new("bad-mismatch");
    let old = one_tier_camera(&dir);
    let foreign_key = one_tier_ca(&camera_pki::NameConstraintsPolicy::default()).1;
    let run = damage_and_run(&dir, "ca.key", Some(foreign_key.as_bytes()));
    let moved: [(&str, &[u8]); 2] = [("ca.crt", old.cert_pem.as_bytes()), ("ca.key", foreign_key.as_bytes())];
    assert_replaced(&dir, &run, &moved, "corrupt", "does not belong");
}

#[test]
fn ca_crt_without_key_replaces_the_ca() {
    let dir = TempDir::new("bad-nokey");
    let old = one_tier_camera(&dir);
    let run = damage_and_run(&dir, "ca.key", None);
    assert_replaced(&dir, &run, &[("ca.crt", old.cert_pem.as_bytes())], "corrupt", "key file is missing");
}

#[test]
fn ca_key_without_certificate_is_an_interrupted_first_boot() {
    // What a power cut between writing ca.key and ca.crt left on an older version: the key only
    // (the CA was never in use, so its fingerprint was never recorded either).
    let dir = TempDir::new("bad-incomplete");
    let old = seed_one_tier_ca(&dir.state(), false);
    std::fs::remove_file(dir.state().join("ca.crt")).unwrap();
    std::fs::remove_file(dir.state().join("ca-in-use.sha256")).unwrap();
    let run = provision(&dir, &[]);
    run.assert_ok();
    assert!(run.summary().contains("(created)"), "{}", run.stdout);
    let names = entries(&dir.state());
    let moved = names
        .iter()
        .find(|n| n.starts_with("ca.key.incomplete-"))
        .unwrap_or_else(|| panic!("lone key not moved aside: {names:?}"));
    assert_eq!(read_string(&dir.state().join(moved)), old.key_pem);
    assert_eq!(mode(&dir.state().join(moved)), 0o600);
    assert!(!names.iter().any(|n| n == "ca-replaced.json"), "nobody imported that CA: no replacement record");
    assert!(!run.stderr.contains("REPLACED"), "{}", run.stderr);
    assert_two_tier(&dir.state());
}

/// `issuing-ca.pem` with its blocks (key, issuing CA, root) as PEM texts.
fn issuing_ca_text(key: &str, issuing: &str, root: &str) -> Vec<u8> {
    format!("{key}{issuing}{root}").into_bytes()
}

/// A damaged two-tier CA (garbage, a truncated key, another camera's key, a root that did not
/// sign the issuing CA) is replaced: `issuing-ca.pem` and `ca.crt` are moved aside, the reason
/// recorded.
#[test]
fn a_damaged_issuing_ca_replaces_the_ca_loudly_and_keeps_the_old_files() {
    let other = TempDir::new("bad-issuing-other");
    provision(&other, &[]).assert_ok();
    let other = read_issuing_ca(&other.state());
    /// The damaged `issuing-ca.pem`, from the camera's CA and another camera's.
    type Damage = fn(&IssuingCa, &IssuingCa) -> Vec<u8>;
    let damages: [(&str, Damage); 4] = [
        ("no CERTIFICATE block", |_, _| b"\x00 not PEM at all \xff\n".to_vec()),
        ("private key is not", |ca, _| {
            let lines: Vec<&str> = ca.key_pem.lines().collect();
            let body = &lines[1..lines.len() - 1];
            let truncated =
                format!("{}\n{}\n{}\n", lines[0], body[..body.len() / 2].join("\n"), lines[lines.len() - 1]);
            issuing_ca_text(&truncated, &ca.issuing_pem, &ca.root_pem)
        }),
        ("does not belong", |ca, other| issuing_ca_text(&other.key_pem, &ca.issuing_pem, &ca.root_pem)),
        ("did not sign it", |ca, other| issuing_ca_text(&ca.key_pem, &ca.issuing_pem, &other.root_pem)),
    ];
    for (reason, damage) in damages {
        let dir = TempDir::new("bad-issuing");
        provision(&dir, &[]).assert_ok();
        let ca = read_issuing_ca(&dir.state());
        let damaged = damage(&ca, &other);
        let old_crt = read(&dir.state().join("ca.crt"));
        let run = damage_and_run(&dir, "issuing-ca.pem", Some(&damaged));
        let new = assert_replaced(&dir, &run, &[("issuing-ca.pem", &damaged), ("ca.crt", &old_crt)], "corrupt", reason);
        assert_ne!(new.root_der, ca.root_der);
    }
}

/// `ca.crt` is only a copy of the root: missing, garbage, another camera's root or the issuing CA
/// in it is rewritten from `issuing-ca.pem`; the CA is not replaced and nothing is recorded.
#[test]
fn missing_or_altered_ca_crt_beside_a_whole_issuing_ca_is_rewritten_not_replaced() {
    let other = TempDir::new("bad-crt-other");
    provision(&other, &[]).assert_ok();
    let other_root = read(&other.state().join("ca.crt"));
    let dir = TempDir::new("bad-crt-rewritten");
    provision(&dir, &[]).assert_ok();
    let ca = assert_two_tier(&dir.state());
    let fingerprint = camera_pki::fingerprint(&ca.root_der);
    let before = snapshot_but_the_clock(&dir.state());
    for (case, contents) in [
        ("missing", None),
        ("garbage", Some(b"garbage\n".to_vec())),
        ("another camera's root", Some(other_root.clone())),
        ("the issuing CA", Some(ca.issuing_pem.clone().into_bytes())),
    ] {
        let run = damage_and_run(&dir, "ca.crt", contents.as_deref());
        run.assert_ok();
        let summary = run.summary();
        assert!(summary.contains("(existing)") && summary.contains(&fingerprint), "{case}: {summary}");
        assert_two_tier(&dir.state());
        assert!(
            snapshot_but_the_clock(&dir.state()) == before,
            "{case}: ca.crt rewritten, nothing else changed: {:?}",
            entries(&dir.state())
        );
        assert!(!run.stderr.contains("REPLACED"), "{case}: {}", run.stderr);
    }
}

#[test]
fn stale_temporaries_from_a_power_cut_are_cleaned_up() {
    let dir = TempDir::new("bad-stale");
    provision(&dir, &[]).assert_ok();
    let before = snapshot_but_the_clock(&dir.state());
    std::fs::write(dir.state().join(".tmp-ca.crt-4242"), b"-----BEGIN CERT").unwrap();
    std::fs::write(dir.state().join(".tmp-issuing-ca.pem-4243"), b"-----BEGIN PRIV").unwrap();
    std::fs::write(dir.run().join(".tmp-server.pem-4242"), b"half").unwrap();
    let run = provision(&dir, &[]);
    run.assert_ok();
    assert!(run.summary().contains("(existing)"));
    assert_no_temporaries(&dir.state());
    assert_no_temporaries(&dir.run());
    assert!(snapshot_but_the_clock(&dir.state()) == before, "the CA changed: {:?}", entries(&dir.state()));
}

#[test]
fn replacements_at_the_same_clock_second_do_not_overwrite_each_other() {
    // Cameras without a real-time clock boot at the same second of 1970 every time, so several
    // replacements can get the same timestamp suffix: a one-tier CA's, then two two-tier ones'.
    let dir = TempDir::new("bad-same-second");
    let layout = Layout::new(dir.state(), dir.run());
    let config = CameraConfig { hostname: Some("testcam".into()), ..CameraConfig::default() };
    let now = UNIX_EPOCH + Duration::from_secs(12);
    let addrs = ["10.0.0.5".parse().unwrap()];
    let one_tier = seed_one_tier_ca(&layout.state_dir, false);
    std::fs::write(layout.ca_cert(), b"one-tier garbage").unwrap();
    let mut kept = vec![b"one-tier garbage".to_vec(), one_tier.key_pem.into_bytes()];
    for garbage in ["first garbage", "second garbage"] {
        provision_for(&layout, &config, &addrs, now).unwrap();
        kept.push(read(&layout.ca_cert()));
        std::fs::write(layout.issuing_ca(), garbage).unwrap();
        kept.push(garbage.as_bytes().to_vec());
    }
    provision_for(&layout, &config, &addrs, now).unwrap();
    let names = entries(&layout.state_dir);
    let moved: Vec<Vec<u8>> =
        names.iter().filter(|n| n.contains(".corrupt-12")).map(|n| read(&layout.state_dir.join(n))).collect();
    assert_eq!(moved.len(), kept.len(), "{names:?}");
    for old in &kept {
        assert!(
            moved.contains(old),
            "a file moved aside was overwritten: {:?} missing from {names:?}",
            String::from_utf8_lossy(old)
        );
    }
}
