//! What every project task needs, once: the workspace root and cargo's target directory, running
//! a program and finding one on `PATH`, and installing Debian packages without failing when
//! another apt already holds the package lock.
//!
//! `xtask` and the tool crates (`tools/bench`, `tools/firmware`) all link this, and it has no
//! dependencies, so the front door builds in seconds.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The most bytes the shipped binary (stripped aarch64-musl `camera-https`) may have: the design
/// brief's budget. `cargo xtask cross` and `cargo xtask test` fail over it, `cargo xtask size` and
/// the bench report against it.
pub const SHIPPED_SIZE_BUDGET: u64 = 2_400_000;

/// A task's outcome: the error is the sentence the user sees.
pub type Result<T = ()> = std::result::Result<T, String>;

/// Installs the cargo subcommand `cargo <subcommand>` from crates.io (package `package`, its
/// locked dependencies) unless it is there already.
pub fn ensure_cargo_subcommand(subcommand: &str, package: &str) -> Result {
    let installed = cargo()
        .args([subcommand, "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if installed {
        return Ok(());
    }
    eprintln!("xtask: installing {package}");
    run(cargo().args(["install", "--locked", package]))
}

/// The workspace root (this crate lives in `tools/task-support`).
pub fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().nth(2).map(Path::to_path_buf).unwrap_or_default()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set (relative to the workspace root, where
/// every task runs cargo), else `target/` in the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), |dir| root().join(dir))
}

/// `cargo` in the workspace root: the cargo that started this task when there is one (so a
/// `cargo +toolchain xtask` stays on its toolchain), else the one on `PATH`.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Runs `cmd` with this process's output; an error when it cannot start or does not succeed.
pub fn run(cmd: &mut Command) -> Result {
    let status = cmd.status().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {status}"))
    }
}

/// The program's path on `PATH` (`command -v`), if it is there.
pub fn which(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|dir| dir.join(program)).find(|path| path.is_file())
}

/// How long an apt call waits for another apt (unattended-upgrades on a new machine, a second
/// task) to let go of the package lock before it gives up.
const APT_LOCK_WAIT: Duration = Duration::from_secs(600);

/// `apt-get update` then `apt-get install` of `packages` (no recommends, no questions), each
/// waiting for the package lock as [`apt_get`] does; then the downloaded archives are removed
/// (`apt-get clean`): installed, they only take disk space the builds need.
pub fn apt_install(packages: &[&str]) -> Result {
    if packages.is_empty() {
        return Ok(());
    }
    eprintln!("task: installing Debian packages: {}", packages.join(" "));
    apt_get(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend_from_slice(packages);
    apt_get(&install)?;
    apt_get(&["clean"])
}

/// `apt-get ARGS` for the machine's own package setup. dpkg's lock is waited for by apt itself
/// (`DPkg::Lock::Timeout`); the lists and archive locks it does not wait for, so a run that fails
/// on one of those is tried again until [`APT_LOCK_WAIT`] has passed.
pub fn apt_get(args: &[&str]) -> Result {
    let started = Instant::now();
    loop {
        let mut cmd = Command::new("apt-get");
        cmd.args(["-o", &format!("DPkg::Lock::Timeout={}", APT_LOCK_WAIT.as_secs())])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped());
        let Output { status, stderr, .. } = cmd.output().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
        let stderr = String::from_utf8_lossy(&stderr);
        eprint!("{stderr}");
        if status.success() {
            return Ok(());
        }
        let locked = stderr.contains("Could not get lock") || stderr.contains("Unable to lock");
        if !locked || started.elapsed() >= APT_LOCK_WAIT {
            return Err(format!("{cmd:?} failed: {status}"));
        }
        eprintln!("task: another apt holds the package lock; trying again in 5 s");
        std::thread::sleep(Duration::from_secs(5));
    }
}
