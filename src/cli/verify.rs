use clap::Args;

use super::{ExitStatus, FormatArgs, SpecArgs, StateArgs, print};
use crate::error::Result;
use crate::ops::verify;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    spec: SpecArgs,
    #[command(flatten)]
    state: StateArgs,
    #[command(flatten)]
    format: FormatArgs,
    /// Restart the deployments whose pods started before their identity last changed (what
    /// `kubectl rollout restart` does), and only those.
    #[arg(long)]
    restart: bool,
    /// Check only this control plane (its host namespace; repeatable).
    #[arg(long = "control-plane", value_name = "NAMESPACE")]
    control_planes: Vec<String>,
}

pub async fn run(args: VerifyArgs) -> Result<ExitStatus> {
    let report = verify::verify(
        &args.spec.file,
        args.state.state.as_ref(),
        args.restart,
        &args.control_planes,
    )
    .await?;
    print(&verify::render(
        &report,
        args.format.format,
        args.format.max_chars,
    )?);
    Ok(ExitStatus::changes_if(report.has_findings()))
}
