//! The program's `main`, callable as a library function so that one multi-call binary
//! (`camera-https`, BusyBox style) can hold both camera programs. `src/bin/camera-web.rs` is
//! `fn main() -> std::process::ExitCode { camera_web::entry::main_entry() }`.

use std::process::ExitCode;

use crate::config::WebConfig;
use crate::respawn;
use crate::server::{Options, Server};
use cert_provisioner::cli::{normalize, CommonArgs};

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
    eprintln!("camera-web: {reason}");
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
            eprintln!("camera-web: listening on https://{https} (HTTP {http})");
            ready();
            tokio::select! {
                () = server.run() => {}
                _ = tokio::signal::ctrl_c() => eprintln!("camera-web: interrupted, stopping"),
                () = terminate() => eprintln!("camera-web: SIGTERM, stopping"),
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
        if common.take(&arg, &mut args)? {
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
    let file = common.config()?;
    let mut web = WebConfig::from_json(&file.web)?;
    if let Some(addr) = https {
        web.https =
            addr.parse().map_err(|_| format!("--https {addr:?} is not ADDR:PORT (e.g. [::]:443 or 0.0.0.0:8443)"))?;
    }
    match http.as_deref() {
        None => {}
        Some("off") => web.http = None,
        Some(addr) => web.http = Some(addr.parse().map_err(|_| format!("--http {addr:?} is not ADDR:PORT or off"))?),
    }
    let enrollment = if file.enrollment.is_null() {
        None
    } else {
        Some(
            camera_enroll::Settings::from_json(file.enrollment.clone())
                .map_err(|e| format!("enrollment section: {e}"))?,
        )
    };
    Ok(Some((
        Options { layout: common.layout(), camera: file.camera, web, enrollment, pbkdf2_iterations: None },
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
