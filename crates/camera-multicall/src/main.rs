//! `camera-https`: one binary holding both camera programs, chosen by the name it is started
//! under, as BusyBox does. On the camera `/usr/bin/cert-provisioner` and `/usr/bin/camera-web` are
//! (hard or symbolic) links to `/usr/bin/camera-https`; the libraries, ring, rustls and the
//! certificate code are then on flash once instead of twice.
//!
//! `camera-https <program> [ARGS...]` also works, for running it without the links.

use std::process::ExitCode;

const PROGRAMS: &str = "cert-provisioner, camera-web";

fn dispatch(name: &str, args: impl Iterator<Item = String>) -> Option<ExitCode> {
    match name {
        "cert-provisioner" => Some(cert_provisioner::entry::main_with_args(args)),
        "camera-web" => Some(camera_web::entry::main_with_args(args)),
        _ => None,
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_default();
    let name = std::path::Path::new(&argv0).file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
    if let Some(code) = dispatch(&name, &mut args) {
        return code;
    }
    // Started as itself: the program is the first argument.
    match args.next() {
        Some(program) => match dispatch(&program, args) {
            Some(code) => code,
            None => {
                eprintln!("camera-https: unknown program {program:?}; one of: {PROGRAMS}");
                ExitCode::FAILURE
            }
        },
        None => {
            eprintln!("usage: camera-https <program> [ARGS...], or started through a link named after it; programs: {PROGRAMS}");
            ExitCode::FAILURE
        }
    }
}
