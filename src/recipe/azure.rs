//! Azure: one user-assigned managed identity per component, one federated credential per
//! (component, control plane), and the identity's access to its storage account (role
//! assignment) or key vault (access policy, or role assignment on an RBAC vault).

mod init;

use futures::future::BoxFuture;

use super::{At, CloudRecipe, Ran, resource_name, subject};
use crate::error::Error;
use crate::graph::{self, Address, Kind, Location, Node, Resource};
use crate::helm::{self, HelmValue};
use crate::note::Note;
use crate::provider::Clouds;
use crate::provider::azure::AzureKind;
use crate::provider::azure::assignment::AssignmentAttributes;
/// The cloud's names, ids and limits, and its context, live beside its driver.
pub use crate::provider::azure::context::*;
use crate::provider::azure::credential::CredentialAttributes;
use crate::provider::azure::identity::IdentityAttributes;
use crate::provider::azure::vault::AccessPolicyAttributes;
use crate::provider::tags::component_tags;
use crate::provider::to_attributes;
use crate::spec::{
    AzureAccess, AzureSpace, Cloud, Component, ComponentKind, Space, Spec, SpecError, SpecErrors,
};
use crate::state::State;

/// The desired resources of one Azure space; fails when a limit is exceeded, naming the
/// spec location.
pub fn resources(
    spec_path: &std::path::Path,
    index: usize,
    space: &Space,
    azure: &AzureSpace,
    ctx: &AzureContext,
) -> Result<Vec<Resource>, SpecErrors> {
    let location = Location::Azure {
        subscription: azure.subscription.clone(),
    };
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for component in azure.components.iter() {
        let kind = component.kind;
        let name = resource_name(space, component);
        let id = identity_id(azure, &name);
        if let Err(message) = check_credentials(&name, kind, space.control_planes.len(), 0) {
            let cp = &space.control_planes[CREDENTIALS_PER_IDENTITY];
            errors.push(SpecError {
                path: spec_path.to_path_buf(),
                location: Some(cp.location),
                field: format!("spaces[{index}].controlPlanes[{CREDENTIALS_PER_IDENTITY}]"),
                message,
            });
            continue;
        }
        let identity = Address::component(
            Kind::Azure(AzureKind::UserAssignedIdentity),
            &space.name,
            kind,
        );
        out.push(Resource {
            node: Node {
                address: identity.clone(),
                location: location.clone(),
                depends_on: vec![],
            },
            attributes: to_attributes(&IdentityAttributes {
                id: id.clone(),
                name: name.clone(),
                location: azure.region.clone(),
                tags: component_tags(&space.name, kind.spec_key()),
                computed: Default::default(),
            }),
            adopt: component.adopt,
        });
        for cp in &space.control_planes {
            out.push(Resource {
                node: Node {
                    address: Address::item(
                        Kind::Azure(AzureKind::FederatedIdentityCredential),
                        &space.name,
                        kind,
                        &cp.namespace,
                    ),
                    location: location.clone(),
                    depends_on: vec![identity.clone()],
                },
                attributes: to_attributes(&CredentialAttributes {
                    identity: id.clone(),
                    name: credential_name(&cp.namespace),
                    issuer: ctx.issuer.clone(),
                    subject: subject(&cp.namespace, kind),
                    audiences: vec![AUDIENCE.to_string()],
                }),
                adopt: component.adopt,
            });
        }
        let principal = graph::reference(&identity, "principal_id");
        let (scope, role) = match kind {
            ComponentKind::Backup | ComponentKind::Billing => (
                storage_account_id(azure, component).expect("validated: storage account"),
                STORAGE_BLOB_DATA_CONTRIBUTOR,
            ),
            ComponentKind::SharedSecrets => {
                let vault = key_vault_id(azure, component).expect("validated: key vault");
                if !ctx.rbac(&vault) {
                    out.push(Resource {
                        node: Node {
                            address: Address::component(
                                Kind::Azure(AzureKind::KeyVaultAccessPolicy),
                                &space.name,
                                kind,
                            ),
                            location: location.clone(),
                            depends_on: vec![identity.clone()],
                        },
                        attributes: to_attributes(&AccessPolicyAttributes {
                            vault,
                            identity: id.clone(),
                            object_id: principal,
                            secret_permissions: SECRET_PERMISSIONS.map(str::to_string).to_vec(),
                        }),
                        adopt: component.adopt,
                    });
                    continue;
                }
                (vault, KEY_VAULT_SECRETS_USER)
            }
        };
        out.push(Resource {
            node: Node {
                address: Address::component(
                    Kind::Azure(AzureKind::RoleAssignment),
                    &space.name,
                    kind,
                ),
                location: location.clone(),
                depends_on: vec![identity.clone()],
            },
            attributes: to_attributes(&AssignmentAttributes {
                name: role_assignment_name(&scope, &id, role),
                scope,
                identity: id.clone(),
                role_definition_id: role.to_string(),
                principal_id: principal,
                principal_type: "ServicePrincipal".into(),
            }),
            adopt: component.adopt,
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(SpecErrors(errors))
    }
}

/// Azure, as the core asks of a cloud.
pub struct Azure;

impl CloudRecipe for Azure {
    type Space = AzureSpace;
    type Context = AzureContext;

    fn of(cloud: &Cloud) -> Option<&AzureSpace> {
        match cloud {
            Cloud::Azure(azure) => Some(azure),
            Cloud::Aws(_) | Cloud::Gcp(_) => None,
        }
    }

    fn location(azure: &AzureSpace) -> Location {
        Location::Azure {
            subscription: azure.subscription.clone(),
        }
    }

    fn placeholder(azure: &AzureSpace) -> AzureContext {
        AzureContext::placeholder(azure)
    }

    /// One read per space: its cluster's issuer, its vaults' authorization mode.
    fn contexts<'a>(
        clouds: &'a Clouds,
        spaces: &'a [(&'a Space, &'a AzureSpace)],
    ) -> BoxFuture<'a, crate::error::Result<Vec<AzureContext>>> {
        Box::pin(async move {
            let driver = clouds.azure()?;
            futures::future::try_join_all(
                spaces
                    .iter()
                    .map(|(space, azure)| driver.context(space, azure)),
            )
            .await
        })
    }

    fn resources(
        at: &At<'_>,
        space: &Space,
        azure: &AzureSpace,
        ctx: &AzureContext,
    ) -> crate::error::Result<Vec<Resource>> {
        Ok(resources(at.path, at.index, space, azure, ctx)?)
    }

    fn notes(_space: &Space, _azure: &AzureSpace, _ctx: Option<&AzureContext>) -> Vec<Note> {
        Vec::new()
    }

    /// Billing to a storage account's container; every component's client id annotation and
    /// the label that has the workload identity webhook inject the token.
    fn helm_values(
        space: &Space,
        azure: &AzureSpace,
        state: &State,
    ) -> crate::error::Result<Vec<HelmValue>> {
        let mut out = Vec::new();
        if let Some(Component {
            access:
                AzureAccess::Storage {
                    account,
                    container: Some(container),
                },
            ..
        }) = &azure.components.billing
        {
            // A resource id names the account in its last segment; the chart wants the name.
            let account = account.rsplit('/').next().unwrap_or(account);
            out.extend(helm::billing(
                "azure",
                &[
                    ("storageAccount", account.into()),
                    ("container", container.clone().into()),
                ],
            ));
        }
        for component in azure.components.iter() {
            let kind = component.kind;
            let address = Address::component(
                Kind::Azure(AzureKind::UserAssignedIdentity),
                &space.name,
                kind,
            );
            let client_id = state
                .get(&address)
                .and_then(|r| {
                    crate::provider::attributes::<IdentityAttributes>(&address, &r.attributes).ok()
                })
                .and_then(|identity| identity.computed.client_id)
                .ok_or_else(|| {
                    Error::user(format!(
                        "space {}: the state has no managed identity for {kind} ({address}); \
                         run `idplan apply` first",
                        space.name
                    ))
                })?;
            out.push(helm::annotation(kind, ANNOTATION, client_id.into()));
            out.push(helm::pod_label(kind, USE_LABEL, "true".into()));
        }
        Ok(out)
    }

    /// The 20 credentials per identity are checked by the recipe, space by space.
    fn spec_limits(_spec: &Spec, _ran: &[Ran<'_, AzureSpace>]) -> Vec<SpecError> {
        Vec::new()
    }

    fn limits(_file: &std::path::Path, _ran: &[Ran<'_, AzureSpace>]) -> crate::error::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_assignment_names_are_stable_uuids() {
        let a = role_assignment_name("/s/A", "/i", STORAGE_BLOB_DATA_CONTRIBUTOR);
        assert_eq!(
            a,
            role_assignment_name("/s/a", "/I", STORAGE_BLOB_DATA_CONTRIBUTOR)
        );
        assert_ne!(
            a,
            role_assignment_name("/s/a", "/i", KEY_VAULT_SECRETS_USER)
        );
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }

    #[test]
    fn credential_names_follow_azure_pattern() {
        for ns in ["a", "ab", "mxp-706c49fa-5bb8-4a7e-9f41-2fc38ef4b065-system"] {
            let n = credential_name(ns);
            assert!((3..=120).contains(&n.len()), "{n}");
            assert!(n.bytes().next().unwrap().is_ascii_alphanumeric());
            assert!(
                n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
        }
    }
}
