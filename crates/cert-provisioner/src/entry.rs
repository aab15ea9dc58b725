//! The program's `main`, callable as a library function so that one multi-call binary
//! (`camera-https`, BusyBox style) can hold both camera programs. `src/bin/cert-provisioner.rs` is
//! `fn main() -> std::process::ExitCode { cert_provisioner::entry::main_entry() }`.

use std::ops::ControlFlow;
use std::process::ExitCode;

use camera_config::{normalize, CommonArgs, ConfigError, MissingValue};
use camera_log as log;

use camera_provision::{provision, watch, ProvisionError};

const USAGE: &str = "usage: cert-provisioner [--config FILE] [--state-dir DIR] [--run-dir DIR] [--watch | --new-ca]";

/// Why the program stopped; printed as one line with its causes.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}; {USAGE}")]
    Usage(String),
    #[error("{0}; {USAGE}")]
    MissingValue(#[from] MissingValue),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
}

/// `cert-provisioner` with the process's own arguments.
pub fn main_entry() -> ExitCode {
    main_with_args(std::env::args().skip(1))
}

/// `cert-provisioner` with the arguments after the program name.
pub fn main_with_args(args: impl Iterator<Item = String>) -> ExitCode {
    // No core dumps (they would hold the CA key) and no ptrace by other users' processes.
    let _ = nix::sys::prctl::set_dumpable(false);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::info(&format!("cert-provisioner: {}", log::chain(&e)));
            ExitCode::FAILURE
        }
    }
}

fn run(args: impl Iterator<Item = String>) -> Result<(), CliError> {
    let mut common = CommonArgs::default();
    let (mut watch_mode, mut new_ca) = (false, false);
    let mut args = normalize(args);
    while let Some(arg) = args.next() {
        if common.take(&arg, &mut args)? {
            continue;
        }
        match arg.as_str() {
            "--watch" => watch_mode = true,
            "--new-ca" => new_ca = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(CliError::Usage(format!("unknown argument {other:?}"))),
        }
    }
    if watch_mode && new_ca {
        return Err(CliError::Usage("--new-ca is a one-off action and cannot be combined with --watch".into()));
    }
    let config = common.config()?.camera;
    let layout = common.layout();
    if new_ca {
        let old = provision::retire_ca(&layout)?;
        log::warn(&format!(
            "cert-provisioner: --new-ca: the camera CA {} was deleted; restart camera-web (/etc/init.d/S60camera-web restart) and import the new cacert.crt everywhere",
            old.as_deref().unwrap_or("(none)")
        ));
    }
    let outcome = provision(&layout, &config)?;
    for warning in &outcome.warnings {
        log::warn(warning);
    }
    println!("cert-provisioner: {}", log::escape(&outcome.summary()));
    if watch_mode {
        watch::watch(&layout, &config, outcome.minted, |minted, reason| {
            let names: Vec<String> = minted.names.iter().map(ToString::to_string).collect();
            log::info(&format!("cert-provisioner: re-minted because {reason}: now for {}", names.join(", ")));
            ControlFlow::Continue(())
        })?;
    }
    Ok(())
}
