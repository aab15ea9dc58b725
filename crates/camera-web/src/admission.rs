//! Who gets a connection slot. A camera has a few MiB of memory and one LAN, so the slots are
//! few and shared fairly:
//!
//! - a total cap (HTTP and HTTPS together), so memory stays bounded;
//! - a per-client cap, so one address cannot take every slot;
//! - when every slot is taken, a new connection evicts the oldest one that has not sent a
//!   request yet (no handshake, or a handshake and then silence). Connections that are doing
//!   real work are never evicted, so a flood of idle sockets from many addresses cannot lock
//!   a browser out for the handshake timeout.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The address one client is counted under: IPv4-mapped IPv6 as the IPv4 address. IPv6
/// addresses count one by one, since on a LAN every IPv6 host is in the same /64; the login
/// limiter adds a looser per-/64 count ([`ipv6_prefix`]) for hosts that rotate addresses.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The /64 an IPv6 client is in (`None` for IPv4).
pub fn ipv6_prefix(ip: IpAddr) -> Option<IpAddr> {
    match client_key(ip) {
        IpAddr::V6(v6) => Some(IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into())),
        IpAddr::V4(_) => None,
    }
}

struct Entry {
    client: IpAddr,
    /// Still waiting for its first request (evictable).
    waiting: bool,
    evict: Arc<Notify>,
}

#[derive(Default)]
struct Slots {
    /// Since the last report: connections refused at accept, and silent ones evicted.
    refused: u64,
    evicted: u64,
    last_report: Option<std::time::Instant>,
    next_id: u64,
    /// By id; ids grow, so the smallest waiting id is the oldest waiting connection.
    entries: HashMap<u64, Entry>,
    per_client: HashMap<IpAddr, usize>,
}

impl Slots {
    /// At most one log line per interval, so a flood does not flood the log too.
    fn report(&mut self) {
        const INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
        let now = std::time::Instant::now();
        if self.last_report.is_some_and(|last| now.duration_since(last) < INTERVAL)
            || (self.refused == 0 && self.evicted == 0)
        {
            return;
        }
        crate::log::warn(&format!(
            "camera-web: connection slots are full: {} connections refused, {} silent connections closed to make room",
            self.refused, self.evicted
        ));
        (self.refused, self.evicted, self.last_report) = (0, 0, Some(now));
    }

    fn release(&mut self, id: u64) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        if let Some(count) = self.per_client.get_mut(&entry.client) {
            *count -= 1;
            if *count == 0 {
                self.per_client.remove(&entry.client);
            }
        }
        Some(entry)
    }
}

/// The connection slots of one server.
pub struct Admission {
    max_total: usize,
    max_per_client: usize,
    slots: Mutex<Slots>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("max_total", &self.max_total)
            .field("max_per_client", &self.max_per_client)
            .finish_non_exhaustive()
    }
}

impl Admission {
    pub fn new(max_total: usize, max_per_client: usize) -> Arc<Self> {
        Arc::new(Self { max_total, max_per_client, slots: Mutex::new(Slots::default()) })
    }

    /// A slot for a new connection from `peer`, or `None` (close it at once).
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Slot> {
        let client = client_key(peer);
        let mut slots = self.slots.lock().ok()?;
        slots.report();
        if slots.per_client.get(&client).copied().unwrap_or(0) >= self.max_per_client {
            slots.refused += 1;
            return None;
        }
        if slots.entries.len() >= self.max_total {
            let Some(oldest_waiting) = slots.entries.iter().filter(|(_, e)| e.waiting).map(|(id, _)| *id).min() else {
                slots.refused += 1;
                return None;
            };
            if let Some(evicted) = slots.release(oldest_waiting) {
                evicted.evict.notify_one();
                slots.evicted += 1;
            }
        }
        let id = slots.next_id;
        slots.next_id += 1;
        let evict = Arc::new(Notify::new());
        slots.entries.insert(id, Entry { client, waiting: true, evict: evict.clone() });
        *slots.per_client.entry(client).or_insert(0) += 1;
        Some(Slot { admission: self.clone(), id, evict, started: AtomicBool::new(false) })
    }

    /// Every slot is taken.
    pub fn is_full(&self) -> bool {
        self.in_use() >= self.max_total
    }

    /// Connections holding a slot now.
    pub fn in_use(&self) -> usize {
        self.slots.lock().map(|s| s.entries.len()).unwrap_or(0)
    }
}

/// One connection's slot, given back on drop.
#[derive(Debug)]
pub struct Slot {
    admission: Arc<Admission>,
    id: u64,
    evict: Arc<Notify>,
    started: AtomicBool,
}

impl Slot {
    /// The connection sent a request: from now on it is never evicted.
    pub fn request_started(&self) {
        if self.started.swap(true, Ordering::Relaxed) {
            return;
        }
        if let Ok(mut slots) = self.admission.slots.lock() {
            if let Some(entry) = slots.entries.get_mut(&self.id) {
                entry.waiting = false;
            }
        }
    }

    /// Resolves when a newer connection took this slot; the connection should then close.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut slots) = self.admission.slots.lock() {
            slots.release(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn clients_count_by_address_mapped_ipv4_as_ipv4_and_prefixes_are_64s() {
        assert_ne!(client_key(ip("fd77::2")), client_key(ip("fd77::3")), "LAN hosts share a /64");
        assert_eq!(client_key(ip("::ffff:10.0.0.9")), ip("10.0.0.9"));
        assert_eq!(client_key(ip("10.0.0.9")), ip("10.0.0.9"));
        assert_eq!(ipv6_prefix(ip("fd77::2")), ipv6_prefix(ip("fd77::ffff:1:2:3")));
        assert_ne!(ipv6_prefix(ip("fd77::2")), ipv6_prefix(ip("fd77:0:0:1::2")));
        assert_eq!(ipv6_prefix(ip("::ffff:10.0.0.9")), None);
    }

    #[test]
    fn one_client_cannot_take_every_slot() {
        let admission = Admission::new(10, 3);
        let held: Vec<Slot> = (0..3).map(|_| admission.admit(ip("10.0.0.66")).unwrap()).collect();
        assert!(admission.admit(ip("10.0.0.66")).is_none());
        assert!(admission.admit(ip("fd77::1")).is_some());
        drop(held);
        assert!(admission.admit(ip("10.0.0.66")).is_some());
    }

    #[tokio::test]
    async fn when_full_the_oldest_silent_connection_makes_room_and_busy_ones_stay() {
        let admission = Admission::new(3, 3);
        let busy = admission.admit(ip("10.0.0.1")).unwrap();
        busy.request_started();
        let silent_old = admission.admit(ip("10.0.0.2")).unwrap();
        let silent_new = admission.admit(ip("10.0.0.3")).unwrap();
        let newcomer = admission.admit(ip("10.0.0.4")).unwrap();
        assert_eq!(admission.in_use(), 3);
        // The oldest silent one was told to go; dropping it later frees nothing twice.
        tokio::time::timeout(std::time::Duration::from_secs(1), silent_old.evicted()).await.unwrap();
        drop(silent_old);
        assert_eq!(admission.in_use(), 3);
        // The next newcomer evicts the next oldest silent one.
        let fourth = admission.admit(ip("10.0.0.5")).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), silent_new.evicted()).await.unwrap();
        // Once every slot is busy, a newcomer is refused rather than cutting a request short.
        fourth.request_started();
        newcomer.request_started();
        assert!(admission.admit(ip("10.0.0.6")).is_none());
        assert_eq!(admission.in_use(), 3);
        drop(busy);
        assert!(admission.admit(ip("10.0.0.6")).is_some());
    }
}
