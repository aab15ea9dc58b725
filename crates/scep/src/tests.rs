//! Unit tests of the messages, with a SCEP server played by the tests (rcgen CA, the crate's own
//! CMS encoder and decoder on the server side).

use std::sync::OnceLock;

use der::asn1::{OctetStringRef, PrintableStringRef, Utf8StringRef};
use der::{Decode, Encode};
use zeroize::Zeroizing;

use crate::cert::Cert;
use crate::{
    build_csr, cert_poll, cms, oid, pkcs_req, renewal_req, Algorithms, CaCerts, CertRep, ChallengePassword,
    ContentCipher, CsrSpec, DigestAlgorithm, FailInfo, Issued, Request, RequesterKey, ScepError, Signer, TransactionId,
};

const CHALLENGE: &str = "pa55-Word";

/// RSA keys generated once for the whole test run (key generation is the slow part).
fn key(n: usize) -> RequesterKey {
    static KEYS: OnceLock<Vec<Zeroizing<Vec<u8>>>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        (0..6).map(|_| Zeroizing::new(RequesterKey::generate(2048).unwrap().pkcs8_der().to_vec())).collect()
    });
    RequesterKey::from_pkcs8_der(&keys[n]).unwrap()
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn dn(cn: &str) -> rcgen::DistinguishedName {
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::OrganizationName, "Test");
    dn.push(rcgen::DnType::CommonName, cn);
    dn
}

/// A CA played by the tests, with an RSA key (requests are encrypted to it).
struct TestCa {
    key: RequesterKey,
    cert: Cert,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    fn new(key: RequesterKey, name: &str) -> Self {
        Self::issued_by(key, name, None)
    }

    fn issued_by(key: RequesterKey, name: &str, parent: Option<&TestCa>) -> Self {
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = dn(name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let pair = key.rcgen_key_pair().unwrap();
        let cert = match parent {
            None => params.self_signed(&pair).unwrap(),
            Some(p) => params.signed_by(&pair, &p.issuer).unwrap(),
        };
        let cert = Cert::parse(cert.der()).unwrap();
        Self { issuer: rcgen::Issuer::new(params, pair), key, cert }
    }

    fn ca_certs(&self) -> CaCerts {
        CaCerts::parse(Some("application/x-x509-ca-cert"), &self.cert.der).unwrap()
    }

    /// Issues a certificate for a request, copying subject and SANs as scepserver does.
    fn issue(&self, csr_der: &[u8]) -> Vec<u8> {
        let csr = rcgen::CertificateSigningRequestParams::from_der(&csr_der.to_vec().into()).unwrap();
        csr.signed_by(&self.issuer).unwrap().der().to_vec()
    }

    /// An end-entity certificate for `key` (an RA certificate, or one for the wrong key).
    fn leaf(&self, key: &RequesterKey, name: &str, usages: Vec<rcgen::KeyUsagePurpose>) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = dn(name);
        params.key_usages = usages;
        params.signed_by(&key.rcgen_key_pair().unwrap(), &self.issuer).unwrap().der().to_vec()
    }
}

/// What the server sees in a request.
struct Received {
    message_type: String,
    transaction_id: String,
    sender_nonce: Vec<u8>,
    signer: Cert,
    digest: DigestAlgorithm,
    inner: Vec<u8>,
}

fn server_receive(ca: &TestCa, der: &[u8]) -> Received {
    let parts = cms::parse_signed(der).unwrap();
    assert_eq!(parts.certificates.len(), 1, "the request carries its signer's certificate");
    let signer = Cert::parse(parts.certificates[0]).unwrap();
    let verified = cms::verify_signed(&parts, &[&signer]).unwrap();
    let attr = |o| verified.attrs.iter().find(|a| a.oid == o).unwrap().value;
    let inner = cms::open_envelope(parts.econtent.unwrap(), &ca.key, &ca.cert).unwrap();
    Received {
        message_type: cms::attr_string(&attr(oid::SCEP_MESSAGE_TYPE), "").unwrap().to_owned(),
        transaction_id: cms::attr_string(&attr(oid::SCEP_TRANSACTION_ID), "").unwrap().to_owned(),
        sender_nonce: cms::attr_octets(&attr(oid::SCEP_SENDER_NONCE), "").unwrap().to_vec(),
        digest: verified.digest,
        signer,
        inner,
    }
}

/// A CertRep as a server would make it; the fields start as the right answer to `recv`.
struct Reply {
    message_type: &'static str,
    status: &'static str,
    fail_info: Option<&'static str>,
    fail_text: Option<&'static str>,
    transaction_id: String,
    recipient_nonce: Option<Vec<u8>>,
    digest: DigestAlgorithm,
    content: Vec<u8>,
    extra: Vec<cms::Attr>,
}

impl Reply {
    fn to(recv: &Received) -> Self {
        Self {
            message_type: "3",
            status: "0",
            fail_info: None,
            fail_text: None,
            transaction_id: recv.transaction_id.clone(),
            recipient_nonce: Some(recv.sender_nonce.clone()),
            digest: DigestAlgorithm::Sha256,
            content: Vec::new(),
            extra: Vec::new(),
        }
    }

    /// SUCCESS with `certs` in a degenerate SignedData, encrypted to `to`.
    fn success(recv: &Received, certs: &[&[u8]], to: &Cert) -> Self {
        let degenerate = cms::degenerate(certs).unwrap();
        Self { content: cms::envelope(to, ContentCipher::Aes128Cbc, &degenerate).unwrap(), ..Self::to(recv) }
    }

    fn signed_by(self, key: &RequesterKey, cert: &Cert) -> Vec<u8> {
        let p = |s| PrintableStringRef::new(s).unwrap();
        let mut attrs = vec![
            cms::attribute(oid::SCEP_MESSAGE_TYPE, p(self.message_type)).unwrap(),
            cms::attribute(oid::SCEP_PKI_STATUS, p(self.status)).unwrap(),
            cms::attribute(oid::SCEP_TRANSACTION_ID, p(&self.transaction_id)).unwrap(),
            cms::attribute(oid::SCEP_SENDER_NONCE, OctetStringRef::new(&[0x5a; 16]).unwrap()).unwrap(),
        ];
        if let Some(n) = &self.recipient_nonce {
            attrs.push(cms::attribute(oid::SCEP_RECIPIENT_NONCE, OctetStringRef::new(n).unwrap()).unwrap());
        }
        if let Some(f) = self.fail_info {
            attrs.push(cms::attribute(oid::SCEP_FAIL_INFO, p(f)).unwrap());
        }
        if let Some(t) = self.fail_text {
            attrs.push(cms::attribute(oid::SCEP_FAIL_INFO_TEXT, Utf8StringRef::new(t).unwrap()).unwrap());
        }
        attrs.extend(self.extra);
        cms::sign(key, cert, self.digest, &self.content, attrs).unwrap()
    }
}

fn spec(cn: &str) -> CsrSpec {
    CsrSpec {
        subject: dn(cn),
        dns_names: vec![format!("{cn}.local")],
        ip_addresses: vec!["192.168.1.20".parse().unwrap()],
        challenge_password: Some(ChallengePassword::new(CHALLENGE).unwrap()),
    }
}

/// A PKCSReq from requester key `n` to `ca`.
fn enrollment(n: usize, ca: &CaCerts, algs: Algorithms) -> (Signer, Zeroizing<Vec<u8>>, Request) {
    let key = key(n);
    let csr = build_csr(&key, &spec("cam")).unwrap();
    let signer = Signer::self_signed(key, &dn("cam"), now()).unwrap();
    let request = pkcs_req(&signer, ca, &csr, algs).unwrap();
    (signer, csr, request)
}

fn issued(rep: Result<CertRep, ScepError>) -> Issued {
    match rep {
        Ok(CertRep::Issued(i)) => i,
        other => panic!("expected a certificate, got {other:?}"),
    }
}

#[test]
fn pkcs_req_round_trip_with_every_algorithm() {
    let ca = TestCa::new(key(0), "Test CA");
    let cas = ca.ca_certs();
    for digest in [DigestAlgorithm::Sha1, DigestAlgorithm::Sha256, DigestAlgorithm::Sha384, DigestAlgorithm::Sha512] {
        for cipher in [ContentCipher::Aes128Cbc, ContentCipher::Aes256Cbc, ContentCipher::Des3Cbc] {
            let algs = Algorithms { digest, cipher };
            let (signer, csr, request) = enrollment(1, &cas, algs);
            let recv = server_receive(&ca, &request.der);
            assert_eq!(recv.message_type, "19");
            assert_eq!(recv.digest, digest);
            let expected_id = TransactionId::for_public_key(signer.key().public_key_der());
            assert_eq!(recv.transaction_id, expected_id.as_str());
            assert_eq!(recv.transaction_id.len(), 64);
            assert_eq!(request.reply.poll.transaction_id, expected_id);
            assert_eq!(recv.sender_nonce.as_slice(), request.reply.sender_nonce());
            assert_eq!(recv.signer.der, signer.certificate_der());
            assert_eq!(recv.inner, csr.as_slice(), "the envelope holds the request");
            assert_eq!(crate::csr::challenge_in_csr(&recv.inner).as_deref(), Some(CHALLENGE));

            let cert = ca.issue(&recv.inner);
            let answer = Reply::success(&recv, &[&cert, &ca.cert.der], &recv.signer).signed_by(&ca.key, &ca.cert);
            let issued = issued(request.reply.open(&signer, &cas, Some("application/x-pki-message"), &answer));
            assert_eq!(issued.certificate, cert);
            assert_eq!(issued.chain, vec![ca.cert.der.clone()]);
            assert_eq!(issued.reply_digest, DigestAlgorithm::Sha256);
        }
    }
}

#[test]
fn sender_nonces_are_fresh() {
    let ca = TestCa::new(key(0), "Test CA").ca_certs();
    let (_, _, a) = enrollment(1, &ca, Algorithms::RECOMMENDED);
    let (_, _, b) = enrollment(1, &ca, Algorithms::RECOMMENDED);
    assert_ne!(a.reply.sender_nonce(), b.reply.sender_nonce());
    assert_eq!(a.reply.poll.transaction_id, b.reply.poll.transaction_id, "same key, same transaction");
}

#[test]
fn an_answer_signed_with_sha1_is_read() {
    // scepserver 2.1.0 signs CertRep with SHA-1.
    let ca = TestCa::new(key(0), "Test CA");
    let cas = ca.ca_certs();
    let (signer, _, request) = enrollment(1, &cas, Algorithms::RECOMMENDED);
    let recv = server_receive(&ca, &request.der);
    let cert = ca.issue(&recv.inner);
    let reply = Reply { digest: DigestAlgorithm::Sha1, ..Reply::success(&recv, &[&cert], &recv.signer) };
    let issued = issued(request.reply.open(&signer, &cas, None, &reply.signed_by(&ca.key, &ca.cert)));
    assert_eq!(issued.reply_digest, DigestAlgorithm::Sha1);
    assert!(issued.chain.is_empty());
}

#[test]
fn a_wrong_nonce_is_refused() {
    let ca = TestCa::new(key(0), "Test CA");
    let cas = ca.ca_certs();
    let (signer, _, request) = enrollment(1, &cas, Algorithms::RECOMMENDED);
    let recv = server_receive(&ca, &request.der);
    let cert = ca.issue(&recv.inner);
    let mut nonce = recv.sender_nonce.clone();
    nonce[0] ^= 1;
    let reply = Reply { recipient_nonce: Some(nonce), ..Reply::success(&recv, &[&cert], &recv.signer) };
    let err = request.reply.open(&signer, &cas, None, &reply.signed_by(&ca.key, &ca.cert)).unwrap_err();
    assert!(matches!(err, ScepError::WrongNonce), "{err:?}");
    let reply = Reply { recipient_nonce: None, ..Reply::success(&recv, &[&cert], &recv.signer) };
    let err = request.reply.open(&signer, &cas, None, &reply.signed_by(&ca.key, &ca.cert)).unwrap_err();
    assert!(matches!(err, ScepError::MissingAttribute("recipientNonce")), "{err:?}");
}

#[test]
fn an_answer_to_an_earlier_request_is_refused() {
    // Replay: the server's genuine answer to the first request, offered for the second.
    let ca = TestCa::new(key(0), "Test CA");
    let cas = ca.ca_certs();
    let (signer, _, first) = enrollment(1, &cas, Algorithms::RECOMMENDED);
    let recv = server_receive(&ca, &first.der);
    let cert = ca.issue(&recv.inner);
    let answer = Reply::success(&recv, &[&cert], &recv.signer).signed_by(&ca.key, &ca.cert);
    let second =
        pkcs_req(&signer, &cas, &build_csr(signer.key(), &spec("cam")).unwrap(), Algorithms::RECOMMENDED).unwrap();
    assert!(matches!(second.reply.open(&signer, &cas, None, &answer), Err(ScepError::WrongNonce)));
    assert!(first.reply.open(&signer, &cas, None, &answer).is_ok());
}

#[test]
fn a_wrong_transaction_is_refused() {
    let ca = TestCa::new(key(0), "Test CA");
    let cas = ca.ca_certs();
    let (signer, _, request) = enrollment(1, &cas, Algorithms::RECOMMENDED);
    let recv = server_receive(&ca, &request.der);
    let reply = Reply { transaction_id: "OTHER-TRANSACTION".into(), status: "3", ..Reply::to(&recv) };
    let err = request.reply.open(&signer, &cas, None, &reply.signed_by(&ca.key, &ca.cert)).unwrap_err();
    assert!(matches!(&err, ScepError::WrongTransaction { got, .. } if got == "OTHER-TRANSACTION"), "{err:?}");
    assert!(err.to_string().starts_with("the SCEP server's answer belongs to another transaction"));
}

#[test]
fn a_changed_signature_or_content_is_refused() {
    let ca = TestCa::new(key(0), "Test CA");
    let cas = ca.ca_certs();
    let (signer, _, request) = enrollment(1, &cas, Algorithms::RECOMMENDED);
    let recv = server_receive(&ca, &request.der);
    let cert = ca.issue(&recv.inner);
    let reply = Reply::success(&recv, &[&cert], &recv.signer);
    let envelope = reply.content.clone();
    let answer = reply.signed_by(&ca.key, &ca.cert);

    // The signature is the last element of the only SignerInfo: the message's last bytes.
    let mut bad = answer.clone();
    *bad.last_mut().unwrap() ^= 0x01;
    let err = request.reply.open(&signer, &cas, None, &bad).unwrap_err();
    assert!(matches!(err, ScepError::BadSignature), "{err:?}");

    // One byte of the encrypted content (the certificate inside), changed on the way.
    let at = answer.windows(envelope.len()).position(|w| w == envelope.as_slice()).unwrap();
    let mut bad = answer.clone();
    bad[at + envelope.len() - 20] ^= 0x80;
    let err = request.reply.open(&signer, &cas, None, &bad).unwrap_err();
    assert!(matches!(err, ScepError::DigestMismatch), "{err:?}");

    assert!(matches!(request.reply.open(&signer, &cas, None, &answer), Ok(CertRep::Issued(_))));
}

#[test]
fn an_answer_signed_by_another_ca_is_refused() {
    let ca = TestCa::new(key(0), "Test CA");
    let impostor = TestCa::new(key(2), "Test CA");
    let cas = ca.ca_certs();
    let (signer, _, request) = enrollment(1, &cas, Algorithms::RECOMMENDED);
    let recv = server_receive(&ca, &request.der);
    let cert = impostor.issue(&recv.inner);
    let answer = Reply::success(&recv, &[&cert], &recv.signer).signed_by(&impostor.key, &impostor.cert);
    let err = request.reply.open(&signer, &cas, None, &answer).unwrap_err();
    assert!(matches!(err, ScepError::UnknownSigner), "{err:?}");
}

#[test]
fn our_own_request_reflected_back_is_refused() {
    let ca = TestCa::new(key(0), "Test CA").ca_certs();
    let (signer, _, request) = enrollment(1, &ca, Algorithms::RECOMMENDED);
    let err = request.reply.open(&signer, &ca, None, &request.der).unwrap_err();
    assert!(matches!(err, ScepError::UnknownSigner), "{err:?}");
}

#[test]
fn a_request_type_from_the_server_is_not_a_cert_rep() {
    let ca = TestCa::new(key(0), "Test CA");
    let cas = ca.ca_certs();
    let (signer, _, request) = enrollment(1, &cas, Algorithms::RECOMMENDED);
    let recv = server_receive(&ca, &request.der);
    let reply = Reply { message_type: "19", ..Reply::to(&recv) };
    let err = request.reply.open(&signer, &cas, None, &reply.signed_by(&ca.key, &ca.cert)).unwrap_err();
    assert!(matches!(&err, ScepError::NotCertRep(t) if t == "19"), "{err:?}");
}

#[test]
fn a_smuggled_second_nonce_is_refused() {
    let ca = TestCa::new(key(0), "Test CA");
    let cas = ca.ca_certs();
    let (signer, _, request) = enrollment(1, &cas, Algorithms::RECOMMENDED);
    let recv = server_receive(&ca, &request.der);
    let other = cms::attribute(oid::SCEP_RECIPIENT_NONCE, OctetStringRef::new(&[0; 16]).unwrap()).unwrap();
    let reply = Reply { extra: vec![other], status: "3", ..Reply::to(&recv) };
    let err = request.reply.open(&signer, &cas, None, &reply.signed_by(&ca.key, &ca.cert)).unwrap_err();
    assert!(matches!(err, ScepError::DuplicateAttribute("recipientNonce")), "{err:?}");
}

#[test]
fn signed_attributes_are_verified_as_received_even_unsorted() {
    // DER sorts SET OF; a server that does not (and signs what it sent) must still verify.
    let ca = TestCa::new(key(0), "Test CA");
    let cas = ca.ca_certs();
    let (signer, _, request) = enrollment(1, &cas, Algorithms::RECOMMENDED);
    let recv = server_receive(&ca, &request.der);
    let mut answer = Reply { status: "3", ..Reply::to(&recv) }.signed_by(&ca.key, &ca.cert);
    let parts = cms::parse_signed(&answer).unwrap();
    let si = der::asn1::AnyRef::from_der(parts.signers_for_test()[0]).unwrap();
    // Locate the [0] signed attributes inside the SignerInfo and reverse their order in place.
    let (attrs_at, attrs_len) = find_signed_attrs(&answer, si.value());
    let contents = answer[attrs_at..attrs_at + attrs_len].to_vec();
    let mut tlvs = Vec::new();
    let mut reader = der::SliceReader::new(&contents).unwrap();
    while !der::Reader::is_finished(&reader) {
        tlvs.push(der::Reader::tlv_bytes(&mut reader).unwrap().to_vec());
    }
    tlvs.reverse();
    let reversed: Vec<u8> = tlvs.concat();
    assert_ne!(reversed, contents);
    answer[attrs_at..attrs_at + attrs_len].copy_from_slice(&reversed);
    let mut set = der::Header::new(der::Tag::Set, der::Length::try_from(attrs_len).unwrap()).unwrap().to_der().unwrap();
    set.extend_from_slice(&reversed);
    let sig = ca.key.sign(DigestAlgorithm::Sha256, &set).unwrap();
    let n = answer.len();
    answer[n - sig.len()..].copy_from_slice(&sig);
    assert!(matches!(request.reply.open(&signer, &cas, None, &answer), Ok(CertRep::Pending)));
}

/// Offset and length of the signed attributes' contents in `message`.
fn find_signed_attrs(message: &[u8], signer_info: &[u8]) -> (usize, usize) {
    let base = signer_info.as_ptr() as usize - message.as_ptr() as usize;
    let mut reader = der::SliceReader::new(signer_info).unwrap();
    loop {
        let start = base + usize::try_from(der::Reader::position(&reader)).unwrap();
        let tlv = der::Reader::tlv_bytes(&mut reader).unwrap();
        if tlv[0] == 0xa0 {
            let any = der::asn1::AnyRef::from_der(tlv).unwrap();
            return (start + tlv.len() - any.value().len(), any.value().len());
        }
    }
}

#[test]
fn unknown_attributes_are_ignored_whatever_their_shape() {
    let ca = TestCa::new(key(0), "Test CA");
    let cas = ca.ca_certs();
    let (signer, _, request) = enrollment(1, &cas, Algorithms::RECOMMENDED);
    let recv = server_receive(&ca, &request.der);
    let odd = der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.13.2.3");
    let values = [vec![0x05, 0x00], Utf8StringRef::new("two").unwrap().to_der().unwrap()];
    let reply = Reply { extra: vec![cms::attribute_values(odd, &values).unwrap()], status: "3", ..Reply::to(&recv) };
    assert_eq!(request.reply.open(&signer, &cas, None, &reply.signed_by(&ca.key, &ca.cert)).unwrap(), CertRep::Pending);
}

#[test]
fn failure_is_a_refusal_that_says_why() {
    let ca = TestCa::new(key(0), "Test CA");
    let cas = ca.ca_certs();
    let (signer, _, request) = enrollment(1, &cas, Algorithms::RECOMMENDED);
    let recv = server_receive(&ca, &request.der);
    let reply =
        Reply { status: "2", fail_info: Some("2"), fail_text: Some("challenge\u{7} expired"), ..Reply::to(&recv) };
    let err = request.reply.open(&signer, &cas, None, &reply.signed_by(&ca.key, &ca.cert)).unwrap_err();
    assert!(
        matches!(&err, ScepError::Refused { fail_info: Some(FailInfo::BadRequest), server_text: Some(t) } if t == "challenge\\x07 expired"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the SCEP server refused the request: the challenge password is wrong or expired, or the server's policy \
         does not allow this request (badRequest); the server says: \"challenge\\x07 expired\""
    );
    for (code, info, words) in [
        ("0", FailInfo::BadAlg, "does not support the algorithms"),
        ("1", FailInfo::BadMessageCheck, "could not verify the request's signature"),
        ("3", FailInfo::BadTime, "check the camera's clock"),
        ("4", FailInfo::BadCertId, "does not know the certificate"),
    ] {
        let reply = Reply { status: "2", fail_info: Some(code), ..Reply::to(&recv) };
        let err = request.reply.open(&signer, &cas, None, &reply.signed_by(&ca.key, &ca.cert)).unwrap_err();
        assert!(matches!(err, ScepError::Refused { fail_info: Some(i), server_text: None } if i == info), "{err:?}");
        assert!(err.to_string().contains(words) && err.to_string().contains(info.name()), "{err}");
    }
    let reply = Reply { status: "2", fail_info: Some("9"), ..Reply::to(&recv) };
    let err = request.reply.open(&signer, &cas, None, &reply.signed_by(&ca.key, &ca.cert)).unwrap_err();
    assert!(matches!(err, ScepError::Refused { fail_info: None, .. }), "{err:?}");
    let reply = Reply { status: "7", ..Reply::to(&recv) };
    let err = request.reply.open(&signer, &cas, None, &reply.signed_by(&ca.key, &ca.cert)).unwrap_err();
    assert!(matches!(err, ScepError::UnknownStatus(_)), "{err:?}");
}

#[test]
fn pending_then_cert_poll_then_success() {
    let ca = TestCa::new(key(0), "Test CA");
    let cas = ca.ca_certs();
    let (signer, csr, request) = enrollment(1, &cas, Algorithms::RECOMMENDED);
    let recv = server_receive(&ca, &request.der);
    let pending = Reply { status: "3", ..Reply::to(&recv) }.signed_by(&ca.key, &ca.cert);
    assert_eq!(request.reply.open(&signer, &cas, None, &pending).unwrap(), CertRep::Pending);

    // Later (perhaps after a restart: the poll state is plain data).
    let poll_state = request.reply.poll.clone();
    let poll = cert_poll(&signer, &cas, &poll_state, Algorithms::RECOMMENDED).unwrap();
    let precv = server_receive(&ca, &poll.der);
    assert_eq!(precv.message_type, "20");
    assert_eq!(precv.transaction_id, recv.transaction_id, "a poll keeps the transaction");
    assert_ne!(precv.sender_nonce, recv.sender_nonce, "a poll has its own nonce");
    assert_eq!(precv.signer.der, signer.certificate_der(), "signed by the same certificate");
    // IssuerAndSubject: the CA's name and the requested subject.
    #[derive(der::Sequence)]
    struct IssuerAndSubject<'a> {
        issuer: der::asn1::AnyRef<'a>,
        subject: der::asn1::AnyRef<'a>,
    }
    let ias = IssuerAndSubject::from_der(&precv.inner).unwrap();
    assert_eq!(ias.issuer.to_der().unwrap(), ca.cert.subject);
    let (csr_subject, _) = crate::csr::csr_subject_and_key(&csr).unwrap();
    assert_eq!(ias.subject.to_der().unwrap(), csr_subject);

    // The old answer does not fit the poll; the answer to the poll does.
    assert!(matches!(poll.reply.open(&signer, &cas, None, &pending), Err(ScepError::WrongNonce)));
    let cert = ca.issue(&csr);
    let answer = Reply::success(&precv, &[&cert], &precv.signer).signed_by(&ca.key, &ca.cert);
    assert_eq!(issued(poll.reply.open(&signer, &cas, None, &answer)).certificate, cert);
}

#[test]
fn renewal_is_signed_with_the_current_certificate() {
    let ca = TestCa::new(key(0), "Test CA");
    let cas = ca.ca_certs();
    let (signer, _, request) = enrollment(1, &cas, Algorithms::RECOMMENDED);
    let recv = server_receive(&ca, &request.der);
    let first = ca.issue(&recv.inner);

    let current = Signer::with_certificate(signer.into_key(), &first).unwrap();
    let new_key = key(3);
    let csr = build_csr(&new_key, &spec("cam")).unwrap();
    let renewal = renewal_req(&current, &cas, &csr, Algorithms::RECOMMENDED).unwrap();
    let rrecv = server_receive(&ca, &renewal.der);
    assert_eq!(rrecv.message_type, "17");
    assert_eq!(rrecv.signer.der, first, "signed with the certificate the CA issued");
    assert_eq!(rrecv.transaction_id, TransactionId::for_public_key(new_key.public_key_der()).as_str());
    assert_ne!(rrecv.transaction_id, recv.transaction_id);
    // The server encrypts to the certificate that signed the request: the current one.
    let second = ca.issue(&rrecv.inner);
    let answer = Reply::success(&rrecv, &[&second], &rrecv.signer).signed_by(&ca.key, &ca.cert);
    let issued = issued(renewal.reply.open(&current, &cas, None, &answer));
    assert_eq!(issued.certificate, second);
    assert_eq!(Cert::parse(&second).unwrap().spki, new_key.public_key_der());

    // A self-signed certificate cannot renew, and a certificate must go with its own key.
    let self_signed = Signer::self_signed(key(4), &dn("cam"), now()).unwrap();
    assert!(matches!(renewal_req(&self_signed, &cas, &csr, Algorithms::RECOMMENDED), Err(ScepError::Csr(_))));
    assert!(matches!(Signer::with_certificate(key(4), &first), Err(ScepError::CertificateKeyMismatch)));
}

#[test]
fn pkcs_req_needs_the_request_for_the_signers_key() {
    let ca = TestCa::new(key(0), "Test CA").ca_certs();
    let signer = Signer::self_signed(key(1), &dn("cam"), now()).unwrap();
    let csr = build_csr(&key(2), &spec("cam")).unwrap();
    assert!(matches!(pkcs_req(&signer, &ca, &csr, Algorithms::RECOMMENDED), Err(ScepError::Csr(_))));
}

#[test]
fn a_certificate_for_another_key_is_refused() {
    let ca = TestCa::new(key(0), "Test CA");
    let cas = ca.ca_certs();
    let (signer, _, request) = enrollment(1, &cas, Algorithms::RECOMMENDED);
    let recv = server_receive(&ca, &request.der);
    let wrong = ca.leaf(&key(2), "cam", vec![]);
    let answer = Reply::success(&recv, &[&wrong, &ca.cert.der], &recv.signer).signed_by(&ca.key, &ca.cert);
    let err = request.reply.open(&signer, &cas, None, &answer).unwrap_err();
    assert!(matches!(err, ScepError::WrongKey), "{err:?}");
}

#[test]
fn an_answer_encrypted_to_someone_else_is_refused() {
    let ca = TestCa::new(key(0), "Test CA");
    let cas = ca.ca_certs();
    let (signer, _, request) = enrollment(1, &cas, Algorithms::RECOMMENDED);
    let recv = server_receive(&ca, &request.der);
    let cert = ca.issue(&recv.inner);
    let other = Signer::self_signed(key(2), &dn("other"), now()).unwrap();
    let answer = Reply::success(&recv, &[&cert], &other.cert).signed_by(&ca.key, &ca.cert);
    let err = request.reply.open(&signer, &cas, None, &answer).unwrap_err();
    assert!(matches!(err, ScepError::NotForUs), "{err:?}");
}

#[test]
fn get_ca_cert_with_ra_certificates_picks_the_roles() {
    let ca = TestCa::new(key(0), "Issuing CA");
    use rcgen::KeyUsagePurpose::*;
    let signing_ra = ca.leaf(&key(1), "RA signing", vec![DigitalSignature]);
    let encryption_ra = ca.leaf(&key(2), "RA encryption", vec![KeyEncipherment]);
    let body = cms::degenerate(&[&signing_ra, &ca.cert.der, &encryption_ra]).unwrap();
    let cas = CaCerts::parse(Some(crate::CA_RA_CERT_CONTENT_TYPE), &body).unwrap();
    assert_eq!(cas.ca(), ca.cert.der.as_slice());
    assert_eq!(cas.recipient(), encryption_ra.as_slice());
    assert!(cas.has_ra());
    assert_eq!(cas.all().count(), 3);
    cas.check_trust(&[&ca.cert.der]).unwrap();

    // Requests go to the encryption RA; answers signed by the signing RA are accepted.
    let (signer, _, request) = enrollment(3, &cas, Algorithms::RECOMMENDED);
    let ra = TestCa { key: key(2), cert: Cert::parse(&encryption_ra).unwrap(), issuer: ca_issuer_dummy() };
    let recv = server_receive(&ra, &request.der);
    let cert = ca.issue(&recv.inner);
    let answer = Reply::success(&recv, &[&cert, &ca.cert.der], &recv.signer)
        .signed_by(&key(1), &Cert::parse(&signing_ra).unwrap());
    assert_eq!(issued(request.reply.open(&signer, &cas, None, &answer)).certificate, cert);

    // Only a signing RA: it is not meant for encryption, but is the one RSA RA there is.
    let body = cms::degenerate(&[&ca.cert.der, &signing_ra]).unwrap();
    let cas = CaCerts::parse(None, &body).unwrap();
    assert_eq!(cas.recipient(), signing_ra.as_slice());
}

fn ca_issuer_dummy() -> rcgen::Issuer<'static, rcgen::KeyPair> {
    rcgen::Issuer::new(rcgen::CertificateParams::default(), key(5).rcgen_key_pair().unwrap())
}

#[test]
fn get_ca_cert_chain_and_trust() {
    let root = TestCa::new(key(0), "Site Root");
    let issuing = TestCa::issued_by(key(1), "Site Issuing CA", Some(&root));
    let body = cms::degenerate(&[&root.cert.der, &issuing.cert.der]).unwrap();
    let cas = CaCerts::parse(Some(crate::CA_RA_CERT_CONTENT_TYPE), &body).unwrap();
    assert_eq!(cas.ca(), issuing.cert.der.as_slice(), "the lowest CA of the chain issues");
    assert_eq!(cas.recipient(), issuing.cert.der.as_slice());
    cas.check_trust(&[&root.cert.der]).unwrap();
    cas.check_trust(&[&issuing.cert.der]).unwrap();
    // Only the issuing CA sent, anchored at the root: trusted through its signature.
    let alone = CaCerts::parse(None, &issuing.cert.der).unwrap();
    alone.check_trust(&[&root.cert.der]).unwrap();
    let stranger = TestCa::new(key(2), "Site Root");
    assert!(matches!(alone.check_trust(&[&stranger.cert.der]), Err(ScepError::Untrusted)));

    // A CA of someone else's slipped into the answer would be accepted as a signer: refused.
    let body = cms::degenerate(&[&issuing.cert.der, &stranger.cert.der]).unwrap();
    let cas = CaCerts::parse(None, &body).unwrap();
    assert_eq!(cas.response_signers().count(), 2);
    assert!(matches!(cas.check_trust(&[&root.cert.der]), Err(ScepError::Untrusted)));

    // An RA not issued by the CA (a man in the middle's own) makes the set untrusted.
    let foreign_ra = stranger.leaf(&key(3), "RA", vec![rcgen::KeyUsagePurpose::KeyEncipherment]);
    let body = cms::degenerate(&[&issuing.cert.der, &foreign_ra]).unwrap();
    let cas = CaCerts::parse(None, &body).unwrap();
    assert!(matches!(cas.check_trust(&[&root.cert.der]), Err(ScepError::Untrusted)));
}

/// A man in the middle at renewal: the genuine CA certificate (which matches the pin) and an RA
/// that names the genuine CA as its issuer but is signed by the attacker's key. With the pinned CA
/// as the anchor the answer is untrusted, so nothing is encrypted to that RA; and a certificate
/// the impostor issues is refused even under the genuine CA's name.
#[test]
fn an_ra_naming_the_pinned_ca_but_signed_by_another_key_is_refused() {
    let genuine = TestCa::new(key(1), "Site Issuing CA");
    let impostor = TestCa::new(key(2), "Site Issuing CA");
    let foreign_ra = impostor.leaf(&key(3), "Site RA", vec![rcgen::KeyUsagePurpose::KeyEncipherment]);
    let body = cms::degenerate(&[&genuine.cert.der, &foreign_ra]).unwrap();
    let cas = CaCerts::parse(Some(crate::CA_RA_CERT_CONTENT_TYPE), &body).unwrap();
    assert_eq!(cas.ca(), genuine.cert.der.as_slice(), "the CA matches the pin");
    assert_eq!(cas.recipient(), foreign_ra.as_slice(), "the impostor's RA would be the recipient");
    assert!(matches!(cas.check_trust(&[&genuine.cert.der]), Err(ScepError::Untrusted)));

    let honest_ra = genuine.leaf(&key(3), "Site RA", vec![rcgen::KeyUsagePurpose::KeyEncipherment]);
    let body = cms::degenerate(&[&genuine.cert.der, &honest_ra]).unwrap();
    let cas = CaCerts::parse(None, &body).unwrap();
    cas.check_trust(&[&genuine.cert.der]).unwrap();
    let (_, csr, _) = enrollment(4, &cas, Algorithms::RECOMMENDED);
    cas.check_issued(&genuine.issue(&csr)).unwrap();
    assert!(matches!(cas.check_issued(&impostor.issue(&csr)), Err(ScepError::IssuedByAnother)));
}

#[test]
fn get_ca_cert_refuses_what_is_not_a_certificate() {
    let html = b"<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>";
    let err = CaCerts::parse(Some("text/html; charset=utf-8"), html).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the SCEP server answered GetCACert with content type \"text/html\" (85 bytes) instead of a certificate \
         (application/x-x509-ca-cert or application/x-x509-ca-ra-cert): check the SCEP URL"
    );
    let empty = cms::degenerate(&[]).unwrap();
    assert!(matches!(CaCerts::parse(None, &empty), Err(ScepError::NoCaCertificate)));
    assert!(matches!(CaCerts::parse(None, &[0x30, 0x03, 0x02, 0x01, 0x00]), Err(ScepError::BadCertificate { .. })));
    assert!(matches!(CaCerts::parse(None, &vec![0x30; crate::MAX_MESSAGE_SIZE + 1]), Err(ScepError::TooLarge { .. })));

    // An EC CA with no RA: nothing to encrypt a request to.
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ec_ca = params.self_signed(&ec).unwrap();
    let err = CaCerts::parse(None, ec_ca.der()).unwrap_err();
    assert!(matches!(err, ScepError::RecipientNotRsa("CA")), "{err:?}");
    assert!(err.to_string().contains("RSA"));
}

#[test]
fn ec_and_weak_keys_are_refused_clearly() {
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let err = RequesterKey::from_pkcs8_der(&ec.serialize_der()).unwrap_err();
    assert!(matches!(err, ScepError::NotRsa));
    assert_eq!(
        err.to_string(),
        "the key for SCEP must be RSA: the server encrypts its answer to the requester with RSA key transport, which \
         EC keys cannot do"
    );
    assert!(matches!(RequesterKey::from_pkcs8_der(b"not a key"), Err(ScepError::BadKey)));
    assert!(matches!(RequesterKey::generate(1024), Err(ScepError::RsaKeySize(1024))));
    use rsa::pkcs8::EncodePrivateKey;
    let small = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).unwrap();
    let der = small.to_pkcs8_der().unwrap();
    assert!(matches!(RequesterKey::from_pkcs8_der(der.as_bytes()), Err(ScepError::RsaKeySize(1024))));
}

#[test]
fn secrets_stay_out_of_debug_and_errors() {
    let k = key(1);
    let pkcs8_hex: String = k.pkcs8_der()[40..56].iter().map(|b| format!("{b:02x}")).collect();
    let debug = format!("{k:?}");
    assert_eq!(debug, "RequesterKey(RSA 2048 bits)");
    let signer = Signer::self_signed(k, &dn("cam"), now()).unwrap();
    let debug = format!("{signer:?}");
    assert!(!debug.contains(&pkcs8_hex) && !debug.contains("pkcs8"), "{debug}");
    let spec = spec("cam");
    let debug = format!("{spec:?}");
    assert!(!debug.contains(CHALLENGE), "{debug}");
    // The CSR holds the password (it travels encrypted); the request message must not show it.
    let ca = TestCa::new(key(0), "Test CA").ca_certs();
    let csr = build_csr(signer.key(), &spec).unwrap();
    let request = pkcs_req(&signer, &ca, &csr, Algorithms::RECOMMENDED).unwrap();
    assert!(!request.der.windows(CHALLENGE.len()).any(|w| w == CHALLENGE.as_bytes()), "the challenge is encrypted");
    assert!(csr.windows(CHALLENGE.len()).any(|w| w == CHALLENGE.as_bytes()));
}

#[test]
fn answers_that_are_not_scep_messages() {
    let ca = TestCa::new(key(0), "Test CA").ca_certs();
    let (signer, _, request) = enrollment(1, &ca, Algorithms::RECOMMENDED);
    let err = request.reply.open(&signer, &ca, Some("text/plain"), b"invalid challenge\n").unwrap_err();
    assert!(matches!(&err, ScepError::UnexpectedContentType { length: 18, .. }), "{err:?}");
    let err = request.reply.open(&signer, &ca, None, &vec![0x30; crate::MAX_MESSAGE_SIZE + 1]).unwrap_err();
    assert!(matches!(err, ScepError::TooLarge { .. }));
    let err = request.reply.open(&signer, &ca, None, &[0x30, 0x80, 0x00, 0x00]).unwrap_err();
    assert!(matches!(err, ScepError::Malformed { .. }), "{err:?}");
    let err = request.reply.open(&signer, &ca, None, b"").unwrap_err();
    assert!(matches!(err, ScepError::UnexpectedContentType { .. }), "{err:?}");
    let err =
        request.reply.open(&signer, &ca, Some("application/octet-stream"), &[0x01, 0x02, 0x03, 0x00]).unwrap_err();
    assert!(matches!(&err, ScepError::UnexpectedContentType { length: 4, .. }), "{err:?}");
    // The right content type with a body that is not DER: a malformed answer, not a wrong URL.
    let err = request.reply.open(&signer, &ca, Some("application/x-pki-message"), b"oops").unwrap_err();
    assert!(matches!(err, ScepError::Malformed { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the SCEP server's answer is not a well-formed SCEP message (application/x-pki-message)"
    );
}

#[test]
fn the_fuzz_entry_point_survives_damaged_answers() {
    // A real answer, then every truncation and a sweep of flipped bytes: no panic, ever.
    let ca = TestCa::new(key(0), "Test CA");
    let cas = ca.ca_certs();
    let (_, _, request) = enrollment(1, &cas, Algorithms::RECOMMENDED);
    let recv = server_receive(&ca, &request.der);
    let cert = ca.issue(&recv.inner);
    let answer = Reply::success(&recv, &[&cert, &ca.cert.der], &recv.signer).signed_by(&ca.key, &ca.cert);
    for len in (0..answer.len()).step_by(7) {
        crate::fuzzing::parse_untrusted(&answer[..len]);
    }
    for i in (0..answer.len()).step_by(3) {
        let mut bad = answer.clone();
        bad[i] ^= 0xff;
        crate::fuzzing::parse_untrusted(&bad);
    }
    crate::fuzzing::parse_untrusted(&cms::degenerate(&[&cert]).unwrap());
    crate::fuzzing::parse_untrusted(&request.der);
}

/// A second implementation reads what we send: OpenSSL verifies the PKCSReq's signature (and so
/// its messageDigest and attribute encoding), decrypts the envelope with the CA's key to the
/// very request, and sees the SCEP attributes.
#[test]
fn openssl_verifies_and_decrypts_our_request() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).unwrap();
    let pem = |label: &str, der: &[u8]| {
        use base64ct::{Base64, Encoding};
        let b64 = Base64::encode_string(der);
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
    };
    let openssl = |args: &str| {
        let out = std::process::Command::new("openssl")
            .args(args.split_whitespace())
            .current_dir(dir.path())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let ca = TestCa::new(key(0), "Test CA");
    write("ca.pem", pem("CERTIFICATE", &ca.cert.der).as_bytes());
    write("ca.key", pem("PRIVATE KEY", ca.key.pkcs8_der()).as_bytes());
    let cas = ca.ca_certs();
    for algs in [
        Algorithms::RECOMMENDED,
        Algorithms { digest: DigestAlgorithm::Sha1, cipher: ContentCipher::Des3Cbc },
        Algorithms { digest: DigestAlgorithm::Sha512, cipher: ContentCipher::Aes256Cbc },
    ] {
        let (_, csr, request) = enrollment(1, &cas, algs);
        write("req.der", &request.der);
        let (ok, out) = openssl("cms -verify -noverify -binary -inform DER -in req.der -out env.der");
        assert!(ok && out.contains("Verification successful"), "{algs}: {out}");
        let (ok, out) =
            openssl("cms -decrypt -binary -inform DER -in env.der -recip ca.pem -inkey ca.key -out csr.der");
        assert!(ok, "{algs}: {out}");
        assert_eq!(std::fs::read(dir.path().join("csr.der")).unwrap(), csr.as_slice(), "{algs}");
        let (ok, out) = openssl("cms -cmsout -print -inform DER -in req.der");
        assert!(ok, "{out}");
        assert!(out.contains("2.16.840.1.113733.1.9.2") && out.contains("PRINTABLESTRING:19"), "{out}");
        assert!(out.contains(&format!("PRINTABLESTRING:{}", request.reply.poll.transaction_id)), "{out}");

        // The same message with one signature bit changed: OpenSSL refuses it too.
        let mut bad = request.der.clone();
        *bad.last_mut().unwrap() ^= 1;
        write("bad.der", &bad);
        let (ok, _) = openssl("cms -verify -noverify -binary -inform DER -in bad.der -out x");
        assert!(!ok);
    }
}

/// What a web page says never reaches an error: the SCEP URL may point at any server on the
/// camera's network, and the error goes to the UI, the event log and syslog.
#[test]
fn an_unexpected_answer_is_described_never_quoted() {
    const MARKER: &str = "INTRANET-PAGE-7f3a91";
    let page = format!("<html><head><title>{MARKER}</title></head><body>{MARKER} payroll</body></html>\n");
    let ca = TestCa::new(key(0), "Test CA").ca_certs();
    let (signer, _, request) = enrollment(1, &ca, Algorithms::RECOMMENDED);
    for content_type in [Some("text/html; charset=utf-8"), Some("text/plain"), None] {
        let errors = [
            CaCerts::parse(content_type, page.as_bytes()).unwrap_err(),
            request.reply.open(&signer, &ca, content_type, page.as_bytes()).unwrap_err(),
        ];
        for err in errors {
            let text = err.to_string();
            assert!(!text.contains(MARKER) && !text.contains("payroll"), "{text}");
            assert!(!format!("{err:?}").contains(MARKER), "{err:?}");
            assert!(text.contains(&format!("({} bytes)", page.len())), "{text}");
        }
    }
    let err = CaCerts::parse(Some("text/html; charset=utf-8"), page.as_bytes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the SCEP server answered GetCACert with content type \"text/html\" ({} bytes) instead of a certificate \
             (application/x-x509-ca-cert or application/x-x509-ca-ra-cert): check the SCEP URL",
            page.len()
        )
    );
}

/// `failInfoText` is the protocol's message for people, so it is shown, but escaped: no line
/// break, terminal escape or bidirectional override of it reaches a log line or the UI raw.
#[test]
fn fail_info_text_is_escaped_and_bounded() {
    let ca = TestCa::new(key(0), "Test CA");
    let cas = ca.ca_certs();
    let (signer, _, request) = enrollment(1, &cas, Algorithms::RECOMMENDED);
    let recv = server_receive(&ca, &request.der);
    let forged = "denied\ncamera-web: the admin password was set\u{1b}[2K \u{202e}txt.exe\u{2066}x";
    let reply = Reply { status: "2", fail_info: Some("2"), fail_text: Some(forged), ..Reply::to(&recv) };
    let err = request.reply.open(&signer, &cas, None, &reply.signed_by(&ca.key, &ca.cert)).unwrap_err();
    let text = err.to_string();
    for raw in ['\n', '\u{1b}', '\u{202e}', '\u{2066}'] {
        assert!(!text.contains(raw), "{raw:?} raw in {text:?}");
    }
    assert!(
        text.ends_with(
            "the server says: \"denied\\ncamera-web: the admin password was set\\x1b[2K \\u{202e}txt.exe\\u{2066}x\""
        ),
        "{text}"
    );
    let long: &'static str = Box::leak("x".repeat(1000).into_boxed_str());
    let reply = Reply { status: "2", fail_info: Some("2"), fail_text: Some(long), ..Reply::to(&recv) };
    let err = request.reply.open(&signer, &cas, None, &reply.signed_by(&ca.key, &ca.cert)).unwrap_err();
    let ScepError::Refused { server_text: Some(t), .. } = err else { panic!("{err:?}") };
    assert_eq!(t, format!("{}...", "x".repeat(200)));
}
