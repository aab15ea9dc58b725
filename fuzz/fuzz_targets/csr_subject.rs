//! `camera_pki::create_csr`: the subject and subjectAltNames an installer types into the
//! certificate-request form, validated and encoded into a real CSR (EC P-256 keys: RSA key
//! generation takes far too long per input, and the key type does not change the validation).
//!
//! Input: lines (`\n`): C, ST, L, O, OU, CN (an empty line leaves the field out), then one
//! subjectAltName per line. Every request created must read back with `describe_csr`.

#![no_main]

use camera_pki::{create_csr, describe_csr, CsrRequest, CsrSubject, KeyType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n').map(str::to_owned);
    let mut field = || lines.next().filter(|l| !l.is_empty());
    let subject = CsrSubject {
        country: field(),
        state: field(),
        locality: field(),
        organization: field(),
        organizational_unit: field(),
        common_name: field(),
    };
    let request = CsrRequest { subject, subject_alt_names: lines.collect(), key_type: KeyType::EcdsaP256 };
    if let Ok(pending) = create_csr(&request) {
        let info = describe_csr(&pending.csr_der).expect("a CSR the camera made does not parse");
        assert!(!info.subject_alt_names.is_empty(), "a CSR without subjectAltNames");
        let bundle = pending.to_bundle_pem();
        camera_pki::PendingCsr::from_bundle_pem(bundle.as_bytes()).expect("the pending CSR file does not load back");
    }
});
