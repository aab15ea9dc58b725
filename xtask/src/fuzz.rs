//! `cargo xtask fuzz [TARGET...] [--seconds N] [--sanitizer address|none] [-- LIBFUZZER_ARGS...]`:
//! builds the cargo-fuzz targets in `fuzz/` and runs each for N seconds (default 10), one after
//! the other, single process. Fails with the crash input's path when a target crashes, times out
//! or runs out of memory. [`smoke`] is the short run `cargo xtask test` does.
//!
//! The only toolchain is stable; cargo-fuzz needs nightly compiler flags (`-Zsanitizer`,
//! `-Cpasses=sancov-module`), so it runs with `RUSTC_BOOTSTRAP=1`. Builds go to `fuzz/target`;
//! inputs that reach new code are kept in `fuzz/target/corpus/<target>` (the committed seeds in
//! `fuzz/corpus/<target>` are only read); crash inputs land in `fuzz/artifacts/<target>/`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use task_support::{cargo, root, run, Result};

/// Every target, with the largest input libFuzzer makes for it (real uploads go up to 64 KiB;
/// bigger inputs only slow the search down).
const TARGETS: &[(&str, usize)] = &[
    ("upload", 16 * 1024),
    ("multipart", 16 * 1024),
    ("json_bodies", 4096),
    ("csr_subject", 2048),
    ("config", 4096),
    ("netlink", 8192),
    ("acme", 8192),
    ("scep", 16 * 1024),
    ("enrollment", 4096),
    ("dot1x", 4096),
];

/// Seconds per target in `cargo xtask test` (ten targets: a minute and forty seconds plus the build).
/// A smoke run from the committed seeds, not a search: longer runs are `cargo xtask fuzz`.
const SMOKE_SECONDS: u64 = 10;

/// What one run did, for the summary.
struct Outcome {
    target: &'static str,
    seconds: f64,
    runs: Option<u64>,
    last_status: Option<String>,
    slow_units: Vec<String>,
}

/// The build [`smoke`] runs from: `cargo xtask test` makes it a stage of its own, so that the
/// short runs (one core) can go on beside the next stage's compiling.
pub fn smoke_build() -> Result {
    ensure_cargo_fuzz()?;
    eprintln!("xtask: building the fuzz targets (sanitizer address) in fuzz/target");
    run(cargo_fuzz().args(["build", "--sanitizer", SMOKE_SANITIZER]))
}

/// The smoke run's sanitizer: the long runs' default, so one build serves both.
const SMOKE_SANITIZER: &str = "address";

/// The short run of every target that `cargo xtask test` (and so CI) does; its build is a
/// no-op after [`smoke_build`].
pub fn smoke() -> Result {
    // Optimised, as the long runs: unoptimised (`--dev`) builds faster, but the scep target then
    // takes over a minute on its first input (RSA arithmetic), which libFuzzer reports as a hang.
    fuzz(&TARGETS.iter().map(|(name, _)| *name).collect::<Vec<_>>(), SMOKE_SECONDS, SMOKE_SANITIZER, &[])
}

pub fn run_cli(args: impl Iterator<Item = String>) -> Result {
    let mut targets: Vec<&'static str> = Vec::new();
    let mut seconds = SMOKE_SECONDS;
    let mut sanitizer = "address".to_owned();
    let mut extra = Vec::new();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds =
                    args.next().and_then(|s| s.parse().ok()).ok_or("--seconds needs a whole number of seconds")?;
            }
            "--sanitizer" => sanitizer = args.next().ok_or("--sanitizer needs address or none")?,
            "--" => extra.extend(args.by_ref()),
            name => {
                let target = TARGETS
                    .iter()
                    .find(|(t, _)| *t == name)
                    .map(|(t, _)| *t)
                    .ok_or_else(|| format!("unknown fuzz target {name:?}; the targets: {}", target_names()))?;
                targets.push(target);
            }
        }
    }
    if !matches!(sanitizer.as_str(), "address" | "none") {
        return Err(format!("--sanitizer {sanitizer}: use address (the default) or none"));
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|(name, _)| *name).collect();
    }
    fuzz_with(&targets, seconds, &sanitizer, &[], &extra)
}

fn target_names() -> String {
    TARGETS.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
}

/// `cargo fuzz` from the workspace root (it finds `fuzz/` there).
fn cargo_fuzz() -> Command {
    let mut cmd = cargo();
    // cargo-fuzz passes nightly-only flags; this stable compiler accepts them with this.
    cmd.arg("fuzz").env("RUSTC_BOOTSTRAP", "1");
    cmd
}

/// Installs cargo-fuzz unless it is there (`cargo xtask deps` does this ahead of the fuzz stage).
pub fn ensure_cargo_fuzz() -> Result {
    task_support::ensure_cargo_subcommand("fuzz", "cargo-fuzz")
}

/// `cargo_args` go to both `cargo fuzz build` and `cargo fuzz run` (`--dev`); `extra` to libFuzzer.
fn fuzz(targets: &[&'static str], seconds: u64, sanitizer: &str, cargo_args: &[String]) -> Result {
    fuzz_with(targets, seconds, sanitizer, cargo_args, &[])
}

fn fuzz_with(
    targets: &[&'static str],
    seconds: u64,
    sanitizer: &str,
    cargo_args: &[String],
    extra: &[String],
) -> Result {
    ensure_cargo_fuzz()?;
    let fuzz_dir = root().join("fuzz");
    let started = Instant::now();
    eprintln!("xtask: building the fuzz targets (sanitizer {sanitizer}) in fuzz/target");
    let mut build = cargo_fuzz();
    build.args(["build", "--sanitizer", sanitizer]).args(cargo_args);
    run(&mut build)?;
    let build_secs = started.elapsed().as_secs_f64();
    let mut outcomes = Vec::new();
    for &target in targets {
        outcomes.push(fuzz_one(&fuzz_dir, target, seconds, sanitizer, cargo_args, extra)?);
    }
    eprintln!("\nxtask: fuzzing summary (build {build_secs:.0} s, total {:.0} s):", started.elapsed().as_secs_f64());
    for o in &outcomes {
        let runs = o.runs.map_or_else(|| "?".to_owned(), |r| r.to_string());
        eprintln!(
            "  {:<12} {:>5.0} s {:>10} execs  {}",
            o.target,
            o.seconds,
            runs,
            o.last_status.as_deref().unwrap_or("")
        );
        for slow in &o.slow_units {
            eprintln!("    slow input (not a failure, worth a look): {slow}");
        }
    }
    Ok(())
}

fn fuzz_one(
    fuzz_dir: &Path,
    target: &'static str,
    seconds: u64,
    sanitizer: &str,
    cargo_args: &[String],
    extra: &[String],
) -> Result<Outcome> {
    let max_len = TARGETS.iter().find(|(t, _)| *t == target).map_or(4096, |(_, len)| *len);
    // New inputs go to the first directory (git-ignored); the committed seeds are only read.
    let work_corpus = fuzz_dir.join("target/corpus").join(target);
    let seeds = fuzz_dir.join("corpus").join(target);
    let artifacts = fuzz_dir.join("artifacts").join(target);
    for dir in [&work_corpus, &artifacts] {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let log_path = fuzz_dir.join("target/logs").join(format!("{target}.log"));
    if let Some(dir) = log_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut log = std::fs::File::create(&log_path).map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    eprintln!("\nxtask: fuzzing {target} for {seconds} s (log: {})", log_path.display());
    let mut cmd = cargo_fuzz();
    cmd.args(["run", "--sanitizer", sanitizer])
        .args(cargo_args)
        .arg(target)
        .arg(&work_corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-max_len={max_len}"))
        // An upload may legitimately spend its whole key-derivation budget (seconds); a minute is a hang.
        .arg("-timeout=60")
        .arg("-rss_limit_mb=2048")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .args(extra)
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("cannot start cargo fuzz: {e}"))?;
    let mut artifact = None;
    let mut runs = None;
    let mut last_status = None;
    let mut slow_units = Vec::new();
    let mut in_dictionary = false;
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(log, "{line}");
            if let Some(path) = line.split("Test unit written to ").nth(1) {
                let path = path.trim().to_owned();
                if line.contains("slow-unit-") || path.contains("slow-unit-") {
                    slow_units.push(path);
                } else {
                    artifact = Some(path);
                }
            }
            if let Some(rest) = line.strip_prefix("stat::number_of_executed_units:") {
                runs = rest.trim().parse().ok();
            }
            // Progress lines and libFuzzer's dictionary go to the log only; the rest (the
            // command, errors, stack traces, the final stats) is shown.
            if line.starts_with('#') && line.contains("cov:") {
                last_status = line.split_once('\t').map(|(_, s)| s.split_whitespace().collect::<Vec<_>>().join(" "));
                continue;
            }
            if line.to_ascii_lowercase().contains("recommended dictionary") {
                in_dictionary = !line.contains("End of");
                continue;
            }
            if in_dictionary || line.starts_with("\tNEW_FUNC") {
                continue;
            }
            eprintln!("{line}");
        }
    }
    let status = child.wait().map_err(|e| format!("cargo fuzz run {target}: {e}"))?;
    let seconds = started.elapsed().as_secs_f64();
    if !status.success() {
        let artifact = artifact.map_or_else(|| newest_file(&artifacts), |p| Some(PathBuf::from(p)));
        let reproduce = match &artifact {
            Some(path) => format!(
                "\n  crash input: {path}\n  reproduce:   RUSTC_BOOTSTRAP=1 cargo fuzz run {target} {path}\n  minimise:    RUSTC_BOOTSTRAP=1 cargo fuzz tmin {target} {path}\n  then add it as a regression test in the parser's crate (see README.md, Fuzzing).",
                path = artifact_display(path)
            ),
            None => String::new(),
        };
        return Err(format!(
            "fuzz target {target} failed ({status}) after {seconds:.0} s; full log: {}{reproduce}",
            log_path.display()
        ));
    }
    Ok(Outcome { target, seconds, runs, last_status, slow_units })
}

fn artifact_display(path: &Path) -> String {
    let root = root();
    path.strip_prefix(&root).unwrap_or(path).display().to_string()
}

fn newest_file(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with("slow-unit-"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, path)| path)
}
