//! Making a plan, for `plan`, `apply` (without a saved plan) and `drift`:
//!
//! 1. load the spec ([`open`]);
//! 2. discover the control planes of spaces with `controlPlanes.discover` (kubeconfig);
//! 3. lock the state, and set up the drivers of every location the spec or the state has;
//! 4. refuse an empty discovery where the last apply covered control planes ([`decide`]);
//! 5. build the desired graph: each cloud's context, then each space's recipe
//!    ([`desired`], the pipeline `validate` runs too, with stand-in contexts);
//! 6. read what the clouds hold and decide per address (`crate::plan::build`), checking the
//!    limits that count what others hold.

pub mod desired;

use std::path::{Path, PathBuf};

use super::Inputs;
use crate::cluster::{self, Discovered};
use crate::error::{Error, Result};
use crate::graph::Location;
use crate::plan::{self, Plan};
use crate::provider::Clouds;
use crate::spec::{self, Spec};
use crate::state::StateFile;

/// A plan with what was needed to make it, still holding the state lock.
pub struct Planned {
    pub state: StateFile,
    pub clouds: Clouds,
    pub plan: Plan,
}

/// What [`open`] sets up: the spec after discovery, the locked state and the drivers.
pub struct Opened {
    pub spec: Spec,
    pub state: StateFile,
    pub clouds: Clouds,
    pub discovered: Vec<Discovered>,
}

/// Loads the spec, locks the state, reads the clouds and decides. `command` names the holder
/// of the state lock.
pub async fn make(inputs: &Inputs, command: &str) -> Result<Planned> {
    let opened = open(inputs, command).await?;
    let mut plan = decide(&opened, inputs.parallelism).await?;
    if inputs.additive_only {
        let switching = crate::recipe::aws::switch::switches(&opened.spec, opened.state.state())
            .into_iter()
            .filter(|(_, s)| !matches!(s, crate::recipe::aws::Switch::None(_)))
            .map(|(space, _)| space)
            .collect();
        crate::plan::additive::classify(&mut plan, opened.state.state(), &switching);
    }
    Ok(Planned {
        state: opened.state,
        clouds: opened.clouds,
        plan,
    })
}

/// Loads the spec, discovers control planes, and locks the state; sets up the drivers both
/// need.
pub async fn open(inputs: &Inputs, command: &str) -> Result<Opened> {
    let mut spec = spec::load(&inputs.spec)?;
    let discovered = cluster::discover(&mut spec).await?;
    let location = super::state_location(inputs.state.as_ref(), Some(&spec));
    let state = StateFile::open(&location, command, inputs.lock_timeout).await?;
    let clouds = Clouds::new(locations(&spec, &state).iter()).await?;
    Ok(Opened {
        spec,
        state,
        clouds,
        discovered,
    })
}

/// Reads the clouds and decides.
pub async fn decide(opened: &Opened, parallelism: usize) -> Result<Plan> {
    let Opened {
        spec,
        state,
        clouds,
        discovered,
    } = opened;
    refuse_empty_discovery(spec, state, discovered)?;
    let switches = crate::recipe::aws::switch::switches(spec, state.state());
    let (graph, notes) = desired::graph(spec, clouds, &switches).await?;
    let mut plan = plan::build(spec, state.state(), clouds, &graph, parallelism).await?;
    plan.notes = notes;
    plan.aws_modes = switches
        .iter()
        .map(|(space, switch)| (space.clone(), switch.record()))
        .collect();
    // A step of a switch of mode is a change even when the cloud already holds what it wants
    // (going back mid-switch): apply must record it, or the switch never moves on.
    plan.has_changes |= switches
        .values()
        .any(|s| !matches!(s, crate::recipe::aws::Switch::None(_)));
    plan.notes
        .extend(clouds.adopted_notes(&plan.resource_changes).await?);
    plan.discovered = discovered.clone();
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
        let would_lose: Vec<&str> = record
            .control_planes
            .iter()
            .filter(|ns| !space.control_planes.iter().any(|c| &c.namespace == *ns))
            .map(String::as_str)
            .collect();
        if !would_lose.is_empty() {
            return Err(Error::user(format!(
                "space {}: discovery in kubeconfig context `{}` found no control plane, but the \
                 last apply gave {} of them identities ({}); idplan does not remove identities \
                 on an empty answer: check the context, or list the control planes instead of \
                 discovering them to remove them on purpose",
                space.name,
                discover.context,
                would_lose.len(),
                would_lose.join(", ")
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
        .map(crate::recipe::location)
        .chain(state.state().resources.iter().map(|r| r.location.clone()))
        .collect();
    out.dedup();
    out
}

/// Where `plan --out NAME` saves: a bare file name goes to `plans/`, so that a plan never
/// lands on a file of the working directory (the spec, say).
pub fn out_path(name: &Path) -> PathBuf {
    if name.parent().is_none_or(|p| p.as_os_str().is_empty()) {
        Path::new("plans").join(name)
    } else {
        name.to_path_buf()
    }
}

/// A saved plan to read: as given when it exists, else where `plan --out` put it.
pub fn saved_path(name: &Path) -> PathBuf {
    if name.exists() {
        name.to_path_buf()
    } else {
        out_path(name)
    }
}

/// Saves the plan where `plan --out NAME` puts it; returns the path written.
pub fn save(plan: &Plan, name: &Path) -> Result<PathBuf> {
    let path = out_path(name);
    plan.save(&path)?;
    Ok(path)
}
