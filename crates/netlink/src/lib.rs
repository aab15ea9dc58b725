//! The camera's interface addresses, read over rtnetlink, and notifications when they change.
//!
//! - [`current_addresses`]: the addresses a certificate should name (no loopback, no link-local, no
//!   IPv6 address that is temporary, tentative, deprecated or failed duplicate address detection),
//!   sorted.
//! - [`all_addresses`]: everything the kernel reports, with flags, for diagnostics.
//! - [`AddressWatcher`]: a non-blocking socket that becomes readable when addresses or links change.
//!
//! Talks to the kernel directly with `NETLINK_ROUTE` sockets (no `ip`, no `getifaddrs`). The byte
//! parsing lives in [`parse`], in pure functions that never panic on any input.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

pub mod consts;
mod error;
pub mod parse;
mod socket;

pub use error::NetlinkError;
pub use nix::errno::Errno;
pub use socket::AddressWatcher;

use consts::*;

/// One usable address of one interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InterfaceAddress {
    /// Interface name, e.g. `eth0`.
    pub interface: String,
    /// Interface index.
    pub index: u32,
    /// The address.
    pub address: IpAddr,
    /// Prefix length of the subnet.
    pub prefix_len: u8,
}

/// One address exactly as the kernel reports it, for diagnostics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAddress {
    /// Interface name (from the link dump; else `IFA_LABEL`; else `if<index>`).
    pub interface: String,
    /// Interface index.
    pub index: u32,
    /// The interface's own address (`IFA_LOCAL` when present, else `IFA_ADDRESS`).
    pub address: IpAddr,
    /// The other end on a point-to-point link (`IFA_ADDRESS` when it differs from `IFA_LOCAL`).
    pub peer: Option<IpAddr>,
    /// Prefix length.
    pub prefix_len: u8,
    /// `ifa_scope` (0 global, 253 link, 254 host).
    pub scope: u8,
    /// `IFA_F_*` flags (see [`consts`]).
    pub flags: u32,
    /// `IFA_LABEL` (IPv4 only).
    pub label: Option<String>,
    /// The interface's `IFF_*` flags, when the link dump listed it.
    pub link_flags: Option<u32>,
}

impl RawAddress {
    /// `IFA_F_TENTATIVE`: duplicate address detection has not finished.
    pub fn is_tentative(&self) -> bool {
        self.flags & IFA_F_TENTATIVE != 0
    }

    /// `IFA_F_DEPRECATED`: the preferred lifetime is over.
    pub fn is_deprecated(&self) -> bool {
        self.flags & IFA_F_DEPRECATED != 0
    }

    /// `IFA_F_DADFAILED`: another host on the link has this address.
    pub fn is_dad_failed(&self) -> bool {
        self.flags & IFA_F_DADFAILED != 0
    }

    /// `IFA_F_TEMPORARY` on an IPv6 address: a privacy address (RFC 8981). On IPv4 the same bit
    /// means secondary, which says nothing against naming the address.
    pub fn is_temporary(&self) -> bool {
        self.address.is_ipv6() && self.flags & IFA_F_TEMPORARY != 0
    }

    /// The interface is a loopback interface (`IFF_LOOPBACK`).
    pub fn on_loopback_interface(&self) -> bool {
        self.link_flags.is_some_and(|f| f & IFF_LOOPBACK != 0)
    }

    /// Whether [`current_addresses`] keeps this address: see there.
    pub fn is_usable(&self) -> bool {
        if self.on_loopback_interface() || self.address.is_loopback() || self.address.is_unspecified() {
            return false;
        }
        match self.address {
            IpAddr::V4(a) => !a.is_link_local() && !a.is_multicast() && !a.is_broadcast(),
            IpAddr::V6(a) => {
                let link_local = a.segments()[0] & 0xffc0 == 0xfe80;
                !link_local
                    && !a.is_multicast()
                    // A temporary address is replaced within a day by design: naming it would
                    // only make the certificate churn, and clients reach the camera by its
                    // stable addresses.
                    && self.flags & (IFA_F_TEMPORARY | IFA_F_TENTATIVE | IFA_F_DEPRECATED | IFA_F_DADFAILED) == 0
            }
        }
    }

    /// This address as an [`InterfaceAddress`].
    pub fn to_interface_address(&self) -> InterfaceAddress {
        InterfaceAddress {
            interface: self.interface.clone(),
            index: self.index,
            address: self.address,
            prefix_len: self.prefix_len,
        }
    }
}

/// Joins address messages with link messages (for interface names and flags).
/// Messages without an IPv4/IPv6 address are dropped.
pub fn join_addresses(links: &[parse::LinkMessage], addrs: Vec<parse::AddressMessage>) -> Vec<RawAddress> {
    let by_index: HashMap<u32, &parse::LinkMessage> = links.iter().map(|l| (l.index, l)).collect();
    addrs
        .into_iter()
        .filter_map(|a| {
            let address = a.ip()?;
            let link = by_index.get(&a.index);
            let interface = link
                .and_then(|l| l.name.clone())
                .or_else(|| a.label.clone())
                .unwrap_or_else(|| format!("if{}", a.index));
            let peer = match (a.local, a.address) {
                (Some(local), Some(addr)) if local != addr => Some(addr),
                _ => None,
            };
            Some(RawAddress {
                interface,
                index: a.index,
                address,
                peer,
                prefix_len: a.prefix_len,
                scope: a.scope,
                flags: a.flags,
                label: a.label,
                link_flags: link.map(|l| l.flags),
            })
        })
        .collect()
}

/// The usable addresses among `raw` (see [`current_addresses`]), sorted and deduplicated.
pub fn usable_addresses(raw: &[RawAddress]) -> Vec<InterfaceAddress> {
    let mut out: Vec<InterfaceAddress> =
        raw.iter().filter(|r| r.is_usable()).map(RawAddress::to_interface_address).collect();
    out.sort_by(|a, b| {
        (a.address.is_ipv6(), a.index, a.address, a.prefix_len, &a.interface).cmp(&(
            b.address.is_ipv6(),
            b.index,
            b.address,
            b.prefix_len,
            &b.interface,
        ))
    });
    let mut seen = HashSet::new();
    out.retain(|a| seen.insert(a.address));
    out
}

/// The camera's usable addresses: what a server certificate should name.
///
/// Skips loopback interfaces and loopback addresses, IPv4 link-local (169.254/16), IPv6 link-local
/// (fe80::/10), and IPv6 addresses flagged temporary (privacy addresses), tentative, deprecated or
/// dadfailed (in `ifa_flags` or `IFA_FLAGS`). IPv4 addresses are kept whatever their flags.
///
/// Sorted IPv4 first, then IPv6; within each, by interface index, then address. Each address
/// appears once (if several interfaces share it, the lowest index wins).
///
/// # Errors
/// When the socket cannot be opened or the kernel's answer cannot be read or parsed.
pub fn current_addresses() -> Result<Vec<InterfaceAddress>, NetlinkError> {
    Ok(usable_addresses(&all_addresses()?))
}

/// Every address the kernel reports, in the kernel's order, unfiltered, with flags.
///
/// # Errors
/// As [`current_addresses`].
pub fn all_addresses() -> Result<Vec<RawAddress>, NetlinkError> {
    let (links, addrs) = socket::dump_links_and_addresses()?;
    Ok(join_addresses(&links, addrs))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
