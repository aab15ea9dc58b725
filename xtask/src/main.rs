//! `cargo xtask <task>`: the project's tasks, instead of shell scripts scattered around.
//!
//! - `run`: both camera programs on this machine with development defaults (state in
//!   `dev-state/`, ports 8443 and 8080, loopback names), printing the URL and what to do next.
//! - `test`: installs what the tests need on a Debian machine, then runs the whole suite.
//! - `deps`: only the installing part of `test`.
//! - `lint`: `cargo fmt --check` (workspace and `fuzz/`) and clippy with `-D warnings`.
//! - `cross`: release builds and stripped sizes for the camera targets, and the tests under qemu-user.
//! - `bench`: measures the design brief's budgets against nginx and the openssl CLI (see `bench/`).
//! - `fuzz [TARGET...] [--seconds N]`: the cargo-fuzz targets in `fuzz/`, N seconds each (see `fuzz.rs`).
//! - `image`, `qemu`, `system-test`: firmware images for the QEMU boards in `board/`, booting
//!   them, and the full-system test (see `firmware/`).

mod bench;
mod cross;
mod firmware;
mod fuzz;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

type Result<T = ()> = std::result::Result<T, String>;

/// Debian packages the test suite uses, by the command (or, with a leading `/`, the file) that
/// shows each is present.
const APT_TOOLS: &[(&str, &str)] = &[
    ("openssl", "openssl"),
    ("curl", "curl"),
    ("ip", "iproute2"),
    ("unshare", "util-linux"),
    ("chromium", "chromium"),
    ("certutil", "libnss3-tools"),
    ("node", "nodejs"),
    ("npm", "npm"),
    ("nginx", "nginx"),
    ("wrk", "wrk"),
    ("qemu-system-aarch64", "qemu-system-arm"),
    ("mke2fs", "e2fsprogs"),
    ("dpkg-deb", "dpkg"),
    ("gzip", "gzip"),
    // Other TLS stacks the interop matrix verifies against (crates/camera-web/tests/interop.rs).
    ("gnutls-cli", "gnutls-bin"),
    ("go", "golang-go"),
    ("javac", "default-jdk-headless"),
    ("gcc", "gcc"),
    ("/usr/include/mbedtls/ssl.h", "libmbedtls-dev"),
    // The site CAs enrollment is tested against.
    ("pebble", "pebble"),
    ("pebble-challtestsrv", "pebble"),
    ("scepserver", "scep"),
    // Reference clients of the enrollment benchmark (`cargo xtask bench --only enroll`).
    ("lego", "lego"),
    ("scepclient", "scep"),
    // micromdm's SCEP library, built into a SCEP server issuing server certificates (tests/enrollment).
    ("/usr/share/gocode/src/github.com/micromdm/scep/server/service.go", "golang-github-micromdm-scep-dev"),
];

/// PyPI tools, by the module that shows each is present (pinned: the tests read their output).
const PIP_TOOLS: &[(&str, &str)] =
    &[("pkilint", "pkilint"), ("sslyze", "sslyze"), ("openapi_core", "openapi-core==0.23.1")];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn run(cmd: &mut Command) -> Result {
    let status = cmd.status().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {status}"))
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool} >/dev/null 2>&1")]).status().is_ok_and(|s| s.success())
}

fn python_has(module: &str) -> bool {
    Command::new("python3").args(["-c", &format!("import {module}")]).status().is_ok_and(|s| s.success())
}

/// Installs what is missing; never skips a tool the tests need.
fn deps() -> Result {
    let present = |probe: &str| if probe.starts_with('/') { Path::new(probe).exists() } else { have(probe) };
    let mut missing: Vec<&str> = APT_TOOLS.iter().filter(|(probe, _)| !present(probe)).map(|(_, pkg)| *pkg).collect();
    missing.dedup();
    if !missing.is_empty() {
        eprintln!("xtask: installing Debian packages: {}", missing.join(" "));
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    let missing: Vec<&str> = PIP_TOOLS.iter().filter(|(module, _)| !python_has(module)).map(|(_, pkg)| *pkg).collect();
    if !missing.is_empty() {
        eprintln!("xtask: installing Python packages: {}", missing.join(" "));
        run(Command::new("python3")
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(&missing))?;
    }
    let ui = root().join("tests/ui");
    if ui.join("package.json").exists() && !ui.join("node_modules/playwright-core").exists() {
        eprintln!("xtask: installing the UI test's npm packages");
        run(Command::new("npm").args(["install", "--no-audit", "--no-fund", "--silent"]).current_dir(&ui))?;
    }
    cross::deps()
}

/// The lint gate: formatting (the workspace and `fuzz/`) and clippy with warnings as errors.
fn lint() -> Result {
    run(Command::new(env!("CARGO")).args(["fmt", "--all", "--check"]).current_dir(root()))?;
    run(Command::new(env!("CARGO")).args(["fmt", "--all", "--check"]).current_dir(root().join("fuzz")))?;
    run(Command::new(env!("CARGO"))
        .args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"])
        .current_dir(root()))
}

/// A stage of `cargo xtask test`: what the table calls it, and what runs.
type Stage = (&'static str, fn() -> Result);

/// `cargo xtask test`: every stage, timed; the table of stage times is printed at the end, also
/// when a stage fails (the stages after it did not run).
fn test() -> Result {
    let stages: [Stage; 8] = [
        ("install (apt, pip, npm, rustup targets)", deps),
        ("lint (rustfmt, clippy -D warnings)", lint),
        ("host tests (cargo test --workspace)", || {
            run(Command::new(env!("CARGO")).args(["test", "--workspace", "--locked"]).current_dir(root()))
        }),
        // Every parser that sees user input, fuzzed briefly (10 s per target) from the committed seeds.
        ("fuzz smoke", fuzz::smoke),
        // The shipping target: release build, size budget, every library's tests under qemu-user.
        ("aarch64-musl: release build, size, library tests (qemu-user)", || {
            cross::ci_target("aarch64-unknown-linux-musl")
        }),
        // The other camera targets: the byte-level crates' tests under qemu-user.
        ("aarch64-gnu: byte-level crates' tests (qemu-user)", || cross::ci_target("aarch64-unknown-linux-gnu")),
        ("armv7-gnueabihf: byte-level crates' tests (qemu-user)", || cross::ci_target("armv7-unknown-linux-gnueabihf")),
        // The firmware booted in QEMU full-system emulation (uses the release builds just made).
        ("QEMU system test (aarch64 and armv7 boot and serve)", || firmware::system_test_task(std::iter::empty())),
    ];
    let started = std::time::Instant::now();
    let mut times = Vec::new();
    let mut result = Ok(());
    for (name, stage) in stages {
        let t = std::time::Instant::now();
        result = stage();
        times.push((name, t.elapsed(), result.is_ok()));
        if result.is_err() {
            break;
        }
    }
    println!("\nxtask test: stage times");
    for (name, took, ok) in &times {
        let secs = took.as_secs();
        println!("  {name:<68} {:>3} min {:>2} s  {}", secs / 60, secs % 60, if *ok { "ok" } else { "FAILED" });
    }
    let secs = started.elapsed().as_secs();
    println!("  {:<68} {:>3} min {:>2} s", "whole test command", secs / 60, secs % 60);
    result
}

fn dev_run() -> Result {
    let root = root();
    let dev = root.join("dev-state");
    let (state, run_dir, config) = (dev.join("state"), dev.join("run"), dev.join("config.json"));
    std::fs::create_dir_all(&dev).map_err(|e| format!("cannot create {}: {e}", dev.display()))?;
    if !config.exists() {
        // Loopback names, so the browser on this machine can open https://localhost:8443/.
        std::fs::write(&config, "{\n  \"camera\": {\"model\": \"Dev Camera\", \"loopback\": true},\n  \"web\": {\"https\": \"127.0.0.1:8443\", \"http\": \"127.0.0.1:8080\"}\n}\n")
            .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    }
    run(Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "cert-provisioner", "-p", "camera-web"])
        .current_dir(&root))?;
    let bin = root.join("target/debug");
    let dirs = |cmd: &mut Command| {
        cmd.arg("--config").arg(&config).arg("--state-dir").arg(&state).arg("--run-dir").arg(&run_dir);
    };
    let mut provisioner = Command::new(bin.join("cert-provisioner"));
    dirs(&mut provisioner);
    run(&mut provisioner)?;
    let ca = state.join("ca.crt");
    println!(
        "\nThe camera UI is at https://localhost:8443/ (plain HTTP on http://localhost:8080/ redirects there).\n\
         Next:\n  1. Trust the camera's CA once: import {ca} into your browser (or: curl --cacert {ca} https://localhost:8443/api/v1/certificate).\n  \
         2. Open https://localhost:8443/ and set the admin password.\n  3. Ctrl-C stops the server; the CA stays in {state} for the next run.\n",
        ca = ca.display(),
        state = state.display()
    );
    let mut web = Command::new(bin.join("camera-web"));
    dirs(&mut web);
    run(&mut web)
}

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "run" => dev_run(),
        "test" => test(),
        "deps" => deps(),
        "lint" => lint(),
        "cross" => cross::run_cli(std::env::args().skip(2)),
        "bench" => bench::run(std::env::args().skip(2)),
        // Internal: the part of `bench` that runs inside a network namespace.
        bench::LATENCY_INSIDE_TASK => bench::latency_inside(std::env::args().skip(2)),
        "fuzz" => fuzz::run_cli(std::env::args().skip(2)),
        "image" => firmware::image_task(std::env::args().skip(2)),
        "qemu" => firmware::qemu_task(std::env::args().skip(2)),
        "system-test" => firmware::system_test_task(std::env::args().skip(2)),
        _ => Err("usage: cargo xtask <run|test|deps|lint|cross|bench|fuzz|image|qemu|system-test>".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
