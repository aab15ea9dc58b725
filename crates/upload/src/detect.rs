//! Recognises what a field holds (PEM blocks, DER certificate or key, PKCS#12, bare base64) and
//! collects certificates and normalised keys from it.

use camera_pki::pem;
use camera_pki::x509::{Certificate, Request};
use pkcs8::der::asn1::ObjectIdentifier;
use pkcs8::der::Decode;
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::{self, Budget, DecryptError, Passphrase};
use crate::keys::{self, encrypted_pkcs8, wrong_or_required};
use crate::material::Material;
use crate::{p12, UploadError};

/// Reads one upload field into `m`.
pub(crate) fn read_field(
    data: &[u8],
    pass: Option<&Passphrase>,
    budget: &mut Budget,
    m: &mut Material,
) -> Result<(), UploadError> {
    if pem::looks_like_pem(data) {
        return read_pem(data, pass, budget, m);
    }
    let first = data.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(data.len());
    if data.get(first) == Some(&0x30) {
        return read_der(&data[first..], pass, budget, m);
    }
    match pem::bare_base64(data) {
        Some(der) if der.first() == Some(&0x30) => read_der(&der, pass, budget, m),
        _ => Err(UploadError::Unrecognised),
    }
}

fn read_pem(data: &[u8], pass: Option<&Passphrase>, budget: &mut Budget, m: &mut Material) -> Result<(), UploadError> {
    let blocks = pem::parse(data).map_err(|e| UploadError::malformed_by("PEM text", e))?;
    let ec_hint =
        blocks.iter().find(|b| b.label == "EC PARAMETERS").and_then(|b| ObjectIdentifier::from_der(&b.der).ok());
    let mut recognised = false;
    for block in &blocks {
        let der = &block.der[..];
        match block.label.as_str() {
            "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => {
                m.add_cert(der).map_err(pem_malformed("PEM certificate"))?;
            }
            "PRIVATE KEY" => {
                m.add_key(keys::from_pkcs8(der).map_err(pem_malformed("PEM private key"))?)?;
            }
            "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
                let is_rsa = block.label.starts_with("RSA");
                let key = if is_encrypted_legacy(&block.headers) {
                    let plain = legacy_decrypt(&block.headers, der, pass, budget)?;
                    let parsed = if is_rsa { keys::from_pkcs1(&plain) } else { keys::from_sec1(&plain, ec_hint) };
                    match parsed {
                        // Valid padding but not a key: the passphrase was wrong.
                        Err(UploadError::Malformed { .. }) => return Err(wrong_or_required(pass)),
                        other => other?,
                    }
                } else if is_rsa {
                    keys::from_pkcs1(der).map_err(pem_malformed("PEM private key"))?
                } else {
                    keys::from_sec1(der, ec_hint).map_err(pem_malformed("PEM private key"))?
                };
                m.add_key(key)?;
            }
            "ENCRYPTED PRIVATE KEY" => {
                let key = encrypted_pkcs8(der, pass, budget).map_err(pem_malformed("PEM private key"))?;
                m.add_key(key)?;
            }
            "EC PARAMETERS" => {}
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => m.saw_csr = true,
            "PUBLIC KEY" | "RSA PUBLIC KEY" => m.saw_public_key = true,
            "DSA PRIVATE KEY" => return Err(UploadError::UnsupportedKey { found: "a DSA key".into() }),
            "OPENSSH PRIVATE KEY" => return Err(UploadError::UnsupportedKey { found: "an OpenSSH-format key".into() }),
            "PKCS12" => read_der(der, pass, budget, m)?,
            _ => continue,
        }
        recognised = true;
    }
    if recognised {
        Ok(())
    } else {
        Err(UploadError::Unrecognised)
    }
}

/// Relabels a structural error with what the installer uploaded.
fn pem_malformed(what: &'static str) -> impl Fn(UploadError) -> UploadError {
    move |e| match e {
        UploadError::Malformed { source, .. } => UploadError::Malformed { what, source },
        other => other,
    }
}

/// True when the outer DER header announces more bytes than there are.
fn truncated_der(data: &[u8]) -> bool {
    let Some(&len0) = data.get(1) else {
        return true;
    };
    let (len, header) = if len0 < 0x80 {
        (usize::from(len0), 2)
    } else {
        let n = usize::from(len0 & 0x7f);
        if n == 0 || n > 4 || data.len() < 2 + n {
            return n != 0 && n <= 4;
        }
        (data[2..2 + n].iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b)), 2 + n)
    };
    data.len() < header.saturating_add(len)
}

fn read_der(data: &[u8], pass: Option<&Passphrase>, budget: &mut Budget, m: &mut Material) -> Result<(), UploadError> {
    // Certificates, possibly several concatenated.
    if Certificate::parse_first(data).is_ok() {
        let mut rest = data;
        while !rest.is_empty() {
            match Certificate::parse_first(rest) {
                Ok((_, tail)) => {
                    m.add_cert(&rest[..rest.len() - tail.len()])?;
                    rest = tail;
                }
                Err(_) => break,
            }
        }
        return Ok(());
    }
    let pfx_error = match pkcs12::pfx::Pfx::from_der(data) {
        Ok(pfx) => return p12::read(&pfx, pass, budget, m),
        Err(e) => e,
    };
    if pkcs8::PrivateKeyInfo::from_der(data).is_ok() {
        return m.add_key(keys::from_pkcs8(data)?);
    }
    if pkcs12::pbe_params::EncryptedPrivateKeyInfo::from_der(data).is_ok() {
        return m.add_key(encrypted_pkcs8(data, pass, budget)?);
    }
    if pkcs1::RsaPrivateKey::from_der(data).is_ok() {
        return m.add_key(keys::from_pkcs1(data)?);
    }
    if sec1::EcPrivateKey::from_der(data).is_ok() {
        return m.add_key(keys::from_sec1(data, None)?);
    }
    if Request::parse(data).is_ok() {
        m.saw_csr = true;
        return Ok(());
    }
    if truncated_der(data) {
        // Cut short: what the outer structure's parser says about it.
        return Err(UploadError::malformed_by("file (DER or PKCS#12)", pfx_error));
    }
    Err(UploadError::Unrecognised)
}

fn is_encrypted_legacy(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("Proc-Type") && v.replace(' ', "").eq_ignore_ascii_case("4,ENCRYPTED"))
}

/// Decrypts a legacy OpenSSL encrypted PEM body (`DEK-Info`, key from EVP_BytesToKey with MD5, one round).
fn legacy_decrypt(
    headers: &[(String, String)],
    body: &[u8],
    pass: Option<&Passphrase>,
    budget: &mut Budget,
) -> Result<Zeroizing<Vec<u8>>, UploadError> {
    let pass = pass.ok_or(UploadError::PassphraseRequired)?;
    let dek = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("DEK-Info"))
        .map(|(_, v)| v.as_str())
        .ok_or(UploadError::malformed("encrypted PEM key (no DEK-Info)"))?;
    let (cipher, iv_hex) = dek.split_once(',').ok_or(UploadError::malformed("encrypted PEM key"))?;
    let cipher = cipher.trim().to_ascii_uppercase();
    let iv = camera_pki::text::unhex(iv_hex).ok_or(UploadError::malformed("encrypted PEM key"))?;
    let (key_len, iv_len): (usize, usize) = match cipher.as_str() {
        "AES-128-CBC" => (16, 16),
        "AES-192-CBC" => (24, 16),
        "AES-256-CBC" => (32, 16),
        "DES-EDE3-CBC" => (24, 8),
        other => return Err(UploadError::UnsupportedEncryption { scheme: other.to_string() }),
    };
    if iv.len() != iv_len {
        return Err(UploadError::malformed("encrypted PEM key"));
    }
    // One MD5 hash per 16 bytes of key (EVP_BytesToKey, one iteration).
    budget.charge(1, u64::try_from(key_len.div_ceil(16)).unwrap_or(u64::MAX))?;
    let key = evp_bytes_to_key(pass.bytes(), &iv[..8], key_len);
    let mut buf = Zeroizing::new(body.to_vec());
    let res = match cipher.as_str() {
        "AES-128-CBC" => crypto::cbc_decrypt::<aes::Aes128>(&key, &iv, &mut buf),
        "AES-192-CBC" => crypto::cbc_decrypt::<aes::Aes192>(&key, &iv, &mut buf),
        "AES-256-CBC" => crypto::cbc_decrypt::<aes::Aes256>(&key, &iv, &mut buf),
        _ => crypto::cbc_decrypt::<des::TdesEde3>(&key, &iv, &mut buf),
    };
    match res {
        Ok(len) => {
            buf.truncate(len);
            Ok(buf)
        }
        Err(DecryptError::Wrong) => Err(UploadError::WrongPassphrase),
        Err(DecryptError::Refused(e)) => Err(e),
    }
}

/// OpenSSL's EVP_BytesToKey with MD5 and one iteration (what `-traditional` encrypted PEM uses).
fn evp_bytes_to_key(pass: &[u8], salt: &[u8], key_len: usize) -> Zeroizing<Vec<u8>> {
    use md5::{Digest, Md5};
    let mut out = Zeroizing::new(Vec::with_capacity(key_len + 16));
    let mut prev: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
    while out.len() < key_len {
        let mut h = Md5::new();
        h.update(&prev[..]);
        h.update(pass);
        h.update(salt);
        let mut d = h.finalize();
        prev.clear();
        prev.extend_from_slice(&d);
        d.as_mut_slice().zeroize();
        out.extend_from_slice(&prev);
    }
    out.truncate(key_len);
    out
}
