//! The program's `main`, callable as a library function so that one multi-call binary
//! (`camera-https`, BusyBox style) can hold both camera programs. `src/bin/camera-web.rs` is
//! `fn main() -> std::process::ExitCode { camera_web::entry::main_entry() }`.

use std::process::ExitCode;

use crate::log;
use crate::respawn;
use crate::server::{Options, Server};
use camera_config::{normalize, CommonArgs};

const USAGE: &str = "usage: camera-web [--config FILE] [--state-dir DIR] [--run-dir DIR] [--https ADDR:PORT] [--http ADDR:PORT|off] [--respawn]";

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
        Err(reason) => return fail(&reason),
    };
    if respawn {
        respawn::supervise(|ready| serve(&options, ready))
    } else {
        serve(&options, &|| {})
    }
}

fn fail(reason: &str) -> ExitCode {
    log::info(&format!("camera-web: {reason}"));
    ExitCode::FAILURE
}

/// Runs the server until SIGTERM or SIGINT; `ready` is called once it listens.
fn serve(options: &Options, ready: &dyn Fn()) -> ExitCode {
    let result = (|| -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(4)
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))?;
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
        Err(reason) => fail(&reason),
    }
}

/// The options, and whether to run under the [`respawn`] supervisor; `None` after `--help`.
fn options(args: impl Iterator<Item = String>) -> Result<Option<(Options, bool)>, String> {
    let mut common = CommonArgs::default();
    let (mut https, mut http, mut respawn) = (None, None, false);
    let mut args = normalize(args);
    while let Some(arg) = args.next() {
        if common.take(&arg, &mut args).map_err(|e| e.to_string())? {
            continue;
        }
        match arg.as_str() {
            "--https" => https = Some(args.next().ok_or("--https needs ADDR:PORT")?),
            "--http" => http = Some(args.next().ok_or("--http needs ADDR:PORT or off")?),
            "--respawn" => respawn = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => return Err(format!("unknown argument {other:?}; {USAGE}")),
        }
    }
    let file = common.config().map_err(|e| log::chain(&e))?;
    let mut web = file.web;
    if let Some(addr) = https {
        web.https =
            addr.parse().map_err(|_| format!("--https {addr:?} is not ADDR:PORT (e.g. [::]:443 or 0.0.0.0:8443)"))?;
    }
    match http.as_deref() {
        None => {}
        Some("off") => web.http = None,
        Some(addr) => web.http = Some(addr.parse().map_err(|_| format!("--http {addr:?} is not ADDR:PORT or off"))?),
    }
    Ok(Some((
        Options {
            layout: common.layout(),
            camera: file.camera,
            web,
            enrollment: file.enrollment,
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
