//! `cert-provisioner [--config FILE] [--state-dir DIR] [--run-dir DIR] [--watch]`

use std::ops::ControlFlow;
use std::process::ExitCode;

use cert_provisioner::cli::{normalize, CommonArgs};
use cert_provisioner::{log, provision, watch};

const USAGE: &str = "usage: cert-provisioner [--config FILE] [--state-dir DIR] [--run-dir DIR] [--watch]";

fn run() -> Result<(), String> {
    let mut common = CommonArgs::default();
    let mut watch_mode = false;
    let mut args = normalize(std::env::args().skip(1));
    while let Some(arg) = args.next() {
        if common.take(&arg, &mut args)? {
            continue;
        }
        match arg.as_str() {
            "--watch" => watch_mode = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}; {USAGE}")),
        }
    }
    let config = common.config()?.camera;
    let layout = common.layout();
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

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("cert-provisioner: {reason}");
            ExitCode::FAILURE
        }
    }
}
