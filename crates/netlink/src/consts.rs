//! Kernel ABI constants from `<linux/netlink.h>`, `<linux/rtnetlink.h>`, `<linux/if_addr.h>`,
//! `<linux/if_link.h>` and `<linux/if.h>`. They are the same on every Linux architecture; they are
//! spelled out here because the `libc` crate does not export all of them on every target.

/// `AF_INET` as stored in `ifa_family`.
pub const AF_INET: u8 = 2;
/// `AF_INET6` as stored in `ifa_family`.
pub const AF_INET6: u8 = 10;

/// `NLMSG_NOOP`.
pub const NLMSG_NOOP: u16 = 1;
/// `NLMSG_ERROR`.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a multipart (dump) answer.
pub const NLMSG_DONE: u16 = 3;
/// `NLMSG_OVERRUN`.
pub const NLMSG_OVERRUN: u16 = 4;

/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x01;
/// `NLM_F_MULTI`: part of a multipart answer.
pub const NLM_F_MULTI: u16 = 0x02;
/// `NLM_F_ACK`.
pub const NLM_F_ACK: u16 = 0x04;
/// `NLM_F_DUMP_INTR`: the dump was inconsistent (the table changed during it); dump again.
pub const NLM_F_DUMP_INTR: u16 = 0x10;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;

/// `RTM_NEWLINK`.
pub const RTM_NEWLINK: u16 = 16;
/// `RTM_DELLINK`.
pub const RTM_DELLINK: u16 = 17;
/// `RTM_GETLINK`.
pub const RTM_GETLINK: u16 = 18;
/// `RTM_NEWADDR`.
pub const RTM_NEWADDR: u16 = 20;
/// `RTM_DELADDR`.
pub const RTM_DELADDR: u16 = 21;
/// `RTM_GETADDR`.
pub const RTM_GETADDR: u16 = 22;

/// `RTMGRP_LINK`: link changes (up/down, new/removed interfaces).
pub const RTMGRP_LINK: u32 = 0x001;
/// `RTMGRP_IPV4_IFADDR`.
pub const RTMGRP_IPV4_IFADDR: u32 = 0x010;
/// `RTMGRP_IPV6_IFADDR`.
pub const RTMGRP_IPV6_IFADDR: u32 = 0x100;

/// Attribute type bits that are flags, not part of the type (`NLA_TYPE_MASK`).
pub const NLA_TYPE_MASK: u16 = !((1 << 15) | (1 << 14));

/// `IFA_ADDRESS`.
pub const IFA_ADDRESS: u16 = 1;
/// `IFA_LOCAL`.
pub const IFA_LOCAL: u16 = 2;
/// `IFA_LABEL`.
pub const IFA_LABEL: u16 = 3;
/// `IFA_FLAGS`: the full 32-bit flags (the `ifa_flags` byte holds only the low 8).
pub const IFA_FLAGS: u16 = 8;

/// `IFA_F_SECONDARY`: on IPv4, an address beside a primary one in the same subnet.
pub const IFA_F_SECONDARY: u32 = 0x01;
/// `IFA_F_TEMPORARY`: on IPv6, a privacy address (RFC 8981), replaced every day or so by design.
/// The same bit as [`IFA_F_SECONDARY`]; which one it means depends on the family.
pub const IFA_F_TEMPORARY: u32 = 0x01;
/// `IFA_F_NODAD`.
pub const IFA_F_NODAD: u32 = 0x02;
/// `IFA_F_OPTIMISTIC`.
pub const IFA_F_OPTIMISTIC: u32 = 0x04;
/// `IFA_F_DADFAILED`: duplicate address detection found another host with this address.
pub const IFA_F_DADFAILED: u32 = 0x08;
/// `IFA_F_DEPRECATED`: preferred lifetime over; not used for new connections.
pub const IFA_F_DEPRECATED: u32 = 0x20;
/// `IFA_F_TENTATIVE`: duplicate address detection still running; the address cannot be used yet.
pub const IFA_F_TENTATIVE: u32 = 0x40;
/// `IFA_F_PERMANENT`.
pub const IFA_F_PERMANENT: u32 = 0x80;

/// `IFLA_IFNAME`.
pub const IFLA_IFNAME: u16 = 3;

/// `IFF_UP`.
pub const IFF_UP: u32 = 0x1;
/// `IFF_LOOPBACK`.
pub const IFF_LOOPBACK: u32 = 0x8;
/// `IFF_RUNNING`.
pub const IFF_RUNNING: u32 = 0x40;

/// `ARPHRD_LOOPBACK` (`ifi_type` of a loopback interface).
pub const ARPHRD_LOOPBACK: u16 = 772;
