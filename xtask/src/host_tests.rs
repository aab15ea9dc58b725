//! The host test run: cargo builds every test binary once (`--no-run`), then this runs them in
//! lanes side by side instead of cargo's one after the other.
//!
//! Most test binaries keep the cores busy for a few seconds and some time things (load, address
//! changes, power cuts), so they run one at a time in the main lane, as cargo would, followed by
//! the doc tests. A few binaries spend minutes mostly waiting for something to happen (short-lived
//! certificates to come up for renewal, an 802.1X trial to run out, a fleet's renewal window):
//! they run in [`WAITING`]'s lanes beside the main one, each lane's binaries one after the other.
//! Every binary runs as cargo runs it (from its package's directory, with `CARGO_MANIFEST_DIR`),
//! its output in `target/xtask-test/host/`, shown when it fails; all lanes run to their end, so a
//! failure shows every other failure with it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use task_support::{cargo, root, target_dir, Result};

/// The lanes beside the main one: (package directory, integration test) in the order they run.
const WAITING: &[&[(&str, &str)]] = &[
    &[("crates/camera-web", "hostile_ca"), ("crates/camera-web", "dot1x")],
    &[("crates/camera-web", "fleet"), ("crates/cert-provisioner", "netns"), ("crates/dot1x", "supplicant")],
];

/// One test binary cargo built.
#[derive(Debug, Clone)]
struct TestBinary {
    /// The package's directory, relative to the workspace root.
    package: String,
    /// The target's name and kind (`lib`, `bin`, `test`).
    target: String,
    kind: String,
    executable: PathBuf,
}

impl TestBinary {
    fn label(&self) -> String {
        match self.kind.as_str() {
            "test" => format!("{} tests/{}", self.package, self.target),
            kind => format!("{} {kind} {}", self.package, self.target),
        }
    }
}

/// Builds the host tests and reads the binaries from cargo's messages.
pub fn build() -> Result<()> {
    built().map(|_| ())
}

fn built() -> Result<Vec<TestBinary>> {
    let out = cargo()
        .args(["test", "--workspace", "--locked", "--no-run", "--message-format=json-render-diagnostics"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start cargo test --no-run: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo test --workspace --no-run failed: {}", out.status));
    }
    let root = root();
    let mut binaries = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let (Some(executable), Some(manifest)) = (message["executable"].as_str(), message["manifest_path"].as_str())
        else {
            continue;
        };
        if message["reason"] != "compiler-artifact" || message["profile"]["test"] != true {
            continue;
        }
        let package = Path::new(manifest).parent().unwrap_or(Path::new(""));
        binaries.push(TestBinary {
            package: package.strip_prefix(&root).unwrap_or(package).display().to_string(),
            target: message["target"]["name"].as_str().unwrap_or_default().to_owned(),
            kind: message["target"]["kind"][0].as_str().unwrap_or_default().to_owned(),
            executable: PathBuf::from(executable),
        });
    }
    if binaries.is_empty() {
        return Err("cargo test --no-run named no test binary".into());
    }
    Ok(binaries)
}

/// How one binary (or the doc tests) ended.
struct Outcome {
    label: String,
    took: Duration,
    result: Result,
}

/// Runs every host test: [`WAITING`]'s lanes beside the main lane.
pub fn run() -> Result {
    let mut binaries = built()?;
    let mut lanes: Vec<Vec<TestBinary>> = Vec::new();
    for lane in WAITING {
        let mut picked = Vec::new();
        for (package, target) in *lane {
            let at = binaries
                .iter()
                .position(|b| b.kind == "test" && b.package == *package && b.target == *target)
                .ok_or_else(|| format!("no test binary {package}/tests/{target}.rs: update WAITING in {}", file!()))?;
            picked.push(binaries.remove(at));
        }
        lanes.push(picked);
    }
    let logs = target_dir().join("xtask-test/host");
    std::fs::create_dir_all(&logs).map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
    let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
        let beside: Vec<_> = lanes.iter().map(|lane| scope.spawn(|| run_lane(lane, &logs, false))).collect();
        let mut outcomes = run_lane(&binaries, &logs, true);
        for lane in beside {
            outcomes.extend(lane.join().unwrap_or_default());
        }
        outcomes
    });
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    let mut slowest: Vec<&Outcome> = outcomes.iter().collect();
    slowest.sort_by_key(|o| std::cmp::Reverse(o.took));
    println!("\nxtask test: the slowest test binaries");
    for outcome in slowest.iter().take(8) {
        println!("  {:<60} {:>4} s", outcome.label, outcome.took.as_secs());
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} failed: {}",
            if failed.len() == 1 { "a test binary" } else { "test binaries" },
            failed.iter().map(|o| o.label.as_str()).collect::<Vec<_>>().join(", ")
        ))
    }
}

/// Runs `lane` in order; the main lane ends with the doc tests.
fn run_lane(lane: &[TestBinary], logs: &Path, main: bool) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = lane.iter().map(|binary| run_binary(binary, logs)).collect();
    if main {
        let started = Instant::now();
        let result = task_support::run(cargo().args(["test", "--workspace", "--locked", "--doc", "--quiet"]));
        outcomes.push(Outcome { label: "doc tests".into(), took: started.elapsed(), result });
    }
    outcomes
}

fn run_binary(binary: &TestBinary, logs: &Path) -> Outcome {
    let label = binary.label();
    let log = logs.join(format!("{}-{}-{}.log", binary.package.replace('/', "-"), binary.kind, binary.target));
    let started = Instant::now();
    let result = File::create(&log)
        .and_then(|out| Ok((out.try_clone()?, out)))
        .map_err(|e| format!("cannot create {}: {e}", log.display()))
        .and_then(|(out, err)| {
            let dir = root().join(&binary.package);
            let status = Command::new(&binary.executable)
                .current_dir(&dir)
                .env("CARGO_MANIFEST_DIR", &dir)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .status()
                .map_err(|e| format!("cannot start {}: {e}", binary.executable.display()))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("{label} failed ({status})"))
            }
        });
    let took = started.elapsed();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    match &result {
        Ok(()) => {
            let summary = text.lines().rev().find(|l| l.starts_with("test result:")).unwrap_or("").to_owned();
            println!("xtask test: {label}: {summary} ({} s)", took.as_secs());
        }
        Err(e) => {
            println!("\nxtask test: {e}; its output ({}):", log.display());
            for line in text.lines() {
                println!("  {line}");
            }
        }
    }
    Outcome { label, took, result }
}
