//! `board/<name>/board.conf` (key = value) and `board/<name>/modules` (one per line).

use std::collections::BTreeMap;
use std::path::PathBuf;

use task_support::{root, Result};

/// What a board needs: where its kernel comes from, which modules it loads, how QEMU runs it.
#[derive(Debug, Clone)]
pub struct Board {
    pub name: String,
    pub dir: PathBuf,
    /// Debian architecture: `arm64`, `armhf`.
    pub debian_arch: String,
    pub rust_target: String,
    /// Debian kernel metapackage (`linux-image-arm64`).
    pub kernel_package: String,
    /// Debian packages holding shared libraries the binaries need, and the files taken from them.
    pub runtime_packages: Vec<String>,
    pub runtime_files: Vec<String>,
    pub qemu: String,
    pub qemu_machine: String,
    pub qemu_cpu: String,
    pub qemu_memory_mib: u32,
    pub console: String,
    pub state_device: String,
    pub state_size_mib: u32,
    /// The guest's address with prefix length (`10.0.2.15/24`) and its gateway.
    pub address: String,
    pub gateway: String,
    /// Kernel modules in load order (dependencies are added by [`super::debian`]).
    pub modules: Vec<String>,
}

impl Board {
    pub fn load(name: &str) -> Result<Self> {
        let dir = root().join("board").join(name);
        let conf_path = dir.join("board.conf");
        let text = std::fs::read_to_string(&conf_path).map_err(|e| {
            let known = known_boards().join(", ");
            format!("unknown board {name}: cannot read {}: {e} (boards: {known})", conf_path.display())
        })?;
        let mut conf = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| format!("{}:{}: expected key = value", conf_path.display(), n + 1))?;
            conf.insert(key.trim().to_owned(), value.trim().to_owned());
        }
        let get = |key: &str| -> Result<String> {
            conf.get(key).cloned().ok_or_else(|| format!("{}: {key} is missing", conf_path.display()))
        };
        let list = |key: &str| -> Result<Vec<String>> { Ok(get(key)?.split_whitespace().map(str::to_owned).collect()) };
        let number = |key: &str| -> Result<u32> {
            let v = get(key)?;
            v.parse().map_err(|_| format!("{}: {key} = {v} is not a number", conf_path.display()))
        };
        let modules_path = dir.join("modules");
        let modules = std::fs::read_to_string(&modules_path)
            .map_err(|e| format!("cannot read {}: {e}", modules_path.display()))?
            .lines()
            .map(|l| l.split('#').next().unwrap_or_default().trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        Ok(Self {
            name: name.to_owned(),
            debian_arch: get("debian_arch")?,
            rust_target: get("rust_target")?,
            kernel_package: get("kernel_package")?,
            runtime_packages: list("runtime_packages")?,
            runtime_files: list("runtime_files")?,
            qemu: get("qemu")?,
            qemu_machine: get("qemu_machine")?,
            qemu_cpu: get("qemu_cpu")?,
            qemu_memory_mib: number("qemu_memory_mib")?,
            console: get("console")?,
            state_device: get("state_device")?,
            state_size_mib: number("state_size_mib")?,
            address: get("address")?,
            gateway: get("gateway")?,
            modules,
            dir,
        })
    }

    /// The guest's address without the prefix length.
    pub fn ip(&self) -> &str {
        self.address.split('/').next().unwrap_or(&self.address)
    }
}

/// The boards in `board/` (those with a `board.conf`).
pub fn known_boards() -> Vec<String> {
    let mut boards: Vec<String> = std::fs::read_dir(root().join("board"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().join("board.conf").exists())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    boards.sort();
    boards
}
