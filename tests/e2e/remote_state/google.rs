//! The remote state scenarios with the state in Google Cloud Storage as the project's own fake
//! Google server plays it (`tests/support/fake_google.py`, reached through
//! `IDPLAN_GCP_ENDPOINT` with a bearer token). fake-gcs-server ignores `ifGenerationMatch` on
//! deletes (and on media uploads); this fake checks it on every object call, so here every
//! precondition idplan relies on is checked: the lock created only if absent, the state
//! written only over the generation read, the lock deleted only at the generation read.

use serde_json::Value;

use super::{Remote, Team, ministack};
use crate::support::{FakeGoogle, Ministack, TestDir};

const BUCKET: &str = "team-state";

struct Google {
    fake: FakeGoogle,
}

impl Google {
    fn start() -> Google {
        let fake = FakeGoogle::start();
        fake.seed(serde_json::json!({ "buckets": [{ "name": BUCKET }] }));
        Google { fake }
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

    async fn state(&self, name: &str) -> Option<Value> {
        let text = self.fake.object(BUCKET, name)?;
        Some(serde_json::from_str(&text).expect("the state is JSON"))
    }

    async fn locked(&self, name: &str) -> bool {
        self.fake.object(BUCKET, &format!("{name}.lock")).is_some()
    }

    fn stat_prefix(&self) -> &'static str {
        "gcs:"
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

/// The state is written with `ifGenerationMatch` on the generation read: a run whose lock was
/// broken while another wrote is refused, nothing lost.
#[tokio::test]
async fn a_state_write_after_another_run_wrote_is_refused() {
    let (ms, google) = setup().await;
    super::broken_lock(&ms, &google).await;
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
/// it: the delete at the generation read is refused, the other run's lock stays, and the run
/// says so; the state it wrote is whole.
#[tokio::test]
async fn a_lock_taken_by_another_run_is_never_removed() {
    let (ms, google) = setup().await;
    let team = Team {
        ms: &ms,
        remote: &google,
    };
    let name = "stale.json";
    let lock = format!("{name}.lock");
    let dir = TestDir::new();
    dir.write("idplan.yaml", &super::spec(1, Some(&google.url(name))));
    let theirs = "{\"id\": \"their-lock\", \"who\": \"ci@runner\", \"pid\": 7, \
                  \"operation\": \"apply\", \"created\": \"2026-01-01T00:00:00Z\"}";
    // A run reads its lock only to release it, so the race hits exactly that release.
    google.fake.object_race(BUCKET, &lock, theirs);
    let out = team.idplan(&dir, &["apply", "--auto-approve"], &[]);
    // The apply is done; the lock not released is a warning naming why.
    out.assert_code(0).assert_stderr_contains(&format!(
        "warning: the lock of state gs://{BUCKET}/{name} was not released: this run's lock of \
         state gs://{BUCKET}/{name} was broken and taken by another run while this run \
         released it; that run's lock was left in place"
    ));
    let held = google
        .fake
        .object(BUCKET, &lock)
        .expect("their lock is kept");
    assert!(held.contains("their-lock"), "{held}");
    let deletes: Vec<String> = google
        .calls_on(&lock)
        .into_iter()
        .filter(|c| c.starts_with("DELETE "))
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert!(deletes[0].contains("ifGenerationMatch="), "{deletes:?}");
    let state = google.state(name).await.expect("the state was written");
    assert_eq!(super::addresses(&state), super::resources(1));

    // Their lock refuses the next run, naming them.
    team.idplan(&dir, &["plan"], &[])
        .assert_code(1)
        .assert_stderr_contains("lock their-lock: ci@runner pid 7, `idplan apply`");
}

/// `state unlock ID` finds the lock `ID`, but another run takes the lock between that read and
/// the delete: the delete at the generation read is refused, nothing unlocked.
#[tokio::test]
async fn unlock_refuses_a_lock_that_changed_under_it() {
    let google = Google::start();
    let lock = |id: &str| {
        format!(
            "{{\"id\": \"{id}\", \"who\": \"ci@runner\", \"pid\": 7, \"operation\": \"apply\", \
             \"created\": \"2026-01-01T00:00:00Z\"}}"
        )
    };
    google.fake.call(
        "POST",
        &format!("/_fake/object?bucket={BUCKET}&name=race.json.lock"),
        Some(&serde_json::json!({ "data": lock("crashed-lock") })),
    );
    google
        .fake
        .object_race(BUCKET, "race.json.lock", &lock("new-lock"));
    let dir = TestDir::new();
    let url = google.url("race.json");
    dir.idplan_gcp(
        &google.fake,
        &["state", "unlock", "crashed-lock", "--state", &url],
    )
    .assert_code(1)
    .assert_stderr_contains(&format!(
        "the lock of state {url} changed while it was being unlocked"
    ))
    .assert_stderr_contains("nothing was unlocked");
    let held = google.fake.object(BUCKET, "race.json.lock").unwrap();
    assert!(held.contains("new-lock"), "{held}");
}
