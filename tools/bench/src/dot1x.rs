//! 802.1X: from the settings to an open switch port, the camera next to wpa_supplicant alone, in a
//! private network namespace, with camera-web's 802.1X test fixtures
//! (`camera_test_support::dot1x`: the site PKI, a switch port that demands EAP-TLS, wpa_supplicant
//! started as the camera's init script does).
//!
//! `unshare -rn` re-runs this bench binary as `bench dot1x-inside CAMERA_WEB ROUNDS` (see
//! [`inside`]) with `camera_test_support::netns`'s marker variable set, as its own test re-entry
//! does, so the fixtures know they are in a namespace of their own. Each round measures both sides,
//! each on a fresh switch (hostapd in a namespace of its own, joined by a new veth pair whose
//! camera end is `eth0`, the camera's wired port) and the camera on a fresh state dir:
//!
//! - the camera: wpa_supplicant idle (`-Dwired -i eth0 -C <run>/wpa_supplicant`, no `-c`), then the
//!   release camera-web; the admin password set and the client certificate uploaded before the
//!   clock; the clock runs from `PUT /api/v1/dot1x` to the switch reporting the port authorized;
//! - the reference: wpa_supplicant alone with a hand-written configuration file (the same
//!   certificate, key and CA); the clock runs from its start to the port authorized.
//!
//! The switch's stations are polled every 20 ms (`hostapd_cli all_sta`), and wpa_supplicant's
//! debug output with them: the first sighting of each step, from the clock, is the breakdown. It
//! prints one line per figure; [`measure`] reads them back.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use camera_test_support::dot1x::{Issued, SitePki, Supplicant, Switch, SwitchSpec, SERVER_NAME};
use camera_test_support::{netns, TempDir};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::procs;
use super::stats::Stats;
use task_support::Result;

/// The hidden task name the namespace runs.
pub const INSIDE_TASK: &str = "dot1x-inside";
/// The camera's wired port (camera-web's default 802.1X interface, the init script's too).
const CAMERA_IF: &str = "eth0";
/// How often the switch and the supplicant's log are looked at.
const POLL: Duration = Duration::from_millis(20);
/// How long one sample may take before it counts as failed.
const GIVE_UP: Duration = Duration::from_secs(60);
const PASSWORD: &str = "bench admin password";
const CLIENT_CN: &str = "camera-bench-0001";
/// Sample lines: `dot1x <side> <step> <micros>`; the camera's control commands: `dot1x-commands <text>`.
const SAMPLE: &str = "dot1x";
const COMMANDS: &str = "dot1x-commands";

/// A step on the way to an open port, as first seen after the clock started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The camera: `PUT /api/v1/dot1x` answered. The reference: its control socket answers.
    Ready,
    /// The supplicant's PAE entered CONNECTING (from there it waits for the switch, then sends
    /// EAPOL-Start).
    Connecting,
    /// It sent EAPOL-Start.
    EapolStart,
    /// EAP started (the switch's EAP-Request/Identity arrived).
    EapStarted,
    /// EAP-Success arrived.
    EapSuccess,
    /// The switch reports the port authorized: the end of the clock.
    Authorized,
}

impl Step {
    pub const ALL: [Step; 6] =
        [Step::Ready, Step::Connecting, Step::EapolStart, Step::EapStarted, Step::EapSuccess, Step::Authorized];

    fn key(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Connecting => "connecting",
            Self::EapolStart => "eapol-start",
            Self::EapStarted => "eap-started",
            Self::EapSuccess => "eap-success",
            Self::Authorized => "authorized",
        }
    }

    /// What wpa_supplicant's debug output (`-d`) says at this step.
    fn marker(self) -> Option<&'static str> {
        match self {
            Self::Connecting => Some("EAPOL: SUPP_PAE entering state CONNECTING"),
            Self::EapolStart => Some("EAPOL: txStart"),
            Self::EapStarted => Some("CTRL-EVENT-EAP-STARTED"),
            Self::EapSuccess => Some("CTRL-EVENT-EAP-SUCCESS"),
            Self::Ready | Self::Authorized => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Ready => "camera: PUT answered; alone: control socket answers",
            Self::Connecting => "supplicant PAE enters CONNECTING",
            Self::EapolStart => "EAPOL-Start sent",
            Self::EapStarted => "EAP started (Request/Identity received)",
            Self::EapSuccess => "EAP-Success received",
            Self::Authorized => "port authorized (hostapd)",
        }
    }
}

/// One side's samples: the whole time, and each step's first sighting (from the clock).
#[derive(Debug)]
pub struct Side {
    pub total: Stats,
    pub steps: Vec<(Step, Option<Stats>)>,
}

impl Side {
    pub fn step(&self, step: Step) -> Option<&Stats> {
        self.steps.iter().find(|(s, _)| *s == step).and_then(|(_, stats)| stats.as_ref())
    }
}

#[derive(Debug)]
pub struct Dot1x {
    pub camera: Side,
    pub reference: Side,
    /// The control commands wpa_supplicant received in the camera's timed span (first round).
    pub commands: String,
}

/// Runs `rounds` rounds in a new user + network namespace and collects the samples.
pub fn measure(camera_web: &Path, rounds: usize) -> Result<Dot1x> {
    let rounds = rounds.to_string();
    let stdout =
        procs::reenter_in_netns(INSIDE_TASK, &[camera_web.as_os_str(), rounds.as_ref()], "the 802.1X measurement")?;
    let side = |name: &str| -> Result<Side> {
        let samples = |step: Step| -> Vec<Duration> {
            stdout
                .lines()
                .filter_map(|line| {
                    let mut fields = line.split('\t');
                    match (fields.next(), fields.next(), fields.next(), fields.next()) {
                        (Some(SAMPLE), Some(s), Some(k), Some(micros)) if s == name && k == step.key() => {
                            micros.trim().parse().ok().map(Duration::from_micros)
                        }
                        _ => None,
                    }
                })
                .collect()
        };
        let total = Stats::of(&samples(Step::Authorized))
            .ok_or_else(|| format!("no {name} samples from the namespace:\n{stdout}"))?;
        let steps = Step::ALL.iter().map(|&step| (step, Stats::of(&samples(step)))).collect();
        Ok(Side { total, steps })
    };
    let commands = stdout
        .lines()
        .find_map(|line| line.strip_prefix(COMMANDS)?.strip_prefix('\t'))
        .unwrap_or("(none seen)")
        .to_owned();
    Ok(Dot1x { camera: side("camera")?, reference: side("reference")?, commands })
}

/// The measurement itself, inside the namespace: `bench dot1x-inside CAMERA_WEB ROUNDS`.
pub fn inside(mut args: impl Iterator<Item = String>) -> Result {
    let usage = "usage: bench dot1x-inside CAMERA_WEB ROUNDS (run by cargo xtask bench)";
    let camera_web = PathBuf::from(args.next().ok_or(usage)?);
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).ok_or(usage)?;
    procs::fresh_netns(INSIDE_TASK)?;

    let pki = SitePki::new();
    let server = pki.server(SERVER_NAME);
    let client = pki.client(CLIENT_CN);
    let tls = super::latency::any_certificate_client()?;
    for round in 0..rounds {
        // Alternate which side goes first, so load that drifts during the run hits both alike.
        for camera in if round % 2 == 0 { [true, false] } else { [false, true] } {
            let switch = Switch::start(&SwitchSpec {
                camera_if: CAMERA_IF,
                camera_ipv4: "10.66.0.2/24",
                switch_ipv4: "10.66.0.1/24",
                server: &server,
                client_ca_pem: &pki.ca_pem,
                reauth_seconds: 0,
            });
            // Short paths (`/tmp/camera-test-dot1x-XXXXXX/run/wpa_supplicant/eth0`): a control
            // socket's path must fit a sockaddr_un (108 bytes).
            let dir = TempDir::new("dot1x");
            let steps = if camera {
                camera_round(&camera_web, dir.path(), &tls, &switch, &pki, &client, round == 0)?
            } else {
                reference_round(dir.path(), &switch, &pki, &client)?
            };
            for (step, at) in steps {
                let side = if camera { "camera" } else { "reference" };
                println!("{SAMPLE}\t{side}\t{}\t{}", step.key(), at.as_micros());
            }
            drop(switch);
            // The veth pair goes with the switch's namespace, a moment after its last process.
            let gone = Instant::now();
            while netns::try_ip(&["link", "show", CAMERA_IF]).is_ok() {
                if gone.elapsed() > Duration::from_secs(20) {
                    return Err(format!("{CAMERA_IF} still exists 20 s after its switch stopped"));
                }
                std::thread::sleep(POLL);
            }
        }
    }
    Ok(())
}

/// One camera sample: returns each step's first sighting from the clock.
fn camera_round(
    camera_web: &Path,
    dir: &Path,
    tls: &Arc<ClientConfig>,
    switch: &Switch,
    pki: &SitePki,
    client: &Issued,
    print_commands: bool,
) -> Result<Vec<(Step, Duration)>> {
    // The init script's order: the supplicant first, idle (no configuration), then camera-web.
    let control = dir.join("run/wpa_supplicant");
    std::fs::create_dir_all(&control).map_err(|e| format!("cannot create {}: {e}", control.display()))?;
    let supplicant = Supplicant::start(CAMERA_IF, &control, None);
    let (mut camera, addr) = super::latency::start(camera_web, dir)?;
    camera.wait_listening(addr, Duration::from_secs(30))?;
    let mut api = Api { addr, tls: tls.clone(), session: None };

    let password = serde_json::json!({ "password": PASSWORD }).to_string();
    let (status, head, body) = api.call("POST", "/api/v1/setup", Some("application/json"), password.as_bytes())?;
    let token = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().starts_with("set-cookie:").then(|| l["set-cookie:".len()..].trim()))
        .and_then(|cookie| cookie.split(';').next())
        .map(str::to_owned);
    let csrf = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["csrf_token"].as_str().map(str::to_owned));
    let (200, Some(token), Some(csrf)) = (status, token, csrf) else {
        return Err(format!("POST /api/v1/setup answered {status}: {}", String::from_utf8_lossy(&body)));
    };
    api.session = Some((token, csrf));

    let boundary = "camera-bench-boundary-7d3f";
    let mut upload = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"certificate\"; filename=\"client.pem\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    upload.extend_from_slice(client.bundle_pem().as_bytes());
    upload.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let form = format!("multipart/form-data; boundary={boundary}");
    api.expect_ok("PUT", "/api/v1/dot1x/certificate", Some(&form), &upload)?;

    // camera-web follows the supplicant on its default interface from the start, as on a camera.
    let since = Instant::now();
    loop {
        let view = api.expect_ok("GET", "/api/v1/dot1x", None, b"")?;
        if view["supplicant"]["supplicant_running"] == true {
            break;
        }
        if since.elapsed() > Duration::from_secs(20) {
            return Err(format!("camera-web does not see wpa_supplicant on {CAMERA_IF}: {view}"));
        }
        std::thread::sleep(POLL);
    }

    let settings = serde_json::json!({
        "enabled": true,
        "interface": CAMERA_IF,
        "server_ca_pem": pki.ca_pem,
        "domain_match": SERVER_NAME,
    })
    .to_string();
    let from = supplicant.log().len();
    let clock = Instant::now();
    api.expect_ok("PUT", "/api/v1/dot1x", Some("application/json"), settings.as_bytes())?;
    let mut steps = vec![(Step::Ready, clock.elapsed())];
    wait_authorized(switch, &supplicant, from, clock, &mut steps)
        .map_err(|e| format!("{e}\ncamera-web:\n  {}", camera.log_tail()))?;
    if print_commands {
        let log = supplicant.log();
        println!("{COMMANDS}\t{}", commands(log.get(from..).unwrap_or_default()));
    }
    drop(camera);
    drop(supplicant);
    Ok(steps)
}

/// One reference sample: wpa_supplicant alone, started with its configuration file.
fn reference_round(dir: &Path, switch: &Switch, pki: &SitePki, client: &Issued) -> Result<Vec<(Step, Duration)>> {
    let write = |name: &str, text: &str| -> Result<PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    };
    let ca = write("ca.pem", &pki.ca_pem)?;
    let cert = write("client.pem", &client.cert_pem)?;
    let key = write("client.key", &client.key_pem)?;
    let conf = write(
        "wpa_supplicant.conf",
        &format!(
            "ap_scan=0\neapol_version=1\nnetwork={{\n\tkey_mgmt=IEEE8021X\n\teap=TLS\n\tidentity=\"{CLIENT_CN}\"\n\
             \tca_cert=\"{}\"\n\tclient_cert=\"{}\"\n\tprivate_key=\"{}\"\n\tdomain_match=\"{SERVER_NAME}\"\n\
             \teapol_flags=0\n}}\n",
            ca.display(),
            cert.display(),
            key.display()
        ),
    )?;
    let control = dir.join("wpa_supplicant");
    let clock = Instant::now();
    let supplicant = Supplicant::start(CAMERA_IF, &control, Some(&conf));
    let mut steps = vec![(Step::Ready, clock.elapsed())];
    wait_authorized(switch, &supplicant, 0, clock, &mut steps)?;
    Ok(steps)
}

/// Polls the switch (and the supplicant's log, after byte `from`) every [`POLL`] until the port is
/// authorized; records each step's first sighting. The log is read before the switch is asked, and
/// once more after it said yes, so that no step goes unrecorded.
fn wait_authorized(
    switch: &Switch,
    supplicant: &Supplicant,
    from: usize,
    clock: Instant,
    steps: &mut Vec<(Step, Duration)>,
) -> Result {
    let mut pending: Vec<Step> = Step::ALL.iter().copied().filter(|s| s.marker().is_some()).collect();
    let mut look = |steps: &mut Vec<(Step, Duration)>| {
        if pending.is_empty() {
            return;
        }
        let log = supplicant.log();
        let seen = clock.elapsed();
        let new = log.get(from..).unwrap_or_default();
        pending.retain(|step| {
            let found = step.marker().is_some_and(|m| new.contains(m));
            if found {
                steps.push((*step, seen));
            }
            !found
        });
    };
    loop {
        look(steps);
        let authorized = switch.authorized();
        let now = clock.elapsed();
        if authorized {
            steps.push((Step::Authorized, now));
            look(steps);
            return Ok(());
        }
        if now > GIVE_UP {
            let tail = |text: &str| {
                text.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n  ")
            };
            return Err(format!(
                "the port is not authorized {GIVE_UP:?} after the clock started\nwpa_supplicant:\n  {}\nhostapd:\n  {}",
                tail(&supplicant.log()),
                tail(&switch.log())
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// The control commands in wpa_supplicant's debug output, in order, repeats of a command counted
/// (`SET_NETWORK x8`); what a command sets is left out (it may be a path or a name).
fn commands(log: &str) -> String {
    let mut list: Vec<(String, usize)> = Vec::new();
    for line in log.lines() {
        let Some(rest) = line.split_once("Control interface command '").map(|(_, rest)| rest) else { continue };
        let command: String = rest.chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect();
        match list.last_mut() {
            Some((last, n)) if *last == command => *n += 1,
            _ => list.push((command, 1)),
        }
    }
    list.iter().map(|(c, n)| if *n > 1 { format!("{c} x{n}") } else { c.clone() }).collect::<Vec<_>>().join(", ")
}

/// camera-web's API over one TLS connection per request, as the UI uses it: a session cookie and
/// its CSRF token (so no password check, slow on purpose, lands in the timed request).
struct Api {
    addr: SocketAddr,
    tls: Arc<ClientConfig>,
    /// The session cookie's value and the CSRF token.
    session: Option<(String, String)>,
}

impl Api {
    /// One request; returns the status, the response head and the body.
    fn call(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(u16, String, Vec<u8>)> {
        let failed = |e: std::io::Error| format!("{method} {path}: {e}");
        let tcp = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).map_err(failed)?;
        tcp.set_nodelay(true).map_err(failed)?;
        tcp.set_read_timeout(Some(Duration::from_secs(30))).map_err(failed)?;
        tcp.set_write_timeout(Some(Duration::from_secs(30))).map_err(failed)?;
        let name = ServerName::IpAddress(IpAddr::from([127, 0, 0, 1]).into());
        let conn = ClientConnection::new(self.tls.clone(), name).map_err(|e| format!("{method} {path}: {e}"))?;
        let mut stream = StreamOwned::new(conn, tcp);
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: camera-bench\r\nAccept: application/json\r\n\
             Connection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(content_type) = content_type {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        if let Some((token, csrf)) = &self.session {
            head.push_str(&format!("Cookie: {token}\r\nX-CSRF-Token: {csrf}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).map_err(failed)?;
        stream.write_all(body).map_err(failed)?;
        stream.flush().map_err(failed)?;

        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        let mut expected = None;
        loop {
            let n = match stream.read(&mut chunk) {
                Ok(n) => n,
                // A peer that closes without close_notify: what arrived is all there is.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
                Err(e) => return Err(failed(e)),
            };
            buf.extend_from_slice(&chunk[..n]);
            if expected.is_none() {
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok());
                    expected = Some((end + 4, length));
                }
            }
            let complete = matches!(expected, Some((start, Some(length))) if buf.len() >= start + length);
            if n == 0 || complete {
                break;
            }
        }
        let Some((start, length)) = expected else {
            return Err(format!("{method} {path}: no HTTP answer"));
        };
        let head = String::from_utf8_lossy(&buf[..start]).into_owned();
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let end = length.map_or(buf.len(), |l| (start + l).min(buf.len()));
        Ok((status, head, buf[start..end].to_vec()))
    }

    /// A request that must answer 200 with JSON.
    fn expect_ok(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<serde_json::Value> {
        let (status, _, answer) = self.call(method, path, content_type, body)?;
        if status != 200 {
            return Err(format!("{method} {path} answered {status}: {}", String::from_utf8_lossy(&answer)));
        }
        serde_json::from_slice(&answer).map_err(|e| format!("{method} {path}: not JSON ({e})"))
    }
}
