//! A replacement the cloud cannot hold both sides of, against the fake ARM server: when the
//! AKS cluster's issuer changes, each federated credential is replaced by one of the same
//! name on the same managed identity (at Azure's ceiling of 20 here), so the old one is
//! deleted first, and the plan says so.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::azure::{setup, spec};
use crate::support::fake_arm::identity_id;
use crate::support::{FakeArm, namespaces};

const NEW_ISSUER: &str = "https://eastus.oic.prod-aks.azure.com/tenant/new-issuer-guid/";

/// The issuers of the federated credentials on identity `name`, with how many carry each.
#[track_caller]
fn issuers(arm: &FakeArm, name: &str) -> Vec<(String, usize)> {
    let state = arm.state();
    let fics = state["fics"][identity_id(name).to_lowercase()]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let all: Vec<String> = fics
        .values()
        .map(|f| f["properties"]["issuer"].as_str().unwrap().to_string())
        .collect();
    let distinct: BTreeSet<&String> = all.iter().collect();
    distinct
        .into_iter()
        .map(|i| (i.clone(), all.iter().filter(|x| *x == i).count()))
        .collect()
}

#[test]
fn a_credential_at_the_ceiling_whose_issuer_changes_is_deleted_before_its_replacement() {
    // 20 control planes: every identity holds Azure's most credentials.
    let (arm, dir) = setup(&spec(&namespaces(0..20)));
    dir.idplan_azure(&arm, &["apply", "--auto-approve"])
        .assert_code(0);
    let old_issuer = issuers(&arm, "spaces-prod-backup")[0].0.clone();
    assert_eq!(issuers(&arm, "spaces-prod-backup"), [(old_issuer, 20)]);

    // The cluster's issuer changes (the Space moves to a recreated cluster).
    arm.seed_cluster(json!({ "issuer": NEW_ISSUER }));
    let plan = dir.idplan_azure(&arm, &["plan", "--out", "issuer.plan"]);
    plan.assert_code(0)
        .assert_stdout_contains(
            "must be replaced: destroy, then create replacement (the cloud cannot hold both at \
             once)",
        )
        .assert_stdout_contains("Plan: 60 to add, 0 to change, 60 to destroy.");
    assert!(
        !plan.stdout.contains("create replacement, then destroy"),
        "{}",
        plan.stdout
    );
    let saved: Value = serde_json::from_str(&dir.read("plans/issuer.plan")).unwrap();
    let replaced: Vec<&Value> = saved["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "replace")
        .collect();
    assert_eq!(replaced.len(), 60);
    assert!(replaced.iter().all(|c| c["destroys_first"] == true));

    dir.idplan_azure(&arm, &["apply", "issuer.plan"])
        .assert_code(0)
        .assert_stdout_contains("Apply complete! Resources: 60 added, 0 changed, 60 destroyed.");
    for name in [
        "spaces-prod-backup",
        "spaces-prod-billing",
        "spaces-prod-shared-secrets",
    ] {
        assert_eq!(
            issuers(&arm, name),
            [(NEW_ISSUER.to_string(), 20)],
            "{name}"
        );
    }
    dir.idplan_azure(&arm, &["plan", "--detailed-exitcode"])
        .assert_code(0);
}
