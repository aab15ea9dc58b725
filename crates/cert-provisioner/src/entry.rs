//! The program's `main`, callable as a library function so that one multi-call binary
//! (`camera-https`, BusyBox style) can hold both camera programs. `src/bin/cert-provisioner.rs` is
//! `fn main() -> std::process::ExitCode { cert_provisioner::entry::main_entry() }`.

use std::ops::ControlFlow;
use std::process::ExitCode;

use crate::cli::{normalize, CommonArgs};
use crate::{log, provision, watch};

const USAGE: &str = "usage: cert-provisioner [--config FILE] [--state-dir DIR] [--run-dir DIR] [--watch | --new-ca]";

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
        Err(reason) => {
            eprintln!("cert-provisioner: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: impl Iterator<Item = String>) -> Result<(), String> {
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
            other => return Err(format!("unknown argument {other:?}; {USAGE}")),
        }
    }
    if watch_mode && new_ca {
        return Err(format!("--new-ca is a one-off action and cannot be combined with --watch; {USAGE}"));
    }
    let config = common.config()?.camera;
    let layout = common.layout();
    if new_ca {
        let old = provision::retire_ca(&layout).map_err(|e| e.to_string())?;
        log::warn(&format!(
            "cert-provisioner: --new-ca: the camera CA {} was deleted; restart camera-web (/etc/init.d/S60camera-web restart) and import the new cacert.crt everywhere",
            old.as_deref().unwrap_or("(none)")
        ));
    }
    let outcome = provision(&layout, &config).map_err(|e| e.to_string())?;
    for warning in &outcome.warnings {
        log::warn(warning);
    }
    println!("cert-provisioner: {}", outcome.summary());
    if watch_mode {
        watch::watch(&layout, &config, outcome.minted, |minted, reason| {
            let names: Vec<String> = minted.names.iter().map(ToString::to_string).collect();
            log::info(&format!("cert-provisioner: re-minted because {reason}: now for {}", names.join(", ")));
            ControlFlow::Continue(())
        })
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}
