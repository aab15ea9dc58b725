//! Dependency hygiene: no aws-lc-rs and no OpenSSL in what ships to the camera, no two
//! semver-incompatible versions of a crypto crate in it, and every dependency under a license from
//! the allowlist below.
//!
//! rustls and tokio-rustls pull in aws-lc-rs (a large C build, several hundred KiB on flash) unless
//! their default features are off; `native-tls` and the `openssl` crates would link the system
//! OpenSSL. `cargo tree` over the normal (non-dev, non-build) edges of the shipped programs, for
//! each camera target, proves neither is there.
//!
//! Licenses are checked here, offline, from `cargo metadata` rather than with cargo-deny: cargo-deny
//! would be one more tool to build from source on every fresh machine (several minutes on two
//! cores), its advisories check needs the RustSec database fetched over git (no network here), and
//! its license check is what the few dozen lines below do: parse each SPDX expression and decide it
//! against the allowlist.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Crates that must never be in the shipped programs' tree.
const FORBIDDEN: &[&str] = &["aws-lc-rs", "aws-lc-sys", "aws-lc-fips-sys", "openssl", "openssl-sys", "native-tls"];

/// The camera targets (`cargo xtask cross` builds and tests each).
const TARGETS: &[&str] = &["aarch64-unknown-linux-musl", "aarch64-unknown-linux-gnu", "armv7-unknown-linux-gnueabihf"];

/// The shipped programs: the multi-call binary and the two programs it dispatches to.
const SHIPPED: &[&str] = &["camera-multicall", "camera-web", "cert-provisioner"];

/// Crypto crates (and the encodings, randomness and constant-time helpers they stand on) of which
/// one major version at most may ship: two would mean twice the code on flash and two places to
/// patch. The list covers what is in the tree today plus the RustCrypto crates a change would
/// most likely bring in.
const CRYPTO: &[&str] = &[
    // TLS and X.509.
    "ring",
    "rustls",
    "rustls-webpki",
    "webpki",
    "rustls-pki-types",
    "rustls-pemfile",
    "tokio-rustls",
    "untrusted",
    "rcgen",
    "x509-parser",
    "x509-cert",
    "der",
    "der-parser",
    "der_derive",
    "asn1-rs",
    "oid-registry",
    "const-oid",
    "spki",
    "pem",
    "pem-rfc7468",
    "base64ct",
    "yasna",
    "cms",
    // Key formats.
    "pkcs1",
    "pkcs5",
    "pkcs8",
    "pkcs12",
    "sec1",
    // Public-key algorithms and big integers.
    "rsa",
    "num-bigint-dig",
    "num-bigint",
    "crypto-bigint",
    "elliptic-curve",
    "ecdsa",
    "p256",
    "p384",
    "p521",
    "ed25519",
    "ed25519-dalek",
    "curve25519-dalek",
    "signature",
    // Ciphers, hashes, MACs, KDFs (RustCrypto traits and their plumbing).
    "aes",
    "aes-gcm",
    "cbc",
    "des",
    "rc2",
    "chacha20",
    "chacha20poly1305",
    "poly1305",
    "salsa20",
    "cipher",
    "inout",
    "block-buffer",
    "block-padding",
    "crypto-common",
    "generic-array",
    "digest",
    "sha1",
    "sha2",
    "sha3",
    "md-5",
    "hmac",
    "hkdf",
    "pbkdf2",
    "scrypt",
    "cpufeatures",
    // Randomness, secrets.
    "getrandom",
    "rand",
    "rand_core",
    "rand_chacha",
    "zeroize",
    "zeroize_derive",
    "subtle",
];

/// Licenses a dependency may be used under. All permissive: attribution at most (carried in the
/// firmware's notices), no source-disclosure duty. `Apache-2.0 WITH LLVM-exception` only adds
/// permissions to Apache-2.0. No copyleft is allowed, not even file-level MPL-2.0: nothing needs
/// it today, and taking one on should be a decision made here, with its obligations written down.
const ALLOWED: &[&str] = &[
    "MIT",
    "Apache-2.0",
    "Apache-2.0 WITH LLVM-exception",
    "ISC",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "Zlib",
    "0BSD",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "CC0-1.0",
    "Unlicense",
];

/// Packages that give only a `license-file`: (name, the license that file was read to be). None
/// today; a new one fails the test until its file is read and it is named here.
const LICENSE_FILE_READ: &[(&str, &str)] = &[];

/// The workspace's own crates.
const WORKSPACE_LICENSE: &str = "MIT OR Apache-2.0";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn cargo(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO")).args(args).current_dir(root()).output().expect("run cargo");
    assert!(out.status.success(), "cargo {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// (name, version) of every crate in the normal dependency tree of `packages` for `target`.
fn tree(target: &str, packages: &[&str]) -> BTreeSet<(String, String)> {
    let mut args = vec!["tree", "--locked", "-e", "normal", "--target", target, "--prefix", "none"];
    for p in packages {
        args.extend(["-p", p]);
    }
    cargo(&args)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.trim_start_matches('v').to_owned()))
        })
        .collect()
}

/// The semver-compatibility class of a version: "1" for 1.4.2, "0.10" for 0.10.9, "0.0.3" for 0.0.3
/// (cargo's rule: the leftmost non-zero component). Pre-release tags do not change it.
fn major(version: &str) -> String {
    let numbers: Vec<&str> = version.split(['-', '+']).next().unwrap().split('.').collect();
    match numbers.as_slice() {
        ["0", "0", patch, ..] => format!("0.0.{patch}"),
        ["0", minor, ..] => format!("0.{minor}"),
        [major, ..] => (*major).to_owned(),
        [] => version.to_owned(),
    }
}

#[test]
fn major_versions_follow_cargos_compatibility_rule() {
    assert_eq!(major("1.4.2"), "1");
    assert_eq!(major("0.10.9"), "0.10");
    assert_eq!(major("0.0.3"), "0.0.3");
    assert_eq!(major("0.11.0-rc.2"), "0.11");
    assert_eq!(major("0.11.1+wasi-snapshot-preview1"), "0.11");
    assert_ne!(major("0.9.6"), major("0.10.0"), "0.x minors are majors");
}

#[test]
fn no_aws_lc_or_openssl_in_the_shipped_tree() {
    for target in TARGETS {
        let crates = tree(target, SHIPPED);
        let found: Vec<_> = crates.iter().filter(|(name, _)| FORBIDDEN.contains(&name.as_str())).collect();
        println!("{target}: {} crates in the normal dependency tree of the shipped programs", crates.len());
        assert!(
            found.is_empty(),
            "{target}: forbidden crates in the dependency tree: {found:?}\n\
             (check that rustls / tokio-rustls / rcgen keep default-features = false with the ring provider; \
             `cargo tree -e normal --target {target} -i <crate>` shows who pulls it in)"
        );
        assert!(
            crates.iter().any(|(name, _)| name == "ring"),
            "{target}: ring missing from the tree: the parse of cargo tree's output is wrong"
        );
    }
}

#[test]
fn one_major_version_of_each_crypto_crate_in_the_shipped_tree() {
    for target in TARGETS {
        let crates = tree(target, &["camera-multicall"]);
        let mut majors: BTreeMap<&str, BTreeMap<String, Vec<&str>>> = BTreeMap::new();
        for (name, version) in &crates {
            majors.entry(name).or_default().entry(major(version)).or_default().push(version);
        }
        let present: Vec<&str> = CRYPTO.iter().copied().filter(|c| majors.contains_key(c)).collect();
        for expected in ["ring", "rustls", "rustls-webpki", "rcgen", "der", "sha2", "getrandom", "zeroize"] {
            assert!(
                present.contains(&expected),
                "{target}: {expected} not found: the parse of cargo tree's output is wrong"
            );
        }
        println!("{target}: crypto crates shipped ({}): {}", present.len(), present.join(" "));

        let mut problems = Vec::new();
        for (name, versions) in &majors {
            if versions.len() < 2 {
                continue;
            }
            let all: Vec<&str> = versions.values().flatten().copied().collect();
            if CRYPTO.contains(name) {
                let mut who = String::new();
                for version in &all {
                    let spec = format!("{name}@{version}");
                    who.push_str(&cargo(&[
                        "tree",
                        "--locked",
                        "-e",
                        "normal",
                        "--target",
                        target,
                        "-p",
                        "camera-multicall",
                        "-i",
                        &spec,
                    ]));
                }
                problems.push(format!("{name} {all:?}, pulled in by:\n{who}"));
            } else {
                println!("{target}: note: two major versions of {name} (not a crypto crate): {all:?}");
            }
        }
        assert!(
            problems.is_empty(),
            "{target}: semver-incompatible versions of a crypto crate ship together (align the Cargo.toml \
             requirements, or bump the crate that lags):\n{}",
            problems.join("\n")
        );
    }
}

/// A parsed SPDX license expression. `WITH` binds tightest, then `AND`, then `OR`; cargo's old
/// `/` separator ("MIT/Apache-2.0") reads as `OR`, as crates.io reads it.
#[derive(Debug)]
enum Expr {
    License(String),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

fn parse_license(text: &str) -> Result<Expr, String> {
    let spaced = text.replace('(', " ( ").replace(')', " ) ").replace('/', " OR ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut at = 0;
    let expr = parse_or(&tokens, &mut at)?;
    if at != tokens.len() {
        return Err(format!("unexpected {:?}", tokens[at]));
    }
    Ok(expr)
}

fn parse_or(tokens: &[&str], at: &mut usize) -> Result<Expr, String> {
    let mut terms = vec![parse_and(tokens, at)?];
    while tokens.get(*at) == Some(&"OR") {
        *at += 1;
        terms.push(parse_and(tokens, at)?);
    }
    Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::Or(terms) })
}

fn parse_and(tokens: &[&str], at: &mut usize) -> Result<Expr, String> {
    let mut terms = vec![parse_with(tokens, at)?];
    while tokens.get(*at) == Some(&"AND") {
        *at += 1;
        terms.push(parse_with(tokens, at)?);
    }
    Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::And(terms) })
}

fn parse_with(tokens: &[&str], at: &mut usize) -> Result<Expr, String> {
    let token = *tokens.get(*at).ok_or("expression ends early")?;
    *at += 1;
    let license = match token {
        "(" => {
            let inner = parse_or(tokens, at)?;
            if tokens.get(*at) != Some(&")") {
                return Err("unbalanced parenthesis".into());
            }
            *at += 1;
            return Ok(inner);
        }
        ")" | "AND" | "OR" | "WITH" => return Err(format!("unexpected {token:?}")),
        id => id.to_owned(),
    };
    if tokens.get(*at) == Some(&"WITH") {
        let exception = tokens
            .get(*at + 1)
            .filter(|t| !["(", ")", "AND", "OR", "WITH"].contains(t))
            .ok_or("WITH without an exception")?;
        *at += 2;
        return Ok(Expr::License(format!("{license} WITH {exception}")));
    }
    Ok(Expr::License(license))
}

/// The licenses from `allowed` under which `expr` can be taken (the first way that works, left to
/// right), or None.
fn satisfy(expr: &Expr, allowed: &[&str]) -> Option<Vec<String>> {
    match expr {
        Expr::License(id) => allowed.contains(&id.as_str()).then(|| vec![id.clone()]),
        Expr::And(terms) => terms.iter().map(|t| satisfy(t, allowed)).collect::<Option<Vec<_>>>().map(|v| v.concat()),
        Expr::Or(terms) => terms.iter().find_map(|t| satisfy(t, allowed)),
    }
}

#[test]
fn license_expressions_parse_as_spdx_says() {
    let ok = |text: &str| satisfy(&parse_license(text).unwrap(), ALLOWED);
    assert_eq!(ok("MIT"), Some(vec!["MIT".into()]));
    assert_eq!(ok("MIT/Apache-2.0"), Some(vec!["MIT".into()]));
    assert_eq!(ok("GPL-3.0-only OR MIT"), Some(vec!["MIT".into()]));
    assert_eq!(ok("Apache-2.0 AND ISC"), Some(vec!["Apache-2.0".into(), "ISC".into()]));
    assert_eq!(ok("(MIT OR Apache-2.0) AND Unicode-3.0"), Some(vec!["MIT".into(), "Unicode-3.0".into()]));
    assert_eq!(ok("Apache-2.0 WITH LLVM-exception OR MIT"), Some(vec!["Apache-2.0 WITH LLVM-exception".into()]));
    assert_eq!(ok("MIT AND GPL-2.0-only"), None, "AND needs both");
    assert_eq!(ok("MIT AND (LGPL-2.1-or-later OR MPL-2.0)"), None);
    assert_eq!(ok("MIT OR Apache-2.0 AND GPL-2.0-only"), Some(vec!["MIT".into()]), "AND binds tighter than OR");
    assert_eq!(ok("GPL-2.0-only WITH Classpath-exception-2.0"), None);
    assert_eq!(ok("MIT WITH Some-exception"), None, "only listed exceptions");
    for bad in ["", "MIT OR", "(MIT", "MIT)", "AND MIT", "MIT WITH", "MIT Apache-2.0"] {
        assert!(parse_license(bad).is_err(), "{bad:?} parsed");
    }
}

#[test]
fn every_dependency_has_an_allowed_license() {
    // All packages of the lock file: every platform, normal, build and dev dependencies, and ours.
    let metadata: serde_json_lite::Value =
        serde_json_lite::parse(&cargo(&["metadata", "--format-version", "1", "--locked"]));
    let members: BTreeSet<&str> = metadata.get("workspace_members").unwrap().array().iter().map(|m| m.str()).collect();
    let mut by_expression: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_license: BTreeMap<String, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    let packages = metadata.get("packages").unwrap().array();
    for package in packages {
        let name = package.get("name").unwrap().str();
        let version = package.get("version").unwrap().str();
        let id = package.get("id").unwrap().str();
        let license = package.get("license").and_then(|l| l.opt_str());
        let expression = match (license, package.get("license_file").and_then(|l| l.opt_str())) {
            (Some(license), _) => license.to_owned(),
            (None, Some(file)) => match LICENSE_FILE_READ.iter().find(|(n, _)| *n == name) {
                Some((_, read_as)) => (*read_as).to_owned(),
                None => {
                    problems.push(format!(
                        "{name} {version}: only a license-file ({file}); read it and add it to LICENSE_FILE_READ"
                    ));
                    continue;
                }
            },
            (None, None) => {
                problems.push(format!("{name} {version}: no license"));
                continue;
            }
        };
        if members.contains(id) && expression != WORKSPACE_LICENSE {
            problems.push(format!("{name} (ours): license {expression:?}, the workspace's is {WORKSPACE_LICENSE:?}"));
        }
        match parse_license(&expression).map(|e| satisfy(&e, ALLOWED)) {
            Ok(Some(used)) => {
                for license in used {
                    *by_license.entry(license).or_default() += 1;
                }
            }
            Ok(None) => {
                problems.push(format!("{name} {version}: {expression:?} cannot be satisfied from the allowlist"))
            }
            Err(e) => problems.push(format!("{name} {version}: {expression:?} is not an SPDX expression: {e}")),
        }
        *by_expression.entry(expression).or_default() += 1;
    }
    println!("{} packages ({} of them ours), by license expression:", packages.len(), members.len());
    let mut rows: Vec<_> = by_expression.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (expression, count) in rows {
        println!("  {count:4}  {expression}");
    }
    println!("used under (the first allowed choice of each expression; AND counts each part):");
    for (license, count) in &by_license {
        println!("  {count:4}  {license}");
    }
    assert!(packages.len() > 50 && by_license.contains_key("MIT"), "the parse of cargo metadata's output is wrong");
    assert!(problems.is_empty(), "license problems:\n  {}", problems.join("\n  "));
}

/// Just enough JSON for `cargo metadata` (xtask has no JSON dependency, and this test should not
/// add one to the tool everyone builds first).
mod serde_json_lite {
    #[derive(Debug)]
    pub enum Value {
        Null,
        Bool,
        Number,
        Str(String),
        Array(Vec<Value>),
        Object(Vec<(String, Value)>),
    }

    impl Value {
        pub fn get(&self, key: &str) -> Option<&Value> {
            match self {
                Value::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }
        pub fn array(&self) -> &[Value] {
            match self {
                Value::Array(items) => items,
                other => panic!("not an array: {other:?}"),
            }
        }
        pub fn str(&self) -> &str {
            self.opt_str().unwrap_or_else(|| panic!("not a string: {self:?}"))
        }
        pub fn opt_str(&self) -> Option<&str> {
            match self {
                Value::Str(s) => Some(s),
                _ => None,
            }
        }
    }

    pub fn parse(text: &str) -> Value {
        let bytes = text.as_bytes();
        let mut at = 0;
        let value = value(bytes, &mut at);
        skip_ws(bytes, &mut at);
        assert_eq!(at, bytes.len(), "trailing data after JSON");
        value
    }

    fn skip_ws(b: &[u8], at: &mut usize) {
        while *at < b.len() && b[*at].is_ascii_whitespace() {
            *at += 1;
        }
    }

    fn value(b: &[u8], at: &mut usize) -> Value {
        skip_ws(b, at);
        match b[*at] {
            b'{' => {
                *at += 1;
                let mut fields = Vec::new();
                loop {
                    skip_ws(b, at);
                    if b[*at] == b'}' {
                        *at += 1;
                        return Value::Object(fields);
                    }
                    let key = string(b, at);
                    skip_ws(b, at);
                    assert_eq!(b[*at], b':');
                    *at += 1;
                    fields.push((key, value(b, at)));
                    skip_ws(b, at);
                    if b[*at] == b',' {
                        *at += 1;
                    }
                }
            }
            b'[' => {
                *at += 1;
                let mut items = Vec::new();
                loop {
                    skip_ws(b, at);
                    if b[*at] == b']' {
                        *at += 1;
                        return Value::Array(items);
                    }
                    items.push(value(b, at));
                    skip_ws(b, at);
                    if b[*at] == b',' {
                        *at += 1;
                    }
                }
            }
            b'"' => Value::Str(string(b, at)),
            b'n' => {
                *at += 4;
                Value::Null
            }
            b't' => {
                *at += 4;
                Value::Bool
            }
            b'f' => {
                *at += 5;
                Value::Bool
            }
            _ => {
                while *at < b.len() && matches!(b[*at], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    *at += 1;
                }
                Value::Number
            }
        }
    }

    fn string(b: &[u8], at: &mut usize) -> String {
        assert_eq!(b[*at], b'"');
        *at += 1;
        let mut out = Vec::new();
        while b[*at] != b'"' {
            if b[*at] == b'\\' {
                *at += 1;
                match b[*at] {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'u' => {
                        let code = u32::from_str_radix(std::str::from_utf8(&b[*at + 1..*at + 5]).unwrap(), 16).unwrap();
                        *at += 4;
                        let c = char::from_u32(code).unwrap_or('\u{fffd}');
                        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                    other => out.push(other),
                }
            } else {
                out.push(b[*at]);
            }
            *at += 1;
        }
        *at += 1;
        String::from_utf8(out).unwrap()
    }
}
