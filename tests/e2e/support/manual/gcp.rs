//! The overview's two GCP recipes, run literally against the fake Google server.
//!
//! Linking Kubernetes service accounts to Google service accounts ([`guide`]): the REST calls of
//! `gcloud iam service-accounts create`, of `add-iam-policy-binding` on the buckets
//! (`roles/storage.objectAdmin`), on the project or the secrets
//! (`roles/secretmanager.secretAccessor`), and on each Google service account
//! (`roles/iam.workloadIdentityUser` for `<project>.svc.id.goog[<namespace>/<sa>]`, one
//! command per control plane). Each `add-iam-policy-binding` is gcloud's read-modify-write:
//! the policy read at version 3, the member added, the policy written back with its etag.
//!
//! IAM principal identifiers, which the overview recommends ([`guide_principal`]): the same
//! `add-iam-policy-binding` commands on the buckets and the project or secret, with each
//! control plane's principal identifier as the member; no Google service account, no
//! annotation.

use serde_json::{Value, json};

use super::super::{FakeGoogle, FakeKube};
use super::{
    Component, GCP_SA, Ids, Planes, helm_components, later_control_plane, space_cluster, text,
};

pub const PROJECT: &str = "acme-spaces";
pub const NUMBER: &str = "123456789012";
pub const POOL: &str = "acme-spaces.svc.id.goog";
pub const LOCATION: &str = "us-central1";
pub const CLUSTER: &str = "spaces";
pub const BACKUP_BUCKET: &str = "acme-backup";
pub const BILLING_BUCKET: &str = "acme-billing";
pub const SECRET: &str = "spaces-token";
pub const OBJECT_ADMIN: &str = "roles/storage.objectAdmin";
pub const SECRET_ACCESSOR: &str = "roles/secretmanager.secretAccessor";
pub const WORKLOAD_IDENTITY_USER: &str = "roles/iam.workloadIdentityUser";

/// Where the External Secrets Operator's service account gets `secretAccessor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// `gcloud projects add-iam-policy-binding`: every secret of the project.
    Project,
    /// `gcloud secrets add-iam-policy-binding` on [`SECRET`].
    Listed,
}

/// Which of the overview's two recipes the team followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipe {
    /// A Google service account per component, impersonated by the Kubernetes service accounts.
    ServiceAccount,
    /// The Kubernetes service accounts' principal identifiers bound directly.
    Principal,
}

/// One component's Google service account.
#[derive(Debug, Clone)]
pub struct GcpAccount {
    pub component: Component,
    pub account_id: String,
    pub email: String,
    /// Google's unique id: an account deleted and made again gets another.
    pub unique_id: String,
}

/// What the GCP recipe left behind.
#[derive(Debug, Clone)]
pub struct GcpSpace {
    pub recipe: Recipe,
    pub project: String,
    pub pool: String,
    pub namespaces: Vec<String>,
    pub secrets: Secrets,
    /// One per component, in [`Component::ALL`] order; none for [`Recipe::Principal`].
    pub accounts: Vec<GcpAccount>,
}

/// The Google service account id the team chose for a component (after the overview's
/// `SPACES_BR_IAM_SA`, `SPACES_BILLING_IAM_SA`, `SPACES_ESO_IAM_SA`).
pub fn account_id(c: Component) -> &'static str {
    match c {
        Component::Backup => "acme-spaces-br",
        Component::Billing => "acme-spaces-billing",
        Component::SharedSecrets => "acme-spaces-eso",
    }
}

pub fn email(id: &str) -> String {
    format!("{id}@{PROJECT}.iam.gserviceaccount.com")
}

/// The principal identifier of a Kubernetes service account.
pub fn principal(namespace: &str, sa: &str) -> String {
    format!(
        "principal://iam.googleapis.com/projects/{NUMBER}/locations/global/workloadIdentityPools/\
         {POOL}/subject/ns/{namespace}/sa/{sa}"
    )
}

/// The policy target (`bucket:<name>`, `project:<id>`, `secret:projects/<p>/secrets/<s>`, as
/// `FakeGoogle::policy` names them) and the role that the recipes grant component `c`.
pub fn grant(c: Component, secrets: Secrets) -> (String, &'static str) {
    match (c, secrets) {
        (Component::Backup, _) => (format!("bucket:{BACKUP_BUCKET}"), OBJECT_ADMIN),
        (Component::Billing, _) => (format!("bucket:{BILLING_BUCKET}"), OBJECT_ADMIN),
        (Component::SharedSecrets, Secrets::Project) => {
            (format!("project:{PROJECT}"), SECRET_ACCESSOR)
        }
        (Component::SharedSecrets, Secrets::Listed) => (
            format!("secret:projects/{PROJECT}/secrets/{SECRET}"),
            SECRET_ACCESSOR,
        ),
    }
}

/// The member of a Kubernetes service account in the workload pool.
pub fn pool_member(namespace: &str, sa: &str) -> String {
    format!("serviceAccount:{POOL}[{namespace}/{sa}]")
}

/// The policy target and the read and write calls of one `add-iam-policy-binding`.
struct Target {
    read: (&'static str, String, Option<Value>),
    write: (&'static str, String),
    /// Storage's setIamPolicy takes the policy as the body; the others `{"policy": ...}`.
    bare: bool,
}

impl Target {
    fn bucket(bucket: &str) -> Target {
        let path = format!("/storage/v1/b/{bucket}/iam");
        Target {
            read: (
                "GET",
                format!("{path}?optionsRequestedPolicyVersion=3"),
                None,
            ),
            write: ("PUT", path),
            bare: true,
        }
    }

    /// gcloud's projects commands call Resource Manager v1; its getIamPolicy and setIamPolicy
    /// take the same bodies as v3's, which the fake serves.
    fn project() -> Target {
        let path = format!("/v3/projects/{PROJECT}");
        Target {
            read: (
                "POST",
                format!("{path}:getIamPolicy"),
                Some(json!({"options": {"requestedPolicyVersion": 3}})),
            ),
            write: ("POST", format!("{path}:setIamPolicy")),
            bare: false,
        }
    }

    fn secret(secret: &str) -> Target {
        let path = format!("/v1/projects/{PROJECT}/secrets/{secret}");
        Target {
            read: (
                "GET",
                format!("{path}:getIamPolicy?options.requestedPolicyVersion=3"),
                None,
            ),
            write: ("POST", format!("{path}:setIamPolicy")),
            bare: false,
        }
    }

    fn service_account(email: &str) -> Target {
        let path = format!("/v1/projects/-/serviceAccounts/{email}");
        Target {
            read: (
                "POST",
                format!("{path}:getIamPolicy?options.requestedPolicyVersion=3"),
                None,
            ),
            write: ("POST", format!("{path}:setIamPolicy")),
            bare: false,
        }
    }

    /// What the recipes grant component `c` on.
    fn of(c: Component, secrets: Secrets) -> Target {
        match (c, secrets) {
            (Component::Backup, _) => Target::bucket(BACKUP_BUCKET),
            (Component::Billing, _) => Target::bucket(BILLING_BUCKET),
            (Component::SharedSecrets, Secrets::Project) => Target::project(),
            (Component::SharedSecrets, Secrets::Listed) => Target::secret(SECRET),
        }
    }

    /// `gcloud ... add-iam-policy-binding --member <member> --role <role>`.
    #[track_caller]
    fn add_binding(&self, fake: &FakeGoogle, role: &str, member: &str) {
        let (method, path, body) = &self.read;
        let mut policy = fake.call(method, path, body.as_ref());
        if policy.get("bindings").is_none() {
            policy["bindings"] = json!([]);
        }
        let bindings = policy["bindings"].as_array_mut().expect("bindings");
        match bindings
            .iter_mut()
            .find(|b| b["role"] == role && b.get("condition").is_none())
        {
            Some(b) => {
                let members = b["members"].as_array_mut().expect("members");
                if !members.iter().any(|m| m == member) {
                    members.push(json!(member));
                }
            }
            None => bindings.push(json!({"role": role, "members": [member]})),
        }
        let (method, path) = &self.write;
        let body = if self.bare {
            policy
        } else {
            json!({ "policy": policy })
        };
        fake.call(method, path, Some(&body));
    }
}

/// What exists before the recipes start: the project, the GKE cluster with Workload Identity,
/// the buckets with uniform access, the secret.
#[track_caller]
fn seed(fake: &FakeGoogle) {
    fake.seed(json!({
        "projects": [{ "id": PROJECT, "number": NUMBER }],
        "clusters": [{ "project": PROJECT, "location": LOCATION, "name": CLUSTER, "workloadPool": POOL }],
        "buckets": [
            { "name": BACKUP_BUCKET, "project": PROJECT },
            { "name": BILLING_BUCKET, "project": PROJECT },
        ],
        "secrets": [{ "project": PROJECT, "id": SECRET }],
    }));
}

/// Seeds what exists before the recipe starts (the project, the GKE cluster with Workload
/// Identity, the buckets with uniform access, the secret) and the Space's `n` control planes
/// on `kube`, then makes gcloud's calls and annotates the service accounts as Helm would.
#[track_caller]
pub fn guide(fake: &FakeGoogle, kube: &FakeKube, n: usize, secrets: Secrets) -> GcpSpace {
    seed(fake);
    let namespaces = space_cluster(kube, n);

    let mut accounts = Vec::new();
    for c in Component::ALL {
        let id = account_id(c);
        // gcloud iam service-accounts create <id> --project <project>
        let created = fake.call(
            "POST",
            &format!("/v1/projects/{PROJECT}/serviceAccounts"),
            Some(&json!({"accountId": id, "serviceAccount": {}})),
        );
        let email = text(&created, "/email");
        let member = format!("serviceAccount:{email}");
        let (_, role) = grant(c, secrets);
        Target::of(c, secrets).add_binding(fake, role, &member);
        // gcloud iam service-accounts add-iam-policy-binding <email>
        //   --role roles/iam.workloadIdentityUser
        //   --member "serviceAccount:<project>.svc.id.goog[<namespace>/<sa>]"
        for ns in &namespaces {
            Target::service_account(&email).add_binding(
                fake,
                WORKLOAD_IDENTITY_USER,
                &pool_member(ns, c.service_account()),
            );
        }
        accounts.push(GcpAccount {
            component: c,
            account_id: id.to_string(),
            unique_id: text(&created, "/uniqueId"),
            email,
        });
    }

    let space = GcpSpace {
        recipe: Recipe::ServiceAccount,
        project: PROJECT.to_string(),
        pool: POOL.to_string(),
        namespaces,
        secrets,
        accounts,
    };
    helm_components(kube, &space.namespaces, &|c| space.annotation(c), None);
    space
}

/// As [`guide`], with the recipe of principal identifiers: for each component and control
/// plane, `gcloud ... add-iam-policy-binding --member principal://... --role <role>`; the
/// service accounts have no annotation.
#[track_caller]
pub fn guide_principal(fake: &FakeGoogle, kube: &FakeKube, n: usize, secrets: Secrets) -> GcpSpace {
    seed(fake);
    let namespaces = space_cluster(kube, n);
    for c in Component::ALL {
        let (_, role) = grant(c, secrets);
        for ns in &namespaces {
            Target::of(c, secrets).add_binding(fake, role, &principal(ns, c.service_account()));
        }
    }
    helm_components(kube, &namespaces, &|_| None, None);
    GcpSpace {
        recipe: Recipe::Principal,
        project: PROJECT.to_string(),
        pool: POOL.to_string(),
        namespaces,
        secrets,
        accounts: Vec::new(),
    }
}

impl GcpSpace {
    /// The annotation Helm gives component `c`'s service account: the Google service
    /// account's email, none with principal identifiers.
    pub fn annotation(&self, c: Component) -> Option<(&'static str, String)> {
        (self.recipe == Recipe::ServiceAccount).then(|| (GCP_SA, self.account(c).email.clone()))
    }

    /// A control plane created after the manual setup (index `i`): its host namespace and
    /// components, annotated Space-wide as Helm does, and no binding. Returns its host
    /// namespace.
    #[track_caller]
    pub fn add_control_plane(&self, kube: &FakeKube, i: usize) -> String {
        later_control_plane(kube, i, &|c| self.annotation(c), None)
    }

    /// The account of component `c`.
    pub fn account(&self, c: Component) -> &GcpAccount {
        self.accounts
            .iter()
            .find(|a| a.component == c)
            .expect("every component has an account")
    }

    /// The ids these accounts have in `fake` now: `<component>.email`, `<component>.uniqueId`;
    /// and the grants the recipe made, each as `<component>.grant.<member>` = `<target>
    /// <role>` while the target's policy holds it. An account that is gone, or a grant
    /// removed, has no entry.
    #[track_caller]
    pub fn read_ids(&self, fake: &FakeGoogle) -> Ids {
        let mut ids = Ids::new();
        for c in Component::ALL {
            let (target, role) = grant(c, self.secrets);
            let ours: Vec<String> = match self.recipe {
                Recipe::ServiceAccount => vec![format!("serviceAccount:{}", self.account(c).email)],
                Recipe::Principal => self
                    .namespaces
                    .iter()
                    .map(|ns| principal(ns, c.service_account()))
                    .collect(),
            };
            for member in fake.members(&target, role) {
                if ours.contains(&member) {
                    ids.insert(
                        format!("{}.grant.{member}", c.key()),
                        format!("{target} {role}"),
                    );
                }
            }
        }
        for a in &self.accounts {
            let path = format!("/v1/projects/{}/serviceAccounts/{}", self.project, a.email);
            if let (200, found) = fake.call_status("GET", &path, None) {
                let key = a.component.key();
                ids.insert(format!("{key}.email"), text(&found, "/email"));
                ids.insert(format!("{key}.uniqueId"), text(&found, "/uniqueId"));
            }
        }
        ids
    }

    /// An idplan spec for this Space: `mode: service-account` whose components name the
    /// team's Google service accounts, or `mode: principal`; `extra` goes into each
    /// component's mapping.
    pub fn spec(&self, planes: Planes, extra: &str) -> String {
        let mode = match self.recipe {
            Recipe::ServiceAccount => "service-account",
            Recipe::Principal => "principal",
        };
        let entry = |c: Component, first: String| {
            let name = match self.recipe {
                Recipe::ServiceAccount => format!("name: {}", account_id(c)),
                Recipe::Principal => String::new(),
            };
            let parts: Vec<String> = [first, name, extra.to_string()]
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect();
            format!("{{ {} }}", parts.join(", "))
        };
        let secrets = match self.secrets {
            Secrets::Project => String::new(),
            Secrets::Listed => format!("secrets: [{SECRET}]"),
        };
        format!(
            "version: 1\nspaces:\n  - name: prod\n{}    gcp:\n      project: {}\n      \
             cluster: {{ location: {LOCATION}, name: {CLUSTER} }}\n      mode: {mode}\n    \
             components:\n      backup: {}\n      billing: {}\n      sharedSecrets: {}\n",
            planes.block(&self.namespaces),
            self.project,
            entry(Component::Backup, format!("bucket: {BACKUP_BUCKET}")),
            entry(Component::Billing, format!("bucket: {BILLING_BUCKET}")),
            entry(Component::SharedSecrets, secrets),
        )
    }
}
