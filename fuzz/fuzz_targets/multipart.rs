//! `camera_web::multipart`: the `Content-Type` header's boundary and the `multipart/form-data`
//! body of the upload form, then what `PUT /api/v1/certificate` does with the parts.
//!
//! Input: the Content-Type value, a newline, then the body.

#![no_main]

use camera_web::multipart;
use libfuzzer_sys::fuzz_target;

/// As in `camera_web::api::upload`.
const MAX_PARTS: usize = 8;

fuzz_target!(|data: &[u8]| {
    let Some(newline) = data.iter().position(|&b| b == b'\n') else { return };
    let (content_type, body) = (&data[..newline], &data[newline + 1..]);
    let Ok(content_type) = std::str::from_utf8(content_type) else { return };
    let Some(boundary) = multipart::boundary(content_type) else { return };
    assert!(!boundary.is_empty() && boundary.len() <= 70, "boundary {boundary:?}");
    let Ok(parts) = multipart::parse(body, &boundary, MAX_PARTS) else { return };
    assert!(parts.len() <= MAX_PARTS);
    for part in &parts {
        // Every part's data lies inside the body, between a header block and a delimiter.
        assert!(part.data.len() <= body.len());
        let _ = std::str::from_utf8(&part.data);
        let _ = part.name.chars().take(40).collect::<String>();
    }
});
