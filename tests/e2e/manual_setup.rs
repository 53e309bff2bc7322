//! The Spaces guides' manual recipes (`support/manual`), run literally against the peers, do
//! what the guides say: each test asserts on what the cloud's peer and the Space's cluster
//! hold afterwards, on the ids the recipe returns against those read back, and that today's
//! idplan refuses a spec naming those identities without changing them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::support::fake_arm::storage_id;
use crate::support::manual::aws::{self, Mode};
use crate::support::manual::gcp::{self, Secrets};
use crate::support::manual::{
    self, CLIENT_ID, Component, GCP_SA, N, Planes, ROLE_ARN, azure, sa_annotations,
};
use crate::support::ministack::Iam;
use crate::support::{
    FakeArm, FakeGoogle, FakeKube, Ministack, Output, TestDir, namespace, repo_path, subject,
    subjects,
};

/// What idplan says today when a spec names an identity someone else made.
const REFUSED: &str = "already exists and was not created by idplan";

/// A policy value that may be one string or a list of them, as a set.
fn strings(v: &Value) -> BTreeSet<String> {
    match v {
        Value::String(s) => [s.clone()].into(),
        Value::Array(a) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// Every component's service account in every host namespace carries exactly the
/// annotation `expected` gives it (key, value), or none; and one running pod of the
/// component's deployment runs as it, labelled `pod_label` (Azure) or not.
#[track_caller]
fn assert_helm_annotations(
    kube: &FakeKube,
    namespaces: &[String],
    expected: impl Fn(Component) -> Option<(&'static str, String)>,
    pod_label: Option<(&str, &str)>,
) {
    assert!(!namespaces.is_empty());
    let state = kube.state();
    for ns in namespaces {
        for c in Component::ALL {
            let sa = c.service_account();
            let got = sa_annotations(kube, ns, sa);
            let want: BTreeMap<String, String> = expected(c)
                .map(|(k, v)| (k.to_string(), v))
                .into_iter()
                .collect();
            assert_eq!(got, want, "{ns}/{sa}");
            let pods: Vec<&Value> = state["objects"]["pods"]
                .as_object()
                .unwrap()
                .values()
                .filter(|p| p["metadata"]["namespace"] == ns.as_str())
                .filter(|p| p["spec"]["serviceAccountName"] == sa)
                .collect();
            assert_eq!(pods.len(), 1, "{ns}/{sa}: {pods:#?}");
            assert_eq!(pods[0]["status"]["phase"], "Running");
            let labels = &pods[0]["metadata"]["labels"];
            assert_eq!(labels["app.kubernetes.io/name"], manual::deployment(c));
            if let Some((key, value)) = pod_label {
                assert_eq!(labels[key], value, "{ns}/{sa}");
            } else {
                assert!(labels.get(manual::AZURE_USE.0).is_none(), "{labels}");
            }
        }
    }
}

/// `idplan plan` on `spec` is refused, naming the team's identity, and changes nothing.
#[track_caller]
fn assert_refused(plan: &Output, name: &str) {
    plan.assert_code(1);
    plan.assert_stderr_contains(REFUSED);
    plan.assert_stderr_contains(name);
}

// -- AWS --------------------------------------------------------------------------------
// The recipe runs the aws CLI; the tests read ministack through the SDK, which is faster.

/// A policy document as IAM returns it (URL-encoded JSON).
#[track_caller]
fn document(raw: Option<&str>) -> Value {
    idplan::policy::parse_returned(raw.expect("a policy document")).unwrap()
}

/// Every permission policy of `role`: (inline policy names, attached policy ARNs, the
/// statements of all of them).
async fn aws_permissions(iam: &Iam, role: &str) -> (Vec<String>, Vec<String>, Vec<Value>) {
    let c = &iam.client;
    let mut statements = Vec::new();
    let listed = c.list_role_policies().role_name(role).send().await.unwrap();
    let inline = listed.policy_names().to_vec();
    for name in &inline {
        let out = c
            .get_role_policy()
            .role_name(role)
            .policy_name(name)
            .send()
            .await
            .unwrap();
        let doc = document(Some(out.policy_document()));
        statements.extend(doc["Statement"].as_array().cloned().unwrap_or_default());
    }
    let listed = c
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap();
    let mut attached = Vec::new();
    for p in listed.attached_policies() {
        let arn = p.policy_arn().unwrap().to_string();
        let policy = c.get_policy().policy_arn(&arn).send().await.unwrap();
        let version = policy
            .policy()
            .and_then(|p| p.default_version_id())
            .unwrap();
        let out = c
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(version)
            .send()
            .await
            .unwrap();
        let doc = document(out.policy_version().and_then(|v| v.document()));
        statements.extend(doc["Statement"].as_array().cloned().unwrap_or_default());
        attached.push(arn);
    }
    (inline, attached, statements)
}

/// The role of `c` grants what the guide grants: S3 on the component's bucket (without
/// `s3:DeleteObject` in the pod identity guide), Secrets Manager on the Space's secrets; in
/// the inline or attached policy the recipe made.
async fn assert_aws_permissions(iam: &Iam, space: &aws::AwsSpace, c: Component) {
    let role = space.role(c);
    let (inline, attached, statements) = aws_permissions(iam, &role.name).await;
    assert_eq!(
        (&inline, &attached),
        (&role.inline, &role.attached),
        "{}",
        role.name
    );
    assert_eq!(statements.len(), 1, "{statements:#?}");
    let s = &statements[0];
    assert_eq!(s["Effect"], "Allow");
    let (actions, resources): (Vec<String>, Vec<String>) = match c {
        Component::Backup | Component::Billing => {
            let bucket = if c == Component::Backup {
                aws::BACKUP_BUCKET
            } else {
                aws::BILLING_BUCKET
            };
            let mut actions = vec!["s3:GetObject", "s3:PutObject", "s3:ListBucket"];
            if space.mode != Mode::PodIdentity {
                actions.push("s3:DeleteObject");
            }
            (
                actions.into_iter().map(String::from).collect(),
                vec![
                    format!("arn:aws:s3:::{bucket}"),
                    format!("arn:aws:s3:::{bucket}/*"),
                ],
            )
        }
        Component::SharedSecrets => (
            vec![
                "secretsmanager:GetSecretValue".into(),
                "secretsmanager:DescribeSecret".into(),
            ],
            vec![aws::secrets_arn(&space.account)],
        ),
    };
    assert_eq!(
        strings(&s["Action"]),
        actions.into_iter().collect(),
        "{}",
        role.name
    );
    assert_eq!(
        strings(&s["Resource"]),
        resources.into_iter().collect(),
        "{}",
        role.name
    );
}

/// The one statement of the trust policy of the role of `c`, as IAM holds it.
async fn aws_trust(iam: &Iam, space: &aws::AwsSpace, c: Component) -> Value {
    let role = space.role(c);
    let held = iam.role(&role.name).await.expect("the role exists");
    assert_eq!(held.arn(), role.arn);
    assert_eq!(held.role_id(), role.role_id);
    let trust = iam.trust(&role.name).await;
    assert_eq!(
        trust["Statement"].as_array().map(Vec::len),
        Some(1),
        "{trust:#}"
    );
    trust["Statement"][0].clone()
}

/// IRSA: the cluster's OIDC provider for `sts.amazonaws.com`, as eksctl makes it.
async fn assert_oidc_provider(iam: &Iam, space: &aws::AwsSpace) -> String {
    let arn = space.provider_arn.clone().expect("IRSA made a provider");
    let host = space.issuer.split_once("://").unwrap().1;
    assert_eq!(
        arn,
        format!("arn:aws:iam::{}:oidc-provider/{host}", space.account)
    );
    let provider = iam
        .client
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(provider.client_id_list(), ["sts.amazonaws.com"]);
    assert_eq!(provider.thumbprint_list(), [aws::THUMBPRINT]);
    arn
}

/// The ids the recipe returned are what ministack holds.
#[track_caller]
fn assert_aws_ids(ms: &Ministack, space: &aws::AwsSpace) -> manual::Ids {
    let ids = space.read_ids(ms);
    for role in &space.roles {
        let key = role.component.key();
        assert_eq!(ids[&format!("{key}.arn")], role.arn);
        assert_eq!(ids[&format!("{key}.roleId")], role.role_id);
    }
    for a in &space.associations {
        let key = format!("{}.association.{}", a.component.key(), a.namespace);
        assert_eq!(ids[&key], a.id);
    }
    assert_eq!(ids.get("oidcProvider"), space.provider_arn.as_ref());
    assert_eq!(
        ids.len(),
        2 * 3 + space.associations.len() + usize::from(space.provider_arn.is_some())
    );
    ids
}

/// The role ARN annotations of IRSA, none for pod identity.
#[track_caller]
fn assert_aws_annotations(kube: &FakeKube, space: &aws::AwsSpace) {
    assert_helm_annotations(
        kube,
        &space.namespaces,
        |c| (space.mode != Mode::PodIdentity).then(|| (ROLE_ARN, space.role(c).arn.clone())),
        None,
    );
}

/// Today's idplan, on a spec naming the team's roles: refused, nothing changed.
#[track_caller]
fn assert_aws_refused(ms: &Ministack, space: &aws::AwsSpace, before: &manual::Ids) {
    let dir = TestDir::new();
    dir.write("idplan.yaml", &space.spec(Planes::List, ""));
    assert_refused(
        &dir.idplan(ms, &["plan"]),
        aws::role_name(Component::Backup),
    );
    assert_eq!(&space.read_ids(ms), before);
}

#[tokio::test]
async fn aws_irsa_guide_with_exact_trust() {
    let ms = Ministack::start();
    let kube = FakeKube::start();
    let space = aws::guide(&ms, &kube, Mode::IrsaExact, N);
    let iam = Iam::new(&ms).await;

    let provider = assert_oidc_provider(&iam, &space).await;
    let host = space.issuer.split_once("://").unwrap().1;
    for c in Component::ALL {
        let s = aws_trust(&iam, &space, c).await;
        assert_eq!(s["Effect"], "Allow");
        assert_eq!(s["Principal"]["Federated"], provider.as_str());
        assert_eq!(s["Action"], "sts:AssumeRoleWithWebIdentity");
        let equals = &s["Condition"]["StringEquals"];
        assert_eq!(equals[format!("{host}:aud")], "sts.amazonaws.com");
        assert_eq!(
            strings(&equals[format!("{host}:sub")]),
            subjects(&space.namespaces, c.service_account())
        );
        assert!(s["Condition"].get("StringLike").is_none(), "{s:#}");
        assert_aws_permissions(&iam, &space, c).await;
    }
    assert_aws_annotations(&kube, &space);
    let before = assert_aws_ids(&ms, &space);
    assert_aws_refused(&ms, &space, &before);

    // A control plane created since: Helm annotates its service accounts with the Space-wide
    // roles, and no trust policy names it.
    let added = space.add_control_plane(&kube, N);
    assert_eq!(added, namespace(N));
    assert_helm_annotations(
        &kube,
        std::slice::from_ref(&added),
        |c| Some((ROLE_ARN, space.role(c).arn.clone())),
        None,
    );
    for c in Component::ALL {
        let s = aws_trust(&iam, &space, c).await;
        let admitted = strings(&s["Condition"]["StringEquals"][format!("{host}:sub")]);
        assert_eq!(admitted.len(), N);
        assert!(!admitted.contains(&subject(&added, c.service_account())));
    }
}

#[tokio::test]
async fn aws_irsa_guide_with_wildcard_trust() {
    let ms = Ministack::start();
    let kube = FakeKube::start();
    let space = aws::guide(&ms, &kube, Mode::IrsaWildcard, N);
    let iam = Iam::new(&ms).await;

    let provider = assert_oidc_provider(&iam, &space).await;
    let host = space.issuer.split_once("://").unwrap().1;
    for c in Component::ALL {
        let s = aws_trust(&iam, &space, c).await;
        assert_eq!(s["Principal"]["Federated"], provider.as_str());
        assert_eq!(s["Action"], "sts:AssumeRoleWithWebIdentity");
        assert_eq!(
            s["Condition"]["StringEquals"],
            json!({ format!("{host}:aud"): "sts.amazonaws.com" })
        );
        assert_eq!(
            s["Condition"]["StringLike"],
            json!({ format!("{host}:sub"): format!("system:serviceaccount:*:{}", c.service_account()) })
        );
        assert_aws_permissions(&iam, &space, c).await;
    }
    assert_aws_annotations(&kube, &space);
    let before = assert_aws_ids(&ms, &space);
    assert_aws_refused(&ms, &space, &before);
}

#[tokio::test]
async fn aws_pod_identity_guide() {
    let ms = Ministack::start();
    let kube = FakeKube::start();
    let space = aws::guide(&ms, &kube, Mode::PodIdentity, N);
    let iam = Iam::new(&ms).await;

    assert_eq!(space.provider_arn, None);
    let providers = iam.oidc_providers().await;
    assert!(providers.is_empty(), "{providers:?}");
    for c in Component::ALL {
        let s = aws_trust(&iam, &space, c).await;
        assert_eq!(s["Effect"], "Allow");
        assert_eq!(s["Principal"], json!({"Service": "pods.eks.amazonaws.com"}));
        assert_eq!(
            strings(&s["Action"]),
            ["sts:AssumeRole".to_string(), "sts:TagSession".to_string()].into()
        );
        assert!(s.get("Condition").is_none(), "{s:#}");
        assert_aws_permissions(&iam, &space, c).await;
    }

    // One association per control plane and component, to the component's role.
    let eks = aws_sdk_eks::Client::new(&ms.sdk_config().await);
    let listed = eks
        .list_pod_identity_associations()
        .cluster_name(aws::CLUSTER)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.associations().len(), N * 3, "{listed:?}");
    let mut seen = BTreeSet::new();
    for a in listed.associations() {
        let out = eks
            .describe_pod_identity_association()
            .cluster_name(aws::CLUSTER)
            .association_id(a.association_id().unwrap())
            .send()
            .await
            .unwrap();
        let d = out.association().unwrap();
        let sa = d.service_account().unwrap();
        let c = Component::of_service_account(sa).unwrap_or_else(|| panic!("{sa}"));
        assert_eq!(d.role_arn(), Some(space.role(c).arn.as_str()));
        assert_eq!(d.disable_session_tags(), Some(false));
        seen.insert((d.namespace().unwrap().to_string(), sa.to_string()));
    }
    let expected: BTreeSet<(String, String)> = space
        .namespaces
        .iter()
        .flat_map(|ns| Component::ALL.map(|c| (ns.clone(), c.service_account().to_string())))
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(space.associations.len(), N * 3);
    for a in &space.associations {
        assert_eq!(a.role_arn, space.role(a.component).arn);
    }
    assert_aws_annotations(&kube, &space);
    let before = assert_aws_ids(&ms, &space);
    assert_aws_refused(&ms, &space, &before);
}

// -- Azure ------------------------------------------------------------------------------

#[test]
fn azure_guides() {
    let arm = FakeArm::start();
    let kube = FakeKube::start();
    let space = azure::guide(&arm, &kube, N);
    let state = arm.state();

    for identity in &space.identities {
        let c = identity.component;
        let held = &state["identities"][identity.id.to_lowercase()];
        assert_eq!(held["name"], identity.name.as_str());
        assert_eq!(identity.name, azure::identity_name(c));
        assert_eq!(held["location"], azure::LOCATION);
        assert_eq!(held["properties"]["clientId"], identity.client_id.as_str());
        assert_eq!(
            held["properties"]["principalId"],
            identity.principal_id.as_str()
        );

        // One federated credential per control plane, under the guides' names.
        let fics = state["fics"][identity.id.to_lowercase()]
            .as_object()
            .unwrap();
        let mut held: Vec<(String, String)> = fics
            .values()
            .map(|f| {
                let p = &f["properties"];
                assert_eq!(p["issuer"], space.issuer.as_str());
                assert_eq!(p["audiences"], json!(["api://AzureADTokenExchange"]));
                (
                    f["name"].as_str().unwrap().to_string(),
                    p["subject"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        held.sort();
        let mut want = identity.credentials.clone();
        want.sort();
        assert_eq!(held, want);
        let names: BTreeSet<String> = want.iter().map(|(n, _)| n.clone()).collect();
        assert!(names.contains(&azure::credential_name(c, 0)));
        let subjects_held: BTreeSet<String> = want.into_iter().map(|(_, s)| s).collect();
        assert_eq!(
            subjects_held,
            subjects(&space.namespaces, c.service_account())
        );
    }
    assert!(
        space.issuer.ends_with('/'),
        "the AKS issuer keeps its trailing /"
    );

    // Storage Blob Data Contributor on each storage account, under a random GUID name; none
    // for the secrets identity, which has the vault's access policy instead.
    let assignments = state["assignments"].as_object().unwrap();
    assert_eq!(assignments.len(), 2, "{assignments:#?}");
    for (c, account) in [
        (Component::Backup, azure::BACKUP_ACCOUNT),
        (Component::Billing, azure::BILLING_ACCOUNT),
    ] {
        let identity = space.identity(c);
        let id = identity.assignment.as_deref().unwrap();
        let a = &assignments[&id.to_lowercase()];
        let name = a["name"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(name).is_ok(), "{name} is a GUID");
        let p = &a["properties"];
        assert!(
            p["roleDefinitionId"]
                .as_str()
                .unwrap()
                .ends_with(azure::BLOB_CONTRIBUTOR),
            "{p}"
        );
        assert_eq!(p["scope"], storage_id(account));
        assert_eq!(p["principalId"], identity.principal_id.as_str());
    }
    let vault = &state["vaults"][space.vault_id.to_lowercase()]["properties"];
    let secrets = space.identity(Component::SharedSecrets);
    let entries: Vec<&Value> = vault["accessPolicies"].as_array().unwrap().iter().collect();
    assert_eq!(entries.len(), 1, "{entries:#?}");
    assert_eq!(entries[0]["objectId"], secrets.principal_id.as_str());
    assert_eq!(entries[0]["tenantId"], vault["tenantId"]);
    assert_eq!(
        strings(&entries[0]["permissions"]["secrets"]),
        ["get".to_string(), "list".to_string()].into()
    );

    assert_helm_annotations(
        &kube,
        &space.namespaces,
        |c| Some((CLIENT_ID, space.identity(c).client_id.clone())),
        Some(manual::AZURE_USE),
    );
    let before = space.read_ids(&arm);
    for identity in &space.identities {
        let key = identity.component.key();
        assert_eq!(before[&format!("{key}.clientId")], identity.client_id);
        assert_eq!(before[&format!("{key}.principalId")], identity.principal_id);
        for (name, sub) in &identity.credentials {
            assert_eq!(&before[&format!("{key}.credential.{sub}")], name);
        }
    }

    let dir = TestDir::new();
    dir.write("idplan.yaml", &space.spec(Planes::List, ""));
    assert_refused(
        &dir.idplan_azure(&arm, &["plan"]),
        azure::identity_name(Component::Backup),
    );
    assert_eq!(space.read_ids(&arm), before);
}

/// idplan's discovery reads the control planes of the manual Space's cluster: a plan for new
/// identities (default names) has a credential for each of them.
#[test]
fn discovery_reads_the_manual_space_cluster() {
    let arm = FakeArm::start();
    let kube = FakeKube::start();
    let space = azure::guide(&arm, &kube, N);
    let dir = TestDir::new();
    let kubeconfig = dir.write("kubeconfig", &kube.kubeconfig("space-prod"));
    let planes = Planes::Discover {
        kubeconfig: &kubeconfig,
        context: "space-prod",
    };
    // Without the names: idplan's own identities beside the team's.
    let spec = space.spec_unnamed(planes);
    dir.write("idplan.yaml", &spec);
    // A control plane created since the manual setup: discovered too; the team's identities
    // have no credential for it.
    let added = space.add_control_plane(&kube, N);
    assert_helm_annotations(
        &kube,
        std::slice::from_ref(&added),
        |c| Some((CLIENT_ID, space.identity(c).client_id.clone())),
        Some(manual::AZURE_USE),
    );
    for identity in &space.identities {
        let held = arm.subjects(&identity.name);
        assert_eq!(held.len(), N);
        assert!(!held.contains(&subject(&added, identity.component.service_account())));
    }
    let plan = dir.idplan_azure(&arm, &["plan", "--format", "json"]);
    plan.assert_code(0);
    let addresses: BTreeSet<String> = plan.json()["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["address"].as_str().unwrap().to_string())
        .filter(|a| a.starts_with("azurerm_federated_identity_credential."))
        .collect();
    assert_eq!(addresses.len(), 3 * (N + 1), "{addresses:#?}");
    for ns in space.namespaces.iter().chain([&added]) {
        assert_eq!(
            addresses
                .iter()
                .filter(|a| a.ends_with(ns.as_str()))
                .count(),
            3,
            "{ns}"
        );
    }
}

/// The calls the Azure recipe added to the fake answer as ARM does: role definitions in the
/// reference example's shape, and a whole-vault write that checks what ARM checks.
#[test]
fn the_fake_arm_answers_role_definitions_and_vault_writes_like_arm() {
    let arm = FakeArm::start();
    let kube = FakeKube::start();
    let space = azure::guide(&arm, &kube, 1);
    let scope = storage_id(azure::BACKUP_ACCOUNT);
    let v = "api-version=2022-04-01";
    let (status, list) = arm.request(
        "GET",
        &format!("{scope}/providers/Microsoft.Authorization/roleDefinitions?{v}"),
        None,
    );
    assert_eq!(status, 200, "{list}");
    let text = std::fs::read_to_string(repo_path(
        "../shared/reference/azure/authorization/GetRoleDefinitionAtScope.json",
    ))
    .expect("the reference example");
    let reference: Value = serde_json::from_str(&text).unwrap();
    let example = &reference["responses"]["200"]["body"]["value"][0];
    let ours = &list["value"][0];
    for key in ["id", "type", "name"] {
        assert!(ours.get(key).is_some(), "{key} in {ours}");
    }
    for key in example["properties"].as_object().unwrap().keys() {
        assert!(
            ours["properties"].get(key).is_some(),
            "properties.{key} in {ours}"
        );
    }
    let by_id = arm.request(
        "GET",
        &format!(
            "{scope}/providers/Microsoft.Authorization/roleDefinitions/{}?{v}",
            azure::BLOB_CONTRIBUTOR
        ),
        None,
    );
    assert_eq!(by_id.0, 200);
    assert_eq!(
        by_id.1["properties"]["roleName"],
        "Storage Blob Data Contributor"
    );
    assert_eq!(
        by_id.1["id"],
        format!(
            "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{}",
            space.subscription,
            azure::BLOB_CONTRIBUTOR
        )
    );
    let (status, err) = arm.request(
        "GET",
        &format!("{scope}/providers/Microsoft.Authorization/roleDefinitions?$filter=bogus&{v}"),
        None,
    );
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("InvalidFilter"))
    );

    let vault = format!("{}?api-version=2023-07-01", space.vault_id);
    let (status, err) = arm.request("PUT", &vault, Some(&json!({"properties": {}})));
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("LocationRequired"))
    );
    let (_, held) = arm.request("GET", &vault, None);
    let mut body = json!({"location": held["location"], "properties": held["properties"]});
    body["properties"]["accessPolicies"] = json!([{"tenantId": held["properties"]["tenantId"]}]);
    let (status, err) = arm.request("PUT", &vault, Some(&body));
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("BadRequest"))
    );
    let (_, after) = arm.request("GET", &vault, None);
    assert_eq!(after, held, "a refused write changes nothing");
}

// -- GCP --------------------------------------------------------------------------------

/// The members of `role` in the policy of `target` (`bucket:`, `project:`, `secret:`, `sa:`).
#[track_caller]
fn members(fake: &FakeGoogle, target: &str, role: &str) -> BTreeSet<String> {
    fake.members(target, role).into_iter().collect()
}

#[track_caller]
fn gcp_guide_holds(secrets: Secrets) {
    let fake = FakeGoogle::start();
    let kube = FakeKube::start();
    let space = gcp::guide(&fake, &kube, N, secrets);
    assert_eq!(space.pool, gcp::POOL);

    for a in &space.accounts {
        let c = a.component;
        assert_eq!(a.account_id, gcp::account_id(c));
        assert_eq!(a.email, gcp::email(gcp::account_id(c)));
        let member = format!("serviceAccount:{}", a.email);
        let (target, role) = gcp::grant(c, secrets);
        assert_eq!(members(&fake, &target, role), [member].into(), "{target}");
        // The Kubernetes service account of every control plane may act as it.
        let want: BTreeSet<String> = space
            .namespaces
            .iter()
            .map(|ns| gcp::pool_member(ns, c.service_account()))
            .collect();
        assert_eq!(
            members(
                &fake,
                &format!("sa:{}", a.email),
                gcp::WORKLOAD_IDENTITY_USER
            ),
            want
        );
    }
    let other = match secrets {
        Secrets::Project => format!("secret:projects/{}/secrets/{}", gcp::PROJECT, gcp::SECRET),
        Secrets::Listed => format!("project:{}", gcp::PROJECT),
    };
    assert!(
        members(&fake, &other, gcp::SECRET_ACCESSOR).is_empty(),
        "{other}"
    );

    assert_helm_annotations(
        &kube,
        &space.namespaces,
        |c| Some((GCP_SA, space.account(c).email.clone())),
        None,
    );
    let before = space.read_ids(&fake);
    for a in &space.accounts {
        assert_eq!(
            before[&format!("{}.uniqueId", a.component.key())],
            a.unique_id
        );
        assert_eq!(before[&format!("{}.email", a.component.key())], a.email);
    }

    let dir = TestDir::new();
    dir.write("idplan.yaml", &space.spec(Planes::List, ""));
    assert_refused(
        &dir.idplan_gcp(&fake, &["plan"]),
        &gcp::email(gcp::account_id(Component::Backup)),
    );
    assert_eq!(space.read_ids(&fake), before);

    // A control plane created since: annotated Space-wide, not bound.
    let added = space.add_control_plane(&kube, N);
    assert_helm_annotations(
        &kube,
        std::slice::from_ref(&added),
        |c| Some((GCP_SA, space.account(c).email.clone())),
        None,
    );
    for a in &space.accounts {
        let bound = members(
            &fake,
            &format!("sa:{}", a.email),
            gcp::WORKLOAD_IDENTITY_USER,
        );
        assert_eq!(bound.len(), N);
        assert!(!bound.contains(&gcp::pool_member(&added, a.component.service_account())));
    }
}

#[test]
fn gcp_service_account_recipe_with_project_wide_secrets() {
    gcp_guide_holds(Secrets::Project);
}

#[test]
fn gcp_service_account_recipe_with_listed_secrets() {
    gcp_guide_holds(Secrets::Listed);
}

/// The recommended recipe, principal identifiers: each component's role on its bucket, or on
/// the project's secrets, for the principal of every control plane; no annotation. Today's
/// idplan (`mode: principal`) finds every member it wants already bound.
#[test]
fn gcp_principal_recipe() {
    let fake = FakeGoogle::start();
    let kube = FakeKube::start();
    let space = gcp::guide_principal(&fake, &kube, N, Secrets::Project);
    assert_eq!(space.recipe, gcp::Recipe::Principal);
    assert!(space.accounts.is_empty());
    for c in Component::ALL {
        let (target, role) = gcp::grant(c, Secrets::Project);
        let want: BTreeSet<String> = space
            .namespaces
            .iter()
            .map(|ns| gcp::principal(ns, c.service_account()))
            .collect();
        assert_eq!(members(&fake, &target, role), want, "{target}");
    }
    assert_helm_annotations(&kube, &space.namespaces, |_| None, None);
    // No account: the ids are the grants, one per component and control plane.
    let ids = space.read_ids(&fake);
    assert_eq!(ids.len(), 3 * N, "{ids:#?}");
    assert!(
        ids.keys().all(|k| k.contains(".grant.principal://")),
        "{ids:#?}"
    );

    let dir = TestDir::new();
    dir.write("idplan.yaml", &space.spec(Planes::List, ""));
    let before = fake.calls().len();
    dir.idplan_gcp(&fake, &["plan"])
        .assert_code(0)
        .assert_stdout_contains("Plan: 3 to import, 0 to add, 0 to change, 0 to destroy.");
    let writes: Vec<String> = fake.calls()[before..]
        .iter()
        .filter(|c| c.contains("setIamPolicy") || c.starts_with("PUT "))
        .cloned()
        .collect();
    assert!(writes.is_empty(), "plan wrote {writes:?}");

    // The Space's cluster, discovered, is what this recipe wants: no annotation to check, a
    // running pod per component and control plane.
    let kubeconfig = dir.write("kubeconfig", &kube.kubeconfig("space-prod"));
    let planes = Planes::Discover {
        kubeconfig: &kubeconfig,
        context: "space-prod",
    };
    dir.write("idplan.yaml", &space.spec(planes, ""));
    let verify = dir.idplan_gcp(&fake, &["verify", "--format", "json"]);
    verify.assert_code(0);
    assert_eq!(verify.json()["checked"], 3 * N, "{}", verify.stdout);
}
