//! Support for `tests/interop.rs`: the camera's PKI as clients and thieves see it, the clients, and
//! the matrix.
#![allow(dead_code)]

pub mod clients;
pub mod matrix;
pub mod pki;
