//! The identity spec (`idplan.yaml`): the validated data model.
//!
//! `load` turns a file into a [`Spec`]; every error names file:line:column and the field.
//! The types here are the validated form: everything downstream (recipes, plan, helm values)
//! may rely on the invariants `load` checks. Each cloud's space carries its own component
//! types, so a recipe reads only what exists on its cloud.
//!
//! The loader, by phase:
//! 1. `load`: the file's bytes, UTF-8, strict YAML into the raw types of `schema`;
//! 2. `yaml`: a deserializer error as a located spec error naming the field;
//! 3. `check`: every rule of the raw spec at once (`check/<cloud>.rs` per cloud), into the
//!    types here;
//! 4. `names`: the name rules those checks use, and the one default resource name.

mod check;
pub mod draft;
#[cfg(test)]
mod fixtures;
mod load;
mod names;
mod schema;
mod state_location;
pub mod survey;
mod yaml;

use std::fmt;
use std::path::PathBuf;

/// Located spec errors are the error type's, so that `error` needs nothing of the spec.
pub use crate::error::{Location, SpecError, SpecErrors};
pub use load::{hash, load, parse};
pub use names::default_name;
pub use schema::json_schema;
pub use state_location::StateLocation;

#[derive(Debug, Clone)]
pub struct Spec {
    /// The file the spec was read from, as given on the command line.
    pub path: PathBuf,
    pub version: u32,
    pub spaces: Vec<Space>,
    /// Where the state is kept (`state:`), when the spec says.
    pub state: Option<StateLocation>,
    /// sha256 of the file's bytes, lower-case hex: a saved plan records it to detect a changed spec.
    pub hash: String,
}

#[derive(Debug, Clone)]
pub struct Space {
    pub name: String,
    pub location: Location,
    /// Host namespaces, in file order, no duplicates.
    pub control_planes: Vec<ControlPlane>,
    /// Where to discover more control planes (`controlPlanes.discover`); the commands that
    /// read the cluster add them to `control_planes`.
    pub discover: Option<Discover>,
    /// The space's cloud, with its components.
    pub cloud: Cloud,
}

impl Space {
    /// The kinds of the components the space manages, in the order backup, billing,
    /// sharedSecrets.
    pub fn component_kinds(&self) -> Vec<ComponentKind> {
        match &self.cloud {
            Cloud::Aws(aws) => aws.components.kinds(),
            Cloud::Azure(azure) => azure.components.kinds(),
            Cloud::Gcp(gcp) => gcp.components.kinds(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ControlPlane {
    pub namespace: String,
    /// In the file; for a discovered control plane, the `discover:` block.
    pub location: Location,
}

/// The Space's cluster, to discover control planes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discover {
    /// `None`: the cluster idplan runs in, through its pod's service account.
    pub context: Option<String>,
    /// `None`: `KUBECONFIG`, else `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// The spec file and where in it the block is, for messages.
    pub file: PathBuf,
    pub location: Location,
}

impl Discover {
    /// The cluster, for messages: "kubeconfig context `X`" or "the cluster idplan runs in".
    pub fn cluster(&self) -> String {
        match &self.context {
            Some(context) => format!("kubeconfig context `{context}`"),
            None => "the cluster idplan runs in".to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Cloud {
    Aws(AwsSpace),
    Azure(AzureSpace),
    Gcp(GcpSpace),
}

#[derive(Debug, Clone)]
pub struct AzureSpace {
    pub subscription: String,
    pub resource_group: String,
    /// The Azure region of the managed identities (the spec's `location`).
    pub region: String,
    /// The AKS cluster, in the subscription and resource group above.
    pub cluster: String,
    /// Where the `azure:` block starts, for limit errors.
    pub location: Location,
    pub components: Components<AzureAccess>,
}

/// A space on GKE: its project, its cluster and how components get Google credentials.
#[derive(Debug, Clone)]
pub struct GcpSpace {
    /// Project id (not number): where the service accounts live and project-level bindings go.
    pub project: String,
    pub cluster: GkeCluster,
    pub mode: GcpMode,
    /// Where the `gcp:` block starts, for limit errors.
    pub location: Location,
    pub components: Components<GcpAccess>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GkeCluster {
    /// Region or zone of the cluster (`us-central1`, `us-central1-a`).
    pub location: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcpMode {
    /// IAM bindings for Workload Identity Federation principal identifiers, one per control
    /// plane; no Google service account, no annotation.
    Principal,
    /// One Google service account per component, impersonated by each control plane's
    /// Kubernetes service account (`roles/iam.workloadIdentityUser`).
    ServiceAccount,
}

#[derive(Debug, Clone)]
pub struct AwsSpace {
    pub region: String,
    pub cluster: String,
    pub mode: AwsMode,
    pub subjects: Subjects,
    /// Maximum trust policy size in characters, whitespace not counted (`trustPolicyQuota`).
    pub trust_policy_quota: usize,
    /// Where the `aws:` block starts, for limit errors.
    pub location: Location,
    pub components: Components<AwsAccess>,
}

pub const DEFAULT_TRUST_POLICY_QUOTA: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AwsMode {
    Irsa,
    PodIdentity,
}

impl std::fmt::Display for AwsMode {
    /// As the spec spells it (`aws.mode`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AwsMode::Irsa => "irsa",
            AwsMode::PodIdentity => "pod-identity",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subjects {
    Exact,
    Wildcard,
}

/// The components a space manages, each with what it gets access to on the space's cloud
/// (`T`: [`AwsAccess`], [`AzureAccess`] or [`GcpAccess`]).
#[derive(Debug, Clone)]
pub struct Components<T> {
    pub backup: Option<Component<T>>,
    pub billing: Option<Component<T>>,
    pub shared_secrets: Option<Component<T>>,
}

impl<T> Default for Components<T> {
    fn default() -> Self {
        Components {
            backup: None,
            billing: None,
            shared_secrets: None,
        }
    }
}

impl<T> Components<T> {
    /// The components the space manages, always in the order backup, billing, sharedSecrets.
    pub fn iter(&self) -> impl Iterator<Item = &Component<T>> {
        [&self.backup, &self.billing, &self.shared_secrets]
            .into_iter()
            .flatten()
    }

    pub fn kinds(&self) -> Vec<ComponentKind> {
        self.iter().map(|c| c.kind).collect()
    }
}

#[derive(Debug, Clone)]
pub struct Component<T> {
    pub kind: ComponentKind,
    /// Explicit name of the created cloud resource (IAM role name on AWS, managed identity on
    /// Azure, service account id on GCP); `None` means [`default_name`].
    pub name: Option<String>,
    /// `adopt: true`: the identity called `name` exists and idplan takes it over, never
    /// deleting it.
    pub adopt: bool,
    pub location: Location,
    /// What the component gets access to; its variant always fits `kind`.
    pub access: T,
}

/// What an AWS component gets access to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsAccess {
    /// backup, billing: read/write on an S3 bucket.
    Bucket(String),
    /// sharedSecrets: read on Secrets Manager secrets, by ARN (wildcards allowed); never empty.
    Secrets(Vec<String>),
}

/// What an Azure component gets access to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AzureAccess {
    /// backup, billing: a storage account, by name (in the space's resource group) or
    /// resource id; billing also names its blob container (`None` on backup).
    Storage {
        account: String,
        container: Option<String>,
    },
    /// sharedSecrets: a key vault, by name (in the space's resource group) or resource id.
    KeyVault(String),
}

/// What a GCP component gets access to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcpAccess {
    /// backup, billing: a Cloud Storage bucket.
    Bucket(String),
    /// sharedSecrets: the listed Secret Manager secret ids; never empty.
    Secrets(Vec<String>),
    /// sharedSecrets without a list: every secret of the project.
    ProjectSecrets,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ComponentKind {
    Backup,
    Billing,
    SharedSecrets,
}

impl ComponentKind {
    pub const ALL: [ComponentKind; 3] = [Self::Backup, Self::Billing, Self::SharedSecrets];

    /// The key under `components:` in the spec.
    pub fn spec_key(self) -> &'static str {
        match self {
            Self::Backup => "backup",
            Self::Billing => "billing",
            Self::SharedSecrets => "sharedSecrets",
        }
    }

    /// Used in resource names and addresses.
    pub fn kebab(self) -> &'static str {
        match self {
            Self::Backup => "backup",
            Self::Billing => "billing",
            Self::SharedSecrets => "shared-secrets",
        }
    }

    /// The Kubernetes service account of the component in every host namespace.
    pub fn service_account(self) -> &'static str {
        match self {
            Self::Backup => "mxp-controller",
            Self::Billing => "vector",
            Self::SharedSecrets => "external-secrets-controller",
        }
    }

    /// The Spaces chart prefix of the component.
    pub fn helm_prefix(self) -> &'static str {
        match self {
            Self::Backup => "controlPlanes.mxpController",
            Self::Billing => "controlPlanes.vector",
            Self::SharedSecrets => "controlPlanes.sharedSecrets",
        }
    }

    /// The chart's key for service account annotations: `mxpController` differs from the others.
    pub fn annotations_key(self) -> &'static str {
        match self {
            Self::Backup => "serviceAccount.annotations",
            Self::Billing | Self::SharedSecrets => "serviceAccount.customAnnotations",
        }
    }
}

impl fmt::Display for ComponentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.spec_key())
    }
}
