//! The remote state scenarios with the state in Azure Blob Storage (Azurite), reached with
//! the shared key of `AZURE_STORAGE_CONNECTION_STRING`; the lock is a lease on the state blob.
//! idplan reaches Azurite through `tests/support/azurite_proxy.py`, which brings the shared
//! faults and a lease race; the tests read Azurite directly.

use base64::Engine;
use serde_json::Value;

use super::{Call, Remote, Team, every_remote_test, ministack, remote_tests};
use crate::support::azurite::{ACCOUNT, Azurite, AzuriteProxy};
use crate::support::{Faults, Ministack, TestDir};

const CONTAINER: &str = "team-state";

struct Blob {
    azurite: Azurite,
    proxy: AzuriteProxy,
    faults: Faults,
    _dir: TestDir,
}

impl Blob {
    async fn start() -> Blob {
        let azurite = Azurite::start();
        azurite.create_container(CONTAINER).await;
        let dir = TestDir::new();
        let faults = Faults::ruled(&dir);
        let proxy = AzuriteProxy::start(&azurite, &faults.args());
        Blob {
            azurite,
            proxy,
            faults,
            _dir: dir,
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
            self.proxy.connection_string(),
        )]
    }

    async fn object(&self, name: &str) -> Option<Vec<u8>> {
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

    /// Leased, with idplan's holder metadata set: the holder's id.
    async fn lock(&self, name: &str) -> Option<String> {
        let answer = self
            .azurite
            .request("HEAD", &format!("{CONTAINER}/{name}"), &[])
            .await;
        match answer.status {
            200 => {}
            404 => return None,
            s => panic!("HEAD {name}: {s}"),
        }
        let header = |h: &str| answer.headers.get(h).and_then(|v| v.to_str().ok());
        if header("x-ms-lease-state") != Some("leased") {
            return None;
        }
        let holder = base64::engine::general_purpose::STANDARD
            .decode(header("x-ms-meta-idplanlock")?)
            .expect("the holder metadata is base64");
        let lock: Value = serde_json::from_slice(&holder).expect("the holder is JSON");
        Some(
            lock["id"]
                .as_str()
                .expect("the holder has an id")
                .to_string(),
        )
    }

    fn stat_prefix(&self) -> &'static str {
        "blob:"
    }

    fn faults(&self) -> Option<&Faults> {
        Some(&self.faults)
    }

    fn call(&self, call: Call, name: &str) -> Option<(String, &'static str)> {
        let blob =
            |method: &str, blob: &str| format!("blob:{method} /{ACCOUNT}/{CONTAINER}/{blob}");
        Some(match call {
            Call::LockCreate => (
                format!("{}?comp=lease acquire", blob("PUT", name)),
                "blob:LeaseBlob",
            ),
            Call::LockHolder => (
                format!("{}?comp=metadata", blob("PUT", name)),
                "blob:SetBlobMetadata",
            ),
            Call::StateRead => (blob("GET", name), "blob:GetBlob"),
            Call::BackupWrite => (blob("PUT", &format!("{name}.backup")), "blob:PutBlob"),
            Call::StateWrite => (blob("PUT", name), "blob:PutBlob"),
            Call::LockRead => return None,
            Call::LockRelease => (
                format!("{}?comp=lease release", blob("PUT", name)),
                "blob:LeaseBlob",
            ),
        })
    }

    /// The proxy breaks the lease and takes it right before the next release.
    async fn race_lock(&self, name: &str, id: &str, holder: &str) {
        self.proxy.lease_race(CONTAINER, name, id, holder);
    }
}

async fn setup() -> (Ministack, Blob) {
    (ministack().await, Blob::start().await)
}

every_remote_test!();

remote_tests! {
    migrate_a_local_state_to_azure_blob => migrate;
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
        serde_json::from_slice(&blob.object("kept.json.backup").await.expect("a backup")).unwrap();
    assert_eq!(backup["lineage"], state["lineage"]);
    assert!(backup["serial"].as_u64() < state["serial"].as_u64());

    let missing = format!("azblob://{ACCOUNT}/no-such-container/x.json");
    dir.write("idplan.yaml", &super::spec(1, Some(&missing)));
    team.idplan(&dir, &["plan"], &[])
        .assert_code(1)
        .assert_stderr_contains("container no-such-container does not exist")
        .assert_stderr_contains("az storage container create --name no-such-container");
}
