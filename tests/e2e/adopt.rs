//! `adopt: true`: identities made by hand are taken over, brought to the spec, never deleted,
//! and given back with only what idplan added taken away. Against ministack (AWS), the fake
//! ARM server (Azure) and the fake Google server (GCP).

use std::collections::BTreeMap;

use idplan::policy::normalize;
use serde_json::{Value, json};

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
        .tags(crate::support::ministack::tag("team", "platform"))
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

    let applied = dir.idplan(&ms, &["apply", "adopt.plan"]);
    applied.assert_code(0);
    // Counted as the plan counts it: the adopted role is imported and changed.
    let summary = &json["summary"];
    applied.assert_stdout_contains(&format!(
        "Resources: {} imported, {} added, {} changed, 0 destroyed.",
        summary["import"], summary["add"], summary["change"]
    ));
    let after = iam.role(ROLE).await.unwrap();
    assert_eq!(after.role_id(), role_id, "the same role");
    assert_eq!(after.description(), Some("backup role, made by hand"));
    let t = tags(&iam, ROLE).await;
    assert_eq!(t.get("team").map(String::as_str), Some("platform"));
    assert_eq!(t.get("managed-by").map(String::as_str), Some("idplan"));
    assert_eq!(t.get("idplan/adopted").map(String::as_str), Some("true"));
    // The whole trust is the spec's: the guide's wildcard statement is not kept beside it.
    let host = issuer
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let wanted: Vec<String> = subjects(&namespaces(0..2), "mxp-controller")
        .into_iter()
        .collect();
    assert_eq!(
        normalize(&iam.trust(ROLE).await),
        normalize(&json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {
                    "Federated": format!("arn:aws:iam::000000000000:oidc-provider/{host}"),
                },
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {
                    format!("{host}:aud"): "sts.amazonaws.com",
                    format!("{host}:sub"): wanted,
                }},
            }],
        }))
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
    let md = dir.idplan(&ms, &["plan", "--format", "markdown"]).stdout;
    let warning: Vec<&str> = md.lines().filter(|l| l.starts_with("> ")).collect();
    assert!(
        warning
            .iter()
            .all(|l| !l.contains("`aws_iam_role.prod.backup`")),
        "a release destroys nothing: {warning:?}"
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

mod azure {
    use serde_json::{Value, json};

    use super::change;
    use crate::support::fake_arm::{ISSUER, RG, SUB, identity_id, storage_id};
    use crate::support::{FakeArm, TestDir, control_planes, namespaces, subject};

    const BLOB: &str = "ba92f5b4-2d11-453d-a403-e96b0029c9fe";

    fn vault_id() -> String {
        format!("{RG}/providers/Microsoft.KeyVault/vaults/acme-vault")
    }

    fn spec(n: usize, components: &str) -> String {
        let planes = control_planes(namespaces(0..n));
        format!(
            "version: 1\nspaces:\n  - name: prod\n{planes}    azure:\n      subscription: {SUB}\n      \
             resourceGroup: spaces\n      location: eastus\n      cluster: aks-prod\n    components:\n{components}"
        )
    }

    const ADOPTED: &str = "      backup: { storageAccount: acmebackup, name: backup-restore-identity, adopt: true }\n      sharedSecrets: { keyVault: acme-vault, name: secrets-identity, adopt: true }\n";

    #[track_caller]
    fn put(arm: &FakeArm, path: &str, version: &str, body: Value) -> Value {
        let (status, out) =
            arm.request("PUT", &format!("{path}?api-version={version}"), Some(&body));
        assert!((200..300).contains(&status), "PUT {path}: {status} {out}");
        out
    }

    /// What `az identity create`, `az identity federated-credential create`, `az role
    /// assignment create` and `az keyvault set-policy` leave, for control plane 0 only.
    fn made_by_hand(arm: &FakeArm) -> (Value, Value) {
        let tags = json!({"team": "platform"});
        let backup = put(
            arm,
            &identity_id("backup-restore-identity"),
            "2023-01-31",
            json!({"location": "eastus", "tags": tags}),
        );
        let secrets = put(
            arm,
            &identity_id("secrets-identity"),
            "2023-01-31",
            json!({"location": "eastus"}),
        );
        let ns = &namespaces(0..1)[0];
        put(
            arm,
            &format!(
                "{}/federatedIdentityCredentials/backup-restore-federated-identity",
                identity_id("backup-restore-identity")
            ),
            "2023-01-31",
            json!({"properties": {"issuer": ISSUER, "subject": subject(ns, "mxp-controller"), "audiences": ["api://AzureADTokenExchange"]}}),
        );
        put(
            arm,
            &format!(
                "{}/federatedIdentityCredentials/secrets-federated-identity",
                identity_id("secrets-identity")
            ),
            "2023-01-31",
            json!({"properties": {"issuer": ISSUER, "subject": subject(ns, "external-secrets-controller"), "audiences": ["api://AzureADTokenExchange"]}}),
        );
        put(
            arm,
            &format!(
                "{}/providers/Microsoft.Authorization/roleAssignments/0b7e6e9a-5f0c-4a53-9d7e-2d6a0f1c9e11",
                storage_id("acmebackup")
            ),
            "2022-04-01",
            json!({"properties": {
                "roleDefinitionId": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{BLOB}"),
                "principalId": backup["properties"]["principalId"],
                "principalType": "ServicePrincipal",
            }}),
        );
        let vault = &arm.state()["vaults"][vault_id().to_lowercase()];
        put(
            arm,
            &format!("{}/accessPolicies/add", vault_id()),
            "2023-07-01",
            json!({"properties": {"accessPolicies": [{
                "tenantId": vault["properties"]["tenantId"],
                "objectId": secrets["properties"]["principalId"],
                "permissions": {"secrets": ["get", "list"], "keys": [], "certificates": []},
            }]}}),
        );
        (backup, secrets)
    }

    fn setup() -> (FakeArm, TestDir) {
        let arm = FakeArm::start();
        arm.seed_cluster(json!({}));
        arm.seed_storage("acmebackup");
        arm.admin("/admin/vaults", json!({"id": vault_id(), "rbac": false}));
        (arm, TestDir::new())
    }

    fn fic_names(arm: &FakeArm, identity: &str) -> Vec<String> {
        let state = arm.state();
        let mut names: Vec<String> = state["fics"][identity_id(identity).to_lowercase()]
            .as_object()
            .map(|m| {
                m.values()
                    .map(|f| f["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Twenty credentials made by hand, under their maker's names, are the twenty the spec
    /// wants: not twenty more, over Azure's limit.
    #[test]
    fn credentials_adopted_at_the_ceiling_are_not_counted_twice() {
        let (arm, dir) = setup();
        let backup = put(
            &arm,
            &identity_id("backup-restore-identity"),
            "2023-01-31",
            json!({"location": "eastus"}),
        );
        for (i, ns) in namespaces(0..20).iter().enumerate() {
            put(
                &arm,
                &format!(
                    "{}/federatedIdentityCredentials/by-hand-{i}",
                    identity_id("backup-restore-identity")
                ),
                "2023-01-31",
                json!({"properties": {"issuer": ISSUER, "subject": subject(ns, "mxp-controller"), "audiences": ["api://AzureADTokenExchange"]}}),
            );
        }
        dir.write(
            "idplan.yaml",
            &spec(20, "      backup: { storageAccount: acmebackup, name: backup-restore-identity, adopt: true }\n"),
        );
        let json = dir.idplan_azure(&arm, &["plan", "--format", "json"]).json();
        let creates: Vec<&Value> = json["resource_changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["action"] == "create")
            .collect();
        // Only the role assignment is missing from what was made by hand.
        assert_eq!(creates.len(), 1, "{creates:?}");
        assert_eq!(creates[0]["address"], "azurerm_role_assignment.prod.backup");
        dir.idplan_azure(&arm, &["apply", "--auto-approve"])
            .assert_code(0);
        assert_eq!(fic_names(&arm, "backup-restore-identity").len(), 20);
        assert_eq!(
            arm.identity("backup-restore-identity").unwrap()["properties"],
            backup["properties"]
        );
    }

    #[test]
    fn identities_made_by_hand_are_adopted_with_their_credentials_assignment_and_vault_entry() {
        let (arm, dir) = setup();
        let (backup, secrets) = made_by_hand(&arm);
        let principal = backup["properties"]["principalId"]
            .as_str()
            .unwrap()
            .to_string();

        dir.write(
            "idplan.yaml",
            &spec(2, &ADOPTED.replace(", adopt: true", "")),
        );
        dir.idplan_azure(&arm, &["plan"])
            .assert_code(1)
            .assert_stderr_contains("set `adopt: true` on the component to take it over");

        dir.write("idplan.yaml", &spec(2, ADOPTED));
        let json = dir.idplan_azure(&arm, &["plan", "--format", "json"]).json();
        assert_eq!(json["summary"]["destroy"], 0, "{}", json["summary"]);
        let ns = namespaces(0..2);
        let identity = change(&json, "azurerm_user_assigned_identity.prod.backup");
        assert_eq!(identity["action"], "update", "tags only: {identity}");
        assert_eq!(identity["ownership"], "adopted");
        let fic0 = change(
            &json,
            &format!(
                "azurerm_federated_identity_credential.prod.backup.{}",
                ns[0]
            ),
        );
        assert_eq!(fic0["action"], "no-op", "{fic0}");
        assert_eq!(fic0["ownership"], "adopted");
        assert_eq!(fic0["after"]["name"], "backup-restore-federated-identity");
        let fic1 = change(
            &json,
            &format!(
                "azurerm_federated_identity_credential.prod.backup.{}",
                ns[1]
            ),
        );
        assert_eq!(
            fic1["action"], "create",
            "missing from the manual setup: {fic1}"
        );
        let assignment = change(&json, "azurerm_role_assignment.prod.backup");
        assert_eq!(assignment["action"], "no-op", "{assignment}");
        assert_eq!(assignment["ownership"], "adopted");
        let entry = change(&json, "azurerm_key_vault_access_policy.prod.sharedSecrets");
        assert_eq!(entry["action"], "no-op", "{entry}");
        assert_eq!(entry["ownership"], "adopted");

        dir.idplan_azure(&arm, &["apply", "--auto-approve"])
            .assert_code(0);
        let after = arm.identity("backup-restore-identity").unwrap();
        assert_eq!(
            after["properties"], backup["properties"],
            "the same identity"
        );
        assert_eq!(after["tags"]["team"], "platform");
        assert_eq!(after["tags"]["idplan/adopted"], "true");
        assert_eq!(
            arm.identity("secrets-identity").unwrap()["properties"],
            secrets["properties"]
        );
        assert_eq!(
            fic_names(&arm, "backup-restore-identity"),
            [
                "backup-restore-federated-identity".to_string(),
                ns[1].clone()
            ]
        );
        let assignments: Vec<Value> = arm.state()["assignments"]
            .as_object()
            .unwrap()
            .values()
            .filter(|a| a["properties"]["principalId"] == principal.as_str())
            .cloned()
            .collect();
        assert_eq!(assignments.len(), 1, "not made twice: {assignments:?}");
        dir.idplan_azure(&arm, &["plan", "--detailed-exitcode"])
            .assert_code(0)
            .assert_stdout_contains("No changes.");
        dir.idplan_azure(&arm, &["drift"]).assert_code(0);

        // The components leave: the identities, the credentials, the assignment and the
        // vault entry made by hand stay; idplan's credential and tags go.
        dir.write(
            "idplan.yaml",
            &spec(
                2,
                "      billing: { storageAccount: acmebackup, container: metrics }\n",
            ),
        );
        let released = dir.idplan_azure(&arm, &["apply", "--auto-approve"]);
        released.assert_code(0);
        released
            .assert_stdout_contains("azurerm_user_assigned_identity.prod.backup will be released");
        let after = arm
            .identity("backup-restore-identity")
            .expect("never deleted");
        assert_eq!(after["properties"], backup["properties"]);
        assert_eq!(after["tags"], json!({"team": "platform"}));
        assert_eq!(
            fic_names(&arm, "backup-restore-identity"),
            ["backup-restore-federated-identity"]
        );
        assert_eq!(
            fic_names(&arm, "secrets-identity"),
            ["secrets-federated-identity"]
        );
        assert!(
            arm.state()["assignments"]
                .as_object()
                .unwrap()
                .values()
                .any(|a| a["properties"]["principalId"] == principal.as_str()),
            "the assignment made by hand stays"
        );
        let policies =
            &arm.state()["vaults"][vault_id().to_lowercase()]["properties"]["accessPolicies"];
        assert!(
            policies
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["objectId"] == secrets["properties"]["principalId"]
                    && p["permissions"]["secrets"] == json!(["get", "list"])),
            "the vault entry made by hand stays: {policies}"
        );
    }
}

mod gcp {
    use serde_json::json;

    use super::change;
    use crate::support::{FakeGoogle, TestDir, control_planes, namespace, namespaces};

    const PROJECT: &str = "acme-spaces";
    const POOL: &str = "acme-spaces.svc.id.goog";
    const GSA: &str = "backup-gsa@acme-spaces.iam.gserviceaccount.com";

    fn spec(n: usize, components: &str) -> String {
        let planes = control_planes(namespaces(0..n));
        format!(
            "version: 1\nspaces:\n  - name: prod\n{planes}    gcp:\n      project: {PROJECT}\n      \
             cluster: {{ location: us-central1, name: spaces }}\n      mode: service-account\n    \
             components:\n{components}"
        )
    }

    fn workload(i: usize) -> String {
        format!("serviceAccount:{POOL}[{}/mxp-controller]", namespace(i))
    }

    #[test]
    fn a_google_service_account_made_by_hand_is_adopted_with_its_bindings() {
        let fake = FakeGoogle::start();
        fake.seed(json!({
            "projects": [{ "id": PROJECT, "number": "123456789012" }],
            "clusters": [{ "project": PROJECT, "location": "us-central1", "name": "spaces", "workloadPool": POOL }],
            "buckets": [{ "name": "acme-backup", "project": PROJECT }],
        }));
        // As `gcloud iam service-accounts create`, `gcloud storage buckets
        // add-iam-policy-binding` and `gcloud iam service-accounts add-iam-policy-binding`
        // leave it, for control plane 0 only.
        let made = fake.call(
            "POST",
            &format!("/v1/projects/{PROJECT}/serviceAccounts"),
            Some(&json!({ "accountId": "backup-gsa", "serviceAccount": { "displayName": "backup", "description": "made by hand" } })),
        );
        let gsa_member = format!("serviceAccount:{GSA}");
        fake.set_bindings(
            "bucket:acme-backup",
            json!([{ "role": "roles/storage.objectAdmin", "members": [gsa_member] }]),
        );
        fake.set_bindings(
            &format!("sa:{GSA}"),
            json!([{ "role": "roles/iam.workloadIdentityUser", "members": [workload(0)] }]),
        );

        let dir = TestDir::new();
        let adopted = "      backup: { bucket: acme-backup, name: backup-gsa, adopt: true }\n";
        dir.write(
            "idplan.yaml",
            &spec(2, &adopted.replace(", adopt: true", "")),
        );
        dir.idplan_gcp(&fake, &["plan"])
            .assert_code(1)
            .assert_stderr_contains("set `adopt: true` on the component to take it over");

        dir.write("idplan.yaml", &spec(2, adopted));
        let json = dir.idplan_gcp(&fake, &["plan", "--format", "json"]).json();
        assert_eq!(json["summary"]["destroy"], 0, "{}", json["summary"]);
        let account = change(&json, "google_service_account.prod.backup");
        assert_eq!(account["action"], "no-op", "{account}");
        assert_eq!(account["ownership"], "adopted");
        let linked = change(&json, "google_service_account_iam_members.prod.backup");
        assert_eq!(
            linked["action"], "update",
            "control plane 1 is added: {linked}"
        );
        assert_eq!(linked["ownership"], "adopted");

        dir.idplan_gcp(&fake, &["apply", "--auto-approve"])
            .assert_code(0);
        let after = fake.call(
            "GET",
            &format!("/v1/projects/{PROJECT}/serviceAccounts/{GSA}"),
            None,
        );
        assert_eq!(
            after["uniqueId"], made["uniqueId"],
            "the same service account"
        );
        assert_eq!(after["description"], "made by hand");
        assert_eq!(
            fake.members(&format!("sa:{GSA}"), "roles/iam.workloadIdentityUser"),
            vec![workload(0), workload(1)]
        );
        dir.idplan_gcp(&fake, &["plan", "--detailed-exitcode"])
            .assert_code(0)
            .assert_stdout_contains("No changes.");

        // The component leaves: the service account and what was bound by hand stay; the
        // member idplan added goes.
        dir.write(
            "idplan.yaml",
            &spec(2, "      billing: { bucket: acme-backup }\n"),
        );
        let released = dir.idplan_gcp(&fake, &["apply", "--auto-approve"]);
        released.assert_code(0);
        let after = fake.call(
            "GET",
            &format!("/v1/projects/{PROJECT}/serviceAccounts/{GSA}"),
            None,
        );
        assert_eq!(after["uniqueId"], made["uniqueId"], "never deleted");
        assert_eq!(
            fake.members(&format!("sa:{GSA}"), "roles/iam.workloadIdentityUser"),
            vec![workload(0)]
        );
        assert!(
            fake.members("bucket:acme-backup", "roles/storage.objectAdmin")
                .contains(&format!("serviceAccount:{GSA}")),
            "bound by hand, kept"
        );
    }
}

#[tokio::test]
async fn a_role_with_a_path_is_not_adopted() {
    let components =
        "      backup: { bucket: acme-spaces-backup, name: acme-pathed, adopt: true }\n"
            .to_string();
    let (ms, dir) = setup(&spec(1, "", Some(&components))).await;
    let iam = Iam::new(&ms).await;
    iam.client
        .create_role()
        .role_name("acme-pathed")
        .path("/team/")
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .unwrap();
    let plan = dir.idplan(&ms, &["plan"]);
    plan.assert_code(1);
    plan.assert_stderr_contains(
        "IAM role acme-pathed has path /team/: idplan manages roles of path / only",
    );
}
