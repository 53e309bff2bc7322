//! Pod identity roles trust only what the spec asks for (the account, the Space's cluster, the
//! component's service account, its host namespaces), through the session tags EKS Pod Identity
//! sets; idplan's associations keep those session tags on. Against ministack, through the
//! binary, asserting on what IAM and EKS hold; and the trust IAM holds judged by ministack's
//! own IAM evaluator for the requests EKS makes for pods (`tests/support/trust_eval.py`).

use idplan::policy::normalize;
use serde_json::{Value, json};

use crate::aws_pod_identity::{CLUSTER, Eks, setup, spec};
use crate::support::ministack::judge_pod_identity_trust;
use crate::support::namespace;

const ACCOUNT: &str = "000000000000";
/// (role, service account) of each component.
const ROLES: [(&str, &str); 3] = [
    ("spaces-pi-backup", "mxp-controller"),
    ("spaces-pi-billing", "vector"),
    ("spaces-pi-shared-secrets", "external-secrets-controller"),
];

fn cluster_arn() -> String {
    format!("arn:aws:eks:us-east-1:{ACCOUNT}:cluster/{CLUSTER}")
}

/// The whole trust policy of a pod identity role: `namespaces` is the `StringLike` pattern
/// (a string) or the exact list.
fn scoped_trust(sa: &str, namespaces: Value) -> Value {
    let mut equals = json!({
        "aws:SourceAccount": ACCOUNT,
        "aws:RequestTag/eks-cluster-arn": cluster_arn(),
        "aws:RequestTag/kubernetes-service-account": sa,
    });
    let mut condition = json!({});
    if namespaces.is_string() {
        condition["StringLike"] = json!({ "aws:RequestTag/kubernetes-namespace": namespaces });
    } else {
        equals["aws:RequestTag/kubernetes-namespace"] = namespaces;
    }
    condition["StringEquals"] = equals;
    normalize(&json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": "pods.eks.amazonaws.com" },
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": condition,
        }],
    }))
}

/// The trust idplan wrote before: the service principal, no condition.
fn bare_trust() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": "pods.eks.amazonaws.com" },
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }],
    })
}

impl Eks {
    /// Whether the association `id` has its session tags disabled, as EKS describes it.
    async fn session_tags_disabled(&self, id: &str) -> bool {
        let out = self
            .eks
            .describe_pod_identity_association()
            .cluster_name(CLUSTER)
            .association_id(id)
            .send()
            .await
            .unwrap();
        out.association()
            .unwrap()
            .disable_session_tags()
            .expect("EKS describes disableSessionTags")
    }
}

/// ministack's IAM evaluator on `trust`, the trust of the role of service account `sa`, for
/// what EKS Pod Identity asks for a pod (`sts:AssumeRole` and `sts:TagSession`, with the pod's
/// session tags): the component's pod in `inside`, a host namespace of the Space, is admitted;
/// a pod of another cluster, of another service account, in `outside` (a namespace outside the
/// Space) or in another account is refused.
#[track_caller]
fn assert_admits_only_the_component(trust: &Value, sa: &str, inside: &str, outside: &str) {
    let other_sa = match sa {
        "vector" => "mxp-controller",
        _ => "vector",
    };
    let pod = |name: &str, account: &str, cluster: &str, namespace: &str, sa: &str| {
        json!({"name": name, "account": account, "region": "us-east-1", "cluster": cluster,
               "namespace": namespace, "service_account": sa})
    };
    let requests = json!([
        pod("the component", ACCOUNT, CLUSTER, inside, sa),
        pod("another cluster", ACCOUNT, "spaces-other", inside, sa),
        pod(
            "another service account",
            ACCOUNT,
            CLUSTER,
            inside,
            other_sa
        ),
        pod(
            "a namespace outside the Space",
            ACCOUNT,
            CLUSTER,
            outside,
            sa
        ),
        pod("another account", "111111111111", CLUSTER, inside, sa),
    ]);
    let both = |allowed: bool| json!({"sts:AssumeRole": allowed, "sts:TagSession": allowed});
    assert_eq!(
        judge_pod_identity_trust(trust, &requests),
        json!({
            "the component": both(true),
            "another cluster": both(false),
            "another service account": both(false),
            "a namespace outside the Space": both(false),
            "another account": both(false),
        }),
        "{sa}: {trust}"
    );
}

/// The API calls of one run, from `IDPLAN_STATS=json` (the last line of stderr).
fn api_calls(stderr: &str) -> serde_json::Map<String, Value> {
    let line = stderr
        .lines()
        .rfind(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no stats in {stderr}"));
    let report: Value = serde_json::from_str(line).unwrap();
    report["api_calls"].as_object().unwrap().clone()
}

#[tokio::test]
async fn each_role_trusts_only_its_account_cluster_service_account_and_host_namespaces() {
    let (ms, dir, eks) = setup(&[], &spec(&[0, 1], None)).await;
    // Another cluster of the account: nothing of it is trusted.
    ms.create_cluster("spaces-other").await;
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let described = eks.eks.describe_cluster().name(CLUSTER).send().await;
    assert_eq!(
        described.unwrap().cluster().unwrap().arn(),
        Some(cluster_arn().as_str()),
        "the condition names the cluster's ARN as EKS reports it"
    );
    // Every host namespace has Spaces' form: one pattern.
    for (role, sa) in ROLES {
        let trust = eks.iam.trust(role).await;
        assert_eq!(
            normalize(&trust),
            scoped_trust(sa, json!("mxp-*-system")),
            "{role}"
        );
        assert_admits_only_the_component(&trust, sa, &namespace(1), "kube-system");
    }
    // The evaluator does tell them apart: the bare trust of old admits them all.
    let bare = judge_pod_identity_trust(
        &bare_trust(),
        &json!([{"name": "another cluster", "account": "111111111111", "region": "us-east-1",
                 "cluster": "spaces-other", "namespace": "kube-system", "service_account": "x"}]),
    );
    assert_eq!(
        bare["another cluster"],
        json!({"sts:AssumeRole": true, "sts:TagSession": true})
    );
    for a in eks.associations().await.values() {
        assert!(!eks.session_tags_disabled(&a.id).await, "{a:?}");
    }
    dir.idplan(&ms, &["plan", "--detailed-exitcode"])
        .assert_code(0);

    // A host namespace of another form (`spec.hostNamespace.name`): the exact list.
    dir.write(
        "idplan.yaml",
        &spec(&[0, 1], None).replace(&namespace(1), "acme-team-a"),
    );
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    for (role, sa) in ROLES {
        let trust = eks.iam.trust(role).await;
        assert_eq!(
            normalize(&trust),
            scoped_trust(sa, json!([namespace(0), "acme-team-a"])),
            "{role}"
        );
        assert_admits_only_the_component(&trust, sa, "acme-team-a", &namespace(1));
    }
    dir.idplan(&ms, &["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[tokio::test]
async fn an_exact_namespace_list_over_the_trust_quota_is_refused_before_any_write() {
    let (ms, dir, eks) = setup(&[], &spec(&[0], None)).await;
    let planes: Vec<String> = (0..60)
        .map(|i| format!("acme-team-{i:03}-with-a-rather-long-namespace-name"))
        .collect();
    let list: String = planes.iter().map(|n| format!("      - {n}\n")).collect();
    let spec = spec(&[0], None).replace(&format!("      - {}\n", namespace(0)), &list);
    dir.write("idplan.yaml", &spec);
    let validate = dir.idplan_offline(&["validate"]);
    validate.assert_code(1);
    validate.assert_stderr_contains("the trust policy of role spaces-pi-backup would be");
    validate.assert_stderr_contains("control planes fit");
    validate.assert_stderr_contains("of 60 control planes fit");
    validate.assert_stderr_contains("mxp-<id>-system");
    validate.assert_stderr_contains(": spaces[0].controlPlanes[");

    let apply = dir.idplan(&ms, &["apply", "--auto-approve"]);
    apply.assert_code(1);
    apply.assert_stderr_contains("over the quota of 2048");
    assert!(eks.iam.role_names().await.is_empty(), "no role was created");
    assert!(eks.associations().await.is_empty());

    // A raised quota lets it through.
    dir.write(
        "idplan.yaml",
        &spec.replace(
            "      mode: pod-identity\n",
            "      mode: pod-identity\n      trustPolicyQuota: 8192\n",
        ),
    );
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let trust = normalize(&eks.iam.trust("spaces-pi-billing").await);
    assert_eq!(trust, scoped_trust("vector", json!(planes)));
}

#[tokio::test]
async fn a_space_on_the_bare_trust_moves_to_the_scoped_one_with_one_update_per_role() {
    let (ms, dir, eks) = setup(&[], &spec(&[0, 1], None)).await;
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    // What an idplan before the scoped trust left: the bare trust in IAM and in the state,
    // and associations recorded without their session tag setting.
    for (role, _) in ROLES {
        eks.iam
            .client
            .update_assume_role_policy()
            .role_name(role)
            .policy_document(bare_trust().to_string())
            .send()
            .await
            .unwrap();
    }
    let mut state = dir.state();
    for r in state["resources"].as_array_mut().unwrap() {
        let address = r["address"].as_str().unwrap().to_string();
        if address.starts_with("aws_iam_role.") {
            r["attributes"]["assume_role_policy"] = normalize(&bare_trust());
        } else if address.starts_with("aws_eks_pod_identity_association.") {
            let removed = r["attributes"]
                .as_object_mut()
                .unwrap()
                .remove("disable_session_tags");
            assert_eq!(removed, Some(json!(false)), "{address}");
        }
    }
    dir.write(
        "state/idplan.state.json",
        &serde_json::to_string_pretty(&state).unwrap(),
    );
    dir.idplan(&ms, &["drift"]).assert_code(0);

    let plan = dir.idplan(&ms, &["plan", "--format", "json"]);
    plan.assert_code(0);
    let changes: Vec<(String, String)> = plan.json()["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no-op")
        .map(|c| {
            (
                c["address"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            ("aws_iam_role.pi.backup".to_string(), "update".to_string()),
            ("aws_iam_role.pi.billing".into(), "update".into()),
            ("aws_iam_role.pi.sharedSecrets".into(), "update".into()),
        ]
    );
    let text = dir.idplan(&ms, &["plan"]);
    text.assert_stdout_contains("Plan: 0 to add, 3 to change, 0 to destroy.");
    text.assert_stdout_contains("aws:RequestTag/kubernetes-service-account");

    let apply = dir.idplan_with_env(
        &ms,
        &["apply", "--auto-approve"],
        &[("IDPLAN_STATS", "json")],
    );
    apply.assert_code(0);
    let calls = api_calls(&apply.stderr);
    let writes: Vec<(&String, &Value)> = calls
        .iter()
        .filter(|(api, _)| {
            let op = api.split(':').nth(1).unwrap_or_default();
            !["Get", "List", "Describe"]
                .iter()
                .any(|read| op.starts_with(read))
        })
        .collect();
    assert_eq!(
        writes,
        vec![(&"iam:UpdateAssumeRolePolicy".to_string(), &json!(3))],
        "{calls:?}"
    );
    for (role, sa) in ROLES {
        assert_eq!(
            normalize(&eks.iam.trust(role).await),
            scoped_trust(sa, json!("mxp-*-system"))
        );
    }
    dir.idplan(&ms, &["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[tokio::test]
async fn session_tags_disabled_outside_idplan_are_drift_and_turned_back_on() {
    let (ms, dir, eks) = setup(&[], &spec(&[0, 1], None)).await;
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let key = (namespace(1), "vector".to_string());
    let id = eks.associations().await[&key].id.clone();
    disable_session_tags(&eks, &id).await;
    assert!(eks.session_tags_disabled(&id).await);

    let drift = dir.idplan(&ms, &["drift"]);
    drift.assert_code(2);
    let address = format!(
        "aws_eks_pod_identity_association.pi.billing.{}",
        namespace(1)
    );
    drift.assert_stdout_contains(&address);
    drift.assert_stdout_contains("disable_session_tags");
    drift.assert_stdout_contains("Drift: 1 of 12");

    let plan = dir.idplan(&ms, &["plan"]);
    plan.assert_stdout_contains("Plan: 0 to add, 1 to change, 0 to destroy.");
    plan.assert_stdout_contains("disable_session_tags");
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    assert!(!eks.session_tags_disabled(&id).await);
    assert_eq!(
        eks.associations().await[&key].id,
        id,
        "updated in place, not recreated"
    );
    dir.idplan(&ms, &["drift"]).assert_code(0);
    dir.idplan(&ms, &["plan", "--detailed-exitcode"])
        .assert_code(0);
}

async fn disable_session_tags(eks: &Eks, id: &str) {
    eks.eks
        .update_pod_identity_association()
        .cluster_name(CLUSTER)
        .association_id(id)
        .disable_session_tags(true)
        .send()
        .await
        .unwrap();
}
