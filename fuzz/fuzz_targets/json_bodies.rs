//! The JSON request bodies of camera-web's API, parsed as the routes parse them
//! (`camera_web::api::parse_json`): `POST /api/v1/setup` and `/login` (`{"password": ...}`, then the
//! new-password rules) and `POST /api/v1/csr` (a `camera_pki::CsrRequest`).
//!
//! Input: one request body (the API takes at most 16 KiB).

#![no_main]

use camera_pki::CsrRequest;
use camera_web::api::{parse_json, PasswordBody};
use camera_web::auth::Auth;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_json::<PasswordBody>(data) {
        Ok(body) => {
            let _ = Auth::check_new_password(&body.password);
        }
        Err(e) => {
            assert_eq!(e.into_response().status(), 400);
        }
    }
    match parse_json::<CsrRequest>(data) {
        Ok(request) => {
            let _ = camera_pki::KeyType::parse(request.key_type.as_str()).expect("key type round trip");
        }
        Err(e) => {
            assert_eq!(e.into_response().status(), 400);
        }
    }
});
