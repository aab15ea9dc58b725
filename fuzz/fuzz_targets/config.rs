//! The configuration file (`/etc/camera-https/config.json`): `camera_config::ConfigFile::parse`,
//! every section (both programs parse the whole file).
//!
//! Whatever `parse` accepts must provision: a CA made with its name constraints and model, and a
//! server certificate minted for its names, as `cert-provisioner` does at boot (a config that
//! passes the checks but fails there would leave the camera without HTTPS), unless the
//! constraints permit none of the names (a clear refusal that depends on the addresses).
//!
//! Input: the file's bytes.

#![no_main]

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use camera_config::ConfigFile;
use camera_pki::{CaSpec, CameraCa, ServerSpec};
use camera_provision::provision::{camera_names, certificate_names};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = ConfigFile::parse(data) else { return };
    // What camera-web derives from the `web` section: a timeout hyper adds to an Instant.
    let _ = std::time::Instant::now() + Duration::from_secs(file.web.handshake_timeout_secs);
    let camera = &file.camera;
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let not_before = camera_provision::clock::not_before(now, now);
    let spec = CaSpec { model: camera.model.clone(), constraints: camera.constraints(), not_before };
    let ca = CameraCa::generate(&spec).expect("an accepted config cannot make a CA");
    let addresses = [
        IpAddr::from([192, 168, 1, 120]),
        IpAddr::from([8, 8, 8, 8]),
        "fd00::120".parse().unwrap_or(IpAddr::from([0u8; 16])),
    ];
    let names = camera_names(camera, &addresses);
    // As camera_provision::provision::mint: every name, plus the fallback when none is permitted.
    let mut all = names.clone();
    if !names.iter().any(|n| ca.permits(n)) {
        all.extend(certificate_names(&ca, &names));
    }
    let spec = ServerSpec {
        names: all,
        common_name: format!("{} HTTPS 0123ABCD", camera.model),
        not_before,
        validity_days: camera.server_cert_days,
    };
    // Constraints that permit none of this camera's names, not even the fallback camera.local,
    // are a refusal with a clear message (they may well fit the addresses of the real camera).
    let any_permitted = spec.names.iter().any(|n| ca.permits(n));
    match ca.mint_server(&spec) {
        Ok(minted) => {
            camera_pki::describe(&minted.cert_der).expect("a minted certificate does not parse");
        }
        Err(e) => assert!(!any_permitted, "an accepted config cannot mint a server certificate: {e}"),
    }
});
