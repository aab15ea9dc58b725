//! Records the build time: the clock floor for cameras that boot without a real-time clock.
//! SOURCE_DATE_EPOCH (reproducible builds) wins when set.
fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let epoch =
        std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
        });
    println!("cargo:rustc-env=CAMERA_BUILD_TIME={epoch}");
}
