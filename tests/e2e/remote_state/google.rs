//! The remote state scenarios with the state in Google Cloud Storage as the project's own fake
//! Google server plays it (`tests/support/fake_google.py`, reached through
//! `IDPLAN_GCP_ENDPOINT` with a bearer token). fake-gcs-server ignores `ifGenerationMatch` on
//! deletes (and on media uploads); this fake checks it on every object call, so here every
//! precondition idplan relies on is checked: the lock created only if absent, the state
//! written only over the generation read, the lock deleted only at the generation read. The
//! fake takes the shared faults, and races an object.

use super::{Call, Remote, ministack, remote_tests};
use crate::support::{FakeGoogle, Faults, Ministack, TestDir};

const BUCKET: &str = "team-state";

struct Google {
    fake: FakeGoogle,
    faults: Faults,
    _dir: TestDir,
}

impl Google {
    fn start() -> Google {
        let dir = TestDir::new();
        let faults = Faults::ruled(&dir);
        let fake = FakeGoogle::start_with(&faults.args());
        fake.seed(serde_json::json!({ "buckets": [{ "name": BUCKET }] }));
        Google {
            fake,
            faults,
            _dir: dir,
        }
    }

    /// The object calls made on `name` (`METHOD path?query`).
    fn calls_on(&self, name: &str) -> Vec<String> {
        let path = format!("/storage/v1/b/{BUCKET}/o/{name}?");
        self.fake
            .calls()
            .into_iter()
            .filter(|c| c.contains(&path))
            .collect()
    }
}

impl Remote for Google {
    fn url(&self, name: &str) -> String {
        format!("gs://{BUCKET}/{name}")
    }

    fn env(&self) -> Vec<(String, String)> {
        self.fake
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    async fn object(&self, key: &str) -> Option<Vec<u8>> {
        self.fake.object(BUCKET, key).map(String::into_bytes)
    }

    fn stat_prefix(&self) -> &'static str {
        "gcs:"
    }

    fn faults(&self) -> Option<&Faults> {
        Some(&self.faults)
    }

    fn call(&self, call: Call, name: &str) -> Option<(String, &'static str)> {
        let upload = |object: &str| format!("POST /upload/storage/v1/b/{BUCKET}/o {object}");
        let object =
            |method: &str, object: &str| format!("{method} /storage/v1/b/{BUCKET}/o/{object}");
        let lock = format!("{name}.lock");
        Some(match call {
            Call::LockCreate => (upload(&lock), "storage.objects.insert"),
            Call::LockHolder => return None,
            Call::StateRead => (object("GET", name), "storage.objects.get"),
            Call::BackupWrite => (upload(&format!("{name}.backup")), "storage.objects.insert"),
            Call::StateWrite => (upload(name), "storage.objects.insert"),
            Call::LockRead => (object("GET", &lock), "storage.objects.get"),
            Call::LockRelease => (object("DELETE", &lock), "storage.objects.delete"),
        })
    }

    /// The fake replaces the lock right after its next read.
    async fn race_lock(&self, name: &str, _id: &str, holder: &str) {
        self.fake
            .object_race(BUCKET, &format!("{name}.lock"), holder);
    }
}

async fn setup() -> (Ministack, Google) {
    (ministack().await, Google::start())
}

/// The lock is created with `ifGenerationMatch=0`: refused while another run holds it.
#[tokio::test]
async fn the_lock_is_refused_while_another_holds_it() {
    let (ms, google) = setup().await;
    super::two_applies_at_once(&ms, &google).await;
    let uploads: Vec<String> = google
        .fake
        .calls()
        .into_iter()
        .filter(|c| c.starts_with(&format!("POST /upload/storage/v1/b/{BUCKET}/o?")))
        .collect();
    assert!(
        uploads.iter().all(|c| c.contains("uploadType=multipart")),
        "{uploads:?}"
    );
}

remote_tests! {
    /// The state is written with `ifGenerationMatch` on the generation read: a run whose lock was
    /// broken while another wrote is refused, nothing lost.
    a_state_write_after_another_run_wrote_is_refused => broken_lock(false);
    /// `state unlock ID` finds the lock `ID`, but another run takes the lock between that read and
    /// the delete: the delete at the generation read is refused, nothing unlocked.
    unlock_refuses_a_lock_that_changed_under_it => unlock_race;
    /// The state is written with `ifGenerationMatch` on an existing state's generation: a run
    /// whose lock was broken while another run wrote over it is refused.
    a_write_over_an_existing_state_after_another_run_wrote_is_refused => broken_lock(true);
    a_lost_reply_is_not_another_run => lost_replies;
    throttling_and_5xx_on_each_call_are_retried => transient_faults;
    a_call_that_keeps_failing_is_named_and_writes_nothing => failing_calls;
}

/// `state unlock ID` deletes the lock at the generation it read.
#[tokio::test]
async fn a_killed_apply_s_lock_is_freed_by_unlock() {
    let (ms, google) = setup().await;
    super::killed_apply(&ms, &google).await;
    let deletes: Vec<String> = google
        .calls_on("killed.json.lock")
        .into_iter()
        .filter(|c| c.starts_with("DELETE "))
        .collect();
    assert!(
        deletes.len() >= 2,
        "unlock, then the runs' releases: {deletes:?}"
    );
    assert!(
        deletes.iter().all(|c| c.contains("ifGenerationMatch=")),
        "{deletes:?}"
    );
}

/// A run's lock broken and taken by another run right after this run read it back to release
/// it: the delete at the generation read is refused, the other run's lock stays.
#[tokio::test]
async fn a_lock_taken_by_another_run_is_never_removed() {
    let (ms, google) = setup().await;
    super::lock_taken_while_released(&ms, &google).await;
    let deletes: Vec<String> = google
        .calls_on("stale.json.lock")
        .into_iter()
        .filter(|c| c.starts_with("DELETE "))
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert!(deletes[0].contains("ifGenerationMatch="), "{deletes:?}");
}
