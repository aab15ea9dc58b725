//! The crate's error type.

use nix::errno::Errno;

/// What went wrong talking to the kernel over rtnetlink. Each variant says which step failed; the
/// errno is its source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetlinkError {
    /// The netlink socket could not be created (or configured).
    #[error("could not open a netlink socket to read the network addresses")]
    Socket(#[source] Errno),
    /// The netlink socket could not be bound (or its port id read back).
    #[error("could not bind the netlink socket")]
    Bind(#[source] Errno),
    /// The request could not be sent to the kernel.
    #[error("could not send the address request to the kernel over netlink")]
    Send(#[source] Errno),
    /// The kernel's answer did not come within the time a dump may take.
    #[error("the kernel did not answer the netlink address request within {} s", .0.as_secs())]
    NoAnswer(std::time::Duration),
    /// Reading (or waiting for) the kernel's answer failed.
    #[error("could not read the kernel's answer from the netlink socket")]
    Receive(#[source] Errno),
    /// The kernel answered the request with an error (`NLMSG_ERROR`, or a negative `NLMSG_DONE`).
    #[error("the kernel refused the netlink address request")]
    Kernel(#[source] Errno),
    /// The kernel's answer could not be parsed; says what was wrong with it.
    #[error("the kernel's netlink answer could not be understood: {0}")]
    Malformed(String),
}

impl NetlinkError {
    pub(crate) fn malformed(what: impl Into<String>) -> Self {
        NetlinkError::Malformed(what.into())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn each_error_is_one_sentence_with_its_errno_as_source() {
        let cases = [
            NetlinkError::Socket(Errno::EACCES),
            NetlinkError::Bind(Errno::EADDRINUSE),
            NetlinkError::Send(Errno::ENOBUFS),
            NetlinkError::NoAnswer(std::time::Duration::from_secs(5)),
            NetlinkError::Receive(Errno::EIO),
            NetlinkError::Kernel(Errno::EINVAL),
            NetlinkError::Malformed("message length 3 is shorter than its header".into()),
        ];
        for e in cases {
            let s = e.to_string();
            assert!(!s.contains('\n'), "{s}");
            assert!(s.len() > 20, "{s}");
        }
        let e = NetlinkError::Kernel(Errno::EINVAL);
        assert_eq!(e.to_string(), "the kernel refused the netlink address request");
        assert_eq!(e.source().unwrap().to_string(), Errno::EINVAL.to_string());
        assert_eq!(
            NetlinkError::NoAnswer(std::time::Duration::from_secs(5)).to_string(),
            "the kernel did not answer the netlink address request within 5 s"
        );
        assert!(NetlinkError::malformed("x").source().is_none());
    }
}
