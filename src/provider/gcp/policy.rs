//! idplan's members of one role in a shared IAM allow policy (a bucket's, the project's, a
//! secret's, a service account's).
//!
//! Policies are shared with their owners: every change is a read-modify-write of the whole
//! policy under its `etag` that touches only idplan's members of one role in the binding
//! without a condition; a race (409 ABORTED, or 412 on Storage) is retried on a fresh read.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::context::check_principals;
use super::{Api, GcpDriver, GcpKind, PolicyOf};
use crate::error::{Error, Result};
use crate::graph::{Graph, Kind, Resource};
use crate::provider::{Identity, KindDef, KindOps, Proposed, ReadResult, additive_join};
use crate::provider::{attributes, attributes_of, to_attributes};
use crate::state::State;
use crate::transport::Failure;

/// Read-modify-write rounds of one policy change when others write at the same time.
const RACE_ATTEMPTS: u32 = 8;

/// `google_*_iam_members`: idplan's members of one role in one resource's policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MembersAttributes {
    /// The resource whose policy it is: a bucket name, a project id, or a resource name.
    pub resource: String,
    pub role: String,
    /// Whose members these are (`<space>/<component>`): several member sets may share one
    /// role in one policy.
    #[serde(rename = "for")]
    pub holder: String,
    pub members: BTreeSet<String>,
}

/// Every IAM policy the resources put members into, with idplan's members there:
/// (kind, policy resource) → members.
pub fn policy_members<'a>(
    resources: impl IntoIterator<Item = (Kind, &'a MembersAttributes)>,
) -> BTreeMap<(Kind, String), BTreeSet<String>> {
    let mut out: BTreeMap<(Kind, String), BTreeSet<String>> = BTreeMap::new();
    for (kind, m) in resources {
        out.entry((kind, m.resource.clone()))
            .or_default()
            .extend(m.members.iter().cloned());
    }
    out
}

/// The member attributes among `resources`.
pub fn members_of<'a>(
    resources: impl IntoIterator<Item = &'a Resource>,
) -> Result<Vec<(Kind, MembersAttributes)>> {
    resources
        .into_iter()
        .filter(|r| matches!(r.node.kind(), Kind::Gcp(GcpKind::Members(_))))
        .map(|r| Ok((r.node.kind(), attributes_of(r)?)))
        .collect()
}

/// What idplan added to members it adopted.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Added {
    #[serde(default)]
    members: BTreeSet<String>,
}

/// The members idplan will have added to adopted members once `resource` is applied over
/// `actual` (what the policy holds of them), given those it `added` before.
fn added_members(
    resource: &Resource,
    actual: &Value,
    added: Option<Value>,
) -> Result<Option<Value>> {
    let desired: MembersAttributes = attributes_of(resource)?;
    let held = attributes::<MembersAttributes>(&resource.node.address, actual)?.members;
    let mut members = match added {
        Some(added) => attributes::<Added>(&resource.node.address, &added)?.members,
        None => BTreeSet::new(),
    };
    members.extend(desired.members.difference(&held).cloned());
    // What idplan added and no longer wants goes with this update.
    members.retain(|m| desired.members.contains(m));
    Ok((!members.is_empty()).then(|| to_attributes(&Added { members })))
}

impl GcpDriver {
    /// Refuses a GCP IAM policy that would hold more principals than Google allows, counting
    /// the members others hold there. Checked before anything is written.
    pub(super) async fn check_policy_sizes(&self, desired: &Graph, state: &State) -> Result<()> {
        let desired_members = members_of(desired.iter())?;
        let wanted = policy_members(desired_members.iter().map(|(k, m)| (*k, m)));
        if wanted.is_empty() {
            return Ok(());
        }
        let recorded_resources: Vec<Resource> =
            state.resources.iter().map(|r| r.resource()).collect();
        let recorded_members = members_of(recorded_resources.iter())?;
        let recorded = policy_members(recorded_members.iter().map(|(k, m)| (*k, m)));
        for ((kind, policy), ours) in &wanted {
            // One resource of this policy stands for it: the driver reads the whole policy.
            let Some(sample) = desired.iter().find(|r| {
                r.node.kind() == *kind
                    && attributes_of::<MembersAttributes>(r).is_ok_and(|m| m.resource == *policy)
            }) else {
                continue;
            };
            let known = recorded.get(&(*kind, policy.clone()));
            let others = self
                .policy_principals(sample)
                .await?
                .into_iter()
                .filter(|m| !ours.contains(m) && known.is_none_or(|k| !k.contains(m)))
                .count();
            check_principals(policy, ours.len(), others).map_err(Error::user)?;
        }
        Ok(())
    }

    /// Every principal in the policy that `r` puts members into (all roles, all bindings).
    async fn policy_principals(&self, r: &Resource) -> Result<BTreeSet<String>> {
        let Some(policy) = self.get_policy(r).await? else {
            return Ok(BTreeSet::new());
        };
        Ok(policy["bindings"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|b| b["members"].as_array().into_iter().flatten())
            .filter_map(|m| m.as_str().map(str::to_string))
            .collect())
    }

    /// The policy of `r`'s resource at version 3 (so conditional bindings come back whole);
    /// `None` when the resource does not exist.
    async fn get_policy(&self, r: &Resource) -> Result<Option<Value>> {
        let resource = attributes_of::<MembersAttributes>(r)?.resource;
        let of = policy_of(r)?;
        let (op, _) = of.ops();
        let (method, api, path, query, body) = match of {
            PolicyOf::Bucket => (
                Method::GET,
                Api::Storage,
                format!("b/{resource}/iam"),
                [("optionsRequestedPolicyVersion", "3")].as_slice(),
                None,
            ),
            PolicyOf::Project => (
                Method::POST,
                Api::ResourceManager,
                format!("v3/projects/{resource}:getIamPolicy"),
                [].as_slice(),
                Some(json!({ "options": { "requestedPolicyVersion": 3 } })),
            ),
            PolicyOf::Secret => (
                Method::GET,
                Api::SecretManager,
                format!("v1/{resource}:getIamPolicy"),
                [("options.requestedPolicyVersion", "3")].as_slice(),
                None,
            ),
            PolicyOf::ServiceAccount => (
                Method::POST,
                Api::Iam,
                format!("v1/{resource}:getIamPolicy"),
                [("options.requestedPolicyVersion", "3")].as_slice(),
                None,
            ),
        };
        match self
            .call(method, api, &path, query, body.as_ref(), op)
            .await
        {
            Ok(policy) => Ok(Some(policy)),
            // The bucket, secret or service account is gone: so are idplan's members there.
            // A project that cannot be found is an error worth seeing.
            Err(f) if f.is(404) && of != PolicyOf::Project => Ok(None),
            Err(f) => Err(f.into_error(&r.node.address, op)),
        }
    }

    async fn set_policy(
        &self,
        of: PolicyOf,
        resource: &str,
        policy: &Value,
    ) -> Result<(), Failure> {
        let (_, op) = of.ops();
        let (method, api, path, body) = match of {
            PolicyOf::Bucket => (
                Method::PUT,
                Api::Storage,
                format!("b/{resource}/iam"),
                policy.clone(),
            ),
            PolicyOf::Project => (
                Method::POST,
                Api::ResourceManager,
                format!("v3/projects/{resource}:setIamPolicy"),
                json!({ "policy": policy }),
            ),
            PolicyOf::Secret => (
                Method::POST,
                Api::SecretManager,
                format!("v1/{resource}:setIamPolicy"),
                json!({ "policy": policy }),
            ),
            PolicyOf::ServiceAccount => (
                Method::POST,
                Api::Iam,
                format!("v1/{resource}:setIamPolicy"),
                json!({ "policy": policy }),
            ),
        };
        self.call(method, api, &path, &[], Some(&body), op)
            .await
            .map(|_| ())
    }

    /// Adds and removes idplan's members of `r`'s role, read-modify-write under the etag,
    /// leaving every other binding and member as it is.
    async fn change_members(
        &self,
        r: &Resource,
        a: &MembersAttributes,
        add: &BTreeSet<String>,
        remove: &BTreeSet<String>,
    ) -> Result<()> {
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        let key = format!("{:?} {}", r.node.kind(), a.resource);
        let lock = self
            .locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default()
            .clone();
        let _held = lock.lock().await;
        let of = policy_of(r)?;
        let (get, set) = of.ops();
        let mut round = 0;
        loop {
            round += 1;
            let Some(mut policy) = self.get_policy(r).await? else {
                if add.is_empty() {
                    return Ok(());
                }
                // A service account made a moment ago may not be visible to every IAM replica
                // yet: give it a few seconds before calling it missing.
                if of == PolicyOf::ServiceAccount && round < 6 {
                    tokio::time::sleep(Duration::from_secs(u64::from(round))).await;
                    continue;
                }
                return Err(Error::Cloud {
                    resource: r.node.address.to_string(),
                    api: get.into(),
                    message: format!("{} does not exist", a.resource),
                });
            };
            if !edit_policy(&mut policy, &a.role, add, remove) {
                return Ok(());
            }
            match self.set_policy(of, &a.resource, &policy).await {
                Ok(()) => return Ok(()),
                // Someone else changed the policy since it was read: read it again.
                Err(f) if (f.is(409) || f.is(412)) && round < RACE_ATTEMPTS => {
                    tokio::time::sleep(backoff(round)).await;
                }
                // A service account just made is not yet known to every IAM replica.
                Err(f) if f.is(400) && f.message.contains("does not exist") && round < 6 => {
                    tokio::time::sleep(Duration::from_secs(2 * u64::from(round))).await;
                }
                Err(f) => return Err(f.into_error(&r.node.address, set)),
            }
        }
    }
}

/// Backoff between read-modify-write rounds: from 400 ms (up to 5 s) with jitter.
fn backoff(round: u32) -> Duration {
    crate::transport::backoff(round, Duration::from_millis(400), Duration::from_secs(5))
}

/// Whose policy `r`'s members are in.
fn policy_of(r: &Resource) -> Result<PolicyOf> {
    match r.node.kind() {
        Kind::Gcp(GcpKind::Members(of)) => Ok(of),
        Kind::Gcp(GcpKind::ServiceAccount) | Kind::Aws(_) | Kind::Azure(_) => {
            Err(Error::internal(format!(
                "{} ({}) holds no IAM members",
                r.node.address,
                r.node.kind()
            )))
        }
    }
}

impl PolicyOf {
    /// The API operations on this policy: (get, set).
    fn ops(self) -> (&'static str, &'static str) {
        match self {
            PolicyOf::Bucket => (
                "storage.buckets.getIamPolicy",
                "storage.buckets.setIamPolicy",
            ),
            PolicyOf::Project => (
                "cloudresourcemanager.projects.getIamPolicy",
                "cloudresourcemanager.projects.setIamPolicy",
            ),
            PolicyOf::Secret => (
                "secretmanager.projects.secrets.getIamPolicy",
                "secretmanager.projects.secrets.setIamPolicy",
            ),
            PolicyOf::ServiceAccount => (
                "iam.projects.serviceAccounts.getIamPolicy",
                "iam.projects.serviceAccounts.setIamPolicy",
            ),
        }
    }
}

/// Applies idplan's changes to the role's binding without a condition; returns whether the
/// policy changed. Bindings with a condition, other roles and other members stay as they are.
pub fn edit_policy(
    policy: &mut Value,
    role: &str,
    add: &BTreeSet<String>,
    remove: &BTreeSet<String>,
) -> bool {
    if !policy["bindings"].is_array() {
        policy["bindings"] = json!([]);
    }
    let bindings = policy["bindings"]
        .as_array_mut()
        .expect("bindings is an array");
    let index = bindings
        .iter()
        .position(|b| b["role"] == role && b.get("condition").is_none_or(Value::is_null));
    let mut changed = false;
    match index {
        Some(i) => {
            let list = &mut bindings[i]["members"];
            if !list.is_array() {
                *list = json!([]);
            }
            let list = list.as_array_mut().expect("members is an array");
            let before = list.len();
            list.retain(|m| !m.as_str().is_some_and(|m| remove.contains(m)));
            changed |= list.len() != before;
            for m in add {
                if !list.iter().any(|x| x == m.as_str()) {
                    list.push(json!(m));
                    changed = true;
                }
            }
            if list.is_empty() {
                bindings.remove(i);
            }
        }
        None if !add.is_empty() => {
            bindings.push(json!({ "role": role, "members": add }));
            changed = true;
        }
        None => {}
    }
    // A policy with a condition must be written as version 3; one without keeps its version.
    let conditional = bindings
        .iter()
        .any(|b| b.get("condition").is_some_and(|c| !c.is_null()));
    if conditional {
        policy["version"] = json!(3);
    }
    changed
}

/// The members of one role in the binding without a condition.
pub(super) fn role_members(policy: &Value, role: &str) -> BTreeSet<String> {
    policy["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["role"] == role && b.get("condition").is_none_or(Value::is_null))
        .flat_map(|b| b["members"].as_array().into_iter().flatten())
        .filter_map(|m| m.as_str().map(str::to_string))
        .collect()
}

/// `google_*_iam_members`: idplan's members of one role in the IAM policy of a bucket, a
/// project, a secret or a service account.
pub struct Members(pub PolicyOf);

impl KindDef for Members {
    fn kind(&self) -> crate::kind::Kind {
        crate::kind::Kind::Gcp(crate::kind::GcpKind::Members(self.0))
    }

    /// Several addresses may hold members of one role in one policy (backup and billing on
    /// one bucket): `for` tells their member sets apart.
    fn identity(&self, a: &Value) -> Result<Identity> {
        let m: MembersAttributes = attributes(self.facts().type_name, a)?;
        Ok(Identity::parts(
            [m.resource, m.role, m.holder],
            &[" ", " for "],
        ))
    }

    /// Members bound by hand beside a service account the spec adopts are taken over (the
    /// default adoption), never removed; only those idplan adds are its own. Otherwise
    /// members equal to idplan's are idplan's (a lost state); nobody else's member is ever in
    /// the projection the driver reads.
    fn added_after(&self, r: &Resource, a: &Value, added: Option<Value>) -> Result<Option<Value>> {
        added_members(r, a, added)
    }

    /// An update that only adds members (a control plane's principal or Kubernetes service
    /// account) to the same role on the same resource.
    fn additive(&self, change: Proposed<'_>) -> bool {
        let Proposed::Update { before, after } = change else {
            return false;
        };
        let (Ok(old), Ok(new)) = (
            attributes::<MembersAttributes>("members", before),
            attributes::<MembersAttributes>("members", after),
        ) else {
            return false;
        };
        (&old.resource, &old.role, &old.holder) == (&new.resource, &new.role, &new.holder)
            && old.members.is_subset(&new.members)
    }

    /// The members of both: the new control planes get theirs now, those that left keep
    /// theirs until a reviewed apply.
    fn additive_part(&self, before: &Value, after: &Value) -> Option<Value> {
        additive_join(self, before, crate::diff::join_lists(before, after)?)
    }
}

impl KindOps<GcpDriver> for Members {
    /// idplan's members in the policy: those it wants or recorded that the policy holds in
    /// the role's binding without a condition. Anyone else's members are not part of the
    /// answer.
    async fn read(&self, driver: &GcpDriver, r: &Resource, known: Option<&Value>) -> ReadResult {
        let a: MembersAttributes = attributes_of(r)?;
        let Some(policy) = driver.get_policy(r).await? else {
            return Ok(None);
        };
        let mut candidates = a.members.clone();
        if let Some(known) = known {
            candidates.extend(attributes::<MembersAttributes>(&r.node.address, known)?.members);
        }
        let held: BTreeSet<String> = role_members(&policy, &a.role)
            .intersection(&candidates)
            .cloned()
            .collect();
        if held.is_empty() {
            return Ok(None);
        }
        Ok(Some(to_attributes(&MembersAttributes {
            members: held,
            ..a
        })))
    }

    async fn create(&self, driver: &GcpDriver, r: &Resource) -> Result<Option<Value>> {
        let a: MembersAttributes = attributes_of(r)?;
        driver
            .change_members(r, &a, &a.members, &BTreeSet::new())
            .await?;
        Ok(None)
    }

    async fn update(&self, driver: &GcpDriver, r: &Resource, actual: &Value) -> Result<()> {
        let a: MembersAttributes = attributes_of(r)?;
        let have = attributes::<MembersAttributes>(&r.node.address, actual)?.members;
        let add = a.members.difference(&have).cloned().collect();
        let remove = have.difference(&a.members).cloned().collect();
        driver.change_members(r, &a, &add, &remove).await
    }

    async fn delete(&self, driver: &GcpDriver, r: &Resource) -> Result<()> {
        let a: MembersAttributes = attributes_of(r)?;
        driver
            .change_members(r, &a, &BTreeSet::new(), &a.members)
            .await
    }

    /// Takes back from members idplan adopted those it added.
    async fn release(&self, driver: &GcpDriver, r: &Resource, added: &Value) -> Result<()> {
        let a: MembersAttributes = attributes_of(r)?;
        let added: Added = attributes(&r.node.address, added)?;
        driver
            .change_members(r, &a, &BTreeSet::new(), &added.members)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn edits_touch_only_idplans_members_of_the_unconditional_binding() {
        let mut policy = json!({
            "version": 1,
            "etag": "BwX",
            "bindings": [
                { "role": "roles/a", "members": ["user:x", "principal://old"] },
                { "role": "roles/a", "members": ["user:y"],
                  "condition": { "title": "t", "expression": "true" } },
                { "role": "roles/b", "members": ["principal://old"] },
            ],
        });
        let changed = edit_policy(
            &mut policy,
            "roles/a",
            &set(&["principal://new"]),
            &set(&["principal://old"]),
        );
        assert!(changed);
        assert_eq!(
            policy["bindings"][0]["members"],
            json!(["user:x", "principal://new"])
        );
        assert_eq!(policy["bindings"][1]["members"], json!(["user:y"]));
        assert_eq!(policy["bindings"][2]["members"], json!(["principal://old"]));
        assert_eq!(policy["version"], 3);
        assert_eq!(policy["etag"], "BwX");
        // Nothing to do: no change.
        assert!(!edit_policy(
            &mut policy,
            "roles/a",
            &set(&["principal://new"]),
            &set(&[])
        ));
    }

    #[test]
    fn an_emptied_binding_goes_and_a_missing_one_is_added() {
        let mut policy = json!({ "etag": "e" });
        assert!(edit_policy(&mut policy, "roles/r", &set(&["m"]), &set(&[])));
        assert_eq!(
            policy["bindings"],
            json!([{ "role": "roles/r", "members": ["m"] }])
        );
        assert!(edit_policy(&mut policy, "roles/r", &set(&[]), &set(&["m"])));
        assert_eq!(policy["bindings"], json!([]));
        assert!(policy.get("version").is_none());
    }
}
