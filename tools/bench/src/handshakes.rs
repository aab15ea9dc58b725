//! TLS handshakes per second (full or resumed) against one server pinned to one core, the load
//! generator's threads pinned to another. Counted: connections that completed the handshake and a
//! `GET /`; of those, how many resumed a session.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sched::{sched_setaffinity, CpuSet};
use nix::unistd::Pid;

use super::client::{Client, Handshake, Signatures, Version};
use super::procs::{core_times, core_use, cpu_time, CoreTimes, CoreUse};
use super::servers::{KeyType, Server, CLIENT_CORE, SERVER_CORE};
use task_support::Result;

/// How long and how hard.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub warmup: Duration,
    pub duration: Duration,
    pub threads: usize,
    /// Pin the client threads to [`CLIENT_CORE`].
    pub pin: bool,
}

/// What one row measures: the server's certificate, the protocol, and whether the client resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    pub key: KeyType,
    pub version: Version,
    pub handshake: Handshake,
}

impl Case {
    pub fn label(self) -> String {
        format!("{}, {}, {}", self.key.label(), self.version.label(), self.handshake.label())
    }
}

#[derive(Debug, Clone)]
pub struct Rate {
    pub server: &'static str,
    pub case: Case,
    pub per_second: f64,
    /// Share of the counted connections whose handshake resumed a session.
    pub resumed: f64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// CPU used by each process over the measured window, as a share of one core.
    pub server_cpu: f64,
    pub client_cpu: f64,
    /// How each pinned core was used (processes, interrupts and loopback packet processing).
    pub server_core: CoreUse,
    pub client_core: CoreUse,
}

impl Rate {
    /// The client, not the server, set the pace: the client's core was used up while the
    /// server's still had idle time.
    pub fn client_bound(&self) -> bool {
        self.client_core.busy >= 0.90 && self.server_core.busy < 0.90
    }

    /// Share of a pinned core that other processes took (concurrent builds, for instance).
    pub fn server_contention(&self) -> f64 {
        (self.server_core.busy - self.server_core.irq - self.server_cpu).max(0.0)
    }

    pub fn client_contention(&self) -> f64 {
        (self.client_core.busy - self.client_core.irq - self.client_cpu).max(0.0)
    }

    /// A resumed row in which the server did not resume (nearly) every connection measures
    /// something else than resumption.
    pub fn not_resuming(&self) -> bool {
        self.case.handshake == Handshake::Resumed && self.resumed < 0.95
    }

    /// Other processes took so much of a pinned core that the run cannot decide a budget.
    pub fn contended(&self) -> bool {
        self.server_contention() > 0.25 || self.client_contention() > 0.25
    }

    /// Handshakes per second of server CPU (its process time plus its core's packet
    /// processing): the rate one core fully given to the server sustains. Other processes on
    /// the core lower the rate but not this.
    pub fn per_core(&self) -> f64 {
        self.per_second / (self.server_cpu + self.server_core.irq).max(1e-3)
    }
}

pub fn pin_this_thread(core: usize) -> std::result::Result<(), String> {
    let mut set = CpuSet::new();
    set.set(core).map_err(|e| format!("cpu set: {e}"))?;
    // Pid 0: the calling thread only.
    sched_setaffinity(Pid::from_raw(0), &set).map_err(|e| format!("cannot pin the load generator to core {core}: {e}"))
}

/// Runs the load of `case` against `server`, which must present `leaf_der`.
pub fn measure(server: &Server, leaf_der: &[u8], case: Case, load: Load) -> Result<Rate> {
    let Case { version, handshake, .. } = case;
    // One fully verified round first: a server that does not answer, or answers with another
    // certificate or a bad signature, fails here with the reason.
    let checking = Client::new(server.addr, version, leaf_der, Signatures::Check, Handshake::Full)?;
    checking.round().map_err(|e| format!("{} over {}: {e}", server.name, version.label()))?;
    // One client for all threads: with resumption they share its session store, as the tabs of
    // one browser do.
    let client = &Client::new(server.addr, version, leaf_der, Signatures::Skip, handshake)?;

    let done = Arc::new(AtomicU64::new(0));
    let resumed = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let mut threads = Vec::new();
    for _ in 0..load.threads {
        let (client, done, resumed, errors, stop, first_error) =
            (client.clone(), done.clone(), resumed.clone(), errors.clone(), stop.clone(), first_error.clone());
        threads.push(std::thread::spawn(move || -> std::result::Result<(), String> {
            if load.pin {
                pin_this_thread(CLIENT_CORE)?;
            }
            while !stop.load(Ordering::Relaxed) {
                match client.round() {
                    Ok(was_resumed) => {
                        if was_resumed {
                            resumed.fetch_add(1, Ordering::Relaxed);
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut first) = first_error.lock() {
                            first.get_or_insert_with(|| e.to_string());
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            Ok(())
        }));
    }

    std::thread::sleep(load.warmup);
    type Snapshot = (Instant, u64, u64, Duration, Duration, Vec<CoreTimes>, u64);
    let snapshot = || -> Result<Snapshot> {
        Ok((
            Instant::now(),
            done.load(Ordering::Relaxed),
            errors.load(Ordering::Relaxed),
            cpu_time(server.pid)?,
            cpu_time(0)?,
            core_times()?,
            resumed.load(Ordering::Relaxed),
        ))
    };
    let start = snapshot();
    std::thread::sleep(load.duration);
    let end = snapshot();
    stop.store(true, Ordering::Relaxed);
    let mut pin_error = None;
    for thread in threads {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => pin_error = Some(e),
            Err(_) => pin_error = Some("a load generator thread panicked".into()),
        }
    }
    if let Some(e) = pin_error {
        return Err(e);
    }
    let (start, end) = (start?, end?);
    let wall = end.0.duration_since(start.0).as_secs_f64();
    let first_error = first_error.lock().ok().and_then(|e| e.clone());
    let counted = end.1 - start.1;
    Ok(Rate {
        server: server.name,
        case,
        per_second: counted as f64 / wall,
        // The two counters are read one after the other: off by at most a round per thread.
        resumed: ((end.6 - start.6) as f64 / (counted as f64).max(1.0)).min(1.0),
        errors: end.2 - start.2,
        first_error,
        server_cpu: (end.3 - start.3).as_secs_f64() / wall,
        client_cpu: (end.4 - start.4).as_secs_f64() / wall,
        server_core: core_use(&start.5, &end.5, SERVER_CORE),
        client_core: core_use(&start.5, &end.5, CLIENT_CORE),
    })
}
