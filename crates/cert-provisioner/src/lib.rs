//! `cert-provisioner`, the boot step: a thin command line over [`camera_provision`].
//!
//! - [`entry`]: the command line (`main`, callable as a library function for the multi-call
//!   binary).

pub mod entry;
