//! Against the real kernel, inside private network namespaces (veth `cam0`/`peer0`, 10.77.0.2/24 and
//! fd77::2/64 on `cam0`): what `current_addresses` keeps and skips, and what wakes the watcher.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use camera_netlink::{all_addresses, current_addresses, AddressWatcher, RawAddress};
use camera_test_support::netns::{enter_private_netns, ip, wait_for_ipv6_settled, NetnsSetup, CAM_IPV4, CAM_IPV6};
use camera_test_support::{wait_for, TempDir};

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().expect("valid literal"))
}

fn current() -> Vec<IpAddr> {
    current_addresses().expect("current_addresses").into_iter().map(|a| a.address).collect()
}

fn raw(addr: IpAddr) -> Option<RawAddress> {
    all_addresses().expect("all_addresses").into_iter().find(|r| r.address == addr)
}

#[test]
fn current_addresses_are_exactly_the_private_ones() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let got = current_addresses().expect("current_addresses");
    let summary: Vec<(String, IpAddr, u8)> =
        got.iter().map(|a| (a.interface.clone(), a.address, a.prefix_len)).collect();
    assert_eq!(
        summary,
        vec![("cam0".to_owned(), IpAddr::V4(CAM_IPV4), 24), ("cam0".to_owned(), IpAddr::V6(CAM_IPV6), 64)]
    );
    assert_eq!(got[0].index, got[1].index);

    // all_addresses shows what was skipped: loopback and the kernel-made link-local addresses.
    let all = all_addresses().expect("all_addresses");
    let has = |addr: IpAddr| all.iter().any(|r| r.address == addr);
    assert!(has(IpAddr::V4(Ipv4Addr::LOCALHOST)), "{all:#?}");
    assert!(has(IpAddr::V6(Ipv6Addr::LOCALHOST)), "{all:#?}");
    // The kernel adds the fe80:: addresses shortly after the links come up (asynchronously).
    let link_local_on = |name: &str| {
        all_addresses().expect("all_addresses").into_iter().any(|r: RawAddress| {
            r.interface == name && matches!(r.address, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80)
        })
    };
    assert!(
        wait_for(Duration::from_secs(5), || (link_local_on("cam0") && link_local_on("peer0")).then_some(())).is_some(),
        "no link-local addresses: {:#?}",
        all_addresses()
    );
    assert_eq!(current(), vec![IpAddr::V4(CAM_IPV4), IpAddr::V6(CAM_IPV6)]);
    let lo = all.iter().find(|r| r.address == IpAddr::V4(Ipv4Addr::LOCALHOST)).expect("127.0.0.1");
    assert_eq!(lo.interface, "lo");
    assert!(lo.on_loopback_interface());
    assert_eq!(lo.label.as_deref(), Some("lo"));
    assert!(raw(IpAddr::V6(CAM_IPV6)).expect("fd77::2").flags & camera_netlink::consts::IFA_F_NODAD != 0);

    // Once duplicate address detection is over the link-local addresses are still skipped.
    assert!(wait_for_ipv6_settled(Duration::from_secs(10)));
    assert_eq!(current(), vec![IpAddr::V4(CAM_IPV4), IpAddr::V6(CAM_IPV6)]);
}

#[test]
fn sorted_ipv4_first_then_by_interface_index() {
    let setup = NetnsSetup::default()
        .ip(&["link", "add", "cam1", "type", "veth", "peer", "name", "peer1"])
        .ip(&["addr", "add", "10.77.2.2/24", "dev", "cam1"])
        .ip(&["-6", "addr", "add", "fd77:2::2/64", "dev", "cam1", "nodad"])
        .ip(&["addr", "add", "10.77.0.1/24", "dev", "cam0"])
        .ip(&["-6", "addr", "add", "fd77::1/64", "dev", "cam0", "nodad"])
        .ip(&["addr", "add", "192.168.77.1/24", "dev", "peer0"])
        // The same address on two interfaces appears once.
        .ip(&["addr", "add", "10.77.0.2/24", "dev", "cam1"]);
    if !enter_private_netns(&setup) {
        return;
    }
    let got = current_addresses().expect("current_addresses");
    let index = |name: &str| got.iter().find(|a| a.interface == name).map(|a| a.index).expect(name);
    let mut by_index = [("cam0", index("cam0")), ("peer0", index("peer0")), ("cam1", index("cam1"))];
    by_index.sort_by_key(|(_, i)| *i);
    let order: Vec<&str> = by_index.iter().map(|(n, _)| *n).collect();

    let mut expected: Vec<(&str, IpAddr)> = Vec::new();
    for family_v6 in [false, true] {
        for name in &order {
            let mut addrs: Vec<IpAddr> = match (*name, family_v6) {
                ("cam0", false) => vec!["10.77.0.1".parse().expect("ip"), "10.77.0.2".parse().expect("ip")],
                ("cam0", true) => vec![v6("fd77::1"), v6("fd77::2")],
                ("peer0", false) => vec!["192.168.77.1".parse().expect("ip")],
                ("cam1", false) => vec!["10.77.2.2".parse().expect("ip")],
                ("cam1", true) => vec![v6("fd77:2::2")],
                _ => vec![],
            };
            addrs.sort();
            expected.extend(addrs.into_iter().map(|a| (*name, a)));
        }
    }
    // 10.77.0.2 is on cam0 and cam1: it is listed once, under the interface with the lower index.
    let dup_owner = if index("cam0") < index("cam1") { "cam0" } else { "cam1" };
    expected.retain(|(n, a)| *a != "10.77.0.2".parse::<IpAddr>().expect("ip") || *n == dup_owner);
    expected.sort_by_key(|(n, a)| (a.is_ipv6(), by_index.iter().position(|(m, _)| m == n), *a));
    let got: Vec<(&str, IpAddr)> = got.iter().map(|a| (a.interface.as_str(), a.address)).collect();
    assert_eq!(got, expected);
}

#[test]
fn tentative_ipv6_is_skipped_until_dad_completes() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let mut watcher = AddressWatcher::subscribe().expect("subscribe");
    ip(&["-6", "addr", "add", "fd77::5/64", "dev", "cam0"]); // no nodad: DAD runs (about 1 s)
    let addr = v6("fd77::5");
    let r = raw(addr).expect("fd77::5 listed by all_addresses");
    assert!(r.is_tentative(), "{r:?}");
    assert!(!r.is_usable());
    assert!(!current().contains(&addr));

    // DAD completes (the peer does not claim the address): the kernel announces it, and it becomes usable.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !current().contains(&addr) {
        assert!(Instant::now() < deadline, "fd77::5 still unusable: {:?}", raw(addr));
        watcher.wait(Some(Duration::from_millis(500))).expect("wait");
    }
    assert!(!raw(addr).expect("fd77::5").is_tentative());
}

#[test]
fn deprecated_ipv6_is_skipped_but_deprecated_ipv4_is_kept() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    ip(&["-6", "addr", "add", "fd77::6/64", "dev", "cam0", "nodad", "valid_lft", "forever", "preferred_lft", "0"]);
    ip(&["addr", "add", "10.77.0.6/24", "dev", "cam0", "valid_lft", "forever", "preferred_lft", "0"]);
    let addr = v6("fd77::6");
    let r = raw(addr).expect("fd77::6 listed");
    assert!(r.is_deprecated(), "{r:?}");
    assert!(!current().contains(&addr));
    let v4: IpAddr = "10.77.0.6".parse().expect("ip");
    assert!(raw(v4).expect("10.77.0.6 listed").is_deprecated());
    assert!(current().contains(&v4));
}

#[test]
fn dad_failed_ipv6_is_skipped() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    // Wait for DAD on the link-local addresses (neighbour discovery needs them), then put fd77::7
    // on the peer and try to claim it on cam0 too: the peer answers the neighbour solicitation.
    assert!(wait_for_ipv6_settled(Duration::from_secs(10)));
    ip(&["-6", "addr", "add", "fd77::7/64", "dev", "peer0", "nodad"]);
    ip(&["-6", "addr", "add", "fd77::7/64", "dev", "cam0"]);
    let addr = v6("fd77::7");
    let on_cam0 = || all_addresses().expect("all").into_iter().find(|r| r.address == addr && r.interface == "cam0");
    assert!(
        wait_for(Duration::from_secs(10), || on_cam0().filter(|r| r.is_dad_failed())).is_some(),
        "fd77::7 on cam0 never flagged dadfailed: {:?}",
        on_cam0()
    );
    // It is on peer0 (usable there) and on cam0 (dadfailed): listed once, for peer0.
    let got = current_addresses().expect("current");
    let owners: Vec<&str> = got.iter().filter(|a| a.address == addr).map(|a| a.interface.as_str()).collect();
    assert_eq!(owners, ["peer0"]);
}

/// The kernel makes a privacy address (RFC 8981) beside an address flagged `mngtmpaddr` when
/// `use_tempaddr` is 2, without a router advertisement. It is listed, flagged temporary, and never
/// usable; the stable address it was made from is.
#[test]
fn temporary_ipv6_is_skipped() {
    let setup = NetnsSetup::default();
    if !enter_private_netns(&setup) {
        return;
    }
    camera_test_support::netns::sysctl("net/ipv6/conf/cam0/use_tempaddr", "2");
    ip(&["-6", "addr", "add", "fd77:5::1/64", "dev", "cam0", "mngtmpaddr", "nodad"]);
    let stable = v6("fd77:5::1");
    let temporary = || {
        all_addresses().expect("all_addresses").into_iter().find(|r| {
            r.interface == "cam0"
                && matches!(r.address, IpAddr::V6(a) if a.segments()[..4] == [0xfd77, 5, 0, 0])
                && r.address != stable
        })
    };
    assert!(
        wait_for(Duration::from_secs(10), || temporary().filter(|r| !r.is_tentative())).is_some(),
        "no temporary address made beside fd77:5::1: {:#?}",
        all_addresses()
    );
    let r = temporary().expect("listed");
    assert!(r.is_temporary(), "{r:?}");
    assert!(!r.is_usable(), "{r:?}");
    let got = current();
    assert!(got.contains(&stable) && !got.contains(&r.address), "{got:?} ({r:?})");
}

#[test]
fn watcher_wakes_on_add_and_remove_and_not_otherwise() {
    if !enter_private_netns(&NetnsSetup::default().wait_for_dad(true)) {
        return;
    }
    let mut watcher = AddressWatcher::subscribe().expect("subscribe");
    assert!(watcher.as_raw_fd() >= 0);
    let _ = watcher.as_fd();
    // Nothing pending right after subscribing (DAD is over).
    assert!(!watcher.drain().expect("drain"));

    let added: IpAddr = "10.77.1.9".parse().expect("ip");
    ip(&["addr", "add", "10.77.1.9/24", "dev", "cam0"]);
    let start = Instant::now();
    assert!(watcher.wait(Some(Duration::from_secs(2))).expect("wait"));
    assert!(start.elapsed() < Duration::from_secs(1), "woke late: {:?}", start.elapsed());
    assert!(current().contains(&added));

    ip(&["addr", "del", "10.77.1.9/24", "dev", "cam0"]);
    assert!(watcher.wait(Some(Duration::from_secs(2))).expect("wait"));
    assert!(!current().contains(&added));

    // IPv6 too.
    ip(&["-6", "addr", "add", "fd77::99/64", "dev", "cam0", "nodad"]);
    assert!(watcher.wait(Some(Duration::from_secs(2))).expect("wait"));
    assert!(current().contains(&v6("fd77::99")));

    // Drain whatever else the changes produced (route updates are not subscribed), then silence.
    let _ = watcher.drain().expect("drain");
    let start = Instant::now();
    assert!(!watcher.wait(Some(Duration::from_millis(200))).expect("wait"));
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(190) && waited < Duration::from_secs(1), "{waited:?}");
    assert!(!watcher.wait(Some(Duration::ZERO)).expect("wait"));
}

#[test]
fn watcher_wakes_on_link_down_and_up() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    let mut watcher = AddressWatcher::subscribe().expect("subscribe");
    ip(&["link", "set", "cam0", "down"]);
    assert!(watcher.wait(Some(Duration::from_secs(2))).expect("wait"));
    ip(&["link", "set", "cam0", "up"]);
    assert!(watcher.wait(Some(Duration::from_secs(2))).expect("wait"));
    // The addresses survive a down/up.
    assert!(current().contains(&IpAddr::V4(CAM_IPV4)));
}

#[test]
fn watcher_drains_a_burst_of_changes() {
    if !enter_private_netns(&NetnsSetup::default()) {
        return;
    }
    // 200 address additions arrive while nobody reads: one drain reads them all (many datagrams) and
    // says "changed"; the next drain finds nothing; one dump then sees every address.
    let mut watcher = AddressWatcher::subscribe().expect("subscribe");
    let batch: String = (1..=200).map(|i| format!("address add 10.77.100.{i}/32 dev cam0\n")).collect();
    let work = TempDir::new("netlink-batch");
    let path = work.join("batch");
    std::fs::write(&path, batch).expect("write batch");
    ip(&["-batch", path.to_str().expect("utf-8 path")]);
    assert!(watcher.drain().expect("drain"));
    assert!(!watcher.drain().expect("drain again"));
    let all = current_addresses().expect("current");
    let n = all.iter().filter(|a| a.address.to_string().starts_with("10.77.100.")).count();
    assert_eq!(n, 200);
}
