//! Resident memory of a server: idle right after start, after one request, with many connections
//! open (each has done a request), and after they close.

use std::time::Duration;

use super::client::{close, Client};
use super::procs::{memory, Memory};
use task_support::Result;

#[derive(Debug, Clone, Copy)]
pub struct Profile {
    pub started: Memory,
    pub after_one: Memory,
    pub open: Memory,
    pub closed: Memory,
}

/// Call right after the server listens. The connections are opened one after the other from
/// this thread and held until measured.
pub fn measure(pid: u32, client: &Client, connections: usize) -> Result<Profile> {
    let started = memory(pid)?;
    client.round().map_err(|e| format!("first request: {e}"))?;
    settle();
    let after_one = memory(pid)?;
    let mut open = Vec::with_capacity(connections);
    for i in 0..connections {
        open.push(client.request().map_err(|e| format!("connection {} of {connections}: {e}", i + 1))?);
    }
    settle();
    let held = memory(pid)?;
    for conn in open {
        close(conn);
    }
    // Give the server time to notice the closes and free what they held.
    std::thread::sleep(Duration::from_millis(500));
    let closed = memory(pid)?;
    Ok(Profile { started, after_one, open: held, closed })
}

fn settle() {
    std::thread::sleep(Duration::from_millis(100));
}
