//! Helpers shared by the integration tests: temporary directories, running the real binary,
//! splitting the bundle it writes, the CA's files (two tiers, or a one-tier CA an older version
//! left), and calling the openssl CLI.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

// Each test binary uses some of these.
#[allow(unused_imports)]
pub use camera_test_support::{openssl_stdin_bytes, openssl_verify, pem, TempDir};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_cert-provisioner");

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

/// The bundle the provisioner writes: key, leaf, and the certificate that signed the leaf (the
/// issuing CA of a two-tier CA, the CA itself for one tier; never a two-tier CA's root).
#[derive(Debug)]
pub struct Bundle {
    pub leaf_pem: String,
    pub signer_pem: String,
    pub leaf_der: Vec<u8>,
    pub signer_der: Vec<u8>,
}

/// A PEM file of a private key and two certificates (the bundle, `issuing-ca.pem`): the three
/// blocks' texts and the certificates' DER.
fn key_and_two_certificates(path: &Path) -> ([String; 3], [Vec<u8>; 2]) {
    let text = read_string(path);
    let blocks = pem::blocks(&text);
    let labels: Vec<&str> = blocks.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["PRIVATE KEY", "CERTIFICATE", "CERTIFICATE"], "layout of {}", path.display());
    let ders = camera_provision::pem_certificates(text.as_bytes());
    assert_eq!(ders.len(), 2);
    let [key, first, second] = [0, 1, 2].map(|i| blocks[i].1.clone());
    ([key, first, second], [ders[0].clone(), ders[1].clone()])
}

pub fn split_bundle(path: &Path) -> Bundle {
    let ([_, leaf_pem, signer_pem], [leaf_der, signer_der]) = key_and_two_certificates(path);
    Bundle { leaf_pem, signer_pem, leaf_der, signer_der }
}

/// `issuing-ca.pem` split: the issuing CA's key, its certificate, the root's certificate.
#[derive(Debug)]
pub struct IssuingCa {
    pub key_pem: String,
    pub issuing_pem: String,
    pub root_pem: String,
    pub issuing_der: Vec<u8>,
    pub root_der: Vec<u8>,
}

pub fn read_issuing_ca(state: &Path) -> IssuingCa {
    let ([key_pem, issuing_pem, root_pem], [issuing_der, root_der]) =
        key_and_two_certificates(&state.join("issuing-ca.pem"));
    IssuingCa { key_pem, issuing_pem, root_pem, issuing_der, root_der }
}

/// Asserts that `state` holds a whole two-tier CA: `issuing-ca.pem` (0600) loads as two tiers,
/// `ca.crt` (0644) is exactly its root, and there is no `ca.key`. Returns the CA's files.
pub fn assert_two_tier(state: &Path) -> IssuingCa {
    let path = state.join("issuing-ca.pem");
    assert_eq!(mode(&path), 0o600, "issuing-ca.pem holds the issuing key");
    let text = read(&path);
    let ca = camera_pki::CameraCa::from_pem(&text, &text)
        .unwrap_or_else(|e| panic!("issuing-ca.pem is not a whole CA: {e}"));
    assert!(ca.is_two_tier(), "issuing-ca.pem holds one tier");
    let files = read_issuing_ca(state);
    assert_eq!(mode(&state.join("ca.crt")), 0o644, "ca.crt is public");
    assert_eq!(read_string(&state.join("ca.crt")), files.root_pem, "ca.crt is the root, byte for byte");
    assert!(!state.join("ca.key").exists(), "a two-tier camera has no ca.key: {:?}", entries(state));
    files
}

/// A one-tier CA of the shape cameras made before two tiers wrote (made here with rcgen, as those
/// versions did): self-signed, P-256, pathlen 0, keyCertSign + cRLSign, EKU serverAuth, the
/// camera's critical name constraints. Returns the certificate and key, PEM.
pub fn one_tier_ca(constraints: &camera_pki::NameConstraintsPolicy) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("generate a key");
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "Old Cam");
    params.distinguished_name.push(rcgen::DnType::CommonName, "Old Cam Root CA 0000");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let mut permitted: Vec<rcgen::GeneralSubtree> = constraints
        .permitted_subnets
        .iter()
        .map(|net| rcgen::GeneralSubtree::IpAddress(rcgen::CidrSubnet::from_addr_prefix(net.addr, net.prefix)))
        .collect();
    permitted.extend(constraints.permitted_dns.iter().map(|d| rcgen::GeneralSubtree::DnsName(d.clone())));
    params.name_constraints =
        Some(rcgen::NameConstraints { permitted_subtrees: permitted, excluded_subtrees: Vec::new() });
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let cert = params.self_signed(&key).expect("self-sign the one-tier CA");
    let cert_pem = camera_pki::pem::encode("CERTIFICATE", cert.der()).to_string();
    let key_pem = camera_pki::pem::encode("PRIVATE KEY", &key.serialize_der()).to_string();
    (cert_pem, key_pem)
}

/// A one-tier CA seeded into a state directory.
#[derive(Debug)]
pub struct OneTier {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
    pub fingerprint: String,
}

/// Writes what an older version left on a camera: `ca.crt` (0644), `ca.key` (0600) and
/// `ca-in-use.sha256`, with the default constraints (plus loopback if asked).
pub fn seed_one_tier_ca(state: &Path, loopback: bool) -> OneTier {
    let policy = camera_pki::NameConstraintsPolicy::default();
    let policy = if loopback { policy.with_loopback() } else { policy };
    let (cert_pem, key_pem) = one_tier_ca(&policy);
    std::fs::create_dir_all(state).expect("create the state dir");
    std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o700)).expect("chmod the state dir");
    let cert_der = camera_provision::pem_certificates(cert_pem.as_bytes()).remove(0);
    let fingerprint = camera_pki::fingerprint(&cert_der);
    write_one_tier_ca(state, &cert_pem, &key_pem);
    write_with_mode(&state.join("ca-in-use.sha256"), &format!("{fingerprint}\n"), 0o644);
    OneTier { cert_pem, key_pem, cert_der, fingerprint }
}

/// Writes a one-tier CA's files as older versions did: `ca.crt` 0644, `ca.key` 0600.
pub fn write_one_tier_ca(state: &Path, cert_pem: &str, key_pem: &str) {
    write_with_mode(&state.join("ca.crt"), cert_pem, 0o644);
    write_with_mode(&state.join("ca.key"), key_pem, 0o600);
}

pub fn write_with_mode(path: &Path, contents: &str, file_mode: u32) {
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(file_mode)).expect("chmod");
}

/// Asserts that the one-tier CA seeded in `state` is still there, byte for byte and mode for
/// mode, still in use, and that no two-tier CA was made beside it.
pub fn assert_one_tier_kept(state: &Path, seeded: &OneTier) {
    assert_eq!(read_string(&state.join("ca.crt")), seeded.cert_pem, "ca.crt changed");
    assert_eq!(read_string(&state.join("ca.key")), seeded.key_pem, "ca.key changed");
    assert_eq!(read_string(&state.join("ca-in-use.sha256")), format!("{}\n", seeded.fingerprint));
    assert_eq!((mode(&state.join("ca.crt")), mode(&state.join("ca.key"))), (0o644, 0o600));
    assert_eq!(mode(&state.join("ca-in-use.sha256")), 0o644);
    assert!(!state.join("issuing-ca.pem").exists(), "a two-tier CA beside a one-tier one: {:?}", entries(state));
    assert!(!state.join("ca-replaced.json").exists());
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for name in entries(dir) {
        let path = dir.join(name);
        let meta = path.symlink_metadata().unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
        if meta.is_dir() {
            files.extend(files_under(&path));
        } else if meta.is_file() {
            files.push(path);
        }
    }
    files
}

/// Every PEM private key in the files under `dir`: the file and the SHA-256 of the key's public
/// key (SubjectPublicKeyInfo), worked out by openssl from the private key.
pub fn private_keys_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut keys = Vec::new();
    for path in files_under(dir) {
        let text = String::from_utf8_lossy(&read(&path)).into_owned();
        for (label, block) in pem::blocks(&text) {
            if label.ends_with("PRIVATE KEY") {
                keys.push((path.clone(), public_key_of_private_pem(&block)));
            }
        }
    }
    keys
}

/// SHA-256 of the SubjectPublicKeyInfo of a PEM private key (openssl derives it).
pub fn public_key_of_private_pem(pem: &str) -> String {
    camera_pki::fingerprint(&openssl_stdin_bytes(&["pkey", "-pubout", "-outform", "DER"], pem.as_bytes()))
}

/// SHA-256 of the SubjectPublicKeyInfo of a DER certificate.
pub fn public_key_of_cert(der: &[u8]) -> String {
    camera_pki::describe(der).expect("describe certificate").public_key_sha256
}

/// The files under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files_under(dir).into_iter().filter(|p| read(p).windows(needle.len()).any(|w| w == needle)).collect()
}

/// The DER of the first certificate in a PEM file.
pub fn cert_der(path: &Path) -> Vec<u8> {
    camera_provision::pem_certificates(&read(path)).into_iter().next().expect("a certificate in the file")
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

/// Signs, with the signing key in `state` and the openssl CLI (not our code), a leaf for the
/// given subjectAltName (openssl syntax, e.g. `IP:8.8.8.8`): what a thief of the camera's key
/// could make. The key is the issuing CA's, read from `issuing-ca.pem` as it is, or a one-tier
/// CA's `ca.key`. Returns the leaf's PEM path.
pub fn openssl_signed_leaf(work: &Path, state: &Path, tag: &str, san: &str) -> PathBuf {
    openssl_signed_leaf_for(work, state, tag, san, "serverAuth")
}

/// [`openssl_signed_leaf`] with the given extendedKeyUsage (e.g. "emailProtection,clientAuth").
pub fn openssl_signed_leaf_for(work: &Path, state: &Path, tag: &str, san: &str, eku: &str) -> PathBuf {
    let key = work.join(format!("{tag}.key"));
    let csr = work.join(format!("{tag}.csr"));
    let ext = work.join(format!("{tag}.ext"));
    let crt = work.join(format!("{tag}.crt"));
    let (signer_cert, signer_key) = if state.join("issuing-ca.pem").exists() {
        let signer_cert = work.join(format!("{tag}-signer.crt"));
        std::fs::write(&signer_cert, read_issuing_ca(state).issuing_pem).expect("write the issuing CA");
        (signer_cert, state.join("issuing-ca.pem"))
    } else {
        (state.join("ca.crt"), state.join("ca.key"))
    };
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
        p(&signer_cert),
        "-CAkey".into(),
        p(&signer_key),
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

/// Verifies `leaf` with rustls-webpki for server auth, trusting only `anchor_der`, with
/// `intermediates` as the chain a server sends, then for each name. Returns the first error.
pub fn webpki_verify(
    anchor_der: &[u8],
    intermediates: &[&[u8]],
    leaf_der: &[u8],
    names: &[String],
) -> Result<(), String> {
    let anchor_cert = rustls_pki_types::CertificateDer::from(anchor_der.to_vec());
    let anchor = webpki::anchor_from_trusted_cert(&anchor_cert).map_err(|e| format!("trust anchor: {e}"))?;
    webpki_verify_with(anchor, intermediates, leaf_der, names)
}

/// [`webpki_verify`] with the anchor's own name constraints dropped: what a validator that does
/// not apply a trust anchor's constraints (Java's, RFC 5280 makes it optional) accepts.
pub fn webpki_verify_ignoring_anchor_constraints(
    anchor_der: &[u8],
    intermediates: &[&[u8]],
    leaf_der: &[u8],
    names: &[String],
) -> Result<(), String> {
    let anchor_cert = rustls_pki_types::CertificateDer::from(anchor_der.to_vec());
    let mut anchor = webpki::anchor_from_trusted_cert(&anchor_cert).map_err(|e| format!("trust anchor: {e}"))?;
    assert!(anchor.name_constraints.is_some(), "the anchor has name constraints to ignore");
    anchor.name_constraints = None;
    webpki_verify_with(anchor, intermediates, leaf_der, names)
}

fn webpki_verify_with(
    anchor: rustls_pki_types::TrustAnchor<'_>,
    intermediates: &[&[u8]],
    leaf_der: &[u8],
    names: &[String],
) -> Result<(), String> {
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
    let intermediates: Vec<CertificateDer<'_>> =
        intermediates.iter().map(|der| CertificateDer::from(der.to_vec())).collect();
    let leaf = CertificateDer::from(leaf_der.to_vec());
    let ee = webpki::EndEntityCert::try_from(&leaf).map_err(|e| format!("end-entity parse: {e}"))?;
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &intermediates,
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

/// Verifies what `dir`'s run directory serves as a client that imported only `state/ca.crt`
/// does: the leaf, with the certificate sent after it as the chain. Returns the bundle.
pub fn verify_served(dir: &TempDir, names: &[String]) -> Result<Bundle, String> {
    let bundle = split_bundle(&dir.run().join("server.pem"));
    webpki_verify(&cert_der(&dir.state().join("ca.crt")), &[&bundle.signer_der], &bundle.leaf_der, names)?;
    Ok(bundle)
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

/// How many times the clock floor is written in a simulated day with a re-mint every second,
/// starting at `start` with no saved clock in `layout`: every second offers the clock to
/// `clock::save`, as the watcher does on a re-mint. A write is seen as a new inode (the file is
/// replaced by a rename, never changed in place).
pub fn clock_writes_in_a_simulated_day(layout: &camera_state::Layout, start: std::time::SystemTime) -> usize {
    use std::os::unix::fs::MetadataExt;
    let mut writes = 0;
    let mut last = None;
    for second in 0..86_400 {
        camera_provision::clock::save(layout, start + std::time::Duration::from_secs(second)).unwrap();
        let inode = std::fs::metadata(layout.saved_clock()).map(|m| m.ino()).ok();
        if inode != last {
            writes += 1;
            last = inode;
        }
    }
    writes
}
