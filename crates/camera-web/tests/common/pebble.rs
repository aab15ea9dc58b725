//! A real Pebble (Let's Encrypt's test ACME server, Debian's `pebble`) with real validation: it
//! connects to the camera's own ports to check http-01 and tls-alpn-01 answers. Run inside a
//! private network namespace, so the addresses it validates are the namespace's. With
//! `dns_for`, pebble-challtestsrv answers its DNS queries (never the system's resolver).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{wait_for, TempDir};

/// Pebble's settings for one test.
#[derive(Debug, Default, Clone)]
pub struct PebbleSpec {
    /// The camera's ports Pebble validates on (http-01, tls-alpn-01).
    pub http_port: u16,
    pub tls_port: u16,
    /// Require external account binding with these (key id, base64url HMAC key) pairs.
    pub eab_keys: Vec<(&'static str, &'static str)>,
    /// Certificate lifetime in seconds (Pebble's default is five years).
    pub validity_secs: Option<u64>,
    pub domain_blocklist: Vec<&'static str>,
    /// Start pebble-challtestsrv answering every A/AAAA query with these addresses.
    pub dns_for: Option<(&'static str, &'static str)>,
    /// Reuse every valid authorization of the account in new orders (`PEBBLE_AUTHZREUSE=100`;
    /// Pebble's default reuses half): only the first order validates, so later ones take a
    /// fraction of a second instead of waiting for the client's next poll of the validation.
    pub reuse_valid_authorizations: bool,
}

pub struct Pebble {
    pub directory: String,
    management: String,
    /// The CA of Pebble's own TLS certificate: the enrollment's trust anchor.
    pub tls_ca_pem: String,
    children: Vec<Child>,
    pub dir: TempDir,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Four different free ports on 127.0.0.1 (Pebble's and challtestsrv's): the listeners are held
/// until all four are chosen, as a port released at once may be handed out again by the next bind.
fn free_ports() -> [u16; 4] {
    let listeners: Vec<_> = (0..4).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let port = |i: usize| listeners[i].local_addr().unwrap().port();
    [port(0), port(1), port(2), port(3)]
}

fn spawn(cmd: &mut Command, log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    cmd.stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(out);
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which is
    // async-signal-safe; it allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
    cmd.spawn().unwrap()
}

/// Pebble's own TLS certificate (for 127.0.0.1) and its CA, made here; returns the CA's PEM.
fn tls_files(dir: &Path) -> String {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Site ACME test TLS CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &rcgen::Issuer::from_params(&ca_params, &ca_key)).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    ca_cert.pem()
}

impl Pebble {
    pub fn start(spec: &PebbleSpec) -> Self {
        let dir = TempDir::new("pebble");
        let tls_ca_pem = tls_files(dir.path());
        let [acme_port, management_port, dns_port, dns_management] = free_ports();
        let mut config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": dir.path().join("cert.pem"),
            "privateKey": dir.path().join("key.pem"),
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
        std::fs::File::create(dir.path().join("pebble.json"))
            .unwrap()
            .write_all(config.to_string().as_bytes())
            .unwrap();
        let mut children = Vec::new();
        let mut pebble = Command::new("/usr/bin/pebble");
        pebble
            .arg("-config")
            .arg(dir.path().join("pebble.json"))
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env_remove("PEBBLE_VA_ALWAYS_VALID");
        if spec.reuse_valid_authorizations {
            pebble.env("PEBBLE_AUTHZREUSE", "100");
        }
        if let Some((v4, v6)) = spec.dns_for {
            let mut dns = Command::new("/usr/bin/pebble-challtestsrv");
            dns.args(["-dns01", &format!("127.0.0.1:{dns_port}")])
                .args(["-management", &format!("127.0.0.1:{dns_management}")])
                .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
                .args(["-defaultIPv4", v4, "-defaultIPv6", v6]);
            children.push(spawn(&mut dns, &dir.path().join("challtestsrv.log")));
            pebble.args(["-dnsserver", &format!("127.0.0.1:{dns_port}")]);
        }
        children.push(spawn(&mut pebble, &dir.path().join("pebble.log")));
        let fixture = Self {
            directory: format!("https://127.0.0.1:{acme_port}/dir"),
            management: format!("https://127.0.0.1:{management_port}"),
            tls_ca_pem,
            children,
            dir,
        };
        let started = Instant::now();
        let up = wait_for(Duration::from_secs(30), || fixture.get(&fixture.directory).map(|_| ()));
        assert!(up.is_some(), "Pebble did not start in {:?}:\n{}", started.elapsed(), fixture.log());
        fixture
    }

    fn get(&self, url: &str) -> Option<Vec<u8>> {
        let ca = self.dir.path().join("tls-ca.pem");
        std::fs::write(&ca, &self.tls_ca_pem).ok()?;
        let out = Command::new("curl").args(["-sSf", "--max-time", "5", "--cacert"]).arg(&ca).arg(url).output().ok()?;
        out.status.success().then_some(out.stdout)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// The root of the certificates Pebble issues (made anew at each start), PEM.
    pub fn root_pem(&self) -> String {
        String::from_utf8(self.get(&format!("{}/roots/0", self.management)).expect("Pebble's root")).unwrap()
    }

    /// Stops Pebble (the CA is down from now on).
    pub fn stop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
