//! `settings.json` in the 802.1X directory: the installer's settings and what the camera needs to
//! remember about them (what `wpa_supplicant.conf` holds and whether it authenticated, a trial in
//! progress, the last rollback). Replaced whole with `write_atomic`; it is the commit point of
//! every change, `wpa_supplicant.conf` is rendered from it.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::conf::NetConfig;
use crate::Settings;

pub const RECORD: &str = "settings.json";
pub const CONF: &str = "wpa_supplicant.conf";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Record {
    pub settings: Option<Settings>,
    /// The configuration `wpa_supplicant.conf` holds (the one the camera boots with).
    pub conf: Option<NetConfig>,
    /// `conf` reached EAP success: on which interface, when.
    pub authenticated: Option<Authenticated>,
    /// A new configuration on trial: in the supplicant, not in `wpa_supplicant.conf`.
    pub trial: Option<TrialMarker>,
    /// The last configuration rolled back, until the next change.
    pub rolled_back: Option<RolledBack>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authenticated {
    pub interface: String,
    pub unix: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialMarker {
    pub config: NetConfig,
    pub started_unix: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolledBack {
    pub reason: String,
    pub unix: u64,
}

impl Record {
    /// Reads the record; Ok(None) when there is none yet. An unreadable record is an error: the
    /// caller must not take it for "no settings" (that would remove the network from the
    /// supplicant and lock the camera out).
    pub fn load(dir: &Path) -> io::Result<Option<Record>> {
        let Some(bytes) = camera_state::read_optional(&dir.join(RECORD))? else { return Ok(None) };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    pub fn save(&self, dir: &Path) -> io::Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        camera_state::write_atomic(&dir.join(RECORD), &text, camera_state::PUBLIC_MODE)
    }

    /// The files a configuration of this record names: the ones to keep.
    pub fn referenced_files(&self) -> Vec<&str> {
        let configs = self.conf.iter().chain(self.trial.as_ref().map(|t| &t.config));
        configs.flat_map(|c| [c.ca_file.as_str(), c.client_file.as_str()]).collect()
    }

    /// Whether `conf` authenticated on `interface`: something to go back to.
    pub fn good_on(&self, interface: &str) -> Option<&NetConfig> {
        self.conf.as_ref().filter(|_| self.authenticated.as_ref().is_some_and(|a| a.interface == interface))
    }
}

/// Removes credential and CA files no configuration of `record` names.
pub fn collect_garbage(dir: &Path, record: &Record) -> io::Result<()> {
    let keep = record.referenced_files();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if crate::conf::is_our_file(name) && !keep.contains(&name) {
            camera_state::remove_durable(&dir.join(name))?;
        }
    }
    Ok(())
}

pub fn conf_path(dir: &Path) -> PathBuf {
    dir.join(CONF)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(tag: &str) -> NetConfig {
        NetConfig {
            identity: "camera-1".into(),
            eapol_version: 1,
            ca_file: format!("server-ca-{tag}.pem"),
            client_file: format!("client-{tag}.pem"),
            client_sha256: "AB".into(),
            client_cn: None,
            domain_match: None,
        }
    }

    #[test]
    fn round_trips_and_collects_what_nothing_names() {
        let dir = camera_test_support::TempDir::new("dot1x-store");
        assert_eq!(Record::load(dir.path()).unwrap(), None);
        let record = Record {
            conf: Some(config("a")),
            authenticated: Some(Authenticated { interface: "eth0".into(), unix: 5 }),
            trial: Some(TrialMarker { config: config("b"), started_unix: 6 }),
            ..Record::default()
        };
        record.save(dir.path()).unwrap();
        assert_eq!(Record::load(dir.path()).unwrap().as_ref(), Some(&record));
        assert!(record.good_on("eth0").is_some() && record.good_on("eth1").is_none());
        for name in ["client-a.pem", "server-ca-a.pem", "client-b.pem", "server-ca-b.pem", "client-c.pem", "other.pem"]
        {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        collect_garbage(dir.path(), &record).unwrap();
        assert!(!dir.join("client-c.pem").exists());
        for kept in ["client-a.pem", "server-ca-a.pem", "client-b.pem", "server-ca-b.pem", "other.pem", RECORD] {
            assert!(dir.join(kept).exists(), "{kept}");
        }
        std::fs::write(dir.join(RECORD), b"{not json").unwrap();
        assert!(Record::load(dir.path()).is_err(), "damage is not taken for no settings");
    }
}
