//! The Space's cluster: its control planes, and the service accounts, pods and deployments of
//! the components in their host namespaces. Read with kube-rs from a kubeconfig context; the
//! only write is `restart` (what `kubectl rollout restart` patches).

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::{Client, Config};
use serde_json::json;

use crate::error::{Error, Result};
use crate::spec::{ControlPlane, Discover, Spec};

/// The annotation `kubectl rollout restart` sets on a deployment's pod template.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// Where a kubeconfig is read from, for messages.
fn kubeconfig_shown(path: Option<&Path>) -> String {
    match (path, std::env::var("KUBECONFIG")) {
        (Some(path), _) => path.display().to_string(),
        (None, Ok(env)) if !env.is_empty() => format!("{env} (KUBECONFIG)"),
        (None, _) => "~/.kube/config".to_string(),
    }
}

/// The kubeconfig at `path`, else `KUBECONFIG`, else `~/.kube/config`.
fn read_kubeconfig(path: Option<&Path>) -> Result<Kubeconfig> {
    match path {
        // `~/` as a shell would expand it: the spec is written like a command line.
        Some(path) => match (path.strip_prefix("~"), std::env::var_os("HOME")) {
            (Ok(rest), Some(home)) => Kubeconfig::read_from(Path::new(&home).join(rest)),
            _ => Kubeconfig::read_from(path),
        },
        None => Kubeconfig::read(),
    }
    .map_err(|e| {
        Error::user(format!(
            "cannot read the kubeconfig ({}): {e}",
            kubeconfig_shown(path)
        ))
    })
}

/// A client for the discover block's context, or for the cluster idplan runs in when the
/// block names no context.
pub async fn connect(discover: &Discover) -> Result<Client> {
    let Some(context) = &discover.context else {
        return in_cluster(discover);
    };
    let where_ = kubeconfig_shown(discover.kubeconfig.as_deref());
    let kubeconfig = read_kubeconfig(discover.kubeconfig.as_deref())?;
    if !kubeconfig.contexts.iter().any(|c| &c.name == context) {
        let known: Vec<&str> = kubeconfig
            .contexts
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        return Err(Error::user(format!(
            "kubeconfig context `{context}` is not in {where_}; it has: {}",
            match known.is_empty() {
                true => "none".to_string(),
                false => known.join(", "),
            }
        )));
    }
    let options = KubeConfigOptions {
        context: Some(context.clone()),
        ..Default::default()
    };
    let config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| Error::user(format!("kubeconfig context `{context}` ({where_}): {e}")))?;
    Client::try_from(config).map_err(|e| {
        Error::user(format!(
            "cannot connect to the cluster of context `{context}`: {e}"
        ))
    })
}

/// A client with the pod's service account (its token file, re-read as it rotates).
fn in_cluster(discover: &Discover) -> Result<Client> {
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_none() {
        return Err(Error::user(format!(
            "{}:{}: controlPlanes.discover names no `context`, which means the cluster idplan \
             runs in, and idplan is not running in a cluster (KUBERNETES_SERVICE_HOST is not \
             set): name the kubeconfig context of the Space's cluster",
            discover.file.display(),
            discover.location.line
        )));
    }
    let config = Config::incluster().map_err(|e| {
        Error::user(format!(
            "cannot read the pod's service account to reach the cluster idplan runs in: {e}"
        ))
    })?;
    Client::try_from(config)
        .map_err(|e| Error::user(format!("cannot connect to the cluster idplan runs in: {e}")))
}

/// The cluster a discover block reads, for messages: its context, its server and the
/// kubeconfig they come from.
pub fn described(discover: &Discover) -> String {
    let Some(context) = &discover.context else {
        return "the cluster idplan runs in".to_string();
    };
    let server = read_kubeconfig(discover.kubeconfig.as_deref())
        .ok()
        .and_then(|k| {
            let named = k.contexts.iter().find(|c| &c.name == context)?;
            let cluster = &named.context.as_ref()?.cluster;
            let named = k.clusters.iter().find(|c| &c.name == cluster)?;
            named.cluster.as_ref()?.server.clone()
        })
        .unwrap_or_else(|| "no server".to_string());
    format!(
        "kubeconfig context `{context}` of {}, server {server}",
        kubeconfig_shown(discover.kubeconfig.as_deref())
    )
}

/// A failed call to the cluster of `discover`, naming that cluster.
pub fn at(e: Error, discover: &Discover) -> Error {
    match e {
        Error::Cloud {
            resource,
            api,
            message,
        } => Error::Cloud {
            resource: format!("{resource} ({})", described(discover)),
            api,
            message,
        },
        other => other,
    }
}

/// One `controlplanes.spaces.upbound.io` of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FoundControlPlane {
    /// `<namespace>/<name>` of the ControlPlane object.
    pub name: String,
    /// Its host namespace; `None` while it has no ID yet (never guessed).
    pub host_namespace: Option<String>,
}

fn failed(resource: impl Into<String>, api: &'static str, e: kube::Error) -> Error {
    let message = match e {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => other.to_string(),
    };
    Error::Cloud {
        resource: resource.into(),
        api: api.into(),
        message,
    }
}

fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// The `controlplanes.spaces.upbound.io` resource.
pub fn control_plane_resource() -> ApiResource {
    let gvk = GroupVersionKind::gvk("spaces.upbound.io", "v1beta1", "ControlPlane");
    ApiResource::from_gvk_with_plural(&gvk, "controlplanes")
}

/// Every control plane in all namespaces, sorted by name.
pub async fn control_planes(client: &Client) -> Result<Vec<FoundControlPlane>> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &control_plane_resource());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| failed("controlplanes.spaces.upbound.io", "list", e))?;
    let mut out: Vec<FoundControlPlane> = list.items.iter().map(FoundControlPlane::of).collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

impl FoundControlPlane {
    /// A ControlPlane object's name and host namespace: `spec.hostNamespace.name`, else
    /// `mxp-<status.controlPlaneID>-system`.
    pub fn of(cp: &DynamicObject) -> FoundControlPlane {
        let name = format!(
            "{}/{}",
            cp.metadata.namespace.as_deref().unwrap_or_default(),
            cp.metadata.name.as_deref().unwrap_or_default()
        );
        let text = |v: &serde_json::Value| v.as_str().filter(|s| !s.is_empty()).map(String::from);
        let host_namespace = text(&cp.data["spec"]["hostNamespace"]["name"]).or_else(|| {
            text(&cp.data["status"]["controlPlaneID"]).map(|id| format!("mxp-{id}-system"))
        });
        FoundControlPlane {
            name,
            host_namespace,
        }
    }
}

fn controller<'a>(
    owners: Option<&'a Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>,
    kind: &str,
) -> Option<&'a str> {
    owners?
        .iter()
        .find(|o| o.kind == kind && o.controller == Some(true))
        .map(|o| o.name.as_str())
}

/// The deployment that owns the pod (pod → ReplicaSet → Deployment), if any.
pub async fn owning_deployment(
    client: &Client,
    namespace: &str,
    pod: &Pod,
) -> Result<Option<String>> {
    let Some(rs_name) = controller(pod.metadata.owner_references.as_ref(), "ReplicaSet") else {
        return Ok(None);
    };
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let rs = match api.get(rs_name).await {
        Ok(rs) => rs,
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => {
            return Err(failed(
                format!("replicaset {namespace}/{rs_name}"),
                "get",
                e,
            ));
        }
    };
    Ok(controller(rs.metadata.owner_references.as_ref(), "Deployment").map(String::from))
}

/// Restarts the deployment's pods the way `kubectl rollout restart` does.
pub async fn restart(client: &Client, namespace: &str, deployment: &str, now: &str) -> Result<()> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let patch = json!({
        "spec": { "template": { "metadata": { "annotations": { RESTARTED_AT: now } } } }
    });
    api.patch(
        deployment,
        &PatchParams::default(),
        &Patch::Strategic(patch),
    )
    .await
    .map_err(|e| failed(format!("deployment {namespace}/{deployment}"), "patch", e))?;
    Ok(())
}

/// A control plane found by discovery, as the plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Discovered {
    pub space: String,
    /// `<namespace>/<name>` of the ControlPlane object.
    pub control_plane: String,
    /// Its host namespace; null while the control plane has no ID yet (then it is not planned).
    pub namespace: Option<String>,
}

impl Discovered {
    /// The warning for a control plane without an ID yet, ending with what that means here.
    pub fn no_id_warning(&self, meaning: &str) -> String {
        format!(
            "Warning: control plane {} in space {} has no ID yet: {meaning}",
            self.control_plane, self.space
        )
    }
}

/// Lists the control planes of every space that discovers them and adds their host namespaces
/// to the space's, after the listed ones and without duplicates.
pub async fn discover(spec: &mut Spec) -> Result<Vec<Discovered>> {
    let mut out = Vec::new();
    for space in &mut spec.spaces {
        let Some(discover) = space.discover.clone() else {
            continue;
        };
        let client = connect(&discover).await?;
        let found = control_planes(&client)
            .await
            .map_err(|e| at(e, &discover))?;
        out.extend(add_discovered(space, found));
    }
    Ok(out)
}

/// Adds the host namespaces of the control planes found in a space's cluster to the space's,
/// after the listed ones and without duplicates; what the plan shows of them.
pub fn add_discovered(
    space: &mut crate::spec::Space,
    found: impl IntoIterator<Item = FoundControlPlane>,
) -> Vec<Discovered> {
    let Some(discover) = &space.discover else {
        return Vec::new();
    };
    let location = discover.location;
    let mut out = Vec::new();
    for cp in found {
        if let Some(ns) = &cp.host_namespace
            && !space.control_planes.iter().any(|c| &c.namespace == ns)
        {
            space.control_planes.push(ControlPlane {
                namespace: ns.clone(),
                location,
            });
        }
        out.push(Discovered {
            space: space.name.clone(),
            control_plane: cp.name,
            namespace: cp.host_namespace,
        });
    }
    out
}

/// Per space: the host namespaces it covers now (listed and discovered).
pub fn covered(spec: &Spec) -> BTreeMap<String, Vec<String>> {
    spec.spaces
        .iter()
        .map(|s| {
            let namespaces = s
                .control_planes
                .iter()
                .map(|c| c.namespace.clone())
                .collect();
            (s.name.clone(), namespaces)
        })
        .collect()
}

/// The service accounts called `name` in all namespaces: one list (paged) per name, instead
/// of a read per host namespace.
pub async fn service_accounts_named(client: &Client, name: &str) -> Result<Vec<ServiceAccount>> {
    let mut out = list_all(
        Api::all(client.clone()),
        &format!("metadata.name={name}"),
        &format!("serviceaccounts named {name}"),
    )
    .await?;
    // Filtered again: the selector is a server-side convenience, the match is the contract.
    out.retain(|sa: &ServiceAccount| sa.metadata.name.as_deref() == Some(name));
    Ok(out)
}

/// The pods that run as a service account called `name`, in all namespaces: one list (paged),
/// instead of one per host namespace.
pub async fn pods_running_as(client: &Client, name: &str) -> Result<Vec<Pod>> {
    let mut out = list_all(
        Api::all(client.clone()),
        &format!("spec.serviceAccountName={name}"),
        &format!("pods of service account {name}"),
    )
    .await?;
    out.retain(|p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.service_account_name.as_deref())
            == Some(name)
    });
    Ok(out)
}

/// Every object `api` lists with the field selector `fields`, page by page.
async fn list_all<K>(api: Api<K>, fields: &str, what: &str) -> Result<Vec<K>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut out = Vec::new();
    let mut params = ListParams::default().fields(fields).limit(500);
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|e| failed(what.to_string(), "list", e))?;
        out.extend(page.items);
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(out),
        }
    }
}

/// The kubeconfig's current context (what `kubectl` uses when no context is named).
pub fn current_context(kubeconfig: Option<&Path>) -> Result<String> {
    read_kubeconfig(kubeconfig)?
        .current_context
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            Error::user("the kubeconfig has no current context: name one with --context")
        })
}
