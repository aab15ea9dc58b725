//! A real Pebble (Let's Encrypt's test ACME server, Debian's `pebble`) validating for real: it
//! connects to the ports of the spec to check http-01 and tls-alpn-01 answers (the camera's, or a
//! test's own responder). With `dns`, pebble-challtestsrv answers its DNS queries (never the
//! system's resolver).
//!
//! No `PEBBLE_VA_ALWAYS_VALID`; `PEBBLE_VA_NOSLEEP` only removes Pebble's artificial delay. Pebble
//! and challtestsrv run until [`Pebble::stop`] or the drop of the [`Pebble`], or until the test
//! process ends (a fixture kept in a `static` is never dropped): they are started from a thread of
//! their own with `PR_SET_PDEATHSIG`, so they die with that thread and never outlive the tests.
//! Their output goes to an unnamed file ([`Pebble::log`]), and the configuration and TLS files are
//! removed once Pebble answers (it reads them at start), so nothing is left on disk.

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{free_ports, wait_for, TempDir};

/// Pebble's settings.
#[derive(Debug, Default, Clone)]
pub struct PebbleSpec {
    /// The ports Pebble validates on (http-01, tls-alpn-01).
    pub http_port: u16,
    pub tls_port: u16,
    /// Require external account binding with these (key id, base64url HMAC key) pairs.
    pub eab_keys: Vec<(&'static str, &'static str)>,
    /// Certificate lifetime in seconds (Pebble's default is five years).
    pub validity_secs: Option<u64>,
    pub domain_blocklist: Vec<&'static str>,
    /// Start pebble-challtestsrv as Pebble's DNS server, answering every A query with the first
    /// address and every AAAA query with the second ("" for none).
    pub dns: Option<(&'static str, &'static str)>,
    /// `PEBBLE_WFE_NONCEREJECT`: the share of good nonces Pebble refuses as bad (its default, 5 %,
    /// when None).
    pub nonce_reject_percent: Option<u32>,
    /// Reuse every valid authorization of the account in new orders (`PEBBLE_AUTHZREUSE=100`;
    /// Pebble's default reuses half): only the first order validates, so later ones take a
    /// fraction of a second instead of waiting for the client's next poll of the validation.
    pub reuse_valid_authorizations: bool,
}

/// A running Pebble.
#[derive(Debug)]
pub struct Pebble {
    /// The ACME directory URL.
    pub directory: String,
    /// The management interface (`/roots/0`: the root of what Pebble issues).
    pub management: String,
    /// The CA of Pebble's own TLS certificate (for 127.0.0.1, ::1 and localhost): the ACME
    /// client's trust anchor.
    pub tls_ca_pem: String,
    /// Pebble's and challtestsrv's output.
    log: std::fs::File,
    /// Tells the thread that started the processes to kill them, and that thread.
    keeper: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

impl Pebble {
    /// Starts Pebble (and challtestsrv) on free loopback ports; returns once the directory answers.
    ///
    /// # Panics
    /// When a program is missing or Pebble does not answer within 30 s (with its output).
    pub fn start(spec: &PebbleSpec) -> Self {
        let files = TempDir::new("pebble");
        let tls_ca_pem = tls_files(files.path());
        let [acme_port, management_port, dns_port, dns_management] = free_ports();
        let mut config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": files.join("cert.pem"),
            "privateKey": files.join("key.pem"),
            "httpPort": spec.http_port,
            "tlsPort": spec.tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": !spec.eab_keys.is_empty(),
            "domainBlocklist": spec.domain_blocklist,
        }});
        if !spec.eab_keys.is_empty() {
            config["pebble"]["externalAccountMACKeys"] =
                spec.eab_keys.iter().map(|(k, v)| ((*k).to_owned(), serde_json::json!(v))).collect();
        }
        if let Some(secs) = spec.validity_secs {
            config["pebble"]["certificateValidityPeriod"] = serde_json::json!(secs);
        }
        std::fs::write(files.join("pebble.json"), config.to_string()).expect("write pebble.json");

        let mut commands = Vec::new();
        let mut pebble = Command::new("/usr/bin/pebble");
        pebble.arg("-config").arg(files.join("pebble.json")).env("PEBBLE_VA_NOSLEEP", "1");
        pebble.env_remove("PEBBLE_VA_ALWAYS_VALID");
        if let Some(percent) = spec.nonce_reject_percent {
            pebble.env("PEBBLE_WFE_NONCEREJECT", percent.to_string());
        }
        if spec.reuse_valid_authorizations {
            pebble.env("PEBBLE_AUTHZREUSE", "100");
        }
        if let Some((v4, v6)) = spec.dns {
            let mut dns = Command::new("/usr/bin/pebble-challtestsrv");
            dns.args(["-dns01", &format!("127.0.0.1:{dns_port}")])
                .args(["-management", &format!("127.0.0.1:{dns_management}")])
                .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
                .args(["-defaultIPv4", v4, "-defaultIPv6", v6]);
            commands.push(dns);
            pebble.args(["-dnsserver", &format!("127.0.0.1:{dns_port}")]);
        }
        commands.push(pebble);

        let log = tempfile::tempfile().expect("an unnamed log file");
        let keeper = keep(commands, &log);
        let fixture = Self {
            directory: format!("https://127.0.0.1:{acme_port}/dir"),
            management: format!("https://127.0.0.1:{management_port}"),
            tls_ca_pem,
            log,
            keeper: Some(keeper),
        };
        let up = wait_for(Duration::from_secs(30), || fixture.get(&fixture.directory));
        assert!(up.is_some(), "Pebble did not start in 30 s:\n{}", fixture.log());
        fixture
    }

    /// `url` fetched by curl trusting only Pebble's TLS CA (given on stdin); None unless 2xx.
    fn get(&self, url: &str) -> Option<Vec<u8>> {
        let mut curl = Command::new("curl")
            .args(["-sSf", "--max-time", "5", "--cacert", "/dev/stdin", url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("curl runs");
        // A failed write shows as curl's failure below.
        let _ = curl.stdin.take().expect("curl's stdin").write_all(self.tls_ca_pem.as_bytes());
        let out = curl.wait_with_output().ok()?;
        out.status.success().then_some(out.stdout)
    }

    /// What Pebble (and challtestsrv) printed so far.
    pub fn log(&self) -> String {
        let mut bytes = vec![0; self.log.metadata().map(|m| m.len()).unwrap_or(0).try_into().unwrap_or(0)];
        // read_at leaves the file offset alone: the programs write at it.
        let read = self.log.read_at(&mut bytes, 0).unwrap_or(0);
        bytes.truncate(read);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The root of the certificates Pebble issues (made anew at each start), PEM.
    pub fn root_pem(&self) -> String {
        let root = self.get(&format!("{}/roots/0", self.management)).expect("Pebble's root");
        String::from_utf8(root).expect("a PEM root")
    }

    /// Stops Pebble (the CA is down from now on).
    pub fn stop(&mut self) {
        if let Some((stop, thread)) = self.keeper.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `commands` on a thread of their own, which kills them when told to or when its sender
/// is dropped; their output goes to `log`.
fn keep(commands: Vec<Command>, log: &std::fs::File) -> (mpsc::Sender<()>, JoinHandle<()>) {
    let outputs: Vec<(std::fs::File, std::fs::File)> = commands
        .iter()
        .map(|_| (log.try_clone().expect("dup the log"), log.try_clone().expect("dup the log")))
        .collect();
    let (stop, stopped) = mpsc::channel::<()>();
    let (started, start_result) = mpsc::channel::<Result<(), String>>();
    let thread = std::thread::Builder::new()
        .name("pebble-keeper".into())
        .spawn(move || {
            let mut children: Vec<Child> = Vec::new();
            for (mut command, (out, err)) in commands.into_iter().zip(outputs) {
                command.stdin(Stdio::null()).stdout(out).stderr(err);
                match crate::dies_with_spawner(&mut command).spawn() {
                    Ok(child) => children.push(child),
                    Err(e) => {
                        let _ = started.send(Err(format!("{:?}: {e}", command.get_program())));
                        break;
                    }
                }
            }
            let _ = started.send(Ok(()));
            // A message or a dropped sender: either way, stop.
            let _ = stopped.recv();
            for child in &mut children {
                let _ = child.kill();
                let _ = child.wait();
            }
        })
        .expect("start the Pebble keeper thread");
    if let Ok(Err(e)) = start_result.recv() {
        panic!("cannot start {e}");
    }
    (stop, thread)
}

/// Pebble's own TLS certificate (for 127.0.0.1, ::1 and localhost) and its CA, in `dir`; returns
/// the CA's PEM.
fn tls_files(dir: &Path) -> String {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Site ACME test TLS CA");
    let ca_key = rcgen::KeyPair::generate().expect("a CA key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("the CA certificate");
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "::1".to_owned(), "localhost".to_owned()])
        .expect("server parameters");
    let key = rcgen::KeyPair::generate().expect("a server key");
    let cert =
        params.signed_by(&key, &rcgen::Issuer::from_params(&ca_params, &ca_key)).expect("the server certificate");
    std::fs::write(dir.join("cert.pem"), cert.pem()).expect("write cert.pem");
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("write key.pem");
    ca_cert.pem()
}
