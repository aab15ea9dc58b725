//! Helpers shared by the integration tests: temporary directories, running the real binary,
//! splitting the bundle it writes, and calling the openssl CLI.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_cert-provisioner");

/// A directory removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("cert-prov-it-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.0.join(p)
    }

    /// `state/` and `run/` inside this directory (not created: the provisioner creates them).
    pub fn state(&self) -> PathBuf {
        self.0.join("state")
    }

    pub fn run(&self) -> PathBuf {
        self.0.join("run")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Directories a test made unreadable must be opened again before removal.
        let _ = Command::new("chmod").arg("-R").arg("u+rwx").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a finished process said.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(out: Output) -> Self {
        Self {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with everything the process said.
    pub fn fail(&self, why: &str) -> ! {
        panic!("{why}\nexit: {:?}\n--- stdout ---\n{}--- stderr ---\n{}", self.code, self.stdout, self.stderr)
    }

    pub fn assert_ok(&self) -> &Self {
        self.assert_no_panic();
        if !self.ok() {
            self.fail("expected exit 0");
        }
        self
    }

    /// A failed run: non-zero exit, exactly one line on stderr starting with the program name,
    /// nothing on stdout, no panic. Returns the line.
    pub fn assert_one_line_failure(&self) -> String {
        self.assert_no_panic();
        if self.ok() || self.code.is_none() {
            self.fail("expected a non-zero exit code");
        }
        let lines: Vec<&str> = self.stderr.lines().collect();
        if lines.len() != 1 {
            self.fail("expected exactly one line on stderr");
        }
        if !lines[0].starts_with("cert-provisioner: ") || lines[0].len() < 30 {
            self.fail("the error line should start with the program name and say why");
        }
        if !self.stdout.is_empty() {
            self.fail("a failed run should print nothing on stdout");
        }
        lines[0].to_owned()
    }

    pub fn assert_no_panic(&self) {
        if self.stderr.contains("panicked") || self.stderr.contains("RUST_BACKTRACE") {
            self.fail("the program panicked");
        }
        for s in [&self.stdout, &self.stderr] {
            if s.contains("PRIVATE KEY") {
                self.fail("key material in the output");
            }
        }
    }

    /// The single summary line on stdout.
    pub fn summary(&self) -> String {
        let lines: Vec<&str> = self.stdout.lines().collect();
        if lines.len() != 1 || !lines[0].starts_with("cert-provisioner: CA ") {
            self.fail("expected exactly one summary line on stdout starting with `cert-provisioner: CA `");
        }
        lines[0].to_owned()
    }
}

/// Runs the binary with the given arguments and no config unless one is given.
pub fn run_bin<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run cert-provisioner");
    Run::from_output(out)
}

/// Runs the binary on `dir`'s state and run directories (plus extra arguments).
pub fn provision(dir: &TempDir, extra: &[&str]) -> Run {
    let mut args: Vec<std::ffi::OsString> =
        vec!["--state-dir".into(), dir.state().into(), "--run-dir".into(), dir.run().into()];
    args.extend(extra.iter().map(Into::into));
    run_bin(args)
}

/// Writes a config file into `dir` and returns its path.
pub fn config_file(dir: &TempDir, json: &str) -> PathBuf {
    let path = dir.join("config.json");
    std::fs::write(&path, json).expect("write config");
    path
}

/// Runs a shell command line; returns what it said.
pub fn sh(script: &str) -> Run {
    let out = Command::new("sh").arg("-c").arg(script).stdin(Stdio::null()).output().expect("run sh");
    Run::from_output(out)
}

pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display())).permissions().mode() & 0o7777
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub fn read_string(path: &Path) -> String {
    String::from_utf8(read(path)).expect("utf-8 file")
}

/// Names of the entries of `dir`, sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Fails if `dir` holds a temporary file of an interrupted write.
pub fn assert_no_temporaries(dir: &Path) {
    if !dir.exists() {
        return;
    }
    let temps: Vec<String> = entries(dir).into_iter().filter(|n| n.starts_with(".tmp-")).collect();
    assert!(temps.is_empty(), "half-written files left in {}: {temps:?}", dir.display());
}

/// The PEM blocks of a text, each with its BEGIN/END lines.
pub fn pem_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) {
            current = Some((label.to_owned(), format!("{line}\n")));
        } else if let Some((label, mut body)) = current.take() {
            body.push_str(line);
            body.push('\n');
            if line.starts_with("-----END ") {
                blocks.push((label, body));
            } else {
                current = Some((label, body));
            }
        }
    }
    blocks
}

/// The bundle the provisioner writes: key, leaf, CA.
#[derive(Debug)]
pub struct Bundle {
    pub key_label: String,
    pub leaf_pem: String,
    pub ca_pem: String,
    pub leaf_der: Vec<u8>,
    pub ca_der: Vec<u8>,
}

pub fn split_bundle(path: &Path) -> Bundle {
    let text = read_string(path);
    let blocks = pem_blocks(&text);
    let labels: Vec<&str> = blocks.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["PRIVATE KEY", "CERTIFICATE", "CERTIFICATE"], "bundle layout of {}", path.display());
    let ders = cert_provisioner::pem_certificates(text.as_bytes());
    assert_eq!(ders.len(), 2);
    Bundle {
        key_label: blocks[0].0.clone(),
        leaf_pem: blocks[1].1.clone(),
        ca_pem: blocks[2].1.clone(),
        leaf_der: ders[0].clone(),
        ca_der: ders[1].clone(),
    }
}

/// The DER of the first certificate in a PEM file.
pub fn cert_der(path: &Path) -> Vec<u8> {
    cert_provisioner::pem_certificates(&read(path)).into_iter().next().expect("a certificate in the file")
}

/// Runs openssl; fails with a clear message when it is not installed.
pub fn openssl<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run the openssl CLI ({e}): install it (apt-get install openssl)"));
    Run::from_output(out)
}

/// `openssl x509 -noout -text` of a PEM file.
pub fn x509_text(path: &Path) -> String {
    let run =
        openssl([OsStr::new("x509"), OsStr::new("-noout"), OsStr::new("-text"), OsStr::new("-in"), path.as_os_str()]);
    if !run.ok() {
        run.fail("openssl x509 -text failed");
    }
    run.stdout
}

/// The subjectAltName entries of a DER certificate, as strings ("10.0.0.1", "cam.local").
pub fn san_names(der: &[u8]) -> Vec<String> {
    camera_pki::describe(der).expect("describe certificate").subject_alt_names
}

/// Signs, with the CA in `state` and the openssl CLI (not our code), a leaf for the given
/// subjectAltName (openssl syntax, e.g. `IP:8.8.8.8`). Returns the leaf's PEM path.
pub fn openssl_signed_leaf(work: &Path, state: &Path, tag: &str, san: &str) -> PathBuf {
    openssl_signed_leaf_for(work, state, tag, san, "serverAuth")
}

/// [`openssl_signed_leaf`] with the given extendedKeyUsage (e.g. "emailProtection,clientAuth").
pub fn openssl_signed_leaf_for(work: &Path, state: &Path, tag: &str, san: &str, eku: &str) -> PathBuf {
    let key = work.join(format!("{tag}.key"));
    let csr = work.join(format!("{tag}.csr"));
    let ext = work.join(format!("{tag}.ext"));
    let crt = work.join(format!("{tag}.crt"));
    std::fs::write(
        &ext,
        format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage={eku}\nsubjectAltName={san}\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
        ),
    )
    .expect("write extfile");
    let p = |p: &Path| p.as_os_str().to_owned();
    let run = openssl([
        "req".into(),
        "-new".into(),
        "-newkey".into(),
        "ec".into(),
        "-pkeyopt".into(),
        "ec_paramgen_curve:P-256".into(),
        "-nodes".into(),
        "-subj".into(),
        std::ffi::OsString::from(format!("/CN=Test leaf {tag}")),
        "-keyout".into(),
        p(&key),
        "-out".into(),
        p(&csr),
    ]);
    if !run.ok() {
        run.fail("openssl req failed");
    }
    let run = openssl([
        "x509".into(),
        "-req".into(),
        "-in".into(),
        p(&csr),
        "-CA".into(),
        p(&state.join("ca.crt")),
        "-CAkey".into(),
        p(&state.join("ca.key")),
        "-CAcreateserial".into(),
        "-CAserial".into(),
        p(&work.join(format!("{tag}.srl"))),
        "-days".into(),
        "30".into(),
        "-sha256".into(),
        "-extfile".into(),
        p(&ext),
        "-out".into(),
        p(&crt),
    ]);
    if !run.ok() {
        run.fail("openssl x509 -req failed");
    }
    crt
}

/// `openssl verify -x509_strict -purpose sslserver -CAfile ca leaf` plus extra arguments.
pub fn openssl_verify(ca: &Path, leaf: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<std::ffi::OsString> = vec![
        "verify".into(),
        "-x509_strict".into(),
        "-purpose".into(),
        "sslserver".into(),
        "-CAfile".into(),
        ca.into(),
    ];
    args.extend(extra.iter().map(Into::into));
    args.push(leaf.into());
    openssl(args)
}

/// Verifies `leaf` against the trust anchor `ca` with rustls-webpki for server auth, then for
/// each name. Returns the first error.
pub fn webpki_verify(ca_der: &[u8], leaf_der: &[u8], names: &[String]) -> Result<(), String> {
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
    let ca = CertificateDer::from(ca_der.to_vec());
    let anchor = webpki::anchor_from_trusted_cert(&ca).map_err(|e| format!("trust anchor: {e}"))?;
    let leaf = CertificateDer::from(leaf_der.to_vec());
    let ee = webpki::EndEntityCert::try_from(&leaf).map_err(|e| format!("end-entity parse: {e}"))?;
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &[],
        UnixTime::now(),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map_err(|e| format!("chain: {e:?}"))?;
    for name in names {
        let server_name = ServerName::try_from(name.as_str()).map_err(|e| format!("{name}: {e}"))?;
        ee.verify_is_valid_for_subject_name(&server_name).map_err(|e| format!("name {name}: {e:?}"))?;
    }
    Ok(())
}

/// Whether the current process may create user and network namespaces (`unshare -rn`).
pub fn unshare_works(flags: &str) -> bool {
    sh(&format!("unshare {flags} true")).ok()
}

/// Shell-quotes a path or word.
pub fn q(s: impl AsRef<OsStr>) -> String {
    let s = s.as_ref().to_string_lossy();
    format!("'{}'", s.replace('\'', "'\\''"))
}
