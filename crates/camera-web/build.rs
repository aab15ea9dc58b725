//! Stores the UI's assets gzip-compressed: browsers take them that way, and the text form would
//! cost three times the flash.

use std::io::Write;
use std::path::PathBuf;

const ASSETS: [&str; 3] = ["index.html", "app.js", "app.css"];

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for name in ASSETS {
        let source = format!("assets/{name}");
        println!("cargo:rerun-if-changed={source}");
        let text = std::fs::read(&source).unwrap_or_else(|e| panic!("cannot read {source}: {e}"));
        // No file name and a zero time in the header: the same assets give the same bytes.
        let mut encoder = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::best());
        encoder.write_all(&text).expect("compressing into memory");
        let gzip = encoder.finish().expect("compressing into memory");
        std::fs::write(out.join(format!("{name}.gz")), gzip).expect("cannot write to OUT_DIR");
    }
}
