//! Test material generated at test time with the `openssl` CLI, following the camera maker's published commands
//! and the variants installers produce. Generated once per test binary into a temporary directory.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use camera_upload::{validate_upload, Accepted, Context, UploadError, UploadInput};
use ring::signature::{self, KeyPair};

const SCRIPT: &str = r#"
set -e
q() { "$@" >/dev/null 2>&1; }
SUBJ=/C=CN/ST=GD/L=SZ/O=SNL/OU=TECH
printf 'subjectAltName=IP:192.168.1.120\n' > san.ext
printf 'subjectAltName=IP:192.168.1.120\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' > leaf.ext
printf 'basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' > ca.ext
printf 'subjectAltName=IP:192.168.1.120\nextendedKeyUsage=clientAuth\n' > client.ext

# The camera maker's published instructions, verbatim (root CA, then server key, CSR and certificate).
q openssl genrsa -out rootCA.key 2048
q openssl req -new -key rootCA.key -out rootCA.csr -subj "$SUBJ/CN=ipc.security.com"
q openssl x509 -req -days 365 -in rootCA.csr -signkey rootCA.key -out rootCA.crt
q openssl genrsa -out server.key 2048
q openssl req -new -key server.key -out server.csr -subj "$SUBJ/CN=192.168.1.120" -addext "subjectAltName=IP:192.168.1.120"
q openssl x509 -req -in server.csr -CA rootCA.crt -CAkey rootCA.key -CAcreateserial -out server.crt -days 365 -sha256 -extfile san.ext

# Key and certificate encodings.
q openssl rsa -in server.key -traditional -out server.pkcs1.key
q openssl rsa -in server.key -traditional -outform DER -out server.pkcs1.der
q openssl pkcs8 -topk8 -nocrypt -in server.key -outform DER -out server.pkcs8.der
q openssl x509 -in server.crt -outform DER -out server.der
q openssl pkcs8 -topk8 -v2 aes-256-cbc -in server.key -out server.enc.p8 -passout pass:s3cret
q openssl pkcs8 -topk8 -v2 aes-256-cbc -in server.key -outform DER -out server.enc.p8.der -passout pass:s3cret
q openssl pkcs8 -topk8 -scrypt -in server.key -out server.scrypt.p8 -passout pass:s3cret
q openssl pkcs8 -topk8 -v2 aes-128-cbc -v2prf hmacWithSHA1 -in server.key -out server.sha1.p8 -passout pass:s3cret
q openssl rsa -in server.key -aes256 -traditional -out server.legacy.key -passout pass:s3cret
q openssl rsa -in server.key -des3 -traditional -out server.legacy3des.key -passout pass:s3cret
q openssl rsa -in server.key -aes128 -traditional -out server.legacy128.key -passout pass:s3cret

# EC P-256 and P-384: SEC1 (with the EC PARAMETERS block ecparam writes), SEC1 alone, PKCS#8.
for c in 256:prime256v1 384:secp384r1; do
  n=${c%%:*}; curve=${c##*:}
  q openssl ecparam -name $curve -genkey -out ec$n.params.key
  q openssl ec -in ec$n.params.key -out ec$n.sec1.key
  q openssl pkcs8 -topk8 -nocrypt -in ec$n.params.key -out ec$n.p8.key
  q openssl ec -in ec$n.params.key -outform DER -out ec$n.sec1.der
  q openssl ec -in ec$n.params.key -aes256 -out ec$n.legacy.key -passout pass:s3cret
  q openssl req -new -key ec$n.sec1.key -out ec$n.csr -subj "$SUBJ/CN=camera ec$n"
  q openssl x509 -req -in ec$n.csr -CA rootCA.crt -CAkey rootCA.key -CAcreateserial -out ec$n.crt -days 365 -sha256 -extfile leaf.ext
done

# An intermediate CA (EC P-256) under the root, and a leaf under it.
q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out int.key
q openssl req -new -key int.key -out int.csr -subj "$SUBJ/CN=Installer Intermediate CA"
q openssl x509 -req -in int.csr -CA rootCA.crt -CAkey rootCA.key -CAcreateserial -out int.crt -days 365 -sha256 -extfile ca.ext
q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out leaf2.key
q openssl req -new -key leaf2.key -out leaf2.csr -subj "$SUBJ/CN=camera leaf2"
q openssl x509 -req -in leaf2.csr -CA int.crt -CAkey int.key -CAcreateserial -out leaf2.crt -days 365 -sha256 -extfile leaf.ext
cat leaf2.key leaf2.crt int.crt rootCA.crt > combined.pem
# Same name as the intermediate, different key: does not sign leaf2.
q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out fakeint.key
q openssl req -new -key fakeint.key -out fakeint.csr -subj "$SUBJ/CN=Installer Intermediate CA"
q openssl x509 -req -in fakeint.csr -CA rootCA.crt -CAkey rootCA.key -CAcreateserial -out fakeint.crt -days 365 -sha256 -extfile ca.ext

# PKCS#12: OpenSSL 3 default (AES-256-CBC, PBKDF2, HMAC-SHA256), with chain, -legacy, empty passphrase.
q openssl pkcs12 -export -inkey server.key -in server.crt -out server.p12 -passout pass:s3cret
q openssl pkcs12 -export -inkey server.key -in server.crt -certfile rootCA.crt -out server.chain.p12 -passout pass:s3cret
q openssl pkcs12 -export -inkey leaf2.key -in leaf2.crt -certfile int.crt -out leaf2.chain.p12 -passout pass:s3cret
q openssl pkcs12 -export -legacy -inkey server.key -in server.crt -certfile rootCA.crt -out server.legacy.p12 -passout pass:s3cret
q openssl pkcs12 -export -inkey server.key -in server.crt -out server.empty.p12 -passout pass:

# A CSR made on the camera (pending key) and one made on another camera.
for cam in cam cam2; do
  q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $cam.key
  q openssl pkcs8 -topk8 -nocrypt -in $cam.key -outform DER -out $cam.key.der
  q openssl req -new -key $cam.key -out $cam.csr -subj "$SUBJ/CN=MyCamera"
  q openssl x509 -req -in $cam.csr -CA rootCA.crt -CAkey rootCA.key -CAcreateserial -out $cam.crt -days 365 -sha256 -extfile san.ext
done

# Certificates with problems.
q openssl req -x509 -newkey rsa:2048 -nodes -keyout ca_as_leaf.key -out ca_as_leaf.crt -days 365 -subj "$SUBJ/CN=Some CA"
q openssl x509 -req -in server.csr -CA rootCA.crt -CAkey rootCA.key -CAcreateserial -out long.crt -days 825 -sha256 -extfile san.ext
q openssl x509 -req -in server.csr -CA rootCA.crt -CAkey rootCA.key -CAcreateserial -out nosan.crt -days 365 -sha256
q openssl x509 -req -in server.csr -CA rootCA.crt -CAkey rootCA.key -CAcreateserial -out client.crt -days 365 -sha256 -extfile client.ext
q openssl genpkey -algorithm ed25519 -out ed25519.key
q openssl genrsa -out rsa1024.key 1024
q openssl ecparam -name secp521r1 -genkey -noout -out p521.key
q openssl pkcs8 -topk8 -nocrypt -in p521.key -out p521.p8.key
"#;

pub struct Fixture {
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Fixture {
    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    pub fn cat(&self, names: &[&str]) -> Vec<u8> {
        names.iter().flat_map(|n| self.read(n)).collect()
    }
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .arg("-c")
            .arg(SCRIPT)
            .current_dir(tmp.path())
            .output()
            .expect("bash and openssl are needed for these tests");
        assert!(out.status.success(), "fixture script failed: {}", String::from_utf8_lossy(&out.stderr));
        Fixture { dir: tmp.path().to_path_buf(), _tmp: tmp }
    })
}

pub const CAMERA_IP: &str = "192.168.1.120";

pub fn ips() -> &'static [IpAddr] {
    static IPS: OnceLock<Vec<IpAddr>> = OnceLock::new();
    IPS.get_or_init(|| vec![CAMERA_IP.parse().unwrap()])
}

pub fn ctx() -> Context<'static> {
    Context {
        now: SystemTime::now(),
        pending_key_pkcs8: None,
        current_ips: ips(),
        current_dns: &[],
        purpose: camera_upload::KeyPurpose::TlsServer,
    }
}

pub fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

pub fn upload(cert: Option<&[u8]>, key: Option<&[u8]>, pass: Option<&str>) -> Result<Accepted, UploadError> {
    validate_upload(&UploadInput { certificate: cert, key, passphrase: pass }, &ctx())
}

/// DER of the first certificate in a PEM file, via openssl's own output.
pub fn der_of(pem_name: &str) -> Vec<u8> {
    let f = fixture();
    let out =
        Command::new("openssl").args(["x509", "-outform", "DER", "-in"]).arg(f.dir.join(pem_name)).output().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// Asserts the chain is exactly `expected` (PEM file names, leaf first), each certificate is signed
/// by the next, and the key signs data that the leaf's public key verifies.
pub fn assert_accepted(acc: &Accepted, expected: &[&str]) {
    let want: Vec<Vec<u8>> = expected.iter().map(|n| der_of(n)).collect();
    assert_eq!(acc.chain_der.len(), want.len(), "chain length");
    for (i, (got, want)) in acc.chain_der.iter().zip(&want).enumerate() {
        assert!(got == want, "chain[{i}] should be {}", expected[i]);
    }
    let parsed: Vec<_> = acc.chain_der.iter().map(|d| x509_parser::parse_x509_certificate(d).unwrap().1).collect();
    for pair in parsed.windows(2) {
        pair[0].verify_signature(Some(pair[1].public_key())).unwrap();
    }
    assert_key_matches(acc);
}

/// Signs with the accepted PKCS#8 key (ring) and verifies with the leaf certificate's SPKI.
pub fn assert_key_matches(acc: &Accepted) {
    let leaf = x509_parser::parse_x509_certificate(&acc.chain_der[0]).unwrap().1;
    let spki = &leaf.public_key().subject_public_key.data;
    let msg = b"camera upload test";
    let rng = ring::rand::SystemRandom::new();
    let curve = leaf.public_key().algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
    match curve.as_deref() {
        Some("1.2.840.10045.3.1.7") | Some("1.3.132.0.34") => {
            let (sign_alg, verify_alg): (
                &'static signature::EcdsaSigningAlgorithm,
                &'static dyn signature::VerificationAlgorithm,
            ) = if curve.as_deref() == Some("1.2.840.10045.3.1.7") {
                (&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &signature::ECDSA_P256_SHA256_ASN1)
            } else {
                (&signature::ECDSA_P384_SHA384_ASN1_SIGNING, &signature::ECDSA_P384_SHA384_ASN1)
            };
            let kp = signature::EcdsaKeyPair::from_pkcs8(sign_alg, &acc.key_pkcs8, &rng).unwrap();
            assert_eq!(kp.public_key().as_ref(), &spki[..]);
            let sig = kp.sign(&rng, msg).unwrap();
            signature::UnparsedPublicKey::new(verify_alg, &spki[..]).verify(msg, sig.as_ref()).unwrap();
        }
        _ => {
            let kp = signature::RsaKeyPair::from_pkcs8(&acc.key_pkcs8).unwrap();
            let mut sig = vec![0u8; kp.public().modulus_len()];
            kp.sign(&signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig).unwrap();
            signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &spki[..])
                .verify(msg, &sig)
                .unwrap();
        }
    }
}

pub fn codes(acc: &Accepted) -> Vec<&'static str> {
    acc.warnings.iter().map(|w| w.code).collect()
}
