//! The "newc" cpio format the kernel unpacks as the initramfs (the host has no `cpio`).
//!
//! Every entry is owned by root with mtime 0, so the archive depends only on the tree's contents.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use task_support::Result;

pub struct Writer<W: Write> {
    out: W,
    ino: u32,
}

const S_IFCHR: u32 = 0o020_000;

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Self { out, ino: 1 }
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) -> Result {
        let name_size = name.len() + 1;
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            if mode & 0o170_000 == 0o040_000 { 2 } else { 1 },
            0, // mtime
            u32::try_from(data.len()).map_err(|_| format!("{name}: too large for cpio"))?,
            0,
            0,
            rdev.0,
            rdev.1,
            u32::try_from(name_size).map_err(|_| format!("{name}: name too long"))?,
            0, // check
        ];
        self.ino += 1;
        let mut header = String::from("070701");
        for f in fields {
            header.push_str(&format!("{f:08x}"));
        }
        let mut buf = header.into_bytes();
        buf.extend_from_slice(name.as_bytes());
        buf.push(0);
        pad4(&mut buf);
        buf.extend_from_slice(data);
        pad4(&mut buf);
        self.out.write_all(&buf).map_err(|e| format!("cannot write the cpio archive: {e}"))
    }

    /// A character device node (the archive needs `/dev/console`, or init gets no console).
    pub fn char_device(&mut self, name: &str, perm: u32, major: u32, minor: u32) -> Result {
        self.entry(name, S_IFCHR | perm, (major, minor), &[])
    }

    /// Adds `dir`'s contents (not `dir` itself) under `prefix`, parents before children.
    pub fn tree(&mut self, dir: &Path, prefix: &str) -> Result {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .collect::<std::io::Result<_>>()
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let path = entry.path();
            let file_name = entry.file_name();
            let name = format!("{prefix}{}", file_name.to_string_lossy());
            let meta = std::fs::symlink_metadata(&path).map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
            let kind = meta.file_type();
            if kind.is_symlink() {
                let target =
                    std::fs::read_link(&path).map_err(|e| format!("cannot read link {}: {e}", path.display()))?;
                self.entry(&name, meta.mode(), (0, 0), target.as_os_str().as_encoded_bytes())?;
            } else if kind.is_dir() {
                self.entry(&name, meta.mode(), (0, 0), &[])?;
                self.tree(&path, &format!("{name}/"))?;
            } else if kind.is_file() {
                let data = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                self.entry(&name, meta.mode(), (0, 0), &data)?;
            } else {
                return Err(format!("{}: only files, directories and symlinks go into the image", path.display()));
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<W> {
        self.entry("TRAILER!!!", 0, (0, 0), &[])?;
        self.out.flush().map_err(|e| format!("cannot write the cpio archive: {e}"))?;
        Ok(self.out)
    }
}

fn pad4(buf: &mut Vec<u8>) {
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}
