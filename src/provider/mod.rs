//! Cloud drivers behind one interface: read, create, update and delete a resource.
//!
//! A driver's `read` returns the actual attributes *projected* onto what idplan manages, in
//! the same normal form as the desired attributes, so that equal means "nothing to do".
//! Tags or client ids that someone else added are not in the projection and so never drift.
//!
//! Each cloud's knowledge lives in its own folder: `aws/`, `azure/`, `gcp/`, one file per
//! resource kind with the kind's typed attributes. `rest` is the HTTP transport of Azure and
//! GCP; `tags` the tag names idplan uses on every cloud that has tags.

pub mod aws;
pub mod azure;
pub mod gcp;
pub mod rest;
pub mod tags;

use std::fmt::Display;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::graph::{Graph, Kind, Location, Resource};
use crate::plan::{Note, ResourceChange};
use crate::state::State;

/// What a driver's cloud calls return.
pub type Call<'a, T> = BoxFuture<'a, Result<T>>;

/// One cloud's driver. The first three functions are what the cloud knows of its kinds
/// without a driver instance (the graph needs identities before any driver is set up); the
/// others talk to the cloud.
pub trait Driver: Send + Sync {
    /// The cloud identity of a resource: two addresses may not share one, and when it differs
    /// between state and spec the resource is replaced.
    fn identity(kind: Kind, attributes: &Value) -> Result<String>
    where
        Self: Sized;

    /// Attributes the cloud assigns when a resource is created (an association's id):
    /// recorded in the state and read back, but never desired, so never compared.
    fn computed_keys(kind: Kind) -> &'static [&'static str]
    where
        Self: Sized;

    /// Whether an existing resource that the state does not know can be taken over.
    fn adoption(resource: &Resource, actual: &Value) -> Result<Adoption>
    where
        Self: Sized;

    /// What idplan wants of a resource it adopted (`actual` is what the cloud holds): the
    /// desired attributes, with what stays its owner's (a name it chose, its description)
    /// as the owner set it.
    fn shared_desired(resource: &Resource, actual: &Value) -> Result<Value>
    where
        Self: Sized;

    /// What idplan will have added to a resource it adopted once `resource` is applied over
    /// `actual`, given what it `added` before: most kinds add only at adoption.
    fn added_after(
        resource: &Resource,
        actual: &Value,
        added: Option<Value>,
    ) -> Result<Option<Value>>
    where
        Self: Sized,
    {
        let _ = (resource, actual);
        Ok(added)
    }

    /// What the cloud holds for `resource`, given what the state `known`s of it.
    fn read<'a>(
        &'a self,
        resource: &'a Resource,
        known: Option<&'a Value>,
    ) -> Call<'a, Option<Value>>;

    /// Creates `resource`; returns what the cloud assigned (`computed_keys`).
    fn create<'a>(&'a self, resource: &'a Resource) -> Call<'a, Value>;

    /// Brings `actual` to the resource's attributes.
    fn update<'a>(&'a self, resource: &'a Resource, actual: &'a Value) -> Call<'a, ()>;

    /// Deletes a resource idplan created; one already gone counts as deleted.
    fn delete<'a>(&'a self, resource: &'a Resource) -> Call<'a, ()>;

    /// Takes back from an adopted resource only what idplan `added` to it.
    fn release<'a>(&'a self, resource: &'a Resource, added: &'a Value) -> Call<'a, ()>;

    /// Forgets what was read, so that apply reads afresh what the plan read.
    fn refresh(&self);

    /// Refuses a plan that would break one of the cloud's limits, counting what others hold.
    fn check_limits<'a>(&'a self, desired: &'a Graph, state: &'a State) -> Call<'a, ()>;

    /// What a reviewer should know of the resources this plan adopts that the changes do not
    /// say (an adopted role's permissions idplan leaves alone).
    fn adopted_notes<'a>(&'a self, changes: &'a [ResourceChange]) -> Call<'a, Vec<Note>> {
        let _ = changes;
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// Which cloud a kind belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cloud {
    Aws,
    Azure,
    Gcp,
}

fn cloud_of(kind: Kind) -> Cloud {
    match kind {
        Kind::AwsIamOpenidConnectProvider
        | Kind::AwsIamRole
        | Kind::AwsIamRolePolicy
        | Kind::AwsEksPodIdentityAssociation => Cloud::Aws,
        Kind::AzureUserAssignedIdentity
        | Kind::AzureFederatedIdentityCredential
        | Kind::AzureRoleAssignment
        | Kind::AzureKeyVaultAccessPolicy => Cloud::Azure,
        Kind::GoogleServiceAccount
        | Kind::GoogleStorageBucketIamMembers
        | Kind::GoogleProjectIamMembers
        | Kind::GoogleSecretIamMembers
        | Kind::GoogleServiceAccountIamMembers => Cloud::Gcp,
    }
}

/// The cloud identity of a resource (see [`Driver::identity`]).
pub fn identity(kind: Kind, attributes: &Value) -> Result<String> {
    match cloud_of(kind) {
        Cloud::Aws => aws::AwsDriver::identity(kind, attributes),
        Cloud::Azure => azure::AzureDriver::identity(kind, attributes),
        Cloud::Gcp => gcp::GcpDriver::identity(kind, attributes),
    }
}

/// See [`Driver::computed_keys`].
pub fn computed_keys(kind: Kind) -> &'static [&'static str] {
    match cloud_of(kind) {
        Cloud::Aws => aws::AwsDriver::computed_keys(kind),
        Cloud::Azure => azure::AzureDriver::computed_keys(kind),
        Cloud::Gcp => gcp::GcpDriver::computed_keys(kind),
    }
}

/// Brings attributes an older idplan recorded to what this one records: an attribute added
/// since gets the value the older state meant, so that it compares equal to the cloud.
pub fn upgrade_recorded(kind: Kind, attributes: &mut Value) {
    if kind == Kind::AwsEksPodIdentityAssociation {
        aws::association::upgrade_recorded(attributes);
    }
}

/// Decides how to treat an existing resource that is not in the state.
pub fn adoption(resource: &Resource, actual: &Value) -> Result<Adoption> {
    match cloud_of(resource.kind) {
        Cloud::Aws => aws::AwsDriver::adoption(resource, actual),
        Cloud::Azure => azure::AzureDriver::adoption(resource, actual),
        Cloud::Gcp => gcp::GcpDriver::adoption(resource, actual),
    }
}

/// Typed attributes as plans and state hold them: JSON.
pub fn to_attributes<T: Serialize>(attributes: &T) -> Value {
    serde_json::to_value(attributes).expect("attributes are plain JSON: string keys only")
}

/// `value` read as the attributes of a kind; `what` names the resource. Attributes come from
/// idplan's own recipes and state, so a mismatch is a bug.
pub fn attributes<T: DeserializeOwned>(what: impl Display, value: &Value) -> Result<T> {
    T::deserialize(value)
        .map_err(|e| Error::internal(format!("{what}: unexpected attributes {value}: {e}")))
}

/// The attributes of `resource`, typed.
pub fn attributes_of<T: DeserializeOwned>(resource: &Resource) -> Result<T> {
    attributes(&resource.address, &resource.attributes)
}

/// Every driver the current run needs, each created once.
pub struct Clouds {
    aws: Option<aws::AwsDriver>,
    azure: Option<azure::AzureDriver>,
    gcp: Option<gcp::GcpDriver>,
}

impl Clouds {
    /// Creates the drivers for the locations given; no cloud call is made here.
    pub async fn new<'a>(locations: impl IntoIterator<Item = &'a Location>) -> Result<Clouds> {
        let (mut need_aws, mut need_azure, mut need_gcp) = (false, false, false);
        for location in locations {
            match location {
                Location::Aws { .. } => need_aws = true,
                Location::Azure { .. } => need_azure = true,
                Location::Gcp { .. } => need_gcp = true,
            }
        }
        Ok(Clouds {
            aws: match need_aws {
                true => Some(aws::AwsDriver::new().await),
                false => None,
            },
            azure: need_azure.then(azure::AzureDriver::new).transpose()?,
            gcp: need_gcp.then(gcp::GcpDriver::new).transpose()?,
        })
    }

    /// The driver of the cloud a location is in.
    pub fn driver(&self, location: &Location) -> Result<&dyn Driver> {
        match location {
            Location::Aws { .. } => Ok(self.aws()?),
            Location::Azure { .. } => Ok(self.azure()?),
            Location::Gcp { .. } => Ok(self.gcp()?),
        }
    }

    /// Every driver set up, in a fixed order (AWS, Azure, GCP).
    fn drivers(&self) -> impl Iterator<Item = &dyn Driver> {
        let aws = self.aws.as_ref().map(|d| d as &dyn Driver);
        let azure = self.azure.as_ref().map(|d| d as &dyn Driver);
        let gcp = self.gcp.as_ref().map(|d| d as &dyn Driver);
        [aws, azure, gcp].into_iter().flatten()
    }

    pub fn aws(&self) -> Result<&aws::AwsDriver> {
        self.aws
            .as_ref()
            .ok_or_else(|| Error::internal("no AWS driver was set up"))
    }

    pub fn azure(&self) -> Result<&azure::AzureDriver> {
        self.azure
            .as_ref()
            .ok_or_else(|| Error::internal("no Azure driver was set up"))
    }

    pub fn gcp(&self) -> Result<&gcp::GcpDriver> {
        self.gcp
            .as_ref()
            .ok_or_else(|| Error::internal("no GCP driver was set up"))
    }

    /// What the cloud holds for `resource`, given what the state `known`s of it.
    pub async fn read(&self, resource: &Resource, known: Option<&Value>) -> Result<Option<Value>> {
        self.driver(&resource.location)?.read(resource, known).await
    }

    /// Refuses a plan that would break a cloud's limit, counting what others hold there.
    pub async fn check_limits(&self, desired: &Graph, state: &State) -> Result<()> {
        for driver in self.drivers() {
            driver.check_limits(desired, state).await?;
        }
        Ok(())
    }

    /// See [`Driver::adopted_notes`].
    pub async fn adopted_notes(&self, changes: &[ResourceChange]) -> Result<Vec<Note>> {
        let mut notes = Vec::new();
        for driver in self.drivers() {
            notes.extend(driver.adopted_notes(changes).await?);
        }
        Ok(notes)
    }

    /// Forgets what was read, so that apply reads afresh what the plan read.
    pub fn refresh(&self) {
        self.drivers().for_each(|d| d.refresh());
    }

    /// Creates `resource`; returns what the cloud assigned (`computed_keys`).
    pub async fn create(&self, resource: &Resource) -> Result<Value> {
        self.driver(&resource.location)?.create(resource).await
    }

    pub async fn update(&self, resource: &Resource, actual: &Value) -> Result<()> {
        self.driver(&resource.location)?
            .update(resource, actual)
            .await
    }

    /// Deletes a resource idplan created.
    pub async fn delete(&self, resource: &Resource) -> Result<()> {
        self.driver(&resource.location)?.delete(resource).await
    }

    /// Takes back from an adopted resource only what idplan added to it.
    pub async fn release(&self, resource: &Resource, added: &Value) -> Result<()> {
        self.driver(&resource.location)?
            .release(resource, added)
            .await
    }
}

/// Whether an existing resource that the state does not know can be taken over.
#[derive(Debug)]
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

/// See [`Driver::shared_desired`].
pub fn shared_desired(resource: &Resource, actual: &Value) -> Result<Value> {
    match cloud_of(resource.kind) {
        Cloud::Aws => aws::AwsDriver::shared_desired(resource, actual),
        Cloud::Azure => azure::AzureDriver::shared_desired(resource, actual),
        Cloud::Gcp => gcp::GcpDriver::shared_desired(resource, actual),
    }
}

/// See [`Driver::added_after`].
pub fn added_after(
    resource: &Resource,
    actual: &Value,
    added: Option<Value>,
) -> Result<Option<Value>> {
    match cloud_of(resource.kind) {
        Cloud::Aws => aws::AwsDriver::added_after(resource, actual, added),
        Cloud::Azure => azure::AzureDriver::added_after(resource, actual, added),
        Cloud::Gcp => gcp::GcpDriver::added_after(resource, actual, added),
    }
}

/// The desired attributes of `resource` with the `owned` keys as `actual` has them: what an
/// adopted resource keeps of its owner's.
pub fn owners_keys(resource: &Resource, actual: &Value, owned: &[&str]) -> Value {
    let mut desired = resource.attributes.clone();
    for key in owned {
        desired[*key] = actual[*key].clone();
    }
    desired
}

/// A kind given to the driver of another cloud: a bug, reported, not a panic.
pub(crate) fn wrong_cloud(resource: &Resource, cloud: &str) -> Error {
    Error::internal(format!(
        "{} ({}) was given to the {cloud} driver",
        resource.address, resource.kind
    ))
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
