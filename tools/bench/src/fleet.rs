//! A fleet against its CA: N cameras with the spread on and N with it off (`"spread": false`),
//! side by side in one run, each fleet against a CA of its own, measured at the CAs.
//!
//! `unshare -rn` re-runs this bench binary as `bench fleet-inside CAMERA_WEB CAMERAS` (see
//! [`inside`]). There the release `camera-web`s run as `camera_test_support::fleet` starts them
//! (each in a network namespace of its own with its own address, one bridge per fleet) and the
//! scripted ACME CA (`camera_test_support::scripted_acme`) serves each fleet on its bridge: it
//! issues 10-minute certificates at once and suggests a renewal window (RFC 9773) from 30 % to
//! 75 % of the lifetime, re-checked every minute (`Retry-After: 60`). The timeline, from the
//! moment the installer's script sends `PUT /api/v1/enrollment` to every camera at once:
//!
//! - 0 s: enrollment, one burst (an explicit PUT never waits);
//! - 180 s to 450 s: the first renewal, inside the CA's windows;
//! - 480 s to 660 s: the CAs are down (connections refused); renewals due then fail and retry;
//! - 790 s: an incident: each CA moves every window it gave into the past (as after a
//!   revocation); each camera must renew once, at its next renewal-information check;
//! - 900 s: the end: every camera is asked what it serves and what it recorded.
//!
//! Requests and issues are counted in 10-second buckets from the burst. It prints the report's
//! lines as they are, and one `fleet-budget` line per budget row for [`measure`] to read back.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use camera_test_support::fleet::{Fleet, FleetSpec};
use camera_test_support::scripted_acme::{now_ms, Ari, Asked, Behaviour, Issue, ScriptedAcme};
use serde_json::json;

use super::procs;
use task_support::Result;

/// The hidden task name the namespace runs.
pub const INSIDE_TASK: &str = "fleet-inside";
/// Cameras per fleet unless `--cameras` says otherwise.
pub const DEFAULT_CAMERAS: usize = 200;
const LIFETIME: Duration = Duration::from_secs(600);
/// The CA's window, in seconds from the moment a certificate was issued.
const WINDOW: (i64, i64) = (180, 450);
const OUTAGE: (u64, u64) = (480, 660);
const INCIDENT: u64 = 790;
const END: u64 = 900;
const BUCKET_MS: u64 = 10_000;
const PASSWORD: &str = "fleet bench admin password";
/// Budget lines: `fleet-budget <name> <measured> <limit> <pass|fail|info>`.
const BUDGET: &str = "fleet-budget";
/// The peak cut the spread must bring at the first renewal.
const PEAK_CUT_BUDGET: f64 = 10.0;

/// A budget row the namespace reported.
#[derive(Debug)]
pub struct Row {
    pub name: String,
    pub measured: String,
    pub limit: String,
    pub verdict: String,
}

/// What the namespace printed: the report, and the budget rows.
#[derive(Debug)]
pub struct Report {
    pub text: String,
    pub rows: Vec<Row>,
}

/// Runs the fleets in a new user + network namespace.
pub fn measure(camera_web: &Path, cameras: usize) -> Result<Report> {
    let count = cameras.to_string();
    let stdout =
        procs::reenter_in_netns(INSIDE_TASK, &[camera_web.as_os_str(), count.as_ref()], "the fleet simulation")?;
    let mut text = String::new();
    let mut rows = Vec::new();
    for line in stdout.lines() {
        match line.split('\t').collect::<Vec<_>>().as_slice() {
            [BUDGET, name, measured, limit, verdict] => rows.push(Row {
                name: (*name).to_owned(),
                measured: (*measured).to_owned(),
                limit: (*limit).to_owned(),
                verdict: (*verdict).to_owned(),
            }),
            _ => {
                text += line;
                text.push('\n');
            }
        }
    }
    Ok(Report { text, rows })
}

/// One fleet and its CA.
struct Side {
    name: &'static str,
    fleet: Fleet,
    ca: ScriptedAcme,
}

/// The simulation itself, inside the namespace: `bench fleet-inside CAMERA_WEB CAMERAS`.
pub fn inside(mut args: impl Iterator<Item = String>) -> Result {
    let usage = "usage: bench fleet-inside CAMERA_WEB CAMERAS (run by cargo xtask bench --only fleet)";
    let camera_web = PathBuf::from(args.next().ok_or(usage)?);
    let cameras: usize = args.next().and_then(|n| n.parse().ok()).ok_or(usage)?;
    procs::fresh_netns(INSIDE_TASK)?;

    let started = Instant::now();
    let sides: Vec<Side> = [("spread on", 101u8), ("spread off", 102)]
        .into_iter()
        .map(|(name, subnet)| {
            let fleet =
                Fleet::start(&FleetSpec { cameras, camera_web: &camera_web, subnet, config: "{}", password: PASSWORD });
            let behaviour = Behaviour {
                lifetime: LIFETIME,
                ari: Some(Ari { start: WINDOW.0, end: WINDOW.1, retry_after: Some(60), delay: Duration::ZERO }),
                ..Behaviour::default()
            };
            let ca = ScriptedAcme::start_on(IpAddr::V4(fleet.hub), behaviour);
            fleet.trust(&ca.root_pem);
            // The first authenticated request derives the password's key; later ones find it
            // cached. Done now, so the burst below is as fast as a script can send it.
            fleet.each(|camera| fleet.get(camera, "/api/v1/enrollment"));
            Side { name, fleet, ca }
        })
        .collect();
    eprintln!("fleet: {} cameras started in {} s", 2 * cameras, started.elapsed().as_secs());

    // The burst: both fleets at once.
    let t0 = now_ms();
    std::thread::scope(|scope| {
        for side in &sides {
            scope.spawn(move || {
                let mut settings = json!({"protocol": "acme", "url": side.ca.directory, "trust": side.ca.root_pem});
                if side.name == "spread off" {
                    settings["spread"] = json!(false);
                }
                for (status, body) in
                    side.fleet.each(|camera| side.fleet.api(camera, "PUT", "/api/v1/enrollment", Some(&settings)))
                {
                    assert_eq!(status, 200, "PUT /api/v1/enrollment: {body}");
                }
            });
        }
    });
    let at = |seconds: u64| {
        let wait = (t0 + seconds * 1000).saturating_sub(now_ms());
        std::thread::sleep(Duration::from_millis(wait));
    };
    at(OUTAGE.0);
    eprintln!("fleet: the CAs go down");
    sides.iter().for_each(|s| s.ca.set_down(true));
    at(OUTAGE.1);
    eprintln!("fleet: the CAs are back");
    sides.iter().for_each(|s| s.ca.set_down(false));
    at(INCIDENT);
    eprintln!("fleet: incident: every window in the past");
    sides.iter().for_each(|s| s.ca.incident());
    at(END);

    report(&sides, t0, cameras);
    Ok(())
}

/// The seconds from the burst to `ms`.
fn since(t0: u64, ms: u64) -> f64 {
    (ms.saturating_sub(t0)) as f64 / 1000.0
}

/// Counts per 10-second bucket from `t0`.
fn buckets(times: impl Iterator<Item = u64>, t0: u64) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for ms in times {
        *counts.entry(ms.saturating_sub(t0) / BUCKET_MS).or_insert(0) += 1;
    }
    counts
}

/// The largest bucket among those starting in `[from, to)` seconds.
fn peak(counts: &BTreeMap<u64, usize>, from: u64, to: u64) -> usize {
    counts.range(from * 1000 / BUCKET_MS..to * 1000 / BUCKET_MS).map(|(_, n)| *n).max().unwrap_or(0)
}

/// What one fleet did, as the CA and the cameras saw it.
struct Measured {
    orders: BTreeMap<u64, usize>,
    requests: BTreeMap<u64, usize>,
    /// Seconds from the first window's opening until the last camera renewed.
    first_renewal_done: f64,
    /// Renewals in the first-renewal phase inside the replaced certificate's window.
    in_window: (usize, usize),
    /// Cameras whose renewal failed during the outage, and the seconds from the CA's return until
    /// the last of them renewed.
    after_outage: (usize, f64),
    /// Orders per camera between the incident and the end.
    incident_orders: BTreeMap<usize, usize>,
    fallbacks: usize,
    expired_events: usize,
    warning_events: usize,
    failed_events: usize,
    rss_kib: Vec<u64>,
}

fn measure_side(side: &Side, t0: u64) -> Measured {
    let requests = side.ca.counts.requests();
    let issues: Vec<Issue> = side.ca.counts.issues();
    let orders = buckets(requests.iter().filter(|r| r.asked == Asked::NewOrder).map(|r| r.at_ms), t0);
    let all = buckets(requests.iter().map(|r| r.at_ms), t0);
    let per_camera: Vec<Vec<&Issue>> = side
        .fleet
        .cameras
        .iter()
        .map(|camera| {
            let ip = camera.ip.to_string();
            issues.iter().filter(|i| i.names.contains(&ip)).collect()
        })
        .collect();
    let ms = |seconds: u64| t0 + seconds * 1000;

    let first_opens = issues.iter().map(|i| i.at_ms).min().unwrap_or(t0) + WINDOW.0 as u64 * 1000;
    let last_second = per_camera.iter().filter_map(|issued| issued.get(1).map(|i| i.at_ms)).max().unwrap_or(t0);
    let mut in_window = (0, 0);
    for issued in &per_camera {
        for pair in issued.windows(2) {
            if pair[1].at_ms >= ms(OUTAGE.0) {
                break;
            }
            in_window.1 += 1;
            let (start, end) = pair[0].window.unwrap_or((0, 0));
            let at = i64::try_from(pair[1].at_ms / 1000).unwrap_or(i64::MAX);
            // One second either side: the CA's clock and the issue's whole seconds.
            if (start - 1..=end + 1).contains(&at) {
                in_window.0 += 1;
            }
        }
    }
    // Hit by the outage: a renewal attempt failed while the CA was down (the camera's own
    // `enrollment_failed` events; the CA sees no refused connection). Each must renew after.
    let back = ms(OUTAGE.1);
    let failed = side.fleet.event_times("enrollment_failed");
    let mut due = 0;
    let mut last_fresh = back;
    for (issued, failures) in per_camera.iter().zip(&failed) {
        if failures.iter().any(|&t| (ms(OUTAGE.0)..back).contains(&(t * 1000))) {
            due += 1;
            let fresh = issued.iter().find(|i| i.at_ms >= back).map_or(u64::MAX, |i| i.at_ms);
            last_fresh = last_fresh.max(fresh);
        }
    }
    let mut incident_orders = BTreeMap::new();
    for issued in &per_camera {
        let n = issued.iter().filter(|i| i.at_ms >= ms(INCIDENT)).count();
        *incident_orders.entry(n).or_insert(0) += 1;
    }
    let fleet = &side.fleet;
    let fallbacks = fleet
        .each(|camera| fleet.get(camera, "/api/v1/certificate")["source"] != "enrolled")
        .into_iter()
        .filter(|&f| f)
        .count();
    Measured {
        orders,
        requests: all,
        first_renewal_done: since(first_opens, last_second),
        in_window,
        after_outage: (due, if last_fresh == u64::MAX { f64::INFINITY } else { since(back, last_fresh) }),
        incident_orders,
        fallbacks,
        expired_events: fleet.events_of("certificate_expired").iter().sum(),
        warning_events: fleet.events_of("expiry_warning").iter().sum(),
        failed_events: failed.iter().map(Vec::len).sum(),
        rss_kib: fleet.cameras.iter().map(|c| c.rss_kib()).collect(),
    }
}

fn budget(name: &str, measured: &str, limit: &str, verdict: &str) {
    println!("{BUDGET}\t{name}\t{measured}\t{limit}\t{verdict}");
}

fn report(sides: &[Side], t0: u64, cameras: usize) {
    let measured: Vec<Measured> = sides.iter().map(|side| measure_side(side, t0)).collect();
    let (on, off) = (&measured[0], &measured[1]);
    println!(
        "   {cameras} cameras per fleet (the release camera-web built for this host, glibc, each in a network namespace\n   \
         of its own), each fleet\n   \
         against a scripted ACME CA of its own: {} s certificates, renewal window {}-{} s after issue (RFC 9773,\n   \
         Retry-After 60 s); CAs down {}-{} s; at {} s every window moved into the past; counted in 10 s buckets from\n   \
         the installer's burst of PUT /api/v1/enrollment",
        LIFETIME.as_secs(),
        WINDOW.0,
        WINDOW.1,
        OUTAGE.0,
        OUTAGE.1,
        INCIDENT
    );
    println!("   bucket (s)   orders on  requests on   orders off  requests off");
    let mut keys: Vec<u64> = on.requests.keys().chain(off.requests.keys()).copied().collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        let n = |counts: &BTreeMap<u64, usize>| counts.get(&key).copied().unwrap_or(0);
        println!(
            "   {:>10} {:>11} {:>12} {:>12} {:>13}",
            format!("{}-{}", key * 10, key * 10 + 10),
            n(&on.orders),
            n(&on.requests),
            n(&off.orders),
            n(&off.requests)
        );
    }
    let phases = [
        ("enrollment burst", 0, 60),
        ("first renewal (CA up)", 60, OUTAGE.0),
        ("after the outage", OUTAGE.1, INCIDENT),
        ("after the incident", INCIDENT, END),
    ];
    println!("   peak per 10 s            orders on / off     requests on / off");
    for (name, from, to) in phases {
        println!(
            "   {name:<24} {:>7} / {:<7} {:>9} / {}",
            peak(&on.orders, from, to),
            peak(&off.orders, from, to),
            peak(&on.requests, from, to),
            peak(&off.requests, from, to)
        );
    }
    for (side, m) in sides.iter().zip(&measured) {
        let total: u64 = m.rss_kib.iter().sum();
        let max = m.rss_kib.iter().copied().max().unwrap_or(0);
        println!(
            "   {}: every camera renewed {:.0} s after the first window opened; renewals inside the CA's window: {} of {};\n   \
             \x20 renewals failed during the outage: {} cameras, all renewed {:.0} s after the CA was back; orders per camera\n   \
             \x20 after the incident: {}; fallbacks to the camera's own certificate: {}; certificate_expired events: {};\n   \
             \x20 expiry_warning events: {}; enrollment_failed events: {}; memory: {:.2} MiB per camera (mean, VmRSS;\n   \
             \x20 max {:.2}), {:.1} MiB in all",
            side.name,
            m.first_renewal_done,
            m.in_window.0,
            m.in_window.1,
            m.after_outage.0,
            m.after_outage.1,
            m.incident_orders.iter().map(|(orders, n)| format!("{orders}: {n} cameras")).collect::<Vec<_>>().join(", "),
            m.fallbacks,
            m.expired_events,
            m.warning_events,
            m.failed_events,
            total as f64 / m.rss_kib.len().max(1) as f64 / 1024.0,
            max as f64 / 1024.0,
            total as f64 / 1024.0
        );
    }

    let (peak_on, peak_off) = (peak(&on.orders, 60, OUTAGE.0), peak(&off.orders, 60, OUTAGE.0));
    let cut = peak_off as f64 / peak_on.max(1) as f64;
    budget(
        "fleet: peak orders per 10 s at the first renewal, spread off / on",
        &format!("{peak_off} / {peak_on} = {cut:.1}x"),
        &format!(">= {PEAK_CUT_BUDGET:.0}x"),
        if cut >= PEAK_CUT_BUDGET { "pass" } else { "fail" },
    );
    let fallbacks = on.fallbacks + off.fallbacks + on.expired_events + off.expired_events;
    budget(
        "fleet: fallbacks and expiries through the outage (both fleets)",
        &fallbacks.to_string(),
        "0",
        if fallbacks == 0 { "pass" } else { "fail" },
    );
    let outside = (on.in_window.1 - on.in_window.0) + (off.in_window.1 - off.in_window.0);
    budget(
        "fleet: first renewals outside the CA's window (both fleets)",
        &outside.to_string(),
        "0",
        if outside == 0 { "pass" } else { "fail" },
    );
    let once = |m: &Measured| m.incident_orders.get(&1).copied().unwrap_or(0);
    let renewed_once = once(on) + once(off);
    budget(
        "fleet: cameras that renewed exactly once after the incident",
        &format!("{renewed_once} of {}", 2 * cameras),
        &format!("{}", 2 * cameras),
        if renewed_once == 2 * cameras { "pass" } else { "fail" },
    );
    let all_rss: Vec<u64> = on.rss_kib.iter().chain(&off.rss_kib).copied().collect();
    budget(
        "fleet: memory per camera (mean VmRSS)",
        &format!("{:.2} MiB", all_rss.iter().sum::<u64>() as f64 / all_rss.len().max(1) as f64 / 1024.0),
        "(reported)",
        "info",
    );
}
