//! The Helm chart `charts/idplan` (idplan watch in the Space's cluster), through Helm itself:
//! Helm's Go SDK as the PyPI wheel helm-python-sdk embeds it (no helm binary), and the
//! Kubernetes API schemas of kubernetes-validate, both pinned in `.venv-helm` by
//! scripts/install-test-deps.sh.
//!
//! - `helm lint --strict` passes, and the chart's values.schema.json refuses bad values;
//! - the chart renders (offline, as `helm template` does) with its defaults, with RBAC
//!   narrowed to listed namespaces, with each cloud's identity annotation and with every
//!   optional object, and every object rendered passes the Kubernetes 1.33 schemas strictly;
//! - what is rendered is what idplan watch needs and no more: two replicas running the
//!   contract's flags, the spec's ConfigMap holding the spec byte for byte (which the real
//!   idplan then loads), the restricted security context as the image's user, the probes on
//!   the metrics port, RBAC verbs exactly as listed with no wildcard, the lease Role namespaced;
//! - what cannot work in a cluster (no spec, a state on the pod's own disk) is refused.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::ci_recipes::linter;
use crate::support::{TestDir, idplan_binary, repo_path};

/// The Kubernetes version the rendered manifests are validated against.
const KUBERNETES: &str = "1.33.0";
const RELEASE: &str = "idplan";
const NAMESPACE: &str = "idplan-system";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs Helm through helm-python-sdk: reads `{"chart", "requests": [...]}` as JSON on stdin,
/// answers a list of results. A request is `{"lint": VALUES}` (the lint report) or
/// `{"render": VALUES}` (each template's text and the objects it holds, or Helm's error).
const HELM: &str = r#"
import json, sys
import helm_python as helm
import yaml

job = json.load(sys.stdin)
results = []
for request in job["requests"]:
    if "lint" in request:
        results.append(helm.lint(job["chart"], request["lint"], strict=True,
                                 namespace=job["namespace"], kube_version=job["kube_version"]))
        continue
    try:
        with helm.Chart.load(job["chart"]) as chart:
            manifests = chart.render(request["render"], name=job["release"],
                                     namespace=job["namespace"], is_install=True)
    except helm.HelmError as e:
        results.append({"error": str(e)})
        continue
    objects = []
    try:
        for template, text in sorted(manifests.items()):
            if template.endswith(".yaml"):
                objects += [{"template": template, "object": o}
                            for o in yaml.safe_load_all(text) if o is not None]
    except yaml.YAMLError as e:
        results.append({"error": f"{template} renders what is not YAML: {e}\n{text}"})
        continue
    results.append({"manifests": manifests, "objects": objects})
print(json.dumps(results))
"#;

pub(crate) fn helm_venv(tool: &str) -> PathBuf {
    let path = repo_path(".venv-helm/bin").join(tool);
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-test-deps.sh",
        path.display()
    );
    path
}

/// Helm's answers to `requests`, in order.
fn helm(requests: Vec<Value>) -> Vec<Value> {
    let job = json!({
        "chart": repo_path("charts/idplan"),
        "release": RELEASE,
        "namespace": NAMESPACE,
        "kube_version": format!("v{KUBERNETES}"),
        "requests": requests,
    });
    let mut child = Command::new(helm_venv("python"))
        .args(["-c", HELM])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    serde_json::to_writer(child.stdin.take().unwrap(), &job).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "helm-python-sdk failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What one render gave: each template's text and every object, by kind and name.
struct Rendered {
    manifests: BTreeMap<String, String>,
    objects: Vec<Value>,
}

impl Rendered {
    fn all(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|o| o["kind"] == kind).collect()
    }

    #[track_caller]
    fn one(&self, kind: &str, name: &str) -> &Value {
        let found: Vec<&Value> = self
            .all(kind)
            .into_iter()
            .filter(|o| o["metadata"]["name"] == name)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{kind} {name}: {} rendered, among {:?}",
            found.len(),
            self.names()
        );
        found[0]
    }

    fn names(&self) -> Vec<String> {
        self.objects
            .iter()
            .map(|o| {
                format!(
                    "{}/{}/{}",
                    o["kind"].as_str().unwrap_or("?"),
                    o["metadata"]["namespace"].as_str().unwrap_or("-"),
                    o["metadata"]["name"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }

    fn deployment(&self) -> &Value {
        self.one("Deployment", RELEASE)
    }

    fn container(&self) -> &Value {
        let containers = &self.deployment()["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers.as_array().unwrap().len(), 1, "{containers}");
        &containers[0]
    }

    fn args(&self) -> Vec<String> {
        self.container()["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    }
}

fn parse(result: Value) -> Result<Rendered, String> {
    if let Some(error) = result["error"].as_str() {
        return Err(error.to_string());
    }
    Ok(Rendered {
        manifests: serde_json::from_value(result["manifests"].clone()).unwrap(),
        objects: result["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["object"].clone())
            .collect(),
    })
}

/// Renders the chart with each of `values`; every one must render, and every object it
/// renders must pass the Kubernetes schemas.
fn render_valid(values: Vec<Value>) -> Vec<Rendered> {
    let results = helm(values.iter().map(|v| json!({ "render": v })).collect());
    values
        .iter()
        .zip(results)
        .map(|(v, result)| {
            let rendered =
                parse(result).unwrap_or_else(|e| panic!("the chart does not render with {v}: {e}"));
            kubernetes_validate(&rendered);
            rendered
        })
        .collect()
}

#[track_caller]
fn render_one(values: Value) -> Rendered {
    render_valid(vec![values]).pop().unwrap()
}

/// Helm's refusal of `values`.
#[track_caller]
fn refused(values: Value) -> String {
    let result = helm(vec![json!({ "render": values })]).pop().unwrap();
    match parse(result) {
        Ok(r) => panic!("the chart rendered with {values}: {:?}", r.names()),
        Err(e) => e,
    }
}

/// The rendered manifests pass `kubernetes-validate --strict` for [`KUBERNETES`]: every
/// object is checked (a kind without a schema only when it is a CRD's, the ServiceMonitor).
fn kubernetes_validate(rendered: &Rendered) {
    let dir = TestDir::new();
    let files: Vec<PathBuf> = rendered
        .manifests
        .iter()
        .filter(|(name, text)| name.ends_with(".yaml") && !text.trim().is_empty())
        .map(|(name, text)| dir.write(&name.replace('/', "_"), text))
        .collect();
    let out = Command::new(helm_venv("kubernetes-validate"))
        .args(["--strict", "--kubernetes-version", KUBERNETES])
        .args(&files)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "kubernetes-validate: {report}");
    let minor = KUBERNETES.rsplit_once('.').unwrap().0;
    for object in &rendered.objects {
        let kind = object["kind"].as_str().unwrap();
        let name = object["metadata"]["name"].as_str().unwrap();
        if object["apiVersion"] == "monitoring.coreos.com/v1" {
            assert!(
                report.contains(&format!("Couldn't find schema for kind {kind}")),
                "{report}"
            );
            continue;
        }
        let passed = format!(
            "passed for resource {}/{name} against version {minor}",
            kind.to_lowercase()
        );
        assert!(report.contains(&passed), "{kind} {name}: {report}");
    }
    assert!(!report.contains("ERROR"), "{report}");
}

/// A spec as a team keeps it (comments, its own order), with a remote state.
const SPEC: &str = "# The Space's identities, kept in git.\nversion: 1\nstate: s3://acme-idplan-state/spaces/idplan.state.json\nspaces:\n  - name: prod\n    controlPlanes:\n      - mxp-706c49fa-5bb8-4a7e-9f41-2fc38ef4b065-system\n    aws: { region: us-east-1, cluster: spaces-prod, mode: pod-identity }\n    components:\n      backup: { bucket: acme-spaces-backup }\n";

/// The least a user gives: the spec. Everything else is the chart's defaults.
fn defaults() -> Value {
    json!({ "spec": SPEC })
}

/// `base` with `patch` merged in (objects merged, anything else replaced).
fn with(mut base: Value, patch: Value) -> Value {
    fn merge(into: &mut Value, patch: Value) {
        match (into, patch) {
            (Value::Object(into), Value::Object(patch)) => {
                for (k, v) in patch {
                    merge(into.entry(k).or_insert(Value::Null), v);
                }
            }
            (into, patch) => *into = patch,
        }
    }
    merge(&mut base, patch);
    base
}

/// The uid:gid of the image's USER, from the Dockerfile.
fn image_user() -> (i64, i64) {
    let dockerfile = std::fs::read_to_string(repo_path("Dockerfile")).unwrap();
    let user = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the Dockerfile sets a USER");
    let (uid, gid) = user.trim().split_once(':').expect("USER uid:gid");
    (uid.parse().unwrap(), gid.parse().unwrap())
}

/// The real idplan loads the spec the ConfigMap `cm` holds, as the pod's file.
#[track_caller]
fn idplan_loads(cm: &Value) {
    let text = cm["data"]["idplan.yaml"].as_str().expect("the spec's key");
    let dir = TestDir::new();
    let file = dir.write("etc/idplan/idplan.yaml", text);
    let out = Command::new(idplan_binary())
        .args(["validate", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "idplan validate of the ConfigMap's spec:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn helm_lints_the_chart_strictly_and_its_schema_refuses_bad_values() {
    let chart = repo_path("charts/idplan");
    let chart_yaml = std::fs::read_to_string(chart.join("Chart.yaml")).unwrap();
    assert!(
        chart_yaml.contains("\napiVersion: v2\n") || chart_yaml.starts_with("apiVersion: v2\n")
    );
    for field in [
        format!("\nappVersion: \"{VERSION}\"\n"),
        format!("\nversion: {VERSION}\n"),
    ] {
        assert!(
            chart_yaml.contains(&field),
            "charts/idplan/Chart.yaml lacks `{}`: the chart's version and appVersion are Cargo.toml's",
            field.trim()
        );
    }

    let cases = [
        defaults(),
        with(
            defaults(),
            json!({ "rbac": { "restartNamespaces": ["mxp-a-system"] } }),
        ),
        with(
            defaults(),
            json!({
                "podDisruptionBudget": { "enabled": true },
                "metrics": { "serviceMonitor": { "enabled": true } },
            }),
        ),
    ];
    let reports = helm(cases.iter().map(|v| json!({ "lint": v })).collect());
    for (values, report) in cases.iter().zip(&reports) {
        assert_eq!(report["total_charts_linted"], 1, "{report}");
        assert_eq!(report["errors"], json!([]), "{values}: {report}");
        // Severity 1 is information ("icon is recommended"); 2 and 3 are warnings and errors.
        for message in report["messages"].as_array().unwrap() {
            assert!(
                message["severity"].as_i64() < Some(2),
                "{values}: {message}"
            );
        }
    }

    // The lint runs the schema: a value it refuses is an error, naming the value.
    let bad = with(defaults(), json!({ "watch": { "logFormat": "xml" } }));
    let report = helm(vec![json!({ "lint": bad })]).pop().unwrap();
    let errors = report["errors"].to_string();
    assert!(errors.contains("/watch/logFormat"), "{report}");

    // And so does a render (an install), for each kind of mistake.
    for (values, needle) in [
        (
            json!({ "watch": { "logFormat": "xml" } }),
            "/watch/logFormat",
        ),
        (
            json!({ "watch": { "debounce": "soon" } }),
            "/watch/debounce",
        ),
        (
            json!({ "watch": { "state": "state/idplan.json" } }),
            "/watch/state",
        ),
        (json!({ "replicaCount": 0 }), "/replicaCount"),
        (
            json!({ "rbac": { "restartNamespaces": ["Not_A_Namespace"] } }),
            "/rbac/restartNamespaces/0",
        ),
        (
            json!({ "serviceAcount": { "create": false } }),
            "serviceAcount",
        ),
    ] {
        let error = refused(with(defaults(), values.clone()));
        assert!(error.contains(needle), "{values}: {error}");
    }

    // check-jsonschema agrees: the schema is a valid JSON Schema, and the chart's own
    // values.yaml is valid under it.
    let schema = chart.join("values.schema.json");
    let out = Command::new(linter("check-jsonschema"))
        .arg("--check-metaschema")
        .arg(&schema)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = Command::new(linter("check-jsonschema"))
        .arg("--schemafile")
        .arg(&schema)
        .arg(chart.join("values.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let dir = TestDir::new();
    let typo = dir.write("values.yaml", "watch:\n  resync: every ten minutes\n");
    let out = Command::new(linter("check-jsonschema"))
        .arg("--schemafile")
        .arg(&schema)
        .arg(&typo)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
}

#[test]
fn defaults_render_two_restricted_replicas_of_idplan_watch_on_the_spec_configmap() {
    let r = render_one(defaults());
    let d = r.deployment();
    assert_eq!(d["metadata"]["namespace"], NAMESPACE);
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    let c = r.container();
    assert_eq!(c["image"], format!("ghcr.io/acme/idplan:{VERSION}"));

    // The contract's command line, with the chart's defaults.
    assert_eq!(
        r.args(),
        [
            "watch",
            "-f",
            "/etc/idplan/idplan.yaml",
            "--listen",
            "0.0.0.0:9090",
            "--debounce",
            "5s",
            "--resync",
            "10m",
            "--max-calls-per-second",
            "20",
            "--log-format",
            "json",
            "--leader-election=true",
            "--leader-election-name",
            "idplan-watch",
            "--leader-election-lease-duration",
            "15s",
        ]
    );
    // POD_NAME, the leader's identity, from the downward API.
    assert_eq!(
        c["env"],
        json!([{ "name": "POD_NAME", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } }])
    );

    // Health and metrics on the port named `metrics`.
    assert_eq!(
        c["ports"],
        json!([{ "name": "metrics", "containerPort": 9090, "protocol": "TCP" }])
    );
    assert_eq!(
        c["livenessProbe"]["httpGet"],
        json!({ "path": "/healthz", "port": "metrics" })
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"],
        json!({ "path": "/readyz", "port": "metrics" })
    );
    let service = r.one("Service", "idplan-metrics");
    assert_eq!(
        service["spec"]["ports"],
        json!([{ "name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP" }])
    );
    assert_eq!(
        service["spec"]["selector"],
        d["spec"]["selector"]["matchLabels"]
    );
    assert!(r.all("PodDisruptionBudget").is_empty() && r.all("ServiceMonitor").is_empty());

    // Restricted, as the image's own non-root user.
    let (uid, gid) = image_user();
    assert_ne!(uid, 0);
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["runAsUser"], uid);
    assert_eq!(sc["runAsGroup"], gid);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"], json!({ "drop": ["ALL"] }));
    assert_eq!(sc["seccompProfile"], json!({ "type": "RuntimeDefault" }));
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], uid);
    assert_eq!(
        pod["securityContext"]["seccompProfile"],
        json!({ "type": "RuntimeDefault" })
    );
    assert_eq!(c["resources"]["limits"]["memory"], "128Mi");
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["requests"]["cpu"].is_string());

    // The spec: a ConfigMap mounted as a directory (a subPath mount would never see an
    // update), and /tmp writable on the read-only root.
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 2, "{mounts:?}");
    assert!(mounts.iter().all(|m| m.get("subPath").is_none()));
    let spec_mount = mounts.iter().find(|m| m["name"] == "spec").unwrap();
    assert_eq!(spec_mount["mountPath"], "/etc/idplan");
    assert_eq!(spec_mount["readOnly"], true);
    let tmp = mounts.iter().find(|m| m["name"] == "tmp").unwrap();
    assert_eq!(tmp["mountPath"], "/tmp");
    let volumes = pod["volumes"].as_array().unwrap();
    let spec_volume = volumes.iter().find(|v| v["name"] == "spec").unwrap();
    assert_eq!(
        spec_volume["configMap"],
        json!({ "name": RELEASE, "items": [{ "key": "idplan.yaml", "path": "idplan.yaml" }] })
    );
    assert!(
        volumes
            .iter()
            .any(|v| v["name"] == "tmp" && v["emptyDir"].is_object())
    );

    // The ConfigMap holds the spec byte for byte, and it is a spec idplan loads.
    let cm = r.one("ConfigMap", RELEASE);
    assert_eq!(cm["metadata"]["namespace"], NAMESPACE);
    assert_eq!(cm["data"], json!({ "idplan.yaml": SPEC }));
    idplan_loads(cm);

    // The service account it runs as, with no identity annotation until one is given.
    let sa = r.one("ServiceAccount", RELEASE);
    assert_eq!(pod["serviceAccountName"], RELEASE);
    assert_eq!(sa["metadata"]["namespace"], NAMESPACE);
    assert!(sa["metadata"].get("annotations").is_none(), "{sa}");
    assert!(
        d["spec"]["template"]["metadata"]["labels"]
            .get("azure.workload.identity/use")
            .is_none()
    );

    let notes = &r.manifests["idplan/templates/NOTES.txt"];
    assert!(
        notes.contains("get lease idplan-watch") && notes.contains("/metrics"),
        "{notes}"
    );
}

/// One RBAC rule: (kind/name of its role, groups, resources, resource names, verbs).
type Rule = (String, Vec<String>, Vec<String>, Vec<String>, Vec<String>);

/// Every rule of every Role and ClusterRole rendered.
fn rules(r: &Rendered) -> Vec<Rule> {
    let own = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for role in r.all("ClusterRole").into_iter().chain(r.all("Role")) {
        for rule in role["rules"].as_array().unwrap() {
            out.push((
                format!(
                    "{}/{}",
                    role["kind"].as_str().unwrap(),
                    role["metadata"]["name"].as_str().unwrap()
                ),
                own(&rule["apiGroups"]),
                own(&rule["resources"]),
                own(&rule["resourceNames"]),
                own(&rule["verbs"]),
            ));
        }
    }
    out.sort();
    out
}

fn bound_to_idplan(binding: &Value) {
    assert_eq!(
        binding["subjects"],
        json!([{ "kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE }]),
        "{binding}"
    );
}

#[test]
fn rbac_grants_exactly_what_idplan_watch_uses_and_narrows_to_listed_namespaces() {
    let [default, narrowed, no_election] = render_valid(vec![
        defaults(),
        with(
            defaults(),
            json!({ "rbac": { "restartNamespaces": ["mxp-a-system", "mxp-b-system"] } }),
        ),
        with(
            defaults(),
            json!({ "watch": { "leaderElection": { "enabled": false } } }),
        ),
    ])
    .try_into()
    .ok()
    .unwrap();

    let v = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let expected = vec![
        (
            "ClusterRole/idplan-read".to_string(),
            v(&[""]),
            v(&["serviceaccounts", "pods"]),
            v(&[]),
            v(&["get", "list"]),
        ),
        (
            "ClusterRole/idplan-read".to_string(),
            v(&["apps"]),
            v(&["replicasets"]),
            v(&[]),
            v(&["get", "list"]),
        ),
        (
            "ClusterRole/idplan-read".to_string(),
            v(&["spaces.upbound.io"]),
            v(&["controlplanes"]),
            v(&[]),
            v(&["list", "watch"]),
        ),
        (
            "ClusterRole/idplan-restart".to_string(),
            v(&["apps"]),
            v(&["deployments"]),
            v(&[]),
            v(&["patch"]),
        ),
        (
            "Role/idplan-leader-election".to_string(),
            v(&["coordination.k8s.io"]),
            v(&["leases"]),
            v(&[]),
            v(&["create"]),
        ),
        (
            "Role/idplan-leader-election".to_string(),
            v(&["coordination.k8s.io"]),
            v(&["leases"]),
            v(&["idplan-watch"]),
            v(&["get", "update"]),
        ),
    ];
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(rules(&default), sorted);
    assert_eq!(rules(&narrowed), sorted);
    for (_, groups, resources, names, verbs) in rules(&default) {
        for word in groups.iter().chain(&resources).chain(&names).chain(&verbs) {
            assert!(!word.contains('*'), "a wildcard: {word}");
        }
    }

    // The lease Role is namespaced, in the release's namespace, bound to idplan's account.
    let lease = default.one("Role", "idplan-leader-election");
    assert_eq!(lease["metadata"]["namespace"], NAMESPACE);
    let lease_binding = default.one("RoleBinding", "idplan-leader-election");
    assert_eq!(lease_binding["metadata"]["namespace"], NAMESPACE);
    assert_eq!(
        lease_binding["roleRef"],
        json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "idplan-leader-election" })
    );
    bound_to_idplan(lease_binding);

    // Reads cluster-wide; restarts cluster-wide by default...
    for r in [&default, &narrowed] {
        let read = r.one("ClusterRoleBinding", "idplan-read");
        assert_eq!(read["roleRef"]["name"], "idplan-read");
        bound_to_idplan(read);
    }
    let restart = default.one("ClusterRoleBinding", "idplan-restart");
    assert_eq!(restart["roleRef"]["kind"], "ClusterRole");
    assert_eq!(restart["roleRef"]["name"], "idplan-restart");
    bound_to_idplan(restart);
    assert!(
        default
            .all("RoleBinding")
            .iter()
            .all(|b| b["metadata"]["name"] != "idplan-restart")
    );

    // ...and only in the listed namespaces when narrowed: one RoleBinding each, no
    // cluster-wide binding.
    assert!(
        narrowed
            .all("ClusterRoleBinding")
            .iter()
            .all(|b| b["metadata"]["name"] != "idplan-restart"),
        "{:?}",
        narrowed.names()
    );
    let mut restart_namespaces: Vec<&str> = narrowed
        .all("RoleBinding")
        .into_iter()
        .filter(|b| b["metadata"]["name"] == "idplan-restart")
        .map(|b| {
            assert_eq!(
                b["roleRef"],
                json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "idplan-restart" })
            );
            bound_to_idplan(b);
            b["metadata"]["namespace"].as_str().unwrap()
        })
        .collect();
    restart_namespaces.sort();
    assert_eq!(restart_namespaces, ["mxp-a-system", "mxp-b-system"]);
    let notes = &narrowed.manifests["idplan/templates/NOTES.txt"];
    assert!(notes.contains("mxp-a-system, mxp-b-system"), "{notes}");

    // Without leader election: no Lease rights, and idplan is told.
    assert!(
        no_election.all("Role").is_empty(),
        "{:?}",
        no_election.names()
    );
    assert!(
        no_election
            .all("RoleBinding")
            .iter()
            .all(|b| b["metadata"]["name"] != "idplan-leader-election")
    );
    let args = no_election.args();
    assert!(
        args.contains(&"--leader-election=false".to_string()),
        "{args:?}"
    );
    assert!(
        !args.iter().any(|a| a.starts_with("--leader-election-")),
        "{args:?}"
    );
}

#[test]
fn each_clouds_identity_annotation_reaches_idplans_service_account() {
    let clouds = [
        (
            "eks.amazonaws.com/role-arn",
            "arn:aws:iam::123456789012:role/idplan-watch",
        ),
        (
            "azure.workload.identity/client-id",
            "6f1c2a3b-0000-4000-8000-00000000c0de",
        ),
        (
            "iam.gke.io/gcp-service-account",
            "idplan-watch@acme-spaces.iam.gserviceaccount.com",
        ),
    ];
    let rendered = render_valid(
        clouds
            .iter()
            .map(|(key, value)| {
                with(
                    defaults(),
                    json!({ "serviceAccount": { "annotations": { *key: value } } }),
                )
            })
            .collect(),
    );
    for ((key, value), r) in clouds.iter().zip(&rendered) {
        let sa = r.one("ServiceAccount", RELEASE);
        assert_eq!(
            sa["metadata"]["annotations"],
            json!({ *key: value }),
            "{key}"
        );
        let labels = &r.deployment()["spec"]["template"]["metadata"]["labels"];
        // Azure Workload Identity's webhook injects the token only into pods labelled so.
        let azure = *key == "azure.workload.identity/client-id";
        assert_eq!(
            labels.get("azure.workload.identity/use"),
            azure.then(|| json!("true")).as_ref(),
            "{key}: {labels}"
        );
        assert_eq!(
            r.deployment()["spec"]["template"]["spec"]["serviceAccountName"],
            RELEASE
        );
    }
}

#[test]
fn the_options_render_valid_and_do_what_they_say() {
    let spec_map = json!({
        "version": 1,
        "spaces": [{
            "name": "prod",
            "controlPlanes": ["mxp-706c49fa-5bb8-4a7e-9f41-2fc38ef4b065-system"],
            "gcp": { "project": "acme-spaces", "cluster": { "location": "us-central1", "name": "spaces" } },
            "components": { "backup": { "bucket": "acme-spaces-backup" } },
        }],
    });
    let [options, existing] = render_valid(vec![
        json!({
            "spec": spec_map,
            "watch": {
                "state": "gs://acme-idplan-state/idplan.state.json",
                "debounce": "2s",
                "resync": "1h",
                "maxCallsPerSecond": 5,
                "logFormat": "text",
                "parallelism": 4,
                "lockTimeout": "10m",
                "leaderElection": { "name": "idplan-prod", "leaseDuration": "30s" },
                "extraArgs": ["--verbose"],
            },
            "image": { "digest": format!("sha256:{}", "ab".repeat(32)) },
            "env": [{ "name": "AWS_REGION", "value": "us-east-1" }],
            "replicaCount": 3,
            "podDisruptionBudget": { "enabled": true },
            "metrics": { "port": 9100, "serviceMonitor": { "enabled": true, "labels": { "release": "prom" } } },
        }),
        json!({
            "existingConfigMap": "team-idplan",
            "existingConfigMapKey": "spec.yaml",
            "watch": { "state": "azblob://acme/idplan/idplan.state.json" },
        }),
    ])
    .try_into()
    .ok()
    .unwrap();

    assert_eq!(options.deployment()["spec"]["replicas"], 3);
    assert_eq!(
        options.args(),
        [
            "watch",
            "-f",
            "/etc/idplan/idplan.yaml",
            "--listen",
            "0.0.0.0:9100",
            "--state",
            "gs://acme-idplan-state/idplan.state.json",
            "--debounce",
            "2s",
            "--resync",
            "1h",
            "--max-calls-per-second",
            "5",
            "--log-format",
            "text",
            "--leader-election=true",
            "--leader-election-name",
            "idplan-prod",
            "--leader-election-lease-duration",
            "30s",
            "--parallelism",
            "4",
            "--lock-timeout",
            "10m",
            "--verbose",
        ]
    );
    assert_eq!(
        options.container()["image"],
        format!("ghcr.io/acme/idplan@sha256:{}", "ab".repeat(32))
    );
    let env = &options.container()["env"];
    assert_eq!(env[0]["name"], "POD_NAME");
    assert_eq!(
        env[1],
        json!({ "name": "AWS_REGION", "value": "us-east-1" })
    );
    assert_eq!(env.as_array().unwrap().len(), 2);
    assert_eq!(options.container()["ports"][0]["containerPort"], 9100);
    let lease = options.one("Role", "idplan-leader-election");
    assert_eq!(lease["rules"][1]["resourceNames"], json!(["idplan-prod"]));

    // A spec given as a map is written out as YAML that idplan loads.
    idplan_loads(options.one("ConfigMap", RELEASE));

    let pdb = options.one("PodDisruptionBudget", RELEASE);
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        options.deployment()["spec"]["selector"]["matchLabels"]
    );
    let monitor = options.one("ServiceMonitor", RELEASE);
    assert_eq!(monitor["metadata"]["labels"]["release"], "prom");
    assert_eq!(
        monitor["spec"]["endpoints"],
        json!([{ "port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s" }])
    );
    // It selects the metrics Service (whose labels hold the pods' selector labels).
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap();
    assert_eq!(
        Value::Object(selector.clone()),
        options.deployment()["spec"]["selector"]["matchLabels"]
    );
    let service_labels = &options.one("Service", "idplan-metrics")["metadata"]["labels"];
    for (k, v) in selector {
        assert_eq!(&service_labels[k], v, "{service_labels}");
    }
    assert_eq!(
        monitor["spec"]["namespaceSelector"],
        json!({ "matchNames": [NAMESPACE] })
    );

    // A ConfigMap of the team's own: the chart makes none and mounts that one's key.
    assert!(
        existing.all("ConfigMap").is_empty(),
        "{:?}",
        existing.names()
    );
    let volumes = &existing.deployment()["spec"]["template"]["spec"]["volumes"];
    assert_eq!(
        volumes[0]["configMap"],
        json!({ "name": "team-idplan", "items": [{ "key": "spec.yaml", "path": "idplan.yaml" }] })
    );
}

#[test]
fn what_cannot_work_in_a_cluster_is_refused() {
    let no_spec = refused(json!({}));
    assert!(no_spec.contains("set `spec`"), "{no_spec}");

    // The pod's files are read-only and die with it: the state must be remote.
    let local = SPEC.replace(
        "state: s3://acme-idplan-state/spaces/idplan.state.json",
        "state: state/idplan.state.json",
    );
    assert_ne!(local, SPEC);
    let error = refused(json!({ "spec": local }));
    assert!(
        error.contains("the state \"state/idplan.state.json\" is not remote"),
        "{error}"
    );
    let none = SPEC.replace(
        "state: s3://acme-idplan-state/spaces/idplan.state.json\n",
        "",
    );
    let error = refused(json!({ "spec": none }));
    assert!(error.contains("no state location"), "{error}");
    // Given another way, it is enough.
    render_valid(vec![
        json!({ "spec": none, "watch": { "state": "s3://acme/idplan.state.json" } }),
        json!({ "spec": none, "env": [{ "name": "IDPLAN_STATE", "value": "s3://acme/s.json" }] }),
    ]);

    let error = refused(json!({ "spec": "version: [1" }));
    assert!(error.contains("`spec` is not YAML"), "{error}");
    let error = refused(with(
        defaults(),
        json!({ "metrics": { "service": { "enabled": false }, "serviceMonitor": { "enabled": true } } }),
    ));
    assert!(error.contains("needs metrics.service.enabled"), "{error}");
}

#[test]
fn kubernetes_validate_refuses_what_the_api_server_would() {
    // The validator the other tests trust does refuse: a field the API does not have, and a
    // field of the wrong type.
    let dir = TestDir::new();
    let unknown = dir.write(
        "unknown.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: idplan\nautomountToken: true\n",
    );
    let wrong = dir.write(
        "wrong.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: idplan\nspec:\n  replicas: two\n  selector: {}\n  template: {}\n",
    );
    for file in [unknown, wrong] {
        let out = Command::new(helm_venv("kubernetes-validate"))
            .args(["--strict", "--kubernetes-version", KUBERNETES])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{} passed: {}",
            file.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// Every flag the chart passes is one `idplan watch` takes.
#[test]
fn every_flag_the_chart_passes_is_one_idplan_watch_takes() {
    let r = render_one(with(
        defaults(),
        json!({ "watch": { "state": "s3://a/b", "parallelism": 2, "lockTimeout": "1m" } }),
    ));
    let help = Command::new(idplan_binary())
        .args(["watch", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success(), "{help:?}");
    let help = String::from_utf8_lossy(&help.stdout);
    for arg in r.args().iter().filter(|a| a.starts_with('-')) {
        let flag = arg.split('=').next().unwrap();
        // The flag as a word of the help: not the start of a longer one.
        let named = help.match_indices(flag).any(|(at, _)| {
            !help[at + flag.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
        });
        assert!(named, "idplan watch does not take {flag}:\n{help}");
    }
}

/// The quoted strings of the Rust sources under `dirs` (relative to the repository), with the
/// file each came from.
fn string_literals(paths: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for path in paths {
        let full = repo_path(path);
        let files: Vec<PathBuf> = if full.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&full)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "rs"))
                .collect();
            files.sort();
            files
        } else {
            vec![full]
        };
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            // Every other piece between quotes is inside a literal; the filters below keep
            // only what reads as an API name, so a stray quote in a comment costs nothing.
            for piece in text.split('"').skip(1).step_by(2) {
                out.push((name.clone(), piece.to_string()));
            }
        }
    }
    out
}

/// Each ARM operation the Azure driver declares: its file, its resource type's constant, its
/// method and the type's provider path. Read from the declarations with white space dropped:
/// `const TYPE: ArmType = ArmType::new("Microsoft.X/..", ..)` and `TYPE.op(Method::GET, ..)`.
fn arm_operations() -> Vec<(String, String, String, String)> {
    let dir = repo_path("src/provider/azure");
    let sources: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, text.split_whitespace().collect())
        })
        .collect();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut paths = std::collections::HashMap::new();
    for (_, text) in &sources {
        for declared in text.split("const").skip(1) {
            let name = ident(declared);
            if let Some(rest) = declared.strip_prefix(&format!("{name}:ArmType=ArmType::new(\"")) {
                let path = rest.split('"').next().unwrap();
                paths.insert(name, path.to_string());
            }
        }
    }
    assert!(paths.len() >= 5, "{} ARM resource types found", paths.len());
    let mut out = Vec::new();
    for (file, text) in &sources {
        for (before, after) in text
            .split(".op(Method::")
            .zip(text.split(".op(Method::").skip(1))
        {
            let op_type: String = before
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let path = paths
                .get(&op_type)
                .unwrap_or_else(|| panic!("{file}: {op_type} is not a declared ArmType"));
            out.push((file.clone(), op_type, ident(after), path.clone()));
        }
    }
    out
}

/// `needle` in `text` as a whole word (not the start or end of a longer name).
fn mentions(text: &str, needle: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || "_.:/".contains(c);
    text.match_indices(needle)
        .any(|(at, _)| !text[..at].ends_with(word) && !text[at + needle.len()..].starts_with(word))
}

/// The complete JSON documents of the ```json blocks of `markdown` (fragments, which start
/// indented, are left out).
fn json_blocks(markdown: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut rest = markdown;
    while let Some(start) = rest.find("```json\n") {
        let body = &rest[start + "```json\n".len()..];
        let end = body.find("```").expect("a closed code block");
        if body.starts_with('{') {
            out.push(serde_json::from_str(&body[..end]).unwrap_or_else(|e| {
                panic!(
                    "docs/watch.md: a JSON block does not parse: {e}\n{}",
                    &body[..end]
                )
            }));
        }
        rest = &body[end..];
    }
    out
}

#[test]
fn docs_watch_names_every_cloud_call_idplan_makes() {
    let doc = std::fs::read_to_string(repo_path("docs/watch.md")).unwrap();

    // AWS: every IAM, EKS and S3 operation idplan calls is an action of a policy document
    // (quoted), but for the survey of `idplan init`, which the prose names.
    let aws = string_literals(&["src/provider/aws", "src/state/s3.rs"]);
    let mut seen = 0;
    for (file, literal) in &aws {
        let Some((service, op)) = literal.split_once(':') else {
            continue;
        };
        if !["iam", "eks", "s3", "sts"].contains(&service)
            || op.is_empty()
            || !op.chars().all(|c| c.is_ascii_alphanumeric())
        {
            continue;
        }
        seen += 1;
        if file == "survey.rs" || service == "sts" {
            assert!(mentions(&doc, op), "docs/watch.md does not name {literal}");
        } else {
            assert!(
                doc.contains(&format!("\"{literal}\"")) || doc.contains(&format!("`{literal}`")),
                "docs/watch.md has no permission for {literal} ({file})"
            );
        }
    }
    assert!(
        seen > 25,
        "{seen} AWS operations found: is the scan still right?"
    );

    // Azure: each ARM operation (`TYPE.op(Method::GET, ..)` on a `const TYPE: ArmType =
    // ArmType::new("Microsoft.X/..", ..)`) is the action `Microsoft.X/.../read`, `/write` or
    // `/delete`; the state's blob operations are blob DataActions.
    let mut seen = 0;
    for (file, op_type, method, path) in arm_operations() {
        let verb = match method.as_str() {
            "GET" => "read",
            "PUT" => "write",
            "DELETE" => "delete",
            _ => panic!("{file}: {op_type}: which action is {method}?"),
        };
        seen += 1;
        let action = format!("\"{path}/{verb}\"");
        assert!(
            doc.contains(&action),
            "docs/watch.md has no {action} for {method} {path} ({file})"
        );
    }
    assert!(seen >= 10, "{seen} ARM operations found");
    for (_, literal) in string_literals(&["src/state/azblob.rs"]) {
        let Some(op) = literal.strip_prefix("blob:") else {
            continue;
        };
        let action = match op {
            "GetBlob" | "GetBlobProperties" => "blobs/read",
            "PutBlob" | "LeaseBlob" | "SetBlobMetadata" => "blobs/write",
            _ => panic!("src/state/azblob.rs: which DataAction does blob:{op} need?"),
        };
        let action =
            format!("\"Microsoft.Storage/storageAccounts/blobServices/containers/{action}\"");
        assert!(
            doc.contains(&action),
            "docs/watch.md has no {action} for blob:{op}"
        );
    }

    // GCP: each API method is named after its permission, but for a few renames.
    let gcp = string_literals(&["src/provider/gcp", "src/state/gcs.rs"]);
    let mut seen = 0;
    for (file, literal) in &gcp {
        let permission = if let Some(rest) = literal.strip_prefix("cloudresourcemanager.projects.")
        {
            format!("resourcemanager.projects.{rest}")
        } else if let Some(rest) = literal.strip_prefix("container.projects.locations.clusters.") {
            format!("container.clusters.{rest}")
        } else if let Some(rest) = literal.strip_prefix("iam.projects.serviceAccounts.") {
            format!(
                "iam.serviceAccounts.{}",
                if rest == "patch" { "update" } else { rest }
            )
        } else if let Some(rest) = literal.strip_prefix("secretmanager.projects.secrets.") {
            format!("secretmanager.secrets.{rest}")
        } else if literal == "storage.objects.insert" {
            "storage.objects.create".to_string()
        } else if literal.starts_with("storage.buckets.") || literal.starts_with("storage.objects.")
        {
            literal.clone()
        } else {
            continue;
        };
        if !permission
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            continue;
        }
        seen += 1;
        assert!(
            mentions(&doc, &permission),
            "docs/watch.md has no permission {permission} for {literal} ({file})"
        );
    }
    assert!(seen > 15, "{seen} Google API methods found");

    // The documents parse, and the watcher's never delete, untag or remove.
    let blocks = json_blocks(&doc);
    let aws_watcher = blocks
        .iter()
        .find(|b| b["Version"] == "2012-10-17")
        .expect("the watcher's IAM policy");
    let mut actions = Vec::new();
    for statement in aws_watcher["Statement"].as_array().unwrap() {
        let listed = match &statement["Action"] {
            Value::String(a) => vec![a.clone()],
            list => strings_of(list),
        };
        for action in listed {
            let op = action.split_once(':').unwrap().1;
            // The one delete: the state's lock object, released after every run.
            let lock_release = action == "s3:DeleteObject"
                && statement["Resource"]
                    .as_str()
                    .is_some_and(|r| r.ends_with(".lock"));
            assert!(
                lock_release
                    || !["Delete", "Untag", "Remove", "UpdateRole"]
                        .iter()
                        .any(|p| op.starts_with(p)),
                "the watcher's policy allows {action}: {statement}"
            );
            actions.push(action);
        }
    }
    assert!(
        actions.iter().any(|a| a == "iam:UpdateAssumeRolePolicy"),
        "{actions:?}"
    );
    let azure_watcher = blocks
        .iter()
        .find(|b| b["Name"] == "idplan watch")
        .expect("the watcher's Azure role");
    let azure_actions = strings_of(&azure_watcher["Actions"]);
    assert!(
        azure_actions.iter().all(|a| !a.ends_with("/delete")),
        "{azure_actions:?}"
    );
    assert!(blocks.iter().any(|b| {
        b["Name"] == "idplan state"
            && strings_of(&b["DataActions"])
                .iter()
                .all(|a| !a.ends_with("/delete"))
    }));
}

fn strings_of(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn the_watch_and_chart_docs_link_to_what_exists() {
    for page in ["docs/watch.md", "charts/idplan/README.md"] {
        let text = std::fs::read_to_string(repo_path(page)).unwrap();
        let dir = repo_path(page).parent().unwrap().to_path_buf();
        let mut links = 0;
        for (at, _) in text.match_indices("](") {
            let target: String = text[at + 2..].chars().take_while(|c| *c != ')').collect();
            if target.starts_with("http") {
                continue;
            }
            links += 1;
            let (file, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let path = if file.is_empty() {
                repo_path(page)
            } else {
                dir.join(file)
            };
            assert!(path.exists(), "{page}: {target}: no {}", path.display());
            if !fragment.is_empty() {
                let linked = std::fs::read_to_string(&path).unwrap();
                let anchors: Vec<String> = linked
                    .lines()
                    .filter_map(|l| l.strip_prefix('#'))
                    .map(|l| anchor(l.trim_start_matches('#')))
                    .collect();
                assert!(
                    anchors.iter().any(|a| a == fragment),
                    "{page}: {target}: no heading #{fragment} in {}",
                    path.display()
                );
            }
        }
        assert!(links > 0, "{page}: no link found: is the scan still right?");
    }
}
