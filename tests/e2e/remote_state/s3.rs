//! The remote state scenarios with the state in S3 (ministack's, with the launcher's S3 faults
//! and object race), and what only S3 shows: the previous state kept as `KEY.backup`, a
//! missing bucket named with the command that makes it, a network failure retried then named,
//! a malformed URL in the spec located.

use aws_sdk_s3::Client;
use serde_json::Value;

use super::{Call, Remote, Team, every_remote_test, ministack, remote_tests};
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
}

impl Remote for S3 {
    fn url(&self, name: &str) -> String {
        format!("s3://{BUCKET}/{name}")
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![("AWS_ENDPOINT_URL_S3".into(), self.storage.endpoint.clone())]
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

every_remote_test!();

remote_tests! {
    migrate_a_local_state_to_s3 => migrate;
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
