//! What Azure tells about a space (its cluster's issuer, its vaults: [`AzureContext`]), and the
//! names, ids and limits of Azure that the recipe and the driver share.

use std::collections::BTreeMap;

use crate::spec::{AzureAccess, AzureSpace, Component, ComponentKind};

/// The audience of AKS workload identity tokens.
pub const AUDIENCE: &str = "api://AzureADTokenExchange";
/// Azure allows this many federated identity credentials on one managed identity.
pub const CREDENTIALS_PER_IDENTITY: usize = 20;
pub const STORAGE_BLOB_DATA_CONTRIBUTOR: &str = "ba92f5b4-2d11-453d-a403-e96b0029c9fe";
pub const KEY_VAULT_SECRETS_USER: &str = "4633458b-17de-408a-b874-0445c86b69e6";
/// The secret permissions of idplan's access policy entry.
pub const SECRET_PERMISSIONS: [&str; 2] = ["get", "list"];

/// What the cloud tells about a space's cluster and key vaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureContext {
    /// The AKS cluster's OIDC issuer URL, trailing `/` kept.
    pub issuer: String,
    /// Key vault resource id (lower case) → whether it uses RBAC authorization.
    pub rbac_vaults: BTreeMap<String, bool>,
}

impl AzureContext {
    /// A stand-in so `validate` can build the resources without calling Azure: vaults use
    /// access policies.
    pub fn placeholder(azure: &AzureSpace) -> Self {
        AzureContext {
            issuer: format!(
                "https://{}.oic.prod-aks.azure.com/00000000-0000-0000-0000-000000000000/{}/",
                azure.region,
                "0".repeat(36)
            ),
            rbac_vaults: BTreeMap::new(),
        }
    }

    pub fn rbac(&self, vault_id: &str) -> bool {
        self.rbac_vaults
            .get(&vault_id.to_ascii_lowercase())
            .copied()
            .unwrap_or(false)
    }
}

pub fn resource_group_id(azure: &AzureSpace) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}",
        azure.subscription, azure.resource_group
    )
}

pub fn cluster_id(azure: &AzureSpace) -> String {
    format!(
        "{}/providers/Microsoft.ContainerService/managedClusters/{}",
        resource_group_id(azure),
        azure.cluster
    )
}

pub fn identity_id(azure: &AzureSpace, name: &str) -> String {
    format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
        resource_group_id(azure)
    )
}

/// A storage account or key vault: a bare name lives in the space's resource group, a full
/// resource id anywhere.
pub fn scope_id(azure: &AzureSpace, provider_type: &str, name_or_id: &str) -> String {
    if name_or_id.starts_with('/') {
        name_or_id.to_string()
    } else {
        format!(
            "{}/providers/{provider_type}/{name_or_id}",
            resource_group_id(azure)
        )
    }
}

pub fn storage_account_id(
    azure: &AzureSpace,
    component: &Component<AzureAccess>,
) -> Option<String> {
    let AzureAccess::Storage { account, .. } = &component.access else {
        return None;
    };
    Some(scope_id(
        azure,
        "Microsoft.Storage/storageAccounts",
        account,
    ))
}

pub fn key_vault_id(azure: &AzureSpace, component: &Component<AzureAccess>) -> Option<String> {
    let AzureAccess::KeyVault(vault) = &component.access else {
        return None;
    };
    Some(scope_id(azure, "Microsoft.KeyVault/vaults", vault))
}

/// The federated credential name of a host namespace: the namespace itself (a DNS label is
/// a valid credential name) when it has the 3 characters Azure wants, else prefixed.
pub fn credential_name(namespace: &str) -> String {
    if namespace.len() >= 3 {
        namespace.to_string()
    } else {
        format!("ns-{namespace}")
    }
}

/// The name of a role assignment: a UUID v5 of its scope, the identity and the role, so a
/// rerun (or a lost state) finds the same assignment. The identity's resource id stands for
/// its principal: it is known before the identity exists.
pub fn role_assignment_name(scope: &str, identity_id: &str, role: &str) -> String {
    let key = format!(
        "{}|{}|{}",
        scope.to_ascii_lowercase(),
        identity_id.to_ascii_lowercase(),
        role.to_ascii_lowercase()
    );
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, key.as_bytes()).to_string()
}

/// Refuses more credentials on one identity than Azure allows; `others` are credentials on
/// the identity that idplan does not manage.
pub fn check_credentials(
    identity: &str,
    component: ComponentKind,
    wanted: usize,
    others: usize,
) -> Result<(), String> {
    check_credentials_named(identity, component.spec_key(), wanted, others)
}

pub fn check_credentials_named(
    identity: &str,
    component: &str,
    wanted: usize,
    others: usize,
) -> Result<(), String> {
    let total = wanted + others;
    if total <= CREDENTIALS_PER_IDENTITY {
        return Ok(());
    }
    let theirs = if others > 0 {
        format!(" ({wanted} of idplan's, {others} of others)")
    } else {
        String::new()
    };
    Err(format!(
        "component {component}: managed identity {identity} would need {total} federated \
         identity credentials{theirs}, over Azure's limit of {CREDENTIALS_PER_IDENTITY} per \
         identity (AKS issuers allow no wildcard subjects); split the control planes over \
         more spaces"
    ))
}

/// The annotation that names a component's managed identity on its service accounts.
pub const ANNOTATION: &str = "azure.workload.identity/client-id";

/// The pod label that has the workload identity webhook inject the token.
pub const USE_LABEL: &str = "azure.workload.identity/use";
