//! End to end through the idplan binary against the fake ARM server
//! (`tests/support/fake_arm.py`): what Azure holds afterwards.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::fake_arm::{ISSUER, RG, SUB, identity_id, storage_id};
use crate::support::{FakeArm, TestDir, control_planes, namespaces, repo_path, subjects};

pub(crate) const BLOB: &str = "ba92f5b4-2d11-453d-a403-e96b0029c9fe";
const SECRETS_USER: &str = "4633458b-17de-408a-b874-0445c86b69e6";

pub(crate) fn spec(namespaces: &[String]) -> String {
    let planes = control_planes(namespaces);
    format!(
        "version: 1\nspaces:\n  - name: prod\n{planes}    azure:\n      subscription: {SUB}\n      \
         resourceGroup: spaces\n      location: eastus\n      cluster: aks-prod\n    components:\n      \
         backup: {{ storageAccount: acmebackup }}\n      billing: {{ storageAccount: acmebilling, \
         container: metrics }}\n      sharedSecrets: {{ keyVault: acme-vault }}\n"
    )
}

/// A fake ARM seeded with the cluster, the storage accounts and the vault; a directory
/// whose idplan.yaml is `spec`.
pub(crate) fn setup(spec: &str) -> (FakeArm, TestDir) {
    let dir = TestDir::new();
    (setup_in(&dir, spec, &[]), dir)
}

/// As [`setup`], in `dir`, with more arguments for the fake (`Faults::args`).
fn setup_in(dir: &TestDir, spec: &str, args: &[&str]) -> FakeArm {
    let arm = seeded(args);
    dir.write("idplan.yaml", spec);
    arm
}

/// A fake ARM started with `args`, seeded with the cluster, the storage accounts and the vault.
pub(crate) fn seeded(args: &[&str]) -> FakeArm {
    let arm = FakeArm::start_with(args);
    arm.seed_cluster(json!({}));
    arm.seed_storage("acmebackup");
    arm.seed_storage("acmebilling");
    arm.admin("/admin/vaults", json!({"id": vault_id(), "rbac": false}));
    arm
}

pub(crate) fn vault_id() -> String {
    format!("{RG}/providers/Microsoft.KeyVault/vaults/acme-vault")
}

#[track_caller]
fn principal(arm: &FakeArm, name: &str) -> String {
    arm.identity_property(name, "principalId")
}

/// (scope, role GUID, principal) of every role assignment.
#[track_caller]
fn assignments(arm: &FakeArm) -> BTreeSet<(String, String, String)> {
    let state = arm.state();
    let mut out = BTreeSet::new();
    for a in state["assignments"].as_object().unwrap().values() {
        let p = &a["properties"];
        assert_eq!(p["principalType"], "ServicePrincipal");
        let role = p["roleDefinitionId"].as_str().unwrap();
        out.insert((
            p["scope"].as_str().unwrap().to_string(),
            role.rsplit('/').next().unwrap().to_string(),
            p["principalId"].as_str().unwrap().to_string(),
        ));
    }
    out
}

pub(crate) fn access_policies(arm: &FakeArm) -> Vec<Value> {
    arm.state()["vaults"][vault_id().to_lowercase()]["properties"]["accessPolicies"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn apply_creates_identities_credentials_and_access_and_a_replan_changes_nothing() {
    let cps = namespaces(0..5);
    let (arm, dir) = setup(&spec(&cps));
    // Throttled twice: retried after Retry-After, not an error; so are a server error and
    // a new principal not yet replicated.
    arm.fault(
        json!({"method": "PUT", "contains": "userAssignedIdentities/spaces-prod-backup",
               "status": 429, "code": "TooManyRequests", "message": "slow down", "times": 2}),
    );
    arm.fault(
        json!({"method": "GET", "contains": "managedClusters", "status": 503,
               "code": "ServiceUnavailable", "message": "try again", "times": 1}),
    );
    arm.fault(
        json!({"method": "PUT", "contains": "roleAssignments", "status": 400,
               "code": "PrincipalNotFound", "message": "Principal does not exist", "times": 1}),
    );

    let plan = dir.idplan_azure_with_env(
        &arm,
        &["plan", "--detailed-exitcode"],
        &[("IDPLAN_STATS", "json")],
    );
    plan.assert_code(2);
    // The cluster's 503 fired here, and was retried.
    assert_eq!(plan.stats()["retries"], 1);
    assert!(
        plan.stdout.contains("principal_id") && plan.stdout.contains("(known after apply)"),
        "{}",
        plan.stdout
    );
    // 3 identities, 15 credentials, 2 role assignments, 1 access policy entry.
    plan.assert_stdout_contains("Plan: 21 to add, 0 to change, 0 to destroy.");

    let apply = dir.idplan_azure_with_env(
        &arm,
        &["apply", "--auto-approve"],
        &[("IDPLAN_STATS", "json")],
    );
    apply.assert_code(0);
    // The two 429s and the replication delay fired here, each retried once.
    assert_eq!(apply.stats()["retries"], 3);

    for (name, sa) in [
        ("spaces-prod-backup", "mxp-controller"),
        ("spaces-prod-billing", "vector"),
        ("spaces-prod-shared-secrets", "external-secrets-controller"),
    ] {
        let id = arm
            .identity(name)
            .unwrap_or_else(|| panic!("{name} exists"));
        assert_eq!(id["tags"]["managed-by"], "idplan");
        assert_eq!(id["location"], "eastus");
        assert_eq!(arm.subjects(name), subjects(&cps, sa));
    }
    assert_eq!(
        assignments(&arm),
        BTreeSet::from([
            (
                storage_id("acmebackup"),
                BLOB.into(),
                principal(&arm, "spaces-prod-backup")
            ),
            (
                storage_id("acmebilling"),
                BLOB.into(),
                principal(&arm, "spaces-prod-billing")
            ),
        ])
    );
    let policies = access_policies(&arm);
    assert_eq!(policies.len(), 1, "{policies:?}");
    assert_eq!(
        policies[0]["objectId"],
        principal(&arm, "spaces-prod-shared-secrets")
    );
    assert_eq!(
        policies[0]["permissions"]["secrets"],
        json!(["get", "list"])
    );

    // Nothing left to do, and a second apply writes nothing.
    dir.idplan_azure(&arm, &["plan", "--detailed-exitcode"])
        .assert_code(0);
    let again = dir.idplan_azure(&arm, &["apply", "--auto-approve"]);
    again.assert_code(0);
    again.assert_stdout_contains("No changes");
    dir.idplan_azure(&arm, &["drift"]).assert_code(0);

    // Helm values name the client ids Azure assigned.
    let helm = dir.idplan_azure(&arm, &["helm-values"]);
    helm.assert_code(0);
    let client = |name: &str| arm.identity_property(name, "clientId");
    for line in [
        format!(
            "--set controlPlanes.mxpController.serviceAccount.annotations.\"azure\\.workload\\.identity/client-id\"=\"{}\"",
            client("spaces-prod-backup")
        ),
        format!(
            "--set controlPlanes.vector.serviceAccount.customAnnotations.\"azure\\.workload\\.identity/client-id\"=\"{}\"",
            client("spaces-prod-billing")
        ),
        format!(
            "--set controlPlanes.sharedSecrets.serviceAccount.customAnnotations.\"azure\\.workload\\.identity/client-id\"=\"{}\"",
            client("spaces-prod-shared-secrets")
        ),
        "--set controlPlanes.vector.pod.customLabels.\"azure\\.workload\\.identity/use\"=\"true\""
            .into(),
        "--set \"billing.storage.provider=azure\"".into(),
        "--set \"billing.storage.azure.storageAccount=acmebilling\"".into(),
        "--set \"billing.storage.azure.container=metrics\"".into(),
        "--set \"billing.storage.secretRef.name=\"".into(),
    ] {
        assert!(
            helm.stdout.contains(&line),
            "{line}\nnot in:\n{}",
            helm.stdout
        );
    }
}

#[test]
fn adding_and_removing_a_control_plane_changes_only_its_credentials() {
    let (arm, dir) = setup(&spec(&namespaces(0..2)));
    dir.idplan_azure(&arm, &["apply", "--auto-approve"])
        .assert_code(0);
    let principals = principal(&arm, "spaces-prod-backup");

    dir.write("idplan.yaml", &spec(&namespaces(0..3)));
    let plan = dir.idplan_azure(&arm, &["plan"]);
    plan.assert_code(0);
    plan.assert_stdout_contains("Plan: 3 to add, 0 to change, 0 to destroy.");
    dir.idplan_azure(&arm, &["apply", "--auto-approve"])
        .assert_code(0);
    assert_eq!(
        arm.subjects("spaces-prod-billing"),
        subjects(&namespaces(0..3), "vector")
    );

    dir.write("idplan.yaml", &spec(&namespaces(1..3)));
    let plan = dir.idplan_azure(&arm, &["plan"]);
    plan.assert_stdout_contains("Plan: 0 to add, 0 to change, 3 to destroy.");
    dir.idplan_azure(&arm, &["apply", "--auto-approve"])
        .assert_code(0);
    assert_eq!(
        arm.subjects("spaces-prod-backup"),
        subjects(&namespaces(1..3), "mxp-controller")
    );
    // The identity itself was kept: same principal.
    assert_eq!(principal(&arm, "spaces-prod-backup"), principals);
    dir.idplan_azure(&arm, &["plan", "--detailed-exitcode"])
        .assert_code(0);

    // No component left: everything idplan made goes, the vault keeps only others' entries.
    dir.write(
        "idplan.yaml",
        &spec(&[]).replace("      backup: { storageAccount: acmebackup }\n", ""),
    );
    dir.idplan_azure(&arm, &["apply", "--auto-approve"])
        .assert_code(0);
    assert!(arm.identity("spaces-prod-backup").is_none());
    assert_eq!(assignments(&arm).len(), 1);
}

#[test]
fn switching_the_vault_to_rbac_moves_access_to_a_role_assignment_in_one_plan() {
    let (arm, dir) = setup(&spec(&namespaces(0..1)));
    dir.idplan_azure(&arm, &["apply", "--auto-approve"])
        .assert_code(0);
    assert_eq!(access_policies(&arm).len(), 1);

    arm.admin("/admin/vaults", json!({"id": vault_id(), "rbac": true}));
    let plan = dir.idplan_azure(&arm, &["plan"]);
    plan.assert_code(0);
    plan.assert_stdout_contains(
        "azurerm_key_vault_access_policy.prod.sharedSecrets will be destroyed",
    );
    plan.assert_stdout_contains("azurerm_role_assignment.prod.sharedSecrets will be created");
    plan.assert_stdout_contains("Plan: 1 to add, 0 to change, 1 to destroy.");
    dir.idplan_azure(&arm, &["apply", "--auto-approve"])
        .assert_code(0);
    assert!(access_policies(&arm).is_empty());
    let principal = principal(&arm, "spaces-prod-shared-secrets");
    assert!(
        assignments(&arm).contains(&(vault_id(), SECRETS_USER.into(), principal)),
        "{:?}",
        assignments(&arm)
    );
    dir.idplan_azure(&arm, &["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[test]
fn an_arm_error_names_the_resource_the_api_and_the_message() {
    let cps = namespaces(0..1);
    let (arm, dir) = setup(&spec(&cps));
    arm.fault(
        json!({"method": "PUT", "contains": "federatedIdentityCredentials", "status": 409,
               "code": "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity",
               "message": "Too many Federated Identity Credentials are written concurrently",
               "times": 100}),
    );
    let out = dir.idplan_azure(&arm, &["apply", "--auto-approve"]);
    out.assert_code(1);
    let expected = "PUT Microsoft.ManagedIdentity/userAssignedIdentities/\
                    federatedIdentityCredentials failed: 409 Conflict: \
                    ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity: Too \
                    many Federated Identity Credentials are written concurrently";
    out.assert_stderr_contains("azurerm_federated_identity_credential.prod.");
    out.assert_stderr_contains(expected);
}

#[test]
fn a_cluster_without_workload_identity_fails_with_the_command_that_fixes_it() {
    let (arm, dir) = setup(&spec(&namespaces(0..1)));
    arm.seed_cluster(json!({"oidc": false, "workloadIdentity": false}));
    let out = dir.idplan_azure(&arm, &["plan"]);
    out.assert_code(1);
    out.assert_stderr_contains(
        "az aks update --enable-oidc-issuer --enable-workload-identity -g spaces -n aks-prod",
    );
}

/// The fake answers in the shapes of the official examples (`../shared/reference/azure/`),
/// and enforces ARM's rules the driver relies on.
#[test]
fn the_fake_answers_like_the_reference_examples() {
    let reference = repo_path("../shared/reference/azure");
    let example = |file: &str, status: &str| -> Option<Value> {
        let text = std::fs::read_to_string(reference.join(file)).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        Some(v["responses"][status]["body"].clone())
    };
    let (arm, _dir) = setup(&spec(&[]));
    let id = identity_id("shape");
    let v = "api-version=2026-05-31";

    let (status, created) = arm.request(
        "PUT",
        &format!("{id}?{v}"),
        Some(&json!({"location": "eastus", "tags": {"a": "b"}})),
    );
    assert_eq!(status, 201);
    let (status, again) = arm.request(
        "PUT",
        &format!("{id}?{v}"),
        Some(&json!({"location": "eastus"})),
    );
    assert_eq!(status, 200);
    assert_eq!(
        again["properties"]["principalId"],
        created["properties"]["principalId"]
    );
    let fic = format!("{id}/federatedIdentityCredentials/ns-one?{v}");
    let (status, fic_body) = arm.request(
        "PUT",
        &fic,
        Some(
            &json!({"properties": {"issuer": ISSUER, "subject": "system:serviceaccount:ns:sa",
                     "audiences": ["api://AzureADTokenExchange"]}}),
        ),
    );
    assert_eq!(status, 201);
    let (_, vault) = arm.request(
        "GET",
        &format!("{}?api-version=2026-02-01", vault_id()),
        None,
    );
    let scope = storage_id("acmebackup");
    let assignment = format!(
        "{scope}/providers/Microsoft.Authorization/roleAssignments/0b5fe924-9a61-425c-96af-cfe6e287ca2d?api-version=2022-04-01"
    );
    let principal = created["properties"]["principalId"].as_str().unwrap();
    let body = json!({"properties": {"roleDefinitionId": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{BLOB}"),
                       "principalId": principal, "principalType": "ServicePrincipal"}});
    let (status, ra) = arm.request("PUT", &assignment, Some(&body));
    assert_eq!(status, 201, "{ra}");
    let (status, policies) = arm.request(
        "PUT",
        &format!("{}/accessPolicies/add?api-version=2026-02-01", vault_id()),
        Some(
            &json!({"properties": {"accessPolicies": [{"tenantId": vault["properties"]["tenantId"],
                     "objectId": principal, "permissions": {"secrets": ["get", "list"]}}]}}),
        ),
    );
    assert_eq!(status, 200, "{policies}");

    /// Every key of `reference` (recursively into objects and first list items) is in `ours`.
    fn keys_present(path: &str, reference: &Value, ours: &Value, missing: &mut Vec<String>) {
        match (reference, ours) {
            (Value::Object(r), Value::Object(o)) => {
                for (k, rv) in r {
                    // Optional parts the fake does not model.
                    if [
                        "systemData",
                        "assignmentRestrictions",
                        "networkAcls",
                        "createdOn",
                        "updatedOn",
                        "createdBy",
                        "updatedBy",
                        "condition",
                        "conditionVersion",
                        "description",
                        "enabledForDeployment",
                        "enabledForDiskEncryption",
                        "enabledForTemplateDeployment",
                        "hsmPoolResourceId",
                        "provisioningState",
                        "enableSoftDelete",
                        "softDeleteRetentionInDays",
                        "enablePurgeProtection",
                        "publicNetworkAccess",
                        "privateEndpointConnections",
                        "accessPolicies",
                        "delegatedManagedIdentityResourceId",
                        "claimsMatchingExpression",
                    ]
                    .contains(&k.as_str())
                    {
                        continue;
                    }
                    match o.get(k) {
                        // Tags are the caller's data: present is enough.
                        Some(_) if k == "tags" => {}
                        Some(ov) => keys_present(&format!("{path}.{k}"), rv, ov, missing),
                        None => missing.push(format!("{path}.{k}")),
                    }
                }
            }
            (Value::Array(r), Value::Array(o)) if !r.is_empty() && !o.is_empty() => {
                keys_present(&format!("{path}[0]"), &r[0], &o[0], missing)
            }
            _ => {}
        }
    }
    let mut missing = Vec::new();
    let cases = [
        ("managedidentity/IdentityCreate.json", "201", &created),
        (
            "managedidentity/FederatedIdentityCredentialCreate.json",
            "201",
            &fic_body,
        ),
        ("keyvault/getVault.json", "200", &vault),
        (
            "authorization/RoleAssignments_CreateForResourceGroup.json",
            "201",
            &ra,
        ),
        ("keyvault/updateAccessPoliciesAdd.json", "200", &policies),
    ];
    for (file, status, ours) in cases {
        let Some(reference) = example(file, status) else {
            panic!("reference example {file} is missing");
        };
        keys_present(file, &reference, ours, &mut missing);
    }
    assert!(missing.is_empty(), "keys the fake lacks: {missing:?}");

    // ARM's rules.
    let (status, err) = arm.request("GET", &id, None);
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("MissingApiVersionParameter"))
    );
    let (status, err) = arm.request("GET", &format!("{id}?api-version=1999-01-01"), None);
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("InvalidApiVersionParameter"))
    );
    let other = assignment.replace(
        "0b5fe924-9a61-425c-96af-cfe6e287ca2d",
        "1b5fe924-9a61-425c-96af-cfe6e287ca2d",
    );
    let (status, err) = arm.request("PUT", &other, Some(&body));
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("RoleAssignmentExists"))
    );

    // Concurrent credential writes on one identity: some are refused with 409.
    let conflicts: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let arm = &arm;
                let id = &id;
                s.spawn(move || {
                    let (status, _) = arm.request(
                        "PUT",
                        &format!("{id}/federatedIdentityCredentials/ns-c{i}?{v}"),
                        Some(&json!({"properties": {"issuer": ISSUER,
                            "subject": format!("system:serviceaccount:c{i}:sa"),
                            "audiences": ["api://AzureADTokenExchange"]}})),
                    );
                    usize::from(status == 409)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert!(
        conflicts > 0,
        "concurrent writes on one identity were all accepted"
    );

    // The 21st credential is refused with Azure's message.
    let mut refused = None;
    for i in 0..25 {
        let (status, err) = arm.request(
            "PUT",
            &format!("{id}/federatedIdentityCredentials/ns-l{i}?{v}"),
            Some(&json!({"properties": {"issuer": ISSUER,
                "subject": format!("system:serviceaccount:l{i}:sa"),
                "audiences": ["api://AzureADTokenExchange"]}})),
        );
        if status == 400 {
            refused = Some(err);
            break;
        }
        assert!(status == 201, "{status} {err}");
    }
    let err = refused.expect("the 21st credential is refused");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("is 20"),
        "{err}"
    );

    // Identity delete is a long-running operation, polled to its end.
    let (status, _) = arm.request("DELETE", &format!("{id}?{v}"), None);
    assert_eq!(status, 202);
    let (status, _) = arm.request("GET", &format!("{id}?{v}"), None);
    assert_eq!(status, 404);
}

/// The plan counts credentials others put on idplan's identity (listed page by page).
#[test]
fn plan_counts_credentials_others_added_to_the_identity() {
    let (arm, dir) = setup(&spec(&namespaces(0..18)));
    dir.idplan_azure(&arm, &["apply", "--auto-approve"])
        .assert_code(0);
    let id = identity_id("spaces-prod-backup");
    for name in ["ci-one", "ci-two"] {
        let (status, out) = arm.request(
            "PUT",
            &format!("{id}/federatedIdentityCredentials/{name}?api-version=2026-05-31"),
            Some(
                &json!({"properties": {"issuer": "https://token.actions.githubusercontent.com",
                "subject": format!("repo:acme/{name}:ref:refs/heads/main"),
                "audiences": ["api://AzureADTokenExchange"]}}),
            ),
        );
        assert_eq!(status, 201, "{out}");
    }
    // Theirs are not drift; one more of idplan's would be 21.
    dir.idplan_azure(&arm, &["drift"]).assert_code(0);
    dir.idplan_azure(&arm, &["plan"]).assert_code(0);
    dir.write("idplan.yaml", &spec(&namespaces(0..19)));
    let out = dir.idplan_azure(&arm, &["plan"]);
    out.assert_code(1);
    out.assert_stderr_contains(
        "component backup: managed identity spaces-prod-backup would need 21 federated \
             identity credentials (19 of idplan's, 2 of others), over Azure's limit of 20",
    );
}

#[test]
fn renaming_an_identity_replaces_it_and_everything_that_names_it() {
    let cps = namespaces(0..2);
    let (arm, dir) = setup(&spec(&cps));
    dir.idplan_azure(&arm, &["apply", "--auto-approve"])
        .assert_code(0);
    dir.write(
        "idplan.yaml",
        &spec(&cps).replace(
            "backup: { storageAccount: acmebackup }",
            "backup: { storageAccount: acmebackup, name: prod-backup-v2 }",
        ),
    );
    let plan = dir.idplan_azure(&arm, &["plan"]);
    plan.assert_code(0);
    plan.assert_stdout_contains("Plan: 4 to add, 0 to change, 4 to destroy.");
    dir.idplan_azure(&arm, &["apply", "--auto-approve"])
        .assert_code(0);
    assert!(arm.identity("spaces-prod-backup").is_none());
    assert_eq!(
        arm.subjects("prod-backup-v2"),
        subjects(&cps, "mxp-controller")
    );
    let principal = principal(&arm, "prod-backup-v2");
    assert!(
        assignments(&arm).iter().any(|a| a.2 == principal),
        "{:?}",
        assignments(&arm)
    );
    dir.idplan_azure(&arm, &["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[test]
fn the_azure_example_validates_without_a_cloud() {
    let dir = TestDir::new();
    let example = repo_path("examples/azure.yaml");
    dir.write("idplan.yaml", &std::fs::read_to_string(example).unwrap());
    let out = dir.idplan_offline(&["validate"]);
    out.assert_code(0);
    out.assert_stdout_contains("1 space(s), 2 control plane(s), 3 component(s)");
}

/// Azure keeps role assignments and access policy entries of a deleted identity: the new
/// identity gets new ones, and the orphans idplan made are removed.
#[test]
fn an_identity_deleted_out_of_band_is_recreated_with_its_access() {
    let cps = namespaces(0..1);
    let (arm, dir) = setup(&spec(&cps));
    dir.idplan_azure(&arm, &["apply", "--auto-approve"])
        .assert_code(0);
    let old = principal(&arm, "spaces-prod-shared-secrets");
    for name in ["spaces-prod-backup", "spaces-prod-shared-secrets"] {
        let id = format!("{}?api-version=2026-05-31", identity_id(name));
        assert_eq!(arm.request("DELETE", &id, None).0, 202);
    }
    dir.idplan_azure(&arm, &["drift"]).assert_code(2);
    let plan = dir.idplan_azure(&arm, &["plan"]);
    plan.assert_code(0);
    plan.assert_stdout_contains(
        "azurerm_role_assignment.prod.backup must be replaced: destroy, then create \
         replacement (the cloud cannot hold both at once) (forces replacement: a resource it \
         refers to is created anew)",
    );
    dir.idplan_azure(&arm, &["apply", "--auto-approve"])
        .assert_code(0);
    let new = principal(&arm, "spaces-prod-shared-secrets");
    assert_ne!(old, new);
    let policies = access_policies(&arm);
    assert_eq!(policies.len(), 1, "{policies:?}");
    assert_eq!(policies[0]["objectId"], new.as_str());
    let backup = principal(&arm, "spaces-prod-backup");
    let scopes: Vec<_> = assignments(&arm)
        .into_iter()
        .filter(|a| a.0.ends_with("acmebackup"))
        .collect();
    assert_eq!(scopes.len(), 1, "{scopes:?}");
    assert_eq!(scopes[0].2, backup);
    dir.idplan_azure(&arm, &["plan", "--detailed-exitcode"])
        .assert_code(0);
}

/// What a converged apply of `cps` leaves in the fake: three identities with a credential
/// per control plane, two role assignments, one access policy entry.
#[track_caller]
fn assert_converged(arm: &FakeArm, cps: &[String]) {
    for (name, sa) in [
        ("spaces-prod-backup", "mxp-controller"),
        ("spaces-prod-billing", "vector"),
        ("spaces-prod-shared-secrets", "external-secrets-controller"),
    ] {
        assert_eq!(arm.subjects(name), subjects(cps, sa), "{name}");
    }
    assert_eq!(assignments(arm).len(), 2);
    assert_eq!(access_policies(arm).len(), 1);
}

/// One identity cannot be created: everything that does not hang on it is still applied and
/// recorded, its credentials and assignment are left out and named, and the failure names
/// the resource, the API and ARM's message. The next apply finishes the work.
#[test]
fn one_failure_does_not_stop_independent_work() {
    let cps = namespaces(0..3);
    let (arm, dir) = setup(&spec(&cps));
    arm.fault(
        json!({"method": "PUT", "contains": "userAssignedIdentities/spaces-prod-billing",
                     "status": 400, "code": "InvalidTemplate", "message": "not today", "times": 1}),
    );
    let apply = dir.idplan_azure(&arm, &["apply", "--auto-approve"]);
    apply.assert_code(1);
    apply.assert_stderr_contains(
        "azurerm_user_assigned_identity.prod.billing: PUT \
         Microsoft.ManagedIdentity/userAssignedIdentities failed: 400 Bad Request: \
         InvalidTemplate: not today",
    );
    apply.assert_stderr_contains("apply failed: 1 of the planned changes failed");
    // The billing identity's three credentials and its role assignment.
    apply.assert_stderr_contains("4 not attempted because a change they depend on failed");
    assert!(arm.identity("spaces-prod-billing").is_none());
    assert_eq!(
        arm.subjects("spaces-prod-backup"),
        subjects(&cps, "mxp-controller")
    );
    assert_eq!(
        arm.subjects("spaces-prod-shared-secrets"),
        subjects(&cps, "external-secrets-controller")
    );
    assert_eq!(assignments(&arm).len(), 1);
    assert_eq!(access_policies(&arm).len(), 1);
    let state = dir.read("state/idplan.state.json");
    assert!(state.contains("azurerm_user_assigned_identity.prod.backup"));
    assert!(!state.contains("azurerm_user_assigned_identity.prod.billing"));

    let plan = dir.idplan_azure(&arm, &["plan"]);
    plan.assert_stdout_contains("Plan: 5 to add, 0 to change, 0 to destroy.");
    dir.idplan_azure(&arm, &["apply", "--auto-approve"])
        .assert_code(0);
    assert_converged(&arm, &cps);
}

/// The fake takes only the test's token, as ARM takes only a valid one: a test that passes
/// with the fake is one whose token reached it.
#[test]
fn the_fake_refuses_another_token() {
    let (arm, dir) = setup(&spec(&namespaces(0..1)));
    let out = dir.idplan_azure_with_env(
        &arm,
        &["plan"],
        &[("IDPLAN_AZURE_ACCESS_TOKEN", "someone-elses")],
    );
    out.assert_code(1);
    out.assert_stderr_contains("401 Unauthorized: InvalidAuthenticationToken");
}

#[test]
fn an_additive_apply_adds_a_new_control_planes_credentials_and_keeps_a_removed_ones() {
    let (arm, dir) = setup(&spec(&namespaces(0..2)));
    dir.idplan_azure(&arm, &["apply", "--auto-approve"])
        .assert_code(0);

    dir.write("idplan.yaml", &spec(&namespaces([0, 2])));
    let apply = dir.idplan_azure(&arm, &["apply", "--additive-only", "--auto-approve"]);
    apply.assert_code(2);
    apply.assert_stdout_contains(&format!(
        "control plane {} removed: 3 federated identity credentials kept until a reviewed apply",
        crate::support::namespace(1)
    ));
    assert_eq!(
        arm.subjects("spaces-prod-billing"),
        subjects(&namespaces(0..3), "vector")
    );

    let plan = dir.idplan_azure(&arm, &["plan"]);
    plan.assert_stdout_contains("Plan: 0 to add, 0 to change, 3 to destroy.");
    dir.idplan_azure(&arm, &["apply", "--auto-approve"])
        .assert_code(0);
    assert_eq!(
        arm.subjects("spaces-prod-billing"),
        subjects(&namespaces([0, 2]), "vector")
    );
}

#[test]
fn a_control_planes_additive_apply_costs_the_same_at_any_size_of_the_space() {
    let mut calls = Vec::new();
    for existing in [2, 12] {
        let (arm, dir) = setup(&spec(&namespaces(0..existing)));
        dir.idplan_azure(&arm, &["apply", "--auto-approve"])
            .assert_code(0);
        let new = crate::support::namespace(existing);
        dir.write("idplan.yaml", &spec(&namespaces(0..existing + 2)));
        let out = dir.idplan_azure_with_env(
            &arm,
            &[
                "apply",
                "--additive-only",
                "--auto-approve",
                "--control-plane",
                &new,
            ],
            &[("IDPLAN_STATS", "json")],
        );
        out.assert_code(0);
        let stats: Value = out.stats();
        // The 20-credential check lists each identity's credentials, however many the
        // control planes add: bounded by Azure's own 20 per identity, so not counted here.
        let mut by_api = stats["api_calls"].clone();
        by_api
            .as_object_mut()
            .unwrap()
            .remove("azure:FederatedIdentityCredentials_List");
        calls.push(by_api);
        assert_eq!(
            arm.subjects("spaces-prod-billing"),
            subjects(&namespaces(0..existing + 1), "vector")
        );
    }
    assert_eq!(calls[0], calls[1], "flat in the size of the space");
}
