//! Text forms of bytes: the one hex encoder and decoder of the camera's crates. Values from
//! outside quoted in a sentence are escaped with `camera_log::escape` (the one escaper of both
//! programs).
//!
//! Encoding takes the same time whatever the bytes (no table lookups or branches on them), so it
//! may encode secrets such as session tokens and password hashes; decoding is for public text.

/// Upper-case hex of `bytes`, pairs separated by `separator` if there is one (`AB:CD:EF`): how
/// fingerprints and serial numbers are shown.
pub fn hex_upper(bytes: &[u8], separator: Option<char>) -> String {
    hex(bytes, separator, b'A')
}

/// Lower-case hex of `bytes` without separators: how digests and tokens are stored.
pub fn hex_lower(bytes: &[u8]) -> String {
    hex(bytes, None, b'a')
}

fn hex(bytes: &[u8], separator: Option<char>, ten: u8) -> String {
    // 9 - n borrows (its top byte is all ones) exactly when n > 9: then add the gap from '0' + 10
    // to the letter for ten.
    let digit = |n: u8| {
        let letter = (9u16.wrapping_sub(u16::from(n)) >> 8) as u8;
        char::from(b'0' + n + (letter & (ten - b'0' - 10)))
    };
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if let (Some(sep), true) = (separator, i > 0) {
            out.push(sep);
        }
        out.push(digit(b >> 4));
        out.push(digit(b & 0x0f));
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
        assert_eq!(hex_lower(&[0x00, 0xab, 0x7f, 0x9a]), "00ab7f9a");
        let all: Vec<u8> = (0..=255).collect();
        let expected: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex_lower(&all), expected);
        assert_eq!(hex_upper(&all, None), expected.to_uppercase());
        assert_eq!(unhex(&hex_upper(&all, None)), Some(all.clone()));
        assert_eq!(unhex(&hex_lower(&all)), Some(all));
    }
}
