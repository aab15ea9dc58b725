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

/// The release musl build links no unwinder. It has no unwind tables (build.rs discards
/// `.eh_frame`) and aborts on panic, so the unwinder the standard library pulls in could never
/// find a frame nor unwind one. These definitions take the place of libunwind's: a backtrace walk
/// ends at once (a panic still prints its message, with the empty backtrace it printed before, and
/// aborts), and what only unwinding calls aborts. With the unwinder go the backtrace symbolizer it
/// would feed (DWARF reader, demangler, inflater): 170 KB of the shipped binary.
#[cfg(all(panic = "abort", target_env = "musl", not(debug_assertions)))]
mod no_unwinder {
    use std::ffi::{c_int, c_void};

    /// `_URC_END_OF_STACK`: the walk is over.
    const END_OF_STACK: c_int = 5;

    // SAFETY: same C signature as libunwind's `_Unwind_Backtrace`; it calls nothing and touches no
    // memory, so it is sound for any arguments.
    #[unsafe(no_mangle)]
    extern "C" fn _Unwind_Backtrace(_trace: *const c_void, _argument: *mut c_void) -> c_int {
        END_OF_STACK
    }

    // Only an unwinder in the middle of unwinding calls the rest (the personality routine,
    // landing pads): never, in a binary that aborts on panic and holds no C++. Each has
    // libunwind's C signature and aborts.

    // SAFETY (each of the eight below): libunwind's signature; never returns, touches no memory.
    #[unsafe(no_mangle)]
    extern "C" fn _Unwind_Resume(_exception: *mut c_void) -> ! {
        std::process::abort()
    }
    // SAFETY: as above.
    #[unsafe(no_mangle)]
    extern "C" fn _Unwind_GetLanguageSpecificData(_context: *mut c_void) -> *mut c_void {
        std::process::abort()
    }
    // SAFETY: as above.
    #[unsafe(no_mangle)]
    extern "C" fn _Unwind_GetIPInfo(_context: *mut c_void, _before_instruction: *mut c_int) -> usize {
        std::process::abort()
    }
    // SAFETY: as above.
    #[unsafe(no_mangle)]
    extern "C" fn _Unwind_GetRegionStart(_context: *mut c_void) -> usize {
        std::process::abort()
    }
    // SAFETY: as above.
    #[unsafe(no_mangle)]
    extern "C" fn _Unwind_SetGR(_context: *mut c_void, _register: c_int, _value: usize) {
        std::process::abort()
    }
    // SAFETY: as above.
    #[unsafe(no_mangle)]
    extern "C" fn _Unwind_SetIP(_context: *mut c_void, _value: usize) {
        std::process::abort()
    }
    // SAFETY: as above.
    #[unsafe(no_mangle)]
    extern "C" fn _Unwind_GetTextRelBase(_context: *mut c_void) -> usize {
        std::process::abort()
    }
    // SAFETY: as above.
    #[unsafe(no_mangle)]
    extern "C" fn _Unwind_GetDataRelBase(_context: *mut c_void) -> usize {
        std::process::abort()
    }
}
