//! The camera as it is now: its addresses and names (a netlink dump), and the upload checks
//! against them, which both a hand upload and an enrolled certificate pass.

use std::net::IpAddr;

use camera_config::CameraConfig;
use camera_pki::SanName;
use camera_provision::provision::{camera_names, hostname};

use super::certificates::Role;
use crate::log;

/// The camera's addresses, names and host name right now (a netlink dump: blocking).
pub fn camera_now(camera: &CameraConfig) -> (Vec<IpAddr>, Vec<SanName>, Option<String>) {
    let mut warnings = Vec::new();
    let addresses = camera_provision::provision::current_addresses(&mut warnings);
    for warning in warnings {
        log::warn(&warning);
    }
    let names = camera_names(camera, &addresses);
    (addresses, names, hostname(camera))
}

/// The upload checks against the camera as it is now: its addresses and names, and the key of a
/// request made on it. Enrollment installs through the same checks.
pub fn check_upload(
    camera: &CameraConfig,
    role: Role,
    pending_key: Option<&[u8]>,
    certificate: Option<&[u8]>,
    key: Option<&[u8]>,
    passphrase: Option<&str>,
) -> Result<camera_upload::Accepted, camera_upload::UploadError> {
    let (addresses, names, _) = camera_now(camera);
    let dns: Vec<String> = names
        .iter()
        .filter_map(|n| match n {
            SanName::Dns(d) => Some(d.clone()),
            SanName::Ip(_) => None,
        })
        .collect();
    let input = camera_upload::UploadInput { certificate, key, passphrase };
    let ctx = camera_upload::Context {
        now: std::time::SystemTime::now(),
        pending_key_pkcs8: pending_key,
        current_ips: &addresses,
        current_dns: &dns,
        purpose: role.purpose(),
    };
    camera_upload::validate_upload(&input, &ctx)
}
