//! The one error type of the library; the CLI maps it to exit code 1.

use std::borrow::Cow;
use std::path::PathBuf;

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec file is invalid; each error is located.
    #[error("{0}")]
    Spec(#[from] SpecErrors),
    /// A cloud API call failed: names the resource, the API and the cloud's own message.
    #[error("{resource}: {api} failed: {message}")]
    Cloud {
        resource: String,
        api: Cow<'static, str>,
        message: String,
    },
    /// A create found its object already there (IAM `EntityAlreadyExists`, EKS
    /// `ResourceInUseException`, Google `ALREADY_EXISTS`, ARM `RoleAssignmentExists`): a
    /// retried create whose first reply was lost, or someone else's object. Apply reads it
    /// back to tell which; worded as a [`Error::Cloud`].
    #[error("{resource}: {api} failed: {message}")]
    Exists {
        resource: String,
        api: Cow<'static, str>,
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

/// A 1-based position in the spec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// One problem in a spec file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub path: PathBuf,
    pub location: Option<Location>,
    /// The field in path form, e.g. `spaces[0].controlPlanes[2]`; empty for whole-file errors.
    pub field: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(loc) = self.location {
            write!(f, ":{}:{}", loc.line, loc.column)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All problems found in one spec file (at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}
