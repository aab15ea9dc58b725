//! What one upload holds, collected from all its fields: certificates (each once) and normalised
//! keys, within the limits of one upload.

use camera_pki::x509::Certificate;

use crate::keys::PrivateKey;
use crate::UploadError;

/// Most certificates and keys one upload may hold.
pub(crate) const MAX_CERTS: usize = 32;
pub(crate) const MAX_KEYS: usize = 8;

/// Everything found in the upload's fields.
#[derive(Default)]
pub(crate) struct Material {
    pub certs: Vec<Vec<u8>>,
    pub keys: Vec<PrivateKey>,
    pub saw_csr: bool,
    pub saw_public_key: bool,
}

impl Material {
    pub(crate) fn add_cert(&mut self, der: &[u8]) -> Result<(), UploadError> {
        match Certificate::parse_first(der) {
            Ok((_, rest)) => {
                let used = &der[..der.len() - rest.len()];
                if !self.certs.iter().any(|c| c == used) {
                    if self.certs.len() >= MAX_CERTS {
                        return Err(UploadError::TooManyItems);
                    }
                    self.certs.push(used.to_vec());
                }
                Ok(())
            }
            Err(e) => Err(UploadError::malformed_by("certificate", e)),
        }
    }

    pub(crate) fn add_key(&mut self, key: PrivateKey) -> Result<(), UploadError> {
        if !self.keys.iter().any(|k| k.pkcs8 == key.pkcs8) {
            if self.keys.len() >= MAX_KEYS {
                return Err(UploadError::TooManyItems);
            }
            self.keys.push(key);
        }
        Ok(())
    }
}
