//! The plan: what apply will do, resource by resource, and how to make it.
//!
//! A plan is also the saved plan file and the `--format json` output: one document, so what a
//! reviewer read is exactly what `apply PLANFILE` does.

pub mod additive;
mod build;
pub mod render;
pub mod targets;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::note::{Note, Severity};
pub use build::build;

use crate::error::{Error, Result};
use crate::graph::{Address, Kind, Location, Resource};
use crate::state::{Ownership, Record};

pub const FORMAT_VERSION: &str = "1.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Delete,
    /// A new resource for the old one: its cloud identity changed. The new one is created
    /// first and the old one deleted last ([`ResourceChange::creates_first`]), unless the
    /// cloud cannot hold both (one identity): then the old one goes first.
    Replace,
    NoOp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceChange {
    pub address: Address,
    pub kind: Kind,
    pub location: Location,
    pub action: Action,
    /// What the cloud holds now (projected onto what idplan manages); null when absent.
    pub before: Option<Value>,
    /// What it will hold; null for a delete.
    pub after: Option<Value>,
    /// Who owns the resource after the change (before it, for a delete).
    pub ownership: Ownership,
    /// The resource exists but the state does not know it yet: apply records it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub importing: bool,
    /// For adopted resources: what idplan adds and will take back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added: Option<Value>,
    /// What the state held for this resource (delete and replace): what apply removes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<Prior>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<Address>,
    /// Why, when it is not obvious: "deleted outside idplan", "forces replacement: name".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// An object an earlier replacement left behind at this address (a run stopped between
    /// the create and the delete): apply deletes it after the creates, or first of all when
    /// this address is deleted or replaced again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deposed: Option<DeposedChange>,
    /// A replacement whose new object takes the old one's place in the cloud (a federated
    /// credential keeps its name when the cluster's issuer changes): the cloud cannot hold
    /// both, so the old one is deleted first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub destroys_first: bool,
    /// In a plan made with `--additive-only`: whether the change only gives control planes
    /// what the spec grants, and is applied without a review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additive: Option<bool>,
    /// Why a change that is not additive waits for a reviewed apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withheld_because: Option<String>,
    /// Of an update that is not additive: what is applied without a review all the same (a
    /// trust or members that gain the new control planes and keep those that left).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additive_after: Option<Value>,
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
    /// The resource as it will be (create, update, replace, no-op).
    pub fn desired(&self) -> Option<Resource> {
        Some(Resource {
            address: self.address.clone(),
            kind: self.kind,
            location: self.location.clone(),
            attributes: self.after.clone()?,
            depends_on: self.depends_on.clone(),
            adopt: false,
        })
    }

    /// The resource as it was recorded (delete, replace): what to delete or release.
    pub fn recorded(&self) -> Option<Resource> {
        Some(Resource {
            address: self.address.clone(),
            kind: self.kind,
            location: self.location.clone(),
            attributes: self.prior.as_ref()?.attributes.clone(),
            depends_on: self.depends_on.clone(),
            adopt: false,
        })
    }

    /// Whether a replacement creates the new object before it deletes the old one, so that
    /// what uses the resource keeps working in between: yes, unless both have one cloud
    /// identity or take one place in the cloud (the cloud cannot hold both).
    pub fn creates_first(&self) -> bool {
        let (Some(prior), Some(after)) = (&self.prior, &self.after) else {
            return false;
        };
        self.action == Action::Replace
            && !self.destroys_first
            && crate::provider::identity(self.kind, &prior.attributes)
                != crate::provider::identity(self.kind, after)
    }

    /// The deletion of the deposed object of this address, as a change of its own.
    pub fn deposed_delete(&self) -> Option<ResourceChange> {
        let deposed = self.deposed.as_ref()?;
        Some(ResourceChange {
            action: Action::Delete,
            before: deposed.before.clone(),
            after: None,
            ownership: deposed.prior.ownership,
            importing: false,
            added: None,
            prior: Some(deposed.prior.clone()),
            reason: None,
            deposed: None,
            destroys_first: false,
            ..self.clone()
        })
    }

    /// Whether this change deletes an object from the cloud: a delete of what idplan created
    /// and still exists, or a replacement. Releasing or forgetting what idplan adopted does
    /// not.
    pub fn destroys(&self) -> bool {
        match self.action {
            Action::Replace => true,
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
            address: self.address.clone(),
            kind: self.kind,
            location: self.location.clone(),
            ownership: self.ownership,
            attributes: crate::provider::with_computed(self.kind, self.after.as_ref()?, actual),
            depends_on: self.depends_on.clone(),
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
                Action::Update => summary.change += 1,
                // Taking back from an adopted resource changes it, it is never destroyed; and
                // what is gone already, or has nothing of idplan's, is only forgotten.
                Action::Delete if c.releases() => summary.change += 1,
                Action::Delete if c.before.is_none() || c.ownership == Ownership::Adopted => {
                    summary.forget += 1
                }
                Action::Delete => summary.destroy += 1,
                Action::Replace => {
                    summary.add += 1;
                    summary.destroy += 1;
                }
                Action::NoOp => {}
            }
            if c.importing {
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
