//! The real TLS clients of the interop matrix and how each one is run: one process per case for the
//! command-line tools, one process for all cases for the programs in `tests/interop/` (Go, Java,
//! mbedTLS, Python, Chromium), which are built once per test run into the test's temporary dir.

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::pki::is_ip;

/// One connection to make: a TCP connection to `address:port` (always the test's private address),
/// then TLS verified against `ca_file` alone and against `name` (a DNS name or an IP address, which
/// may differ from `address`: the client is told to verify the certificate for `name`).
#[derive(Debug, Clone)]
pub struct Case {
    /// Unique within one client's run; no spaces.
    pub id: String,
    pub address: IpAddr,
    pub port: u16,
    pub name: String,
    pub ca_file: PathBuf,
}

/// What a client did with one case.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub accepted: bool,
    /// Why it refused (the client's own words), or what it said when it accepted.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    OpenSsl,
    GnuTls,
    Go,
    Java,
    Nss,
    Python,
    Curl,
    Chromium,
    MbedTls,
}

impl Client {
    pub const ALL: [Client; 9] = [
        Client::OpenSsl,
        Client::GnuTls,
        Client::Go,
        Client::Java,
        Client::Nss,
        Client::Python,
        Client::Curl,
        Client::Chromium,
        Client::MbedTls,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Client::OpenSsl => "OpenSSL s_client",
            Client::GnuTls => "GnuTLS gnutls-cli",
            Client::Go => "Go crypto/tls",
            Client::Java => "Java PKIX+HTTPS",
            Client::Nss => "NSS vfychain",
            Client::Python => "Python ssl",
            Client::Curl => "curl",
            Client::Chromium => "Chromium",
            Client::MbedTls => "mbedTLS 2.28",
        }
    }
}

/// The repository's root (where `tests/interop/` lives).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The clients that are programs of ours, built for this run.
#[derive(Debug)]
pub struct Toolbox {
    work: PathBuf,
    go_client: PathBuf,
    java_classes: PathBuf,
    mbedtls_client: PathBuf,
}

impl Toolbox {
    /// Builds the Go, Java and mbedTLS clients into `work` (in parallel), offline: Go with Debian's
    /// toolchain and the standard library only (GOCACHE/GOPATH in `work`), Java with javac, the C
    /// client with gcc against libmbedtls-dev.
    pub fn build(work: &Path) -> Toolbox {
        let started = Instant::now();
        let src = repo_root().join("tests/interop");
        let toolbox = Toolbox {
            work: work.to_owned(),
            go_client: work.join("bin/go-client"),
            java_classes: work.join("java-classes"),
            mbedtls_client: work.join("bin/mbedtls-client"),
        };
        std::fs::create_dir_all(work.join("bin")).unwrap();
        let playwright = repo_root().join("tests/ui/node_modules/playwright-core");
        assert!(
            playwright.exists(),
            "playwright-core is not installed in tests/ui: run `cargo xtask deps` (or `npm install` in tests/ui)"
        );
        std::thread::scope(|s| {
            let go = s.spawn(|| {
                let mut go = Command::new("go");
                go.args(["build", "-o"])
                    .arg(&toolbox.go_client)
                    .arg(".")
                    .current_dir(src.join("go"))
                    .env("GOCACHE", work.join("go/cache"))
                    .env("GOPATH", work.join("go/path"))
                    .env("GOPROXY", "off");
                build_step(&mut go, "golang-go")
            });
            let java = s.spawn(|| {
                let mut javac = Command::new("javac");
                javac.arg("-d").arg(&toolbox.java_classes).arg(src.join("java/InteropClient.java"));
                build_step(&mut javac, "default-jdk-headless")
            });
            let mut gcc = Command::new("gcc");
            gcc.args(["-O1", "-Wall", "-Wextra", "-Werror", "-o"])
                .arg(&toolbox.mbedtls_client)
                .arg(src.join("mbedtls/client.c"))
                .args(["-lmbedtls", "-lmbedx509", "-lmbedcrypto"]);
            build_step(&mut gcc, "gcc and libmbedtls-dev");
            go.join().unwrap();
            java.join().unwrap();
        });
        println!("interop: Go, Java and mbedTLS clients built in {} ms", started.elapsed().as_millis());
        toolbox
    }

    /// Runs `client` on every case; the outcomes come back in the order of `cases`.
    pub fn run(&self, client: Client, cases: &[Case]) -> Vec<Outcome> {
        match client {
            Client::OpenSsl => cases.iter().map(openssl).collect(),
            Client::GnuTls => cases.iter().map(gnutls).collect(),
            Client::Curl => cases.iter().map(curl).collect(),
            Client::Nss => {
                let dbs = NssDbs::new(self.work.join("nss"));
                cases.iter().map(|case| nss(&dbs, case)).collect()
            }
            Client::Go => batch(Command::new(&self.go_client), cases, "Go"),
            Client::Java => {
                let hosts = self.work.join("java-hosts");
                std::fs::write(&hosts, hosts_file(cases)).unwrap();
                let mut java = Command::new("java");
                java.args(["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
                    .arg(format!("-Djdk.net.hosts.file={}", hosts.display()))
                    .arg("-cp")
                    .arg(&self.java_classes)
                    .arg("InteropClient");
                batch(java, cases, "Java")
            }
            Client::MbedTls => batch(Command::new(&self.mbedtls_client), cases, "mbedTLS"),
            Client::Python => {
                let mut python = Command::new("python3");
                python.arg(repo_root().join("tests/interop/python/client.py"));
                batch(python, cases, "Python")
            }
            Client::Chromium => {
                let tmp = self.work.join("chromium");
                std::fs::create_dir_all(&tmp).unwrap();
                let mut node = Command::new("node");
                node.arg(repo_root().join("tests/interop/chromium/visit.mjs")).arg("--tmp").arg(&tmp);
                batch(node, cases, "Chromium")
            }
        }
    }
}

fn build_step(cmd: &mut Command, package: &str) {
    let out = output(cmd, &format!("a build step (Debian package: {package})"));
    assert!(
        out.status.success(),
        "{cmd:?} failed (Debian package: {package}):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `address` as a URL or `host:port` host: IPv6 in brackets.
fn url_host(address: &str) -> String {
    if address.contains(':') {
        format!("[{address}]")
    } else {
        address.to_owned()
    }
}

/// How long one client process may take: far above the seconds they need, below a hung CI job.
const DEADLINE: Duration = Duration::from_secs(90);

/// Runs `cmd` with stdin closed and returns its output; kills it and panics after [`DEADLINE`].
fn output(cmd: &mut Command, what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what} ({cmd:?}): {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} ({cmd:?}) still running after {DEADLINE:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `openssl s_client -verify_return_error -x509_strict`, `-verify_ip` or `-verify_hostname`.
fn openssl(case: &Case) -> Outcome {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &format!("{}:{}", url_host(&case.address.to_string()), case.port)])
        .args(["-verify_return_error", "-x509_strict", "-CAfile"])
        .arg(&case.ca_file);
    if is_ip(&case.name) {
        cmd.args(["-verify_ip", &case.name]);
    } else {
        cmd.args(["-verify_hostname", &case.name, "-servername", &case.name]);
    }
    let out = output(&mut cmd, "openssl");
    let (stdout, stderr) = text(&out);
    let accepted = out.status.success() && stdout.contains("Verify return code: 0 (ok)");
    let detail = stderr
        .lines()
        .chain(stdout.lines())
        .find(|l| l.contains("verify error:") || l.starts_with("Verify return code:"))
        .unwrap_or_else(|| stderr.lines().next().unwrap_or_default())
        .trim()
        .to_owned();
    Outcome { accepted, detail }
}

/// `gnutls-cli` with its own verification, `--verify-hostname`, SNI for DNS names.
fn gnutls(case: &Case) -> Outcome {
    let mut cmd = Command::new("gnutls-cli");
    cmd.arg("--x509cafile").arg(&case.ca_file).args(["--verify-hostname", &case.name, "-p", &case.port.to_string()]);
    if !is_ip(&case.name) {
        cmd.args(["--sni-hostname", &case.name]);
    }
    cmd.arg(case.address.to_string());
    let out = output(&mut cmd, "gnutls-cli (Debian package gnutls-bin)");
    let (stdout, stderr) = text(&out);
    let accepted = out.status.success() && stdout.contains("- Status: The certificate is trusted.");
    let detail = stdout
        .lines()
        .chain(stderr.lines())
        .find(|l| l.contains("- Status:") || l.starts_with("*** "))
        .unwrap_or_default()
        .trim()
        .to_owned();
    Outcome { accepted, detail }
}

/// curl with `--cacert`; a DNS name mapped with `--resolve`, a foreign IP with `--connect-to`.
fn curl(case: &Case) -> Outcome {
    let address = case.address.to_string();
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o", "/dev/null", "--max-time", "20", "--cacert"]).arg(&case.ca_file);
    if !is_ip(&case.name) {
        cmd.args(["--resolve", &format!("{}:{}:{}", case.name, case.port, address)]);
    } else if case.name != address {
        cmd.args(["--connect-to", &format!("{}:{}:{}:{}", case.name, case.port, url_host(&address), case.port)]);
    }
    cmd.arg(format!("https://{}:{}/", url_host(&case.name), case.port));
    let out = output(&mut cmd, "curl");
    let (_, stderr) = text(&out);
    Outcome { accepted: out.status.success(), detail: stderr.lines().next().unwrap_or_default().trim().to_owned() }
}

/// One NSS database per trust anchor, holding only that certificate (trusted as a TLS CA).
struct NssDbs {
    dir: PathBuf,
    dbs: std::sync::Mutex<HashMap<PathBuf, PathBuf>>,
}

impl NssDbs {
    fn new(dir: PathBuf) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        NssDbs { dir, dbs: std::sync::Mutex::new(HashMap::new()) }
    }

    fn for_anchor(&self, ca_file: &Path) -> PathBuf {
        let mut dbs = self.dbs.lock().unwrap();
        let n = dbs.len();
        dbs.entry(ca_file.to_owned())
            .or_insert_with(|| {
                let db = self.dir.join(format!("db{n}"));
                std::fs::create_dir_all(&db).unwrap();
                let sql = format!("sql:{}", db.display());
                for args in [
                    vec!["-N", "--empty-password", "-d", &sql],
                    vec!["-A", "-n", "anchor", "-t", "C,,", "-i", ca_file.to_str().unwrap(), "-d", &sql],
                ] {
                    let out = output(Command::new("certutil").args(&args), "certutil (libnss3-tools)");
                    assert!(out.status.success(), "certutil {args:?}: {}", text(&out).1);
                }
                db
            })
            .clone()
    }
}

/// NSS: the chain the server sends on this connection, checked by `vfychain -u 1` (TLS server)
/// against a database holding only the case's CA. vfychain checks the chain (signatures, validity,
/// usage, name constraints against the leaf's names), not the name the client asked for.
fn nss(dbs: &NssDbs, case: &Case) -> Outcome {
    let chain = match try_fetch_chain(case.address, case.port, (!is_ip(&case.name)).then_some(case.name.as_str())) {
        Ok(chain) => chain,
        Err(e) => return Outcome { accepted: false, detail: format!("could not fetch the served chain: {e}") },
    };
    let dir = dbs.dir.join(format!("chain-{}-{}", case.id, case.port));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new("vfychain");
    cmd.arg("-d").arg(dbs.for_anchor(&case.ca_file)).args(["-u", "1"]);
    for (i, cert) in chain.iter().enumerate() {
        let file = dir.join(format!("{i}.pem"));
        std::fs::write(&file, cert).unwrap();
        cmd.arg("-a").arg(file);
    }
    let out = output(&mut cmd, "vfychain (libnss3-tools)");
    let (stdout, stderr) = text(&out);
    // vfychain says "Chain is good!" or "Chain is bad!" (on stderr) and why.
    let accepted = out.status.success() && stderr.contains("Chain is good!");
    let detail = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| l.contains("ERROR") || l.contains("Chain is"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");

    Outcome { accepted, detail }
}

/// The certificates a server sends (leaf first, PEM), with `sni` as the server name when given.
pub fn fetch_chain(address: IpAddr, port: u16, sni: Option<&str>) -> Vec<String> {
    try_fetch_chain(address, port, sni).unwrap_or_else(|e| panic!("{e}"))
}

fn try_fetch_chain(address: IpAddr, port: u16, sni: Option<&str>) -> Result<Vec<String>, String> {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-showcerts", "-connect", &format!("{}:{port}", url_host(&address.to_string()))]);
    if let Some(name) = sni {
        cmd.args(["-servername", name]);
    }
    let out = output(&mut cmd, "openssl");
    let (stdout, stderr) = text(&out);
    let certs = camera_test_support::pem::certificates(&stdout);
    if certs.is_empty() {
        return Err(format!("no certificate served on {address} port {port}: {}", stderr.trim()));
    }
    Ok(certs)
}

/// `ADDRESS NAME` lines for every DNS name among the cases (Java's `jdk.net.hosts.file`).
fn hosts_file(cases: &[Case]) -> String {
    let mut lines: Vec<String> =
        cases.iter().filter(|c| !is_ip(&c.name)).map(|c| format!("{} {}\n", c.address, c.name)).collect();
    lines.sort();
    lines.dedup();
    lines.concat()
}

/// Runs a program of `tests/interop/` once with every case as `ID ADDRESS PORT NAME CAFILE` on its
/// command line and reads its "ID OK" / "ID FAIL reason" lines. A case with no line is a broken
/// harness, not a refusal: that panics with the program's output.
fn batch(mut cmd: Command, cases: &[Case], what: &str) -> Vec<Outcome> {
    for case in cases {
        cmd.arg(&case.id).arg(case.address.to_string()).arg(case.port.to_string()).arg(&case.name).arg(&case.ca_file);
    }
    let out = output(&mut cmd, what);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{what} client failed ({}):\n{stdout}\n{stderr}", out.status);
    let results: HashMap<&str, &str> = stdout.lines().filter_map(|l| l.split_once(' ')).collect();
    cases
        .iter()
        .map(|case| match results.get(case.id.as_str()) {
            Some(&"OK") => Outcome { accepted: true, detail: String::new() },
            Some(line) if line.starts_with("FAIL ") => {
                Outcome { accepted: false, detail: line["FAIL ".len()..].trim().to_owned() }
            }
            _ => panic!("{what} client printed no result for case {}:\n{stdout}\n{stderr}", case.id),
        })
        .collect()
}
