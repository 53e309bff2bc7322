//! idplan's entry in a key vault's access policy (a vault without RBAC authorization): `get`
//! and `list` on secrets for a component's identity. The rest of the policy is the vault
//! owner's and is never touched.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::context::SECRET_PERMISSIONS;
use super::{ArmType, AzureDriver, Op};
use crate::error::{Error, Result};
use crate::graph::Resource;
use crate::provider::{Adoption, attributes, attributes_of, to_attributes};
use crate::provider::{Identity, KindDef, KindOps, ReadResult};

const KEYVAULT: &str = "2026-02-01";

pub(super) const VAULTS: ArmType = ArmType::new("Microsoft.KeyVault/vaults", "Vaults", KEYVAULT);
/// A vault's access policy, written by an operation of the vault's.
const ACCESS_POLICIES: ArmType = ArmType::new(
    "Microsoft.KeyVault/vaults/accessPolicies",
    "Vaults",
    KEYVAULT,
);
const GET_VAULT: Op = VAULTS.op(Method::GET, "Get");
const UPDATE_ACCESS_POLICY: Op = ACCESS_POLICIES.op(Method::PUT, "UpdateAccessPolicy");

/// `azurerm_key_vault_access_policy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessPolicyAttributes {
    /// The vault's resource id.
    pub vault: String,
    /// The identity's resource id.
    pub identity: String,
    /// The identity's principal (object) id: a string, or a `graph::reference` to it until
    /// the identity exists.
    pub object_id: Value,
    pub secret_permissions: Vec<String>,
}

/// What idplan added to an entry it adopted.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Added {
    #[serde(default)]
    secret_permissions: Vec<String>,
}

/// ARM's answer for a vault.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ArmVault {
    properties: ArmProperties,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ArmProperties {
    tenant_id: Value,
    access_policies: Vec<ArmEntry>,
    enable_rbac_authorization: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ArmEntry {
    object_id: String,
    permissions: ArmPermissions,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ArmPermissions {
    secrets: Vec<String>,
}

impl AzureDriver {
    async fn get_vault(&self, what: &str, id: &str) -> Result<Option<ArmVault>> {
        self.get_as(what, &GET_VAULT, id).await
    }

    /// Whether a vault uses RBAC authorization (else access policies); refuses one that does
    /// not exist.
    pub(super) async fn vault_uses_rbac(&self, what: &str, id: &str) -> Result<bool> {
        let vault = self
            .get_vault(what, id)
            .await?
            .ok_or_else(|| Error::user(format!("{what}: key vault {id} not found")))?;
        Ok(vault.properties.enable_rbac_authorization)
    }

    /// Adds or removes idplan's entry (`get`, `list` on secrets) in a vault's access policy.
    async fn access_policy(&self, r: &Resource, operation: &str) -> Result<()> {
        let a: AccessPolicyAttributes = attributes_of(r)?;
        let vault = self
            .get_vault(&r.node.address, &a.vault)
            .await?
            .ok_or_else(|| {
                Error::user(format!(
                    "{}: key vault {} not found",
                    r.node.address, a.vault
                ))
            })?;
        let body = json!({ "properties": { "accessPolicies": [{
            "tenantId": vault.properties.tenant_id,
            "objectId": a.object_id,
            "permissions": { "secrets": a.secret_permissions },
        }]}});
        self.call(
            &r.node.address,
            &UPDATE_ACCESS_POLICY,
            &format!("{}/accessPolicies/{operation}", a.vault),
            Some(&body),
        )
        .await?;
        Ok(())
    }
}

/// `azurerm_key_vault_access_policy`: idplan's entry in a vault's access policies.
pub struct AccessPolicy;

impl KindDef for AccessPolicy {
    fn kind(&self) -> crate::kind::Kind {
        crate::kind::Kind::Azure(crate::kind::AzureKind::KeyVaultAccessPolicy)
    }

    /// One access policy entry per (vault, identity): the identity's object id is only known
    /// once it exists, its resource id always.
    fn identity(&self, a: &Value) -> Result<Identity> {
        let p: AccessPolicyAttributes = attributes(self.facts().type_name, a)?;
        Ok(Identity::parts([p.vault, p.identity], &["/"]).lowercase())
    }

    /// An entry made by hand beside an adopted identity (`az keyvault set-policy`) is taken
    /// over: the permissions of idplan's it lacked are added, and only those are taken back.
    /// Otherwise it belongs to its identity, whose adoption decides.
    fn adoption(&self, resource: &Resource, actual: &Value) -> Result<Adoption> {
        if !resource.adopt {
            return Ok(Adoption::Owned);
        }
        let desired: AccessPolicyAttributes = attributes_of(resource)?;
        let held = attributes::<AccessPolicyAttributes>(&resource.node.address, actual)?
            .secret_permissions;
        let missing: Vec<String> = desired
            .secret_permissions
            .iter()
            .filter(|p| !held.contains(p))
            .cloned()
            .collect();
        Ok(Adoption::Shared {
            desired: resource.attributes.clone(),
            added: (!missing.is_empty()).then(|| {
                to_attributes(&Added {
                    secret_permissions: missing,
                })
            }),
        })
    }
}

impl KindOps<AzureDriver> for AccessPolicy {
    async fn read(&self, driver: &AzureDriver, r: &Resource, _: Option<&Value>) -> ReadResult {
        let a: AccessPolicyAttributes = attributes_of(r)?;
        let Some(vault) = driver.get_vault(&r.node.address, &a.vault).await? else {
            return Ok(None);
        };
        let object_id = a.object_id.as_str();
        let entry = vault
            .properties
            .access_policies
            .into_iter()
            .find(|p| object_id.is_some_and(|o| p.object_id.eq_ignore_ascii_case(o)));
        let Some(entry) = entry else {
            return Ok(None);
        };
        // Only the secret permissions idplan grants are its own.
        let granted: Vec<String> = SECRET_PERMISSIONS
            .into_iter()
            .filter(|p| {
                entry
                    .permissions
                    .secrets
                    .iter()
                    .any(|g| g.eq_ignore_ascii_case(p))
            })
            .map(str::to_string)
            .collect();
        if granted.is_empty() {
            return Ok(None);
        }
        Ok(Some(to_attributes(&AccessPolicyAttributes {
            secret_permissions: granted,
            ..a
        })))
    }

    async fn create(&self, driver: &AzureDriver, r: &Resource) -> Result<Option<Value>> {
        driver.access_policy(r, "add").await?;
        Ok(None)
    }

    async fn update(&self, driver: &AzureDriver, r: &Resource, _: &Value) -> Result<()> {
        driver.access_policy(r, "add").await
    }

    async fn delete(&self, driver: &AzureDriver, r: &Resource) -> Result<()> {
        driver.access_policy(r, "remove").await
    }

    /// Takes back from an entry idplan adopted the permissions it added.
    async fn release(&self, driver: &AzureDriver, r: &Resource, added: &Value) -> Result<()> {
        let a: AccessPolicyAttributes = attributes_of(r)?;
        let added: Added = attributes(&r.node.address, added)?;
        if added.secret_permissions.is_empty() {
            return Ok(());
        }
        let a = AccessPolicyAttributes {
            secret_permissions: added.secret_permissions,
            ..a
        };
        driver
            .access_policy(
                &Resource {
                    attributes: to_attributes(&a),
                    ..r.clone()
                },
                "remove",
            )
            .await
    }
}
