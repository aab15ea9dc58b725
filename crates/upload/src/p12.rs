//! PKCS#12 / PFX: MAC check, then certificates and keys out of the (possibly encrypted) safes.
//!
//! Structures are RustCrypto's `pkcs12` and `cms` types; the PKCS#12 KDF and HMAC run over ring.

use pkcs8::der::asn1::OctetString;
use pkcs8::der::{Decode, Header, Reader, SliceReader};
use ring::{digest, hmac};
use zeroize::Zeroize;

use crate::crypto::{self, Budget, DecryptError, Passphrase};
use crate::keys::{self, encrypted_pkcs8, wrong_or_required};
use crate::material::Material;
use crate::UploadError;

const ID_DATA: &str = "1.2.840.113549.1.7.1";
const ID_ENCRYPTED_DATA: &str = "1.2.840.113549.1.7.6";
const KEY_BAG: &str = "1.2.840.113549.1.12.10.1.1";
const SHROUDED_KEY_BAG: &str = "1.2.840.113549.1.12.10.1.2";
const CERT_BAG: &str = "1.2.840.113549.1.12.10.1.3";
const SAFE_CONTENTS_BAG: &str = "1.2.840.113549.1.12.10.1.6";
const X509_CERT_TYPE: &str = "1.2.840.113549.1.9.22.1";
const MAX_SAFES: usize = 16;
const MAX_BAGS: usize = 64;

fn malformed() -> UploadError {
    UploadError::malformed("PKCS#12 file")
}

fn malformed_by(e: impl std::error::Error + Send + Sync + 'static) -> UploadError {
    UploadError::malformed_by("PKCS#12 file", e)
}

/// Reads a parsed PFX into `m`.
pub(crate) fn read(
    pfx: &pkcs12::pfx::Pfx,
    pass: Option<&Passphrase>,
    budget: &mut Budget,
    m: &mut Material,
) -> Result<(), UploadError> {
    if pfx.auth_safe.content_type.to_string() != ID_DATA {
        return Err(UploadError::UnsupportedEncryption { scheme: "public-key integrity mode (not a password)".into() });
    }
    let auth_safe = pfx.auth_safe.content.decode_as::<OctetString>().map_err(malformed_by)?;
    let auth_bytes = auth_safe.as_bytes();
    let empty = Passphrase::empty();
    let password = pass.unwrap_or(&empty);

    if let Some(mac) = &pfx.mac_data {
        let mut ok = verify_mac(mac, auth_bytes, &password.bmp(), budget)?;
        if !ok && pass.is_none() {
            // OpenSSL also writes MACs over a zero-length ("NULL") password.
            ok = verify_mac(mac, auth_bytes, &[], budget)?;
        }
        if !ok {
            return Err(wrong_or_required(pass));
        }
    }

    let safes = Vec::<cms::content_info::ContentInfo>::from_der(auth_bytes).map_err(malformed_by)?;
    if safes.len() > MAX_SAFES {
        return Err(UploadError::TooManyItems);
    }
    for safe in &safes {
        match safe.content_type.to_string().as_str() {
            ID_DATA => {
                let data = safe.content.decode_as::<OctetString>().map_err(malformed_by)?;
                read_safe_contents(data.as_bytes(), pass, budget, m, 0)?;
            }
            ID_ENCRYPTED_DATA => {
                let ed = safe.content.decode_as::<cms::encrypted_data::EncryptedData>().map_err(malformed_by)?;
                let eci = &ed.enc_content_info;
                let data = eci.encrypted_content.as_ref().ok_or_else(malformed)?;
                let alg = crypto::alg_ref(&eci.content_enc_alg);
                let plain = match crypto::decrypt(alg, data.as_bytes(), password, budget) {
                    Ok(p) => p,
                    Err(DecryptError::Wrong) => return Err(wrong_or_required(pass)),
                    Err(DecryptError::Refused(e)) => return Err(e),
                };
                read_safe_contents(&plain, pass, budget, m, 0).map_err(|e| match e {
                    // Good padding but garbage inside: a wrong password on a file without MAC.
                    UploadError::Malformed { .. } if pfx.mac_data.is_none() => wrong_or_required(pass),
                    other => other,
                })?;
            }
            _ => {
                return Err(UploadError::UnsupportedEncryption {
                    scheme: "public-key encryption (enveloped data)".into(),
                })
            }
        }
    }
    Ok(())
}

fn verify_mac(
    mac: &pkcs12::mac_data::MacData,
    data: &[u8],
    pass_bmp: &[u8],
    budget: &mut Budget,
) -> Result<bool, UploadError> {
    let (dig, hm): (&'static digest::Algorithm, hmac::Algorithm) = match mac.mac.algorithm.oid.to_string().as_str() {
        "1.3.14.3.2.26" => (&digest::SHA1_FOR_LEGACY_USE_ONLY, hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
        "2.16.840.1.101.3.4.2.1" => (&digest::SHA256, hmac::HMAC_SHA256),
        "2.16.840.1.101.3.4.2.2" => (&digest::SHA384, hmac::HMAC_SHA384),
        "2.16.840.1.101.3.4.2.3" => (&digest::SHA512, hmac::HMAC_SHA512),
        other => {
            return Err(UploadError::UnsupportedEncryption {
                scheme: format!("a PKCS#12 integrity check of unknown type ({other})"),
            })
        }
    };
    let iterations = u64::try_from(mac.iterations).map_err(malformed_by)?;
    if iterations == 0 {
        return Err(malformed());
    }
    let [key] = budget.pkcs12_kdf(dig, pass_bmp, mac.mac_salt.as_bytes(), iterations, [(3, dig.output_len())])?;
    let key = hmac::Key::new(hm, &key);
    Ok(hmac::verify(&key, data, mac.mac.digest.as_bytes()).is_ok())
}

/// The value inside an `[0] EXPLICIT` wrapper (a SafeBag's bagValue, a CertBag's certValue).
fn explicit0(tlv: &[u8]) -> Option<&[u8]> {
    let mut r = SliceReader::new(tlv).ok()?;
    let header = Header::decode(&mut r).ok()?;
    if header.tag != (pkcs8::der::Tag::ContextSpecific { constructed: true, number: pkcs8::der::TagNumber::N0 }) {
        return None;
    }
    r.read_slice(header.length).ok()
}

fn read_safe_contents(
    der: &[u8],
    pass: Option<&Passphrase>,
    budget: &mut Budget,
    m: &mut Material,
    depth: u8,
) -> Result<(), UploadError> {
    let mut bags = Vec::<pkcs12::safe_bag::SafeBag>::from_der(der).map_err(malformed_by)?;
    if bags.len() > MAX_BAGS {
        for bag in &mut bags {
            bag.bag_value.zeroize();
        }
        return Err(UploadError::TooManyItems);
    }
    let mut result = Ok(());
    for bag in &mut bags {
        if result.is_ok() {
            result = read_bag(bag, pass, budget, m, depth);
        }
        // keyBag values are plaintext keys: wipe every bag's copy.
        bag.bag_value.zeroize();
    }
    result
}

fn read_bag(
    bag: &pkcs12::safe_bag::SafeBag,
    pass: Option<&Passphrase>,
    budget: &mut Budget,
    m: &mut Material,
    depth: u8,
) -> Result<(), UploadError> {
    let value = explicit0(&bag.bag_value).ok_or_else(malformed)?;
    match bag.bag_id.to_string().as_str() {
        KEY_BAG => m.add_key(keys::from_pkcs8(value)?),
        SHROUDED_KEY_BAG => m.add_key(encrypted_pkcs8(value, pass, budget)?),
        CERT_BAG => {
            let mut r = SliceReader::new(value).map_err(malformed_by)?;
            let cert_bag: pkcs12::cert_type::CertBag = r.decode().map_err(malformed_by)?;
            if cert_bag.cert_id.to_string() == X509_CERT_TYPE {
                m.add_cert(cert_bag.cert_value.as_bytes())?;
            }
            Ok(())
        }
        SAFE_CONTENTS_BAG if depth < 2 => read_safe_contents(value, pass, budget, m, depth + 1),
        _ => Ok(()),
    }
}
