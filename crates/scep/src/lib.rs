//! SCEP (RFC 8894) messages for the camera's certificate enrollment and renewal: builds the
//! requests, verifies and opens the server's answers. Pure functions, no I/O: the caller's
//! HTTP client moves the bytes ([`http`] says what to send).
//!
//! An enrollment, in the order the calls happen:
//!
//! 1. [`http::get_ca_caps`] → [`Capabilities::parse`] → [`Capabilities::algorithms`] (SHA-256
//!    and AES-128-CBC when offered; what was picked and why, to log).
//! 2. [`http::get_ca_cert`] → [`CaCerts::parse`] → [`CaCerts::check_trust`] against the
//!    configured anchor (or show [`CaCerts::ca_fingerprint_sha256`] to the installer).
//! 3. [`RequesterKey::generate`] (RSA: the server encrypts its answer with RSA key transport),
//!    [`build_csr`] with the challenge password, [`Signer::self_signed`].
//! 4. [`pkcs_req`] → [`http::pki_operation`] → [`ExpectedReply::open`] → [`CertRep::Issued`],
//!    [`CertRep::Pending`] (then [`cert_poll`] later), or [`ScepError::Refused`].
//! 5. Renewal: [`Signer::with_certificate`] (the current certificate and key) and
//!    [`renewal_req`] for a new request, when [`Capabilities::supports_renewal`].
//!
//! Everything the server sends is untrusted: sizes are bounded ([`MAX_MESSAGE_SIZE`]), nothing
//! panics, the answer's signature is checked against the GetCACert certificates before anything
//! in it is used or decrypted, and [`fuzzing::parse_untrusted`] runs every parser for a fuzz
//! target. The challenge password and keys never appear in Debug output or errors.

mod cacert;
mod caps;
mod cert;
mod cms;
mod csr;
mod error;
pub mod http;
mod key;
mod message;
mod oid;

pub use cacert::{CaCerts, CA_CERT_CONTENT_TYPE, CA_RA_CERT_CONTENT_TYPE, MAX_CA_CERTS};
pub use caps::{Algorithms, Capabilities, ContentCipher, DigestAlgorithm};
pub use csr::{build_csr, ChallengePassword, CsrSpec};
pub use error::{FailInfo, ScepError};
pub use key::{RequesterKey, Signer, DEFAULT_RSA_BITS};
pub use message::{
    cert_poll, pkcs_req, renewal_req, CertRep, ExpectedReply, Issued, MessageType, PollState, Request, TransactionId,
    PKI_MESSAGE_CONTENT_TYPE,
};

/// Largest GetCACert or PKIOperation answer accepted (a CertRep holds one certificate and
/// perhaps a chain: a few kilobytes). The HTTP client should stop reading beyond this.
pub const MAX_MESSAGE_SIZE: usize = 256 * 1024;
/// Largest GetCACaps answer accepted.
pub const MAX_CAPS_SIZE: usize = 8 * 1024;
/// Largest single certificate accepted.
pub const MAX_CERT_SIZE: usize = 32 * 1024;

/// Entry points for fuzzing: every parser that sees the server's bytes.
pub mod fuzzing {
    use std::sync::OnceLock;

    use crate::{cms, CaCerts, Capabilities, RequesterKey, Signer};

    struct Fixture {
        signer: Signer,
        ca: CaCerts,
        reply: crate::ExpectedReply,
    }

    fn fixture() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(|| {
            // One key for the whole run; it acts as requester and as (fake) CA.
            let key = RequesterKey::generate(2048).expect("RSA key generation");
            let mut dn = rcgen::DistinguishedName::new();
            dn.push(rcgen::DnType::CommonName, "fuzz");
            let now = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("valid time");
            let signer = Signer::self_signed(key, &dn, now).expect("self-signed certificate");
            let ca = CaCerts::parse(None, signer.certificate_der()).expect("fixture CA");
            let csr = crate::build_csr(signer.key(), &crate::CsrSpec { subject: dn, ..Default::default() })
                .expect("fixture CSR");
            let request = crate::pkcs_req(&signer, &ca, &csr, crate::Algorithms::RECOMMENDED).expect("fixture request");
            Fixture { signer, ca, reply: request.reply }
        })
    }

    /// Runs `data` through every parser of server answers; never panics, whatever `data` is.
    pub fn parse_untrusted(data: &[u8]) {
        let f = fixture();
        let _ = Capabilities::parse(data);
        let _ = CaCerts::parse(Some(crate::CA_RA_CERT_CONTENT_TYPE), data);
        if let Ok(parts) = cms::parse_signed(data) {
            let _ = cms::verify_signed(&parts, &f.ca.signer_candidates());
        }
        let _ = cms::degenerate_certs(data);
        let _ = cms::open_envelope(data, &f.signer.key, &f.signer.cert);
        let _ = f.reply.open(&f.signer, &f.ca, Some(crate::PKI_MESSAGE_CONTENT_TYPE), data);
    }
}

#[cfg(test)]
mod tests;
