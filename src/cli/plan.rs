use std::path::PathBuf;

use clap::Args;

use super::{Exit, FormatArgs, PlanInputs, out_path, print};
use crate::cluster::{self, Discovered};
use crate::error::Result;
use crate::graph::Location;
use crate::plan::{self, Plan, render};
use crate::provider::Clouds;
use crate::spec::{self, Cloud, Spec};
use crate::state::StateFile;

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
}

pub async fn run(args: PlanArgs) -> Result<Exit> {
    let planned = make(&args.inputs, "plan").await?;
    print(&render::render(&planned.plan, args.format.format));
    if let Some(out) = args.out {
        let path = out_path(&out);
        planned.plan.save(&path)?;
        // Stderr, so that `--format json > plan.json` stays pure JSON.
        eprintln!(
            "Saved the plan to {0}; apply exactly this plan with: idplan apply {0}",
            path.display()
        );
    }
    Ok(if args.detailed_exitcode && planned.plan.has_changes {
        Exit::Changes
    } else {
        Exit::Success
    })
}

/// A plan with what was needed to make it, still holding the state lock.
pub struct Planned {
    pub state: StateFile,
    pub clouds: Clouds,
    pub plan: Plan,
}

/// Loads the spec, locks the state, reads the clouds and decides.
pub async fn make(inputs: &PlanInputs, command: &str) -> Result<Planned> {
    let (spec, state, clouds, discovered) = open(inputs, command).await?;
    let plan = decide(&spec, &state, &clouds, &discovered, inputs).await?;
    Ok(Planned {
        state,
        clouds,
        plan,
    })
}

/// Loads the spec, discovers control planes, and locks the state; sets up the drivers both
/// need.
pub async fn open(
    inputs: &PlanInputs,
    command: &str,
) -> Result<(Spec, StateFile, Clouds, Vec<Discovered>)> {
    let mut spec = spec::load(&inputs.spec.file)?;
    let discovered = cluster::discover(&mut spec).await?;
    let state = StateFile::open(&inputs.state.state, command)?;
    let clouds = Clouds::new(locations(&spec, &state).iter()).await?;
    Ok((spec, state, clouds, discovered))
}

/// Reads the clouds and decides.
pub async fn decide(
    spec: &Spec,
    state: &StateFile,
    clouds: &Clouds,
    discovered: &[Discovered],
    inputs: &PlanInputs,
) -> Result<Plan> {
    refuse_empty_discovery(spec, state, discovered)?;
    let graph = plan::desired_graph(spec, clouds).await?;
    let mut plan = plan::build(
        spec,
        state.state(),
        clouds,
        &graph,
        usize::from(inputs.run.parallelism),
    )
    .await?;
    plan.discovered = discovered.to_vec();
    plan.control_planes = cluster::covered(spec);
    Ok(plan)
}

/// A discovery that finds no control plane at all, for a space whose last apply covered some
/// beyond its listed ones, is far likelier a wrong kubeconfig context than a Space emptied: the
/// plan would delete every one of their identities, so it is refused.
fn refuse_empty_discovery(spec: &Spec, state: &StateFile, discovered: &[Discovered]) -> Result<()> {
    for space in &spec.spaces {
        let Some(discover) = &space.discover else {
            continue;
        };
        if discovered.iter().any(|d| d.space == space.name) {
            continue;
        }
        let Some(record) = state.state().spaces.get(&space.name) else {
            continue;
        };
        let would_lose: Vec<&String> = record
            .control_planes
            .iter()
            .filter(|ns| !space.control_planes.iter().any(|c| &c.namespace == *ns))
            .collect();
        if !would_lose.is_empty() {
            return Err(crate::error::Error::user(format!(
                "space {}: discovery in kubeconfig context `{}` found no control plane, but the \
                 last apply gave {} of them identities ({}); idplan does not remove identities \
                 on an empty answer: check the context, or list the control planes instead of \
                 discovering them to remove them on purpose",
                space.name,
                discover.context,
                would_lose.len(),
                would_lose
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(())
}

/// Where the spec and the state have resources: which drivers are needed.
fn locations(spec: &Spec, state: &StateFile) -> Vec<Location> {
    let mut out: Vec<Location> = spec
        .spaces
        .iter()
        .map(|s| match &s.cloud {
            Cloud::Aws(a) => Location::Aws {
                region: a.region.clone(),
            },
            Cloud::Azure(a) => Location::Azure {
                subscription: a.subscription.clone(),
            },
            Cloud::Gcp(g) => Location::Gcp {
                project: g.project.clone(),
            },
        })
        .chain(state.state().resources.iter().map(|r| r.location.clone()))
        .collect();
    out.dedup();
    out
}
