//! [`Azurite`]: a private Azurite blob service (Microsoft's Azure Storage emulator, npm
//! `azurite`, installed into `.azurite/` by `scripts/install-test-deps.sh`) for one test, and
//! a small client for it signed with the emulator's published account key.

use std::path::PathBuf;
use std::process::Command;
use std::time::SystemTime;

use idplan::state::azblob::SharedKey;
use reqwest::header::HeaderMap;

use super::peer::{Launch, Peer};
use super::repo_root;

const INSTALL_HINT: &str = "Azurite is not installed: run scripts/install-test-deps.sh";
pub const ACCOUNT: &str = "devstoreaccount1";
/// The emulator's well-known key, published in its documentation (not a secret).
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub struct Azurite {
    /// `http://127.0.0.1:<port>/devstoreaccount1`: the account's blob endpoint.
    pub blob_endpoint: String,
    http: reqwest::Client,
    key: SharedKey,
    _peer: Peer,
}

/// One answer of the blob service.
pub struct Blob {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Azurite {
    #[track_caller]
    pub fn start() -> Azurite {
        let binary = match std::env::var_os("IDPLAN_AZURITE_BLOB") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => repo_root().join(".azurite/node_modules/.bin/azurite-blob"),
        };
        if !binary.exists() {
            panic!("{INSTALL_HINT} ({} does not exist)", binary.display());
        }
        let command = |port: u16, dir: &std::path::Path| {
            let mut cmd = Command::new(&binary);
            cmd.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
                .arg("--location")
                .arg(dir)
                .args(["--skipApiVersionCheck", "--disableTelemetry"]);
            cmd
        };
        let peer = Peer::start(&Launch {
            name: "azurite",
            command: &command,
            health: "/devstoreaccount1?comp=list",
            // Any answer of the blob service (403 without a signature) says it is up.
            healthy: |status, _| status == 403 || status == 200,
            install_hint: INSTALL_HINT,
        });
        Azurite {
            blob_endpoint: format!("{}/{ACCOUNT}", peer.endpoint),
            http: reqwest::Client::new(),
            key: SharedKey::new(ACCOUNT, KEY).unwrap(),
            _peer: peer,
        }
    }

    /// The connection string idplan reads from `AZURE_STORAGE_CONNECTION_STRING`.
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={};",
            self.blob_endpoint
        )
    }

    /// A signed request to `path` (below the account) of the blob service.
    pub async fn request(&self, method: &str, path: &str, query: &[(&str, &str)]) -> Blob {
        let url = reqwest::Url::parse(&format!("{}/{path}", self.blob_endpoint)).unwrap();
        let headers = vec![
            ("x-ms-version".to_string(), "2021-08-06".to_string()),
            (
                "x-ms-date".to_string(),
                httpdate::fmt_http_date(SystemTime::now()),
            ),
        ];
        let authorization = self
            .key
            .authorization(method, url.path(), query, &headers, 0);
        let mut request = self
            .http
            .request(method.parse().unwrap(), url)
            .query(query)
            .header("authorization", authorization);
        for (k, v) in &headers {
            request = request.header(k, v);
        }
        let response = request.send().await.expect("Azurite answers");
        Blob {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.bytes().await.unwrap().to_vec(),
        }
    }

    pub async fn create_container(&self, name: &str) {
        let answer = self.request("PUT", name, &[("restype", "container")]).await;
        assert_eq!(
            answer.status,
            201,
            "creating container {name}: {}",
            String::from_utf8_lossy(&answer.body)
        );
    }
}
