//! `camera-web --respawn` (what the init script runs): a server that dies is started again, a
//! stop signal ends both processes, and a server that cannot start is not retried in a loop.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use common::{camera_web_command, curl_with_ca, free_port, wait_until, TempDir};

struct Supervised {
    child: Child,
    dir: TempDir,
    lines: Receiver<String>,
    https: u16,
}

impl Supervised {
    fn start(https: u16) -> Self {
        let dir = TempDir::new("respawn");
        std::fs::write(dir.path().join("config.json"), r#"{"camera": {"loopback": true}}"#).unwrap();
        let mut child = camera_web_command(dir.path())
            .args(["--https", &format!("127.0.0.1:{https}"), "--http", "off", "--respawn"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { child, dir, lines, https }
    }

    /// Waits for a log line containing `text`; returns it.
    fn wait_for_line(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!("no log line with {text:?}; saw {seen:#?}");
    }

    fn supervisor(&self) -> u32 {
        self.child.id()
    }

    fn serves(&self) -> bool {
        let (status, _) = curl_with_ca(
            &self.dir.path().join("state/ca.crt"),
            &[&format!("https://127.0.0.1:{}/cacert.crt", self.https)],
        );
        status == 200
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The processes whose parent is `parent`.
fn children(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the ")" that ends the command name: state, ppid, ...
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            found.push(pid);
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
}

fn signal(pid: u32, signal: &str) {
    assert!(Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().unwrap().success());
}

#[test]
fn a_crashed_server_is_started_again_and_sigterm_stops_both() {
    let mut camera = Supervised::start(free_port());
    camera.wait_for_line("listening on https://");
    assert!(camera.serves());
    let ca = std::fs::read(camera.dir.path().join("state/ca.crt")).unwrap();
    let first = children(camera.supervisor());
    assert_eq!(first.len(), 1, "one server process under the supervisor: {first:?}");

    // What panic = "abort" does to the server.
    signal(first[0], "ABRT");
    let said = camera.wait_for_line("the server stopped");
    assert!(said.contains("SIGABRT") && said.contains("starting it again"), "{said}");
    camera.wait_for_line("listening on https://");
    let second = children(camera.supervisor());
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second, first, "a new server process");
    assert!(camera.serves(), "the restarted server answers on the same port");
    assert_eq!(std::fs::read(camera.dir.path().join("state/ca.crt")).unwrap(), ca, "the CA is kept");

    signal(camera.supervisor(), "TERM");
    let status = camera.child.wait().unwrap();
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
    assert!(!alive(second[0]), "the server stopped with the supervisor");
}

#[test]
fn the_server_dies_with_a_killed_supervisor() {
    let mut camera = Supervised::start(free_port());
    camera.wait_for_line("listening on https://");
    let server = children(camera.supervisor());
    assert_eq!(server.len(), 1);
    camera.child.kill().unwrap();
    camera.child.wait().unwrap();
    wait_until("the orphaned server is gone", Duration::from_secs(10), || !alive(server[0]));
}

#[test]
fn a_server_that_cannot_start_is_not_retried() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut camera = Supervised::start(taken.local_addr().unwrap().port());
    let said = camera.wait_for_line("cannot listen on");
    let status = camera.child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{said}");
    assert!(!camera.lines.try_iter().any(|l| l.contains("starting it again")));
}
