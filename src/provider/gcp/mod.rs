//! The GCP driver: Google service accounts (IAM v1) and idplan's members in IAM allow policies
//! (Storage JSON v1 buckets, Resource Manager v3 projects, Secret Manager v1 secrets, IAM v1
//! service accounts); Resource Manager and GKE for the project number and workload pool.
//! Calls go through the shared REST transport.

pub mod account;
pub mod context;
pub mod policy;
pub mod survey;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::{Call, Driver, KindCalls};
use crate::error::{Error, Result};
use crate::graph::{Graph, Kind};
pub use crate::kind::{GcpKind, PolicyOf};
use crate::spec::GkeCluster;
use crate::state::State;
use crate::transport::gcp::{describe, tokens};
use crate::transport::{Failure, Request, Rest, Retries};
use context::GcpContext;

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

pub struct GcpDriver {
    rest: Rest,
    endpoint: Option<String>,
    /// One writer per policy in this process: idplan's own writes never race each other.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl GcpDriver {
    pub fn new() -> Result<GcpDriver> {
        let tokens = tokens();
        let endpoint = std::env::var("IDPLAN_GCP_ENDPOINT")
            .ok()
            .filter(|e| !e.trim().is_empty())
            .map(|e| e.trim().trim_end_matches('/').to_string());
        // Exponential backoff from 400 ms (up to 5 s) with jitter, eight attempts: one call in
        // five failing (a bad day) leaves one call in 400,000 failing.
        let retries = Retries {
            attempts: 8,
            first: Duration::from_millis(400),
            cap: Duration::from_secs(5),
        };
        Ok(GcpDriver {
            rest: Rest::new(tokens, retries, describe)?,
            endpoint,
            locks: Mutex::new(HashMap::new()),
        })
    }

    fn url(&self, api: Api, path: &str) -> String {
        let (host, prefix) = api.base();
        match &self.endpoint {
            Some(base) => format!("{base}{prefix}/{path}"),
            None => format!("{host}{prefix}/{path}"),
        }
    }

    /// One API call (retried by the transport); the body of a success is returned (`{}`
    /// when empty).
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
        let stat = format!("gcp:{op}");
        let request = Request::new(method, &url, &stat).query(query).body(body);
        Ok(match self.rest.send(&request).await?.body {
            Value::Null => json!({}),
            body => body,
        })
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
                api: "cloudresourcemanager.projects.get".into(),
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
        let pool_shared_with = self
            .clusters_in_pool(project, cluster, &workload_pool)
            .await?;
        Ok(GcpContext {
            project_number,
            workload_pool,
            pool_shared_with,
        })
    }

    /// The project's other GKE clusters in `pool` (`location/name`), or `None` when listing
    /// them is denied: a warning's worth, not a reason to stop.
    async fn clusters_in_pool(
        &self,
        project: &str,
        cluster: &GkeCluster,
        pool: &str,
    ) -> Result<Option<Vec<String>>> {
        const OP: &str = "container.projects.locations.clusters.list";
        // One call for every zone and region; the method has no paging.
        let listed = match self
            .call(
                Method::GET,
                Api::Container,
                &format!("v1/projects/{project}/locations/-/clusters"),
                &[],
                None,
                OP,
            )
            .await
        {
            Ok(listed) => listed,
            Err(f) if f.is(403) => return Ok(None),
            Err(f) => return Err(f.into_error(&format!("project {project}"), OP)),
        };
        let mut others: Vec<String> = listed["clusters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["workloadIdentityConfig"]["workloadPool"].as_str() == Some(pool))
            .filter_map(|c| Some((c["location"].as_str()?, c["name"].as_str()?)))
            .filter(|(location, name)| (*location, *name) != (&cluster.location, &cluster.name))
            .map(|(location, name)| format!("{location}/{name}"))
            .collect();
        others.sort();
        Ok(Some(others))
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
}

impl GcpKind {
    /// Where each kind is declared.
    pub fn def(self) -> &'static dyn KindCalls<GcpDriver> {
        match self {
            GcpKind::ServiceAccount => &account::ServiceAccount,
            GcpKind::Members(PolicyOf::Bucket) => &policy::Members(PolicyOf::Bucket),
            GcpKind::Members(PolicyOf::Project) => &policy::Members(PolicyOf::Project),
            GcpKind::Members(PolicyOf::Secret) => &policy::Members(PolicyOf::Secret),
            GcpKind::Members(PolicyOf::ServiceAccount) => {
                &policy::Members(PolicyOf::ServiceAccount)
            }
        }
    }
}

impl Driver for GcpDriver {
    const CLOUD: &'static str = "GCP";

    fn kind_calls(kind: Kind) -> Option<&'static dyn KindCalls<GcpDriver>> {
        match kind {
            Kind::Gcp(kind) => Some(kind.def()),
            Kind::Aws(_) | Kind::Azure(_) => None,
        }
    }

    fn check_limits<'a>(&'a self, desired: &'a Graph, state: &'a State) -> Call<'a, ()> {
        Box::pin(self.check_policy_sizes(desired, state))
    }
}
