//! The one mapping of S3 client errors to gRPC status codes, as the CSI
//! specification names them for a plugin's backend failing.

use strata_s3client::Error;
use tonic::Status;

/// The status for a failed call to objd about `what`. Messages never carry
/// credentials (the client's errors hold none).
pub fn from_s3(what: &str, e: &Error) -> Status {
    let msg = format!("{what}: {e}");
    match e {
        Error::S3 { status: 404, .. } => Status::not_found(msg),
        Error::S3 {
            status: 403, code, ..
        } if code == "QuotaExceeded" => Status::resource_exhausted(msg),
        Error::S3 { status: 403, .. } => Status::permission_denied(msg),
        Error::S3 { status: 409, .. } => Status::failed_precondition(msg),
        Error::S3 { status: 507, .. } => Status::resource_exhausted(msg),
        Error::S3 { status, .. } if *status >= 500 => Status::unavailable(msg),
        Error::S3 { .. } => Status::invalid_argument(msg),
        Error::Transport(_) => Status::unavailable(msg),
        Error::Protocol(_) | Error::Endpoint(_) => Status::internal(msg),
    }
}
