//! The Azure driver: ARM over HTTPS (reqwest), one `api-version` per resource type.
//! Managed identities and their federated credentials, role assignments, key vault access
//! policies; AKS for the cluster issuer. 429 and 5xx are retried with backoff and jitter
//! (`Retry-After` honoured), long-running operations are polled, lists follow `nextLink`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::error::{Error, Result};
use crate::graph::{Kind, Resource};
use crate::recipe::azure::{self as recipe, AzureContext, MANAGED_BY, SECRET_PERMISSIONS};
use crate::spec::{AzureSpace, Space};

pub const DEFAULT_ENDPOINT: &str = "https://management.azure.com";
const SCOPE: &str = "https://management.azure.com/.default";
/// Attempts of one call on 429, 5xx or a transport error.
const ATTEMPTS: u32 = 6;
/// Longest wait honoured from `Retry-After`, and between polls of a long-running operation.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Polls of one long-running operation before giving up.
const POLLS: u32 = 120;

/// One ARM operation: how it is named in errors and stats, and its `api-version`.
struct Op {
    api: &'static str,
    stat: &'static str,
    version: &'static str,
}

const MSI: &str = "2026-05-31";
const AUTHZ: &str = "2022-04-01";
const KEYVAULT: &str = "2026-02-01";
const AKS: &str = "2026-08-01";
const STORAGE: &str = "2025-01-01";

const GET_IDENTITY: Op = Op {
    api: "GET Microsoft.ManagedIdentity/userAssignedIdentities",
    stat: "azure:UserAssignedIdentities_Get",
    version: MSI,
};
const PUT_IDENTITY: Op = Op {
    api: "PUT Microsoft.ManagedIdentity/userAssignedIdentities",
    stat: "azure:UserAssignedIdentities_CreateOrUpdate",
    version: MSI,
};
const DELETE_IDENTITY: Op = Op {
    api: "DELETE Microsoft.ManagedIdentity/userAssignedIdentities",
    stat: "azure:UserAssignedIdentities_Delete",
    version: MSI,
};
const GET_CREDENTIAL: Op = Op {
    api: "GET Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
    stat: "azure:FederatedIdentityCredentials_Get",
    version: MSI,
};
const LIST_CREDENTIALS: Op = Op {
    api: "GET Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
    stat: "azure:FederatedIdentityCredentials_List",
    version: MSI,
};
const PUT_CREDENTIAL: Op = Op {
    api: "PUT Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
    stat: "azure:FederatedIdentityCredentials_CreateOrUpdate",
    version: MSI,
};
const DELETE_CREDENTIAL: Op = Op {
    api: "DELETE Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
    stat: "azure:FederatedIdentityCredentials_Delete",
    version: MSI,
};
const GET_ASSIGNMENT: Op = Op {
    api: "GET Microsoft.Authorization/roleAssignments",
    stat: "azure:RoleAssignments_Get",
    version: AUTHZ,
};
const PUT_ASSIGNMENT: Op = Op {
    api: "PUT Microsoft.Authorization/roleAssignments",
    stat: "azure:RoleAssignments_Create",
    version: AUTHZ,
};
const DELETE_ASSIGNMENT: Op = Op {
    api: "DELETE Microsoft.Authorization/roleAssignments",
    stat: "azure:RoleAssignments_Delete",
    version: AUTHZ,
};
const GET_VAULT: Op = Op {
    api: "GET Microsoft.KeyVault/vaults",
    stat: "azure:Vaults_Get",
    version: KEYVAULT,
};
const UPDATE_ACCESS_POLICY: Op = Op {
    api: "PUT Microsoft.KeyVault/vaults/accessPolicies",
    stat: "azure:Vaults_UpdateAccessPolicy",
    version: KEYVAULT,
};
const GET_CLUSTER: Op = Op {
    api: "GET Microsoft.ContainerService/managedClusters",
    stat: "azure:ManagedClusters_Get",
    version: AKS,
};
const GET_STORAGE: Op = Op {
    api: "GET Microsoft.Storage/storageAccounts",
    stat: "azure:StorageAccounts_GetProperties",
    version: STORAGE,
};

/// Where bearer tokens come from; a token is never logged or stored.
enum Tokens {
    /// `IDPLAN_AZURE_ACCESS_TOKEN`.
    Fixed(String),
    /// azure_identity, chosen from the environment on first use.
    Credential(OnceCell<Arc<dyn TokenCredential>>),
}

pub struct AzureDriver {
    http: reqwest::Client,
    /// ARM base URL without a trailing `/`.
    base: String,
    tokens: Tokens,
    /// One lock per managed identity: Azure refuses concurrent federated credential writes
    /// on one identity (409), while different identities are written in parallel.
    credential_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl AzureDriver {
    pub fn new() -> AzureDriver {
        let base = std::env::var("IDPLAN_AZURE_ARM_ENDPOINT")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let tokens = match std::env::var("IDPLAN_AZURE_ACCESS_TOKEN") {
            Ok(token) if !token.is_empty() => Tokens::Fixed(token),
            _ => Tokens::Credential(OnceCell::new()),
        };
        AzureDriver {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("the HTTP client builds with rustls"),
            base: base.trim_end_matches('/').to_string(),
            tokens,
            credential_locks: Mutex::new(HashMap::new()),
        }
    }

    /// Nothing is cached between reads.
    pub fn refresh(&self) {}

    async fn token(&self, resource: &str, api: &'static str) -> Result<String> {
        let cell = match &self.tokens {
            Tokens::Fixed(t) => return Ok(t.clone()),
            Tokens::Credential(cell) => cell,
        };
        let fail = |message: String| Error::Cloud {
            resource: resource.to_string(),
            api,
            message: format!("no Azure credentials: {message}"),
        };
        let credential = cell
            .get_or_try_init(|| async { credential().map_err(|e| fail(e.to_string())) })
            .await?;
        let token = credential
            .get_token(&[SCOPE], None)
            .await
            .map_err(|e| fail(super::causes(&e)))?;
        Ok(token.token.secret().to_string())
    }

    /// One ARM call with retries and long-running operations followed. `path` is a resource
    /// id (or a full URL, for `nextLink`). Returns the status and body (null when empty).
    async fn call(
        &self,
        resource: &str,
        op: &Op,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            let sep = if path.contains('?') { '&' } else { '?' };
            format!("{}{path}{sep}api-version={}", self.base, op.version)
        };
        let (status, headers, value) = self.send(resource, op, method, &url, body).await?;
        if status == StatusCode::ACCEPTED || status == StatusCode::CREATED {
            let poll = headers
                .get("azure-asyncoperation")
                .or_else(|| headers.get("location"))
                .and_then(|h| h.to_str().ok())
                .map(str::to_string);
            if let Some(poll) = poll {
                self.wait(resource, op, &poll, retry_after(&headers))
                    .await?;
                return Ok((StatusCode::OK, value));
            }
        }
        Ok((status, value))
    }

    /// Sends one request, retrying throttling, server errors and transport errors. A status
    /// other than 2xx or 404 is an error naming the resource, the API and ARM's message.
    async fn send(
        &self,
        resource: &str,
        op: &Op,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, Value)> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            crate::stats::count(op.stat);
            let token = self.token(resource, op.api).await?;
            let mut request = self
                .http
                .request(method.clone(), url)
                .bearer_auth(token)
                .header("accept", "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            let last = attempt >= ATTEMPTS;
            let response = match request.send().await {
                Ok(r) => r,
                Err(_) if !last => {
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(e) => {
                    return Err(Error::Cloud {
                        resource: resource.to_string(),
                        api: op.api,
                        message: super::causes(&e),
                    });
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response.bytes().await.unwrap_or_default();
            let value: Value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap_or(Value::Null)
            };
            // A principal created a moment ago may not have reached every directory replica
            // yet, even with `principalType` set: Azure says so, and a retry succeeds.
            let replicating = op.stat == PUT_ASSIGNMENT.stat
                && value["error"]["code"].as_str() == Some("PrincipalNotFound");
            if (status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() || replicating)
                && !last
            {
                let wait = retry_after(&headers).unwrap_or_else(|| backoff(attempt));
                tokio::time::sleep(wait).await;
                continue;
            }
            if status.is_success() || status == StatusCode::NOT_FOUND {
                return Ok((status, headers, value));
            }
            return Err(arm_error(resource, op.api, status, &value));
        }
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
            tokio::time::sleep(delay.unwrap_or(Duration::from_secs(1)).min(MAX_WAIT)).await;
            let (status, headers, body) = self.send(resource, op, Method::GET, url, None).await?;
            match body["status"].as_str() {
                Some(s) if s.eq_ignore_ascii_case("Succeeded") => return Ok(()),
                Some(s)
                    if s.eq_ignore_ascii_case("Failed") || s.eq_ignore_ascii_case("Canceled") =>
                {
                    return Err(arm_error(resource, op.api, status, &body));
                }
                // A `Location` poll answers 202 until done, then the final status.
                None if status != StatusCode::ACCEPTED => return Ok(()),
                _ => delay = retry_after(&headers),
            }
        }
        Err(Error::Cloud {
            resource: resource.to_string(),
            api: op.api,
            message: format!("the long-running operation did not finish after {POLLS} polls"),
        })
    }

    async fn get(&self, resource: &str, op: &Op, id: &str) -> Result<Option<Value>> {
        let (status, body) = self.call(resource, op, Method::GET, id, None).await?;
        Ok((status != StatusCode::NOT_FOUND).then_some(body))
    }

    /// Every item of a list, following `nextLink` to the end.
    async fn list(&self, resource: &str, op: &Op, path: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut next = Some(path.to_string());
        while let Some(page) = next.take() {
            let (status, body) = self.call(resource, op, Method::GET, &page, None).await?;
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
        self.call(resource, op, Method::DELETE, id, None).await?;
        Ok(())
    }

    fn credential_lock(&self, identity: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.credential_locks
            .lock()
            .expect("credential lock map")
            .entry(identity.to_ascii_lowercase())
            .or_default()
            .clone()
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
                let body = self
                    .get(&what, &GET_VAULT, &vault)
                    .await?
                    .ok_or_else(|| Error::user(format!("{what}: key vault {vault} not found")))?;
                let rbac = body["properties"]["enableRbacAuthorization"]
                    .as_bool()
                    .unwrap_or(false);
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

    /// Federated credentials on an identity that idplan does not manage (not in `ours`).
    pub async fn foreign_credentials(
        &self,
        identity_id: &str,
        ours: &std::collections::HashSet<String>,
    ) -> Result<usize> {
        let path = format!("{identity_id}/federatedIdentityCredentials");
        let items = self.list(identity_id, &LIST_CREDENTIALS, &path).await?;
        Ok(items
            .iter()
            .filter_map(|c| c["name"].as_str())
            .filter(|n| !ours.contains(&n.to_ascii_lowercase()))
            .count())
    }

    pub async fn read(&self, r: &Resource, _known: Option<&Value>) -> Result<Option<Value>> {
        let a = &r.attributes;
        match r.kind {
            Kind::AzureUserAssignedIdentity => {
                let Some(body) = self.get(&r.address, &GET_IDENTITY, s(a, "id")).await? else {
                    return Ok(None);
                };
                let props = &body["properties"];
                Ok(Some(json!({
                    "id": a["id"],
                    "name": body["name"].as_str().unwrap_or(s(a, "name")),
                    "location": body["location"],
                    "tags": idplan_tags(&body["tags"]),
                    "principal_id": props["principalId"],
                    "client_id": props["clientId"],
                    "tenant_id": props["tenantId"],
                })))
            }
            Kind::AzureFederatedIdentityCredential => {
                let Some(body) = self
                    .get(&r.address, &GET_CREDENTIAL, &credential_id(a))
                    .await?
                else {
                    return Ok(None);
                };
                let props = &body["properties"];
                Ok(Some(json!({
                    "identity": a["identity"],
                    "name": a["name"],
                    "issuer": props["issuer"],
                    "subject": props["subject"],
                    "audiences": props["audiences"],
                })))
            }
            Kind::AzureRoleAssignment => {
                let Some(body) = self
                    .get(&r.address, &GET_ASSIGNMENT, &assignment_id(a))
                    .await?
                else {
                    return Ok(None);
                };
                let props = &body["properties"];
                Ok(Some(json!({
                    "scope": a["scope"],
                    "name": a["name"],
                    "identity": a["identity"],
                    "role_definition_id": role_guid(props["roleDefinitionId"].as_str().unwrap_or("")),
                    "principal_id": props["principalId"],
                    "principal_type": props["principalType"],
                })))
            }
            Kind::AzureKeyVaultAccessPolicy => {
                let Some(vault) = self.get(&r.address, &GET_VAULT, s(a, "vault")).await? else {
                    return Ok(None);
                };
                let object_id = s(a, "object_id");
                let entry = vault["properties"]["accessPolicies"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|p| {
                        p["objectId"]
                            .as_str()
                            .is_some_and(|o| o.eq_ignore_ascii_case(object_id))
                    });
                let Some(entry) = entry else {
                    return Ok(None);
                };
                // Only the secret permissions idplan grants are its own.
                let granted: Vec<&str> = SECRET_PERMISSIONS
                    .into_iter()
                    .filter(|p| {
                        entry["permissions"]["secrets"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|g| g.as_str().is_some_and(|g| g.eq_ignore_ascii_case(p)))
                    })
                    .collect();
                if granted.is_empty() {
                    return Ok(None);
                }
                Ok(Some(json!({
                    "vault": a["vault"],
                    "identity": a["identity"],
                    "object_id": a["object_id"],
                    "secret_permissions": granted,
                })))
            }
            _ => Err(Error::user(format!(
                "internal: {} is not an Azure resource",
                r.address
            ))),
        }
    }

    /// Creates `r`; returns what Azure assigned (an identity's principal and client ids).
    pub async fn create(&self, r: &Resource) -> Result<Value> {
        let a = &r.attributes;
        match r.kind {
            Kind::AzureUserAssignedIdentity => {
                let body = json!({ "location": a["location"], "tags": a["tags"] });
                let (_, created) = self
                    .call(
                        &r.address,
                        &PUT_IDENTITY,
                        Method::PUT,
                        s(a, "id"),
                        Some(&body),
                    )
                    .await?;
                let props = &created["properties"];
                Ok(json!({
                    "principal_id": props["principalId"],
                    "client_id": props["clientId"],
                    "tenant_id": props["tenantId"],
                }))
            }
            _ => {
                self.write(r, None).await?;
                Ok(json!({}))
            }
        }
    }

    pub async fn update(&self, r: &Resource, actual: &Value) -> Result<()> {
        self.write(r, Some(actual)).await
    }

    async fn write(&self, r: &Resource, actual: Option<&Value>) -> Result<()> {
        let a = &r.attributes;
        match r.kind {
            Kind::AzureUserAssignedIdentity => {
                // A PUT replaces all tags: keep the ones others set.
                let id = s(a, "id");
                let mut tags = match self.get(&r.address, &GET_IDENTITY, id).await? {
                    Some(body) => body["tags"].as_object().cloned().unwrap_or_default(),
                    None => serde_json::Map::new(),
                };
                tags.retain(|k, _| !is_idplan_tag(k));
                if let Some(ours) = a["tags"].as_object() {
                    tags.extend(ours.clone());
                }
                let body = json!({ "location": a["location"], "tags": tags });
                self.call(&r.address, &PUT_IDENTITY, Method::PUT, id, Some(&body))
                    .await?;
            }
            Kind::AzureFederatedIdentityCredential => {
                let body = json!({ "properties": {
                    "issuer": a["issuer"],
                    "subject": a["subject"],
                    "audiences": a["audiences"],
                }});
                let lock = self.credential_lock(s(a, "identity"));
                let _one_at_a_time = lock.lock().await;
                self.call(
                    &r.address,
                    &PUT_CREDENTIAL,
                    Method::PUT,
                    &credential_id(a),
                    Some(&body),
                )
                .await?;
            }
            Kind::AzureRoleAssignment => {
                // Role assignments cannot be changed in place: delete, then create.
                if actual.is_some() {
                    self.delete_id(&r.address, &DELETE_ASSIGNMENT, &assignment_id(a))
                        .await?;
                }
                let body = json!({ "properties": {
                    "roleDefinitionId": role_definition_id(a),
                    "principalId": a["principal_id"],
                    // A new identity may not have reached every directory replica yet.
                    "principalType": a["principal_type"],
                }});
                self.call(
                    &r.address,
                    &PUT_ASSIGNMENT,
                    Method::PUT,
                    &assignment_id(a),
                    Some(&body),
                )
                .await?;
            }
            Kind::AzureKeyVaultAccessPolicy => self.access_policy(r, "add").await?,
            _ => {
                return Err(Error::user(format!(
                    "internal: {} is not an Azure resource",
                    r.address
                )));
            }
        }
        Ok(())
    }

    /// Adds or removes idplan's entry (`get`, `list` on secrets) in a vault's access policy.
    async fn access_policy(&self, r: &Resource, operation: &str) -> Result<()> {
        let a = &r.attributes;
        let vault_id = s(a, "vault");
        let vault = self
            .get(&r.address, &GET_VAULT, vault_id)
            .await?
            .ok_or_else(|| Error::user(format!("{}: key vault {vault_id} not found", r.address)))?;
        let body = json!({ "properties": { "accessPolicies": [{
            "tenantId": vault["properties"]["tenantId"],
            "objectId": a["object_id"],
            "permissions": { "secrets": SECRET_PERMISSIONS },
        }]}});
        self.call(
            &r.address,
            &UPDATE_ACCESS_POLICY,
            Method::PUT,
            &format!("{vault_id}/accessPolicies/{operation}"),
            Some(&body),
        )
        .await?;
        Ok(())
    }

    /// Deletes a resource idplan created; for an access policy, only idplan's entry.
    pub async fn delete(&self, r: &Resource) -> Result<()> {
        let a = &r.attributes;
        match r.kind {
            Kind::AzureUserAssignedIdentity => {
                self.delete_id(&r.address, &DELETE_IDENTITY, s(a, "id"))
                    .await
            }
            Kind::AzureFederatedIdentityCredential => {
                let lock = self.credential_lock(s(a, "identity"));
                let _one_at_a_time = lock.lock().await;
                self.delete_id(&r.address, &DELETE_CREDENTIAL, &credential_id(a))
                    .await
            }
            Kind::AzureRoleAssignment => {
                self.delete_id(&r.address, &DELETE_ASSIGNMENT, &assignment_id(a))
                    .await
            }
            Kind::AzureKeyVaultAccessPolicy => self.access_policy(r, "remove").await,
            _ => Err(Error::user(format!(
                "internal: {} is not an Azure resource",
                r.address
            ))),
        }
    }
}

impl Default for AzureDriver {
    fn default() -> Self {
        Self::new()
    }
}

/// The azure_identity credential the environment calls for: a service principal's secret
/// (`AZURE_CLIENT_SECRET`), workload identity (`AZURE_FEDERATED_TOKEN_FILE`), a managed
/// identity (`IDENTITY_ENDPOINT`, or `IDPLAN_AZURE_MANAGED_IDENTITY=1` on a VM), else the
/// developer tools (az, azd).
fn credential() -> azure_core::Result<Arc<dyn TokenCredential>> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(tenant), Some(client), Some(secret)) = (
        var("AZURE_TENANT_ID"),
        var("AZURE_CLIENT_ID"),
        var("AZURE_CLIENT_SECRET"),
    ) {
        return Ok(azure_identity::ClientSecretCredential::new(
            &tenant,
            client,
            secret.into(),
            None,
        )?);
    }
    if var("AZURE_FEDERATED_TOKEN_FILE").is_some() {
        return Ok(azure_identity::WorkloadIdentityCredential::new(None)?);
    }
    if var("IDENTITY_ENDPOINT").is_some() || var("IDPLAN_AZURE_MANAGED_IDENTITY").is_some() {
        return Ok(azure_identity::ManagedIdentityCredential::new(None)?);
    }
    Ok(azure_identity::DeveloperToolsCredential::new(None)?)
}

/// An ARM failure: `<status>: <error.code>: <error.message>`.
fn arm_error(resource: &str, api: &'static str, status: StatusCode, body: &Value) -> Error {
    let error = &body["error"];
    let message = match (error["code"].as_str(), error["message"].as_str()) {
        (Some(code), Some(msg)) => format!("{status}: {code}: {msg}"),
        (Some(code), None) => format!("{status}: {code}"),
        _ => status.to_string(),
    };
    Error::Cloud {
        resource: resource.to_string(),
        api,
        message,
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_WAIT))
}

/// Exponential backoff from 0.5 s (up to 32 s) with jitter.
fn backoff(attempt: u32) -> Duration {
    super::backoff(attempt, Duration::from_millis(500), Duration::from_secs(32))
}

fn is_idplan_tag(key: &str) -> bool {
    key == MANAGED_BY.0 || key.starts_with("idplan/")
}

fn idplan_tags(tags: &Value) -> Value {
    let map: serde_json::Map<String, Value> = tags
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| is_idplan_tag(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(map)
}

fn s<'a>(attributes: &'a Value, key: &str) -> &'a str {
    attributes[key].as_str().unwrap_or_default()
}

fn credential_id(a: &Value) -> String {
    format!(
        "{}/federatedIdentityCredentials/{}",
        s(a, "identity"),
        s(a, "name")
    )
}

fn assignment_id(a: &Value) -> String {
    format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/{}",
        s(a, "scope"),
        s(a, "name")
    )
}

/// The subscription-scoped role definition id of a role GUID, in the scope's subscription.
fn role_definition_id(a: &Value) -> String {
    let scope = s(a, "scope");
    let subscription = scope.split('/').nth(2).unwrap_or_default();
    format!(
        "/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{}",
        s(a, "role_definition_id")
    )
}

/// The GUID of a role definition id, whatever its form (tenant or subscription scoped).
fn role_guid(id: &str) -> String {
    id.rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_guids_compare_whatever_the_scope() {
        let tenant = "/providers/Microsoft.Authorization/roleDefinitions/BA92F5B4-2D11-453D-A403-E96B0029C9FE";
        let sub = "/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/ba92f5b4-2d11-453d-a403-e96b0029c9fe";
        assert_eq!(role_guid(tenant), role_guid(sub));
    }

    #[test]
    fn arm_errors_name_code_and_message() {
        let e = arm_error(
            "azurerm_user_assigned_identity.p.backup",
            PUT_IDENTITY.api,
            StatusCode::CONFLICT,
            &json!({"error": {"code": "Busy", "message": "try later"}}),
        );
        assert_eq!(
            e.to_string(),
            "azurerm_user_assigned_identity.p.backup: PUT Microsoft.ManagedIdentity/\
             userAssignedIdentities failed: 409 Conflict: Busy: try later"
        );
    }
}
