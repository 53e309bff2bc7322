//! The AWS driver: IAM roles, inline policies and OIDC providers; EKS for the cluster issuer;
//! STS for the account. Retries with backoff and jitter are the SDK's standard retry mode.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

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

pub struct AwsDriver {
    /// One SDK configuration (credentials chain, HTTP client) shared by all clients.
    config: aws_config::SdkConfig,
    clients: Mutex<HashMap<String, Clients>>,
    caller: OnceCell<(String, String)>,
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
                Clients {
                    iam: aws_sdk_iam::Client::new(&config),
                    eks: aws_sdk_eks::Client::new(&config),
                    sts: aws_sdk_sts::Client::new(&config),
                }
            })
            .clone()
    }

    fn iam(&self, location: &Location) -> aws_sdk_iam::Client {
        let Location::Aws { region } = location;
        self.clients(region).iam
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
        let issuer = out
            .cluster()
            .and_then(|c| c.identity())
            .and_then(|i| i.oidc())
            .and_then(|o| o.issuer())
            .ok_or_else(|| {
                Error::user(format!(
                    "{resource} has no OIDC issuer; IRSA needs one (it is created with the cluster \
                     on EKS 1.13 and later)"
                ))
            })?;
        Ok(AwsContext {
            account_id,
            partition,
            issuer: issuer_host_path(issuer).to_string(),
        })
    }

    pub async fn read(&self, r: &Resource) -> Result<Option<Value>> {
        let iam = self.iam(&r.location);
        let a = &r.attributes;
        match r.kind {
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
                                        resource: r.address.clone(),
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
                                resource: r.address.clone(),
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
        }
    }

    pub async fn create(&self, r: &Resource) -> Result<()> {
        let iam = self.iam(&r.location);
        let a = &r.attributes;
        match r.kind {
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
        }
        Ok(())
    }

    /// Brings `actual` to `r.attributes`, one API call per attribute that differs.
    pub async fn update(&self, r: &Resource, actual: &Value) -> Result<()> {
        let iam = self.iam(&r.location);
        let a = &r.attributes;
        match r.kind {
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
        }
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

/// An existing provider that this state did not create (eksctl made it, or another idplan
/// state) is shared: idplan never tags or deletes it, and only adds the `sts.amazonaws.com` client id when it is missing.
pub fn adopt_provider(resource: &Resource, actual: &Value) -> Adoption {
    let mut desired = resource.attributes.clone();
    // Its tags are its owner's business: left as they are.
    desired["tags"] = actual["tags"].clone();
    let has_sts = strings(&actual["client_ids"])
        .iter()
        .any(|c| c == STS_AUDIENCE);
    Adoption::Shared {
        desired,
        added: (!has_sts).then(|| json!({ "client_ids": [STS_AUDIENCE] })),
    }
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
        _ => causes(&e),
    };
    Error::Cloud {
        resource: resource.to_string(),
        api,
        message,
    }
}

/// An error and its sources on one line ("dispatch failure: io error: ... Connection refused"),
/// without the debug dump the SDK's own formatter appends.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
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
