//! `cargo xtask size`: where the shipped binary's bytes go.
//!
//! 1. The release build of what ships (`camera-https` for aarch64-musl, stripped as the release
//!    profile says): its size against the design brief's budget. The same command as CI's, so
//!    after `cargo xtask test` nothing is rebuilt.
//! 2. The same build with symbols kept (`CARGO_PROFILE_RELEASE_STRIP=false`, which cargo-bloat
//!    sets) in a target directory of its own, `target/size-symbols/`, so the stripped build is
//!    not replaced; cargo-bloat attributes each function of its `.text` to the crate that
//!    defined it. Generic code is counted where it was instantiated only when that crate's name
//!    is in the symbol; the rest falls under `[Unknown]`.
//!
//! cargo-bloat is installed from crates.io the first time (`cargo install --locked`).

use std::process::Stdio;

use task_support::{cargo, run, target_dir, Result};

use crate::cross::{budget_verdict, shipped_build, BUDGET, MULTICALL_BIN, MULTICALL_PACKAGE, SHIPPING};

/// Crates below this share of `.text` are summed into one row.
const SMALL_SHARE: f64 = 0.005;

pub fn report() -> Result {
    task_support::ensure_cargo_subcommand("bloat", "cargo-bloat")?;
    eprintln!("xtask size: release build of {MULTICALL_BIN} for {SHIPPING} (stripped, what ships)");
    run(&mut shipped_build(SHIPPING))?;
    let shipped = target_dir().join(SHIPPING).join("release").join(MULTICALL_BIN);
    let stripped = std::fs::metadata(&shipped).map_err(|e| format!("{}: {e}", shipped.display()))?.len();

    let symbols_dir = target_dir().join("size-symbols");
    eprintln!("xtask size: the same build with symbols, in {}", symbols_dir.display());
    let output = cargo()
        .args(["bloat", "--release", "--locked", "--target", SHIPPING, "-p", MULTICALL_PACKAGE])
        .args(["--bin", MULTICALL_BIN, "--crates", "-n", "0", "--message-format", "json"])
        .arg("--target-dir")
        .arg(&symbols_dir)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo bloat: {e}"))?;
    if !output.status.success() {
        return Err(format!("cargo bloat failed: {}", output.status));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let json = text.lines().rev().find(|l| l.trim_start().starts_with('{')).ok_or("cargo bloat printed no JSON")?;
    let bloat = Bloat::parse(json)?;
    print!("{}", bloat.table(SHIPPING));
    println!("\n{MULTICALL_BIN} ({SHIPPING}, release, stripped: what ships)");
    println!("  against the design brief's budget: {}", budget_verdict(stripped, BUDGET));
    Ok(())
}

/// What `cargo bloat --crates --message-format json` says.
#[derive(Debug, PartialEq)]
struct Bloat {
    file_size: u64,
    text_size: u64,
    /// Crate name and its bytes of `.text`, largest first.
    crates: Vec<(String, u64)>,
}

impl Bloat {
    /// `{"file-size":N,"text-section-size":N,"crates":[{"name":"std","size":N},...]}`: flat
    /// enough to read without a JSON library (crate names hold no quotes).
    fn parse(json: &str) -> Result<Self> {
        let number = |key: &str, within: &str| -> Result<u64> {
            let at = within.find(&format!("\"{key}\":")).ok_or(format!("no {key} in cargo bloat's JSON"))?;
            let digits: String = within[at + key.len() + 3..]
                .chars()
                .skip_while(|c| c.is_whitespace())
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().map_err(|_| format!("{key} in cargo bloat's JSON is not a number"))
        };
        let list = json.split_once("\"crates\":").map(|(_, rest)| rest).ok_or("no crates in cargo bloat's JSON")?;
        let mut crates = Vec::new();
        for object in list.split('{').skip(1) {
            let object = object.split('}').next().unwrap_or_default();
            let name = object
                .split_once("\"name\":")
                .and_then(|(_, rest)| rest.trim_start().strip_prefix('"'))
                .and_then(|rest| rest.split_once('"'))
                .map(|(name, _)| name.to_owned())
                .ok_or("a crate without a name in cargo bloat's JSON")?;
            crates.push((name, number("size", object)?));
        }
        crates.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let head = json.split_once("\"crates\":").map_or(json, |(head, _)| head);
        Ok(Self { file_size: number("file-size", head)?, text_size: number("text-section-size", head)?, crates })
    }

    fn table(&self, target: &str) -> String {
        let share = |bytes: u64| bytes as f64 / self.text_size.max(1) as f64;
        let mut out = format!(
            "\n{MULTICALL_BIN} ({target}, release with symbols): .text {} bytes of a {}-byte file, by crate\n",
            self.text_size, self.file_size
        );
        out.push_str(&format!("  {:<28} {:>10} {:>7}\n", "crate", ".text", "share"));
        let (mut small, mut small_count) = (0, 0);
        for (name, bytes) in &self.crates {
            if share(*bytes) < SMALL_SHARE {
                small += bytes;
                small_count += 1;
                continue;
            }
            out.push_str(&format!("  {name:<28} {bytes:>10} {:>6.1}%\n", share(*bytes) * 100.0));
        }
        if small_count > 0 {
            let label = format!("{small_count} crates under {:.1}% each", SMALL_SHARE * 100.0);
            out.push_str(&format!("  {label:<28} {small:>10} {:>6.1}%\n", share(small) * 100.0));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cargo_bloats_crate_list() {
        let json = r#"{"file-size":3000,"text-section-size":1000,"crates":[{"name":"std","size":100},{"name":"ring","size":600},{"name":"[Unknown]","size":3}]}"#;
        let bloat = Bloat::parse(json).expect("parses");
        assert_eq!(bloat.file_size, 3000);
        assert_eq!(bloat.text_size, 1000);
        assert_eq!(bloat.crates, [("ring".into(), 600), ("std".into(), 100), ("[Unknown]".into(), 3)]);
        let table = bloat.table("t");
        assert!(table.contains("ring") && table.contains("60.0%"), "{table}");
        assert!(table.contains("1 crates under 0.5% each"), "{table}");
    }
}
