//! `firmware <task>`: firmware images for the QEMU boards and the full-system test. `cargo xtask
//! image | qemu | system-test` run it (`cargo run -p firmware -- <task>`).
//!
//! - `image --board B`: a bootable image in `target/firmware/B/`: Debian's kernel, a BusyBox
//!   initramfs holding our binaries, the board skeleton and `rootfs-overlay/`, and a persistent
//!   ext4 disk for the state dir ([`image`]).
//! - `qemu --board B [--port N] [--boot-time N]`: boots it with HTTPS forwarded to 127.0.0.1
//!   only; `--boot-time N` instead boots N times headless and prints boot-to-first-HTTPS ([`qemu`]).
//! - `system-test`: boots the aarch64 image and checks the whole story from the host, then the
//!   armv7 image ([`system_test`]).
//! - `fetch`: only the Debian packages of every board, into the cache (no build), so that
//!   `cargo xtask test` downloads them while it compiles.
//!
//! The board's data (kernel package, modules, QEMU machine) is in `board/B/board.conf` and
//! `board/B/modules` ([`board`]); Debian packages are fetched with apt into a private state
//! directory and cached in `target/firmware-cache/` ([`debian`]).

mod board;
mod cpio;
mod debian;
mod image;
mod qemu;
mod system_test;

use std::path::PathBuf;

use task_support::{target_dir, Result};

use board::Board;

/// `target/firmware/<board>/`: what `image` writes and `qemu` boots.
fn out_dir(board: &Board) -> PathBuf {
    target_dir().join("firmware").join(&board.name)
}

/// `target/firmware-cache/`: downloads and unpacked packages, kept across builds (CI may cache it).
fn cache_dir() -> PathBuf {
    target_dir().join("firmware-cache")
}

/// Parses `--board NAME` (default `qemu-aarch64`) and the task's own flags.
struct Args {
    board: String,
    flags: Vec<(String, Option<String>)>,
}

impl Args {
    fn parse(args: impl Iterator<Item = String>, valued: &[&str], switches: &[&str]) -> Result<Self> {
        let mut board = "qemu-aarch64".to_owned();
        let mut flags = Vec::new();
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (arg.clone(), None),
            };
            if name == "--board" || valued.contains(&name.as_str()) {
                let value = inline.or_else(|| args.next()).ok_or_else(|| format!("{name} needs a value"))?;
                if name == "--board" {
                    board = value;
                } else {
                    flags.push((name, Some(value)));
                }
            } else if switches.contains(&name.as_str()) {
                flags.push((name, None));
            } else {
                return Err(format!("unknown argument {arg}"));
            }
        }
        Ok(Self { board, flags })
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.flags.iter().rev().find(|(n, _)| n == name).and_then(|(_, v)| v.as_deref())
    }

    fn has(&self, name: &str) -> bool {
        self.flags.iter().any(|(n, _)| n == name)
    }
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let result = match task.as_str() {
        "image" => image_task(args),
        "qemu" => qemu_task(args),
        "system-test" => system_test_task(args),
        "fetch" => fetch_task(args),
        _ => Err("usage: firmware <image|qemu|system-test|fetch> [ARGS...] (cargo xtask runs it)".into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("firmware: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `firmware fetch`: every board's Debian packages into the cache.
fn fetch_task(mut args: impl Iterator<Item = String>) -> Result {
    if let Some(arg) = args.next() {
        return Err(format!("fetch takes no arguments, not {arg:?}"));
    }
    for name in board::known_boards() {
        let board = Board::load(&name)?;
        eprintln!("firmware: fetching the Debian packages of {name}");
        image::fetch_packages(&board)?;
    }
    Ok(())
}

/// `cargo xtask image --board B [--no-build]`.
fn image_task(args: impl Iterator<Item = String>) -> Result {
    let args = Args::parse(args, &[], &["--no-build"])?;
    let board = Board::load(&args.board)?;
    let image = image::build(&board, !args.has("--no-build"))?;
    println!("{}", image.describe());
    Ok(())
}

/// `cargo xtask qemu --board B [--port N] [--http-port N] [--boot-time N]`.
fn qemu_task(args: impl Iterator<Item = String>) -> Result {
    let args = Args::parse(args, &["--port", "--http-port", "--boot-time"], &[])?;
    let board = Board::load(&args.board)?;
    let image = match image::Image::existing(&board) {
        Ok(image) => image,
        Err(_) => image::build(&board, true)?,
    };
    if let Some(n) = args.value("--boot-time") {
        let n: usize = n.parse().map_err(|_| format!("--boot-time wants a count, not {n}"))?;
        return qemu::measure_boot(&image, n.max(1));
    }
    let port = |flag: &str, default: u16| -> Result<u16> {
        args.value(flag).map_or(Ok(default), |p| p.parse().map_err(|_| format!("{flag} wants a port number, not {p}")))
    };
    qemu::interactive(&image, port("--port", 8443)?, port("--http-port", 8080)?)
}

/// `cargo xtask system-test [--no-build] [--skip-armv7]` (`--no-build`: take the binaries
/// already in `target/<triple>/release/`; the images are assembled anyway).
fn system_test_task(args: impl Iterator<Item = String>) -> Result {
    let args = Args::parse(args, &[], &["--no-build", "--skip-armv7"])?;
    system_test::run(!args.has("--no-build"), !args.has("--skip-armv7"))
}
