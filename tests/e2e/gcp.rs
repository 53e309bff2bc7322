//! End to end through the idplan binary against the fake Google APIs
//! (`tests/support/fake_google.py`): what the IAM policies hold afterwards.

use serde_json::{Value, json};

use crate::support::{FakeGoogle, TestDir, control_planes, namespace};

pub(crate) const PROJECT: &str = "acme-spaces";
const NUMBER: &str = "123456789012";
pub(crate) const POOL: &str = "acme-spaces.svc.id.goog";
pub(crate) const OBJECT_ADMIN: &str = "roles/storage.objectAdmin";
pub(crate) const SECRET_ACCESSOR: &str = "roles/secretmanager.secretAccessor";
pub(crate) const WI_USER: &str = "roles/iam.workloadIdentityUser";

pub(crate) fn principal(i: usize, sa: &str) -> String {
    format!(
        "principal://iam.googleapis.com/projects/{NUMBER}/locations/global/workloadIdentityPools/{POOL}/subject/ns/{}/sa/{sa}",
        namespace(i)
    )
}

pub(crate) fn email(id: &str) -> String {
    format!("{id}@{PROJECT}.iam.gserviceaccount.com")
}

/// One space `prod` on cluster `cluster` with control planes `planes` (indexes).
fn spec_on(cluster: &str, mode: &str, planes: &[usize], components: &str) -> String {
    let planes = control_planes(planes.iter().map(|i| namespace(*i)));
    format!(
        "version: 1\nspaces:\n  - name: prod\n{planes}    gcp:\n      project: {PROJECT}\n      \
         cluster: {{ location: us-central1, name: {cluster} }}\n      mode: {mode}\n    \
         components:\n{components}"
    )
}

pub(crate) fn spec(mode: &str, planes: &[usize], components: &str) -> String {
    spec_on("spaces", mode, planes, components)
}

pub(crate) const ALL: &str = "      backup: { bucket: acme-backup }\n      billing: { bucket: acme-billing }\n      sharedSecrets: {}\n";

/// A fake with the project, two clusters (one without Workload Identity), three buckets (one
/// without uniform access) and a secret; and a directory holding `spec`.
fn setup(spec: &str) -> (FakeGoogle, TestDir) {
    let dir = TestDir::new();
    (setup_in(&dir, spec, &[]), dir)
}

/// As [`setup`], in `dir`, with more arguments for the fake (`Faults::args`).
fn setup_in(dir: &TestDir, spec: &str, args: &[&str]) -> FakeGoogle {
    let fake = seeded(args);
    dir.write("idplan.yaml", spec);
    fake
}

/// A fake started with `args`, seeded with the project, two clusters (one without Workload
/// Identity), three buckets (one without uniform access) and a secret.
pub(crate) fn seeded(args: &[&str]) -> FakeGoogle {
    let fake = FakeGoogle::start_with(args);
    fake.seed(json!({
        "projects": [{ "id": PROJECT, "number": NUMBER }],
        "clusters": [
            { "project": PROJECT, "location": "us-central1", "name": "spaces", "workloadPool": POOL },
            { "project": PROJECT, "location": "us-central1", "name": "no-wi" },
        ],
        "buckets": [
            { "name": "acme-backup", "project": PROJECT },
            { "name": "acme-billing", "project": PROJECT },
            { "name": "legacy-acl", "project": PROJECT, "uniform": false },
        ],
        "secrets": [{ "project": PROJECT, "id": "spaces-token" }],
    }));
    fake
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Someone else's bindings on the backup bucket: a member of the same role, a conditional
/// binding of that role and another role.
fn foreign_bindings() -> Value {
    json!([
        { "role": OBJECT_ADMIN, "members": ["user:alice@example.com"] },
        { "role": OBJECT_ADMIN, "members": ["user:bob@example.com"],
          "condition": { "title": "tmp", "expression": "request.time < timestamp(\"2099-01-01T00:00:00Z\")" } },
        { "role": "roles/storage.objectViewer", "members": ["group:ops@example.com"] },
    ])
}

/// How many policy writes (setIamPolicy, or PUT for a bucket) the fake has had.
fn writes(fake: &FakeGoogle) -> usize {
    fake.calls()
        .iter()
        .filter(|c| c.contains("setIamPolicy") || c.starts_with("PUT "))
        .count()
}

#[track_caller]
fn assert_foreign_intact(fake: &FakeGoogle) {
    let policy = fake.policy("bucket:acme-backup");
    let bindings = policy["bindings"].as_array().unwrap();
    assert!(
        fake.members("bucket:acme-backup", OBJECT_ADMIN)
            .contains(&"user:alice@example.com".to_string()),
        "{policy:#}"
    );
    let Some(conditional) = bindings.iter().find(|b| b.get("condition").is_some()) else {
        panic!("the conditional binding is gone: {policy:#}");
    };
    assert_eq!(conditional["members"], json!(["user:bob@example.com"]));
    assert_eq!(policy["version"], 3, "{policy:#}");
    assert!(
        bindings
            .iter()
            .any(|b| b["role"] == "roles/storage.objectViewer"
                && b["members"] == json!(["group:ops@example.com"])),
        "{policy:#}"
    );
}

#[test]
fn principal_mode_end_to_end() {
    let (fake, dir) = setup(&spec("principal", &[0, 1], ALL));
    fake.set_bindings("bucket:acme-backup", foreign_bindings());

    let plan = dir.idplan_gcp(&fake, &["plan", "--detailed-exitcode"]);
    plan.assert_code(2);
    plan.assert_stdout_contains("Plan: 3 to add, 0 to change, 0 to destroy.");
    dir.idplan_gcp(&fake, &["apply", "--auto-approve"])
        .assert_code(0);

    let mut want = vec!["user:alice@example.com".to_string()];
    want.extend([
        principal(0, "mxp-controller"),
        principal(1, "mxp-controller"),
    ]);
    assert_eq!(
        fake.members("bucket:acme-backup", OBJECT_ADMIN),
        sorted(want)
    );
    assert_foreign_intact(&fake);
    assert_eq!(
        fake.members("bucket:acme-billing", OBJECT_ADMIN),
        sorted(vec![principal(0, "vector"), principal(1, "vector")])
    );
    assert_eq!(
        fake.members(&format!("project:{PROJECT}"), SECRET_ACCESSOR),
        sorted(vec![
            principal(0, "external-secrets-controller"),
            principal(1, "external-secrets-controller")
        ])
    );

    // Nothing to do, and no write.
    let before = writes(&fake);
    dir.idplan_gcp(&fake, &["plan", "--detailed-exitcode"])
        .assert_code(0);
    let out = dir.idplan_gcp(&fake, &["apply", "--auto-approve"]);
    out.assert_code(0);
    assert_eq!(writes(&fake), before, "{}", out.stdout);

    // Someone else adds a member of the same role: not drift, and kept by the next apply.
    let mut bindings = fake.policy("bucket:acme-backup")["bindings"].clone();
    bindings
        .as_array_mut()
        .unwrap()
        .push(json!({ "role": OBJECT_ADMIN, "members": ["user:carol@example.com"] }));
    fake.set_bindings("bucket:acme-backup", bindings);
    dir.idplan_gcp(&fake, &["drift"]).assert_code(0);

    // A control plane more, then one less.
    dir.write("idplan.yaml", &spec("principal", &[0, 1, 2], ALL));
    let plan = dir.idplan_gcp(&fake, &["plan", "--detailed-exitcode"]);
    plan.assert_code(2);
    plan.assert_stdout_contains("Plan: 0 to add, 3 to change, 0 to destroy.");
    dir.idplan_gcp(&fake, &["apply", "--auto-approve"])
        .assert_code(0);
    assert!(
        fake.members("bucket:acme-billing", OBJECT_ADMIN)
            .contains(&principal(2, "vector"))
    );
    dir.write("idplan.yaml", &spec("principal", &[1, 2], ALL));
    dir.idplan_gcp(&fake, &["apply", "--auto-approve"])
        .assert_code(0);
    let members = fake.members("bucket:acme-backup", OBJECT_ADMIN);
    assert!(
        !members.contains(&principal(0, "mxp-controller")),
        "{members:?}"
    );
    assert!(
        members.contains(&principal(2, "mxp-controller")),
        "{members:?}"
    );
    assert!(members.contains(&"user:carol@example.com".to_string()));
    assert_foreign_intact(&fake);

    // No control plane left: idplan takes back its members and nothing else.
    dir.write("idplan.yaml", &spec("principal", &[], ALL));
    let out = dir.idplan_gcp(&fake, &["apply", "--auto-approve"]);
    out.assert_code(0);
    assert_eq!(
        fake.members("bucket:acme-backup", OBJECT_ADMIN),
        vec!["user:alice@example.com", "user:carol@example.com"]
    );
    assert_foreign_intact(&fake);
    assert_eq!(
        fake.members("bucket:acme-billing", OBJECT_ADMIN),
        Vec::<String>::new()
    );
    assert_eq!(
        fake.members(&format!("project:{PROJECT}"), SECRET_ACCESSOR),
        Vec::<String>::new()
    );
    let list = dir.idplan_gcp(&fake, &["state", "list"]);
    list.assert_code(0);
    assert!(
        list.stdout.trim().is_empty() || !list.stdout.contains("google_"),
        "{}",
        list.stdout
    );
}

#[test]
fn listed_secrets_are_bound_one_by_one() {
    let components = "      sharedSecrets: { secrets: [spaces-token] }\n";
    let (fake, dir) = setup(&spec("principal", &[0], components));
    dir.idplan_gcp(&fake, &["apply", "--auto-approve"])
        .assert_code(0);
    let target = format!("secret:projects/{PROJECT}/secrets/spaces-token");
    assert_eq!(
        fake.members(&target, SECRET_ACCESSOR),
        vec![principal(0, "external-secrets-controller")]
    );
    assert_eq!(
        fake.members(&format!("project:{PROJECT}"), SECRET_ACCESSOR),
        Vec::<String>::new()
    );
    // A secret that does not exist fails the plan, named with the API's own message.
    dir.write(
        "idplan.yaml",
        &spec(
            "principal",
            &[0],
            "      sharedSecrets: { secrets: [missing] }\n",
        ),
    );
    let out = dir.idplan_gcp(&fake, &["plan"]);
    out.assert_code(1);
    out.assert_stderr_contains(
        "secret projects/acme-spaces/secrets/missing: secretmanager.projects.secrets.get \
             failed: NOT_FOUND (HTTP 404)",
    );
}

#[test]
fn service_account_mode_end_to_end() {
    let components = "      backup: { bucket: acme-backup }\n      sharedSecrets: {}\n";
    let (fake, dir) = setup(&spec("service-account", &[0, 1], components));
    fake.set_bindings("bucket:acme-backup", foreign_bindings());
    dir.idplan_gcp(&fake, &["apply", "--auto-approve"])
        .assert_code(0);

    let backup = email("spaces-prod-backup");
    let secrets = email("spaces-prod-shared-secrets");
    let account = fake.call(
        "GET",
        &format!("/v1/projects/{PROJECT}/serviceAccounts/{backup}"),
        None,
    );
    assert!(
        account["description"]
            .as_str()
            .unwrap()
            .ends_with("managed by idplan"),
        "{account:#}"
    );
    assert_eq!(
        fake.members(&format!("sa:{backup}"), WI_USER),
        sorted(vec![
            format!("serviceAccount:{POOL}[{}/mxp-controller]", namespace(0)),
            format!("serviceAccount:{POOL}[{}/mxp-controller]", namespace(1)),
        ])
    );
    assert_eq!(
        fake.members("bucket:acme-backup", OBJECT_ADMIN),
        sorted(vec![
            "user:alice@example.com".to_string(),
            format!("serviceAccount:{backup}")
        ])
    );
    assert_foreign_intact(&fake);
    assert_eq!(
        fake.members(&format!("project:{PROJECT}"), SECRET_ACCESSOR),
        vec![format!("serviceAccount:{secrets}")]
    );
    dir.idplan_gcp(&fake, &["plan", "--detailed-exitcode"])
        .assert_code(0);

    // The chart values name the service accounts, each under its component's key.
    let values = dir.idplan_gcp(&fake, &["helm-values"]);
    values.assert_code(0);
    values.assert_stdout_contains(&format!(
            "--set controlPlanes.mxpController.serviceAccount.annotations.\"iam\\.gke\\.io/gcp-service-account\"=\"{backup}\""
        ));
    values.assert_stdout_contains(&format!(
            "controlPlanes.sharedSecrets.serviceAccount.customAnnotations.\"iam\\.gke\\.io/gcp-service-account\"=\"{secrets}\""
        ));

    // One control plane less: its link goes, the account stays.
    dir.write("idplan.yaml", &spec("service-account", &[1], components));
    dir.idplan_gcp(&fake, &["apply", "--auto-approve"])
        .assert_code(0);
    assert_eq!(
        fake.members(&format!("sa:{backup}"), WI_USER),
        vec![format!(
            "serviceAccount:{POOL}[{}/mxp-controller]",
            namespace(1)
        )]
    );

    // backup leaves the spec: its account and its bucket membership go; others' stay.
    dir.write(
        "idplan.yaml",
        &spec("service-account", &[1], "      sharedSecrets: {}\n"),
    );
    dir.idplan_gcp(&fake, &["apply", "--auto-approve"])
        .assert_code(0);
    let (status, _) = fake.call_status(
        "GET",
        &format!("/v1/projects/{PROJECT}/serviceAccounts/{backup}"),
        None,
    );
    assert_eq!(status, 404);
    assert_eq!(
        fake.members("bucket:acme-backup", OBJECT_ADMIN),
        vec!["user:alice@example.com"]
    );
    assert_foreign_intact(&fake);
    dir.idplan_gcp(&fake, &["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[test]
fn a_service_account_idplan_did_not_make_is_refused() {
    let components = "      backup: { bucket: acme-backup }\n";
    let (fake, dir) = setup(&spec("service-account", &[0], components));
    fake.call(
        "POST",
        &format!("/v1/projects/{PROJECT}/serviceAccounts"),
        Some(&json!({ "accountId": "spaces-prod-backup", "serviceAccount": { "description": "mine" } })),
    );
    let out = dir.idplan_gcp(&fake, &["plan"]);
    out.assert_code(1);
    out.assert_stderr_contains("was not created by idplan");
}

#[test]
fn an_etag_race_is_retried() {
    let (fake, dir) = setup(&spec("principal", &[0], ALL));
    fake.race(2);
    let out = dir.idplan_gcp(&fake, &["apply", "--auto-approve"]);
    out.assert_code(0);
    // The racers' members and idplan's are both there.
    let racers: usize = [
        "bucket:acme-backup",
        "bucket:acme-billing",
        &format!("project:{PROJECT}"),
    ]
    .iter()
    .map(|t| fake.members(t, "roles/viewer").len())
    .sum();
    assert_eq!(racers, 2);
    assert_eq!(
        fake.members("bucket:acme-backup", OBJECT_ADMIN),
        vec![principal(0, "mxp-controller")]
    );
    assert_eq!(
        fake.members(&format!("project:{PROJECT}"), SECRET_ACCESSOR),
        vec![principal(0, "external-secrets-controller")]
    );
    assert_eq!(writes(&fake), 5, "three writes and two retries");
    dir.idplan_gcp(&fake, &["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[test]
fn a_cluster_without_workload_identity_fails_the_plan_with_the_fix() {
    let (fake, dir) = setup(&spec_on("no-wi", "principal", &[0], ALL));
    let out = dir.idplan_gcp(&fake, &["plan"]);
    out.assert_code(1);
    out.assert_stderr_contains(
        "gcloud container clusters update no-wi --location us-central1 \
             --workload-pool=acme-spaces.svc.id.goog",
    );
    // A missing cluster: Google's status and message, with the resource.
    dir.write("idplan.yaml", &spec_on("gone", "principal", &[0], ALL));
    let out = dir.idplan_gcp(&fake, &["plan"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("GKE cluster gone (us-central1)")
            && out.stderr.contains("NOT_FOUND (HTTP 404)"),
        "{}",
        out.stderr
    );
}

#[test]
fn principal_identifiers_need_uniform_bucket_level_access() {
    let components = "      backup: { bucket: legacy-acl }\n";
    let (fake, dir) = setup(&spec("principal", &[0], components));
    let out = dir.idplan_gcp(&fake, &["plan"]);
    out.assert_code(1);
    out.assert_stderr_contains(
        "gcloud storage buckets update gs://legacy-acl --uniform-bucket-level-access",
    );
    // Service accounts work with fine-grained buckets.
    dir.write("idplan.yaml", &spec("service-account", &[0], components));
    dir.idplan_gcp(&fake, &["plan"]).assert_code(0);
}

#[test]
fn billing_values_for_gcp() {
    let (fake, dir) = setup(&spec("principal", &[0], ALL));
    let out = dir.idplan_gcp(&fake, &["helm-values", "--format", "yaml"]);
    out.assert_code(0);
    for want in [
        "provider: gcp",
        "bucket: acme-billing",
        "enabled: true",
        "name: \"\"",
    ] {
        out.assert_stdout_contains(want);
    }
    assert!(!out.stdout.contains("iam.gke.io"), "{}", out.stdout);
}

#[test]
fn throttling_and_unavailability_are_retried() {
    let (fake, dir) = setup(&spec("principal", &[0], ALL));
    fake.fail(&[429, 503, 503]);
    let out = dir.idplan_gcp_with_env(
        &fake,
        &["apply", "--auto-approve"],
        &[("IDPLAN_STATS", "json")],
    );
    out.assert_code(0);
    // Each failure fired and was retried once.
    assert_eq!(out.stats()["retries"], 3);
    assert_eq!(
        fake.members("bucket:acme-billing", OBJECT_ADMIN),
        vec![principal(0, "vector")]
    );
    // Past the attempts, the error names the resource, the API and Google's answer.
    fake.fail(&[503; 8]);
    let out = dir.idplan_gcp(&fake, &["plan"]);
    out.assert_code(1);
    out.assert_stderr_contains(
        "project acme-spaces: cloudresourcemanager.projects.get failed: UNAVAILABLE (HTTP \
             503): The service is currently unavailable.",
    );
}

#[test]
fn switching_modes_moves_the_roles_to_the_service_accounts() {
    let components = "      billing: { bucket: acme-billing }\n";
    let (fake, dir) = setup(&spec("principal", &[0], components));
    dir.idplan_gcp(&fake, &["apply", "--auto-approve"])
        .assert_code(0);
    dir.write("idplan.yaml", &spec("service-account", &[0], components));
    dir.idplan_gcp(&fake, &["apply", "--auto-approve"])
        .assert_code(0);
    assert_eq!(
        fake.members("bucket:acme-billing", OBJECT_ADMIN),
        vec![format!("serviceAccount:{}", email("spaces-prod-billing"))]
    );
    dir.write("idplan.yaml", &spec("principal", &[0], components));
    dir.idplan_gcp(&fake, &["apply", "--auto-approve"])
        .assert_code(0);
    assert_eq!(
        fake.members("bucket:acme-billing", OBJECT_ADMIN),
        vec![principal(0, "vector")]
    );
    let (status, _) = fake.call_status(
        "GET",
        &format!(
            "/v1/projects/{PROJECT}/serviceAccounts/{}",
            email("spaces-prod-billing")
        ),
        None,
    );
    assert_eq!(status, 404);
}

#[test]
fn a_saved_plan_refuses_a_change_to_idplans_members_but_not_to_others() {
    let (fake, dir) = setup(&spec("principal", &[0], ALL));
    dir.idplan_gcp(&fake, &["apply", "--auto-approve"])
        .assert_code(0);
    dir.write("idplan.yaml", &spec("principal", &[0, 1], ALL));
    dir.idplan_gcp(&fake, &["plan", "--out", "more.json"])
        .assert_code(0);
    // Someone else's member arrives meanwhile: the saved plan still applies.
    fake.set_bindings(
        "bucket:acme-backup",
        json!([
            { "role": OBJECT_ADMIN, "members": [principal(0, "mxp-controller"), "user:dave@example.com"] }
        ]),
    );
    dir.idplan_gcp(&fake, &["apply", "plans/more.json"])
        .assert_code(0);
    assert_eq!(
        fake.members("bucket:acme-backup", OBJECT_ADMIN),
        sorted(vec![
            principal(0, "mxp-controller"),
            principal(1, "mxp-controller"),
            "user:dave@example.com".to_string()
        ])
    );
    // One of idplan's members removed since the plan: refused, nothing written to it.
    dir.write("idplan.yaml", &spec("principal", &[0, 1, 2], ALL));
    dir.idplan_gcp(&fake, &["plan", "--out", "third.json"])
        .assert_code(0);
    fake.set_bindings(
        "bucket:acme-billing",
        json!([{ "role": OBJECT_ADMIN, "members": [principal(1, "vector")] }]),
    );
    let out = dir.idplan_gcp(&fake, &["apply", "plans/third.json"]);
    out.assert_code(1);
    out.assert_stderr_contains(
        "google_storage_bucket_iam_members.prod.billing: was modified outside idplan since \
             the plan was made",
    );
    assert_eq!(
        fake.members("bucket:acme-billing", OBJECT_ADMIN),
        vec![principal(1, "vector")]
    );
}

/// The fake takes only the test's token, as Google takes only a valid one.
#[test]
fn the_fake_refuses_another_token() {
    let (fake, dir) = setup(&spec("principal", &[0], ALL));
    let out = dir.idplan_gcp_with_env(
        &fake,
        &["plan"],
        &[("IDPLAN_GCP_ACCESS_TOKEN", "someone-elses")],
    );
    out.assert_code(1);
    out.assert_stderr_contains("UNAUTHENTICATED (HTTP 401)");
}

#[test]
fn other_clusters_in_the_workload_pool_are_named_in_the_plan() {
    let (fake, dir) = setup(&spec("principal", &[0], ALL));
    // The project's other cluster has no workload pool: nothing to say.
    let plan = dir.idplan_gcp(&fake, &["plan"]);
    plan.assert_code(0);
    assert!(!plan.stdout.contains("Warning:"), "{}", plan.stdout);

    fake.seed(json!({ "clusters": [
        { "project": PROJECT, "location": "us-east1-b", "name": "sandbox", "workloadPool": POOL },
        { "project": PROJECT, "location": "europe-west1", "name": "ci", "workloadPool": POOL },
    ] }));
    let plan = dir.idplan_gcp(&fake, &["plan", "--out", "p.json"]);
    plan.assert_code(0);
    let warning = format!(
        "Warning: space prod: GKE clusters europe-west1/ci, us-east1-b/sandbox of project \
         {PROJECT} share the workload identity pool {POOL} with the Space's cluster \
         us-central1/spaces. The principal identifiers idplan grants name the pool, not the \
         cluster"
    );
    plan.assert_stdout_contains(&warning);
    plan.assert_stdout_contains("Run the Space's cluster in a project of its own");
    assert!(!plan.stdout.contains("no-wi"), "{}", plan.stdout);
    // Saved with the plan, in every format.
    let show = dir.idplan_gcp(&fake, &["show", "plans/p.json"]);
    show.assert_stdout_contains(&warning);
    let markdown = dir.idplan_gcp(&fake, &["plan", "--format", "markdown"]);
    markdown.assert_stdout_contains(&format!("> {warning}"));
    let json = dir.idplan_gcp(&fake, &["plan", "--format", "json"]).json();
    assert_eq!(json["notes"][0]["severity"], "warning", "{json:#}");
    assert_eq!(json["notes"].as_array().unwrap().len(), 1, "{json:#}");

    // Applied, the plan still warns, and has no change.
    dir.idplan_gcp(&fake, &["apply", "--auto-approve"])
        .assert_code(0);
    let again = dir.idplan_gcp(&fake, &["plan", "--detailed-exitcode"]);
    again.assert_code(0);
    again.assert_stdout_contains(&warning);
    again.assert_stdout_contains("No changes.");

    // Without the permission to list clusters, the plan goes on and says what it could not
    // check.
    fake.deny(&["container.clusters.list"]);
    let denied = dir.idplan_gcp(&fake, &["plan", "--detailed-exitcode"]);
    denied.assert_code(0);
    denied.assert_stdout_contains(&format!(
        "Warning: space prod: the GKE clusters of project {PROJECT} could not be listed \
         (permission container.clusters.list): other clusters sharing the workload identity \
         pool {POOL} with us-central1/spaces were not checked"
    ));
}

#[test]
fn an_additive_apply_binds_a_new_control_plane_and_keeps_a_removed_ones_members() {
    let (fake, dir) = setup(&spec("principal", &[0, 1], ALL));
    dir.idplan_gcp(&fake, &["apply", "--auto-approve"])
        .assert_code(0);

    dir.write("idplan.yaml", &spec("principal", &[0, 2], ALL));
    let apply = dir.idplan_gcp(&fake, &["apply", "--additive-only", "--auto-approve"]);
    apply.assert_code(2);
    apply.assert_stdout_contains("gives the new control planes access now");
    assert_eq!(
        fake.members("bucket:acme-billing", OBJECT_ADMIN),
        sorted([0, 1, 2].map(|i| principal(i, "vector")).to_vec())
    );

    let plan = dir.idplan_gcp(&fake, &["plan"]);
    plan.assert_stdout_contains("Plan: 0 to add, 3 to change, 0 to destroy.");
    dir.idplan_gcp(&fake, &["apply", "--auto-approve"])
        .assert_code(0);
    assert_eq!(
        fake.members("bucket:acme-billing", OBJECT_ADMIN),
        sorted([0, 2].map(|i| principal(i, "vector")).to_vec())
    );
}

#[test]
fn a_control_planes_additive_apply_costs_the_same_at_any_size_of_the_space() {
    let mut calls = Vec::new();
    for existing in [2, 30] {
        let planes: Vec<usize> = (0..existing).collect();
        let (fake, dir) = setup(&spec("principal", &planes, ALL));
        dir.idplan_gcp(&fake, &["apply", "--auto-approve"])
            .assert_code(0);
        let mut wanted = planes.clone();
        wanted.extend([existing, existing + 1]);
        dir.write("idplan.yaml", &spec("principal", &wanted, ALL));
        let out = dir.idplan_gcp_with_env(
            &fake,
            &[
                "apply",
                "--additive-only",
                "--auto-approve",
                "--control-plane",
                &namespace(existing),
            ],
            &[("IDPLAN_STATS", "json")],
        );
        out.assert_code(0);
        let stats: Value = out.stats();
        calls.push(stats["api_calls"].clone());
        let mut held = planes.clone();
        held.push(existing);
        assert_eq!(
            fake.members("bucket:acme-billing", OBJECT_ADMIN),
            sorted(held.iter().map(|i| principal(*i, "vector")).collect())
        );
    }
    assert_eq!(calls[0], calls[1], "flat in the size of the space");
}
