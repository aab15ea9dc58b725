//! Child processes (always stopped, even on failure), temporary directories, free ports, and what
//! `/proc` says about a process: memory and CPU time.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use task_support::Result;

/// A directory removed with everything in it when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// `base/camera-bench-<pid>-<name>`, fresh.
    pub fn new(base: &Path, name: &str) -> Result<Self> {
        let dir = base.join(format!("camera-bench-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Self(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Every process a [`ChildGuard`] owns, for the panic hook: release builds abort on panic, so
/// destructors do not run then.
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn live(update: impl FnOnce(&mut Vec<u32>)) {
    if let Ok(mut pids) = LIVE.lock() {
        update(&mut pids);
    }
}

/// Makes a panic kill the servers before the process aborts.
pub fn kill_children_on_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Ok(pids) = LIVE.try_lock() {
            for &pid in pids.iter() {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
        previous(info);
    }));
}

/// A running server, stopped (TERM, then KILL) when dropped, on success and on failure alike.
/// Should this process die without unwinding, the child gets SIGKILL from the kernel (parent
/// death signal) and the panic hook kills what it started too.
#[derive(Debug)]
pub struct ChildGuard {
    name: &'static str,
    child: Child,
    log: PathBuf,
    /// Processes the child started (nginx's worker), killed too if they outlive it.
    descendants: Vec<u32>,
}

impl ChildGuard {
    /// Starts `cmd` with output to `log`. The child also gets SIGKILL if this process dies without
    /// running destructors (release builds abort on panic).
    pub fn spawn(name: &'static str, mut cmd: Command, log: &Path) -> Result<Self> {
        let out = fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = camera_test_support::dies_with_spawner(&mut cmd)
            .spawn()
            .map_err(|e| format!("cannot start {name} ({cmd:?}): {e}"))?;
        live(|pids| pids.push(child.id()));
        Ok(Self { name, child, log: log.to_owned(), descendants: Vec::new() })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Also kill `pid`, a process the child started, when stopping.
    pub fn adopt(&mut self, pid: u32) {
        self.descendants.push(pid);
        live(|pids| pids.push(pid));
    }

    /// The last lines of the child's output, for error messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(8)..].join("\n  ")
    }

    /// Waits until `addr` accepts TCP connections; fails if the child exits first.
    pub fn wait_listening(&mut self, addr: SocketAddr, timeout: Duration) -> Result {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}) before listening on {addr}:\n  {}",
                    self.name,
                    self.log_tail()
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} is not listening on {addr} after {timeout:?}:\n  {}",
                    self.name,
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(pid, Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(3);
            while let Ok(None) = self.child.try_wait() {
                if Instant::now() > deadline {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        for &pid in &self.descendants {
            // A worker whose master was killed; it is not our child, so only signal it.
            if Path::new(&format!("/proc/{pid}")).exists() {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
        let own = self.child.id();
        live(|pids| pids.retain(|p| *p != own && !self.descendants.contains(p)));
    }
}

/// A loopback address with a port nobody listens on right now.
pub fn free_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind a loopback port: {e}"))?;
    listener.local_addr().map_err(|e| format!("cannot read the bound port: {e}"))
}

/// The process's direct children (from `/proc/PID/task/*/children`).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks
        .flatten()
        .filter_map(|task| fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| text.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
        .collect()
}

/// Resident memory of a process, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Resident set size now, bytes.
    pub rss: u64,
    /// Peak resident set size so far, bytes.
    pub hwm: u64,
}

pub fn memory(pid: u32) -> Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let text = fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let field = |name: &str| -> Result<u64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
            .ok_or_else(|| format!("{path} has no {name}"))
    };
    Ok(Memory { rss: field("VmRSS:")?, hwm: field("VmHWM:")? })
}

/// CPU time (user + system) a process has used, all its threads together. `pid` 0 means this process.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let path = if pid == 0 { "/proc/self/stat".to_owned() } else { format!("/proc/{pid}/stat") };
    let text = fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    // Fields after the command name (which may hold spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let rest = text.rsplit_once(')').map(|(_, rest)| rest).ok_or_else(|| format!("{path}: unexpected format"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields.get(i).and_then(|f| f.parse::<u64>().ok()).ok_or_else(|| format!("{path}: unexpected format"))
    };
    let total = ticks(11)? + ticks(12)?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().filter(|&hz| hz > 0).unwrap_or(100)
        as u64;
    Ok(Duration::from_nanos(total * 1_000_000_000 / hz))
}

/// Jiffies one core spent since boot, from `/proc/stat`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoreTimes {
    /// Not idle: processes, interrupts, softirq, steal.
    pub busy: u64,
    /// Interrupts and softirq: loopback packet processing belongs to no process.
    pub irq: u64,
    pub total: u64,
}

/// [`CoreTimes`] of every core.
pub fn core_times() -> Result<Vec<CoreTimes>> {
    let text = fs::read_to_string("/proc/stat").map_err(|e| format!("cannot read /proc/stat: {e}"))?;
    Ok(text
        .lines()
        .filter(|line| line.starts_with("cpu") && line.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|line| {
            let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
            // user nice system idle iowait irq softirq steal (guest time is inside user).
            let field = |i: usize| v.get(i).copied().unwrap_or(0);
            let idle = field(3) + field(4);
            let irq = field(5) + field(6);
            let busy = field(0) + field(1) + field(2) + irq + field(7);
            CoreTimes { busy, irq, total: busy + idle }
        })
        .collect())
}

/// How one core was used between two [`core_times`] snapshots, as shares of its time.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoreUse {
    pub busy: f64,
    pub irq: f64,
}

pub fn core_use(before: &[CoreTimes], after: &[CoreTimes], core: usize) -> CoreUse {
    match (before.get(core), after.get(core)) {
        (Some(b), Some(a)) if a.total > b.total => {
            let total = (a.total - b.total) as f64;
            CoreUse { busy: (a.busy - b.busy) as f64 / total, irq: (a.irq - b.irq) as f64 / total }
        }
        _ => CoreUse::default(),
    }
}

/// Runs `cmd` to completion; fails with its output if it fails.
pub fn run_quiet(cmd: &mut Command) -> Result {
    let out = cmd.output().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    }
}

/// Runs this bench binary again as `bench TASK ARGS` inside a new user + network namespace
/// (`unshare -rn`), with `camera_test_support::netns`'s marker variable set as its own test
/// re-entry does (its fixtures and `ip` refuse to run without it); returns what it printed.
/// `what` names the measurement in the error when it fails.
pub fn reenter_in_netns(task: &str, args: &[&std::ffi::OsStr], what: &str) -> Result<String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the bench binary: {e}"))?;
    let out = Command::new("unshare")
        .args(["-rn", "--"])
        .arg(&exe)
        .arg(task)
        .args(args)
        .env(camera_test_support::netns::INSIDE_ENV, task)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run unshare (util-linux): {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "{what} in a network namespace failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            stdout.trim()
        ));
    }
    Ok(stdout)
}

/// Inside a namespace [`reenter_in_netns`] made: checks that nothing but `lo` exists yet (never
/// the host's interfaces) and brings `lo` up.
pub fn fresh_netns(task: &str) -> Result {
    let links = camera_test_support::netns::try_ip(&["-o", "link", "show"])?;
    if links.lines().any(|l| !l.contains(": lo:")) {
        return Err(format!("{task} runs only inside the network namespace cargo xtask bench makes"));
    }
    camera_test_support::netns::try_ip(&["link", "set", "lo", "up"])?;
    Ok(())
}
