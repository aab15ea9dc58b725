//! Now, as certificate times count.

/// [`camera_state::now_unix`] as `CertificateInfo`'s `*_unix` fields count (signed).
pub fn now() -> i64 {
    i64::try_from(camera_state::now_unix()).unwrap_or(i64::MAX)
}
