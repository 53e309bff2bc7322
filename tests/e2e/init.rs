//! From the manual setup to idplan: the Spaces guides' recipe run literally
//! (`support/manual`), then `idplan init` writes the spec from the running Space, and the
//! team's identities are adopted without breaking anything: the plan deletes, replaces and
//! creates no identity; apply converges; the next plan is `No changes.`, drift and verify
//! find nothing, the ids are the same; a component that leaves the spec is released, not
//! deleted.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::support::manual::aws::{self, Mode};
use crate::support::manual::gcp::{self, Secrets};
use crate::support::manual::{self, Component, GCP_SA, Ids, N};
use crate::support::{FakeGoogle, FakeKube, Ministack, Output, TestDir};

/// The kubeconfig context of the manual Space's cluster.
const CONTEXT: &str = "space-prod";

/// The plan on an init-written spec makes no destructive change: no delete, no replace, and
/// no create of an identity (`identity_types`: the role, managed identity or Google service
/// account type). Returns the addresses created (idplan's own policy, what the manual setup
/// was missing).
#[track_caller]
pub fn assert_not_destructive(plan: &Value, identity_types: &[&str]) -> BTreeSet<String> {
    let mut created = BTreeSet::new();
    for change in plan["resource_changes"]
        .as_array()
        .expect("resource_changes")
    {
        let address = change["address"].as_str().unwrap();
        let action = change["action"].as_str().unwrap();
        assert!(
            matches!(action, "create" | "update" | "no-op"),
            "{address}: {action} on an init-written spec\n{change:#}"
        );
        if action == "create" {
            let kind = address.split('.').next().unwrap();
            assert!(
                !identity_types.contains(&kind),
                "{address}: a new identity beside the Space's own\n{change:#}"
            );
            created.insert(address.to_string());
        }
    }
    assert_eq!(plan["summary"]["destroy"], 0, "{}", plan["summary"]);
    created
}

/// The spec without component `c` (its block as init writes it: the key, then lines
/// indented deeper; or the key with `{}`).
pub fn without_component(spec: &str, c: Component) -> String {
    let key = format!("      {}:", c.key());
    let mut out = String::new();
    let mut skipping = false;
    for line in spec.lines() {
        if line == key || line == format!("{key} {{}}") {
            skipping = true;
            continue;
        }
        if skipping && line.starts_with("        ") {
            continue;
        }
        skipping = false;
        out.push_str(line);
        out.push('\n');
    }
    assert_ne!(out, spec, "{} is in the spec", c.key());
    out
}

/// Every id the manual setup made is still there, the same (idplan may have added its own,
/// such as an association for a control plane created since).
#[track_caller]
fn assert_kept(before: &Ids, after: &Ids) {
    for (key, id) in before {
        assert_eq!(
            after.get(key),
            Some(id),
            "{key}: before {before:#?}\nafter {after:#?}"
        );
    }
}

/// One cloud's runs of the binary and reads of its peer, for [`adopt_by_init`].
pub struct Scenario<'a> {
    pub dir: &'a TestDir,
    pub idplan: &'a dyn Fn(&[&str]) -> Output,
    pub ids: &'a dyn Fn() -> Ids,
    /// The identity type of the plan's addresses (`aws_iam_role`, ...).
    pub identity_types: &'a [&'a str],
    /// The host namespace whose pods must restart to use the credentials idplan gave their
    /// control plane (a pod identity association, an Azure federated credential), if any.
    pub restart: Option<&'a str>,
    /// The Space's cluster, where pods are rolled out after a restart.
    pub kube: &'a FakeKube,
    /// The label the guides put on the components' pods (Azure's).
    pub pod_label: Option<(&'a str, &'a str)>,
    /// What the spec must hold for each adopted component (the team's identity names); none
    /// where the components have no named identity (GCP's principal identifiers).
    pub names: Vec<String>,
    /// What of idplan's own the cloud holds on sharedSecrets' identity besides what `ids`
    /// reads: its tags (`tag managed-by`, ...) and policies (`inline policy idplan`); none on
    /// GCP, whose service accounts have no tags (idplan's members are in `ids`).
    pub marks: &'a dyn Fn() -> Vec<String>,
}

impl<'a> Scenario<'a> {
    /// How the scenario reaches the Space's cloud and cluster; nothing adopted named yet, no
    /// restart, no pod label.
    pub fn new(
        dir: &'a TestDir,
        kube: &'a FakeKube,
        idplan: &'a dyn Fn(&[&str]) -> Output,
        ids: &'a dyn Fn() -> Ids,
        marks: &'a dyn Fn() -> Vec<String>,
    ) -> Scenario<'a> {
        Scenario {
            dir,
            idplan,
            ids,
            identity_types: &[],
            restart: None,
            kube,
            pod_label: None,
            names: Vec::new(),
            marks,
        }
    }
}

/// The lines of `text` that `keep` keeps.
fn lines_where(text: &str, keep: impl Fn(&str) -> bool) -> Vec<&str> {
    text.lines().filter(|l| keep(l)).collect()
}

/// The ids of sharedSecrets' identity and what hangs on it.
fn shared_secrets(ids: &Ids) -> Ids {
    ids.iter()
        .filter(|(key, _)| key.starts_with("sharedSecrets."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Runs `idplan init` with `init_args`, then plan, apply, plan, drift and verify, and releases
/// sharedSecrets. Returns the spec init wrote.
pub fn adopt_by_init(s: &Scenario, kubeconfig: &Path, init_args: &[&str]) -> String {
    let before = (s.ids)();
    let kubeconfig = kubeconfig.display().to_string();
    let mut args = vec!["init", "--kubeconfig", &kubeconfig, "--context", CONTEXT];
    args.extend_from_slice(init_args);
    let init = (s.idplan)(&args);
    init.assert_code(0);
    // The summary is the command's output.
    init.assert_stdout_contains("Wrote idplan.yaml");
    let spec = std::fs::read_to_string(s.dir.path().join("idplan.yaml")).unwrap();
    // The header speaks of the space's own cloud only.
    assert_eq!(
        spec.contains("principal identifiers"),
        spec.contains("\n    gcp:\n"),
        "{spec}"
    );
    assert_eq!(spec.matches("\n        adopt: true\n").count(), 3, "{spec}");
    for name in &s.names {
        assert!(spec.contains(&format!("name: {name}\n")), "{name}:\n{spec}");
    }
    assert!(spec.contains(&format!("context: {CONTEXT}")), "{spec}");

    // Never overwritten without --force.
    let again = (s.idplan)(&args);
    again.assert_code(1);
    again.assert_stderr_contains("idplan.yaml exists");

    let plan = (s.idplan)(&["plan", "--format", "json"]);
    plan.assert_code(0);
    assert_not_destructive(&plan.json(), s.identity_types);
    (s.idplan)(&["apply", "--auto-approve"]).assert_code(0);
    (s.idplan)(&["plan", "--detailed-exitcode"])
        .assert_code(0)
        .assert_stdout_contains("No changes.");
    (s.idplan)(&["drift"]).assert_code(0);
    let verify = (s.idplan)(&["verify"]);
    if let Some(namespace) = s.restart {
        // Pods that started before idplan gave their control plane its credentials: only
        // those are restarted, then verify finds nothing.
        verify.assert_code(2);
        let findings = lines_where(&verify.stdout, |l| l.contains(": pod "));
        assert_eq!(findings.len(), 3, "{}", verify.stdout);
        assert!(
            findings
                .iter()
                .all(|l| l.contains(namespace) && l.contains("restart deployment")),
            "{}",
            verify.stdout
        );
        let restarted = (s.idplan)(&["verify", "--restart"]);
        let lines = lines_where(&restarted.stdout, |l| l.starts_with("Restarted deployment"));
        assert_eq!(lines.len(), 3, "{}", restarted.stdout);
        assert!(lines.iter().all(|l| l.contains(namespace)), "{lines:?}");
        manual::roll_out(s.kube, namespace, s.pod_label);
        (s.idplan)(&["verify"]).assert_code(0);
    } else {
        verify.assert_code(0);
    }
    assert_kept(&before, &(s.ids)());

    // sharedSecrets leaves the spec: released, not deleted. What idplan added to it goes (its
    // marks, and what it made for the control plane created since: an association, a
    // federated credential, a member); what the team made stays, the same.
    let marked = (s.marks)();
    assert!(
        !marked.is_empty() || s.identity_types == ["google_service_account"],
        "idplan marked the identities it adopted"
    );
    s.dir.write(
        "idplan.yaml",
        &without_component(&spec, Component::SharedSecrets),
    );
    let released = (s.idplan)(&["apply", "--auto-approve"]);
    released.assert_code(0);
    released.assert_stdout_contains("will be released");
    let after = (s.ids)();
    assert_kept(&before, &after);
    assert_eq!(shared_secrets(&after), shared_secrets(&before));
    assert_eq!(
        (s.marks)(),
        Vec::<String>::new(),
        "idplan's marks are taken back (they were {marked:?})"
    );
    (s.idplan)(&["plan", "--detailed-exitcode"])
        .assert_code(0)
        .assert_stdout_contains("No changes.");
    spec
}

// -- AWS ----------------------------------------------------------------------------------

fn aws_names(space: &aws::AwsSpace) -> Vec<String> {
    Component::ALL.map(|c| space.role(c).name.clone()).into()
}

/// A directory for init with the cluster's kubeconfig in it; the kubeconfig's path.
fn init_dir(kube: &FakeKube) -> (TestDir, std::path::PathBuf) {
    let dir = TestDir::new();
    let kubeconfig = dir.write("kubeconfig", &kube.kubeconfig(CONTEXT));
    (dir, kubeconfig)
}

/// The guides' AWS recipe in `mode`, then init, with one more control plane created since
/// the manual setup (annotated by Helm, no trust subject or association on the cloud side).
fn aws_scenario(mode: Mode) -> String {
    let ms = Ministack::start();
    let kube = FakeKube::start();
    let (dir, kubeconfig) = init_dir(&kube);
    let space = aws::guide(&ms, &kube, mode, N);
    let added = space.add_control_plane(&kube, N);
    let idplan = |args: &[&str]| dir.idplan(&ms, args);
    let ids = || space.read_ids(&ms);
    let role = space.role(Component::SharedSecrets).name.clone();
    let marks = || {
        let tags = aws::aws(&ms, &["iam", "list-role-tags", "--role-name", &role]);
        let policies = aws::aws(&ms, &["iam", "list-role-policies", "--role-name", &role]);
        let tags = tags["Tags"].as_array().into_iter().flatten();
        let keys = tags.map(|t| t["Key"].as_str().unwrap().to_string());
        let names = policies["PolicyNames"].as_array().into_iter().flatten();
        let names = names.map(|n| n.as_str().unwrap().to_string());
        keys.filter(|k| k == "managed-by" || k.starts_with("idplan/"))
            .map(|k| format!("tag {k}"))
            .chain(
                names
                    .filter(|n| n == "idplan")
                    .map(|n| format!("inline policy {n}")),
            )
            .collect()
    };
    let scenario = Scenario {
        identity_types: &["aws_iam_role"],
        names: aws_names(&space),
        restart: (mode == Mode::PodIdentity).then_some(added.as_str()),
        ..Scenario::new(&dir, &kube, &idplan, &ids, &marks)
    };
    adopt_by_init(
        &scenario,
        &kubeconfig,
        &[
            "--aws-region",
            &space.region,
            "--aws-cluster",
            &space.cluster,
        ],
    )
}

#[test]
fn aws_irsa_exact_manual_space_is_adopted_through_init() {
    let spec = aws_scenario(Mode::IrsaExact);
    assert!(spec.contains("mode: irsa\n"), "{spec}");
    assert!(spec.contains("subjects: exact\n"), "{spec}");
    assert!(spec.contains("bucket: "), "{spec}");
}

#[test]
fn aws_irsa_wildcard_manual_space_is_adopted_through_init() {
    let spec = aws_scenario(Mode::IrsaWildcard);
    assert!(spec.contains("subjects: wildcard\n"), "{spec}");
}

#[test]
fn aws_pod_identity_manual_space_is_adopted_through_init() {
    let spec = aws_scenario(Mode::PodIdentity);
    assert!(spec.contains("mode: pod-identity\n"), "{spec}");
}

// -- Azure --------------------------------------------------------------------------------

#[test]
fn azure_manual_space_is_adopted_through_init() {
    use crate::support::FakeArm;
    use crate::support::manual::azure;

    let arm = FakeArm::start();
    let kube = FakeKube::start();
    let (dir, kubeconfig) = init_dir(&kube);
    let space = azure::guide(&arm, &kube, N);
    let added = space.add_control_plane(&kube, N);
    let idplan = |args: &[&str]| dir.idplan_azure(&arm, args);
    let ids = || space.read_ids(&arm);
    let identity = space.identity(Component::SharedSecrets).id.to_lowercase();
    let marks = || {
        let tags = &arm.state()["identities"][&identity]["tags"];
        let keys = tags.as_object().into_iter().flat_map(|t| t.keys());
        keys.filter(|k| *k == "managed-by" || k.starts_with("idplan"))
            .map(|k| format!("tag {k}"))
            .collect()
    };
    let scenario = Scenario {
        identity_types: &["azurerm_user_assigned_identity"],
        names: Component::ALL
            .map(|c| space.identity(c).name.clone())
            .into(),
        restart: Some(&added),
        pod_label: Some(manual::AZURE_USE),
        ..Scenario::new(&dir, &kube, &idplan, &ids, &marks)
    };
    let spec = adopt_by_init(
        &scenario,
        &kubeconfig,
        &[
            "--azure-subscription",
            &space.subscription,
            "--azure-resource-group",
            &space.resource_group,
            "--azure-cluster",
            &space.cluster,
            "--azure-billing-container",
            azure::BILLING_CONTAINER,
        ],
    );
    for line in [
        format!("storageAccount: {}", azure::BACKUP_ACCOUNT),
        format!("storageAccount: {}", azure::BILLING_ACCOUNT),
        format!("container: {}", azure::BILLING_CONTAINER),
        format!("keyVault: {}", azure::VAULT),
        format!("location: {}", azure::LOCATION),
    ] {
        assert!(spec.contains(&line), "{line}:\n{spec}");
    }
}

// -- GCP ----------------------------------------------------------------------------------

/// A GCP recipe of `support::manual::gcp` (`guide` or `guide_principal`).
type GcpRecipe = fn(&FakeGoogle, &FakeKube, usize, Secrets) -> gcp::GcpSpace;

/// The flags that name the guides' GKE cluster.
const GCP_FLAGS: [&str; 6] = [
    "--gcp-project",
    gcp::PROJECT,
    "--gcp-location",
    gcp::LOCATION,
    "--gcp-cluster",
    gcp::CLUSTER,
];

/// The guides' GCP `recipe`, then init, with one more control plane created since the manual
/// setup (annotated by Helm, bound nowhere), and buckets and secrets the Space does not use
/// beside its own (so that init reads lists of several pages). `calls`: the cloud calls init
/// makes.
fn gcp_scenario(recipe: GcpRecipe, secrets: Secrets, calls: u64) -> String {
    let fake = FakeGoogle::start();
    let kube = FakeKube::start();
    let space = recipe(&fake, &kube, N, secrets);
    fake.seed(serde_json::json!({
        "buckets": [
            { "name": "acme-logs", "project": gcp::PROJECT },
            { "name": "acme-web", "project": gcp::PROJECT },
        ],
        "secrets": [
            { "project": gcp::PROJECT, "id": "db-password" },
            { "project": gcp::PROJECT, "id": "api-key" },
        ],
    }));
    space.add_control_plane(&kube, N);
    let (dir, kubeconfig) = init_dir(&kube);
    let kubeconfig_arg = kubeconfig.to_str().unwrap();
    let mut args = vec!["init", "-f", "counted.yaml", "--kubeconfig", kubeconfig_arg];
    args.extend(GCP_FLAGS);
    let counted = dir.idplan_gcp_with_env(&fake, &args, &[("IDPLAN_STATS", "json")]);
    counted.assert_code(0);
    // Four buckets and three secrets, two to a page: two list calls each; one policy read
    // per bucket, and per secret only when the project's policy does not grant them all.
    let stats = counted.stats();
    assert_eq!(stats["api_calls"]["gcp:storage.buckets.list"], 2, "{stats}");
    assert_eq!(stats["api_calls_total"], calls, "{stats}");
    let idplan = |args: &[&str]| dir.idplan_gcp(&fake, args);
    let ids = || space.read_ids(&fake);
    let marks = Vec::new;
    // A new binding needs no restart: GKE's metadata server exchanges tokens per request.
    let scenario = Scenario {
        identity_types: &["google_service_account"],
        names: space
            .accounts
            .iter()
            .map(|a| a.account_id.clone())
            .collect(),
        ..Scenario::new(&dir, &kube, &idplan, &ids, &marks)
    };
    let spec = adopt_by_init(&scenario, &kubeconfig, &GCP_FLAGS);
    for line in [
        format!("project: {}", gcp::PROJECT),
        format!(
            "cluster: {{ location: {}, name: {} }}",
            gcp::LOCATION,
            gcp::CLUSTER
        ),
        format!("bucket: {}", gcp::BACKUP_BUCKET),
        format!("bucket: {}", gcp::BILLING_BUCKET),
    ] {
        assert!(spec.contains(&line), "{line}:\n{spec}");
    }
    spec
}

#[test]
fn gcp_service_account_manual_space_is_adopted_through_init() {
    let spec = gcp_scenario(gcp::guide, Secrets::Project, 13);
    assert!(spec.contains("mode: service-account\n"), "{spec}");
    // Every secret of the project: no list.
    assert!(!spec.contains("secrets:"), "{spec}");
    assert!(spec.contains("\n      sharedSecrets:\n"), "{spec}");
}

#[test]
fn gcp_listed_secrets_manual_space_is_adopted_through_init() {
    let spec = gcp_scenario(gcp::guide, Secrets::Listed, 18);
    assert!(
        spec.contains(&format!("secrets:\n          - {}\n", gcp::SECRET)),
        "{spec}"
    );
}

#[test]
fn gcp_principal_manual_space_is_adopted_through_init() {
    let spec = gcp_scenario(gcp::guide_principal, Secrets::Project, 10);
    assert!(spec.contains("mode: principal\n"), "{spec}");
    assert!(!spec.contains("name: acme"), "{spec}");
    assert!(
        spec.contains("\n      sharedSecrets:\n        adopt: true\n"),
        "{spec}"
    );
}

// -- Bad input -----------------------------------------------------------------------------

/// How control planes come to disagree, for [`disagreeing_control_planes_ask_which`].
struct Disagree<'a> {
    kube: &'a FakeKube,
    /// The cloud's flags of `idplan init`, and idplan run in a directory against its peer.
    flags: &'a [&'a str],
    idplan: &'a dyn Fn(&TestDir, &[&str]) -> Output,
    /// The Space's host namespaces; the second gets backup's identity for billing's.
    namespaces: &'a [String],
    /// The annotation Helm gives a component's service account, and its value.
    annotation: &'a dyn Fn(Component) -> Option<(&'static str, String)>,
    /// What the annotation's value is (`role ARN`, ...), and a value no control plane names.
    what: &'a str,
    unknown: &'a str,
    /// The spec line that names billing's identity once chosen.
    named: String,
}

/// Control planes whose `vector` service accounts name two identities: init names both, with
/// their namespaces, and writes nothing until told which to adopt; the choice is written
/// with a comment, replaced only with --force, and must be one that a control plane names.
fn disagreeing_control_planes_ask_which(d: &Disagree) {
    let value = |c| (d.annotation)(c).expect("the guide annotates every component");
    let (annotation, billing) = value(Component::Billing);
    let (_, other) = value(Component::Backup);
    let (dir, kubeconfig) = init_dir(d.kube);
    let kubeconfig = kubeconfig.to_str().unwrap();
    let init = |more: &[&str]| {
        let mut args = vec!["init", "--kubeconfig", kubeconfig];
        args.extend(d.flags);
        args.extend_from_slice(more);
        (d.idplan)(&dir, &args)
    };
    let odd = &d.namespaces[1];
    d.kube.put(
        "serviceaccounts",
        serde_json::json!({"metadata": {"name": "vector", "namespace": odd,
                                        "annotations": {annotation: other}}}),
    );
    let asked = init(&[]);
    asked.assert_code(1);
    let others: Vec<&str> = d
        .namespaces
        .iter()
        .filter(|n| *n != odd)
        .map(String::as_str)
        .collect();
    asked.assert_stderr_contains(&format!("{billing} in {}", others.join(", ")));
    asked.assert_stderr_contains(&format!("{other} in {odd}"));
    asked.assert_stderr_contains("--identity billing=VALUE");
    assert!(!dir.path().join("idplan.yaml").exists(), "nothing written");

    let chosen = format!("billing={billing}");
    init(&["--identity", &chosen]).assert_code(0);
    let spec = std::fs::read_to_string(dir.path().join("idplan.yaml")).unwrap();
    assert!(
        spec.contains(&format!(
            "# chosen with --identity; other control planes named {other} ({odd})"
        )),
        "{spec}"
    );
    assert!(spec.contains(&d.named), "{}:\n{spec}", d.named);

    // The file exists: replaced only with --force.
    init(&["--identity", &chosen])
        .assert_code(1)
        .assert_stderr_contains("pass --force");
    init(&["--identity", &chosen, "--force"]).assert_code(0);

    // A choice no control plane names is refused, with what they name.
    let unknown = format!("billing={}", d.unknown);
    let wrong = init(&["--identity", &unknown, "--force"]);
    wrong.assert_code(1);
    wrong.assert_stderr_contains(&format!("no vector service account names that {}", d.what));
}

#[test]
fn control_planes_that_disagree_are_reported_and_init_asks_which_to_adopt() {
    let ms = Ministack::start();
    let kube = FakeKube::start();
    let space = aws::guide(&ms, &kube, Mode::IrsaExact, N);
    disagreeing_control_planes_ask_which(&Disagree {
        kube: &kube,
        flags: &[
            "--aws-region",
            &space.region,
            "--aws-cluster",
            &space.cluster,
        ],
        idplan: &|dir, args| dir.idplan(&ms, args),
        namespaces: &space.namespaces,
        annotation: &|c| space.annotation(c),
        what: "role ARN",
        unknown: "arn:aws:iam::000000000000:role/none",
        named: format!("name: {}\n", space.role(Component::Billing).name),
    });
}

/// A fake Google and a fake cluster holding the Space the GCP guide sets up, with the
/// project's secrets.
fn gcp_guided() -> (FakeGoogle, FakeKube, gcp::GcpSpace) {
    let fake = FakeGoogle::start();
    let kube = FakeKube::start();
    let space = gcp::guide(&fake, &kube, N, Secrets::Project);
    (fake, kube, space)
}

#[test]
fn gcp_control_planes_that_disagree_are_reported_and_init_asks_which_to_adopt() {
    let (fake, kube, space) = gcp_guided();
    disagreeing_control_planes_ask_which(&Disagree {
        kube: &kube,
        flags: &GCP_FLAGS,
        idplan: &|dir, args| dir.idplan_gcp(&fake, args),
        namespaces: &space.namespaces,
        annotation: &|c| space.annotation(c),
        what: "Google service account",
        unknown: &gcp::email("acme-spaces-none"),
        named: format!("name: {}\n", gcp::account_id(Component::Billing)),
    });
}

/// What init cannot take over on GCP is left out of the spec with the reason (an account of
/// another project, an account that is gone), and a second bucket is named in a comment; with
/// nothing left, init writes nothing and says why for each component.
#[test]
fn gcp_identities_init_cannot_take_over_are_left_out_with_the_reason() {
    let (fake, kube, space) = gcp_guided();
    let foreign = "acme-spaces-eso@elsewhere.iam.gserviceaccount.com";
    for ns in &space.namespaces {
        kube.put(
            "serviceaccounts",
            serde_json::json!({"metadata": {"name": Component::SharedSecrets.service_account(),
                                            "namespace": ns,
                                            "annotations": {GCP_SA: foreign}}}),
        );
    }
    let billing = &space.account(Component::Billing).email;
    fake.call(
        "DELETE",
        &format!("/v1/projects/{}/serviceAccounts/{billing}", gcp::PROJECT),
        None,
    );
    // backup may also read another bucket.
    let backup = format!("serviceAccount:{}", space.account(Component::Backup).email);
    fake.seed(serde_json::json!({"buckets": [{ "name": "acme-usage", "project": gcp::PROJECT }]}));
    let viewer = serde_json::json!([{"role": "roles/storage.objectViewer", "members": [backup]}]);
    fake.set_bindings("bucket:acme-usage", viewer);
    let (dir, kubeconfig) = init_dir(&kube);
    let mut args = vec!["init", "--kubeconfig", kubeconfig.to_str().unwrap()];
    args.extend(GCP_FLAGS);
    // Home is the test's directory: the kubeconfig in it is written as ~/kubeconfig.
    let home = dir.path().display().to_string();
    let init = dir.idplan_gcp_with_env(&fake, &args, &[("HOME", &home)]);
    // Two components left out: the spec is written, exit 2, and the summary says why.
    init.assert_code(2);
    init.assert_stdout_contains("  billing: left out: ");
    let spec = std::fs::read_to_string(dir.path().join("idplan.yaml")).unwrap();
    assert!(spec.contains("kubeconfig: \"~/kubeconfig\"\n"), "{spec}");
    for line in [
        format!("name: {}\n", gcp::account_id(Component::Backup)),
        format!(
            "        # it also holds a role on acme-usage: only this one is managed\n        \
             bucket: {}\n",
            gcp::BACKUP_BUCKET
        ),
        format!("# billing: not written: Google service account {billing} does not exist"),
        format!(
            "# sharedSecrets: not written: {foreign} is not a service account of project {}",
            gcp::PROJECT
        ),
    ] {
        assert!(spec.contains(&line), "{line}:\n{spec}");
    }
    assert_eq!(spec.matches("\n        adopt: true\n").count(), 1, "{spec}");

    // backup's grants are gone too: nothing to adopt, nothing written.
    for bucket in [gcp::BACKUP_BUCKET, "acme-usage"] {
        fake.set_bindings(&format!("bucket:{bucket}"), serde_json::json!([]));
    }
    args.push("--force");
    let none = dir.idplan_gcp(&fake, &args);
    none.assert_code(1);
    none.assert_stderr_contains("found no identity to adopt");
    none.assert_stderr_contains(&format!(
        "backup: Google service account {} has no role on a bucket of project {}",
        gcp::account_id(Component::Backup),
        gcp::PROJECT
    ));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("idplan.yaml")).unwrap(),
        spec,
        "the file is kept"
    );
}

#[test]
fn init_needs_one_cloud_cluster() {
    let dir = TestDir::new();
    let out = dir.idplan_offline(&["init", "--context", "x"]);
    out.assert_code(1);
    out.assert_stderr_contains("name the Space's cluster on one cloud");
}
