//! Recording a security event from the web server.

use std::net::IpAddr;

use camera_events::{EventKind, EventLog};

use crate::log;

/// Records a security event; a failed write is logged, never fatal to what caused it.
pub fn record_event(events: &EventLog, kind: EventKind, client: Option<IpAddr>, message: impl Into<String>) {
    if let Err(e) = events.record(kind, client, message) {
        log::warn(&format!("camera-web: the security event log cannot be written: {e}"));
    }
}
