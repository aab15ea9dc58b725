//! The PKI side of the interop matrix: what a camera's users trust, what it serves, and the key a
//! thief would take from its flash; rcgen fixtures made to the two-tier spec; and the
//! leaf certificates the rogue and control servers present.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints,
};
use time::{Duration, OffsetDateTime};

/// A camera's PKI as its users and an attacker see it. Everything the matrix needs comes from here,
/// so pointing the matrix at another camera (one tier, two tiers, a factory CA) is a new value of
/// this struct.
pub struct CameraPki {
    /// `cacert.crt`, what users import: the only trust anchor the clients get.
    pub trust_anchor_pem: String,
    /// The certificates the camera serves after its leaf, in order (PEM). The first one issued the
    /// leaf: the rogue servers send the same ones after their own leaf.
    pub served_chain_pem: Vec<String>,
    /// The PKCS#8 PEM key that signs the camera's server certificates, as stored on the camera
    /// (what a thief takes from its flash).
    pub signing_key_pem: String,
}

impl std::fmt::Debug for CameraPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraPki").field("served_chain_len", &self.served_chain_pem.len()).finish_non_exhaustive()
    }
}

/// A leaf certificate and its key, PEM, with the certificates to send after it.
pub struct ServerCert {
    pub leaf_pem: String,
    pub chain_pem: Vec<String>,
    pub key_pem: String,
}

impl CameraPki {
    /// The certificate of the signing key: the first one served after the leaf.
    pub fn signing_cert_pem(&self) -> &str {
        self.served_chain_pem.first().expect("the camera serves its issuing certificate after the leaf")
    }

    /// Checks that the signing key belongs to the certificate that issues the camera's leaves, so a
    /// refused rogue certificate really was signed by the key the camera uses. `work` holds the
    /// temporary files.
    pub fn check_key_pairs_with_issuer(&self, work: &Path) {
        std::fs::write(work.join("signing-cert.pem"), self.signing_cert_pem()).unwrap();
        std::fs::write(work.join("signing-key.pem"), &self.signing_key_pem).unwrap();
        let from_cert = openssl_out(work, &["x509", "-in", "signing-cert.pem", "-noout", "-pubkey"]);
        let from_key = openssl_out(work, &["pkey", "-in", "signing-key.pem", "-pubout"]);
        std::fs::remove_file(work.join("signing-key.pem")).unwrap();
        assert_eq!(
            from_cert, from_key,
            "the signing key does not belong to the certificate that issued the served leaf"
        );
    }

    /// A server certificate for `names` (IP addresses or DNS names) signed with the camera's signing
    /// key, with the camera's served chain after it: what a stolen key lets anyone present.
    pub fn issue_server_cert(&self, names: &[&str], common_name: &str) -> ServerCert {
        let signing_key = KeyPair::from_pem(&self.signing_key_pem).expect("the signing key is a PKCS#8 PEM key");
        let issuer = Issuer::from_ca_cert_pem(self.signing_cert_pem(), signing_key).expect("the issuing CA parses");
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = dn(common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(serial());
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(90);
        let leaf = params.signed_by(&key, &issuer).unwrap();
        ServerCert { leaf_pem: leaf.pem(), chain_pem: self.served_chain_pem.clone(), key_pem: key.serialize_pem() }
    }
}

/// The camera CA's name constraints as the design specifies them: private IPv4 (10/8, 172.16/12,
/// 192.168/16, 169.254/16, 100.64/10), IPv6 ULA and link-local, DNS `local` and `home.arpa`.
pub fn camera_name_constraints() -> NameConstraints {
    let mut permitted: Vec<GeneralSubtree> = [
        ("10.0.0.0", 8),
        ("172.16.0.0", 12),
        ("192.168.0.0", 16),
        ("169.254.0.0", 16),
        ("100.64.0.0", 10),
        ("fc00::", 7),
        ("fe80::", 10),
    ]
    .iter()
    .map(|(addr, prefix)| GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(addr.parse().unwrap(), *prefix)))
    .collect();
    permitted.push(GeneralSubtree::DnsName("local".into()));
    permitted.push(GeneralSubtree::DnsName("home.arpa".into()));
    NameConstraints { permitted_subtrees: permitted, excluded_subtrees: Vec::new() }
}

/// A two-tier CA to the camera's spec: a root (pathlen 1) whose key is dropped after it signs
/// the issuing CA (pathlen 0, EKU serverAuth) that signs server certificates; both carry
/// `constraints` (critical) when given. With `None` it is the unconstrained control CA, built the
/// same way so that the only difference the clients see is the constraints.
pub fn two_tier(label: &str, constraints: Option<NameConstraints>) -> CameraPki {
    let now = OffsetDateTime::now_utc();
    let root_key = KeyPair::generate().unwrap();
    let mut root = CertificateParams::default();
    root.distinguished_name = dn(&format!("{label} Root CA"));
    root.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    root.name_constraints = constraints.clone();
    root.serial_number = Some(serial());
    root.not_before = now - Duration::days(1);
    root.not_after = now + Duration::days(3653);
    let root_cert = root.self_signed(&root_key).unwrap();
    let root_issuer = Issuer::new(root, root_key);

    let issuing_key = KeyPair::generate().unwrap();
    let mut issuing = CertificateParams::default();
    issuing.distinguished_name = dn(&format!("{label} Issuing CA"));
    issuing.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    issuing.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    issuing.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    issuing.name_constraints = constraints;
    issuing.use_authority_key_identifier_extension = true;
    issuing.serial_number = Some(serial());
    issuing.not_before = now - Duration::days(1);
    issuing.not_after = now + Duration::days(3652);
    let issuing_cert = issuing.signed_by(&issuing_key, &root_issuer).unwrap();

    CameraPki {
        trust_anchor_pem: root_cert.pem(),
        served_chain_pem: vec![issuing_cert.pem()],
        signing_key_pem: issuing_key.serialize_pem(),
    }
}

/// Whether a name in a certificate request is an IP address (else a DNS name).
pub fn is_ip(name: &str) -> bool {
    name.parse::<std::net::IpAddr>().is_ok()
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "camera-web interop test");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn serial() -> rcgen::SerialNumber {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut bytes).unwrap();
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    rcgen::SerialNumber::from_slice(&bytes)
}

/// A one-line description of a PEM certificate (subject, issuer, subjectAltName) for the report.
pub fn describe(work: &Path, cert_pem: &str) -> String {
    std::fs::write(work.join("describe.pem"), cert_pem).unwrap();
    let text = openssl_out(
        work,
        &[
            "x509",
            "-in",
            "describe.pem",
            "-noout",
            "-subject",
            "-issuer",
            "-ext",
            "subjectAltName,basicConstraints",
            "-nameopt",
            "oneline",
        ],
    );
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("X509v3")).collect::<Vec<_>>().join("; ")
}

fn openssl_out(dir: &Path, args: &[&str]) -> String {
    String::from_utf8(crate::common::openssl(dir, args).stdout).unwrap()
}
