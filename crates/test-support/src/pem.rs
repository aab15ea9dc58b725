//! PEM text as the tests read and write it: blocks with their labels, and DER wrapped as PEM. The
//! camera's own PEM reader is `camera_pki::pem`; this one reads what tools and servers print.

use base64ct::{Base64, Encoding};

/// The PEM blocks of `text` (anything between them, such as `openssl s_client` chatter, skipped):
/// each block's label and its text from the BEGIN line to the END line, with a newline after each
/// line.
pub fn blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) {
            current = Some((label.to_owned(), format!("{line}\n")));
        } else if let Some((label, mut body)) = current.take() {
            body.push_str(line);
            body.push('\n');
            if line.starts_with("-----END ") {
                blocks.push((label, body));
            } else {
                current = Some((label, body));
            }
        }
    }
    blocks
}

/// The CERTIFICATE blocks of `text`, each ending in a newline.
pub fn certificates(text: &str) -> Vec<String> {
    blocks(text).into_iter().filter(|(label, _)| label == "CERTIFICATE").map(|(_, block)| block).collect()
}

/// `der` as one PEM block labelled `label`, 64 characters a line.
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = Base64::encode_string(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_skip_what_is_between_them_and_keep_their_labels() {
        let text = "depth=0 CN = x\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\nchatter\n\
                    -----BEGIN PRIVATE KEY-----\nBBBB\nCCCC\n-----END PRIVATE KEY-----\n";
        let found = blocks(text);
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[0],
            ("CERTIFICATE".to_owned(), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_owned())
        );
        assert_eq!(found[1].0, "PRIVATE KEY");
        assert_eq!(certificates(text), [found[0].1.clone()]);
    }

    #[test]
    fn an_unfinished_block_is_not_a_block() {
        assert!(blocks("-----BEGIN CERTIFICATE-----\nAAAA\n").is_empty());
    }

    #[test]
    fn encode_wraps_at_64_and_reads_back() {
        let der: Vec<u8> = (0..=255).collect();
        let text = encode("CERTIFICATE", &der);
        assert!(text.lines().all(|l| l.len() <= 64));
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        assert_eq!(Base64::decode_vec(&body).unwrap(), der);
        assert_eq!(certificates(&text), std::slice::from_ref(&text));
    }
}
