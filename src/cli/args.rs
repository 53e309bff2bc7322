//! The argument groups several commands share.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::ops::Inputs;
use crate::plan::render::Format;

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// The identity spec.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = "idplan.yaml"
    )]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct StateArgs {
    /// The state file; its lock file sits beside it.
    #[arg(
        long = "state",
        value_name = "FILE",
        default_value = "state/idplan.state.json"
    )]
    pub state: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// How many cloud calls may be in flight at once.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
}

/// What every command that reads the clouds needs.
#[derive(Debug, Args)]
pub struct PlanInputs {
    #[command(flatten)]
    pub spec: SpecArgs,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

impl PlanInputs {
    pub fn inputs(&self) -> Inputs {
        Inputs {
            spec: self.spec.file.clone(),
            state: self.state.state.clone(),
            parallelism: usize::from(self.run.parallelism),
        }
    }
}

#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Output format: text for terminals, markdown for pull-request comments, json for tools.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// Writes to stdout; colours are stripped when it is not a terminal (or NO_COLOR is set).
pub fn print(text: &str) {
    let mut out = anstream::stdout();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
