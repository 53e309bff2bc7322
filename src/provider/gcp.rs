//! The GCP driver: Google service accounts (IAM v1) and idplan's members in IAM allow policies
//! (Storage JSON v1 buckets, Resource Manager v3 projects, Secret Manager v1 secrets, IAM v1
//! service accounts); Resource Manager and GKE for the project number and workload pool.
//!
//! Policies are shared with their owners: every change is a read-modify-write of the whole
//! policy under its `etag` that touches only idplan's members of one role in the binding
//! without a condition; a race (409 ABORTED, or 412 on Storage) is retried on a fresh read.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::Adoption;
use crate::error::{Error, Result};
use crate::graph::{Kind, Resource};
use crate::recipe::gcp::{GcpContext, MANAGED_MARK};
use crate::spec::GkeCluster;

const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Attempts of one call on 429, 5xx or a transport error.
const ATTEMPTS: u32 = 5;
/// Read-modify-write rounds of one policy change when others write at the same time.
const RACE_ATTEMPTS: u32 = 8;

/// The Google APIs idplan calls; each has its own host unless `IDPLAN_GCP_ENDPOINT` is set.
#[derive(Debug, Clone, Copy)]
enum Api {
    ResourceManager,
    Iam,
    Storage,
    SecretManager,
    Container,
}

impl Api {
    fn base(self) -> (&'static str, &'static str) {
        match self {
            Api::ResourceManager => ("https://cloudresourcemanager.googleapis.com", ""),
            Api::Iam => ("https://iam.googleapis.com", ""),
            Api::Storage => ("https://storage.googleapis.com", "/storage/v1"),
            Api::SecretManager => ("https://secretmanager.googleapis.com", ""),
            Api::Container => ("https://container.googleapis.com", ""),
        }
    }
}

enum Credentials {
    /// `IDPLAN_GCP_ACCESS_TOKEN`: used as it is.
    Token(String),
    /// gcp_auth's chain (service account key, ADC, metadata server, gcloud), set up on first use.
    Chain(OnceCell<Arc<dyn gcp_auth::TokenProvider>>),
}

/// A failed call: Google's HTTP status, `error.status` and `error.message`.
#[derive(Debug)]
struct Failure {
    http: u16,
    status: String,
    message: String,
}

impl Failure {
    fn is(&self, http: u16) -> bool {
        self.http == http
    }

    fn into_error(self, resource: &str, api: &'static str) -> Error {
        let message = match (self.http, self.status.is_empty()) {
            (0, _) => self.message,
            (code, true) => format!("HTTP {code}: {}", self.message),
            (code, false) => format!("{} (HTTP {code}): {}", self.status, self.message),
        };
        Error::Cloud {
            resource: resource.to_string(),
            api,
            message,
        }
    }
}

pub struct GcpDriver {
    http: reqwest::Client,
    credentials: Credentials,
    endpoint: Option<String>,
    /// One writer per policy in this process: idplan's own writes never race each other.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl GcpDriver {
    pub fn new() -> GcpDriver {
        let credentials = match std::env::var("IDPLAN_GCP_ACCESS_TOKEN") {
            Ok(token) if !token.trim().is_empty() => Credentials::Token(token.trim().to_string()),
            _ => Credentials::Chain(OnceCell::new()),
        };
        let endpoint = std::env::var("IDPLAN_GCP_ENDPOINT")
            .ok()
            .filter(|e| !e.trim().is_empty())
            .map(|e| e.trim().trim_end_matches('/').to_string());
        GcpDriver {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap_or_default(),
            credentials,
            endpoint,
            locks: Mutex::new(HashMap::new()),
        }
    }

    fn url(&self, api: Api, path: &str) -> String {
        let (host, prefix) = api.base();
        match &self.endpoint {
            Some(base) => format!("{base}{prefix}/{path}"),
            None => format!("{host}{prefix}/{path}"),
        }
    }

    async fn token(&self) -> Result<String, Failure> {
        let provider = match &self.credentials {
            Credentials::Token(t) => return Ok(t.clone()),
            Credentials::Chain(cell) => cell
                .get_or_try_init(|| async { gcp_auth::provider().await })
                .await
                .map_err(|e| Failure {
                    http: 0,
                    status: String::new(),
                    message: format!(
                        "no Google credentials ({e}); set GOOGLE_APPLICATION_CREDENTIALS, run \
                         `gcloud auth application-default login`, or set IDPLAN_GCP_ACCESS_TOKEN"
                    ),
                })?,
        };
        let token = provider.token(&[SCOPE]).await.map_err(|e| Failure {
            http: 0,
            status: String::new(),
            message: format!("getting a Google access token failed: {e}"),
        })?;
        Ok(token.as_str().to_string())
    }

    /// One API call; 429, 5xx and transport errors are retried with backoff and jitter. The
    /// body of a success is returned (`{}` when empty).
    async fn call(
        &self,
        method: Method,
        api: Api,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        op: &'static str,
    ) -> Result<Value, Failure> {
        let url = self.url(api, path);
        let mut attempt = 0;
        loop {
            attempt += 1;
            crate::stats::count(&format!("gcp:{op}"));
            let token = self.token().await?;
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(token)
                .query(query);
            if let Some(body) = body {
                request = request.json(body);
            }
            let failure = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    if status.is_success() {
                        return Ok(if text.trim().is_empty() {
                            json!({})
                        } else {
                            serde_json::from_str(&text).map_err(|e| Failure {
                                http: status.as_u16(),
                                status: String::new(),
                                message: format!("unreadable response: {e}"),
                            })?
                        });
                    }
                    google_failure(status.as_u16(), &text)
                }
                Err(e) => Failure {
                    http: 0,
                    status: String::new(),
                    message: super::causes(&e),
                },
            };
            let transient = failure.http == 0 || failure.http == 429 || failure.http >= 500;
            if !transient || attempt >= ATTEMPTS {
                return Err(failure);
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
    }

    /// The project number and workload pool a space's members are named after.
    pub async fn context(&self, project: &str, cluster: &GkeCluster) -> Result<GcpContext> {
        let what = format!("project {project}");
        let p = self
            .call(
                Method::GET,
                Api::ResourceManager,
                &format!("v3/projects/{project}"),
                &[],
                None,
                "cloudresourcemanager.projects.get",
            )
            .await
            .map_err(|f| f.into_error(&what, "cloudresourcemanager.projects.get"))?;
        let project_number = p["name"]
            .as_str()
            .and_then(|n| n.strip_prefix("projects/"))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| Error::Cloud {
                resource: what.clone(),
                api: "cloudresourcemanager.projects.get",
                message: format!("no project number in the answer (name: {})", p["name"]),
            })?
            .to_string();
        let name = format!(
            "projects/{project}/locations/{}/clusters/{}",
            cluster.location, cluster.name
        );
        let what = format!("GKE cluster {} ({})", cluster.name, cluster.location);
        let c = self
            .call(
                Method::GET,
                Api::Container,
                &format!("v1/{name}"),
                &[],
                None,
                "container.projects.locations.clusters.get",
            )
            .await
            .map_err(|f| f.into_error(&what, "container.projects.locations.clusters.get"))?;
        let workload_pool = c["workloadIdentityConfig"]["workloadPool"]
            .as_str()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                Error::user(format!(
                    "{what} does not have Workload Identity Federation for GKE enabled; enable \
                     it with: gcloud container clusters update {} --location {} \
                     --workload-pool={project}.svc.id.goog (and the GKE metadata server on its \
                     node pools)",
                    cluster.name, cluster.location
                ))
            })?
            .to_string();
        Ok(GcpContext {
            project_number,
            workload_pool,
        })
    }

    /// Checks that a bucket exists and, when principal identifiers are to be bound on it
    /// (`uniform`), that it has uniform bucket-level access: principal identifiers cannot be
    /// used on a bucket with fine-grained ACLs (the Spaces documents require it).
    pub async fn check_bucket(&self, bucket: &str, uniform: bool) -> Result<()> {
        let what = format!("bucket {bucket}");
        let b = self
            .call(
                Method::GET,
                Api::Storage,
                &format!("b/{bucket}"),
                &[],
                None,
                "storage.buckets.get",
            )
            .await
            .map_err(|f| f.into_error(&what, "storage.buckets.get"))?;
        if !uniform || b["iamConfiguration"]["uniformBucketLevelAccess"]["enabled"] == json!(true) {
            return Ok(());
        }
        Err(Error::user(format!(
            "{what} does not have uniform bucket-level access, which IAM principal identifiers \
             need (`mode: principal`); enable it with: gcloud storage buckets update \
             gs://{bucket} --uniform-bucket-level-access (or use `mode: service-account`)"
        )))
    }

    /// Checks that a listed secret exists, so a typo fails the plan rather than the apply.
    pub async fn check_secret(&self, project: &str, secret: &str) -> Result<()> {
        let name = format!("projects/{project}/secrets/{secret}");
        self.call(
            Method::GET,
            Api::SecretManager,
            &format!("v1/{name}"),
            &[],
            None,
            "secretmanager.projects.secrets.get",
        )
        .await
        .map_err(|f| {
            f.into_error(
                &format!("secret {name}"),
                "secretmanager.projects.secrets.get",
            )
        })?;
        Ok(())
    }

    /// Every principal in the policy that `r` puts members into (all roles, all bindings).
    pub async fn policy_principals(&self, r: &Resource) -> Result<BTreeSet<String>> {
        let Some((policy, _)) = self.get_policy(r).await? else {
            return Ok(BTreeSet::new());
        };
        Ok(policy["bindings"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|b| b["members"].as_array().into_iter().flatten())
            .filter_map(|m| m.as_str().map(str::to_string))
            .collect())
    }

    /// What the cloud holds for `r`. `known` is what the state recorded for it, if anything.
    pub async fn read(&self, r: &Resource, known: Option<&Value>) -> Result<Option<Value>> {
        match r.kind {
            Kind::GoogleServiceAccount => self.read_account(r).await,
            _ => self.read_members(r, known).await,
        }
    }

    /// idplan's members in the policy: those it wants or recorded that the policy holds in the
    /// role's binding without a condition. Anyone else's members are not part of the answer.
    async fn read_members(&self, r: &Resource, known: Option<&Value>) -> Result<Option<Value>> {
        let Some((policy, _)) = self.get_policy(r).await? else {
            return Ok(None);
        };
        let role = str_attr(&r.attributes, "role");
        let mut candidates = members(&r.attributes);
        if let Some(known) = known {
            candidates.extend(members(known));
        }
        let held: BTreeSet<String> = role_members(&policy, role)
            .intersection(&candidates)
            .cloned()
            .collect();
        if held.is_empty() {
            return Ok(None);
        }
        let mut out = r.attributes.clone();
        out["members"] = json!(held);
        Ok(Some(out))
    }

    async fn read_account(&self, r: &Resource) -> Result<Option<Value>> {
        let a = &r.attributes;
        let path = account_path(a);
        match self
            .call(
                Method::GET,
                Api::Iam,
                &path,
                &[],
                None,
                "iam.projects.serviceAccounts.get",
            )
            .await
        {
            Ok(sa) => Ok(Some(json!({
                "project": str_attr(a, "project"),
                "account_id": sa["email"].as_str().unwrap_or_default().split('@').next(),
                "email": sa["email"],
                "display_name": sa["displayName"].as_str().unwrap_or_default(),
                "description": sa["description"].as_str().unwrap_or_default(),
            }))),
            Err(f) if f.is(404) => Ok(None),
            Err(f) => Err(f.into_error(&r.address, "iam.projects.serviceAccounts.get")),
        }
    }

    /// Creates `r`; nothing is assigned that idplan records.
    pub async fn create(&self, r: &Resource) -> Result<Value> {
        match r.kind {
            Kind::GoogleServiceAccount => {
                let a = &r.attributes;
                self.call(
                    Method::POST,
                    Api::Iam,
                    &format!("v1/projects/{}/serviceAccounts", str_attr(a, "project")),
                    &[],
                    Some(&json!({
                        "accountId": a["account_id"],
                        "serviceAccount": {
                            "displayName": a["display_name"],
                            "description": a["description"],
                        },
                    })),
                    "iam.projects.serviceAccounts.create",
                )
                .await
                .map_err(|f| f.into_error(&r.address, "iam.projects.serviceAccounts.create"))?;
            }
            _ => {
                self.change_members(r, &members(&r.attributes), &BTreeSet::new())
                    .await?
            }
        }
        Ok(json!({}))
    }

    pub async fn update(&self, r: &Resource, actual: &Value) -> Result<()> {
        match r.kind {
            Kind::GoogleServiceAccount => {
                let a = &r.attributes;
                self.call(
                    Method::PATCH,
                    Api::Iam,
                    &account_path(a),
                    &[],
                    Some(&json!({
                        "serviceAccount": {
                            "displayName": a["display_name"],
                            "description": a["description"],
                        },
                        "updateMask": "displayName,description",
                    })),
                    "iam.projects.serviceAccounts.patch",
                )
                .await
                .map_err(|f| f.into_error(&r.address, "iam.projects.serviceAccounts.patch"))?;
                Ok(())
            }
            _ => {
                let want = members(&r.attributes);
                let have = members(actual);
                let add = want.difference(&have).cloned().collect();
                let remove = have.difference(&want).cloned().collect();
                self.change_members(r, &add, &remove).await
            }
        }
    }

    /// Deletes what idplan created: a service account, or idplan's members of a policy.
    pub async fn delete(&self, r: &Resource) -> Result<()> {
        match r.kind {
            Kind::GoogleServiceAccount => {
                match self
                    .call(
                        Method::DELETE,
                        Api::Iam,
                        &account_path(&r.attributes),
                        &[],
                        None,
                        "iam.projects.serviceAccounts.delete",
                    )
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(f) if f.is(404) => Ok(()),
                    Err(f) => Err(f.into_error(&r.address, "iam.projects.serviceAccounts.delete")),
                }
            }
            _ => {
                self.change_members(r, &BTreeSet::new(), &members(&r.attributes))
                    .await
            }
        }
    }

    /// Nothing GCP is ever adopted with additions: there is nothing to take back.
    pub async fn release(&self, _r: &Resource, _added: &Value) -> Result<()> {
        Ok(())
    }

    /// The API operations of a policy kind: (get, set).
    fn policy_ops(kind: Kind) -> (&'static str, &'static str) {
        match kind {
            Kind::GoogleStorageBucketIamMembers => (
                "storage.buckets.getIamPolicy",
                "storage.buckets.setIamPolicy",
            ),
            Kind::GoogleProjectIamMembers => (
                "cloudresourcemanager.projects.getIamPolicy",
                "cloudresourcemanager.projects.setIamPolicy",
            ),
            Kind::GoogleSecretIamMembers => (
                "secretmanager.projects.secrets.getIamPolicy",
                "secretmanager.projects.secrets.setIamPolicy",
            ),
            _ => (
                "iam.projects.serviceAccounts.getIamPolicy",
                "iam.projects.serviceAccounts.setIamPolicy",
            ),
        }
    }

    /// The policy of `r`'s resource at version 3 (so conditional bindings come back whole),
    /// and its display name; `None` when the resource does not exist.
    async fn get_policy(&self, r: &Resource) -> Result<Option<(Value, String)>> {
        let resource = str_attr(&r.attributes, "resource");
        let (op, _) = Self::policy_ops(r.kind);
        let result = match r.kind {
            Kind::GoogleStorageBucketIamMembers => {
                self.call(
                    Method::GET,
                    Api::Storage,
                    &format!("b/{resource}/iam"),
                    &[("optionsRequestedPolicyVersion", "3")],
                    None,
                    op,
                )
                .await
            }
            Kind::GoogleProjectIamMembers => {
                self.call(
                    Method::POST,
                    Api::ResourceManager,
                    &format!("v3/projects/{resource}:getIamPolicy"),
                    &[],
                    Some(&json!({ "options": { "requestedPolicyVersion": 3 } })),
                    op,
                )
                .await
            }
            Kind::GoogleSecretIamMembers => {
                self.call(
                    Method::GET,
                    Api::SecretManager,
                    &format!("v1/{resource}:getIamPolicy"),
                    &[("options.requestedPolicyVersion", "3")],
                    None,
                    op,
                )
                .await
            }
            _ => {
                self.call(
                    Method::POST,
                    Api::Iam,
                    &format!("v1/{resource}:getIamPolicy"),
                    &[("options.requestedPolicyVersion", "3")],
                    None,
                    op,
                )
                .await
            }
        };
        match result {
            Ok(policy) => Ok(Some((policy, resource.to_string()))),
            // The bucket, secret or service account is gone: so are idplan's members there.
            // A project that cannot be found is an error worth seeing.
            Err(f) if f.is(404) && r.kind != Kind::GoogleProjectIamMembers => Ok(None),
            Err(f) => Err(f.into_error(&r.address, op)),
        }
    }

    async fn set_policy(&self, r: &Resource, policy: &Value) -> Result<(), Failure> {
        let resource = str_attr(&r.attributes, "resource");
        let (_, op) = Self::policy_ops(r.kind);
        let (method, api, path, body) = match r.kind {
            Kind::GoogleStorageBucketIamMembers => (
                Method::PUT,
                Api::Storage,
                format!("b/{resource}/iam"),
                policy.clone(),
            ),
            Kind::GoogleProjectIamMembers => (
                Method::POST,
                Api::ResourceManager,
                format!("v3/projects/{resource}:setIamPolicy"),
                json!({ "policy": policy }),
            ),
            Kind::GoogleSecretIamMembers => (
                Method::POST,
                Api::SecretManager,
                format!("v1/{resource}:setIamPolicy"),
                json!({ "policy": policy }),
            ),
            _ => (
                Method::POST,
                Api::Iam,
                format!("v1/{resource}:setIamPolicy"),
                json!({ "policy": policy }),
            ),
        };
        self.call(method, api, &path, &[], Some(&body), op)
            .await
            .map(|_| ())
    }

    /// Adds and removes idplan's members of `r`'s role, read-modify-write under the etag,
    /// leaving every other binding and member as it is.
    async fn change_members(
        &self,
        r: &Resource,
        add: &BTreeSet<String>,
        remove: &BTreeSet<String>,
    ) -> Result<()> {
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        let key = format!("{:?} {}", r.kind, str_attr(&r.attributes, "resource"));
        let lock = self
            .locks
            .lock()
            .expect("policy locks")
            .entry(key)
            .or_default()
            .clone();
        let _held = lock.lock().await;
        let role = str_attr(&r.attributes, "role");
        let (_, op) = Self::policy_ops(r.kind);
        let mut round = 0;
        loop {
            round += 1;
            let Some((mut policy, _)) = self.get_policy(r).await? else {
                if add.is_empty() {
                    return Ok(());
                }
                // A service account made a moment ago may not be visible to every IAM replica
                // yet: give it a few seconds before calling it missing.
                if r.kind == Kind::GoogleServiceAccountIamMembers && round < 6 {
                    tokio::time::sleep(Duration::from_secs(u64::from(round))).await;
                    continue;
                }
                return Err(Error::Cloud {
                    resource: r.address.to_string(),
                    api: Self::policy_ops(r.kind).0,
                    message: format!("{} does not exist", str_attr(&r.attributes, "resource")),
                });
            };
            if !edit_policy(&mut policy, role, add, remove) {
                return Ok(());
            }
            match self.set_policy(r, &policy).await {
                Ok(()) => return Ok(()),
                // Someone else changed the policy since it was read: read it again.
                Err(f) if (f.is(409) || f.is(412)) && round < RACE_ATTEMPTS => {
                    tokio::time::sleep(backoff(round)).await;
                }
                // A service account just made is not yet known to every IAM replica.
                Err(f) if f.is(400) && f.message.contains("does not exist") && round < 6 => {
                    tokio::time::sleep(Duration::from_secs(2 * u64::from(round))).await;
                }
                Err(f) => return Err(f.into_error(&r.address, op)),
            }
        }
    }
}

impl Default for GcpDriver {
    fn default() -> Self {
        Self::new()
    }
}

/// Applies idplan's changes to the role's binding without a condition; returns whether the
/// policy changed. Bindings with a condition, other roles and other members stay as they are.
pub fn edit_policy(
    policy: &mut Value,
    role: &str,
    add: &BTreeSet<String>,
    remove: &BTreeSet<String>,
) -> bool {
    if !policy["bindings"].is_array() {
        policy["bindings"] = json!([]);
    }
    let bindings = policy["bindings"]
        .as_array_mut()
        .expect("bindings is an array");
    let index = bindings
        .iter()
        .position(|b| b["role"] == role && b.get("condition").is_none_or(Value::is_null));
    let mut changed = false;
    match index {
        Some(i) => {
            let list = &mut bindings[i]["members"];
            if !list.is_array() {
                *list = json!([]);
            }
            let list = list.as_array_mut().expect("members is an array");
            let before = list.len();
            list.retain(|m| !m.as_str().is_some_and(|m| remove.contains(m)));
            changed |= list.len() != before;
            for m in add {
                if !list.iter().any(|x| x == m.as_str()) {
                    list.push(json!(m));
                    changed = true;
                }
            }
            if list.is_empty() {
                bindings.remove(i);
            }
        }
        None if !add.is_empty() => {
            bindings.push(json!({ "role": role, "members": add }));
            changed = true;
        }
        None => {}
    }
    // A policy with a condition must be written as version 3; one without keeps its version.
    let conditional = bindings
        .iter()
        .any(|b| b.get("condition").is_some_and(|c| !c.is_null()));
    if conditional {
        policy["version"] = json!(3);
    }
    changed
}

/// A service account that exists and was not made by idplan for this space is someone else's.
pub fn adopt_account(resource: &Resource, actual: &Value) -> Adoption {
    let ours = actual["description"].as_str().unwrap_or_default();
    if ours == resource.attributes["description"] {
        return Adoption::Owned;
    }
    let email = str_attr(&resource.attributes, "email");
    Adoption::Conflict(if ours.ends_with(MANAGED_MARK) {
        format!(
            "service account {email} belongs to another idplan space ({ours}); two spaces \
             cannot share one: set another `name` for the component"
        )
    } else {
        format!(
            "service account {email} already exists and was not created by idplan; idplan will \
             not take it over: set another `name` for the component, or delete it"
        )
    })
}

/// The members of one role in the binding without a condition.
fn role_members(policy: &Value, role: &str) -> BTreeSet<String> {
    policy["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["role"] == role && b.get("condition").is_none_or(Value::is_null))
        .flat_map(|b| b["members"].as_array().into_iter().flatten())
        .filter_map(|m| m.as_str().map(str::to_string))
        .collect()
}

fn members(attributes: &Value) -> BTreeSet<String> {
    attributes["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_str().map(str::to_string))
        .collect()
}

fn account_path(a: &Value) -> String {
    format!(
        "v1/projects/{}/serviceAccounts/{}",
        str_attr(a, "project"),
        str_attr(a, "email")
    )
}

fn str_attr<'a>(attributes: &'a Value, key: &str) -> &'a str {
    attributes[key].as_str().unwrap_or_default()
}

/// Google's error body `{"error": {"code", "message", "status"}}`, or the raw text.
fn google_failure(http: u16, text: &str) -> Failure {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let error = &body["error"];
    let message = error["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| text.chars().take(300).collect());
    Failure {
        http,
        status: error["status"].as_str().unwrap_or_default().to_string(),
        message,
    }
}

/// Exponential backoff from 400 ms (up to 5 s) with jitter.
fn backoff(attempt: u32) -> Duration {
    super::backoff(attempt, Duration::from_millis(400), Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn edits_touch_only_idplans_members_of_the_unconditional_binding() {
        let mut policy = json!({
            "version": 1,
            "etag": "BwX",
            "bindings": [
                { "role": "roles/a", "members": ["user:x", "principal://old"] },
                { "role": "roles/a", "members": ["user:y"],
                  "condition": { "title": "t", "expression": "true" } },
                { "role": "roles/b", "members": ["principal://old"] },
            ],
        });
        let changed = edit_policy(
            &mut policy,
            "roles/a",
            &set(&["principal://new"]),
            &set(&["principal://old"]),
        );
        assert!(changed);
        assert_eq!(
            policy["bindings"][0]["members"],
            json!(["user:x", "principal://new"])
        );
        assert_eq!(policy["bindings"][1]["members"], json!(["user:y"]));
        assert_eq!(policy["bindings"][2]["members"], json!(["principal://old"]));
        assert_eq!(policy["version"], 3);
        assert_eq!(policy["etag"], "BwX");
        // Nothing to do: no change.
        assert!(!edit_policy(
            &mut policy,
            "roles/a",
            &set(&["principal://new"]),
            &set(&[])
        ));
    }

    #[test]
    fn an_emptied_binding_goes_and_a_missing_one_is_added() {
        let mut policy = json!({ "etag": "e" });
        assert!(edit_policy(&mut policy, "roles/r", &set(&["m"]), &set(&[])));
        assert_eq!(
            policy["bindings"],
            json!([{ "role": "roles/r", "members": ["m"] }])
        );
        assert!(edit_policy(&mut policy, "roles/r", &set(&[]), &set(&["m"])));
        assert_eq!(policy["bindings"], json!([]));
        assert!(policy.get("version").is_none());
    }

    #[test]
    fn only_idplans_own_service_account_is_taken_back() {
        let resource = Resource {
            address: "google_service_account.prod.backup".parse().unwrap(),
            kind: Kind::GoogleServiceAccount,
            location: crate::graph::Location::Gcp {
                project: "p".into(),
            },
            attributes: json!({
                "email": "spaces-prod-backup@p.iam.gserviceaccount.com",
                "description": "Upbound Spaces backup (mxp-controller) of space prod; managed by idplan",
            }),
            depends_on: vec![],
        };
        let same = json!({ "description": resource.attributes["description"] });
        assert!(matches!(adopt_account(&resource, &same), Adoption::Owned));
        let other_space = json!({
            "description": "Upbound Spaces backup (mxp-controller) of space dev; managed by idplan"
        });
        match adopt_account(&resource, &other_space) {
            Adoption::Conflict(m) => assert!(m.contains("another idplan space"), "{m}"),
            _ => panic!("expected a conflict"),
        }
        match adopt_account(&resource, &json!({ "description": "" })) {
            Adoption::Conflict(m) => assert!(m.contains("not created by idplan"), "{m}"),
            _ => panic!("expected a conflict"),
        }
    }

    #[test]
    fn google_errors_are_read() {
        let f = google_failure(
            409,
            r#"{"error":{"code":409,"message":"There were concurrent policy changes.","status":"ABORTED"}}"#,
        );
        let e = f.into_error("google_project_iam_members.prod.sharedSecrets", "op");
        assert_eq!(
            e.to_string(),
            "google_project_iam_members.prod.sharedSecrets: op failed: ABORTED (HTTP 409): There \
             were concurrent policy changes."
        );
        assert_eq!(google_failure(502, "bad gateway").message, "bad gateway");
    }
}
