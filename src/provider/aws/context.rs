//! What AWS tells about a space (its account and cluster: [`AwsContext`]), and the names and
//! limits of AWS that the recipe and the driver share.

/// Name of the inline permissions policy idplan puts on each role.
pub const POLICY_NAME: &str = "idplan";
/// The audience of IRSA tokens, and the client id of the cluster's OIDC provider.
pub const STS_AUDIENCE: &str = "sts.amazonaws.com";

/// What the cloud tells about a space's account and cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsContext {
    pub account_id: String,
    pub partition: String,
    /// The cluster's OIDC issuer without `https://`, as IAM spells provider URLs.
    pub issuer: String,
    /// The cluster's ARN: the `eks-cluster-arn` session tag of pod identity sessions.
    pub cluster_arn: String,
}

impl AwsContext {
    /// Stand-ins of the real lengths, so `validate` can check sizes without calling AWS:
    /// account ids have 12 digits, EKS issuers 32 hex characters after `/id/`.
    pub fn placeholder(region: &str, cluster: &str) -> Self {
        let account_id = "123456789012".to_string();
        let partition = partition(region).to_string();
        AwsContext {
            cluster_arn: cluster_arn(&partition, region, &account_id, cluster),
            account_id,
            partition,
            issuer: format!("oidc.eks.{region}.amazonaws.com/id/{}", "0".repeat(32)),
        }
    }

    pub fn provider_arn(&self) -> String {
        format!(
            "arn:{}:iam::{}:oidc-provider/{}",
            self.partition, self.account_id, self.issuer
        )
    }

    pub fn role_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:iam::{}:role/{name}",
            self.partition, self.account_id
        )
    }
}

/// The AWS partition of a region.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The ARN of an EKS cluster, as EKS spells it.
pub fn cluster_arn(partition: &str, region: &str, account_id: &str, cluster: &str) -> String {
    format!("arn:{partition}:eks:{region}:{account_id}:cluster/{cluster}")
}

/// Strips the scheme and trailing slash off an issuer URL: IAM names providers that way.
pub fn issuer_host_path(issuer: &str) -> &str {
    let rest = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"))
        .unwrap_or(issuer);
    rest.trim_end_matches('/')
}

/// EKS allows this many pod identity associations in one cluster.
pub const ASSOCIATIONS_PER_CLUSTER: usize = 5000;

/// Refuses a cluster whose associations would exceed EKS's quota. `wanted` counts idplan's,
/// `others` those already in the cluster that idplan does not manage.
pub fn check_association_quota(cluster: &str, wanted: usize, others: usize) -> Result<(), String> {
    let total = wanted + others;
    if total <= ASSOCIATIONS_PER_CLUSTER {
        return Ok(());
    }
    Err(format!(
        "EKS cluster {cluster} would hold {total} pod identity associations ({wanted} of idplan's, \
         {others} of others), over EKS's limit of {ASSOCIATIONS_PER_CLUSTER} per cluster; \
         move control planes to another cluster, or use `mode: irsa` (one role trust per \
         component, no association)"
    ))
}

/// The annotation that names a component's role on its service accounts (IRSA).
pub const ANNOTATION: &str = "eks.amazonaws.com/role-arn";
