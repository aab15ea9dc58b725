//! A fleet of cameras: the real `camera-web`, each in a network namespace of its own
//! ([`crate::netns::Namespace`]) with an address of its own, `eth0` joined by a veth pair to one
//! bridge in the caller's namespace, where the site's CA listens ([`Fleet::hub`]). The caller must
//! be in a private namespace ([`crate::netns::enter_private_netns`]).
//!
//! Camera `i` of a fleet on subnet `s` is `10.s.(i / 200 + 1).(i % 200 + 2)/16`, serves HTTPS on
//! port 443 and HTTP on 80 of that address, and keeps its config, state and run dirs and its log
//! in a directory of its own. [`Fleet::start`] returns once every camera listens and has its admin
//! password set; [`Fleet::api`] talks to one through curl, as an installer's script does.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::netns::Namespace;
use crate::{spawn_dying, wait_until, TempDir};

/// What to start.
#[derive(Debug, Clone, Copy)]
pub struct FleetSpec<'a> {
    pub cameras: usize,
    /// The camera-web binary.
    pub camera_web: &'a Path,
    /// The fleet's network is `10.<subnet>.0.0/16`; two fleets side by side take two subnets.
    pub subnet: u8,
    /// Every camera's `config.json`.
    pub config: &'a str,
    /// The admin password set on every camera.
    pub password: &'a str,
}

/// One camera of the fleet.
#[derive(Debug)]
pub struct FleetCamera {
    pub ip: Ipv4Addr,
    /// Holds config.json, state/, run/ and camera-web.log.
    pub dir: PathBuf,
    child: Child,
    // Dropped after the camera (fields drop in order).
    _namespace: Namespace,
}

impl FleetCamera {
    /// The camera-web process (nsenter execs it: the same process).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("camera-web.log")).unwrap_or_default()
    }

    /// Its resident memory now, in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for FleetCamera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The running fleet; every camera is stopped on drop.
#[derive(Debug)]
pub struct Fleet {
    /// The bridge's address: where the site's CA listens.
    pub hub: Ipv4Addr,
    pub cameras: Vec<FleetCamera>,
    password: String,
    _dir: TempDir,
}

/// How many curl commands run at once when the fleet is asked something.
const CLIENTS: usize = 8;

impl Fleet {
    /// Makes the bridge and every camera's namespace, starts the cameras and sets their password.
    ///
    /// # Panics
    /// Outside a private namespace, when a tool fails, or when a camera does not start in 60 s.
    pub fn start(spec: &FleetSpec<'_>) -> Self {
        assert!(crate::netns::inside_private_netns(), "fleet: the cameras run inside a private network namespace");
        let dir = TempDir::new("fleet");
        let s = spec.subnet;
        let bridge = format!("fleet{s}");
        let hub = Ipv4Addr::new(10, s, 0, 1);
        crate::netns::ip(&["link", "add", &bridge, "type", "bridge"]);
        crate::netns::ip(&["addr", "add", &format!("{hub}/16"), "dev", &bridge]);
        crate::netns::ip(&["link", "set", &bridge, "up"]);
        let mut cameras = Vec::with_capacity(spec.cameras);
        let mut links = String::new();
        let mut namespaces = Vec::with_capacity(spec.cameras);
        for i in 0..spec.cameras {
            let namespace = Namespace::new();
            let host_side = format!("f{s}c{i}");
            links += &format!("link add {host_side} type veth peer name eth0 netns {}\n", namespace.pid());
            links += &format!("link set {host_side} master {bridge} up\n");
            namespaces.push(namespace);
        }
        ip_batch(Command::new("ip"), &links);
        for (i, namespace) in namespaces.into_iter().enumerate() {
            let ip =
                Ipv4Addr::new(10, s, u8::try_from(i / 200 + 1).expect("at most 50,000 cameras"), (i % 200 + 2) as u8);
            ip_batch(
                namespace.command("ip"),
                &format!("link set lo up\naddr add {ip}/16 dev eth0\nlink set eth0 up\n"),
            );
            let camera_dir = dir.join(format!("camera-{i}"));
            std::fs::create_dir_all(&camera_dir).expect("the camera's directory");
            std::fs::write(camera_dir.join("config.json"), spec.config).expect("config.json");
            let log = File::create(camera_dir.join("camera-web.log")).expect("the camera's log");
            let mut command = namespace.command(spec.camera_web);
            crate::camera_web_dirs(&mut command, &camera_dir).args([
                "--https",
                &format!("{ip}:443"),
                "--http",
                &format!("{ip}:80"),
            ]);
            let child = spawn_dying(&mut command, Some(log));
            cameras.push(FleetCamera { ip, dir: camera_dir, child, _namespace: namespace });
        }
        let fleet = Self { hub, cameras, password: spec.password.to_owned(), _dir: dir };
        for camera in &fleet.cameras {
            wait_until(&format!("camera {} listens", camera.ip), Duration::from_secs(60), || {
                camera.log().contains("listening on https://")
            });
        }
        let password = serde_json::json!({"password": spec.password});
        let answers = fleet.each(|camera| fleet.api(camera, "POST", "/api/v1/setup", Some(&password)));
        for (camera, (status, body)) in fleet.cameras.iter().zip(answers) {
            assert_eq!(status, 200, "setting camera {}'s password: {body}", camera.ip);
        }
        fleet
    }

    /// Calls `f` for every camera, [`CLIENTS`] at a time; the answers in the cameras' order.
    pub fn each<T: Send>(&self, f: impl Fn(&FleetCamera) -> T + Sync) -> Vec<T> {
        let chunk = self.cameras.len().div_ceil(CLIENTS).max(1);
        std::thread::scope(|scope| {
            let workers: Vec<_> = self
                .cameras
                .chunks(chunk)
                .map(|cameras| scope.spawn(|| cameras.iter().map(&f).collect::<Vec<T>>()))
                .collect();
            workers.into_iter().flat_map(|w| w.join().expect("a fleet client thread")).collect()
        })
    }

    /// Trusts `pem` (the site CA's certificate) beside each camera's own CA from now on: what an
    /// installer's script does before the cameras enroll with that CA.
    pub fn trust(&self, pem: &str) {
        for camera in &self.cameras {
            let mut trust = std::fs::read_to_string(camera.dir.join("state/ca.crt")).expect("the camera's CA");
            trust += pem;
            std::fs::write(camera.dir.join("trust.pem"), trust).expect("trust.pem");
        }
    }

    /// One API request to `camera` with the admin password, trusting its own CA (and what
    /// [`Fleet::trust`] added): (status, JSON).
    pub fn api(
        &self,
        camera: &FleetCamera,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut command = Command::new("curl");
        let added = camera.dir.join("trust.pem");
        command
            .args(["-sS", "--max-time", "30", "--cacert"])
            .arg(if added.exists() { added } else { camera.dir.join("state/ca.crt") })
            .args(["-u", &format!("admin:{}", self.password), "-X", method, "-w", "\n%{http_code}"])
            .arg(format!("https://{}{path}", camera.ip));
        if let Some(body) = body {
            command.args(["-H", "Content-Type: application/json", "-d", &body.to_string()]);
        }
        let out = command.stdin(Stdio::null()).output().expect("curl runs");
        assert!(
            out.status.success(),
            "curl {method} {path} on camera {} failed: {}",
            camera.ip,
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let (body, status) = text.rsplit_once('\n').expect("curl's status line");
        (status.trim().parse().expect("an HTTP status"), serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
    }

    /// A GET that must answer 200.
    pub fn get(&self, camera: &FleetCamera, path: &str) -> serde_json::Value {
        let (status, body) = self.api(camera, "GET", path, None);
        assert_eq!(status, 200, "GET {path} on camera {}: {body}", camera.ip);
        body
    }

    /// How many events of `kind` each camera recorded.
    pub fn events_of(&self, kind: &str) -> Vec<usize> {
        self.event_times(kind).iter().map(Vec::len).collect()
    }

    /// When each camera recorded events of `kind` (seconds since the epoch).
    pub fn event_times(&self, kind: &str) -> Vec<Vec<u64>> {
        self.each(|camera| {
            let events = self.get(camera, "/api/v1/events");
            let events = events["events"].as_array().cloned().unwrap_or_default();
            events.iter().filter(|e| e["kind"] == kind).filter_map(|e| e["time_unix"].as_u64()).collect()
        })
    }
}

/// Runs `ip -batch -` (as `ip`, which may be an nsenter'd one) with `commands` on stdin.
fn ip_batch(mut ip: Command, commands: &str) {
    crate::run_stdin(ip.args(["-batch", "-"]), commands.as_bytes());
}
