//! The watch scenarios on GCP: Workload Identity principals as members on the fake Google APIs, the
//! state in the fake's Cloud Storage.

use std::process::Command;

use serde_json::json;

use super::Cloud;
use crate::support::{FakeGoogle, TestDir};

const PROJECT: &str = "acme-spaces";
const NUMBER: &str = "123456789012";
const POOL: &str = "acme-spaces.svc.id.goog";
const BUCKET: &str = "team-state";
const OBJECT: &str = "watch.json";

struct Gcp {
    fake: FakeGoogle,
}

fn principal(ns: &str, sa: &str) -> String {
    format!(
        "principal://iam.googleapis.com/projects/{NUMBER}/locations/global/workloadIdentityPools/{POOL}/subject/ns/{ns}/sa/{sa}"
    )
}

impl Cloud for Gcp {
    const RESTARTS: bool = false;
    const WRITE: &'static str = "setIamPolicy";

    fn start(faults: &[&str]) -> Gcp {
        let fake = FakeGoogle::start_with(faults);
        fake.seed(json!({
            "projects": [{ "id": PROJECT, "number": NUMBER }],
            "clusters": [
                { "project": PROJECT, "location": "us-central1", "name": "spaces", "workloadPool": POOL },
            ],
            "buckets": [
                { "name": "acme-backup", "project": PROJECT },
                { "name": "acme-billing", "project": PROJECT },
                { "name": BUCKET, "project": PROJECT },
            ],
        }));
        Gcp { fake }
    }

    fn space(&self) -> String {
        format!(
            "    gcp:\n      project: {PROJECT}\n      cluster: {{ location: us-central1, name: spaces }}\n      \
             mode: principal\n    components:\n      backup: {{ bucket: acme-backup }}\n      \
             billing: {{ bucket: acme-billing }}\n      sharedSecrets: {{}}\n"
        )
    }

    fn state(&self) -> String {
        format!("gs://{BUCKET}/{OBJECT}")
    }

    fn command(&self, dir: &TestDir, args: &[&str]) -> Command {
        dir.gcp_command(&self.fake, args)
    }

    fn credentials(&self, ns: &str) -> usize {
        [
            (
                "bucket:acme-backup",
                "roles/storage.objectAdmin",
                "mxp-controller",
            ),
            ("bucket:acme-billing", "roles/storage.objectAdmin", "vector"),
            (
                "project:acme-spaces",
                "roles/secretmanager.secretAccessor",
                "external-secrets-controller",
            ),
        ]
        .iter()
        .map(|(target, role, sa)| {
            let want = principal(ns, sa);
            self.fake
                .members(target, role)
                .iter()
                .filter(|m| **m == want)
                .count()
        })
        .sum()
    }

    fn locked(&self) -> bool {
        self.fake
            .object(BUCKET, &format!("{OBJECT}.lock"))
            .is_some()
    }
}

super::scenarios!(Gcp);

/// What does not depend on the cloud runs on one.
#[test]
fn follows_the_spec() {
    super::follows_the_spec::<Gcp>();
}
