//! `bench` (`cargo xtask bench` runs `cargo run --release -p bench -- ARGS`) `[--check] [--duration SECS] [--threads N] [--no-camera-build] [--only ca|enroll|dot1x|fleet] [--cameras N]`: measures
//! the budgets of the design brief against references measured in the same run (openssl CLI,
//! nginx + OpenSSL), prints a table, and with `--check` exits non-zero when a budget is missed.
//!
//! Runs in about four to six minutes on two cores (measured 4 min 17 s with the binaries built): provisioning a few
//! seconds, handshakes 16 x (warm-up + duration) (2 servers x 2 certificates x 2 protocols x full
//! and resumed; 16 x 5 s by default), signing about 8 s, memory a few seconds (plus a static musl
//! build of what ships, for this host, the first time), sizes a `strip` each,
//! address changes in a network namespace a few seconds (`unshare -rn`: needs root or
//! unprivileged user namespaces), the two-tier CA's costs (first-boot CA creation, handshake bytes)
//! a few seconds, enrollment per protocol next to reference clients (lego, scepclient) about a
//! minute and a half plus its release test build, 802.1X from settings to an open switch port next
//! to wpa_supplicant alone (in a network namespace with hostapd as the switch) about a minute.
//! `--only ca`, `--only enroll` or `--only dot1x` runs only those. `--only fleet` runs the fleet
//! simulation (section 11, [`fleet`]: 2 x 200 cameras, or `--cameras N` per fleet, for 15 minutes
//! plus about two to start them), which the full run leaves out for its length.
//! Every server started is stopped on success and on failure ([`procs::ChildGuard`]).

mod ca_creation;
mod chain_bytes;
mod client;
mod dot1x;
mod enrollment;
mod fleet;
mod handshakes;
mod latency;
mod memory;
mod procs;
mod provisioning;
mod servers;
mod signing;
mod size;
mod stats;

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use client::{Client, Handshake, Signatures, Version};
use handshakes::{Case, Load, Rate};
use procs::TempDir;
use servers::KeyType;
use stats::{fmt_bytes, fmt_duration, Stats};

use task_support::{run, target_dir, which, Result};

const MIB: u64 = 1024 * 1024;
const IDLE_RSS_BUDGET: u64 = 4 * MIB;
const PROVISIONING_SPEEDUP_BUDGET: f64 = 10.0;
const ADDRESS_CHANGE_BUDGET: Duration = Duration::from_secs(1);
const CONNECTIONS: usize = 200;
/// CPU seconds per signing measurement (ring, and each `openssl speed` algorithm).
const SIGN_SECONDS: u64 = 1;

#[derive(Debug)]
struct Options {
    check: bool,
    duration: Duration,
    warmup: Duration,
    threads: usize,
    camera_build: bool,
    /// Only some sections (`--only ca`, `--only enroll`, `--only dot1x`, `--only fleet`).
    only: Option<Only>,
    /// Cameras per fleet in section 11.
    cameras: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Only {
    /// The two-tier CA's costs (sections 7 and 8).
    Ca,
    /// Enrollment per protocol (section 9).
    Enroll,
    /// 802.1X, settings to port authorized (section 10).
    Dot1x,
    /// A fleet against its CA, spread on and off (section 11; only when asked for).
    Fleet,
}

impl Only {
    fn arg(self) -> &'static str {
        match self {
            Self::Ca => "ca",
            Self::Enroll => "enroll",
            Self::Dot1x => "dot1x",
            Self::Fleet => "fleet",
        }
    }
}

/// Rounds of each enrollment (protocol x client) in section 9.
const ENROLL_ROUNDS: usize = 5;
/// Rounds of section 10 (each: the camera and the reference, each on a fresh switch).
const DOT1X_ROUNDS: usize = 5;
/// What section 10 runs: the authenticator, the supplicant, the switch port's gate, namespaces.
const DOT1X_TOOLS: [&str; 7] = ["hostapd", "hostapd_cli", "wpa_supplicant", "wpa_cli", "nft", "nsenter", "unshare"];

const USAGE: &str =
    "usage: cargo xtask bench [--check] [--duration SECS] [--threads N] [--no-camera-build] [--only ca|enroll|dot1x|fleet] [--cameras N]";

impl Options {
    fn parse(args: impl Iterator<Item = String>) -> Result<Self> {
        let mut options = Self {
            check: false,
            // 16 rows: 4 s each keeps the run short; the spread between runs is reported in README.
            duration: Duration::from_secs(4),
            warmup: Duration::from_secs(1),
            threads: 16,
            camera_build: true,
            only: None,
            cameras: fleet::DEFAULT_CAMERAS,
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
                "--cameras" => options.cameras = value("--cameras")?.clamp(1, 10_000) as usize,
                "--only" => match args.next().as_deref() {
                    Some("ca") => options.only = Some(Only::Ca),
                    Some("enroll") => options.only = Some(Only::Enroll),
                    Some("dot1x") => options.only = Some(Only::Dot1x),
                    Some("fleet") => options.only = Some(Only::Fleet),
                    other => return Err(format!("--only takes ca, enroll, dot1x or fleet, not {other:?}; {USAGE}")),
                },
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

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    let result = match args.peek().map(String::as_str) {
        Some(latency::INSIDE_TASK) => {
            args.next();
            latency::inside(args)
        }
        Some(dot1x::INSIDE_TASK) => {
            args.next();
            dot1x::inside(args)
        }
        Some(fleet::INSIDE_TASK) => {
            args.next();
            fleet::inside(args)
        }
        _ => bench(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn bench(args: impl Iterator<Item = String>) -> Result {
    let options = Options::parse(args)?;
    if cfg!(debug_assertions) {
        // Figures of a debug build would say nothing about the product's.
        return Err("build the bench with the release profile: cargo xtask bench (cargo run --release -p bench)".into());
    }
    procs::kill_children_on_panic();
    let started = Instant::now();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let pin = cores >= 2 && which("taskset").is_some();

    let tools: Vec<&str> = match options.only {
        Some(Only::Ca) => vec!["openssl"],
        Some(Only::Enroll) => vec!["lego", "scepclient"],
        Some(Only::Dot1x) => DOT1X_TOOLS.to_vec(),
        Some(Only::Fleet) => vec!["curl", "nsenter", "unshare"],
        None => [&["openssl", "nginx", "lego", "scepclient"][..], &DOT1X_TOOLS].concat(),
    };
    for tool in tools {
        if which(tool).is_none() && !Path::new("/usr/sbin").join(tool).exists() {
            return Err(format!("{tool} is missing: cargo xtask deps installs it"));
        }
    }
    eprintln!("bench: building the release binaries");
    run(task_support::cargo().args(["build", "--release", "--quiet"]).args(size::PACKAGES))?;
    let release = target_dir().join("release");

    let state_base = TempDir::new(&std::env::temp_dir(), "state")?;
    let shm = Path::new("/dev/shm");
    let run_base = TempDir::new(if shm.is_dir() { shm } else { state_base.path() }, "run")?;

    println!(
        "cargo xtask bench{}{}",
        if options.check { " --check" } else { "" },
        options.only.map(|o| format!(" --only {}", o.arg())).unwrap_or_default()
    );
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
    match options.only {
        Some(Only::Ca) => {
            ca_sections(&release, state_base.path(), pin, &mut budgets)?;
            return print_budgets(&budgets, started, options.check);
        }
        Some(Only::Enroll) => {
            enrollment_section(&mut budgets)?;
            return print_budgets(&budgets, started, options.check);
        }
        Some(Only::Dot1x) => {
            dot1x_section(&release, &mut budgets)?;
            return print_budgets(&budgets, started, options.check);
        }
        Some(Only::Fleet) => {
            fleet_section(&release, options.cameras, &mut budgets)?;
            return print_budgets(&budgets, started, options.check);
        }
        None => {}
    }

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

    // 2, 3 and 4. Servers: memory right after start, then handshake rates; signing alone.
    let load = Load { warmup: options.warmup, duration: options.duration, threads: options.threads, pin };
    let installer_dir = TempDir::new(&std::env::temp_dir(), "installer")?;
    let installer = servers::installer_bundle(installer_dir.path())?;
    let rsa_bundle = servers::Bundle::read(&installer)?;
    let mut rates = Vec::new();
    // Both servers of a certificate run at once (an idle one costs nothing) and each case is
    // measured on one right after the other, so load from elsewhere that drifts during the run
    // hits the two sides of a comparison alike.
    let measure_pair =
        |servers: [&servers::Server; 2], key: KeyType, leaf_der: &[u8], rates: &mut Vec<Rate>| -> Result {
            for handshake in [Handshake::Full, Handshake::Resumed] {
                for version in [Version::Tls13, Version::Tls12] {
                    let case = Case { key, version, handshake };
                    for server in servers {
                        eprintln!("bench: {} {}", server.name, case.label());
                        rates.push(handshakes::measure(server, leaf_der, case, load)?);
                    }
                }
            }
            Ok(())
        };

    eprintln!("bench: camera-web and nginx, the camera's own P-256 certificate");
    let web_dir = TempDir::new(&std::env::temp_dir(), "camera-web")?;
    let web = servers::camera_web(&release.join("camera-web"), web_dir.path(), pin, None)?;
    let p256_bundle = servers::Bundle::read(&web_dir.path().join("run/server.pem"))?;
    let memory_client =
        |addr| Client::new(addr, Version::Tls13, &p256_bundle.leaf_der, Signatures::Check, Handshake::Full);
    let web_memory = memory::measure(web.pid, &memory_client(web.addr)?, CONNECTIONS)?;
    let nginx_dir = TempDir::new(&std::env::temp_dir(), "nginx")?;
    let nginx = servers::nginx(nginx_dir.path(), &p256_bundle, pin)?;
    let nginx_memory = memory::measure(nginx.pid, &memory_client(nginx.addr)?, CONNECTIONS)?;
    measure_pair([&web, &nginx], KeyType::P256, &p256_bundle.leaf_der, &mut rates)?;
    let web_after_load = procs::memory(web.pid)?;
    let nginx_after_load = procs::memory(nginx.pid)?;
    web.stop();
    nginx.stop();

    // The memory budget is the camera's: measured on the shipped configuration (static musl
    // multi-call binary), started as camera-web through a link as on the camera.
    eprintln!("bench: the shipped build (static musl) for this host, for its memory");
    let shipped_bin = size::build_shipped_for_host()?;
    let shipped_dir = TempDir::new(&std::env::temp_dir(), "camera-web-shipped")?;
    let shipped_link = shipped_dir.path().join("camera-web");
    std::os::unix::fs::symlink(&shipped_bin, &shipped_link)
        .map_err(|e| format!("cannot link {}: {e}", shipped_link.display()))?;
    let shipped = servers::camera_web(&shipped_link, shipped_dir.path(), pin, None)?;
    let shipped_bundle = servers::Bundle::read(&shipped_dir.path().join("run/server.pem"))?;
    let shipped_client =
        Client::new(shipped.addr, Version::Tls13, &shipped_bundle.leaf_der, Signatures::Check, Handshake::Full)?;
    let shipped_memory = memory::measure(shipped.pid, &shipped_client, CONNECTIONS)?;
    shipped.stop();

    eprintln!("bench: camera-web and nginx, an installer's RSA-2048 certificate");
    let web_rsa_dir = TempDir::new(&std::env::temp_dir(), "camera-web-rsa")?;
    let web = servers::camera_web(&release.join("camera-web"), web_rsa_dir.path(), pin, Some(&installer))?;
    let nginx_rsa_dir = TempDir::new(&std::env::temp_dir(), "nginx-rsa")?;
    let nginx = servers::nginx(nginx_rsa_dir.path(), &rsa_bundle, pin)?;
    measure_pair([&web, &nginx], KeyType::Rsa2048, &rsa_bundle.leaf_der, &mut rates)?;
    web.stop();
    nginx.stop();

    eprintln!("bench: signing alone, ring and OpenSSL");
    let (p256_key, rsa_key) = (p256_bundle.key_der()?, rsa_bundle.key_der()?);
    let sign_rates = signing::measure(
        &[(KeyType::P256, p256_key.as_slice()), (KeyType::Rsa2048, rsa_key.as_slice())],
        SIGN_SECONDS,
        pin,
    )?;

    println!(
        "\n2. TLS handshakes per second, one server core (X25519; the camera's P-256 certificate and an installer's RSA-2048 one;\n   \
         {} client threads, {}s warm-up + {}s measured per row; each connection: handshake, GET /, close; camera-web GET / = UI page,\n   \
         nginx = 3 bytes). full: the client never resumes. resumed: the client offers the session the server gave it last\n   \
         (rustls' client store); each server with its default resumption: camera-web rustls' stateful cache (256 sessions;\n   \
         TLS 1.2 session ids, TLS 1.3 two single-use tickets naming cache entries), nginx ssl_session_cache none +\n   \
         ssl_session_tickets on (stateless tickets in TLS 1.2 and 1.3)",
        load.threads,
        load.warmup.as_secs(),
        load.duration.as_secs()
    );
    let mut rows = vec![[
        "server",
        "certificate",
        "protocol",
        "handshake",
        "handshakes/s",
        "resumed",
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
            r.case.key.label().into(),
            r.case.version.label().into(),
            r.case.handshake.label().into(),
            format!("{:.0}", r.per_second),
            pct(r.resumed),
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
         packet processing) included; per server core: handshakes/s / (server CPU + its core's softirq); resumed: share of\n   \
         the connections whose handshake resumed a session"
    );
    for r in &rates {
        let row = format!("{} {}", r.server, r.case.label());
        if let Some(e) = &r.first_error {
            println!("   {row}: {} errors, first: {e}", r.errors);
        }
        if r.not_resuming() {
            println!(
                "   NOTE: {row}: only {} of the handshakes resumed: the row does not measure resumption.",
                pct(r.resumed)
            );
        }
        if r.client_bound() {
            println!(
                "   NOTE: {row}: the load generator saturated its core ({}) before the server did ({}): the rate is a lower bound for the server.",
                pct(r.client_core.busy),
                pct(r.server_core.busy)
            );
        }
        if r.server_contention() > 0.05 || r.client_contention() > 0.05 {
            println!(
                "   NOTE: {row}: other processes took {} of core {} and {} of core {} (concurrent builds?): rates are lower than on a quiet machine{}.",
                pct(r.server_contention()),
                servers::SERVER_CORE,
                pct(r.client_contention()),
                servers::CLIENT_CORE,
                if r.contended() { "; over 25%: the budget is left undecided" } else { "; per-core figures account for most of it" }
            );
        }
    }
    for r in rates.iter().filter(|r| r.server == "camera-web") {
        let case = r.case;
        let Some(reference) = rates.iter().find(|n| n.server == "nginx" && n.case == case) else { continue };
        let raw = r.per_second / reference.per_second.max(1e-9);
        let (web_core, reference_core) = (r.per_core(), reference.per_core());
        let x = web_core / reference_core.max(1e-9);
        println!(
            "   {}: camera-web / nginx = {raw:.2}x as measured; per server core: camera-web {web_core:.0}/s, nginx {reference_core:.0}/s = {x:.2}x",
            case.label(),
        );
        // A client-bound run says nothing about the server's capacity; on a machine busy with
        // other work the per-core figures shift too much to decide; a resumed row that did not
        // resume measured full handshakes.
        let undecided = |r: &Rate| r.client_bound() || r.contended() || r.not_resuming();
        let verdict = if undecided(r) || undecided(reference) {
            Verdict::Inconclusive
        } else if x >= 1.0 {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        budgets.push(Budget {
            name: format!("handshakes/s per core vs nginx ({})", case.label()),
            measured: format!("{x:.2}x ({web_core:.0} vs {reference_core:.0}/s/core)"),
            limit: ">= 1.00x".into(),
            verdict,
        });
    }

    println!(
        "\n3. Signing alone on core {} (the private-key operation of each full handshake), per second of CPU time:\n   \
         ring as camera-web calls it (rustls' signer, the scheme the bench client gets), OpenSSL libcrypto as nginx uses it\n   \
         (`openssl speed -seconds {SIGN_SECONDS} rsa2048 ecdsap256`)",
        servers::SERVER_CORE
    );
    let mut rows = vec![["key", "scheme (ring)", "ring", "OpenSSL", "OpenSSL / ring"].map(String::from).to_vec()];
    let masked = sign_rates.iter().any(|s| s.openssl_without_ifma.is_some());
    if masked {
        rows[0].push("OpenSSL, AVX-512 IFMA masked".into());
    }
    for s in &sign_rates {
        let mut row = vec![
            s.key.label().into(),
            format!("{:?}", s.scheme),
            format!("{:.0}/s", s.ring),
            format!("{:.0}/s", s.openssl),
            format!("{:.2}x", s.openssl / s.ring.max(1e-9)),
        ];
        if masked {
            row.push(
                s.openssl_without_ifma
                    .map(|v| format!("{v:.0}/s ({:.2}x ring)", v / s.ring.max(1e-9)))
                    .unwrap_or_default(),
            );
        }
        rows.push(row);
    }
    print!("{}", table(&rows));
    // What share of a full handshake's server CPU is the signature: the per-core handshake rate
    // over the signing rate (both per second of one core).
    for s in &sign_rates {
        for version in [Version::Tls13, Version::Tls12] {
            let case = Case { key: s.key, version, handshake: Handshake::Full };
            let find = |name: &str| rates.iter().find(|r| r.server == name && r.case == case);
            let (Some(web), Some(reference)) = (find("camera-web"), find("nginx")) else { continue };
            let (web_us, nginx_us) = (1e6 / web.per_core().max(1e-9), 1e6 / reference.per_core().max(1e-9));
            let (web_sign_us, nginx_sign_us) = (1e6 / s.ring.max(1e-9), 1e6 / s.openssl.max(1e-9));
            println!(
                "   {}: server CPU per handshake camera-web {web_us:.0} us, of which signing {web_sign_us:.0} us ({:.0}%), the rest {:.0} us; \
                 nginx {nginx_us:.0} us, signing {nginx_sign_us:.0} us ({:.0}%), the rest {:.0} us",
                case.label(),
                100.0 * web_sign_us / web_us,
                web_us - web_sign_us,
                100.0 * nginx_sign_us / nginx_us,
                nginx_us - nginx_sign_us,
            );
        }
    }
    if masked {
        println!(
            "   This CPU has AVX-512 IFMA: OpenSSL 3 computes RSA-2048 with its AVX-512 IFMA code path, which ring does not have;\n   \
             the masked column is OpenSSL with that path hidden (OPENSSL_ia32cap), on the same mulx/adx Montgomery code as ring's."
        );
    }

    println!("\n4. Memory, VmRSS (VmHWM peak) from /proc/PID/status; nginx: its worker process");
    let cell = |m: procs::Memory| format!("{} ({})", fmt_bytes(m.rss), fmt_bytes(m.hwm));
    let mut rows = vec![[
        "",
        &format!("camera-web, shipped build ({})", size::HOST_SHIPPED_TARGET),
        "camera-web, host glibc build",
        "nginx worker",
    ]
    .map(String::from)
    .to_vec()];
    let row = |label: String, f: fn(&memory::Profile) -> procs::Memory| {
        vec![label, cell(f(&shipped_memory)), cell(f(&web_memory)), cell(f(&nginx_memory))]
    };
    rows.push(row("right after start".into(), |p| p.started));
    rows.push(row("after one request".into(), |p| p.after_one));
    rows.push(row(format!("{CONNECTIONS} connections open, each after a request"), |p| p.open));
    rows.push(row("after they closed".into(), |p| p.closed));
    rows.push(vec!["after the handshake runs".into(), "-".into(), cell(web_after_load), cell(nginx_after_load)]);
    print!("{}", table(&rows));
    let shipped_idle = shipped_memory.started.rss.max(shipped_memory.after_one.rss);
    let idle = web_memory.started.rss.max(web_memory.after_one.rss);
    let per_conn = web_memory.open.rss.saturating_sub(web_memory.after_one.rss) / CONNECTIONS as u64;
    let nginx_per_conn = nginx_memory.open.rss.saturating_sub(nginx_memory.after_one.rss) / CONNECTIONS as u64;
    println!("   per open connection: camera-web {}, nginx worker {}", fmt_bytes(per_conn), fmt_bytes(nginx_per_conn));
    let nginx_idle = nginx_memory.started.rss.max(nginx_memory.after_one.rss);
    budgets.push(Budget {
        name: format!("camera-web idle RSS, shipped build ({})", size::HOST_SHIPPED_TARGET),
        measured: format!("{} (nginx worker {})", fmt_bytes(shipped_idle), fmt_bytes(nginx_idle)),
        limit: format!("<= {}", fmt_bytes(IDLE_RSS_BUDGET)),
        verdict: if shipped_idle <= IDLE_RSS_BUDGET { Verdict::Pass } else { Verdict::Fail },
    });
    budgets.push(Budget {
        name: "camera-web idle RSS, host glibc build (not what ships)".into(),
        measured: format!("{} (nginx worker {})", fmt_bytes(idle), fmt_bytes(nginx_idle)),
        limit: "(reported)".into(),
        verdict: Verdict::Info,
    });
    budgets.push(Budget {
        name: format!("camera-web RSS, {CONNECTIONS} connections open"),
        measured: format!("{} (nginx worker {})", fmt_bytes(web_memory.open.rss), fmt_bytes(nginx_memory.open.rss)),
        limit: "bounded (reported)".into(),
        verdict: Verdict::Info,
    });

    // 5. Size.
    eprintln!("bench: sizes");
    let scratch = TempDir::new(&std::env::temp_dir(), "size")?;
    let host = size::measure(std::env::consts::ARCH, &release, "strip", scratch.path())?;
    let camera = match size::camera_build_missing() {
        Some(reason) => Err(reason),
        None if !options.camera_build => Err("--no-camera-build".to_owned()),
        None => {
            eprintln!("bench: building for {}", size::CAMERA_TARGET);
            size::build_camera()?;
            let dir = target_dir().join(size::CAMERA_TARGET).join("release");
            Ok(size::measure(size::CAMERA_TARGET, &dir, "aarch64-linux-gnu-strip", scratch.path())?)
        }
    };
    println!("\n5. Stripped size of the shipped binaries (release profile; copies run through strip again)");
    let mut rows =
        vec![["target", "cert-provisioner", "camera-web", "both, separate", "camera-https (ships: both in one)"]
            .map(String::from)
            .to_vec()];
    for sizes in std::iter::once(&host).chain(camera.as_ref().ok()) {
        let mut row = vec![sizes.target.clone()];
        row.extend(sizes.files.iter().filter(|(name, _)| *name != size::SHIPPED).map(|(_, s)| fmt_bytes(*s)));
        row.push(fmt_bytes(sizes.separate()));
        row.push(format!("{} ({} bytes)", fmt_bytes(sizes.shipped()), sizes.shipped()));
        rows.push(row);
    }
    print!("{}", table(&rows));
    budgets.push(match &camera {
        Ok(sizes) => Budget {
            name: format!("stripped size of what ships ({}), {}", size::SHIPPED, size::CAMERA_TARGET),
            measured: format!("{} ({} bytes)", fmt_bytes(sizes.shipped()), sizes.shipped()),
            limit: format!("<= {} bytes", task_support::SHIPPED_SIZE_BUDGET),
            verdict: if sizes.shipped() <= task_support::SHIPPED_SIZE_BUDGET { Verdict::Pass } else { Verdict::Fail },
        },
        Err(reason) => Budget {
            name: format!("stripped size of what ships ({}), {}", size::SHIPPED, size::CAMERA_TARGET),
            measured: format!("not built: {reason}; host {}", fmt_bytes(host.shipped())),
            limit: format!("<= {} bytes", task_support::SHIPPED_SIZE_BUDGET),
            verdict: Verdict::Skipped,
        },
    });

    // 6. Address change to new certificate served, in a network namespace.
    eprintln!("bench: address changes");
    let latency_dir = TempDir::new(&std::env::temp_dir(), "latency")?;
    let latency = latency::measure(&release.join("camera-web"), latency_dir.path())?;
    println!(
        "\n6. Address change to new certificate served (network namespace, veth; ip addr add/del, then TLS handshakes every\n   \
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

    ca_sections(&release, state_base.path(), pin, &mut budgets)?;
    enrollment_section(&mut budgets)?;
    dot1x_section(&release, &mut budgets)?;
    print_budgets(&budgets, started, options.check)
}

/// 10: 802.1X, settings to an open switch port, the camera next to wpa_supplicant alone.
fn fleet_section(release: &Path, cameras: usize, budgets: &mut Vec<Budget>) -> Result {
    eprintln!(
        "bench: a fleet against its CA, {cameras} cameras with the spread on and {cameras} with it off (17 minutes)"
    );
    let report = fleet::measure(&release.join("camera-web"), cameras)?;
    println!("\n11. A fleet against its CA, spread on and off side by side, in private network namespaces");
    print!("{}", report.text);
    for row in report.rows {
        let verdict = match row.verdict.as_str() {
            "pass" => Verdict::Pass,
            "fail" => Verdict::Fail,
            _ => Verdict::Info,
        };
        budgets.push(Budget { name: row.name, measured: row.measured, limit: row.limit, verdict });
    }
    Ok(())
}

fn dot1x_section(release: &Path, budgets: &mut Vec<Budget>) -> Result {
    eprintln!("bench: 802.1X, settings to port authorized ({DOT1X_ROUNDS} rounds, camera and wpa_supplicant alone)");
    let measured = dot1x::measure(&release.join("camera-web"), DOT1X_ROUNDS)?;
    println!(
        "\n10. 802.1X (EAP-TLS), to the switch port authorized, in a private network namespace: hostapd as a wired\n    \
         authenticator with its own EAP server in a namespace of its own (a fresh one per sample), a veth pair to the\n    \
         camera's eth0; the switch's stations polled every 20 ms (hostapd_cli all_sta). The camera: the release\n    \
         camera-web on a fresh state dir beside wpa_supplicant started idle as its init script does (-Dwired, -C, no -c);\n    \
         admin password and client certificate set before the clock; clock from PUT /api/v1/dot1x (enabled, interface,\n    \
         server_ca_pem, domain_match). The reference: wpa_supplicant alone with a hand-written configuration (same\n    \
         certificate, key and CA; ap_scan=0, eapol_version=1, eapol_flags=0); clock from its start"
    );
    let mut rows = vec![["", "n", "mean", "median", "p99", "min", "max"].map(String::from).to_vec()];
    rows.push(stats_row("camera: PUT /api/v1/dot1x to port authorized", &measured.camera.total));
    rows.push(stats_row("wpa_supplicant alone: start to port authorized", &measured.reference.total));
    print!("{}", table(&rows));
    let slower = ratio(measured.camera.total.median, measured.reference.total.median);
    println!("   camera / wpa_supplicant alone: {slower:.2}x the time (medians)");
    println!(
        "   Where the time goes: the first sighting of each step from the clock, median (min-max), in wpa_supplicant's\n   \
         debug output (read at each poll, so up to one poll late) and the switch's station flags"
    );
    let cell = |stats: Option<&Stats>| {
        stats.map_or_else(
            || "-".to_owned(),
            |s| format!("{} ({}-{})", fmt_duration(s.median), fmt_duration(s.min), fmt_duration(s.max)),
        )
    };
    let mut rows = vec![["step", "camera", "wpa_supplicant alone"].map(String::from).to_vec()];
    for step in dot1x::Step::ALL {
        rows.push(vec![step.label().into(), cell(measured.camera.step(step)), cell(measured.reference.step(step))]);
    }
    print!("{}", table(&rows));
    let wait = |side: &dot1x::Side| match (side.step(dot1x::Step::Connecting), side.step(dot1x::Step::EapolStart)) {
        (Some(connecting), Some(start)) => fmt_duration(start.median.saturating_sub(connecting.median)),
        _ => "-".to_owned(),
    };
    println!(
        "   CONNECTING to EAPOL-Start (medians): camera {}, wpa_supplicant alone {}; control commands camera-web sent\n   \
         in the timed span (first round): {}",
        wait(&measured.camera),
        wait(&measured.reference),
        measured.commands
    );
    budgets.push(Budget {
        name: "802.1X settings to port authorized (median), vs wpa_supplicant alone".into(),
        measured: format!(
            "{} vs {} ({slower:.2}x the time)",
            fmt_duration(measured.camera.total.median),
            fmt_duration(measured.reference.total.median)
        ),
        limit: "(reported)".into(),
        verdict: Verdict::Info,
    });
    Ok(())
}

/// 9: enrollment per protocol, the camera next to a reference client, same server, same run.
fn enrollment_section(budgets: &mut Vec<Budget>) -> Result {
    eprintln!("bench: enrollment per protocol (release test build, then {ENROLL_ROUNDS} rounds)");
    let rows = enrollment::run(ENROLL_ROUNDS)?;
    println!(
        "\n9. Enrollment, request to certificate served: the camera (camera-web, a new state dir each round: new account\n   \
         and key) and a reference client (same server, same run) in a private network namespace; Pebble validates over\n   \
         real http-01 (the camera asks for 2 addresses + testcam.local; Debian's lego 4.9 cannot ask for IP addresses, so\n   \
         it asks for as many DNS names); SCEP: micromdm's SCEP library with a challenge password"
    );
    let mut table_rows = vec![["", "n", "mean", "median", "p99", "min", "max"].map(String::from).to_vec()];
    for row in &rows {
        table_rows.push(stats_row(&format!("{}: {}", row.protocol, row.client), &row.stats));
    }
    print!("{}", table(&table_rows));
    let mut protocols: Vec<&str> = rows.iter().map(|r| r.protocol.as_str()).collect();
    protocols.dedup();
    for protocol in protocols {
        let of = |camera: bool| rows.iter().find(|r| r.protocol == protocol && (r.client == "camera") == camera);
        let (Some(camera), Some(reference)) = (of(true), of(false)) else { continue };
        budgets.push(Budget {
            name: format!("enrollment time, {protocol} (median), vs {}", reference.client),
            measured: format!(
                "{} vs {} ({:.2}x the reference's speed)",
                fmt_duration(camera.stats.median),
                fmt_duration(reference.stats.median),
                ratio(reference.stats.median, camera.stats.median)
            ),
            limit: "(reported)".into(),
            verdict: Verdict::Info,
        });
    }
    Ok(())
}

/// 7 and 8: what the two-tier CA costs: its creation at first boot, and the bytes its chain adds
/// to a full handshake.
fn ca_sections(release: &Path, base: &Path, pin: bool, budgets: &mut Vec<Budget>) -> Result {
    eprintln!("bench: first-boot CA creation");
    let dir = TempDir::new(base, "ca-creation")?;
    let counts = ca_creation::Counts { library: 100, openssl: 10, binary: 10 };
    let created = ca_creation::run(dir.path(), &release.join("cert-provisioner"), counts)?;
    println!(
        "\n7. First-boot CA creation, two tiers: two P-256 keys, the root self-signed, the issuing CA signed by the root\n   \
         (library: in memory only; openssl CLI: genpkey + req -x509, genpkey + req + x509 -req -CA, same extensions, keys\n   \
         written to files; first boot: the cert-provisioner binary on a fresh state dir: CA, its durable writes, mint, bundle)"
    );
    let mut rows = vec![["", "n", "mean", "median", "p99", "min", "max"].map(String::from).to_vec()];
    rows.push(stats_row("library in-process (CameraCa::generate)", &created.library));
    rows.push(stats_row("openssl CLI (5 commands)", &created.openssl));
    rows.push(stats_row("cert-provisioner binary, first boot end to end", &created.first_boot));
    print!("{}", table(&rows));
    let speedup = ratio(created.openssl.mean, created.library.mean);
    println!(
        "   openssl / library: {speedup:.1}x (mean), {:.1}x (median); openssl / first boot end to end: {:.1}x (mean)",
        ratio(created.openssl.median, created.library.median),
        ratio(created.openssl.mean, created.first_boot.mean),
    );
    budgets.push(Budget {
        name: "first-boot CA creation vs openssl CLI (library, mean)".into(),
        measured: format!("{speedup:.1}x faster ({})", fmt_duration(created.library.mean)),
        limit: "(reported)".into(),
        verdict: Verdict::Info,
    });

    eprintln!("bench: handshake bytes, two-tier and one-tier chains");
    let dir = TempDir::new(base, "chain-bytes")?;
    let chains = chain_bytes::run(&release.join("camera-web"), dir.path(), pin)?;
    println!(
        "\n8. Bytes camera-web sends in a full TLS 1.3 handshake (X25519, P-256 leaf; a rustls client that never resumes counts\n   \
         the bytes it reads from TCP until its handshake completes: ServerHello to Finished with record headers, session\n   \
         tickets not included; {} handshakes per chain). Certificate message: computed from the certificates sent",
        chain_bytes::HANDSHAKES
    );
    let mut rows =
        vec![["chain sent", "certificates (DER bytes)", "Certificate message", "first flight min / median / max"]
            .map(String::from)
            .to_vec()];
    for (label, flight) in
        [("two tiers: leaf + issuing CA", &chains.two_tier), ("one tier (older camera): leaf + CA", &chains.one_tier)]
    {
        let [min, median, max] = flight.first_flight;
        rows.push(vec![
            label.into(),
            flight.cert_sizes.iter().map(ToString::to_string).collect::<Vec<_>>().join(" + "),
            format!("{} B", flight.certificate_message),
            format!("{min} / {median} / {max} B"),
        ]);
    }
    print!("{}", table(&rows));
    let signed = |a: usize, b: usize| a as i64 - b as i64;
    let extra = signed(chains.two_tier.first_flight[1], chains.one_tier.first_flight[1]);
    let issuing_share = chains.two_tier.cert_sizes.get(1).map_or(0, |der| der + 5);
    println!(
        "   two tiers - one tier: {extra:+} B per handshake (medians), Certificate message {:+} B: both send two certificates (the\n   \
         root is never sent); against a leaf sent alone the issuing CA costs {issuing_share} B (its DER + 5 B of framing)",
        signed(chains.two_tier.certificate_message, chains.one_tier.certificate_message),
    );
    budgets.push(Budget {
        name: "TLS 1.3 first flight, two-tier vs one-tier chain (median)".into(),
        measured: format!("{extra:+} B ({} vs {} B)", chains.two_tier.first_flight[1], chains.one_tier.first_flight[1]),
        limit: "(reported)".into(),
        verdict: Verdict::Info,
    });
    Ok(())
}

fn print_budgets(budgets: &[Budget], started: Instant, check: bool) -> Result {
    println!("\nBudgets (design brief), each against a reference measured in this run");
    let mut rows = vec![["budget", "measured", "limit", "verdict"].map(String::from).to_vec()];
    for b in budgets {
        rows.push(vec![b.name.clone(), b.measured.clone(), b.limit.clone(), b.verdict.label().into()]);
    }
    print!("{}", table(&rows));
    let missed = budgets.iter().filter(|b| b.verdict == Verdict::Fail).count();
    println!("\nbench finished in {:.0} s; {missed} budget(s) missed", started.elapsed().as_secs_f64());
    if missed > 0 && check {
        return Err(format!("{missed} budget(s) missed"));
    }
    Ok(())
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
