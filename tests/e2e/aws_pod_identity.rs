//! Pod identity mode end to end through the binary against ministack: what EKS and IAM hold.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::ministack::Iam;
use crate::support::{Faults, Ministack, TestDir, control_planes, namespace};

pub(crate) const CLUSTER: &str = "spaces-pi";
pub(crate) const ROLE_PREFIX: &str = "arn:aws:iam::000000000000:role/";

/// One pod-identity space with the control planes `planes` (indices) and the three components;
/// `shared_name` renames the sharedSecrets role.
pub(crate) fn spec(planes: &[usize], shared_name: Option<&str>) -> String {
    let planes = control_planes(planes.iter().map(|i| namespace(*i)));
    let name = shared_name
        .map(|n| format!("name: {n}, "))
        .unwrap_or_default();
    format!(
        "version: 1\nspaces:\n  - name: pi\n{planes}    aws:\n      region: us-east-1\n      cluster: {CLUSTER}\n      mode: pod-identity\n    components:\n      backup: {{ bucket: acme-backup }}\n      billing: {{ bucket: acme-billing }}\n      sharedSecrets: {{ {name}secrets: [\"arn:aws:secretsmanager:us-east-1:000000000000:secret:s\"] }}\n"
    )
}

pub(crate) async fn setup(launcher_args: &[&str], spec: &str) -> (Ministack, TestDir, Eks) {
    let ms = Ministack::start_with(launcher_args);
    ms.create_cluster(CLUSTER).await;
    let dir = TestDir::new();
    dir.write("idplan.yaml", spec);
    let eks = Eks::new(&ms).await;
    (ms, dir, eks)
}

/// What EKS holds, and IAM beside it.
pub(crate) struct Eks {
    pub(crate) eks: aws_sdk_eks::Client,
    pub(crate) iam: Iam,
}

/// An association as EKS holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Association {
    pub(crate) id: String,
    pub(crate) role: String,
}

impl Eks {
    pub(crate) async fn new(ms: &Ministack) -> Eks {
        Eks {
            eks: aws_sdk_eks::Client::new(&ms.sdk_config().await),
            iam: Iam::new(ms).await,
        }
    }

    /// Every association of the cluster, by (namespace, service account), with its role.
    pub(crate) async fn associations(&self) -> BTreeMap<(String, String), Association> {
        self.all_associations().await.into_iter().collect()
    }

    /// Every association of the cluster, as EKS lists them (twice if EKS held one twice).
    pub(crate) async fn all_associations(&self) -> Vec<((String, String), Association)> {
        let mut out = Vec::new();
        let mut pages = self
            .eks
            .list_pod_identity_associations()
            .cluster_name(CLUSTER)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for a in page.unwrap().associations() {
                let described = self
                    .eks
                    .describe_pod_identity_association()
                    .cluster_name(CLUSTER)
                    .association_id(a.association_id().unwrap())
                    .send()
                    .await
                    .unwrap();
                let d = described.association().unwrap();
                out.push((
                    (
                        d.namespace().unwrap().to_string(),
                        d.service_account().unwrap().to_string(),
                    ),
                    Association {
                        id: d.association_id().unwrap().to_string(),
                        role: d.role_arn().unwrap().to_string(),
                    },
                ));
            }
        }
        out
    }

    pub(crate) async fn create_association(&self, namespace: &str, sa: &str, role: &str) -> String {
        self.eks
            .create_pod_identity_association()
            .cluster_name(CLUSTER)
            .namespace(namespace)
            .service_account(sa)
            .role_arn(role)
            .send()
            .await
            .unwrap()
            .association()
            .unwrap()
            .association_id()
            .unwrap()
            .to_string()
    }
}

/// What idplan should have made for these control planes.
pub(crate) fn expected(planes: &[usize], shared: &str) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for i in planes {
        for (sa, role) in [
            ("mxp-controller", "spaces-pi-backup"),
            ("vector", "spaces-pi-billing"),
            ("external-secrets-controller", shared),
        ] {
            out.insert(
                (namespace(*i), sa.to_string()),
                format!("{ROLE_PREFIX}{role}"),
            );
        }
    }
    out
}

pub(crate) fn roles_of(
    associations: &BTreeMap<(String, String), Association>,
) -> BTreeMap<(String, String), String> {
    associations
        .iter()
        .map(|(k, a)| (k.clone(), a.role.clone()))
        .collect()
}

#[tokio::test]
async fn associations_follow_the_control_planes_and_only_idplans_are_deleted() {
    let (ms, dir, eks) = setup(&[], &spec(&[0, 1, 2], None)).await;
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let held = eks.associations().await;
    assert_eq!(
        roles_of(&held),
        expected(&[0, 1, 2], "spaces-pi-shared-secrets")
    );

    // Roles are trusted by the pod identity agent, for AssumeRole and TagSession (the
    // conditions: `aws_pod_identity_trust`).
    let trust = eks.iam.trust("spaces-pi-billing").await;
    let statement = &trust["Statement"][0];
    assert_eq!(
        statement["Principal"]["Service"],
        serde_json::json!(["pods.eks.amazonaws.com"])
    );
    assert_eq!(
        statement["Action"],
        serde_json::json!(["sts:AssumeRole", "sts:TagSession"])
    );
    dir.idplan(&ms, &["plan", "--detailed-exitcode"])
        .assert_code(0);

    // No role annotations with pod identity: only billing's storage keys.
    let helm = dir.idplan(&ms, &["helm-values"]);
    helm.assert_code(0);
    assert!(!helm.stdout.contains("role-arn"), "{}", helm.stdout);
    helm.assert_stdout_contains("--set \"billing.storage.secretRef.name=\"");

    // A fourth control plane: three more associations.
    dir.write("idplan.yaml", &spec(&[0, 1, 2, 3], None));
    let plan = dir.idplan(&ms, &["plan"]);
    plan.assert_stdout_contains("Plan: 3 to add, 0 to change, 0 to destroy.");
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    assert_eq!(
        roles_of(&eks.associations().await),
        expected(&[0, 1, 2, 3], "spaces-pi-shared-secrets")
    );

    // Someone else's association in a namespace idplan leaves: it survives idplan's removal.
    let foreign = eks
        .create_association(
            &namespace(1),
            "other-app",
            &format!("{ROLE_PREFIX}someone-else"),
        )
        .await;
    dir.write("idplan.yaml", &spec(&[0, 2, 3], None));
    let plan = dir.idplan(&ms, &["plan"]);
    plan.assert_stdout_contains("Plan: 0 to add, 0 to change, 3 to destroy.");
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let held = eks.associations().await;
    let mut want = expected(&[0, 2, 3], "spaces-pi-shared-secrets");
    want.insert(
        (namespace(1), "other-app".into()),
        format!("{ROLE_PREFIX}someone-else"),
    );
    assert_eq!(roles_of(&held), want);
    assert_eq!(held[&(namespace(1), "other-app".to_string())].id, foreign);
    dir.idplan(&ms, &["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[tokio::test]
async fn a_new_role_name_updates_the_associations_in_place() {
    let (ms, dir, eks) = setup(&[], &spec(&[0, 1], None)).await;
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let before = eks.associations().await;

    dir.write("idplan.yaml", &spec(&[0, 1], Some("acme-pi-eso")));
    let plan = dir.idplan(&ms, &["plan", "--format", "json"]);
    plan.assert_code(0);
    let plan = plan.json();
    let actions: BTreeMap<&str, &str> = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no-op")
        .map(|c| {
            (
                c["address"].as_str().unwrap(),
                c["action"].as_str().unwrap(),
            )
        })
        .collect();
    let association = |i: usize| {
        format!(
            "aws_eks_pod_identity_association.pi.sharedSecrets.{}",
            namespace(i)
        )
    };
    assert_eq!(
        actions.get(association(0).as_str()),
        Some(&"update"),
        "{actions:?}"
    );
    assert_eq!(
        actions.get(association(1).as_str()),
        Some(&"update"),
        "{actions:?}"
    );
    assert_eq!(
        actions.get("aws_iam_role.pi.sharedSecrets"),
        Some(&"replace"),
        "{actions:?}"
    );
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);

    let after = eks.associations().await;
    assert_eq!(roles_of(&after), expected(&[0, 1], "acme-pi-eso"));
    for (key, a) in &after {
        assert_eq!(
            a.id, before[key].id,
            "{key:?} was updated in place, not recreated"
        );
    }
    assert!(
        !eks.iam
            .role_names()
            .await
            .contains("spaces-pi-shared-secrets")
    );
    dir.idplan(&ms, &["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[tokio::test]
async fn an_existing_association_is_adopted_when_it_points_at_the_right_role_and_refused_otherwise()
{
    let (ms, dir, eks) = setup(&[], &spec(&[0], None)).await;
    let right = eks
        .create_association(
            &namespace(0),
            "vector",
            &format!("{ROLE_PREFIX}spaces-pi-billing"),
        )
        .await;
    let plan = dir.idplan(&ms, &["plan"]);
    plan.assert_code(0);
    plan.assert_stdout_contains("Plan: 1 to import, 8 to add, 0 to change, 0 to destroy.");
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    assert_eq!(
        eks.associations().await[&(namespace(0), "vector".to_string())].id,
        right
    );

    // idplan manages the role of what it adopted: a new role name updates it in place, once.
    dir.write(
        "idplan.yaml",
        &spec(&[0], None).replace("billing: { bucket", "billing: { name: acme-billing, bucket"),
    );
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let adopted = &eks.associations().await[&(namespace(0), "vector".to_string())];
    assert_eq!(
        (adopted.id.as_str(), adopted.role.as_str()),
        (
            right.as_str(),
            "arn:aws:iam::000000000000:role/acme-billing"
        )
    );
    dir.idplan(&ms, &["plan", "--detailed-exitcode"])
        .assert_code(0);

    // Leaving the spec, the adopted association is forgotten, not deleted.
    dir.write(
        "idplan.yaml",
        &spec(&[], None).replace("billing: { bucket", "billing: { name: acme-billing, bucket"),
    );
    let plan = dir.idplan(&ms, &["plan"]);
    plan.assert_stdout_contains("2 to destroy, 1 to forget.");
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let held = eks.associations().await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[&(namespace(0), "vector".to_string())].id, right);

    // One pointing elsewhere is someone else's: refused before any write.
    eks.create_association(
        &namespace(5),
        "mxp-controller",
        &format!("{ROLE_PREFIX}other"),
    )
    .await;
    dir.write("idplan.yaml", &spec(&[5], None));
    let roles = eks.iam.role_names().await;
    let refused = dir.idplan(&ms, &["apply", "--auto-approve"]);
    refused.assert_code(1);
    refused.assert_stderr_contains("already exists in cluster spaces-pi, pointing at");
    assert_eq!(eks.iam.role_names().await, roles, "nothing was written");
}

#[tokio::test]
async fn throttling_is_retried_with_backoff() {
    let (ms, dir, eks) = setup(&["--throttle-every", "3"], &spec(&[0, 1, 2], None)).await;
    let apply = dir.idplan_with_env(
        &ms,
        &["apply", "--auto-approve"],
        &[("IDPLAN_STATS", "json")],
    );
    apply.assert_code(0);
    // The throttling fired, and idplan's retries rode it out: a third of the calls again.
    let stats = apply.stats();
    let (calls, retries) = (
        stats["api_calls_total"].as_u64().unwrap(),
        stats["retries"].as_u64().unwrap(),
    );
    assert!(retries * 4 >= calls, "{retries} retries of {calls} calls");
    dir.idplan(&ms, &["plan", "--detailed-exitcode"])
        .assert_code(0);
    drop(dir);
    assert_eq!(
        roles_of(&eks.associations().await),
        expected(&[0, 1, 2], "spaces-pi-shared-secrets")
    );
}

#[tokio::test]
async fn a_list_that_lags_behind_creates_does_not_make_a_spurious_diff() {
    let logs = TestDir::new();
    let lag_log = logs.path().join("list-lag.log");
    let lag_arg = lag_log.display().to_string();
    let (ms, dir, _eks) = setup(
        &["--list-lag-ms", "60000", "--list-lag-log", &lag_arg],
        &spec(&[0, 1], None),
    )
    .await;
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    // Every association is still missing from the cluster-wide list.
    let mark = lagging(&lag_log).len();
    let plan = dir.idplan(&ms, &["plan", "--detailed-exitcode"]);
    plan.assert_code(0);
    dir.idplan(&ms, &["drift"]).assert_code(0);
    // The lag fired while idplan listed: it left out every association EKS holds.
    let recorded: BTreeSet<String> = dir.state()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["attributes"]["association_id"].as_str().map(String::from))
        .collect();
    assert_eq!(recorded.len(), 6, "{recorded:?}");
    let left_out: BTreeSet<String> = lagging(&lag_log).into_iter().skip(mark).collect();
    assert_eq!(
        left_out, recorded,
        "the lag left out every association idplan made"
    );
}

/// The association ids the launcher's `--list-lag-ms` left out of a list, in order.
fn lagging(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("list lag log line {line:?}: {e}"));
            v["associationId"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

#[tokio::test]
async fn an_association_made_again_outside_idplan_is_not_idplans() {
    let (ms, dir, eks) = setup(&[], &spec(&[0, 1], None)).await;
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let key = (namespace(1), "vector".to_string());
    let delete = |id: String| {
        let eks = eks.eks.clone();
        async move {
            eks.delete_pod_identity_association()
                .cluster_name(CLUSTER)
                .association_id(id)
                .send()
                .await
                .unwrap();
        }
    };

    // Someone deletes idplan's association and makes their own for another role: idplan does
    // not repoint it.
    delete(eks.associations().await[&key].id.clone()).await;
    let theirs = eks
        .create_association(&key.0, &key.1, &format!("{ROLE_PREFIX}theirs"))
        .await;
    let drift = dir.idplan(&ms, &["drift"]);
    drift.assert_code(2);
    drift.assert_stdout_contains("was deleted outside idplan");
    let plan = dir.idplan(&ms, &["plan"]);
    plan.assert_code(1);
    plan.assert_stderr_contains("pointing at \"arn:aws:iam::000000000000:role/theirs\"");

    // Made again for idplan's role, it is adopted; when its control plane leaves the spec it
    // is forgotten, not deleted.
    delete(theirs).await;
    let again = eks
        .create_association(&key.0, &key.1, &format!("{ROLE_PREFIX}spaces-pi-billing"))
        .await;
    let plan = dir.idplan(&ms, &["plan"]);
    plan.assert_code(0);
    plan.assert_stdout_contains("Plan: 1 to import, 0 to add, 0 to change, 0 to destroy.");
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    dir.write("idplan.yaml", &spec(&[0], None));
    let plan = dir.idplan(&ms, &["plan"]);
    plan.assert_stdout_contains("Plan: 0 to add, 0 to change, 2 to destroy, 1 to forget.");
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let held = eks.associations().await;
    assert_eq!(held[&key].id, again, "the adopted association stays");
    assert_eq!(held.len(), 4, "{held:?}");
}

/// A renamed role is created, with its policy, and the associations are pointed at it before
/// the old role goes: pods keep valid credentials in between. IAM refuses to delete the old
/// role (403): the apply fails, but the new role is in place, the old one is still there and
/// recorded as deposed; the next plan says it will be destroyed, and the next apply does.
#[tokio::test]
async fn a_renamed_role_is_created_before_the_old_one_is_deleted() {
    let dir = TestDir::new();
    let faults = Faults::targeted(&dir, "deny", "^iam:DeleteRole$", 100);
    let ms = Ministack::start_with(&faults.args());
    ms.create_cluster(CLUSTER).await;
    dir.write("idplan.yaml", &spec(&[0, 1], None));
    let eks = Eks::new(&ms).await;
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);

    dir.write("idplan.yaml", &spec(&[0, 1], Some("acme-pi-eso")));
    let plan = dir.idplan(&ms, &["plan"]);
    plan.assert_stdout_contains(
        "aws_iam_role.pi.sharedSecrets must be replaced: create replacement, then destroy",
    );
    faults.on();
    let apply = dir.idplan(&ms, &["apply", "--auto-approve"]);
    apply.assert_code(1);
    apply.assert_stderr_contains(
        "aws_iam_role.pi.sharedSecrets: iam:DeleteRole failed: AccessDenied",
    );
    faults.off();
    // Both roles exist; the associations already point at the new one.
    assert!(eks.iam.role("acme-pi-eso").await.is_some());
    assert!(eks.iam.role("spaces-pi-shared-secrets").await.is_some());
    assert_eq!(
        roles_of(&eks.associations().await),
        expected(&[0, 1], "acme-pi-eso")
    );
    let state = dir.state();
    let role = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "aws_iam_role.pi.sharedSecrets")
        .unwrap();
    assert_eq!(role["attributes"]["name"], "acme-pi-eso");
    assert_eq!(
        role["deposed"]["attributes"]["name"],
        "spaces-pi-shared-secrets"
    );

    let plan = dir.idplan(&ms, &["plan"]);
    plan.assert_stdout_contains(
        "aws_iam_role.pi.sharedSecrets (deposed object, left by a replacement that did not \
         finish) will be destroyed",
    );
    plan.assert_stdout_contains("Plan: 0 to add, 0 to change, 1 to destroy.");
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    assert!(eks.iam.role("spaces-pi-shared-secrets").await.is_none());
    assert!(eks.iam.role("acme-pi-eso").await.is_some());
    assert!(!dir.read("state/idplan.state.json").contains("deposed"));
    dir.idplan(&ms, &["plan", "--detailed-exitcode"])
        .assert_code(0);
}

/// The deposed object of an address is never orphaned. A second rename deletes the older
/// deposed role first and deposes the last one. When the address then leaves the spec, its
/// deposed role is deleted before its current one: IAM refusing the deposed role's delete
/// (a policy attached outside idplan) keeps the current role and the record of both, so the
/// next apply deletes them.
#[tokio::test]
async fn a_deposed_role_is_deleted_when_replaced_again_or_gone_from_the_spec() {
    let dir = TestDir::new();
    // Every role's first DeleteRole is refused; its next one goes through.
    let faults = Faults::targeted(&dir, "deny", "^iam:DeleteRole$", 100);
    let ms = Ministack::start_with(&faults.args());
    ms.create_cluster(CLUSTER).await;
    let eks = Eks::new(&ms).await;
    let role_record = |dir: &TestDir| {
        dir.state()["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["address"] == "aws_iam_role.pi.sharedSecrets")
            .cloned()
    };
    dir.write("idplan.yaml", &spec(&[0, 1], None));
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    faults.on();
    dir.write("idplan.yaml", &spec(&[0, 1], Some("acme-pi-eso")));
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(1);
    let record = role_record(&dir).unwrap();
    assert_eq!(
        record["deposed"]["attributes"]["name"],
        "spaces-pi-shared-secrets"
    );

    // Replaced again: the older deposed role goes first, the one replaced now is deposed.
    dir.write("idplan.yaml", &spec(&[0, 1], Some("acme-pi-eso-2")));
    let apply = dir.idplan(&ms, &["apply", "--auto-approve"]);
    apply.assert_code(1);
    apply.assert_stderr_contains("aws_iam_role.pi.sharedSecrets: iam:DeleteRole failed");
    assert!(eks.iam.role("spaces-pi-shared-secrets").await.is_none());
    assert!(eks.iam.role("acme-pi-eso").await.is_some());
    assert_eq!(
        roles_of(&eks.associations().await),
        expected(&[0, 1], "acme-pi-eso-2")
    );
    let record = role_record(&dir).unwrap();
    assert_eq!(record["attributes"]["name"], "acme-pi-eso-2");
    assert_eq!(record["deposed"]["attributes"]["name"], "acme-pi-eso");

    // Gone from the spec, while IAM cannot delete the deposed role.
    let iam = &eks.iam.client;
    let arn = iam
        .create_policy()
        .policy_name("someone-elses")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap()
        .policy()
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    iam.attach_role_policy()
        .role_name("acme-pi-eso")
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    faults.off();
    let without: String = spec(&[0, 1], None)
        .lines()
        .filter(|l| !l.contains("sharedSecrets"))
        .map(|l| format!("{l}\n"))
        .collect();
    dir.write("idplan.yaml", &without);
    let apply = dir.idplan(&ms, &["apply", "--auto-approve"]);
    apply.assert_code(1);
    apply.assert_stderr_contains("DeleteConflict");
    assert!(eks.iam.role("acme-pi-eso").await.is_some());
    assert!(eks.iam.role("acme-pi-eso-2").await.is_some());
    let record = role_record(&dir).expect("the address is still recorded");
    assert_eq!(record["attributes"]["name"], "acme-pi-eso-2");
    assert_eq!(record["deposed"]["attributes"]["name"], "acme-pi-eso");

    iam.detach_role_policy()
        .role_name("acme-pi-eso")
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    for role in ["acme-pi-eso", "acme-pi-eso-2", "spaces-pi-shared-secrets"] {
        assert!(eks.iam.role(role).await.is_none(), "{role} is left");
    }
    assert!(role_record(&dir).is_none());
    assert!(!dir.read("state/idplan.state.json").contains("deposed"));
    dir.idplan(&ms, &["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[tokio::test]
async fn an_additive_apply_adds_a_new_control_plane_and_keeps_a_removed_ones_associations() {
    let (ms, dir, eks) = setup(&[], &spec(&[0, 1], None)).await;
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let shared = "spaces-pi-shared-secrets";

    // Control plane 2 arrives while control plane 1 leaves.
    dir.write("idplan.yaml", &spec(&[0, 2], None));
    let plan = dir.idplan(&ms, &["plan", "--additive-only", "--format", "json"]);
    plan.assert_code(0);
    let json: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(json["additive_only"], true);
    for change in json["resource_changes"].as_array().unwrap() {
        let address = change["address"].as_str().unwrap();
        let additive = change["additive"].as_bool().expect("every change says");
        match change["action"].as_str().unwrap() {
            "create" => assert!(additive && address.contains(&namespace(2)), "{change}"),
            "delete" => {
                assert!(!additive && address.contains(&namespace(1)), "{change}");
                let why = change["withheld_because"].as_str().unwrap();
                assert!(why.contains(&namespace(1)), "{why}");
            }
            _ => assert!(additive, "{change}"),
        }
    }

    let apply = dir.idplan(&ms, &["apply", "--additive-only", "--auto-approve"]);
    apply.assert_code(2);
    apply.assert_stdout_contains(&format!(
        "control plane {} removed: 3 pod identity associations kept until a reviewed apply",
        namespace(1)
    ));
    assert_eq!(
        roles_of(&eks.associations().await),
        expected(&[0, 1, 2], shared),
        "the new one's associations exist, the removed one's are all still there"
    );

    // The state is exact: a full plan shows only what was withheld.
    let plan = dir.idplan(&ms, &["plan"]);
    plan.assert_stdout_contains("Plan: 0 to add, 0 to change, 3 to destroy.");
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    assert_eq!(
        roles_of(&eks.associations().await),
        expected(&[0, 2], shared)
    );
    let again = dir.idplan(&ms, &["apply", "--additive-only", "--auto-approve"]);
    again.assert_code(0);
    again.assert_stdout_contains("No changes.");
}

#[tokio::test]
async fn a_saved_plan_made_without_additive_only_is_refused_for_an_additive_apply() {
    let (ms, dir, eks) = setup(&[], &spec(&[0], None)).await;
    dir.idplan(&ms, &["plan", "--out", "full.json"])
        .assert_code(0);
    let refused = dir.idplan(&ms, &["apply", "--additive-only", "full.json"]);
    refused.assert_code(1);
    refused.assert_stderr_contains("was made without --additive-only");
    assert!(eks.associations().await.is_empty(), "nothing was written");

    // A plan made with it applies its additive part: here everything but the roles.
    dir.idplan(&ms, &["plan", "--additive-only", "--out", "additive.json"])
        .assert_code(0);
    let apply = dir.idplan(&ms, &["apply", "additive.json"]);
    apply.assert_code(2);
    assert!(
        eks.associations().await.is_empty(),
        "associations wait for the roles they name"
    );
    assert!(eks.iam.role_names().await.is_empty());
}

/// The API calls of an additive apply limited to `namespace`, by operation.
fn targeted_calls(dir: &TestDir, ms: &Ministack, namespace: &str) -> BTreeMap<String, u64> {
    let out = dir.idplan_with_env(
        ms,
        &[
            "apply",
            "--additive-only",
            "--auto-approve",
            "--control-plane",
            namespace,
        ],
        &[("IDPLAN_STATS", "json")],
    );
    out.assert_code(0);
    let stats: serde_json::Value = out.stats();
    serde_json::from_value(stats["api_calls"].clone()).unwrap()
}

#[tokio::test]
async fn a_control_planes_additive_apply_costs_the_same_at_any_size_of_the_space() {
    let mut calls = Vec::new();
    for existing in [3, 40] {
        let planes: Vec<usize> = (0..existing).collect();
        let (ms, dir, eks) = setup(&[], &spec(&planes, None)).await;
        dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
        // Two new control planes; one leaves. Only the named one is served.
        let (new, other) = (existing, existing + 1);
        let mut wanted: Vec<usize> = (1..existing).collect();
        wanted.extend([new, other]);
        dir.write("idplan.yaml", &spec(&wanted, None));
        calls.push(targeted_calls(&dir, &ms, &namespace(new)));
        let mut held: Vec<usize> = (0..existing).collect();
        held.push(new);
        assert_eq!(
            roles_of(&eks.associations().await),
            expected(&held, "spaces-pi-shared-secrets"),
            "the named one's associations exist, nothing else changed"
        );
        // The state covers the served one only: the other is still to come.
        let covered = dir.state()["spaces"]["pi"]["control_planes"].clone();
        assert!(covered.to_string().contains(&namespace(new)), "{covered}");
        assert!(
            !covered.to_string().contains(&namespace(other)),
            "{covered}"
        );
        let plan = dir.idplan(&ms, &["plan"]);
        plan.assert_stdout_contains("Plan: 3 to add, 0 to change, 3 to destroy.");
    }
    assert_eq!(calls[0], calls[1], "flat in the size of the space");
    let total: u64 = calls[0].values().sum();
    assert!(total <= 15, "{:?}", calls[0]);
    // The namespace's listing for the plan, and apply's own re-read before it writes.
    assert_eq!(
        calls[0]["eks:ListPodIdentityAssociations"], 2,
        "{:?}",
        calls[0]
    );
    assert_eq!(
        calls[0]["eks:CreatePodIdentityAssociation"], 3,
        "{:?}",
        calls[0]
    );
}

#[tokio::test]
async fn a_control_plane_neither_listed_nor_discovered_is_refused() {
    let (ms, dir, eks) = setup(&[], &spec(&[0], None)).await;
    let out = dir.idplan(&ms, &["plan", "--control-plane", "mxp-nope-system"]);
    out.assert_code(1);
    out.assert_stderr_contains("--control-plane mxp-nope-system: no space lists or discovers");
    out.assert_stderr_contains("space pi lists 1 (idplan.yaml:");
    assert!(eks.associations().await.is_empty());
}

#[tokio::test]
async fn drift_reads_the_space_once() {
    let (ms, dir, _eks) = setup(&[], &spec(&[0, 1, 2], None)).await;
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let out = dir.idplan_with_env(&ms, &["drift"], &[("IDPLAN_STATS", "json")]);
    out.assert_code(0);
    let stats: serde_json::Value = out.stats();
    // The comparison with the state and the plan after it: each association described once.
    assert_eq!(
        stats["api_calls"]["eks:DescribePodIdentityAssociation"], 9,
        "{stats}"
    );
    assert_eq!(stats["api_calls"]["iam:GetRole"], 3, "{stats}");
}

/// A lost reply on each association create of a targeted additive apply: taken as created, as
/// in a full apply; one apply converges. Two additive applies at once: the second is refused
/// by the state lock and writes nothing.
#[tokio::test]
async fn an_additive_apply_survives_lost_replies_and_takes_the_state_lock() {
    let dir = TestDir::new();
    let faults = Faults::targeted(&dir, "lost", "^eks:POST ", 100);
    let ms = Ministack::start_with(&faults.args());
    ms.create_cluster(CLUSTER).await;
    dir.write("idplan.yaml", &spec(&[0], None));
    let eks = Eks::new(&ms).await;
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    dir.write("idplan.yaml", &spec(&[0, 1], None));
    let md = dir.idplan(&ms, &["plan", "--additive-only", "--format", "markdown"]);
    md.assert_code(0);
    md.assert_stdout_contains("**Plan: 3 to add, 0 to change, 0 to destroy.**");

    faults.on();
    let args = [
        "apply",
        "--additive-only",
        "--auto-approve",
        "--control-plane",
        &namespace(1),
    ];
    dir.idplan(&ms, &args).assert_code(0);
    let lost = faults
        .fired()
        .iter()
        .filter(|(kind, request)| kind == "lost" && request.starts_with("eks:POST"))
        .count();
    assert_eq!(lost, 3, "{:?}", faults.fired());
    faults.off();
    assert_eq!(
        roles_of(&eks.associations().await),
        expected(&[0, 1], "spaces-pi-shared-secrets")
    );
    dir.idplan(&ms, &["plan", "--detailed-exitcode"])
        .assert_code(0);

    // The lock a running apply holds refuses an additive apply at once.
    dir.write("idplan.yaml", &spec(&[0, 1, 2], None));
    let held = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("state/idplan.state.json.lock"))
        .unwrap();
    held.try_lock().unwrap();
    let refused = dir.idplan(&ms, &["apply", "--additive-only", "--auto-approve"]);
    refused.assert_code(1);
    refused.assert_stderr_contains("is locked by another idplan");
    drop(held);
    assert_eq!(
        roles_of(&eks.associations().await),
        expected(&[0, 1], "spaces-pi-shared-secrets")
    );
}
