//! The federated identity credentials of a managed identity: one per (component, control
//! plane), trusting the AKS issuer for the component's service account in one namespace.

use std::collections::{BTreeMap, HashSet};

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::context::check_credentials_named;
use super::identity::{CREDENTIALS, IdentityAttributes};
use super::{AzureDriver, AzureKind, Named, NamedAttributes, Op, nothing_to_release};
use crate::error::{Error, Result};
use crate::graph::{Graph, Resource};
use crate::provider::tags::COMPONENT_TAG;
use crate::provider::{Identity, KindDef, KindOps, Proposed, ReadResult};
use crate::provider::{attributes, attributes_of, to_attributes};
use crate::transport::answer;

const GET_CREDENTIAL: Op = CREDENTIALS.op(Method::GET, "Get");
const LIST_CREDENTIALS: Op = CREDENTIALS.op(Method::GET, "List");
const PUT_CREDENTIAL: Op = CREDENTIALS.op(Method::PUT, "CreateOrUpdate");
const DELETE_CREDENTIAL: Op = CREDENTIALS.op(Method::DELETE, "Delete");

/// `azurerm_federated_identity_credential`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialAttributes {
    /// The managed identity's resource id.
    pub identity: String,
    pub name: String,
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
}

impl CredentialAttributes {
    fn id(&self) -> String {
        self.id_named(&self.name)
    }
}

impl NamedAttributes for CredentialAttributes {
    fn name(&self) -> &str {
        &self.name
    }

    fn id_named(&self, name: &str) -> String {
        format!("{}/federatedIdentityCredentials/{name}", self.identity)
    }
}

/// The credentials the spec wants on one identity: by name, and by issuer and subject.
#[derive(Default)]
struct Ours {
    names: HashSet<String>,
    trusts: HashSet<(String, String)>,
}

/// ARM's answer for a credential.
type ArmCredential = Named<ArmProperties>;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ArmProperties {
    issuer: String,
    subject: String,
    audiences: Vec<String>,
}

impl AzureDriver {
    /// One writer per identity at a time (see `credential_locks`).
    fn credential_lock(&self, identity: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        self.credential_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(identity.to_ascii_lowercase())
            .or_default()
            .clone()
    }

    /// The credential of `a`'s identity that trusts `a`'s issuer and subject, whatever its
    /// name: Azure holds at most one.
    async fn credential_trusting(
        &self,
        r: &Resource,
        a: &CredentialAttributes,
    ) -> Result<Option<ArmCredential>> {
        let path = format!("{}/federatedIdentityCredentials", a.identity);
        for item in self.list(&r.node.address, &LIST_CREDENTIALS, &path).await? {
            let item: ArmCredential = answer(item, &r.node.address, LIST_CREDENTIALS.api())?;
            if item.properties.issuer == a.issuer && item.properties.subject == a.subject {
                return Ok(Some(item));
            }
        }
        Ok(None)
    }

    async fn put_credential(&self, r: &Resource) -> Result<()> {
        let a: CredentialAttributes = attributes_of(r)?;
        let body = json!({ "properties": {
            "issuer": a.issuer,
            "subject": a.subject,
            "audiences": a.audiences,
        }});
        let lock = self.credential_lock(&a.identity);
        let _one_at_a_time = lock.lock().await;
        self.call(&r.node.address, &PUT_CREDENTIAL, &a.id(), Some(&body))
            .await
            // A 409 after the retries: a write of this credential (ours, its reply lost) may
            // still hold the identity; apply reads the credential back to tell.
            .map_err(|e| {
                let conflict =
                    matches!(&e, Error::Cloud { message, .. } if message.starts_with("409"));
                e.exists_if(conflict)
            })?;
        Ok(())
    }

    /// Federated credentials on an identity that idplan does not manage: neither one of
    /// `ours` by name nor, adopted under its maker's name, by issuer and subject.
    async fn foreign_credentials(&self, identity_id: &str, ours: &Ours) -> Result<usize> {
        let path = format!("{identity_id}/federatedIdentityCredentials");
        let items = self.list(identity_id, &LIST_CREDENTIALS, &path).await?;
        let mut count = 0;
        for item in items {
            let item: ArmCredential = answer(item, identity_id, LIST_CREDENTIALS.api())?;
            let named = item
                .name
                .is_some_and(|n| ours.names.contains(&n.to_ascii_lowercase()));
            let trusting = ours
                .trusts
                .contains(&(item.properties.issuer, item.properties.subject));
            if !named && !trusting {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Refuses more federated credentials on an existing identity than Azure allows,
    /// counting those others put there.
    pub(super) async fn check_credential_counts(&self, desired: &Graph) -> Result<()> {
        let mut identities: BTreeMap<String, Ours> = BTreeMap::new();
        for r in desired
            .iter()
            .filter(|r| r.node.kind() == AzureKind::FederatedIdentityCredential.into())
        {
            let c: CredentialAttributes = attributes_of(r)?;
            let ours = identities.entry(c.identity).or_default();
            ours.names.insert(c.name.to_ascii_lowercase());
            ours.trusts.insert((c.issuer, c.subject));
        }
        for r in desired
            .iter()
            .filter(|r| r.node.kind() == AzureKind::UserAssignedIdentity.into())
        {
            let identity: IdentityAttributes = attributes_of(r)?;
            let ours = identities.remove(&identity.id).unwrap_or_default();
            if self.get_identity(r, &identity.id).await?.is_none() {
                continue;
            }
            let others = self.foreign_credentials(&identity.id, &ours).await?;
            let component = identity.tags.get(COMPONENT_TAG).ok_or_else(|| {
                Error::internal(format!(
                    "{}: an identity without {COMPONENT_TAG} tag",
                    r.node.address
                ))
            })?;
            check_credentials_named(&identity.name, component, ours.names.len(), others)
                .map_err(Error::user)?;
        }
        Ok(())
    }
}

/// `azurerm_federated_identity_credential`: one per control plane and component.
pub struct Credential;

impl KindDef for Credential {
    fn kind(&self) -> crate::kind::Kind {
        crate::kind::Kind::Azure(crate::kind::AzureKind::FederatedIdentityCredential)
    }

    /// Azure refuses a second credential with the same issuer and subject on one identity:
    /// that pair is the credential, whatever its name.
    fn identity(&self, a: &Value) -> Result<Identity> {
        let c: CredentialAttributes = attributes(self.facts().type_name, a)?;
        Ok(Identity::parts([c.identity, c.issuer, c.subject], &["/", " "]).lowercase())
    }

    /// Made by hand beside an identity the spec adopts, it keeps the name its maker chose:
    /// taken over as it is (under that name) and never deleted.
    fn owner_keeps(&self) -> &'static [&'static str] {
        &["name"]
    }

    /// A new credential lets a control plane's service account use the identity the spec
    /// grants it; a changed one trusts another subject or issuer.
    fn additive(&self, change: Proposed<'_>) -> bool {
        matches!(change, Proposed::Create { .. })
    }
}

impl KindOps<AzureDriver> for Credential {
    /// Read by [`AzureDriver::read_named`]: under any name, the credential with the same
    /// issuer and subject.
    async fn read(&self, driver: &AzureDriver, r: &Resource, known: Option<&Value>) -> ReadResult {
        let a: CredentialAttributes = attributes_of(r)?;
        let trusting = driver.credential_trusting(r, &a);
        let found = driver
            .read_named(r, known, &a, &GET_CREDENTIAL, trusting)
            .await?;
        let Some((name, props)) = found else {
            return Ok(None);
        };
        Ok(Some(to_attributes(&CredentialAttributes {
            name,
            issuer: props.issuer,
            subject: props.subject,
            audiences: props.audiences,
            ..a
        })))
    }

    async fn create(&self, driver: &AzureDriver, r: &Resource) -> Result<Option<Value>> {
        driver.put_credential(r).await?;
        Ok(None)
    }

    async fn update(&self, driver: &AzureDriver, r: &Resource, _: &Value) -> Result<()> {
        driver.put_credential(r).await
    }

    async fn delete(&self, driver: &AzureDriver, r: &Resource) -> Result<()> {
        let a: CredentialAttributes = attributes_of(r)?;
        let lock = driver.credential_lock(&a.identity);
        let _one_at_a_time = lock.lock().await;
        driver
            .delete_id(&r.node.address, &DELETE_CREDENTIAL, &a.id())
            .await
    }

    async fn release(&self, _: &AzureDriver, r: &Resource, _: &Value) -> Result<()> {
        Err(nothing_to_release(r))
    }
}
