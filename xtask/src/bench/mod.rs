//! `cargo xtask bench [--check] [--duration SECS] [--threads N] [--no-camera-build]`: measures
//! the budgets of the design brief against references measured in the same run (openssl CLI,
//! nginx + OpenSSL), prints a table, and with `--check` exits non-zero when a budget is missed.
//!
//! Runs in well under five minutes on two cores once the binaries are built: provisioning a few
//! seconds, handshakes 4 x (warm-up + duration), memory a few seconds, sizes a `strip` each,
//! address changes in a network namespace a few seconds (`unshare -rn`: needs root or
//! unprivileged user namespaces).
//! Every server started is stopped on success and on failure ([`procs::ChildGuard`]).

mod client;
mod handshakes;
mod latency;
mod memory;
mod procs;
mod provisioning;
mod servers;
mod size;
mod stats;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use client::{Client, Signatures, Version};
use handshakes::Load;
use procs::{which, TempDir};
use stats::{fmt_bytes, fmt_duration, Stats};

use crate::{root, Result};

pub use latency::{inside as latency_inside, INSIDE_TASK as LATENCY_INSIDE_TASK};

const MIB: u64 = 1024 * 1024;
const IDLE_RSS_BUDGET: u64 = 4 * MIB;
const CAMERA_SIZE_BUDGET: u64 = 5 * MIB / 2;
const PROVISIONING_SPEEDUP_BUDGET: f64 = 10.0;
const ADDRESS_CHANGE_BUDGET: Duration = Duration::from_secs(1);
const CONNECTIONS: usize = 200;

#[derive(Debug)]
struct Options {
    check: bool,
    duration: Duration,
    warmup: Duration,
    threads: usize,
    camera_build: bool,
}

const USAGE: &str = "usage: cargo xtask bench [--check] [--duration SECS] [--threads N] [--no-camera-build]";

impl Options {
    fn parse(args: impl Iterator<Item = String>) -> Result<Self> {
        let mut options = Self {
            check: false,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            threads: 16,
            camera_build: true,
        };
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| -> Result<u64> {
                let v = args.next().ok_or_else(|| format!("{name} needs a value; {USAGE}"))?;
                v.parse().map_err(|_| format!("{name} {v:?} is not a number; {USAGE}"))
            };
            match arg.as_str() {
                "--check" => options.check = true,
                "--duration" => options.duration = Duration::from_secs(value("--duration")?.clamp(1, 30)),
                "--threads" => options.threads = value("--threads")?.clamp(1, 64) as usize,
                "--no-camera-build" => options.camera_build = false,
                _ => return Err(format!("unknown argument {arg:?}; {USAGE}")),
            }
        }
        Ok(options)
    }
}

/// Outcome of one budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass,
    Fail,
    /// Measured, but the measurement cannot decide (e.g. the client was the bottleneck).
    Inconclusive,
    /// A figure to report; no limit.
    Info,
    /// Not measured here (missing toolchain).
    Skipped,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Self::Pass => "ok",
            Self::Fail => "MISSED",
            Self::Inconclusive => "inconclusive",
            Self::Info => "-",
            Self::Skipped => "skipped",
        }
    }
}

#[derive(Debug)]
struct Budget {
    name: String,
    measured: String,
    limit: String,
    verdict: Verdict,
}

/// Prints rows as aligned columns.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from("  ");
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 {
                let _ = write!(line, "{cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(line, "  {}{cell}", " ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn stats_row(label: &str, stats: &Stats) -> Vec<String> {
    vec![
        label.to_owned(),
        stats.n.to_string(),
        fmt_duration(stats.mean),
        fmt_duration(stats.median),
        fmt_duration(stats.p99),
        fmt_duration(stats.min),
        fmt_duration(stats.max),
    ]
}

fn ratio(reference: Duration, measured: Duration) -> f64 {
    reference.as_secs_f64() / measured.as_secs_f64().max(1e-9)
}

pub fn run(args: impl Iterator<Item = String>) -> Result {
    let options = Options::parse(args)?;
    if cfg!(debug_assertions) {
        return reexec_release(&options);
    }
    procs::kill_children_on_panic();
    let started = Instant::now();
    let root = root();
    let cargo = env!("CARGO");
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let pin = cores >= 2 && which("taskset").is_some();

    for tool in ["openssl", "nginx"] {
        if which(tool).is_none() && !Path::new("/usr/sbin").join(tool).exists() {
            return Err(format!("{tool} is missing: apt-get install -y nginx openssl"));
        }
    }
    eprintln!("bench: building the release binaries");
    crate::run(
        Command::new(cargo)
            .args(["build", "--release", "--quiet", "-p", "camera-web", "-p", "cert-provisioner"])
            .current_dir(&root),
    )?;
    let release = root.join("target/release");

    let state_base = TempDir::new(&std::env::temp_dir(), "state")?;
    let shm = Path::new("/dev/shm");
    let run_base = TempDir::new(if shm.is_dir() { shm } else { state_base.path() }, "run")?;

    println!("cargo xtask bench{}", if options.check { " --check" } else { "" });
    println!(
        "machine: {} core(s), {}; {}; nginx {}; servers on core {}, load generator on core {}{}",
        cores,
        cpu_model(),
        servers::openssl_version(),
        servers::nginx_version(),
        servers::SERVER_CORE,
        servers::CLIENT_CORE,
        if pin { "" } else { " (NOT pinned: fewer than 2 cores or no taskset; figures are indicative)" }
    );
    let mut budgets = Vec::new();

    // 1. Provisioning.
    eprintln!("bench: provisioning");
    let counts = provisioning::Counts { library: 200, openssl: 20, binary: 10 };
    let prov = provisioning::run(state_base.path(), run_base.path(), &release.join("cert-provisioner"), counts)?;
    println!("\n1. Provisioning: mint a P-256 server certificate with an existing CA, write key+cert+CA bundle (tmp file, fsync, rename, dir fsync)");
    println!("   names: {}", prov.names.join(", "));
    println!("   state dir {} ; run dir {}", prov.state_dir.display(), prov.run_dir.display());
    let mut rows = vec![["", "n", "mean", "median", "p99", "min", "max"].map(String::from).to_vec()];
    rows.push(stats_row("library in-process (provision::mint)", &prov.library));
    rows.push(stats_row("openssl CLI (genpkey | req | x509 -req)", &prov.openssl));
    rows.push(stats_row("cert-provisioner binary, end to end", &prov.binary));
    print!("{}", table(&rows));
    let speedup = ratio(prov.openssl.mean, prov.library.mean);
    println!(
        "   openssl / library: {speedup:.1}x (mean), {:.1}x (median); openssl / binary end to end: {:.1}x (mean), {:.1}x (median)",
        ratio(prov.openssl.median, prov.library.median),
        ratio(prov.openssl.mean, prov.binary.mean),
        ratio(prov.openssl.median, prov.binary.median),
    );
    budgets.push(Budget {
        name: "provisioning vs openssl CLI (library, mean)".into(),
        measured: format!("{speedup:.1}x faster"),
        limit: format!(">= {PROVISIONING_SPEEDUP_BUDGET:.0}x"),
        verdict: if speedup >= PROVISIONING_SPEEDUP_BUDGET { Verdict::Pass } else { Verdict::Fail },
    });
    let boot_speedup = ratio(prov.openssl.mean, prov.binary.mean);
    budgets.push(Budget {
        name: "boot step vs openssl CLI (binary, mean)".into(),
        measured: format!("{boot_speedup:.1}x faster"),
        limit: "(reported)".into(),
        verdict: Verdict::Info,
    });

    // 2 and 3. Servers: memory right after start, then handshake rates.
    eprintln!("bench: camera-web");
    let load = Load { warmup: options.warmup, duration: options.duration, threads: options.threads, pin };
    let web_dir = TempDir::new(&std::env::temp_dir(), "camera-web")?;
    let web = servers::camera_web(&release.join("camera-web"), web_dir.path(), pin)?;
    let bundle = servers::Bundle::read(&web_dir.path().join("run/server.pem"))?;
    let web_memory = memory::measure(
        web.pid,
        &Client::new(web.addr, Version::Tls13, &bundle.leaf_der, Signatures::Check)?,
        CONNECTIONS,
    )?;
    let mut rates = Vec::new();
    for version in [Version::Tls13, Version::Tls12] {
        eprintln!("bench: camera-web {}", version.label());
        rates.push(handshakes::measure(web.name, web.pid, web.addr, &bundle.leaf_der, version, load)?);
    }
    let web_after_load = procs::memory(web.pid)?;
    web.stop();

    eprintln!("bench: nginx");
    let nginx_dir = TempDir::new(&std::env::temp_dir(), "nginx")?;
    let nginx = servers::nginx(nginx_dir.path(), &bundle, pin)?;
    let nginx_memory = memory::measure(
        nginx.pid,
        &Client::new(nginx.addr, Version::Tls13, &bundle.leaf_der, Signatures::Check)?,
        CONNECTIONS,
    )?;
    for version in [Version::Tls13, Version::Tls12] {
        eprintln!("bench: nginx {}", version.label());
        rates.push(handshakes::measure(nginx.name, nginx.pid, nginx.addr, &bundle.leaf_der, version, load)?);
    }
    let nginx_after_load = procs::memory(nginx.pid)?;
    nginx.stop();

    println!(
        "\n2. TLS full handshakes per second, one server core (ECDSA P-256 certificate, X25519; no resumption, no session cache/tickets;\n   \
         {} client threads, {}s warm-up + {}s measured; each connection: handshake, GET /, close; camera-web GET / = UI page, nginx = 3 bytes)",
        load.threads,
        load.warmup.as_secs(),
        load.duration.as_secs()
    );
    let mut rows = vec![[
        "server",
        "protocol",
        "handshakes/s",
        "server CPU",
        "core 0 busy",
        "(softirq)",
        "client CPU",
        "core 1 busy",
        "per server core",
        "errors",
    ]
    .map(String::from)
    .to_vec()];
    let pct = |x: f64| format!("{:.0}%", x * 100.0);
    for r in &rates {
        rows.push(vec![
            r.server.into(),
            r.version.label().into(),
            format!("{:.0}", r.per_second),
            pct(r.server_cpu),
            pct(r.server_core.busy),
            pct(r.server_core.irq),
            pct(r.client_cpu),
            pct(r.client_core.busy),
            format!("{:.0}/s", r.per_core()),
            r.errors.to_string(),
        ]);
    }
    print!("{}", table(&rows));
    println!(
        "   CPU: the process's CPU time as a share of the window; busy: the pinned core's, all processes and softirq (loopback\n   \
         packet processing) included; per server core: handshakes/s / (server CPU + its core's softirq)"
    );
    for r in &rates {
        if let Some(e) = &r.first_error {
            println!("   {} {}: {} errors, first: {e}", r.server, r.version.label(), r.errors);
        }
        if r.client_bound() {
            println!(
                "   NOTE: {} {}: the load generator saturated its core ({}) before the server did ({}): the rate is a lower bound for the server.",
                r.server,
                r.version.label(),
                pct(r.client_core.busy),
                pct(r.server_core.busy)
            );
        }
        if r.server_contention() > 0.05 || r.client_contention() > 0.05 {
            println!(
                "   NOTE: {} {}: other processes took {} of core {} and {} of core {} (concurrent builds?): rates are lower than on a quiet machine{}.",
                r.server,
                r.version.label(),
                pct(r.server_contention()),
                servers::SERVER_CORE,
                pct(r.client_contention()),
                servers::CLIENT_CORE,
                if r.contended() { "; over 25%: the budget is left undecided" } else { "; per-core figures account for most of it" }
            );
        }
    }
    for version in [Version::Tls13, Version::Tls12] {
        let find = |name: &str| rates.iter().find(|r| r.server == name && r.version == version);
        let (Some(web), Some(reference)) = (find("camera-web"), find("nginx")) else { continue };
        let raw = web.per_second / reference.per_second.max(1e-9);
        let (web_core, reference_core) = (web.per_core(), reference.per_core());
        let x = web_core / reference_core.max(1e-9);
        println!(
            "   {}: camera-web / nginx = {raw:.2}x as measured; per server core: camera-web {web_core:.0}/s, nginx {reference_core:.0}/s = {x:.2}x",
            version.label(),
        );
        // A client-bound run says nothing about the server's capacity; on a machine busy with
        // other work the per-core figures shift too much to decide.
        let verdict = if web.client_bound() || reference.client_bound() || web.contended() || reference.contended() {
            Verdict::Inconclusive
        } else if x >= 1.0 {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        budgets.push(Budget {
            name: format!("handshakes/s per core vs nginx ({})", version.label()),
            measured: format!("{x:.2}x ({web_core:.0} vs {reference_core:.0}/s/core)"),
            limit: ">= 1.00x".into(),
            verdict,
        });
    }

    println!("\n3. Memory, VmRSS (VmHWM peak) from /proc/PID/status; nginx: its worker process");
    let cell = |m: procs::Memory| format!("{} ({})", fmt_bytes(m.rss), fmt_bytes(m.hwm));
    let mut rows = vec![["", "camera-web", "nginx worker"].map(String::from).to_vec()];
    rows.push(vec!["right after start".into(), cell(web_memory.started), cell(nginx_memory.started)]);
    rows.push(vec!["after one request".into(), cell(web_memory.after_one), cell(nginx_memory.after_one)]);
    rows.push(vec![
        format!("{CONNECTIONS} connections open, each after a request"),
        cell(web_memory.open),
        cell(nginx_memory.open),
    ]);
    rows.push(vec!["after they closed".into(), cell(web_memory.closed), cell(nginx_memory.closed)]);
    rows.push(vec!["after the handshake runs".into(), cell(web_after_load), cell(nginx_after_load)]);
    print!("{}", table(&rows));
    let idle = web_memory.started.rss.max(web_memory.after_one.rss);
    let per_conn = web_memory.open.rss.saturating_sub(web_memory.after_one.rss) / CONNECTIONS as u64;
    let nginx_per_conn = nginx_memory.open.rss.saturating_sub(nginx_memory.after_one.rss) / CONNECTIONS as u64;
    println!("   per open connection: camera-web {}, nginx worker {}", fmt_bytes(per_conn), fmt_bytes(nginx_per_conn));
    budgets.push(Budget {
        name: "camera-web idle RSS".into(),
        measured: format!(
            "{} (nginx worker {})",
            fmt_bytes(idle),
            fmt_bytes(nginx_memory.started.rss.max(nginx_memory.after_one.rss))
        ),
        limit: format!("<= {}", fmt_bytes(IDLE_RSS_BUDGET)),
        verdict: if idle <= IDLE_RSS_BUDGET { Verdict::Pass } else { Verdict::Fail },
    });
    budgets.push(Budget {
        name: format!("camera-web RSS, {CONNECTIONS} connections open"),
        measured: format!("{} (nginx worker {})", fmt_bytes(web_memory.open.rss), fmt_bytes(nginx_memory.open.rss)),
        limit: "bounded (reported)".into(),
        verdict: Verdict::Info,
    });

    // 4. Size.
    eprintln!("bench: sizes");
    let scratch = TempDir::new(&std::env::temp_dir(), "size")?;
    let host = size::measure(std::env::consts::ARCH, &release, "strip", scratch.path())?;
    let camera = match size::camera_build_missing() {
        Some(reason) => Err(reason),
        None if !options.camera_build => Err("--no-camera-build".to_owned()),
        None => {
            eprintln!("bench: building for {}", size::CAMERA_TARGET);
            size::build_camera(cargo, &root)?;
            let dir = root.join("target").join(size::CAMERA_TARGET).join("release");
            Ok(size::measure(size::CAMERA_TARGET, &dir, "aarch64-linux-gnu-strip", scratch.path())?)
        }
    };
    println!("\n4. Stripped size of the shipped binaries (release profile; copies run through strip again)");
    let mut rows = vec![["target", "cert-provisioner", "camera-web", "total"].map(String::from).to_vec()];
    for sizes in std::iter::once(&host).chain(camera.as_ref().ok()) {
        let mut row = vec![sizes.target.clone()];
        row.extend(sizes.files.iter().map(|(_, s)| fmt_bytes(*s)));
        row.push(fmt_bytes(sizes.total()));
        rows.push(row);
    }
    print!("{}", table(&rows));
    budgets.push(match &camera {
        Ok(sizes) => Budget {
            name: format!("stripped size, {}", size::CAMERA_TARGET),
            measured: format!("{} ({} bytes)", fmt_bytes(sizes.total()), sizes.total()),
            limit: format!("<= {}", fmt_bytes(CAMERA_SIZE_BUDGET)),
            verdict: if sizes.total() <= CAMERA_SIZE_BUDGET { Verdict::Pass } else { Verdict::Fail },
        },
        Err(reason) => Budget {
            name: format!("stripped size, {}", size::CAMERA_TARGET),
            measured: format!("not built: {reason}; host {}", fmt_bytes(host.total())),
            limit: format!("<= {}", fmt_bytes(CAMERA_SIZE_BUDGET)),
            verdict: Verdict::Skipped,
        },
    });

    // 5. Address change to new certificate served, in a network namespace.
    eprintln!("bench: address changes");
    let latency_dir = TempDir::new(&std::env::temp_dir(), "latency")?;
    let latency = latency::measure(&release.join("camera-web"), latency_dir.path())?;
    println!(
        "\n5. Address change to new certificate served (network namespace, veth; ip addr add/del, then TLS handshakes every\n   \
         millisecond until the served certificate says so; start-up: the address added as soon as camera-web wrote its first certificate)"
    );
    let mut rows = vec![["", "n", "mean", "median", "p99", "min", "max"].map(String::from).to_vec()];
    rows.push(stats_row("during start-up", &latency.startup));
    rows.push(stats_row("address added", &latency.add));
    rows.push(stats_row("address removed", &latency.remove));
    print!("{}", table(&rows));
    for (name, stats) in [
        ("address change to certificate served, at start-up (max)", &latency.startup),
        ("address change to certificate served, running (max)", &latency.add),
        ("address removal to certificate served, running (max)", &latency.remove),
    ] {
        budgets.push(Budget {
            name: name.into(),
            measured: format!("{} (median {}, n {})", fmt_duration(stats.max), fmt_duration(stats.median), stats.n),
            limit: format!("< {}", fmt_duration(ADDRESS_CHANGE_BUDGET)),
            verdict: if stats.max < ADDRESS_CHANGE_BUDGET { Verdict::Pass } else { Verdict::Fail },
        });
    }

    println!("\nBudgets (design brief), each against a reference measured in this run");
    let mut rows = vec![["budget", "measured", "limit", "verdict"].map(String::from).to_vec()];
    for b in &budgets {
        rows.push(vec![b.name.clone(), b.measured.clone(), b.limit.clone(), b.verdict.label().into()]);
    }
    print!("{}", table(&rows));
    let missed = budgets.iter().filter(|b| b.verdict == Verdict::Fail).count();
    println!("\nbench finished in {:.0} s; {missed} budget(s) missed", started.elapsed().as_secs_f64());
    if missed > 0 && options.check {
        return Err(format!("{missed} budget(s) missed"));
    }
    Ok(())
}

/// Measurements of a debug build would be meaningless: build xtask with the release profile
/// (the product's) and run the bench from there.
fn reexec_release(options: &Options) -> Result {
    use std::os::unix::process::CommandExt;
    let root = root();
    eprintln!("bench: building xtask with the release profile");
    crate::run(Command::new(env!("CARGO")).args(["build", "--release", "--quiet", "-p", "xtask"]).current_dir(&root))?;
    let mut cmd = Command::new(root.join("target/release/xtask"));
    cmd.arg("bench");
    if options.check {
        cmd.arg("--check");
    }
    if !options.camera_build {
        cmd.arg("--no-camera-build");
    }
    cmd.arg("--duration").arg(options.duration.as_secs().to_string()).arg("--threads").arg(options.threads.to_string());
    let error = cmd.exec();
    Err(format!("cannot run {}: {error}", PathBuf::from(cmd.get_program()).display()))
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned()))
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
