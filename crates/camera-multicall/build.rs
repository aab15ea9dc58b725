//! Links the shipped binary (static musl, release, panic = "abort") without unwind tables.
//!
//! With fat LTO, LLVM emits DWARF unwind tables for every function whatever `-C
//! force-unwind-tables` says (the standard library's modules bring debug info and the unwind-table
//! module flag into the merged module), and nothing ever reads them in a binary that aborts on
//! panic. Measured for aarch64-unknown-linux-musl: `.eh_frame` 316 KB and `.eh_frame_hdr` 95 KB of
//! a 2.69 MiB binary. Only for release builds (the workspace's release profile sets panic =
//! "abort"; cargo does not tell build scripts the panic strategy) of musl targets (glibc's
//! start-up and thread cancellation may read the tables).
//!
//! Segments aligned to 4 KiB pages instead of GNU ld's aarch64 default of 64 KiB: the read-only
//! relocations' segment must end on a page boundary, and at 64 KiB the file carries up to 64 KiB
//! of zeros before it (measured: 24,576 bytes of the shipped binary, and its size moved only in
//! 64 KiB steps). Camera kernels use 4 KiB pages (Buildroot's default, and Debian's arm64 kernel
//! the system test boots); a kernel built for 16 or 64 KiB pages would refuse to run the binary.

use std::path::Path;

fn main() {
    let cfg = |name: &str| std::env::var(format!("CARGO_CFG_{name}")).unwrap_or_default();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("discard-unwind-tables.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    if release && cfg("TARGET_OS") == "linux" && cfg("TARGET_ENV") == "musl" {
        println!("cargo:rustc-link-arg-bins=-Wl,--no-eh-frame-hdr");
        println!("cargo:rustc-link-arg-bins=-Wl,-z,max-page-size=4096,-z,common-page-size=4096");
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
    }
}
