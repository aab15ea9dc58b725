//! The CMS layer of SCEP (RFC 8894 section 3): SignedData around EnvelopedData.
//!
//! Small borrowed `der` structures serve both ways. Decoding the server's bytes with them, the
//! signature is checked over the signed attributes exactly as received, and `SET OF` contents
//! are walked in the order they came rather than re-sorted (the `SetOfVec` decoder sorts with an
//! insertion sort, quadratic on hostile input). Encoding with them, certificates and names go in
//! as the bytes they are: the `cms` crate's types would decode every certificate and name into
//! `x509-cert` structures first, which on aarch64-musl cost about 60 KB of code more than these.

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef};
use der::{
    Decode, DecodeValue, Encode, EncodeValue, FixedTag, Header, Length, Reader, Sequence, SliceReader, Tag, Tagged,
    Writer,
};
use rand_core::{OsRng, RngCore};
use rsa::pkcs8::DecodePublicKey;
use zeroize::Zeroizing;

use crate::caps::{ContentCipher, DigestAlgorithm};
use crate::cert::{self, Cert};
use crate::key::RequesterKey;
use crate::{oid, ScepError};

/// Most elements accepted in any one SET OF (certificates, signers, recipients, attributes).
const MAX_SET_ELEMENTS: usize = 32;

// ---------------------------------------------------------------------------------------------
// Encoding

/// A signed attribute, as DER.
#[derive(Debug, Clone)]
pub(crate) struct Attr(pub Vec<u8>);

/// A signed attribute with one value.
pub(crate) fn attribute(oid: ObjectIdentifier, value: impl Encode) -> Result<Attr, ScepError> {
    attribute_values(oid, &[value.to_der().map_err(ScepError::Encode)?])
}

/// An attribute with the given values (DER each).
pub(crate) fn attribute_values(oid: ObjectIdentifier, values: &[Vec<u8>]) -> Result<Attr, ScepError> {
    let values = set_contents(values.to_vec());
    Ok(Attr(AttributeRef { oid, values: RawSet(&values) }.to_der().map_err(ScepError::Encode)?))
}

/// The contents of a DER SET OF: the elements' encodings in ascending order (X.690 11.6; whole
/// TLVs never prefix one another, so byte order is the padded order the rule asks for).
fn set_contents(mut elements: Vec<Vec<u8>>) -> Vec<u8> {
    elements.sort();
    elements.concat()
}

fn any(der: &[u8]) -> Result<AnyRef<'_>, ScepError> {
    AnyRef::try_from(der).map_err(ScepError::Encode)
}

fn to_der(value: &impl Encode) -> Result<Vec<u8>, ScepError> {
    value.to_der().map_err(ScepError::Encode)
}

fn content_info(content_type: ObjectIdentifier, content: &[u8]) -> Result<Vec<u8>, ScepError> {
    to_der(&ContentInfoRef { content_type, content: any(content)? })
}

/// SignedData (as a ContentInfo) over `content` (the eContent octets, content type id-data),
/// signed by `key` with `cert` as the signer and its only certificate. The signed attributes are
/// contentType and messageDigest plus `extra`.
pub(crate) fn sign(
    key: &RequesterKey,
    cert: &Cert,
    digest: DigestAlgorithm,
    content: &[u8],
    extra: Vec<Attr>,
) -> Result<Vec<u8>, ScepError> {
    let message_digest = cert::digest(digest, content);
    let mut attrs = vec![
        attribute(oid::CONTENT_TYPE, oid::DATA)?.0,
        attribute(oid::MESSAGE_DIGEST, OctetStringRef::new(&message_digest).map_err(ScepError::Encode)?)?.0,
    ];
    attrs.extend(extra.into_iter().map(|a| a.0));
    let signed_attrs = set_contents(attrs);
    // The signature covers the attributes' DER with the SET OF tag (RFC 5652 section 5.4).
    let signature = key.sign(digest, &set_der(&signed_attrs)?)?;
    let digest_alg = AlgorithmRef { oid: cert::digest_oid(digest), parameters: None };
    let sid = cert.issuer_and_serial()?;
    let signer = to_der(&SignerInfoRef {
        version: 1,
        sid: any(&sid)?,
        digest_alg,
        signed_attrs: Some(RawSet(&signed_attrs)),
        signature_algorithm: AlgorithmRef { oid: oid::RSA_ENCRYPTION, parameters: Some(AnyRef::NULL) },
        signature: OctetStringRef::new(&signature).map_err(ScepError::Encode)?,
        unsigned_attrs: None,
    })?;
    let digest_algs = to_der(&digest_alg)?;
    let signed = to_der(&SignedDataRef {
        version: 1,
        digest_algorithms: RawSet(&digest_algs),
        encap: EncapRef {
            econtent_type: oid::DATA,
            econtent: Some(OctetStringRef::new(content).map_err(ScepError::Encode)?),
        },
        certificates: Some(RawSet(&cert.der)),
        crls: None,
        signer_infos: RawSet(&signer),
    })?;
    content_info(oid::SIGNED_DATA, &signed)
}

fn set_der(contents: &[u8]) -> Result<Vec<u8>, ScepError> {
    let len = Length::try_from(contents.len()).map_err(ScepError::Encode)?;
    let mut out = to_der(&Header::new(Tag::Set, len).map_err(ScepError::Encode)?)?;
    out.extend_from_slice(contents);
    Ok(out)
}

/// EnvelopedData (as a ContentInfo) of `plaintext` for `recipient`: a fresh content key
/// encrypts the content with `cipher` in CBC mode, and is itself encrypted to the recipient's
/// RSA key with PKCS#1 v1.5 (RFC 8894 section 3.1 needs key transport).
pub(crate) fn envelope(recipient: &Cert, cipher: ContentCipher, plaintext: &[u8]) -> Result<Vec<u8>, ScepError> {
    let public = rsa::RsaPublicKey::from_public_key_der(&recipient.spki)
        .map_err(|_| ScepError::RecipientNotRsa("encryption"))?;
    let (alg_oid, key_len, iv_len) = match cipher {
        ContentCipher::Aes128Cbc => (oid::AES128_CBC, 16, 16),
        ContentCipher::Aes256Cbc => (oid::AES256_CBC, 32, 16),
        ContentCipher::Des3Cbc => (oid::DES_EDE3_CBC, 24, 8),
    };
    let mut key = Zeroizing::new(vec![0u8; key_len]);
    OsRng.try_fill_bytes(&mut key).map_err(|_| ScepError::Random)?;
    let mut iv = vec![0u8; iv_len];
    OsRng.try_fill_bytes(&mut iv).map_err(|_| ScepError::Random)?;
    let ciphertext = cbc_encrypt(cipher, &key, &iv, plaintext)?;
    let encrypted_key = public.encrypt(&mut OsRng, rsa::Pkcs1v15Encrypt, &key).map_err(|_| ScepError::Random)?;
    let rid = recipient.issuer_and_serial()?;
    let ktri = to_der(&KeyTransRef {
        version: 0,
        rid: any(&rid)?,
        key_enc_alg: AlgorithmRef { oid: oid::RSA_ENCRYPTION, parameters: Some(AnyRef::NULL) },
        enc_key: OctetStringRef::new(&encrypted_key).map_err(ScepError::Encode)?,
    })?;
    let iv_param = to_der(&OctetStringRef::new(&iv).map_err(ScepError::Encode)?)?;
    let implicit_0 = Tag::ContextSpecific { constructed: false, number: der::TagNumber::N0 };
    let enveloped = to_der(&EnvelopedDataRef {
        version: 0,
        originator_info: None,
        recipient_infos: RawSet(&ktri),
        encrypted_content_info: EncryptedContentInfoRef {
            content_type: oid::DATA,
            algorithm: AlgorithmRef { oid: alg_oid, parameters: Some(any(&iv_param)?) },
            encrypted_content: Some(AnyRef::new(implicit_0, &ciphertext).map_err(ScepError::Encode)?),
        },
        unprotected_attrs: None,
    })?;
    content_info(oid::ENVELOPED_DATA, &enveloped)
}

/// A certs-only ("degenerate") SignedData holding `certs` (RFC 8894 section 3.4), as servers
/// send in GetCACert and inside a successful CertRep (tests play the server).
#[cfg(test)]
pub(crate) fn degenerate(certs: &[&[u8]]) -> Result<Vec<u8>, ScepError> {
    let certs = set_contents(certs.iter().map(|c| c.to_vec()).collect());
    let signed = to_der(&SignedDataRef {
        version: 1,
        digest_algorithms: RawSet(&[]),
        encap: EncapRef { econtent_type: oid::DATA, econtent: None },
        certificates: Some(RawSet(&certs)),
        crls: None,
        signer_infos: RawSet(&[]),
    })?;
    content_info(oid::SIGNED_DATA, &signed)
}

fn cbc_encrypt(cipher: ContentCipher, key: &[u8], iv: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, ScepError> {
    let block = if cipher == ContentCipher::Des3Cbc { 8 } else { 16 };
    // PKCS#7 padding (RFC 5652 section 6.3): always 1..=block bytes.
    let pad = block - plaintext.len() % block;
    let mut buf = Vec::with_capacity(plaintext.len() + pad);
    buf.extend_from_slice(plaintext);
    buf.resize(plaintext.len() + pad, pad as u8);
    let bad = |_| ScepError::Encode(der::ErrorKind::Failed.into());
    match cipher {
        ContentCipher::Aes128Cbc => {
            encrypt_blocks(cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv).map_err(bad)?, &mut buf)
        }
        ContentCipher::Aes256Cbc => {
            encrypt_blocks(cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv).map_err(bad)?, &mut buf)
        }
        ContentCipher::Des3Cbc => {
            encrypt_blocks(cbc::Encryptor::<des::TdesEde3>::new_from_slices(key, iv).map_err(bad)?, &mut buf)
        }
    }
    Ok(buf)
}

fn encrypt_blocks<C: BlockEncryptMut>(mut enc: C, buf: &mut [u8]) {
    let size = C::block_size();
    for chunk in buf.chunks_exact_mut(size) {
        enc.encrypt_block_mut(aes::cipher::generic_array::GenericArray::from_mut_slice(chunk));
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// The contents of a SET (or of an IMPLICIT-tagged SET), borrowed as received.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawSet<'a>(pub &'a [u8]);

impl<'a> DecodeValue<'a> for RawSet<'a> {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        Ok(Self(reader.read_slice(header.length)?))
    }
}

impl EncodeValue for RawSet<'_> {
    fn value_len(&self) -> der::Result<Length> {
        Length::try_from(self.0.len())
    }
    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(self.0)
    }
}

impl FixedTag for RawSet<'_> {
    const TAG: Tag = Tag::Set;
}

/// The contents of a SEQUENCE, borrowed (for IMPLICIT-tagged structures we skip).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawSeq<'a>(pub &'a [u8]);

impl<'a> DecodeValue<'a> for RawSeq<'a> {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        Ok(Self(reader.read_slice(header.length)?))
    }
}

impl EncodeValue for RawSeq<'_> {
    fn value_len(&self) -> der::Result<Length> {
        Length::try_from(self.0.len())
    }
    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(self.0)
    }
}

impl FixedTag for RawSeq<'_> {
    const TAG: Tag = Tag::Sequence;
}

/// AlgorithmIdentifier (RFC 5280), borrowed.
#[derive(Clone, Copy, Sequence)]
struct AlgorithmRef<'a> {
    oid: ObjectIdentifier,
    parameters: Option<AnyRef<'a>>,
}

#[derive(Sequence)]
struct ContentInfoRef<'a> {
    content_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    content: AnyRef<'a>,
}

#[derive(Sequence)]
struct EncapRef<'a> {
    econtent_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    econtent: Option<OctetStringRef<'a>>,
}

#[derive(Sequence)]
struct SignedDataRef<'a> {
    version: u8,
    digest_algorithms: RawSet<'a>,
    encap: EncapRef<'a>,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", constructed = "true", optional = "true")]
    certificates: Option<RawSet<'a>>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true", optional = "true")]
    crls: Option<RawSet<'a>>,
    signer_infos: RawSet<'a>,
}

#[derive(Sequence)]
struct SignerInfoRef<'a> {
    version: u8,
    sid: AnyRef<'a>,
    digest_alg: AlgorithmRef<'a>,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", constructed = "true", optional = "true")]
    signed_attrs: Option<RawSet<'a>>,
    signature_algorithm: AlgorithmRef<'a>,
    signature: OctetStringRef<'a>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true", optional = "true")]
    unsigned_attrs: Option<RawSet<'a>>,
}

#[derive(Sequence)]
struct AttributeRef<'a> {
    oid: ObjectIdentifier,
    values: RawSet<'a>,
}

#[derive(Sequence)]
struct EnvelopedDataRef<'a> {
    version: u8,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", constructed = "true", optional = "true")]
    originator_info: Option<RawSeq<'a>>,
    recipient_infos: RawSet<'a>,
    encrypted_content_info: EncryptedContentInfoRef<'a>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true", optional = "true")]
    unprotected_attrs: Option<RawSet<'a>>,
}

#[derive(Sequence)]
struct EncryptedContentInfoRef<'a> {
    content_type: ObjectIdentifier,
    algorithm: AlgorithmRef<'a>,
    /// `[0] IMPLICIT OCTET STRING`, which BER also allows in constructed form (segments), as Go's
    /// pkcs7 (scepserver) writes it: read by [`encrypted_content`].
    encrypted_content: Option<AnyRef<'a>>,
}

/// The ciphertext of `[0] IMPLICIT OCTET STRING`, primitive or constructed (one level of
/// primitive OCTET STRING segments, concatenated).
fn encrypted_content(field: Option<AnyRef<'_>>) -> Result<Vec<u8>, ScepError> {
    const WHAT: &str = "CMS EnvelopedData (encrypted content)";
    let field = field.ok_or_else(|| ScepError::malformed(WHAT))?;
    match field.tag() {
        Tag::ContextSpecific { constructed: false, number } if number == der::TagNumber::N0 => {
            Ok(field.value().to_vec())
        }
        Tag::ContextSpecific { constructed: true, number } if number == der::TagNumber::N0 => {
            let mut out = Vec::new();
            let mut reader = SliceReader::new(field.value()).map_err(ScepError::der(WHAT))?;
            while !reader.is_finished() {
                out.extend_from_slice(reader.decode::<OctetStringRef<'_>>().map_err(ScepError::der(WHAT))?.as_bytes());
            }
            Ok(out)
        }
        _ => Err(ScepError::malformed(WHAT)),
    }
}

#[derive(Sequence)]
struct KeyTransRef<'a> {
    version: u8,
    rid: AnyRef<'a>,
    key_enc_alg: AlgorithmRef<'a>,
    enc_key: OctetStringRef<'a>,
}

/// The TLVs inside a SET's contents, in order, at most [`MAX_SET_ELEMENTS`].
fn elements<'a>(contents: &'a [u8], what: &'static str) -> Result<Vec<&'a [u8]>, ScepError> {
    let mut reader = SliceReader::new(contents).map_err(ScepError::der(what))?;
    let mut out = Vec::new();
    while !reader.is_finished() {
        if out.len() == MAX_SET_ELEMENTS {
            return Err(ScepError::malformed(what));
        }
        out.push(reader.tlv_bytes().map_err(ScepError::der(what))?);
    }
    Ok(out)
}

/// The content of a ContentInfo of the given type (the TLV inside `[0] EXPLICIT`).
fn open_content_info<'a>(
    der: &'a [u8],
    expected: ObjectIdentifier,
    what: &'static str,
) -> Result<AnyRef<'a>, ScepError> {
    let ci = ContentInfoRef::from_der(der).map_err(ScepError::der(what))?;
    if ci.content_type != expected {
        return Err(ScepError::malformed(what));
    }
    Ok(ci.content)
}

/// A SignedData as received, not yet verified.
pub(crate) struct SignedParts<'a> {
    pub econtent_type: ObjectIdentifier,
    pub econtent: Option<&'a [u8]>,
    pub certificates: Vec<&'a [u8]>,
    signers: Vec<&'a [u8]>,
}

#[cfg(test)]
impl<'a> SignedParts<'a> {
    pub fn signers_for_test(&self) -> &[&'a [u8]] {
        &self.signers
    }
}

/// Parses a ContentInfo holding SignedData.
pub(crate) fn parse_signed(der: &[u8]) -> Result<SignedParts<'_>, ScepError> {
    const WHAT: &str = "CMS SignedData";
    let content = open_content_info(der, oid::SIGNED_DATA, WHAT)?;
    let sd: SignedDataRef<'_> = content.decode_as().map_err(ScepError::der(WHAT))?;
    let certificates = match sd.certificates {
        Some(set) => elements(set.0, "certificate set")?,
        None => Vec::new(),
    };
    Ok(SignedParts {
        econtent_type: sd.encap.econtent_type,
        econtent: sd.encap.econtent.map(|o| o.as_bytes()),
        certificates,
        signers: elements(sd.signer_infos.0, "signer set")?,
    })
}

/// One attribute value as received.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AttrValue<'a> {
    pub oid: ObjectIdentifier,
    pub value: AnyRef<'a>,
}

/// The outcome of verifying a SignedData: its signed attributes and who signed.
pub(crate) struct Verified<'a> {
    pub attrs: Vec<AttrValue<'a>>,
    pub digest: DigestAlgorithm,
}

/// Verifies the SignedData's signature by one of `candidates` (matched by IssuerAndSerialNumber
/// or SubjectKeyIdentifier), the messageDigest over the eContent and the contentType, and
/// returns the signed attributes. Only then is anything in them to be believed.
pub(crate) fn verify_signed<'a>(parts: &SignedParts<'a>, candidates: &[&Cert]) -> Result<Verified<'a>, ScepError> {
    const WHAT: &str = "CMS SignerInfo";
    let ids: Vec<(Vec<u8>, Option<&[u8]>)> =
        candidates.iter().map(|c| Ok((c.issuer_and_serial()?, c.ski.as_deref()))).collect::<Result<_, ScepError>>()?;
    for signer_der in &parts.signers {
        let si = SignerInfoRef::from_der(signer_der).map_err(ScepError::der(WHAT))?;
        let sid = si.sid.to_der().map_err(ScepError::der(WHAT))?;
        let Some(index) = ids.iter().position(|(ias, ski)| {
            sid == *ias
                || (si.sid.tag() == Tag::ContextSpecific { constructed: false, number: der::TagNumber::N0 }
                    && Some(si.sid.value()) == *ski)
        }) else {
            continue;
        };
        let signer = candidates[index];
        let digest = cert::digest_from_oid(&si.digest_alg.oid)
            .ok_or_else(|| ScepError::UnsupportedAlgorithm(format!("the digest {}", si.digest_alg.oid)))?;
        let Some(signed) = si.signed_attrs else {
            // SCEP messages always carry signed attributes (RFC 8894 section 3.2.1).
            return Err(ScepError::MissingAttribute("signed attributes"));
        };
        let attrs = parse_attributes(signed.0)?;
        let one = |wanted: ObjectIdentifier, name: &'static str| -> Result<AnyRef<'a>, ScepError> {
            attrs.iter().find(|a| a.oid == wanted).map(|a| a.value).ok_or(ScepError::MissingAttribute(name))
        };
        let content_type = one(oid::CONTENT_TYPE, "contentType")?
            .decode_as::<ObjectIdentifier>()
            .map_err(ScepError::der("contentType attribute"))?;
        if content_type != parts.econtent_type {
            return Err(ScepError::malformed("SignedData (the contentType attribute does not match the content)"));
        }
        let message_digest = one(oid::MESSAGE_DIGEST, "messageDigest")?
            .decode_as::<OctetStringRef<'_>>()
            .map_err(ScepError::der("messageDigest attribute"))?;
        let computed = cert::digest(digest, parts.econtent.unwrap_or_default());
        if message_digest.as_bytes() != computed.as_slice() {
            return Err(ScepError::DigestMismatch);
        }
        let alg = signature_verification_alg(&si.signature_algorithm.oid, digest, signer)?;
        // The signature covers the attributes with the SET OF tag in place of [0].
        let mut signed_der = Header::new(Tag::Set, Length::try_from(signed.0.len()).map_err(ScepError::der(WHAT))?)
            .map_err(ScepError::der(WHAT))?
            .to_der()
            .map_err(ScepError::der(WHAT))?;
        signed_der.extend_from_slice(signed.0);
        if !cert::verify(alg, &signer.public_key, &signed_der, si.signature.as_bytes()) {
            return Err(ScepError::BadSignature);
        }
        return Ok(Verified { attrs, digest });
    }
    Err(ScepError::UnknownSigner)
}

fn signature_verification_alg(
    sig_oid: &ObjectIdentifier,
    digest: DigestAlgorithm,
    signer: &Cert,
) -> Result<&'static dyn ring::signature::VerificationAlgorithm, ScepError> {
    let unsupported = || ScepError::UnsupportedAlgorithm(format!("the signature algorithm {sig_oid} with {digest}"));
    // rsaEncryption names the key only (the digest is digestAlgorithm's); the combined OIDs
    // must agree with digestAlgorithm.
    let consistent = match *sig_oid {
        oid::RSA_ENCRYPTION => true,
        oid::SHA1_WITH_RSA => digest == DigestAlgorithm::Sha1,
        oid::SHA256_WITH_RSA | oid::ECDSA_SHA256 => digest == DigestAlgorithm::Sha256,
        oid::SHA384_WITH_RSA | oid::ECDSA_SHA384 => digest == DigestAlgorithm::Sha384,
        oid::SHA512_WITH_RSA => digest == DigestAlgorithm::Sha512,
        _ => false,
    };
    let is_ecdsa = matches!(*sig_oid, oid::ECDSA_SHA256 | oid::ECDSA_SHA384);
    if !consistent || is_ecdsa == signer.is_rsa() {
        return Err(unsupported());
    }
    if let cert::KeyKind::Rsa { bits } = signer.key {
        if bits < 2048 {
            return Err(ScepError::UnsupportedAlgorithm(format!(
                "an RSA signing key of {bits} bits (at least 2048 are needed)"
            )));
        }
    }
    cert::signature_alg(signer.key, digest).ok_or_else(unsupported)
}

/// The attributes of a signed-attribute SET, each with exactly one value; an attribute that
/// appears twice is refused (an attacker must not be able to smuggle a second nonce in).
fn parse_attributes(contents: &[u8]) -> Result<Vec<AttrValue<'_>>, ScepError> {
    const WHAT: &str = "signed attribute";
    let mut out: Vec<AttrValue<'_>> = Vec::new();
    for tlv in elements(contents, WHAT)? {
        let attr = AttributeRef::from_der(tlv).map_err(ScepError::der(WHAT))?;
        let name = attribute_name(&attr.oid);
        let values = elements(attr.values.0, WHAT)?;
        if name == "unknown" {
            // Not ours to read: any number of values, any number of times.
            continue;
        }
        let [value] = values.as_slice() else {
            return Err(ScepError::malformed("signed attribute (a SCEP attribute must have exactly one value)"));
        };
        if out.iter().any(|a| a.oid == attr.oid) {
            return Err(ScepError::DuplicateAttribute(name));
        }
        out.push(AttrValue { oid: attr.oid, value: AnyRef::from_der(value).map_err(ScepError::der(WHAT))? });
    }
    Ok(out)
}

fn attribute_name(o: &ObjectIdentifier) -> &'static str {
    match *o {
        oid::CONTENT_TYPE => "contentType",
        oid::MESSAGE_DIGEST => "messageDigest",
        oid::SIGNING_TIME => "signingTime",
        oid::SCEP_MESSAGE_TYPE => "messageType",
        oid::SCEP_PKI_STATUS => "pkiStatus",
        oid::SCEP_FAIL_INFO => "failInfo",
        oid::SCEP_SENDER_NONCE => "senderNonce",
        oid::SCEP_RECIPIENT_NONCE => "recipientNonce",
        oid::SCEP_TRANSACTION_ID => "transactionID",
        oid::SCEP_FAIL_INFO_TEXT => "failInfoText",
        _ => "unknown",
    }
}

/// Opens an EnvelopedData (as a ContentInfo) addressed to `ours` with `key`. Only after the
/// SignedData around it verified: RSA PKCS#1 v1.5 decryption must not become an oracle for
/// whoever can send bytes.
pub(crate) fn open_envelope(der: &[u8], key: &RequesterKey, ours: &Cert) -> Result<Vec<u8>, ScepError> {
    const WHAT: &str = "CMS EnvelopedData";
    let content = open_content_info(der, oid::ENVELOPED_DATA, WHAT)?;
    let env: EnvelopedDataRef<'_> = content.decode_as().map_err(ScepError::der(WHAT))?;
    let our_ias = ours.issuer_and_serial()?;
    let mut encrypted_key = None;
    for ri in elements(env.recipient_infos.0, WHAT)? {
        // Only KeyTransRecipientInfo is a SEQUENCE; the other choices are context-tagged.
        if ri.first() != Some(&0x30) {
            continue;
        }
        let ktri = KeyTransRef::from_der(ri).map_err(ScepError::der(WHAT))?;
        let rid = ktri.rid.to_der().map_err(ScepError::der(WHAT))?;
        let by_ski = ktri.rid.tag() == (Tag::ContextSpecific { constructed: false, number: der::TagNumber::N0 })
            && ours.ski.as_deref() == Some(ktri.rid.value());
        if rid == our_ias || by_ski {
            if ktri.key_enc_alg.oid != oid::RSA_ENCRYPTION {
                return Err(ScepError::UnsupportedAlgorithm(format!("the key transport {}", ktri.key_enc_alg.oid)));
            }
            encrypted_key = Some(ktri.enc_key.as_bytes());
            break;
        }
    }
    let encrypted_key = encrypted_key.ok_or(ScepError::NotForUs)?;
    let eci = env.encrypted_content_info;
    let ciphertext = encrypted_content(eci.encrypted_content)?;
    let (key_len, block) = match eci.algorithm.oid {
        oid::AES128_CBC => (16, 16),
        oid::AES192_CBC => (24, 16),
        oid::AES256_CBC => (32, 16),
        oid::DES_EDE3_CBC => (24, 8),
        // Single DES: micromdm's scepserver encrypts its answers with it. The answer holds only
        // the issued certificate, which is public; its integrity comes from the signature
        // checked before this point.
        oid::DES_CBC => (8, 8),
        other => return Err(ScepError::UnsupportedAlgorithm(format!("the content encryption {other}"))),
    };
    let iv = eci
        .algorithm
        .parameters
        .and_then(|p| p.decode_as::<OctetStringRef<'_>>().ok())
        .map(|o| o.as_bytes())
        .filter(|iv| iv.len() == block)
        .ok_or_else(|| ScepError::malformed("CMS EnvelopedData (content encryption IV)"))?;
    if ciphertext.is_empty() || ciphertext.len() % block != 0 {
        return Err(ScepError::DecryptFailed);
    }
    let content_key = key.decrypt_key(encrypted_key)?;
    if content_key.len() != key_len {
        return Err(ScepError::DecryptFailed);
    }
    cbc_decrypt(&eci.algorithm.oid, &content_key, iv, &ciphertext)
}

/// CBC decryption and PKCS#7 unpadding (RFC 5652 section 6.3) for the content algorithms
/// [`open_envelope`] accepts.
fn cbc_decrypt(alg: &ObjectIdentifier, key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, ScepError> {
    let mut buf = ciphertext.to_vec();
    let len = match *alg {
        oid::AES128_CBC => cbc_unpad::<aes::Aes128>(key, iv, &mut buf),
        oid::AES192_CBC => cbc_unpad::<aes::Aes192>(key, iv, &mut buf),
        oid::AES256_CBC => cbc_unpad::<aes::Aes256>(key, iv, &mut buf),
        oid::DES_EDE3_CBC => cbc_unpad::<des::TdesEde3>(key, iv, &mut buf),
        oid::DES_CBC => cbc_unpad::<des::Des>(key, iv, &mut buf),
        _ => return Err(ScepError::UnsupportedAlgorithm(format!("the content encryption {alg}"))),
    };
    buf.truncate(len.ok_or(ScepError::DecryptFailed)?);
    Ok(buf)
}

/// Decrypts `buf` in place with the `cbc` crate's PKCS#7 unpadding (the one the upload reader
/// uses too); the plaintext's length, or `None` for a wrong key, IV or padding.
fn cbc_unpad<C>(key: &[u8], iv: &[u8], buf: &mut [u8]) -> Option<usize>
where
    C: BlockDecryptMut + aes::cipher::BlockCipher + aes::cipher::KeyInit,
{
    let decryptor = cbc::Decryptor::<C>::new_from_slices(key, iv).ok()?;
    decryptor.decrypt_padded_mut::<aes::cipher::block_padding::Pkcs7>(buf).ok().map(<[u8]>::len)
}

/// The certificates of a certs-only SignedData (as a ContentInfo), as received.
pub(crate) fn degenerate_certs(der: &[u8]) -> Result<Vec<&[u8]>, ScepError> {
    let parts = parse_signed(der)?;
    Ok(parts.certificates.into_iter().filter(|c| c.first() == Some(&0x30)).collect())
}

/// Reads a string attribute (PrintableString, UTF8String or IA5String) as text.
pub(crate) fn attr_string<'a>(value: &AnyRef<'a>, what: &'static str) -> Result<&'a str, ScepError> {
    match value.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String => {
            std::str::from_utf8(value.value()).map_err(|_| ScepError::malformed(what))
        }
        _ => Err(ScepError::malformed(what)),
    }
}

/// Reads an OCTET STRING attribute.
pub(crate) fn attr_octets<'a>(value: &AnyRef<'a>, what: &'static str) -> Result<&'a [u8], ScepError> {
    if value.tag() != Tag::OctetString {
        return Err(ScepError::malformed(what));
    }
    Ok(value.value())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our CBC output equals OpenSSL's (same key, IV, PKCS#7 padding), and decrypts back;
    /// single DES (scepserver's answers) decrypts what OpenSSL's legacy provider made.
    #[test]
    fn cbc_matches_openssl_and_round_trips() {
        let hex = camera_pki::text::hex_lower;
        let openssl = |name: &str, key: &[u8], iv: &[u8], plain: &[u8], legacy: bool| -> Vec<u8> {
            let dir = tempfile::tempdir().unwrap();
            let input = dir.path().join("in");
            std::fs::write(&input, plain).unwrap();
            let mut cmd = std::process::Command::new("openssl");
            cmd.args(["enc", &format!("-{name}"), "-K", &hex(key), "-iv", &hex(iv), "-in"]).arg(&input);
            if legacy {
                cmd.args(["-provider", "legacy", "-provider", "default"]);
            }
            let out = cmd.output().unwrap();
            assert!(out.status.success(), "openssl enc -{name}: {}", String::from_utf8_lossy(&out.stderr));
            out.stdout
        };
        for (cipher, alg, name, key_len, block) in [
            (ContentCipher::Aes128Cbc, oid::AES128_CBC, "aes-128-cbc", 16, 16),
            (ContentCipher::Aes256Cbc, oid::AES256_CBC, "aes-256-cbc", 32, 16),
            (ContentCipher::Des3Cbc, oid::DES_EDE3_CBC, "des-ede3-cbc", 24, 8),
        ] {
            let key: Vec<u8> = (0..key_len as u8).map(|i| i.wrapping_mul(37)).collect();
            let iv: Vec<u8> = (0..block as u8).map(|i| i ^ 0xa5).collect();
            for len in [0usize, 1, block - 1, block, block + 1, 100] {
                let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let ct = cbc_encrypt(cipher, &key, &iv, &plain).unwrap();
                assert_eq!(ct, openssl(name, &key, &iv, &plain, false), "{name} len {len}");
                assert_eq!(cbc_decrypt(&alg, &key, &iv, &ct).unwrap(), plain);
                let mut bad = ct.clone();
                let n = bad.len();
                bad[n - 1] ^= 0x55; // the padding no longer checks out
                assert!(matches!(cbc_decrypt(&alg, &key, &iv, &bad), Err(ScepError::DecryptFailed)));
                assert!(matches!(cbc_decrypt(&alg, &key, &iv, &ct[..n - 1]), Err(ScepError::DecryptFailed)));
            }
        }
        let key = [0x13u8, 0x34, 0x57, 0x79, 0x9b, 0xbc, 0xdf, 0xf1];
        let iv = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let plain = b"the issued certificate, in a degenerate SignedData".to_vec();
        let ct = openssl("des-cbc", &key, &iv, &plain, true);
        assert_eq!(cbc_decrypt(&oid::DES_CBC, &key, &iv, &ct).unwrap(), plain);
    }

    #[test]
    fn sets_with_too_many_elements_are_refused() {
        let many: Vec<u8> = std::iter::repeat_n([0x05u8, 0x00], MAX_SET_ELEMENTS + 1).flatten().collect();
        assert!(elements(&many, "x").is_err());
        let fine: Vec<u8> = std::iter::repeat_n([0x05u8, 0x00], MAX_SET_ELEMENTS).flatten().collect();
        assert_eq!(elements(&fine, "x").unwrap().len(), MAX_SET_ELEMENTS);
    }

    #[test]
    fn duplicate_attributes_are_refused() {
        let a = attribute(oid::SCEP_SENDER_NONCE, OctetStringRef::new(&[1; 16]).unwrap()).unwrap();
        let b = attribute(oid::SCEP_SENDER_NONCE, OctetStringRef::new(&[2; 16]).unwrap()).unwrap();
        let mut contents = a.0.clone();
        contents.extend(b.0);
        assert!(matches!(parse_attributes(&contents), Err(ScepError::DuplicateAttribute("senderNonce"))));
    }
}
