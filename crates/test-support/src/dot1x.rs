//! 802.1X fixtures: a site PKI made by code ([`SitePki`]), a switch port that demands 802.1X
//! ([`Switch`]: hostapd as a wired authenticator with its own EAP-TLS server, in a network
//! namespace of its own, and a gate that really drops traffic until the port is authorized), and
//! the camera's wpa_supplicant started as its init script does ([`Supplicant`]).
//!
//! Everything runs inside a test's private namespace ([`crate::netns::enter_private_netns`], with
//! at least loopback): the switch's namespace is made there by a long-lived `unshare -n` child
//! (we are root in the test's user namespace, which owns both), joined to the test's by a veth
//! pair; commands run in it through `nsenter -t <pid> -n`. hostapd's wired driver authenticates
//! but blocks nothing, so `hostapd_cli -a` runs a script on `AP-STA-CONNECTED` /
//! `AP-STA-DISCONNECTED` that opens and closes nftables drop rules on the switch's port;
//! [`Switch::reach`] connects from the switch's side to the camera's address through them.
//! Every process is killed with its value, and by `PR_SET_PDEATHSIG` when the test's thread ends.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use crate::netns::Namespace;
use crate::{spawn_dying, wait_for, wait_until, TempDir};

/// The authentication server's name in [`SitePki::server`] certificates.
pub const SERVER_NAME: &str = "radius.site.example";

/// A certificate and its key, PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    /// PKCS#8 (`PRIVATE KEY`).
    pub key_pem: String,
    /// The subject's common name.
    pub cn: String,
}

impl Issued {
    /// Key then certificate: the camera's credential form (and what wpa_supplicant reads).
    pub fn bundle_pem(&self) -> String {
        format!("{}{}", self.key_pem, self.cert_pem)
    }

    /// SHA-256 of the certificate, `AB:CD:...` (as `camera_pki::fingerprint` writes it).
    pub fn sha256(&self) -> String {
        let der = crate::openssl_stdin_bytes(&["x509", "-outform", "DER"], self.cert_pem.as_bytes());
        let out = crate::openssl_stdin(&["dgst", "-sha256", "-r"], &der);
        let hex = out.split_whitespace().next().expect("a digest").to_uppercase();
        hex.as_bytes().chunks(2).map(|pair| String::from_utf8_lossy(pair).into_owned()).collect::<Vec<_>>().join(":")
    }
}

struct Ca {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
}

impl Ca {
    fn new(cn: &str) -> (Self, String) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let key = rcgen::KeyPair::generate().expect("a CA key");
        let pem = params.self_signed(&key).expect("the CA certificate").pem();
        (Self { params, key }, pem)
    }

    fn issue(&self, cn: &str, dns_name: Option<&str>, usage: rcgen::ExtendedKeyUsagePurpose) -> Issued {
        let names: Vec<String> = dns_name.into_iter().map(str::to_owned).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("leaf parameters");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let key = rcgen::KeyPair::generate().expect("a leaf key");
        let cert =
            params.signed_by(&key, &rcgen::Issuer::from_params(&self.params, &self.key)).expect("the leaf certificate");
        Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem(), cn: cn.to_owned() }
    }
}

/// A site's CA (trusted by the switch for clients, and by the camera for the server) and a rogue
/// CA nobody trusts, both made by code (ECDSA P-256).
pub struct SitePki {
    pub ca_pem: String,
    pub rogue_ca_pem: String,
    ca: Ca,
    rogue: Ca,
}

impl std::fmt::Debug for SitePki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SitePki").finish_non_exhaustive()
    }
}

impl Default for SitePki {
    fn default() -> Self {
        Self::new()
    }
}

impl SitePki {
    pub fn new() -> Self {
        let (ca, ca_pem) = Ca::new("Site 802.1X CA");
        let (rogue, rogue_ca_pem) = Ca::new("Rogue CA");
        Self { ca_pem, rogue_ca_pem, ca, rogue }
    }

    /// The authentication server's certificate (serverAuth, DNS `name`), from the site CA.
    pub fn server(&self, name: &str) -> Issued {
        self.ca.issue(name, Some(name), rcgen::ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A server certificate for `name` from the rogue CA: an impostor.
    pub fn rogue_server(&self, name: &str) -> Issued {
        self.rogue.issue(name, Some(name), rcgen::ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate (clientAuth, subject CN `cn`) from the site CA.
    pub fn client(&self, cn: &str) -> Issued {
        self.ca.issue(cn, None, rcgen::ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// A client certificate from the rogue CA: one the authentication server does not trust.
    pub fn rogue_client(&self, cn: &str) -> Issued {
        self.rogue.issue(cn, None, rcgen::ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// What the switch is.
#[derive(Debug, Clone)]
pub struct SwitchSpec<'a> {
    /// The camera's end of the veth pair, in the test's namespace (e.g. `eth1`).
    pub camera_if: &'a str,
    /// Its address (`10.66.0.2/24`).
    pub camera_ipv4: &'a str,
    /// The switch side's address, in its namespace (`10.66.0.1/24`).
    pub switch_ipv4: &'a str,
    /// The authentication server's certificate and key.
    pub server: &'a Issued,
    /// The CA the authentication server trusts for client certificates.
    pub client_ca_pem: &'a str,
    /// hostapd's `eap_reauth_period` (0: never re-authenticate).
    pub reauth_seconds: u32,
}

/// The switch side's interface, in its namespace.
pub const SWITCH_IF: &str = "port1";

/// A switch port demanding 802.1X; see the module documentation.
pub struct Switch {
    dir: TempDir,
    namespace: Namespace,
    hostapd: Option<Child>,
    gate: Option<Child>,
    camera_ip: Ipv4Addr,
}

impl std::fmt::Debug for Switch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switch").field("dir", &self.dir.path()).field("namespace", &self.namespace.pid()).finish()
    }
}

impl Switch {
    /// Makes the switch's namespace and the veth pair, starts hostapd and the port gate (closed).
    ///
    /// # Panics
    /// Outside a private namespace, or when a tool is missing or fails (with what it said).
    pub fn start(spec: &SwitchSpec<'_>) -> Self {
        assert!(crate::netns::inside_private_netns(), "dot1x: the switch runs inside a private network namespace");
        let dir = TempDir::new("switch");
        let namespace = Namespace::new();
        let pid = namespace.pid();
        let mut switch = Self {
            camera_ip: spec
                .camera_ipv4
                .split('/')
                .next()
                .and_then(|a| a.parse().ok())
                .expect("camera_ipv4 as a.b.c.d/n"),
            dir,
            namespace,
            hostapd: None,
            gate: None,
        };
        crate::netns::ip(&["link", "add", spec.camera_if, "type", "veth", "peer", "name", SWITCH_IF]);
        crate::netns::ip(&["link", "set", SWITCH_IF, "netns", &pid.to_string()]);
        crate::netns::ip(&["addr", "add", spec.camera_ipv4, "dev", spec.camera_if]);
        crate::netns::ip(&["link", "set", spec.camera_if, "up"]);
        switch.run(&["ip", "link", "set", "lo", "up"]);
        switch.run(&["ip", "addr", "add", spec.switch_ipv4, "dev", SWITCH_IF]);
        switch.run(&["ip", "link", "set", SWITCH_IF, "up"]);
        switch.close_gate();

        let d = switch.dir.path().to_owned();
        std::fs::write(d.join("client-ca.pem"), spec.client_ca_pem).expect("write client-ca.pem");
        std::fs::write(d.join("server.pem"), &spec.server.cert_pem).expect("write server.pem");
        std::fs::write(d.join("server.key"), &spec.server.key_pem).expect("write server.key");
        std::fs::write(d.join("eap_user"), "* TLS\n").expect("write eap_user");
        let conf = format!(
            "interface={SWITCH_IF}\ndriver=wired\nlogger_stdout=-1\nlogger_stdout_level=0\nctrl_interface={ctrl}\n\
             ieee8021x=1\nuse_pae_group_addr=1\neap_reauth_period={reauth}\neap_server=1\neap_user_file={d}/eap_user\n\
             ca_cert={d}/client-ca.pem\nserver_cert={d}/server.pem\nprivate_key={d}/server.key\n",
            ctrl = switch.ctrl().display(),
            reauth = spec.reauth_seconds,
            d = d.display(),
        );
        std::fs::write(d.join("hostapd.conf"), conf).expect("write hostapd.conf");
        let log = std::fs::File::create(d.join("hostapd.log")).expect("create hostapd.log");
        switch.hostapd =
            Some(spawn_dying(switch.namespace.command("hostapd").arg("-d").arg(d.join("hostapd.conf")), Some(log)));
        let up = wait_for(Duration::from_secs(10), || (switch.cli(&["ping"]).trim() == "PONG").then_some(()));
        assert!(up.is_some(), "hostapd did not start:\n{}", switch.log());

        let script = d.join("gate.sh");
        let close = CLOSE_GATE.trim_end().replace('\n', "; ");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n# hostapd_cli -a: $1 interface, $2 event, $3 address\ncase \"$2\" in\n\
                 AP-STA-CONNECTED) nft flush chain inet port out; nft flush chain inet port in; \
                 echo \"open $3\" >> {d}/gate.log ;;\n\
                 AP-STA-DISCONNECTED) {close}; echo \"closed $3\" >> {d}/gate.log ;;\nesac\n",
                d = d.display(),
            ),
        )
        .expect("write gate.sh");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod gate.sh");
        let attached = switch.log().matches("CTRL_IFACE monitor attached").count();
        let gate_log = std::fs::File::create(d.join("gate.out")).expect("create gate.out");
        switch.gate = Some(spawn_dying(
            switch
                .namespace
                .command("hostapd_cli")
                .arg("-p")
                .arg(switch.ctrl())
                .args(["-i", SWITCH_IF, "-a"])
                .arg(&script),
            Some(gate_log),
        ));
        wait_until("hostapd_cli's action script is attached", Duration::from_secs(10), || {
            switch.log().matches("CTRL_IFACE monitor attached").count() > attached
        });
        switch
    }

    fn ctrl(&self) -> PathBuf {
        self.dir.join("hostapd")
    }

    /// Runs a command in the switch's namespace; panics unless it exits 0.
    pub fn run(&self, args: &[&str]) -> Output {
        self.namespace.run(args)
    }

    fn close_gate(&self) {
        let rules = format!(
            "table inet port {{\n chain out {{ type filter hook output priority 0; policy accept; }}\n \
             chain in {{ type filter hook input priority 0; policy accept; }}\n}}\n{}",
            CLOSE_GATE
        );
        crate::run_stdin(self.namespace.command("nft").args(["-f", "-"]), rules.replace("nft ", "").as_bytes());
    }

    /// `hostapd_cli <args>` (from this namespace: the control socket is a file).
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("hostapd_cli")
            .arg("-p")
            .arg(self.ctrl())
            .args(["-i", SWITCH_IF])
            .args(args)
            .output()
            .expect("hostapd_cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether hostapd has authorized a station on the port (`all_sta` flags `[AUTHORIZED]`).
    pub fn authorized(&self) -> bool {
        self.cli(&["all_sta"]).lines().any(|l| l.starts_with("flags=") && l.contains("[AUTHORIZED]"))
    }

    /// hostapd's `-d` output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("hostapd.log")).unwrap_or_default()
    }

    /// What the gate script did (`open <mac>`, `closed <mac>`), in order.
    pub fn gate_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("gate.log")).unwrap_or_default()
    }

    /// EAPOL-Logoff frames hostapd received: its log's count (hostapd forgets a station's counters
    /// when it removes it, after a failure) or the stations' `dot1xAuthEapolLogoffFramesRx`,
    /// whichever is more.
    pub fn eapol_logoffs_received(&self) -> u64 {
        let logged = self.log().matches("received EAPOL-Logoff").count() as u64;
        let counted: u64 = self
            .cli(&["all_sta"])
            .lines()
            .filter_map(|l| l.strip_prefix("dot1xAuthEapolLogoffFramesRx="))
            .filter_map(|n| n.trim().parse::<u64>().ok())
            .sum();
        logged.max(counted)
    }

    /// The subjects of the client certificates hostapd's EAP server verified (OpenSSL's one-line
    /// form, `/CN=...`), in order.
    pub fn client_subjects_seen(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("tls_verify_cb - preverify_ok=1") && l.contains(" depth=0 "))
            .filter_map(|l| l.split_once(" buf='").map(|(_, rest)| rest.trim_end_matches('\'').to_owned()))
            .collect()
    }

    /// The camera's address (on its end of the veth pair).
    pub fn camera_ip(&self) -> Ipv4Addr {
        self.camera_ip
    }

    /// Whether a TCP connection from the switch's side (the network) reaches the camera's
    /// address on `port`: false while the gate is closed.
    pub fn reach(&self, port: u16) -> bool {
        let ns = std::fs::File::open(format!("/proc/{}/ns/net", self.namespace.pid())).expect("the switch's namespace");
        let address = SocketAddr::from((self.camera_ip, port));
        std::thread::spawn(move || {
            // SAFETY: setns(2) on a valid descriptor of a network namespace moves only this new
            // thread, which does nothing else and ends after the connection attempt.
            let entered = unsafe { nix::libc::setns(ns.as_raw_fd(), nix::libc::CLONE_NEWNET) } == 0;
            assert!(entered, "setns into the switch's namespace: {}", std::io::Error::last_os_error());
            TcpStream::connect_timeout(&address, Duration::from_secs(2)).is_ok()
        })
        .join()
        .expect("the reach thread")
    }

    /// Takes the switch's port down or up (the camera's link loses or regains carrier).
    pub fn set_port(&self, up: bool) {
        self.run(&["ip", "link", "set", SWITCH_IF, if up { "up" } else { "down" }]);
    }
}

/// The rules (as `nft` commands) that close the port gate.
const CLOSE_GATE: &str = "nft flush chain inet port out\nnft flush chain inet port in\n\
                          nft add rule inet port out oifname \"port1\" drop\n\
                          nft add rule inet port in iifname \"port1\" drop\n";

impl Drop for Switch {
    fn drop(&mut self) {
        // The namespace's holder goes last, with the field.
        for child in [self.gate.as_mut(), self.hostapd.as_mut()].into_iter().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The camera's wpa_supplicant, started like its init script does:
/// `wpa_supplicant -Dwired -i <if> -C <control_dir> [-c <conf>]` (with `-d` into a log here).
pub struct Supplicant {
    child: Option<Child>,
    dir: TempDir,
    interface: String,
    control_dir: PathBuf,
}

impl std::fmt::Debug for Supplicant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supplicant").field("interface", &self.interface).finish_non_exhaustive()
    }
}

impl Supplicant {
    /// Starts it; returns once its control socket answers.
    ///
    /// # Panics
    /// When it does not answer within 10 s (with its output).
    pub fn start(interface: &str, control_dir: &Path, conf: Option<&Path>) -> Self {
        let dir = TempDir::new("wpa-supplicant");
        // On the camera the run directory exists; wpa_supplicant makes only the last component.
        if let Some(parent) = control_dir.parent() {
            std::fs::create_dir_all(parent).expect("create the control directory's parent");
        }
        let log = std::fs::File::create(dir.join("wpa_supplicant.log")).expect("create the log");
        let mut command = Command::new("wpa_supplicant");
        command.args(["-Dwired", "-i", interface, "-C"]).arg(control_dir).arg("-d");
        if let Some(conf) = conf {
            command.arg("-c").arg(conf);
        }
        let supplicant = Self {
            child: Some(spawn_dying(&mut command, Some(log))),
            dir,
            interface: interface.to_owned(),
            control_dir: control_dir.to_owned(),
        };
        let up = wait_for(Duration::from_secs(10), || (supplicant.cli(&["ping"]).trim() == "PONG").then_some(()));
        assert!(up.is_some(), "wpa_supplicant did not start:\n{}", supplicant.log());
        supplicant
    }

    /// `wpa_cli <args>` against it.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("wpa_cli")
            .arg("-p")
            .arg(&self.control_dir)
            .args(["-i", &self.interface])
            .args(args)
            .output()
            .expect("wpa_cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Its `-d` output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("wpa_supplicant.log")).unwrap_or_default()
    }

    /// Kills it (SIGKILL, as a power cut or a crash would: no goodbye of any kind).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Supplicant {
    fn drop(&mut self) {
        self.kill();
    }
}
