//! A component's IAM role, with its trust policy, and the inline permissions policy idplan
//! puts on it.

use aws_sdk_iam::Client;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::context::POLICY_NAME;
use super::{AwsDriver, attrs, cloud_error, found, gone_is_ok, idplan_tags, retag, sent};
use crate::error::{Error, Result};
use crate::graph::Resource;
use crate::policy;
use crate::provider::tags::{self, Noun, Tags};
use crate::provider::{Adoption, attributes, owners_keys, to_attributes};
use crate::provider::{Identity, KindDef, KindOps, Proposed, ReadResult, additive_join};

/// `aws_iam_role`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleAttributes {
    pub name: String,
    pub arn: String,
    pub path: String,
    pub description: String,
    /// The trust policy, normalised (`policy::normalize`); null when IAM returns none.
    pub assume_role_policy: Value,
    pub tags: Tags,
}

/// `aws_iam_role_policy`: the inline permissions policy of a role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyAttributes {
    pub role: String,
    pub name: String,
    /// The policy document, normalised.
    pub policy: Value,
}

const ROLE: Noun = Noun {
    kind: "IAM role",
    short: "role",
    article: "a",
};

/// A policy document IAM returned, normalised; `api` names the call that returned it.
fn returned_policy(r: &Resource, api: &'static str, doc: &str) -> Result<Value> {
    let parsed = policy::parse_returned(doc).map_err(|message| Error::Cloud {
        resource: r.node.address.to_string(),
        api: api.into(),
        message,
    })?;
    Ok(policy::normalize(&parsed))
}

/// The policies of a role that are not idplan's: attached ones by ARN, inline ones by name.
pub(super) async fn unmanaged_policies(iam: &Client, r: &Resource) -> Result<Vec<String>> {
    let a: RoleAttributes = attrs(r)?;
    let attached = iam
        .list_attached_role_policies()
        .role_name(&a.name)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>();
    let inline = iam
        .list_role_policies()
        .role_name(&a.name)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>();
    let (attached, inline) = futures::join!(attached, inline);
    let mut out = Vec::new();
    for policy in attached {
        let policy =
            policy.map_err(|e| cloud_error(&r.node.address, "iam:ListAttachedRolePolicies", e))?;
        out.push(format!(
            "attached policy {}",
            policy.policy_arn().unwrap_or_default()
        ));
    }
    for name in inline {
        let name = name.map_err(|e| cloud_error(&r.node.address, "iam:ListRolePolicies", e))?;
        if name != POLICY_NAME {
            out.push(format!("inline policy {name}"));
        }
    }
    Ok(out)
}

/// Creates or replaces the inline policy: IAM's put is both.
async fn put_policy(iam: &Client, r: &Resource) -> Result<()> {
    let a: PolicyAttributes = attrs(r)?;
    let put = iam
        .put_role_policy()
        .role_name(a.role)
        .policy_name(a.name)
        .policy_document(a.policy.to_string());
    sent(r, "iam:PutRolePolicy", put.send()).await?;
    Ok(())
}

/// `aws_iam_role`: a component's identity.
pub struct Role;

impl KindDef for Role {
    fn kind(&self) -> crate::kind::Kind {
        crate::kind::Kind::Aws(crate::kind::AwsKind::IamRole)
    }

    /// IAM role names are unique in an account whatever their path.
    fn identity(&self, a: &Value) -> Result<Identity> {
        Ok(Identity::name(
            attributes::<RoleAttributes>(self.facts().type_name, a)?.name,
        ))
    }

    /// A role belongs to one space: idplan's own for this space is taken back (a lost
    /// state), someone else's is taken over with `adopt: true`.
    fn adoption(&self, resource: &Resource, actual: &Value) -> Result<Adoption> {
        let desired: RoleAttributes = attrs(resource)?;
        let held = attributes::<RoleAttributes>(&resource.node.address, actual)?;
        // Associations and Helm values name the role by the ARN of path `/`.
        if resource.adopt && held.path != desired.path {
            return Ok(Adoption::Conflict(format!(
                "IAM role {} has path {}: idplan manages roles of path {} only (their ARN is \
                 {}), so it cannot adopt this one",
                desired.name, held.path, desired.path, desired.arn
            )));
        }
        let decision = tags::adopt_space_owned(
            &ROLE,
            &desired.name,
            resource.adopt,
            &desired.tags,
            &held.tags,
        );
        Ok(decision.into_adoption(owners_keys(resource, actual, self.owner_keeps())))
    }

    /// An adopted role keeps its description: idplan manages its trust and its tags.
    fn owner_keeps(&self) -> &'static [&'static str] {
        &["description"]
    }

    /// What the owner keeps, and of the tags idplan's own.
    fn shared_desired(&self, resource: &Resource, actual: &Value) -> Result<Value> {
        let desired: RoleAttributes = attrs(resource)?;
        let mut shared = owners_keys(resource, actual, self.owner_keeps());
        shared["tags"] = to_attributes(&tags::adopted_tags(&desired.tags));
        Ok(shared)
    }

    /// An update whose trust policy only gains subjects (IRSA) or host namespaces (pod
    /// identity), everything else of the role as it was: more control planes may use it.
    fn additive(&self, change: Proposed<'_>) -> bool {
        let Proposed::Update { before, after } = change else {
            return false;
        };
        let (Ok(mut old), Ok(mut new)) = (
            attributes::<RoleAttributes>("role", before),
            attributes::<RoleAttributes>("role", after),
        ) else {
            return false;
        };
        let namespaces = format!("condition StringEquals {}", policy::TAG_NAMESPACE);
        let changes = policy::changes(Some(&old.assume_role_policy), Some(&new.assume_role_policy));
        let only_adds_control_planes = changes
            .iter()
            .all(|c| c.removed.is_empty() && (c.aspect == "subjects" || c.aspect == namespaces));
        old.assume_role_policy = Value::Null;
        new.assume_role_policy = Value::Null;
        only_adds_control_planes && old == new
    }

    /// The trust with the control planes of both: the new ones get the role now, those that
    /// left keep it until a reviewed apply.
    fn additive_part(&self, before: &Value, after: &Value) -> Option<Value> {
        let mut joined = crate::diff::join_lists(before, after)?;
        joined["assume_role_policy"] = policy::normalize(&joined["assume_role_policy"]);
        additive_join(self, before, joined)
    }
}

impl KindOps<AwsDriver> for Role {
    async fn read(&self, driver: &AwsDriver, r: &Resource, _: Option<&Value>) -> ReadResult {
        let a: RoleAttributes = attrs(r)?;
        let get = driver.iam(&r.node.location).get_role().role_name(&a.name);
        let got = found(r, "iam:GetRole", get.send()).await?;
        let Some(role) = got.and_then(|out| out.role) else {
            return Ok(None);
        };
        let trust = match role.assume_role_policy_document() {
            Some(doc) => returned_policy(r, "iam:GetRole", doc)?,
            None => Value::Null,
        };
        Ok(Some(to_attributes(&RoleAttributes {
            name: role.role_name().to_string(),
            arn: role.arn().to_string(),
            path: role.path().to_string(),
            description: role.description().unwrap_or_default().to_string(),
            assume_role_policy: trust,
            tags: idplan_tags(role.tags()),
        })))
    }

    async fn create(&self, driver: &AwsDriver, r: &Resource) -> Result<Option<Value>> {
        let a: RoleAttributes = attrs(r)?;
        let create = driver
            .iam(&r.node.location)
            .create_role()
            .role_name(a.name)
            .path(a.path)
            .description(a.description)
            .assume_role_policy_document(a.assume_role_policy.to_string())
            .set_tags(Some(super::sdk_tags(&a.tags)));
        sent(r, "iam:CreateRole", create.send()).await?;
        Ok(None)
    }

    /// Brings `actual` to the desired role, one API call per attribute that differs.
    async fn update(&self, driver: &AwsDriver, r: &Resource, actual: &Value) -> Result<()> {
        let iam = driver.iam(&r.node.location);
        let a: RoleAttributes = attrs(r)?;
        let actual: RoleAttributes = attributes(&r.node.address, actual)?;
        let name = &a.name;
        if a.assume_role_policy != actual.assume_role_policy {
            let trust = iam
                .update_assume_role_policy()
                .role_name(name)
                .policy_document(a.assume_role_policy.to_string());
            sent(r, "iam:UpdateAssumeRolePolicy", trust.send()).await?;
        }
        if a.description != actual.description {
            let update = iam
                .update_role()
                .role_name(name)
                .description(&a.description);
            sent(r, "iam:UpdateRole", update.send()).await?;
        }
        let (tag, untag) = (
            iam.tag_role().role_name(name),
            iam.untag_role().role_name(name),
        );
        retag(
            &a.tags,
            &actual.tags,
            |tags| sent(r, "iam:TagRole", tag.set_tags(Some(tags)).send()),
            |keys| sent(r, "iam:UntagRole", untag.set_tag_keys(Some(keys)).send()),
        )
        .await
    }

    async fn delete(&self, driver: &AwsDriver, r: &Resource) -> Result<()> {
        let a: RoleAttributes = attrs(r)?;
        let delete = driver.iam(&r.node.location).delete_role().role_name(a.name);
        gone_is_ok(r, "iam:DeleteRole", delete.send()).await
    }

    /// Takes back what idplan added to a role it adopted: its tags. The trust policy stays
    /// as idplan left it, so that running pods keep their credentials.
    async fn release(&self, driver: &AwsDriver, r: &Resource, added: &Value) -> Result<()> {
        let a: RoleAttributes = attrs(r)?;
        let added: tags::AddedTags = attributes(&r.node.address, added)?;
        if added.tags.is_empty() {
            return Ok(());
        }
        let untag = driver
            .iam(&r.node.location)
            .untag_role()
            .role_name(a.name)
            .set_tag_keys(Some(added.tags));
        gone_is_ok(r, "iam:UntagRole", untag.send()).await
    }
}

/// `aws_iam_role_policy`: idplan's inline policy on a role, its permissions.
pub struct RolePolicy;

impl KindDef for RolePolicy {
    fn kind(&self) -> crate::kind::Kind {
        crate::kind::Kind::Aws(crate::kind::AwsKind::IamRolePolicy)
    }

    fn identity(&self, a: &Value) -> Result<Identity> {
        let p: PolicyAttributes = attributes(self.facts().type_name, a)?;
        Ok(Identity::parts([p.role, p.name], &["/"]))
    }

    /// An inline policy belongs to its role: the role's adoption decides, and it is never
    /// adopted itself.
    fn adoption(&self, _resource: &Resource, _actual: &Value) -> Result<Adoption> {
        Ok(Adoption::Owned)
    }
}

/// A policy is never adopted with additions: its role's release takes back the tags.
impl KindOps<AwsDriver> for RolePolicy {
    async fn read(&self, driver: &AwsDriver, r: &Resource, _: Option<&Value>) -> ReadResult {
        let a: PolicyAttributes = attrs(r)?;
        let get = driver
            .iam(&r.node.location)
            .get_role_policy()
            .role_name(&a.role)
            .policy_name(&a.name);
        let Some(out) = found(r, "iam:GetRolePolicy", get.send()).await? else {
            return Ok(None);
        };
        Ok(Some(to_attributes(&PolicyAttributes {
            role: out.role_name().to_string(),
            name: out.policy_name().to_string(),
            policy: returned_policy(r, "iam:GetRolePolicy", out.policy_document())?,
        })))
    }

    async fn create(&self, driver: &AwsDriver, r: &Resource) -> Result<Option<Value>> {
        put_policy(&driver.iam(&r.node.location), r).await?;
        Ok(None)
    }

    async fn update(&self, driver: &AwsDriver, r: &Resource, _: &Value) -> Result<()> {
        put_policy(&driver.iam(&r.node.location), r).await
    }

    async fn delete(&self, driver: &AwsDriver, r: &Resource) -> Result<()> {
        let a: PolicyAttributes = attrs(r)?;
        let delete = driver
            .iam(&r.node.location)
            .delete_role_policy()
            .role_name(a.role)
            .policy_name(a.name);
        gone_is_ok(r, "iam:DeleteRolePolicy", delete.send()).await
    }
}
