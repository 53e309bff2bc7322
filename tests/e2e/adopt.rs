//! `adopt: true`: identities made by hand are taken over, brought to the spec, never deleted,
//! and given back with only what idplan added taken away. Against ministack (AWS), the fake
//! ARM server (Azure) and the fake Google server (GCP).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::aws_irsa::{setup, spec};
use crate::support::ministack::Iam;
use crate::support::{Ministack, TestDir, namespaces, subjects};

const ROLE: &str = "acme-backup";

/// A role as a team makes it from the guide: its own name, the wildcard trust of the guide,
/// an attached managed policy and an inline policy of its own.
async fn role_by_hand(ms: &Ministack, issuer: &str) -> (Iam, String) {
    let iam = Iam::new(ms).await;
    let host = issuer
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"arn:aws:iam::000000000000:oidc-provider/{host}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringLike":{{"{host}:sub":"system:serviceaccount:mxp-*-system:mxp-controller","{host}:aud":"sts.amazonaws.com"}}}}}}]}}"#
    );
    let role = iam
        .client
        .create_role()
        .role_name(ROLE)
        .description("backup role, made by hand")
        .assume_role_policy_document(trust)
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("team")
                .value("platform")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let policy = iam
        .client
        .create_policy()
        .policy_name("acme-backup-s3")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    iam.client
        .attach_role_policy()
        .role_name(ROLE)
        .policy_arn(policy.policy().unwrap().arn().unwrap())
        .send()
        .await
        .unwrap();
    iam.client
        .put_role_policy()
        .role_name(ROLE)
        .policy_name("extra")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    (iam, role.role().unwrap().role_id().to_string())
}

async fn tags(iam: &Iam, role: &str) -> BTreeMap<String, String> {
    let role = iam.role(role).await.unwrap();
    role.tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

async fn inline_policies(iam: &Iam, role: &str) -> Vec<String> {
    let out = iam
        .client
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap();
    out.policy_names().to_vec()
}

/// The change of `address` in a plan's JSON.
#[track_caller]
fn change<'a>(plan: &'a Value, address: &str) -> &'a Value {
    plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == address)
        .unwrap_or_else(|| panic!("no change of {address} in {plan}"))
}

#[tokio::test]
async fn an_aws_role_made_by_hand_is_adopted_brought_to_the_spec_and_released() {
    let components =
        format!("      backup: {{ bucket: acme-spaces-backup, name: {ROLE}, adopt: true }}\n");
    let ms = Ministack::start();
    let issuer = ms.create_cluster("spaces-prod").await;
    let dir = TestDir::new();
    let (iam, role_id) = role_by_hand(&ms, &issuer).await;

    // Without `adopt`, the role is someone else's, and the message says how to take it.
    let without = components.replace(", adopt: true", "");
    dir.write("idplan.yaml", &spec(2, "", Some(&without)));
    let refused = dir.idplan(&ms, &["plan"]);
    refused.assert_code(1);
    refused.assert_stderr_contains("set `adopt: true` on the component to take it over");

    dir.write("idplan.yaml", &spec(2, "", Some(&components)));
    let json = dir.idplan(&ms, &["plan", "--format", "json"]).json();
    let role = change(&json, "aws_iam_role.prod.backup");
    assert_eq!(role["action"], "update", "{role}");
    assert_eq!(role["ownership"], "adopted");
    assert_eq!(json["summary"]["destroy"], 0, "{}", json["summary"]);
    let plan = dir.idplan(&ms, &["plan", "--out", "adopt.plan"]);
    plan.assert_code(0);
    plan.assert_stdout_contains("aws_iam_role.prod.backup will be adopted and updated");
    plan.assert_stdout_contains("permissions idplan does not manage, left as they are");
    plan.assert_stdout_contains(
        "attached policy arn:aws:iam::000000000000:policy/acme-backup-s3, inline policy extra",
    );

    dir.idplan(&ms, &["apply", "adopt.plan"]).assert_code(0);
    let after = iam.role(ROLE).await.unwrap();
    assert_eq!(after.role_id(), role_id, "the same role");
    assert_eq!(after.description(), Some("backup role, made by hand"));
    let t = tags(&iam, ROLE).await;
    assert_eq!(t.get("team").map(String::as_str), Some("platform"));
    assert_eq!(t.get("managed-by").map(String::as_str), Some("idplan"));
    assert_eq!(t.get("idplan/adopted").map(String::as_str), Some("true"));
    let trust = iam.trust(ROLE).await;
    let wanted = subjects(&namespaces(0..2), "mxp-controller");
    assert!(
        wanted
            .iter()
            .all(|s| trust.to_string().contains(s.as_str())),
        "{trust}"
    );
    let mut inline = inline_policies(&iam, ROLE).await;
    inline.sort();
    assert_eq!(inline, ["extra", "idplan"]);
    let state = dir.state();
    let record = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "aws_iam_role.prod.backup")
        .unwrap();
    assert_eq!(record["ownership"], "adopted");

    dir.idplan(&ms, &["plan", "--detailed-exitcode"])
        .assert_code(0)
        .assert_stdout_contains("No changes.");
    dir.idplan(&ms, &["drift"]).assert_code(0);

    // `adopt` removed, the name kept: idplan would have to create a role that exists.
    dir.write("idplan.yaml", &spec(2, "", Some(&without)));
    dir.idplan(&ms, &["plan"])
        .assert_code(1)
        .assert_stderr_contains("keep `adopt: true` on the component");

    // A lost state: the role carries idplan's adoption mark, so it is adopted again, never
    // taken for one idplan made.
    std::fs::remove_file(dir.path().join("state/idplan.state.json")).unwrap();
    let relost = dir.idplan(&ms, &["plan"]);
    relost.assert_code(1);
    relost.assert_stderr_contains("this space adopted it before; set `adopt: true`");
    dir.write("idplan.yaml", &spec(2, "", Some(&components)));
    let readopt = dir.idplan(&ms, &["apply", "--auto-approve"]);
    readopt.assert_code(0);
    readopt.assert_stdout_contains("aws_iam_role.prod.backup will be adopted");

    // The component leaves the spec: the role is given back, only idplan's policy and tags
    // go; the role, its trust and its own policies stay.
    let trust_before = iam.trust(ROLE).await;
    dir.write(
        "idplan.yaml",
        &spec(
            2,
            "",
            Some("      billing: { bucket: acme-spaces-billing }\n"),
        ),
    );
    let released = dir.idplan(&ms, &["apply", "--auto-approve"]);
    released.assert_code(0);
    released.assert_stdout_contains("aws_iam_role.prod.backup will be released");
    let after = iam.role(ROLE).await.expect("never deleted");
    assert_eq!(after.role_id(), role_id);
    let t = tags(&iam, ROLE).await;
    assert_eq!(t, BTreeMap::from([("team".into(), "platform".into())]));
    assert_eq!(inline_policies(&iam, ROLE).await, ["extra"]);
    assert_eq!(iam.trust(ROLE).await, trust_before, "trust left as it was");
}

#[tokio::test]
async fn adopting_a_role_that_does_not_exist_is_an_error_naming_it() {
    let components =
        "      backup: { bucket: acme-spaces-backup, name: acme-nope, adopt: true }\n".to_string();
    let (ms, dir) = setup(&spec(1, "", Some(&components))).await;
    let plan = dir.idplan(&ms, &["plan"]);
    plan.assert_code(1);
    plan.assert_stderr_contains(
        "aws_iam_role.prod.backup: `adopt: true`, but acme-nope does not exist",
    );
    assert!(Iam::new(&ms).await.role("acme-nope").await.is_none());
}
