//! What camera-dot1x reads from outside: wpa_supplicant's control-socket messages (events, whose
//! certificate subjects the authentication server chooses, and `STATUS` / `LIST_NETWORKS`
//! answers), and 802.1X settings as JSON (the API's body and the config file's section).
//!
//! Input: the first byte picks the reader, the rest is its text.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    match which % 3 {
        0 => {
            for line in text.split('\n') {
                if let Some(event) = camera_dot1x::parse_event(line) {
                    // Whatever was parsed came from the message.
                    let shown = format!("{event:?}");
                    assert!(shown.len() < 64 + 8 * line.len(), "{shown}");
                }
            }
        }
        1 => {
            let _ = camera_dot1x::parse_status(&text);
            let networks = camera_dot1x::parse_networks(&text);
            assert!(networks.len() <= text.lines().count());
        }
        _ => {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
                if let Ok(settings) = camera_dot1x::Settings::from_json(&value) {
                    // Accepted settings pass their own check, and say what they lack.
                    settings.check().expect("accepted settings pass check()");
                    let _ = settings.warnings();
                }
            }
        }
    }
});
