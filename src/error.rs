//! The one error type of the library; the CLI maps it to exit code 1.

use std::path::PathBuf;

use crate::spec::SpecErrors;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec file is invalid; each error is located.
    #[error("{0}")]
    Spec(#[from] SpecErrors),
    /// A cloud API call failed: names the resource, the API and the cloud's own message.
    #[error("{resource}: {api} failed: {message}")]
    Cloud {
        resource: String,
        api: &'static str,
        message: String,
    },
    /// A create found its object already there (IAM `EntityAlreadyExists`, EKS
    /// `ResourceInUseException`, Google `ALREADY_EXISTS`, ARM `RoleAssignmentExists`): a
    /// retried create whose first reply was lost, or someone else's object. Apply reads it
    /// back to tell which; worded as a [`Error::Cloud`].
    #[error("{resource}: {api} failed: {message}")]
    Exists {
        resource: String,
        api: &'static str,
        message: String,
    },
    /// Reading or writing a local file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Anything the user must act on: a limit, a conflict, a stale plan, a held lock.
    #[error("{0}")]
    User(String),
    /// An invariant idplan guarantees did not hold: a bug in idplan, not the user's to fix.
    #[error("internal error (a bug in idplan, please report it): {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn user(msg: impl Into<String>) -> Self {
        Error::User(msg.into())
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }

    /// This error, as the "already exists" of a create when `exists` says so.
    pub fn exists_if(self, exists: bool) -> Self {
        match self {
            Error::Cloud {
                resource,
                api,
                message,
            } if exists => Error::Exists {
                resource,
                api,
                message,
            },
            e => e,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
