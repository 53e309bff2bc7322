//! What a resource kind is, as data: the kinds of each cloud, where a resource lives, and the
//! facts that addresses, the state and the plan's summary need of a kind (its type name, its
//! noun, its owner). Everything above names kinds through this module, which names nothing of
//! idplan's.
//!
//! How a kind behaves (its identity, adoption, reads and writes) is declared beside its driver:
//! `provider::KindDef`, reached with `Kind::def` (in `provider/mod.rs`). [`Facts`] is a struct
//! literal in every kind: a fact added here is a compile error in each kind until it declares
//! it.

use serde::{Deserialize, Serialize};

/// What a resource is; decides the driver and the API calls used for it. Each cloud's kinds
/// are an enum of its own, so that a driver's matches name every kind of its cloud and
/// nothing else; what a kind does is its `provider::KindDef`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Aws(AwsKind),
    Azure(AzureKind),
    Gcp(GcpKind),
}

impl Kind {
    /// Every kind, cloud by cloud.
    pub fn all() -> impl Iterator<Item = Kind> {
        let aws = AwsKind::ALL.into_iter().map(Kind::Aws);
        let azure = AzureKind::ALL.into_iter().map(Kind::Azure);
        let gcp = GcpKind::ALL.into_iter().map(Kind::Gcp);
        aws.chain(azure).chain(gcp)
    }

    pub fn facts(self) -> Facts {
        match self {
            Kind::Aws(k) => k.facts(),
            Kind::Azure(k) => k.facts(),
            Kind::Gcp(k) => k.facts(),
        }
    }

    /// The first segment of an address, terraform style.
    pub fn type_name(self) -> &'static str {
        self.facts().type_name
    }

    /// A component's identity: what `adopt: true` takes over.
    pub fn is_identity(self) -> bool {
        self.facts().identity
    }

    /// A kind of which a cluster has one, shared by its spaces: addressed by region and
    /// cluster rather than by space and component.
    pub fn is_per_cluster(self) -> bool {
        self.facts().owner == Owner::Cluster
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.type_name())
    }
}

/// Plans and the state name a kind by its type name.
impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.type_name())
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Kind, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Kind::all().find(|k| k.type_name() == name).ok_or_else(|| {
            // serde's own words for an unknown variant.
            let names: Vec<String> = Kind::all().map(|k| format!("`{k}`")).collect();
            serde::de::Error::custom(format_args!(
                "unknown variant `{name}`, expected one of {}",
                names.join(", ")
            ))
        })
    }
}

/// Where a resource lives: enough to reach it even after its space left the spec.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "cloud", rename_all = "snake_case")]
pub enum Location {
    Aws { region: String },
    Azure { subscription: String },
    Gcp { project: String },
}

/// The AWS kinds. The driver matches only these, so each of its matches names every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AwsKind {
    IamOpenidConnectProvider,
    IamRole,
    IamRolePolicy,
    EksPodIdentityAssociation,
}

impl AwsKind {
    pub const ALL: [AwsKind; 4] = [
        AwsKind::IamOpenidConnectProvider,
        AwsKind::IamRole,
        AwsKind::IamRolePolicy,
        AwsKind::EksPodIdentityAssociation,
    ];

    /// What each kind is; the rest of its declaration is in its driver's file.
    pub fn facts(self) -> Facts {
        match self {
            AwsKind::IamOpenidConnectProvider => Facts {
                type_name: "aws_iam_openid_connect_provider",
                noun: "OIDC provider",
                owner: Owner::Cluster,
                identity: false,
                read_at_pod_start: true,
                shared_policy_members: false,
            },
            AwsKind::IamRole => Facts {
                type_name: "aws_iam_role",
                noun: "role",
                owner: Owner::Component,
                identity: true,
                read_at_pod_start: true,
                shared_policy_members: false,
            },
            AwsKind::IamRolePolicy => Facts {
                type_name: "aws_iam_role_policy",
                noun: "permissions (inline policy)",
                owner: Owner::Component,
                identity: false,
                read_at_pod_start: false,
                shared_policy_members: false,
            },
            AwsKind::EksPodIdentityAssociation => Facts {
                type_name: "aws_eks_pod_identity_association",
                noun: "pod identity associations",
                owner: Owner::ControlPlane,
                identity: false,
                read_at_pod_start: true,
                shared_policy_members: false,
            },
        }
    }
}

impl From<AwsKind> for Kind {
    fn from(kind: AwsKind) -> Kind {
        Kind::Aws(kind)
    }
}

/// The Azure kinds. The driver matches only these, so each of its matches names every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AzureKind {
    UserAssignedIdentity,
    FederatedIdentityCredential,
    RoleAssignment,
    KeyVaultAccessPolicy,
}

impl AzureKind {
    pub const ALL: [AzureKind; 4] = [
        AzureKind::UserAssignedIdentity,
        AzureKind::FederatedIdentityCredential,
        AzureKind::RoleAssignment,
        AzureKind::KeyVaultAccessPolicy,
    ];

    /// What each kind is; the rest of its declaration is in its driver's file.
    pub fn facts(self) -> Facts {
        match self {
            AzureKind::UserAssignedIdentity => Facts {
                type_name: "azurerm_user_assigned_identity",
                noun: "managed identity",
                owner: Owner::Component,
                identity: true,
                read_at_pod_start: true,
                shared_policy_members: false,
            },
            AzureKind::FederatedIdentityCredential => Facts {
                type_name: "azurerm_federated_identity_credential",
                noun: "federated identity credentials",
                owner: Owner::ControlPlane,
                identity: false,
                read_at_pod_start: true,
                shared_policy_members: false,
            },
            AzureKind::RoleAssignment => Facts {
                type_name: "azurerm_role_assignment",
                noun: "role assignment",
                owner: Owner::Component,
                identity: false,
                read_at_pod_start: false,
                shared_policy_members: false,
            },
            AzureKind::KeyVaultAccessPolicy => Facts {
                type_name: "azurerm_key_vault_access_policy",
                noun: "Key Vault access policy",
                owner: Owner::Component,
                identity: false,
                read_at_pod_start: false,
                shared_policy_members: false,
            },
        }
    }
}

impl From<AzureKind> for Kind {
    fn from(kind: AzureKind) -> Kind {
        Kind::Azure(kind)
    }
}

/// The GCP kinds. The driver matches only these, so each of its matches names every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GcpKind {
    ServiceAccount,
    /// idplan's members of one role in the IAM policy of what `PolicyOf` names.
    Members(PolicyOf),
}

/// Whose IAM policy a member set is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyOf {
    Bucket,
    Project,
    Secret,
    ServiceAccount,
}

impl GcpKind {
    pub const ALL: [GcpKind; 5] = [
        GcpKind::ServiceAccount,
        GcpKind::Members(PolicyOf::Bucket),
        GcpKind::Members(PolicyOf::Project),
        GcpKind::Members(PolicyOf::Secret),
        GcpKind::Members(PolicyOf::ServiceAccount),
    ];

    /// What each kind is; the rest of its declaration is in its driver's file.
    pub fn facts(self) -> Facts {
        match self {
            GcpKind::ServiceAccount => Facts {
                type_name: "google_service_account",
                noun: "service account",
                owner: Owner::Component,
                identity: true,
                read_at_pod_start: true,
                shared_policy_members: false,
            },
            GcpKind::Members(of) => Facts {
                type_name: match of {
                    PolicyOf::Bucket => "google_storage_bucket_iam_members",
                    PolicyOf::Project => "google_project_iam_members",
                    PolicyOf::Secret => "google_secret_manager_secret_iam_members",
                    PolicyOf::ServiceAccount => "google_service_account_iam_members",
                },
                noun: "IAM members",
                owner: Owner::Component,
                identity: false,
                read_at_pod_start: false,
                shared_policy_members: true,
            },
        }
    }
}

impl From<GcpKind> for Kind {
    fn from(kind: GcpKind) -> Kind {
        Kind::Gcp(kind)
    }
}

/// What the core needs to know of a kind besides its behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// The first segment of an address, terraform style; also how plans and the state name
    /// the kind.
    pub type_name: &'static str,
    /// How the summary of a plan names it ("role", "pod identity associations").
    pub noun: &'static str,
    /// Whose it is: it decides the address's shape.
    pub owner: Owner,
    /// A component's identity: what `adopt: true` takes over.
    pub identity: bool,
    /// Pods pick it up when they start (an identity, a credential, an association): a create
    /// or a replace records that the component's pods started before it need a restart.
    /// Permissions are looked up at each call and need none.
    pub read_at_pod_start: bool,
    /// idplan's members of one role in a policy others share: named by role and resource.
    pub shared_policy_members: bool,
}

/// Whose a resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// One per component of a space (a role, its policy, members of a shared policy).
    Component,
    /// One per control plane and component (an association, a federated credential): the
    /// summary counts them and never lists them.
    ControlPlane,
    /// One per cluster, shared by its spaces (an OIDC provider): addressed by region and
    /// cluster rather than by space and component.
    Cluster,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_declared_once_and_round_trips() {
        let names: Vec<&str> = Kind::all().map(|k| k.type_name()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for kind in Kind::all() {
            let text = serde_json::to_string(&kind).unwrap();
            assert_eq!(text, format!("\"{}\"", kind.type_name()));
            assert_eq!(serde_json::from_str::<Kind>(&text).unwrap(), kind);
        }
        assert!(serde_json::from_str::<Kind>("\"aws_iam_user\"").is_err());
    }
}
