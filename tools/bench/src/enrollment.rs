//! Enrollment time per protocol, next to reference clients in the same run: the benchmark lives
//! beside the enrollment tests' fixtures (Pebble, the SCEP server, the camera in a private network
//! namespace) as the ignored test `bench_enrollment_time_per_protocol`; this runs it from a release
//! build and collects its samples.

use std::collections::BTreeMap;
use std::time::Duration;

use super::stats::Stats;
use task_support::{cargo, Result};

/// The benchmark's test binary and name.
const TEST: &str = "enrollment";
const BENCH: &str = "bench_enrollment_time_per_protocol";

/// One row: a protocol and a client, with its samples' statistics.
pub struct Row {
    pub protocol: String,
    pub client: String,
    pub stats: Stats,
}

/// Runs `rounds` rounds of every protocol; rows in the order protocol, then client as printed.
pub fn run(rounds: usize) -> Result<Vec<Row>> {
    let out = cargo()
        .args(["test", "--release", "--quiet", "-p", "camera-web", "--test", TEST, "--", BENCH])
        .args(["--exact", "--ignored", "--nocapture"])
        .env("ENROLL_BENCH_ROUNDS", rounds.to_string())
        .output()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "the enrollment benchmark failed ({}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut order = Vec::new();
    let mut samples: BTreeMap<(String, String), Vec<Duration>> = BTreeMap::new();
    for line in stdout.lines() {
        let mut fields = line.split('\t');
        let (Some("enroll-bench"), Some(protocol), Some(client), Some(micros)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let micros: u64 = micros.parse().map_err(|_| format!("not a sample: {line:?}"))?;
        let key = (protocol.to_owned(), client.to_owned());
        if !samples.contains_key(&key) {
            order.push(key.clone());
        }
        samples.entry(key).or_default().push(Duration::from_micros(micros));
    }
    if order.is_empty() {
        return Err(format!("the enrollment benchmark printed no samples:\n{stdout}"));
    }
    Ok(order
        .into_iter()
        .filter_map(|key| {
            let stats = Stats::of(&samples[&key])?;
            Some(Row { protocol: key.0, client: key.1, stats })
        })
        .collect())
}
