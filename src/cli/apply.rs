use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::Args;

use super::{ExitStatus, PlanInputs, print};
use crate::error::{Error, Result};
use crate::ops::{Inputs, apply};
use crate::plan::render;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved by `idplan plan --out`: applied exactly, refused if the state or the spec
    /// changed since. Without it, idplan plans and asks for confirmation.
    #[arg(value_name = "PLANFILE")]
    plan: Option<PathBuf>,
    #[command(flatten)]
    inputs: PlanInputs,
    /// Apply a fresh plan without asking (for automation; prefer applying a reviewed saved plan).
    #[arg(long)]
    auto_approve: bool,
    /// Apply only what gives control planes of the spec access it already grants: creates for
    /// a control plane, a trust or members that only gain control planes, what idplan made and
    /// the cloud lost. Every other change (a delete, a replace, a change that removes access,
    /// adoption, a switch of AWS mode) waits for a reviewed apply and is listed; exit 2 when
    /// one waits. A saved plan must be made with `plan --additive-only`.
    #[arg(long)]
    additive_only: bool,
}

pub async fn run(args: ApplyArgs) -> Result<ExitStatus> {
    let inputs = Inputs {
        additive_only: args.additive_only,
        ..args.inputs.inputs()
    };
    let mut planned = match &args.plan {
        Some(file) => apply::saved(&inputs, file).await?,
        None => {
            apply::approvable(args.auto_approve, std::io::stdin().is_terminal())?;
            let planned = apply::fresh(&inputs).await?;
            print(&render::render(
                &planned.plan,
                render::Format::Text,
                &Default::default(),
            )?);
            if apply::needs_approval(&planned.plan, args.auto_approve) {
                confirm()?;
            }
            planned
        }
    };
    let report = |event: apply::Event| print(&apply::progress(event));
    let done = apply::execute(&mut planned, inputs.parallelism, &report).await?;
    print(&done);
    let withheld = apply::withheld(&planned.plan);
    print(&withheld);
    Ok(ExitStatus::changes_if(!withheld.is_empty()))
}

/// Asks for "yes" on the terminal.
fn confirm() -> Result<()> {
    print(
        "\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.\n\n  \
         Enter a value: ",
    );
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::user(format!("cannot read the answer: {e}")))?;
    if answer.trim() != "yes" {
        return Err(Error::user("apply cancelled: nothing was changed"));
    }
    print("\n");
    Ok(())
}
