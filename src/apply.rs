//! Applying a plan: deletions first (dependents before what they depend on), then creations
//! and updates in graph order; within a wave up to `parallelism` writes at once. Every write
//! is preceded by a re-read (a change made since the plan is refused, never overwritten) and
//! followed by its record in the state, persisted at most every [`PERSIST_INTERVAL`] and at
//! the end, on a failure and on SIGINT/SIGTERM (see [`Journal`]).
//!
//! A failure does not stop the apply: everything that does not depend on the failed change
//! goes on (a delete waits for its dependents' deletes, a create for what it depends on), and
//! the outcome lists every failure and every change left out because of one. A create that
//! finds its object already there (a retried create whose first reply was lost) reads it
//! back and takes it when it is idplan's for this space and what the plan asked for.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::graph::{self, Address, Resource, Scope};
use crate::plan::{Action, Plan, ResourceChange};
use crate::provider::{Adoption, Clouds};
use crate::state::{Ownership, Record, StateFile};

use journal::{Journal, Persist, Stop, adopted_components};
pub use journal::{PERSIST_INTERVAL, Signals};

/// Progress of one resource, for the command line to show.
#[derive(Debug)]
pub enum Event<'a> {
    Started {
        address: &'a str,
        verb: Verb,
    },
    Finished {
        address: &'a str,
        verb: Verb,
        elapsed: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Creating,
    Modifying,
    Destroying,
    /// Taking back what idplan added to an adopted resource.
    Releasing,
    /// Recording in the state only: no cloud write.
    Recording,
    /// Dropping from the state only: no cloud write.
    Forgetting,
}

/// What an apply did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub imported: usize,
    pub added: usize,
    pub changed: usize,
    pub destroyed: usize,
    /// Cloud write operations started (a replace counts two).
    pub writes: usize,
    /// Failures, each of one change.
    pub errors: Vec<Error>,
    /// Changes not attempted because a change they depend on failed (or one that depends on
    /// them could not be deleted first), or because the apply was stopped.
    pub skipped: Vec<Address>,
    /// The signal (`SIGINT`, `SIGTERM`) that stopped the apply: no cloud write was started
    /// after it.
    pub interrupted: Option<&'static str>,
    /// A state write failed, and no cloud write was started after it.
    pub unrecorded: bool,
}

pub async fn apply(
    plan: &Plan,
    state: &mut StateFile,
    clouds: &Clouds,
    parallelism: usize,
    report: &(dyn Fn(Event) + Sync),
) -> Result<Outcome> {
    let journal = Journal::new(state);
    let (done, finished) = tokio::sync::watch::channel(false);
    let work = async {
        let outcome = changes(plan, &journal, clouds, parallelism, report).await;
        let _ = done.send(true);
        outcome
    };
    let (outcome, ()) = futures::join!(work, journal.keep(finished));
    // Persisted whatever happened: what the clouds hold now is in the state.
    let persisted = journal.persist().await;
    let mut outcome = outcome?;
    persisted?;
    match journal.stop.into_inner().expect("stop lock") {
        Some(Stop::Signal(name)) => outcome.interrupted = Some(name),
        Some(Stop::Failed(e)) => {
            outcome.unrecorded = true;
            outcome.errors.extend(e);
        }
        None => {}
    }
    Ok(outcome)
}

/// The writes of the plan, each recorded in the state as it finishes.
async fn changes(
    plan: &Plan,
    journal: &Journal<'_>,
    clouds: &Clouds,
    parallelism: usize,
    report: &(dyn Fn(Event) + Sync),
) -> Result<Outcome> {
    let outcome = Mutex::new(Outcome::default());

    // What the plan read may be old (a saved plan): every re-read below asks the cloud again.
    clouds.refresh();

    // Resources that need no cloud write but belong in the state (imports, refreshed records):
    // one state write for all of them.
    let unchanged: Vec<(&ResourceChange, Record)> = plan
        .resource_changes
        .iter()
        .filter(|c| matches!(c.action, Action::NoOp | Action::Import))
        .filter_map(|c| Some((c, c.record(c.before.as_ref())?)))
        .collect();
    // A plan without cloud writes cannot fail part way: its AWS modes go in the same write.
    let writes_nothing = plan
        .resource_changes
        .iter()
        .all(|c| matches!(c.action, Action::NoOp | Action::Import) && c.deposed.is_none());
    journal
        .record(
            &|s| {
                let first = covered(s, plan) | (writes_nothing && plan.clouds.record(s));
                unchanged.iter().fold(first, |changed, (_, record)| {
                    s.put(record.clone()) | changed
                })
            },
            Persist::Now,
        )
        .await?;
    for (change, _) in unchanged.iter().filter(|(c, _)| c.action.imports()) {
        outcome.lock().expect("outcome lock").imported += 1;
        report(Event::Finished {
            address: &change.node.address,
            verb: Verb::Recording,
            elapsed: Duration::ZERO,
        });
    }

    let deposed: Vec<ResourceChange> = plan
        .resource_changes
        .iter()
        .filter_map(ResourceChange::deposed_delete)
        .collect();
    let Order { phases } = order(plan, &deposed)?;
    let adopted = adopted_components(plan);
    // Changes that failed, or were left out because of a failure.
    let mut failed: HashSet<Address> = HashSet::new();
    for (waves, phase) in phases {
        // What each deletion waits for: the deletions of what depends on it.
        let mut dependents: HashMap<&Address, Vec<&Address>> = HashMap::new();
        for change in waves.iter().flatten().filter(|_| phase != Phase::Build) {
            for on in &change.node.depends_on {
                dependents.entry(on).or_default().push(&change.node.address);
            }
        }
        for wave in waves {
            let blocked = |c: &ResourceChange| {
                let waits = match phase {
                    Phase::Build => c.node.depends_on.iter().any(|a| failed.contains(a)),
                    _ => dependents
                        .get(&c.node.address)
                        .is_some_and(|d| d.iter().any(|a| failed.contains(*a))),
                };
                // A replacement whose old object could not be deleted first is not created;
                // the old object of one whose new object failed is kept; an address whose
                // deposed object could not be deleted is neither deleted nor replaced.
                waits || failed.contains(&c.node.address) || journal.stopped()
            };
            let (wave, left_out): (Vec<_>, Vec<_>) = wave.into_iter().partition(|c| !blocked(c));
            let results: Vec<(&Address, Option<Result<()>>)> = stream::iter(wave)
                .map(|change| async {
                    if journal.stopped() {
                        return (&change.node.address, None);
                    }
                    let persist = Persist::of(change, phase, &adopted);
                    let result = async {
                        if phase == Phase::Build {
                            let resolved = journal.resolve(change)?;
                            let change = resolved.as_ref().unwrap_or(change);
                            let actual = build_one(change, clouds, report, &outcome).await?;
                            let mut record = change
                                .record(Some(&actual))
                                .expect("built changes have an after");
                            if change.action.creates_first() {
                                // Recorded until it is deleted, after everything is built.
                                record.deposed = change.prior.clone().map(Into::into);
                            }
                            journal
                                .record(
                                    &|s| s.put(record.clone()) | identity_changed(s, change),
                                    persist,
                                )
                                .await
                        } else {
                            destroy_one(change, clouds, report, &outcome).await?;
                            if phase.deletes_deposed() {
                                journal
                                    .record(&|s| s.forget_deposed(&change.node.address), persist)
                                    .await
                            } else {
                                journal
                                    .record(&|s| s.remove(&change.node.address), persist)
                                    .await
                            }
                        }
                    }
                    .await;
                    (&change.node.address, Some(result))
                })
                .buffer_unordered(parallelism.max(1))
                .collect()
                .await;
            let mut outcome = outcome.lock().expect("outcome lock");
            for change in left_out {
                if failed.insert(change.node.address.clone()) {
                    outcome.skipped.push(change.node.address.clone());
                }
            }
            for (address, result) in results {
                match result {
                    Some(Ok(())) => {}
                    Some(Err(e)) => {
                        failed.insert(address.clone());
                        outcome.errors.push(e);
                    }
                    None => {
                        failed.insert(address.clone());
                        outcome.skipped.push(address.clone());
                    }
                }
            }
        }
    }
    let outcome = outcome.into_inner().expect("outcome lock");
    // A switch of mode moves on only when all of its step was applied: after a failure the
    // next plan takes the same step again.
    if !writes_nothing && outcome.errors.is_empty() && outcome.skipped.is_empty() {
        journal
            .record(&|s| plan.clouds.record(s), Persist::Later)
            .await?;
    }
    Ok(outcome)
}

/// The four phases of an apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Deposed objects of addresses deleted or replaced again.
    DestroyDeposed,
    /// Deletions that must come before the creates.
    DestroyFirst,
    /// Creates, updates, and the new objects of replacements.
    Build,
    /// The old objects of replacements, and deposed ones.
    DestroyLast,
}

impl Phase {
    /// Whether the phase's deletions only take a deposed object out of its record (the old
    /// object of a create-first replacement is deposed once the new one is recorded).
    fn deletes_deposed(self) -> bool {
        matches!(self, Phase::DestroyDeposed | Phase::DestroyLast)
    }
}

/// Deletion waves: dependents before what they depend on.
fn destroy_waves<'a>(changes: &[&'a ResourceChange]) -> Result<Waves<'a>> {
    let mut waves = waves(changes)?;
    waves.reverse();
    Ok(waves)
}

/// The references in `attributes`, for an error message.
fn references_in(attributes: &Value) -> String {
    if let Some(reference) = graph::as_reference(attributes) {
        return reference.to_string();
    }
    match attributes {
        Value::Object(map) => map
            .values()
            .map(references_in)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
        Value::Array(items) => items
            .iter()
            .map(references_in)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

/// The writes of a plan in the order apply makes them, phase by phase (see [`Phase`]).
struct Order<'a> {
    phases: [(Waves<'a>, Phase); 4],
}

/// Orders the changes of `plan` and the deletions of its `deposed` objects.
fn order<'a>(plan: &'a Plan, deposed: &'a [ResourceChange]) -> Result<Order<'a>> {
    // Deleted first of all: the deposed objects (left by an earlier replacement) of
    // addresses this apply deletes or replaces again, so that the record that holds a
    // deposed object is never removed or overwritten before it is gone (a kill in between
    // would orphan it); when one fails, its address is left as it is. Deleted next: what
    // leaves the spec, and replacements the cloud cannot hold beside their old object.
    // Deleted last, once everything is built: the old objects of the other replacements
    // (create before destroy) and the other deposed objects.
    let (deposed_first, deposed_last): (Vec<&ResourceChange>, Vec<&ResourceChange>) =
        deposed.iter().partition(|d| {
            plan.resource_changes.iter().any(|c| {
                c.node.address == d.node.address
                    && matches!(c.action, Action::Delete | Action::Replace(_))
            })
        });
    let first: Vec<&ResourceChange> = plan
        .resource_changes
        .iter()
        .filter(|c| {
            matches!(
                c.action,
                Action::Delete | Action::Replace(crate::plan::Order::DeleteThenCreate(_))
            )
        })
        .collect();
    let building: Vec<&ResourceChange> = plan
        .resource_changes
        .iter()
        .filter(|c| {
            matches!(
                c.action,
                Action::Create | Action::Update | Action::ImportAndUpdate | Action::Replace(_)
            )
        })
        .collect();
    let last: Vec<&ResourceChange> = plan
        .resource_changes
        .iter()
        .filter(|c| c.action.creates_first())
        .chain(deposed_last.iter().copied())
        .collect();
    Ok(Order {
        phases: [
            (destroy_waves(&deposed_first)?, Phase::DestroyDeposed),
            (destroy_waves(&first)?, Phase::DestroyFirst),
            (waves(&building)?, Phase::Build),
            (destroy_waves(&last)?, Phase::DestroyLast),
        ],
    })
}

/// Changes grouped into waves: each wave's writes may run at once.
type Waves<'a> = Vec<Vec<&'a ResourceChange>>;

fn waves<'a>(changes: &[&'a ResourceChange]) -> Result<Waves<'a>> {
    let by_address: std::collections::HashMap<&Address, &ResourceChange> =
        changes.iter().map(|c| (&c.node.address, *c)).collect();
    let waves = graph::waves(
        changes
            .iter()
            .map(|c| (&c.node.address, c.node.depends_on.as_slice())),
    )?;
    Ok(waves
        .into_iter()
        .map(|w| w.iter().map(|a| by_address[a]).collect())
        .collect())
}

/// Refuses to write over a change made since the plan was read.
fn check_unchanged(
    change: &ResourceChange,
    now: &Option<Value>,
    expected: &Option<Value>,
) -> Result<()> {
    if now == expected {
        return Ok(());
    }
    let what = match (expected, now) {
        (None, Some(_)) => "was created",
        (Some(_), None) => "was deleted",
        _ => "was modified",
    };
    Err(Error::user(format!(
        "{}: {what} outside idplan since the plan was made; nothing was written to it. Run \
         `idplan plan` again",
        change.node.address
    )))
}

async fn destroy_one(
    change: &ResourceChange,
    clouds: &Clouds,
    report: &(dyn Fn(Event) + Sync),
    outcome: &Mutex<Outcome>,
) -> Result<()> {
    let target = change
        .recorded()
        .expect("delete and replace carry the prior record");
    let prior = change.prior.as_ref().expect("checked by recorded()");
    let now = clouds
        .read(&target, Some(&prior.attributes))
        .await?
        // Another object under the recorded identity is not idplan's to delete.
        .filter(|now| crate::provider::same_object(target.node.kind(), &prior.attributes, now));
    check_unchanged(change, &now, &change.before)?;
    let verb = match prior.ownership {
        _ if now.is_none() => Verb::Forgetting,
        Ownership::Created => Verb::Destroying,
        Ownership::Adopted if change.releases() => Verb::Releasing,
        Ownership::Adopted => Verb::Forgetting,
    };
    if verb == Verb::Forgetting {
        // Gone already, or nothing of idplan's on it: only the state forgets it.
        report(Event::Finished {
            address: &change.node.address,
            verb,
            elapsed: Duration::ZERO,
        });
        return Ok(());
    }
    let started = Instant::now();
    report(Event::Started {
        address: &change.node.address,
        verb,
    });
    outcome.lock().expect("outcome lock").writes += 1;
    match (verb, &prior.added) {
        (Verb::Releasing, Some(added)) => {
            clouds.release(&target, added).await?;
            outcome.lock().expect("outcome lock").changed += 1;
        }
        _ => {
            clouds.delete(&target).await?;
            if change.action == Action::Delete {
                outcome.lock().expect("outcome lock").destroyed += 1;
            }
        }
    }
    report(Event::Finished {
        address: &change.node.address,
        verb,
        elapsed: started.elapsed(),
    });
    Ok(())
}

async fn build_one(
    change: &ResourceChange,
    clouds: &Clouds,
    report: &(dyn Fn(Event) + Sync),
    outcome: &Mutex<Outcome>,
) -> Result<Value> {
    let desired = change.desired().expect("built changes have an after");
    let expected = match change.action {
        Action::Replace(_) => &None,
        _ => &change.before,
    };
    let now = clouds.read(&desired, expected.as_ref()).await?;
    check_unchanged(change, &now, expected)?;
    let verb = match now {
        None => Verb::Creating,
        Some(_) => Verb::Modifying,
    };
    let started = Instant::now();
    report(Event::Started {
        address: &change.node.address,
        verb,
    });
    outcome.lock().expect("outcome lock").writes += 1;
    let actual = match &now {
        None => match clouds.create(&desired).await {
            Err(e @ Error::Exists { .. }) => created_before(clouds, &desired, e).await?,
            created => created?,
        },
        Some(actual) => {
            clouds.update(&desired, actual).await?;
            actual.clone()
        }
    };
    {
        let mut outcome = outcome.lock().expect("outcome lock");
        match change.action {
            Action::Update | Action::ImportAndUpdate => outcome.changed += 1,
            _ => outcome.added += 1,
        }
        // As the plan counts it: an existing resource taken into the state and updated is
        // imported and changed.
        if change.action.imports() {
            outcome.imported += 1;
        }
        if matches!(change.action, Action::Replace(_)) {
            outcome.destroyed += 1;
        }
    }
    report(Event::Finished {
        address: &change.node.address,
        verb,
        elapsed: started.elapsed(),
    });
    Ok(actual)
}

/// What a create that found its object already there takes as created: the object, when it
/// is idplan's for this space and exactly what was asked for (the create was sent before,
/// by the SDK's retry or idplan's, and its reply was lost). Anything else is the conflict
/// the create reported.
async fn created_before(clouds: &Clouds, desired: &Resource, conflict: Error) -> Result<Value> {
    // With what is wanted as what is known, a driver looks for it by its identity even where
    // its listing does not show it yet.
    let Some(actual) = clouds.read(desired, Some(&desired.attributes)).await? else {
        return Err(conflict);
    };
    let ours = matches!(
        desired.node.kind().def().adoption(desired, &actual)?,
        Adoption::Owned
    );
    if ours && crate::provider::decided(desired.node.kind(), &actual) == desired.attributes {
        return Ok(actual);
    }
    Err(conflict)
}

/// Records the host namespaces each space of the plan covers (drift compares the cluster with
/// them), and forgets spaces the plan no longer has. A plan saved before idplan recorded them
/// says nothing: the state keeps what it has.
fn covered(state: &mut crate::state::State, plan: &Plan) -> bool {
    if plan.control_planes.is_empty() {
        return false;
    }
    let before = state.spaces.clone();
    state
        .spaces
        .retain(|name, _| plan.control_planes.contains_key(name));
    for (name, namespaces) in &plan.control_planes {
        state.spaces.entry(name.clone()).or_default().control_planes = namespaces.clone();
    }
    state.spaces != before
}

/// Records when a created or replaced resource changed what a component's pods get at start
/// (a role ARN, a client id, an association): `verify` flags pods started before. Updates
/// (a policy's permissions) take effect without a restart. The key is the component, or its
/// pods in one host namespace for a resource of one control plane.
fn identity_changed(state: &mut crate::state::State, change: &ResourceChange) -> bool {
    use crate::state::RestartKey;
    if !matches!(change.action, Action::Create | Action::Replace(_)) {
        return false;
    }
    // Permissions (a policy, an assignment, a binding) are looked up at each call: creating
    // them beside an identity that pods already use needs no restart.
    if !change.node.kind().facts().read_at_pod_start {
        return false;
    }
    let Scope::Component {
        space,
        component,
        item,
    } = change.node.address.scope()
    else {
        return false;
    };
    let Some(record) = state.spaces.get_mut(space) else {
        return false;
    };
    let key = RestartKey {
        component: *component,
        namespace: item.clone(),
    };
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    record.identity_changed.insert(key, now);
    true
}

mod journal;
#[cfg(test)]
mod tests;
