//! The command-line flags both programs take: `--config`, `--state-dir`, `--run-dir`. Each
//! program parses its own flags around these. Hand-written: a few flags do not need a parser
//! crate on a camera's flash.

use std::path::PathBuf;

use camera_state::Layout;

use crate::{ConfigError, ConfigFile, DEFAULT_RUN_DIR, DEFAULT_STATE_DIR};

/// A flag was given without its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag} needs a value")]
pub struct MissingValue {
    pub flag: String,
}

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
    pub fn take(&mut self, flag: &str, rest: &mut impl Iterator<Item = String>) -> Result<bool, MissingValue> {
        let slot = match flag {
            "--config" => &mut self.config,
            "--state-dir" => &mut self.state_dir,
            "--run-dir" => &mut self.run_dir,
            _ => return Ok(false),
        };
        let value = rest.next().ok_or_else(|| MissingValue { flag: flag.to_owned() })?;
        *slot = Some(PathBuf::from(value));
        Ok(true)
    }

    /// The state and run directories: as given, else the defaults.
    pub fn layout(&self) -> Layout {
        Layout::new(
            self.state_dir.clone().unwrap_or_else(|| DEFAULT_STATE_DIR.into()),
            self.run_dir.clone().unwrap_or_else(|| DEFAULT_RUN_DIR.into()),
        )
    }

    /// The configuration file: as given, else the default one (or the defaults if it is missing).
    pub fn config(&self) -> Result<ConfigFile, ConfigError> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn both_spellings_work_and_other_flags_are_left_alone() {
        let mut common = CommonArgs::default();
        let mut rest = normalize(args(&["--state-dir=/s", "--run-dir", "/r", "--watch"]).into_iter());
        let mut others = Vec::new();
        while let Some(flag) = rest.next() {
            if !common.take(&flag, &mut rest).unwrap() {
                others.push(flag);
            }
        }
        assert_eq!(others, ["--watch"]);
        let layout = common.layout();
        assert_eq!(layout.state_dir, PathBuf::from("/s"));
        assert_eq!(layout.run_dir, PathBuf::from("/r"));
        assert_eq!(CommonArgs::default().layout().state_dir, PathBuf::from(DEFAULT_STATE_DIR));
    }

    #[test]
    fn a_flag_without_its_value_is_refused() {
        let mut common = CommonArgs::default();
        let e = common.take("--config", &mut std::iter::empty()).unwrap_err();
        assert_eq!(e.to_string(), "--config needs a value");
    }
}
