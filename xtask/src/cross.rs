//! `cargo xtask cross [--target TRIPLE]... [--no-test]`: the camera targets, with plain cargo and
//! Debian's cross toolchains (linkers and QEMU runners in `.cargo/config.toml`).
//!
//! For each target: builds the release programs once and prints their stripped sizes (the budget
//! for aarch64-musl is checked), then builds the workspace's tests once and runs them under
//! qemu-user, timing each step. Every target is tried; the failures are listed at the end.
//!
//! Tests spawn our own programs (`CARGO_BIN_EXE_*`) and re-execute themselves in network
//! namespaces; under qemu-user those children are ARM binaries too, which the kernel only runs
//! through binfmt_misc. When the machine has no qemu binfmt_misc entries (containers, CI), the test
//! run happens inside a user + mount namespace with its own binfmt_misc instance (Linux 6.7 and
//! later), where qemu is registered for this run only; nothing changes on the machine. As root,
//! every user id is mapped to itself in that namespace, so the tests see the same ids as outside.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use task_support::{cargo, root, run, target_dir, which, Result};

/// A camera target: the triple, its qemu-user program and the sysroot of its C library (none for
/// static musl). Keep in step with `.cargo/config.toml`.
struct Target {
    triple: &'static str,
    qemu: &'static str,
    sysroot: Option<&'static str>,
    /// The binfmt_misc ELF magic and mask of the architecture (as in Debian's qemu-user-binfmt).
    magic: &'static str,
    mask: &'static str,
}

const AARCH64_MAGIC: &str = r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00";
const AARCH64_MASK: &str = r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff";
const ARM_MAGIC: &str = r"\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28\x00";
const ARM_MASK: &str = r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff";

const TARGETS: &[Target] = &[
    Target {
        triple: "aarch64-unknown-linux-musl",
        qemu: "qemu-aarch64",
        sysroot: None,
        magic: AARCH64_MAGIC,
        mask: AARCH64_MASK,
    },
    Target {
        triple: "aarch64-unknown-linux-gnu",
        qemu: "qemu-aarch64",
        sysroot: Some("/usr/aarch64-linux-gnu"),
        magic: AARCH64_MAGIC,
        mask: AARCH64_MASK,
    },
    Target {
        triple: "armv7-unknown-linux-gnueabihf",
        qemu: "qemu-arm",
        sysroot: Some("/usr/arm-linux-gnueabihf"),
        magic: ARM_MAGIC,
        mask: ARM_MASK,
    },
];

/// The shipping target, and the size everything shipped for it is held to.
pub const SHIPPING: &str = "aarch64-unknown-linux-musl";
pub const BUDGET: u64 = task_support::SHIPPED_SIZE_BUDGET;

/// The programs, each also built as its own binary (development and tests use these).
const PROGRAMS: &[&str] = &["cert-provisioner", "camera-web"];

/// What ships: one multi-call binary that both programs are links to.
pub const MULTICALL_PACKAGE: &str = "camera-multicall";
pub const MULTICALL_BIN: &str = "camera-https";

/// The project's tasks: host programs, never built for a camera target.
const TASK_PACKAGES: &[&str] = &["xtask", "task-support", "bench", "firmware"];

/// The other camera target CI builds in release: the system test boots its firmware too.
const ARMV7: &str = "armv7-unknown-linux-gnueabihf";

/// Debian packages the cross builds and qemu-user tests need, by a file that shows each is present.
/// (`--no-install-recommends` leaves out the C libraries the gcc cross packages only recommend.)
pub const APT_PACKAGES: &[(&str, &str)] = &[
    ("/usr/bin/aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
    ("/usr/aarch64-linux-gnu/include/stdio.h", "libc6-dev-arm64-cross"),
    ("/usr/bin/arm-linux-gnueabihf-gcc", "gcc-arm-linux-gnueabihf"),
    ("/usr/arm-linux-gnueabihf/include/stdio.h", "libc6-dev-armhf-cross"),
    ("/usr/bin/qemu-aarch64", "qemu-user"),
    ("/usr/bin/qemu-arm", "qemu-user"),
];

/// Adds the camera targets to the Rust toolchain, if missing (the Debian packages in
/// [`APT_PACKAGES`] are installed with the tests' own by `cargo xtask deps`).
pub fn add_rust_targets() -> Result {
    if which("rustup").is_none() {
        return Err("rustup is missing; the cross targets are installed with `rustup target add`".into());
    }
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    let installed = String::from_utf8_lossy(&installed.stdout);
    let missing: Vec<&str> =
        TARGETS.iter().map(|t| t.triple).filter(|t| !installed.lines().any(|l| l.trim() == *t)).collect();
    if !missing.is_empty() {
        eprintln!("xtask: adding Rust targets: {}", missing.join(" "));
        run(Command::new("rustup").args(["target", "add"]).args(&missing))?;
    }
    Ok(())
}

/// What `cargo xtask cross` measured for one target.
#[derive(Debug, Default)]
struct Report {
    triple: &'static str,
    sizes: Vec<(String, u64)>,
    multicall: Option<u64>,
    build: Duration,
    test_build: Duration,
    test_run: Duration,
    failures: Vec<String>,
    /// The shipped binary is over [`BUDGET`]: a failure too, but one that stops nothing after it.
    over_budget: Option<String>,
}

/// `cargo xtask cross` with its arguments.
pub fn run_cli(args: impl Iterator<Item = String>) -> Result {
    let args: Vec<String> = args.collect();
    if args.first().map(String::as_str) == Some(SANDBOX_ARG) {
        return sandbox_inner(&args[1..]);
    }
    let mut triples = Vec::new();
    let mut test = true;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--target" => triples.push(it.next().ok_or("--target needs a triple")?.clone()),
            "--no-test" => test = false,
            // What `cargo xtask test` (CI) runs on the camera targets.
            "--ci" => return ci(),
            _ => {
                return Err(format!(
                    "unknown argument {arg:?}; usage: cargo xtask cross [--target TRIPLE]... [--no-test] | --ci"
                ))
            }
        }
    }
    let targets: Vec<&'static Target> = if triples.is_empty() {
        TARGETS.iter().collect()
    } else {
        triples
            .iter()
            .map(|t| {
                TARGETS.iter().find(|k| k.triple == t).ok_or(format!("unknown target {t}; one of: {}", triple_list()))
            })
            .collect::<Result<_>>()?
    };
    all(&targets, if test { Tests::All } else { Tests::None })
}

/// Which tests run under qemu-user.
#[derive(Clone, Copy, PartialEq)]
enum Tests {
    None,
    /// The whole workspace (`cargo xtask cross`).
    All,
    /// The library crates' tests (parsers, crypto, netlink, state files): `cargo xtask test` on
    /// the shipping target.
    Libraries,
    /// The tests of the crates whose results depend most on word size, endianness and the C
    /// library (byte parsing, crypto, netlink, state files): `cargo xtask test` on the others.
    ByteLevel,
}

/// The crates [`Tests::ByteLevel`] runs.
const BYTE_LEVEL: &[&str] = &[
    "camera-pki",
    "camera-upload",
    "camera-scep",
    "camera-netlink",
    "camera-state",
    "camera-config",
    "camera-log",
    "camera-events",
];

/// The programs whose end-to-end tests CI runs on the host only: on the camera's architecture
/// the real release binaries are exercised by the QEMU system test instead, and their 30 test
/// binaries would double CI's time under emulation. `cargo xtask cross` still runs them all.
const HOST_ONLY_IN_CI: &[&str] = &["camera-web", "cert-provisioner", "camera-multicall"];

/// What `cargo xtask test` runs on the camera's architectures (`cargo xtask cross --ci`): the
/// release builds the system test boots (the shipping target's with its size budget, and armv7's),
/// the shipping target's library tests and the other targets' byte-level crates, all under
/// qemu-user. `cargo xtask cross` tests them all.
pub fn ci() -> Result {
    let over_budget = ci_release_builds()?;
    ci_test_builds()?;
    TARGETS.iter().try_for_each(|t| ci_test_run(t.triple))?;
    over_budget.map_or(Ok(()), Err)
}

/// The multi-call binary in release for the shipping target (size budget) and armv7: what the
/// system test boots. Only what ships is built (`cargo xtask cross` also builds each program
/// alone, to show what the multi-call binary saves). One cargo command for both targets, so the
/// two fat-LTO links, one thread each, run side by side; its units are the very ones each
/// target's own build has, so a later single-target build (`cargo xtask size`, the system test
/// without `--no-build`) finds them fresh.
///
/// A shipped binary over the budget is returned, not an error: the builds are good, so what
/// needs them (the tests, the system test) still runs, and the caller fails at the end.
pub fn ci_release_builds() -> Result<Option<String>> {
    let started = Instant::now();
    let reports = release_build(&[target(SHIPPING), target(ARMV7)], Build::Shipped);
    let built = reports.iter().all(|r| r.failures.is_empty());
    let over_budget = reports.iter().find_map(|r| r.over_budget.as_ref().map(|b| format!("{}: {b}", r.triple)));
    let summary = summarize(&reports, started);
    if built {
        Ok(over_budget)
    } else {
        summary.map(|()| over_budget)
    }
}

/// The tests CI runs under qemu-user, built: every library's for the shipping target, the
/// byte-level crates' for the others (one cargo command for those two: the same crates, and the
/// same units as either target's own build).
pub fn ci_test_builds() -> Result {
    let mut failures = Vec::new();
    for (targets, tests) in [
        (vec![target(SHIPPING)], Tests::Libraries),
        (TARGETS.iter().filter(|t| t.triple != SHIPPING).collect(), Tests::ByteLevel),
    ] {
        if let (Err(e), _) = test_build(&targets, tests) {
            failures.push(e);
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("cross: test build failed:\n  {}", failures.join("\n  ")))
    }
}

/// CI's tests on one camera target under qemu-user, built by [`ci_test_builds`].
pub fn ci_test_run(triple: &str) -> Result {
    let target = target(triple);
    let started = Instant::now();
    let mut report = Report { triple: target.triple, ..Report::default() };
    let (result, took) = test_run(target, ci_tests(triple));
    report.test_run = took;
    if let Err(e) = result {
        report.failures.push(e);
    }
    summarize(&[report], started)
}

/// Which of a target's tests CI runs.
fn ci_tests(triple: &str) -> Tests {
    if triple == SHIPPING {
        Tests::Libraries
    } else {
        Tests::ByteLevel
    }
}

fn target(triple: &str) -> &'static Target {
    TARGETS.iter().find(|t| t.triple == triple).unwrap_or(&TARGETS[0])
}

/// What a release build builds.
#[derive(Clone, Copy, PartialEq)]
enum Build {
    /// The multi-call binary, what ships.
    Shipped,
    /// And each program as a binary of its own, for the comparison of sizes.
    WithSeparatePrograms,
}

/// `cargo build --release` of what ships for `target`: the one command every task that wants the
/// shipped binary runs, so no task rebuilds what another built.
pub fn shipped_build(triple: &str) -> Command {
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--locked", "--target", triple, "-p", MULTICALL_PACKAGE]);
    cmd
}

fn triple_list() -> String {
    TARGETS.iter().map(|t| t.triple).collect::<Vec<_>>().join(", ")
}

fn all(targets: &[&'static Target], tests: Tests) -> Result {
    let started = Instant::now();
    let reports: Vec<Report> = targets.iter().map(|t| one(t, tests)).collect();
    summarize(&reports, started)
}

fn summarize(reports: &[Report], started: Instant) -> Result {
    println!("\nxtask cross: summary ({:.0} s in all)", started.elapsed().as_secs_f64());
    println!(
        "{:<32} {:>12} {:>12} {:>14} {:>10} {:>10} {:>10}",
        "target", "separate", "multi-call", "release build", "test build", "test run", "result"
    );
    for r in reports {
        let separate: u64 = r.sizes.iter().map(|(_, s)| s).sum();
        println!(
            "{:<32} {:>12} {:>12} {:>12.0} s {:>8.0} s {:>8.0} s {:>10}",
            r.triple,
            if r.sizes.is_empty() { "-".to_owned() } else { kib(separate) },
            r.multicall.map(kib).unwrap_or_else(|| "-".into()),
            r.build.as_secs_f64(),
            r.test_build.as_secs_f64(),
            r.test_run.as_secs_f64(),
            if !r.failures.is_empty() {
                "FAILED"
            } else if r.over_budget.is_some() {
                "OVER BUDGET"
            } else {
                "ok"
            }
        );
    }
    let failures: Vec<String> = reports
        .iter()
        .flat_map(|r| r.failures.iter().chain(&r.over_budget).map(move |f| format!("{}: {f}", r.triple)))
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("cross: {} failure(s):\n  {}", failures.len(), failures.join("\n  ")))
    }
}

fn kib(bytes: u64) -> String {
    format!("{:.0} KiB", bytes as f64 / 1024.0)
}

fn timed(cmd: &mut Command) -> (Result, Duration) {
    let started = Instant::now();
    let result = run(cmd);
    (result, started.elapsed())
}

fn one(target: &'static Target, tests: Tests) -> Report {
    if tests == Tests::ByteLevel {
        // No release build: the system test builds the armv7 image's own, and sizes are the
        // shipping target's business.
        let mut report = Report { triple: target.triple, ..Report::default() };
        test_under_qemu(target, tests, &mut report);
        return report;
    }
    let mut reports = release_build(&[target], Build::WithSeparatePrograms);
    let mut report = reports.pop().unwrap_or_default();
    if tests != Tests::None && report.failures.is_empty() {
        test_under_qemu(target, tests, &mut report);
    }
    report
}

/// The release build of `targets` (one cargo command), their stripped sizes and, on the shipping
/// target, the budget: one report per target.
fn release_build(targets: &[&'static Target], build: Build) -> Vec<Report> {
    let triples: Vec<&str> = targets.iter().map(|t| t.triple).collect();
    println!("\nxtask cross: release build: {}", triples.join(", "));
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--locked", "-p", MULTICALL_PACKAGE]);
    cmd.args(triples.iter().flat_map(|t| ["--target", t]));
    let programs: &[&str] = if build == Build::WithSeparatePrograms { PROGRAMS } else { &[] };
    cmd.args(programs.iter().flat_map(|p| ["-p", p]));
    let (result, took) = timed(&mut cmd);
    targets
        .iter()
        .map(|target| {
            let mut report = Report { triple: target.triple, build: took, ..Report::default() };
            match &result {
                Ok(()) => sizes(target.triple, programs, &mut report),
                Err(e) => report.failures.push(e.clone()),
            }
            report
        })
        .collect()
}

/// The stripped sizes of a release build, and on the shipping target the budget.
fn sizes(triple: &str, programs: &[&str], report: &mut Report) {
    let release = target_dir().join(triple).join("release");
    for program in programs {
        match std::fs::metadata(release.join(program)) {
            Ok(m) => report.sizes.push(((*program).to_owned(), m.len())),
            Err(e) => report.failures.push(format!("{program}: {e}")),
        }
    }
    match std::fs::metadata(release.join(MULTICALL_BIN)) {
        Ok(m) => report.multicall = Some(m.len()),
        Err(e) => report.failures.push(format!("{MULTICALL_BIN}: {e}")),
    }
    for (program, size) in &report.sizes {
        println!("xtask cross: {triple}: {program:<17} {size:>9} bytes stripped ({})", kib(*size));
    }
    if !report.sizes.is_empty() {
        let separate: u64 = report.sizes.iter().map(|(_, s)| s).sum();
        println!("xtask cross: {triple}: {:<17} {separate:>9} bytes stripped ({})", "both, separate", kib(separate));
    }
    if let Some(size) = report.multicall {
        println!(
            "xtask cross: {triple}: {:<17} {size:>9} bytes stripped ({}; the programs are links to it)",
            MULTICALL_BIN,
            kib(size)
        );
    }
    if triple == SHIPPING {
        // Only the multi-call binary ships (see board/*/readme.txt).
        let shipped = report.multicall.unwrap_or(u64::MAX);
        println!("xtask cross: {triple}: shipped {MULTICALL_BIN}: {}", budget_verdict(shipped, BUDGET));
        if shipped > BUDGET {
            report.over_budget = Some(format!("shipped size {shipped} bytes is over the budget of {BUDGET} bytes"));
        }
    }
}

/// `N bytes stripped (K KiB), within (or OVER) the budget of B bytes`.
pub fn budget_verdict(shipped: u64, budget: u64) -> String {
    let verdict = if shipped <= budget { "within" } else { "OVER" };
    format!("{shipped} bytes stripped ({}), {verdict} the budget of {budget} bytes", kib(shipped))
}

/// Builds the tests `tests` selects for `target` and runs them under qemu-user.
fn test_under_qemu(target: &'static Target, tests: Tests, report: &mut Report) {
    let (result, took) = test_build(&[target], tests);
    report.test_build = took;
    if let Err(e) = result {
        report.failures.push(e);
        return;
    }
    let (result, took) = test_run(target, tests);
    report.test_run = took;
    if let Err(e) = result {
        report.failures.push(e);
    }
}

/// `cargo test` arguments for the crates `tests` selects (no target).
fn test_args(tests: Tests) -> Vec<&'static str> {
    let mut args = vec!["test", "--locked"];
    match tests {
        // Only the crates named.
        Tests::ByteLevel => args.extend(BYTE_LEVEL.iter().flat_map(|p| ["-p", p])),
        Tests::Libraries | Tests::None | Tests::All => {
            args.push("--workspace");
            args.extend(TASK_PACKAGES.iter().flat_map(|p| ["--exclude", p]));
            if tests == Tests::Libraries {
                args.extend(HOST_ONLY_IN_CI.iter().flat_map(|p| ["--exclude", p]));
            }
        }
    }
    args
}

/// Builds the tests `tests` selects for each of `targets`, in one cargo command. (The qemu
/// variables [`with_qemu_env`] sets are read by the tests when they run, not when they build.)
fn test_build(targets: &[&'static Target], tests: Tests) -> (Result, Duration) {
    let triples: Vec<&str> = targets.iter().map(|t| t.triple).collect();
    println!("\nxtask cross: test build: {}", triples.join(", "));
    let mut cmd = cargo();
    cmd.args(test_args(tests)).args(triples.iter().flat_map(|t| ["--target", t])).arg("--no-run");
    timed(&mut cmd)
}

/// Runs the tests `tests` selects for `target` under qemu-user (built by [`test_build`]).
fn test_run(target: &Target, tests: Tests) -> (Result, Duration) {
    let triple = target.triple;
    println!("\nxtask cross: {triple}: tests under {}", target.qemu);
    let mut args = test_args(tests);
    args.extend(["--target", triple]);
    let started = Instant::now();
    let result = in_binfmt_sandbox(target, &args);
    let took = started.elapsed();
    println!("xtask cross: {triple}: tests took {:.0} s", took.as_secs_f64());
    (result, took)
}

/// The qemu runner command for tests that re-execute themselves (camera-testns), and the C
/// library prefix for ARM programs started through binfmt_misc.
fn with_qemu_env<'c>(cmd: &'c mut Command, target: &Target) -> &'c mut Command {
    let runner = match target.sysroot {
        Some(sysroot) => format!("{} -L {sysroot}", target.qemu),
        None => target.qemu.to_owned(),
    };
    cmd.env("CAMERA_TESTNS_RUNNER", runner);
    if let Some(sysroot) = target.sysroot {
        cmd.env("QEMU_LD_PREFIX", sysroot);
    }
    cmd
}

const SANDBOX_ARG: &str = "--inside-binfmt-sandbox";

/// True when the machine's own binfmt_misc already runs this target's programs through qemu.
fn host_binfmt_ready(target: &Target) -> bool {
    let name = target.qemu;
    std::fs::read_to_string(Path::new("/proc/sys/fs/binfmt_misc").join(name)).is_ok_and(|s| s.starts_with("enabled"))
}

/// `cargo <args>` for this target with its ARM children runnable: directly when the machine has
/// qemu in binfmt_misc, else re-entering xtask in a new user + mount namespace, where
/// [`sandbox_inner`] mounts a private binfmt_misc instance, registers qemu and runs cargo.
fn in_binfmt_sandbox(target: &Target, args: &[&str]) -> Result {
    if host_binfmt_ready(target) {
        return run(with_qemu_env(cargo().args(args), target));
    }
    // A copy of this very program: `cargo test --workspace` rebuilds xtask, so the file it was
    // started from may already be replaced (/proc/self/exe still reads the running one).
    let xtask = target_dir().join("xtask-binfmt-sandbox");
    std::fs::copy("/proc/self/exe", &xtask).map_err(|e| format!("cannot copy xtask to {}: {e}", xtask.display()))?;
    let inner = |cmd: &mut Command| {
        cmd.arg(&xtask).args(["cross", SANDBOX_ARG, target.triple]).args(args).current_dir(root());
    };
    if !nix::unistd::geteuid().is_root() {
        // Only the caller's own id can be mapped; tests that chown to other users cannot pass.
        let mut cmd = Command::new("unshare");
        cmd.args(["--user", "--map-root-user", "--mount", "--"]);
        inner(&mut cmd);
        return run(with_qemu_env(&mut cmd, target));
    }
    // As root, map every id to itself, so that tests can chown files to other users as they do
    // outside. `unshare --map-users` would need newuidmap and /etc/subuid entries for root, so the
    // maps are written here: the child enters its namespaces, waits (in sh) until the maps are in
    // place, then starts xtask, which thereby holds all capabilities in the new namespaces.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "read -r _ && exec \"$@\"", "sh"]).stdin(std::process::Stdio::piped());
    inner(&mut cmd);
    with_qemu_env(&mut cmd, target);
    // SAFETY: unshare(2) is a single system call, safe between fork and exec; nothing is allocated.
    unsafe {
        cmd.pre_exec(|| {
            nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let proc = PathBuf::from(format!("/proc/{}", child.id()));
    let mapped = std::fs::write(proc.join("uid_map"), "0 0 4294967295\n")
        .and_then(|()| std::fs::write(proc.join("gid_map"), "0 0 4294967295\n"))
        .map_err(|e| format!("cannot map ids into the test namespace: {e}"));
    let mut stdin = child.stdin.take();
    if mapped.is_ok() {
        if let Some(stdin) = stdin.as_mut() {
            stdin.write_all(b"go\n").map_err(|e| format!("cannot start the test namespace: {e}"))?;
        }
    }
    drop(stdin);
    let status = child.wait().map_err(|e| format!("waiting for {cmd:?}: {e}"))?;
    mapped?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {status}"))
    }
}

/// Inside the namespaces: `<triple> <cargo args...>`.
fn sandbox_inner(args: &[String]) -> Result {
    let (triple, cargo_args) = args.split_first().ok_or("internal: no target for the binfmt sandbox")?;
    let target = TARGETS.iter().find(|t| t.triple == triple).ok_or(format!("internal: unknown target {triple}"))?;
    let mount = target_dir().join("binfmt_misc");
    std::fs::create_dir_all(&mount).map_err(|e| format!("cannot create {}: {e}", mount.display()))?;
    run(Command::new("mount").args(["-t", "binfmt_misc", "binfmt_misc"]).arg(&mount)).map_err(|e| {
        format!(
            "{e}\nThe cross tests run ARM programs through binfmt_misc. This machine has no qemu entries in \
             /proc/sys/fs/binfmt_misc and could not mount a private instance (that needs Linux 6.7 or later). \
             Register qemu on the machine instead (Debian: apt-get install qemu-user-binfmt, with binfmt_misc mounted)."
        )
    })?;
    let qemu = which(target.qemu).ok_or(format!("{} is not on PATH", target.qemu))?;
    let rule = format!(":{}:M::{}:{}:{}:", target.qemu, target.magic, target.mask, qemu.display());
    std::fs::write(mount.join("register"), rule)
        .map_err(|e| format!("cannot register {} in binfmt_misc: {e}", target.qemu))?;
    run(cargo().args(cargo_args))
}
