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

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::Inputs;
use crate::cluster::{self, Discovered};
use crate::error::{Error, Result};
use crate::graph::{Location, Resource};
use crate::plan::targets::Targets;
use crate::plan::{self, Plan, ResourceChange};
use crate::provider::Clouds;
use crate::spec::{self, Spec};
use crate::state::{Ownership, StateFile};

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
    let plan = decide(&opened, inputs).await?;
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
    open_discovered(spec, discovered, inputs, command).await
}

/// [`open`] for a spec whose control planes were discovered already (`watch` keeps them
/// from its watches).
pub async fn open_discovered(
    spec: Spec,
    discovered: Vec<Discovered>,
    inputs: &Inputs,
    command: &str,
) -> Result<Opened> {
    let location = super::state_location(inputs.state.as_ref(), Some(&spec));
    let state = StateFile::open(
        &location,
        command,
        inputs.lock_timeout,
        crate::provider::upgrade_recorded,
    )
    .await?;
    let clouds = Clouds::new(locations(&spec, &state).iter()).await?;
    Ok(Opened {
        spec,
        state,
        clouds,
        discovered,
    })
}

/// Reads the clouds and decides: for every control plane, or for those `inputs` names
/// (`--control-plane`); with `--additive-only`, marks what is applied without a review.
pub async fn decide(opened: &Opened, inputs: &Inputs) -> Result<Plan> {
    let Opened {
        spec,
        state,
        clouds,
        discovered,
    } = opened;
    refuse_empty_discovery(spec, state, discovered)?;
    let targets = targets(spec, &inputs.control_planes)?;
    if let Some(targets) = &targets {
        clouds.limit_to(targets.namespaces());
    }
    let switches = crate::recipe::aws::switch::switches(spec, state.state());
    let switching: BTreeSet<String> = switches
        .iter()
        .filter(|(_, s)| !matches!(s, crate::recipe::aws::Switch::None(_)))
        .map(|(space, _)| space.clone())
        .collect();
    let (graph, notes) = desired::graph(spec, clouds, &switches).await?;
    let (graph, read) = match &targets {
        Some(targets) => {
            let graph = targets.graph(&graph);
            let read = targets.state(state.state(), &graph);
            (graph, Some(read))
        }
        None => (graph, None),
    };
    let read = read.as_ref().unwrap_or(state.state());
    let mut plan = plan::build(
        spec,
        read,
        clouds,
        &graph,
        inputs.parallelism,
        targets.as_ref(),
    )
    .await?;
    plan.notes = notes;
    plan.clouds.aws = crate::recipe::aws::switch::AwsPlan::of(&switches);
    plan.discovered = discovered.clone();
    match &targets {
        // The other control planes were not read: the state's record of them stays, and so
        // does a switch of mode (its steps are whole-space applies).
        Some(targets) => {
            plan.control_planes = targets.covered(cluster::covered(spec));
            plan.keep_recorded(state.state());
        }
        None => {
            // A step of a switch of mode is a change even when the cloud already holds what
            // it wants (going back mid-switch): apply must record it, or the switch never
            // moves on.
            plan.has_changes |= !switching.is_empty();
            plan.control_planes = cluster::covered(spec);
        }
    }
    let adopted: Vec<Resource> = plan
        .resource_changes
        .iter()
        .filter(|c| c.ownership == Ownership::Adopted)
        .filter_map(ResourceChange::desired)
        .collect();
    plan.notes.extend(clouds.adopted_notes(&adopted).await?);
    if inputs.additive_only {
        crate::plan::additive::classify(&mut plan, state.state(), &switching);
    }
    Ok(plan)
}

/// The control planes `--control-plane` names, each one a space lists or discovered.
pub(crate) fn targets(spec: &Spec, given: &[String]) -> Result<Option<Targets>> {
    if given.is_empty() {
        return Ok(None);
    }
    for ns in given {
        let known = spec
            .spaces
            .iter()
            .any(|s| s.control_planes.iter().any(|c| &c.namespace == ns));
        if known {
            continue;
        }
        let sources: Vec<String> = spec
            .spaces
            .iter()
            .map(|s| match &s.discover {
                Some(d) => format!(
                    "space {} discovers its control planes in {} ({}:{})",
                    s.name,
                    d.cluster(),
                    spec.path.display(),
                    d.location.line
                ),
                None => format!(
                    "space {} lists {} ({}:{})",
                    s.name,
                    s.control_planes.len(),
                    spec.path.display(),
                    s.location.line
                ),
            })
            .collect();
        return Err(Error::user(format!(
            "--control-plane {ns}: no space lists or discovers this host namespace: {}",
            sources.join("; ")
        )));
    }
    Ok(Some(Targets::new(given.iter().cloned())))
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
                "space {}: discovery in {} found no control plane, but the \
                 last apply gave {} of them identities ({}); idplan does not remove identities \
                 on an empty answer: check the context, or list the control planes instead of \
                 discovering them to remove them on purpose",
                space.name,
                discover.cluster(),
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
        .chain(
            state
                .state()
                .resources
                .iter()
                .map(|r| r.node.location.clone()),
        )
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
