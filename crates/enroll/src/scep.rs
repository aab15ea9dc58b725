//! One SCEP enrollment (RFC 8894).

use camera_pki::SanName;

use crate::settings::ScepSettings;
use crate::{Done, Failure, Host};

pub(crate) async fn enroll(
    _settings: &ScepSettings,
    _names: &[SanName],
    _host: &dyn Host,
    _progress: &(dyn Fn(String) + Send + Sync),
) -> Result<Done, Failure> {
    Err(Failure::new("SCEP is not wired yet"))
}
