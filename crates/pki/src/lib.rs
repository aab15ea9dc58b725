//! The camera's certificates.
//!
//! - [`CameraCa`]: the per-camera CA, name-constrained to local addresses: created on first boot
//!   as two tiers (a root whose key is dropped after it signs the issuing CA), or loaded from the
//!   state directory (two tiers, or one tier made by earlier versions).
//! - [`CameraCa::mint_server`]: a server certificate for the camera's current names.
//! - [`create_csr`]: a certificate request whose key stays on the camera.
//! - [`describe`]: what the UI and the API show about a certificate.
//!
//! Private keys are PKCS#8 DER in [`SecretKey`], zeroized when dropped.

mod ca;
mod csr;
mod describe;
mod error;
mod keys;
mod names;
pub mod pem;
mod server;
pub mod text;
pub mod x509;

pub use ca::{CaSpec, CameraCa, CA_VALIDITY_DAYS};
pub use csr::{create_csr, create_csr_for, CsrRequest, CsrSubject, PendingCsr};
pub use describe::{describe, describe_csr, fingerprint, CertificateInfo, CsrInfo};
pub use error::{PkiError, RequestError};
pub use keys::{KeyType, SecretKey};
pub use names::{NameConstraintsPolicy, SanName, Subnet};
pub use server::{MintedServer, ServerSpec, MAX_SERVER_VALIDITY_DAYS};
