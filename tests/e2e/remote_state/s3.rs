//! The remote state scenarios with the state in S3 (ministack's, with the launcher's S3 faults
//! and object race), and what only S3 shows: the previous state kept as `KEY.backup`, a
//! missing bucket named with the command that makes it, a network failure retried then named,
//! a malformed URL in the spec located.

use aws_sdk_s3::Client;
use serde_json::Value;

use super::{Call, Remote, Team, ministack};
use crate::support::{Faults, Ministack, TestDir};

const BUCKET: &str = "team-state";

/// The state's S3: a ministack of its own (`AWS_ENDPOINT_URL_S3`), apart from the spaces'
/// cloud, so that a test can freeze the one without the other; its faults off until a test
/// turns them on, and a directory of object races.
struct S3 {
    client: Client,
    storage: Ministack,
    faults: Faults,
    races: std::path::PathBuf,
    _dir: TestDir,
}

impl S3 {
    async fn new() -> S3 {
        let dir = TestDir::new();
        let faults = Faults::ruled(&dir);
        let races = dir.path().join("races");
        std::fs::create_dir_all(&races).unwrap();
        let mut args = faults.args();
        let races_arg = races.display().to_string();
        args.extend(["--object-race-dir", races_arg.as_str()]);
        let storage = Ministack::start_with(&args);
        let config = aws_sdk_s3::config::Builder::from(&storage.sdk_config().await)
            .force_path_style(true)
            .build();
        let client = Client::from_conf(config);
        client
            .create_bucket()
            .bucket(BUCKET)
            .send()
            .await
            .expect("creating the state bucket");
        S3 {
            client,
            storage,
            faults,
            races,
            _dir: dir,
        }
    }

    async fn object(&self, key: &str) -> Option<Vec<u8>> {
        match self
            .client
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Some(out.body.collect().await.unwrap().to_vec()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => None,
            Err(e) => panic!("GetObject {key}: {e:?}"),
        }
    }
}

impl Remote for S3 {
    fn url(&self, name: &str) -> String {
        format!("s3://{BUCKET}/{name}")
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![("AWS_ENDPOINT_URL_S3".into(), self.storage.endpoint.clone())]
    }

    async fn state(&self, name: &str) -> Option<Value> {
        let bytes = self.object(name).await?;
        Some(serde_json::from_slice(&bytes).expect("the state is JSON"))
    }

    async fn lock(&self, name: &str) -> Option<String> {
        let bytes = self.object(&format!("{name}.lock")).await?;
        let lock: Value = serde_json::from_slice(&bytes).expect("the lock is JSON");
        Some(lock["id"].as_str().expect("the lock has an id").to_string())
    }

    fn stat_prefix(&self) -> &'static str {
        "s3:"
    }

    fn faults(&self) -> Option<&Faults> {
        Some(&self.faults)
    }

    fn call(&self, call: Call, name: &str) -> Option<(String, &'static str)> {
        let object = |method: &str, key: &str| format!("s3:{method} /{BUCKET}/{key}");
        Some(match call {
            Call::LockCreate => (object("PUT", &format!("{name}.lock")), "s3:PutObject"),
            Call::LockHolder => return None,
            Call::StateRead => (object("GET", name), "s3:GetObject"),
            Call::BackupWrite => (object("PUT", &format!("{name}.backup")), "s3:PutObject"),
            Call::StateWrite => (object("PUT", name), "s3:PutObject"),
            Call::LockRead => (object("GET", &format!("{name}.lock")), "s3:GetObject"),
            Call::LockRelease => (object("DELETE", &format!("{name}.lock")), "s3:DeleteObject"),
        })
    }

    /// The launcher replaces the lock right after its next GET.
    async fn race_lock(&self, name: &str, _id: &str, holder: &str) {
        let file = format!("{BUCKET}%2F{name}.lock");
        std::fs::write(self.races.join(file), holder).unwrap();
    }
}

async fn setup() -> (Ministack, S3) {
    let (ms, s3) = tokio::join!(ministack(), S3::new());
    (ms, s3)
}

#[tokio::test]
async fn two_machines_share_one_state() {
    let (ms, s3) = setup().await;
    super::two_machines(&ms, &s3).await;
}

#[tokio::test]
async fn two_applies_at_once_one_is_refused() {
    let (ms, s3) = setup().await;
    super::two_applies_at_once(&ms, &s3).await;
}

#[tokio::test]
async fn killed_apply_leaves_a_lock_that_unlock_frees() {
    let (ms, s3) = setup().await;
    super::killed_apply(&ms, &s3).await;
}

#[tokio::test]
async fn a_run_whose_lock_was_broken_overwrites_nothing() {
    let (ms, s3) = setup().await;
    super::broken_lock(&ms, &s3, false).await;
}

#[tokio::test]
async fn a_run_whose_lock_was_broken_overwrites_no_existing_state() {
    let (ms, s3) = setup().await;
    super::broken_lock(&ms, &s3, true).await;
}

#[tokio::test]
async fn a_lost_reply_is_not_another_run() {
    let (ms, s3) = setup().await;
    super::lost_replies(&ms, &s3).await;
}

#[tokio::test]
async fn throttling_and_5xx_on_each_call_are_retried() {
    let (ms, s3) = setup().await;
    super::transient_faults(&ms, &s3).await;
}

#[tokio::test]
async fn a_call_that_keeps_failing_is_named_and_writes_nothing() {
    let (ms, s3) = setup().await;
    super::failing_calls(&ms, &s3).await;
}

#[tokio::test]
async fn a_lock_taken_by_another_run_is_never_removed() {
    let (ms, s3) = setup().await;
    super::lock_taken_while_released(&ms, &s3).await;
}

#[tokio::test]
async fn unlock_refuses_a_lock_that_changed_under_it() {
    let (ms, s3) = setup().await;
    super::unlock_race(&ms, &s3).await;
}

#[tokio::test]
async fn migrate_a_local_state_to_s3() {
    let (ms, s3) = setup().await;
    super::migrate(&ms, &s3).await;
}

#[tokio::test]
async fn previous_state_is_kept_and_bad_input_is_named() {
    let (ms, s3) = setup().await;
    let team = Team {
        ms: &ms,
        remote: &s3,
    };
    let dir = TestDir::new();
    dir.write("idplan.yaml", &super::spec(1, Some(&s3.url("kept.json"))));
    team.idplan(&dir, &["apply", "--auto-approve"], &[])
        .assert_code(0);
    let state = s3.state("kept.json").await.unwrap();
    let backup: Value =
        serde_json::from_slice(&s3.object("kept.json.backup").await.expect("a backup")).unwrap();
    assert_eq!(backup["lineage"], state["lineage"]);
    assert!(backup["serial"].as_u64() < state["serial"].as_u64());

    dir.write(
        "idplan.yaml",
        &super::spec(1, Some("s3://no-such-bucket/x.json")),
    );
    team.idplan(&dir, &["plan"], &[])
        .assert_code(1)
        .assert_stderr_contains("bucket no-such-bucket does not exist")
        .assert_stderr_contains("aws s3api create-bucket --bucket no-such-bucket");

    // A network failure is retried with backoff, then named.
    let unreachable = team.idplan(
        &dir,
        &["state", "list", "--state", &s3.url("kept.json")],
        &[
            ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1"),
            ("IDPLAN_STATS", "json"),
        ],
    );
    unreachable
        .assert_code(1)
        .assert_stderr_contains("s3://team-state/kept.json: s3:GetObject failed")
        .assert_stderr_contains("Connection refused");
    let stats = unreachable
        .stderr
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap();
    let stats: Value = serde_json::from_str(stats).unwrap();
    assert_eq!(stats["api_calls"]["s3:GetObject"], 5, "retried: {stats}");

    dir.write("idplan.yaml", &super::spec(1, Some("s3://Bad_Bucket")));
    team.idplan(&dir, &["validate"], &[])
        .assert_code(1)
        .assert_stderr_contains("idplan.yaml:2:8: state:")
        .assert_stderr_contains("no object name after the bucket");

    // A typo is not a path: refused, naming the form expected, and nothing written locally.
    dir.write("idplan.yaml", &super::spec(1, Some("s3:/team-state")));
    team.idplan(&dir, &["plan"], &[])
        .assert_code(1)
        .assert_stderr_contains(
            "idplan.yaml:2:8: state: state location `s3:/team-state`: `s3:` is not followed by \
             `//`; expected s3://BUCKET/KEY",
        );
    team.idplan(&dir, &["state", "list", "--state", "gs:/bucket/obj"], &[])
        .assert_code(1)
        .assert_stderr_contains("expected gs://BUCKET/OBJECT");
    assert!(!dir.path().join("s3:").exists() && !dir.path().join("gs:").exists());
}
