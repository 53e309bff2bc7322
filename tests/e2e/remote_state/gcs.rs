//! The remote state scenarios with the state in Google Cloud Storage (fake-gcs-server), reached
//! through `STORAGE_EMULATOR_HOST` with no token.

use serde_json::Value;

use super::{Remote, Team, ministack, remote_tests};
use crate::support::fake_gcs::FakeGcs;
use crate::support::{Ministack, TestDir};

const BUCKET: &str = "team-state";

struct Gcs {
    fake: FakeGcs,
}

impl Gcs {
    fn start() -> Gcs {
        let fake = FakeGcs::start();
        fake.create_bucket(BUCKET);
        Gcs { fake }
    }
}

impl Remote for Gcs {
    fn url(&self, name: &str) -> String {
        format!("gs://{BUCKET}/{name}")
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![("STORAGE_EMULATOR_HOST".into(), self.fake.endpoint.clone())]
    }

    async fn object(&self, key: &str) -> Option<Vec<u8>> {
        self.fake.object(BUCKET, key).map(String::into_bytes)
    }

    fn stat_prefix(&self) -> &'static str {
        "gcs:"
    }
}

async fn setup() -> (Ministack, Gcs) {
    (ministack().await, Gcs::start())
}

remote_tests! {
    two_machines_share_one_state => two_machines;
    two_applies_at_once_one_is_refused => two_applies_at_once;
    killed_apply_leaves_a_lock_that_unlock_frees => killed_apply;
    a_run_whose_lock_was_broken_overwrites_nothing => broken_lock(false);
    migrate_a_local_state_to_gcs => migrate;
}

#[tokio::test]
async fn previous_state_is_kept_and_a_missing_bucket_is_named() {
    let (ms, gcs) = setup().await;
    let team = Team {
        ms: &ms,
        remote: &gcs,
    };
    let dir = TestDir::new();
    dir.write("idplan.yaml", &super::spec(1, Some(&gcs.url("kept.json"))));
    team.idplan(&dir, &["apply", "--auto-approve"], &[])
        .assert_code(0);
    let state = gcs.state("kept.json").await.unwrap();
    let backup: Value = serde_json::from_str(
        &gcs.fake
            .object(BUCKET, "kept.json.backup")
            .expect("a backup"),
    )
    .unwrap();
    assert_eq!(backup["lineage"], state["lineage"]);
    assert!(backup["serial"].as_u64() < state["serial"].as_u64());

    dir.write(
        "idplan.yaml",
        &super::spec(1, Some("gs://no-such-bucket/x.json")),
    );
    team.idplan(&dir, &["plan"], &[])
        .assert_code(1)
        .assert_stderr_contains("bucket no-such-bucket does not exist")
        .assert_stderr_contains("gcloud storage buckets create gs://no-such-bucket");
    team.idplan(&dir, &["state", "list"], &[])
        .assert_code(1)
        .assert_stderr_contains("bucket no-such-bucket does not exist");
}
