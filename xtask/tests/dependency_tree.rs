//! Dependency hygiene: no aws-lc-rs and no OpenSSL in what ships to the camera.
//!
//! rustls and tokio-rustls pull in aws-lc-rs (a large C build, several hundred KiB on flash) unless
//! their default features are off; `native-tls` and the `openssl` crates would link the system
//! OpenSSL. `cargo tree` over the normal (non-dev, non-build) edges of the two shipped programs, for
//! each camera target, proves neither is there.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Crates that must never be in the shipped programs' tree.
const FORBIDDEN: &[&str] = &["aws-lc-rs", "aws-lc-sys", "aws-lc-fips-sys", "openssl", "openssl-sys", "native-tls"];

/// The camera targets (`cargo xtask cross` builds and tests each).
const TARGETS: &[&str] = &["aarch64-unknown-linux-musl", "aarch64-unknown-linux-gnu", "armv7-unknown-linux-gnueabihf"];

/// `name vX.Y.Z` of every crate in the normal dependency tree of both programs for `target`.
fn tree(target: &str) -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--locked", "-e", "normal", "--target", target, "-p", "camera-web", "-p", "cert-provisioner", "--prefix", "none"])
        .current_dir(root)
        .output()
        .expect("run cargo tree");
    assert!(out.status.success(), "cargo tree for {target} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some(format!("{} {}", words.next()?, words.next()?))
        })
        .collect()
}

#[test]
fn no_aws_lc_or_openssl_in_the_shipped_tree() {
    for target in TARGETS {
        let crates = tree(target);
        let found: Vec<&String> =
            crates.iter().filter(|c| FORBIDDEN.contains(&c.split(' ').next().unwrap_or_default())).collect();
        println!("{target}: {} crates in the normal dependency tree of camera-web + cert-provisioner", crates.len());
        assert!(
            found.is_empty(),
            "{target}: forbidden crates in the dependency tree: {found:?}\n\
             (check that rustls / tokio-rustls / rcgen keep default-features = false with the ring provider; \
             `cargo tree -e normal --target {target} -i <crate>` shows who pulls it in)"
        );
        assert!(crates.iter().any(|c| c.starts_with("ring ")), "{target}: ring missing from the tree: the parse of cargo tree's output is wrong");
    }
}
