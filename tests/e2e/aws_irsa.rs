//! End to end through the idplan binary against ministack: what IAM holds afterwards.

use std::collections::BTreeSet;
use std::process::Stdio;

use serde_json::Value;

use crate::support::ministack::Iam;
use crate::support::{
    Ministack, TestDir, control_planes, namespace, namespaces, subject, subjects,
};

const CLUSTER: &str = "spaces-prod";

/// A spec with one space `prod` and `n` control planes; `extra` goes into the `aws` block,
/// `components` replaces the default three.
pub(crate) fn spec(n: usize, extra: &str, components: Option<&str>) -> String {
    let planes = control_planes(namespaces(0..n));
    let components = components.unwrap_or(
        "      backup: { bucket: acme-spaces-backup }\n      billing: { bucket: acme-spaces-billing }\n      sharedSecrets: { secrets: [\"arn:aws:secretsmanager:us-east-1:000000000000:secret:spaces/*\"] }\n",
    );
    format!(
        "version: 1\nspaces:\n  - name: prod\n{planes}    aws:\n      region: us-east-1\n      cluster: {CLUSTER}\n{extra}    components:\n{components}"
    )
}

/// A ministack with the cluster, and a directory whose idplan.yaml is `spec`.
pub(crate) async fn setup(spec: &str) -> (Ministack, TestDir) {
    let ms = Ministack::start();
    ms.create_cluster(CLUSTER).await;
    let dir = TestDir::new();
    dir.write("idplan.yaml", spec);
    (ms, dir)
}

/// The `sub` values a trust policy admits, under whichever operator.
#[track_caller]
fn trust_subjects(trust: &Value, operator: &str) -> BTreeSet<String> {
    let condition = &trust["Statement"][0]["Condition"][operator];
    let obj = condition.as_object().expect("condition operator present");
    let (_, v) = obj
        .iter()
        .find(|(k, _)| k.ends_with(":sub"))
        .expect("a :sub condition");
    match v {
        Value::String(_) | Value::Array(_) => strings(v),
        other => panic!("unexpected sub {other}"),
    }
}

/// A policy value that may be one string or a list of them, as a set.
fn strings(v: &Value) -> BTreeSet<String> {
    match v {
        Value::String(s) => [s.clone()].into(),
        Value::Array(a) => a.iter().map(|s| s.as_str().unwrap().to_string()).collect(),
        _ => BTreeSet::new(),
    }
}

/// The subjects of service account `sa` in the first `n` control planes.
fn expected_subjects(n: usize, sa: &str) -> BTreeSet<String> {
    subjects(&namespaces(0..n), sa)
}

fn state_serial(dir: &TestDir) -> u64 {
    dir.state()["serial"].as_u64().unwrap()
}

#[tokio::test]
async fn apply_creates_exactly_what_the_spec_says_and_a_second_apply_writes_nothing() {
    let ms = Ministack::start();
    let issuer = ms.create_cluster(CLUSTER).await;
    let issuer_host = issuer.split_once("://").unwrap().1.to_string();
    let dir = TestDir::new();
    dir.write("idplan.yaml", &spec(3, "", None));

    let plan = dir.idplan(&ms, &["plan", "--out", "first.json", "--detailed-exitcode"]);
    plan.assert_code(2);
    plan.assert_stdout_contains("Plan: 7 to add, 0 to change, 0 to destroy.");
    dir.idplan(&ms, &["apply", "plans/first.json"])
        .assert_code(0);

    let iam = Iam::new(&ms).await;
    let providers = iam.oidc_providers().await;
    let provider_arn = format!("arn:aws:iam::000000000000:oidc-provider/{issuer_host}");
    assert!(
        providers.contains(&provider_arn),
        "provider {provider_arn} in {providers:?}"
    );
    let provider = iam
        .client
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&provider_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(provider.client_id_list(), ["sts.amazonaws.com"]);

    for (name, sa, bucket) in [
        (
            "spaces-prod-backup",
            "mxp-controller",
            Some("acme-spaces-backup"),
        ),
        ("spaces-prod-billing", "vector", Some("acme-spaces-billing")),
        (
            "spaces-prod-shared-secrets",
            "external-secrets-controller",
            None,
        ),
    ] {
        let trust = iam.trust(name).await;
        let statement = &trust["Statement"][0];
        assert_eq!(
            strings(&statement["Action"]),
            ["sts:AssumeRoleWithWebIdentity".to_string()].into()
        );
        assert_eq!(
            strings(&statement["Principal"]["Federated"]),
            [provider_arn.clone()].into()
        );
        assert_eq!(
            trust_subjects(&trust, "StringEquals"),
            expected_subjects(3, sa),
            "{name}"
        );
        assert_eq!(
            strings(&statement["Condition"]["StringEquals"][format!("{issuer_host}:aud")]),
            ["sts.amazonaws.com".to_string()].into()
        );

        let policy = iam.policy(name).await;
        let statement = &policy["Statement"][0];
        match bucket {
            Some(bucket) => {
                assert_eq!(
                    strings(&statement["Action"]),
                    [
                        "s3:GetObject",
                        "s3:PutObject",
                        "s3:ListBucket",
                        "s3:DeleteObject"
                    ]
                    .map(String::from)
                    .into()
                );
                assert_eq!(
                    strings(&statement["Resource"]),
                    [
                        format!("arn:aws:s3:::{bucket}"),
                        format!("arn:aws:s3:::{bucket}/*")
                    ]
                    .into()
                );
            }
            None => assert_eq!(
                strings(&statement["Action"]),
                [
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:DescribeSecret"
                ]
                .map(String::from)
                .into()
            ),
        }

        let role = iam.role(name).await.unwrap();
        let tags: Vec<(&str, &str)> = role.tags().iter().map(|t| (t.key(), t.value())).collect();
        assert!(tags.contains(&("managed-by", "idplan")), "{name}: {tags:?}");
        assert!(tags.contains(&("idplan/space", "prod")), "{name}: {tags:?}");
    }

    // Converged: the plan is empty, and applying again writes nothing, not even the state.
    let again = dir.idplan(&ms, &["plan", "--detailed-exitcode"]);
    again.assert_code(0);
    again.assert_stdout_contains("No changes.");
    let serial = state_serial(&dir);
    let second = dir.idplan(&ms, &["apply", "--auto-approve"]);
    second.assert_code(0);
    second.assert_stdout_contains("No changes.");
    assert!(
        !second.stdout.contains("Creating") && !second.stdout.contains("Modifying"),
        "{}",
        second.stdout
    );
    assert_eq!(
        state_serial(&dir),
        serial,
        "a no-op apply does not write the state"
    );

    // The Helm values name the applied roles under the chart's keys.
    let helm = dir.idplan(&ms, &["helm-values", "--format", "set"]);
    helm.assert_code(0);
    for expected in [
        "--set \"billing.enabled=true\"",
        "--set \"billing.storage.provider=aws\"",
        "--set \"billing.storage.aws.region=us-east-1\"",
        "--set \"billing.storage.aws.bucket=acme-spaces-billing\"",
        "--set \"billing.storage.secretRef.name=\"",
        "--set controlPlanes.mxpController.serviceAccount.annotations.\"eks\\.amazonaws\\.com/role-arn\"=\"arn:aws:iam::000000000000:role/spaces-prod-backup\"",
        "--set controlPlanes.vector.serviceAccount.customAnnotations.\"eks\\.amazonaws\\.com/role-arn\"=\"arn:aws:iam::000000000000:role/spaces-prod-billing\"",
        "--set controlPlanes.sharedSecrets.serviceAccount.customAnnotations.\"eks\\.amazonaws\\.com/role-arn\"=\"arn:aws:iam::000000000000:role/spaces-prod-shared-secrets\"",
    ] {
        helm.assert_stdout_contains(expected);
    }
    let yaml = dir.idplan(&ms, &["helm-values", "--format", "yaml"]);
    yaml.assert_code(0);
    yaml.assert_stdout_contains("name: \"\"");
    yaml.assert_stdout_contains(
        "eks.amazonaws.com/role-arn: arn:aws:iam::000000000000:role/spaces-prod-backup",
    );
}

#[tokio::test]
async fn removing_a_control_plane_narrows_trust_and_removing_a_component_deletes_its_role() {
    let (ms, dir) = setup(&spec(3, "", None)).await;
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let iam = Iam::new(&ms).await;

    dir.write("idplan.yaml", &spec(2, "", None));
    let plan = dir.idplan(&ms, &["plan"]);
    plan.assert_code(0);
    plan.assert_stdout_contains("Plan: 0 to add, 3 to change, 0 to destroy.");
    // A line diff of the trust policy.
    plan.assert_stdout_contains(&format!(
        "-             \"system:serviceaccount:{}:vector\"",
        namespace(2)
    ));
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    assert_eq!(
        trust_subjects(&iam.trust("spaces-prod-billing").await, "StringEquals"),
        expected_subjects(2, "vector")
    );

    let two = "      backup: { bucket: acme-spaces-backup }\n      billing: { bucket: acme-spaces-billing }\n";
    dir.write("idplan.yaml", &spec(2, "", Some(two)));
    let plan = dir.idplan(&ms, &["plan", "--format", "json"]);
    plan.assert_code(0);
    let json = plan.json();
    assert_eq!(json["summary"]["destroy"], 2);
    let deleted: BTreeSet<&str> = json["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "delete")
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        deleted,
        [
            "aws_iam_role.prod.sharedSecrets",
            "aws_iam_role_policy.prod.sharedSecrets"
        ]
        .into()
    );
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    assert!(iam.role("spaces-prod-shared-secrets").await.is_none());
    assert!(iam.role("spaces-prod-backup").await.is_some());
    dir.idplan(&ms, &["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[tokio::test]
async fn drift_catches_an_out_of_band_edit_and_apply_repairs_it() {
    let (ms, dir) = setup(&spec(2, "", None)).await;
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let iam = Iam::new(&ms).await;

    // Someone else's tag beside idplan's is not drift.
    iam.client
        .tag_role()
        .role_name("spaces-prod-backup")
        .tags(crate::support::ministack::tag("team", "platform"))
        .send()
        .await
        .unwrap();
    dir.idplan(&ms, &["drift"]).assert_code(0);

    // Widening the trust by hand is.
    let mut trust = iam.trust("spaces-prod-backup").await;
    let sub_key = trust["Statement"][0]["Condition"]["StringEquals"]
        .as_object()
        .unwrap()
        .keys()
        .find(|k| k.ends_with(":sub"))
        .unwrap()
        .clone();
    trust["Statement"][0]["Condition"]["StringEquals"][&sub_key] =
        serde_json::json!(["system:serviceaccount:intruder:mxp-controller"]);
    iam.client
        .update_assume_role_policy()
        .role_name("spaces-prod-backup")
        .policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    let drift = dir.idplan(&ms, &["drift"]);
    drift.assert_code(2);
    drift.assert_stdout_contains("aws_iam_role.prod.backup was modified outside idplan");
    drift.assert_stdout_contains("intruder");
    let json = dir.idplan(&ms, &["drift", "--format", "json"]);
    json.assert_code(2);
    let report = json.json();
    assert_eq!(
        report["resources"][0]["address"],
        "aws_iam_role.prod.backup"
    );

    // A deleted inline policy is drift too.
    iam.client
        .delete_role_policy()
        .role_name("spaces-prod-billing")
        .policy_name("idplan")
        .send()
        .await
        .unwrap();
    let drift = dir.idplan(&ms, &["drift"]);
    drift.assert_code(2);
    drift.assert_stdout_contains("aws_iam_role_policy.prod.billing was deleted outside idplan");

    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    dir.idplan(&ms, &["drift"]).assert_code(0);
    assert_eq!(
        trust_subjects(&iam.trust("spaces-prod-backup").await, "StringEquals"),
        expected_subjects(2, "mxp-controller")
    );
    iam.policy("spaces-prod-billing").await;
    let role = iam.role("spaces-prod-backup").await.unwrap();
    assert!(
        role.tags().iter().any(|t| t.key() == "team"),
        "someone else's tag survives apply"
    );
}

#[tokio::test]
async fn a_stale_saved_plan_is_refused() {
    let (ms, dir) = setup(&spec(1, "", None)).await;
    dir.idplan(&ms, &["plan", "--out", "old.json"])
        .assert_code(0);
    dir.idplan(&ms, &["plan", "--out", "other.json"])
        .assert_code(0);
    dir.idplan(&ms, &["apply", "plans/other.json"])
        .assert_code(0);
    let stale = dir.idplan(&ms, &["apply", "plans/old.json"]);
    stale.assert_code(1);
    stale.assert_stderr_contains("saved plan plans/old.json is stale");
    assert!(stale.stdout.is_empty(), "nothing applied: {}", stale.stdout);

    dir.write("idplan.yaml", &spec(2, "", None));
    dir.idplan(&ms, &["plan", "--out", "two.json"])
        .assert_code(0);
    dir.write("idplan.yaml", &spec(3, "", None));
    let changed = dir.idplan(&ms, &["apply", "plans/two.json"]);
    changed.assert_code(1);
    changed.assert_stderr_contains("idplan.yaml changed since the plan was made");

    // A plan saved for another state (another lineage) is refused too.
    let other = TestDir::new();
    other.write("idplan.yaml", &spec(3, "", None));
    other
        .idplan(&ms, &["apply", "--auto-approve"])
        .assert_code(0);
    dir.idplan(&ms, &["plan", "--out", "three.json"])
        .assert_code(0);
    std::fs::copy(
        other.path().join("state/idplan.state.json"),
        dir.path().join("state/idplan.state.json"),
    )
    .unwrap();
    let foreign = dir.idplan(&ms, &["apply", "plans/three.json"]);
    foreign.assert_code(1);
    foreign.assert_stderr_contains("another state");
}

#[tokio::test]
async fn apply_without_a_terminal_needs_auto_approve() {
    let (ms, dir) = setup(&spec(1, "", None)).await;
    let out = dir.idplan(&ms, &["apply"]);
    out.assert_code(1);
    out.assert_stderr_contains("--auto-approve");
    assert!(
        Iam::new(&ms)
            .await
            .role("spaces-prod-backup")
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_second_concurrent_apply_is_refused_and_the_state_stays_intact() {
    let (ms, dir) = setup(&spec(2, "", None)).await;
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let before = dir.read("state/idplan.state.json");

    // Hold the lock the way a running idplan does, then try to apply.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("state/idplan.state.json.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    dir.write("idplan.yaml", &spec(3, "", None));
    let refused = dir.idplan(&ms, &["apply", "--auto-approve"]);
    refused.assert_code(1);
    refused.assert_stderr_contains("is locked by another idplan");
    assert_eq!(dir.read("state/idplan.state.json"), before);
    drop(lock);

    // Two real applies at once: every one either applies or is refused by the lock, and the
    // state ends whole and converged.
    let children: Vec<_> = (0..2)
        .map(|_| {
            dir.ministack_command(&ms, &["apply", "--auto-approve"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || stderr.contains("is locked by another idplan"),
            "{stderr}"
        );
    }
    let state = dir.state();
    assert_eq!(state["resources"].as_array().unwrap().len(), 7);
    dir.idplan(&ms, &["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[tokio::test]
async fn an_oversized_trust_policy_is_refused_before_any_write_and_wildcard_fits() {
    let (ms, dir) = setup(&spec(50, "", None)).await;

    let validate = dir.idplan_offline(&["validate"]);
    validate.assert_code(1);
    let plan = dir.idplan(&ms, &["plan"]);
    plan.assert_code(1);
    for out in [&validate, &plan] {
        out.assert_stderr_contains("control planes fit");
        out.assert_stderr_contains("subjects: wildcard");
        // The file and the field.
        out.assert_stderr_contains("idplan.yaml:");
        out.assert_stderr_contains("spaces[0].controlPlanes[");
    }
    let iam = Iam::new(&ms).await;
    assert!(
        iam.role_names()
            .await
            .iter()
            .all(|r| !r.starts_with("spaces-"))
    );

    // A raised quota admits it.
    dir.write(
        "idplan.yaml",
        &spec(50, "      trustPolicyQuota: 8192\n", None),
    );
    dir.idplan_offline(&["validate"]).assert_code(0);
    let exact = dir.idplan(&ms, &["plan"]);
    exact.assert_code(0);
    assert!(!exact.stdout.contains("Note:"), "{}", exact.stdout);

    // Wildcard subjects: one pattern, whatever the number of control planes; the plan says
    // what it trusts.
    dir.write("idplan.yaml", &spec(50, "      subjects: wildcard\n", None));
    let plan = dir.idplan(&ms, &["plan"]);
    plan.assert_code(0);
    plan.assert_stdout_contains(&format!(
        "Note: space prod: `subjects: wildcard` trusts the pattern `mxp-*-system` on EKS \
         cluster {CLUSTER}: roles spaces-prod-backup \
         (system:serviceaccount:mxp-*-system:mxp-controller), spaces-prod-billing \
         (system:serviceaccount:mxp-*-system:vector)"
    ));
    plan.assert_stdout_contains(
        "can be assumed from any namespace of the cluster matching it, a control plane of this \
         Space or not. `subjects: exact` trusts only the listed control planes",
    );
    let json = dir.idplan(&ms, &["plan", "--format", "json"]).json();
    assert_eq!(json["notes"][0]["severity"], "note", "{json:#}");
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let trust = iam
        .trust("spaces-prod-vector".replace("vector", "billing").as_str())
        .await;
    assert_eq!(
        trust_subjects(&trust, "StringLike"),
        ["system:serviceaccount:mxp-*-system:vector".to_string()].into()
    );
    dir.idplan(&ms, &["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[tokio::test]
async fn an_existing_oidc_provider_is_adopted_and_never_deleted() {
    let ms = Ministack::start();
    let issuer = ms.create_cluster(CLUSTER).await;
    let iam = Iam::new(&ms).await;
    // As eksctl would have made it, for another audience.
    let created = iam
        .client
        .create_open_id_connect_provider()
        .url(&issuer)
        .client_id_list("other.example.com")
        .send()
        .await
        .unwrap();
    let arn = created.open_id_connect_provider_arn().unwrap().to_string();

    let dir = TestDir::new();
    dir.write("idplan.yaml", &spec(1, "", None));
    let plan = dir.idplan(&ms, &["plan"]);
    plan.assert_code(0);
    plan.assert_stdout_contains("will be adopted and updated");
    plan.assert_stdout_contains("Plan: 1 to import, 6 to add, 1 to change, 0 to destroy.");
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let ids = |out: aws_sdk_iam::operation::get_open_id_connect_provider::GetOpenIdConnectProviderOutput| {
        out.client_id_list().iter().cloned().collect::<BTreeSet<_>>()
    };
    let get = || {
        iam.client
            .get_open_id_connect_provider()
            .open_id_connect_provider_arn(&arn)
            .send()
    };
    assert_eq!(
        ids(get().await.unwrap()),
        ["other.example.com", "sts.amazonaws.com"]
            .map(String::from)
            .into()
    );
    dir.idplan(&ms, &["plan", "--detailed-exitcode"])
        .assert_code(0);

    // The space moves to another cluster: idplan deletes its roles and gives back only the
    // client id it added to the provider it adopted.
    ms.create_cluster("other").await;
    dir.write("idplan.yaml", &spec(1, "", None).replace(CLUSTER, "other"));
    let moved = dir.idplan(&ms, &["apply", "--auto-approve"]);
    moved.assert_code(0);
    moved.assert_stdout_contains("will be released");
    assert_eq!(
        ids(get().await.unwrap()),
        ["other.example.com".to_string()].into()
    );
}

#[tokio::test]
async fn a_role_idplan_did_not_create_is_a_conflict() {
    let ms = Ministack::start();
    ms.create_cluster(CLUSTER).await;
    let iam = Iam::new(&ms).await;
    iam.client
        .create_role()
        .role_name("spaces-prod-backup")
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .unwrap();
    let dir = TestDir::new();
    dir.write("idplan.yaml", &spec(1, "", None));
    let plan = dir.idplan(&ms, &["apply", "--auto-approve"]);
    plan.assert_code(1);
    plan.assert_stderr_contains("aws_iam_role.prod.backup: IAM role spaces-prod-backup already exists and was not created by idplan");
    let trust = iam.trust("spaces-prod-backup").await;
    assert_eq!(
        trust["Statement"][0]["Principal"]["Service"], "ec2.amazonaws.com",
        "left untouched"
    );
    assert!(
        iam.role("spaces-prod-billing").await.is_none(),
        "nothing was written"
    );
}

#[tokio::test]
async fn a_missing_cluster_names_the_resource_the_api_and_the_message() {
    let ms = Ministack::start();
    let dir = TestDir::new();
    dir.write("idplan.yaml", &spec(1, "", None));
    let out = dir.idplan(&ms, &["plan"]);
    out.assert_code(1);
    out.assert_stderr_contains("EKS cluster spaces-prod (us-east-1): eks:DescribeCluster failed: ResourceNotFoundException");
}

#[tokio::test]
async fn renaming_a_role_replaces_it() {
    let (ms, dir) = setup(&spec(1, "", None)).await;
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);

    let renamed = "      backup: { bucket: acme-spaces-backup }\n      billing: { bucket: acme-spaces-billing }\n      sharedSecrets: { name: acme-prod-eso, secrets: [\"arn:aws:secretsmanager:us-east-1:000000000000:secret:spaces/*\"] }\n";
    dir.write("idplan.yaml", &spec(1, "", Some(renamed)));
    let plan = dir.idplan(&ms, &["plan"]);
    plan.assert_code(0);
    plan.assert_stdout_contains("aws_iam_role.prod.sharedSecrets must be replaced: create replacement, then destroy (forces replacement: spaces-prod-shared-secrets becomes acme-prod-eso)");
    plan.assert_stdout_contains("Plan: 2 to add, 0 to change, 2 to destroy.");
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);

    let iam = Iam::new(&ms).await;
    assert!(
        iam.role("spaces-prod-shared-secrets").await.is_none(),
        "the old role is deleted"
    );
    assert_eq!(
        trust_subjects(&iam.trust("acme-prod-eso").await, "StringEquals"),
        expected_subjects(1, "external-secrets-controller")
    );
    iam.policy("acme-prod-eso").await;
    dir.idplan(&ms, &["plan", "--detailed-exitcode"])
        .assert_code(0);
    let helm = dir.idplan(&ms, &["helm-values"]);
    helm.assert_stdout_contains("role/acme-prod-eso");
}

#[tokio::test]
async fn two_spaces_cannot_want_one_role() {
    let ms = Ministack::start();
    ms.create_cluster(CLUSTER).await;
    let dir = TestDir::new();
    let one = spec(
        1,
        "",
        Some("      backup: { name: shared-backup, bucket: acme-spaces-backup }\n"),
    );
    let two = one
        .replace("  - name: prod\n", "  - name: staging\n")
        .replace("version: 1\nspaces:\n", "");
    dir.write("idplan.yaml", &format!("{one}{two}"));
    let plan = dir.idplan(&ms, &["plan"]);
    plan.assert_code(1);
    plan.assert_stderr_contains("both want aws_iam_role shared-backup");
}

#[tokio::test]
async fn an_additive_apply_trusts_a_new_control_plane_and_keeps_a_removed_one() {
    let (ms, dir) = setup(&spec(2, "", None)).await;
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let iam = Iam::new(&ms).await;

    // Control plane 2 arrives while control plane 1 leaves: the trust policy update adds one
    // subject and removes another, so it is not additive; its additive part is applied.
    dir.write(
        "idplan.yaml",
        &spec(2, "", None).replace(&namespace(1), &namespace(2)),
    );
    let plan = dir.idplan(&ms, &["plan", "--additive-only"]);
    plan.assert_code(0);
    plan.assert_stdout_contains("Withheld for a reviewed apply (3):");
    plan.assert_stdout_contains(&format!(
        "the update takes the role away from control planes {}",
        namespace(1)
    ));
    let apply = dir.idplan(&ms, &["apply", "--additive-only", "--auto-approve"]);
    apply.assert_code(2);
    let both: Vec<String> = [0, 1, 2].map(namespace).to_vec();
    assert_eq!(
        trust_subjects(&iam.trust("spaces-prod-billing").await, "StringEquals"),
        subjects(&both, "vector")
    );

    // A full plan shows what waits: the three trusts lose control plane 1.
    let plan = dir.idplan(&ms, &["plan"]);
    plan.assert_stdout_contains("Plan: 0 to add, 3 to change, 0 to destroy.");
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let left: Vec<String> = [0, 2].map(namespace).to_vec();
    assert_eq!(
        trust_subjects(&iam.trust("spaces-prod-billing").await, "StringEquals"),
        subjects(&left, "vector")
    );

    // Only adding: applied whole, exit 0.
    dir.write("idplan.yaml", &spec(3, "", None));
    dir.idplan(&ms, &["apply", "--additive-only", "--auto-approve"])
        .assert_code(0);
    assert_eq!(
        trust_subjects(&iam.trust("spaces-prod-billing").await, "StringEquals"),
        expected_subjects(3, "vector")
    );
    dir.idplan(&ms, &["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[tokio::test]
async fn a_control_planes_additive_apply_adds_its_subject_and_nothing_else() {
    let (ms, dir) = setup(&spec(2, "", None)).await;
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let iam = Iam::new(&ms).await;

    // Control planes 2 and 3 arrive, 1 leaves; only 2 is named.
    let wanted: Vec<String> = [0, 2, 3].map(namespace).to_vec();
    dir.write(
        "idplan.yaml",
        &spec(4, "", None).replace(&format!("      - {}\n", namespace(1)), ""),
    );
    let out = dir.idplan(
        &ms,
        &[
            "apply",
            "--additive-only",
            "--auto-approve",
            "--control-plane",
            &namespace(2),
        ],
    );
    out.assert_code(0);
    let held: Vec<String> = [0, 1, 2].map(namespace).to_vec();
    assert_eq!(
        trust_subjects(&iam.trust("spaces-prod-billing").await, "StringEquals"),
        subjects(&held, "vector")
    );
    // A full apply then brings the trusts to the spec.
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    assert_eq!(
        trust_subjects(&iam.trust("spaces-prod-billing").await, "StringEquals"),
        subjects(&wanted, "vector")
    );
}

/// A service account token as the cluster's OIDC issuer issues one to a pod: ministack reads
/// its claims (`iss`, `sub`, `aud`) without checking the signature. `aud` is one string:
/// ministack compares a list claim as its text.
fn web_identity_token(issuer: &str, namespace: &str, sa: &str) -> String {
    use base64::Engine;
    let encode = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!(
        "{}.{}.{}",
        encode(serde_json::json!({"alg": "RS256", "kid": "idplan-tests"})),
        encode(serde_json::json!({
            "iss": issuer,
            "sub": subject(namespace, sa),
            "aud": "sts.amazonaws.com",
            "iat": now,
            "exp": now + 3600,
        })),
        "bm90LWNoZWNrZWQ",
    )
}

/// STS's answer to `AssumeRoleWithWebIdentity` of `role_arn` with `token`: `Ok`, or the error
/// code.
async fn assume_with(sts: &aws_sdk_sts::Client, role_arn: &str, token: &str) -> Result<(), String> {
    match sts
        .assume_role_with_web_identity()
        .role_arn(role_arn)
        .role_session_name("pod")
        .web_identity_token(token)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => Err(e
            .as_service_error()
            .and_then(|e| aws_sdk_sts::error::ProvideErrorMetadata::code(e))
            .map(str::to_string)
            .unwrap_or_else(|| format!("{e:?}"))),
    }
}

/// With AUTH=true, ministack's STS judges `AssumeRoleWithWebIdentity` by the trust the role
/// holds: the token of the component's service account in a host namespace the trust covers
/// is admitted; one of another namespace, another service account or another cluster's issuer
/// is refused; for exact subjects and for the wildcard.
#[tokio::test]
async fn sts_admits_the_components_token_and_refuses_another_namespace() {
    let ms = Ministack::start_with(&["--auth"]);
    let iam = Iam::new(&ms).await;
    // Under AUTH=true EKS wants the clusters' role to exist.
    iam.client
        .create_role()
        .role_name("eks")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let issuer = ms.create_cluster(CLUSTER).await;
    let other_issuer = ms.create_cluster("spaces-other").await;
    let dir = TestDir::new();
    let sts = aws_sdk_sts::Client::new(&ms.sdk_config().await);
    for (subjects, inside, outside) in [
        ("", namespace(1), namespace(2)),
        (
            "      subjects: wildcard\n",
            namespace(7),
            "kube-system".to_string(),
        ),
    ] {
        dir.write("idplan.yaml", &spec(2, subjects, None));
        dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
        let role = iam
            .role("spaces-prod-backup")
            .await
            .expect("the backup role");
        let arn = role.arn();
        let denied = Err("AccessDenied".to_string());
        let cases = [
            (&issuer, &inside, "mxp-controller", Ok(())),
            (&issuer, &outside, "mxp-controller", denied.clone()),
            (&issuer, &inside, "vector", denied.clone()),
            (&other_issuer, &inside, "mxp-controller", denied),
        ];
        for (iss, ns, sa, expected) in cases {
            let token = web_identity_token(iss, ns, sa);
            assert_eq!(
                assume_with(&sts, arn, &token).await,
                expected,
                "{subjects:?}: {iss} {ns} {sa}; trust {}",
                iam.trust("spaces-prod-backup").await
            );
        }
    }
}
