//! The SCEP server's answers (`camera_scep::fuzzing::parse_untrusted`): GetCACaps, GetCACert
//! (one certificate or a degenerate PKCS#7), and a CertRep (SignedData, EnvelopedData), verified
//! and opened as the client does, against a fixture requester.
//!
//! Input: one answer body (the client reads at most 256 KiB).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    camera_scep::fuzzing::parse_untrusted(data);
});
