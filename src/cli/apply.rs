use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;

use super::plan::{Planned, make};
use super::{Exit, PlanInputs, plan_path, print};
use crate::apply::{self, Event, Verb};
use crate::error::{Error, Result};
use crate::plan::{Plan, render};
use crate::provider::Clouds;
use crate::spec;
use crate::state::StateFile;

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
}

pub async fn run(args: ApplyArgs) -> Result<Exit> {
    let (plan, mut state, clouds) = match &args.plan {
        Some(file) => saved(&args, &plan_path(file)).await?,
        None => {
            // Refuse before reading the clouds, not after printing a plan nobody can approve.
            if !args.auto_approve && !std::io::stdin().is_terminal() {
                return Err(Error::user(
                    "apply needs confirmation, and standard input is not a terminal: pass \
                     --auto-approve, or apply a reviewed plan with `idplan apply PLANFILE`",
                ));
            }
            let Planned {
                state,
                clouds,
                plan,
                ..
            } = make(&args.inputs, "apply").await?;
            print(&render::text(&plan));
            if plan.has_changes && !args.auto_approve {
                confirm()?;
            }
            (plan, state, clouds)
        }
    };
    execute(
        &plan,
        &mut state,
        &clouds,
        usize::from(args.inputs.run.parallelism),
    )
    .await
}

/// Loads a saved plan and refuses it when it no longer describes the state or the spec.
async fn saved(args: &ApplyArgs, file: &std::path::Path) -> Result<(Plan, StateFile, Clouds)> {
    let plan = Plan::load(file)?;
    let spec = spec::load(&args.inputs.spec.file)?;
    let mut state = StateFile::open(&args.inputs.state.state, "apply")?;
    let stale = |why: String| {
        Error::user(format!(
            "saved plan {} is stale: {why}. Run `idplan plan` again",
            file.display()
        ))
    };
    if spec.hash != plan.spec_hash {
        return Err(stale(format!(
            "{} changed since the plan was made",
            spec.path.display()
        )));
    }
    if state.exists() {
        if state.state().lineage != plan.lineage {
            return Err(stale(format!(
                "it was made for another state (lineage {}, this state is {})",
                plan.lineage,
                state.state().lineage
            )));
        }
        if state.state().serial != plan.serial {
            return Err(stale(format!(
                "the state changed since the plan was made (serial {} then, {} now)",
                plan.serial,
                state.state().serial
            )));
        }
    } else if plan.serial != 0 {
        return Err(stale(format!(
            "it was made against state serial {}, and {} does not exist",
            plan.serial,
            state.path().display()
        )));
    } else {
        state.set_lineage(&plan.lineage);
    }
    let clouds = Clouds::new(plan.resource_changes.iter().map(|c| &c.location)).await?;
    Ok((plan, state, clouds))
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

async fn execute(
    plan: &Plan,
    state: &mut StateFile,
    clouds: &Clouds,
    parallelism: usize,
) -> Result<Exit> {
    let report = |event: Event| {
        let line = match event {
            Event::Started { address, verb } => format!("{address}: {}...\n", started(verb)),
            Event::Finished {
                address,
                verb,
                elapsed,
            } => format!(
                "{address}: {} after {:.1}s\n",
                finished(verb),
                elapsed.as_secs_f64()
            ),
        };
        let mut out = anstream::stdout();
        let _ = out.write_all(line.as_bytes());
    };
    let outcome = apply::apply(plan, state, clouds, parallelism, &report).await?;
    if outcome.errors.is_empty() {
        let imported = match outcome.imported {
            0 => String::new(),
            n => format!("{n} imported, "),
        };
        print(&format!(
            "\nApply complete! Resources: {imported}{} added, {} changed, {} destroyed.\n",
            outcome.added, outcome.changed, outcome.destroyed
        ));
        return Ok(Exit::Success);
    }
    let messages: Vec<String> = outcome.errors.iter().map(ToString::to_string).collect();
    Err(Error::user(format!(
        "{}\napply stopped after {} of the planned writes; {} holds everything that was \
         applied. Run `idplan plan` to see what remains.",
        messages.join("\n"),
        outcome.writes,
        state.path().display()
    )))
}

fn started(verb: Verb) -> &'static str {
    match verb {
        Verb::Creating => "Creating",
        Verb::Modifying => "Modifying",
        Verb::Destroying => "Destroying",
        Verb::Releasing => "Releasing what idplan added",
        Verb::Recording => "Recording in the state",
        Verb::Forgetting => "Forgetting",
    }
}

fn finished(verb: Verb) -> &'static str {
    match verb {
        Verb::Creating => "Creation complete",
        Verb::Modifying => "Modifications complete",
        Verb::Destroying => "Destruction complete",
        Verb::Releasing => "Released",
        Verb::Recording => "Recorded in the state (no cloud change)",
        Verb::Forgetting => "Removed from the state (no cloud change)",
    }
}
