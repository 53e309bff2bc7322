//! The Markdown plan at the scale of a real Space, through the binary against the peers: it
//! always fits one pull-request comment (`--max-chars`), the summary in the domain's words
//! names exactly the control planes added and removed, and the cut line counts what it left
//! out of the details.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::{
    FakeGoogle, Ministack, Output, TestDir, control_planes, namespace, namespaces,
};

const MAX: usize = 65_000;

/// The folded list of `<n> control planes <words>` in the section of `space`, as lines.
#[track_caller]
fn folded_namespaces(md: &str, space: &str, words: &str) -> BTreeSet<String> {
    let section = space_section(md, space);
    // Up to ten are named in the text.
    let mut title = words.to_string();
    title[..1].make_ascii_uppercase();
    if let Some(line) = section
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{title}: ")))
    {
        return line
            .split(", ")
            .map(|ns| ns.trim_matches('`').to_string())
            .collect();
    }
    let Some(start) = section.find(&format!(" {words}</summary>")) else {
        return BTreeSet::new();
    };
    let rest = &section[start..];
    let body = rest
        .split_once("```text\n")
        .and_then(|(_, b)| b.split_once("\n```"))
        .map(|(b, _)| b)
        .unwrap_or_else(|| panic!("no list after {words} in:\n{section}"));
    body.lines().map(str::to_string).collect()
}

/// The summary section of one space.
#[track_caller]
fn space_section<'a>(md: &'a str, space: &str) -> &'a str {
    let heading = format!("#### Space `{space}`\n");
    let start = md
        .find(&heading)
        .unwrap_or_else(|| panic!("no section for space {space} in:\n{md}"));
    let rest = &md[start + heading.len()..];
    let end = rest.find("\n#### ").unwrap_or(rest.len());
    &rest[..end]
}

/// What every Markdown plan must be, given the saved plan it renders: within `max`
/// characters, the summary line first, and every changed resource either shown in the details
/// or counted in the cut line.
#[track_caller]
fn check_fits(md: &str, plan: &Value, max: usize) {
    let size = md.chars().count();
    assert!(size <= max, "{size} characters > {max}");
    let s = &plan["summary"];
    let line = format!(
        "**Plan: {} to add, {} to change, {} to destroy.**",
        s["add"], s["change"], s["destroy"]
    );
    assert!(
        md.starts_with(&format!("### idplan plan\n\n{line}")),
        "{line}"
    );
    let changed = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no-op")
        .count();
    let details = md
        .split_once("#### Details\n")
        .expect("a details section")
        .1;
    // A control plane's resources are shown as one example per component and action, with a
    // count of the others like it.
    let more: usize = details
        .split("\n_and ")
        .skip(1)
        .map(|rest| rest.split(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    let shown = details.matches("<details><summary>").count() + more;
    let left = match details.find(" left out to fit one comment") {
        Some(at) => {
            let start = details[..at].rfind("\n_").expect("the cut line") + 2;
            let cut = &details[start..];
            let (n, rest) = cut.split_once(" of ").expect("the cut line");
            let total: usize = rest.split(' ').next().unwrap().parse().unwrap();
            assert_eq!(total, changed, "the cut line counts every change: {cut}");
            assert!(cut.contains("See all of them with `idplan show"), "{cut}");
            n.parse::<usize>().unwrap()
        }
        None => 0,
    };
    // GitHub colours a diff whose lines start with `+`, `-` or a space.
    for block in details.split("```diff\n").skip(1) {
        let body = block.split("\n```").next().unwrap();
        for line in body.lines() {
            assert!(
                line.starts_with(['+', '-', ' ']),
                "a diff line out of column: {line:?}"
            );
        }
    }
    assert_eq!(shown + left, changed, "shown {shown} + left out {left}");
}

fn saved(dir: &TestDir, name: &str) -> Value {
    serde_json::from_str(&dir.read(&format!("plans/{name}"))).unwrap()
}

// ---- AWS pod identity on ministack: up to 1,000 control planes --------------------------

const CLUSTER: &str = "spaces-md";

fn pod_identity(planes: &[String]) -> String {
    format!(
        "version: 1\nspaces:\n  - name: prod\n{}    aws:\n      region: us-east-1\n      cluster: {CLUSTER}\n      mode: pod-identity\n    components:\n      backup: {{ bucket: acme-backup }}\n      billing: {{ bucket: acme-billing }}\n      sharedSecrets: {{ secrets: [\"arn:aws:secretsmanager:us-east-1:000000000000:secret:s\"] }}\n",
        control_planes(planes)
    )
}

fn plan_markdown(run: impl Fn(&[&str]) -> Output, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["plan", "--format", "markdown", "--out", name];
    args.extend(extra);
    run(&args).assert_code(0).stdout.clone()
}

#[tokio::test]
async fn pod_identity_plans_fit_one_comment_at_1_100_and_1000_control_planes() {
    let ms = Ministack::start();
    ms.create_cluster(CLUSTER).await;
    let dir = TestDir::new();
    let run = |args: &[&str]| dir.idplan(&ms, args);
    for n in [1, 100, 1000] {
        let planes = namespaces(0..n);
        dir.write("idplan.yaml", &pod_identity(&planes));
        let name = format!("p{n}.json");
        let md = plan_markdown(run, &name, &[]);
        eprintln!(
            "pod identity, {n} control planes: {} characters",
            md.chars().count()
        );
        let plan = saved(&dir, &name);
        check_fits(&md, &plan, MAX);
        assert_eq!(plan["summary"]["add"], 3 * n + 6);
        let expected: BTreeSet<String> = planes.iter().cloned().collect();
        assert_eq!(folded_namespaces(&md, "prod", "added"), expected);
        let section = space_section(&md, "prod");
        assert!(
            section.contains(&format!("Control planes: **{n} added**, **0 removed**")),
            "{section}"
        );
        assert!(
            section.contains("- pod identity associations: "),
            "{section}"
        );
        assert!(
            section.contains(&format!(
                "`aws_eks_pod_identity_association` {} to add",
                3 * n
            )),
            "{section}"
        );
        // The role's trust and permissions in IAM's words, not the documents.
        assert!(
            section.contains("- role `spaces-prod-backup` will be created"),
            "{section}"
        );
        assert!(
            section.contains("  - principal (Service) added: `pods.eks.amazonaws.com`"),
            "{section}"
        );
        assert!(
            section.contains("  - actions added: `s3:DeleteObject`, `s3:GetObject`"),
            "{section}"
        );
        if n == 1 {
            assert!(
                !md.contains(" left out "),
                "a small plan is shown whole:\n{md}"
            );
        } else {
            // Each component's associations: one shown, the others counted, unless the budget
            // is spent (the cut line then says what it left out).
            let more = format!("_and {} more like this one, one per control plane", n - 1);
            if !md.contains(" left out to fit one comment") {
                assert_eq!(md.matches(&more).count(), 3, "{md}");
            } else {
                assert!(
                    md.contains(
                        "`aws_eks_pod_identity_association` (backup, billing, sharedSecrets)"
                    ),
                    "{md}"
                );
            }
        }
        // `show` renders the saved plan the same way.
        let shown = run(&["show", &name, "--format", "markdown"])
            .assert_code(0)
            .stdout
            .clone();
        assert_eq!(shown, md);
    }
    // The JSON plan is unchanged by all this: resource by resource, every document whole.
    let plan = saved(&dir, "p1000.json");
    assert_eq!(plan["resource_changes"].as_array().unwrap().len(), 3006);
    // A budget below the summary is refused with the minimum, and the minimum works.
    let out = run(&["plan", "--format", "markdown", "--max-chars", "1000"]);
    out.assert_code(1)
        .assert_stderr_contains("--max-chars 1000 is too small");
    let minimum: usize = out
        .stderr
        .split("use --max-chars ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    let md = plan_markdown(run, "min.json", &["--max-chars", &minimum.to_string()]);
    check_fits(&md, &saved(&dir, "min.json"), minimum);
    assert!(
        md.contains("_3006 of 3006 details left out"),
        "nothing of the details fits"
    );
}

#[tokio::test]
async fn control_planes_added_and_removed_are_named_exactly() {
    let ms = Ministack::start();
    ms.create_cluster(CLUSTER).await;
    let dir = TestDir::new();
    let run = |args: &[&str]| dir.idplan(&ms, args);
    dir.write("idplan.yaml", &pod_identity(&namespaces(0..100)));
    run(&["apply", "--auto-approve"]).assert_code(0);
    // Two control planes leave, three arrive.
    let now = namespaces((2..100).chain(100..103));
    dir.write("idplan.yaml", &pod_identity(&now));
    let md = plan_markdown(run, "change.json", &[]);
    check_fits(&md, &saved(&dir, "change.json"), MAX);
    assert!(
        md.contains("**Plan: 9 to add, 0 to change, 6 to destroy.**"),
        "{md}"
    );
    assert_eq!(
        folded_namespaces(&md, "prod", "added"),
        namespaces(100..103).into_iter().collect()
    );
    assert_eq!(
        folded_namespaces(&md, "prod", "removed"),
        namespaces(0..2).into_iter().collect()
    );
    assert!(md.contains("Control planes: **3 added**, **2 removed**; 101 after this plan."));
    // What the removed control planes take with them is said first, as expected: no warning.
    let note = md.split_once("> [!NOTE]\n").expect("a note").1;
    assert!(
        note.starts_with(
            "> 2 control planes removed from the spec take their own resources with them: 6 × \
             `aws_eks_pod_identity_association` (backup, billing, sharedSecrets)."
        ),
        "{note}"
    );
    assert!(!md.contains("[!WARNING]"), "{md}");
    assert!(md.find("> [!NOTE]") < md.find("#### Space"));
    // Up to ten control planes are named in the text.
    assert!(
        md.contains(&format!(
            "\nRemoved: `{}`, `{}`\n",
            namespace(0),
            namespace(1)
        )),
        "{md}"
    );
}

// ---- GCP principal identifiers on the fake Google APIs -----------------------------------

const PROJECT: &str = "acme-spaces";
const POOL: &str = "acme-spaces.svc.id.goog";

fn gcp(spaces: &[(&str, Vec<String>)], mode: &str) -> String {
    let mut out = "version: 1\nspaces:\n".to_string();
    for (name, planes) in spaces {
        out.push_str(&format!(
            "  - name: {name}\n{}    gcp:\n      project: {PROJECT}\n      cluster: {{ location: us-central1, name: spaces }}\n      mode: {mode}\n    components:\n      backup: {{ bucket: acme-backup }}\n      billing: {{ bucket: acme-billing }}\n      sharedSecrets: {{}}\n",
            control_planes(planes)
        ));
    }
    out
}

fn google() -> FakeGoogle {
    let fake = FakeGoogle::start();
    fake.seed(json!({
        "projects": [{ "id": PROJECT, "number": "123456789012" }],
        "clusters": [{ "project": PROJECT, "location": "us-central1", "name": "spaces", "workloadPool": POOL }],
        "buckets": [
            { "name": "acme-backup", "project": PROJECT },
            { "name": "acme-billing", "project": PROJECT },
        ],
    }));
    fake
}

#[test]
fn gcp_plans_fit_one_comment_at_1_100_and_1000_control_planes_through_a_mode_switch() {
    let fake = google();
    let dir = TestDir::new();
    let run = |args: &[&str]| dir.idplan_gcp(&fake, args);
    for n in [1, 100] {
        let planes = namespaces(0..n);
        dir.write(
            "idplan.yaml",
            &gcp(&[("prod", planes.clone())], "principal"),
        );
        let md = plan_markdown(run, "small.json", &[]);
        check_fits(&md, &saved(&dir, "small.json"), MAX);
        assert_eq!(
            folded_namespaces(&md, "prod", "added"),
            planes.into_iter().collect()
        );
    }
    let planes = namespaces(0..1000);
    dir.write(
        "idplan.yaml",
        &gcp(&[("prod", planes.clone())], "principal"),
    );
    let md = plan_markdown(run, "g.json", &[]);
    eprintln!(
        "gcp principal, 1000 control planes: {} characters",
        md.chars().count()
    );
    check_fits(&md, &saved(&dir, "g.json"), MAX);
    assert_eq!(
        folded_namespaces(&md, "prod", "added"),
        planes.iter().cloned().collect()
    );
    // The members, per component, in the words of the domain: one per added control plane.
    let section = space_section(&md, "prod");
    assert!(
        section.contains("  - `members` added: 1000 (the added control planes)"),
        "{section}"
    );
    run(&["apply", "plans/g.json"]).assert_code(0);
    assert_eq!(
        fake.members("bucket:acme-backup", "roles/storage.objectAdmin")
            .len(),
        1000
    );

    // Drift by the same rules: someone keeps one member of 1,000; the report fits, says what
    // drifted, and counts the detail it could not hold.
    let kept = &fake.members("bucket:acme-backup", "roles/storage.objectAdmin")[..1];
    fake.set_bindings(
        "bucket:acme-backup",
        json!([{ "role": "roles/storage.objectAdmin", "members": kept }]),
    );
    let drift = run(&["drift", "--format", "markdown"]);
    drift.assert_code(2);
    let md = &drift.stdout;
    assert!(md.chars().count() <= MAX);
    assert!(md.starts_with("### idplan drift\n\n**Drift: 1 of "), "{md}");
    assert!(
        md.contains("- `google_storage_bucket_iam_members`: 1 modified outside idplan"),
        "{md}"
    );
    assert!(md.contains("_1 of 1 details left out"), "{md}");
    run(&["apply", "--auto-approve"]).assert_code(0);
    run(&["drift", "--format", "markdown"]).assert_code(0);

    // A mode switch: every principal goes, service accounts come.
    dir.write(
        "idplan.yaml",
        &gcp(&[("prod", planes.clone())], "service-account"),
    );
    let md = plan_markdown(run, "switch.json", &[]);
    eprintln!(
        "gcp mode switch, 1000 control planes: {} characters",
        md.chars().count()
    );
    let plan = saved(&dir, "switch.json");
    check_fits(&md, &plan, MAX);
    let section = space_section(&md, "prod");
    assert!(section.contains("**0 added**, **0 removed**"), "{section}");
    assert!(
        section.contains("  - `members` removed: 1000 (every control plane)"),
        "principals go: {section}"
    );
    assert!(
        section.contains("- service account `spaces-prod-backup` will be created"),
        "{section}"
    );

    // Renamed: the service account and the 1,000 members on it are replaced, and the warning
    // comes first, naming them.
    run(&["apply", "plans/switch.json"]).assert_code(0);
    let renamed = gcp(&[("prod", planes.clone())], "service-account").replace(
        "backup: { bucket: acme-backup }",
        "backup: { name: spaces-prod-bk2, bucket: acme-backup }",
    );
    dir.write("idplan.yaml", &renamed);
    let md = plan_markdown(run, "rename.json", &[]);
    eprintln!(
        "gcp rename, 1000 control planes: {} characters",
        md.chars().count()
    );
    check_fits(&md, &saved(&dir, "rename.json"), MAX);
    let warning = md.split_once("> [!WARNING]\n").expect("a warning").1;
    let warning = warning.split("\n\n").next().unwrap();
    for replaced in [
        "google_service_account.prod.backup",
        "google_service_account_iam_members.prod.backup",
    ] {
        assert!(
            warning.contains(&format!("> - `{replaced}` must be replaced")),
            "{warning}"
        );
    }
    assert!(md.find("> [!WARNING]") < md.find("#### Space"));
}

#[test]
fn many_spaces_in_one_spec_fit_one_comment() {
    let fake = google();
    let dir = TestDir::new();
    let spaces: Vec<(String, Vec<String>)> = (0..10)
        .map(|s| (format!("space-{s}"), namespaces(s * 100..(s + 1) * 100)))
        .collect();
    let refs: Vec<(&str, Vec<String>)> = spaces
        .iter()
        .map(|(n, p)| (n.as_str(), p.clone()))
        .collect();
    dir.write("idplan.yaml", &gcp(&refs, "principal"));
    let md = plan_markdown(|a: &[&str]| dir.idplan_gcp(&fake, a), "s.json", &[]);
    eprintln!("gcp, 10 spaces of 100: {} characters", md.chars().count());
    check_fits(&md, &saved(&dir, "s.json"), MAX);
    for (name, planes) in &spaces {
        assert_eq!(
            folded_namespaces(&md, name, "added"),
            planes.iter().cloned().collect(),
            "{name}"
        );
    }
    assert_eq!(namespace(0), spaces[0].1[0]);
}

// ---- At each cloud's own ceiling: IRSA exact subjects, Azure's 20 credentials --------------

#[tokio::test]
async fn irsa_exact_subjects_at_the_raised_quota_and_the_text_plan_says_what_changed() {
    // 77 control planes fill a trust policy of 8,192 characters (the sharedSecrets subject
    // is the longest).
    let quota = "      trustPolicyQuota: 8192\n";
    let (ms, dir) = crate::aws_irsa::setup(&crate::aws_irsa::spec(1, quota, None)).await;
    let run = |args: &[&str]| dir.idplan(&ms, args);
    let md = plan_markdown(run, "irsa1.json", &[]);
    check_fits(&md, &saved(&dir, "irsa1.json"), MAX);
    assert_eq!(
        folded_namespaces(&md, "prod", "added"),
        [namespace(0)].into()
    );
    dir.write("idplan.yaml", &crate::aws_irsa::spec(77, quota, None));
    let md = plan_markdown(run, "irsa.json", &[]);
    check_fits(&md, &saved(&dir, "irsa.json"), MAX);
    let section = space_section(&md, "prod");
    assert!(
        section.contains("  - subjects added: 77 (the added control planes)"),
        "{section}"
    );
    run(&["apply", "plans/irsa.json"]).assert_code(0);
    // Two control planes leave, two arrive: the text plan names the subjects first, the
    // line diff of the documents is only the detail after it.
    let now = namespaces((2..77).chain(77..79));
    let spec = crate::aws_irsa::spec(77, quota, None)
        .replace(&control_planes(namespaces(0..77)), &control_planes(&now));
    dir.write("idplan.yaml", &spec);
    let text = run(&["plan"]).assert_code(0).stdout.clone();
    let role = text
        .split("# aws_iam_role.prod.backup will be updated in place")
        .nth(1)
        .expect("the backup role is updated");
    let semantic = role.find(&format!(
        "+ subjects: system:serviceaccount:{}:mxp-controller",
        namespace(77)
    ));
    let removed = role.find(&format!(
        "- subjects: system:serviceaccount:{}:mxp-controller",
        namespace(0)
    ));
    let lines = role.find("the document, line by line:");
    assert!(
        semantic.is_some() && removed.is_some() && lines.is_some(),
        "{role}"
    );
    assert!(semantic < lines && removed < lines, "{role}");
    let md = plan_markdown(run, "irsa2.json", &[]);
    check_fits(&md, &saved(&dir, "irsa2.json"), MAX);
    let section = space_section(&md, "prod");
    assert!(
        section.contains("  - subjects added: 2 (the added control planes)"),
        "{section}"
    );
    assert!(
        section.contains("  - subjects removed: 2 (the removed control planes)"),
        "{section}"
    );
    assert_eq!(
        folded_namespaces(&md, "prod", "added"),
        namespaces(77..79).into_iter().collect()
    );
    assert_eq!(
        folded_namespaces(&md, "prod", "removed"),
        namespaces(0..2).into_iter().collect()
    );
}

#[test]
fn azure_at_1_and_at_20_credentials_per_identity() {
    let (arm, dir) = crate::azure::setup(&crate::azure::spec(&namespaces(0..1)));
    let run = |args: &[&str]| dir.idplan_azure(&arm, args);
    let md = plan_markdown(run, "az1.json", &[]);
    check_fits(&md, &saved(&dir, "az1.json"), MAX);
    assert_eq!(
        folded_namespaces(&md, "prod", "added"),
        [namespace(0)].into()
    );
    let planes = namespaces(0..20);
    dir.write("idplan.yaml", &crate::azure::spec(&planes));
    let md = plan_markdown(run, "az.json", &[]);
    check_fits(&md, &saved(&dir, "az.json"), MAX);
    assert_eq!(
        folded_namespaces(&md, "prod", "added"),
        planes.iter().cloned().collect()
    );
    let section = space_section(&md, "prod");
    assert!(
        section.contains("- federated identity credentials: 20 to add"),
        "{section}"
    );
    run(&["apply", "plans/az.json"]).assert_code(0);
    // At the ceiling a control plane can only leave.
    dir.write("idplan.yaml", &crate::azure::spec(&namespaces(1..20)));
    let md = plan_markdown(run, "az2.json", &[]);
    check_fits(&md, &saved(&dir, "az2.json"), MAX);
    assert!(folded_namespaces(&md, "prod", "added").is_empty());
    assert_eq!(
        folded_namespaces(&md, "prod", "removed"),
        [namespace(0)].into()
    );
    assert!(md.contains("Control planes: **0 added**, **1 removed**; 19 after this plan."));
    assert!(
        md.contains("- federated identity credentials: 1 to destroy"),
        "{md}"
    );
}

/// A busy day at scale: 40 control planes removed, 25 added, and billing's bucket changed. The
/// one policy change is shown first among the details, whatever the associations around it;
/// what the removed control planes take with them is a note, not a warning.
#[tokio::test]
async fn a_policy_change_among_many_association_changes_is_shown_first() {
    let ms = Ministack::start();
    ms.create_cluster(CLUSTER).await;
    let dir = TestDir::new();
    let run = |args: &[&str]| dir.idplan(&ms, args);
    dir.write("idplan.yaml", &pod_identity(&namespaces(0..300)));
    run(&["apply", "--auto-approve"]).assert_code(0);
    // Nothing to do: the comment says what it checked.
    let none = run(&["plan", "--format", "markdown"]);
    none.assert_code(0);
    none.assert_stdout_contains("`idplan.yaml`, space `prod`: 906 resources checked.");
    let now = namespaces((40..300).chain(300..325));
    dir.write(
        "idplan.yaml",
        &pod_identity(&now).replace("acme-billing", "acme-billing-2"),
    );
    let md = plan_markdown(run, "busy.json", &["--max-chars", "20000"]);
    check_fits(&md, &saved(&dir, "busy.json"), 20_000);
    let details = md.split_once("#### Details\n").unwrap().1;
    assert!(
        details.starts_with(
            "\n<details><summary>~ <code>aws_iam_role_policy.prod.billing</code> will be updated in place"
        ),
        "the policy change first:\n{details}"
    );
    assert!(details.contains("acme-billing-2"), "{details}");
    assert!(md.contains("> 40 control planes removed from the spec take their own resources"));
    assert!(!md.contains("[!WARNING]"), "{md}");
    // The associations: one example per component and action, the rest counted.
    assert!(
        details.contains("_and 24 more like this one, one per control plane._"),
        "{details}"
    );
}
