use clap::Args;

use super::{ExitStatus, FormatArgs, PlanInputs, print};
use crate::error::Result;
use crate::ops::drift;

#[derive(Debug, Args)]
pub struct DriftArgs {
    #[command(flatten)]
    inputs: PlanInputs,
    #[command(flatten)]
    format: FormatArgs,
}

pub async fn run(args: DriftArgs) -> Result<ExitStatus> {
    let report = drift::drift(&args.inputs.inputs()).await?;
    print(&drift::render(
        &report,
        args.format.format,
        args.format.max_chars,
    )?);
    Ok(ExitStatus::changes_if(report.has_drift))
}
