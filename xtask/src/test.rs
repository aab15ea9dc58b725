//! `cargo xtask test`: everything CI runs, as timed stages; the table of stage times is printed
//! at the end, also when a stage fails (the stages after it do not run; a shipped binary over
//! its size budget is the exception: that fails the run at the end).
//!
//! The machine has two cores, so the order is chosen to keep both busy and to build each thing
//! once:
//! - installing (apt, pip, npm, rustup targets, cargo-fuzz, the firmware's Debian packages)
//!   waits mostly on the network and dpkg: it runs in the background while lint and the host
//!   test build compile;
//! - the host tests are built once (`--no-run`) and then run on their own: many of them time
//!   things (load, address changes, power cuts), so nothing else competes with them, except the
//!   few that mostly wait, which run beside them ([`crate::host_tests`]);
//! - the fuzz targets are built once, then their ten-second runs (one core) go on in the
//!   background while the release builds for the camera targets end in a long single-threaded
//!   link (fat LTO, one codegen unit);
//! - those release builds (only the multi-call binary that ships, for aarch64-musl and armv7,
//!   in one cargo command so the two links run side by side) are the ones the system test boots,
//!   so it builds nothing itself; it runs (QEMU, one core mostly) beside the qemu-user test
//!   builds, and those tests run after it, each target on its own.
//!
//! A background stage is this program again (`xtask test-background-stage NAME`), its output in
//! `target/xtask-test/NAME.log`, shown when it fails.

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use task_support::{cargo, run, target_dir, which, Result};

use crate::{cross, fuzz, host_tests};

/// The hidden command that runs one of [`BACKGROUND`]'s stages.
pub const BACKGROUND_STAGE: &str = "test-background-stage";

/// A stage's work.
type Task = fn() -> Result;

/// The stages that run in the background, by the name their log takes.
const BACKGROUND: &[(&str, Task)] =
    &[("install", crate::deps), ("fuzz-runs", fuzz::smoke), ("system-test", system_test)];

pub fn background_stage(args: Vec<String>) -> Result {
    let name = args.first().map(String::as_str).unwrap_or_default();
    let (_, stage) = BACKGROUND.iter().find(|(n, _)| *n == name).ok_or(format!("no background stage {name:?}"))?;
    stage()
}

/// One row of the stage table.
struct Row {
    name: String,
    took: Duration,
    ok: bool,
    /// Free space on the build's disk when the stage ended: a small CI disk fills up mid-run.
    free_gb: Option<f64>,
}

/// Free space on the file system of the target directory, in GB, as `df` reports it.
fn free_disk_gb() -> Option<f64> {
    let target = target_dir();
    let existing = target.ancestors().find(|dir| dir.exists())?;
    let out = Command::new("df").args(["-B1M", "--output=avail"]).arg(existing).output().ok()?;
    let mib: f64 = String::from_utf8_lossy(&out.stdout).lines().nth(1)?.trim().parse().ok()?;
    Some(mib * 1024.0 * 1024.0 / 1e9)
}

#[derive(Default)]
struct Stages {
    rows: Vec<Row>,
}

impl Stages {
    /// Runs `stage` in the foreground and records it.
    fn run(&mut self, name: &str, stage: impl FnOnce() -> Result) -> Result {
        println!("\nxtask test: {name}");
        let started = Instant::now();
        let result = stage();
        self.rows.push(Row {
            name: name.to_owned(),
            took: started.elapsed(),
            ok: result.is_ok(),
            free_gb: free_disk_gb(),
        });
        result
    }

    /// Waits for a background stage and records it.
    fn join(&mut self, background: Background) -> Result {
        let (name, took, result) = background.wait();
        self.rows.push(Row { name, took, ok: result.is_ok(), free_gb: free_disk_gb() });
        result
    }

    fn print(&self, started: Instant) {
        let clock = |d: Duration| format!("{:>3} min {:>2} s", d.as_secs() / 60, d.as_secs() % 60);
        println!(
            "\nxtask test: stage times (stages marked & ran in the background, beside the next ones), and the disk \
             space free after each"
        );
        for row in &self.rows {
            let free = row.free_gb.map_or_else(|| "?".to_owned(), |gb| format!("{gb:.1} GB"));
            println!(
                "  {:<72} {}  {:>9} free  {}",
                row.name,
                clock(row.took),
                free,
                if row.ok { "ok" } else { "FAILED" }
            );
        }
        println!("  {:<72} {}", "whole test command", clock(started.elapsed()));
    }
}

/// A stage running as a child process, its output in a log file.
struct Background {
    name: String,
    log: std::path::PathBuf,
    child: Child,
    started: Instant,
}

impl Background {
    fn start(name: &str, stage: &str) -> Result<Self> {
        let dir = target_dir().join("xtask-test");
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let log = dir.join(format!("{stage}.log"));
        let out = File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("cannot share {}: {e}", log.display()))?;
        // This very program: a `cargo test --workspace` meanwhile may replace the file it was
        // started from, but /proc/self/exe still names the running one.
        let child = Command::new("/proc/self/exe")
            .args([BACKGROUND_STAGE, stage])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start the background stage {stage}: {e}"))?;
        println!("\nxtask test: & {name} (in the background; log: {})", log.display());
        Ok(Self { name: format!("& {name}"), log, child, started: Instant::now() })
    }

    /// Waits for the stage to end; on failure shows the end of its log.
    fn wait(mut self) -> (String, Duration, Result) {
        let result = match self.child.wait() {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => {
                Err(format!("the background stage {} failed ({status}); log: {}", self.name, self.log.display()))
            }
            Err(e) => Err(format!("waiting for the background stage {}: {e}", self.name)),
        };
        let took = self.started.elapsed();
        if result.is_err() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            println!("\nxtask test: the last lines of {}:", self.log.display());
            for line in &lines[lines.len().saturating_sub(60)..] {
                println!("  {line}");
            }
        } else {
            println!("\nxtask test: {} finished ({} s; log: {})", self.name, took.as_secs(), self.log.display());
        }
        (self.name, took, result)
    }
}

pub fn run_all() -> Result {
    // Everything here is built once: incremental compilation's caches would only fill the disk
    // (1.7 GB for the host tests alone), and a CI machine's disk may be small. Every cargo
    // command below, also in the background stages, inherits this.
    std::env::set_var("CARGO_INCREMENTAL", "0");
    if let Some(gb) = free_disk_gb() {
        println!(
            "xtask test: {gb:.1} GB free on the disk of {} (a clean run's builds take about 7 GB)",
            target_dir().display()
        );
    }
    let started = Instant::now();
    let mut stages = Stages::default();
    let result = stages_in_order(&mut stages);
    stages.print(started);
    result
}

fn stages_in_order(stages: &mut Stages) -> Result {
    // Without a C compiler nothing compiles: install first, in the foreground, and overlap nothing.
    let install = if which("cc").is_some() {
        Some(Background::start("install (apt, pip, npm, rustup targets, cargo-fuzz, firmware packages)", "install")?)
    } else {
        stages.run("install (apt, pip, npm, rustup targets, cargo-fuzz, firmware packages)", crate::deps)?;
        None
    };
    let host_build = stages
        .run("lint (rustfmt, clippy -D warnings)", crate::lint)
        .and_then(|()| stages.run("host tests: build (cargo test --workspace --no-run)", host_tests::build));
    if let Some(install) = install {
        stages.join(install)?;
    }
    host_build?;
    stages.run("host tests: run (the waiting ones in lanes beside the rest)", host_tests::run)?;
    // Every parser that sees user input, fuzzed briefly (10 s per target) from the committed seeds.
    stages.run("fuzz smoke: build (AddressSanitizer)", fuzz::smoke_build)?;
    let fuzz_runs = Background::start("fuzz smoke: 10 s per target", "fuzz-runs")?;
    let mut over_budget = None;
    let release = stages.run("release builds of what ships: aarch64-musl (size budget), armv7", || {
        over_budget = cross::ci_release_builds()?;
        // The system test's driver, built now: once it runs beside the next builds, a cargo
        // command of its own would wait for their lock on the target directory.
        run(cargo().args(["build", "--quiet", "--locked", "-p", "firmware"]))
    });
    stages.join(fuzz_runs)?;
    release?;
    // The firmware booted in QEMU full-system emulation (one core, mostly), from the release
    // builds above, beside the qemu-user test builds.
    let system_test = Background::start("QEMU system test (aarch64 and armv7 boot and serve)", "system-test")?;
    let test_builds = stages.run(
        "qemu-user test builds: aarch64-musl libraries; aarch64-gnu, armv7 byte-level crates",
        cross::ci_test_builds,
    );
    stages.join(system_test)?;
    test_builds?;
    // The shipping target: every library's tests; the other camera targets: the byte-level crates'.
    stages.run("aarch64-musl: library tests (qemu-user)", || cross::ci_test_run(cross::SHIPPING))?;
    stages
        .run("aarch64-gnu: byte-level crates' tests (qemu-user)", || cross::ci_test_run("aarch64-unknown-linux-gnu"))?;
    stages.run("armv7-gnueabihf: byte-level crates' tests (qemu-user)", || {
        cross::ci_test_run("armv7-unknown-linux-gnueabihf")
    })?;
    // Checked last: a binary over its budget still works, so the stages that use it ran.
    stages.run("size budget of what ships (aarch64-musl)", || over_budget.map_or(Ok(()), Err))
}

/// The system test from the release builds already made, by the firmware tool built beside them.
fn system_test() -> Result {
    run(Command::new(target_dir().join("debug/firmware")).args(["system-test", "--no-build"]))
}
