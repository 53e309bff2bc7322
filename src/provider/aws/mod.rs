//! The AWS driver: IAM roles, inline policies and OIDC providers; EKS for the cluster issuer
//! and pod identity associations; STS for the account. Retries with backoff and jitter are the
//! SDK's standard retry mode.

pub mod association;
pub mod context;
pub mod oidc;
pub mod role;
pub mod survey;

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types::Tag;
use futures::{StreamExt, TryStreamExt, stream};

use tokio::sync::OnceCell;

use super::tags::{self, Tags};
use super::{Call, Driver, KindCalls, attributes_of};
use crate::error::{Error, Result};
use crate::graph::{Graph, Kind, Location, Resource};
pub use crate::kind::AwsKind;
use crate::note::Note;
use crate::state::State;
use crate::transport::aws::retry_partition;
use context::{AwsContext, issuer_host_path};

/// Adopted roles read at a time for their other policies.
const ADOPTED_READS: usize = 8;

#[derive(Clone)]
struct Clients {
    iam: aws_sdk_iam::Client,
    eks: aws_sdk_eks::Client,
    sts: aws_sdk_sts::Client,
}

pub struct AwsDriver {
    /// One SDK configuration (credentials chain, HTTP client) shared by all clients.
    config: aws_config::SdkConfig,
    clients: Mutex<HashMap<String, Clients>>,
    caller: OnceCell<(String, String)>,
    /// Each cluster's pod identity associations, listed once per run.
    listings: association::Listings,
}

impl AwsDriver {
    /// A note per role that has policies idplan does not manage.
    async fn unmanaged_policy_notes(&self, roles: Vec<Resource>) -> Result<Vec<Note>> {
        let notes: Vec<Option<Note>> = stream::iter(roles)
            .map(|r| async move {
                let others = role::unmanaged_policies(&self.iam(&r.node.location), &r).await?;
                Ok::<_, Error>((!others.is_empty()).then(|| {
                    Note::remark(format!(
                        "{}: the role keeps permissions idplan does not manage, left as they \
                         are: {}",
                        r.node.address,
                        others.join(", ")
                    ))
                }))
            })
            .buffered(ADOPTED_READS)
            .try_collect()
            .await?;
        Ok(notes.into_iter().flatten().collect())
    }

    pub async fn new() -> AwsDriver {
        let config = crate::transport::aws::config(crate::transport::aws::DRIVER_ATTEMPTS).await;
        AwsDriver {
            config,
            clients: Mutex::new(HashMap::new()),
            caller: OnceCell::new(),
            listings: association::Listings::default(),
        }
    }

    /// Clients for a region (the spec's region wins over the environment's); made once and
    /// shared, with one connection pool.
    fn clients(&self, region: &str) -> Clients {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
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
                            .retry_partition(retry_partition(format!("idplan-iam-{region}")))
                            .interceptor(stats)
                            .build(),
                    ),
                    eks: aws_sdk_eks::Client::from_conf(
                        aws_sdk_eks::config::Builder::from(&config)
                            .retry_partition(retry_partition(format!("idplan-eks-{region}")))
                            .interceptor(stats)
                            .build(),
                    ),
                    sts: aws_sdk_sts::Client::from_conf(
                        aws_sdk_sts::config::Builder::from(&config)
                            .retry_partition(retry_partition(format!("idplan-sts-{region}")))
                            .interceptor(stats)
                            .build(),
                    ),
                }
            })
            .clone()
    }

    pub(crate) fn iam(&self, location: &Location) -> aws_sdk_iam::Client {
        self.clients(region(location)).iam
    }

    fn eks(&self, location: &Location) -> aws_sdk_eks::Client {
        self.clients(region(location)).eks
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
        let cluster_arn = out
            .cluster()
            .and_then(|c| c.arn())
            .map(str::to_string)
            .unwrap_or_else(|| context::cluster_arn(&partition, region, &account_id, cluster));
        Ok(AwsContext {
            account_id,
            partition,
            issuer,
            cluster_arn,
        })
    }
}

impl AwsKind {
    /// Where each kind is declared.
    pub fn def(self) -> &'static dyn KindCalls<AwsDriver> {
        match self {
            AwsKind::IamOpenidConnectProvider => &oidc::Provider,
            AwsKind::IamRole => &role::Role,
            AwsKind::IamRolePolicy => &role::RolePolicy,
            AwsKind::EksPodIdentityAssociation => &association::Association,
        }
    }
}

impl Driver for AwsDriver {
    const CLOUD: &'static str = "AWS";

    fn kind_calls(kind: Kind) -> Option<&'static dyn KindCalls<AwsDriver>> {
        match kind {
            Kind::Aws(kind) => Some(kind.def()),
            Kind::Azure(_) | Kind::Gcp(_) => None,
        }
    }

    fn refresh(&self) {
        self.listings.clear();
    }

    /// Pod identity associations are listed per namespace: one call each.
    fn limit_to(&self, namespaces: &std::collections::BTreeSet<String>) {
        self.listings.limit_to(namespaces);
    }

    fn check_limits<'a>(&'a self, desired: &'a Graph, state: &'a State) -> Call<'a, ()> {
        Box::pin(self.check_association_quotas(desired, state))
    }

    /// An adopted role's other policies: idplan adds its own and leaves them alone.
    fn adopted_notes<'a>(&'a self, adopted: &'a [Resource]) -> Call<'a, Vec<Note>> {
        let roles: Vec<Resource> = adopted
            .iter()
            .filter(|r| r.node.kind() == AwsKind::IamRole.into())
            .cloned()
            .collect();
        Box::pin(self.unmanaged_policy_notes(roles))
    }
}

/// The typed attributes of an AWS resource.
fn attrs<T: serde::de::DeserializeOwned>(r: &Resource) -> Result<T> {
    attributes_of(r)
}

/// The region of an AWS location (`Clouds` only gives this driver AWS resources).
fn region(location: &Location) -> &str {
    match location {
        Location::Aws { region } => region,
        Location::Azure { .. } | Location::Gcp { .. } => "",
    }
}

/// idplan's tags among a resource's IAM tags.
fn idplan_tags(tags: &[Tag]) -> Tags {
    tags::idplan_tags(tags.iter().map(|t| (t.key(), t.value())))
}

fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

/// Tags to set and idplan tag keys to remove so that `actual` becomes `desired`.
fn tag_changes(desired: &Tags, actual: &Tags) -> (Vec<Tag>, Vec<String>) {
    let set: Tags = desired
        .iter()
        .filter(|(k, v)| actual.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let unset = actual
        .keys()
        .filter(|k| !desired.contains_key(*k))
        .cloned()
        .collect();
    (sdk_tags(&set), unset)
}

/// The answer of an SDK call sent for a resource, or idplan's error naming the resource, the
/// API and AWS's message: each call is its builder chain and this.
async fn sent<T, E, R>(
    r: &Resource,
    api: &'static str,
    call: impl Future<Output = Result<T, SdkError<E, R>>>,
) -> Result<T>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    call.await.map_err(|e| cloud_error(&r.node.address, api, e))
}

/// What a read answered; `None` for something IAM does not hold (`NoSuchEntity`).
async fn found<T, E, R>(
    r: &Resource,
    api: &'static str,
    call: impl Future<Output = Result<T, SdkError<E, R>>>,
) -> Result<Option<T>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match call.await {
        Ok(out) => Ok(Some(out)),
        Err(e) if is_no_such_entity(&e) => Ok(None),
        Err(e) => Err(cloud_error(&r.node.address, api, e)),
    }
}

/// Brings idplan's IAM tags of a resource from `actual` to `desired`: `tag` sets those that
/// differ, `untag` removes idplan's keys that are no longer desired, each called only when
/// there is something to do.
async fn retag<T, U, O, P>(
    desired: &Tags,
    actual: &Tags,
    tag: impl FnOnce(Vec<Tag>) -> T,
    untag: impl FnOnce(Vec<String>) -> U,
) -> Result<()>
where
    T: Future<Output = Result<O>>,
    U: Future<Output = Result<P>>,
{
    let (set, unset) = tag_changes(desired, actual);
    if !set.is_empty() {
        tag(set).await?;
    }
    if !unset.is_empty() {
        untag(unset).await?;
    }
    Ok(())
}

/// A delete of something already gone has done its job.
async fn gone_is_ok<T, E, R>(
    r: &Resource,
    api: &'static str,
    call: impl Future<Output = Result<T, SdkError<E, R>>>,
) -> Result<()>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    found(r, api, call).await.map(drop)
}

fn is_no_such_entity<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.code() == Some("NoSuchEntity")
}

/// What to do when the SDK's chain found no credentials.
const NO_CREDENTIALS: &str = "no AWS credentials: run `aws configure` (access keys) or `aws sso \
     login` (IAM Identity Center), or set AWS_PROFILE to a configured profile; in CI, a web \
     identity (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE)";

/// A failed call, named by resource and API, with the cloud's own code and message.
fn cloud_error<E, R>(
    resource: impl std::fmt::Display,
    api: &'static str,
    e: SdkError<E, R>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let exists = matches!(
        e.code(),
        Some("EntityAlreadyExists" | "ResourceInUseException")
    );
    let message = match (&e, e.code(), e.message()) {
        (SdkError::ServiceError(_), Some(code), Some(msg)) => format!("{code}: {msg}"),
        (SdkError::ServiceError(_), Some(code), None) => code.to_string(),
        (SdkError::DispatchFailure(_), _, _)
            if crate::transport::causes(&e).contains("credentials") =>
        {
            format!("{NO_CREDENTIALS} ({})", crate::transport::causes(&e))
        }
        _ => crate::transport::causes(&e),
    };
    Error::Cloud {
        resource: resource.to_string(),
        api: api.into(),
        message,
    }
    .exists_if(exists)
}
