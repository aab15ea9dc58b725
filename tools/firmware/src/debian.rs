//! Debian packages for a foreign architecture, fetched without touching the host's package setup:
//! `apt-get download` with a private apt state directory (its own sources list, lists and cache,
//! no `dpkg --add-architecture`), unpacked with `dpkg-deb`, never installed.
//!
//! Cache layout under `target/firmware-cache/`: `apt/` (apt's state), `debs/` (the packages),
//! `unpacked/<package file>/` (only the files taken from each).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::cache_dir;
use task_support::{run, Result};

const MIRROR: &str = "http://deb.debian.org/debian";
const SUITE: &str = "bookworm";
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

pub struct Apt {
    state: PathBuf,
    debs: PathBuf,
    updated: bool,
}

impl Apt {
    pub fn new() -> Result<Self> {
        let state = cache_dir().join("apt");
        let debs = cache_dir().join("debs");
        for dir in
            [state.join("lists/partial"), state.join("cache/archives/partial"), state.join("etc/parts"), debs.clone()]
        {
            std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let sources = format!("deb [arch=arm64,armhf signed-by={KEYRING}] {MIRROR} {SUITE} main\n");
        write(&state.join("etc/sources.list"), sources.as_bytes())?;
        if !state.join("status").exists() {
            write(&state.join("status"), b"")?;
        }
        Ok(Self { state, debs, updated: false })
    }

    fn command(&self, tool: &str) -> Command {
        let s = self.state.display();
        let mut cmd = Command::new(tool);
        for opt in [
            format!("Dir::State={s}"),
            format!("Dir::State::Lists={s}/lists"),
            format!("Dir::State::status={s}/status"),
            format!("Dir::Cache={s}/cache"),
            format!("Dir::Etc::SourceList={s}/etc/sources.list"),
            format!("Dir::Etc::SourceParts={s}/etc/parts"),
            format!("Dir::Etc::PreferencesParts={s}/etc/parts"),
            "APT::Architecture=arm64".into(),
            "APT::Architectures::=arm64".into(),
            "APT::Architectures::=armhf".into(),
            "Acquire::Languages=none".into(),
            "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false".into(),
            "Debug::NoLocking=1".into(),
            "APT::Sandbox::User=root".into(),
        ] {
            cmd.arg("-o").arg(opt);
        }
        cmd
    }

    fn update(&mut self) -> Result {
        if self.updated {
            return Ok(());
        }
        eprintln!("firmware: apt-get update (private state in {})", self.state.display());
        run(self.command("apt-get").args(["update", "-qq"]))?;
        self.updated = true;
        Ok(())
    }

    fn has_lists(&self) -> bool {
        std::fs::read_dir(self.state.join("lists"))
            .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().contains("_Packages")))
            .unwrap_or(false)
    }

    /// The versioned package a metapackage depends on (`linux-image-arm64` →
    /// `linux-image-6.1.0-50-arm64`), remembered so a cached build needs no network.
    pub fn resolve_kernel(&mut self, meta: &str, arch: &str) -> Result<String> {
        let memo = self.debs.join(format!("{meta}_{arch}.resolved"));
        if let Ok(name) = std::fs::read_to_string(&memo) {
            if !name.trim().is_empty() {
                return Ok(name.trim().to_owned());
            }
        }
        if !self.has_lists() {
            self.update()?;
        }
        let out =
            self.command("apt-cache").args(["depends", &format!("{meta}:{arch}")]).stderr(Stdio::inherit()).output();
        let out = out.map_err(|e| format!("cannot run apt-cache: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let name = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Depends: "))
            .map(|d| d.split(':').next().unwrap_or(d).trim())
            .find(|d| d.starts_with("linux-image-"))
            .ok_or_else(|| format!("apt-cache depends {meta}:{arch} names no linux-image package:\n{text}"))?
            .to_owned();
        write(&memo, name.as_bytes())?;
        Ok(name)
    }

    /// The `.deb` of `package` for `arch`, downloaded once.
    pub fn fetch(&mut self, package: &str, arch: &str) -> Result<PathBuf> {
        if let Some(found) = self.cached(package, arch) {
            return Ok(found);
        }
        if !self.has_lists() {
            self.update()?;
        }
        let spec = format!("{package}:{arch}");
        eprintln!("firmware: apt-get download {spec}");
        let mut download = self.command("apt-get");
        download.args(["download", "-qq", &spec]).current_dir(&self.debs);
        if run(&mut download).is_err() {
            // Stale lists name a version the mirror no longer has: refresh once and retry.
            self.update()?;
            run(self.command("apt-get").args(["download", "-qq", &spec]).current_dir(&self.debs))?;
        }
        self.cached(package, arch)
            .ok_or_else(|| format!("apt-get download {spec} left no package in {}", self.debs.display()))
    }

    fn cached(&self, package: &str, arch: &str) -> Option<PathBuf> {
        let (prefix, suffix) = (format!("{package}_"), format!("_{arch}.deb"));
        let mut found: Vec<PathBuf> = std::fs::read_dir(&self.debs)
            .ok()?
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with(&prefix) && n.ends_with(&suffix)
            })
            .map(|e| e.path())
            .collect();
        found.sort();
        found.pop()
    }
}

/// The files of a `.deb`, unpacked on demand into `target/firmware-cache/unpacked/<deb>/`.
pub struct Unpacked {
    deb: PathBuf,
    pub dir: PathBuf,
    listing: Vec<String>,
}

impl Unpacked {
    pub fn new(deb: &Path) -> Result<Self> {
        let stem = deb.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let dir = cache_dir().join("unpacked").join(stem);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let listing_file = dir.join(".listing");
        let listing = if let Ok(text) = std::fs::read_to_string(&listing_file) {
            text
        } else {
            let text = tar_of(deb, &["-t"])?;
            write(&listing_file, text.as_bytes())?;
            text
        };
        let listing =
            listing.lines().map(|l| l.trim_start_matches("./").to_owned()).filter(|l| !l.is_empty()).collect();
        Ok(Self { deb: deb.to_owned(), dir, listing })
    }

    /// Paths in the package (without the leading `./`).
    pub fn listing(&self) -> &[String] {
        &self.listing
    }

    /// Makes sure `paths` are unpacked; one pass over the package for all that are missing.
    pub fn extract(&self, paths: &[&str]) -> Result {
        let missing: Vec<String> = paths
            .iter()
            .filter(|p| std::fs::symlink_metadata(self.dir.join(p)).is_err())
            .map(|p| format!("./{p}"))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut args = vec!["-x".to_owned(), "-C".to_owned(), self.dir.display().to_string()];
        args.extend(missing);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tar_of(&self.deb, &args).map(drop)
    }
}

/// `dpkg-deb --fsys-tarfile DEB | tar ARGS -f -`, returning tar's standard output.
fn tar_of(deb: &Path, args: &[&str]) -> Result<String> {
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run dpkg-deb: {e}"))?;
    let stdout = dpkg.stdout.take().ok_or("dpkg-deb: no output")?;
    let out = Command::new("tar").args(args).arg("-f").arg("-").stdin(stdout).stderr(Stdio::inherit()).output();
    let status = dpkg.wait().map_err(|e| format!("dpkg-deb: {e}"))?;
    let out = out.map_err(|e| format!("cannot run tar: {e}"))?;
    if !status.success() || !out.status.success() {
        return Err(format!("unpacking {} failed (dpkg-deb {status}, tar {})", deb.display(), out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A kernel package: its `vmlinuz`, release string and the modules a board asks for.
pub struct Kernel {
    pub vmlinuz: PathBuf,
    pub release: String,
    /// Module files in load order (dependencies first), paths inside the package.
    pub modules: Vec<String>,
    pub unpacked: Unpacked,
}

impl Kernel {
    pub fn from_package(deb: &Path, wanted: &[String]) -> Result<Self> {
        let unpacked = Unpacked::new(deb)?;
        let vmlinuz = unpacked
            .listing()
            .iter()
            .find(|p| p.starts_with("boot/vmlinuz-"))
            .cloned()
            .ok_or_else(|| format!("{} holds no boot/vmlinuz-*", deb.display()))?;
        let release = vmlinuz.trim_start_matches("boot/vmlinuz-").to_owned();
        // Module name (dashes as underscores, as the kernel does) → path in the package.
        let index: BTreeMap<String, String> = unpacked
            .listing()
            .iter()
            .filter(|p| p.starts_with("lib/modules/") && p.ends_with(".ko"))
            .filter_map(|p| Some((module_name(p.rsplit('/').next()?.trim_end_matches(".ko")), p.clone())))
            .collect();
        let lookup = |name: &str| -> Result<String> {
            index.get(&module_name(name)).cloned().ok_or_else(|| {
                format!(
                    "module {name} is not in {} (built in? then drop it from the board's modules list)",
                    deb.display()
                )
            })
        };
        // Unpack the wanted modules and, pass by pass, whatever their `depends=` adds.
        let mut known: BTreeSet<String> = BTreeSet::new();
        let mut pending: Vec<String> = wanted.iter().map(|m| module_name(m)).collect();
        let mut depends: BTreeMap<String, Vec<String>> = BTreeMap::new();
        while !pending.is_empty() {
            let paths: Vec<String> = pending.iter().map(|m| lookup(m)).collect::<Result<_>>()?;
            let mut refs: Vec<&str> = paths.iter().map(String::as_str).collect();
            refs.push(&vmlinuz);
            unpacked.extract(&refs)?;
            let mut next = Vec::new();
            for (name, path) in pending.iter().zip(&paths) {
                let deps = modinfo_depends(&unpacked.dir.join(path))?;
                for d in &deps {
                    if !known.contains(d) && !pending.contains(d) && !next.contains(d) {
                        next.push(d.clone());
                    }
                }
                depends.insert(name.clone(), deps);
                known.insert(name.clone());
            }
            pending = next;
        }
        // Load order: the board's order, each module preceded by its dependencies.
        let mut order: Vec<String> = Vec::new();
        fn visit(m: &str, depends: &BTreeMap<String, Vec<String>>, order: &mut Vec<String>, stack: &mut Vec<String>) {
            if order.iter().any(|o| o == m) || stack.iter().any(|s| s == m) {
                return;
            }
            stack.push(m.to_owned());
            for d in depends.get(m).into_iter().flatten() {
                visit(d, depends, order, stack);
            }
            stack.pop();
            order.push(m.to_owned());
        }
        for m in wanted {
            visit(&module_name(m), &depends, &mut order, &mut Vec::new());
        }
        let modules = order.iter().map(|m| lookup(m)).collect::<Result<_>>()?;
        Ok(Self { vmlinuz: unpacked.dir.join(&vmlinuz), release, modules, unpacked })
    }
}

fn module_name(name: &str) -> String {
    name.replace('-', "_")
}

/// The `depends=` field of a module's `.modinfo` section (the kernel package ships no
/// `modules.dep`, and the host has no `depmod`).
fn modinfo_depends(ko: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(ko).map_err(|e| format!("cannot read {}: {e}", ko.display()))?;
    let key = b"\0depends=";
    let Some(at) = bytes.windows(key.len()).position(|w| w == key) else { return Ok(Vec::new()) };
    let rest = &bytes[at + key.len()..];
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    Ok(String::from_utf8_lossy(&rest[..end])
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(module_name)
        .collect())
}

fn write(path: &Path, bytes: &[u8]) -> Result {
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
