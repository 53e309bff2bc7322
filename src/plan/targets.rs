//! A plan limited to some control planes (`--control-plane NAMESPACE`): what those control
//! planes need, and nothing of the others.
//!
//! 1. [`Targets::covers`]: their own resources (an association, a federated credential), and
//!    the shared ones whose attributes name them (a role whose trust lists subjects, the
//!    members of a bucket's policy); what those depend on is read too;
//! 2. [`Targets::narrow`]: a shared resource is brought only as far as the named control
//!    planes need: what the cloud holds, with theirs added. What is pending for the others
//!    (a control plane added or removed) is neither applied nor withheld: they were not read.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::graph::{Address, Graph, Resource};
use crate::kind::Owner;
use crate::plan::render::{namespace_of, namespaces_in};
use crate::state::{Record, State};

/// The host namespaces a plan is limited to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets(BTreeSet<String>);

impl Targets {
    pub fn new(namespaces: impl IntoIterator<Item = String>) -> Targets {
        Targets(namespaces.into_iter().collect())
    }

    pub fn namespaces(&self) -> &BTreeSet<String> {
        &self.0
    }

    /// Whether the named control planes need this resource: theirs, or shared and naming one
    /// of them.
    pub fn covers(&self, kind: crate::graph::Kind, address: &Address, attributes: &Value) -> bool {
        if kind.facts().owner == Owner::ControlPlane {
            return crate::graph::control_plane(kind, address)
                .is_some_and(|ns| self.0.contains(ns));
        }
        let mut named = BTreeSet::new();
        namespaces_in(attributes, &mut named);
        !named.is_disjoint(&self.0)
    }

    /// The resources of `graph` the named control planes need, and what those depend on.
    pub fn graph(&self, graph: &Graph) -> Graph {
        let mut keep: BTreeSet<Address> = graph
            .iter()
            .filter(|r| self.covers(r.node.kind(), &r.node.address, &r.attributes))
            .map(|r| r.node.address.clone())
            .collect();
        let mut todo: Vec<Address> = keep.iter().cloned().collect();
        while let Some(address) = todo.pop() {
            for dep in graph
                .get(&address)
                .map(|r| &r.node.depends_on[..])
                .unwrap_or(&[])
            {
                if keep.insert(dep.clone()) {
                    todo.push(dep.clone());
                }
            }
        }
        graph.only(|r| keep.contains(&r.node.address))
    }

    /// The state as far as the plan reads it: the records of `graph`'s addresses, and those of
    /// the named control planes the spec no longer wants.
    pub fn state(&self, state: &State, graph: &Graph) -> State {
        let keep = |r: &Record| {
            graph.get(&r.node.address).is_some()
                || self.covers(r.node.kind(), &r.node.address, &r.attributes)
        };
        State {
            resources: state
                .resources
                .iter()
                .filter(|r| keep(r))
                .cloned()
                .collect(),
            ..state.clone()
        }
    }

    /// What a shared resource should hold for the named control planes: what the cloud holds
    /// (`actual`), with what `desired` gives them added. `desired` when the two differ in more
    /// than lists of values.
    pub fn narrow(&self, resource: &Resource, actual: &Value) -> Value {
        if resource.node.kind().facts().owner == Owner::ControlPlane {
            return resource.attributes.clone();
        }
        let ours = self.restrict(&resource.attributes);
        let Some(Value::Object(mut joined)) = crate::diff::join_lists(actual, &ours) else {
            return resource.attributes.clone();
        };
        for v in joined.values_mut() {
            if crate::policy::is_document(v) {
                *v = crate::policy::normalize(v);
            }
        }
        Value::Object(joined)
    }

    /// `value` without the list values that name another control plane.
    fn restrict(&self, value: &Value) -> Value {
        let other = |s: &str| namespace_of(s).is_some_and(|ns| !self.0.contains(ns));
        match value {
            Value::String(s) if other(s) => Value::Array(Vec::new()),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .filter(|v| v.as_str().is_none_or(|s| !other(s)))
                    .map(|v| self.restrict(v))
                    .collect(),
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.restrict(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Of the control planes each space covers (`covered`), the named ones.
    pub fn covered(&self, covered: BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
        covered
            .into_iter()
            .map(|(space, mut namespaces)| {
                namespaces.retain(|ns| self.0.contains(ns));
                (space, namespaces)
            })
            .collect()
    }
}
