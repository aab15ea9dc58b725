//! PEM: the one reader for everything the camera reads (its own state files, a factory CA,
//! installers' uploads pasted into a textarea) and the one writer.
//!
//! Base64 is base64ct's, constant time, since key bytes pass through it. Every buffer that holds
//! key material, as base64 text or as DER, is zeroized and sized up front, so no unwiped copy is
//! left in a freed allocation when a buffer would otherwise grow.
//!
//! The reader is lenient: blocks anywhere in the text, CRLF or LF, indentation, RFC 1421 headers
//! (`Proc-Type`, `DEK-Info`, kept for the caller) and even a whole block on one line. Linear in the
//! input size.

use std::fmt;

use base64ct::{Base64, Encoding};
use rustls_pki_types::pem::SectionKind;
use zeroize::Zeroizing;

/// Why PEM text could not be read. Never quotes the text (it may hold a key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PemError {
    /// A `-----BEGIN` line has no matching `-----END` line, or no closing dashes.
    #[error("a PEM block is cut short: its BEGIN line has no matching END line")]
    Unterminated,
    /// A label is longer than 64 characters or runs over a line end.
    #[error("a PEM block's label is too long or runs over a line end")]
    BadLabel,
    /// A body line holds a character that is not base64.
    #[error("a PEM block's body holds a character that is not base64")]
    NotBase64,
    /// The body is base64 characters but not valid base64 (bad length or padding).
    #[error("a PEM block's body is not valid base64")]
    Base64(#[source] base64ct::Error),
    /// More blocks than any certificate, key or bundle needs.
    #[error("the text holds more than {MAX_BLOCKS} PEM blocks")]
    TooManyBlocks,
}

/// One `-----BEGIN X-----` ... `-----END X-----` block.
pub struct Block {
    /// The label (`CERTIFICATE`, `PRIVATE KEY`, ...), trimmed.
    pub label: String,
    /// Header lines (`Name: value`), in order.
    pub headers: Vec<(String, String)>,
    /// Decoded contents (may be key bytes, hence zeroized).
    pub der: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Block")
            .field("label", &self.label)
            .field("headers", &self.headers.len())
            .field("der_len", &self.der.len())
            .finish()
    }
}

const BEGIN: &[u8] = b"-----BEGIN ";
const END: &[u8] = b"-----END ";
const DASHES: &[u8] = b"-----";
/// Most blocks one text may hold: a bundle is a key and a chain.
pub const MAX_BLOCKS: usize = 64;
const MAX_LABEL: usize = 64;
/// base64 line length of what [`encode`] writes.
const LINE: usize = 64;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    // The needles are short constants or labels; the first byte is rare ('-'), so this stays linear
    // in practice and is bounded by len(hay) * len(needle) in the worst case (needle <= 80 bytes).
    hay.windows(needle.len()).position(|w| w == needle)
}

/// True when the text has at least one BEGIN marker.
pub fn looks_like_pem(text: &[u8]) -> bool {
    find(text, BEGIN).is_some()
}

/// Every block in `text`, in order. Text outside blocks is ignored.
pub fn parse(text: &[u8]) -> Result<Vec<Block>, PemError> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = find(rest, BEGIN) {
        if blocks.len() >= MAX_BLOCKS {
            return Err(PemError::TooManyBlocks);
        }
        let after_begin = &rest[start + BEGIN.len()..];
        let label_len = find(after_begin, DASHES).ok_or(PemError::Unterminated)?;
        let label_bytes = &after_begin[..label_len];
        if label_bytes.len() > MAX_LABEL || label_bytes.iter().any(|&c| c == b'\n' || c == b'\r') {
            return Err(PemError::BadLabel);
        }
        let label = String::from_utf8_lossy(label_bytes).trim().to_string();
        let body_start = &after_begin[label_len + DASHES.len()..];
        let mut end_marker = Vec::with_capacity(END.len() + label_bytes.len() + DASHES.len());
        end_marker.extend_from_slice(END);
        end_marker.extend_from_slice(label_bytes);
        end_marker.extend_from_slice(DASHES);
        let body_len = find(body_start, &end_marker).ok_or(PemError::Unterminated)?;
        blocks.push(decode_body(label, &body_start[..body_len])?);
        rest = &body_start[body_len + end_marker.len()..];
    }
    Ok(blocks)
}

fn is_base64(c: u8) -> bool {
    matches!(c, b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'=')
}

fn decode_body(label: String, body: &[u8]) -> Result<Block, PemError> {
    let mut headers = Vec::new();
    // At most `body.len()` base64 characters: never grows.
    let mut b64 = Zeroizing::new(Vec::with_capacity(body.len()));
    for line in body.split(|&c| c == b'\n' || c == b'\r') {
        let trimmed = trim(line);
        if trimmed.is_empty() {
            continue;
        }
        if b64.is_empty() {
            if let Some(colon) = trimmed.iter().position(|&c| c == b':') {
                let name = String::from_utf8_lossy(trim(&trimmed[..colon])).to_string();
                let value = String::from_utf8_lossy(trim(&trimmed[colon + 1..])).to_string();
                headers.push((name, value));
                continue;
            }
        }
        for &c in trimmed {
            match c {
                c if is_base64(c) => b64.push(c),
                b' ' | b'\t' => {}
                _ => return Err(PemError::NotBase64),
            }
        }
    }
    let der = decode_base64(&b64).map_err(PemError::Base64)?;
    Ok(Block { label, headers, der })
}

/// Decodes base64 into a zeroized buffer sized for it up front.
fn decode_base64(b64: &[u8]) -> Result<Zeroizing<Vec<u8>>, base64ct::Error> {
    let mut der = Zeroizing::new(vec![0u8; b64.len() / 4 * 3 + 3]);
    let len = Base64::decode(b64, &mut der[..])?.len();
    der.truncate(len);
    Ok(der)
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(s.len());
    let end = s.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &s[start..end]
}

/// Decodes text that is only base64 (a PEM body pasted without its armour), if it is that.
pub fn bare_base64(text: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let mut b64 = Zeroizing::new(Vec::with_capacity(text.len()));
    for &c in text {
        match c {
            c if is_base64(c) => b64.push(c),
            c if c.is_ascii_whitespace() => {}
            _ => return None,
        }
    }
    if b64.len() < 16 {
        return None;
    }
    decode_base64(&b64).ok()
}

/// Encodes `der` as one PEM block with the given label, base64 in lines of 64 characters.
pub fn encode(label: &str, der: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(encoded_len(label, der.len())));
    push_block(&mut out, label, der);
    out
}

/// Appends one block to `out`, which must have room for it (no reallocation of key text).
fn push_block(out: &mut String, label: &str, der: &[u8]) {
    debug_assert!(out.capacity() - out.len() >= encoded_len(label, der.len()));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let mut line = Zeroizing::new([0u8; LINE]);
    for chunk in der.chunks(LINE / 4 * 3) {
        // 64 bytes always hold the base64 of 48 (a short buffer is base64ct's only error), as the
        // round-trip test checks for every chunk length.
        if let Ok(text) = Base64::encode(chunk, &mut line[..]) {
            out.push_str(text);
        }
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
}

/// Length of [`encode`]'s output.
fn encoded_len(label: &str, der_len: usize) -> usize {
    let body = der_len.div_ceil(3) * 4;
    2 * (16 + label.len()) + body + body.div_ceil(LINE)
}

/// A private key followed by other blocks (certificates, a request) in one PEM text: one file,
/// replaced atomically. The buffer is sized up front so the key is never left behind in a freed,
/// unwiped allocation when the text grows.
pub fn key_bundle(key_pkcs8: &[u8], others: &[&[u8]], others_label: &str) -> Zeroizing<String> {
    let capacity = encoded_len("PRIVATE KEY", key_pkcs8.len())
        + others.iter().map(|der| encoded_len(others_label, der.len())).sum::<usize>();
    let mut out = Zeroizing::new(String::with_capacity(capacity));
    push_block(&mut out, "PRIVATE KEY", key_pkcs8);
    for der in others {
        push_block(&mut out, others_label, der);
    }
    debug_assert!(out.len() <= capacity);
    out
}

/// One PEM block: its kind and DER, wiped when dropped (a bundle holds a key).
pub type Section = (SectionKind, Zeroizing<Vec<u8>>);

/// Every PEM section of a known kind in `text`, in order. Blocks with other labels are skipped
/// (and wiped).
pub fn sections(text: &[u8]) -> Result<Vec<Section>, PemError> {
    Ok(parse(text)?
        .into_iter()
        .filter_map(|block| SectionKind::try_from(block.label.as_bytes()).ok().map(|kind| (kind, block.der)))
        .collect())
}

/// The DER of every `CERTIFICATE` block in `text` (the other blocks are wiped).
pub fn certificates(text: &[u8]) -> Result<Vec<Vec<u8>>, PemError> {
    Ok(sections(text)?
        .into_iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| der.to_vec())
        .collect())
}

/// The DER of the first `PRIVATE KEY` (PKCS#8) block in `text`, zeroized when dropped.
pub fn pkcs8_key(text: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, PemError> {
    Ok(sections(text)?.into_iter().find(|(kind, _)| *kind == SectionKind::PrivateKey).map(|(_, der)| der))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn encode_round_trips_through_the_parser() {
        for len in (0usize..=100).chain([1000, 4096]) {
            let der: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let pem = encode("CERTIFICATE", &der);
            if len > 0 {
                assert_eq!(certificates(pem.as_bytes()).unwrap(), vec![der.clone()], "len {len}");
            }
            assert!(pem.lines().all(|l| l.len() <= 64));
            assert_eq!(pem.len(), encoded_len("CERTIFICATE", len), "len {len}");
        }
    }

    #[test]
    fn bundle_holds_every_block_in_order_without_growing() {
        let key: Vec<u8> = (0..138).map(|i| i as u8).collect();
        let certs: [&[u8]; 2] = [&[1; 500], &[2; 301]];
        let bundle = key_bundle(&key, &certs, "CERTIFICATE");
        assert_eq!(bundle.len(), bundle.capacity(), "sized exactly, so it never reallocated");
        assert_eq!(pkcs8_key(bundle.as_bytes()).unwrap().as_deref(), Some(&key));
        assert_eq!(certificates(bundle.as_bytes()).unwrap(), vec![vec![1; 500], vec![2; 301]]);
    }

    #[test]
    fn one_line_and_crlf_and_headers() {
        let text = b"junk\r\n  -----BEGIN X-----\r\nProc-Type: 4,ENCRYPTED\r\nDEK-Info: AES-256-CBC,00\r\n\r\n  AAEC\r\n-----END X-----\r\n-----BEGIN Y----- AAEC -----END Y-----";
        let blocks = parse(text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "X");
        assert_eq!(blocks[0].headers.len(), 2);
        assert_eq!(&blocks[0].der[..], &[0, 1, 2]);
        assert_eq!(blocks[1].label, "Y");
        assert_eq!(&blocks[1].der[..], &[0, 1, 2]);
    }

    #[test]
    fn damaged_text_says_what_is_wrong() {
        assert_eq!(parse(b"-----BEGIN X-----\nAAEC\n").unwrap_err(), PemError::Unterminated);
        assert_eq!(parse(b"-----BEGIN X").unwrap_err(), PemError::Unterminated);
        assert_eq!(parse(b"-----BEGIN X\nY-----\n-----END X\nY-----").unwrap_err(), PemError::BadLabel);
        assert_eq!(parse(b"-----BEGIN X-----\nAA*C\n-----END X-----").unwrap_err(), PemError::NotBase64);
        assert!(matches!(parse(b"-----BEGIN X-----\nAAE\n-----END X-----").unwrap_err(), PemError::Base64(_)));
        let many = b"-----BEGIN X-----\nAAEC\n-----END X-----\n".repeat(MAX_BLOCKS + 1);
        assert_eq!(parse(&many).unwrap_err(), PemError::TooManyBlocks);
        assert!(format!("{:?}", parse(b"-----BEGIN X-----\nAAEC\n-----END X-----").unwrap()).contains("der_len: 3"));
    }
}
