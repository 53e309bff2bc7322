use clap::Args;

use super::plan::make;
use super::{Exit, FormatArgs, PlanInputs, print};
use crate::drift::{self, Report};
use crate::error::Result;
use crate::plan::Plan;

#[derive(Debug, Args)]
pub struct DriftArgs {
    #[command(flatten)]
    inputs: PlanInputs,
    #[command(flatten)]
    format: FormatArgs,
}

/// Drift is judged against the state; the spec is read too, to mention changes never applied.
pub async fn run(args: DriftArgs) -> Result<Exit> {
    let planned = make(&args.inputs, "drift").await?;
    let state = planned.state.state();
    let resources = drift::detect(
        state,
        &planned.clouds,
        usize::from(args.inputs.run.parallelism),
    )
    .await?;
    // What the plan would change beyond repairing the drift: spec edits never applied.
    let pending: Vec<_> = planned
        .plan
        .resource_changes
        .iter()
        .filter(|c| !resources.iter().any(|d| d.address == c.address))
        .cloned()
        .collect();
    let pending = Plan::new(String::new(), 0, String::new(), pending).summary;
    let report = Report {
        has_drift: !resources.is_empty(),
        checked: state.resources.len(),
        resources,
        pending: Some(pending),
    };
    print(&drift::render(&report, args.format.format));
    Ok(if report.has_drift {
        Exit::Changes
    } else {
        Exit::Success
    })
}
