//! The Spaces guides' manual recipes (`../shared/seeds/`), run literally against the test
//! peers: what a team that set its Space up by hand holds before it meets idplan.
//!
//! - [`aws::guide`]: the guides' aws CLI commands (IRSA with exact or wildcard trust, or EKS
//!   pod identity) against ministack, through the pinned aws CLI in `.venv-awscli`.
//! - [`azure::guide`]: the REST calls that `az identity create`, `az role assignment create`,
//!   `az identity federated-credential create` and `az keyvault set-policy` make, against the
//!   fake ARM server.
//! - [`gcp::guide`]: the REST calls of `gcloud iam service-accounts create` and of the
//!   `add-iam-policy-binding` commands (bucket, project or secret, and the service account's
//!   `roles/iam.workloadIdentityUser`), against the fake Google server.
//! - [`space_cluster`] and [`helm_components`]: the Space's cluster on the fake Kubernetes
//!   API server, with the control planes as discovery reads them and the three components'
//!   service accounts annotated, and pods labelled, as the Spaces chart's `--set` values make
//!   them.
//!
//! Each `guide` returns the names it chose and the ids the clouds gave, and its space's
//! `read_ids` reads the same ids back from the peer, so that a test compares them before and
//! after idplan ran; `spec` writes an idplan spec that names those identities.

pub mod aws;
pub mod azure;
pub mod gcp;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use super::{FakeKube, control_planes};

/// How many control planes a manual Space has unless a test asks for more.
pub const N: usize = 3;

/// The IRSA annotation of a component's service account (the guides' prose misspells it).
pub const ROLE_ARN: &str = "eks.amazonaws.com/role-arn";
/// The Azure workload identity annotation.
pub const CLIENT_ID: &str = "azure.workload.identity/client-id";
/// The GKE annotation that links a service account to a Google service account.
pub const GCP_SA: &str = "iam.gke.io/gcp-service-account";

/// A Spaces component that needs cloud credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    Backup,
    Billing,
    SharedSecrets,
}

impl Component {
    pub const ALL: [Component; 3] = [
        Component::Backup,
        Component::Billing,
        Component::SharedSecrets,
    ];

    /// Its key in the spec's `components`.
    pub fn key(self) -> &'static str {
        match self {
            Component::Backup => "backup",
            Component::Billing => "billing",
            Component::SharedSecrets => "sharedSecrets",
        }
    }

    /// Its Kubernetes service account in every host namespace.
    pub fn service_account(self) -> &'static str {
        match self {
            Component::Backup => "mxp-controller",
            Component::Billing => "vector",
            Component::SharedSecrets => "external-secrets-controller",
        }
    }

    /// The component whose service account is `sa`.
    pub fn of_service_account(sa: &str) -> Option<Component> {
        Component::ALL
            .into_iter()
            .find(|c| c.service_account() == sa)
    }
}

/// Ids a cloud assigned, read from its peer, keyed `<component>.<what>` (`backup.arn`,
/// `billing.principalId`, `sharedSecrets.uniqueId`, `backup.association.<namespace>`):
/// `assert_eq!` of two of them shows what changed.
pub type Ids = BTreeMap<String, String>;

/// Where a spec written by a `spec` method takes its control planes from.
#[derive(Debug, Clone, Copy)]
pub enum Planes<'a> {
    /// The host namespaces listed.
    List,
    /// Discovered from the Space's cluster through this kubeconfig and context.
    Discover {
        kubeconfig: &'a Path,
        context: &'a str,
    },
}

impl Planes<'_> {
    /// The space's `controlPlanes:` entry.
    fn block(&self, namespaces: &[String]) -> String {
        match self {
            Planes::List => control_planes(namespaces),
            Planes::Discover {
                kubeconfig,
                context,
            } => format!(
                "    controlPlanes:\n      discover:\n        context: {context}\n        \
                 kubeconfig: {}\n",
                kubeconfig.display()
            ),
        }
    }
}

/// `, <extra>` when `extra` (more keys of a component's flow mapping, `adopt: true`) is not
/// empty.
fn more(extra: &str) -> String {
    if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    }
}

/// The ControlPlane ID in host namespace `mxp-<id>-system`.
fn control_plane_id(namespace: &str) -> &str {
    namespace
        .strip_prefix("mxp-")
        .and_then(|n| n.strip_suffix("-system"))
        .unwrap_or_else(|| panic!("{namespace} is not of the form mxp-<id>-system"))
}

/// The Space's cluster with `n` control planes (`default/ctp-<i>`, ID from
/// [`super::namespace`]`(i)`, as discovery reads them) and their host namespaces, which the
/// Space makes when a control plane is created. Returns the host namespaces.
#[track_caller]
pub fn space_cluster(kube: &FakeKube, n: usize) -> Vec<String> {
    (0..n).map(|i| control_plane(kube, i)).collect()
}

/// Control plane `default/ctp-<i>` and its host namespace [`super::namespace`]`(i)`, which
/// it returns.
#[track_caller]
pub fn control_plane(kube: &FakeKube, i: usize) -> String {
    let ns = super::namespace(i);
    kube.create(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    );
    // The status is the Spaces controller's to write: seeded, not created.
    kube.put(
        "controlplanes",
        json!({"metadata": {"name": format!("ctp-{i}"), "namespace": "default"},
               "spec": {}, "status": {"controlPlaneID": control_plane_id(&ns)}}),
    );
    ns
}

/// The label that the Azure guides put on the components' pods
/// (`--set controlPlanes.<prefix>.pod.customLabels."azure\.workload\.identity/use"="true"`).
pub const AZURE_USE: (&str, &str) = ("azure.workload.identity/use", "true");

/// The deployment that runs component `c` in a host namespace (the guides restart it with
/// `kubectl rollout restart deployment <name>`).
pub fn deployment(c: Component) -> &'static str {
    match c {
        Component::Backup => "mxp-controller",
        Component::Billing => "vector",
        Component::SharedSecrets => "external-secrets",
    }
}

/// The three components in each of `namespaces`, as the Spaces chart installs them with the
/// guides' `--set` values, after the guides' restart: the service account with the annotation
/// (key, value) that `annotation` gives each component (`None` for pod identity and GCP
/// principal identifiers), created through the API; its deployment, replica set and one
/// running pod, started now, labelled with `pod_label` (Azure's [`AZURE_USE`]).
#[track_caller]
pub fn helm_components(
    kube: &FakeKube,
    namespaces: &[String],
    annotation: &dyn Fn(Component) -> Option<(&'static str, String)>,
    pod_label: Option<(&str, &str)>,
) {
    let started = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    for ns in namespaces {
        for c in Component::ALL {
            let sa = c.service_account();
            let mut object = json!({
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": sa, "namespace": ns,
                             "labels": {"app.kubernetes.io/managed-by": "Helm",
                                        "app.kubernetes.io/name": sa}},
            });
            if let Some((key, value)) = annotation(c) {
                object["metadata"]["annotations"] = json!({ key: value });
            }
            kube.create(&format!("/api/v1/namespaces/{ns}/serviceaccounts"), object);

            workload(kube, ns, c, pod_label, &started);
        }
    }
}

/// What the deployment controller does after `kubectl rollout restart` of the components in
/// `namespace`: each one's pod replaced by one started now.
#[track_caller]
pub fn roll_out(kube: &FakeKube, namespace: &str, pod_label: Option<(&str, &str)>) {
    let started = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    for c in Component::ALL {
        workload(kube, namespace, c, pod_label, &started);
    }
}

/// Component `c`'s deployment, replica set and one running pod started at `started`, seeded
/// as the controllers (not a client) make them.
#[track_caller]
fn workload(
    kube: &FakeKube,
    ns: &str,
    c: Component,
    pod_label: Option<(&str, &str)>,
    started: &str,
) {
    let sa = c.service_account();
    let name = deployment(c);
    let selector = json!({"app.kubernetes.io/name": name});
    let mut pod_labels = selector.clone();
    if let Some((key, value)) = pod_label {
        pod_labels[key] = json!(value);
    }
    let template = json!({
        "metadata": {"labels": pod_labels},
        "spec": {"serviceAccountName": sa, "containers": [{"name": name, "image": name}]},
    });
    let owner = |kind: &str, owner: &str| {
        json!([{"apiVersion": "apps/v1", "kind": kind, "name": owner,
                "uid": format!("{ns}-{owner}"), "controller": true}])
    };
    kube.put(
        "deployments",
        json!({"metadata": {"name": name, "namespace": ns,
                            "labels": {"app.kubernetes.io/managed-by": "Helm"}},
               "spec": {"selector": {"matchLabels": selector}, "template": template}}),
    );
    let replica_set = format!("{name}-7d9c5b");
    kube.put(
        "replicasets",
        json!({"metadata": {"name": replica_set, "namespace": ns,
                            "ownerReferences": owner("Deployment", name)},
               "spec": {"selector": {"matchLabels": selector}, "template": template}}),
    );
    kube.put(
        "pods",
        json!({"metadata": {"name": format!("{replica_set}-x1"), "namespace": ns,
                            "labels": template["metadata"]["labels"],
                            "ownerReferences": owner("ReplicaSet", &replica_set)},
               "spec": template["spec"],
               "status": {"phase": "Running", "startTime": started}}),
    );
}

/// A control plane created after the manual setup (index `i`): [`control_plane`] and
/// [`helm_components`] for its host namespace, which it returns.
#[track_caller]
pub fn later_control_plane(
    kube: &FakeKube,
    i: usize,
    annotation: &dyn Fn(Component) -> Option<(&'static str, String)>,
    pod_label: Option<(&str, &str)>,
) -> String {
    let ns = control_plane(kube, i);
    helm_components(kube, std::slice::from_ref(&ns), annotation, pod_label);
    ns
}

/// The annotations of service account `sa` in `namespace`, as the fake cluster holds them.
#[track_caller]
pub fn sa_annotations(kube: &FakeKube, namespace: &str, sa: &str) -> BTreeMap<String, String> {
    let state = kube.state();
    let Some(object) = state["objects"]["serviceaccounts"].get(format!("{namespace}/{sa}")) else {
        panic!("no service account {namespace}/{sa} in the cluster");
    };
    object["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// A string field of a peer's answer, which must be there.
#[track_caller]
fn text(value: &Value, pointer: &str) -> String {
    match value.pointer(pointer).and_then(Value::as_str) {
        Some(s) => s.to_string(),
        None => panic!("no {pointer} in {value:#}"),
    }
}
