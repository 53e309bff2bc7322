//! What idplan knows of a resource kind's behaviour, declared in one place per kind.
//!
//! Each kind is a unit struct in its driver's file (`provider/aws/role.rs` `Role`, ...) that
//! implements [`KindDef`], the questions the core asks of any kind, and
//! [`crate::provider::KindOps`] for its cloud's driver, how that driver reads and writes it. The
//! core (plan, apply, render, helm, verify) asks the kind through [`Kind::def`]; it never
//! matches on a kind. What addresses and the state need of a kind without its behaviour (its
//! type name, its owner: [`Facts`]) is data in `crate::kind`, below everything that names a
//! kind. The trait's provided methods are the behaviour most kinds share;
//! the one that decides what may happen without a review, [`KindDef::additive`], defaults to
//! "not additive".

use serde_json::Value;

use crate::error::Result;
use crate::graph::Resource;
use crate::kind::{Facts, Kind};
use crate::provider::Adoption;

/// A change the additive hook is asked about: what idplan would write, over what the cloud
/// holds. Deletes, replaces, adoptions and releases are never additive and are not asked.
#[derive(Debug, Clone, Copy)]
pub enum Proposed<'a> {
    Create { after: &'a Value },
    Update { before: &'a Value, after: &'a Value },
}

/// The cloud identity of a resource: the parts that name one cloud object of its kind (a
/// role's name; an association's cluster, namespace and service account). Two addresses may
/// not share one, and when it differs between state and spec the resource is replaced.
/// Compared and hashed part by part; shown as the cloud names the object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    parts: Vec<String>,
    /// What is shown between the parts, one fewer than they.
    between: &'static [&'static str],
}

impl Identity {
    /// An identity of one part: a name, an ARN, an email.
    pub fn name(name: impl Into<String>) -> Identity {
        Identity {
            parts: vec![name.into()],
            between: &[],
        }
    }

    /// An identity of several parts, shown with `between` between them.
    pub fn parts<const N: usize>(parts: [String; N], between: &'static [&'static str]) -> Identity {
        debug_assert_eq!(between.len() + 1, N);
        Identity {
            parts: parts.to_vec(),
            between,
        }
    }

    /// Each part in lower case: a cloud whose ids are case-insensitive (ARM).
    pub fn lowercase(mut self) -> Identity {
        for part in &mut self.parts {
            *part = part.to_ascii_lowercase();
        }
        self
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                f.write_str(self.between.get(i - 1).copied().unwrap_or(" "))?;
            }
            f.write_str(part)?;
        }
        Ok(())
    }
}

/// Everything the core asks of a resource kind.
pub trait KindDef: Sync {
    /// The kind this declares: its facts are `crate::kind`'s.
    fn kind(&self) -> Kind;

    fn facts(&self) -> Facts {
        self.kind().facts()
    }

    /// The cloud identity of a resource: two addresses may not share one, and when it differs
    /// between state and spec the resource is replaced.
    fn identity(&self, attributes: &Value) -> Result<Identity>;

    /// Attributes the cloud assigns when a resource is created (an association's id):
    /// recorded in the state and read back, but never desired, so never compared. Most kinds
    /// have none.
    fn computed_keys(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether an existing resource that the state does not know can be taken over. By
    /// default it belongs to what it hangs on: idplan's, unless the spec adopts that
    /// (`adopt: true`); then it was made beside it by hand and is shared, keeping what
    /// [`KindDef::shared_desired`] keeps and remembering what [`KindDef::added_after`] adds.
    fn adoption(&self, resource: &Resource, actual: &Value) -> Result<Adoption> {
        if !resource.adopt {
            return Ok(Adoption::Owned);
        }
        Ok(Adoption::Shared {
            desired: self.shared_desired(resource, actual)?,
            added: self.added_after(resource, actual, None)?,
        })
    }

    /// The attributes an adopted resource keeps as its owner set them (a name it chose, its
    /// description, its tags): idplan never changes them. Most kinds keep none.
    fn owner_keeps(&self) -> &'static [&'static str] {
        &[]
    }

    /// What idplan wants of a resource it adopted (`actual` is what the cloud holds): the
    /// desired attributes, with what the owner keeps ([`KindDef::owner_keeps`]) as the owner
    /// set it.
    fn shared_desired(&self, resource: &Resource, actual: &Value) -> Result<Value> {
        Ok(crate::provider::owners_keys(
            resource,
            actual,
            self.owner_keeps(),
        ))
    }

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

    /// For an update that is not additive: attributes that keep everything `before` grants
    /// and add what `after` adds (a trust that gains the new control planes and keeps those
    /// that left), applied without a review while the rest waits. `None` when there are none.
    fn additive_part(&self, before: &Value, after: &Value) -> Option<Value> {
        let _ = (before, after);
        None
    }

    /// What to do when two addresses want one cloud object of this kind.
    fn conflict_fix(&self) -> &'static str {
        "give one of them another `name`"
    }
}

/// The additive part of an update of a kind whose lists only grow (trust subjects, members):
/// `joined`, the lists of before and after joined, when it adds to `before` and `kind` takes
/// that update as additive.
pub fn additive_join(kind: &impl KindDef, before: &Value, joined: Value) -> Option<Value> {
    let adds = joined != *before;
    (adds
        && kind.additive(Proposed::Update {
            before,
            after: &joined,
        }))
    .then_some(joined)
}

/// The cloud identity of a resource: two addresses may not share one, and when it differs
/// between state and spec the resource is replaced. Each kind declares its own
/// ([`KindDef::identity`]).
pub fn identity(kind: Kind, attributes: &Value) -> Identity {
    // Attributes that do not fit their kind are a bug: their text stands for the identity,
    // unequal to any other and visible in whatever message names it.
    kind.def()
        .identity(attributes)
        .unwrap_or_else(|_| Identity::name(attributes.to_string()))
}

/// Attributes the cloud assigns when a resource is created (an association's id): recorded in
/// the state and read back, but never desired, so never compared with the spec.
pub fn computed_keys(kind: Kind) -> &'static [&'static str] {
    kind.def().computed_keys()
}

/// `attributes` without the computed keys: what the spec decides.
pub fn decided(kind: Kind, attributes: &Value) -> Value {
    let mut out = attributes.clone();
    if let Value::Object(map) = &mut out {
        for key in computed_keys(kind) {
            map.remove(*key);
        }
    }
    out
}

/// Whether `recorded` and `actual` are one cloud object: an association deleted and made again
/// outside idplan has the same identity but another id, and is not idplan's.
pub fn same_object(kind: Kind, recorded: &Value, actual: &Value) -> bool {
    computed_keys(kind)
        .iter()
        .all(|key| recorded.get(*key) == actual.get(*key))
}

/// `desired` with the computed attributes of `actual` added: what the state records.
pub fn with_computed(kind: Kind, desired: &Value, actual: Option<&Value>) -> Value {
    let mut out = desired.clone();
    if let (Value::Object(map), Some(actual)) = (&mut out, actual) {
        for key in computed_keys(kind) {
            if let Some(v) = actual.get(*key) {
                map.insert(key.to_string(), v.clone());
            }
        }
    }
    out
}

/// What an older idplan recorded of a resource of `kind`, as this one records it: the state
/// reads each record through it ([`crate::state::file::Upgrade`]).
pub fn upgrade_recorded(kind: Kind, attributes: &mut Value) {
    kind.def().upgrade_recorded(attributes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_compare_by_part_and_show_as_the_cloud_names_them() {
        let association = Identity::parts(["c".into(), "ns".into(), "sa".into()], &["/", "/"]);
        assert_eq!(association.to_string(), "c/ns/sa");
        let other = Identity::parts(["c/ns".into(), "sa".into()], &["/"]);
        assert_eq!(other.to_string(), association.to_string());
        assert_ne!(other, association, "one text, two objects");
        let arm = Identity::parts(["/Subs/X".into(), "Issuer".into()], &[" "]).lowercase();
        assert_eq!(arm.to_string(), "/subs/x issuer");
    }

    #[test]
    fn every_kind_declares_itself() {
        for kind in Kind::all() {
            assert_eq!(kind.def().kind(), kind);
        }
    }

    use serde_json::{Value, json};

    use crate::kind::{AwsKind, AzureKind, GcpKind, PolicyOf};
    use crate::policy::{self, PodIdentityTrust, Trust, Values};

    fn create(kind: Kind) -> bool {
        kind.def().additive(Proposed::Create { after: &json!({}) })
    }

    fn update(kind: Kind, before: &Value, after: &Value) -> bool {
        kind.def().additive(Proposed::Update { before, after })
    }

    #[test]
    fn only_a_control_planes_own_resources_are_additive_creates() {
        let additive: Vec<Kind> = Kind::all().filter(|k| create(*k)).collect();
        assert_eq!(
            additive,
            [
                Kind::Aws(AwsKind::EksPodIdentityAssociation),
                Kind::Azure(AzureKind::FederatedIdentityCredential)
            ]
        );
    }

    fn role(description: &str, trust: &Trust) -> Value {
        json!({
            "name": "r", "arn": "arn:aws:iam::1:role/r", "path": "/",
            "description": description,
            "assume_role_policy": policy::normalize(&policy::trust_policy(trust)),
            "tags": {},
        })
    }

    fn irsa(subjects: &[&str]) -> Trust {
        Trust::Irsa {
            provider_arn: "arn:aws:iam::1:oidc-provider/o".into(),
            issuer: "o".into(),
            subjects: Values::Exact(subjects.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn a_role_update_is_additive_when_its_trust_only_gains_control_planes() {
        let kind = Kind::Aws(AwsKind::IamRole);
        let (a, b) = (
            "system:serviceaccount:mxp-a-system:vector",
            "system:serviceaccount:mxp-b-system:vector",
        );
        let one = role("d", &irsa(&[a]));
        assert!(update(kind, &one, &role("d", &irsa(&[a, b]))));
        assert!(
            !update(kind, &one, &role("d", &irsa(&[b]))),
            "one in, one out"
        );
        assert!(!update(kind, &role("d", &irsa(&[a, b])), &one), "one out");
        assert!(
            !update(kind, &one, &role("other", &irsa(&[a, b]))),
            "and more"
        );
        let wildcard = Trust::Irsa {
            provider_arn: "arn:aws:iam::1:oidc-provider/o".into(),
            issuer: "o".into(),
            subjects: Values::Like("system:serviceaccount:mxp-*-system:vector".into()),
        };
        assert!(!update(kind, &one, &role("d", &wildcard)), "a pattern");
        let pods = |namespaces: &[&str]| {
            Trust::PodIdentity(PodIdentityTrust {
                account_id: "1".into(),
                cluster_arn: "arn:aws:eks:us-east-1:1:cluster/c".into(),
                service_account: "vector".into(),
                namespaces: Values::Exact(namespaces.iter().map(|s| s.to_string()).collect()),
            })
        };
        let one = role("d", &pods(&["mxp-a-system"]));
        let two = role("d", &pods(&["mxp-a-system", "mxp-b-system"]));
        assert!(update(kind, &one, &two));
        assert!(!update(kind, &two, &one));
    }

    #[test]
    fn members_are_additive_when_only_added() {
        let members = |role: &str, members: &[&str]| json!({ "resource": "b", "role": role, "for": "p/backup", "members": members });
        for of in [
            PolicyOf::Bucket,
            PolicyOf::Project,
            PolicyOf::Secret,
            PolicyOf::ServiceAccount,
        ] {
            let kind = Kind::Gcp(GcpKind::Members(of));
            let one = members("r", &["m1"]);
            assert!(update(kind, &one, &members("r", &["m1", "m2"])), "{kind}");
            assert!(!update(kind, &one, &members("r", &["m2"])), "{kind}");
            assert!(
                !update(kind, &one, &members("other", &["m1", "m2"])),
                "{kind}"
            );
        }
    }

    #[test]
    fn no_other_update_is_additive() {
        let v = json!({});
        for kind in Kind::all() {
            if matches!(
                kind,
                Kind::Aws(AwsKind::IamRole) | Kind::Gcp(GcpKind::Members(_))
            ) {
                continue;
            }
            assert!(!update(kind, &v, &v), "{kind}");
        }
    }
}
