//! The Azure driver: ARM over HTTPS (the shared REST transport), one `api-version` per
//! resource type. Managed identities and their federated credentials, role assignments, key
//! vault access policies; AKS for the cluster issuer. Long-running operations are polled,
//! lists follow `nextLink`.

pub mod assignment;
pub mod context;
pub mod credential;
pub mod identity;
pub mod survey;
pub mod vault;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Call, Driver, KindCalls, attributes};
use crate::error::{Error, Result};
use crate::graph::{Graph, Kind, Resource};
pub use crate::kind::AzureKind;
use crate::spec::{AzureSpace, Space};
use crate::state::State;
use crate::transport::azure::{describe, tokens};
use crate::transport::{self as rest, ErrorBody, Request, Rest, Retries, answer};
use context::{self as recipe, AzureContext};

pub const DEFAULT_ENDPOINT: &str = "https://management.azure.com";
const SCOPE: &str = "https://management.azure.com/.default";
/// Polls of one long-running operation before giving up.
const POLLS: u32 = 120;

/// An ARM resource type: its provider path, the prefix of its operations' ids and the
/// `api-version` its calls send.
#[derive(Clone, Copy)]
pub(crate) struct ArmType {
    path: &'static str,
    operations: &'static str,
    version: &'static str,
}

impl ArmType {
    const fn new(path: &'static str, operations: &'static str, version: &'static str) -> Self {
        ArmType {
            path,
            operations,
            version,
        }
    }

    /// The operation `operation` (its id's suffix: `Get`), sent as `method`.
    const fn op(self, method: Method, operation: &'static str) -> Op {
        Op {
            of: self,
            method,
            operation,
            retry_code: None,
        }
    }
}

/// One ARM operation on a resource type.
pub(crate) struct Op {
    of: ArmType,
    method: Method,
    operation: &'static str,
    /// An ARM error code that is transient for this operation.
    retry_code: Option<&'static str>,
}

impl Op {
    /// The operation with `code` retried.
    const fn retrying(mut self, code: &'static str) -> Op {
        self.retry_code = Some(code);
        self
    }

    /// How errors name it: `GET Microsoft.ManagedIdentity/userAssignedIdentities`.
    fn api(&self) -> Cow<'static, str> {
        format!("{} {}", self.method, self.of.path).into()
    }

    /// What the stats count it under: `azure:UserAssignedIdentities_Get`.
    fn stat(&self) -> String {
        format!("azure:{}_{}", self.of.operations, self.operation)
    }
}

const CLUSTERS: ArmType = ArmType::new(
    "Microsoft.ContainerService/managedClusters",
    "ManagedClusters",
    "2026-08-01",
);
const STORAGE_ACCOUNTS: ArmType = ArmType::new(
    "Microsoft.Storage/storageAccounts",
    "StorageAccounts",
    "2025-01-01",
);
pub(super) const GET_CLUSTER: Op = CLUSTERS.op(Method::GET, "Get");
const GET_STORAGE: Op = STORAGE_ACCOUNTS.op(Method::GET, "GetProperties");

pub struct AzureDriver {
    rest: Rest,
    /// ARM base URL without a trailing `/`.
    base: String,
    /// One lock per managed identity: Azure refuses concurrent federated credential writes
    /// on one identity (409), while different identities are written in parallel.
    credential_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl AzureDriver {
    pub fn new() -> Result<AzureDriver> {
        let base = std::env::var("IDPLAN_AZURE_ARM_ENDPOINT")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let tokens = tokens(SCOPE);
        // Exponential backoff from 0.5 s (up to 32 s) with jitter, eight attempts: one call in
        // five failing (a bad day) leaves one call in 400,000 failing.
        let retries = Retries {
            attempts: 8,
            first: Duration::from_millis(500),
            cap: Duration::from_secs(32),
        };
        Ok(AzureDriver {
            rest: Rest::new(tokens, retries, describe)?,
            base: base.trim_end_matches('/').to_string(),
            credential_locks: Mutex::new(HashMap::new()),
        })
    }

    /// One ARM call with retries and long-running operations followed. `path` is a resource
    /// id (or a full URL, for `nextLink`). Returns the status and body (null when empty); a
    /// resource that is not there answers 404 with a null body.
    async fn call(
        &self,
        resource: &str,
        op: &Op,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            let sep = if path.contains('?') { '&' } else { '?' };
            format!("{}{path}{sep}api-version={}", self.base, op.of.version)
        };
        let stat = op.stat();
        let mut request = Request::new(op.method.clone(), &url, &stat).body(body);
        request.retry_code = op.retry_code;
        let response = match self.rest.send(&request).await {
            Ok(response) => response,
            Err(f) if f.is(404) => return Ok((StatusCode::NOT_FOUND, Value::Null)),
            Err(f) => return Err(f.into_error(resource, op.api())),
        };
        let status = response.status;
        if status == StatusCode::ACCEPTED || status == StatusCode::CREATED {
            let headers = &response.headers;
            let poll = headers
                .get("azure-asyncoperation")
                .or_else(|| headers.get("location"))
                .and_then(|h| h.to_str().ok());
            if let Some(poll) = poll {
                self.wait(resource, op, poll, rest::retry_after(headers))
                    .await?;
                return Ok((StatusCode::OK, response.body));
            }
        }
        Ok((status, response.body))
    }

    /// Polls a long-running operation until it succeeds; fails with its error otherwise.
    async fn wait(
        &self,
        resource: &str,
        op: &Op,
        url: &str,
        mut delay: Option<Duration>,
    ) -> Result<()> {
        for _ in 0..POLLS {
            let first_poll = Duration::from_secs(1);
            tokio::time::sleep(delay.unwrap_or(first_poll).min(rest::MAX_WAIT)).await;
            let response = match self
                .rest
                .send(&Request::new(Method::GET, url, &op.stat()))
                .await
            {
                Ok(response) => response,
                Err(f) if f.is(404) => return Ok(()),
                Err(f) => return Err(f.into_error(resource, op.api())),
            };
            let body = &response.body;
            match body["status"].as_str() {
                Some(s) if s.eq_ignore_ascii_case("Succeeded") => return Ok(()),
                Some(s)
                    if s.eq_ignore_ascii_case("Failed") || s.eq_ignore_ascii_case("Canceled") =>
                {
                    return Err(arm_error(resource, op.api(), response.status, body));
                }
                // A `Location` poll answers 202 until done, then the final status.
                None if response.status != StatusCode::ACCEPTED => return Ok(()),
                _ => delay = rest::retry_after(&response.headers),
            }
        }
        Err(Error::Cloud {
            resource: resource.to_string(),
            api: op.api(),
            message: format!("the long-running operation did not finish after {POLLS} polls"),
        })
    }

    async fn get(&self, resource: &str, op: &Op, id: &str) -> Result<Option<Value>> {
        let (status, body) = self.call(resource, op, id, None).await?;
        Ok((status != StatusCode::NOT_FOUND).then_some(body))
    }

    /// What [`AzureDriver::get`] answers, read as `T`.
    async fn get_as<T: DeserializeOwned>(
        &self,
        resource: &str,
        op: &Op,
        id: &str,
    ) -> Result<Option<T>> {
        match self.get(resource, op, id).await? {
            Some(body) => Ok(Some(answer(body, resource, op.api())?)),
            None => Ok(None),
        }
    }

    /// Every item of a list, following `nextLink` to the end.
    async fn list(&self, resource: &str, op: &Op, path: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut next = Some(path.to_string());
        while let Some(page) = next.take() {
            let (status, body) = self.call(resource, op, &page, None).await?;
            if status == StatusCode::NOT_FOUND {
                break;
            }
            if let Some(items) = body["value"].as_array() {
                out.extend(items.iter().cloned());
            }
            next = body["nextLink"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string);
        }
        Ok(out)
    }

    /// Deletes; a resource already gone is fine.
    async fn delete_id(&self, resource: &str, op: &Op, id: &str) -> Result<()> {
        self.call(resource, op, id, None).await?;
        Ok(())
    }

    /// The space's cluster issuer and its vaults' authorization mode; refuses a cluster
    /// without OIDC issuer or workload identity, and storage accounts or vaults that do not
    /// exist.
    pub async fn context(&self, space: &Space, azure: &AzureSpace) -> Result<AzureContext> {
        let what = format!("space {}", space.name);
        let cluster_id = recipe::cluster_id(azure);
        let cluster = self
            .get(&what, &GET_CLUSTER, &cluster_id)
            .await?
            .ok_or_else(|| {
                Error::user(format!(
                    "{what}: AKS cluster {} not found in resource group {} of subscription {}",
                    azure.cluster, azure.resource_group, azure.subscription
                ))
            })?;
        let props = &cluster["properties"];
        let oidc = &props["oidcIssuerProfile"];
        let issuer = oidc["issuerURL"]
            .as_str()
            .or_else(|| oidc["issuerUrl"].as_str())
            .filter(|s| !s.is_empty() && oidc["enabled"].as_bool() != Some(false));
        let workload = props["securityProfile"]["workloadIdentity"]["enabled"].as_bool();
        let issuer = match (issuer, workload) {
            (Some(issuer), Some(true)) => issuer.to_string(),
            (issuer, _) => {
                let missing = match (issuer.is_none(), workload != Some(true)) {
                    (true, true) => "the OIDC issuer and workload identity",
                    (true, false) => "the OIDC issuer",
                    _ => "workload identity",
                };
                return Err(Error::user(format!(
                    "{what}: AKS cluster {} does not have {missing} enabled; enable them with: \
                     az aks update --enable-oidc-issuer --enable-workload-identity -g {} -n {}",
                    azure.cluster, azure.resource_group, azure.cluster
                )));
            }
        };
        let mut rbac_vaults = std::collections::BTreeMap::new();
        for component in azure.components.iter() {
            if let Some(vault) = recipe::key_vault_id(azure, component) {
                let rbac = self.vault_uses_rbac(&what, &vault).await?;
                rbac_vaults.insert(vault.to_ascii_lowercase(), rbac);
            }
            if let Some(account) = recipe::storage_account_id(azure, component)
                && self.get(&what, &GET_STORAGE, &account).await?.is_none()
            {
                return Err(Error::user(format!(
                    "{what}: storage account {account} not found"
                )));
            }
        }
        Ok(AzureContext {
            issuer,
            rbac_vaults,
        })
    }
}

impl AzureKind {
    /// Where each kind is declared.
    pub fn def(self) -> &'static dyn KindCalls<AzureDriver> {
        match self {
            AzureKind::UserAssignedIdentity => &identity::Identity,
            AzureKind::FederatedIdentityCredential => &credential::Credential,
            AzureKind::RoleAssignment => &assignment::Assignment,
            AzureKind::KeyVaultAccessPolicy => &vault::AccessPolicy,
        }
    }
}

/// ARM's answer for a resource that an adopted identity's maker may have named otherwise (a
/// federated credential, a role assignment): see [`AzureDriver::read_named`].
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Named<P> {
    pub(super) name: Option<String>,
    pub(super) properties: P,
}

/// The attributes of such a resource.
trait NamedAttributes: DeserializeOwned {
    fn name(&self) -> &str;
    /// Its resource id under `name`.
    fn id_named(&self, name: &str) -> String;
}

impl AzureDriver {
    /// The resource `desired` describes, under the name the state `known`s (its maker's, when
    /// adopted), else the desired one; on an adopted identity, else the one `search` finds
    /// under any name. Answers the name it goes by and its properties.
    async fn read_named<A: NamedAttributes, P: DeserializeOwned + Default>(
        &self,
        r: &Resource,
        known: Option<&Value>,
        desired: &A,
        get: &Op,
        search: impl Future<Output = Result<Option<Named<P>>>>,
    ) -> Result<Option<(String, P)>> {
        let name = match known {
            Some(known) => attributes::<A>(&r.node.address, known)?.name().to_string(),
            None => desired.name().to_string(),
        };
        let id = desired.id_named(&name);
        let found = match self.get_as(&r.node.address, get, &id).await? {
            None if r.adopt => search.await?,
            found => found,
        };
        Ok(found.map(|found| (found.name.unwrap_or(name), found.properties)))
    }
}

/// Nothing idplan adopts of this kind has additions.
fn nothing_to_release(r: &Resource) -> Error {
    Error::internal(format!("{} has nothing to release", r.node.address))
}

impl Driver for AzureDriver {
    const CLOUD: &'static str = "Azure";

    fn kind_calls(kind: Kind) -> Option<&'static dyn KindCalls<AzureDriver>> {
        match kind {
            Kind::Azure(kind) => Some(kind.def()),
            Kind::Aws(_) | Kind::Gcp(_) => None,
        }
    }

    fn check_limits<'a>(&'a self, desired: &'a Graph, _state: &'a State) -> Call<'a, ()> {
        Box::pin(self.check_credential_counts(desired))
    }
}

/// An ARM failure reported in a body (a long-running operation's).
fn arm_error(resource: &str, api: Cow<'static, str>, status: StatusCode, body: &Value) -> Error {
    let error = &body["error"];
    let message = describe(
        status,
        &ErrorBody {
            code: error["code"].as_str(),
            message: error["message"].as_str(),
            text: "",
        },
    );
    Error::Cloud {
        resource: resource.to_string(),
        api,
        message,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn operations_are_named_by_their_type() {
        assert_eq!(GET_STORAGE.api(), "GET Microsoft.Storage/storageAccounts");
        assert_eq!(GET_STORAGE.stat(), "azure:StorageAccounts_GetProperties");
    }

    #[test]
    fn arm_errors_name_code_and_message() {
        let e = arm_error(
            "azurerm_user_assigned_identity.p.backup",
            "PUT Microsoft.ManagedIdentity/userAssignedIdentities".into(),
            StatusCode::CONFLICT,
            &json!({"error": {"code": "Busy", "message": "try later"}}),
        );
        assert_eq!(
            e.to_string(),
            "azurerm_user_assigned_identity.p.backup: PUT Microsoft.ManagedIdentity/\
             userAssignedIdentities failed: 409 Conflict: Busy: try later"
        );
        let e = rest::failure(
            describe,
            StatusCode::CONFLICT,
            br#"{"error": {"code": "Busy", "message": "try later"}}"#,
        );
        assert_eq!(e.message, "409 Conflict: Busy: try later");
    }
}
