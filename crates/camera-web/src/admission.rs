//! Who gets a connection slot. A camera has a few MiB of memory and one LAN, so the slots are
//! few and shared fairly:
//!
//! - a total cap (HTTP and HTTPS together), so memory stays bounded;
//! - a per-client cap, so one address cannot take every slot; at the cap, that address's own
//!   longest-idle connection makes room (a NAT or a program leaking sockets on the user's PC must
//!   not lock the user out);
//! - when every slot is taken, a new connection evicts an idle one: one that has not sent a
//!   request yet (no handshake, or a handshake and then silence) or a keep-alive connection
//!   between requests, from the client (and IPv6 /64) holding the most slots. Connections
//!   serving a request are never evicted, so floods of idle or keep-alive sockets from many
//!   addresses cannot lock a browser out.

use std::collections::HashMap;
use std::net::IpAddr;
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

/// What a connection is doing, for eviction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    /// Connected (maybe handshaking) and has not sent a request yet: evictable.
    Waiting,
    /// A request is being served: never evicted.
    Busy,
    /// Kept alive between requests: evictable like a waiting one.
    Idle,
}

struct Entry {
    client: IpAddr,
    activity: Activity,
    /// When the connection last changed activity (a counter: larger is later).
    since: u64,
    evict: Arc<Notify>,
}

impl Entry {
    fn evictable(&self) -> bool {
        self.activity != Activity::Busy
    }
}

/// The group a client's connections are also counted in when choosing whom to evict: its
/// IPv6 /64 (one host can take any address in it), or its IPv4 address.
fn group(client: IpAddr) -> IpAddr {
    ipv6_prefix(client).unwrap_or(client)
}

#[derive(Default)]
struct Slots {
    /// Since the last report: connections refused at accept, and idle ones evicted.
    refused: u64,
    evicted: u64,
    last_report: Option<std::time::Instant>,
    /// Ids and activity times both come from this counter.
    clock: u64,
    entries: HashMap<u64, Entry>,
    per_client: HashMap<IpAddr, usize>,
    per_group: HashMap<IpAddr, usize>,
}

fn decrement(map: &mut HashMap<IpAddr, usize>, key: IpAddr) {
    if let Some(count) = map.get_mut(&key) {
        *count -= 1;
        if *count == 0 {
            map.remove(&key);
        }
    }
}

impl Slots {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

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
            "camera-web: connection slots are full: {} connections refused, {} idle connections closed to make room",
            self.refused, self.evicted
        ));
        (self.refused, self.evicted, self.last_report) = (0, 0, Some(now));
    }

    fn release(&mut self, id: u64) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        decrement(&mut self.per_client, entry.client);
        decrement(&mut self.per_group, group(entry.client));
        Some(entry)
    }

    /// Closes connection `id` to make room.
    fn evict(&mut self, id: u64) {
        if let Some(evicted) = self.release(id) {
            evicted.evict.notify_one();
            self.evicted += 1;
        }
    }

    /// The idle connection to close when every slot is taken: from the group (IPv6 /64 or IPv4
    /// address) holding the most slots, then the address holding the most, then the one idle
    /// the longest. A flood evicts itself first; the owner's one connection is the last to go.
    fn victim(&self) -> Option<u64> {
        let count = |map: &HashMap<IpAddr, usize>, key: IpAddr| map.get(&key).copied().unwrap_or(0);
        self.entries
            .iter()
            .filter(|(_, e)| e.evictable())
            .max_by_key(|(_, e)| {
                (count(&self.per_group, group(e.client)), count(&self.per_client, e.client), std::cmp::Reverse(e.since))
            })
            .map(|(id, _)| *id)
    }

    /// The idle connection of `client` to close when it reached its own cap: the one idle longest.
    fn victim_of(&self, client: IpAddr) -> Option<u64> {
        self.entries
            .iter()
            .filter(|(_, e)| e.client == client && e.evictable())
            .min_by_key(|(_, e)| e.since)
            .map(|(id, _)| *id)
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

    /// A slot for a new connection from `peer`, or `None` (close it at once). When `peer` holds
    /// its share already, its own longest-idle connection makes room; when every slot is taken,
    /// see [`Slots::victim`]. Connections serving a request are never cut.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Slot> {
        let client = client_key(peer);
        let mut slots = self.slots.lock().ok()?;
        slots.report();
        if slots.per_client.get(&client).copied().unwrap_or(0) >= self.max_per_client {
            let Some(own) = slots.victim_of(client) else {
                slots.refused += 1;
                return None;
            };
            slots.evict(own);
        }
        if slots.entries.len() >= self.max_total {
            let Some(victim) = slots.victim() else {
                slots.refused += 1;
                return None;
            };
            slots.evict(victim);
        }
        let id = slots.tick();
        let evict = Arc::new(Notify::new());
        slots.entries.insert(id, Entry { client, activity: Activity::Waiting, since: id, evict: evict.clone() });
        *slots.per_client.entry(client).or_insert(0) += 1;
        *slots.per_group.entry(group(client)).or_insert(0) += 1;
        Some(Slot { admission: self.clone(), id, evict })
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
}

impl Slot {
    fn set(&self, activity: Activity) {
        if let Ok(mut slots) = self.admission.slots.lock() {
            let now = slots.tick();
            if let Some(entry) = slots.entries.get_mut(&self.id) {
                entry.activity = activity;
                entry.since = now;
            }
        }
    }

    /// A request arrived: the connection is not evicted while it is served.
    pub fn request_started(&self) {
        self.set(Activity::Busy);
    }

    /// The answer is out: the connection waits for its next request, evictable.
    pub fn request_finished(&self) {
        self.set(Activity::Idle);
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
    fn one_client_cannot_take_every_slot_but_its_newest_connection_gets_in() {
        let admission = Admission::new(10, 3);
        let held: Vec<Slot> = (0..3).map(|_| admission.admit(ip("10.0.0.66")).unwrap()).collect();
        // At its cap, the client's own longest-idle connection makes room...
        let newest = admission.admit(ip("10.0.0.66")).unwrap();
        assert_eq!(admission.in_use(), 3);
        // ...unless all of them are serving requests.
        for slot in held.iter().skip(1) {
            slot.request_started();
        }
        newest.request_started();
        assert!(admission.admit(ip("10.0.0.66")).is_none());
        assert!(admission.admit(ip("fd77::1")).is_some(), "other clients are unaffected");
        drop(held);
        assert!(admission.admit(ip("10.0.0.66")).is_some());
    }

    #[tokio::test]
    async fn when_full_an_idle_connection_of_the_biggest_client_makes_room_and_busy_ones_stay() {
        let admission = Admission::new(4, 4);
        let owner = admission.admit(ip("10.0.0.1")).unwrap();
        owner.request_started();
        owner.request_finished();
        let flood: Vec<Slot> = (0..3).map(|_| admission.admit(ip("10.0.0.66")).unwrap()).collect();
        for slot in &flood {
            slot.request_started();
            slot.request_finished();
        }
        // The owner's idle connection is older, but the flood holds more slots: it pays.
        let newcomer = admission.admit(ip("10.0.0.2")).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), flood[0].evicted()).await.unwrap();
        assert_eq!(admission.in_use(), 4);
        // Once every slot is busy, a newcomer is refused rather than cutting a request short.
        owner.request_started();
        newcomer.request_started();
        flood[1].request_started();
        flood[2].request_started();
        assert!(admission.admit(ip("10.0.0.3")).is_none());
        flood[2].request_finished();
        assert!(admission.admit(ip("10.0.0.3")).is_some(), "a keep-alive connection between requests is idle");
    }

    #[test]
    fn an_ipv6_host_rotating_addresses_is_counted_by_its_64() {
        let admission = Admission::new(4, 4);
        let lan_user = admission.admit(ip("fd77:1::5")).unwrap();
        let rotating: Vec<Slot> = (0..3).map(|n| admission.admit(ip(&format!("fd77:2::{n}"))).unwrap()).collect();
        assert!(admission.admit(ip("10.0.0.9")).is_some());
        // Each rotating address holds one slot, like the LAN user, but their /64 holds three.
        assert!(rotating.iter().filter(|s| admission.slots.lock().unwrap().entries.contains_key(&s.id)).count() == 2);
        assert!(admission.slots.lock().unwrap().entries.contains_key(&lan_user.id));
    }
}
