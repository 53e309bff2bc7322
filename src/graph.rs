//! The desired-state graph: addressed resources, their kinds and dependencies, and the order
//! in which they are written.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

pub use crate::address::{Address, Scope};
use crate::error::{Error, Result};
use crate::kind::Owner;
pub use crate::kind::{Kind, Location};

/// The host namespace of a resource of one control plane (an association, a federated
/// credential); `None` for a component's or a cluster's.
pub fn control_plane(kind: Kind, address: &Address) -> Option<&str> {
    if kind.facts().owner != Owner::ControlPlane {
        return None;
    }
    match address.scope() {
        Scope::Component { item, .. } => item.as_deref(),
        Scope::Cluster { .. } => None,
    }
}

/// A desired attribute that another resource's cloud assigns at create (an identity's
/// principal id): `{"$ref": "<address>#<key>"}` until it is known. A plan shows it as
/// "(known after apply)"; plan resolves it when the other resource exists, apply right
/// before the write, from the state record of the other resource (written in an earlier
/// wave: a reference is always also a dependency).
const REF_KEY: &str = "$ref";

/// What a reference points at: another resource's computed key. Written and read as
/// `<address>#<key>`, here only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub address: Address,
    pub key: String,
}

impl Reference {
    pub fn new(address: &Address, key: &str) -> Reference {
        Reference {
            address: address.clone(),
            key: key.to_string(),
        }
    }

    /// As an attribute holds it: `{"$ref": "<address>#<key>"}`.
    pub fn to_value(&self) -> Value {
        serde_json::json!({ REF_KEY: self.to_string() })
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.address, self.key)
    }
}

impl std::str::FromStr for Reference {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Reference, String> {
        let (address, key) = text
            .rsplit_once('#')
            .ok_or_else(|| format!("`{text}` is not `<address>#<key>`"))?;
        Ok(Reference {
            address: address.parse().map_err(|e| format!("{e}"))?,
            key: key.to_string(),
        })
    }
}

/// The attribute value that stands for `address`'s `key` until it is known.
pub fn reference(address: &Address, key: &str) -> Value {
    Reference::new(address, key).to_value()
}

/// The reference a value is, if it is one.
pub fn as_reference(value: &Value) -> Option<Reference> {
    let map = value.as_object().filter(|m| m.len() == 1)?;
    map.get(REF_KEY)?.as_str()?.parse().ok()
}

/// Whether any value in `attributes` is a reference not resolved yet.
pub fn has_references(attributes: &Value) -> bool {
    match attributes {
        _ if as_reference(attributes).is_some() => true,
        Value::Object(map) => map.values().any(has_references),
        Value::Array(items) => items.iter().any(has_references),
        _ => false,
    }
}

/// Replaces every reference that `lookup` knows; the others stay.
pub fn resolve(attributes: &Value, lookup: &dyn Fn(&Reference) -> Option<Value>) -> Value {
    if let Some(reference) = as_reference(attributes) {
        return lookup(&reference).unwrap_or_else(|| attributes.clone());
    }
    match attributes {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), resolve(v, lookup)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, lookup)).collect()),
        other => other.clone(),
    }
}

/// What a desired resource, a state record and a planned change have in common: which
/// resource (its address names its kind), where it lives, and what must exist before it.
/// Their attributes are not shared: one is desired, one recorded, one a before and an after.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Unique in a graph, a state and a plan.
    pub address: Address,
    pub location: Location,
    /// Addresses that must exist before this one is written (and outlive it).
    pub depends_on: Vec<Address>,
}

impl Node {
    pub fn kind(&self) -> Kind {
        self.address.kind()
    }
}

/// A node's head as the state and plan files write it, flattened into each file's record:
/// `address`, then `kind` (named by the address too: written for the file's readers, and a
/// `kind` that is not the address's is refused), then `location`. `depends_on` comes later.
#[derive(Serialize, Deserialize)]
pub struct NodeHead<'a> {
    address: Cow<'a, Address>,
    kind: Kind,
    location: Cow<'a, Location>,
}

impl<'a> NodeHead<'a> {
    pub fn of(node: &'a Node) -> NodeHead<'a> {
        NodeHead {
            address: Cow::Borrowed(&node.address),
            kind: node.kind(),
            location: Cow::Borrowed(&node.location),
        }
    }

    /// The node read, once its `kind` is found to be its address's.
    pub fn into_node(self, depends_on: Vec<Address>) -> std::result::Result<Node, String> {
        self.address.check_kind(self.kind)?;
        Ok(Node {
            address: self.address.into_owned(),
            location: self.location.into_owned(),
            depends_on,
        })
    }
}

/// One desired resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub node: Node,
    /// Desired attributes, normalised so they compare equal to what a driver reads back.
    pub attributes: Value,
    /// Part of a component with `adopt: true`: its identity exists already, and so may what
    /// hangs on it (under names idplan did not choose); idplan takes them over, never deletes.
    pub adopt: bool,
}

/// The desired resources of all spaces, deduplicated by address.
#[derive(Debug, Default)]
pub struct Graph {
    resources: BTreeMap<Address, Resource>,
}

impl Graph {
    /// Adds a resource; whether it is new. Two spaces on one cluster want the same OIDC
    /// provider: an identical resource under the same address is one resource; a different
    /// one is a conflict.
    pub fn add(&mut self, resource: Resource) -> Result<bool> {
        match self.resources.get(&resource.node.address) {
            Some(existing) if *existing == resource => Ok(false),
            Some(_) => Err(Error::user(format!(
                "{} is wanted twice with different settings: two spaces name the same resource; \
                 give one of them another `name`",
                resource.node.address
            ))),
            None => {
                self.resources
                    .insert(resource.node.address.clone(), resource);
                Ok(true)
            }
        }
    }

    /// The resources `keep` accepts, as a graph of their own.
    pub fn only(&self, keep: impl Fn(&Resource) -> bool) -> Graph {
        let resources: BTreeMap<Address, Resource> = self
            .resources
            .iter()
            .filter(|(_, r)| keep(r))
            .map(|(a, r)| (a.clone(), r.clone()))
            .collect();
        Graph { resources }
    }

    pub fn get(&self, address: &str) -> Option<&Resource> {
        self.resources.get(address)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Resource> {
        self.resources.values()
    }

    pub fn len(&self) -> usize {
        self.resources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }
}

/// Groups addresses into waves: every address comes after all its dependencies. Dependencies
/// outside `nodes` are already satisfied. Within a wave, writes may run in parallel.
pub fn waves<'a>(
    nodes: impl IntoIterator<Item = (&'a Address, &'a [Address])>,
) -> Result<Vec<Vec<&'a Address>>> {
    let deps: HashMap<&Address, &[Address]> = nodes.into_iter().collect();
    let mut depth: HashMap<&Address, usize> = HashMap::new();
    fn visit<'a>(
        node: &'a Address,
        deps: &HashMap<&'a Address, &'a [Address]>,
        depth: &mut HashMap<&'a Address, usize>,
        stack: &mut Vec<&'a Address>,
    ) -> Result<usize> {
        if let Some(&d) = depth.get(node) {
            return Ok(d);
        }
        if stack.contains(&node) {
            return Err(Error::internal(format!("dependency cycle through {node}")));
        }
        stack.push(node);
        let mut d = 0;
        for dep in deps[node].iter() {
            if let Some((dep, _)) = deps.get_key_value(dep) {
                d = d.max(visit(dep, deps, depth, stack)? + 1);
            }
        }
        stack.pop();
        depth.insert(node, d);
        Ok(d)
    }
    let mut keys: Vec<&Address> = deps.keys().copied().collect();
    keys.sort_unstable();
    let mut out: Vec<Vec<&Address>> = Vec::new();
    for key in keys {
        let d = visit(key, &deps, &mut depth, &mut Vec::new())?;
        if out.len() <= d {
            out.resize_with(d + 1, Vec::new);
        }
        out[d].push(key);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::AwsKind;
    use crate::kind::AzureKind;
    use crate::spec::ComponentKind;

    fn role(space: &str) -> Address {
        Address::component(Kind::Aws(AwsKind::IamRole), space, ComponentKind::Backup)
    }

    #[test]
    fn waves_follow_dependencies() {
        let (p, r, pol, lone) = (role("p"), role("r"), role("pol"), role("lone"));
        let none: Vec<Address> = vec![];
        let on_p = vec![p.clone()];
        let on_r = vec![r.clone(), role("elsewhere")];
        let w = waves([
            (&pol, on_r.as_slice()),
            (&r, on_p.as_slice()),
            (&p, none.as_slice()),
            (&lone, none.as_slice()),
        ])
        .unwrap();
        assert_eq!(w, vec![vec![&lone, &p], vec![&r], vec![&pol]]);
    }

    #[test]
    fn references_resolve_when_known() {
        let attrs = serde_json::json!({
            "scope": "/s",
            "principal_id": reference(
                &Address::component(Kind::Azure(AzureKind::UserAssignedIdentity), "p", ComponentKind::Backup),
                "principal_id"
            ),
        });
        assert!(has_references(&attrs));
        assert_eq!(
            attrs["principal_id"],
            serde_json::json!({"$ref": "azurerm_user_assigned_identity.p.backup#principal_id"})
        );
        let unknown = resolve(&attrs, &|_| None);
        assert_eq!(unknown, attrs);
        let known = resolve(&attrs, &|r| {
            (r.address.as_str() == "azurerm_user_assigned_identity.p.backup"
                && r.key == "principal_id")
                .then(|| Value::from("1234"))
        });
        assert_eq!(known["principal_id"], "1234");
        assert!(!has_references(&known));
    }

    #[test]
    fn cycles_are_errors() {
        let (a, b) = (role("a"), role("b"));
        let (on_a, on_b) = (vec![a.clone()], vec![b.clone()]);
        assert!(waves([(&a, on_b.as_slice()), (&b, on_a.as_slice())]).is_err());
    }
}
