//! The interop matrix: every client against the camera's own chain (IPv4, IPv6, name), against
//! certificates for public names signed with the camera's key (rogue), and against the same names
//! from an unconstrained CA the client trusts the same way (control); printed as a table and
//! checked against the expectations.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::clients::{fetch_chain, Case, Client, Outcome, Toolbox};
use super::pki::{describe, two_tier, CameraPki, ServerCert};

/// The camera's addresses inside the namespace (camera-testns's default setup) and its name.
pub const CAM_IPV4: &str = "10.77.0.2";
pub const CAM_IPV6: &str = "fd77::2";
pub const CAM_NAME: &str = "testcam.local";
/// The public name and address the rogue certificates claim. Never contacted: every client connects
/// to the test address and is told to verify for these (and the namespace has no route out).
pub const PUBLIC_DNS: &str = "www.example.com";
pub const PUBLIC_IP: &str = "8.8.8.8";

/// Ports of the rogue and control servers in the namespace (fresh, so every port is free).
const ROGUE_DNS_PORT: u16 = 9441;
const ROGUE_IP_PORT: u16 = 9442;
const CONTROL_DNS_PORT: u16 = 9443;
const CONTROL_IP_PORT: u16 = 9444;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    Ipv4,
    Ipv6,
    Name,
    RogueDns,
    RogueIp,
    ControlDns,
    ControlIp,
}

impl Column {
    pub const ALL: [Column; 7] = [
        Column::Ipv4,
        Column::Ipv6,
        Column::Name,
        Column::RogueDns,
        Column::RogueIp,
        Column::ControlDns,
        Column::ControlIp,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Column::Ipv4 => "IPv4",
            Column::Ipv6 => "IPv6",
            Column::Name => "name",
            Column::RogueDns => "rogue-DNS",
            Column::RogueIp => "rogue-IP",
            Column::ControlDns => "ctl-DNS",
            Column::ControlIp => "ctl-IP",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Column::Ipv4 => "ipv4",
            Column::Ipv6 => "ipv6",
            Column::Name => "name",
            Column::RogueDns => "rogue-dns",
            Column::RogueIp => "rogue-ip",
            Column::ControlDns => "control-dns",
            Column::ControlIp => "control-ip",
        }
    }

    /// The name the client verifies the certificate for.
    fn name(self) -> &'static str {
        match self {
            Column::Ipv4 => CAM_IPV4,
            Column::Ipv6 => CAM_IPV6,
            Column::Name => CAM_NAME,
            Column::RogueDns | Column::ControlDns => PUBLIC_DNS,
            Column::RogueIp | Column::ControlIp => PUBLIC_IP,
        }
    }
}

/// What a client must do with a cell.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    Accept,
    /// Refuse, saying one of these (case-insensitive): so a refusal for another reason (a harness
    /// fault such as a closed port) does not pass for the one the row is about.
    Refuse(&'static [&'static str]),
}

/// A TLS server (`openssl s_server -www`) in the namespace; killed on drop.
pub struct SServer {
    child: Child,
    pub port: u16,
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SServer {
    /// Serves `cert` (leaf + its chain) on every address of the namespace, IPv4 and IPv6, at `port`.
    pub fn start(work: &Path, tag: &str, port: u16, cert: &ServerCert) -> SServer {
        let dir = work.join(format!("s_server-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("leaf.pem"), &cert.leaf_pem).unwrap();
        std::fs::write(dir.join("chain.pem"), cert.chain_pem.concat()).unwrap();
        std::fs::write(dir.join("key.pem"), &cert.key_pem).unwrap();
        let mut cmd = Command::new("openssl");
        cmd.args(["s_server", "-quiet", "-www", "-accept", &port.to_string(), "-cert", "leaf.pem", "-key", "key.pem"]);
        if !cert.chain_pem.is_empty() {
            cmd.args(["-cert_chain", "chain.pem"]);
        }
        let log = dir.join("s_server.log");
        let child = cmd
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("openssl s_server starts");
        let mut server = SServer { child, port };
        let addr = SocketAddr::new(CAM_IPV4.parse().unwrap(), port);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            let exited = server.child.try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "openssl s_server {tag} does not listen on {addr} ({exited:?}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let served = fetch_chain(CAM_IPV4.parse().unwrap(), port, None);
        assert_eq!(served.len(), 1 + cert.chain_pem.len(), "s_server {tag} does not send the whole chain");
        server
    }
}

/// The camera as the matrix sees it: where it serves HTTPS and its PKI.
pub struct Target {
    pub description: String,
    pub port: u16,
    pub pki: CameraPki,
}

/// Builds a [`CameraPki`] the way a user and a thief meet it: the trust anchor users import,
/// the chain the server really sends after its leaf (fetched over TLS), the signing key from
/// storage. Checks that the key belongs to the certificate that issued the served leaf.
pub fn observe_pki(work: &Path, port: u16, trust_anchor_pem: String, signing_key_pem: String) -> CameraPki {
    let served = fetch_chain(CAM_IPV4.parse().unwrap(), port, Some(CAM_NAME));
    assert!(served.len() >= 2, "the server sends only its leaf, no issuing certificate: {served:?}");
    let pki = CameraPki { trust_anchor_pem, served_chain_pem: served[1..].to_vec(), signing_key_pem };
    pki.check_key_pairs_with_issuer(work);
    pki
}

/// The results of one run of the matrix.
pub struct Matrix {
    title: String,
    cells: Vec<(Client, Column, Outcome, Expect)>,
}

/// Runs every client on every column against `target` and returns the results with their
/// expectations (`expect`). Starts the rogue servers (certificates for [`PUBLIC_DNS`] and
/// [`PUBLIC_IP`] signed with the target's signing key, sent with its served chain) and the control
/// servers (the same names from an unconstrained two-tier CA).
pub fn run(work: &Path, toolbox: &Toolbox, target: &Target, expect: fn(Client, Column) -> Expect) -> Matrix {
    let anchor = work.join("cacert.crt");
    std::fs::write(&anchor, &target.pki.trust_anchor_pem).unwrap();
    let control = two_tier("Unconstrained control", None);
    let control_anchor = work.join("control-ca.crt");
    std::fs::write(&control_anchor, &control.trust_anchor_pem).unwrap();

    let servers = [
        SServer::start(work, "rogue-dns", ROGUE_DNS_PORT, &target.pki.issue_server_cert(&[PUBLIC_DNS], "rogue www")),
        SServer::start(work, "rogue-ip", ROGUE_IP_PORT, &target.pki.issue_server_cert(&[PUBLIC_IP], "rogue ip")),
        SServer::start(work, "control-dns", CONTROL_DNS_PORT, &control.issue_server_cert(&[PUBLIC_DNS], "control www")),
        SServer::start(work, "control-ip", CONTROL_IP_PORT, &control.issue_server_cert(&[PUBLIC_IP], "control ip")),
    ];

    let case = |column: Column| {
        let (address, port, ca_file): (&str, u16, &PathBuf) = match column {
            Column::Ipv4 | Column::Name => (CAM_IPV4, target.port, &anchor),
            Column::Ipv6 => (CAM_IPV6, target.port, &anchor),
            Column::RogueDns => (CAM_IPV4, ROGUE_DNS_PORT, &anchor),
            Column::RogueIp => (CAM_IPV4, ROGUE_IP_PORT, &anchor),
            Column::ControlDns => (CAM_IPV4, CONTROL_DNS_PORT, &control_anchor),
            Column::ControlIp => (CAM_IPV4, CONTROL_IP_PORT, &control_anchor),
        };
        Case {
            id: column.id().to_owned(),
            address: address.parse().unwrap(),
            port,
            name: column.name().to_owned(),
            ca_file: ca_file.clone(),
        }
    };

    let started = Instant::now();
    let mut cells = Vec::new();
    std::thread::scope(|s| {
        let runs: Vec<_> = Client::ALL
            .iter()
            .map(|&client| {
                let columns: Vec<Column> = Column::ALL.into_iter().collect();
                let cases: Vec<Case> = columns.iter().map(|&c| case(c)).collect();
                let handle = s.spawn(move || {
                    let t = Instant::now();
                    let outcomes = toolbox.run(client, &cases);
                    (outcomes, t.elapsed())
                });
                (client, columns, handle)
            })
            .collect();
        for (client, columns, handle) in runs {
            let (outcomes, took) = handle.join().unwrap_or_else(|_| panic!("the {} run panicked", client.label()));
            println!("interop: {} ran {} cases in {} ms", client.label(), columns.len(), took.as_millis());
            for (column, outcome) in columns.into_iter().zip(outcomes) {
                cells.push((client, column, outcome, expect(client, column)));
            }
        }
    });
    println!("interop: all clients in {} ms", started.elapsed().as_millis());
    drop(servers);

    let mut title = target.description.clone();
    let _ = write!(
        title,
        "\n  trust anchor: {}\n  served after the leaf: {}",
        describe(work, &target.pki.trust_anchor_pem),
        target.pki.served_chain_pem.iter().map(|c| describe(work, c)).collect::<Vec<_>>().join(" | ")
    );
    Matrix { title, cells }
}

impl Matrix {
    fn cell(&self, client: Client, column: Column) -> Option<&(Client, Column, Outcome, Expect)> {
        self.cells.iter().find(|(c, col, _, _)| *c == client && *col == column)
    }

    /// Whether an outcome is what was expected.
    fn meets(outcome: &Outcome, expect: Expect) -> bool {
        match expect {
            Expect::Accept => outcome.accepted,
            Expect::Refuse(because) => {
                let detail = outcome.detail.to_ascii_lowercase();
                !outcome.accepted && because.iter().any(|b| detail.contains(&b.to_ascii_lowercase()))
            }
        }
    }

    /// The table (client x column; a cell is "accept" or "refuse", with "!!" when it is not
    /// what was expected), then each refusal's reason.
    pub fn render(&self) -> String {
        let mut out = format!("interop matrix: {}\n", self.title);
        let _ = write!(out, "{:<18}", "client");
        for column in Column::ALL {
            let _ = write!(out, "| {:<10}", column.label());
        }
        out.push('\n');
        out.push_str(&"-".repeat(18 + 12 * Column::ALL.len()));
        out.push('\n');
        for client in Client::ALL {
            let _ = write!(out, "{:<18}", client.label());
            for column in Column::ALL {
                let text = match self.cell(client, column) {
                    None => "missing".to_owned(),
                    Some((_, _, outcome, expect)) => {
                        let word = if outcome.accepted { "accept" } else { "refuse" };
                        if Self::meets(outcome, *expect) {
                            word.to_owned()
                        } else {
                            format!("{word} !!")
                        }
                    }
                };
                let _ = write!(out, "| {text:<10}");
            }
            out.push('\n');
        }
        out.push_str("reasons:\n");
        for (client, column, outcome, _) in &self.cells {
            if !outcome.accepted {
                let _ = writeln!(out, "  {} / {}: {}", client.label(), column.label(), outcome.detail);
            }
        }
        out
    }

    /// The cells that are not what was expected, one line each.
    pub fn mismatches(&self) -> Vec<String> {
        self.cells
            .iter()
            .filter(|(_, _, outcome, expect)| !Self::meets(outcome, *expect))
            .map(|(client, column, outcome, expect)| {
                let expected = match expect {
                    Expect::Accept => "accept".to_owned(),
                    Expect::Refuse(because) => format!("refuse saying one of {because:?}"),
                };
                let got = if outcome.accepted { "accepted" } else { "refused" };
                format!("{} / {}: expected {expected}, {got}: {}", client.label(), column.label(), outcome.detail)
            })
            .collect()
    }
}
