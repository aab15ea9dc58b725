//! Summary statistics of timed samples, shared by every measurement.

use std::time::Duration;

/// Mean, median and 99th percentile of a set of durations.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub n: usize,
    pub mean: Duration,
    pub median: Duration,
    pub p99: Duration,
    pub min: Duration,
    pub max: Duration,
}

impl Stats {
    /// `None` for no samples.
    pub fn of(samples: &[Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let n = sorted.len();
        let total: Duration = sorted.iter().sum();
        let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2 };
        // Nearest-rank percentile.
        let rank = (n * 99).div_ceil(100).clamp(1, n);
        Some(Self { n, mean: total / n as u32, median, p99: sorted[rank - 1], min: sorted[0], max: sorted[n - 1] })
    }
}

/// A duration in the unit that reads best: µs, ms or s.
pub fn fmt_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// Bytes as KiB or MiB.
pub fn fmt_bytes(bytes: u64) -> String {
    if bytes < 1024 * 1024 {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentile() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let stats = Stats::of(&samples).expect("samples");
        assert_eq!(stats.median, Duration::from_micros(50_500));
        assert_eq!(stats.p99, Duration::from_millis(99));
        assert_eq!(stats.mean, Duration::from_micros(50_500));
        assert!(Stats::of(&[]).is_none());
    }
}
