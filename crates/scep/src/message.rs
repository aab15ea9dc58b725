//! PKIOperation messages: PKCSReq, RenewalReq and CertPoll out, CertRep back.

use std::fmt;

use der::asn1::{AnyRef, OctetStringRef, PrintableStringRef};
use der::{Encode, Sequence};
use rand_core::{OsRng, RngCore};

use crate::cacert::{essence, not_expected, CaCerts};
use crate::caps::{Algorithms, DigestAlgorithm};
use crate::csr::csr_subject_and_key;
use crate::error::server_text;
use crate::key::Signer;
use crate::{cms, oid, FailInfo, ScepError, MAX_MESSAGE_SIZE};

/// Content type of PKIOperation requests (POST) and of CertRep answers.
pub const PKI_MESSAGE_CONTENT_TYPE: &str = "application/x-pki-message";

/// SCEP message types (RFC 8894 section 3.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    CertRep,
    RenewalReq,
    PkcsReq,
    CertPoll,
}

impl MessageType {
    pub fn code(self) -> &'static str {
        match self {
            Self::CertRep => "3",
            Self::RenewalReq => "17",
            Self::PkcsReq => "19",
            Self::CertPoll => "20",
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::CertRep => "CertRep",
            Self::RenewalReq => "RenewalReq",
            Self::PkcsReq => "PKCSReq",
            Self::CertPoll => "CertPoll",
        };
        write!(f, "{name} ({})", self.code())
    }
}

/// The transactionID: the same for every message of one enrollment (PKCSReq and its polls).
/// Made, as RFC 8894 section 3.2.1.1 suggests, from the requested public key: uppercase hex of
/// the SHA-256 of its SubjectPublicKeyInfo.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionId(String);

impl TransactionId {
    pub fn for_public_key(spki_der: &[u8]) -> Self {
        let hash = ring::digest::digest(&ring::digest::SHA256, spki_der);
        Self(camera_pki::text::hex_upper(hash.as_ref(), None))
    }

    /// A stored transactionID (PrintableString characters only).
    pub fn from_stored(s: &str) -> Option<Self> {
        (!s.is_empty() && s.len() <= 128 && PrintableStringRef::new(s).is_ok()).then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a later CertPoll needs, after a PENDING answer; all public, so the caller can store it
/// (with the signer's key and certificate) and poll after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollState {
    pub transaction_id: TransactionId,
    /// The requested subject Name (DER), from the certificate request.
    pub subject_der: Vec<u8>,
    /// The requested public key (SubjectPublicKeyInfo DER), from the certificate request.
    pub requested_key_der: Vec<u8>,
}

/// A PKIOperation message to send, and what its answer must match.
#[derive(Debug, Clone)]
pub struct Request {
    /// The DER to send (POST body, or base64 in the GET query: see [`crate::http`]).
    pub der: Vec<u8>,
    pub reply: ExpectedReply,
}

/// What the CertRep to one request must carry: this transactionID, this request's nonce, and
/// (on success) a certificate for the requested key.
#[derive(Debug, Clone)]
pub struct ExpectedReply {
    pub message_type: MessageType,
    pub poll: PollState,
    /// What the request was built with (to log).
    pub algorithms: Algorithms,
    sender_nonce: [u8; 16],
}

/// The server's answer, once verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertRep {
    /// SUCCESS: the certificate for the requested key.
    Issued(Issued),
    /// PENDING: a person at the CA has to approve; poll later with [`cert_poll`].
    Pending,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The issued certificate (DER); its public key is the requested one.
    pub certificate: Vec<u8>,
    /// The other certificates the server sent with it (its CA chain, in the order received).
    pub chain: Vec<Vec<u8>>,
    /// The digest the server signed its answer with (scepserver 2.1.0 uses SHA-1).
    pub reply_digest: DigestAlgorithm,
}

/// PKCSReq (19): enrollment with a self-signed `signer` and a request for the same key,
/// normally carrying the challenge password.
pub fn pkcs_req(signer: &Signer, ca: &CaCerts, csr_der: &[u8], algorithms: Algorithms) -> Result<Request, ScepError> {
    let (subject_der, requested_key_der) = csr_subject_and_key(csr_der)?;
    if requested_key_der != signer.key.public_key_der() {
        return Err(ScepError::Csr("the certificate request is not for the signer's key".into()));
    }
    let poll =
        PollState { transaction_id: TransactionId::for_public_key(&requested_key_der), subject_der, requested_key_der };
    build(signer, ca, MessageType::PkcsReq, poll, csr_der, algorithms)
}

/// RenewalReq (17): a request (for a new key or the same one) signed with the current
/// certificate the CA issued and its key. Check [`crate::Capabilities::supports_renewal`] first.
pub fn renewal_req(
    signer: &Signer,
    ca: &CaCerts,
    csr_der: &[u8],
    algorithms: Algorithms,
) -> Result<Request, ScepError> {
    if signer.cert.issuer == signer.cert.subject {
        return Err(ScepError::Csr(
            "renewal is signed with the current certificate from the CA, not a self-signed one".into(),
        ));
    }
    let (subject_der, requested_key_der) = csr_subject_and_key(csr_der)?;
    let poll =
        PollState { transaction_id: TransactionId::for_public_key(&requested_key_der), subject_der, requested_key_der };
    build(signer, ca, MessageType::RenewalReq, poll, csr_der, algorithms)
}

#[derive(Sequence)]
struct IssuerAndSubject<'a> {
    issuer: AnyRef<'a>,
    subject: AnyRef<'a>,
}

/// CertPoll (20, formerly GetCertInitial) after a PENDING answer: same transactionID, signed by
/// the same signer, asking for the certificate by IssuerAndSubject (the CA's name and the
/// requested subject).
pub fn cert_poll(
    signer: &Signer,
    ca: &CaCerts,
    poll: &PollState,
    algorithms: Algorithms,
) -> Result<Request, ScepError> {
    let content = IssuerAndSubject {
        issuer: AnyRef::try_from(ca.ca_cert().subject.as_slice()).map_err(ScepError::Encode)?,
        subject: AnyRef::try_from(poll.subject_der.as_slice()).map_err(ScepError::Encode)?,
    }
    .to_der()
    .map_err(ScepError::Encode)?;
    build(signer, ca, MessageType::CertPoll, poll.clone(), &content, algorithms)
}

fn build(
    signer: &Signer,
    ca: &CaCerts,
    message_type: MessageType,
    poll: PollState,
    inner: &[u8],
    algorithms: Algorithms,
) -> Result<Request, ScepError> {
    let recipient = ca.recipient_cert();
    if !recipient.is_rsa() {
        return Err(ScepError::RecipientNotRsa(if ca.has_ra() { "RA" } else { "CA" }));
    }
    let envelope = cms::envelope(recipient, algorithms.cipher, inner)?;
    let mut sender_nonce = [0u8; 16];
    OsRng.try_fill_bytes(&mut sender_nonce).map_err(|_| ScepError::Random)?;
    let printable = |s| PrintableStringRef::new(s).map_err(ScepError::Encode);
    let attrs = vec![
        cms::attribute(oid::SCEP_MESSAGE_TYPE, printable(message_type.code())?)?,
        cms::attribute(oid::SCEP_TRANSACTION_ID, printable(poll.transaction_id.as_str())?)?,
        cms::attribute(oid::SCEP_SENDER_NONCE, OctetStringRef::new(&sender_nonce).map_err(ScepError::Encode)?)?,
    ];
    let der = cms::sign(&signer.key, &signer.cert, algorithms.digest, &envelope, attrs)?;
    Ok(Request { der, reply: ExpectedReply { message_type, poll, algorithms, sender_nonce } })
}

impl ExpectedReply {
    /// Verifies the server's answer to this request and opens it: signed by a certificate of
    /// `ca` (the GetCACert answer, which the caller checked with [`CaCerts::check_trust`]), a
    /// CertRep, for this transaction, echoing this request's nonce. On SUCCESS the certificate
    /// is decrypted with the signer's key (the server encrypts to the certificate that signed
    /// the request) and must be for the requested key. FAILURE comes back as
    /// [`ScepError::Refused`].
    pub fn open(
        &self,
        signer: &Signer,
        ca: &CaCerts,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<CertRep, ScepError> {
        if body.len() > MAX_MESSAGE_SIZE {
            return Err(ScepError::TooLarge { what: "answer", size: body.len(), max: MAX_MESSAGE_SIZE });
        }
        let essence = content_type.map(essence).unwrap_or_default();
        if essence.starts_with("text/") || body.first() != Some(&0x30) {
            let expected = "a SCEP message (application/x-pki-message)";
            let what = "SCEP message (application/x-pki-message)";
            return Err(not_expected("PKIOperation", content_type, &[PKI_MESSAGE_CONTENT_TYPE], expected, what, body));
        }
        let parts = cms::parse_signed(body)?;
        let verified = cms::verify_signed(&parts, &ca.signer_candidates())?;
        let attr = |wanted, name: &'static str| -> Result<AnyRef<'_>, ScepError> {
            verified.attrs.iter().find(|a| a.oid == wanted).map(|a| a.value).ok_or(ScepError::MissingAttribute(name))
        };
        let message_type = cms::attr_string(&attr(oid::SCEP_MESSAGE_TYPE, "messageType")?, "messageType attribute")?;
        if message_type.trim() != MessageType::CertRep.code() {
            return Err(ScepError::NotCertRep(server_text(message_type.as_bytes(), 16)));
        }
        let transaction =
            cms::attr_string(&attr(oid::SCEP_TRANSACTION_ID, "transactionID")?, "transactionID attribute")?;
        if transaction != self.poll.transaction_id.as_str() {
            return Err(ScepError::WrongTransaction {
                got: server_text(transaction.as_bytes(), 80),
                expected: self.poll.transaction_id.to_string(),
            });
        }
        let nonce = cms::attr_octets(&attr(oid::SCEP_RECIPIENT_NONCE, "recipientNonce")?, "recipientNonce attribute")?;
        if nonce != self.sender_nonce {
            return Err(ScepError::WrongNonce);
        }
        let status = cms::attr_string(&attr(oid::SCEP_PKI_STATUS, "pkiStatus")?, "pkiStatus attribute")?;
        match status.trim() {
            "0" => {}
            "3" => return Ok(CertRep::Pending),
            "2" => {
                let fail_info = attr(oid::SCEP_FAIL_INFO, "failInfo")
                    .ok()
                    .and_then(|v| cms::attr_string(&v, "failInfo attribute").ok())
                    .and_then(FailInfo::parse);
                let server_text = attr(oid::SCEP_FAIL_INFO_TEXT, "failInfoText")
                    .ok()
                    .and_then(|v| cms::attr_string(&v, "failInfoText attribute").ok())
                    .map(|t| server_text(t.as_bytes(), 200))
                    .filter(|t| !t.is_empty());
                return Err(ScepError::Refused { fail_info, server_text });
            }
            other => return Err(ScepError::UnknownStatus(server_text(other.as_bytes(), 16))),
        }
        let envelope =
            parts.econtent.ok_or_else(|| ScepError::malformed("certificate reply (SUCCESS without content)"))?;
        let plaintext = cms::open_envelope(envelope, &signer.key, &signer.cert)?;
        let certs = cms::degenerate_certs(&plaintext)?;
        let mut issued = None;
        let mut chain = Vec::new();
        for der in certs {
            let cert = crate::cert::Cert::parse(der)?;
            if issued.is_none() && cert.spki == self.poll.requested_key_der {
                issued = Some(cert.der);
            } else {
                chain.push(cert.der);
            }
        }
        let certificate = issued.ok_or(ScepError::WrongKey)?;
        Ok(CertRep::Issued(Issued { certificate, chain, reply_digest: verified.digest }))
    }

    /// The nonce this request carried (tests, and servers written as tests).
    pub fn sender_nonce(&self) -> &[u8; 16] {
        &self.sender_nonce
    }
}
