//! `apply`: a saved plan exactly, refused when it no longer describes the state or the spec,
//! or a fresh plan the user approves; then the writes in graph order (`crate::apply`), the
//! state recorded after each. Asking the user is the command line's part.

use std::path::Path;

use super::Inputs;
use super::plan::{self, Planned};
pub use crate::apply::Event;
use crate::apply::{self, Verb};
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::provider::Clouds;
use crate::spec;
use crate::state::StateFile;

/// Loads a saved plan (`name` as given, or where `plan --out` put it) and locks the state;
/// refuses a plan that no longer describes the state or the spec.
pub async fn saved(inputs: &Inputs, name: &Path) -> Result<Planned> {
    let file = plan::saved_path(name);
    let plan = Plan::load(&file)?;
    if inputs.additive_only && !plan.additive_only {
        return Err(Error::user(format!(
            "saved plan {} was made without --additive-only, so nothing in it says which \
             changes only add access: make it with `idplan plan --additive-only --out FILE`, or \
             apply it without --additive-only after a review",
            file.display()
        )));
    }
    let spec = spec::load(&inputs.spec)?;
    let location = super::state_location(inputs.state.as_ref(), Some(&spec));
    let mut state = StateFile::open(
        &location,
        "apply",
        inputs.lock_timeout,
        crate::provider::upgrade_recorded,
    )
    .await?;
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
            state.location()
        )));
    } else {
        state.set_lineage(&plan.lineage);
    }
    let clouds = Clouds::new(plan.resource_changes.iter().map(|c| &c.node.location)).await?;
    Ok(Planned {
        state,
        clouds,
        plan,
    })
}

/// Refuses a fresh plan nobody can approve, before the clouds are read: without
/// `auto_approve` the user answers on the terminal, so one must be there.
pub fn approvable(auto_approve: bool, interactive: bool) -> Result<()> {
    if auto_approve || interactive {
        return Ok(());
    }
    Err(Error::user(
        "apply needs confirmation, and standard input is not a terminal: pass \
         --auto-approve, or apply a reviewed plan with `idplan apply PLANFILE`",
    ))
}

/// Plans afresh for apply, holding the state lock.
pub async fn fresh(inputs: &Inputs) -> Result<Planned> {
    plan::make(inputs, "apply").await
}

/// Whether a fresh plan needs the user's "yes": only when what it applies changes something.
pub fn needs_approval(plan: &Plan, auto_approve: bool) -> bool {
    let changes = match plan.additive_only {
        true => plan.additive_part().has_changes,
        false => plan.has_changes,
    };
    changes && !auto_approve
}

/// Applies the plan, telling `report` the progress of each resource; returns the closing
/// line. A failed write stops the apply with every failure and where the state stands.
pub async fn execute(
    planned: &mut Planned,
    parallelism: usize,
    report: &(dyn Fn(Event) + Sync),
) -> Result<String> {
    let Planned {
        state,
        clouds,
        plan,
    } = planned;
    let additive;
    let plan = match plan.additive_only {
        true => {
            additive = additive_part(plan, state.state());
            &additive
        }
        false => &*plan,
    };
    let outcome = apply::apply(plan, state, clouds, parallelism, report).await?;
    if outcome.errors.is_empty() && outcome.interrupted.is_none() {
        let imported = match outcome.imported {
            0 => String::new(),
            n => format!("{n} imported, "),
        };
        return Ok(format!(
            "\nApply complete! Resources: {imported}{} added, {} changed, {} destroyed.\n",
            outcome.added, outcome.changed, outcome.destroyed
        ));
    }
    Err(Error::user(failed(&outcome, &state.location().to_string())))
}

/// What an apply of a plan made with `--additive-only` applies: its additive changes, with
/// the state's record of each space kept whole where a change waits.
fn additive_part(plan: &Plan, state: &crate::state::State) -> Plan {
    let mut part = plan.additive_part();
    part.keep_recorded(state);
    part
}

/// What waits for a reviewed apply after an apply of a plan made with `--additive-only`; empty
/// when nothing does.
pub fn withheld(plan: &Plan) -> String {
    let lines = crate::plan::additive::withheld_lines(plan, WITHHELD_LINES);
    if lines.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\n{} changes wait for a reviewed apply (`idplan plan` shows them):\n",
        plan.withheld().count()
    );
    for line in lines {
        out.push_str(&format!("  - {line}\n"));
    }
    out
}

/// Withheld changes listed at the most after an apply.
const WITHHELD_LINES: usize = 50;

/// The closing message of an apply with failures: every failure, what was left out because
/// of them, and where the state stands.
fn failed(outcome: &apply::Outcome, state: &str) -> String {
    /// Changes named in the message; more are counted.
    const NAMED: usize = 20;
    let mut out: Vec<String> = outcome.errors.iter().map(ToString::to_string).collect();
    let n = outcome.errors.len();
    let made = format!(
        "{} cloud writes were made: {} added, {} changed, {} destroyed",
        outcome.writes, outcome.added, outcome.changed, outcome.destroyed
    );
    let mut summary = match outcome.interrupted {
        Some(signal) if n == 0 => format!("apply interrupted by {signal} ({made})"),
        Some(signal) => {
            format!("apply interrupted by {signal}, and {n} of the planned changes failed ({made})")
        }
        None => format!("apply failed: {n} of the planned changes failed ({made})"),
    };
    let why = match (outcome.interrupted, outcome.unrecorded) {
        (Some(_), _) => "because of the interruption or a failure",
        (None, true) => "because the state could not be written or a change they depend on failed",
        (None, false) => "because a change they depend on failed",
    };
    if !outcome.skipped.is_empty() {
        let mut names: Vec<String> = outcome
            .skipped
            .iter()
            .take(NAMED)
            .map(ToString::to_string)
            .collect();
        if outcome.skipped.len() > NAMED {
            names.push(format!("and {} more", outcome.skipped.len() - NAMED));
        }
        summary.push_str(&format!(
            "; {} not attempted {why}: {}",
            outcome.skipped.len(),
            names.join(", ")
        ));
    }
    out.push(format!(
        "{summary}. {state} holds everything that was applied. Run `idplan plan` to see what \
         remains."
    ));
    out.join("\n")
}

/// The progress line of one event.
pub fn progress(event: Event) -> String {
    match event {
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
    }
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
