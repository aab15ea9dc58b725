//! Stripped sizes of the shipped binaries: for this host, and for aarch64-musl (the camera) when
//! that target and a cross linker are installed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::procs::run_quiet;
use task_support::Result;
use task_support::{cargo, run, target_dir, which};

/// The two programs as separate binaries, then the multi-call binary that ships (both in one).
pub const BINARIES: [&str; 3] = ["cert-provisioner", "camera-web", SHIPPED];
pub const SHIPPED: &str = "camera-https";
pub const CAMERA_TARGET: &str = "aarch64-unknown-linux-musl";

#[derive(Debug)]
pub struct Sizes {
    pub target: String,
    /// `(binary, stripped bytes)`.
    pub files: Vec<(&'static str, u64)>,
}

impl Sizes {
    /// The two programs built separately, together.
    pub fn separate(&self) -> u64 {
        self.files.iter().filter(|(name, _)| *name != SHIPPED).map(|(_, size)| size).sum()
    }

    /// What ships: the multi-call binary.
    pub fn shipped(&self) -> u64 {
        self.files.iter().find(|(name, _)| *name == SHIPPED).map_or(0, |(_, size)| *size)
    }
}

/// Sizes of `dir/<binary>` after `strip` (the release profile strips already; this makes sure).
pub fn measure(target: &str, dir: &Path, strip: &str, scratch: &Path) -> Result<Sizes> {
    let mut files = Vec::new();
    for name in BINARIES {
        let bin = dir.join(name);
        let copy = scratch.join(format!("{target}-{name}"));
        fs::copy(&bin, &copy).map_err(|e| format!("cannot copy {}: {e} (not built?)", bin.display()))?;
        if which(strip).is_some() {
            run_quiet(Command::new(strip).arg(&copy))?;
        }
        let size = fs::metadata(&copy).map_err(|e| format!("cannot stat {}: {e}", copy.display()))?.len();
        files.push((name, size));
    }
    Ok(Sizes { target: target.to_owned(), files })
}

/// Why the camera build cannot be made here, or `None` if it can.
pub fn camera_build_missing() -> Option<String> {
    let sysroot = Command::new("rustc").args(["--print", "sysroot"]).output().ok()?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if !sysroot.join("lib/rustlib").join(CAMERA_TARGET).exists() {
        return Some(format!("Rust target {CAMERA_TARGET} not installed (rustup target add {CAMERA_TARGET})"));
    }
    if which("aarch64-linux-gnu-gcc").is_none() {
        return Some("aarch64-linux-gnu-gcc not installed (apt-get install gcc-aarch64-linux-gnu)".into());
    }
    None
}

/// What the bench builds: the two programs, and the multi-call binary that ships.
pub const PACKAGES: [&str; 6] = ["-p", "camera-web", "-p", "cert-provisioner", "-p", "camera-multicall"];

/// `cargo build --release --target aarch64-unknown-linux-musl` of [`PACKAGES`].
pub fn build_camera() -> Result {
    // ring's C and assembly: Debian has no aarch64 musl gcc; the glibc one compiles them fine
    // (.cargo/config.toml links with it too).
    build_musl(CAMERA_TARGET, &PACKAGES, ("aarch64-linux-gnu-gcc", Some("aarch64-linux-gnu-ar")))
}

/// The shipped configuration (the multi-call binary, static musl, the release profile's size
/// settings) built for this host's architecture, so its memory can be measured here next to
/// nginx: a glibc build maps the shared C library and a larger binary, which the camera does not.
pub const HOST_SHIPPED_TARGET: &str = "x86_64-unknown-linux-musl";

/// Builds [`HOST_SHIPPED_TARGET`]'s `camera-https` (adding the Rust target if missing); returns its path.
pub fn build_shipped_for_host() -> Result<PathBuf> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    if !String::from_utf8_lossy(&installed.stdout).lines().any(|l| l.trim() == HOST_SHIPPED_TARGET) {
        run_quiet(Command::new("rustup").args(["target", "add", HOST_SHIPPED_TARGET]))?;
    }
    // ring's C: Debian has no x86_64 musl gcc by that name; the system gcc compiles it fine.
    build_musl(HOST_SHIPPED_TARGET, &["-p", "camera-multicall"], ("gcc", None))?;
    Ok(target_dir().join(HOST_SHIPPED_TARGET).join("release/camera-https"))
}

/// `cargo build --release --locked --target TARGET` of `packages` (`-p` arguments); without a
/// `<arch>-linux-musl-gcc`, ring's C is compiled with `fallback` (the C compiler, and its `ar`).
fn build_musl(target: &str, packages: &[&str], fallback: (&str, Option<&str>)) -> Result {
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--quiet", "--locked", "--target", target]).args(packages);
    let triple_var = target.replace('-', "_");
    let cc_var = format!("CC_{triple_var}");
    let musl_gcc = format!("{}-linux-musl-gcc", target.split('-').next().unwrap_or(target));
    if std::env::var_os(&cc_var).is_none() && which(&musl_gcc).is_none() {
        cmd.env(&cc_var, fallback.0);
        if let Some(ar) = fallback.1 {
            cmd.env(format!("AR_{triple_var}"), ar);
        }
    }
    run(&mut cmd)
}
