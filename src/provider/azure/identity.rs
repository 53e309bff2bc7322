//! A component's user-assigned managed identity. It belongs to one space: one that idplan
//! did not make for this space is refused, unless the spec says `adopt: true`.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ArmType, AzureDriver, Op};
use crate::error::Result;
use crate::graph::Resource;
use crate::provider::tags::{self, Noun, Tags};
use crate::provider::{Adoption, attributes, attributes_of, owners_keys, to_attributes};
use crate::provider::{KindDef, KindOps, ReadResult};
use crate::transport::answer;

/// The `api-version` of managed identities and their federated credentials.
const MSI: &str = "2026-05-31";

pub(super) const IDENTITIES: ArmType = ArmType::new(
    "Microsoft.ManagedIdentity/userAssignedIdentities",
    "UserAssignedIdentities",
    MSI,
);
pub(super) const CREDENTIALS: ArmType = ArmType::new(
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
    "FederatedIdentityCredentials",
    MSI,
);
const GET_IDENTITY: Op = IDENTITIES.op(Method::GET, "Get");
const PUT_IDENTITY: Op = IDENTITIES.op(Method::PUT, "CreateOrUpdate");
const DELETE_IDENTITY: Op = IDENTITIES.op(Method::DELETE, "Delete");

/// What Azure assigns at create.
pub const COMPUTED: &[&str] = &["principal_id", "client_id", "tenant_id"];

/// `azurerm_user_assigned_identity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityAttributes {
    /// The ARM resource id.
    pub id: String,
    pub name: String,
    /// The Azure region.
    pub location: String,
    pub tags: Tags,
    /// Assigned by Azure (see [`COMPUTED`]): absent from what the spec wants.
    #[serde(default, flatten)]
    pub computed: Computed,
}

/// An identity's ids, assigned by Azure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Computed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

/// ARM's answer for an identity.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ArmIdentity {
    name: Option<String>,
    location: String,
    tags: std::collections::BTreeMap<String, String>,
    properties: ArmProperties,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ArmProperties {
    principal_id: Option<String>,
    client_id: Option<String>,
    tenant_id: Option<String>,
}

impl From<ArmProperties> for Computed {
    fn from(p: ArmProperties) -> Self {
        Computed {
            principal_id: p.principal_id,
            client_id: p.client_id,
            tenant_id: p.tenant_id,
        }
    }
}

const IDENTITY: Noun = Noun {
    kind: "managed identity",
    short: "identity",
    article: "an",
};

impl AzureDriver {
    pub(super) async fn get_identity(&self, r: &Resource, id: &str) -> Result<Option<ArmIdentity>> {
        self.get_as(&r.node.address, &GET_IDENTITY, id).await
    }

    /// Puts the identity with idplan's tags as `a` has them and everyone else's as they are.
    async fn put_identity_tags(&self, r: &Resource, a: IdentityAttributes) -> Result<()> {
        let mut tags = match self.get_identity(r, &a.id).await? {
            Some(body) => body.tags,
            None => Tags::new(),
        };
        tags.retain(|k, _| !tags::is_idplan_tag(k));
        tags.extend(a.tags.clone());
        self.put_identity(r, &a, &tags).await?;
        Ok(())
    }

    /// Puts the identity `a` in its location with `tags` (a PUT replaces them all); returns
    /// ARM's answer.
    async fn put_identity(
        &self,
        r: &Resource,
        a: &IdentityAttributes,
        tags: &Tags,
    ) -> Result<Value> {
        let body = json!({ "location": a.location, "tags": tags });
        let (_, put) = self
            .call(&r.node.address, &PUT_IDENTITY, &a.id, Some(&body))
            .await?;
        Ok(put)
    }
}

/// `azurerm_user_assigned_identity`: a component's identity.
pub struct Identity;

impl KindDef for Identity {
    fn kind(&self) -> crate::kind::Kind {
        crate::kind::Kind::Azure(crate::kind::AzureKind::UserAssignedIdentity)
    }

    fn identity(&self, a: &Value) -> Result<crate::provider::Identity> {
        let id = attributes::<IdentityAttributes>(self.facts().type_name, a)?.id;
        Ok(crate::provider::Identity::name(id).lowercase())
    }

    fn computed_keys(&self) -> &'static [&'static str] {
        COMPUTED
    }

    fn adoption(&self, resource: &Resource, actual: &Value) -> Result<Adoption> {
        let desired: IdentityAttributes = attributes_of(resource)?;
        let tags = attributes::<IdentityAttributes>(&resource.node.address, actual)?.tags;
        let decision = tags::adopt_space_owned(
            &IDENTITY,
            &desired.name,
            resource.adopt,
            &desired.tags,
            &tags,
        );
        Ok(decision.into_adoption(owners_keys(resource, actual, self.owner_keeps())))
    }

    /// An adopted identity keeps its location: idplan manages only its tags.
    fn owner_keeps(&self) -> &'static [&'static str] {
        &["location"]
    }

    /// What the owner keeps, and of the tags idplan's own.
    fn shared_desired(&self, resource: &Resource, actual: &Value) -> Result<Value> {
        let desired: IdentityAttributes = attributes_of(resource)?;
        let mut shared = owners_keys(resource, actual, self.owner_keeps());
        shared["tags"] = to_attributes(&tags::adopted_tags(&desired.tags));
        Ok(shared)
    }
}

impl KindOps<AzureDriver> for Identity {
    async fn read(&self, driver: &AzureDriver, r: &Resource, _: Option<&Value>) -> ReadResult {
        let a: IdentityAttributes = attributes_of(r)?;
        let Some(body) = driver.get_identity(r, &a.id).await? else {
            return Ok(None);
        };
        Ok(Some(to_attributes(&IdentityAttributes {
            id: a.id,
            name: body.name.unwrap_or(a.name),
            location: body.location,
            tags: tags::idplan_tags(body.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            computed: body.properties.into(),
        })))
    }

    /// Returns the ids Azure assigned; each is null when Azure's answer lacks it.
    async fn create(&self, driver: &AzureDriver, r: &Resource) -> Result<Option<Value>> {
        let a: IdentityAttributes = attributes_of(r)?;
        let created = driver.put_identity(r, &a, &a.tags).await?;
        let created: ArmIdentity = answer(created, &r.node.address, PUT_IDENTITY.api())?;
        let p = created.properties;
        Ok(Some(json!({
            "principal_id": p.principal_id,
            "client_id": p.client_id,
            "tenant_id": p.tenant_id,
        })))
    }

    /// A PUT replaces all tags: the ones others set are kept.
    async fn update(&self, driver: &AzureDriver, r: &Resource, _: &Value) -> Result<()> {
        let a: IdentityAttributes = attributes_of(r)?;
        driver.put_identity_tags(r, a).await
    }

    async fn delete(&self, driver: &AzureDriver, r: &Resource) -> Result<()> {
        let a: IdentityAttributes = attributes_of(r)?;
        driver
            .delete_id(&r.node.address, &DELETE_IDENTITY, &a.id)
            .await
    }

    /// Takes back what idplan added to an identity it adopted: its tags, every one of them
    /// idplan's (see `tags::adopt_space_owned`).
    async fn release(&self, driver: &AzureDriver, r: &Resource, _: &Value) -> Result<()> {
        let a: IdentityAttributes = attributes_of(r)?;
        let a = IdentityAttributes {
            tags: Tags::new(),
            ..a
        };
        driver.put_identity_tags(r, a).await
    }
}
