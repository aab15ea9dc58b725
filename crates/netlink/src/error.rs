//! The crate's error type.

use std::fmt;

use nix::errno::Errno;

/// What went wrong talking to the kernel over rtnetlink.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetlinkError {
    /// The netlink socket could not be created (or configured).
    Socket(Errno),
    /// The netlink socket could not be bound (or its port id read back).
    Bind(Errno),
    /// The request could not be sent to the kernel.
    Send(Errno),
    /// Reading (or waiting for) the kernel's answer failed; `ETIMEDOUT` when it never came.
    Receive(Errno),
    /// The kernel answered the request with an error (`NLMSG_ERROR`, or a negative `NLMSG_DONE`).
    Kernel(Errno),
    /// The kernel's answer could not be parsed; says what was wrong with it.
    Malformed(String),
}

impl NetlinkError {
    pub(crate) fn malformed(what: impl Into<String>) -> Self {
        NetlinkError::Malformed(what.into())
    }
}

impl fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetlinkError::Socket(e) => {
                write!(f, "could not open a netlink socket to read the network addresses: {}", e.desc())
            }
            NetlinkError::Bind(e) => write!(f, "could not bind the netlink socket: {}", e.desc()),
            NetlinkError::Send(e) => {
                write!(f, "could not send the address request to the kernel over netlink: {}", e.desc())
            }
            NetlinkError::Receive(Errno::ETIMEDOUT) => {
                write!(f, "the kernel did not answer the netlink address request in time")
            }
            NetlinkError::Receive(e) => {
                write!(f, "could not read the kernel's answer from the netlink socket: {}", e.desc())
            }
            NetlinkError::Kernel(e) => {
                write!(f, "the kernel refused the netlink address request: {}", e.desc())
            }
            NetlinkError::Malformed(what) => {
                write!(f, "the kernel's netlink answer could not be understood: {what}")
            }
        }
    }
}

impl std::error::Error for NetlinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NetlinkError::Socket(e)
            | NetlinkError::Bind(e)
            | NetlinkError::Send(e)
            | NetlinkError::Receive(e)
            | NetlinkError::Kernel(e) => Some(e),
            NetlinkError::Malformed(_) => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_sentence() {
        let cases = [
            NetlinkError::Socket(Errno::EACCES),
            NetlinkError::Bind(Errno::EADDRINUSE),
            NetlinkError::Send(Errno::ENOBUFS),
            NetlinkError::Receive(Errno::ETIMEDOUT),
            NetlinkError::Receive(Errno::EIO),
            NetlinkError::Kernel(Errno::EINVAL),
            NetlinkError::Malformed("message length 3 is shorter than its header".into()),
        ];
        for e in cases {
            let s = e.to_string();
            assert!(!s.contains('\n'), "{s}");
            assert!(s.len() > 20, "{s}");
        }
        assert_eq!(
            NetlinkError::Kernel(Errno::EINVAL).to_string(),
            "the kernel refused the netlink address request: Invalid argument"
        );
    }
}
