//! PEM encoding and decoding. Encoding key material goes into zeroized buffers.

use rustls_pki_types::pem::{PemObject, SectionKind};
use zeroize::Zeroizing;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes `der` as one PEM block with the given label, lines of 64 characters.
pub fn encode(label: &str, der: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(encoded_len(label, der.len())));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let mut line = 0;
    for chunk in der.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            let c = if i <= chunk.len() { B64[((n >> (18 - 6 * i)) & 63) as usize] } else { b'=' };
            out.push(char::from(c));
        }
        line += 4;
        if line == 64 {
            out.push('\n');
            line = 0;
        }
    }
    if line != 0 {
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Length of [`encode`]'s output.
fn encoded_len(label: &str, der_len: usize) -> usize {
    let body = der_len.div_ceil(3) * 4;
    2 * (16 + label.len()) + body + body.div_ceil(64)
}

/// A private key followed by other blocks (certificates, a request) in one PEM text: one file,
/// replaced atomically. The buffer is sized up front so the key is never left behind in a freed,
/// unwiped allocation when the text grows.
pub fn key_bundle(key_pkcs8: &[u8], others: &[&[u8]], others_label: &str) -> Zeroizing<String> {
    let capacity = encoded_len("PRIVATE KEY", key_pkcs8.len())
        + others.iter().map(|der| encoded_len(others_label, der.len())).sum::<usize>();
    let mut out = Zeroizing::new(String::with_capacity(capacity));
    out.push_str(&encode("PRIVATE KEY", key_pkcs8));
    for der in others {
        out.push_str(&encode(others_label, der));
    }
    debug_assert!(out.len() <= capacity);
    out
}

/// One PEM block: its kind and DER, wiped when dropped (a bundle holds a key).
pub type Section = (SectionKind, Zeroizing<Vec<u8>>);

/// Every PEM section in `text`, in order. Unknown labels are skipped.
pub fn sections(text: &[u8]) -> Result<Vec<Section>, String> {
    <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(text)
        .map(|section| section.map(|(kind, der)| (kind, Zeroizing::new(der))))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("malformed PEM: {e}"))
}

/// The DER of every `CERTIFICATE` block in `text` (the other blocks are wiped).
pub fn certificates(text: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    Ok(sections(text)?
        .into_iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| der.to_vec())
        .collect())
}

/// The DER of the first `PRIVATE KEY` (PKCS#8) block in `text`, zeroized when dropped.
pub fn pkcs8_key(text: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
    for section in <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(text) {
        let (kind, der) = section.map_err(|e| format!("malformed PEM: {e}"))?;
        let der = Zeroizing::new(der);
        if kind == SectionKind::PrivateKey {
            return Ok(Some(der));
        }
    }
    Ok(None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn encode_round_trips_through_the_parser() {
        for len in [0usize, 1, 2, 3, 47, 48, 49, 100] {
            let der: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let pem = encode("CERTIFICATE", &der);
            if len > 0 {
                assert_eq!(certificates(pem.as_bytes()).unwrap(), vec![der.clone()], "len {len}");
            }
            assert!(pem.lines().all(|l| l.len() <= 64));
            assert_eq!(pem.len(), encoded_len("CERTIFICATE", len), "len {len}");
        }
    }
}
