//! The CA and server certificates have the shape the security baseline asks for, and a real
//! verifier (webpki, as rustls uses it) accepts what it should and refuses what it should.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ::time::OffsetDateTime;
use camera_pki::*;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::prelude::*;

fn spec(policy: NameConstraintsPolicy) -> CaSpec {
    CaSpec {
        model: "Test Cam".into(),
        constraints: policy,
        not_before: OffsetDateTime::now_utc() - ::time::Duration::hours(1),
    }
}

fn server_spec(names: &[&str]) -> ServerSpec {
    ServerSpec {
        names: names.iter().map(|n| SanName::parse(n).unwrap()).collect(),
        common_name: "Test Cam HTTPS".into(),
        not_before: OffsetDateTime::now_utc() - ::time::Duration::minutes(5),
        validity_days: 365,
    }
}

/// webpki's verdict on `leaf` for `name`, trusting only what users import (`cacert.crt`), with
/// the chain the camera serves (the issuing CA of a two-tier CA).
fn webpki_verify(ca: &CameraCa, leaf: &[u8], name: &str) -> Result<(), webpki::Error> {
    let ca_der = CertificateDer::from(ca.anchor_der().to_vec());
    let anchor = webpki::anchor_from_trusted_cert(&ca_der).unwrap();
    let intermediates: Vec<CertificateDer<'_>> =
        if ca.is_two_tier() { vec![CertificateDer::from(ca.signer_der().to_vec())] } else { Vec::new() };
    let leaf_der = CertificateDer::from(leaf.to_vec());
    let cert = webpki::EndEntityCert::try_from(&leaf_der).unwrap();
    let now = UnixTime::since_unix_epoch(Duration::from_secs(OffsetDateTime::now_utc().unix_timestamp() as u64));
    cert.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &intermediates,
        now,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )?;
    cert.verify_is_valid_for_subject_name(&ServerName::try_from(name.to_owned()).unwrap())
}

/// A one-tier CA as cameras made before two tiers have it (made here with rcgen the way those
/// versions did): self-signed, pathlen 0, the constraints on itself.
fn one_tier_ca_pem() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "Old Cam Root CA 0000");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    params.name_constraints = Some(rcgen::NameConstraints {
        permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName("local".into())],
        excluded_subtrees: Vec::new(),
    });
    let cert = params.self_signed(&key).unwrap();
    let cert_pem = camera_pki::pem::encode("CERTIFICATE", cert.der()).to_string();
    let key_pem = camera_pki::pem::encode("PRIVATE KEY", &key.serialize_der()).to_string();
    (cert_pem, key_pem)
}

mod camera_ca {
    use super::*;

    fn cert(der: &[u8]) -> X509Certificate<'_> {
        X509Certificate::from_der(der).unwrap().1
    }

    #[test]
    fn has_two_tiers_of_the_baseline_shape() {
        let ca = CameraCa::generate(&spec(NameConstraintsPolicy::default())).unwrap();
        assert!(ca.is_two_tier());
        let (root, issuing) = (cert(ca.anchor_der()), cert(ca.signer_der()));
        for (c, path_len, cn) in [(&root, 1, "Test Cam Root CA "), (&issuing, 0, "Test Cam Issuing CA ")] {
            let bc = c.basic_constraints().unwrap().unwrap();
            assert!(bc.critical && bc.value.ca && bc.value.path_len_constraint == Some(path_len), "{cn}");
            let ku = c.key_usage().unwrap().unwrap();
            assert!(ku.critical && ku.value.key_cert_sign() && ku.value.crl_sign() && !ku.value.digital_signature());
            let eku = c.extended_key_usage().unwrap().unwrap();
            assert!(eku.value.server_auth && !eku.value.client_auth && !eku.value.email_protection, "{cn}");
            let nc = c.name_constraints().unwrap().unwrap();
            assert!(nc.critical, "{cn}");
            assert_eq!(nc.value.permitted_subtrees.as_ref().unwrap().len(), 9);
            let days = (c.validity().not_after.timestamp() - c.validity().not_before.timestamp()) / 86_400;
            assert_eq!(days, CA_VALIDITY_DAYS);
            assert_eq!(c.public_key().algorithm.algorithm.to_id_string(), "1.2.840.10045.2.1");
            assert!(c.subject().to_string().contains(cn), "{}", c.subject());
        }
        // The root signed the issuing CA, and only that: its key is in nothing the camera keeps.
        assert_eq!(root.subject(), root.issuer());
        assert_eq!(issuing.issuer(), root.subject());
        issuing.verify_signature(Some(root.public_key())).unwrap();
        let bundle = ca.bundle_pem();
        assert_eq!(camera_pki::pem::certificates(bundle.as_bytes()).unwrap(), [ca.signer_der(), ca.anchor_der()]);
        let key = SecretKey::from_pkcs8_pem(bundle.as_bytes()).unwrap();
        let issuing_key = rcgen::KeyPair::try_from(key.pkcs8_der()).unwrap();
        assert_eq!(issuing_key.public_key_raw(), issuing.public_key().subject_public_key.data.as_ref());
        assert_ne!(issuing_key.public_key_raw(), root.public_key().subject_public_key.data.as_ref());
        assert_eq!(ca.fingerprint(), fingerprint(ca.anchor_der()), "users compare the root's fingerprint");
    }

    #[test]
    fn every_camera_gets_its_own() {
        let a = CameraCa::generate(&spec(NameConstraintsPolicy::default())).unwrap();
        let b = CameraCa::generate(&spec(NameConstraintsPolicy::default())).unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.key().pkcs8_der(), b.key().pkcs8_der());
    }

    #[test]
    fn round_trips_through_its_one_file_with_its_constraints() {
        let ca = CameraCa::generate(&spec(NameConstraintsPolicy::default().with_loopback())).unwrap();
        let bundle = ca.bundle_pem();
        let loaded = CameraCa::from_pem(bundle.as_bytes(), bundle.as_bytes()).unwrap();
        assert!(loaded.is_two_tier());
        assert_eq!((loaded.signer_der(), loaded.anchor_der()), (ca.signer_der(), ca.anchor_der()));
        assert_eq!(loaded.constraints(), ca.constraints());
        assert!(loaded.permits(&SanName::parse("127.0.0.1").unwrap()));
    }

    #[test]
    fn a_one_tier_ca_of_an_older_camera_still_loads_and_signs() {
        let (cert_pem, key_pem) = one_tier_ca_pem();
        let ca = CameraCa::from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
        assert!(!ca.is_two_tier());
        assert_eq!(ca.anchor_der(), ca.signer_der());
        let minted = ca.mint_server(&server_spec(&["cam.local"])).unwrap();
        webpki_verify(&ca, &minted.cert_der, "cam.local").unwrap();
    }

    #[test]
    fn refuses_a_key_that_is_not_its_own_a_root_that_did_not_sign_it_and_garbage() {
        let a = CameraCa::generate(&spec(NameConstraintsPolicy::default())).unwrap();
        let b = CameraCa::generate(&spec(NameConstraintsPolicy::default())).unwrap();
        let a_certs = a.bundle_pem().replace(&*a.key().to_pem(), "");
        let err = CameraCa::from_pem(a_certs.as_bytes(), b.key().to_pem().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");
        let mixed = format!(
            "{}{}",
            camera_pki::pem::encode("CERTIFICATE", a.signer_der()).as_str(),
            camera_pki::pem::encode("CERTIFICATE", b.anchor_der()).as_str()
        );
        let err = CameraCa::from_pem(mixed.as_bytes(), a.key().to_pem().as_bytes()).unwrap_err();
        assert!(matches!(err, PkiError::RootMismatch), "{err}");
        assert!(CameraCa::from_pem(b"garbage", a.key().to_pem().as_bytes()).is_err());
        let truncated = &a.key().to_pem()[..60];
        assert!(CameraCa::from_pem(a_certs.as_bytes(), truncated.as_bytes()).is_err());
    }
}

mod server_certificate {
    use super::*;

    #[test]
    fn has_the_baseline_shape_and_verifies_for_each_name() {
        let ca = CameraCa::generate(&spec(NameConstraintsPolicy::default())).unwrap();
        let minted = ca.mint_server(&server_spec(&["10.77.0.2", "fd77::2", "cam.local"])).unwrap();
        let (_, cert) = X509Certificate::from_der(&minted.cert_der).unwrap();
        assert_eq!(cert.raw_serial().len(), 16);
        assert!(!cert.is_ca());
        let eku = cert.extended_key_usage().unwrap().unwrap();
        assert!(eku.value.server_auth && !eku.value.client_auth);
        assert!(cert.key_usage().unwrap().unwrap().value.digital_signature());
        let days = (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()) / 86_400;
        assert!(days <= 365);
        let cn = cert.subject().iter_common_name().next().unwrap().as_str().unwrap().to_owned();
        assert!(SanName::parse(&cn).is_err(), "CN {cn:?} must not be an IP or host name");
        for name in ["10.77.0.2", "fd77::2", "cam.local"] {
            webpki_verify(&ca, &minted.cert_der, name).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
        assert!(webpki_verify(&ca, &minted.cert_der, "10.77.0.3").is_err());
    }

    #[test]
    fn serials_are_random() {
        let ca = CameraCa::generate(&spec(NameConstraintsPolicy::default())).unwrap();
        let a = describe(&ca.mint_server(&server_spec(&["10.0.0.1"])).unwrap().cert_der).unwrap();
        let b = describe(&ca.mint_server(&server_spec(&["10.0.0.1"])).unwrap().cert_der).unwrap();
        assert_ne!(a.serial, b.serial);
    }

    #[test]
    fn names_outside_the_constraints_are_left_out_and_reported() {
        let ca = CameraCa::generate(&spec(NameConstraintsPolicy::default())).unwrap();
        let minted = ca.mint_server(&server_spec(&["192.168.1.120", "8.8.8.8", "camera", "cam.local"])).unwrap();
        let names: Vec<String> = minted.names.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["192.168.1.120", "cam.local"]);
        let skipped: Vec<String> = minted.skipped.iter().map(ToString::to_string).collect();
        assert_eq!(skipped, ["8.8.8.8", "camera"]);
        let err = ca.mint_server(&server_spec(&["8.8.8.8"])).unwrap_err();
        assert!(err.to_string().contains("name constraints") || err.to_string().contains("permitted"), "{err}");
    }

    #[test]
    fn a_certificate_for_a_public_name_signed_by_the_camera_ca_is_refused_by_webpki() {
        // Sign directly with rcgen, bypassing mint_server's filter: what an attacker holding the
        // key a stolen camera keeps (the issuing CA's) could do.
        let ca = CameraCa::generate(&spec(NameConstraintsPolicy::default())).unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_der(
            &CertificateDer::from(ca.signer_der().to_vec()),
            rcgen::KeyPair::try_from(ca.key().pkcs8_der()).unwrap(),
        )
        .unwrap();
        for name in ["8.8.8.8", "bank.example.com"] {
            let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            let err = webpki_verify(&ca, cert.der(), name).unwrap_err();
            assert!(format!("{err:?}").contains("NameConstraintViolation"), "{name}: {err:?}");
        }
    }

    #[test]
    fn validity_over_365_days_is_refused() {
        let ca = CameraCa::generate(&spec(NameConstraintsPolicy::default())).unwrap();
        let mut s = server_spec(&["10.0.0.1"]);
        s.validity_days = 366;
        assert!(ca.mint_server(&s).is_err());
    }
}

mod requests {
    use super::*;

    fn request(key_type: KeyType) -> CsrRequest {
        serde_json::from_value(serde_json::json!({
            "subject": {"C": "CN", "ST": "GD", "L": "SZ", "O": "SNL", "OU": "TECH", "CN": "MyCamera"},
            "subject_alt_names": ["192.168.1.120", "cam.local"],
            "key_type": key_type.as_str(),
        }))
        .unwrap()
    }

    #[test]
    fn every_key_type_makes_a_request_an_issuer_can_sign() {
        for key_type in KeyType::ALL {
            let pending = create_csr(&request(key_type)).unwrap();
            let csr = rcgen::CertificateSigningRequestParams::from_der(&pending.csr_der.clone().into()).unwrap();
            let names: Vec<String> = csr.params.subject_alt_names.iter().map(|n| format!("{n:?}")).collect();
            assert_eq!(names.len(), 2, "{key_type:?}: {names:?}");
            let round = PendingCsr::from_bundle_pem(pending.to_bundle_pem().as_bytes()).unwrap();
            assert_eq!(round.csr_der, pending.csr_der);
            assert!(pending.csr_pem().starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
        }
    }

    #[test]
    fn bad_subjects_are_explained() {
        let mut r = request(KeyType::EcdsaP256);
        r.subject.country = Some("China".into());
        assert!(create_csr(&r).unwrap_err().to_string().contains("two-letter"));
        let mut r = request(KeyType::EcdsaP256);
        r.subject_alt_names = vec!["not a name".into()];
        assert!(create_csr(&r).unwrap_err().to_string().contains("neither an IP"));
        let mut r = request(KeyType::EcdsaP256);
        r.subject_alt_names.clear();
        r.subject.common_name = Some("MyCamera".into());
        assert!(create_csr(&r).unwrap_err().to_string().contains("subject alternative name"));
        let r: Result<CsrRequest, _> = serde_json::from_value(serde_json::json!({"key_type": "dsa-1024"}));
        assert!(r.is_err());
    }

    #[test]
    fn an_ip_common_name_is_copied_into_the_alt_names() {
        let mut r = request(KeyType::EcdsaP256);
        r.subject_alt_names.clear();
        r.subject.common_name = Some("192.168.1.120".into());
        let pending = create_csr(&r).unwrap();
        let csr = rcgen::CertificateSigningRequestParams::from_der(&pending.csr_der.clone().into()).unwrap();
        assert_eq!(csr.params.subject_alt_names.len(), 1);
    }

    #[test]
    fn a_client_request_needs_only_a_common_name_and_asks_for_client_authentication() {
        let mut r = request(KeyType::EcdsaP256);
        r.subject_alt_names.clear();
        r.subject.common_name = Some("camera-0042".into());
        let pending = camera_pki::create_csr_for(&r, camera_pki::x509::KeyPurpose::TlsClient).unwrap();
        let csr = rcgen::CertificateSigningRequestParams::from_der(&pending.csr_der.clone().into()).unwrap();
        assert!(csr.params.subject_alt_names.is_empty());
        assert_eq!(csr.params.extended_key_usages, vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth]);
        // Still something to name: without a common name it is refused like a server request.
        r.subject.common_name = None;
        assert!(camera_pki::create_csr_for(&r, camera_pki::x509::KeyPurpose::TlsClient).is_err());
    }
}

mod description {
    use super::*;

    #[test]
    fn describes_what_the_viewer_shows() {
        let ca = CameraCa::generate(&spec(NameConstraintsPolicy::default())).unwrap();
        let minted = ca.mint_server(&server_spec(&["10.77.0.2", "fd77::2", "cam.local"])).unwrap();
        let info = describe(&minted.cert_der).unwrap();
        assert_eq!(info.subject_alt_names, ["10.77.0.2", "fd77::2", "cam.local"]);
        assert_eq!(info.key_type, "ECDSA P-256");
        assert_eq!(info.sha256, fingerprint(&minted.cert_der));
        assert_eq!(info.sha256.len(), 32 * 3 - 1);
        assert_ne!(info.sha256, info.public_key_sha256);
        assert!(info.issuer.contains("Issuing CA"));
        assert!(!info.is_ca && !info.self_signed);
        assert!(info.not_before.ends_with('Z'), "{}", info.not_before);
        let ca_info = describe(ca.signer_der()).unwrap();
        assert!(ca_info.is_ca && !ca_info.self_signed);
        assert!(describe(ca.anchor_der()).unwrap().self_signed);
        assert!(describe(b"\x30\x03\x02\x01\x00").is_err());
    }
}

/// Found by the `config` fuzz target: rcgen panicked ("IA5 string must be ASCII") on a non-ASCII
/// DNS name constraint instead of returning an error.
#[test]
fn a_non_ascii_dns_constraint_is_an_error_not_a_panic() {
    let policy =
        NameConstraintsPolicy { permitted_subnets: Vec::new(), permitted_dns: vec![".site\u{397}ome.arpa".into()] };
    let e = CameraCa::generate(&spec(policy)).unwrap_err();
    assert!(e.to_string().contains("permitted_dns"), "{e}");
}

mod pem_interop {
    /// Runs openssl with `input` on stdin; its stdout.
    use camera_test_support::openssl_stdin_bytes as openssl;

    use super::*;

    fn spki(key: &SecretKey) -> Vec<u8> {
        use rcgen::PublicKeyData;
        let der = rustls_pki_types::PrivatePkcs8KeyDer::from(key.pkcs8_der());
        rcgen::KeyPair::try_from(&der)
            .or_else(|_| rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256))
            .unwrap()
            .subject_public_key_info()
    }

    /// The key PEM the camera writes (base64ct, 64 columns) is the key openssl reads, and the
    /// camera reads openssl's own PEM of it back to the same key.
    #[test]
    fn openssl_reads_our_key_pem_and_we_read_its() {
        for key_type in KeyType::ALL {
            let key = SecretKey::generate(key_type).unwrap();
            let pem = key.to_pem();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n") && pem.ends_with("-----END PRIVATE KEY-----\n"));
            assert!(pem.lines().all(|l| l.len() <= 64), "{key_type:?}");
            let public = openssl(&["pkey", "-pubout", "-outform", "DER"], pem.as_bytes());
            assert_eq!(public, spki(&key), "{key_type:?}: openssl reads another key");
            let private = openssl(&["pkcs8", "-topk8", "-nocrypt", "-outform", "DER"], pem.as_bytes());
            let reread = SecretKey::from_pkcs8_der(&private).unwrap();
            assert_eq!(spki(&reread), spki(&key), "{key_type:?}");
            let openssl_pem = openssl(&["pkey"], pem.as_bytes());
            let ours = SecretKey::from_pkcs8_pem(&openssl_pem).unwrap();
            assert_eq!(spki(&ours), spki(&key), "{key_type:?}: we read openssl's PEM as another key");
        }
    }

    #[test]
    fn openssl_reads_our_certificate_bundle() {
        let ca = CameraCa::generate(&spec(NameConstraintsPolicy::default())).unwrap();
        let minted = ca.mint_server(&server_spec(&["10.77.0.2"])).unwrap();
        let bundle = minted.bundle_pem(&ca);
        // openssl x509 reads the first certificate of the text: the leaf, after the key.
        let leaf = openssl(&["x509", "-outform", "DER"], bundle.as_bytes());
        assert_eq!(leaf, minted.cert_der);
        let back = MintedServer::from_bundle_pem(bundle.as_bytes()).unwrap();
        assert_eq!(back.cert_der, minted.cert_der);
        assert_eq!(back.key.pkcs8_der(), minted.key.pkcs8_der());
    }
}

mod errors {
    use std::error::Error;

    use super::*;

    #[test]
    fn errors_say_what_failed_and_carry_their_cause() {
        let ca = CameraCa::generate(&spec(NameConstraintsPolicy::default())).unwrap();
        let key = ca.key().to_pem();
        let damaged =
            CameraCa::from_pem(b"-----BEGIN CERTIFICATE-----\nAA*A\n-----END CERTIFICATE-----\n", key.as_bytes())
                .unwrap_err();
        assert!(matches!(damaged, PkiError::Pem(camera_pki::pem::PemError::NotBase64)), "{damaged:?}");
        let not_der = camera_pki::pem::encode("CERTIFICATE", b"\x30\x03\x02\x01\x00");
        let e = CameraCa::from_pem(not_der.as_bytes(), key.as_bytes()).unwrap_err();
        assert!(matches!(e, PkiError::ParseCertificate(_)), "{e:?}");
        assert_eq!(e.to_string(), "the certificate does not parse");
        assert!(e.source().is_some(), "the x509 parser's error is the source");
        let e = CameraCa::from_pem(ca.anchor_pem().as_bytes(), b"no key here").unwrap_err();
        assert!(matches!(e, PkiError::MissingPem { label: "PRIVATE KEY" }), "{e:?}");
        let e = describe_csr(b"\x30\x00").unwrap_err();
        assert!(matches!(e, PkiError::ParseRequest(_)) && e.source().is_some(), "{e:?}");
    }

    #[test]
    fn quoted_input_keeps_to_one_line() {
        let e = SanName::parse("cam\n2026-01-01 camera-web: the admin password was set\x1b[0m").unwrap_err();
        let text = e.to_string();
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(text.contains("cam\\n2026") && text.contains("\\x1b[0m"), "{text}");
        let e = "10.0.0.0\r/8".parse::<Subnet>().unwrap_err();
        assert!(!e.to_string().chars().any(char::is_control), "{e}");
        let policy =
            NameConstraintsPolicy { permitted_subnets: Vec::new(), permitted_dns: vec!["local\n\x1b[2J".into()] };
        let e = CameraCa::generate(&spec(policy)).unwrap_err();
        assert!(matches!(e, PkiError::InvalidRequest(RequestError::DnsConstraint { .. })), "{e:?}");
        assert!(!e.to_string().chars().any(char::is_control), "{e}");
    }
}

/// A factory CA made by OpenSSL names itself in PrintableString (and here with two OUs): the
/// certificates the camera signs with it must name their issuer with the very same bytes, or
/// clients that match names byte for byte cannot build the chain.
mod factory_ca {
    use camera_pki::x509::Certificate;
    use camera_test_support::{openssl, TempDir};

    use super::*;

    const CONFIG: &str = "\
[req]
prompt = no
string_mask = default
distinguished_name = dn
x509_extensions = v3_ca
[dn]
C = DE
O = Factory Cameras GmbH
0.OU = Line 1
1.OU = Cameras
CN = Factory CA 7
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
";

    #[test]
    fn a_printable_string_factory_ca_signs_leaves_that_openssl_verifies() {
        let dir = TempDir::new("factory-printable");
        std::fs::write(dir.join("ca.cnf"), CONFIG).unwrap();
        openssl(dir.path(), &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca.key"]);
        openssl(
            dir.path(),
            &["req", "-new", "-x509", "-config", "ca.cnf", "-key", "ca.key", "-days", "30", "-out", "ca.crt"],
        );
        let ca_pem = std::fs::read(dir.join("ca.crt")).unwrap();
        let ca = CameraCa::from_pem(&ca_pem, &std::fs::read(dir.join("ca.key")).unwrap()).unwrap();
        assert!(ca.constraints().is_none(), "OpenSSL's CA has no name constraints");

        let ca_cert = Certificate::parse(ca.signer_der()).unwrap();
        let printable = ca_cert.subject().attributes().all(|a| a.tag == der::Tag::PrintableString);
        assert!(printable, "OpenSSL wrote the factory CA's names in PrintableString");

        let minted = ca.mint_server(&server_spec(&["192.168.1.10", "cam.local"])).unwrap();
        let leaf = Certificate::parse(&minted.cert_der).unwrap();
        assert_eq!(leaf.issuer_der(), ca_cert.subject_der(), "the leaf names its issuer byte for byte");
        let ski = ca_cert.subject_key_identifier().unwrap().unwrap();
        assert!(
            minted.cert_der.windows(ski.len()).any(|w| w == ski.as_slice()),
            "the leaf's authorityKeyIdentifier is the CA's subjectKeyIdentifier"
        );

        std::fs::write(dir.join("leaf.pem"), camera_pki::pem::encode("CERTIFICATE", &minted.cert_der)).unwrap();
        let out = openssl(dir.path(), &["verify", "-CAfile", "ca.crt", "leaf.pem"]);
        assert!(String::from_utf8_lossy(&out.stdout).contains("leaf.pem: OK"), "{out:?}");
        // webpki matches the leaf's issuer to the anchor's subject byte for byte.
        webpki_verify(&ca, &minted.cert_der, "192.168.1.10").unwrap();
    }

    /// A name rcgen cannot write back (two attributes in one RDN) is refused when the CA is
    /// loaded, not discovered later in clients.
    #[test]
    fn a_factory_ca_with_a_multi_valued_name_is_refused_at_load() {
        let dir = TempDir::new("factory-multivalued");
        openssl(dir.path(), &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca.key"]);
        openssl(
            dir.path(),
            &[
                "req",
                "-new",
                "-x509",
                "-key",
                "ca.key",
                "-days",
                "30",
                "-out",
                "ca.crt",
                "-multivalue-rdn",
                "-subj",
                "/O=Factory/CN=Factory CA+OU=Line 1",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
            ],
        );
        let ca_pem = std::fs::read(dir.join("ca.crt")).unwrap();
        let err = CameraCa::from_pem(&ca_pem, &std::fs::read(dir.join("ca.key")).unwrap()).unwrap_err();
        assert!(matches!(err, PkiError::CaSubject { .. }), "{err:?}");
    }
}

/// The reader refuses certificates that are not what RFC 5280 allows, where clients would refuse
/// them too: a camera must not accept (as an upload, or from a SCEP CA) what browsers reject.
mod strict_reading {
    use camera_pki::x509::Certificate;

    /// (tag, whole TLV, content) of each element in `der`.
    fn elements(mut der: &[u8]) -> Vec<(u8, Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        while !der.is_empty() {
            let (header, len) = match der[1] {
                n if n < 0x80 => (2, usize::from(n)),
                n => {
                    let bytes = usize::from(n & 0x7f);
                    (2 + bytes, der[2..2 + bytes].iter().fold(0, |acc, &b| acc << 8 | usize::from(b)))
                }
            };
            out.push((der[0], der[..header + len].to_vec(), der[header..header + len].to_vec()));
            der = &der[header + len..];
        }
        out
    }

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n < 0x100 => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(content);
        out
    }

    /// An rcgen certificate (v3 with extensions) taken apart: its TBS fields and what follows them.
    struct Parts {
        der: Vec<u8>,
        fields: Vec<Vec<u8>>,
        algorithm: Vec<u8>,
        signature: Vec<u8>,
    }

    impl Parts {
        fn new() -> Self {
            let key = rcgen::KeyPair::generate().unwrap();
            let params = rcgen::CertificateParams::new(vec!["cam.example".to_owned()]).unwrap();
            let der = params.self_signed(&key).unwrap().der().to_vec();
            let outer = elements(&der).remove(0).2;
            let top = elements(&outer);
            let fields = elements(&top[0].2).into_iter().map(|(_, whole, _)| whole).collect();
            Self { fields, algorithm: top[1].1.clone(), signature: top[2].1.clone(), der }
        }

        /// The certificate put back together around other TBS fields.
        fn rebuild(&self, fields: &[Vec<u8>]) -> Vec<u8> {
            let tbs = tlv(0x30, &fields.concat());
            tlv(0x30, &[tbs, self.algorithm.clone(), self.signature.clone()].concat())
        }
    }

    #[test]
    fn the_rebuilt_certificate_is_read_as_it_was() {
        let parts = Parts::new();
        assert_eq!(parts.rebuild(&parts.fields), parts.der, "the test's DER writer reproduces the certificate");
        assert!(Certificate::parse(&parts.der).is_ok());
    }

    #[test]
    fn a_signed_algorithm_other_than_the_unsigned_one_is_refused() {
        let der = Parts::new().der;
        let ecdsa_sha256 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
        let at = der.windows(8).position(|w| w == ecdsa_sha256).unwrap();
        let mut forged = der.clone();
        forged[at + 7] = 0x03; // the TBS copy says ecdsa-with-SHA384; the outer one still SHA-256
        assert!(Certificate::parse(&forged).is_err());
    }

    #[test]
    fn extensions_twice_or_in_a_version_1_certificate_are_refused() {
        let parts = Parts::new();
        let (fields, rebuild) = (&parts.fields, |f: &[Vec<u8>]| parts.rebuild(f));
        assert_eq!(fields[0][0], 0xa0, "rcgen writes the version");
        let extensions = fields.last().unwrap().clone();
        assert_eq!(extensions[0], 0xa3, "rcgen writes extensions last");
        let twice = [fields.clone(), vec![extensions]].concat();
        assert!(Certificate::parse(&rebuild(&twice)).is_err(), "a second extensions block");
        let version_1 = &fields[1..];
        assert!(Certificate::parse(&rebuild(version_1)).is_err(), "extensions in a v1 certificate");
        let version_1_without = &fields[1..fields.len() - 1];
        assert!(Certificate::parse(&rebuild(version_1_without)).is_ok(), "a plain v1 certificate is still read");
    }
}
