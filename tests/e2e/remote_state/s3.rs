//! The remote state scenarios with the state in S3 (ministack's), and what only S3 shows: the
//! previous state kept as `KEY.backup`, a missing bucket named with the command that makes it,
//! a network failure retried then named, a malformed URL in the spec located.

use aws_sdk_s3::Client;
use serde_json::Value;

use super::{Remote, Team, ministack};
use crate::support::{Ministack, TestDir};

const BUCKET: &str = "team-state";

/// The state's S3: a ministack of its own (`AWS_ENDPOINT_URL_S3`), apart from the spaces'
/// cloud, so that a test can freeze the one without the other.
struct S3 {
    client: Client,
    storage: Ministack,
}

impl S3 {
    async fn new() -> S3 {
        let storage = Ministack::start();
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
        S3 { client, storage }
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

    async fn locked(&self, name: &str) -> bool {
        self.client
            .head_object()
            .bucket(BUCKET)
            .key(format!("{name}.lock"))
            .send()
            .await
            .is_ok()
    }

    fn stat_prefix(&self) -> &'static str {
        "s3:"
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
    super::broken_lock(&ms, &s3).await;
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
}
