use clap::Args;

use super::plan::{decide, open};
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

/// Drift is judged against the state alone; the spec is planned too, to mention changes never
/// applied, but a plan that cannot be made (a conflict, say) does not hide the drift.
pub async fn run(args: DriftArgs) -> Result<Exit> {
    let (spec, state, clouds, discovered) = open(&args.inputs, "drift").await?;
    let control_planes = drift::control_planes(&spec, state.state(), &discovered);
    let resources = drift::detect(
        state.state(),
        &clouds,
        usize::from(args.inputs.run.parallelism),
    )
    .await?;
    let (pending, plan_error) =
        match decide(&spec, &state, &clouds, &discovered, &args.inputs).await {
            Ok(plan) => {
                // What the plan would change beyond repairing the drift: spec edits never applied.
                let pending: Vec<_> = plan
                    .resource_changes
                    .into_iter()
                    .filter(|c| !resources.iter().any(|d| d.address == c.address))
                    .collect();
                (
                    Some(Plan::new(String::new(), 0, String::new(), pending).summary),
                    None,
                )
            }
            Err(e) => (None, Some(e.to_string())),
        };
    let report = Report {
        has_drift: !resources.is_empty() || !control_planes.is_empty(),
        checked: state.state().resources.len(),
        resources,
        control_planes,
        waiting: discovered
            .into_iter()
            .filter(|d| d.namespace.is_none())
            .collect(),
        pending,
        plan_error,
    };
    print(&drift::render(&report, args.format.format));
    Ok(if report.has_drift {
        Exit::Changes
    } else {
        Exit::Success
    })
}
