//! Pure, panic-free parsing of rtnetlink messages (the bytes one `recv` returns).
//!
//! Everything here works on untrusted bytes: every length is bounds-checked, nothing is indexed
//! directly, and arithmetic cannot overflow. Netlink data is in host byte order and 4-byte aligned
//! (`NLMSG_ALIGN`, `RTA_ALIGN`); the last message or attribute in a buffer may omit its padding.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::consts::*;
use crate::NetlinkError;

/// Size of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
/// Size of `struct ifaddrmsg`.
pub const IFADDRMSG_LEN: usize = 8;
/// Size of `struct ifinfomsg`.
pub const IFINFOMSG_LEN: usize = 16;
/// Size of `struct rtattr`.
pub const RTA_HDRLEN: usize = 4;

/// Rounds up to the 4-byte netlink alignment (`NLMSG_ALIGN` / `RTA_ALIGN`); saturates instead of
/// overflowing.
pub const fn align4(len: usize) -> usize {
    match len.checked_add(3) {
        Some(n) => n & !3,
        None => usize::MAX & !3,
    }
}

/// The fields of a `struct nlmsghdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageHeader {
    /// `nlmsg_len`: length of the message including this header.
    pub len: u32,
    /// `nlmsg_type`: `RTM_NEWADDR`, `NLMSG_DONE`, ...
    pub kind: u16,
    /// `nlmsg_flags`: `NLM_F_MULTI`, `NLM_F_DUMP_INTR`, ...
    pub flags: u16,
    /// `nlmsg_seq`: the request's sequence number (0 for notifications).
    pub seq: u32,
    /// `nlmsg_pid`: the port id of the socket the answer is for (0 for notifications).
    pub pid: u32,
}

/// An `RTM_NEWADDR` / `RTM_DELADDR` message: one address of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressMessage {
    /// `ifa_family`: `AF_INET` (2) or `AF_INET6` (10); other families carry no parsed address.
    pub family: u8,
    /// `ifa_prefixlen`.
    pub prefix_len: u8,
    /// `IFA_F_*` flags: the 8-bit `ifa_flags` and the 32-bit `IFA_FLAGS` attribute together. The
    /// kernel puts the low 8 bits in both; a flag set in either one counts, so a sender that fills
    /// only one of them cannot hide a flag.
    pub flags: u32,
    /// `ifa_scope`: `RT_SCOPE_UNIVERSE` (0), `RT_SCOPE_LINK` (253), `RT_SCOPE_HOST` (254), ...
    pub scope: u8,
    /// `ifa_index`: the interface index.
    pub index: u32,
    /// `IFA_LOCAL`: the local address (differs from `IFA_ADDRESS` on point-to-point links).
    pub local: Option<IpAddr>,
    /// `IFA_ADDRESS`: the prefix address, or the peer's address on point-to-point links.
    pub address: Option<IpAddr>,
    /// `IFA_LABEL`: the interface name or alias (IPv4 only).
    pub label: Option<String>,
}

impl AddressMessage {
    /// The interface's own address: `IFA_LOCAL` when present, else `IFA_ADDRESS` (as iproute2 does).
    pub fn ip(&self) -> Option<IpAddr> {
        self.local.or(self.address)
    }
}

/// An `RTM_NEWLINK` / `RTM_DELLINK` message: one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkMessage {
    /// `ifi_index`.
    pub index: u32,
    /// `ifi_type`: `ARPHRD_*` (772 is loopback).
    pub link_type: u16,
    /// `ifi_flags`: `IFF_UP`, `IFF_LOOPBACK`, `IFF_RUNNING`, ...
    pub flags: u32,
    /// `IFLA_IFNAME`.
    pub name: Option<String>,
}

/// What one netlink message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// `RTM_NEWADDR`.
    NewAddress(AddressMessage),
    /// `RTM_DELADDR`.
    DelAddress(AddressMessage),
    /// `RTM_NEWLINK`.
    NewLink(LinkMessage),
    /// `RTM_DELLINK`.
    DelLink(LinkMessage),
    /// `NLMSG_DONE`, with the dump's status (0, or a negative errno when the dump failed).
    Done(i32),
    /// `NLMSG_ERROR`: 0 is an acknowledgement, otherwise a negative errno.
    Error(i32),
    /// `NLMSG_NOOP`, `NLMSG_OVERRUN` and message types this crate does not read.
    Other,
}

/// One parsed netlink message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The `nlmsghdr`.
    pub header: MessageHeader,
    /// The body.
    pub payload: Payload,
}

/// Bounds-checked little helpers over a byte slice.
fn bytes<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    let end = at.checked_add(N)?;
    buf.get(at..end)?.try_into().ok()
}

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    bytes::<2>(buf, at).map(u16::from_ne_bytes)
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    bytes::<4>(buf, at).map(u32::from_ne_bytes)
}

fn i32_at(buf: &[u8], at: usize) -> Option<i32> {
    bytes::<4>(buf, at).map(i32::from_ne_bytes)
}

/// Splits a buffer into messages: `(header, body)` pairs. Never panics.
///
/// # Errors
/// `Malformed` when a header is cut short, a length is smaller than the header or runs past the
/// buffer.
pub fn split_messages(buf: &[u8]) -> Result<Vec<(MessageHeader, &[u8])>, NetlinkError> {
    let mut out = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let (Some(len), Some(kind), Some(flags), Some(seq), Some(pid)) =
            (u32_at(rest, 0), u16_at(rest, 4), u16_at(rest, 6), u32_at(rest, 8), u32_at(rest, 12))
        else {
            return Err(NetlinkError::malformed(format!(
                "{} trailing bytes are too short for a message header",
                rest.len()
            )));
        };
        let len_usize = usize::try_from(len).unwrap_or(usize::MAX);
        if len_usize < NLMSG_HDRLEN {
            return Err(NetlinkError::malformed(format!("message length {len} is shorter than its header")));
        }
        let Some(body) = rest.get(NLMSG_HDRLEN..len_usize) else {
            return Err(NetlinkError::malformed(format!(
                "message length {len} runs past the {} bytes received",
                rest.len()
            )));
        };
        out.push((MessageHeader { len, kind, flags, seq, pid }, body));
        rest = rest.get(align4(len_usize)..).unwrap_or(&[]);
    }
    Ok(out)
}

/// Iterates over the route attributes (`struct rtattr`) in `buf`, yielding `(type, payload)`, with
/// the `NLA_F_NESTED` / `NLA_F_NET_BYTEORDER` bits masked off the type.
///
/// # Errors
/// `Malformed` when an attribute is cut short, or its length is below the attribute header (which
/// includes zero: such an attribute would never advance) or past the end of the buffer.
pub fn split_attributes(buf: &[u8]) -> Result<Vec<(u16, &[u8])>, NetlinkError> {
    let mut out = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let (Some(len), Some(kind)) = (u16_at(rest, 0), u16_at(rest, 2)) else {
            return Err(NetlinkError::malformed(format!(
                "{} trailing bytes are too short for an attribute header",
                rest.len()
            )));
        };
        let len = usize::from(len);
        if len < RTA_HDRLEN {
            return Err(NetlinkError::malformed(format!("attribute {kind} has length {len}, shorter than its header")));
        }
        let Some(payload) = rest.get(RTA_HDRLEN..len) else {
            return Err(NetlinkError::malformed(format!(
                "attribute {kind} of length {len} runs past the {} bytes left",
                rest.len()
            )));
        };
        out.push((kind & NLA_TYPE_MASK, payload));
        rest = rest.get(align4(len)..).unwrap_or(&[]);
    }
    Ok(out)
}

fn ip_from(family: u8, payload: &[u8], what: &str) -> Result<Option<IpAddr>, NetlinkError> {
    match family {
        AF_INET => match <[u8; 4]>::try_from(payload) {
            Ok(b) => Ok(Some(IpAddr::V4(Ipv4Addr::from(b)))),
            Err(_) => {
                Err(NetlinkError::malformed(format!("IPv4 {what} attribute has {} bytes instead of 4", payload.len())))
            }
        },
        AF_INET6 => match <[u8; 16]>::try_from(payload) {
            Ok(b) => Ok(Some(IpAddr::V6(Ipv6Addr::from(b)))),
            Err(_) => {
                Err(NetlinkError::malformed(format!("IPv6 {what} attribute has {} bytes instead of 16", payload.len())))
            }
        },
        _ => Ok(None),
    }
}

/// A C string attribute: up to the first NUL (or the whole payload), lossily decoded.
fn string_from(payload: &[u8]) -> String {
    let end = payload.iter().position(|&b| b == 0).unwrap_or(payload.len());
    String::from_utf8_lossy(payload.get(..end).unwrap_or_default()).into_owned()
}

/// Parses the body of an `RTM_NEWADDR` / `RTM_DELADDR` message.
///
/// # Errors
/// `Malformed` when the body is shorter than `struct ifaddrmsg` or an attribute is malformed
/// (including an IPv4/IPv6 address attribute of the wrong size).
pub fn parse_address_body(body: &[u8]) -> Result<AddressMessage, NetlinkError> {
    let (Some([family, prefix_len, flags8, scope]), Some(index)) = (bytes::<4>(body, 0), u32_at(body, 4)) else {
        return Err(NetlinkError::malformed(format!(
            "address message body has {} bytes, shorter than struct ifaddrmsg",
            body.len()
        )));
    };
    let mut msg = AddressMessage {
        family,
        prefix_len,
        flags: u32::from(flags8),
        scope,
        index,
        local: None,
        address: None,
        label: None,
    };
    for (kind, payload) in split_attributes(body.get(IFADDRMSG_LEN..).unwrap_or_default())? {
        match kind {
            IFA_ADDRESS => msg.address = ip_from(family, payload, "IFA_ADDRESS")?,
            IFA_LOCAL => msg.local = ip_from(family, payload, "IFA_LOCAL")?,
            IFA_LABEL => msg.label = Some(string_from(payload)),
            IFA_FLAGS => match u32_at(payload, 0) {
                Some(f) if payload.len() == 4 => msg.flags |= f,
                _ => {
                    return Err(NetlinkError::malformed(format!(
                        "IFA_FLAGS attribute has {} bytes instead of 4",
                        payload.len()
                    )))
                }
            },
            _ => {}
        }
    }
    Ok(msg)
}

/// Parses the body of an `RTM_NEWLINK` / `RTM_DELLINK` message.
///
/// # Errors
/// `Malformed` when the body is shorter than `struct ifinfomsg` or an attribute is malformed.
pub fn parse_link_body(body: &[u8]) -> Result<LinkMessage, NetlinkError> {
    let (Some(link_type), Some(index), Some(flags)) = (u16_at(body, 2), i32_at(body, 4), u32_at(body, 8)) else {
        return Err(NetlinkError::malformed(format!(
            "link message body has {} bytes, shorter than struct ifinfomsg",
            body.len()
        )));
    };
    if body.len() < IFINFOMSG_LEN {
        return Err(NetlinkError::malformed(format!(
            "link message body has {} bytes, shorter than struct ifinfomsg",
            body.len()
        )));
    }
    let index = u32::try_from(index)
        .map_err(|_| NetlinkError::malformed(format!("link message has negative interface index {index}")))?;
    let mut msg = LinkMessage { index, link_type, flags, name: None };
    for (kind, payload) in split_attributes(body.get(IFINFOMSG_LEN..).unwrap_or_default())? {
        if kind == IFLA_IFNAME {
            msg.name = Some(string_from(payload));
        }
    }
    Ok(msg)
}

/// Parses every message in `buf` (one datagram from a netlink route socket). Never panics.
///
/// # Errors
/// `Malformed` on the first message or attribute that does not fit, with what was wrong.
pub fn parse_messages(buf: &[u8]) -> Result<Vec<Message>, NetlinkError> {
    split_messages(buf)?
        .into_iter()
        .map(|(header, body)| {
            let payload = match header.kind {
                RTM_NEWADDR => Payload::NewAddress(parse_address_body(body)?),
                RTM_DELADDR => Payload::DelAddress(parse_address_body(body)?),
                RTM_NEWLINK => Payload::NewLink(parse_link_body(body)?),
                RTM_DELLINK => Payload::DelLink(parse_link_body(body)?),
                // The status int is optional in NLMSG_DONE (very old kernels send an empty body).
                NLMSG_DONE => Payload::Done(i32_at(body, 0).unwrap_or(0)),
                NLMSG_ERROR => Payload::Error(i32_at(body, 0).ok_or_else(|| {
                    NetlinkError::malformed(format!(
                        "error message body has {} bytes, too short for the error code",
                        body.len()
                    ))
                })?),
                _ => Payload::Other,
            };
            Ok(Message { header, payload })
        })
        .collect()
}

/// The `RTM_NEWADDR` messages in `buf`, in order (other message types are skipped). Never panics;
/// this is the entry point for fuzzing.
///
/// # Errors
/// As [`parse_messages`].
pub fn parse_address_messages(buf: &[u8]) -> Result<Vec<AddressMessage>, NetlinkError> {
    Ok(parse_messages(buf)?
        .into_iter()
        .filter_map(|m| match m.payload {
            Payload::NewAddress(a) => Some(a),
            _ => None,
        })
        .collect())
}

/// The `RTM_NEWLINK` messages in `buf`, in order (other message types are skipped). Never panics.
///
/// # Errors
/// As [`parse_messages`].
pub fn parse_link_messages(buf: &[u8]) -> Result<Vec<LinkMessage>, NetlinkError> {
    Ok(parse_messages(buf)?
        .into_iter()
        .filter_map(|m| match m.payload {
            Payload::NewLink(l) => Some(l),
            _ => None,
        })
        .collect())
}

/// Encodes a dump request (`NLM_F_REQUEST | NLM_F_DUMP`) of `kind` (`RTM_GETADDR` or
/// `RTM_GETLINK`), with a zeroed `ifaddrmsg` / `ifinfomsg` (family `AF_UNSPEC`: every family).
pub fn dump_request(kind: u16, seq: u32) -> Vec<u8> {
    let body_len = if kind == RTM_GETLINK { IFINFOMSG_LEN } else { IFADDRMSG_LEN };
    let total = NLMSG_HDRLEN + body_len;
    let mut buf = Vec::with_capacity(total);
    // total is at most 32: the cast cannot truncate.
    buf.extend_from_slice(&(total as u32).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.resize(total, 0);
    buf
}
