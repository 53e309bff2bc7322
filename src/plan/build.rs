//! Deciding a plan: the desired graph (`ops::plan::desired`) against what the clouds hold, a
//! decision per address.

use std::collections::{BTreeMap, HashMap};

use futures::{StreamExt, TryStreamExt, stream};
use serde_json::Value;

use super::{Action, DeposedChange, Plan, Prior, ResourceChange};
use crate::error::{Error, Result};
use crate::graph::{self, Address, Graph, Resource};
use crate::provider::{self, Adoption, Clouds};
use crate::spec::Spec;
use crate::state::{Ownership, Record, State};

/// One address: what the spec wants and what the state remembers.
struct Item {
    desired: Option<Resource>,
    record: Option<Record>,
}

impl Item {
    /// The recorded resource, when it is not the one the spec wants (gone from the spec, or
    /// with another cloud identity): it has to be read on its own.
    fn stale_record(&self) -> Option<&Record> {
        let record = self.record.as_ref()?;
        match &self.desired {
            // It refers to a resource that is created anew (its principal id is not known
            // yet): what exists was made for the old one and is replaced.
            Some(d) if graph::has_references(&d.attributes) => Some(record),
            Some(d)
                if graph::identity(d.kind, &d.attributes)
                    == graph::identity(record.kind, &record.attributes) =>
            {
                None
            }
            _ => Some(record),
        }
    }
}

/// Reads what the clouds hold for every address of the spec and the state, and decides.
pub async fn build(
    spec: &Spec,
    state: &State,
    clouds: &Clouds,
    graph: &Graph,
    parallelism: usize,
) -> Result<Plan> {
    let mut items: BTreeMap<&Address, Item> = BTreeMap::new();
    for r in graph.iter() {
        items.insert(
            &r.address,
            Item {
                desired: Some(r.clone()),
                record: None,
            },
        );
    }
    for record in &state.resources {
        items
            .entry(&record.address)
            .or_insert(Item {
                desired: None,
                record: None,
            })
            .record = Some(record.clone());
    }

    clouds.check_limits(graph, state).await?;
    // Resources that refer to another's cloud-assigned attributes are read once that other
    // one was: with its value when it exists, or known to be absent too when it does not.
    let (later, first): (Vec<Item>, Vec<Item>) = items.into_values().partition(|item| {
        item.desired
            .as_ref()
            .is_some_and(|d| graph::has_references(&d.attributes))
    });
    let mut decided = read_and_decide(first, clouds, parallelism).await?;
    // Only a resource that stays is known: one created or replaced gets new values.
    let known: HashMap<&str, &Value> = decided
        .iter()
        .filter(|c| matches!(c.action, Action::NoOp | Action::Update))
        .filter_map(|c| Some((c.address.as_str(), c.before.as_ref()?)))
        .collect();
    let later: Vec<Item> = later
        .into_iter()
        .map(|mut item| {
            if let Some(d) = &mut item.desired {
                d.attributes = graph::resolve(&d.attributes, &|address, key| {
                    known.get(address).and_then(|a| a.get(key)).cloned()
                });
            }
            item
        })
        .collect();
    decided.extend(read_and_decide(later, clouds, parallelism).await?);
    decided.sort_by(|a, b| a.address.cmp(&b.address));
    Ok(Plan::new(
        state.lineage.clone(),
        state.serial,
        spec.hash.clone(),
        decided,
    ))
}

/// Reads what the clouds hold for each item and decides its change.
async fn read_and_decide(
    items: Vec<Item>,
    clouds: &Clouds,
    parallelism: usize,
) -> Result<Vec<ResourceChange>> {
    stream::iter(items)
        .map(|item| async move {
            let (actual, stale_actual, deposed) = futures::try_join!(
                async {
                    let known = match item.stale_record() {
                        None => item.record.as_ref().map(|r| &r.attributes),
                        Some(_) => None,
                    };
                    match &item.desired {
                        // Still unknown: what it refers to is created by this apply, so
                        // this is too (what the state had here is read as the stale record).
                        Some(d) if graph::has_references(&d.attributes) => Ok(None),
                        Some(d) => clouds.read(d, known).await,
                        None => Ok(None),
                    }
                },
                async {
                    match item.stale_record() {
                        Some(r) => clouds.read(&r.resource(), Some(&r.attributes)).await,
                        None => Ok(None),
                    }
                },
                read_deposed(item.record.as_ref(), clouds),
            )?;
            let mut change = decide(item, actual, stale_actual)?;
            change.deposed = deposed;
            Ok::<_, Error>(change)
        })
        .buffered(parallelism.max(1))
        .try_collect()
        .await
}

/// The deposed object of a record (left by a replacement that did not finish), and what the
/// cloud holds of it.
async fn read_deposed(record: Option<&Record>, clouds: &Clouds) -> Result<Option<DeposedChange>> {
    let Some((record, deposed)) = record.and_then(|r| Some((r, r.deposed.as_ref()?))) else {
        return Ok(None);
    };
    let resource = record.deposed_resource().expect("it has a deposed object");
    let before = clouds
        .read(&resource, Some(&deposed.attributes))
        .await?
        .filter(|now| graph::same_object(record.kind, &deposed.attributes, now));
    Ok(Some(DeposedChange {
        prior: deposed.into(),
        before,
    }))
}

/// The change for one address. `actual` is what the cloud holds under the desired identity;
/// `stale_actual` what it holds under the recorded one, when that differs.
fn decide(
    item: Item,
    actual: Option<Value>,
    stale_actual: Option<Value>,
) -> Result<ResourceChange> {
    let stale = item.stale_record().cloned();
    // What the cloud holds under a recorded identity may be another object made outside
    // idplan since (same name, new id): that one is not idplan's.
    let stale_actual = match (&item.record, stale_actual) {
        (Some(r), Some(a)) if !graph::same_object(r.kind, &r.attributes, &a) => None,
        (_, a) => a,
    };
    let Some(desired) = item.desired else {
        let record = item
            .record
            .expect("an item has a desired resource or a record");
        let reason = match (&stale_actual, record.ownership) {
            (None, _) => Some("already deleted outside idplan: only forgotten".to_string()),
            (Some(_), Ownership::Adopted) if record.added.is_some() => {
                Some("not created by idplan: only what idplan added is taken back".to_string())
            }
            (Some(_), Ownership::Adopted) => Some(
                "not created by idplan, and idplan added nothing to it: only forgotten".to_string(),
            ),
            (Some(_), Ownership::Created) => None,
        };
        return Ok(ResourceChange {
            address: record.address.clone(),
            kind: record.kind,
            location: record.location.clone(),
            action: Action::Delete,
            before: stale_actual,
            after: None,
            ownership: record.ownership,
            importing: false,
            added: None,
            prior: Some(Prior::from(&record)),
            depends_on: record.depends_on.clone(),
            reason,
            deposed: None,
        });
    };

    let mut change = ResourceChange {
        address: desired.address.clone(),
        kind: desired.kind,
        location: desired.location.clone(),
        action: Action::NoOp,
        before: actual.clone(),
        after: Some(desired.attributes.clone()),
        ownership: Ownership::Created,
        importing: false,
        added: None,
        prior: None,
        depends_on: desired.depends_on.clone(),
        reason: None,
        deposed: None,
    };
    let Some(actual) = actual else {
        change.action = Action::Create;
        match (&stale, &stale_actual) {
            (Some(old), Some(old_actual)) => {
                // `before` is what apply deletes: the resource under its old identity.
                change.action = Action::Replace;
                change.before = Some(old_actual.clone());
                change.prior = Some(Prior::from(old));
                let (old_id, new_id) = (
                    graph::identity(old.kind, &old.attributes),
                    graph::identity(desired.kind, &desired.attributes),
                );
                change.reason = Some(if old_id == new_id {
                    "forces replacement: a resource it refers to is created anew".to_string()
                } else {
                    format!("forces replacement: {old_id} becomes {new_id}")
                });
            }
            (None, _) if item.record.is_some() => {
                change.reason = Some("deleted outside idplan: will be created again".into());
            }
            _ => {}
        }
        return Ok(change);
    };
    if let (Some(_), Some(_)) = (&stale, &stale_actual) {
        // The new identity is taken while the old one still exists: replacing would leave
        // two owners of one name.
        return Err(Error::user(format!(
            "{}: {} already exists; idplan cannot rename into it",
            desired.address,
            graph::identity(desired.kind, &desired.attributes)
        )));
    }

    let record = item
        .record
        .filter(|r| stale.is_none() && graph::same_object(r.kind, &r.attributes, &actual));
    match record {
        Some(record) if record.ownership == Ownership::Adopted => {
            change.ownership = Ownership::Adopted;
            change.added = record.added;
            change.after = Some(provider::shared_desired(&desired, &actual));
        }
        Some(_) => {}
        None => {
            change.importing = true;
            match provider::adoption(&desired, &actual)? {
                Adoption::Owned => {}
                Adoption::Shared { desired: d, added } => {
                    change.ownership = Ownership::Adopted;
                    change.after = Some(d);
                    change.added = added;
                    change.reason =
                        Some("exists and was not created by idplan: adopted, never deleted".into());
                }
                Adoption::Conflict(message) => {
                    return Err(Error::user(format!("{}: {message}", desired.address)));
                }
            }
        }
    }
    if change.after.as_ref() != Some(&graph::decided(change.kind, &actual)) {
        change.action = Action::Update;
    }
    Ok(change)
}
