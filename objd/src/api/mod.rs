//! The protocol edges of objd: the S3 API ([`s3`], on the `s3s` crate);
//! beside its operations, as `s3s` routes ([`routes`]), the admin API
//! ([`admin`], with users, groups and policies in [`iam_admin`] and the
//! KMS's keys in [`kms_admin`]) and objd's listing with user metadata
//! ([`meta_list`]); and the AWS IAM and STS APIs ([`query`]). Handlers
//! translate requests into object-layer and IAM calls and results back;
//! errors map to S3 codes in [`error`] only, and to IAM/STS codes in
//! [`query`] only.

pub mod admin;
pub mod error;
pub mod iam_admin;
pub mod kms_admin;
pub mod meta_list;
pub mod query;
pub mod routes;
pub mod s3;
pub mod tier_admin;
