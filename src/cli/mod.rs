//! The command line, in the manner of cargo's `commands/<verb>.rs`: each file parses its
//! arguments, calls one operation of [`crate::ops`], prints its outcome and maps it to an
//! [`ExitStatus`]. This file holds the argument groups commands share; `command.rs` the command
//! list and the dispatch, `status.rs` the process around a command and its output.

mod apply;
mod command;
mod docs;
mod drift;
mod helm_values;
mod init;
mod plan;
mod show;
mod state;
mod status;
mod validate;
mod verify;
mod watch;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

pub use command::command;
use status::print;
pub use status::{ExitStatus, main};

use crate::ops::Inputs;
use crate::plan::render::Format;
use crate::state::StateLocation;

#[derive(Debug, Args)]
struct SpecArgs {
    /// The identity spec.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = "idplan.yaml"
    )]
    file: PathBuf,
}

#[derive(Debug, Args)]
struct StateArgs {
    /// Where the state is kept: a path, or s3://BUCKET/KEY, gs://BUCKET/OBJECT,
    /// azblob://ACCOUNT/CONTAINER/BLOB (locked there for a team). Default: the spec's
    /// `state:`, else state/idplan.state.json.
    #[arg(long = "state", value_name = "LOCATION", env = "IDPLAN_STATE")]
    state: Option<StateLocation>,
}

#[derive(Debug, Args)]
struct ParallelismArgs {
    /// How many cloud calls may be in flight at once.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    parallelism: u16,
}

impl ParallelismArgs {
    fn get(&self) -> usize {
        usize::from(self.parallelism)
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    parallelism: ParallelismArgs,
    /// How long to wait for a state lock another run holds (`30s`, `5m`); 0 refuses at once.
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = duration)]
    lock_timeout: Duration,
}

/// A duration as `30s`, `5m`, `1h 30m`, or `0`.
fn duration(text: &str) -> Result<Duration, String> {
    match text.trim() {
        "0" => Ok(Duration::ZERO),
        t => humantime::parse_duration(t).map_err(|e| format!("{e} (write it as 30s, 5m or 1h)")),
    }
}

/// What every command that reads the clouds needs.
#[derive(Debug, Args)]
struct PlanInputs {
    #[command(flatten)]
    spec: SpecArgs,
    #[command(flatten)]
    state: StateArgs,
    #[command(flatten)]
    run: RunArgs,
    /// Limit what is read and written to what this control plane needs (its host namespace;
    /// repeatable): its own associations or credentials, and the shared roles and policies
    /// that name it, brought only as far as it needs. Other control planes are not read, so
    /// what is pending for them (a removal) is neither applied nor reported.
    #[arg(long = "control-plane", value_name = "NAMESPACE")]
    control_planes: Vec<String>,
}

#[derive(Debug, Args)]
struct FormatArgs {
    /// Output format: text for terminals, markdown for pull-request comments, json for tools.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// The most characters of `--format markdown` (a pull-request comment holds 65,536): the
    /// summary is never cut, the details are cut to fit and what was left out is counted.
    #[arg(long, value_name = "N", default_value_t = crate::plan::render::DEFAULT_MAX_CHARS)]
    max_chars: usize,
}

impl PlanInputs {
    fn inputs(&self) -> Inputs {
        Inputs {
            spec: self.spec.file.clone(),
            state: self.state.state.clone(),
            lock_timeout: self.run.lock_timeout,
            parallelism: self.run.parallelism.get(),
            additive_only: false,
            control_planes: self.control_planes.clone(),
        }
    }
}
