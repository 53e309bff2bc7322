//! EKS pod identity associations: one per (component, host namespace) in pod identity mode.
//!
//! EKS lists associations without their role or session tag setting, so each cluster is listed
//! once per run (the listing kept current by idplan's own writes) to find the ids, and every
//! association is described: its role and `disableSessionTags` can change outside idplan, and
//! the roles' trust conditions depend on the session tags. Its tags are read only for one the
//! state does not know (adoption); idplan sets them at create and never retags.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use aws_sdk_iam::error::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::OnceCell;

use super::context::check_association_quota;
use super::{AwsDriver, AwsKind, attrs, cloud_error, region, sent};
use crate::error::{Error, Result};
use crate::graph::{Graph, Location, Resource};
use crate::provider::tags::{self, Tags};
use crate::provider::{Adoption, attributes, to_attributes};
use crate::provider::{Identity, KindDef, KindOps, Proposed, ReadResult};
use crate::state::State;

/// What EKS assigns at create: the association's id.
pub const COMPUTED: &[&str] = &["association_id"];

/// `aws_eks_pod_identity_association`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssociationAttributes {
    pub cluster: String,
    pub namespace: String,
    pub service_account: String,
    pub role_arn: String,
    pub tags: Tags,
    /// EKS's `disableSessionTags`: idplan wants `false`, since the roles trust only sessions
    /// tagged with their cluster, namespace and service account. Absent from older states.
    #[serde(default)]
    pub disable_session_tags: bool,
    /// Assigned by EKS (see [`COMPUTED`]): absent from what the spec wants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association_id: Option<String>,
}

impl AssociationAttributes {
    /// (namespace, service account): what a cluster's listing is keyed by.
    fn key(&self) -> (String, String) {
        (self.namespace.clone(), self.service_account.clone())
    }
}

/// A cluster's pod identity associations by (namespace, service account): their ids.
type Listing = HashMap<(String, String), String>;
/// A listing made once per run, on first use.
type CachedListing = Arc<OnceCell<Mutex<Listing>>>;

/// Which listing: a cluster's (region, cluster), and a namespace when a run is limited to some
/// control planes (`--control-plane`), whose listing names only that namespace's.
type ListingKey = (String, String, Option<String>);

/// Each (region, cluster)'s listing, or each (region, cluster, namespace)'s.
#[derive(Default)]
pub(super) struct Listings {
    cells: Mutex<HashMap<ListingKey, CachedListing>>,
    /// The host namespaces a run is limited to; empty: the whole cluster.
    limited_to: std::sync::OnceLock<std::collections::BTreeSet<String>>,
}

impl Listings {
    fn map(&self) -> MutexGuard<'_, HashMap<ListingKey, CachedListing>> {
        self.cells.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets every listing, so the next read lists again.
    pub(super) fn clear(&self) {
        self.map().clear();
    }

    /// Limits the listings to these namespaces: one list call per namespace, whatever the
    /// size of the cluster.
    pub(super) fn limit_to(&self, namespaces: &std::collections::BTreeSet<String>) {
        let _ = self.limited_to.set(namespaces.clone());
    }

    /// The listing that knows `namespace`'s associations.
    fn key(&self, location: &Location, cluster: &str, namespace: &str) -> ListingKey {
        let limited = self.limited_to.get().is_some_and(|l| l.contains(namespace));
        (
            region(location).to_string(),
            cluster.to_string(),
            limited.then(|| namespace.to_string()),
        )
    }

    fn cell(&self, key: &ListingKey) -> CachedListing {
        self.map().entry(key.clone()).or_default().clone()
    }

    /// Changes the listing that knows `namespace` if this run has one.
    fn edit(
        &self,
        location: &Location,
        cluster: &str,
        namespace: &str,
        f: impl FnOnce(&mut Listing),
    ) {
        let key = self.key(location, cluster, namespace);
        let cell = self.map().get(&key).cloned();
        if let Some(listing) = cell.as_deref().and_then(OnceCell::get) {
            f(&mut lock(listing));
        }
    }
}

fn lock(listing: &Mutex<Listing>) -> MutexGuard<'_, Listing> {
    listing.lock().unwrap_or_else(|e| e.into_inner())
}

impl AwsDriver {
    /// The associations of a cluster, or of one namespace of it (`key`), listed once
    /// (following `nextToken` to the end).
    async fn listing(&self, location: &Location, key: &ListingKey) -> Result<CachedListing> {
        let cell = self.listings.cell(key);
        cell.get_or_try_init(|| async {
            let items = match &key.2 {
                Some(ns) => {
                    self.list_associations(location, &key.1, Some(ns), None)
                        .await?
                }
                None => self.list_associations(location, &key.1, None, None).await?,
            };
            Ok::<_, Error>(Mutex::new(items.into_iter().collect()))
        })
        .await?;
        Ok(cell)
    }

    /// Lists a cluster's associations: all, those of a namespace, or of a (namespace, service
    /// account).
    pub(super) async fn list_associations(
        &self,
        location: &Location,
        cluster: &str,
        namespace: Option<&str>,
        service_account: Option<&str>,
    ) -> Result<Vec<((String, String), String)>> {
        let resource = format!("EKS cluster {cluster}");
        let mut pages = self
            .eks(location)
            .list_pod_identity_associations()
            .cluster_name(cluster)
            .set_namespace(namespace.map(str::to_string))
            .set_service_account(service_account.map(str::to_string))
            .max_results(100)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| cloud_error(&resource, "eks:ListPodIdentityAssociations", e))?;
            for a in page.associations() {
                if let (Some(ns), Some(sa), Some(id)) =
                    (a.namespace(), a.service_account(), a.association_id())
                {
                    out.push(((ns.to_string(), sa.to_string()), id.to_string()));
                }
            }
        }
        Ok(out)
    }

    /// Refuses a cluster whose associations would exceed EKS's quota, counting those others
    /// hold there.
    pub(super) async fn check_association_quotas(
        &self,
        desired: &Graph,
        state: &State,
    ) -> Result<()> {
        // (region, cluster) → (location, idplan's wanted associations, every (ns, sa) idplan
        // knows)
        type Ours = (Location, usize, HashSet<(String, String)>);
        let mut clusters: BTreeMap<(String, String), Ours> = BTreeMap::new();
        let desired_associations = desired
            .iter()
            .filter(|r| r.node.kind() == AwsKind::EksPodIdentityAssociation.into())
            .map(|r| (&r.node.address, &r.node.location, &r.attributes, true));
        let recorded = state
            .resources
            .iter()
            .filter(|r| r.node.kind() == AwsKind::EksPodIdentityAssociation.into())
            .map(|r| (&r.node.address, &r.node.location, &r.attributes, false));
        for (address, location, attributes, wanted) in desired_associations.chain(recorded) {
            let Location::Aws { region } = location else {
                continue;
            };
            let a: AssociationAttributes = crate::provider::attributes(address, attributes)?;
            let entry = clusters
                .entry((region.clone(), a.cluster.clone()))
                .or_insert_with(|| (location.clone(), 0, HashSet::new()));
            entry.1 += usize::from(wanted);
            entry.2.insert(a.key());
        }
        for ((_, cluster), (location, wanted, ours)) in clusters {
            if wanted == 0 {
                continue;
            }
            // A run limited to some control planes counts the others of their namespaces: the
            // whole cluster's are a full plan's to count.
            let keys: BTreeSet<ListingKey> = match self.listings.limited_to.get() {
                Some(namespaces) if !namespaces.is_empty() => namespaces
                    .iter()
                    .map(|ns| self.listings.key(&location, &cluster, ns))
                    .collect(),
                _ => [(region(&location).to_string(), cluster.clone(), None)].into(),
            };
            let mut others = 0;
            for key in keys {
                let cell = self.listing(&location, &key).await?;
                others += cell
                    .get()
                    .map_or(0, |l| lock(l).keys().filter(|k| !ours.contains(*k)).count());
            }
            check_association_quota(&cluster, wanted, others).map_err(Error::user)?;
        }
        Ok(())
    }
}

/// What a create returns: the attributes EKS assigned.
#[derive(Serialize)]
struct Computed {
    association_id: String,
}

/// `aws_eks_pod_identity_association`: one per control plane and component.
pub struct Association;

impl KindDef for Association {
    fn kind(&self) -> crate::kind::Kind {
        crate::kind::Kind::Aws(crate::kind::AwsKind::EksPodIdentityAssociation)
    }

    fn identity(&self, a: &Value) -> Result<Identity> {
        let s: AssociationAttributes = attributes(self.facts().type_name, a)?;
        Ok(Identity::parts(
            [s.cluster, s.namespace, s.service_account],
            &["/", "/"],
        ))
    }

    fn computed_keys(&self) -> &'static [&'static str] {
        COMPUTED
    }

    /// An association idplan made for this space (a lost state) is taken back. Another one is
    /// taken over when it already points at the role idplan wants (its tags are its owner's);
    /// one that points elsewhere is someone else's: a conflict.
    fn adoption(&self, resource: &Resource, actual: &Value) -> Result<Adoption> {
        let desired: AssociationAttributes = attrs(resource)?;
        let found: AssociationAttributes = attributes(&resource.node.address, actual)?;
        if tags::made_for_same_space(&desired.tags, &found.tags) {
            return Ok(Adoption::Owned);
        }
        if found.role_arn != desired.role_arn {
            // JSON-quoted, as the cloud's value is shown.
            let wanted = Value::from(desired.role_arn.as_str());
            return Ok(Adoption::Conflict(format!(
                "a pod identity association for {}/{} already exists in cluster {}, pointing at {} \
                 instead of {wanted}; it was not created by idplan, so idplan leaves it alone: \
                 delete it, or point it at {wanted}",
                found.namespace, found.service_account, found.cluster, actual["role_arn"],
            )));
        }
        Ok(Adoption::Shared {
            desired: self.shared_desired(resource, actual)?,
            added: None,
        })
    }

    /// The owner's tags stay as they are.
    fn owner_keeps(&self) -> &'static [&'static str] {
        &["tags"]
    }

    /// An association recorded before idplan recorded `disable_session_tags` had them on:
    /// EKS's default, and idplan never turned them off.
    fn upgrade_recorded(&self, attributes: &mut Value) {
        if let Value::Object(map) = attributes {
            map.entry("disable_session_tags")
                .or_insert(Value::Bool(false));
        }
    }

    fn conflict_fix(&self) -> &'static str {
        "a host namespace belongs to one space: list it in one of them"
    }

    /// A new association binds a control plane's service account to the role the spec
    /// grants it; a changed one points it elsewhere.
    fn additive(&self, change: Proposed<'_>) -> bool {
        matches!(change, Proposed::Create { .. })
    }
}

/// Associations are adopted as they are: idplan added nothing to them.
impl KindOps<AwsDriver> for Association {
    /// Finds the association's id in the cluster's listing, then describes it.
    async fn read(&self, driver: &AwsDriver, r: &Resource, known: Option<&Value>) -> ReadResult {
        let a: AssociationAttributes = attrs(r)?;
        let key = a.key();
        let listing_key = driver
            .listings
            .key(&r.node.location, &a.cluster, &a.namespace);
        let cell = driver.listing(&r.node.location, &listing_key).await?;
        let listing = cell
            .get()
            .ok_or_else(|| Error::internal("a cluster's listing is made before it is read"))?;
        let listed = lock(listing).get(&key).cloned();
        let id = match listed {
            Some(id) => id,
            None if known.is_some() => {
                // The list may lag behind a create just made: ask for this one before saying
                // it is gone.
                let found = driver
                    .list_associations(&r.node.location, &a.cluster, Some(&key.0), Some(&key.1))
                    .await?;
                match found.into_iter().next() {
                    Some((k, id)) => {
                        lock(listing).insert(k, id.clone());
                        id
                    }
                    None => return Ok(None),
                }
            }
            None => return Ok(None),
        };
        let out = driver
            .eks(&r.node.location)
            .describe_pod_identity_association()
            .cluster_name(&a.cluster)
            .association_id(&id)
            .send()
            .await;
        let association = match out {
            Ok(out) => out.association().cloned(),
            Err(e) if e.code() == Some("ResourceNotFoundException") => None,
            Err(e) => {
                return Err(cloud_error(
                    &r.node.address,
                    "eks:DescribePodIdentityAssociation",
                    e,
                ));
            }
        };
        // The tags of an association idplan recorded under this id are the ones it made it
        // with: idplan never retags one (an update changes only its role and session tags).
        let recorded_tags = match known {
            Some(known) => {
                let recorded: AssociationAttributes = attributes(&r.node.address, known)?;
                (recorded.association_id.as_deref() == Some(id.as_str())).then_some(recorded.tags)
            }
            None => None,
        };
        Ok(association.map(|assoc| {
            let found = recorded_tags.unwrap_or_else(|| {
                tags::idplan_tags(
                    assoc
                        .tags()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.as_str(), v.as_str())),
                )
            });
            to_attributes(&AssociationAttributes {
                cluster: a.cluster.clone(),
                namespace: assoc.namespace().unwrap_or_default().to_string(),
                service_account: assoc.service_account().unwrap_or_default().to_string(),
                role_arn: assoc.role_arn().unwrap_or_default().to_string(),
                tags: found,
                disable_session_tags: assoc.disable_session_tags().unwrap_or(false),
                association_id: Some(id),
            })
        }))
    }

    async fn create(&self, driver: &AwsDriver, r: &Resource) -> Result<Option<Value>> {
        let a: AssociationAttributes = attrs(r)?;
        let create = driver
            .eks(&r.node.location)
            .create_pod_identity_association()
            .cluster_name(&a.cluster)
            .namespace(&a.namespace)
            .service_account(&a.service_account)
            .role_arn(&a.role_arn)
            .disable_session_tags(a.disable_session_tags)
            .set_tags(Some(a.tags.clone().into_iter().collect()));
        let out = sent(r, "eks:CreatePodIdentityAssociation", create.send()).await?;
        let id = out
            .association()
            .and_then(|assoc| assoc.association_id())
            .ok_or_else(|| Error::Cloud {
                resource: r.node.address.to_string(),
                api: "eks:CreatePodIdentityAssociation".into(),
                message: "no association id in the answer".into(),
            })?
            .to_string();
        driver
            .listings
            .edit(&r.node.location, &a.cluster, &a.namespace, |listing| {
                listing.insert(a.key(), id.clone());
            });
        Ok(Some(to_attributes(&Computed { association_id: id })))
    }

    /// Points an association at another role, or turns its session tags back on, in place:
    /// its id and its pods' credentials stay.
    async fn update(&self, driver: &AwsDriver, r: &Resource, actual: &Value) -> Result<()> {
        let a: AssociationAttributes = attrs(r)?;
        let actual: AssociationAttributes = attributes(&r.node.address, actual)?;
        if a.role_arn != actual.role_arn || a.disable_session_tags != actual.disable_session_tags {
            let update = driver
                .eks(&r.node.location)
                .update_pod_identity_association()
                .cluster_name(&a.cluster)
                .set_association_id(actual.association_id)
                .role_arn(&a.role_arn)
                .disable_session_tags(a.disable_session_tags);
            sent(r, "eks:UpdatePodIdentityAssociation", update.send()).await?;
        }
        Ok(())
    }

    async fn delete(&self, driver: &AwsDriver, r: &Resource) -> Result<()> {
        let a: AssociationAttributes = attrs(r)?;
        let result = driver
            .eks(&r.node.location)
            .delete_pod_identity_association()
            .cluster_name(&a.cluster)
            .set_association_id(a.association_id.clone())
            .send()
            .await;
        match result {
            Err(e) if e.code() != Some("ResourceNotFoundException") => {
                return Err(cloud_error(
                    &r.node.address,
                    "eks:DeletePodIdentityAssociation",
                    e,
                ));
            }
            _ => {}
        }
        driver
            .listings
            .edit(&r.node.location, &a.cluster, &a.namespace, |listing| {
                listing.remove(&a.key());
            });
        Ok(())
    }
}
