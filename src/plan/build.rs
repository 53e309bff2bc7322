//! Deciding a plan: the desired graph (`ops::plan::desired`) against what the clouds hold, a
//! decision per address.

use std::collections::{BTreeMap, HashMap};

use futures::{StreamExt, TryStreamExt, stream};
use serde_json::Value;

use super::targets::Targets;
use super::{Action, Clash, DeposedChange, Order, Plan, Prior, ResourceChange};
use crate::error::{Error, Result};
use crate::graph::{self, Address, Graph, Resource};
use crate::provider::{Adoption, Clouds};
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
                if crate::provider::identity(d.node.kind(), &d.attributes)
                    == crate::provider::identity(record.node.kind(), &record.attributes) =>
            {
                None
            }
            _ => Some(record),
        }
    }
}

/// Reads what the clouds hold for every address of the spec and the state, and decides.
/// `targets`: the control planes a plan is limited to; shared resources are brought only as
/// far as they need.
pub async fn build(
    spec: &Spec,
    state: &State,
    clouds: &Clouds,
    graph: &Graph,
    parallelism: usize,
    targets: Option<&Targets>,
) -> Result<Plan> {
    let mut items: BTreeMap<&Address, Item> = BTreeMap::new();
    for r in graph.iter() {
        items.insert(
            &r.node.address,
            Item {
                desired: Some(r.clone()),
                record: None,
            },
        );
    }
    for record in &state.resources {
        items
            .entry(&record.node.address)
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
    let mut decided = read_and_decide(first, clouds, parallelism, targets).await?;
    // Only a resource that stays is known: one created or replaced gets new values.
    let known: HashMap<&str, &Value> = decided
        .iter()
        .filter(|c| {
            matches!(
                c.action,
                Action::NoOp | Action::Import | Action::Update | Action::ImportAndUpdate
            )
        })
        .filter_map(|c| Some((c.node.address.as_str(), c.before.as_ref()?)))
        .collect();
    let later: Vec<Item> = later
        .into_iter()
        .map(|mut item| {
            if let Some(d) = &mut item.desired {
                d.attributes = graph::resolve(&d.attributes, &|r| {
                    known
                        .get(r.address.as_str())
                        .and_then(|a| a.get(&r.key))
                        .cloned()
                });
            }
            item
        })
        .collect();
    decided.extend(read_and_decide(later, clouds, parallelism, targets).await?);
    decided.sort_by(|a, b| a.node.address.cmp(&b.node.address));
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
    targets: Option<&Targets>,
) -> Result<Vec<ResourceChange>> {
    stream::iter(items)
        .map(|mut item| async move {
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
            if let (Some(targets), Some(desired), Some(actual)) =
                (targets, item.desired.as_mut(), &actual)
            {
                desired.attributes = targets.narrow(desired, actual);
            }
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
        .filter(|now| crate::provider::same_object(record.node.kind(), &deposed.attributes, now));
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
        (Some(r), Some(a)) if !crate::provider::same_object(r.node.kind(), &r.attributes, &a) => {
            None
        }
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
            before: stale_actual,
            ownership: record.ownership,
            prior: Some(Prior::from(&record)),
            reason,
            ..ResourceChange::of(record.node.clone(), Action::Delete)
        });
    };

    let mut change = ResourceChange {
        before: actual.clone(),
        after: Some(desired.attributes.clone()),
        ..ResourceChange::of(desired.node.clone(), Action::NoOp)
    };
    let Some(actual) = actual else {
        let created = item
            .record
            .as_ref()
            .is_some_and(|r| r.ownership == Ownership::Created);
        if desired.adopt && desired.node.kind().is_identity() && !created {
            return Err(Error::user(format!(
                "{}: `adopt: true`, but {} does not exist: check the component's `name` (or \
                 remove `adopt` to let idplan create it)",
                desired.node.address,
                crate::provider::identity(desired.node.kind(), &desired.attributes)
            )));
        }
        change.action = Action::Create;
        match (&stale, &stale_actual) {
            (Some(old), Some(old_actual)) => {
                // `before` is what apply deletes: the resource under its old identity.
                change.action = Action::Replace(Order::of(
                    desired.node.kind(),
                    &old.attributes,
                    &desired.attributes,
                ));
                change.before = Some(old_actual.clone());
                change.prior = Some(Prior::from(old));
                let (old_id, new_id) = (
                    crate::provider::identity(old.node.kind(), &old.attributes),
                    crate::provider::identity(desired.node.kind(), &desired.attributes),
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
    if let (Some(old), Some(old_actual)) = (&stale, &stale_actual) {
        if *old_actual == actual {
            // Read under both identities, the cloud answers with one object: the new one
            // takes its place, so the old one must go first.
            change.action = Action::Replace(Order::DeleteThenCreate(Clash::OnePlace));
            change.prior = Some(Prior::from(old));
            change.reason = Some(format!(
                "forces replacement: {} becomes {}",
                crate::provider::identity(old.node.kind(), &old.attributes),
                crate::provider::identity(desired.node.kind(), &desired.attributes)
            ));
            return Ok(change);
        }
        // The new identity is taken while the old one still exists: replacing would leave
        // two owners of one name.
        return Err(Error::user(format!(
            "{}: {} already exists; idplan cannot rename into it",
            desired.node.address,
            crate::provider::identity(desired.node.kind(), &desired.attributes)
        )));
    }

    let mut importing = false;
    let record = item.record.filter(|r| {
        stale.is_none() && crate::provider::same_object(r.node.kind(), &r.attributes, &actual)
    });
    match record {
        Some(record) if record.ownership == Ownership::Adopted => {
            if desired.node.kind().is_identity() && !desired.adopt {
                return Err(Error::user(format!(
                    "{}: idplan adopted {}, which it did not create: keep `adopt: true` on \
                     the component, or remove the component to give it back",
                    desired.node.address,
                    crate::provider::identity(desired.node.kind(), &desired.attributes)
                )));
            }
            change.ownership = Ownership::Adopted;
            change.added =
                desired
                    .node
                    .kind()
                    .def()
                    .added_after(&desired, &actual, record.added)?;
            change.after = Some(
                desired
                    .node
                    .kind()
                    .def()
                    .shared_desired(&desired, &actual)?,
            );
        }
        Some(_) => {}
        None => {
            importing = true;
            match desired.node.kind().def().adoption(&desired, &actual)? {
                Adoption::Owned => {}
                Adoption::Shared { desired: d, added } => {
                    change.ownership = Ownership::Adopted;
                    change.after = Some(d);
                    change.added = added;
                    change.reason =
                        Some("exists and was not created by idplan: adopted, never deleted".into());
                }
                Adoption::Conflict(message) => {
                    return Err(Error::user(format!("{}: {message}", desired.node.address)));
                }
            }
        }
    }
    let updates =
        change.after.as_ref() != Some(&crate::provider::decided(change.node.kind(), &actual));
    change.action = match (importing, updates) {
        (false, false) => Action::NoOp,
        (false, true) => Action::Update,
        (true, false) => Action::Import,
        (true, true) => Action::ImportAndUpdate,
    };
    Ok(change)
}

#[cfg(test)]
mod tests {
    use crate::provider::aws::AwsKind;
    use serde_json::json;

    use super::*;
    use crate::graph::{Kind, Location, Node};
    use crate::spec::ComponentKind;

    fn role(name: &str, space_tag: Option<&str>, description: &str) -> Value {
        let mut tags = serde_json::Map::new();
        if let Some(space) = space_tag {
            tags.insert("managed-by".into(), "idplan".into());
            tags.insert("idplan/space".into(), space.into());
            tags.insert("idplan/component".into(), "backup".into());
        }
        json!({
            "name": name,
            "arn": format!("arn:aws:iam::123456789012:role/{name}"),
            "path": "/",
            "description": description,
            "assume_role_policy": {"Version": "2012-10-17", "Statement": []},
            "tags": tags,
        })
    }

    fn provider(client_ids: &[&str]) -> Value {
        json!({
            "arn": "arn:aws:iam::123456789012:oidc-provider/oidc.example/id/1",
            "url": "oidc.example/id/1",
            "client_ids": client_ids,
            "tags": {"managed-by": "idplan", "idplan/cluster": "c"},
        })
    }

    fn resource(kind: Kind, attributes: Value) -> Resource {
        let address = match kind {
            Kind::Aws(AwsKind::IamOpenidConnectProvider) => {
                Address::cluster(kind, "us-east-1", "c")
            }
            _ => Address::component(kind, "prod", ComponentKind::Backup),
        };
        Resource {
            node: Node {
                address,
                location: Location::Aws {
                    region: "us-east-1".into(),
                },
                depends_on: vec![],
            },
            attributes,
            adopt: false,
        }
    }

    fn record(kind: Kind, attributes: Value, ownership: Ownership) -> Record {
        let r = resource(kind, attributes);
        Record {
            node: Node {
                address: r.node.address,
                location: r.node.location,
                depends_on: vec![],
            },
            ownership,
            attributes: r.attributes,
            added: None,
            deposed: None,
        }
    }

    /// What `decide` made of one case: the action, the owner, whether it is imported, and
    /// its reason; or the error's text.
    type Outcome = std::result::Result<(Action, Ownership, bool, Option<String>), String>;

    /// (case, desired, record, actual, actual under the recorded identity, outcome)
    type Case = (
        &'static str,
        Option<Resource>,
        Option<Record>,
        Option<Value>,
        Option<Value>,
        Outcome,
    );

    #[test]
    fn decides_each_resource_from_spec_state_and_cloud() {
        let mine = role("spaces-prod-backup", Some("prod"), "d");
        let renamed = role("spaces-prod-backup-2", Some("prod"), "d");
        let created = |attrs: &Value| {
            Some(record(
                Kind::Aws(AwsKind::IamRole),
                attrs.clone(),
                Ownership::Created,
            ))
        };
        let want = |attrs: &Value| Some(resource(Kind::Aws(AwsKind::IamRole), attrs.clone()));
        let ok = |action, ownership, importing, reason: Option<&str>| -> Outcome {
            Ok((action, ownership, importing, reason.map(str::to_string)))
        };
        use Action::*;
        use Ownership::*;
        let cases: Vec<Case> = vec![
            (
                "create",
                want(&mine),
                None,
                None,
                None,
                ok(Create, Created, false, None),
            ),
            (
                "no-op",
                want(&mine),
                created(&mine),
                Some(mine.clone()),
                None,
                ok(NoOp, Created, false, None),
            ),
            (
                "update",
                want(&mine),
                created(&mine),
                Some(role("spaces-prod-backup", Some("prod"), "edited by hand")),
                None,
                ok(Update, Created, false, None),
            ),
            (
                "created again",
                want(&mine),
                created(&mine),
                None,
                None,
                ok(
                    Create,
                    Created,
                    false,
                    Some("deleted outside idplan: will be created again"),
                ),
            ),
            (
                "replace",
                want(&renamed),
                created(&mine),
                None,
                Some(mine.clone()),
                ok(
                    Replace(Order::CreateThenDelete),
                    Created,
                    false,
                    Some("forces replacement: spaces-prod-backup becomes spaces-prod-backup-2"),
                ),
            ),
            (
                "rename into an existing role",
                want(&renamed),
                created(&mine),
                Some(renamed.clone()),
                Some(mine.clone()),
                Err("already exists; idplan cannot rename into it".into()),
            ),
            (
                "destroy",
                None,
                created(&mine),
                None,
                Some(mine.clone()),
                ok(Delete, Created, false, None),
            ),
            (
                "forget",
                None,
                created(&mine),
                None,
                None,
                ok(
                    Delete,
                    Created,
                    false,
                    Some("already deleted outside idplan: only forgotten"),
                ),
            ),
            (
                "lost state: owned",
                want(&mine),
                None,
                Some(mine.clone()),
                None,
                ok(Import, Created, true, None),
            ),
            (
                "conflict: made by someone else",
                want(&mine),
                None,
                Some(role("spaces-prod-backup", None, "d")),
                None,
                Err("was not created by idplan".into()),
            ),
            (
                "conflict: another space's",
                want(&mine),
                None,
                Some(role("spaces-prod-backup", Some("staging"), "d")),
                None,
                Err("belongs to idplan space staging".into()),
            ),
            (
                "adopt a shared provider",
                Some(resource(
                    Kind::Aws(AwsKind::IamOpenidConnectProvider),
                    provider(&["sts.amazonaws.com"]),
                )),
                None,
                Some(provider(&["other"])),
                None,
                ok(
                    ImportAndUpdate,
                    Adopted,
                    true,
                    Some("exists and was not created by idplan: adopted, never deleted"),
                ),
            ),
            (
                "release an adopted provider",
                None,
                Some(Record {
                    added: Some(json!({"client_ids": ["sts.amazonaws.com"]})),
                    ..record(
                        Kind::Aws(AwsKind::IamOpenidConnectProvider),
                        provider(&["sts.amazonaws.com"]),
                        Adopted,
                    )
                }),
                None,
                Some(provider(&["other", "sts.amazonaws.com"])),
                ok(
                    Delete,
                    Adopted,
                    false,
                    Some("not created by idplan: only what idplan added is taken back"),
                ),
            ),
        ];
        for (case, desired, record, actual, stale_actual, expected) in cases {
            let outcome: Outcome = decide(Item { desired, record }, actual, stale_actual)
                .map(|c| (c.action, c.ownership, c.action.imports(), c.reason))
                .map_err(|e| e.to_string());
            match (&outcome, &expected) {
                (Err(got), Err(want)) => assert!(got.contains(want.as_str()), "{case}: {got}"),
                _ => assert_eq!(outcome, expected, "{case}"),
            }
        }
    }

    /// The cloud answers with one object under the recorded and the desired identity (a
    /// credential that keeps its name when its issuer changes): the new one takes the old
    /// one's place, so the replacement deletes first.
    #[test]
    fn one_object_under_both_identities_is_replaced_destroy_first() {
        let old = role("spaces-prod-backup", Some("prod"), "d");
        let new = role("spaces-prod-backup-2", Some("prod"), "d");
        let item = Item {
            desired: Some(resource(Kind::Aws(AwsKind::IamRole), new)),
            record: Some(record(
                Kind::Aws(AwsKind::IamRole),
                old.clone(),
                Ownership::Created,
            )),
        };
        let change = decide(item, Some(old.clone()), Some(old.clone())).unwrap();
        assert_eq!(
            change.action,
            Action::Replace(Order::DeleteThenCreate(Clash::OnePlace))
        );
        assert!(!change.action.creates_first());
        assert_eq!(change.before, Some(old));
    }
}
