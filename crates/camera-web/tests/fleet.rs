//! A fleet enrolled in one burst against one site CA: twenty real `camera-web`s, each in a
//! network namespace of its own with its own address on one bridge, and the scripted ACME CA
//! issuing one-minute certificates on the bridge. What cannot be flaky is asserted: the renewal
//! times each camera drew spread over the window (60 % to 75 % of the lifetime), and through a CA
//! outage over the start of that window every camera renews before its certificate expires: no
//! `certificate_expired` event, no camera serving its own certificate. `cargo xtask bench --only
//! fleet` runs the same fleet at 200 cameras, with the spread off side by side, and measures the
//! CA's load.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use camera_test_support::fleet::{Fleet, FleetSpec};
use camera_test_support::netns::{enter_private_netns, NetnsSetup};
use camera_test_support::scripted_acme::{Behaviour, ScriptedAcme};
use common::*;
use serde_json::json;

const CAMERAS: usize = 20;
const LIFETIME: Duration = Duration::from_secs(60);

fn now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

#[test]
fn a_fleet_spreads_its_renewals_and_rides_out_a_ca_outage_without_falling_back() {
    if !enter_private_netns(&NetnsSetup::loopback_only()) {
        return;
    }
    let fleet = Fleet::start(&FleetSpec {
        cameras: CAMERAS,
        camera_web: Path::new(env!("CARGO_BIN_EXE_camera-web")),
        subnet: 101,
        config: "{}",
        password: PASSWORD,
    });
    let ca = ScriptedAcme::start_on(fleet.hub.into(), Behaviour { lifetime: LIFETIME, ..Behaviour::default() });
    fleet.trust(&ca.root_pem);
    let settings = json!({"protocol": "acme", "url": ca.directory, "trust": ca.root_pem});
    for (status, body) in fleet.each(|camera| fleet.api(camera, "PUT", "/api/v1/enrollment", Some(&settings))) {
        assert_eq!(status, 200, "{body}");
    }

    // Every camera's first certificate, and the renewal time it drew for it.
    let certificates = fleet.each(|camera| {
        wait_for(Duration::from_secs(60), || {
            let state = fleet.get(camera, "/api/v1/enrollment");
            let certificate = &state["certificate"];
            certificate["renew_at_unix"].as_i64().map(|renew_at| {
                (
                    certificate["not_before_unix"].as_i64().unwrap(),
                    certificate["not_after_unix"].as_i64().unwrap(),
                    renew_at,
                )
            })
        })
        .unwrap_or_else(|| panic!("camera {} did not enroll: {}", camera.ip, camera.log()))
    });
    let mut places = Vec::new();
    for (camera, (not_before, not_after, renew_at)) in fleet.cameras.iter().zip(&certificates) {
        let life = (not_after - not_before) as f64;
        let place = (renew_at - not_before) as f64 / life;
        // Whole seconds on both sides: a second's rounding either way.
        assert!((0.6 - 1.0 / life..=0.75 + 1.0 / life).contains(&place), "camera {}: renews at {place:.3}", camera.ip);
        places.push((place - 0.6) / 0.15);
    }
    // Twenty uniform draws leave three fifths of the window empty once in ten million runs.
    let fifths: std::collections::BTreeSet<u32> = places.iter().map(|p| ((p * 5.0).floor() as u32).min(4)).collect();
    let range = places.iter().copied().fold(f64::MIN, f64::max) - places.iter().copied().fold(f64::MAX, f64::min);
    assert!(fifths.len() >= 3 && range >= 0.5, "renewal times not spread over the window: {places:?}");

    // The CA goes down two seconds before the window opens and stays down 8 seconds: the cameras
    // whose time falls in it fail, and retry (backoff capped at half the remaining lifetime).
    let opens = certificates.iter().map(|(nb, na, _)| nb + (na - nb) * 6 / 10).min().unwrap();
    std::thread::sleep(Duration::from_secs(u64::try_from(opens - 2 - now()).unwrap_or(0)));
    ca.set_down(true);
    std::thread::sleep(Duration::from_secs(8));
    ca.set_down(false);

    // Past every first certificate's end: each camera holds and serves a newer one.
    let last_expiry = certificates.iter().map(|(_, na, _)| *na).max().unwrap();
    std::thread::sleep(Duration::from_secs(u64::try_from(last_expiry + 3 - now()).unwrap_or(0)));
    for (camera, (_, first_expiry, _)) in fleet.cameras.iter().zip(&certificates) {
        let served = fleet.get(camera, "/api/v1/certificate");
        assert_eq!(served["source"], "enrolled", "camera {} fell back: {}", camera.ip, camera.log());
        let state = fleet.get(camera, "/api/v1/enrollment");
        assert!(
            state["certificate"]["not_after_unix"].as_i64().unwrap() > *first_expiry,
            "camera {} did not renew: {state}",
            camera.ip
        );
    }
    assert!(fleet.events_of("certificate_expired").iter().all(|&n| n == 0), "a certificate expired");
    let failed: usize = fleet.events_of("enrollment_failed").iter().sum();
    assert!(failed >= 1, "the outage hit no renewal, so the test proved nothing");
    // Exactly one renewal each: the retries went to the CA only once it was back.
    let issues = ca.counts.issues();
    for camera in &fleet.cameras {
        let ip = camera.ip.to_string();
        let issued = issues.iter().filter(|i| i.names.contains(&ip)).count();
        assert_eq!(issued, 2, "camera {ip}: {issued} certificates issued");
    }
}
