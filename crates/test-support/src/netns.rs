//! Run the rest of a test inside a fresh, private network namespace.
//!
//! A test that needs real interfaces (a veth pair with private addresses, address changes, a server
//! bound to a non-loopback address) calls [`enter_private_netns`] first:
//!
//! ```no_run
//! use camera_test_support::netns::{enter_private_netns, ip, NetnsSetup};
//!
//! #[test]
//! fn serves_on_the_veth_address() {
//!     // Outside the namespace this re-runs this one test in a child process inside a new network
//!     // namespace, checks that it passed, and returns false; inside, it returns true.
//!     if !enter_private_netns(&NetnsSetup::default()) {
//!         return;
//!     }
//!     ip(&["addr", "add", "10.77.1.9/24", "dev", "cam0"]);
//!     // ... the body of the test, which sees only lo, cam0 and peer0 ...
//! }
//! ```
//!
//! How it works: outside, the current test binary is re-executed as
//! `unshare -rn <test binary> <test name> --exact --include-ignored --nocapture --test-threads=1`
//! with the environment variable [`INSIDE_ENV`] set to the test name. `unshare -r` creates a user
//! namespace in which the caller is root (which also works when the caller already is root, as on
//! CI), and `-n` a network namespace owned by it, so the test can create links and add addresses
//! without touching the host.
//! Inside, it runs the [`NetnsSetup`]'s `ip` commands once and returns true. The test's name comes
//! from its thread: libtest names each test's thread after the test, as it prints it.
//!
//! Only loopback and private addresses are used, and only inside namespaces created here.
//!
//! Requirements: `unshare` (util-linux) and `ip` (iproute2) on `PATH`, and either root or unprivileged
//! user namespaces enabled. The `veth` link type is used because `dummy` is not available everywhere
//! (the module is missing on some CI kernels).

use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::wait_for;

/// Set (to the test name) in the child process that runs inside the namespace. (The variables keep
/// the `TESTNS` name `cargo xtask cross` sets the runner under.)
pub const INSIDE_ENV: &str = "CAMERA_TESTNS_INSIDE";

/// A command (split on whitespace) to run the re-executed test binary with, for cross-compiled
/// tests under qemu-user without binfmt_misc, e.g. `qemu-arm -L /usr/arm-linux-gnueabihf`.
pub const RUNNER_ENV: &str = "CAMERA_TESTNS_RUNNER";

/// The camera-side end of the default veth pair.
pub const CAM_IF: &str = "cam0";
/// The other end of the default veth pair.
pub const PEER_IF: &str = "peer0";
/// The IPv4 address on [`CAM_IF`] in the default setup.
pub const CAM_IPV4: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 77, 0, 2);
/// The IPv6 (ULA) address on [`CAM_IF`] in the default setup.
pub const CAM_IPV6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);

/// What to create in the new namespace: a list of `ip` commands, run in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetnsSetup {
    /// Each entry is the argument list of one `ip` invocation (without the leading `ip`).
    pub ip_commands: Vec<Vec<String>>,
    /// After the commands, wait until IPv6 has settled ([`wait_for_ipv6_settled`]): the kernel adds
    /// the fe80:: link-local addresses asynchronously after a link comes up, and duplicate address
    /// detection then keeps them tentative for a second or two, with a notification at each step.
    pub wait_for_dad: bool,
}

impl Default for NetnsSetup {
    /// `lo` up; veth pair `cam0`/`peer0`, both up; `cam0` has 10.77.0.2/24 and fd77::2/64 (`nodad`, so
    /// usable at once). The kernel also gives both veth ends an fe80:: link-local address, which stays
    /// tentative for a second or two.
    fn default() -> Self {
        NetnsSetup::loopback_only()
            .ip(&["link", "add", CAM_IF, "type", "veth", "peer", "name", PEER_IF])
            .ip(&["addr", "add", "10.77.0.2/24", "dev", CAM_IF])
            .ip(&["-6", "addr", "add", "fd77::2/64", "dev", CAM_IF, "nodad"])
            .ip(&["link", "set", CAM_IF, "up"])
            .ip(&["link", "set", PEER_IF, "up"])
    }
}

impl NetnsSetup {
    /// Only `lo`, brought up (127.0.0.1 and ::1).
    pub fn loopback_only() -> Self {
        NetnsSetup { ip_commands: Vec::new(), wait_for_dad: false }.ip(&["link", "set", "lo", "up"])
    }

    /// Adds one `ip` command (arguments without the leading `ip`).
    #[must_use]
    pub fn ip(mut self, args: &[&str]) -> Self {
        self.ip_commands.push(args.iter().map(|a| (*a).to_owned()).collect());
        self
    }

    /// Sets [`NetnsSetup::wait_for_dad`].
    #[must_use]
    pub fn wait_for_dad(mut self, wait: bool) -> Self {
        self.wait_for_dad = wait;
        self
    }
}

/// True when this process is the child running inside a namespace made by [`in_private_netns`].
pub fn inside_private_netns() -> bool {
    std::env::var_os(INSIDE_ENV).is_some()
}

static SETUP_DONE: AtomicBool = AtomicBool::new(false);

/// Runs the rest of the calling test inside a fresh network namespace: [`in_private_netns`] for the
/// test this thread runs (libtest names a test's thread after the test, `module::function` inside a
/// module), so a test need not spell its own name.
///
/// # Panics
/// Off a test's thread (the thread has no name, or is `main`), and as [`in_private_netns`] does.
pub fn enter_private_netns(setup: &NetnsSetup) -> bool {
    let thread = std::thread::current();
    let name = match thread.name() {
        Some(name) if name != "main" => name,
        _ => panic!("netns: enter_private_netns must be called on the test's own thread (libtest names it)"),
    };
    in_private_netns(name, setup)
}

/// Runs the rest of a test inside a fresh network namespace; the test is named, so a test can also
/// run another one this way ([`enter_private_netns`] runs the caller).
///
/// `test_name` is the test's name as libtest prints it (the function name for a test at the root of
/// an integration test file, `module::function` inside a module).
///
/// - Outside a namespace: re-runs this test binary with only that test, inside a new user + network
///   namespace, prints the child's output, panics if the child failed (or ran no test, which means
///   `test_name` is wrong), and returns false: the caller must return at once.
/// - Inside (the child): applies `setup` (once per process) and returns true: the caller runs the body.
///
/// # Panics
/// When the namespace cannot be created, a setup command fails, or the test failed inside.
pub fn in_private_netns(test_name: &str, setup: &NetnsSetup) -> bool {
    if inside_private_netns() {
        if !SETUP_DONE.swap(true, Ordering::SeqCst) {
            for args in &setup.ip_commands {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                ip(&args);
            }
            if setup.wait_for_dad {
                assert!(
                    wait_for_ipv6_settled(Duration::from_secs(10)),
                    "netns: IPv6 not settled after 10 s:\n{}",
                    try_ip(&["-6", "addr", "show"]).unwrap_or_default()
                );
            }
        }
        return true;
    }
    run_in_child(test_name);
    false
}

fn run_in_child(test_name: &str) {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => panic!("netns: cannot find the current test binary: {e}"),
    };
    let runner = runner();
    let output = Command::new("unshare")
        .arg("-rn")
        .arg("--")
        .args(&runner)
        .arg(&exe)
        // --include-ignored: the parent runs this test, so the child must run it even when it is
        // #[ignore]d (run on request with `cargo test -- --ignored`).
        .args([test_name, "--exact", "--include-ignored", "--nocapture", "--test-threads=1"])
        .env(INSIDE_ENV, test_name)
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) => panic!("netns: cannot run `unshare` (util-linux) to make a network namespace: {e}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Forward through print! so that libtest's capture shows it for failing tests.
    println!("---- {test_name} inside a private network namespace: stdout ----\n{stdout}");
    if !stderr.trim().is_empty() {
        println!("---- {test_name} inside a private network namespace: stderr ----\n{stderr}");
    }
    if !output.status.success() {
        if stderr.contains("unshare failed") || stderr.starts_with("unshare:") {
            panic!(
                "netns: could not create a user + network namespace with `unshare -rn` \
                 (run as root, or enable unprivileged user namespaces): {}",
                stderr.trim()
            );
        }
        if runner.is_empty() && (stderr.contains("Exec format error") || stderr.contains("Syntax error")) {
            panic!(
                "netns: the test binary cannot be run directly (a cross-compiled binary without \
                 binfmt_misc?): set {RUNNER_ENV}, e.g. \"qemu-arm -L /usr/arm-linux-gnueabihf\""
            );
        }
        panic!("netns: test {test_name} failed inside its network namespace ({})", output.status);
    }
    if !stdout.contains(" 1 passed;") {
        panic!(
            "netns: the child ran no test named {test_name:?} (pass the name as libtest prints it, \
             e.g. `module::function` for a test inside a module)"
        );
    }
}

/// The command that runs a test binary of the target architecture: [`RUNNER_ENV`] when set, else the
/// `CARGO_TARGET_<TRIPLE>_RUNNER` variable for this architecture when exactly one is set (as `cross`
/// does), else nothing (the binary runs directly, natively or through binfmt_misc).
fn runner() -> Vec<String> {
    let split = |v: &str| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    if let Ok(v) = std::env::var(RUNNER_ENV) {
        return split(&v);
    }
    let arch = std::env::consts::ARCH.to_ascii_uppercase();
    let candidates: Vec<String> = std::env::vars()
        .filter(|(k, _)| {
            k.strip_prefix("CARGO_TARGET_")
                .and_then(|rest| rest.strip_suffix("_RUNNER"))
                .is_some_and(|triple| triple.starts_with(&arch))
        })
        .map(|(_, v)| v)
        .collect();
    match candidates.as_slice() {
        [one] => split(one),
        _ => Vec::new(),
    }
}

/// Runs `ip <args>` in the current namespace and returns its standard output.
///
/// # Panics
/// When `ip` cannot be run or exits non-zero (the message names the command and its stderr).
/// Refuses to run outside a namespace made by [`in_private_netns`], so a mistaken test never
/// changes the host's interfaces.
pub fn ip(args: &[&str]) -> String {
    match try_ip(args) {
        Ok(out) => out,
        Err(e) => panic!("{e}"),
    }
}

/// Like [`ip`], but returns the failure as a message instead of panicking.
///
/// # Errors
/// When `ip` cannot be run, exits non-zero, or this process is not inside a private namespace.
pub fn try_ip(args: &[&str]) -> Result<String, String> {
    if !inside_private_netns() {
        return Err(format!("netns: refusing to run `ip {}` outside a private network namespace", args.join(" ")));
    }
    let output: Output =
        Command::new("ip").args(args).output().map_err(|e| format!("netns: cannot run `ip` (iproute2): {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "netns: `ip {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Writes a sysctl of the current network namespace, e.g.
/// `sysctl("net/ipv6/conf/cam0/dad_transmits", "3")`.
///
/// # Panics
/// Outside a private namespace, or when the write fails.
pub fn sysctl(path: &str, value: &str) {
    assert!(inside_private_netns(), "netns: refusing to write sysctl {path} outside a private network namespace");
    let full = format!("/proc/sys/{path}");
    if let Err(e) = std::fs::write(&full, value) {
        panic!("netns: cannot write {value:?} to {full}: {e}");
    }
}

/// Waits until `ip -6 addr show tentative` lists nothing (duplicate address detection is over).
/// Returns whether that happened within `timeout`.
pub fn wait_for_no_tentative(timeout: Duration) -> bool {
    wait_for(timeout, || {
        try_ip(&["-6", "addr", "show", "tentative"]).is_ok_and(|out| out.trim().is_empty()).then_some(())
    })
    .is_some()
}

/// Waits until every non-loopback link that is up with carrier (`LOWER_UP`) has its fe80::
/// link-local address and no IPv6 address is tentative. Returns whether that happened within
/// `timeout`. (A link with `addrgenmode none` never gets a link-local address: this then times out.)
///
/// The kernel adds link-local addresses from its link-watch work, up to a second after
/// `ip link set ... up` returns, so right after the setup they may not exist yet.
pub fn wait_for_ipv6_settled(timeout: Duration) -> bool {
    let settled = || {
        let Ok(links) = try_ip(&["-o", "link", "show", "up"]) else {
            return false;
        };
        let all_have_link_local = links
            .lines()
            .filter(|l| l.contains("LOWER_UP") && !l.contains("LOOPBACK"))
            .filter_map(|l| l.split(':').nth(1))
            .map(|name| name.trim().split('@').next().unwrap_or_default().to_owned())
            .all(|name| {
                try_ip(&["-o", "-6", "addr", "show", "dev", &name, "scope", "link"])
                    .is_ok_and(|out| !out.trim().is_empty())
            });
        all_have_link_local && try_ip(&["-6", "addr", "show", "tentative"]).is_ok_and(|out| out.trim().is_empty())
    };
    wait_for(timeout, || settled().then_some(())).is_some()
}

/// A network namespace of its own inside the test's (the test must be in a private one), held by
/// an `unshare -n sleep` that dies with the thread that made it; commands run in it through
/// `nsenter -t <pid> -n`. Links reach it with `ip link ... netns <pid>`.
#[derive(Debug)]
pub struct Namespace {
    holder: std::process::Child,
}

impl Default for Namespace {
    fn default() -> Self {
        Self::new()
    }
}

impl Namespace {
    /// # Panics
    /// When `unshare` fails or the namespace does not appear within 5 s.
    pub fn new() -> Self {
        let holder = crate::spawn_dying(Command::new("unshare").args(["-n", "sleep", "infinity"]), None);
        let pid = holder.id();
        let own = std::fs::read_link("/proc/self/ns/net").expect("this namespace");
        crate::wait_until("a new network namespace exists", Duration::from_secs(5), || {
            std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|ns| ns != own)
        });
        Self { holder }
    }

    /// The holder's process id, which names the namespace.
    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// `program` to be run inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("nsenter");
        command.args(["-t", &self.pid().to_string(), "-n"]).arg(program);
        command
    }

    /// Runs `args` inside the namespace; panics with its output when it fails.
    pub fn run(&self, args: &[&str]) -> Output {
        let (program, rest) = args.split_first().expect("a command");
        crate::run(self.command(program).args(rest))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
