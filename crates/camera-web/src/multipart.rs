//! `multipart/form-data` for the upload form (RFC 7578), over a body already read into memory
//! and size-limited. Only what browsers and curl send: parts with a `name`, optional `filename`.

use zeroize::Zeroizing;

/// One form field. Contents are zeroized on drop: a part may hold a private key or passphrase.
#[derive(Debug)]
pub struct Part {
    pub name: String,
    pub data: Zeroizing<Vec<u8>>,
}

/// Takes the boundary out of a `Content-Type: multipart/form-data; boundary=...` value.
pub fn boundary(content_type: &str) -> Option<String> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|param| {
        let (key, value) = param.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim().trim_matches('"');
        (!value.is_empty() && value.len() <= 70).then(|| value.to_owned())
    })
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > haystack.len() {
        return None;
    }
    haystack[from..].windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// The `name` parameter of a part's Content-Disposition header.
fn part_name(headers: &str) -> Option<String> {
    headers.split("\r\n").find_map(|line| {
        let (key, value) = line.split_once(':')?;
        if !key.trim().eq_ignore_ascii_case("content-disposition") {
            return None;
        }
        value.split(';').find_map(|param| {
            let (k, v) = param.split_once('=')?;
            (k.trim() == "name").then(|| v.trim().trim_matches('"').to_owned())
        })
    })
}

/// Splits a multipart body into parts; at most `max_parts`. The message says what is wrong.
pub fn parse(body: &[u8], boundary: &str, max_parts: usize) -> Result<Vec<Part>, String> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut pos = find(body, delimiter.as_bytes(), 0).ok_or("the form data has no parts")?;
    loop {
        pos += delimiter.len();
        if body.get(pos..pos + 2) == Some(b"--") {
            return Ok(parts);
        }
        if body.get(pos..pos + 2) != Some(b"\r\n") {
            return Err("the form data is malformed (bad boundary line)".into());
        }
        pos += 2;
        let headers_end = find(body, b"\r\n\r\n", pos).ok_or("the form data is malformed (part headers never end)")?;
        let headers =
            std::str::from_utf8(&body[pos..headers_end]).map_err(|_| "the form data has non-text part headers")?;
        let name = part_name(headers).ok_or("a form part has no name")?;
        let data_start = headers_end + 4;
        let next_delimiter = format!("\r\n{delimiter}");
        let data_end = find(body, next_delimiter.as_bytes(), data_start).ok_or("the form data is truncated")?;
        if parts.len() == max_parts {
            return Err(format!("the form has more than {max_parts} fields"));
        }
        parts.push(Part { name, data: Zeroizing::new(body[data_start..data_end].to_vec()) });
        pos = data_end + 2;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_curl_sends() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"certificate\"; filename=\"c.pem\"\r\nContent-Type: application/octet-stream\r\n\r\n-----BEGIN CERTIFICATE-----\r\nabc\r\n-----END CERTIFICATE-----\r\n\r\n--XyZ\r\nContent-Disposition: form-data; name=\"passphrase\"\r\n\r\nsecret\r\n--XyZ--\r\n";
        let parts = parse(body, "XyZ", 8).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "certificate");
        assert!(parts[0].data.ends_with(b"-----END CERTIFICATE-----\r\n"));
        assert_eq!(parts[1].name, "passphrase");
        assert_eq!(&parts[1].data[..], b"secret");
    }

    #[test]
    fn boundary_from_content_type() {
        assert_eq!(boundary("multipart/form-data; boundary=----abc").as_deref(), Some("----abc"));
        assert_eq!(boundary("multipart/form-data; charset=utf-8; boundary=\"q q\"").as_deref(), Some("q q"));
        assert_eq!(boundary("application/json"), None);
    }

    #[test]
    fn broken_bodies_are_errors_not_panics() {
        let good = b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--b--\r\n".to_vec();
        for cut in 0..good.len() {
            let _ = parse(&good[..cut], "b", 8);
        }
        assert!(parse(b"--b\r\n\r\n\r\n--b--", "b", 8).is_err());
        let many: Vec<u8> = (0..10)
            .flat_map(|_| b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n".to_vec())
            .chain(b"--b--".to_vec())
            .collect();
        assert!(parse(&many, "b", 8).unwrap_err().contains("more than 8"));
    }
}
