//! The AWS driver: IAM roles, inline policies and OIDC providers; EKS for the cluster issuer;
//! STS for the account. Retries with backoff and jitter are the SDK's standard retry mode.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types::Tag;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::Adoption;
use crate::error::{Error, Result};
use crate::graph::{Kind, Location, Resource};
use crate::policy;
use crate::recipe::aws::{AwsContext, MANAGED_BY, STS_AUDIENCE, issuer_host_path};

/// Tag keys idplan sets; only these are compared and changed.
fn is_idplan_tag(key: &str) -> bool {
    key == MANAGED_BY.0 || key.starts_with("idplan/")
}

#[derive(Clone)]
struct Clients {
    iam: aws_sdk_iam::Client,
    eks: aws_sdk_eks::Client,
    sts: aws_sdk_sts::Client,
}

/// A cluster's pod identity associations by (namespace, service account): their ids.
type Listing = HashMap<(String, String), String>;
/// A listing made once per run, on first use.
type CachedListing = Arc<OnceCell<Mutex<Listing>>>;

pub struct AwsDriver {
    /// One SDK configuration (credentials chain, HTTP client) shared by all clients.
    config: aws_config::SdkConfig,
    clients: Mutex<HashMap<String, Clients>>,
    caller: OnceCell<(String, String)>,
    /// Each cluster's associations, listed once per run (EKS's list has no role: see `read`)
    /// and kept current by idplan's own writes.
    listings: Mutex<HashMap<(String, String), CachedListing>>,
}

impl AwsDriver {
    pub async fn new() -> AwsDriver {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            // Throttling and transient errors: the SDK retries with exponential backoff and
            // jitter; five attempts ride out a burst without hiding an outage for long.
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5))
            .load()
            .await;
        AwsDriver {
            config,
            clients: Mutex::new(HashMap::new()),
            caller: OnceCell::new(),
            listings: Mutex::new(HashMap::new()),
        }
    }

    /// Clients for a region (the spec's region wins over the environment's); made once and
    /// shared, with one connection pool.
    fn clients(&self, region: &str) -> Clients {
        let mut clients = self.clients.lock().expect("client cache lock");
        clients
            .entry(region.to_string())
            .or_insert_with(|| {
                let config = self
                    .config
                    .to_builder()
                    .region(aws_config::Region::new(region.to_string()))
                    .build();
                let stats = crate::stats::AwsCalls;
                Clients {
                    iam: aws_sdk_iam::Client::from_conf(
                        aws_sdk_iam::config::Builder::from(&config)
                            .interceptor(stats)
                            .build(),
                    ),
                    eks: aws_sdk_eks::Client::from_conf(
                        aws_sdk_eks::config::Builder::from(&config)
                            .interceptor(stats)
                            .build(),
                    ),
                    sts: aws_sdk_sts::Client::from_conf(
                        aws_sdk_sts::config::Builder::from(&config)
                            .interceptor(stats)
                            .build(),
                    ),
                }
            })
            .clone()
    }

    fn iam(&self, location: &Location) -> aws_sdk_iam::Client {
        let region = aws_region(location);
        self.clients(region).iam
    }

    fn eks(&self, location: &Location) -> aws_sdk_eks::Client {
        let region = aws_region(location);
        self.clients(region).eks
    }

    /// Forgets every listing, so the next read lists again (apply re-reads what the plan read).
    pub fn refresh(&self) {
        self.listings.lock().expect("listing cache lock").clear();
    }

    /// The associations of a cluster, listed once (following `nextToken` to the end).
    async fn listing(&self, location: &Location, cluster: &str) -> Result<CachedListing> {
        let region = aws_region(location);
        let cell = self
            .listings
            .lock()
            .expect("listing cache lock")
            .entry((region.to_string(), cluster.to_string()))
            .or_default()
            .clone();
        cell.get_or_try_init(|| async {
            let items = self.list_associations(location, cluster, None).await?;
            Ok::<_, Error>(Mutex::new(items.into_iter().collect()))
        })
        .await?;
        Ok(cell)
    }

    /// Lists a cluster's associations, all or those of one (namespace, service account).
    async fn list_associations(
        &self,
        location: &Location,
        cluster: &str,
        only: Option<(&str, &str)>,
    ) -> Result<Vec<((String, String), String)>> {
        let resource = format!("EKS cluster {cluster}");
        let mut pages = self
            .eks(location)
            .list_pod_identity_associations()
            .cluster_name(cluster)
            .set_namespace(only.map(|o| o.0.to_string()))
            .set_service_account(only.map(|o| o.1.to_string()))
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

    /// How many associations the cluster holds that are not in `ours`, for the quota check.
    pub async fn foreign_associations(
        &self,
        location: &Location,
        cluster: &str,
        ours: &std::collections::HashSet<(String, String)>,
    ) -> Result<usize> {
        let cell = self.listing(location, cluster).await?;
        let listing = cell.get().expect("listed").lock().expect("listing lock");
        Ok(listing.keys().filter(|k| !ours.contains(*k)).count())
    }

    /// The account, partition and cluster issuer that a space's resources are named after.
    pub async fn context(&self, region: &str, cluster: &str) -> Result<AwsContext> {
        let (account_id, partition) = self
            .caller
            .get_or_try_init(|| async {
                let me = self
                    .clients(region)
                    .sts
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| cloud_error("AWS account", "sts:GetCallerIdentity", e))?;
                let account = me.account().unwrap_or_default().to_string();
                // arn:<partition>:sts::<account>:...
                let partition = me
                    .arn()
                    .and_then(|arn| arn.split(':').nth(1))
                    .unwrap_or("aws")
                    .to_string();
                Ok::<_, Error>((account, partition))
            })
            .await?
            .clone();
        let eks = self.clients(region).eks;
        let resource = format!("EKS cluster {cluster} ({region})");
        let out = eks
            .describe_cluster()
            .name(cluster)
            .send()
            .await
            .map_err(|e| cloud_error(&resource, "eks:DescribeCluster", e))?;
        // Only IRSA needs the issuer; the recipe refuses an IRSA space without one.
        let issuer = out
            .cluster()
            .and_then(|c| c.identity())
            .and_then(|i| i.oidc())
            .and_then(|o| o.issuer())
            .map(|issuer| issuer_host_path(issuer).to_string())
            .unwrap_or_default();
        Ok(AwsContext {
            account_id,
            partition,
            issuer,
        })
    }

    /// What the cloud holds for `r`. `known` is what the state recorded for it, if anything.
    pub async fn read(&self, r: &Resource, known: Option<&Value>) -> Result<Option<Value>> {
        let iam = self.iam(&r.location);
        let a = &r.attributes;
        match r.kind {
            Kind::AwsEksPodIdentityAssociation => self.read_association(r, known).await,
            Kind::AwsIamOpenidConnectProvider => {
                let arn = str_attr(a, "arn");
                match iam
                    .get_open_id_connect_provider()
                    .open_id_connect_provider_arn(arn)
                    .send()
                    .await
                {
                    Ok(out) => {
                        let mut client_ids: Vec<&str> = out
                            .client_id_list()
                            .iter()
                            .map(String::as_str)
                            .filter(|id| *id == STS_AUDIENCE)
                            .collect();
                        client_ids.dedup();
                        Ok(Some(json!({
                            "arn": arn,
                            "url": issuer_host_path(out.url().unwrap_or_default()),
                            "client_ids": client_ids,
                            "tags": idplan_tags(out.tags()),
                        })))
                    }
                    Err(e) if is_no_such_entity(&e) => Ok(None),
                    Err(e) => Err(cloud_error(&r.address, "iam:GetOpenIDConnectProvider", e)),
                }
            }
            Kind::AwsIamRole => {
                let name = str_attr(a, "name");
                match iam.get_role().role_name(name).send().await {
                    Ok(out) => {
                        let Some(role) = out.role() else {
                            return Ok(None);
                        };
                        let trust =
                            match role.assume_role_policy_document() {
                                Some(doc) => policy::normalize(
                                    &policy::parse_returned(doc).map_err(|m| Error::Cloud {
                                        resource: r.address.to_string(),
                                        api: "iam:GetRole",
                                        message: m,
                                    })?,
                                ),
                                None => Value::Null,
                            };
                        Ok(Some(json!({
                            "name": role.role_name(),
                            "arn": role.arn(),
                            "path": role.path(),
                            "description": role.description().unwrap_or_default(),
                            "assume_role_policy": trust,
                            "tags": idplan_tags(role.tags()),
                        })))
                    }
                    Err(e) if is_no_such_entity(&e) => Ok(None),
                    Err(e) => Err(cloud_error(&r.address, "iam:GetRole", e)),
                }
            }
            Kind::AwsIamRolePolicy => {
                let (role, name) = (str_attr(a, "role"), str_attr(a, "name"));
                match iam
                    .get_role_policy()
                    .role_name(role)
                    .policy_name(name)
                    .send()
                    .await
                {
                    Ok(out) => {
                        let doc = policy::parse_returned(out.policy_document()).map_err(|m| {
                            Error::Cloud {
                                resource: r.address.to_string(),
                                api: "iam:GetRolePolicy",
                                message: m,
                            }
                        })?;
                        Ok(Some(json!({
                            "role": out.role_name(),
                            "name": out.policy_name(),
                            "policy": policy::normalize(&doc),
                        })))
                    }
                    Err(e) if is_no_such_entity(&e) => Ok(None),
                    Err(e) => Err(cloud_error(&r.address, "iam:GetRolePolicy", e)),
                }
            }
            _ => Err(not_aws(r)),
        }
    }

    /// Creates `r`; returns the attributes the cloud assigned (see `graph::computed_keys`).
    pub async fn create(&self, r: &Resource) -> Result<Value> {
        let iam = self.iam(&r.location);
        let a = &r.attributes;
        match r.kind {
            Kind::AwsEksPodIdentityAssociation => return self.create_association(r).await,
            Kind::AwsIamOpenidConnectProvider => {
                iam.create_open_id_connect_provider()
                    .url(format!("https://{}", str_attr(a, "url")))
                    .set_client_id_list(Some(strings(&a["client_ids"])))
                    .set_tags(Some(tags(&a["tags"])))
                    .send()
                    .await
                    .map_err(|e| cloud_error(&r.address, "iam:CreateOpenIDConnectProvider", e))?;
            }
            Kind::AwsIamRole => {
                iam.create_role()
                    .role_name(str_attr(a, "name"))
                    .path(str_attr(a, "path"))
                    .description(str_attr(a, "description"))
                    .assume_role_policy_document(a["assume_role_policy"].to_string())
                    .set_tags(Some(tags(&a["tags"])))
                    .send()
                    .await
                    .map_err(|e| cloud_error(&r.address, "iam:CreateRole", e))?;
            }
            Kind::AwsIamRolePolicy => self.put_role_policy(r).await?,
            _ => return Err(not_aws(r)),
        }
        Ok(json!({}))
    }

    /// Brings `actual` to `r.attributes`, one API call per attribute that differs.
    pub async fn update(&self, r: &Resource, actual: &Value) -> Result<()> {
        let iam = self.iam(&r.location);
        let a = &r.attributes;
        match r.kind {
            Kind::AwsEksPodIdentityAssociation => self.update_association(r, actual).await?,
            Kind::AwsIamOpenidConnectProvider => {
                let arn = str_attr(a, "arn");
                for id in strings(&a["client_ids"]) {
                    if !strings(&actual["client_ids"]).contains(&id) {
                        iam.add_client_id_to_open_id_connect_provider()
                            .open_id_connect_provider_arn(arn)
                            .client_id(id)
                            .send()
                            .await
                            .map_err(|e| {
                                cloud_error(&r.address, "iam:AddClientIDToOpenIDConnectProvider", e)
                            })?;
                    }
                }
                let (set, unset) = tag_changes(&a["tags"], &actual["tags"]);
                if !set.is_empty() {
                    iam.tag_open_id_connect_provider()
                        .open_id_connect_provider_arn(arn)
                        .set_tags(Some(set))
                        .send()
                        .await
                        .map_err(|e| cloud_error(&r.address, "iam:TagOpenIDConnectProvider", e))?;
                }
                if !unset.is_empty() {
                    iam.untag_open_id_connect_provider()
                        .open_id_connect_provider_arn(arn)
                        .set_tag_keys(Some(unset))
                        .send()
                        .await
                        .map_err(|e| {
                            cloud_error(&r.address, "iam:UntagOpenIDConnectProvider", e)
                        })?;
                }
            }
            Kind::AwsIamRole => {
                let name = str_attr(a, "name");
                if a["assume_role_policy"] != actual["assume_role_policy"] {
                    iam.update_assume_role_policy()
                        .role_name(name)
                        .policy_document(a["assume_role_policy"].to_string())
                        .send()
                        .await
                        .map_err(|e| cloud_error(&r.address, "iam:UpdateAssumeRolePolicy", e))?;
                }
                if a["description"] != actual["description"] {
                    iam.update_role()
                        .role_name(name)
                        .description(str_attr(a, "description"))
                        .send()
                        .await
                        .map_err(|e| cloud_error(&r.address, "iam:UpdateRole", e))?;
                }
                let (set, unset) = tag_changes(&a["tags"], &actual["tags"]);
                if !set.is_empty() {
                    iam.tag_role()
                        .role_name(name)
                        .set_tags(Some(set))
                        .send()
                        .await
                        .map_err(|e| cloud_error(&r.address, "iam:TagRole", e))?;
                }
                if !unset.is_empty() {
                    iam.untag_role()
                        .role_name(name)
                        .set_tag_keys(Some(unset))
                        .send()
                        .await
                        .map_err(|e| cloud_error(&r.address, "iam:UntagRole", e))?;
                }
            }
            Kind::AwsIamRolePolicy => self.put_role_policy(r).await?,
            _ => return Err(not_aws(r)),
        }
        Ok(())
    }

    async fn put_role_policy(&self, r: &Resource) -> Result<()> {
        let a = &r.attributes;
        self.iam(&r.location)
            .put_role_policy()
            .role_name(str_attr(a, "role"))
            .policy_name(str_attr(a, "name"))
            .policy_document(a["policy"].to_string())
            .send()
            .await
            .map_err(|e| cloud_error(&r.address, "iam:PutRolePolicy", e))?;
        Ok(())
    }

    /// Deletes a resource idplan created; one that is already gone counts as deleted.
    pub async fn delete(&self, r: &Resource) -> Result<()> {
        let iam = self.iam(&r.location);
        let a = &r.attributes;
        match r.kind {
            Kind::AwsEksPodIdentityAssociation => self.delete_association(r).await,
            Kind::AwsIamOpenidConnectProvider => gone_is_ok(
                &r.address,
                "iam:DeleteOpenIDConnectProvider",
                iam.delete_open_id_connect_provider()
                    .open_id_connect_provider_arn(str_attr(a, "arn"))
                    .send()
                    .await,
            ),
            Kind::AwsIamRole => gone_is_ok(
                &r.address,
                "iam:DeleteRole",
                iam.delete_role()
                    .role_name(str_attr(a, "name"))
                    .send()
                    .await,
            ),
            Kind::AwsIamRolePolicy => gone_is_ok(
                &r.address,
                "iam:DeleteRolePolicy",
                iam.delete_role_policy()
                    .role_name(str_attr(a, "role"))
                    .policy_name(str_attr(a, "name"))
                    .send()
                    .await,
            ),
            _ => Err(not_aws(r)),
        }
    }

    /// EKS lists associations without their role, so a read answers from the cluster's listing:
    /// an association idplan recorded, under the id it recorded, is what idplan made (its role
    /// changes only through idplan); any other one is described to learn its role and tags.
    async fn read_association(&self, r: &Resource, known: Option<&Value>) -> Result<Option<Value>> {
        let a = &r.attributes;
        let (cluster, key) = association_key(a);
        let cell = self.listing(&r.location, cluster).await?;
        let listed = cell
            .get()
            .expect("listed")
            .lock()
            .expect("listing lock")
            .get(&key)
            .cloned();
        let id = match listed {
            Some(id) => id,
            None if known.is_some() => {
                // The list may lag behind a create just made: ask for this one before saying
                // it is gone.
                let found = self
                    .list_associations(&r.location, cluster, Some((&key.0, &key.1)))
                    .await?;
                match found.into_iter().next() {
                    Some((k, id)) => {
                        let mut listing = cell.get().expect("listed").lock().expect("listing lock");
                        listing.insert(k, id.clone());
                        id
                    }
                    None => return Ok(None),
                }
            }
            None => return Ok(None),
        };
        if let Some(known) = known
            && known["association_id"].as_str() == Some(id.as_str())
        {
            return Ok(Some(known.clone()));
        }
        let out = self
            .eks(&r.location)
            .describe_pod_identity_association()
            .cluster_name(cluster)
            .association_id(&id)
            .send()
            .await;
        let association = match out {
            Ok(out) => out.association().cloned(),
            Err(e) if e.code() == Some("ResourceNotFoundException") => None,
            Err(e) => {
                return Err(cloud_error(
                    &r.address,
                    "eks:DescribePodIdentityAssociation",
                    e,
                ));
            }
        };
        Ok(association.map(|assoc| {
            let tags: BTreeMap<&str, &str> = assoc
                .tags()
                .into_iter()
                .flatten()
                .filter(|(k, _)| is_idplan_tag(k))
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            json!({
                "cluster": cluster,
                "namespace": assoc.namespace().unwrap_or_default(),
                "service_account": assoc.service_account().unwrap_or_default(),
                "role_arn": assoc.role_arn().unwrap_or_default(),
                "tags": tags,
                "association_id": id,
            })
        }))
    }

    async fn create_association(&self, r: &Resource) -> Result<Value> {
        let a = &r.attributes;
        let (cluster, key) = association_key(a);
        let tags: HashMap<String, String> = a["tags"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect();
        let out = self
            .eks(&r.location)
            .create_pod_identity_association()
            .cluster_name(cluster)
            .namespace(&key.0)
            .service_account(&key.1)
            .role_arn(str_attr(a, "role_arn"))
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| cloud_error(&r.address, "eks:CreatePodIdentityAssociation", e))?;
        let id = out
            .association()
            .and_then(|assoc| assoc.association_id())
            .unwrap_or_default()
            .to_string();
        if let Some(cell) = self.cached_listing(&r.location, cluster) {
            let listing = cell.get().expect("initialized");
            listing
                .lock()
                .expect("listing lock")
                .insert(key, id.clone());
        }
        Ok(json!({ "association_id": id }))
    }

    /// Points an association at another role, in place: its id and its pods' credentials
    /// stay.
    async fn update_association(&self, r: &Resource, actual: &Value) -> Result<()> {
        let a = &r.attributes;
        if a["role_arn"] != actual["role_arn"] {
            self.eks(&r.location)
                .update_pod_identity_association()
                .cluster_name(str_attr(a, "cluster"))
                .association_id(str_attr(actual, "association_id"))
                .role_arn(str_attr(a, "role_arn"))
                .send()
                .await
                .map_err(|e| cloud_error(&r.address, "eks:UpdatePodIdentityAssociation", e))?;
        }
        Ok(())
    }

    async fn delete_association(&self, r: &Resource) -> Result<()> {
        let a = &r.attributes;
        let (cluster, key) = association_key(a);
        let result = self
            .eks(&r.location)
            .delete_pod_identity_association()
            .cluster_name(cluster)
            .association_id(str_attr(a, "association_id"))
            .send()
            .await;
        match result {
            Err(e) if e.code() != Some("ResourceNotFoundException") => {
                return Err(cloud_error(
                    &r.address,
                    "eks:DeletePodIdentityAssociation",
                    e,
                ));
            }
            _ => {}
        }
        if let Some(cell) = self.cached_listing(&r.location, cluster) {
            let listing = cell.get().expect("initialized");
            listing.lock().expect("listing lock").remove(&key);
        }
        Ok(())
    }

    /// The listing of a cluster if this run has one.
    fn cached_listing(&self, location: &Location, cluster: &str) -> Option<CachedListing> {
        let region = aws_region(location);
        let cell = self
            .listings
            .lock()
            .expect("listing cache lock")
            .get(&(region.to_string(), cluster.to_string()))
            .cloned()?;
        cell.initialized().then_some(cell)
    }

    /// Takes back what idplan added to an adopted OIDC provider: its client id.
    pub async fn release(&self, r: &Resource, added: &Value) -> Result<()> {
        let iam = self.iam(&r.location);
        for id in strings(&added["client_ids"]) {
            gone_is_ok(
                &r.address,
                "iam:RemoveClientIDFromOpenIDConnectProvider",
                iam.remove_client_id_from_open_id_connect_provider()
                    .open_id_connect_provider_arn(str_attr(&r.attributes, "arn"))
                    .client_id(id)
                    .send()
                    .await,
            )?;
        }
        Ok(())
    }
}

/// An association idplan did not make is taken over when it already points at the role idplan
/// wants (its tags are its owner's); one that points elsewhere is someone else's: a conflict.
pub fn adopt_association(resource: &Resource, actual: &Value) -> Adoption {
    let wanted = &resource.attributes["role_arn"];
    if actual["role_arn"] != *wanted {
        return Adoption::Conflict(format!(
            "a pod identity association for {}/{} already exists in cluster {}, pointing at {} \
             instead of {wanted}; it was not created by idplan, so idplan leaves it alone: \
             delete it, or point it at {wanted}",
            str_attr(actual, "namespace"),
            str_attr(actual, "service_account"),
            str_attr(actual, "cluster"),
            actual["role_arn"],
        ));
    }
    Adoption::Shared {
        desired: super::shared_desired(resource, actual),
        added: None,
    }
}

/// An existing provider that this state did not create (eksctl made it, or another idplan
/// state) is shared: idplan never tags or deletes it, and only adds the `sts.amazonaws.com` client id when it is missing.
pub fn adopt_provider(resource: &Resource, actual: &Value) -> Adoption {
    let has_sts = strings(&actual["client_ids"])
        .iter()
        .any(|c| c == STS_AUDIENCE);
    Adoption::Shared {
        desired: super::shared_desired(resource, actual),
        added: (!has_sts).then(|| json!({ "client_ids": [STS_AUDIENCE] })),
    }
}

/// An association's cluster and (namespace, service account).
fn association_key(a: &Value) -> (&str, (String, String)) {
    (
        str_attr(a, "cluster"),
        (
            str_attr(a, "namespace").to_string(),
            str_attr(a, "service_account").to_string(),
        ),
    )
}

/// The region of an AWS location (`Clouds` only gives this driver AWS resources).
fn aws_region(location: &Location) -> &str {
    match location {
        Location::Aws { region } => region,
        Location::Azure { .. } | Location::Gcp { .. } => "",
    }
}

/// A resource of another cloud was given to the AWS driver: a bug, reported, not a panic.
fn not_aws(r: &Resource) -> Error {
    Error::user(format!("internal: {} is not an AWS resource", r.address))
}

fn str_attr<'a>(attributes: &'a Value, key: &str) -> &'a str {
    attributes[key].as_str().unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn idplan_tags(tags: &[Tag]) -> Value {
    let map: BTreeMap<&str, &str> = tags
        .iter()
        .filter(|t| is_idplan_tag(t.key()))
        .map(|t| (t.key(), t.value()))
        .collect();
    json!(map)
}

fn tags(v: &Value) -> Vec<Tag> {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v.as_str()?).build().ok())
        .collect()
}

/// Tags to set and idplan tag keys to remove so that `actual` becomes `desired`.
fn tag_changes(desired: &Value, actual: &Value) -> (Vec<Tag>, Vec<String>) {
    let set = tags(desired)
        .into_iter()
        .filter(|t| actual[t.key()].as_str() != Some(t.value()))
        .collect();
    let unset = actual
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
        .filter(|k| desired.get(k.as_str()).is_none())
        .cloned()
        .collect();
    (set, unset)
}

/// A delete of something already gone has done its job.
fn gone_is_ok<T, E, R>(
    resource: &str,
    api: &'static str,
    result: Result<T, SdkError<E, R>>,
) -> Result<()>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match result {
        Err(e) if !is_no_such_entity(&e) => Err(cloud_error(resource, api, e)),
        _ => Ok(()),
    }
}

fn is_no_such_entity<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.code() == Some("NoSuchEntity")
}

/// A failed call, named by resource and API, with the cloud's own code and message.
fn cloud_error<E, R>(resource: &str, api: &'static str, e: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let message = match (&e, e.code(), e.message()) {
        (SdkError::ServiceError(_), Some(code), Some(msg)) => format!("{code}: {msg}"),
        (SdkError::ServiceError(_), Some(code), None) => code.to_string(),
        _ => super::causes(&e),
    };
    Error::Cloud {
        resource: resource.to_string(),
        api,
        message,
    }
}
