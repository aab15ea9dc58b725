//! `camera_netlink::parse`: rtnetlink datagrams (RTM_NEWADDR / RTM_NEWLINK dumps and
//! notifications), then the join and filter that give the camera's addresses.
//!
//! Input: one datagram as `recv` returns it.

#![no_main]

use camera_netlink::parse::{parse_address_messages, parse_link_messages, parse_messages, split_messages};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let messages = parse_messages(data);
    if let Ok(split) = split_messages(data) {
        if let Ok(messages) = &messages {
            assert_eq!(messages.len(), split.len());
        }
    }
    let links = parse_link_messages(data);
    let addresses = parse_address_messages(data);
    assert_eq!(messages.is_ok(), links.is_ok());
    assert_eq!(messages.is_ok(), addresses.is_ok());
    if let (Ok(links), Ok(addresses)) = (links, addresses) {
        let raw = camera_netlink::join_addresses(&links, addresses);
        let usable = camera_netlink::usable_addresses(&raw);
        assert!(usable.len() <= raw.len());
        for a in &usable {
            assert!(!a.address.is_loopback() && !a.address.is_unspecified(), "{a:?}");
        }
    }
});
