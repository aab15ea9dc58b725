//! `cargo xtask system-test`: the firmware's whole story under full-system QEMU, checked from the
//! host through the forwarded HTTPS port with curl and the openssl CLI:
//!
//! aarch64, first boot on a fresh state disk:
//! 1. rcS ran S30camera-state, then S45cert-provisioner (which succeeded), then S60camera-web;
//! 2. the guest's kernel (`ip addr`, over netlink) has 10.0.2.15 on eth0, and the served
//!    certificate names it and chains to the `cacert.crt` downloaded from the guest, checked by
//!    curl for the name 10.0.2.15 while connecting to 127.0.0.1 (`--connect-to`);
//! 3. an installer's certificate for IP:10.0.2.15 (made here with openssl) uploaded through the
//!    API is served;
//!
//! then `poweroff` (rcK stops camera-web and unmounts the disk) and a second boot on the same disk:
//! 4. the uploaded certificate is still served and the camera's CA is unchanged;
//! 5. after DELETE (restore) the device certificate is back;
//! 6. an address added in the guest (typed on its console) is in the served certificate within
//!    seconds, with the same camera-web process.
//!
//! armv7: boots and serves a certificate that verifies against its `cacert.crt`.
//!
//! Every boot must serve HTTPS within 60 s; QEMU is killed on every exit path; on a failure the
//! guest console is printed. The consoles are kept in `target/firmware/system-test/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::image::{self, Image};
use super::qemu::Guest;
use super::Board;
use task_support::{target_dir, Result};

/// Guest shell: the pid of the server process under the `camera-web --respawn` supervisor
/// (whose pid is in the pidfile). BusyBox here has no pgrep; field 4 of /proc/PID/stat is the ppid.
const SERVER_PID: &str = "sup=$(cat /var/run/camera-web.pid); for p in /proc/[0-9]*; do [ \"$(cut -d' ' -f4 $p/stat 2>/dev/null)\" = \"$sup\" ] && echo ${p#/proc/}; done";

const PASSWORD: &str = "system-test-Passw0rd!";
const ADDED_ADDRESS: &str = "10.0.2.100";

pub fn run(build: bool, armv7: bool) -> Result {
    let started = Instant::now();
    let work = target_dir().join("firmware/system-test");
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| format!("cannot clear {}: {e}", work.display()))?;
    }
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let get_image = |name: &str| -> Result<Image> {
        // Assembling an image from cached packages takes seconds; `build` is the cargo build.
        image::build(&Board::load(name)?, build)
    };
    let a64 = get_image("qemu-aarch64")?;
    let arm = if armv7 { Some(get_image("qemu-armv7")?) } else { None };
    let built = started.elapsed();

    let mut t = Test { work: work.clone(), ip: a64.board.ip().to_owned(), times: Vec::new() };
    t.aarch64(&a64)?;
    if let Some(arm) = &arm {
        t.ip = arm.board.ip().to_owned();
        t.armv7(arm)?;
    }
    println!("\nsystem-test: all checks passed");
    for (what, time) in &t.times {
        println!("  {what:<48} {:>6.2} s", time.as_secs_f64());
    }
    println!("  {:<48} {:>6.2} s", "images (build or reuse)", built.as_secs_f64());
    println!("  {:<48} {:>6.2} s", "whole system test", started.elapsed().as_secs_f64());
    Ok(())
}

struct Test {
    work: PathBuf,
    ip: String,
    times: Vec<(String, Duration)>,
}

/// Runs `checks` on a booted guest; on failure prints the guest's console.
fn with_console<T>(guest: &mut Guest, log: &Path, checks: impl FnOnce(&mut Guest) -> Result<T>) -> Result<T> {
    checks(guest).inspect_err(|_| eprintln!("\n{}\n(console kept in {})", guest.failure_report(), log.display()))
}

fn step(what: &str) {
    println!("system-test: {what}");
}

impl Test {
    fn path(&self, name: &str) -> PathBuf {
        self.work.join(name)
    }

    fn aarch64(&mut self, image: &Image) -> Result {
        let disk = self.path("aarch64-state.ext4");
        image::make_state_disk(&disk, image.board.state_size_mib)?;
        let installer = self.installer_certificate()?;

        // First boot.
        let log = self.path("console-aarch64-boot1.log");
        step(&format!("booting {} (first boot, fresh state disk)", image.board.name));
        let mut guest = Guest::boot(image, &disk, &log)?;
        let ca = with_console(&mut guest, &log, |g| {
            let boot = g.wait_https()?;
            println!(
                "system-test: first HTTPS answer {:.2} s after launch (first boot: the CA is created)",
                boot.as_secs_f64()
            );
            self.times.push(("aarch64 boot-to-HTTPS, first boot".into(), boot));
            g.wait_shell(Duration::from_secs(20))?;
            self.check_boot_order(&g.console())?;
            step("boot order: S30camera-state, S45cert-provisioner (OK), then S60camera-web");

            let (addrs, _) = g.sh("ip -4 -o addr show dev eth0", Duration::from_secs(10))?;
            if !addrs.contains(&format!("{}/", self.ip)) {
                return Err(format!("the guest's eth0 has no {}: {addrs}", self.ip));
            }
            let (web_log, _) = g.sh("cat /var/log/camera-web.log", Duration::from_secs(10))?;
            if !web_log.contains("serving the device-minted certificate") {
                return Err(format!(
                    "camera-web's log does not say it serves the device-minted certificate:\n{web_log}"
                ));
            }
            step(&format!(
                "the guest's kernel has {} on eth0; camera-web serves the device-minted certificate",
                self.ip
            ));
            // The camera's own memory figure: the static musl binary on an Arm kernel, after one request.
            let (rss, _) = g.sh(
                &format!("grep -E 'VmRSS|VmHWM|RssAnon|RssFile|RssShmem' /proc/$({SERVER_PID})/status"),
                Duration::from_secs(10),
            )?;
            // The console echoes the command line first: keep the status fields only.
            let fields = rss.find("Vm").map_or(rss.as_str(), |at| &rss[at..]);
            println!(
                "system-test: camera-web memory in the guest: {}",
                fields.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            let (rss, _) = g.sh(
                "grep -E 'VmRSS|RssAnon|RssShmem' /proc/$(cat /var/run/camera-web.pid)/status",
                Duration::from_secs(10),
            )?;
            let fields = rss.find("Vm").map_or(rss.as_str(), |at| &rss[at..]);
            println!(
                "system-test: its --respawn supervisor: {}",
                fields.split_whitespace().collect::<Vec<_>>().join(" ")
            );

            let ca = self.fetch_ca(g.https_port)?;
            let ca_path = self.path("cacert.crt");
            write(&ca_path, &ca)?;
            let status = self.api(g.https_port, &ca_path, &["/api/v1/certificate"])?;
            expect_json(&status, "source", "device")?;
            if !status.contains(&format!("\"{}\"", self.ip)) {
                return Err(format!("GET /api/v1/certificate does not list {}: {status}", self.ip));
            }
            let leaf = self.served_leaf(g.https_port, "device-boot1")?;
            self.verify(&leaf, &ca_path, &self.ip)?;
            step(&format!(
                "the served certificate names {} and chains to the guest's cacert.crt (curl and openssl verify)",
                self.ip
            ));

            self.api(
                g.https_port,
                &ca_path,
                &[
                    "-X",
                    "POST",
                    "-H",
                    "content-type: application/json",
                    "-d",
                    &format!("{{\"password\":\"{PASSWORD}\"}}"),
                    "/api/v1/setup",
                ],
            )?;
            let upload = self.api(
                g.https_port,
                &ca_path,
                &[
                    "-X",
                    "PUT",
                    "-u",
                    &format!("admin:{PASSWORD}"),
                    "-F",
                    &format!("certificate=@{}", installer.chain.display()),
                    "-F",
                    &format!("key=@{}", installer.key.display()),
                    "/api/v1/certificate",
                ],
            )?;
            expect_json(&upload, "source", "uploaded")?;
            let served = self.served_leaf(g.https_port, "uploaded-boot1")?;
            if fingerprint(&served)? != installer.fingerprint {
                return Err("after the upload the server does not serve the installer's certificate".into());
            }
            self.api(g.https_port, &installer.ca, &["/api/v1/certificate"])?;
            step("the installer's certificate uploaded through the API is served (chains to the installer's CA for the guest's address)");

            let off = Instant::now();
            g.poweroff(Duration::from_secs(30))?;
            let console = g.console();
            for line in ["Stopping camera-web: OK", "Unmounting camera state: OK"] {
                if !console.contains(line) {
                    return Err(format!("the poweroff did not print `{line}`"));
                }
            }
            step(&format!(
                "poweroff: camera-web stopped, state disk unmounted, QEMU exited ({:.1} s)",
                off.elapsed().as_secs_f64()
            ));
            Ok(ca)
        })?;
        drop(guest);

        // Second boot, same disk.
        let log = self.path("console-aarch64-boot2.log");
        step("booting again on the same state disk");
        let mut guest = Guest::boot(image, &disk, &log)?;
        with_console(&mut guest, &log, |g| {
            let boot = g.wait_https()?;
            println!(
                "system-test: first HTTPS answer {:.2} s after launch (CA from the state disk)",
                boot.as_secs_f64()
            );
            self.times.push(("aarch64 boot-to-HTTPS, second boot".into(), boot));
            if self.fetch_ca(g.https_port)? != ca {
                return Err("the camera's CA changed across the reboot".into());
            }
            let served = self.served_leaf(g.https_port, "uploaded-boot2")?;
            if fingerprint(&served)? != installer.fingerprint {
                return Err("after the reboot the uploaded certificate is no longer served".into());
            }
            let ca_path = self.path("cacert.crt");
            // The uploaded certificate chains to the installer's CA, not the camera's.
            expect_json(&self.api(g.https_port, &installer.ca, &["/api/v1/certificate"])?, "source", "uploaded")?;
            step("after the reboot: the uploaded certificate is still served, the CA is unchanged");

            self.api(
                g.https_port,
                &installer.ca,
                &["-X", "DELETE", "-u", &format!("admin:{PASSWORD}"), "/api/v1/certificate"],
            )?;
            let device = self.served_leaf(g.https_port, "device-restored")?;
            if fingerprint(&device)? == installer.fingerprint {
                return Err("after DELETE the installer's certificate is still served".into());
            }
            self.verify(&device, &ca_path, &self.ip)?;
            expect_json(&self.api(g.https_port, &ca_path, &["/api/v1/certificate"])?, "source", "device")?;
            step("after DELETE (restore): the device certificate is back and chains to the camera's CA");

            g.wait_shell(Duration::from_secs(20))?;
            let pid = |g: &mut Guest| {
                g.sh(SERVER_PID, Duration::from_secs(10)).map(|(o, _)| o.lines().last().unwrap_or("").trim().to_owned())
            };
            let pid_before = pid(g)?;
            let (out, status) = g.sh(&format!("ip addr add {ADDED_ADDRESS}/24 dev eth0"), Duration::from_secs(10))?;
            if status != 0 {
                return Err(format!("ip addr add failed in the guest: {out}"));
            }
            let added = Instant::now();
            let leaf = loop {
                let leaf = self.served_leaf(g.https_port, "device-added-address")?;
                if san(&leaf)?.contains(&format!("IP Address:{ADDED_ADDRESS}")) {
                    break leaf;
                }
                if added.elapsed() > Duration::from_secs(15) {
                    return Err(format!("{ADDED_ADDRESS} is not in the served certificate 15 s after it was added"));
                }
                std::thread::sleep(Duration::from_millis(200));
            };
            let took = added.elapsed();
            self.verify(&leaf, &ca_path, ADDED_ADDRESS)?;
            let pid_after = pid(g)?;
            if pid_before.is_empty() || pid_before != pid_after {
                return Err(format!("camera-web restarted (pid {pid_before} then {pid_after})"));
            }
            self.times.push(("aarch64 added address to served certificate".into(), took));
            step(&format!(
                "{ADDED_ADDRESS} added in the guest is in the served certificate after {:.2} s, same camera-web (pid {pid_after})",
                took.as_secs_f64()
            ));

            // What panic = "abort" would do: the supervisor starts the server again.
            g.sh(&format!("kill -ABRT {pid_after}"), Duration::from_secs(10))?;
            let killed = Instant::now();
            loop {
                let now = pid(g)?;
                if !now.is_empty() && now != pid_after && self.fetch_ca(g.https_port).is_ok() {
                    step(&format!("after SIGABRT to the server, the supervisor started it again (pid {now}), answering {:.1} s later", killed.elapsed().as_secs_f64()));
                    break;
                }
                if killed.elapsed() > Duration::from_secs(20) {
                    return Err("camera-web was not started again within 20 s of SIGABRT".into());
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            Ok(())
        })
    }

    fn armv7(&mut self, image: &Image) -> Result {
        let disk = self.path("armv7-state.ext4");
        image::make_state_disk(&disk, image.board.state_size_mib)?;
        let log = self.path("console-armv7.log");
        step(&format!("booting {}", image.board.name));
        let mut guest = Guest::boot(image, &disk, &log)?;
        with_console(&mut guest, &log, |g| {
            let boot = g.wait_https()?;
            println!("system-test: first HTTPS answer {:.2} s after launch (first boot)", boot.as_secs_f64());
            self.times.push(("armv7 boot-to-HTTPS, first boot".into(), boot));
            self.check_boot_order(&g.console())?;
            let ca_path = self.path("cacert-armv7.crt");
            write(&ca_path, &self.fetch_ca(g.https_port)?)?;
            expect_json(&self.api(g.https_port, &ca_path, &["/api/v1/certificate"])?, "source", "device")?;
            let leaf = self.served_leaf(g.https_port, "armv7")?;
            self.verify(&leaf, &ca_path, &self.ip)?;
            step(&format!("armv7: the served certificate names {} and chains to its cacert.crt", self.ip));
            Ok(())
        })
    }

    /// rcS logs `S.. start` lines in order; S45 must have succeeded before S60 starts.
    fn check_boot_order(&self, console: &str) -> Result {
        let at = |needle: &str| console.find(needle).ok_or_else(|| format!("the console does not show `{needle}`"));
        let order = [
            at("S30camera-state start")?,
            at("Mounting camera state: OK")?,
            at("S45cert-provisioner start")?,
            at("Provisioning HTTPS certificate: OK")?,
            at("S60camera-web start")?,
            at("Starting camera-web: OK")?,
        ];
        if order.windows(2).all(|w| w[0] < w[1]) {
            Ok(())
        } else {
            Err("the boot did not run S30camera-state, S45cert-provisioner, S60camera-web in that order".into())
        }
    }

    /// `cacert.crt` as a user first fetches it: before trusting anything (`-k`).
    fn fetch_ca(&self, port: u16) -> Result<String> {
        let out = output(
            Command::new("curl")
                .args(["-sS", "-k", "--fail", "--max-time", "10"])
                .arg(format!("https://127.0.0.1:{port}/cacert.crt")),
        )?;
        if !out.contains("-----BEGIN CERTIFICATE-----") {
            return Err(format!("cacert.crt is not a PEM certificate: {out}"));
        }
        Ok(out)
    }

    /// An API call with curl trusting only `ca` and checking the name `self.ip`, while
    /// connecting to the forwarded port on 127.0.0.1. The last argument is the path.
    fn api(&self, port: u16, ca: &Path, args: &[&str]) -> Result<String> {
        let (path, rest) = args.split_last().ok_or("api: no path")?;
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "30", "-w", "\n%{http_code}", "--cacert"])
            .arg(ca)
            .arg("--connect-to")
            .arg(format!("{}:443:127.0.0.1:{port}", self.ip))
            .args(rest)
            .arg(format!("https://{}{path}", self.ip));
        let out = output(&mut cmd)?;
        let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
        if code.starts_with('2') {
            Ok(body.to_owned())
        } else {
            Err(format!("{path}: HTTP {code}: {body}"))
        }
    }

    /// The certificate the server presents (first of the chain), saved as `<name>.pem`, and the
    /// certificates sent after it (a two-tier camera CA's issuing CA) as `<name>-chain.pem`.
    fn served_leaf(&self, port: u16, name: &str) -> Result<PathBuf> {
        let out = output(
            Command::new("openssl")
                .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-showcerts"])
                .stdin(Stdio::null()),
        )?;
        let (begin_marker, end_marker) = ("-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----");
        let mut certificates = Vec::new();
        let mut rest = out.as_str();
        while let Some(begin) = rest.find(begin_marker) {
            let end = rest[begin..].find(end_marker).ok_or("openssl s_client: truncated certificate")?
                + begin
                + end_marker.len();
            certificates.push(format!("{}\n", &rest[begin..end]));
            rest = &rest[end..];
        }
        let (leaf, chain) =
            certificates.split_first().ok_or_else(|| format!("openssl s_client got no certificate:\n{out}"))?;
        let path = self.path(&format!("{name}.pem"));
        write(&path, leaf)?;
        write(&self.path(&format!("{name}-chain.pem")), &chain.concat())?;
        Ok(path)
    }

    /// `openssl verify` of `leaf` against `ca` for the IP address `ip`, with the certificates the
    /// server sent after it as untrusted intermediates (the anchor is only `ca`).
    fn verify(&self, leaf: &Path, ca: &Path, ip: &str) -> Result {
        let chain = leaf.with_file_name(format!(
            "{}-chain.pem",
            leaf.file_stem().and_then(|s| s.to_str()).ok_or("a leaf file without a name")?
        ));
        let mut cmd = Command::new("openssl");
        cmd.args(["verify", "-verify_ip", ip, "-CAfile"]).arg(ca);
        if std::fs::metadata(&chain).is_ok_and(|m| m.len() > 0) {
            cmd.arg("-untrusted").arg(&chain);
        }
        let out = output(cmd.arg(leaf))?;
        if out.trim_end().ends_with(": OK") {
            Ok(())
        } else {
            Err(format!("openssl verify -verify_ip {ip}: {out}"))
        }
    }

    /// An installer's CA and a server certificate for IP:<guest address> it signed, made with
    /// the openssl CLI as an installer would.
    fn installer_certificate(&self) -> Result<Installer> {
        let p = |n: &str| self.path(n);
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        output(
            Command::new("openssl")
                .args(["req", "-x509"])
                .args(ec)
                .arg("-keyout")
                .arg(p("installer-ca.key"))
                .arg("-out")
                .arg(p("installer-ca.pem"))
                .args(["-days", "30", "-subj", "/O=Installer/CN=Installer Test CA"])
                .args([
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ]),
        )?;
        output(
            Command::new("openssl")
                .args(["req"])
                .args(ec)
                .arg("-keyout")
                .arg(p("installer.key"))
                .arg("-out")
                .arg(p("installer.csr"))
                .args(["-subj", "/O=Installer/CN=Camera"]),
        )?;
        write(
            &p("installer.ext"),
            &format!(
                "subjectAltName=IP:{}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n",
                self.ip
            ),
        )?;
        output(
            Command::new("openssl")
                .args(["x509", "-req", "-days", "30", "-in"])
                .arg(p("installer.csr"))
                .arg("-CA")
                .arg(p("installer-ca.pem"))
                .arg("-CAkey")
                .arg(p("installer-ca.key"))
                .args(["-set_serial", "0x1d5f00c0ffee"])
                .arg("-extfile")
                .arg(p("installer.ext"))
                .arg("-out")
                .arg(p("installer.pem")),
        )?;
        let leaf = read(&p("installer.pem"))?;
        let ca = read(&p("installer-ca.pem"))?;
        write(&p("installer-chain.pem"), &format!("{leaf}{ca}"))?;
        Ok(Installer {
            fingerprint: fingerprint(&p("installer.pem"))?,
            chain: p("installer-chain.pem"),
            key: p("installer.key"),
            ca: p("installer-ca.pem"),
        })
    }
}

struct Installer {
    chain: PathBuf,
    key: PathBuf,
    ca: PathBuf,
    fingerprint: String,
}

fn fingerprint(cert: &Path) -> Result<String> {
    output(Command::new("openssl").args(["x509", "-noout", "-fingerprint", "-sha256", "-in"]).arg(cert))
        .map(|s| s.trim().to_owned())
}

fn san(cert: &Path) -> Result<String> {
    output(Command::new("openssl").args(["x509", "-noout", "-ext", "subjectAltName", "-in"]).arg(cert))
}

/// `"key": "value"` in a JSON text (whitespace between tokens ignored).
fn expect_json(json: &str, key: &str, value: &str) -> Result {
    let compact: String = json.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.contains(&format!("\"{key}\":\"{value}\"")) {
        Ok(())
    } else {
        Err(format!("expected \"{key}\": \"{value}\" in {json}"))
    }
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
