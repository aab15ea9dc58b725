//! The `web` section of the configuration file lives in `camera-config`, with the rest of the file;
//! re-exported here so that `crate::config::WebConfig` paths keep working.

pub use camera_config::{TlsProfile, WebConfig};
