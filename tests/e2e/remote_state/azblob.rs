//! The remote state scenarios with the state in Azure Blob Storage (Azurite), reached with
//! the shared key of `AZURE_STORAGE_CONNECTION_STRING`; the lock is a lease on the state blob.

use serde_json::Value;

use super::{Remote, Team, ministack};
use crate::support::azurite::{ACCOUNT, Azurite};
use crate::support::{Ministack, TestDir};

const CONTAINER: &str = "team-state";

struct Blob {
    azurite: Azurite,
}

impl Blob {
    async fn start() -> Blob {
        let azurite = Azurite::start();
        azurite.create_container(CONTAINER).await;
        Blob { azurite }
    }

    async fn get(&self, name: &str) -> Option<Vec<u8>> {
        let answer = self
            .azurite
            .request("GET", &format!("{CONTAINER}/{name}"), &[])
            .await;
        match answer.status {
            200 => Some(answer.body),
            404 => None,
            s => panic!("GET {name}: {s} {}", String::from_utf8_lossy(&answer.body)),
        }
    }
}

impl Remote for Blob {
    fn url(&self, name: &str) -> String {
        format!("azblob://{ACCOUNT}/{CONTAINER}/{name}")
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![(
            "AZURE_STORAGE_CONNECTION_STRING".into(),
            self.azurite.connection_string(),
        )]
    }

    async fn state(&self, name: &str) -> Option<Value> {
        let bytes = self.get(name).await.filter(|b| !b.is_empty())?;
        Some(serde_json::from_slice(&bytes).expect("the state is JSON"))
    }

    /// Leased, with idplan's holder metadata set.
    async fn locked(&self, name: &str) -> bool {
        let answer = self
            .azurite
            .request("HEAD", &format!("{CONTAINER}/{name}"), &[])
            .await;
        let header = |h: &str| answer.headers.get(h).and_then(|v| v.to_str().ok());
        answer.status == 200
            && header("x-ms-lease-state") == Some("leased")
            && header("x-ms-meta-idplanlock").is_some()
    }

    fn stat_prefix(&self) -> &'static str {
        "blob:"
    }
}

async fn setup() -> (Ministack, Blob) {
    (ministack().await, Blob::start().await)
}

#[tokio::test]
async fn two_machines_share_one_state() {
    let (ms, blob) = setup().await;
    super::two_machines(&ms, &blob).await;
}

#[tokio::test]
async fn two_applies_at_once_one_is_refused() {
    let (ms, blob) = setup().await;
    super::two_applies_at_once(&ms, &blob).await;
}

#[tokio::test]
async fn killed_apply_leaves_a_lock_that_unlock_frees() {
    let (ms, blob) = setup().await;
    super::killed_apply(&ms, &blob).await;
}

#[tokio::test]
async fn a_run_whose_lock_was_broken_overwrites_nothing() {
    let (ms, blob) = setup().await;
    super::broken_lock(&ms, &blob).await;
}

#[tokio::test]
async fn migrate_a_local_state_to_azure_blob() {
    let (ms, blob) = setup().await;
    super::migrate(&ms, &blob).await;
}

#[tokio::test]
async fn previous_state_is_kept_and_a_missing_container_is_named() {
    let (ms, blob) = setup().await;
    let team = Team {
        ms: &ms,
        remote: &blob,
    };
    let dir = TestDir::new();
    dir.write("idplan.yaml", &super::spec(1, Some(&blob.url("kept.json"))));
    team.idplan(&dir, &["apply", "--auto-approve"], &[])
        .assert_code(0);
    let state = blob.state("kept.json").await.unwrap();
    let backup: Value =
        serde_json::from_slice(&blob.get("kept.json.backup").await.expect("a backup")).unwrap();
    assert_eq!(backup["lineage"], state["lineage"]);
    assert!(backup["serial"].as_u64() < state["serial"].as_u64());

    let missing = format!("azblob://{ACCOUNT}/no-such-container/x.json");
    dir.write("idplan.yaml", &super::spec(1, Some(&missing)));
    team.idplan(&dir, &["plan"], &[])
        .assert_code(1)
        .assert_stderr_contains("container no-such-container does not exist")
        .assert_stderr_contains("az storage container create --name no-such-container");
}
