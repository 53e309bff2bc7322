//! The scenarios on GCP in service-account mode: the fake Google APIs' service accounts and
//! IAM policies.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::{Value, json};

use super::{Cloud, Drift, Limit, scenarios};
use crate::gcp::{ALL, OBJECT_ADMIN, POOL, PROJECT, SECRET_ACCESSOR, WI_USER, email, seeded, spec};
use crate::support::{FakeGoogle, Faults, TestDir, namespace};

pub struct Gcp {
    fake: FakeGoogle,
}

scenarios!(Gcp);

/// idplan's service accounts: (account id, component, Kubernetes service account, and the
/// (policy, role) it is a member of).
const ACCOUNTS: [(&str, &str, &str, &str, &str); 3] = [
    (
        "spaces-prod-backup",
        "backup",
        "mxp-controller",
        "bucket:acme-backup",
        OBJECT_ADMIN,
    ),
    (
        "spaces-prod-billing",
        "billing",
        "vector",
        "bucket:acme-billing",
        OBJECT_ADMIN,
    ),
    (
        "spaces-prod-shared-secrets",
        "sharedSecrets",
        "external-secrets-controller",
        "project:acme-spaces",
        SECRET_ACCESSOR,
    ),
];

fn account(
    field: impl Fn(&(&str, &str, &str, &str, &str)) -> bool,
) -> (&'static str, &'static str) {
    let a = ACCOUNTS
        .iter()
        .find(|a| field(a))
        .expect("one of idplan's service accounts");
    (a.0, a.1)
}

fn billing_only() -> &'static str {
    "      billing: { bucket: acme-billing }\n"
}

impl Gcp {
    /// The emails of the project's service accounts.
    fn accounts(&self) -> Vec<String> {
        let list = self.fake.call(
            "GET",
            &format!("/v1/projects/{PROJECT}/serviceAccounts?pageSize=100"),
            None,
        );
        list["accounts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| a["email"].as_str().unwrap().to_string())
            .collect()
    }

    /// The service account's (email's) status: 200 or 404.
    fn status(&self, email: &str) -> u16 {
        let path = format!("/v1/projects/{PROJECT}/serviceAccounts/{email}");
        self.fake.call_status("GET", &path, None).0
    }
}

impl Cloud for Gcp {
    const FAULT_PLANES: usize = 30;
    const LOST_ON: &'static str = ":setIamPolicy";
    const KILL_PLANES: usize = 3;
    const KILL_AT: &'static [usize] = &[2, 2, 1];
    const CREATES: &'static str = r"^(POST .*/serviceAccounts|POST .*:setIamPolicy|PUT .*/iam)$";
    const LOST: &'static str = r"^(POST /v1/projects/[^/]+/serviceAccounts$|DELETE )";
    const LOST_COUNTS: &'static [(&'static str, usize)] = &[("POST", 3)];
    const IMPORTED: usize = 9;
    const REBUILT: &'static [&'static str] = &["will be recorded in the state"];
    const WRITE: &'static str = ":setIamPolicy";

    async fn start(args: &[&str]) -> Gcp {
        Gcp { fake: seeded(args) }
    }

    fn spec(&self, n: usize) -> String {
        spec("service-account", &Vec::from_iter(0..n), ALL)
    }

    fn command(&self, dir: &TestDir, args: &[&str]) -> Command {
        dir.gcp_command(&self.fake, args)
    }

    async fn held(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        let mut count = |key: String| *out.entry(key).or_default() += 1;
        let mut policies = vec![
            ("bucket:acme-backup".to_string(), OBJECT_ADMIN),
            ("bucket:acme-billing".to_string(), OBJECT_ADMIN),
            (format!("project:{PROJECT}"), SECRET_ACCESSOR),
        ];
        for email in self.accounts() {
            count(format!("account {email}"));
            policies.push((format!("sa:{email}"), WI_USER));
        }
        for (target, role) in policies {
            for member in self.fake.members(&target, role) {
                // Others' members (the limit's) are not idplan's.
                if !member.starts_with("user:") {
                    count(format!("member {target} {role} {member}"));
                }
            }
        }
        out
    }

    fn expected(&self, n: usize) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (id, _, sa, target, role) in ACCOUNTS {
            let email = email(id);
            out.insert(format!("account {email}"));
            out.insert(format!("member {target} {role} serviceAccount:{email}"));
            for i in 0..n {
                out.insert(format!(
                    "member sa:{email} {WI_USER} serviceAccount:{POOL}[{}/{sa}]",
                    namespace(i)
                ));
            }
        }
        out
    }

    async fn assert_recorded(&self, state: &Value) {
        let state = state.to_string();
        let emails = self.accounts();
        assert_eq!(emails.len(), 3, "{emails:?}");
        for email in &emails {
            assert!(state.contains(email), "{email} is not in the state");
        }
    }

    async fn landed(&self, request: &str, body: &str) -> String {
        let (method, path) = request.split_once(' ').unwrap();
        if let Some(bucket) = path
            .strip_prefix("/storage/v1/b/")
            .and_then(|p| p.strip_suffix("/iam"))
        {
            let (_, component) = account(|a| a.3 == format!("bucket:{bucket}"));
            assert!(
                !self
                    .fake
                    .members(&format!("bucket:{bucket}"), OBJECT_ADMIN)
                    .is_empty(),
                "{path} was written"
            );
            return format!("google_storage_bucket_iam_members.prod.{component}");
        }
        if path == format!("/v3/projects/{PROJECT}:setIamPolicy") {
            assert!(
                !self
                    .fake
                    .members(&format!("project:{PROJECT}"), SECRET_ACCESSOR)
                    .is_empty(),
                "{path} was written"
            );
            return "google_project_iam_members.prod.sharedSecrets".into();
        }
        if let Some(sa) = path.strip_suffix(":setIamPolicy") {
            let email = sa.rsplit('/').next().unwrap();
            let (_, component) = account(|a| crate::gcp::email(a.0) == email);
            assert!(
                !self
                    .fake
                    .members(&format!("sa:{email}"), WI_USER)
                    .is_empty(),
                "{path} was written"
            );
            return format!("google_service_account_iam_members.prod.{component}");
        }
        assert_eq!(method, "POST", "{request}");
        let body: Value = serde_json::from_str(body).unwrap();
        let id = body["accountId"].as_str().unwrap();
        assert_eq!(self.status(&email(id)), 200, "{id} was made");
        let (_, component) = account(|a| a.0 == id);
        format!("google_service_account.prod.{component}")
    }

    /// A delete's lost reply too: backup and billing leave the spec, their accounts go.
    async fn more_lost_replies(&self, dir: &TestDir, faults: &Faults) {
        dir.write(
            "idplan.yaml",
            &spec("service-account", &[0, 1], "      sharedSecrets: {}\n"),
        );
        self.idplan(dir, &["apply", "--auto-approve"])
            .assert_code(0);
        let deletes = faults
            .fired()
            .iter()
            .filter(|(kind, r)| kind == "lost" && r.starts_with("DELETE"))
            .count();
        assert_eq!(deletes, 2, "{:?}", faults.fired());
        for gone in ["spaces-prod-backup", "spaces-prod-billing"] {
            assert_eq!(self.status(&email(gone)), 404, "{gone}");
        }
        assert!(
            !dir.read(crate::support::STATE_FILE)
                .contains("spaces-prod-backup")
        );
        self.idplan(dir, &["plan", "--detailed-exitcode"])
            .assert_code(0);
        dir.write("idplan.yaml", &self.spec(2));
        self.idplan(dir, &["apply", "--auto-approve"])
            .assert_code(0);
    }

    async fn remove_by_hand(&self, round: usize) -> Option<Drift> {
        let billing = email("spaces-prod-billing");
        match round {
            // One of idplan's members removed.
            0 => {
                let kept: Vec<String> = (1..3)
                    .map(|i| format!("serviceAccount:{POOL}[{}/vector]", namespace(i)))
                    .collect();
                self.fake.set_bindings(
                    &format!("sa:{billing}"),
                    json!([{ "role": WI_USER, "members": kept }]),
                );
                Some(Drift {
                    drift: vec!["google_service_account_iam_members.prod.billing".into()],
                    plan: "Plan: 0 to add, 1 to change, 0 to destroy.".into(),
                })
            }
            // Every member of idplan's removed: the resource is gone, and created again.
            1 => {
                self.fake.set_bindings("bucket:acme-billing", json!([]));
                Some(Drift {
                    drift: vec!["google_storage_bucket_iam_members.prod.billing".into()],
                    plan: "Plan: 1 to add, 0 to change, 0 to destroy.".into(),
                })
            }
            _ => None,
        }
    }

    fn limit(&self) -> Limit {
        let planes = |n: usize| spec("principal", &Vec::from_iter(0..n), billing_only());
        Limit {
            over: planes(1501),
            says: vec!["over Google's limit of 1500".into()],
            located: vec![],
            fits: planes(1500),
        }
    }

    async fn add_others(&self) -> Option<(String, String)> {
        let others: Vec<String> = (0..1499)
            .map(|i| format!("user:u{i}@example.com"))
            .collect();
        self.fake.set_bindings(
            "bucket:acme-billing",
            json!([{ "role": "roles/storage.objectViewer", "members": others }]),
        );
        Some((
            spec("principal", &[0, 1], billing_only()),
            "would hold 1501 principals (2 of idplan's, 1499 of others)".into(),
        ))
    }
}
