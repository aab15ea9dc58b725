//! When the power-cut tests of camera-web and cert-provisioner kill, and where the kills landed.
//! A seeded xorshift (no dependency); `POWERCUT_SEED` replays a run and `POWERCUT_ROUNDS` sets
//! kills per kind.

use std::time::{Duration, Instant};

/// xorshift64: enough to spread kills; no dependency.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// A stream per test kind, from the run's seed.
    pub fn for_kind(kind: &str) -> (Self, u64) {
        // One seed for the whole run (the tests run in parallel threads of one process).
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let seed = *SEED.get_or_init(|| {
            std::env::var("POWERCUT_SEED").ok().and_then(|s| s.trim().parse().ok()).unwrap_or_else(|| {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("the clock is after 1970");
                (t.as_nanos() as u64) ^ u64::from(std::process::id()).rotate_left(32)
            })
        });
        let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
        for b in kind.bytes() {
            state = (state ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3);
        }
        let mut rng = Self(state.max(1));
        for _ in 0..8 {
            rng.next_u64();
        }
        (rng, seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A kill delay, in microseconds: mostly uniform in 0..1.5 x `window`, and one kill in four
    /// in 0..8 x `window`, for operations slower than measured (a fresh process under qemu-user
    /// translates its code on first use, so the first operation after a restart is slower).
    pub fn delay(&mut self, window: Duration) -> Duration {
        let factor = if self.next_u64() % 4 == 0 { 16 } else { 3 };
        let span = (window.as_micros() as u64 * factor / 2).max(1);
        Duration::from_micros(self.next_u64() % span)
    }
}

/// Kills per kind: `POWERCUT_ROUNDS`, else `default`, halved under qemu-user (the cross test run
/// sets CAMERA_TESTNS_RUNNER), where each restart is many times slower and the file system calls
/// are the host kernel's anyway.
pub fn rounds(default: usize) -> usize {
    let default = if std::env::var_os("CAMERA_TESTNS_RUNNER").is_some() { default / 2 } else { default };
    std::env::var("POWERCUT_ROUNDS").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(default)
}

/// Where the kills of one kind landed; both sides of the commit point must be hit.
#[derive(Default, Debug)]
pub struct Counts {
    pub kills: usize,
    /// The old state survived.
    pub before: usize,
    /// First boot only: the CA was committed, the copy of its root in `ca.crt` not written yet.
    pub between: usize,
    /// The new state was committed.
    pub after: usize,
    /// "after" kills inside the operation (camera-web: before the client had an answer; the
    /// provisioner: while it still ran), not once it had finished.
    pub after_in_window: usize,
}

impl Counts {
    pub fn record_after(&mut self, in_window: bool) {
        self.after += 1;
        self.after_in_window += usize::from(in_window);
    }

    /// Prints the counts (`in_window` says what `after_in_window` means) and asserts both sides were hit.
    pub fn finish(&self, label: &str, in_window: &str, seed: u64, window: Duration, started: Instant) {
        println!(
            "{label}: seed {seed} (POWERCUT_SEED to replay), window {} us, {} kills: {} before (old state), {} after (new state; {} {in_window}), {} between (CA committed, ca.crt not yet written), {:.1} s",
            window.as_micros(),
            self.kills,
            self.before,
            self.after,
            self.after_in_window,
            self.between,
            started.elapsed().as_secs_f64()
        );
        assert!(self.before > 0, "{label}: no kill landed before the commit point: {self:?}");
        assert!(self.after > 0, "{label}: no kill landed after the commit point: {self:?}");
        assert!(
            self.after_in_window > 0,
            "{label}: no kill landed between the commit point and the end of the operation ({in_window}): {self:?}"
        );
    }
}
