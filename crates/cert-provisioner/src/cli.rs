//! Command-line parsing shared by both programs: `--config`, `--state-dir`, `--run-dir` and each
//! program's own flags. Hand-written: four flags do not need a parser crate on a camera's flash.

use std::path::PathBuf;

use camera_state::Layout;

use crate::config::{ConfigFile, DEFAULT_RUN_DIR, DEFAULT_STATE_DIR};

/// The flags both programs take.
#[derive(Debug, Default)]
pub struct CommonArgs {
    pub config: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub run_dir: Option<PathBuf>,
}

impl CommonArgs {
    /// Consumes `flag` (and its value from `rest`) if it is a common flag. `Ok(false)` means the
    /// flag is not ours.
    pub fn take(&mut self, flag: &str, rest: &mut impl Iterator<Item = String>) -> Result<bool, String> {
        let slot = match flag {
            "--config" => &mut self.config,
            "--state-dir" => &mut self.state_dir,
            "--run-dir" => &mut self.run_dir,
            _ => return Ok(false),
        };
        let value = rest.next().ok_or_else(|| format!("{flag} needs a value"))?;
        *slot = Some(PathBuf::from(value));
        Ok(true)
    }

    pub fn layout(&self) -> Layout {
        Layout::new(
            self.state_dir.clone().unwrap_or_else(|| DEFAULT_STATE_DIR.into()),
            self.run_dir.clone().unwrap_or_else(|| DEFAULT_RUN_DIR.into()),
        )
    }

    pub fn config(&self) -> Result<ConfigFile, String> {
        ConfigFile::load(self.config.as_deref())
    }
}

/// Splits `--flag=value` into two arguments so both spellings work.
pub fn normalize(args: impl Iterator<Item = String>) -> std::vec::IntoIter<String> {
    let mut out = Vec::new();
    for arg in args {
        match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                out.push(flag.to_owned());
                out.push(value.to_owned());
            }
            _ => out.push(arg),
        }
    }
    out.into_iter()
}
