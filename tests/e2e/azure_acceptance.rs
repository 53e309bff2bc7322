//! Real-Azure acceptance test: ignored unless asked for (`IDPLAN_ACC=azure cargo test --test
//! e2e azure_acceptance -- --ignored`), so a run without Azure reports it ignored, never passed.
//! It needs an existing AKS cluster with the OIDC issuer and workload identity enabled, a
//! storage account and a key vault in one resource group, and credentials azure_identity finds
//! (or `IDPLAN_AZURE_ACCESS_TOKEN`):
//!
//! - `IDPLAN_ACC_AZURE_SUBSCRIPTION`, `IDPLAN_ACC_AZURE_RESOURCE_GROUP`,
//!   `IDPLAN_ACC_AZURE_LOCATION`, `IDPLAN_ACC_AZURE_CLUSTER`,
//!   `IDPLAN_ACC_AZURE_STORAGE_ACCOUNT`, `IDPLAN_ACC_AZURE_KEY_VAULT`.
//!
//! It applies a space of two control planes and checks a replan is empty; then idplan takes
//! back all but one component and the test deletes the last identity and role assignment
//! through ARM (with `IDPLAN_AZURE_ACCESS_TOKEN` or `az account get-access-token`), so it
//! leaves nothing behind.

use std::process::Command;

use crate::support::{Output, TestDir};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("IDPLAN_ACC=azure needs {name}"))
}

/// idplan with the machine's credentials, against ARM itself (not a fake's endpoint).
fn idplan(dir: &TestDir, args: &[&str]) -> Output {
    dir.idplan_real(args, &["IDPLAN_AZURE_ARM_ENDPOINT"])
}

// Ignored, not passed, when not asked for: `IDPLAN_ACC=azure cargo test --test
// e2e azure_acceptance -- --ignored` runs it.
#[test]
#[ignore = "real Azure: IDPLAN_ACC=azure cargo test --test e2e azure_acceptance -- --ignored"]
fn azure_apply_replan_and_tear_down() {
    assert_eq!(
        std::env::var("IDPLAN_ACC").as_deref(),
        Ok("azure"),
        "the real-Azure acceptance test runs against a real subscription: set IDPLAN_ACC=azure \
         and the IDPLAN_ACC_AZURE_* variables"
    );
    let dir = TestDir::new();
    let space = format!("acc{}", std::process::id());
    let spec = |components: &str| {
        format!(
            "version: 1\nspaces:\n  - name: {space}\n    controlPlanes:\n      - mxp-acc-one-system\n      \
             - mxp-acc-two-system\n    azure:\n      subscription: {}\n      resourceGroup: {}\n      \
             location: {}\n      cluster: {}\n    components:\n{components}",
            var("IDPLAN_ACC_AZURE_SUBSCRIPTION"),
            var("IDPLAN_ACC_AZURE_RESOURCE_GROUP"),
            var("IDPLAN_ACC_AZURE_LOCATION"),
            var("IDPLAN_ACC_AZURE_CLUSTER"),
        )
    };
    let all = format!(
        "      backup: {{ storageAccount: {0} }}\n      billing: {{ storageAccount: {0}, container: billing }}\n      sharedSecrets: {{ keyVault: {1} }}\n",
        var("IDPLAN_ACC_AZURE_STORAGE_ACCOUNT"),
        var("IDPLAN_ACC_AZURE_KEY_VAULT"),
    );
    dir.write("idplan.yaml", &spec(&all));
    idplan(&dir, &["apply", "--auto-approve"]).assert_code(0);
    idplan(&dir, &["plan", "--detailed-exitcode"]).assert_code(0);
    // Tear down: a space needs one component, so idplan takes away all but backup, and the
    // backup identity and its role assignment are deleted through ARM directly.
    let backup_only = format!(
        "      backup: {{ storageAccount: {} }}\n",
        var("IDPLAN_ACC_AZURE_STORAGE_ACCOUNT")
    );
    dir.write("idplan.yaml", &spec(&backup_only));
    idplan(&dir, &["apply", "--auto-approve"]).assert_code(0);
    let state = dir.state();
    let mut ids: Vec<String> = Vec::new();
    for r in state["resources"].as_array().unwrap() {
        let a = &r["attributes"];
        match r["kind"].as_str().unwrap() {
            "azure_role_assignment" => ids.insert(
                0,
                format!(
                    "{}/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01",
                    a["scope"].as_str().unwrap(),
                    a["name"].as_str().unwrap()
                ),
            ),
            "azure_user_assigned_identity" => ids.push(format!(
                "{}?api-version=2026-05-31",
                a["id"].as_str().unwrap()
            )),
            _ => {}
        }
    }
    let token = std::env::var("IDPLAN_AZURE_ACCESS_TOKEN").unwrap_or_else(|_| {
        let out = Command::new("az")
            .args([
                "account",
                "get-access-token",
                "--query",
                "accessToken",
                "-o",
                "tsv",
            ])
            .output()
            .expect("az is needed to clean up (or set IDPLAN_AZURE_ACCESS_TOKEN)");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    for id in ids {
        let response = runtime
            .block_on(
                client
                    .delete(format!("https://management.azure.com{id}"))
                    .bearer_auth(&token)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("cleaning up {id}: {e}"));
        assert!(
            response.status().is_success(),
            "cleaning up {id}: {}",
            response.status()
        );
    }
}
