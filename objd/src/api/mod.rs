//! The protocol edges of objd: the S3 API ([`s3`], on the `s3s` crate) and
//! the admin API ([`admin`], with users, groups and policies in
//! [`iam_admin`]). Handlers translate requests into object-layer
//! calls and results back; errors map to S3 codes in [`error`] only.

pub mod admin;
pub mod error;
pub mod iam_admin;
pub mod s3;
