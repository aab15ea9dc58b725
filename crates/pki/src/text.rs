//! Text forms of bytes and of values that came from outside: the one hex helper and the one
//! control-character escape of camera-pki and camera-upload.
//!
//! Neither is constant time: they are for public data (fingerprints, serial numbers, IVs, names),
//! never for key bytes.

use std::borrow::Cow;
use std::fmt::{self, Write};

/// Upper-case hex of `bytes`, pairs separated by `separator` if there is one (`AB:CD:EF`).
pub fn hex_upper(bytes: &[u8], separator: Option<char>) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if let (Some(sep), true) = (separator, i > 0) {
            out.push(sep);
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// The bytes of a hex string (either case, no separators, surrounding whitespace ignored), or
/// `None` if it is not one.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let digits = text.trim().as_bytes();
    if digits.len() % 2 != 0 {
        return None;
    }
    let nibble = |c: u8| char::from(c).to_digit(16).and_then(|d| u8::try_from(d).ok());
    digits.chunks(2).map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?)).collect()
}

/// Characters that could forge or hide text when a value is quoted in a sentence or a log line:
/// C0 and C1 controls (newline, escape sequences), the Unicode line and paragraph separators, and
/// the bidirectional formatting characters that reorder what a reader sees.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{061C}' | '\u{200E}' | '\u{200F}')
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// `value` with every control character written as a Rust escape (`\n`, `\u{1b}`), so that a
/// subject, file name or header quoted in a message stays on one line and cannot recolour a
/// terminal. Printable text, including non-ASCII letters, is unchanged.
pub fn escape_controls(value: &str) -> Cow<'_, str> {
    if !value.chars().any(needs_escape) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Displays a value from outside with [`escape_controls`] applied.
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape_controls(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex_upper(&[0x00, 0xab, 0x7f], None), "00AB7F");
        assert_eq!(hex_upper(&[0x00, 0xab, 0x7f], Some(':')), "00:AB:7F");
        assert_eq!(hex_upper(&[], Some(':')), "");
        assert_eq!(unhex(" 00ab7F\n"), Some(vec![0x00, 0xab, 0x7f]));
        assert_eq!(unhex(""), Some(vec![]));
        for bad in ["0", "0g", "+1", "00:AB", "é0"] {
            assert_eq!(unhex(bad), None, "{bad:?}");
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex_upper(&all, None)), Some(all));
    }

    #[test]
    fn controls_are_escaped_and_letters_kept() {
        assert_eq!(escape_controls("Müller GmbH 東京"), "Müller GmbH 東京");
        assert!(matches!(escape_controls("plain"), Cow::Borrowed(_)));
        assert_eq!(escape_controls("a\nb\r\x1b[31m\0"), "a\\nb\\r\\u{1b}[31m\\u{0}");
        assert_eq!(escape_controls("x\u{202E}y\u{85}"), "x\\u{202e}y\\u{85}");
        assert_eq!(Escaped("cam\n").to_string(), "cam\\n");
    }
}
