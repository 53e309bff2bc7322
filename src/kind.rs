//! What idplan knows of a resource kind, declared in one place per kind.
//!
//! Each kind is a unit struct in its driver's file (`provider/aws/role.rs` `Role`, ...) that
//! implements [`KindDef`], the questions the core asks of any kind, and its cloud's own trait
//! (`provider/aws/mod.rs` `AwsKindDef`, ...) for how the driver reads and writes it. The
//! core (graph, plan, apply, render, helm, verify) asks the kind through
//! [`Kind::def`](crate::provider::Kind::def); it never matches on a kind.
//!
//! [`Facts`] is a struct literal in every kind: a fact added here is a compile error in each
//! kind until it declares it. The trait's provided methods are the behaviour most kinds share;
//! the one that decides what may happen without a review, [`KindDef::additive`], defaults to
//! "not additive".

use serde_json::Value;

use crate::error::Result;
use crate::graph::Resource;
use crate::provider::Adoption;

/// What the core needs to know of a kind besides its behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// The first segment of an address, terraform style; also how plans and the state name
    /// the kind.
    pub type_name: &'static str,
    /// How the summary of a plan names it ("role", "pod identity associations").
    pub noun: &'static str,
    /// Whose it is: it decides the address's shape.
    pub owner: Owner,
    /// A component's identity: what `adopt: true` takes over.
    pub identity: bool,
    /// Pods pick it up when they start (an identity, a credential, an association): a create
    /// or a replace records that the component's pods started before it need a restart.
    /// Permissions are looked up at each call and need none.
    pub read_at_pod_start: bool,
    /// idplan's members of one role in a policy others share: named by role and resource.
    pub shared_policy_members: bool,
}

/// Whose a resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// One per component of a space (a role, its policy, members of a shared policy).
    Component,
    /// One per control plane and component (an association, a federated credential): the
    /// summary counts them and never lists them.
    ControlPlane,
    /// One per cluster, shared by its spaces (an OIDC provider): addressed by region and
    /// cluster rather than by space and component.
    Cluster,
}

/// A change the additive hook is asked about: what idplan would write, over what the cloud
/// holds. Deletes, replaces, adoptions and releases are never additive and are not asked.
#[derive(Debug, Clone, Copy)]
pub enum Proposed<'a> {
    Create { after: &'a Value },
    Update { before: &'a Value, after: &'a Value },
}

/// Everything the core asks of a resource kind.
pub trait KindDef: Sync {
    fn facts(&self) -> Facts;

    /// The cloud identity of a resource: two addresses may not share one, and when it differs
    /// between state and spec the resource is replaced.
    fn identity(&self, attributes: &Value) -> Result<String>;

    /// Attributes the cloud assigns when a resource is created (an association's id):
    /// recorded in the state and read back, but never desired, so never compared.
    fn computed_keys(&self) -> &'static [&'static str];

    /// Whether an existing resource that the state does not know can be taken over.
    fn adoption(&self, resource: &Resource, actual: &Value) -> Result<Adoption>;

    /// What idplan wants of a resource it adopted (`actual` is what the cloud holds): the
    /// desired attributes, with what stays its owner's (a name it chose, its description)
    /// as the owner set it.
    fn shared_desired(&self, resource: &Resource, actual: &Value) -> Result<Value>;

    /// What idplan will have added to a resource it adopted once `resource` is applied over
    /// `actual`, given what it `added` before: most kinds add only at adoption.
    fn added_after(
        &self,
        resource: &Resource,
        actual: &Value,
        added: Option<Value>,
    ) -> Result<Option<Value>> {
        let _ = (resource, actual);
        Ok(added)
    }

    /// Brings attributes an older idplan recorded to what this one records: an attribute
    /// added since gets the value the older state meant, so that it compares equal to the
    /// cloud. Most kinds never changed.
    fn upgrade_recorded(&self, attributes: &mut Value) {
        let _ = attributes;
    }

    /// Whether a change only adds access that the reviewed spec already grants (a create for
    /// a control plane, an update that adds and removes nothing), so that it may be applied
    /// without a review. A kind that does not say is never additive.
    fn additive(&self, change: Proposed<'_>) -> bool {
        let _ = change;
        false
    }

    /// What to do when two addresses want one cloud object of this kind.
    fn conflict_fix(&self) -> &'static str {
        "give one of them another `name`"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Kind;

    #[test]
    fn every_kind_is_declared_once_and_round_trips() {
        let names: Vec<&str> = Kind::all().map(|k| k.type_name()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for kind in Kind::all() {
            let text = serde_json::to_string(&kind).unwrap();
            assert_eq!(text, format!("\"{}\"", kind.type_name()));
            assert_eq!(serde_json::from_str::<Kind>(&text).unwrap(), kind);
        }
        assert!(serde_json::from_str::<Kind>("\"aws_iam_user\"").is_err());
    }

    #[test]
    fn no_kind_is_additive_until_it_says_so() {
        let v = serde_json::json!({});
        for kind in Kind::all() {
            let def = kind.def();
            assert!(!def.additive(Proposed::Create { after: &v }), "{kind}");
            assert!(
                !def.additive(Proposed::Update {
                    before: &v,
                    after: &v
                }),
                "{kind}"
            );
        }
    }
}
