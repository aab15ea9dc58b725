//! The program's `main`, callable as a library function so that one multi-call binary
//! (`camera-https`, BusyBox style) can hold both camera programs. `src/bin/camera-web.rs` is
//! `fn main() -> std::process::ExitCode { camera_web::entry::main_entry() }`.

use std::process::ExitCode;

use crate::log;
use crate::respawn;
use crate::server::{Options, Server, StartError};
use camera_config::{normalize, CommonArgs, ConfigError, MissingValue};

const USAGE: &str = "usage: camera-web [--config FILE] [--state-dir DIR] [--run-dir DIR] [--https ADDR:PORT] [--http ADDR:PORT|off] [--respawn]";

/// Why the program stopped; printed as one line with its causes.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}; {USAGE}")]
    Usage(String),
    #[error("{0}; {USAGE}")]
    MissingValue(#[from] MissingValue),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot start the runtime")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Start(#[from] StartError),
}

/// `camera-web` with the process's own arguments.
pub fn main_entry() -> ExitCode {
    main_with_args(std::env::args().skip(1))
}

/// `camera-web` with the arguments after the program name.
pub fn main_with_args(args: impl Iterator<Item = String>) -> ExitCode {
    // No core dumps (they would hold keys) and no ptrace by other users' processes.
    let _ = nix::sys::prctl::set_dumpable(false);
    let (options, respawn) = match options(args) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => return fail(&e),
    };
    if respawn {
        respawn::supervise(|ready| serve(&options, ready))
    } else {
        serve(&options, &|| {})
    }
}

fn fail(e: &CliError) -> ExitCode {
    log::info(&format!("camera-web: {}", log::chain(e)));
    ExitCode::FAILURE
}

/// Runs the server until SIGTERM or SIGINT; `ready` is called once it listens.
fn serve(options: &Options, ready: &dyn Fn()) -> ExitCode {
    let result = (|| -> Result<(), CliError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(4)
            .build()
            .map_err(CliError::Runtime)?;
        runtime.block_on(async {
            let server = Server::start(options.clone()).await?;
            let https = server.https_addr().map(|a| a.to_string()).unwrap_or_default();
            let http = server.http_addr().map(|a| a.to_string()).unwrap_or_else(|| "off".into());
            log::info(&format!("camera-web: listening on https://{https} (HTTP {http})"));
            ready();
            tokio::select! {
                () = server.run() => {}
                _ = tokio::signal::ctrl_c() => log::info("camera-web: interrupted, stopping"),
                () = terminate() => log::info("camera-web: SIGTERM, stopping"),
            }
            Ok(())
        })
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// The options, and whether to run under the [`respawn`] supervisor; `None` after `--help`.
fn options(args: impl Iterator<Item = String>) -> Result<Option<(Options, bool)>, CliError> {
    let mut common = CommonArgs::default();
    let (mut https, mut http, mut respawn) = (None, None, false);
    let mut args = normalize(args);
    while let Some(arg) = args.next() {
        if common.take(&arg, &mut args)? {
            continue;
        }
        match arg.as_str() {
            "--https" => https = Some(args.next().ok_or_else(|| CliError::Usage("--https needs ADDR:PORT".into()))?),
            "--http" => {
                http = Some(args.next().ok_or_else(|| CliError::Usage("--http needs ADDR:PORT or off".into()))?)
            }
            "--respawn" => respawn = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => return Err(CliError::Usage(format!("unknown argument {other:?}"))),
        }
    }
    let file = common.config()?;
    let mut web = file.web;
    if let Some(addr) = https {
        web.https = addr.parse().map_err(|_| {
            CliError::Usage(format!("--https {addr:?} is not ADDR:PORT (e.g. [::]:443 or 0.0.0.0:8443)"))
        })?;
    }
    match http.as_deref() {
        None => {}
        Some("off") => web.http = None,
        Some(addr) => {
            web.http =
                Some(addr.parse().map_err(|_| CliError::Usage(format!("--http {addr:?} is not ADDR:PORT or off")))?)
        }
    }
    Ok(Some((
        Options {
            layout: common.layout(),
            camera: file.camera,
            web,
            enrollment: file.enrollment,
            dot1x: file.dot1x,
            pbkdf2_iterations: None,
        },
        respawn,
    )))
}

async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
