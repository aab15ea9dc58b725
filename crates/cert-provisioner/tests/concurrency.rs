//! Several provisioners at once on one fresh state dir (the boot step and the web server racing,
//! or a script run twice): all succeed and agree on one CA, and serve its issuing CA.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};

use common::*;

#[test]
fn eight_provisioners_at_once_agree_on_one_ca() {
    const N: usize = 8;
    let dir = TempDir::new("concurrent");
    let children: Vec<_> = (0..N)
        .map(|i| {
            Command::new(BIN)
                .arg("--state-dir")
                .arg(dir.state())
                .arg("--run-dir")
                .arg(dir.join(format!("run{i}")))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let runs: Vec<Run> = children.into_iter().map(|c| Run::from_output(c.wait_with_output().unwrap())).collect();
    let mut created = 0;
    for run in &runs {
        run.assert_ok();
        let summary = run.summary();
        if summary.contains("(created)") {
            created += 1;
        } else {
            assert!(summary.contains("(existing)"), "{summary}");
        }
    }
    assert_eq!(created, 1, "exactly one run creates the CA");
    let ca = assert_two_tier(&dir.state());
    let root = cert_der(&dir.state().join("ca.crt"));
    let fingerprint = camera_pki::fingerprint(&root);
    for (i, run) in runs.iter().enumerate() {
        assert!(run.summary().contains(&fingerprint), "run {i} used another CA: {}", run.stdout);
        let bundle = split_bundle(&dir.join(format!("run{i}")).join("server.pem"));
        assert_eq!(bundle.signer_der, ca.issuing_der, "run {i}'s bundle carries another issuing CA");
        webpki_verify(&root, &[&bundle.signer_der], &bundle.leaf_der, &[]).unwrap_or_else(|e| panic!("run {i}: {e}"));
    }
    let names = entries(&dir.state());
    assert!(
        !names.iter().any(|n| n.contains("corrupt") || n.contains("incomplete") || n.starts_with(".tmp-")),
        "{names:?}"
    );
    assert!(!dir.state().join("ca-replaced.json").exists());
}

#[test]
fn eight_provisioners_at_once_share_one_run_dir() {
    const N: usize = 8;
    let dir = TempDir::new("concurrent-run");
    let children: Vec<_> = (0..N)
        .map(|_| {
            Command::new(BIN)
                .arg("--state-dir")
                .arg(dir.state())
                .arg("--run-dir")
                .arg(dir.run())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        Run::from_output(child.wait_with_output().unwrap()).assert_ok().summary();
    }
    let ca = assert_two_tier(&dir.state());
    let bundle = verify_served(&dir, &[]).unwrap();
    assert_eq!(bundle.signer_der, ca.issuing_der);
    assert_no_temporaries(&dir.run());
    assert_eq!(mode(&dir.run().join("server.pem")), 0o600);
}
