//! `objd`, the Strata object daemon, as a library: the layers of
//! `DESIGN.md` from the bottom up: [`drive`] ([`buffers`] keeps the
//! buffers reads and writes fill, for reuse), [`erasure`], [`meta`] (formats),
//! [`object`] (the object layer over erasure sets), [`policy`] (policy
//! documents), [`iam`] (users, groups and their policies), [`sse`] and [`kms`] (encryption and its keys), [`api`] (S3 and admin) and [`server`] (listeners,
//! authorization and start-up) with [`tls`] (its certificates), [`metrics`]
//! and [`audit`] (what the server reports of the requests it serves).

pub mod acl;
pub mod api;
pub mod audit;
pub mod buffers;
pub mod cluster;
pub mod cors;
pub mod digest;
pub mod drive;
pub mod erasure;
pub mod iam;
pub mod kms;
pub mod lifecycle;
pub mod meta;
pub mod metrics;
pub mod object;
pub mod policy;
pub mod server;
pub mod sse;
pub mod tier;
pub mod tls;
