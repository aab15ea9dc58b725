//! The ACME server's answers (`camera_acme::wire`): directory, account, order, authorization,
//! challenge, problem document, renewal information (RFC 9773) and the PEM certificate chain, each
//! parsed from the same bytes as the client parses them (size-bounded, never panicking).
//!
//! Input: one answer body (the client reads at most 1 MiB).

#![no_main]

use camera_acme::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wire::parse_directory(data);
    let _ = wire::parse_account(data);
    let _ = wire::parse_order(data);
    let _ = wire::parse_authorization(data);
    let _ = wire::parse_challenge(data);
    if let Ok(problem) = wire::parse_problem(data) {
        // What an installer reads must stay one clean line.
        assert!(!problem.to_string().chars().any(char::is_control), "control character in {problem}");
    }
    if let Ok(info) = camera_acme::ari::parse_renewal_info(data, None) {
        assert!(info.start_unix <= info.end_unix, "{info:?}");
    }
    // The certificate in service, as the camera reads its CertID.
    let _ = camera_acme::ari::cert_id(data);
    let _ = wire::parse_pem_chain(data);
});
