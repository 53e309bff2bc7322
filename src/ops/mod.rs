//! The operations behind the commands, one module per command: each takes its options, does
//! the work, and returns what the command line prints and maps to an exit code. Nothing here
//! reads the terminal or decides an exit code.

pub mod apply;
pub mod drift;
pub mod helm_values;
pub mod inspect;
pub mod plan;
pub mod validate;
pub mod verify;

use std::path::PathBuf;

/// What every operation that reads the clouds needs.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The identity spec.
    pub spec: PathBuf,
    /// The state file; its lock file sits beside it.
    pub state: PathBuf,
    /// How many cloud calls may be in flight at once.
    pub parallelism: usize,
}
