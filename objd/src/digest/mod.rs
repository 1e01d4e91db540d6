//! Digests computed over request bodies at line rate: the MD5 of an
//! upload's ETag ([`Md5`]), hashed for many uploads at once on CPUs with
//! SIMD lanes for it ([`pool`], over [`lanes`]).

pub mod lanes;
mod md5;
mod pool;

pub use md5::Md5;
pub use pool::{Pool, pool};
