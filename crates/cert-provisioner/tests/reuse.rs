//! The web server starts with `reuse_or_provision`: it serves the boot step's certificate when
//! that is still right, and mints when anything changed.

#![allow(clippy::unwrap_used)]

use camera_config::CameraConfig;
use camera_provision::{provision, reuse_or_provision};
use camera_state::Layout;
use camera_test_support::TempDir;

#[test]
fn the_boot_steps_certificate_is_kept_until_the_names_change() {
    let dir = TempDir::new("provisioner-reuse");
    let layout = Layout::new(dir.state(), dir.run());
    let config = CameraConfig { hostname: Some("reusecam".into()), ..CameraConfig::default() };
    let boot = provision(&layout, &config).unwrap();
    assert!(!boot.reused);
    let web = reuse_or_provision(&layout, &config).unwrap();
    assert!(web.reused, "{}", web.summary());
    assert!(web.summary().contains("kept from"), "{}", web.summary());
    assert_eq!(web.minted.cert_der, boot.minted.cert_der);

    let renamed = CameraConfig { hostname: Some("othercam".into()), ..config.clone() };
    let web = reuse_or_provision(&layout, &renamed).unwrap();
    assert!(!web.reused, "a new name means a new certificate");
    assert!(web.minted.names.iter().any(|n| n.to_string() == "othercam.local"));

    // A bundle that no longer parses is replaced, not served.
    std::fs::write(layout.minted_bundle(), b"garbage").unwrap();
    let web = reuse_or_provision(&layout, &renamed).unwrap();
    assert!(!web.reused);
}
