//! The S3 client of Strata's own tools (`objd admin`, fuse-mount, the CSI
//! driver): SigV4 request signing ([`sigv4`]) and a small async client for
//! the object operations they need ([`Client`]; objd's listing with
//! metadata in [`detailed`]), on hyper, and plain
//! HTTP(S) requests to other services ([`Fetcher`]). Kept apart from
//! objd so that the tools do not carry the server, and lean so that they
//! do not carry a full SDK either.

pub mod admin;
mod client;
mod credentials;
pub mod detailed;
mod error;
pub mod fetch;
pub mod sigv4;
mod tls;
mod xml;

pub use admin::{ADMIN_PREFIX, BucketUsage};
pub use client::{Client, ListPage, ListedObject, ObjectInfo, Replace};
pub use credentials::read_credentials_file;
pub use detailed::{Detailed, DetailedPage, ListFrom};
pub use error::{Error, Result};
pub use fetch::Fetcher;
pub use sigv4::Signer;
pub use tls::Tls;
pub use xml::escape as xml_escape;
