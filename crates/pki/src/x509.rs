//! The camera's one certificate reader, shared by everything that reads certificates, requests
//! and their names (this crate, camera-upload, camera-scep).
//!
//! It reads with RustCrypto's `der`, the decoder the PKCS#8 and PKCS#12 readers use, so one DER
//! decoder ships. The certificate and request are walked here and kept as borrowed slices of the
//! input: what is signed or compared byte for byte (the `tbsCertificate`, the names, the serial,
//! the public key) stays exactly as written, and nothing is copied. The leaf structures come from
//! RustCrypto's crates (`spki`'s key info, `x509-cert`'s validity and extension values). Decoding
//! whole `x509-cert` certificates and requests into their owned structures instead, for the same
//! checks, made the camera's code 12.7 KB larger (aarch64-musl `.text`: 1,968,348 bytes against
//! 1,955,676). Signatures are checked with ring, the crypto TLS already uses.
//!
//! Subject alternative names and name constraints are read leniently in one respect: a DNS name
//! or e-mail address written in UTF-8 rather than IA5 is read as text (many issuers do it), where
//! `x509-cert`'s `GeneralName` would refuse the whole certificate.

use std::fmt;
use std::net::IpAddr;

use der::asn1::{BitStringRef, ObjectIdentifier, OctetStringRef};
use der::{Decode, Encode, Header, Reader, SliceReader, Tag};
use spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};

const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const P256: &str = "1.2.840.10045.3.1.7";
const P384: &str = "1.3.132.0.34";
const P521: &str = "1.3.132.0.35";
const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
const NAME_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.30");
const EXTENSION_REQUEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.14");
const SUBJECT_KEY_IDENTIFIER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const SERVER_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");
/// What a certificate is for: the extended key usages the camera checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// id-kp-serverAuth: the camera's HTTPS.
    TlsServer,
    /// id-kp-clientAuth: the camera as a client, e.g. EAP-TLS for 802.1X.
    TlsClient,
}

/// id-kp-clientAuth (RFC 5280 section 4.2.1.12): TLS clients, and EAP-TLS supplicants.
const CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
const ANY_EXTENDED_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37.0");

/// A certificate extension that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtensionError {
    /// RFC 5280 allows each extension once; which one counts would be a guess.
    #[error("the certificate holds its {name} extension more than once")]
    Duplicate {
        /// The extension's name, or its OID.
        name: String,
    },
    /// The extension's value does not parse.
    #[error("the certificate's {name} extension does not parse")]
    Malformed {
        /// The extension's name, or its OID.
        name: String,
        #[source]
        source: der::Error,
    },
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// ring has no verifier for this signature algorithm with this kind of issuer key.
    #[error("ring cannot check this signature algorithm with the issuer's kind of key")]
    UnsupportedAlgorithm,
    /// ring checked the signature against the issuer's key and refused it.
    #[error("ring refused the signature with the issuer's public key")]
    Refused,
}

/// A name from a subjectAltName or a name constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GeneralName<'a> {
    Dns(&'a str),
    /// 4 or 16 bytes in a subjectAltName; address then mask (8 or 32 bytes) in a name constraint.
    Ip(&'a [u8]),
    Email(&'a str),
    Uri(&'a str),
    /// Any other form: its context tag number.
    Other(u8),
}

impl GeneralName<'_> {
    /// The text the UI shows for a name other than a DNS name or an IP address.
    pub fn describe(&self) -> String {
        match self {
            GeneralName::Dns(d) => format!("DNSName({d})"),
            GeneralName::Ip(b) => format!("IPAddress({})", crate::text::hex_upper(b, Some(':'))),
            GeneralName::Email(e) => format!("RFC822Name({e})"),
            GeneralName::Uri(u) => format!("URI({u})"),
            GeneralName::Other(0) => "OtherName([...])".to_owned(),
            GeneralName::Other(3) => "X400Address(<unparsed>)".to_owned(),
            GeneralName::Other(4) => "DirectoryName(<unparsed>)".to_owned(),
            GeneralName::Other(5) => "EDIPartyName(<unparsed>)".to_owned(),
            GeneralName::Other(8) => "RegisteredID(<unparsed>)".to_owned(),
            GeneralName::Other(n) => format!("Invalid(tag={n})"),
        }
    }

    /// The address of an IP name of 4 or 16 bytes.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            GeneralName::Ip(b) => match b.len() {
                4 => <[u8; 4]>::try_from(*b).ok().map(IpAddr::from),
                16 => <[u8; 16]>::try_from(*b).ok().map(IpAddr::from),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A DER element: its header, its value, and what follows it.
fn split_tlv(input: &[u8]) -> der::Result<(Header, &[u8], &[u8])> {
    let mut reader = SliceReader::new(input)?;
    let header = Header::decode(&mut reader)?;
    let value = reader.read_slice(header.length)?;
    let rest = reader.read_slice(reader.remaining_len())?;
    Ok((header, value, rest))
}

/// The elements of a constructed value, each as its whole TLV.
fn elements(mut value: &[u8]) -> impl Iterator<Item = der::Result<(Header, &[u8], &[u8])>> {
    std::iter::from_fn(move || {
        if value.is_empty() {
            return None;
        }
        let mut reader = match SliceReader::new(value) {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        let element = reader.tlv_bytes().and_then(|tlv| {
            let (header, inner, _) = split_tlv(tlv)?;
            value = &value[tlv.len()..];
            Ok((header, inner, tlv))
        });
        if element.is_err() {
            value = &[];
        }
        Some(element)
    })
}

fn context_tag(header: &Header) -> Option<u8> {
    match header.tag {
        Tag::ContextSpecific { number, .. } => Some(number.value()),
        _ => None,
    }
}

/// Reads `GeneralNames` (a SEQUENCE OF GeneralName).
pub fn general_names(der: &[u8]) -> der::Result<Vec<GeneralName<'_>>> {
    let (header, value) = whole(der)?;
    header.tag.assert_eq(Tag::Sequence)?;
    elements(value).map(|e| e.and_then(|(h, inner, _)| general_name(&h, inner))).collect()
}

fn general_name<'a>(header: &Header, value: &'a [u8]) -> der::Result<GeneralName<'a>> {
    let text = || std::str::from_utf8(value).map_err(|_| header.tag.value_error());
    Ok(match context_tag(header).ok_or_else(|| header.tag.value_error())? {
        1 => GeneralName::Email(text()?),
        2 => GeneralName::Dns(text()?),
        6 => GeneralName::Uri(text()?),
        7 => GeneralName::Ip(value),
        n => GeneralName::Other(n),
    })
}

/// The permitted subtrees of a nameConstraints extension value (`None` when it has none).
pub fn permitted_subtrees(der: &[u8]) -> der::Result<Option<Vec<GeneralName<'_>>>> {
    let (header, value) = whole(der)?;
    header.tag.assert_eq(Tag::Sequence)?;
    for element in elements(value) {
        let (h, subtrees, _) = element?;
        if context_tag(&h) != Some(0) {
            continue;
        }
        let mut names = Vec::new();
        for subtree in elements(subtrees) {
            let (sh, subtree, _) = subtree?;
            sh.tag.assert_eq(Tag::Sequence)?;
            // GeneralSubtree: the base alone (minimum 0 and no maximum, as RFC 5280 requires).
            let (bh, base) = whole(subtree)?;
            names.push(general_name(&bh, base)?);
        }
        return Ok(Some(names));
    }
    Ok(None)
}

/// A known attribute type's short name, as OpenSSL and x509 tools print it.
fn attribute_abbreviation(oid: &ObjectIdentifier) -> Option<&'static str> {
    Some(match oid.to_string().as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "Email",
        "0.9.2342.19200300.100.1.1" => "uid",
        "2.5.4.4" => "surname",
        "2.5.4.5" => "serialNumber",
        "2.5.4.9" => "streetAddress",
        "2.5.4.12" => "title",
        "2.5.4.13" => "description",
        "2.5.4.15" => "businessCategory",
        "2.5.4.17" => "postalCode",
        "2.5.4.41" => "name",
        "2.5.4.42" => "givenName",
        "2.5.4.43" => "initials",
        "2.5.4.44" => "generationQualifier",
        "2.5.4.45" => "uniqueIdentifier",
        "2.5.4.46" => "dnQualifier",
        "1.3.6.1.4.1.311.60.2.1.1" => "msJurisdictionLocality",
        "1.3.6.1.4.1.311.60.2.1.2" => "msJurisdictionStateOrProvince",
        "1.3.6.1.4.1.311.60.2.1.3" => "msJurisdictionCountry",
        _ => return None,
    })
}

/// One attribute of a name: its type, the tag of its value and the value's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute<'a> {
    pub oid: ObjectIdentifier,
    pub tag: Tag,
    pub value: &'a [u8],
}

impl Attribute<'_> {
    /// The text of a value in one of the string types names use; `None` for other values.
    pub fn text(&self) -> Option<String> {
        match self.tag {
            Tag::Utf8String
            | Tag::PrintableString
            | Tag::Ia5String
            | Tag::NumericString
            | Tag::VisibleString
            | Tag::TeletexString
            | Tag::VideotexString => std::str::from_utf8(self.value).ok().map(str::to_owned),
            Tag::BmpString => {
                if self.value.len() % 2 != 0 {
                    return None;
                }
                let units = self.value.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                char::decode_utf16(units).collect::<Result<String, _>>().ok()
            }
            _ => None,
        }
    }
}

/// A distinguished name as written: its DER, and its RDNs in order, each a list of attributes.
/// Two names are equal when their bytes are.
#[derive(Debug, Clone)]
pub struct Name<'a> {
    der: &'a [u8],
    rdns: Vec<Vec<Attribute<'a>>>,
}

impl PartialEq for Name<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for Name<'_> {}

impl<'a> Name<'a> {
    /// Reads a Name from its whole DER element.
    pub fn parse(der: &'a [u8]) -> der::Result<Self> {
        let (header, value, _) = split_tlv(der)?;
        header.tag.assert_eq(Tag::Sequence)?;
        let mut rdns = Vec::new();
        for rdn in elements(value) {
            let (header, set, _) = rdn?;
            header.tag.assert_eq(Tag::Set)?;
            let mut attrs = Vec::new();
            for attr in elements(set) {
                let (header, attr, _) = attr?;
                header.tag.assert_eq(Tag::Sequence)?;
                let mut fields = elements(attr);
                let oid = ObjectIdentifier::from_der(fields.next().ok_or_else(missing)??.2)?;
                let (value_header, value, _) = fields.next().ok_or_else(missing)??;
                if fields.next().is_some() {
                    return Err(header.tag.value_error());
                }
                attrs.push(Attribute { oid, tag: value_header.tag, value });
            }
            rdns.push(attrs);
        }
        Ok(Self { der, rdns })
    }

    /// The whole DER element, as written.
    pub fn der(&self) -> &'a [u8] {
        self.der
    }

    /// The RDNs in order, each a list of attributes.
    pub fn rdns(&self) -> &[Vec<Attribute<'a>>] {
        &self.rdns
    }

    /// Every attribute, in order.
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute<'a>> {
        self.rdns.iter().flatten()
    }

    /// The common names, in order (`None` for one whose value is not text).
    pub fn common_names(&self) -> impl Iterator<Item = Option<String>> + '_ {
        self.attributes().filter(|a| a.oid == COMMON_NAME).map(Attribute::text)
    }
}

/// `CN=..., O=...`, in the order of the RDNs; attributes of one RDN joined by ` + `, values that
/// are not text in hex.
impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rdn) in self.rdns.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            for (j, attr) in rdn.iter().enumerate() {
                if j > 0 {
                    f.write_str(" + ")?;
                }
                match attribute_abbreviation(&attr.oid) {
                    Some(abbreviation) => f.write_str(abbreviation)?,
                    None => write!(f, "{}", attr.oid)?,
                }
                match attr.text() {
                    Some(text) => write!(f, "={text}")?,
                    None => write!(f, "={}", crate::text::hex_upper(attr.value, None))?,
                }
            }
        }
        Ok(())
    }
}

/// What a public key is, as the UI shows it: "ECDSA P-256", "RSA 2048", or the algorithm's OID.
pub fn key_type(spki: &SubjectPublicKeyInfoRef<'_>) -> String {
    let alg = spki.algorithm.oid.to_string();
    match alg.as_str() {
        RSA_ENCRYPTION => match rsa_modulus_bits(spki) {
            Some(bits) => format!("RSA {bits}"),
            None => alg,
        },
        EC_PUBLIC_KEY => match named_curve(spki).map(|c| c.to_string()).as_deref() {
            Some(P256) => "ECDSA P-256".to_owned(),
            Some(P384) => "ECDSA P-384".to_owned(),
            Some(P521) => "ECDSA P-521".to_owned(),
            Some(other) => format!("EC ({other})"),
            None => "EC".to_owned(),
        },
        _ => alg,
    }
}

/// The named curve of an EC public key.
pub fn named_curve(spki: &SubjectPublicKeyInfoRef<'_>) -> Option<ObjectIdentifier> {
    spki.algorithm.parameters.and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
}

/// The RSA public key (modulus, exponent) of a key info, unsigned big-endian without leading zeros.
pub fn rsa_public_key<'a>(spki: &SubjectPublicKeyInfoRef<'a>) -> Option<(&'a [u8], &'a [u8])> {
    let key = rsa::pkcs1::RsaPublicKey::from_der(spki.subject_public_key.as_bytes()?).ok()?;
    Some((key.modulus.as_bytes(), key.public_exponent.as_bytes()))
}

/// The size of an RSA key's modulus in bits, counted in whole bytes as key sizes are named.
pub fn rsa_modulus_bits(spki: &SubjectPublicKeyInfoRef<'_>) -> Option<usize> {
    rsa_public_key(spki).map(|(n, _)| n.len() * 8)
}

/// One extension as written.
#[derive(Debug, Clone)]
struct Extension<'a> {
    oid: ObjectIdentifier,
    value: &'a [u8],
}

/// Reads `Extensions` (a SEQUENCE OF Extension) from its content.
fn parse_extensions(content: &[u8]) -> der::Result<Vec<Extension<'_>>> {
    let mut out = Vec::new();
    for ext in elements(content) {
        let (header, ext, _) = ext?;
        header.tag.assert_eq(Tag::Sequence)?;
        let mut fields = elements(ext);
        let oid = ObjectIdentifier::from_der(fields.next().ok_or_else(missing)??.2)?;
        let (mut header, mut value, tlv) = fields.next().ok_or_else(missing)??;
        // The critical flag: read to refuse a malformed one; none of the checks depends on it.
        if header.tag == Tag::Boolean {
            bool::from_der(tlv)?;
            (header, value, _) = fields.next().ok_or_else(missing)??;
        }
        header.tag.assert_eq(Tag::OctetString)?;
        if fields.next().is_some() {
            return Err(Tag::Sequence.value_error());
        }
        out.push(Extension { oid, value });
    }
    Ok(out)
}

/// The extension with `oid`, refusing a second one.
fn find_extension<'e, 'a>(
    extensions: &'e [Extension<'a>],
    oid: ObjectIdentifier,
) -> Result<Option<&'e Extension<'a>>, ExtensionError> {
    let mut found = extensions.iter().filter(|e| e.oid == oid);
    let Some(first) = found.next() else { return Ok(None) };
    if found.next().is_some() {
        return Err(ExtensionError::Duplicate { name: extension_name(&oid) });
    }
    Ok(Some(first))
}

/// The extension `T`, decoded, refusing a second one.
fn extension<'a, T: Decode<'a> + der::oid::AssociatedOid>(
    extensions: &[Extension<'a>],
) -> Result<Option<T>, ExtensionError> {
    let Some(ext) = find_extension(extensions, T::OID)? else { return Ok(None) };
    T::from_der(ext.value)
        .map(Some)
        .map_err(|source| ExtensionError::Malformed { name: extension_name(&T::OID), source })
}

fn extension_name(oid: &ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "2.5.29.14" => "subjectKeyIdentifier".to_owned(),
        "2.5.29.15" => "keyUsage".to_owned(),
        "2.5.29.17" => "subjectAltName".to_owned(),
        "2.5.29.19" => "basicConstraints".to_owned(),
        "2.5.29.30" => "nameConstraints".to_owned(),
        "2.5.29.37" => "extendedKeyUsage".to_owned(),
        other => other.to_owned(),
    }
}

/// A field a structure must have is missing.
fn missing() -> der::Error {
    der::ErrorKind::Incomplete { expected_len: der::Length::ONE, actual_len: der::Length::ZERO }.into()
}

/// The one element `der` must be: its header and value.
fn whole(der: &[u8]) -> der::Result<(Header, &[u8])> {
    let (header, value, rest) = split_tlv(der)?;
    if !rest.is_empty() {
        let length = |n: usize| der::Length::try_from(n).unwrap_or(der::Length::MAX);
        let (decoded, remaining) = (length(der.len() - rest.len()), length(rest.len()));
        return Err(der::ErrorKind::TrailingData { decoded, remaining }.into());
    }
    Ok((header, value))
}

/// A certificate, read from DER and borrowing from it.
#[derive(Clone)]
pub struct Certificate<'a> {
    der: &'a [u8],
    tbs: &'a [u8],
    /// 0 for version 1, 2 for version 3.
    version: u8,
    serial: &'a [u8],
    issuer: Name<'a>,
    subject: Name<'a>,
    not_before: i64,
    not_after: i64,
    spki_der: &'a [u8],
    spki: SubjectPublicKeyInfoRef<'a>,
    extensions: Vec<Extension<'a>>,
    signature_algorithm: AlgorithmIdentifierRef<'a>,
    signature: BitStringRef<'a>,
}

impl fmt::Debug for Certificate<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate").field("subject", &self.subject.to_string()).finish_non_exhaustive()
    }
}

impl<'a> Certificate<'a> {
    /// Reads a DER certificate that is the whole of `der`.
    pub fn parse(der: &'a [u8]) -> der::Result<Self> {
        let (header, outer) = whole(der)?;
        header.tag.assert_eq(Tag::Sequence)?;
        let mut parts = elements(outer);
        let (tbs_header, tbs_value, tbs) = parts.next().ok_or_else(missing)??;
        tbs_header.tag.assert_eq(Tag::Sequence)?;
        let signature_algorithm_der = parts.next().ok_or_else(missing)??.2;
        let signature_algorithm = AlgorithmIdentifierRef::from_der(signature_algorithm_der)?;
        let signature = BitStringRef::from_der(parts.next().ok_or_else(missing)??.2)?;
        if parts.next().is_some() {
            return Err(Tag::Sequence.value_error());
        }

        let mut fields = elements(tbs_value).peekable();
        let mut version = 0;
        if let Some(Ok((h, explicit, _))) = fields.peek() {
            if context_tag(h) == Some(0) {
                version = u8::from_der(explicit)?;
                if version > 2 {
                    return Err(Tag::Integer.value_error());
                }
                fields.next();
            }
        }
        let mut next = || fields.next().unwrap_or_else(|| Err(missing()));
        let (serial_header, serial, _) = next()?;
        serial_header.tag.assert_eq(Tag::Integer)?;
        if serial.is_empty() {
            return Err(Tag::Integer.length_error());
        }
        // The signed copy of the algorithm must be the unsigned one (RFC 5280 section 4.1.1.2):
        // the verifier is chosen from the unsigned one.
        if next()?.2 != signature_algorithm_der {
            return Err(Tag::Sequence.value_error());
        }
        let issuer = Name::parse(next()?.2)?;
        let validity = x509_cert::time::Validity::from_der(next()?.2)?;
        let subject = Name::parse(next()?.2)?;
        let spki_der = next()?.2;
        let spki = SubjectPublicKeyInfoRef::from_der(spki_der)?;
        let mut extensions = Vec::new();
        // issuerUniqueID [1] and subjectUniqueID [2] (v2 and later), then extensions [3] (v3
        // only): each at most once, in that order.
        let mut last_tag = 0;
        for field in fields {
            let (h, value, _) = field?;
            let tag = context_tag(&h).ok_or_else(|| h.tag.value_error())?;
            let allowed = match tag {
                1 | 2 => version >= 1,
                3 => version == 2,
                _ => false,
            };
            if !allowed || tag <= last_tag {
                return Err(h.tag.value_error());
            }
            last_tag = tag;
            match tag {
                1 | 2 => {}
                3 => {
                    let (h, content) = whole(value)?;
                    h.tag.assert_eq(Tag::Sequence)?;
                    extensions = parse_extensions(content)?;
                }
                _ => return Err(h.tag.value_error()),
            }
        }
        Ok(Self {
            der,
            tbs,
            version,
            serial,
            issuer,
            subject,
            not_before: unix(validity.not_before),
            not_after: unix(validity.not_after),
            spki_der,
            spki,
            extensions,
            signature_algorithm,
            signature,
        })
    }

    /// Reads the DER certificate at the start of `input`; returns it and the bytes after it.
    pub fn parse_first(input: &'a [u8]) -> der::Result<(Self, &'a [u8])> {
        let mut reader = SliceReader::new(input)?;
        let tlv = reader.tlv_bytes()?;
        Ok((Self::parse(tlv)?, &input[tlv.len()..]))
    }

    /// The whole certificate, DER.
    pub fn der(&self) -> &'a [u8] {
        self.der
    }

    /// The signed part, as signed.
    pub fn tbs_der(&self) -> &'a [u8] {
        self.tbs
    }

    /// The serial number's content octets, as written.
    pub fn serial(&self) -> &'a [u8] {
        self.serial
    }

    pub fn issuer(&self) -> &Name<'a> {
        &self.issuer
    }

    pub fn subject(&self) -> &Name<'a> {
        &self.subject
    }

    /// The issuer Name, whole DER element as written.
    pub fn issuer_der(&self) -> &'a [u8] {
        self.issuer.der
    }

    /// The subject Name, whole DER element as written.
    pub fn subject_der(&self) -> &'a [u8] {
        self.subject.der
    }

    /// The SubjectPublicKeyInfo, whole DER element as written.
    pub fn spki_der(&self) -> &'a [u8] {
        self.spki_der
    }

    pub fn subject_string(&self) -> String {
        self.subject.to_string()
    }

    pub fn issuer_string(&self) -> String {
        self.issuer.to_string()
    }

    pub fn public_key(&self) -> &SubjectPublicKeyInfoRef<'a> {
        &self.spki
    }

    /// The subjectPublicKey BIT STRING's bytes (an RSAPublicKey DER or an EC point).
    pub fn public_key_bytes(&self) -> &'a [u8] {
        self.spki.subject_public_key.raw_bytes()
    }

    /// The outer signatureAlgorithm.
    pub fn signature_algorithm(&self) -> &AlgorithmIdentifierRef<'a> {
        &self.signature_algorithm
    }

    /// The signature's bytes (`None` for a BIT STRING that is not whole bytes).
    pub fn signature(&self) -> Option<&'a [u8]> {
        self.signature.as_bytes()
    }

    /// A version 1 certificate (no extensions; OpenSSL treats a self-signed one as a CA).
    pub fn is_v1(&self) -> bool {
        self.version == 0
    }

    /// notBefore, seconds since 1970.
    pub fn not_before_unix(&self) -> i64 {
        self.not_before
    }

    /// notAfter, seconds since 1970.
    pub fn not_after_unix(&self) -> i64 {
        self.not_after
    }

    pub fn basic_constraints(&self) -> Result<Option<BasicConstraints>, ExtensionError> {
        extension::<BasicConstraints>(&self.extensions)
    }

    /// Whether basicConstraints says CA:TRUE.
    pub fn is_ca(&self) -> Result<bool, ExtensionError> {
        Ok(self.basic_constraints()?.is_some_and(|bc| bc.ca))
    }

    pub fn key_usage(&self) -> Result<Option<KeyUsage>, ExtensionError> {
        extension::<KeyUsage>(&self.extensions)
    }

    /// Whether the extendedKeyUsage allows `purpose` (it or anyExtendedKeyUsage listed);
    /// `None` when the certificate has no such extension (any use).
    pub fn allows_usage(&self, purpose: KeyPurpose) -> Result<Option<bool>, ExtensionError> {
        let Some(eku) = extension::<ExtendedKeyUsage>(&self.extensions)? else { return Ok(None) };
        let wanted = match purpose {
            KeyPurpose::TlsServer => SERVER_AUTH,
            KeyPurpose::TlsClient => CLIENT_AUTH,
        };
        Ok(Some(eku.0.iter().any(|oid| *oid == wanted || *oid == ANY_EXTENDED_KEY_USAGE)))
    }

    pub fn subject_key_identifier(&self) -> Result<Option<Vec<u8>>, ExtensionError> {
        let Some(ext) = find_extension(&self.extensions, SUBJECT_KEY_IDENTIFIER)? else { return Ok(None) };
        OctetStringRef::from_der(ext.value)
            .map(|id| Some(id.as_bytes().to_vec()))
            .map_err(|source| ExtensionError::Malformed { name: extension_name(&SUBJECT_KEY_IDENTIFIER), source })
    }

    /// The subjectAltName names; `None` when the certificate has no such extension.
    pub fn subject_alt_names(&self) -> Result<Option<Vec<GeneralName<'a>>>, ExtensionError> {
        let Some(ext) = find_extension(&self.extensions, SUBJECT_ALT_NAME)? else { return Ok(None) };
        general_names(ext.value)
            .map(Some)
            .map_err(|source| ExtensionError::Malformed { name: extension_name(&SUBJECT_ALT_NAME), source })
    }

    /// The permitted subtrees of the nameConstraints extension: `None` without the extension,
    /// an empty list when it permits nothing by name.
    pub fn permitted_subtrees(&self) -> Result<Option<Vec<GeneralName<'a>>>, ExtensionError> {
        let Some(ext) = find_extension(&self.extensions, NAME_CONSTRAINTS)? else { return Ok(None) };
        permitted_subtrees(ext.value)
            .map(|names| Some(names.unwrap_or_default()))
            .map_err(|source| ExtensionError::Malformed { name: extension_name(&NAME_CONSTRAINTS), source })
    }

    /// Whether the key of `issuer` made this certificate's signature.
    pub fn verify_signed_by(&self, issuer: &Certificate<'_>) -> Result<(), SignatureError> {
        let alg = verification_algorithm(&self.signature_algorithm, issuer.public_key())?;
        let signature = self.signature().ok_or(SignatureError::Refused)?;
        ring::signature::UnparsedPublicKey::new(alg, issuer.public_key_bytes())
            .verify(self.tbs, signature)
            .map_err(|_| SignatureError::Refused)
    }
}

fn unix(t: x509_cert::time::Time) -> i64 {
    i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// The ring verifier for a signature algorithm and the issuer's key: RSA PKCS#1 v1.5 (SHA-1 for
/// older roots, SHA-2), RSA-PSS with SHA-2, ECDSA on P-256 and P-384 with SHA-256 or SHA-384, Ed25519.
fn verification_algorithm(
    signature: &AlgorithmIdentifierRef<'_>,
    issuer_key: &SubjectPublicKeyInfoRef<'_>,
) -> Result<&'static dyn ring::signature::VerificationAlgorithm, SignatureError> {
    use ring::signature as s;
    let ecdsa = |sha384: bool| -> Result<&'static dyn s::VerificationAlgorithm, SignatureError> {
        Ok(match (named_curve(issuer_key).map(|c| c.to_string()).as_deref(), sha384) {
            (Some(P256), false) => &s::ECDSA_P256_SHA256_ASN1,
            (Some(P256), true) => &s::ECDSA_P256_SHA384_ASN1,
            (Some(P384), false) => &s::ECDSA_P384_SHA256_ASN1,
            (Some(P384), true) => &s::ECDSA_P384_SHA384_ASN1,
            _ => return Err(SignatureError::UnsupportedAlgorithm),
        })
    };
    Ok(match signature.oid.to_string().as_str() {
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => &s::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
        "1.2.840.113549.1.1.11" => &s::RSA_PKCS1_2048_8192_SHA256,
        "1.2.840.113549.1.1.12" => &s::RSA_PKCS1_2048_8192_SHA384,
        "1.2.840.113549.1.1.13" => &s::RSA_PKCS1_2048_8192_SHA512,
        "1.2.840.113549.1.1.10" => {
            let params = signature.parameters.ok_or(SignatureError::UnsupportedAlgorithm)?;
            let params = params.to_der().map_err(|_| SignatureError::UnsupportedAlgorithm)?;
            let pss = rsa::pkcs1::RsaPssParams::from_der(&params).map_err(|_| SignatureError::UnsupportedAlgorithm)?;
            match pss.hash.oid.to_string().as_str() {
                "2.16.840.1.101.3.4.2.1" => &s::RSA_PSS_2048_8192_SHA256,
                "2.16.840.1.101.3.4.2.2" => &s::RSA_PSS_2048_8192_SHA384,
                "2.16.840.1.101.3.4.2.3" => &s::RSA_PSS_2048_8192_SHA512,
                _ => return Err(SignatureError::UnsupportedAlgorithm),
            }
        }
        "1.2.840.10045.4.3.2" => ecdsa(false)?,
        "1.2.840.10045.4.3.3" => ecdsa(true)?,
        "1.3.101.112" => &s::ED25519,
        _ => return Err(SignatureError::UnsupportedAlgorithm),
    })
}

/// A PKCS#10 certificate request, read from DER and borrowing from it.
#[derive(Clone)]
pub struct Request<'a> {
    subject: Name<'a>,
    spki_der: &'a [u8],
    spki: SubjectPublicKeyInfoRef<'a>,
    /// Each attribute's type and the content of its SET of values.
    attributes: Vec<(ObjectIdentifier, &'a [u8])>,
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request").field("subject", &self.subject.to_string()).finish_non_exhaustive()
    }
}

impl<'a> Request<'a> {
    /// Reads a DER request that is the whole of `der`.
    pub fn parse(der: &'a [u8]) -> der::Result<Self> {
        let (header, outer) = whole(der)?;
        header.tag.assert_eq(Tag::Sequence)?;
        let mut parts = elements(outer);
        let (info_header, info, _) = parts.next().ok_or_else(missing)??;
        info_header.tag.assert_eq(Tag::Sequence)?;
        AlgorithmIdentifierRef::from_der(parts.next().ok_or_else(missing)??.2)?;
        BitStringRef::from_der(parts.next().ok_or_else(missing)??.2)?;
        if parts.next().is_some() {
            return Err(Tag::Sequence.value_error());
        }

        let mut fields = elements(info);
        let mut next = || fields.next().unwrap_or_else(|| Err(missing()));
        if u8::from_der(next()?.2)? != 0 {
            return Err(Tag::Integer.value_error());
        }
        let subject = Name::parse(next()?.2)?;
        let spki_der = next()?.2;
        let spki = SubjectPublicKeyInfoRef::from_der(spki_der)?;
        let (attrs_header, attrs, _) = next()?;
        if context_tag(&attrs_header) != Some(0) {
            return Err(attrs_header.tag.value_error());
        }
        let mut attributes = Vec::new();
        for attr in elements(attrs) {
            let (h, attr, _) = attr?;
            h.tag.assert_eq(Tag::Sequence)?;
            let mut parts = elements(attr);
            let oid = ObjectIdentifier::from_der(parts.next().ok_or_else(missing)??.2)?;
            let (set_header, values, _) = parts.next().ok_or_else(missing)??;
            set_header.tag.assert_eq(Tag::Set)?;
            attributes.push((oid, values));
        }
        if fields.next().is_some() {
            return Err(Tag::Sequence.value_error());
        }
        Ok(Self { subject, spki_der, spki, attributes })
    }

    pub fn subject(&self) -> &Name<'a> {
        &self.subject
    }

    /// The subject Name, whole DER element as written.
    pub fn subject_der(&self) -> &'a [u8] {
        self.subject.der
    }

    /// The SubjectPublicKeyInfo, whole DER element as written.
    pub fn spki_der(&self) -> &'a [u8] {
        self.spki_der
    }

    pub fn public_key(&self) -> &SubjectPublicKeyInfoRef<'a> {
        &self.spki
    }

    /// The subjectAltName names of every extensionRequest attribute (one that does not parse
    /// adds none).
    pub fn subject_alt_names(&self) -> Vec<GeneralName<'a>> {
        let mut names = Vec::new();
        for (_, values) in self.attributes.iter().filter(|(oid, _)| *oid == EXTENSION_REQUEST) {
            for (_, extensions, _) in elements(values).map_while(Result::ok) {
                let Ok(extensions) = parse_extensions(extensions) else { continue };
                for ext in extensions.iter().filter(|e| e.oid == SUBJECT_ALT_NAME) {
                    names.extend(general_names(ext.value).into_iter().flatten());
                }
            }
        }
        names
    }

    /// The first value of the attribute `oid`, when it is text.
    pub fn attribute_text(&self, oid: ObjectIdentifier) -> Option<String> {
        let (_, values) = self.attributes.iter().find(|(o, _)| *o == oid)?;
        let (header, value, _) = elements(values).next()?.ok()?;
        Attribute { oid, tag: header.tag, value }.text()
    }
}
