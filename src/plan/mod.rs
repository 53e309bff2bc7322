//! The plan: what apply will do, resource by resource, and how to make it.
//!
//! A plan is also the saved plan file and the `--format json` output: one document, so what a
//! reviewer read is exactly what `apply PLANFILE` does.

pub mod additive;
mod build;
pub mod render;
pub mod targets;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::note::{Note, Severity};
pub use build::build;

use crate::error::{Error, Result};
use crate::graph::{Address, Kind, Node, NodeHead, Resource};
use crate::state::{Ownership, Record, is_empty, is_none};

pub const FORMAT_VERSION: &str = "1.0";

/// What apply does at one address. The plan file writes it as an `action` word with the
/// marks `importing` and `destroys_first`; in memory, each combination the plan
/// makes is one variant and the others cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The cloud holds what the spec wants, and the state knows it.
    NoOp,
    /// The cloud holds what the spec wants, but the state does not know it: apply records it,
    /// with no cloud write (`no-op`, `importing`).
    Import,
    Create,
    Update,
    /// An existing resource the state does not know, which differs from the spec: apply
    /// updates it and records it (`update`, `importing`).
    ImportAndUpdate,
    Delete,
    /// A new resource for the old one: its cloud identity changed.
    Replace(Order),
}

/// Which side of a replacement goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// The new object is created first and the old one deleted last, so that what uses the
    /// resource keeps working in between.
    CreateThenDelete,
    /// The old object is deleted first: the cloud cannot hold both.
    DeleteThenCreate(Clash),
}

/// Why the cloud cannot hold the old and the new object of a replacement at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clash {
    /// Both have one cloud identity (a role assignment whose principal is created anew).
    OneIdentity,
    /// The new one takes the old one's place under another identity (a federated credential
    /// keeps its name when the cluster's issuer changes): the plan file's `destroys_first`.
    OnePlace,
}

impl Order {
    /// The order of a replacement of `old` by `new` when the cloud answers for each under
    /// its own identity: create first, unless both have one identity.
    pub fn of(kind: Kind, old: &Value, new: &Value) -> Order {
        match crate::provider::identity(kind, old) == crate::provider::identity(kind, new) {
            true => Order::DeleteThenCreate(Clash::OneIdentity),
            false => Order::CreateThenDelete,
        }
    }
}

impl Action {
    /// Whether apply records an existing resource the state does not know.
    pub fn imports(self) -> bool {
        matches!(self, Action::Import | Action::ImportAndUpdate)
    }

    /// Whether apply updates the resource in place.
    pub fn updates(self) -> bool {
        matches!(self, Action::Update | Action::ImportAndUpdate)
    }

    /// Whether the old object of a replacement is deleted once everything is built.
    pub fn creates_first(self) -> bool {
        matches!(self, Action::Replace(Order::CreateThenDelete))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceChange {
    pub node: Node,
    pub action: Action,
    /// What the cloud holds now (projected onto what idplan manages); null when absent.
    pub before: Option<Value>,
    /// What it will hold; null for a delete.
    pub after: Option<Value>,
    /// Who owns the resource after the change (before it, for a delete).
    pub ownership: Ownership,
    /// For adopted resources: what idplan adds and will take back.
    pub added: Option<Value>,
    /// What the state held for this resource (delete and replace): what apply removes.
    pub prior: Option<Prior>,
    /// Why, when it is not obvious: "deleted outside idplan", "forces replacement: name".
    pub reason: Option<String>,
    /// An object an earlier replacement left behind at this address (a run stopped between
    /// the create and the delete): apply deletes it after the creates, or first of all when
    /// this address is deleted or replaced again.
    pub deposed: Option<DeposedChange>,
    /// In a plan made with `--additive-only`: whether the change only gives control planes
    /// what the spec grants, and is applied without a review.
    pub additive: Option<bool>,
    /// Why a change that is not additive waits for a reviewed apply.
    pub withheld_because: Option<String>,
    /// Of an update that is not additive: what is applied without a review all the same (a
    /// trust or members that gain the new control planes and keep those that left).
    pub additive_after: Option<Value>,
}

/// A [`ResourceChange`] as the plan file and the JSON plan write it: the action is a word
/// with two marks, fields in this order.
#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    #[serde(flatten)]
    head: NodeHead<'a>,
    action: WireAction,
    before: Cow<'a, Option<Value>>,
    after: Cow<'a, Option<Value>>,
    ownership: Ownership,
    /// The resource exists but the state does not know it yet: apply records it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    importing: bool,
    #[serde(default, skip_serializing_if = "is_none")]
    added: Cow<'a, Option<Value>>,
    #[serde(default, skip_serializing_if = "is_none")]
    prior: Cow<'a, Option<Prior>>,
    #[serde(default, skip_serializing_if = "is_empty")]
    depends_on: Cow<'a, [Address]>,
    #[serde(default, skip_serializing_if = "is_none")]
    reason: Cow<'a, Option<String>>,
    #[serde(default, skip_serializing_if = "is_none")]
    deposed: Cow<'a, Option<DeposedChange>>,
    /// A replacement whose new object takes the old one's place: the old one goes first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    destroys_first: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    additive: Option<bool>,
    #[serde(default, skip_serializing_if = "is_none")]
    withheld_because: Cow<'a, Option<String>>,
    #[serde(default, skip_serializing_if = "is_none")]
    additive_after: Cow<'a, Option<Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum WireAction {
    Create,
    Update,
    Delete,
    Replace,
    NoOp,
}

impl WireAction {
    fn word(self) -> &'static str {
        match self {
            WireAction::Create => "create",
            WireAction::Update => "update",
            WireAction::Delete => "delete",
            WireAction::Replace => "replace",
            WireAction::NoOp => "no-op",
        }
    }
}

impl<'a> From<&'a ResourceChange> for Wire<'a> {
    fn from(c: &'a ResourceChange) -> Wire<'a> {
        let action = match c.action {
            Action::NoOp | Action::Import => WireAction::NoOp,
            Action::Create => WireAction::Create,
            Action::Update | Action::ImportAndUpdate => WireAction::Update,
            Action::Delete => WireAction::Delete,
            Action::Replace(_) => WireAction::Replace,
        };
        Wire {
            head: NodeHead::of(&c.node),
            action,
            before: Cow::Borrowed(&c.before),
            after: Cow::Borrowed(&c.after),
            ownership: c.ownership,
            importing: c.action.imports(),
            added: Cow::Borrowed(&c.added),
            prior: Cow::Borrowed(&c.prior),
            depends_on: Cow::Borrowed(&c.node.depends_on),
            reason: Cow::Borrowed(&c.reason),
            deposed: Cow::Borrowed(&c.deposed),
            destroys_first: c.action == Action::Replace(Order::DeleteThenCreate(Clash::OnePlace)),
            additive: c.additive,
            withheld_because: Cow::Borrowed(&c.withheld_because),
            additive_after: Cow::Borrowed(&c.additive_after),
        }
    }
}

impl TryFrom<Wire<'_>> for ResourceChange {
    type Error = String;

    fn try_from(w: Wire<'_>) -> std::result::Result<ResourceChange, String> {
        let node = w.head.into_node(w.depends_on.into_owned())?;
        let action = match (w.action, w.importing, w.destroys_first) {
            (WireAction::NoOp, false, false) => Action::NoOp,
            (WireAction::NoOp, true, false) => Action::Import,
            (WireAction::Create, false, false) => Action::Create,
            (WireAction::Update, false, false) => Action::Update,
            (WireAction::Update, true, false) => Action::ImportAndUpdate,
            (WireAction::Delete, false, false) => Action::Delete,
            (WireAction::Replace, false, true) => {
                Action::Replace(Order::DeleteThenCreate(Clash::OnePlace))
            }
            (WireAction::Replace, false, false) => Action::Replace(match (&*w.prior, &*w.after) {
                (Some(prior), Some(after)) => Order::of(node.kind(), &prior.attributes, after),
                _ => Order::DeleteThenCreate(Clash::OneIdentity),
            }),
            (action, importing, destroys_first) => {
                let marks = [("importing", importing), ("destroys_first", destroys_first)]
                    .into_iter()
                    .filter(|(_, on)| *on)
                    .map(|(mark, _)| format!("`{mark}`"))
                    .collect::<Vec<_>>()
                    .join(" and ");
                return Err(format!(
                    "{}: {marks} on a `{}` change, which idplan never plans",
                    node.address,
                    action.word()
                ));
            }
        };
        Ok(ResourceChange {
            node,
            action,
            before: w.before.into_owned(),
            after: w.after.into_owned(),
            ownership: w.ownership,
            added: w.added.into_owned(),
            prior: w.prior.into_owned(),
            reason: w.reason.into_owned(),
            deposed: w.deposed.into_owned(),
            additive: w.additive,
            withheld_because: w.withheld_because.into_owned(),
            additive_after: w.additive_after.into_owned(),
        })
    }
}

impl Serialize for ResourceChange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        Wire::from(self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for ResourceChange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        ResourceChange::try_from(Wire::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The deletion of a deposed object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeposedChange {
    /// What the state recorded of it.
    pub prior: Prior,
    /// What the cloud holds of it now; null when it is gone already.
    pub before: Option<Value>,
}

impl ResourceChange {
    /// A change with nothing but its node and action, of a resource idplan creates: the
    /// rest is filled in as the plan decides.
    pub fn of(node: Node, action: Action) -> ResourceChange {
        ResourceChange {
            node,
            action,
            before: None,
            after: None,
            ownership: Ownership::Created,
            added: None,
            prior: None,
            reason: None,
            deposed: None,
            additive: None,
            withheld_because: None,
            additive_after: None,
        }
    }

    /// A change with nothing but its address and action, of a created resource in AWS's
    /// us-east-1: for tests to fill in.
    #[cfg(test)]
    pub(crate) fn bare(address: Address, action: Action) -> ResourceChange {
        let location = crate::graph::Location::Aws {
            region: "us-east-1".into(),
        };
        let depends_on = vec![];
        ResourceChange::of(
            Node {
                address,
                location,
                depends_on,
            },
            action,
        )
    }

    /// The resource as it will be (create, update, replace, no-op).
    pub fn desired(&self) -> Option<Resource> {
        Some(Resource {
            node: self.node.clone(),
            attributes: self.after.clone()?,
            adopt: false,
        })
    }

    /// The resource as it was recorded (delete, replace): what to delete or release.
    pub fn recorded(&self) -> Option<Resource> {
        Some(Resource {
            node: self.node.clone(),
            attributes: self.prior.as_ref()?.attributes.clone(),
            adopt: false,
        })
    }

    /// The deletion of the deposed object of this address, as a change of its own.
    pub fn deposed_delete(&self) -> Option<ResourceChange> {
        let deposed = self.deposed.as_ref()?;
        Some(ResourceChange {
            action: Action::Delete,
            before: deposed.before.clone(),
            after: None,
            ownership: deposed.prior.ownership,
            added: None,
            prior: Some(deposed.prior.clone()),
            reason: None,
            deposed: None,
            ..self.clone()
        })
    }

    /// Whether this change deletes an object from the cloud: a delete of what idplan created
    /// and still exists, or a replacement. Releasing or forgetting what idplan adopted does
    /// not.
    pub fn destroys(&self) -> bool {
        match self.action {
            Action::Replace(_) => true,
            Action::Delete => self.before.is_some() && self.ownership == Ownership::Created,
            _ => false,
        }
    }

    /// Whether deleting this adopted resource gives something back to its owner (rather than
    /// only dropping it from the state).
    pub fn releases(&self) -> bool {
        self.before.is_some() && self.prior.as_ref().is_some_and(|p| p.added.is_some())
    }

    /// The state record to write once this change is applied; `actual` is what the cloud
    /// holds then (for the attributes it assigned, such as an association's id).
    pub fn record(&self, actual: Option<&Value>) -> Option<Record> {
        Some(Record {
            node: self.node.clone(),
            ownership: self.ownership,
            attributes: crate::provider::with_computed(
                self.node.kind(),
                self.after.as_ref()?,
                actual,
            ),
            added: self.added.clone(),
            // Kept until apply deletes it.
            deposed: self.deposed.as_ref().map(|d| d.prior.clone().into()),
        })
    }
}

/// A resource as the state recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prior {
    pub ownership: Ownership,
    pub attributes: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added: Option<Value>,
}

impl From<Prior> for crate::state::Deposed {
    fn from(p: Prior) -> Self {
        crate::state::Deposed {
            ownership: p.ownership,
            attributes: p.attributes,
            added: p.added,
        }
    }
}

impl From<&crate::state::Deposed> for Prior {
    fn from(d: &crate::state::Deposed) -> Prior {
        Prior {
            ownership: d.ownership,
            attributes: d.attributes.clone(),
            added: d.added.clone(),
        }
    }
}

impl From<&Record> for Prior {
    fn from(r: &Record) -> Prior {
        Prior {
            ownership: r.ownership,
            attributes: r.attributes.clone(),
            added: r.added.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
    /// Existing resources recorded in the state without a cloud write.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub import: usize,
    /// Adopted resources dropped from the state, with nothing of idplan's to take back.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub forget: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: String,
    /// The state this plan was made against: apply refuses another one.
    pub lineage: String,
    pub serial: u64,
    /// sha256 of the spec file the plan was made from.
    pub spec_hash: String,
    pub has_changes: bool,
    pub summary: Summary,
    pub resource_changes: Vec<ResourceChange>,
    /// Control planes found on the Spaces' clusters (`controlPlanes.discover`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discovered: Vec<crate::cluster::Discovered>,
    /// Per space: every host namespace the plan covers (listed and discovered); apply records
    /// it in the state.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub control_planes: BTreeMap<String, Vec<String>>,
    /// What a reviewer should know beyond the changes: who else the identities trust.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
    /// What the clouds add beyond the changes, each its own part (AWS's `aws_modes`).
    #[serde(flatten)]
    pub clouds: crate::recipe::PlanClouds,
    /// Made with `--additive-only`: each change says whether it is applied without a review
    /// (`additive`), and `apply` of this plan applies only those.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub additive_only: bool,
}

impl Plan {
    pub fn new(
        lineage: String,
        serial: u64,
        spec_hash: String,
        changes: Vec<ResourceChange>,
    ) -> Plan {
        let mut summary = Summary::default();
        for c in &changes {
            match c.action {
                Action::Create => summary.add += 1,
                Action::Update | Action::ImportAndUpdate => summary.change += 1,
                // Taking back from an adopted resource changes it, it is never destroyed; and
                // what is gone already, or has nothing of idplan's, is only forgotten.
                Action::Delete if c.releases() => summary.change += 1,
                Action::Delete if c.before.is_none() || c.ownership == Ownership::Adopted => {
                    summary.forget += 1
                }
                Action::Delete => summary.destroy += 1,
                Action::Replace(_) => {
                    summary.add += 1;
                    summary.destroy += 1;
                }
                Action::NoOp | Action::Import => {}
            }
            if c.action.imports() {
                summary.import += 1;
            }
            match c.deposed.as_ref().map(|d| d.before.is_some()) {
                Some(true) => summary.destroy += 1,
                Some(false) => summary.forget += 1,
                None => {}
            }
        }
        Plan {
            format_version: FORMAT_VERSION.into(),
            lineage,
            serial,
            spec_hash,
            has_changes: summary != Summary::default(),
            summary,
            resource_changes: changes,
            discovered: Vec::new(),
            control_planes: BTreeMap::new(),
            notes: Vec::new(),
            clouds: crate::recipe::PlanClouds::default(),
            additive_only: false,
        }
    }

    /// The changes a plan made with `--additive-only` applies without a review, as a plan of
    /// their own.
    pub fn additive_part(&self) -> Plan {
        let changes = self
            .resource_changes
            .iter()
            .filter_map(|c| match (&c.additive, &c.additive_after) {
                (Some(false), Some(part)) => Some(ResourceChange {
                    after: Some(part.clone()),
                    ..c.clone()
                }),
                (Some(false), None) => None,
                _ => Some(c.clone()),
            })
            .collect();
        Plan {
            discovered: self.discovered.clone(),
            control_planes: self.control_planes.clone(),
            notes: self.notes.clone(),
            clouds: self.clouds.clone(),
            ..Plan::new(
                self.lineage.clone(),
                self.serial,
                self.spec_hash.clone(),
                changes,
            )
        }
    }

    /// For a plan that leaves part of the spec unapplied (`--additive-only`, `--control-plane`):
    /// the state's record of each space stays whole. A control plane it covered keeps its
    /// place (its resources may still be there), and a step of a switch of AWS mode is not
    /// recorded (each step is a whole, reviewed apply).
    pub fn keep_recorded(&mut self, state: &crate::state::State) {
        for (space, record) in &state.spaces {
            let namespaces = self.control_planes.entry(space.clone()).or_default();
            namespaces.extend(record.control_planes.iter().cloned());
            namespaces.sort();
            namespaces.dedup();
        }
        self.clouds.keep_recorded(state);
    }

    /// The changes that wait for a reviewed apply.
    pub fn withheld(&self) -> impl Iterator<Item = &ResourceChange> {
        self.resource_changes
            .iter()
            .filter(|c| c.additive == Some(false))
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut bytes = serde_json::to_vec_pretty(self).expect("plan serializes");
        bytes.push(b'\n');
        std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
    }

    pub fn load(path: &Path) -> Result<Plan> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let plan: Plan = serde_json::from_slice(&bytes).map_err(|e| {
            Error::user(format!("{}: not an idplan plan file: {e}", path.display()))
        })?;
        if plan.format_version != FORMAT_VERSION {
            return Err(Error::user(format!(
                "{}: plan format {} is not supported (this idplan writes {FORMAT_VERSION})",
                path.display(),
                plan.format_version
            )));
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::AwsMode;
    use crate::state::AwsModes;

    /// Every combination the plan makes, as `idplan` wrote it before the actions were
    /// explicit (one change a line, written by that code): each one reads back as its action
    /// and writes the same bytes.
    #[test]
    fn each_action_is_written_as_the_plan_file_always_had_it() {
        use crate::provider::aws::AwsKind;
        use crate::spec::ComponentKind;
        use serde_json::json;
        let kind = Kind::Aws(AwsKind::IamRole);
        let dep = Address::component(kind, "prod", ComponentKind::Billing);
        let base = |action| {
            ResourceChange::bare(
                Address::component(kind, "prod", ComponentKind::Backup),
                action,
            )
        };
        let a = || Some(json!({"name": "a"}));
        let edited = || Some(json!({"name": "a", "d": 1}));
        let prior = |name: &str, ownership, added| {
            Some(Prior {
                ownership,
                attributes: json!({"name": name}),
                added,
            })
        };
        let renamed = |order| ResourceChange {
            before: Some(json!({"name": "old"})),
            after: Some(json!({"name": "new"})),
            prior: prior("old", Ownership::Created, None),
            reason: Some("forces replacement: old becomes new".into()),
            ..base(Action::Replace(order))
        };
        let adopted = |action| ResourceChange {
            before: if action == Action::Import {
                a()
            } else {
                edited()
            },
            after: a(),
            ownership: Ownership::Adopted,
            added: Some(json!({"x": 1})),
            reason: Some("exists and was not created by idplan: adopted, never deleted".into()),
            ..base(action)
        };
        let deposed = |before| {
            Some(DeposedChange {
                prior: Prior {
                    ownership: Ownership::Created,
                    attributes: json!({"name": "older"}),
                    added: None,
                },
                before,
            })
        };
        let place = Order::DeleteThenCreate(Clash::OnePlace);
        let cases = vec![
            ResourceChange {
                after: a(),
                node: Node {
                    depends_on: vec![dep.clone()],
                    ..base(Action::Create).node
                },
                ..base(Action::Create)
            },
            ResourceChange {
                after: a(),
                reason: Some("deleted outside idplan: will be created again".into()),
                ..base(Action::Create)
            },
            ResourceChange {
                before: a(),
                after: a(),
                ..base(Action::NoOp)
            },
            ResourceChange {
                before: a(),
                after: a(),
                ..base(Action::Import)
            },
            adopted(Action::Import),
            ResourceChange {
                before: edited(),
                after: a(),
                ..base(Action::Update)
            },
            ResourceChange {
                before: edited(),
                after: a(),
                ..base(Action::ImportAndUpdate)
            },
            adopted(Action::ImportAndUpdate),
            ResourceChange {
                reason: None,
                ..adopted(Action::Update)
            },
            ResourceChange {
                before: a(),
                prior: prior("a", Ownership::Created, None),
                node: Node {
                    depends_on: vec![dep.clone()],
                    ..base(Action::Delete).node
                },
                ..base(Action::Delete)
            },
            ResourceChange {
                prior: prior("a", Ownership::Created, None),
                reason: Some("already deleted outside idplan: only forgotten".into()),
                ..base(Action::Delete)
            },
            ResourceChange {
                before: a(),
                ownership: Ownership::Adopted,
                prior: prior("a", Ownership::Adopted, Some(json!({"x": 1}))),
                reason: Some("not created by idplan: only what idplan added is taken back".into()),
                ..base(Action::Delete)
            },
            renamed(Order::CreateThenDelete),
            ResourceChange {
                before: Some(json!({"name": "same"})),
                after: Some(json!({"name": "same"})),
                prior: prior("same", Ownership::Created, None),
                reason: Some("forces replacement: a resource it refers to is created anew".into()),
                ..base(Action::Replace(Order::DeleteThenCreate(Clash::OneIdentity)))
            },
            renamed(place),
            ResourceChange {
                before: edited(),
                after: a(),
                deposed: deposed(Some(json!({"name": "older"}))),
                ..base(Action::Update)
            },
            ResourceChange {
                reason: None,
                deposed: deposed(None),
                ..renamed(place)
            },
            ResourceChange {
                after: a(),
                additive: Some(true),
                ..base(Action::Create)
            },
            ResourceChange {
                before: edited(),
                after: a(),
                additive: Some(false),
                withheld_because: Some("takes access".into()),
                additive_after: Some(json!({"name": "a", "d": 1, "e": 2})),
                ..base(Action::Update)
            },
        ];
        let written = include_str!("testdata/resource_changes.jsonl");
        assert_eq!(written.lines().count(), cases.len());
        for (change, line) in cases.iter().zip(written.lines()) {
            assert_eq!(serde_json::to_string(change).unwrap(), line);
            let back: ResourceChange = serde_json::from_str(line).unwrap();
            assert_eq!(&back, change, "{line}");
        }
    }

    /// A plan file whose marks do not fit its action is refused, naming the address.
    #[test]
    fn marks_that_fit_no_action_are_refused() {
        let written = include_str!("testdata/resource_changes.jsonl");
        let create = written.lines().next().unwrap();
        for (mark, refused) in [
            (r#""importing":true"#, "`importing` on a `create` change"),
            (
                r#""destroys_first":true"#,
                "`destroys_first` on a `create` change",
            ),
        ] {
            let line = create.replace(
                r#""ownership":"created""#,
                &format!(r#""ownership":"created",{mark}"#),
            );
            let err = serde_json::from_str::<ResourceChange>(&line)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!(
                    "aws_iam_role.prod.backup: {refused}, which idplan never plans"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn a_cloud_s_part_is_written_where_the_plan_always_had_it() {
        let mut plan = Plan::new("l".into(), 1, "h".into(), vec![]);
        plan.clouds.aws.aws_modes.insert(
            "prod".into(),
            AwsModes {
                mode: AwsMode::PodIdentity,
                switching_from: Some(AwsMode::Irsa),
            },
        );
        plan.additive_only = true;
        let text = serde_json::to_string(&plan).unwrap();
        let modes = r#""aws_modes":{"prod":{"mode":"pod-identity","switching_from":"irsa"}},"additive_only":true}"#;
        assert!(text.ends_with(modes), "{text}");
        let back: Plan = serde_json::from_str(&text).unwrap();
        assert_eq!(back.clouds, plan.clouds);
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        let without = serde_json::to_string(&Plan::new("l".into(), 1, "h".into(), vec![])).unwrap();
        assert!(!without.contains("aws_modes"), "{without}");
    }
}
