use std::path::PathBuf;

use clap::Args;

use super::{ExitStatus, FormatArgs, print};
use crate::error::Result;
use crate::ops::inspect;

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A plan saved by `idplan plan --out`.
    #[arg(value_name = "PLANFILE")]
    plan: PathBuf,
    #[command(flatten)]
    format: FormatArgs,
}

pub fn run(args: ShowArgs) -> Result<ExitStatus> {
    print(&inspect::show(
        &args.plan,
        args.format.format,
        args.format.max_chars,
    )?);
    Ok(ExitStatus::Success)
}
