//! Switching an AWS space between `irsa` and `pod-identity` end to end through the binary
//! against ministack: two applies, the roles trusting both modes in between, so that pods
//! still running with the old mode keep their credentials until the Helm upgrade moves them.

use serde_json::{Value, json};

use crate::aws_pod_identity::{CLUSTER, Eks, expected, roles_of, setup, spec};
use crate::support::{Faults, Ministack, Output, TestDir};

const ROLES: [&str; 3] = [
    "spaces-pi-backup",
    "spaces-pi-billing",
    "spaces-pi-shared-secrets",
];

fn irsa_spec() -> String {
    spec(&[0, 1], None).replace("      mode: pod-identity\n", "      mode: irsa\n")
}

/// What ministack holds of space `pi`: per role, the modes its trust policy admits (`irsa`
/// for web identity from the OIDC provider, `pod-identity` for EKS's service principal); the
/// associations; the OIDC providers; the role ARNs.
#[derive(Debug, PartialEq)]
struct Held {
    trusted: Vec<Vec<&'static str>>,
    associations: usize,
    oidc_providers: usize,
    arns: Vec<String>,
}

async fn held(eks: &Eks) -> Held {
    let mut trusted = Vec::new();
    let mut arns = Vec::new();
    for role in ROLES {
        let trust = eks.iam.trust(role).await;
        let mut modes: Vec<&str> = trust["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| match &s["Principal"] {
                p if p.get("Federated").is_some() => "irsa",
                p if p["Service"].to_string().contains("pods.eks.amazonaws.com") => "pod-identity",
                other => panic!("role {role}: unexpected principal {other}"),
            })
            .collect();
        modes.sort();
        trusted.push(modes);
        arns.push(eks.iam.role(role).await.unwrap().arn().to_string());
    }
    Held {
        trusted,
        associations: eks.associations().await.len(),
        oidc_providers: eks.iam.oidc_providers().await.len(),
        arns,
    }
}

/// What ministack should hold: every role trusting `modes`, with its ARN of `before`.
fn holds(
    modes: &[&'static str],
    associations: usize,
    oidc_providers: usize,
    before: &Held,
) -> Held {
    Held {
        trusted: vec![modes.to_vec(); ROLES.len()],
        associations,
        oidc_providers,
        arns: before.arns.clone(),
    }
}

/// The switch as the state records it for space `pi`.
fn recorded(dir: &TestDir) -> Value {
    dir.state()["spaces"]["pi"]["aws"].clone()
}

/// Plans, checking the summary line and the note; then applies, counting its cloud calls;
/// then checks what ministack holds and what the state records.
async fn step(
    (ms, dir, eks): (&Ministack, &TestDir, &Eks),
    summary: &str,
    note: &str,
    want: Held,
    record: Value,
) {
    let plan = dir.idplan(ms, &["plan"]);
    plan.assert_code(0)
        .assert_stdout_contains(summary)
        .assert_stdout_contains(note);
    let apply = dir.idplan_with_env(
        ms,
        &["apply", "--auto-approve"],
        &[("IDPLAN_STATS", "json")],
    );
    apply.assert_code(0);
    let calls = apply.stats()["api_calls_total"].as_u64().unwrap();
    eprintln!("{summary} {note}: {calls} cloud calls");
    assert_eq!(held(eks).await, want, "after: {note}");
    assert_eq!(recorded(dir), record, "after: {note}");
}

#[track_caller]
fn no_changes(dir: &TestDir, ms: &Ministack) -> Output {
    let plan = dir.idplan(ms, &["plan", "--detailed-exitcode"]);
    plan.assert_code(0).assert_stdout_contains("No changes.");
    assert!(!plan.stdout.contains("switching"), "{}", plan.stdout);
    plan
}

const BOTH: &[&str] = &["irsa", "pod-identity"];

/// Step 2 of a switch to IRSA, the spec unchanged: the pod identity trust and the associations
/// go; then nothing is left to do.
async fn completes_to_irsa(at: (&Ministack, &TestDir, &Eks), before: &Held) {
    step(
        at,
        "Plan: 0 to add, 3 to change, 6 to destroy.",
        "space pi: step 2 of 2 of switching from pod-identity to irsa",
        holds(&["irsa"], 0, 1, before),
        json!({"mode": "irsa"}),
    )
    .await;
    no_changes(at.1, at.0);
}

#[tokio::test]
async fn irsa_to_pod_identity_trusts_both_until_the_second_apply() {
    let (ms, dir, eks) = setup(&[], &irsa_spec()).await;
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    assert_eq!(recorded(&dir), json!({"mode": "irsa"}));
    let before = held(&eks).await;

    dir.write("idplan.yaml", &spec(&[0, 1], None));
    let markdown = dir.idplan(&ms, &["plan", "--format", "markdown"]);
    markdown.assert_stdout_contains("step 1 of 2 of switching from irsa to pod-identity");
    // Nothing is destroyed in step 1: no warning of it.
    assert!(!markdown.stdout.contains("destroys"), "{}", markdown.stdout);
    let json = dir.idplan(&ms, &["plan", "--format", "json"]).json();
    assert_eq!(json["notes"][0]["severity"], "note");
    assert!(
        json["notes"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("space pi: step 1 of 2 of switching from irsa to pod-identity")
    );
    assert_eq!(
        json["aws_modes"]["pi"],
        json!({"mode": "pod-identity", "switching_from": "irsa"})
    );
    // 6 associations; 3 trust policies gain the pod identity statement; the OIDC provider
    // stays for the pods still on IRSA.
    let at = (&ms, &dir, &eks);
    step(
        at,
        "Plan: 6 to add, 3 to change, 0 to destroy.",
        "space pi: step 1 of 2 of switching from irsa to pod-identity",
        holds(BOTH, 6, 1, &before),
        json!({"mode": "pod-identity", "switching_from": "irsa"}),
    )
    .await;
    assert_eq!(
        roles_of(&eks.associations().await),
        expected(&[0, 1], "spaces-pi-shared-secrets")
    );
    // The spec unchanged: the second step drops the IRSA trust and the OIDC provider.
    step(
        at,
        "Plan: 0 to add, 3 to change, 1 to destroy.",
        "space pi: step 2 of 2 of switching from irsa to pod-identity",
        holds(&["pod-identity"], 6, 0, &before),
        json!({"mode": "pod-identity"}),
    )
    .await;
    no_changes(&dir, &ms);
}

#[tokio::test]
async fn pod_identity_to_irsa_keeps_the_associations_until_the_second_apply() {
    let (ms, dir, eks) = setup(&[], &spec(&[0, 1], None)).await;
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let before = held(&eks).await;
    let associations = eks.associations().await;

    dir.write("idplan.yaml", &irsa_spec());
    // The OIDC provider; 3 trust policies gain the IRSA statement.
    let at = (&ms, &dir, &eks);
    step(
        at,
        "Plan: 1 to add, 3 to change, 0 to destroy.",
        "space pi: step 1 of 2 of switching from pod-identity to irsa",
        holds(BOTH, 6, 1, &before),
        json!({"mode": "irsa", "switching_from": "pod-identity"}),
    )
    .await;
    assert_eq!(
        eks.associations().await,
        associations,
        "pods still use them"
    );
    completes_to_irsa(at, &before).await;
}

#[tokio::test]
async fn going_back_mid_switch_is_a_switch_of_its_own() {
    let (ms, dir, eks) = setup(&[], &irsa_spec()).await;
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let before = held(&eks).await;
    dir.write("idplan.yaml", &spec(&[0, 1], None));
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);

    // Back to IRSA after step 1: pods may have moved to pod identity already, so both stay
    // trusted (the cloud holds that already) until the next apply.
    dir.write("idplan.yaml", &irsa_spec());
    let at = (&ms, &dir, &eks);
    step(
        at,
        "Plan: 0 to add, 0 to change, 0 to destroy.",
        "space pi: step 1 of 2 of switching from pod-identity to irsa",
        holds(BOTH, 6, 1, &before),
        json!({"mode": "irsa", "switching_from": "pod-identity"}),
    )
    .await;
    completes_to_irsa(at, &before).await;
}

#[tokio::test]
async fn a_switch_whose_roles_cannot_trust_both_modes_is_refused_naming_the_space() {
    let (ms, dir, eks) = setup(&[], &irsa_spec()).await;
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let before = held(&eks).await;
    // Each mode's trust alone fits 800 characters; both together do not.
    let tight = spec(&[0, 1], None).replace(
        "      mode: pod-identity\n",
        "      mode: pod-identity\n      trustPolicyQuota: 800\n",
    );
    dir.write(
        "idplan.yaml",
        &tight.replace("mode: pod-identity", "mode: irsa"),
    );
    no_changes(&dir, &ms);
    dir.write("idplan.yaml", &tight);
    let plan = dir.idplan(&ms, &["plan"]);
    plan.assert_code(1)
        .assert_stderr_contains("spaces[0].aws.mode")
        .assert_stderr_contains(
            "space pi: switching to pod-identity keeps the roles trusting both",
        );
    assert_eq!(held(&eks).await, before);
}

/// A first step that fails part way (an association create denied) is not recorded: the next
/// plan takes step 1 again, rather than dropping the IRSA trust beside a missing association.
#[tokio::test]
async fn a_step_that_failed_part_way_is_taken_again() {
    let dir = TestDir::new();
    let faults = Faults::targeted(&dir, "deny", "eks:POST", 1);
    let ms = Ministack::start_with(&faults.args());
    ms.create_cluster(CLUSTER).await;
    let eks = Eks::new(&ms).await;
    dir.write("idplan.yaml", &irsa_spec());
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let before = held(&eks).await;

    dir.write("idplan.yaml", &spec(&[0, 1], None));
    faults.on();
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(1);
    faults.off();
    assert_eq!(faults.fired().len(), 1);
    assert_eq!(held(&eks).await, holds(BOTH, 5, 1, &before));
    assert_eq!(recorded(&dir), json!({"mode": "irsa"}));
    step(
        (&ms, &dir, &eks),
        "Plan: 1 to add, 0 to change, 0 to destroy.",
        "space pi: step 1 of 2 of switching from irsa to pod-identity",
        holds(BOTH, 6, 1, &before),
        json!({"mode": "pod-identity", "switching_from": "irsa"}),
    )
    .await;
}
