//! A lenient PEM scanner for uploads pasted into a textarea: blocks anywhere in the text, CRLF or LF,
//! indentation, RFC 1421 headers (`Proc-Type`, `DEK-Info`) and even a whole block on one line.
//!
//! rustls-pki-types' parser is strict about line starts, skips `ENCRYPTED PRIVATE KEY` and
//! `EC PARAMETERS`, and does not keep headers, so the framing is done here; base64 decoding is
//! base64ct's (constant time, as key bytes pass through it). Linear in the input size.

use base64ct::{Base64, Encoding};
use zeroize::Zeroizing;

/// One `-----BEGIN X-----` ... `-----END X-----` block.
pub(crate) struct Block {
    pub label: String,
    /// Header lines (`Name: value`), in order.
    pub headers: Vec<(String, String)>,
    /// Decoded contents (may be key bytes, hence zeroized).
    pub der: Zeroizing<Vec<u8>>,
}

/// The text contains a BEGIN marker but a block is cut short or is not valid base64.
#[derive(Debug)]
pub(crate) struct Malformed;

const BEGIN: &[u8] = b"-----BEGIN ";
const END: &[u8] = b"-----END ";
const DASHES: &[u8] = b"-----";
const MAX_BLOCKS: usize = 64;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    // The needles are short constants or labels; the first byte is rare ('-'), so this stays linear
    // in practice and is bounded by len(hay) * len(needle) in the worst case (needle <= 80 bytes).
    hay.windows(needle.len()).position(|w| w == needle)
}

/// True when the text has at least one BEGIN marker.
pub(crate) fn looks_like_pem(input: &[u8]) -> bool {
    find(input, BEGIN).is_some()
}

/// Parses every block. Text outside blocks is ignored.
pub(crate) fn parse(input: &[u8]) -> Result<Vec<Block>, Malformed> {
    let mut blocks = Vec::new();
    let mut rest = input;
    while let Some(start) = find(rest, BEGIN) {
        if blocks.len() >= MAX_BLOCKS {
            return Err(Malformed);
        }
        let after_begin = &rest[start + BEGIN.len()..];
        let label_len = find(after_begin, DASHES).ok_or(Malformed)?;
        let label_bytes = &after_begin[..label_len];
        if label_bytes.len() > 64 || label_bytes.iter().any(|&c| c == b'\n' || c == b'\r') {
            return Err(Malformed);
        }
        let label = String::from_utf8_lossy(label_bytes).trim().to_string();
        let body_start = &after_begin[label_len + DASHES.len()..];
        let mut end_marker = Vec::with_capacity(END.len() + label_bytes.len() + DASHES.len());
        end_marker.extend_from_slice(END);
        end_marker.extend_from_slice(label_bytes);
        end_marker.extend_from_slice(DASHES);
        let body_len = find(body_start, &end_marker).ok_or(Malformed)?;
        let body = &body_start[..body_len];
        blocks.push(decode_body(label, body)?);
        rest = &body_start[body_len + end_marker.len()..];
    }
    Ok(blocks)
}

fn decode_body(label: String, body: &[u8]) -> Result<Block, Malformed> {
    let mut headers = Vec::new();
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
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'=' => b64.push(c),
                b' ' | b'\t' => {}
                _ => return Err(Malformed),
            }
        }
    }
    let mut der = Zeroizing::new(vec![0u8; b64.len() / 4 * 3 + 3]);
    let len = Base64::decode(&b64[..], &mut der[..]).map_err(|_| Malformed)?.len();
    der.truncate(len);
    Ok(Block { label, headers, der })
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(s.len());
    let end = s.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &s[start..end]
}

/// Decodes text that is only base64 (a PEM body pasted without its armour), if it is that.
pub(crate) fn bare_base64(input: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let mut b64 = Zeroizing::new(Vec::with_capacity(input.len()));
    for &c in input {
        match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'=' => b64.push(c),
            c if c.is_ascii_whitespace() => {}
            _ => return None,
        }
    }
    if b64.len() < 16 {
        return None;
    }
    let mut der = Zeroizing::new(vec![0u8; b64.len() / 4 * 3 + 3]);
    let len = Base64::decode(&b64[..], &mut der[..]).ok()?.len();
    der.truncate(len);
    Some(der)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn one_line_and_crlf_and_headers() {
        let text = b"junk\r\n  -----BEGIN X-----\r\nProc-Type: 4,ENCRYPTED\r\nDEK-Info: AES-256-CBC,00\r\n\r\n  AAEC\r\n-----END X-----\r\n-----BEGIN Y----- AAEC -----END Y-----";
        let blocks = parse(text).map_err(|_| ()).unwrap_or_default();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "X");
        assert_eq!(blocks[0].headers.len(), 2);
        assert_eq!(&blocks[0].der[..], &[0, 1, 2]);
        assert_eq!(blocks[1].label, "Y");
        assert_eq!(&blocks[1].der[..], &[0, 1, 2]);
    }

    #[test]
    fn truncated_is_malformed() {
        assert!(parse(b"-----BEGIN X-----\nAAEC\n").is_err());
        assert!(parse(b"-----BEGIN X").is_err());
    }
}
