//! What Google Cloud tells about a space (its project number and workload pool:
//! [`GcpContext`]), and the names and limits of Google Cloud that the recipe and the driver
//! share.

use crate::spec::ComponentKind;

pub const STORAGE_ROLE: &str = "roles/storage.objectAdmin";
pub const SECRET_ROLE: &str = "roles/secretmanager.secretAccessor";
pub const WORKLOAD_IDENTITY_USER: &str = "roles/iam.workloadIdentityUser";
/// Google allows this many principals in one IAM allow policy.
pub const PRINCIPALS_PER_POLICY: usize = 1500;
/// Marks the service accounts idplan made (they have no tags).
pub const MANAGED_MARK: &str = "managed by idplan";

/// What the cloud tells about a space's project and cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcpContext {
    pub project_number: String,
    /// `<project>.svc.id.goog`, from the cluster's `workloadIdentityConfig`.
    pub workload_pool: String,
    /// The project's other GKE clusters in the same workload pool (`location/name`): their
    /// pods are the same principals. `None` when the clusters could not be listed.
    pub pool_shared_with: Option<Vec<String>>,
}

impl GcpContext {
    /// Stand-ins of the real lengths, so `validate` needs no cloud call.
    pub fn placeholder(project: &str) -> Self {
        GcpContext {
            project_number: "123456789012".into(),
            workload_pool: format!("{project}.svc.id.goog"),
            pool_shared_with: Some(Vec::new()),
        }
    }

    /// The principal identifier of a Kubernetes service account in one namespace.
    pub fn principal(&self, namespace: &str, component: ComponentKind) -> String {
        format!(
            "principal://iam.googleapis.com/projects/{}/locations/global/workloadIdentityPools/{}/subject/ns/{namespace}/sa/{}",
            self.project_number,
            self.workload_pool,
            component.service_account()
        )
    }

    /// The member that may impersonate a Google service account, for one namespace.
    pub fn workload_member(&self, namespace: &str, component: ComponentKind) -> String {
        format!(
            "serviceAccount:{}[{namespace}/{}]",
            self.workload_pool,
            component.service_account()
        )
    }
}

/// Refuses a policy that would hold more than Google's principals; `ours` are idplan's,
/// `others` those already there that idplan does not manage.
pub fn check_principals(policy: &str, ours: usize, others: usize) -> Result<(), String> {
    let total = ours + others;
    if total <= PRINCIPALS_PER_POLICY {
        return Ok(());
    }
    Err(format!(
        "the IAM policy of {policy} would hold {total} principals ({ours} of idplan's, {others} \
         of others), over Google's limit of {PRINCIPALS_PER_POLICY} per policy; move control \
         planes to another space with its own bucket or secrets, or use `mode: service-account` \
         (one member per component in shared policies)"
    ))
}

/// The annotation that names a component's Google service account on its service accounts.
pub const ANNOTATION: &str = "iam.gke.io/gcp-service-account";
