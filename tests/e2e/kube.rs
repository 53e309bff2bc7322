//! The Space cluster side, end to end through the idplan binary: an Azure space (the fake ARM
//! server) whose control planes are discovered on a fake Kubernetes API server
//! (`tests/support/fake_kube.py`); drift of new and gone control planes; `verify` findings;
//! `verify --restart` patches exactly the stale deployments.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::fake_arm::SUB;
use crate::support::fake_kube::KUBE_TOKEN;
use crate::support::{FakeArm, FakeKube, Ministack, Output, TestDir, subject};
const ALPHA: &str = "mxp-aaaaaaaa-5bb8-4a7e-9f41-2fc38ef4b065-system";
const BETA: &str = "beta-host";
const DELTA: &str = "mxp-dddddddd-5bb8-4a7e-9f41-2fc38ef4b065-system";
const STATIC: &str = "mxp-static-system";
const SA: &str = "mxp-controller";
const CLIENT_ID: &str = "azure.workload.identity/client-id";
const USE: &str = "azure.workload.identity/use";
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// A fourth control plane, `delta` of group `team`, that no apply has covered.
fn put_delta(kube: &FakeKube) {
    kube.put(
        "controlplanes",
        control_plane(
            "team",
            "delta",
            Some("dddddddd-5bb8-4a7e-9f41-2fc38ef4b065"),
            None,
        ),
    );
}

fn control_plane(namespace: &str, name: &str, id: Option<&str>, host: Option<&str>) -> Value {
    let mut cp = json!({"metadata": {"name": name, "namespace": namespace}, "spec": {}});
    if let Some(host) = host {
        cp["spec"]["hostNamespace"] = json!({"name": host});
    }
    if let Some(id) = id {
        cp["status"] = json!({"controlPlaneID": id});
    }
    cp
}

/// Control plane default/alpha, whose host namespace is [`ALPHA`].
fn alpha() -> Value {
    control_plane(
        "default",
        "alpha",
        Some("aaaaaaaa-5bb8-4a7e-9f41-2fc38ef4b065"),
        None,
    )
}

struct World {
    arm: FakeArm,
    kube: FakeKube,
    dir: TestDir,
}

impl World {
    fn new() -> World {
        let arm = FakeArm::start();
        arm.seed_cluster(json!({}));
        arm.seed_storage("acmebackup");
        let kube = FakeKube::start();
        kube.put("controlplanes", alpha());
        kube.put(
            "controlplanes",
            control_plane("team", "beta", Some("bbbbbbbb"), Some(BETA)),
        );
        kube.put("controlplanes", control_plane("team", "gamma", None, None));
        let dir = TestDir::new();
        let kubeconfig = dir.write("kubeconfig", &kube.kubeconfig("space-prod"));
        dir.write(
            "idplan.yaml",
            &format!(
                "version: 1\nspaces:\n  - name: prod\n    controlPlanes:\n      discover:\n        \
                 context: space-prod\n        kubeconfig: {}\n      list: [{STATIC}, {BETA}]\n    \
                 azure:\n      subscription: {SUB}\n      resourceGroup: spaces\n      location: eastus\n      \
                 cluster: aks-prod\n    components:\n      backup: {{ storageAccount: acmebackup }}\n",
                kubeconfig.display()
            ),
        );
        World { arm, kube, dir }
    }

    fn idplan(&self, args: &[&str]) -> Output {
        self.dir.idplan_azure(&self.arm, args)
    }

    /// The subjects of the backup identity's credentials.
    #[track_caller]
    fn subjects(&self) -> BTreeSet<String> {
        self.arm.subjects("spaces-prod-backup")
    }

    #[track_caller]
    fn client_id(&self) -> String {
        self.arm.identity_property("spaces-prod-backup", "clientId")
    }

    /// The component's service account, its deployment, replica set and one pod.
    fn workload(&self, ns: &str, annotation: Option<&str>, started: &str) {
        let mut sa = json!({"metadata": {"name": SA, "namespace": ns}});
        if let Some(client_id) = annotation {
            sa["metadata"]["annotations"] = json!({ CLIENT_ID: client_id });
        }
        self.kube.put("serviceaccounts", sa);
        let labels = json!({"app": SA});
        let template = json!({"metadata": {"labels": labels},
                              "spec": {"serviceAccountName": SA, "containers": [{"name": "c", "image": "x"}]}});
        self.kube.put(
            "deployments",
            json!({"metadata": {"name": SA, "namespace": ns},
                   "spec": {"selector": {"matchLabels": labels}, "template": template}}),
        );
        let owner = |kind: &str, name: &str| json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u", "controller": true}]);
        self.kube.put(
            "replicasets",
            json!({"metadata": {"name": format!("{SA}-5d8f"), "namespace": ns,
                                "ownerReferences": owner("Deployment", SA)},
                   "spec": {"selector": {"matchLabels": labels}, "template": template}}),
        );
        self.kube.put(
            "pods",
            json!({"metadata": {"name": format!("{SA}-5d8f-x1"), "namespace": ns,
                                "labels": {"app": SA, USE: "true"},
                                "ownerReferences": owner("ReplicaSet", &format!("{SA}-5d8f"))},
                   "spec": {"serviceAccountName": SA, "containers": [{"name": "c", "image": "x"}]},
                   "status": {"phase": "Running", "startTime": started}}),
        );
    }

    /// Every API request the fake cluster served, as "METHOD /path".
    fn requests(&self) -> Vec<String> {
        self.kube.state()["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect()
    }

    fn restarted(&self, ns: &str) -> bool {
        self.kube.state()["objects"]["deployments"][format!("{ns}/{SA}")]["spec"]["template"]
            ["metadata"]
            .get("annotations")
            .and_then(|a| a.get(RESTARTED_AT))
            .is_some()
    }
}

#[test]
fn discovery_drift_verify_and_restart() {
    let w = World::new();

    // validate reads no cluster.
    w.idplan(&["validate"]).assert_code(0);

    let plan = w.idplan(&["plan", "--format", "json"]);
    plan.assert_code(0);
    let plan = plan.json();
    assert_eq!(
        plan["discovered"],
        json!([
            {"space": "prod", "control_plane": "default/alpha", "namespace": ALPHA},
            {"space": "prod", "control_plane": "team/beta", "namespace": BETA},
            {"space": "prod", "control_plane": "team/gamma", "namespace": null},
        ])
    );
    let text = w.idplan(&["plan"]);
    text.assert_code(0);
    text.assert_stdout_contains(
        "Discovered control plane default/alpha in space prod: host namespace mxp-aaaaaaaa",
    );
    text.assert_stdout_contains("team/gamma in space prod has no ID yet");

    w.idplan(&["apply", "--auto-approve"]).assert_code(0);
    // Static and discovered, deduplicated; the one without an ID is not guessed.
    assert_eq!(
        w.subjects(),
        BTreeSet::from([subject(STATIC, SA), subject(BETA, SA), subject(ALPHA, SA)])
    );
    let state = w.dir.state();
    assert_eq!(
        state["spaces"]["prod"]["control_planes"],
        json!([STATIC, BETA, ALPHA])
    );
    w.idplan(&["drift"]).assert_code(0);

    // A fourth control plane appears: it has no identity yet.
    put_delta(&w.kube);
    let drift = w.idplan(&["drift", "--format", "json"]);
    drift.assert_code(2);
    let report = drift.json();
    assert_eq!(
        report["control_planes"],
        json!([{"space": "prod", "namespace": DELTA, "control_plane": "team/delta", "status": "new"}])
    );
    let drift = w.idplan(&["drift"]);
    drift.assert_code(2);
    drift.assert_stdout_contains(&format!(
        "host namespace {DELTA} (control plane team/delta) has no identity yet"
    ));

    // It goes, and alpha goes too: alpha's identity remains.
    w.kube.delete("controlplanes", "team", "delta");
    w.kube.delete("controlplanes", "default", "alpha");
    let drift = w.idplan(&["drift", "--format", "json"]);
    drift.assert_code(2);
    let report = drift.json();
    assert_eq!(
        report["control_planes"],
        json!([{"space": "prod", "namespace": ALPHA, "status": "gone"}])
    );
    let md = w.idplan(&["drift", "--format", "markdown"]);
    md.assert_code(2);
    md.assert_stdout_contains(
        "<summary>1 control planes gone, but their identities remain</summary>",
    );
    md.assert_stdout_contains(&format!("\nprod {ALPHA}\n"));
    w.kube.put("controlplanes", alpha());
    w.idplan(&["drift"]).assert_code(0);

    // The cluster: beta's service account lacks the annotation, alpha's pod is stale.
    let client_id = w.client_id();
    w.workload(STATIC, Some(&client_id), "2099-01-01T00:00:00Z");
    w.workload(BETA, None, "2099-01-01T00:00:00Z");
    w.workload(ALPHA, Some(&client_id), "2020-01-01T00:00:00Z");
    let before = w.requests().len();
    let verify = w.idplan(&["verify", "--format", "json"]);
    verify.assert_code(2);
    // Its reads do not grow with the control planes: the component's service accounts and
    // pods are listed once across the cluster, never per host namespace.
    let reads: Vec<String> = w.requests()[before..]
        .iter()
        .filter(|r| r.ends_with("/serviceaccounts") || r.ends_with("/pods"))
        .cloned()
        .collect();
    assert_eq!(
        reads,
        ["GET /api/v1/serviceaccounts", "GET /api/v1/pods"],
        "{reads:?}"
    );
    let report = verify.json();
    let findings: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["namespace"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(findings.len(), 2, "{findings:?}");
    assert_eq!(findings[0].0, BETA);
    assert!(
        findings[0]
            .1
            .contains(&format!("lacks annotation {CLIENT_ID}={client_id}")),
        "{findings:?}"
    );
    assert_eq!(findings[1].0, ALPHA);
    assert!(
        findings[1]
            .1
            .contains("started before the identity last changed"),
        "{findings:?}"
    );
    assert_eq!(report["findings"][1]["deployment"], SA);
    assert_eq!(report["waiting"][0]["control_plane"], "team/gamma");
    assert!(!w.restarted(ALPHA));
    // In Markdown, for a comment or an issue: the findings while they fit, then a count.
    let md = w.idplan(&["verify", "--format", "markdown"]);
    md.assert_code(2);
    assert!(
        md.stdout.starts_with("### idplan verify\n\n**2 finding(s)"),
        "{}",
        md.stdout
    );
    md.assert_stdout_contains(&format!("| prod | `{BETA}` | "));
    md.assert_stdout_contains(&format!("| prod | `{ALPHA}` | "));
    let budget = (md.stdout.chars().count() - 1).to_string();
    let cut = w.idplan(&["verify", "--format", "markdown", "--max-chars", &budget]);
    cut.assert_code(2);
    cut.assert_stdout_contains(" of 2 findings left out");
    assert!(cut.stdout.chars().count() < md.stdout.chars().count());
    assert!(!w.restarted(ALPHA));

    // --restart patches the stale deployment only.
    let restart = w.idplan(&["verify", "--restart"]);
    restart.assert_code(2);
    restart.assert_stdout_contains(&format!("Restarted deployment {ALPHA}/{SA}"));
    assert!(w.restarted(ALPHA));
    assert!(!w.restarted(BETA));
    assert!(!w.restarted(STATIC));
    let patches = w.kube.state()["patches"].clone();
    assert_eq!(patches.as_array().unwrap().len(), 1, "{patches}");
    assert_eq!(
        patches[0]["contentType"],
        "application/strategic-merge-patch+json"
    );

    // Fixed: the annotation set, the pod replaced.
    w.workload(BETA, Some(&client_id), "2099-01-01T00:00:00Z");
    w.workload(ALPHA, Some(&client_id), "2099-01-01T00:00:00Z");
    let verify = w.idplan(&["verify"]);
    verify.assert_code(0);
    verify.assert_stdout_contains("Verified");

    // A control plane no apply covered: annotated Space-wide by Helm, but with no credential
    // on the cloud side. It is a finding, and a restart would not help: none.
    put_delta(&w.kube);
    w.workload(DELTA, Some(&client_id), "2020-01-01T00:00:00Z");
    let verify = w.idplan(&["verify", "--restart", "--format", "json"]);
    verify.assert_code(2);
    let report = verify.json();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["namespace"], DELTA);
    assert!(
        findings[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("no identity yet"),
        "{findings:?}"
    );
    assert!(!w.restarted(DELTA));
    // Another control plane alone is fine.
    w.idplan(&["verify", "--control-plane", STATIC])
        .assert_code(0);
    w.idplan(&["apply", "--auto-approve"]).assert_code(0);
    assert!(w.subjects().contains(&subject(DELTA, SA)));
}

#[test]
fn an_unreachable_cluster_is_an_error() {
    let w = World::new();
    let port = w.kube.0.port;
    drop(w.kube);
    let out = w.dir.idplan_azure(&w.arm, &["plan"]);
    out.assert_code(1);
    // Which cluster: the context, the kubeconfig and the server.
    out.assert_stderr_contains(&format!(
        "controlplanes.spaces.upbound.io (kubeconfig context `space-prod` of {}, server \
         http://127.0.0.1:{port}): list failed",
        w.dir.path().join("kubeconfig").display()
    ));
}

#[test]
fn a_context_the_kubeconfig_lacks_is_named_with_the_file() {
    let w = World::new();
    let spec = w
        .dir
        .read("idplan.yaml")
        .replace("context: space-prod", "context: nope");
    w.dir.write("idplan.yaml", &spec);
    let out = w.dir.idplan_azure(&w.arm, &["plan"]);
    out.assert_code(1);
    out.assert_stderr_contains(&format!(
        "kubeconfig context `nope` is not in {}; it has: space-prod",
        w.dir.path().join("kubeconfig").display()
    ));
}

/// `validate` makes no cluster call: the kubeconfig does not even exist, and the limits
/// that need the control planes wait for `plan`.
#[test]
fn validate_does_not_read_the_cluster() {
    let dir = TestDir::new();
    dir.write(
        "idplan.yaml",
        "version: 1\nspaces:\n  - name: prod\n    controlPlanes:\n      discover: { context: x, \
         kubeconfig: /nonexistent/kubeconfig }\n    aws:\n      region: us-east-1\n      \
         cluster: spaces-prod\n    components:\n      backup: { bucket: acme-spaces-backup }\n",
    );
    let out = dir.idplan_offline(&["validate"]);
    out.assert_code(0);
    out.assert_stdout_contains("1 space(s) discover more control planes at plan time");
}

/// The fake answers like the API server where idplan depends on it: `Status` bodies, the
/// token, field selectors it does not support, patch content types.
#[test]
fn the_fake_api_server_speaks_kubernetes() {
    let kube = FakeKube::start();
    let (code, body) = kube
        .0
        .request("GET", "/api/v1/namespaces/x/serviceaccounts/none", None);
    assert_eq!(code, 401, "the test token is not the fake's: {body}");
    let get = |path: &str| {
        kube.0
            .request_with_token("GET", path, None, KUBE_TOKEN, "application/json")
    };
    let (code, body) = get("/api/v1/namespaces/x/serviceaccounts/none");
    assert_eq!(code, 404);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "serviceaccounts \"none\" not found", "reason": "NotFound", "code": 404})
    );
    let (code, body) = get("/api/v1/namespaces/x/pods?fieldSelector=spec.image%3Dx");
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["reason"], "BadRequest");
    let (code, body) = get("/apis/spaces.upbound.io/v1beta1/controlplanes");
    assert_eq!(code, 200);
    assert_eq!(body["kind"], "ControlPlaneList");
    kube.put(
        "deployments",
        json!({"metadata": {"name": "d", "namespace": "x"}, "spec": {"template": {}}}),
    );
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {"a": "b"}}}}});
    let (code, body) = kube.0.request_with_token(
        "PATCH",
        "/apis/apps/v1/namespaces/x/deployments/d",
        Some(&patch),
        KUBE_TOKEN,
        "application/json-patch+json",
    );
    assert_eq!(code, 415, "{body}");
    let (code, body) = kube.0.request_with_token(
        "PATCH",
        "/apis/apps/v1/namespaces/x/deployments/d",
        Some(&patch),
        KUBE_TOKEN,
        "application/merge-patch+json",
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["spec"]["template"]["metadata"]["annotations"]["a"],
        "b"
    );
    assert_eq!(body["metadata"]["generation"], 2);
}

/// AWS IRSA: the trust policy names the discovered control planes, verify expects the role
/// ARN from the state on the service account (and no label), and a pod identity space
/// expects no annotation at all.
#[tokio::test]
async fn irsa_verify_expects_the_role_arn_of_the_state() {
    let ms = Ministack::start();
    ms.create_cluster("spaces-prod").await;
    let kube = FakeKube::start();
    kube.put("controlplanes", alpha());
    let dir = TestDir::new();
    let kubeconfig = dir.write("kubeconfig", &kube.kubeconfig("space-prod"));
    let spec = |mode: &str| {
        format!(
            "version: 1\nspaces:\n  - name: prod\n    controlPlanes:\n      discover: {{ context: \
             space-prod, kubeconfig: {} }}\n    aws:\n      region: us-east-1\n      cluster: \
             spaces-prod\n      mode: {mode}\n    components:\n      backup: {{ bucket: \
             acme-spaces-backup }}\n",
            kubeconfig.display()
        )
    };
    dir.write("idplan.yaml", &spec("irsa"));
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let state = dir.state();
    let role = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "aws_iam_role.prod.backup")
        .unwrap();
    assert!(
        role["attributes"].to_string().contains(&subject(ALPHA, SA)),
        "the trust policy names the discovered control plane: {role}"
    );
    let arn = role["attributes"]["arn"].as_str().unwrap().to_string();

    let w = World {
        arm: FakeArm::start(),
        kube,
        dir,
    };
    // The Azure label on the seeded pod is harmless: nothing expects a label on AWS.
    w.workload(ALPHA, None, "2099-01-01T00:00:00Z");
    w.kube.put(
        "serviceaccounts",
        json!({"metadata": {"name": SA, "namespace": ALPHA,
                            "annotations": {"eks.amazonaws.com/role-arn":
                                            "arn:aws:iam::000000000000:role/someone-else"}}}),
    );
    let verify = w.dir.idplan(&ms, &["verify", "--format", "json"]);
    verify.assert_code(2);
    let report = verify.json();
    assert_eq!(report["findings"].as_array().unwrap().len(), 1, "{report}");
    assert!(
        report["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&format!(
                "has annotation eks.amazonaws.com/role-arn=arn:aws:iam::000000000000:role/someone-else, expected {arn}"
            )),
        "{report}"
    );
    w.kube.put(
        "serviceaccounts",
        json!({"metadata": {"name": SA, "namespace": ALPHA,
                            "annotations": {"eks.amazonaws.com/role-arn": arn}}}),
    );
    w.dir.idplan(&ms, &["verify"]).assert_code(0);

    // Pod identity: no annotation is expected, whatever the service account carries.
    w.dir.write("idplan.yaml", &spec("pod-identity"));
    w.dir
        .idplan(&ms, &["apply", "--auto-approve"])
        .assert_code(0);
    w.kube.put(
        "serviceaccounts",
        json!({"metadata": {"name": SA, "namespace": ALPHA}}),
    );
    w.dir.idplan(&ms, &["verify"]).assert_code(0);
}

#[test]
fn an_empty_discovery_does_not_remove_identities() {
    let w = World::new();
    w.idplan(&["apply", "--auto-approve"]).assert_code(0);
    let before = w.subjects();
    assert!(before.contains(&subject(ALPHA, SA)), "{before:?}");

    // The context now answers with no control plane at all (a wrong cluster, say).
    w.kube.delete("controlplanes", "default", "alpha");
    w.kube.delete("controlplanes", "team", "beta");
    w.kube.delete("controlplanes", "team", "gamma");
    let plan = w.idplan(&["apply", "--auto-approve"]);
    plan.assert_code(1);
    assert!(
        plan.stderr
            .contains("discovery in kubeconfig context `space-prod` found no control plane")
            && plan.stderr.contains(ALPHA),
        "{}",
        plan.stderr
    );
    assert_eq!(w.subjects(), before, "no credential was deleted");
    // drift still says the identities outlive their control planes.
    w.idplan(&["drift"]).assert_code(2);
}
