//! Errors of the S3 client: the server's S3 error (status and code), or a
//! transport failure.

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The server answered with an S3 error.
    #[error("S3 error {status}: {code}: {message}")]
    S3 {
        status: u16,
        code: String,
        message: String,
    },
    /// The server could not be reached or the connection broke.
    #[error("connection: {0}")]
    Transport(String),
    /// The answer could not be understood.
    #[error("bad response: {0}")]
    Protocol(String),
    #[error("invalid endpoint: {0}")]
    Endpoint(String),
}

impl Error {
    /// HTTP status of an S3 error (0 otherwise).
    pub fn status(&self) -> u16 {
        match self {
            Error::S3 { status, .. } => *status,
            _ => 0,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == 404
    }

    /// Worth retrying: the server was unreachable or answered 5xx.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Transport(_)) || self.status() >= 500
    }
}

pub type Result<T> = std::result::Result<T, Error>;
