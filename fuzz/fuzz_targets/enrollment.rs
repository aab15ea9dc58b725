//! The enrollment settings (`PUT /api/v1/enrollment` and the configuration's `enrollment`
//! section): JSON to `camera_enroll::Settings`, checked, with errors that never quote a secret
//! and a public view that never holds one.
//!
//! Input: one request body (the API takes at most 48 KiB: a 32 KiB trust PEM and the rest).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    match camera_enroll::Settings::from_json(json) {
        Ok(settings) => {
            let shown = serde_json::to_string(&settings.public_view()).expect("the public view serialises");
            let debug = format!("{settings:?}");
            if let camera_enroll::Settings::Scep(scep) = &settings {
                if scep.challenge.expose().len() >= 4 {
                    assert!(!shown.contains(scep.challenge.expose()), "the challenge is in the public view");
                    assert!(!debug.contains(scep.challenge.expose()), "the challenge is in Debug");
                }
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
