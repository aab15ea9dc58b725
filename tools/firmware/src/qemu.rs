//! Booting an image in QEMU: interactively (`cargo xtask qemu`), or headless for tests, with the
//! serial console on a Unix socket so the test can read the console and type into the guest's
//! shell (the board's debug UART; no network service is added to the guest for the test).
//!
//! The network is QEMU's user networking with `restrict=on` (the guest reaches nothing) and
//! host forwards bound to 127.0.0.1 only.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::image::Image;
use task_support::Result;

/// How long a boot may take to serve HTTPS before it counts as failed.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// The QEMU command line for `image`, without the serial console.
fn qemu_command(image: &Image, disk: &Path, forwards: &[(u16, u16)]) -> Command {
    let b = &image.board;
    let mut cmd = Command::new(&b.qemu);
    let hostfwd: String =
        forwards.iter().map(|(host, guest)| format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}")).collect();
    cmd.args(["-M", &b.qemu_machine, "-cpu", &b.qemu_cpu, "-m", &b.qemu_memory_mib.to_string()])
        .arg("-kernel")
        .arg(&image.kernel)
        .arg("-initrd")
        .arg(&image.initrd)
        .args(["-append", &format!("console={} quiet panic=-1", b.console)])
        .args(["-no-reboot", "-display", "none", "-monitor", "none"])
        .args(["-netdev", &format!("user,id=n0,restrict=on{hostfwd}"), "-device", "virtio-net-pci,netdev=n0,romfile="])
        .args(["-device", "virtio-rng-pci"])
        .arg("-drive")
        .arg(format!("file={},if=none,id=d0,format=raw", disk.display()))
        .args(["-device", "virtio-blk-pci,drive=d0"]);
    cmd
}

/// A free TCP port on 127.0.0.1 (QEMU exits at once if a forward's port is taken).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| format!("cannot find a free port: {e}"))
}

/// `cargo xtask qemu`: the console on this terminal, HTTPS on 127.0.0.1:`https_port`.
pub fn interactive(image: &Image, https_port: u16, http_port: u16) -> Result {
    for port in [https_port, http_port] {
        TcpListener::bind(("127.0.0.1", port))
            .map_err(|e| format!("127.0.0.1:{port} is not free ({e}): pick others with --port N --http-port N"))?;
    }
    let mut cmd = qemu_command(image, &image.disk, &[(https_port, 443), (http_port, 80)]);
    cmd.args(["-serial", "mon:stdio"]);
    println!(
        "Booting {board} ({kernel}); the console is this terminal (a root shell once booted; Ctrl-A X quits QEMU).\n\
         The camera UI:  https://127.0.0.1:{https_port}/   (plain HTTP: http://127.0.0.1:{http_port}/)\n\
         Its CA:         curl -k https://127.0.0.1:{https_port}/cacert.crt -o cacert.crt\n\
         Check it names the guest: curl --cacert cacert.crt --connect-to {ip}:443:127.0.0.1:{https_port} https://{ip}/api/v1/certificate\n\
         State disk (kept across boots): {disk}\n",
        board = image.board.name,
        kernel = std::fs::read_to_string(image.dir.join("kernel-release")).unwrap_or_default().trim(),
        ip = image.board.ip(),
        disk = image.disk.display(),
    );
    let status = cmd.status().map_err(|e| format!("cannot start {}: {e}", image.board.qemu))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} exited with {status}", image.board.qemu))
    }
}

/// A headless guest. Dropping it kills QEMU (on every exit path of a test).
#[derive(Debug)]
pub struct Guest {
    pub name: String,
    child: Child,
    console: Arc<Mutex<Vec<u8>>>,
    input: UnixStream,
    socket: PathBuf,
    stderr_path: PathBuf,
    pub https_port: u16,
    pub started: Instant,
    commands: u32,
}

impl Guest {
    /// Boots `image` with `disk` as the state disk; the console is copied to `log`.
    pub fn boot(image: &Image, disk: &Path, log: &Path) -> Result<Self> {
        let https_port = free_port()?;
        let socket = std::env::temp_dir().join(format!("xtask-qemu-{}-{https_port}.sock", std::process::id()));
        let _ = std::fs::remove_file(&socket);
        let mut cmd = qemu_command(image, disk, &[(https_port, 443)]);
        // wait=on: QEMU starts the guest only once we are connected, so no output is lost.
        cmd.args([
            "-chardev",
            &format!("socket,id=con,path={},server=on,wait=on", socket.display()),
            "-serial",
            "chardev:con",
        ]);
        // QEMU's own messages (an "info: waiting for connection" line, errors) go next to the log.
        let stderr_path = log.with_extension("qemu-stderr");
        let stderr =
            std::fs::File::create(&stderr_path).map_err(|e| format!("cannot create {}: {e}", stderr_path.display()))?;
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr);
        let started = Instant::now();
        let child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", image.board.qemu))?;
        let mut guest = Self {
            name: image.board.name.clone(),
            child,
            console: Arc::new(Mutex::new(Vec::new())),
            input: UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?.0,
            socket,
            stderr_path: stderr_path.clone(),
            https_port,
            started,
            commands: 0,
        };
        let stream = loop {
            match UnixStream::connect(&guest.socket) {
                Ok(s) => break s,
                Err(e) => {
                    if let Some(status) = guest.child.try_wait().map_err(|e| format!("qemu: {e}"))? {
                        let why = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                        return Err(format!("{} exited at start ({status}): {}", image.board.qemu, why.trim()));
                    }
                    if started.elapsed() > Duration::from_secs(10) {
                        return Err(format!("cannot connect to QEMU's console socket: {e}"));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        };
        guest.input = stream.try_clone().map_err(|e| format!("console socket: {e}"))?;
        let console = Arc::clone(&guest.console);
        let mut log_file = std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        std::thread::spawn(move || {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let _ = log_file.write_all(&buf[..n]);
                if let Ok(mut c) = console.lock() {
                    c.extend_from_slice(&buf[..n]);
                }
            }
        });
        Ok(guest)
    }

    /// Everything the guest printed on its console so far.
    pub fn console(&self) -> String {
        self.console.lock().map(|c| String::from_utf8_lossy(&c).into_owned()).unwrap_or_default()
    }

    /// The guest's console and QEMU's own messages, for a failure report.
    pub fn failure_report(&self) -> String {
        let qemu = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let qemu: Vec<&str> = qemu.lines().filter(|l| !l.contains("QEMU waiting for connection")).collect();
        format!(
            "--- {} console ---\n{}\n--- end of console ---{}",
            self.name,
            self.console(),
            if qemu.is_empty() { String::new() } else { format!("\nQEMU said:\n{}", qemu.join("\n")) }
        )
    }

    fn console_len(&self) -> usize {
        self.console.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Whether QEMU is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Polls `https://127.0.0.1:PORT/cacert.crt` until it answers; the time since launch.
    ///
    /// A request sent before the guest's network is up hangs (QEMU accepts on the host side and
    /// waits for the guest), so a new attempt starts every 100 ms while earlier ones are pending:
    /// the figure is then within ~100 ms of the first moment the server could answer.
    pub fn wait_https(&mut self) -> Result<Duration> {
        let url = format!("https://127.0.0.1:{}/cacert.crt", self.https_port);
        let mut attempts: Vec<Child> = Vec::new();
        let result = loop {
            if attempts.len() < 30 {
                let attempt = Command::new("curl")
                    .args(["-k", "-s", "-o", "/dev/null", "--max-time", "3", "--fail", &url])
                    .stdin(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .map_err(|e| format!("cannot run curl: {e}"))?;
                attempts.push(attempt);
            }
            let mut answered = false;
            attempts.retain_mut(|a| match a.try_wait() {
                Ok(Some(status)) => {
                    answered |= status.success();
                    false
                }
                Ok(None) => true,
                Err(_) => false,
            });
            if answered {
                break Ok(self.started.elapsed());
            }
            if !self.running() {
                break Err(format!("{}: QEMU exited before HTTPS answered", self.name));
            }
            if self.started.elapsed() > BOOT_TIMEOUT {
                break Err(format!("{}: no HTTPS answer within {} s of launch", self.name, BOOT_TIMEOUT.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        for mut a in attempts {
            let _ = a.kill();
            let _ = a.wait();
        }
        result
    }

    fn type_line(&mut self, line: &str) -> Result {
        self.input
            .write_all(format!("{line}\n").as_bytes())
            .map_err(|e| format!("{}: cannot write to the console: {e}", self.name))
    }

    /// Waits until the console shell answers (it starts once rcS is done).
    pub fn wait_shell(&mut self, timeout: Duration) -> Result {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let from = self.console_len();
            // The echoed input reads `"@@""ready"`; only the shell's output reads `@@ready`.
            self.type_line("echo \"@@\"\"ready\"")?;
            let until = Instant::now() + Duration::from_secs(1);
            while Instant::now() < until {
                if self.console_since(from).contains("@@ready") {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Err(format!("{}: the console shell did not answer within {} s", self.name, timeout.as_secs()))
    }

    fn console_since(&self, from: usize) -> String {
        self.console
            .lock()
            .map(|c| String::from_utf8_lossy(c.get(from..).unwrap_or_default()).into_owned())
            .unwrap_or_default()
    }

    /// Runs a shell command in the guest (on its console); its output and exit status.
    pub fn sh(&mut self, command: &str, timeout: Duration) -> Result<(String, i32)> {
        self.commands += 1;
        let n = self.commands;
        let from = self.console_len();
        self.type_line(&format!("{command}; echo \"@@\"\"end {n} $?\""))?;
        let marker = format!("@@end {n} ");
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.console_since(from);
            if let Some(at) = text.find(&marker) {
                let status =
                    text[at + marker.len()..].split_whitespace().next().and_then(|s| s.parse().ok()).unwrap_or(-1);
                // Drop the echoed command line; keep what it printed.
                let body = text[..at].split_once('\n').map(|(_, rest)| rest).unwrap_or_default();
                return Ok((body.replace('\r', ""), status));
            }
            if Instant::now() > deadline {
                return Err(format!("{}: `{command}` did not finish within {} s", self.name, timeout.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `poweroff` in the guest: the services stop (rcK), the disk is unmounted, QEMU exits.
    pub fn poweroff(&mut self, timeout: Duration) -> Result {
        self.type_line("poweroff")?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if !self.running() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("{}: did not power off within {} s", self.name, timeout.as_secs()))
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// `cargo xtask qemu --boot-time N`: N headless boots (each on a fresh copy of the state disk,
/// so every boot is a first boot that creates the CA), boot-to-first-HTTPS for each, the median.
pub fn measure_boot(image: &Image, n: usize) -> Result {
    let work = image.dir.join("boot-time");
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let mut times = Vec::new();
    for i in 1..=n {
        let disk = work.join("state.ext4");
        super::image::make_state_disk(&disk, image.board.state_size_mib)?;
        let log = work.join(format!("console-{i}.log"));
        let mut guest = Guest::boot(image, &disk, &log)?;
        match guest.wait_https() {
            Ok(t) => {
                println!("{} boot {i}: first HTTPS answer {:.2} s after launch", image.board.name, t.as_secs_f64());
                times.push(t);
            }
            Err(e) => {
                eprintln!("{}\n(console kept in {})", guest.failure_report(), log.display());
                return Err(e);
            }
        }
    }
    times.sort();
    let median = times[times.len() / 2];
    println!("{}: median boot-to-HTTPS {:.2} s over {n} boot(s)", image.board.name, median.as_secs_f64());
    Ok(())
}
