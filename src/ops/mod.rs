//! The operations behind the commands, one module per command: each takes its options, does
//! the work, and returns what the command line prints and maps to an exit code. Nothing here
//! reads the terminal or decides an exit code.

pub mod apply;
pub mod drift;
pub mod helm_values;
pub mod init;
pub mod inspect;
pub mod plan;
pub mod validate;
pub mod verify;

use std::path::PathBuf;
use std::time::Duration;

use crate::spec::Spec;
use crate::state::StateLocation;

/// What every operation that reads the clouds needs.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The identity spec.
    pub spec: PathBuf,
    /// The state's location from `--state` or `IDPLAN_STATE`; else the spec's `state:`.
    pub state: Option<StateLocation>,
    /// How long to wait for a state lock another run holds.
    pub lock_timeout: Duration,
    /// How many cloud calls may be in flight at once.
    pub parallelism: usize,
    /// `--additive-only`: mark what is applied without a review and what waits.
    pub additive_only: bool,
    /// `--control-plane`: the host namespaces a plan is limited to; empty: all.
    pub control_planes: Vec<String>,
}

/// Where the state is: `--state` or `IDPLAN_STATE` (`explicit`), else the spec's `state:`,
/// else the default local file.
pub fn state_location(explicit: Option<&StateLocation>, spec: Option<&Spec>) -> StateLocation {
    explicit
        .or_else(|| spec.and_then(|s| s.state.as_ref()))
        .cloned()
        .unwrap_or_default()
}
