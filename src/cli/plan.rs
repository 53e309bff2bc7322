use std::path::PathBuf;

use clap::Args;

use super::{ExitStatus, FormatArgs, PlanInputs, print};
use crate::error::Result;
use crate::ops::{Inputs, plan};
use crate::plan::render;

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    inputs: PlanInputs,
    #[command(flatten)]
    format: FormatArgs,
    /// Save the plan for `idplan apply FILE`; a bare file name is saved under plans/.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Exit 2 when the plan has changes (0 when none, 1 on error).
    #[arg(long)]
    detailed_exitcode: bool,
    /// Mark which changes only give control planes access the spec already grants (applied
    /// by `idplan apply` of this plan, or `apply --additive-only`) and which wait for a
    /// reviewed apply, with the reason; the JSON gives each change `additive` and
    /// `withheld_because`.
    #[arg(long)]
    additive_only: bool,
}

pub async fn run(args: PlanArgs) -> Result<ExitStatus> {
    let inputs = Inputs {
        additive_only: args.additive_only,
        ..args.inputs.inputs()
    };
    let planned = plan::make(&inputs, "plan").await?;
    let saved = args.out.as_deref().map(plan::out_path);
    let options = render::Options {
        max_chars: args.format.max_chars,
        plan_file: saved.as_ref().map(|p| p.display().to_string()),
        spec_file: Some(inputs.spec.display().to_string()),
    };
    let rendered = render::render(&planned.plan, args.format.format, &options)?;
    print(&rendered);
    if let Some(out) = args.out {
        let path = plan::save(&planned.plan, &out)?;
        // Stderr, so that `--format json > plan.json` stays pure JSON.
        eprintln!(
            "Saved the plan to {0}; apply exactly this plan with: idplan apply {0}",
            path.display()
        );
    }
    Ok(ExitStatus::changes_if(
        args.detailed_exitcode && planned.plan.has_changes,
    ))
}
