//! The netlink route socket: dumps (`RTM_GETLINK`, `RTM_GETADDR`) and change notifications.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    bind, getsockname, recv, recvfrom, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};

use crate::consts::*;
use crate::parse::{self, Message, Payload};
use crate::NetlinkError;

/// Initial receive buffer: bigger than the 32 KiB the kernel uses for one dump datagram.
const RECV_BUF: usize = 64 * 1024;
/// How long a dump may take before we give up (the kernel answers at once; this only guards
/// against a wedged kernel or a lost datagram).
const DUMP_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times a dump is repeated when the kernel flags it as interrupted (`NLM_F_DUMP_INTR`).
const DUMP_ATTEMPTS: usize = 5;

static NEXT_SEQ: AtomicU32 = AtomicU32::new(1);

fn next_seq() -> u32 {
    // Start from a time-derived value so sequence numbers differ across processes and restarts;
    // only uniqueness per socket matters.
    let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
    let salt =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    seq.wrapping_add(salt & 0xffff_0000) | 1
}

/// An open `NETLINK_ROUTE` socket: non-blocking and close-on-exec.
#[derive(Debug)]
struct RouteSocket {
    fd: OwnedFd,
    port_id: u32,
}

impl RouteSocket {
    fn open(groups: u32) -> Result<Self, NetlinkError> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkRoute,
        )
        .map_err(NetlinkError::Socket)?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups)).map_err(NetlinkError::Bind)?;
        let local: NetlinkAddr = getsockname(fd.as_raw_fd()).map_err(NetlinkError::Bind)?;
        Ok(RouteSocket { fd, port_id: local.pid() })
    }

    /// Waits until the socket is readable or `deadline` passes (`None`: forever).
    /// Returns false on timeout.
    fn wait_readable(&self, deadline: Option<Instant>) -> Result<bool, NetlinkError> {
        loop {
            let timeout = match deadline {
                None => PollTimeout::NONE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    // Round up so that a sub-millisecond remainder does not spin with a zero timeout.
                    let ms = left.as_millis().saturating_add(u128::from(left.subsec_nanos() % 1_000_000 != 0));
                    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
                }
            };
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(NetlinkError::Receive(e)),
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
        }
    }

    /// Sends `RTM_GETxxx` with `NLM_F_DUMP` and collects the answer until `NLMSG_DONE`.
    fn dump(&self, kind: u16, buf: &mut Vec<u8>) -> Result<(Vec<Message>, bool), NetlinkError> {
        let seq = next_seq();
        let request = parse::dump_request(kind, seq);
        let kernel = NetlinkAddr::new(0, 0);
        loop {
            match sendto(self.fd.as_raw_fd(), &request, &kernel, MsgFlags::empty()) {
                Ok(_) => break,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(NetlinkError::Send(e)),
            }
        }
        let deadline = Instant::now() + DUMP_TIMEOUT;
        let mut out = Vec::new();
        let mut interrupted = false;
        loop {
            let n = self.recv_from_kernel(buf, deadline)?;
            let data = buf.get(..n).unwrap_or_default();
            for msg in parse::parse_messages(data)? {
                if msg.header.seq != seq || msg.header.pid != self.port_id {
                    continue; // a stale answer to an earlier request
                }
                if msg.header.flags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match msg.payload {
                    Payload::Done(status) | Payload::Error(status) => {
                        if status < 0 {
                            return Err(NetlinkError::Kernel(Errno::from_raw(status.wrapping_neg())));
                        }
                        return Ok((out, interrupted));
                    }
                    _ => out.push(msg),
                }
            }
        }
    }

    /// Receives one datagram sent by the kernel into `buf` (grown to fit), returning its length.
    fn recv_from_kernel(&self, buf: &mut Vec<u8>, deadline: Instant) -> Result<usize, NetlinkError> {
        let fd = self.fd.as_raw_fd();
        loop {
            if buf.len() < RECV_BUF {
                buf.resize(RECV_BUF, 0);
            }
            // Peek with MSG_TRUNC: returns the datagram's real length even when it is larger than buf.
            match recv(fd, buf, MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC) {
                Ok(n) if n > buf.len() => {
                    buf.resize(n, 0);
                    continue;
                }
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {
                    if !self.wait_readable(Some(deadline))? {
                        return Err(NetlinkError::NoAnswer(DUMP_TIMEOUT));
                    }
                    continue;
                }
                Err(e) => return Err(NetlinkError::Receive(e)),
            }
            match recvfrom::<NetlinkAddr>(fd, buf) {
                // Only the kernel (port id 0) answers dumps; ignore anything a local process sent us.
                Ok((n, Some(from))) if from.pid() == 0 => return Ok(n),
                Ok(_) | Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(e) => return Err(NetlinkError::Receive(e)),
            }
        }
    }
}

/// Links and addresses from one consistent pair of dumps.
pub(crate) fn dump_links_and_addresses() -> Result<(Vec<parse::LinkMessage>, Vec<parse::AddressMessage>), NetlinkError>
{
    let sock = RouteSocket::open(0)?;
    let mut buf = vec![0; RECV_BUF];
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (links, links_intr) = sock.dump(RTM_GETLINK, &mut buf)?;
        let (addrs, addrs_intr) = sock.dump(RTM_GETADDR, &mut buf)?;
        if (links_intr || addrs_intr) && attempt < DUMP_ATTEMPTS {
            continue;
        }
        let links = links
            .into_iter()
            .filter_map(|m| match m.payload {
                Payload::NewLink(l) => Some(l),
                _ => None,
            })
            .collect();
        let addrs = addrs
            .into_iter()
            .filter_map(|m| match m.payload {
                Payload::NewAddress(a) => Some(a),
                _ => None,
            })
            .collect();
        return Ok((links, addrs));
    }
}

/// Waits for address and link changes: a netlink socket subscribed to `RTMGRP_IPV4_IFADDR`,
/// `RTMGRP_IPV6_IFADDR` and `RTMGRP_LINK`.
///
/// The socket is non-blocking and close-on-exec; register [`AsFd::as_fd`] with epoll or tokio's
/// `AsyncFd` and call [`AddressWatcher::drain`] when it is readable, or call
/// [`AddressWatcher::wait`] from a thread. A change only says "look again": call
/// [`crate::current_addresses`] afterwards. Subscribe *before* the first dump so that no change
/// falls between the two.
#[derive(Debug)]
pub struct AddressWatcher {
    sock: RouteSocket,
    buf: Vec<u8>,
}

impl AddressWatcher {
    /// Opens the socket and joins the address and link multicast groups.
    ///
    /// # Errors
    /// `Socket` or `Bind` when the kernel refuses.
    pub fn subscribe() -> Result<Self, NetlinkError> {
        let sock = RouteSocket::open(RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR)?;
        Ok(AddressWatcher { sock, buf: vec![0; RECV_BUF] })
    }

    /// Reads every pending message without blocking. Returns true if any of them was an address
    /// or link change, or if the kernel dropped messages (`ENOBUFS`), or if a message could not be
    /// read whole or parsed: in all those cases the caller should dump the addresses again.
    ///
    /// # Errors
    /// `Receive` when reading the socket fails for another reason than the above.
    pub fn drain(&mut self) -> Result<bool, NetlinkError> {
        let mut changed = false;
        let fd = self.sock.fd.as_raw_fd();
        loop {
            match recv(fd, &mut self.buf, MsgFlags::MSG_TRUNC) {
                Ok(n) if n > self.buf.len() => changed = true, // truncated: cannot tell, so assume
                Ok(n) => {
                    let data = self.buf.get(..n).unwrap_or_default();
                    match parse::parse_messages(data) {
                        Ok(msgs) => {
                            changed |= msgs.iter().any(|m| {
                                matches!(
                                    m.payload,
                                    Payload::NewAddress(_)
                                        | Payload::DelAddress(_)
                                        | Payload::NewLink(_)
                                        | Payload::DelLink(_)
                                )
                            });
                        }
                        Err(_) => changed = true,
                    }
                }
                Err(Errno::EAGAIN) => return Ok(changed),
                Err(Errno::EINTR) => {}
                // The socket's receive queue overflowed and notifications were lost.
                Err(Errno::ENOBUFS) => changed = true,
                Err(e) => return Err(NetlinkError::Receive(e)),
            }
        }
    }

    /// Blocks until an address or link change arrives or `timeout` passes (`None`: no limit).
    /// Returns whether a change arrived. Pending messages are drained first, and again on wake-up.
    ///
    /// # Errors
    /// `Receive` when polling or reading the socket fails.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<bool, NetlinkError> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        // A timeout too large to represent is as good as none.
        loop {
            if self.drain()? {
                return Ok(true);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            if !self.sock.wait_readable(deadline)? {
                return Ok(false);
            }
        }
    }

    /// The socket's netlink port id (for diagnostics).
    pub fn port_id(&self) -> u32 {
        self.sock.port_id
    }
}

impl AsFd for AddressWatcher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.fd.as_fd()
    }
}

impl AsRawFd for AddressWatcher {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.fd.as_raw_fd()
    }
}
