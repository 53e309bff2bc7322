//! Cloud drivers behind one interface: read, create, update and delete a resource.
//!
//! A driver's `read` returns the actual attributes *projected* onto what idplan manages, in
//! the same normal form as the desired attributes, so that equal means "nothing to do".
//! Tags or client ids that someone else added are not in the projection and so never drift.
//!
//! Each cloud's knowledge lives in its own folder: `aws/`, `azure/`, `gcp/`, one file per
//! resource kind with the kind's typed attributes and its declaration (`crate::kind`). This
//! file lists the clouds' kinds ([`Kind`]), where resources live ([`Location`]) and the
//! drivers a run sets up ([`Clouds`]); how a driver hands a resource to its kind
//! ([`KindOps`], [`Driver`]). `tags` holds the tag names idplan uses on every cloud that has
//! tags.

pub mod aws;
pub mod azure;
pub mod gcp;
mod kind_def;
pub mod tags;

use std::collections::BTreeSet;
use std::fmt::Display;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::graph::{Graph, Resource};
pub use crate::kind::{Kind, Location};
use crate::note::Note;
use crate::state::State;
pub use kind_def::{
    Identity, KindDef, Proposed, additive_join, computed_keys, decided, identity, same_object,
    upgrade_recorded, with_computed,
};

/// What a driver's cloud calls return.
pub type Call<'a, T> = BoxFuture<'a, Result<T>>;

/// What a read of a resource answers: the attributes the cloud holds, or `None` when it holds
/// no such resource.
pub type ReadResult = Result<Option<Value>>;

/// How the driver of a cloud, `D`, reads and writes a kind of that cloud: each kind
/// implements it beside [`KindDef`], with `async fn`s that hold the kind's own calls.
pub trait KindOps<D: Sync>: KindDef {
    /// What the cloud holds for `r`, given what the state `known`s of it.
    fn read(
        &self,
        driver: &D,
        r: &Resource,
        known: Option<&Value>,
    ) -> impl Future<Output = ReadResult> + Send;

    /// Creates `r`; returns what the cloud assigned ([`KindDef::computed_keys`]), or `None`
    /// for a kind that computes nothing.
    fn create(
        &self,
        driver: &D,
        r: &Resource,
    ) -> impl Future<Output = Result<Option<Value>>> + Send;

    /// Brings `actual` to `r`'s attributes.
    fn update(
        &self,
        driver: &D,
        r: &Resource,
        actual: &Value,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deletes a resource idplan created; one already gone counts as deleted.
    fn delete(&self, driver: &D, r: &Resource) -> impl Future<Output = Result<()>> + Send;

    /// Takes back from an adopted resource only what idplan `added` to it. Most kinds are
    /// adopted as they are, with nothing added: nothing to take back.
    fn release(
        &self,
        driver: &D,
        r: &Resource,
        added: &Value,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (driver, r, added);
        async { Ok(()) }
    }
}

/// [`KindOps`] as a driver holds any kind of its cloud (`&dyn`): the same calls, boxed.
pub trait KindCalls<D>: KindDef {
    fn read<'a>(
        &'a self,
        driver: &'a D,
        r: &'a Resource,
        known: Option<&'a Value>,
    ) -> Call<'a, Option<Value>>;
    fn create<'a>(&'a self, driver: &'a D, r: &'a Resource) -> Call<'a, Value>;
    fn update<'a>(&'a self, driver: &'a D, r: &'a Resource, actual: &'a Value) -> Call<'a, ()>;
    fn delete<'a>(&'a self, driver: &'a D, r: &'a Resource) -> Call<'a, ()>;
    fn release<'a>(&'a self, driver: &'a D, r: &'a Resource, added: &'a Value) -> Call<'a, ()>;
}

impl<D: Sync, K: KindOps<D>> KindCalls<D> for K {
    fn read<'a>(
        &'a self,
        driver: &'a D,
        r: &'a Resource,
        known: Option<&'a Value>,
    ) -> Call<'a, Option<Value>> {
        Box::pin(KindOps::read(self, driver, r, known))
    }

    /// A kind that computes nothing has assigned an empty object.
    fn create<'a>(&'a self, driver: &'a D, r: &'a Resource) -> Call<'a, Value> {
        Box::pin(async move {
            let computed = KindOps::create(self, driver, r).await?;
            Ok(computed.unwrap_or_else(|| Value::Object(Default::default())))
        })
    }

    fn update<'a>(&'a self, driver: &'a D, r: &'a Resource, actual: &'a Value) -> Call<'a, ()> {
        Box::pin(KindOps::update(self, driver, r, actual))
    }

    fn delete<'a>(&'a self, driver: &'a D, r: &'a Resource) -> Call<'a, ()> {
        Box::pin(KindOps::delete(self, driver, r))
    }

    fn release<'a>(&'a self, driver: &'a D, r: &'a Resource, added: &'a Value) -> Call<'a, ()> {
        Box::pin(KindOps::release(self, driver, r, added))
    }
}

/// One cloud's driver: what it does beside its kinds' calls ([`KindOps`]). What a kind is
/// without a driver instance (its identity, computed keys, adoption) is its [`KindDef`].
pub trait Driver: Send + Sync + Sized + 'static {
    /// The cloud, as an error names it.
    const CLOUD: &'static str;

    /// How this driver reads and writes `kind`; `None` for another cloud's kind.
    fn kind_calls(kind: Kind) -> Option<&'static dyn KindCalls<Self>>;

    /// Forgets what was read, so that apply reads afresh what the plan read. A driver that
    /// keeps nothing between reads has nothing to forget.
    fn refresh(&self) {}

    /// Limits what the driver lists to what these control planes (host namespaces) need
    /// (`--control-plane`): a driver that lists more than one resource reads at a time lists
    /// only theirs.
    fn limit_to(&self, namespaces: &BTreeSet<String>) {
        let _ = namespaces;
    }

    /// Refuses a plan that would break one of the cloud's limits, counting what others hold.
    fn check_limits<'a>(&'a self, desired: &'a Graph, state: &'a State) -> Call<'a, ()>;

    /// What a reviewer should know of the resources this plan adopts (`adopted`, as they will
    /// be) that the changes do not say (an adopted role's permissions idplan leaves alone).
    fn adopted_notes<'a>(&'a self, adopted: &'a [Resource]) -> Call<'a, Vec<Note>> {
        let _ = adopted;
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// Any cloud's driver, as [`Clouds`] holds them: a resource's calls go to its kind.
trait AnyDriver: Send + Sync {
    fn read<'a>(&'a self, r: &'a Resource, known: Option<&'a Value>) -> Call<'a, Option<Value>>;
    fn create<'a>(&'a self, r: &'a Resource) -> Call<'a, Value>;
    fn update<'a>(&'a self, r: &'a Resource, actual: &'a Value) -> Call<'a, ()>;
    fn delete<'a>(&'a self, r: &'a Resource) -> Call<'a, ()>;
    fn release<'a>(&'a self, r: &'a Resource, added: &'a Value) -> Call<'a, ()>;
    fn refresh(&self);
    fn limit_to(&self, namespaces: &BTreeSet<String>);
    fn check_limits<'a>(&'a self, desired: &'a Graph, state: &'a State) -> Call<'a, ()>;
    fn adopted_notes<'a>(&'a self, adopted: &'a [Resource]) -> Call<'a, Vec<Note>>;
}

impl<D: Driver> AnyDriver for D {
    fn read<'a>(&'a self, r: &'a Resource, known: Option<&'a Value>) -> Call<'a, Option<Value>> {
        on_kind::<D, _>(r, |kind| kind.read(self, r, known))
    }

    fn create<'a>(&'a self, r: &'a Resource) -> Call<'a, Value> {
        on_kind::<D, _>(r, |kind| kind.create(self, r))
    }

    fn update<'a>(&'a self, r: &'a Resource, actual: &'a Value) -> Call<'a, ()> {
        on_kind::<D, _>(r, |kind| kind.update(self, r, actual))
    }

    fn delete<'a>(&'a self, r: &'a Resource) -> Call<'a, ()> {
        on_kind::<D, _>(r, |kind| kind.delete(self, r))
    }

    fn release<'a>(&'a self, r: &'a Resource, added: &'a Value) -> Call<'a, ()> {
        on_kind::<D, _>(r, |kind| kind.release(self, r, added))
    }

    fn refresh(&self) {
        Driver::refresh(self)
    }

    fn limit_to(&self, namespaces: &BTreeSet<String>) {
        Driver::limit_to(self, namespaces)
    }

    fn check_limits<'a>(&'a self, desired: &'a Graph, state: &'a State) -> Call<'a, ()> {
        Driver::check_limits(self, desired, state)
    }

    fn adopted_notes<'a>(&'a self, adopted: &'a [Resource]) -> Call<'a, Vec<Note>> {
        Driver::adopted_notes(self, adopted)
    }
}

/// `call` on the calls of a resource's kind; a resource given to another cloud's driver is
/// a bug, reported, not a panic.
fn on_kind<'a, D: Driver, T: 'a>(
    r: &Resource,
    call: impl FnOnce(&'static dyn KindCalls<D>) -> Call<'a, T>,
) -> Call<'a, T> {
    match D::kind_calls(r.node.kind()) {
        Some(kind) => call(kind),
        None => {
            let e = Error::internal(format!(
                "{} ({}) was given to the {} driver",
                r.node.address,
                r.node.kind(),
                D::CLOUD
            ));
            Box::pin(async { Err(e) })
        }
    }
}

/// Where each kind is declared.
impl Kind {
    /// Everything idplan knows of the kind's behaviour, declared with it.
    pub fn def(self) -> &'static dyn KindDef {
        match self {
            Kind::Aws(k) => k.def(),
            Kind::Azure(k) => k.def(),
            Kind::Gcp(k) => k.def(),
        }
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
    attributes(&resource.node.address, &resource.attributes)
}

/// Every driver the current run needs, each created once.
pub struct Clouds {
    aws: Option<aws::AwsDriver>,
    azure: Option<azure::AzureDriver>,
    gcp: Option<gcp::GcpDriver>,
    /// What was read, by what was asked, while a run asks twice ([`Clouds::remember_reads`]).
    reads: std::sync::Mutex<Option<Reads>>,
}

/// Answers by (address, what was asked).
type Reads = std::collections::HashMap<(String, String), Option<Value>>;

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
            reads: std::sync::Mutex::new(None),
        })
    }

    /// Keeps what each read answered, so that asking again the same (the same resource, its
    /// attributes as the spec decides them, what the state knows) answers from memory: drift
    /// compares the state with the clouds, then plans, and reads the Space once.
    pub fn remember_reads(&self) {
        *self.reads.lock().unwrap_or_else(|e| e.into_inner()) = Some(Default::default());
    }

    /// The driver of the cloud a location is in.
    fn driver(&self, location: &Location) -> Result<&dyn AnyDriver> {
        match location {
            Location::Aws { .. } => Ok(self.aws()?),
            Location::Azure { .. } => Ok(self.azure()?),
            Location::Gcp { .. } => Ok(self.gcp()?),
        }
    }

    /// Every driver set up, in a fixed order (AWS, Azure, GCP).
    fn drivers(&self) -> impl Iterator<Item = &dyn AnyDriver> {
        let aws = self.aws.as_ref().map(|d| d as &dyn AnyDriver);
        let azure = self.azure.as_ref().map(|d| d as &dyn AnyDriver);
        let gcp = self.gcp.as_ref().map(|d| d as &dyn AnyDriver);
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
        let remembering = self
            .reads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        if !remembering {
            return self
                .driver(&resource.node.location)?
                .read(resource, known)
                .await;
        }
        let asked = serde_json::json!([decided(resource.node.kind(), &resource.attributes), known]);
        let key = (resource.node.address.to_string(), asked.to_string());
        let remembered = self
            .reads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|r| r.get(&key).cloned());
        if let Some(answer) = remembered {
            return Ok(answer);
        }
        let answer = self
            .driver(&resource.node.location)?
            .read(resource, known)
            .await?;
        if let Some(reads) = self
            .reads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            reads.insert(key, answer.clone());
        }
        Ok(answer)
    }

    /// Refuses a plan that would break a cloud's limit, counting what others hold there.
    pub async fn check_limits(&self, desired: &Graph, state: &State) -> Result<()> {
        for driver in self.drivers() {
            driver.check_limits(desired, state).await?;
        }
        Ok(())
    }

    /// See [`Driver::adopted_notes`].
    pub async fn adopted_notes(&self, adopted: &[Resource]) -> Result<Vec<Note>> {
        let mut notes = Vec::new();
        for driver in self.drivers() {
            notes.extend(driver.adopted_notes(adopted).await?);
        }
        Ok(notes)
    }

    /// Forgets what was read, so that apply reads afresh what the plan read.
    pub fn refresh(&self) {
        self.drivers().for_each(|d| d.refresh());
        if let Some(reads) = self
            .reads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            reads.clear();
        }
    }

    /// See [`Driver::limit_to`].
    pub fn limit_to(&self, namespaces: &BTreeSet<String>) {
        self.drivers().for_each(|d| d.limit_to(namespaces));
    }

    /// Creates `resource`; returns what the cloud assigned (`computed_keys`).
    pub async fn create(&self, resource: &Resource) -> Result<Value> {
        self.driver(&resource.node.location)?.create(resource).await
    }

    pub async fn update(&self, resource: &Resource, actual: &Value) -> Result<()> {
        self.driver(&resource.node.location)?
            .update(resource, actual)
            .await
    }

    /// Deletes a resource idplan created.
    pub async fn delete(&self, resource: &Resource) -> Result<()> {
        self.driver(&resource.node.location)?.delete(resource).await
    }

    /// Takes back from an adopted resource only what idplan added to it.
    pub async fn release(&self, resource: &Resource, added: &Value) -> Result<()> {
        self.driver(&resource.node.location)?
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

/// The desired attributes of `resource` with the `owned` keys as `actual` has them: what an
/// adopted resource keeps of its owner's.
pub fn owners_keys(resource: &Resource, actual: &Value, owned: &[&str]) -> Value {
    let mut desired = resource.attributes.clone();
    for key in owned {
        desired[*key] = actual[*key].clone();
    }
    desired
}
