//! The identity spec (`idplan.yaml`): the validated data model.
//!
//! `load` turns a file into a [`Spec`]; every error names file:line:column and the field.
//! The types here are the validated form: everything downstream (recipes, plan, helm values)
//! may rely on the invariants `load` checks.

mod load;
mod schema;

use std::fmt;
use std::path::PathBuf;

pub use load::{load, parse};
pub use schema::json_schema;

/// A 1-based position in the spec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone)]
pub struct Spec {
    /// The file the spec was read from, as given on the command line.
    pub path: PathBuf,
    pub version: u32,
    pub spaces: Vec<Space>,
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
    pub cloud: Cloud,
    pub components: Components,
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
    pub context: String,
    /// `None`: `KUBECONFIG`, else `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    pub location: Location,
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
}

pub const DEFAULT_TRUST_POLICY_QUOTA: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsMode {
    Irsa,
    PodIdentity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subjects {
    Exact,
    Wildcard,
}

#[derive(Debug, Clone, Default)]
pub struct Components {
    pub backup: Option<Component>,
    pub billing: Option<Component>,
    pub shared_secrets: Option<Component>,
}

impl Components {
    /// The components the space manages, always in the order backup, billing, sharedSecrets.
    pub fn iter(&self) -> impl Iterator<Item = &Component> {
        [&self.backup, &self.billing, &self.shared_secrets]
            .into_iter()
            .flatten()
    }
}

#[derive(Debug, Clone)]
pub struct Component {
    pub kind: ComponentKind,
    /// Explicit name of the created cloud resource (IAM role name on AWS, service account id on
    /// GCP); `None` means the default `spaces-<space>-<kebab>`.
    pub name: Option<String>,
    /// S3 or Cloud Storage bucket (backup, billing).
    pub bucket: Option<String>,
    /// sharedSecrets: secret ARNs on AWS (never empty); Secret Manager secret ids on GCP,
    /// where empty means access to every secret of the project; unused on Azure.
    pub secrets: Vec<String>,
    /// Storage account name or resource id (backup, billing on Azure).
    pub storage_account: Option<String>,
    /// Blob container (billing on Azure).
    pub container: Option<String>,
    /// Key vault name or resource id (sharedSecrets on Azure).
    pub key_vault: Option<String>,
    pub location: Location,
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

/// One problem in a spec file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub path: PathBuf,
    pub location: Option<Location>,
    /// The field in path form, e.g. `spaces[0].controlPlanes[2]`; empty for whole-file errors.
    pub field: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(loc) = self.location {
            write!(f, ":{}:{}", loc.line, loc.column)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All problems found in one spec file (at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}
