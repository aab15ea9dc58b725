//! The provisioner against real interfaces, inside a private network namespace made by
//! camera-testns (`unshare -rn`, veth pair cam0/peer0, cam0 = 10.77.0.2/24 and fd77::2/64). No
//! traffic is sent: the provisioner only reads addresses over netlink.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use camera_testns::{in_private_netns, ip, wait_until, NetnsSetup, CAM_IF};
use common::*;

const CONFIG: &str = r#"{"camera": {"hostname": "testcam"}}"#;

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// The SAN entries of the leaf in the run dir, if the bundle is there and whole.
fn served_names(dir: &TempDir) -> Option<BTreeSet<String>> {
    let text = std::fs::read(dir.run().join("server.pem")).ok()?;
    let der = cert_provisioner::pem_certificates(&text).into_iter().next()?;
    Some(san_names(&der).into_iter().collect())
}

fn provision_with_config(dir: &TempDir) -> Run {
    let config = config_file(dir, CONFIG);
    provision(dir, &["--config", config.to_str().unwrap()])
}

#[test]
fn certificate_names_exactly_the_interface_addresses() {
    if !in_private_netns("certificate_names_exactly_the_interface_addresses", &NetnsSetup::default().wait_for_dad(true))
    {
        return;
    }
    // The kernel's fe80:: addresses are there, and loopback is up.
    let addrs = ip(&["addr"]);
    assert!(addrs.contains("fe80::") && addrs.contains("127.0.0.1"), "{addrs}");

    let dir = TempDir::new("netns-names");
    let run = provision_with_config(&dir);
    run.assert_ok();
    println!("{}", run.summary());
    let names = served_names(&dir).unwrap();
    assert_eq!(names, set(&["10.77.0.2", "fd77::2", "testcam.local"]), "not loopback, not fe80::, nothing else");
    let bundle = split_bundle(&dir.run().join("server.pem"));
    webpki_verify(&bundle.ca_der, &bundle.leaf_der, &names.iter().cloned().collect::<Vec<_>>()).unwrap();

    // Without a config the system host name is used; the addresses are the same.
    let dir = TempDir::new("netns-names-default");
    provision(&dir, &[]).assert_ok();
    let names = served_names(&dir).unwrap();
    let ips: BTreeSet<String> = names.iter().filter(|n| n.parse::<std::net::IpAddr>().is_ok()).cloned().collect();
    assert_eq!(ips, set(&["10.77.0.2", "fd77::2"]), "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.parse::<std::net::IpAddr>().is_ok() || n.ends_with(".local") || n.ends_with(".home.arpa")),
        "{names:?}"
    );
}

/// Kills the watcher when the test ends, however it ends.
struct Watcher(Child);

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Adds or removes an address and measures how long until server.pem says so.
fn change_and_measure(dir: &TempDir, action: &str, addr: &str, san: &str) -> Duration {
    let started = Instant::now();
    let mut args = vec!["addr", action, addr, "dev", CAM_IF];
    if action == "add" && addr.contains(':') {
        // Usable at once: without this the address is tentative during duplicate address
        // detection (1-2 s), and rightly not named until that is over (tested below).
        args.push("nodad");
    }
    ip(&args);
    let want_present = action == "add";
    let seen = wait_until(Duration::from_secs(5), || {
        served_names(dir).is_some_and(|names| names.contains(san) == want_present)
    });
    let latency = started.elapsed();
    assert!(seen, "server.pem did not follow `ip addr {action} {addr}` within 5 s: {:?}", served_names(dir));
    latency
}

#[test]
fn watch_re_mints_within_a_second_of_an_address_change() {
    if !in_private_netns("watch_re_mints_within_a_second_of_an_address_change", &NetnsSetup::default()) {
        return;
    }
    let dir = TempDir::new("netns-watch");
    let config = config_file(&dir, CONFIG);
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(dir.state())
        .arg("--run-dir")
        .arg(dir.run())
        .arg("--watch")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let watcher = Watcher(child);
    // Collect stderr in the background, for the re-mint log lines.
    let log = std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<_>>());
    let mut summary = String::new();
    BufReader::new(stdout).read_line(&mut summary).unwrap();
    assert!(summary.starts_with("cert-provisioner: CA "), "{summary:?}");
    assert_eq!(served_names(&dir).unwrap(), set(&["10.77.0.2", "fd77::2", "testcam.local"]));
    // Give the watcher a moment to subscribe (it subscribes right after printing the summary).
    std::thread::sleep(Duration::from_millis(200));

    let add = change_and_measure(&dir, "add", "10.77.1.9/24", "10.77.1.9");
    println!("watch latency, ip addr add 10.77.1.9/24 -> new server.pem: {} ms", add.as_millis());
    assert_eq!(served_names(&dir).unwrap(), set(&["10.77.0.2", "10.77.1.9", "fd77::2", "testcam.local"]));

    let add6 = change_and_measure(&dir, "add", "fd77:1::9/64", "fd77:1::9");
    println!("watch latency, ip addr add fd77:1::9/64 -> new server.pem: {} ms", add6.as_millis());

    // With duplicate address detection the address is named once it is over: the watcher also
    // follows the kernel's notification that the address stopped being tentative.
    let started = Instant::now();
    ip(&["addr", "add", "fd77:2::9/64", "dev", CAM_IF]);
    std::thread::sleep(Duration::from_millis(300));
    if ip(&["-6", "addr", "show", "tentative"]).contains("fd77:2::9") {
        assert!(!served_names(&dir).unwrap().contains("fd77:2::9"), "a tentative address is not named yet");
    }
    let dad = wait_until(Duration::from_secs(10), || served_names(&dir).is_some_and(|n| n.contains("fd77:2::9")));
    assert!(dad, "fd77:2::9 not named 10 s after it was added (DAD over?): {:?}", served_names(&dir));
    println!("ip addr add fd77:2::9/64 (with DAD) -> new server.pem: {} ms", started.elapsed().as_millis());

    let del = change_and_measure(&dir, "del", "10.77.1.9/24", "10.77.1.9");
    println!("watch latency, ip addr del 10.77.1.9/24 -> new server.pem: {} ms", del.as_millis());

    // A public address on the interface is never named (the CA could not vouch for it).
    ip(&["addr", "add", "192.0.2.7/24", "dev", CAM_IF]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!served_names(&dir).unwrap().contains("192.0.2.7"));

    let bundle = split_bundle(&dir.run().join("server.pem"));
    assert_eq!(bundle.ca_der, cert_der(&dir.state().join("ca.crt")));
    webpki_verify(&bundle.ca_der, &bundle.leaf_der, &["10.77.0.2".into(), "fd77:1::9".into()]).unwrap();
    assert_eq!(mode(&dir.run().join("server.pem")), 0o600);
    assert_no_temporaries(&dir.run());

    drop(watcher);
    let log = log.join().unwrap();
    let text = log.join("\n");
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        log.iter().any(|l| l.contains("re-minted because addresses changed") && l.contains("10.77.1.9")),
        "a log line per re-mint:\n{text}"
    );
    for (what, latency) in [("add", add), ("add v6", add6), ("del", del)] {
        assert!(
            latency < Duration::from_secs(1),
            "{what}: new certificate after {} ms, budget 1 s",
            latency.as_millis()
        );
    }
}

#[test]
fn no_address_at_all_still_provisions_with_host_names() {
    // Nothing up, not even loopback.
    let setup = NetnsSetup { ip_commands: Vec::new(), wait_for_dad: false };
    if !in_private_netns("no_address_at_all_still_provisions_with_host_names", &setup) {
        return;
    }
    let dir = TempDir::new("netns-noaddr");
    let run = provision_with_config(&dir);
    run.assert_ok();
    run.summary();
    assert!(run.stderr.contains("no network address"), "a warning says why: {}", run.stderr);
    assert_eq!(served_names(&dir).unwrap(), set(&["testcam.local"]));
}

#[test]
fn interface_down_and_flushed_still_provisions_with_host_names() {
    let setup = NetnsSetup::default().ip(&["addr", "flush", "dev", CAM_IF]).ip(&["link", "set", CAM_IF, "down"]);
    if !in_private_netns("interface_down_and_flushed_still_provisions_with_host_names", &setup) {
        return;
    }
    let dir = TempDir::new("netns-down");
    let run = provision_with_config(&dir);
    run.assert_ok();
    assert_eq!(served_names(&dir).unwrap(), set(&["testcam.local"]));

    // Without a usable host name either, the certificate still names something: camera.local.
    let dir = TempDir::new("netns-down-nohost");
    let config = config_file(&dir, r#"{"camera": {"hostname": "localhost"}}"#);
    provision(&dir, &["--config", config.to_str().unwrap()]).assert_ok();
    assert_eq!(served_names(&dir).unwrap(), set(&["camera.local"]));
}
