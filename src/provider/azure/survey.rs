//! What `idplan init` reads on Azure: the managed identity each component uses (its service
//! accounts' `azure.workload.identity/client-id`, among the resource group's identities), the
//! storage account its Storage Blob Data Contributor assignment reaches, and the key vault
//! whose access policy (or Key Vault Secrets User assignment) lets it read secrets.

use reqwest::Method;
use serde_json::Value;

use super::assignment::{ArmAssignment, role_guid};
use super::identity::IDENTITIES;
use super::vault::VAULTS;
use super::{AzureDriver, GET_CLUSTER, Op};
use crate::error::{Error, Result};
use crate::spec::survey::{Choices, Resolved, Seen, Survey};

use super::context::{KEY_VAULT_SECRETS_USER, SECRET_PERMISSIONS, STORAGE_BLOB_DATA_CONTRIBUTOR};
use crate::spec::ComponentKind;
use crate::spec::draft::{DraftComponent, Field};

const LIST_IDENTITIES: Op = IDENTITIES.op(Method::GET, "ListByResourceGroup");
const LIST_VAULTS: Op = VAULTS.op(Method::GET, "ListByResourceGroup");

/// The space's resource group, and what the command line says of it.
pub struct Group<'a> {
    pub subscription: &'a str,
    pub resource_group: &'a str,
    pub cluster: &'a str,
    /// billing's blob container: the Helm values name it, not the cloud.
    pub billing_container: Option<&'a str>,
}

impl Group<'_> {
    fn id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}",
            self.subscription, self.resource_group
        )
    }

    /// A resource's bare name when it is in this resource group (the spec's short form), else
    /// its id.
    fn short(&self, id: &str, name: &str) -> String {
        let local = format!("{}/providers/", self.id());
        if id
            .to_ascii_lowercase()
            .starts_with(&local.to_ascii_lowercase())
        {
            name.to_string()
        } else {
            id.to_string()
        }
    }
}

/// The id up to and including the resource named after `segment` (`.../storageAccounts/x`),
/// and that name; `None` when `scope` has no such segment.
fn resource_in(scope: &str, segment: &str) -> Option<(String, String)> {
    let at = scope
        .to_ascii_lowercase()
        .find(&segment.to_ascii_lowercase())?
        + segment.len();
    let name = scope[at..].split('/').next().filter(|n| !n.is_empty())?;
    Some((scope[..at + name.len()].to_string(), name.to_string()))
}

impl AzureDriver {
    /// The space's `azure:` block and components, adopting the identities in use.
    pub async fn survey(
        &self,
        group: &Group<'_>,
        seen: &Seen,
        choices: &Choices,
    ) -> Result<Survey> {
        let what = format!("resource group {}", group.resource_group);
        let cluster_id = format!(
            "{}/providers/Microsoft.ContainerService/managedClusters/{}",
            group.id(),
            group.cluster
        );
        if self.get(&what, &GET_CLUSTER, &cluster_id).await?.is_none() {
            return Err(Error::user(format!(
                "AKS cluster {} not found in resource group {} of subscription {}",
                group.cluster, group.resource_group, group.subscription
            )));
        }
        let identities_path = format!(
            "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
            group.id()
        );
        let identities = self.list(&what, &LIST_IDENTITIES, &identities_path).await?;
        let mut vaults: Option<Vec<Value>> = None;
        let mut locations = Vec::new();
        let mut components = Vec::new();
        for kind in ComponentKind::ALL {
            let left_out = |why: String| DraftComponent::LeftOut { kind, why };
            let empty = Default::default();
            let found = seen.annotations.get(&kind).unwrap_or(&empty);
            let (client_id, choice) = match choices.resolve(kind, "client id", found)? {
                Resolved::One { value, comment } => (value, comment),
                Resolved::None => {
                    components.push(left_out(format!(
                        "no {} service account carries azure.workload.identity/client-id",
                        kind.service_account()
                    )));
                    continue;
                }
            };
            let Some(identity) = identities.iter().find(|i| {
                i["properties"]["clientId"]
                    .as_str()
                    .is_some_and(|c| c.eq_ignore_ascii_case(&client_id))
            }) else {
                components.push(left_out(format!(
                    "client id {client_id} is no managed identity of {what}"
                )));
                continue;
            };
            let name = identity["name"].as_str().unwrap_or_default().to_string();
            let principal = identity["properties"]["principalId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let subscription = format!("/subscriptions/{}", group.subscription);
            let assignments = self
                .assignments_of(
                    &format!("managed identity {name}"),
                    &subscription,
                    &principal,
                )
                .await?;
            let access = match kind {
                ComponentKind::Backup | ComponentKind::Billing => {
                    storage(kind, &name, group, &assignments)
                }
                ComponentKind::SharedSecrets => {
                    if vaults.is_none() {
                        let path = format!("{}/providers/Microsoft.KeyVault/vaults", group.id());
                        vaults = Some(self.list(&what, &LIST_VAULTS, &path).await?);
                    }
                    key_vault(
                        &name,
                        group,
                        &principal,
                        &assignments,
                        vaults.as_deref().unwrap_or_default(),
                    )
                }
            };
            match access {
                Ok(access) => {
                    if let Some(l) = identity["location"].as_str() {
                        locations.push(l.to_string());
                    }
                    components.push(DraftComponent::Adopted {
                        kind,
                        name: Some(name),
                        access,
                        comments: choice.into_iter().collect(),
                    });
                }
                Err(why) => components.push(left_out(why)),
            }
        }
        let mut location = Field::text(
            "location",
            locations
                .first()
                .cloned()
                .unwrap_or_else(|| "eastus".into()),
        );
        locations.sort();
        locations.dedup();
        if locations.len() > 1 {
            location = location.with_comment(format!(
                "the identities are in {}: new ones go to the first",
                locations.join(", ")
            ));
        }
        Ok(Survey {
            cloud: "azure",
            fields: vec![
                Field::text("subscription", group.subscription),
                Field::text("resourceGroup", group.resource_group),
                location,
                Field::text("cluster", group.cluster),
            ],
            components,
        })
    }
}

/// backup's and billing's storage account, from the identity's Storage Blob Data Contributor
/// assignment (at the account or one of its containers).
fn storage(
    kind: ComponentKind,
    identity: &str,
    group: &Group,
    assignments: &[ArmAssignment],
) -> std::result::Result<Vec<Field>, String> {
    let scopes: Vec<&str> = assignments
        .iter()
        .filter(|a| role_guid(&a.properties.role_definition_id) == STORAGE_BLOB_DATA_CONTRIBUTOR)
        .map(|a| a.properties.scope.as_str())
        .collect();
    let Some((scope, (id, account))) = scopes.iter().find_map(|s| {
        resource_in(s, "/providers/Microsoft.Storage/storageAccounts/").map(|r| (*s, r))
    }) else {
        return Err(format!(
            "managed identity {identity} has no Storage Blob Data Contributor assignment on a \
             storage account"
        ));
    };
    let mut out = vec![Field::text("storageAccount", group.short(&id, &account))];
    if kind == ComponentKind::Billing {
        let container = resource_in(scope, "/blobServices/default/containers/")
            .map(|(_, c)| c)
            .or(group.billing_container.map(String::from))
            .ok_or_else(|| {
                "billing's blob container is named by the Helm values, not by Azure: pass \
                 --azure-billing-container"
                    .to_string()
            })?;
        out.push(Field::text("container", container));
    }
    Ok(out)
}

/// sharedSecrets' key vault: one whose access policy lets the principal get and list
/// secrets, or one where it holds Key Vault Secrets User.
fn key_vault(
    identity: &str,
    group: &Group,
    principal: &str,
    assignments: &[ArmAssignment],
    vaults: &[Value],
) -> std::result::Result<Vec<Field>, String> {
    let by_policy = vaults.iter().find(|v| {
        v["properties"]["accessPolicies"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| {
                let reads = |perm: &str| {
                    p["permissions"]["secrets"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|s| {
                            s.as_str().is_some_and(|s| {
                                s.eq_ignore_ascii_case(perm) || s.eq_ignore_ascii_case("all")
                            })
                        })
                };
                p["objectId"]
                    .as_str()
                    .is_some_and(|o| o.eq_ignore_ascii_case(principal))
                    && SECRET_PERMISSIONS.iter().all(|perm| reads(perm))
            })
    });
    let vault = match by_policy {
        Some(v) => Some((
            v["id"].as_str().unwrap_or_default().to_string(),
            v["name"].as_str().unwrap_or_default().to_string(),
        )),
        None => assignments
            .iter()
            .filter(|a| role_guid(&a.properties.role_definition_id) == KEY_VAULT_SECRETS_USER)
            .find_map(|a| {
                resource_in(&a.properties.scope, "/providers/Microsoft.KeyVault/vaults/")
            }),
    };
    let (id, name) = vault.ok_or_else(|| {
        format!(
            "managed identity {identity} reads secrets of no key vault (no access policy with \
             get and list on secrets, no Key Vault Secrets User assignment)"
        )
    })?;
    Ok(vec![Field::text("keyVault", group.short(&id, &name))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_found_in_scopes() {
        let scope = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acme/blobServices/default/containers/billing";
        let (id, name) =
            resource_in(scope, "/providers/Microsoft.Storage/storageAccounts/").unwrap();
        assert_eq!(name, "acme");
        assert!(id.ends_with("/storageAccounts/acme"));
        assert_eq!(
            resource_in(scope, "/blobServices/default/containers/")
                .unwrap()
                .1,
            "billing"
        );
        let group = Group {
            subscription: "s",
            resource_group: "RG",
            cluster: "c",
            billing_container: None,
        };
        assert_eq!(group.short(&id, &name), "acme");
        assert_eq!(
            group.short("/subscriptions/s/resourceGroups/other/providers/x/y", "y"),
            "/subscriptions/s/resourceGroups/other/providers/x/y"
        );
    }
}
