//! Text forms of bytes: the one hex helper of camera-pki and camera-upload. Values from outside
//! quoted in a sentence are escaped with `camera_log::escape` (the one escaper of both programs).
//!
//! Not constant time: for public data (fingerprints, serial numbers, IVs), never for key bytes.

use std::fmt::Write;

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
}
