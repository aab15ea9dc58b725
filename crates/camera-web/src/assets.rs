//! The UI, compiled into the binary: no external assets, works offline. Stored gzip-compressed
//! (see `build.rs`) and sent that way: every browser takes gzip, and keeping a text copy or an
//! inflater for clients that refuse it would cost the flash the compression saves.

/// One file of the UI.
#[derive(Debug)]
pub struct Asset {
    pub content_type: &'static str,
    /// The file as one gzip member (RFC 1952).
    pub gzip: &'static [u8],
}

pub const INDEX_HTML: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    gzip: include_bytes!(concat!(env!("OUT_DIR"), "/index.html.gz")),
};
pub const APP_JS: Asset = Asset {
    content_type: "text/javascript; charset=utf-8",
    gzip: include_bytes!(concat!(env!("OUT_DIR"), "/app.js.gz")),
};
pub const APP_CSS: Asset =
    Asset { content_type: "text/css; charset=utf-8", gzip: include_bytes!(concat!(env!("OUT_DIR"), "/app.css.gz")) };

/// Whether a request's `Accept-Encoding` refuses gzip (RFC 9110 section 12.5.3): no header
/// takes any coding; a header takes gzip when it lists it (or `*`) without `q=0`.
pub fn refuses_gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|value| !accepts_gzip(value))
}

fn accepts_gzip(accept_encoding: &str) -> bool {
    let mut gzip = None;
    let mut any = None;
    for item in accept_encoding.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let refused = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .or_else(|| p.strip_prefix("Q="))
                .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
        });
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(!refused);
        } else if coding == "*" {
            any = Some(!refused);
        }
    }
    gzip.or(any).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_inflate_to_the_files_they_were_built_from() {
        for (asset, source) in [
            (&INDEX_HTML, &include_bytes!("../assets/index.html")[..]),
            (&APP_JS, &include_bytes!("../assets/app.js")[..]),
            (&APP_CSS, &include_bytes!("../assets/app.css")[..]),
        ] {
            assert_eq!(&asset.gzip[..3], [0x1f, 0x8b, 8], "a gzip member with DEFLATE");
            let mut text = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(asset.gzip), &mut text).unwrap();
            assert_eq!(text, source);
            assert!(asset.gzip.len() * 2 < source.len(), "compression pays");
        }
    }

    #[test]
    fn accept_encoding_is_read_as_rfc_9110_says() {
        for (value, gzip) in [
            ("gzip, deflate, br, zstd", true),
            ("br;q=1.0, gzip;q=0.8, *;q=0.1", true),
            ("GZIP", true),
            ("x-gzip", true),
            ("*", true),
            ("", false),
            ("identity", false),
            ("br", false),
            ("gzip;q=0", false),
            ("gzip; q=0.000, *", false),
            ("*;q=0", false),
            ("deflate, *;q=0.5", true),
        ] {
            assert_eq!(refuses_gzip(Some(value)), !gzip, "{value:?}");
        }
        assert!(!refuses_gzip(None), "no Accept-Encoding: any coding is acceptable");
    }
}
