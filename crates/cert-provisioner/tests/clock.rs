//! The clock floor: a camera that boots at 1970 still mints certificates that start at the build
//! time or the last time it saw, whichever is later; a set clock (after the build time) is
//! trusted and saved, so a bad jump forward heals at the next set clock.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use camera_config::CameraConfig;
use camera_provision::clock::build_time;
use camera_provision::provision_for;
use camera_state::Layout;
use common::*;

const DAY: u64 = 86_400;

fn secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn setup(tag: &str) -> (TempDir, Layout, CameraConfig) {
    let dir = TempDir::new(tag);
    let layout = Layout::new(dir.state(), dir.run());
    let config = CameraConfig { hostname: Some("testcam".into()), ..CameraConfig::default() };
    (dir, layout, config)
}

fn addresses() -> Vec<IpAddr> {
    vec!["10.1.2.3".parse().unwrap()]
}

/// notBefore/notAfter of the leaf written to the run dir (read back from disk, not from the
/// returned value).
fn leaf_validity(layout: &Layout) -> (i64, i64) {
    let bundle = split_bundle(&layout.minted_bundle());
    let info = camera_pki::describe(&bundle.leaf_der).unwrap();
    (info.not_before_unix, info.not_after_unix)
}

fn saved_clock(layout: &Layout) -> Option<String> {
    std::fs::read_to_string(layout.saved_clock()).ok()
}

#[test]
fn booting_at_1970_mints_from_the_build_time() {
    let (_dir, layout, config) = setup("clock-1970");
    let now = UNIX_EPOCH + Duration::from_secs(DAY);
    let outcome = provision_for(&layout, &config, &addresses(), now).unwrap();
    let floor = secs(build_time());
    assert!(floor > 1_600_000_000, "the build time is recorded ({floor})");
    let (not_before, not_after) = leaf_validity(&layout);
    assert_eq!(not_before, floor, "leaf notBefore is the build time");
    assert_eq!(outcome.minted.not_before.unix_timestamp(), floor);
    assert_eq!(not_after - not_before, 365 * DAY as i64 - 1, "365 days counting both ends");
    // Both tiers of the CA created at that boot start at the floor too.
    let ca = read_issuing_ca(&layout.state_dir);
    for (tier, der) in [("root", &ca.root_der), ("issuing CA", &ca.issuing_der)] {
        assert_eq!(camera_pki::describe(der).unwrap().not_before_unix, floor, "{tier}");
    }
    assert_eq!(cert_der(&layout.ca_cert()), ca.root_der);
    // 1970 is earlier than the floor: nothing is saved.
    assert_eq!(saved_clock(&layout), None);
}

#[test]
fn a_later_saved_clock_wins_over_the_build_time() {
    let (_dir, layout, config) = setup("clock-saved");
    let saved = secs(build_time()) + 10 * DAY as i64;
    std::fs::create_dir_all(&layout.state_dir).unwrap();
    std::fs::write(layout.saved_clock(), format!("{saved}\n")).unwrap();
    provision_for(&layout, &config, &addresses(), UNIX_EPOCH + Duration::from_secs(DAY)).unwrap();
    assert_eq!(leaf_validity(&layout).0, saved, "the saved clock is the floor");
    assert_eq!(saved_clock(&layout).unwrap().trim(), saved.to_string(), "an unset clock is not saved");
}

#[test]
fn an_earlier_or_garbled_saved_clock_does_not_lower_the_floor() {
    let (_dir, layout, config) = setup("clock-garbled");
    std::fs::create_dir_all(&layout.state_dir).unwrap();
    let now = UNIX_EPOCH + Duration::from_secs(DAY);
    for content in ["1000\n", "not a number", "", "99999999999999999999999\n"] {
        std::fs::write(layout.saved_clock(), content).unwrap();
        provision_for(&layout, &config, &addresses(), now).unwrap();
        assert_eq!(leaf_validity(&layout).0, secs(build_time()), "saved clock {content:?}");
    }
}

#[test]
fn a_run_saves_a_set_clock_and_the_floor_applies_only_while_the_clock_is_unset() {
    let (_dir, layout, config) = setup("clock-save");
    let t1 = build_time() + Duration::from_secs(20 * DAY);
    provision_for(&layout, &config, &addresses(), t1).unwrap();
    assert_eq!(saved_clock(&layout).unwrap().trim(), secs(t1).to_string(), "the run saved its clock");
    assert_eq!(mode(&layout.saved_clock()), 0o644);
    // A fresh certificate is backdated a little for clients whose clocks run behind.
    let (nb, _) = leaf_validity(&layout);
    assert!(nb < secs(t1) && nb >= secs(t1) - 600, "notBefore {nb} slightly before now {}", secs(t1));

    // Back at 1970 (no RTC): the saved clock is the floor, and stays.
    provision_for(&layout, &config, &addresses(), UNIX_EPOCH).unwrap();
    assert_eq!(saved_clock(&layout).unwrap().trim(), secs(t1).to_string());
    assert_eq!(leaf_validity(&layout).0, secs(t1));

    // Later again: the floor moves forward.
    let t2 = t1 + Duration::from_secs(DAY);
    provision_for(&layout, &config, &addresses(), t2).unwrap();
    assert_eq!(saved_clock(&layout).unwrap().trim(), secs(t2).to_string());
}

/// Re-mints follow address changes, about once a second under churn, and each one offers the
/// clock to the floor on flash: written once an hour, not once a second.
#[test]
fn a_day_of_re_mints_every_second_writes_the_floor_once_an_hour() {
    let (_dir, layout, _config) = setup("clock-day");
    std::fs::create_dir_all(&layout.state_dir).unwrap();
    let start = build_time() + Duration::from_secs(DAY);
    let writes = clock_writes_in_a_simulated_day(&layout, start);
    assert_eq!(writes, 24, "at start, then on the hour");
    let last = start + Duration::from_secs(23 * 3600);
    assert_eq!(saved_clock(&layout).unwrap().trim(), secs(last).to_string());
}

/// The interval holds across provisioning runs (the boot step, then the web server starting, or
/// restarting): the rule reads the saved file, not the caller's memory. A clock set back is saved
/// at once.
#[test]
fn the_floor_is_written_at_most_once_an_hour_by_any_caller_unless_the_clock_goes_back() {
    let (_dir, layout, config) = setup("clock-hourly");
    let t1 = build_time() + Duration::from_secs(20 * DAY);
    provision_for(&layout, &config, &addresses(), t1).unwrap();
    assert_eq!(saved_clock(&layout).unwrap().trim(), secs(t1).to_string(), "absent: saved at once");

    let other: Vec<IpAddr> = vec!["10.1.2.4".parse().unwrap()];
    let t2 = t1 + Duration::from_secs(3599);
    provision_for(&layout, &config, &other, t2).unwrap();
    assert_eq!(saved_clock(&layout).unwrap().trim(), secs(t1).to_string(), "a re-mint within the hour writes nothing");
    let due = camera_provision::clock::save(&layout, t1 + Duration::from_secs(600)).unwrap();
    assert_eq!(due, Duration::from_secs(3000), "the next save is due an hour after the saved time");

    let t3 = t1 + Duration::from_secs(3600);
    provision_for(&layout, &config, &addresses(), t3).unwrap();
    assert_eq!(saved_clock(&layout).unwrap().trim(), secs(t3).to_string(), "an hour behind: saved");

    // Set back by a minute: trusted and saved at once, like any set clock.
    let back = t3 - Duration::from_secs(60);
    let due = camera_provision::clock::save(&layout, back).unwrap();
    assert_eq!(saved_clock(&layout).unwrap().trim(), secs(back).to_string());
    assert_eq!(due, Duration::from_secs(3600));
}

/// One spoofed NTP answer far in the future must not make every later certificate not yet valid.
#[test]
fn a_clock_jump_far_ahead_is_forgotten_once_the_clock_is_set_right() {
    let (_dir, layout, config) = setup("clock-spoofed");
    let spoofed = build_time() + Duration::from_secs(14 * 365 * DAY);
    provision_for(&layout, &config, &addresses(), spoofed).unwrap();
    assert_eq!(saved_clock(&layout).unwrap().trim(), secs(spoofed).to_string());

    let real = build_time() + Duration::from_secs(30 * DAY);
    provision_for(&layout, &config, &addresses(), real).unwrap();
    let (nb, _) = leaf_validity(&layout);
    assert!(
        nb <= secs(real) && nb >= secs(real) - 600,
        "notBefore {nb} is the real time {}, not the spoofed one",
        secs(real)
    );
    assert_eq!(saved_clock(&layout).unwrap().trim(), secs(real).to_string(), "the floor came back down");

    // The next boot without a clock starts from the real time, not the spoofed one.
    provision_for(&layout, &config, &addresses(), UNIX_EPOCH).unwrap();
    assert_eq!(leaf_validity(&layout).0, secs(real));
}

#[test]
fn the_binary_saves_the_current_time() {
    let dir = TempDir::new("clock-bin");
    let before = secs(SystemTime::now());
    provision(&dir, &[]).assert_ok();
    let saved: i64 = read_string(&dir.state().join("clock")).trim().parse().unwrap();
    let after = secs(SystemTime::now());
    // The build time is at most a few minutes ago, so a real clock is later and gets saved.
    assert!((before..=after).contains(&saved), "saved {saved} not in {before}..={after}");
}

/// `18446744073709551615` in `state/clock` must not make provisioning panic ("overflow when
/// adding duration to instant"), which would kill the boot step and camera-web's start. An out-of-range clock file is treated as absent, with a warning, whether the clock is set
/// or not; a set clock then repairs the file.
#[test]
fn an_out_of_range_clock_file_is_ignored_with_a_warning() {
    let (_dir, layout, config) = setup("clock-huge");
    std::fs::create_dir_all(&layout.state_dir).unwrap();
    let unset = UNIX_EPOCH + Duration::from_secs(DAY);
    let set = build_time() + Duration::from_secs(DAY);
    // u64::MAX, i64::MAX, and the first second after 9999-12-31 (no X.509 time can hold it).
    for content in ["18446744073709551615\n", "9223372036854775807\n", "253402300800\n"] {
        std::fs::write(layout.saved_clock(), content).unwrap();
        let outcome = provision_for(&layout, &config, &addresses(), unset).unwrap();
        assert_eq!(leaf_validity(&layout).0, secs(build_time()), "clock file {content:?}: the floor is the build time");
        let warnings: Vec<&String> = outcome.warnings.iter().filter(|w| w.contains("clock")).collect();
        assert_eq!(warnings.len(), 1, "one warning names the clock file {content:?}: {:?}", outcome.warnings);
        assert!(warnings[0].contains(&layout.saved_clock().display().to_string()), "{}", warnings[0]);

        let outcome = provision_for(&layout, &config, &addresses(), set).unwrap();
        assert_eq!(outcome.warnings.iter().filter(|w| w.contains("clock")).count(), 1, "{:?}", outcome.warnings);
        assert_eq!(saved_clock(&layout).unwrap().trim(), secs(set).to_string(), "a set clock repairs the file");
    }
}

/// The same through the binary: one warning line, the summary, exit 0.
#[test]
fn the_binary_survives_an_out_of_range_clock_file() {
    let dir = TempDir::new("clock-bin-huge");
    std::fs::create_dir_all(dir.state()).unwrap();
    std::fs::write(dir.state().join("clock"), "18446744073709551615\n").unwrap();
    let run = provision(&dir, &[]);
    run.assert_ok();
    run.summary();
    // (A machine without a network address adds a warning of its own.)
    let lines: Vec<&str> = run.stderr.lines().filter(|l| l.contains("clock")).collect();
    assert_eq!(lines.len(), 1, "one warning line about the clock: {:?}", run.stderr);
    assert!(lines[0].starts_with("warning: ") && lines[0].contains(&dir.state().join("clock").display().to_string()));
    assert!(run.stderr.lines().all(|l| l.starts_with("warning: ")), "{}", run.stderr);
    let saved: u64 = read_string(&dir.state().join("clock")).trim().parse().unwrap();
    assert!(saved > secs(build_time()) as u64 && saved < 253_402_300_800, "the file was repaired: {saved}");
}
