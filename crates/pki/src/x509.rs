//! The camera's one certificate reader, shared by everything that reads certificates, requests
//! and their names (this crate, camera-upload, camera-scep).
//!
//! Structures are RustCrypto's `x509-cert` over `der`, the generation the PKCS#8 and PKCS#12
//! readers use too, so one DER decoder ships. Next to the decoded structure, [`Certificate`] keeps
//! the exact bytes of the parts that are signed or compared byte for byte (the signed
//! `tbsCertificate`, the issuer and subject names, the serial, the public key): a decoded name is
//! stored in sorted form, and re-encoding it is not guaranteed to give back what the issuer
//! signed. Signatures are checked with ring, the crypto TLS already uses.
//!
//! Subject alternative names and name constraints are read here too, leniently in one respect: a
//! DNS name or e-mail address written in UTF-8 rather than IA5 is read as text (many issuers do
//! it), where `x509-cert`'s `GeneralName` would refuse the whole certificate.

use std::fmt;
use std::net::IpAddr;

use der::asn1::ObjectIdentifier;
use der::{Decode, Encode, Header, Reader, SliceReader, Tag, Tagged};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
pub use x509_cert::name::Name;

pub use x509_cert::ext::pkix::SubjectKeyIdentifier;

const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const P256: &str = "1.2.840.10045.3.1.7";
const P384: &str = "1.3.132.0.34";
const P521: &str = "1.3.132.0.35";
const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
const NAME_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.30");
const EXTENSION_REQUEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.14");
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const SERVER_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");
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
    let (header, value, rest) = split_tlv(der)?;
    header.tag.assert_eq(Tag::Sequence)?;
    if !rest.is_empty() {
        return Err(der::ErrorKind::TrailingData { decoded: header.length, remaining: der::Length::ZERO }.into());
    }
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
    let (header, value, _) = split_tlv(der)?;
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
            let (bh, base, _) = split_tlv(subtree)?;
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

/// The text of an attribute whose value is one of the string types a name uses; `None` for
/// other values.
pub fn attribute_text(attr: &AttributeTypeAndValue) -> Option<String> {
    let value = attr.value.value();
    match attr.value.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::VisibleString
        | Tag::TeletexString
        | Tag::VideotexString => std::str::from_utf8(value).ok().map(str::to_owned),
        Tag::BmpString => {
            if value.len() % 2 != 0 {
                return None;
            }
            let units = value.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units).collect::<Result<String, _>>().ok()
        }
        _ => None,
    }
}

/// A name as `CN=..., O=...`, in the order of its RDNs; attributes of one RDN joined by ` + `,
/// values that are not text in hex.
pub fn name_to_string(name: &Name) -> String {
    let mut out = String::new();
    for (i, rdn) in name.0.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        for (j, attr) in rdn.0.iter().enumerate() {
            if j > 0 {
                out.push_str(" + ");
            }
            match attribute_abbreviation(&attr.oid) {
                Some(abbreviation) => out.push_str(abbreviation),
                None => out.push_str(&attr.oid.to_string()),
            }
            out.push('=');
            match attribute_text(attr) {
                Some(text) => out.push_str(&text),
                None => out.push_str(&crate::text::hex_upper(attr.value.value(), None)),
            }
        }
    }
    out
}

/// The common names of a name, in order (`None` for one whose value is not text).
pub fn common_names(name: &Name) -> impl Iterator<Item = Option<String>> + '_ {
    name.0.iter().flat_map(|rdn| rdn.0.iter()).filter(|a| a.oid == COMMON_NAME).map(attribute_text)
}

/// What a public key is, as the UI shows it: "ECDSA P-256", "RSA 2048", or the algorithm's OID.
pub fn key_type(spki: &spki::SubjectPublicKeyInfoOwned) -> String {
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
pub fn named_curve(spki: &spki::SubjectPublicKeyInfoOwned) -> Option<ObjectIdentifier> {
    spki.algorithm.parameters.as_ref().and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
}

/// The RSA public key (modulus, exponent) of a key info, unsigned big-endian without leading zeros.
pub fn rsa_public_key(spki: &spki::SubjectPublicKeyInfoOwned) -> Option<(&[u8], &[u8])> {
    let key = rsa::pkcs1::RsaPublicKey::from_der(spki.subject_public_key.as_bytes()?).ok()?;
    Some((key.modulus.as_bytes(), key.public_exponent.as_bytes()))
}

/// The size of an RSA key's modulus in bits, counted in whole bytes as key sizes are named.
pub fn rsa_modulus_bits(spki: &spki::SubjectPublicKeyInfoOwned) -> Option<usize> {
    rsa_public_key(spki).map(|(n, _)| n.len() * 8)
}

/// Whether an extension value is the extension `T`, decoded, refusing a second one.
fn extension<'a, T: Decode<'a> + der::oid::AssociatedOid>(
    extensions: &'a [x509_cert::ext::Extension],
) -> Result<Option<(bool, T)>, ExtensionError> {
    let mut found = extensions.iter().filter(|e| e.extn_id == T::OID);
    let Some(first) = found.next() else { return Ok(None) };
    if found.next().is_some() {
        return Err(ExtensionError::Duplicate { name: extension_name(&T::OID) });
    }
    T::from_der(first.extn_value.as_bytes())
        .map(|value| Some((first.critical, value)))
        .map_err(|source| ExtensionError::Malformed { name: extension_name(&T::OID), source })
}

/// The value of the extension with `oid`, refusing a second one.
fn extension_value(
    extensions: &[x509_cert::ext::Extension],
    oid: ObjectIdentifier,
) -> Result<Option<&[u8]>, ExtensionError> {
    let mut found = extensions.iter().filter(|e| e.extn_id == oid);
    let Some(first) = found.next() else { return Ok(None) };
    if found.next().is_some() {
        return Err(ExtensionError::Duplicate { name: extension_name(&oid) });
    }
    Ok(Some(first.extn_value.as_bytes()))
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

/// The names of a subjectAltName extension value.
fn alt_names(value: &[u8]) -> Result<Vec<GeneralName<'_>>, ExtensionError> {
    general_names(value).map_err(|source| ExtensionError::Malformed { name: "subjectAltName".to_owned(), source })
}

/// A field the decoded structure had, missing on the second walk (which cannot happen).
fn missing() -> der::Error {
    der::ErrorKind::Incomplete { expected_len: der::Length::ONE, actual_len: der::Length::ZERO }.into()
}

/// A certificate: the decoded structure and the exact bytes of what is signed and compared.
#[derive(Clone)]
pub struct Certificate<'a> {
    der: &'a [u8],
    cert: x509_cert::Certificate,
    tbs: &'a [u8],
    serial: &'a [u8],
    issuer: &'a [u8],
    subject: &'a [u8],
    spki: &'a [u8],
}

impl fmt::Debug for Certificate<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate").field("subject", &self.subject_string()).finish_non_exhaustive()
    }
}

impl<'a> Certificate<'a> {
    /// Reads a DER certificate that is the whole of `der`.
    pub fn parse(der: &'a [u8]) -> der::Result<Self> {
        let cert = x509_cert::Certificate::from_der(der)?;
        let (_, outer, _) = split_tlv(der)?;
        let (_, tbs_value, after_tbs) = split_tlv(outer)?;
        let tbs = &outer[..outer.len() - after_tbs.len()];
        let mut fields = elements(tbs_value);
        let mut next = || fields.next().unwrap_or_else(|| Err(missing()));
        let mut serial = next()?;
        if context_tag(&serial.0) == Some(0) {
            serial = next()?;
        }
        let _signature = next()?;
        let issuer = next()?.2;
        let _validity = next()?;
        let subject = next()?.2;
        let spki = next()?.2;
        Ok(Self { der, cert, tbs, serial: serial.1, issuer, subject, spki })
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

    /// The decoded structure.
    pub fn x509(&self) -> &x509_cert::Certificate {
        &self.cert
    }

    /// The signed part, as signed.
    pub fn tbs_der(&self) -> &'a [u8] {
        self.tbs
    }

    /// The serial number's content octets, as written.
    pub fn serial(&self) -> &'a [u8] {
        self.serial
    }

    /// The issuer Name, whole DER element as written.
    pub fn issuer_der(&self) -> &'a [u8] {
        self.issuer
    }

    /// The subject Name, whole DER element as written.
    pub fn subject_der(&self) -> &'a [u8] {
        self.subject
    }

    /// The SubjectPublicKeyInfo, whole DER element as written.
    pub fn spki_der(&self) -> &'a [u8] {
        self.spki
    }

    pub fn subject(&self) -> &Name {
        &self.cert.tbs_certificate.subject
    }

    pub fn issuer(&self) -> &Name {
        &self.cert.tbs_certificate.issuer
    }

    pub fn subject_string(&self) -> String {
        name_to_string(self.subject())
    }

    pub fn issuer_string(&self) -> String {
        name_to_string(self.issuer())
    }

    pub fn public_key(&self) -> &spki::SubjectPublicKeyInfoOwned {
        &self.cert.tbs_certificate.subject_public_key_info
    }

    /// The subjectPublicKey BIT STRING's bytes (an RSAPublicKey DER or an EC point).
    pub fn public_key_bytes(&self) -> &[u8] {
        self.public_key().subject_public_key.raw_bytes()
    }

    /// A version 1 certificate (no extensions; OpenSSL treats a self-signed one as a CA).
    pub fn is_v1(&self) -> bool {
        self.cert.tbs_certificate.version == x509_cert::Version::V1
    }

    /// notBefore, seconds since 1970.
    pub fn not_before_unix(&self) -> i64 {
        unix(self.cert.tbs_certificate.validity.not_before)
    }

    /// notAfter, seconds since 1970.
    pub fn not_after_unix(&self) -> i64 {
        unix(self.cert.tbs_certificate.validity.not_after)
    }

    fn extensions(&self) -> &[x509_cert::ext::Extension] {
        self.cert.tbs_certificate.extensions.as_deref().unwrap_or(&[])
    }

    /// basicConstraints, with its critical flag.
    pub fn basic_constraints(&self) -> Result<Option<BasicConstraints>, ExtensionError> {
        Ok(extension::<BasicConstraints>(self.extensions())?.map(|(_, v)| v))
    }

    /// Whether basicConstraints says CA:TRUE.
    pub fn is_ca(&self) -> Result<bool, ExtensionError> {
        Ok(self.basic_constraints()?.is_some_and(|bc| bc.ca))
    }

    pub fn key_usage(&self) -> Result<Option<KeyUsage>, ExtensionError> {
        Ok(extension::<KeyUsage>(self.extensions())?.map(|(_, v)| v))
    }

    /// extendedKeyUsage as (serverAuth, anyExtendedKeyUsage), when present.
    pub fn server_auth_usage(&self) -> Result<Option<(bool, bool)>, ExtensionError> {
        let Some((_, eku)) = extension::<ExtendedKeyUsage>(self.extensions())? else { return Ok(None) };
        let has = |oid: ObjectIdentifier| eku.0.contains(&oid);
        Ok(Some((has(SERVER_AUTH), has(ANY_EXTENDED_KEY_USAGE))))
    }

    pub fn subject_key_identifier(&self) -> Result<Option<Vec<u8>>, ExtensionError> {
        Ok(extension::<SubjectKeyIdentifier>(self.extensions())?.map(|(_, v)| v.0.as_bytes().to_vec()))
    }

    /// The subjectAltName names; `None` when the certificate has no such extension.
    pub fn subject_alt_names(&self) -> Result<Option<Vec<GeneralName<'_>>>, ExtensionError> {
        extension_value(self.extensions(), SUBJECT_ALT_NAME)?.map(alt_names).transpose()
    }

    /// The permitted subtrees of the nameConstraints extension: `None` without the extension,
    /// an empty list when it permits nothing by name.
    pub fn permitted_subtrees(&self) -> Result<Option<Vec<GeneralName<'_>>>, ExtensionError> {
        let Some(value) = extension_value(self.extensions(), NAME_CONSTRAINTS)? else { return Ok(None) };
        permitted_subtrees(value)
            .map(|names| Some(names.unwrap_or_default()))
            .map_err(|source| ExtensionError::Malformed { name: "nameConstraints".to_owned(), source })
    }

    /// Whether the key of `issuer` made this certificate's signature.
    pub fn verify_signed_by(&self, issuer: &Certificate<'_>) -> Result<(), SignatureError> {
        let alg = verification_algorithm(&self.cert.signature_algorithm, issuer.public_key())?;
        let signature = self.cert.signature.as_bytes().ok_or(SignatureError::Refused)?;
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
    signature: &spki::AlgorithmIdentifierOwned,
    issuer_key: &spki::SubjectPublicKeyInfoOwned,
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
            let params = signature.parameters.as_ref().ok_or(SignatureError::UnsupportedAlgorithm)?;
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

/// A PKCS#10 certificate request: the decoded structure and the subject and key as written.
#[derive(Clone)]
pub struct Request<'a> {
    request: x509_cert::request::CertReq,
    subject: &'a [u8],
    spki: &'a [u8],
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request").field("subject", &name_to_string(self.subject())).finish_non_exhaustive()
    }
}

impl<'a> Request<'a> {
    /// Reads a DER request that is the whole of `der`.
    pub fn parse(der: &'a [u8]) -> der::Result<Self> {
        let request = x509_cert::request::CertReq::from_der(der)?;
        let (_, outer, _) = split_tlv(der)?;
        let (_, info, _) = split_tlv(outer)?;
        let mut fields = elements(info).skip(1);
        let subject = fields.next().ok_or_else(missing)??.2;
        let spki = fields.next().ok_or_else(missing)??.2;
        Ok(Self { request, subject, spki })
    }

    pub fn x509(&self) -> &x509_cert::request::CertReq {
        &self.request
    }

    pub fn subject(&self) -> &Name {
        &self.request.info.subject
    }

    /// The subject Name, whole DER element as written.
    pub fn subject_der(&self) -> &'a [u8] {
        self.subject
    }

    /// The SubjectPublicKeyInfo, whole DER element as written.
    pub fn spki_der(&self) -> &'a [u8] {
        self.spki
    }

    pub fn public_key(&self) -> &spki::SubjectPublicKeyInfoOwned {
        &self.request.info.public_key
    }

    /// The subjectAltName names of every extensionRequest attribute (one that does not parse
    /// adds none).
    pub fn subject_alt_names(&self) -> Vec<GeneralName<'_>> {
        let mut names = Vec::new();
        for attr in self.request.info.attributes.iter().filter(|a| a.oid == EXTENSION_REQUEST) {
            for value in attr.values.iter() {
                for ext in elements(value.value()).map_while(Result::ok) {
                    if let Some(found) = san_of_extension(ext.1) {
                        names.extend(found);
                    }
                }
            }
        }
        names
    }

    /// The first value of the attribute `oid`, when it is text.
    pub fn attribute_text(&self, oid: &str) -> Option<String> {
        let oid = ObjectIdentifier::new(oid).ok()?;
        let attr = self.request.info.attributes.iter().find(|a| a.oid == oid)?;
        let value = attr.values.iter().next()?;
        attribute_text(&AttributeTypeAndValue { oid, value: value.clone() })
    }
}

/// The names of one Extension (its SEQUENCE's content) when it is a readable subjectAltName.
fn san_of_extension(extension: &[u8]) -> Option<Vec<GeneralName<'_>>> {
    let mut fields = elements(extension).map_while(Result::ok);
    let (oid_header, oid, _) = fields.next()?;
    if oid_header.tag != Tag::ObjectIdentifier || oid != SUBJECT_ALT_NAME.as_bytes() {
        return None;
    }
    let value = fields.find(|(h, _, _)| h.tag == Tag::OctetString)?.1;
    general_names(value).ok()
}
