//! `cargo xtask <command>`: the project's front door. Each command is listed in [`COMMANDS`] with
//! what it does; `cargo xtask --help` prints them.
//!
//! xtask itself stays small and builds in seconds (no crypto, no camera crate): the benchmark
//! and the firmware work are tool crates of their own (`tools/bench`, `tools/firmware`) that the
//! commands run with `cargo run -p <tool>`; what every task shares is `tools/task-support`.

mod cross;
mod fuzz;
mod host_tests;
mod size;
mod test;

use std::path::Path;
use std::process::{Command, ExitCode};

use task_support::{cargo, root, run, which, Result};

/// A command: its name, its arguments, one sentence on what it does, and what runs it.
struct Commands {
    name: &'static str,
    args: &'static str,
    about: &'static str,
    task: fn(Vec<String>) -> Result,
}

const COMMANDS: &[Commands] = &[
    Commands {
        name: "run",
        args: "",
        about: "Builds both camera programs and runs them on this machine with development defaults (https://localhost:8443/, state in dev-state/).",
        task: |args| no_args("run", &args).and_then(|()| dev_run()),
    },
    Commands {
        name: "test",
        args: "[--host-only]",
        about: "Installs what the tests need, then runs every stage CI runs and prints how long each took; --host-only: only build and run the host tests (no install, lint, fuzz or camera targets).",
        task: |args| match args.as_slice() {
            [] => test::run_all(),
            [only] if only == "--host-only" => host_tests::run(),
            _ => Err(format!("unexpected arguments to test: {args:?}; cargo xtask --help lists them")),
        },
    },
    Commands {
        name: "deps",
        args: "",
        about: "Installs the Debian, Python and npm packages, Rust targets, cargo-fuzz and firmware packages the tests need.",
        task: |args| no_args("deps", &args).and_then(|()| deps()),
    },
    Commands {
        name: "lint",
        args: "",
        about: "Checks formatting (the workspace and fuzz/) and runs clippy on every target with warnings as errors.",
        task: |args| no_args("lint", &args).and_then(|()| lint()),
    },
    Commands {
        name: "cross",
        args: "[--target TRIPLE]... [--no-test] | --ci",
        about: "Release builds and stripped sizes for the camera targets, and their tests under qemu-user.",
        task: |args| cross::run_cli(args.into_iter()),
    },
    Commands {
        name: "size",
        args: "",
        about: "Prints the shipped binary's size per crate (aarch64-musl release, symbols kept) and its stripped size against the budget.",
        task: |args| no_args("size", &args).and_then(|()| size::report()),
    },
    Commands {
        name: "fuzz",
        args: "[TARGET...] [--seconds N] [--sanitizer address|none] [-- LIBFUZZER_ARGS...]",
        about: "Runs the cargo-fuzz targets in fuzz/ for N seconds each (10 by default).",
        task: |args| fuzz::run_cli(args.into_iter()),
    },
    Commands {
        name: "bench",
        args: "[--check] [--duration SECS] [--threads N] [--no-camera-build] [--only ca|enroll|dot1x|fleet] [--cameras N]",
        about: "Measures the design brief's budgets against openssl, nginx, reference enrollment clients and wpa_supplicant; --only fleet: 200 cameras against their CA with the spread on and off (tools/bench, release build).",
        task: |args| run(cargo().args(["run", "--quiet", "--release", "--locked", "-p", "bench", "--"]).args(args)),
    },
    Commands {
        name: "image",
        args: "[--board B] [--no-build]",
        about: "Assembles a bootable firmware image for a QEMU board in target/firmware/B/ (tools/firmware).",
        task: |args| firmware("image", args),
    },
    Commands {
        name: "qemu",
        args: "[--board B] [--port N] [--http-port N] [--boot-time N]",
        about: "Boots a board's firmware image in QEMU with HTTPS forwarded to 127.0.0.1, or times N boots.",
        task: |args| firmware("qemu", args),
    },
    Commands {
        name: "system-test",
        args: "[--no-build] [--skip-armv7]",
        about: "Boots the aarch64 and armv7 firmware in QEMU and checks provisioning, the API, uploads and reboots from the host.",
        task: |args| firmware("system-test", args),
    },
];

fn help() -> String {
    let mut text = String::from("usage: cargo xtask <command> [ARGS...]\n\ncommands:\n");
    for c in COMMANDS {
        text.push_str(&format!("  {:<12} {}\n", c.name, c.about));
        if !c.args.is_empty() {
            text.push_str(&format!("  {:<12}   {} {}\n", "", c.name, c.args));
        }
    }
    text
}

fn no_args(command: &str, args: &[String]) -> Result {
    match args.first() {
        None => Ok(()),
        Some(arg) => Err(format!("{command} takes no arguments, not {arg:?}")),
    }
}

/// `cargo run -p firmware -- <task> ARGS` (the debug build: the tool only drives other programs).
fn firmware(task: &str, args: Vec<String>) -> Result {
    run(cargo().args(["run", "--quiet", "--locked", "-p", "firmware", "--", task]).args(args))
}

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
    // 802.1X: the camera's supplicant, and a switch port (a wired authenticator and its port gate).
    ("/usr/sbin/wpa_supplicant", "wpasupplicant"),
    ("/usr/sbin/hostapd", "hostapd"),
    ("/usr/sbin/nft", "nftables"),
];

/// PyPI tools, by the module that shows each is present (pinned: the tests read their output).
const PIP_TOOLS: &[(&str, &str)] =
    &[("pkilint", "pkilint"), ("sslyze", "sslyze"), ("openapi_core", "openapi-core==0.23.1")];

fn python_has(module: &str) -> bool {
    Command::new("python3").args(["-c", &format!("import {module}")]).status().is_ok_and(|s| s.success())
}

/// Installs what is missing; never skips a tool the tests need.
fn deps() -> Result {
    let present = |probe: &str| if probe.starts_with('/') { Path::new(probe).exists() } else { which(probe).is_some() };
    let mut missing: Vec<&str> = APT_TOOLS.iter().filter(|(probe, _)| !present(probe)).map(|(_, pkg)| *pkg).collect();
    missing.extend(cross::APT_PACKAGES.iter().filter(|(file, _)| !Path::new(file).exists()).map(|(_, pkg)| *pkg));
    missing.sort_unstable();
    missing.dedup();
    // One apt transaction for the tests' tools and the cross toolchains.
    task_support::apt_install(&missing)?;
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
    cross::add_rust_targets()?;
    fuzz::ensure_cargo_fuzz()?;
    // The firmware's Debian packages (kernels, BusyBox), fetched now so the system test does not
    // wait for them. The tool is built in a directory of its own: a build running beside this
    // (`cargo xtask test` lints while it installs) holds the main target directory's lock.
    let tools_dir = task_support::target_dir().join("deps-tools");
    run(cargo()
        .arg("run")
        .arg("--quiet")
        .arg("--locked")
        .arg("--target-dir")
        .arg(&tools_dir)
        .args(["-p", "firmware", "--", "fetch"]))
}

/// The lint gate: formatting (the workspace and `fuzz/`) and clippy with warnings as errors.
fn lint() -> Result {
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args(["fmt", "--all", "--check"]).current_dir(root().join("fuzz")))?;
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]))
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
    run(cargo().args(["build", "--quiet", "-p", "cert-provisioner", "-p", "camera-web"]))?;
    let bin = task_support::target_dir().join("debug");
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
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_default();
    let args: Vec<String> = args.collect();
    let result = match name.as_str() {
        "" | "help" | "--help" | "-h" => {
            print!("{}", help());
            Ok(())
        }
        // Internal: a stage `cargo xtask test` runs in the background (see `test.rs`).
        test::BACKGROUND_STAGE => test::background_stage(args),
        _ => match COMMANDS.iter().find(|c| c.name == name) {
            Some(command) => (command.task)(args),
            None => Err(format!("unknown command {name:?}\n{}", help())),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
