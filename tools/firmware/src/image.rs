//! `cargo xtask image --board B`: assembles `target/firmware/B/` the way a Buildroot build
//! would, with Debian's packages in place of Buildroot's own kernel and BusyBox builds:
//!
//! 1. build `cert-provisioner` and `camera-web` for the board's Rust target (release profile);
//! 2. fetch the kernel, `busybox-static` and the board's runtime libraries from Debian;
//! 3. stage the root filesystem: BusyBox (`/init` is BusyBox init), our binaries, the kernel
//!    modules with `/etc/modules.load` in dependency order, then `board/qemu-common/rootfs/`
//!    (the board skeleton: inittab, rcS/rcK, mounts, modules, network), then `rootfs-overlay/`
//!    (our init scripts and default config), then the post-build step
//!    (`board/qemu-common/post-build.sh` describes it; [`post_build`] does it);
//! 4. write the initramfs (newc cpio, gzip), copy `vmlinuz`, create the state disk once.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::debian::{Apt, Kernel, Unpacked};
use super::{cpio, out_dir, Board};
use task_support::{cargo, root, run, target_dir, Result};

/// The binaries our component ships, installed in `/usr/bin`.
pub const BINARIES: &[&str] = &["cert-provisioner", "camera-web"];
/// The multi-call binary (crates/camera-multicall) that ships; the programs are links to it.
pub const MULTICALL_BIN: &str = "camera-https";
const MULTICALL_PACKAGE: &str = "camera-multicall";

/// A built image: what QEMU needs to boot a board.
#[derive(Debug, Clone)]
pub struct Image {
    pub board: Board,
    pub dir: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The persistent state disk, kept across builds and boots.
    pub disk: PathBuf,
}

impl Image {
    fn paths(board: &Board) -> Self {
        let dir = out_dir(board);
        Self {
            board: board.clone(),
            kernel: dir.join("vmlinuz"),
            initrd: dir.join("initramfs.cpio.gz"),
            disk: dir.join("state.ext4"),
            dir,
        }
    }

    /// The image `cargo xtask image` built earlier.
    pub fn existing(board: &Board) -> Result<Self> {
        let image = Self::paths(board);
        for f in [&image.kernel, &image.initrd] {
            if !f.exists() {
                return Err(format!(
                    "{} is missing: run `cargo xtask image --board {}` first",
                    f.display(),
                    board.name
                ));
            }
        }
        image.ensure_disk()?;
        Ok(image)
    }

    pub fn describe(&self) -> String {
        let size = |p: &Path| {
            std::fs::metadata(p).map(|m| format!("{:.1} MiB", m.len() as f64 / 1048576.0)).unwrap_or_default()
        };
        format!(
            "Image for {} in {}:\n  kernel    {} ({})\n  initramfs {} ({})\n  state     {} ({}, kept across builds and boots)\nBoot it: cargo xtask qemu --board {}",
            self.board.name,
            self.dir.display(),
            self.kernel.display(),
            size(&self.kernel),
            self.initrd.display(),
            size(&self.initrd),
            self.disk.display(),
            size(&self.disk),
            self.board.name
        )
    }

    /// Creates the ext4 state disk if there is none (never overwrites one: it holds the CA).
    pub fn ensure_disk(&self) -> Result {
        if !self.disk.exists() {
            make_state_disk(&self.disk, self.board.state_size_mib)?;
        }
        Ok(())
    }
}

/// An empty ext4 file system labelled `camera-state`, as the factory would format the partition.
pub fn make_state_disk(path: &Path, size_mib: u32) -> Result {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let _ = std::fs::remove_file(path);
    run(Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-L", "camera-state"])
        .arg(path)
        .arg(format!("{size_mib}M"))
        .stdout(std::process::Stdio::null()))
}

/// The board's Debian packages, fetched (or found in the cache) and unpacked as far as an image needs.
pub struct Packages {
    /// The kernel package the board's metapackage named (`linux-image-6.1.0-28-arm64`).
    kernel_package: String,
    kernel: Kernel,
    busybox: Unpacked,
    runtime: Vec<Unpacked>,
}

/// Fetches what the board's image takes from Debian; later calls find it in the cache. Needs no
/// build, so `cargo xtask test` runs it (`firmware fetch`) while it compiles.
pub fn fetch_packages(board: &Board) -> Result<Packages> {
    let mut apt = Apt::new()?;
    let kernel_pkg = apt.resolve_kernel(&board.kernel_package, &board.debian_arch)?;
    let kernel = Kernel::from_package(&apt.fetch(&kernel_pkg, &board.debian_arch)?, &board.modules)?;
    let busybox = Unpacked::new(&apt.fetch("busybox-static", &board.debian_arch)?)?;
    busybox.extract(&["bin/busybox"])?;
    let mut runtime = Vec::new();
    for pkg in &board.runtime_packages {
        runtime.push(Unpacked::new(&apt.fetch(pkg, &board.debian_arch)?)?);
    }
    Ok(Packages { kernel_package: kernel_pkg, kernel, busybox, runtime })
}

/// Builds the board's image; `build_binaries: false` takes the binaries already in `target/`.
pub fn build(board: &Board, build_binaries: bool) -> Result<Image> {
    let image = Image::paths(board);
    let bin_dir = target_dir().join(&board.rust_target).join("release");
    if build_binaries {
        eprintln!("firmware: building {MULTICALL_BIN} for {}", board.rust_target);
        run(cargo().args(["build", "--release", "--locked", "--target", &board.rust_target, "-p", MULTICALL_PACKAGE]))?;
    }

    let Packages { kernel_package: kernel_pkg, kernel, busybox, runtime } = fetch_packages(board)?;

    // Stage the root filesystem.
    let rootfs = image.dir.join("rootfs");
    if rootfs.exists() {
        std::fs::remove_dir_all(&rootfs).map_err(|e| format!("cannot clear {}: {e}", rootfs.display()))?;
    }
    for d in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "lib",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "var/log",
        "var/lib/camera-https",
        "etc",
        "root",
    ] {
        mkdir(&rootfs.join(d))?;
    }
    copy_file(&busybox.dir.join("bin/busybox"), &rootfs.join("bin/busybox"), Some(0o755))?;
    // The rest of the applet links are made at boot (`busybox --install -s` in inittab).
    symlink("bin/busybox", &rootfs.join("init"))?;
    symlink("../bin/busybox", &rootfs.join("sbin/init"))?;
    symlink("busybox", &rootfs.join("bin/sh"))?;
    let multicall = bin_dir.join(MULTICALL_BIN);
    if !multicall.exists() {
        return Err(format!("{} is missing: build it, or drop --no-build", multicall.display()));
    }
    copy_file(&multicall, &rootfs.join("usr/bin").join(MULTICALL_BIN), Some(0o755))?;
    for b in BINARIES {
        symlink(MULTICALL_BIN, &rootfs.join("usr/bin").join(b))?;
    }
    for file in &board.runtime_files {
        let pkg = runtime.iter().find(|u| u.listing().iter().any(|p| p == file)).ok_or_else(|| {
            format!("{}: runtime file {file} is in none of {}", board.name, board.runtime_packages.join(", "))
        })?;
        pkg.extract(&[file])?;
        copy_file(&pkg.dir.join(file), &rootfs.join(file), None)?;
    }
    let mut load = String::from("# Written by `cargo xtask image` from board/modules: dependencies first.\n");
    for m in &kernel.modules {
        copy_file(&kernel.unpacked.dir.join(m), &rootfs.join(m), Some(0o644))?;
        load.push('/');
        load.push_str(m);
        load.push('\n');
    }
    write(&rootfs.join("etc/modules.load"), &load)?;
    copy_tree(&root().join("board/qemu-common/rootfs"), &rootfs)?;
    copy_tree(&board.dir.join("rootfs"), &rootfs)?;
    copy_tree(&root().join("rootfs-overlay"), &rootfs)?;
    post_build(board, &rootfs)?;

    // The initramfs.
    let cpio_path = image.dir.join("initramfs.cpio");
    let file = std::fs::File::create(&cpio_path).map_err(|e| format!("cannot create {}: {e}", cpio_path.display()))?;
    let mut archive = cpio::Writer::new(std::io::BufWriter::new(file));
    archive.tree(&rootfs, "")?;
    archive.char_device("dev/console", 0o600, 5, 1)?;
    drop(archive.finish()?);
    run(Command::new("gzip").args(["-9", "-n", "-f"]).arg(&cpio_path))?;
    copy_file(&kernel.vmlinuz, &image.kernel, Some(0o644))?;
    image.ensure_disk()?;
    write(&image.dir.join("kernel-release"), &format!("{} ({kernel_pkg})\n", kernel.release))?;
    Ok(image)
}

/// What Buildroot's post-build script would do (`board/qemu-common/post-build.sh` is that
/// script, for a real Buildroot tree): fill the board's values into the skeleton's templates.
fn post_build(board: &Board, rootfs: &Path) -> Result {
    for (file, pairs) in [
        ("etc/fstab", vec![("@STATE_DEVICE@", board.state_device.as_str())]),
        ("etc/default/network", vec![("@ADDRESS@", board.address.as_str()), ("@GATEWAY@", board.gateway.as_str())]),
    ] {
        let path = rootfs.join(file);
        let mut text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        for (from, to) in pairs {
            text = text.replace(from, to);
        }
        write(&path, &text)?;
    }
    write(&rootfs.join("etc/hostname"), &format!("camera-{}\n", board.name))?;
    // Init scripts must be executable whatever the checkout did to their modes.
    let init_d = rootfs.join("etc/init.d");
    for entry in std::fs::read_dir(&init_d).map_err(|e| format!("cannot read {}: {e}", init_d.display()))?.flatten() {
        set_mode(&entry.path(), 0o755)?;
    }
    Ok(())
}

fn mkdir(path: &Path) -> Result {
    std::fs::create_dir_all(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn set_mode(path: &Path, mode: u32) -> Result {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot chmod {}: {e}", path.display()))
}

fn symlink(target: &str, link: &Path) -> Result {
    std::os::unix::fs::symlink(target, link).map_err(|e| format!("cannot link {} -> {target}: {e}", link.display()))
}

/// Copies a file (or a symlink as a symlink) and sets its mode when given.
fn copy_file(from: &Path, to: &Path, mode: Option<u32>) -> Result {
    if let Some(parent) = to.parent() {
        mkdir(parent)?;
    }
    let meta = std::fs::symlink_metadata(from).map_err(|e| format!("cannot stat {}: {e}", from.display()))?;
    let _ = std::fs::remove_file(to);
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(from).map_err(|e| format!("cannot read link {}: {e}", from.display()))?;
        return std::os::unix::fs::symlink(&target, to).map_err(|e| format!("cannot link {}: {e}", to.display()));
    }
    std::fs::copy(from, to).map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    set_mode(to, mode.unwrap_or(meta.permissions().mode() & 0o7777))
}

/// Copies a directory tree over another (an overlay); a missing source is nothing to copy.
fn copy_tree(from: &Path, to: &Path) -> Result {
    let Ok(entries) = std::fs::read_dir(from) else { return Ok(()) };
    for entry in entries.flatten() {
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            mkdir(&dst)?;
            copy_tree(&src, &dst)?;
        } else {
            copy_file(&src, &dst, None)?;
        }
    }
    Ok(())
}
