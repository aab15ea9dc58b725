//! Unit tests: the parser on hand-built byte buffers (valid, truncated, malicious), and the filter.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::consts::*;
use crate::parse::*;
use crate::{join_addresses, usable_addresses, InterfaceAddress, NetlinkError, RawAddress};

// ---------- builders ----------

fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(RTA_HDRLEN + payload.len()).expect("attribute fits");
    let mut v = Vec::new();
    v.extend_from_slice(&len.to_ne_bytes());
    v.extend_from_slice(&kind.to_ne_bytes());
    v.extend_from_slice(payload);
    v.resize(align4(v.len()), 0);
    v
}

fn message(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(NLMSG_HDRLEN + body.len()).expect("message fits");
    let mut v = Vec::new();
    v.extend_from_slice(&len.to_ne_bytes());
    v.extend_from_slice(&kind.to_ne_bytes());
    v.extend_from_slice(&flags.to_ne_bytes());
    v.extend_from_slice(&seq.to_ne_bytes());
    v.extend_from_slice(&4242u32.to_ne_bytes());
    v.extend_from_slice(body);
    v.resize(align4(v.len()), 0);
    v
}

fn ifaddrmsg(family: u8, prefix: u8, flags: u8, scope: u8, index: u32) -> Vec<u8> {
    let mut v = vec![family, prefix, flags, scope];
    v.extend_from_slice(&index.to_ne_bytes());
    v
}

fn ifinfomsg(index: i32, flags: u32) -> Vec<u8> {
    let mut v = vec![0u8, 0];
    v.extend_from_slice(&1u16.to_ne_bytes()); // ARPHRD_ETHER
    v.extend_from_slice(&index.to_ne_bytes());
    v.extend_from_slice(&flags.to_ne_bytes());
    v.extend_from_slice(&0xffff_ffffu32.to_ne_bytes());
    v
}

fn v4_addr_msg(index: u32, addr: [u8; 4], prefix: u8, label: &str) -> Vec<u8> {
    let mut body = ifaddrmsg(AF_INET, prefix, IFA_F_PERMANENT as u8, 0, index);
    body.extend(attr(IFA_ADDRESS, &addr));
    body.extend(attr(IFA_LOCAL, &addr));
    let mut l = label.as_bytes().to_vec();
    l.push(0);
    body.extend(attr(IFA_LABEL, &l));
    body.extend(attr(IFA_FLAGS, &IFA_F_PERMANENT.to_ne_bytes()));
    message(RTM_NEWADDR, NLM_F_MULTI, 7, &body)
}

fn v6_addr_msg(index: u32, addr: Ipv6Addr, prefix: u8, flags8: u8, flags32: Option<u32>) -> Vec<u8> {
    let mut body = ifaddrmsg(AF_INET6, prefix, flags8, 0, index);
    body.extend(attr(IFA_ADDRESS, &addr.octets()));
    if let Some(f) = flags32 {
        body.extend(attr(IFA_FLAGS, &f.to_ne_bytes()));
    }
    message(RTM_NEWADDR, NLM_F_MULTI, 7, &body)
}

fn link_msg(index: i32, flags: u32, name: &str) -> Vec<u8> {
    let mut body = ifinfomsg(index, flags);
    let mut n = name.as_bytes().to_vec();
    n.push(0);
    body.extend(attr(IFLA_IFNAME, &n));
    body.extend(attr(4, &1500u32.to_ne_bytes())); // IFLA_MTU, ignored
    message(RTM_NEWLINK, NLM_F_MULTI, 7, &body)
}

fn done(seq: u32, status: i32) -> Vec<u8> {
    message(NLMSG_DONE, NLM_F_MULTI, seq, &status.to_ne_bytes())
}

fn fd77(last: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, last)
}

// ---------- valid input ----------

#[test]
fn parses_ipv4_address_with_label_and_flags() {
    let buf = v4_addr_msg(3, [10, 77, 0, 2], 24, "cam0");
    let msgs = parse_address_messages(&buf).expect("valid");
    assert_eq!(
        msgs,
        vec![AddressMessage {
            family: AF_INET,
            prefix_len: 24,
            flags: IFA_F_PERMANENT,
            scope: 0,
            index: 3,
            local: Some(IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2))),
            address: Some(IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2))),
            label: Some("cam0".into()),
        }]
    );
}

#[test]
fn parses_a_multipart_dump_with_done() {
    let mut buf = v4_addr_msg(3, [10, 77, 0, 2], 24, "cam0");
    buf.extend(v6_addr_msg(3, fd77(2), 64, 0, Some(IFA_F_PERMANENT | IFA_F_NODAD)));
    buf.extend(message(NLMSG_NOOP, 0, 7, &[]));
    buf.extend(done(7, 0));
    let msgs = parse_messages(&buf).expect("valid");
    assert_eq!(msgs.len(), 4);
    assert!(matches!(msgs[0].payload, Payload::NewAddress(_)));
    match &msgs[1].payload {
        Payload::NewAddress(a) => {
            assert_eq!(a.ip(), Some(IpAddr::V6(fd77(2))));
            assert_eq!(a.flags, IFA_F_PERMANENT | IFA_F_NODAD);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(msgs[2].payload, Payload::Other);
    assert_eq!(msgs[3].payload, Payload::Done(0));
    assert_eq!(msgs[3].header.seq, 7);
    assert_eq!(msgs[3].header.flags, NLM_F_MULTI);
    assert_eq!(msgs[3].header.pid, 4242);
    assert_eq!(parse_address_messages(&buf).expect("valid").len(), 2);
}

#[test]
fn a_flag_in_either_the_byte_or_the_attribute_counts() {
    let flags = |flags8: u32, flags32: Option<u32>| {
        let flags8 = u8::try_from(flags8).expect("a byte");
        parse_address_messages(&v6_addr_msg(2, fd77(5), 64, flags8, flags32)).expect("valid")[0].flags
    };
    // Only the 32-bit attribute says tentative.
    assert_eq!(flags(0, Some(IFA_F_TENTATIVE)), IFA_F_TENTATIVE);
    // Without the attribute, the byte is used.
    assert_eq!(flags(IFA_F_DEPRECATED, None), IFA_F_DEPRECATED);
    // The byte says temporary, the attribute does not: still temporary.
    assert_eq!(flags(IFA_F_TEMPORARY, Some(IFA_F_PERMANENT)), IFA_F_TEMPORARY | IFA_F_PERMANENT);
    // What the kernel sends: the low 8 bits in both.
    let both = IFA_F_TEMPORARY | IFA_F_NODAD;
    assert_eq!(flags(both, Some(both)), both);
    // Bits above the byte only come from the attribute.
    assert_eq!(flags(IFA_F_TEMPORARY, Some(0x100)), IFA_F_TEMPORARY | 0x100);
}

/// An IPv6 privacy address as the kernel announces it, flag in the byte and in `IFA_FLAGS`, or in
/// only one of them: listed, never usable; its stable sibling is.
#[test]
fn a_temporary_ipv6_address_is_listed_but_not_usable() {
    let links = parse_link_messages(&link_msg(3, IFF_UP, "cam0")).expect("valid");
    let temporary = IFA_F_TEMPORARY as u8;
    let mut buf = v6_addr_msg(3, fd77(2), 64, 0, Some(IFA_F_PERMANENT | IFA_F_NODAD));
    buf.extend(v6_addr_msg(
        3,
        Ipv6Addr::new(0xfd77, 0, 0, 0, 0x34ce, 0x6c5b, 0xbbaf, 0xa7f3),
        64,
        temporary,
        Some(IFA_F_TEMPORARY),
    ));
    buf.extend(v6_addr_msg(3, fd77(0x11), 64, temporary, None));
    buf.extend(v6_addr_msg(3, fd77(0x12), 64, temporary, Some(0)));
    buf.extend(v6_addr_msg(3, fd77(0x13), 64, 0, Some(IFA_F_TEMPORARY)));
    let joined = join_addresses(&links, parse_address_messages(&buf).expect("valid"));
    assert_eq!(joined.len(), 5);
    assert!(!joined[0].is_temporary());
    for r in &joined[1..] {
        assert!(r.is_temporary(), "{r:?}");
        assert!(!r.is_usable(), "{r:?}");
    }
    let usable: Vec<IpAddr> = usable_addresses(&joined).into_iter().map(|a| a.address).collect();
    assert_eq!(usable, vec![IpAddr::V6(fd77(2))]);
}

/// On IPv4 the same bit means secondary (a second address in a subnet): named like any other.
#[test]
fn a_secondary_ipv4_address_is_usable() {
    let r = raw("eth0", 2, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)), IFA_F_SECONDARY | IFA_F_PERMANENT, IFF_UP);
    assert!(!r.is_temporary());
    assert!(r.is_usable());
}

#[test]
fn point_to_point_uses_ifa_local_and_keeps_the_peer() {
    let mut body = ifaddrmsg(AF_INET, 32, 0, 0, 5);
    body.extend(attr(IFA_ADDRESS, &[10, 0, 0, 1]));
    body.extend(attr(IFA_LOCAL, &[10, 0, 0, 2]));
    let addrs = parse_address_messages(&message(RTM_NEWADDR, 0, 0, &body)).expect("valid");
    assert_eq!(addrs[0].ip(), Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))));
    let raw = join_addresses(&[], addrs);
    assert_eq!(raw[0].peer, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
    assert_eq!(raw[0].interface, "if5");
}

#[test]
fn parses_links_and_masks_nested_bit() {
    let mut buf = link_msg(1, IFF_UP | IFF_LOOPBACK, "lo");
    buf.extend(link_msg(3, IFF_UP, "cam0"));
    let links = parse_link_messages(&buf).expect("valid");
    assert_eq!(links.len(), 2);
    assert_eq!(links[0].name.as_deref(), Some("lo"));
    assert_eq!(links[0].flags, IFF_UP | IFF_LOOPBACK);
    assert_eq!(links[1].index, 3);

    let mut body = ifinfomsg(4, 0);
    body.extend(attr(IFLA_IFNAME | 0x8000, b"eth9\0"));
    let links = parse_link_messages(&message(RTM_NEWLINK, 0, 0, &body)).expect("valid");
    assert_eq!(links[0].name.as_deref(), Some("eth9"));
}

#[test]
fn last_message_and_attribute_may_omit_padding() {
    // IFA_LABEL "ab" (payload 2 bytes, attribute length 6) is last and not padded; the message
    // length is exact, not aligned.
    let mut body = ifaddrmsg(AF_INET, 8, 0, 0, 1);
    body.extend(attr(IFA_ADDRESS, &[10, 1, 2, 3]));
    body.extend_from_slice(&6u16.to_ne_bytes());
    body.extend_from_slice(&IFA_LABEL.to_ne_bytes());
    body.extend_from_slice(b"ab");
    let mut buf = message(RTM_NEWADDR, 0, 0, &body);
    buf.truncate(NLMSG_HDRLEN + body.len());
    let addrs = parse_address_messages(&buf).expect("valid");
    assert_eq!(addrs[0].label.as_deref(), Some("ab"));
}

#[test]
fn unknown_family_and_unknown_attributes_are_kept_without_address() {
    let mut body = ifaddrmsg(28 /* AF_MPLS */, 0, 0, 0, 9);
    body.extend(attr(IFA_ADDRESS, &[1, 2, 3]));
    body.extend(attr(200, &[0; 12]));
    let addrs = parse_address_messages(&message(RTM_NEWADDR, 0, 0, &body)).expect("valid");
    assert_eq!(addrs[0].ip(), None);
    assert!(join_addresses(&[], addrs).is_empty());
}

#[test]
fn error_and_done_status() {
    let mut err = (-22i32).to_ne_bytes().to_vec();
    err.extend(message(RTM_GETADDR, 0x301, 9, &[0; 8])); // the echoed request
    let msgs = parse_messages(&message(NLMSG_ERROR, 0, 9, &err)).expect("valid");
    assert_eq!(msgs[0].payload, Payload::Error(-22));
    assert_eq!(parse_messages(&done(9, -4)).expect("valid")[0].payload, Payload::Done(-4));
    // An empty NLMSG_DONE body (very old kernels) means success.
    assert_eq!(parse_messages(&message(NLMSG_DONE, 0, 9, &[])).expect("valid")[0].payload, Payload::Done(0));
}

#[test]
fn empty_buffer_is_no_messages() {
    assert_eq!(parse_messages(&[]).expect("valid"), vec![]);
}

#[test]
fn dump_request_layout() {
    let req = dump_request(RTM_GETADDR, 0x0102_0304);
    assert_eq!(req.len(), 24);
    let parsed = split_messages(&req).expect("valid");
    assert_eq!(parsed[0].0.kind, RTM_GETADDR);
    assert_eq!(parsed[0].0.flags, NLM_F_REQUEST | NLM_F_DUMP);
    assert_eq!(parsed[0].0.seq, 0x0102_0304);
    assert_eq!(parsed[0].1, &[0u8; 8][..]);
    assert_eq!(dump_request(RTM_GETLINK, 1).len(), 32);
}

// ---------- malformed input: errors, never panics ----------

fn assert_malformed(buf: &[u8]) {
    match parse_messages(buf) {
        Err(NetlinkError::Malformed(why)) => assert!(!why.is_empty()),
        other => panic!("expected Malformed for {buf:?}, got {other:?}"),
    }
}

#[test]
fn truncated_header_is_malformed() {
    let buf = v4_addr_msg(3, [10, 77, 0, 2], 24, "cam0");
    for cut in 1..NLMSG_HDRLEN {
        assert_malformed(&buf[..cut]);
    }
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let mut buf = link_msg(1, IFF_LOOPBACK, "lo");
    buf.extend(v4_addr_msg(3, [10, 77, 0, 2], 24, "cam0"));
    buf.extend(v6_addr_msg(3, fd77(2), 64, 0, Some(0)));
    buf.extend(done(7, 0));
    for cut in 0..buf.len() {
        // A cut exactly on a message boundary is a valid, shorter buffer.
        let _ = parse_messages(&buf[..cut]);
    }
    // A cut inside the first message's body is an error.
    assert_malformed(&buf[..20]);
}

#[test]
fn message_length_smaller_than_header_or_beyond_buffer() {
    for bad_len in [0u32, 1, 15, 1000, u32::MAX] {
        let mut buf = v4_addr_msg(3, [10, 77, 0, 2], 24, "cam0");
        buf[..4].copy_from_slice(&bad_len.to_ne_bytes());
        assert_malformed(&buf);
    }
}

#[test]
fn trailing_garbage_after_a_message() {
    let mut buf = done(1, 0);
    buf.extend_from_slice(&[1, 2, 3]);
    assert_malformed(&buf);
}

#[test]
fn attribute_length_beyond_buffer_zero_or_short() {
    for bad in [0u16, 1, 3, 9, 200, u16::MAX] {
        let mut body = ifaddrmsg(AF_INET, 24, 0, 0, 3);
        body.extend_from_slice(&bad.to_ne_bytes());
        body.extend_from_slice(&IFA_ADDRESS.to_ne_bytes());
        body.extend_from_slice(&[10, 0, 0, 1]);
        assert_malformed(&message(RTM_NEWADDR, 0, 0, &body));
    }
}

#[test]
fn truncated_attribute_header_and_short_bodies() {
    let mut body = ifaddrmsg(AF_INET, 24, 0, 0, 3);
    body.extend_from_slice(&[8, 0]); // half an rtattr
    assert_malformed(&message(RTM_NEWADDR, 0, 0, &body));
    assert_malformed(&message(RTM_NEWADDR, 0, 0, &[2, 24, 0]));
    assert_malformed(&message(RTM_NEWLINK, 0, 0, &[0; 12]));
    assert_malformed(&message(RTM_DELLINK, 0, 0, &[0; 8]));
    assert_malformed(&message(NLMSG_ERROR, 0, 0, &[0; 2]));
}

#[test]
fn wrong_sized_addresses_and_flags() {
    let cases: [(u8, u16, &[u8]); 5] = [
        (AF_INET, IFA_ADDRESS, &[10, 0, 0]),
        (AF_INET, IFA_LOCAL, &[10, 0, 0, 1, 0]),
        (AF_INET6, IFA_ADDRESS, &[0xfd; 4]),
        (AF_INET6, IFA_FLAGS, &[0; 2]),
        (AF_INET6, IFA_FLAGS, &[0; 8]),
    ];
    for (family, kind, payload) in cases {
        let mut body = ifaddrmsg(family, 24, 0, 0, 3);
        body.extend(attr(kind, payload));
        assert_malformed(&message(RTM_NEWADDR, 0, 0, &body));
    }
}

#[test]
fn negative_link_index_is_malformed() {
    assert_malformed(&link_msg(-1, 0, "x"));
}

#[test]
fn non_utf8_names_are_decoded_lossily() {
    let mut body = ifinfomsg(2, 0);
    body.extend(attr(IFLA_IFNAME, &[0xff, b'a', 0, b'z']));
    let links = parse_link_messages(&message(RTM_NEWLINK, 0, 0, &body)).expect("valid");
    assert_eq!(links[0].name.as_deref(), Some("\u{fffd}a"));
}

/// A small deterministic generator, to throw many random and mutated buffers at the parser.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_and_mutated_buffers_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut seed = link_msg(1, IFF_LOOPBACK, "lo");
    seed.extend(v4_addr_msg(3, [10, 77, 0, 2], 24, "cam0"));
    seed.extend(v6_addr_msg(3, fd77(2), 64, 0, Some(IFA_F_NODAD)));
    seed.extend(done(7, 0));
    for round in 0..20_000 {
        let buf: Vec<u8> = if round % 4 == 0 {
            let len = (rng.next() % 256) as usize;
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            let mut b = seed.clone();
            for _ in 0..(1 + rng.next() % 4) {
                let at = (rng.next() as usize) % b.len();
                b[at] = rng.next() as u8;
            }
            let cut = (rng.next() as usize) % (b.len() + 1);
            b.truncate(cut);
            b
        };
        let _ = parse_messages(&buf);
        let _ = parse_address_messages(&buf);
        let _ = parse_link_messages(&buf);
        let _ = split_attributes(&buf);
        let _ = parse_address_body(&buf);
        let _ = parse_link_body(&buf);
    }
}

// ---------- filtering and ordering ----------

fn raw(interface: &str, index: u32, address: IpAddr, flags: u32, link_flags: u32) -> RawAddress {
    RawAddress {
        interface: interface.into(),
        index,
        address,
        peer: None,
        prefix_len: if address.is_ipv4() { 24 } else { 64 },
        scope: 0,
        flags,
        label: None,
        link_flags: Some(link_flags),
    }
}

#[test]
fn filter_skips_loopback_link_local_and_unusable_ipv6_and_sorts() {
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    let v6 = |s: &str| IpAddr::V6(s.parse().expect("valid literal"));
    let input = vec![
        raw("lo", 1, v4(127, 0, 0, 1), 0, IFF_LOOPBACK),
        raw("lo", 1, v6("::1"), 0, IFF_LOOPBACK),
        // A non-loopback address on the loopback interface is still skipped.
        raw("lo", 1, v4(10, 9, 9, 9), 0, IFF_LOOPBACK),
        raw("eth1", 4, v6("fd00::9"), 0, IFF_UP),
        raw("eth0", 2, v6("fe80::1"), 0, IFF_UP),
        raw("eth0", 2, v6("fd00::2"), IFA_F_TENTATIVE, IFF_UP),
        raw("eth0", 2, v6("fd00::3"), IFA_F_DEPRECATED, IFF_UP),
        raw("eth0", 2, v6("fd00::4"), IFA_F_DADFAILED | IFA_F_TENTATIVE, IFF_UP),
        raw("eth0", 2, v6("fd00::5"), IFA_F_TEMPORARY, IFF_UP),
        raw("eth0", 2, v6("fd00::1"), IFA_F_PERMANENT | IFA_F_NODAD, IFF_UP),
        raw("eth1", 4, v4(192, 168, 1, 5), 0, IFF_UP),
        raw("eth0", 2, v4(169, 254, 3, 4), 0, IFF_UP),
        raw("eth0", 2, v4(10, 0, 0, 9), 0, IFF_UP),
        raw("eth0", 2, v4(10, 0, 0, 3), IFA_F_DEPRECATED, IFF_UP), // IPv4: kept
        // The same address twice: deduplicated, the lowest index wins.
        raw("eth1", 4, v4(10, 0, 0, 9), 0, IFF_UP),
        raw("eth0", 2, v6("fd00::1"), 0, IFF_UP),
    ];
    let got: Vec<(String, IpAddr)> = usable_addresses(&input).into_iter().map(|a| (a.interface, a.address)).collect();
    assert_eq!(
        got,
        vec![
            ("eth0".into(), v4(10, 0, 0, 3)),
            ("eth0".into(), v4(10, 0, 0, 9)),
            ("eth1".into(), v4(192, 168, 1, 5)),
            ("eth0".into(), v6("fd00::1")),
            ("eth1".into(), v6("fd00::9")),
        ]
    );
}

#[test]
fn join_names_interfaces_from_links_then_label_then_index() {
    let links = parse_link_messages(&link_msg(3, IFF_UP, "cam0")).expect("valid");
    let mut buf = v4_addr_msg(3, [10, 77, 0, 2], 24, "cam0:1");
    buf.extend(v4_addr_msg(8, [10, 78, 0, 2], 24, "eth8"));
    buf.extend(v6_addr_msg(9, fd77(9), 64, 0, None));
    let addrs = parse_address_messages(&buf).expect("valid");
    let joined = join_addresses(&links, addrs);
    let names: Vec<&str> = joined.iter().map(|r| r.interface.as_str()).collect();
    assert_eq!(names, ["cam0", "eth8", "if9"]);
    assert_eq!(joined[0].label.as_deref(), Some("cam0:1"));
    assert_eq!(joined[0].link_flags, Some(IFF_UP));
    assert_eq!(joined[1].link_flags, None);
    assert_eq!(
        usable_addresses(&joined)[0],
        InterfaceAddress {
            interface: "cam0".into(),
            index: 3,
            address: IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2)),
            prefix_len: 24
        }
    );
}
