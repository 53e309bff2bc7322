//! Cloud drivers behind one interface: read, create, update and delete a resource.
//!
//! A driver's `read` returns the actual attributes *projected* onto what idplan manages, in
//! the same normal form as the desired attributes, so that equal means "nothing to do".
//! Tags or client ids that someone else added are not in the projection and so never drift.

pub mod aws;
pub mod azure;
pub mod gcp;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::graph::{Kind, Location, Resource};

/// Every driver the current run needs, each created once.
pub struct Clouds {
    aws: Option<aws::AwsDriver>,
    azure: Option<azure::AzureDriver>,
    gcp: Option<gcp::GcpDriver>,
}

impl Clouds {
    /// Creates the drivers for the locations given; no cloud call is made here.
    pub async fn new<'a>(locations: impl IntoIterator<Item = &'a Location>) -> Clouds {
        let (mut need_aws, mut need_azure, mut need_gcp) = (false, false, false);
        for location in locations {
            match location {
                Location::Aws { .. } => need_aws = true,
                Location::Azure { .. } => need_azure = true,
                Location::Gcp { .. } => need_gcp = true,
            }
        }
        Clouds {
            aws: if need_aws {
                Some(aws::AwsDriver::new().await)
            } else {
                None
            },
            azure: need_azure.then(azure::AzureDriver::new),
            gcp: need_gcp.then(gcp::GcpDriver::new),
        }
    }

    pub fn gcp(&self) -> Result<&gcp::GcpDriver> {
        self.gcp
            .as_ref()
            .ok_or_else(|| Error::user("internal: no GCP driver was set up"))
    }

    pub fn aws(&self) -> Result<&aws::AwsDriver> {
        self.aws
            .as_ref()
            .ok_or_else(|| Error::user("internal: no AWS driver was set up"))
    }

    pub fn azure(&self) -> Result<&azure::AzureDriver> {
        self.azure
            .as_ref()
            .ok_or_else(|| Error::user("internal: no Azure driver was set up"))
    }

    /// What the cloud holds for `resource`, given what the state `known`s of it.
    pub async fn read(&self, resource: &Resource, known: Option<&Value>) -> Result<Option<Value>> {
        match resource.location {
            Location::Aws { .. } => self.aws()?.read(resource, known).await,
            Location::Azure { .. } => self.azure()?.read(resource, known).await,
            Location::Gcp { .. } => self.gcp()?.read(resource, known).await,
        }
    }

    /// Refuses a plan that would break a per-cluster limit, counting what others hold there.
    pub async fn check_limits(
        &self,
        desired: &crate::graph::Graph,
        state: &crate::state::State,
    ) -> Result<()> {
        use std::collections::{BTreeMap, HashSet};
        // (location, cluster) → (idplan's wanted associations, every (ns, sa) idplan knows)
        type Ours = (usize, HashSet<(String, String)>);
        let mut clusters: BTreeMap<(String, String), (Location, Ours)> = BTreeMap::new();
        let key = |a: &Value| {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (s("cluster"), (s("namespace"), s("service_account")))
        };
        let desired_associations = desired
            .iter()
            .filter(|r| r.kind == Kind::AwsEksPodIdentityAssociation)
            .map(|r| (&r.location, &r.attributes, true));
        let recorded = state
            .resources
            .iter()
            .filter(|r| r.kind == Kind::AwsEksPodIdentityAssociation)
            .map(|r| (&r.location, &r.attributes, false));
        for (location, attributes, wanted) in desired_associations.chain(recorded) {
            let Location::Aws { region } = location else {
                continue;
            };
            let (cluster, pair) = key(attributes);
            let entry = clusters
                .entry((region.clone(), cluster))
                .or_insert_with(|| (location.clone(), (0, HashSet::new())));
            entry.1.0 += usize::from(wanted);
            entry.1.1.insert(pair);
        }
        for ((_, cluster), (location, (wanted, ours))) in clusters {
            if wanted == 0 {
                continue;
            }
            let others = self
                .aws()?
                .foreign_associations(&location, &cluster, &ours)
                .await?;
            crate::recipe::aws::check_association_quota(&cluster, wanted, others)
                .map_err(Error::user)?;
        }
        self.check_credentials(desired).await?;
        self.check_policy_sizes(desired, state).await
    }

    /// Refuses more federated credentials on an existing identity than Azure allows,
    /// counting those others put there.
    async fn check_credentials(&self, desired: &crate::graph::Graph) -> Result<()> {
        use std::collections::{BTreeMap, HashSet};
        let mut identities: BTreeMap<String, HashSet<String>> = BTreeMap::new();
        for r in desired
            .iter()
            .filter(|r| r.kind == Kind::AzureFederatedIdentityCredential)
        {
            let s = |k: &str| r.attributes[k].as_str().unwrap_or_default().to_string();
            identities
                .entry(s("identity"))
                .or_default()
                .insert(s("name").to_ascii_lowercase());
        }
        for identity in desired
            .iter()
            .filter(|r| r.kind == Kind::AzureUserAssignedIdentity)
        {
            let id = identity.attributes["id"].as_str().unwrap_or_default();
            let ours = identities.remove(id).unwrap_or_default();
            if self.azure()?.read(identity, None).await?.is_none() {
                continue;
            }
            let others = self.azure()?.foreign_credentials(id, &ours).await?;
            let component = identity.address.rsplit('.').next().unwrap_or_default();
            let name = identity.attributes["name"].as_str().unwrap_or_default();
            crate::recipe::azure::check_credentials_named(name, component, ours.len(), others)
                .map_err(Error::user)?;
        }
        Ok(())
    }

    /// Refuses a GCP IAM policy that would hold more principals than Google allows, counting
    /// the members others hold there. Checked before anything is written.
    async fn check_policy_sizes(
        &self,
        desired: &crate::graph::Graph,
        state: &crate::state::State,
    ) -> Result<()> {
        use crate::recipe::gcp::{check_principals, policy_members};
        let wanted = policy_members(desired.iter());
        if wanted.is_empty() {
            return Ok(());
        }
        let recorded_resources: Vec<Resource> =
            state.resources.iter().map(|r| r.resource()).collect();
        let recorded = policy_members(recorded_resources.iter());
        let gcp = self.gcp()?;
        for ((kind, policy), ours) in &wanted {
            // One resource of this policy stands for it: the driver reads the whole policy.
            let Some(sample) = desired
                .iter()
                .find(|r| r.kind == *kind && r.attributes["resource"] == policy.as_str())
            else {
                continue;
            };
            let known = recorded.get(&(*kind, policy.clone()));
            let others = gcp
                .policy_principals(sample)
                .await?
                .into_iter()
                .filter(|m| !ours.contains(m) && known.is_none_or(|k| !k.contains(m)))
                .count();
            check_principals(policy, ours.len(), others).map_err(Error::user)?;
        }
        Ok(())
    }

    /// Forgets what was read, so that apply reads afresh what the plan read.
    pub fn refresh(&self) {
        if let Some(aws) = &self.aws {
            aws.refresh();
        }
        if let Some(azure) = &self.azure {
            azure.refresh();
        }
    }

    /// Creates `resource`; returns what the cloud assigned (`graph::computed_keys`).
    pub async fn create(&self, resource: &Resource) -> Result<Value> {
        match resource.location {
            Location::Aws { .. } => self.aws()?.create(resource).await,
            Location::Azure { .. } => self.azure()?.create(resource).await,
            Location::Gcp { .. } => self.gcp()?.create(resource).await,
        }
    }

    pub async fn update(&self, resource: &Resource, actual: &Value) -> Result<()> {
        match resource.location {
            Location::Aws { .. } => self.aws()?.update(resource, actual).await,
            Location::Azure { .. } => self.azure()?.update(resource, actual).await,
            Location::Gcp { .. } => self.gcp()?.update(resource, actual).await,
        }
    }

    /// Deletes a resource idplan created.
    pub async fn delete(&self, resource: &Resource) -> Result<()> {
        match resource.location {
            Location::Aws { .. } => self.aws()?.delete(resource).await,
            Location::Azure { .. } => self.azure()?.delete(resource).await,
            Location::Gcp { .. } => self.gcp()?.delete(resource).await,
        }
    }

    /// Takes back from an adopted resource only what idplan added to it.
    pub async fn release(&self, resource: &Resource, added: &Value) -> Result<()> {
        match resource.location {
            Location::Aws { .. } => self.aws()?.release(resource, added).await,
            // idplan adopts nothing on Azure: an identity not made by idplan is refused.
            Location::Azure { .. } => Err(Error::user(format!(
                "internal: {} has nothing to release",
                resource.address
            ))),
            Location::Gcp { .. } => self.gcp()?.release(resource, added).await,
        }
    }
}

/// Whether an existing resource that the state does not know can be taken over.
pub enum Adoption {
    /// It carries idplan's marker: idplan made it (a lost state): manage it as created.
    Owned,
    /// Someone else's resource that idplan may share: manage only `desired` (a reduced
    /// version of the desired attributes) and remember `added` to take back later.
    Shared {
        desired: Value,
        added: Option<Value>,
    },
    /// Someone else's resource idplan must not touch.
    Conflict(String),
}

/// What idplan wants of a resource it shares with an owner: everything it manages, with the
/// tags left as the owner set them.
pub fn shared_desired(resource: &Resource, actual: &Value) -> Value {
    let mut desired = resource.attributes.clone();
    desired["tags"] = actual["tags"].clone();
    desired
}

/// Decides how to treat an existing resource that is not in the state.
pub fn adoption(resource: &Resource, actual: &Value) -> Adoption {
    use crate::recipe::aws::{MANAGED_BY, SPACE_TAG};
    let tag = |attrs: &Value, key: &str| attrs["tags"][key].as_str().map(str::to_string);
    match resource.kind {
        Kind::GoogleServiceAccount => gcp::adopt_account(resource, actual),
        // idplan's members of a shared policy: members equal to idplan's are idplan's (a lost
        // state); nobody else's member is ever in the projection the driver reads.
        Kind::GoogleStorageBucketIamMembers
        | Kind::GoogleProjectIamMembers
        | Kind::GoogleSecretIamMembers
        | Kind::GoogleServiceAccountIamMembers => Adoption::Owned,
        // A cluster's provider is shared by every space and state on that cluster: whoever
        // made it, a state that did not record its creation never deletes it.
        Kind::AwsIamOpenidConnectProvider => aws::adopt_provider(resource, actual),
        // An inline policy belongs to its role: the role's adoption decides.
        Kind::AwsIamRolePolicy => Adoption::Owned,
        Kind::AwsEksPodIdentityAssociation => {
            let managed = tag(actual, MANAGED_BY.0).as_deref() == Some(MANAGED_BY.1);
            if managed && tag(actual, SPACE_TAG) == tag(&resource.attributes, SPACE_TAG) {
                Adoption::Owned
            } else {
                aws::adopt_association(resource, actual)
            }
        }
        // Credentials, assignments and access policy entries belong to their identity (the
        // name or the principal is the identity's): its adoption decides.
        Kind::AzureFederatedIdentityCredential
        | Kind::AzureRoleAssignment
        | Kind::AzureKeyVaultAccessPolicy => Adoption::Owned,
        Kind::AzureUserAssignedIdentity => {
            let name = resource.attributes["name"].as_str().unwrap_or_default();
            let managed = tag(actual, MANAGED_BY.0).as_deref() == Some(MANAGED_BY.1);
            match (managed, tag(actual, SPACE_TAG)) {
                (true, space) if space == tag(&resource.attributes, SPACE_TAG) => Adoption::Owned,
                (true, space) => Adoption::Conflict(format!(
                    "managed identity {name} belongs to idplan space {}; two spaces cannot \
                     share an identity: set another `name` for the component",
                    space.unwrap_or_default()
                )),
                (false, _) => Adoption::Conflict(format!(
                    "managed identity {name} already exists and was not created by idplan (no \
                     tag managed-by=idplan); idplan will not take it over: set another `name` \
                     for the component, or delete the identity"
                )),
            }
        }
        Kind::AwsIamRole => {
            let name = resource.attributes["name"].as_str().unwrap_or_default();
            let managed = tag(actual, MANAGED_BY.0).as_deref() == Some(MANAGED_BY.1);
            match (managed, tag(actual, SPACE_TAG)) {
                // idplan made it for this space: the state was lost or reset.
                (true, space) if space == tag(&resource.attributes, SPACE_TAG) => Adoption::Owned,
                (true, space) => Adoption::Conflict(format!(
                    "IAM role {name} belongs to idplan space {}; two spaces cannot share a role: \
                     set another `name` for the component",
                    space.unwrap_or_default()
                )),
                (false, _) => Adoption::Conflict(format!(
                    "IAM role {name} already exists and was not created by idplan (no tag \
                     managed-by=idplan); idplan will not take it over: set another `name` for \
                     the component, or delete the role"
                )),
            }
        }
    }
}

/// An error and its sources on one line ("dispatch failure: io error: ... Connection refused"),
/// without the debug dump some SDK formatters append.
pub(crate) fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        // Wrappers often repeat their source's text.
        if !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// The wait before retry `attempt` (1, 2, ...): `first`, doubling per attempt up to `cap`,
/// plus up to 50% jitter so that parallel retries spread out.
pub(crate) fn backoff(
    attempt: u32,
    first: std::time::Duration,
    cap: std::time::Duration,
) -> std::time::Duration {
    let base = first
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(cap);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base + base.mul_f64(f64::from(nanos % 1000) / 2000.0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn backoff_grows_and_is_bounded() {
        let (first, cap) = (Duration::from_millis(400), Duration::from_secs(5));
        let one = super::backoff(1, first, cap);
        assert!(one >= first && one <= Duration::from_millis(600), "{one:?}");
        let two = super::backoff(2, first, cap);
        assert!(two >= Duration::from_millis(800), "{two:?}");
        for attempt in 1..40 {
            assert!(super::backoff(attempt, first, cap) <= Duration::from_millis(7_500));
        }
    }
}
