//! [`Azurite`]: a private Azurite blob service (Microsoft's Azure Storage emulator, npm
//! `azurite`, installed into `.azurite/` by `scripts/install-test-deps.sh`) for one test, and
//! a small client for it signed with the emulator's published account key.

use std::process::Command;
use std::time::SystemTime;

use idplan::state::azblob::SharedKey;
use reqwest::header::HeaderMap;

use super::peer::{Launch, Peer, http, installed};

const INSTALL_HINT: &str = "Azurite is not installed: run scripts/install-test-deps.sh";
pub const ACCOUNT: &str = "devstoreaccount1";
/// The emulator's well-known key, published in its documentation (not a secret).
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub struct Azurite {
    /// `http://127.0.0.1:<port>/devstoreaccount1`: the account's blob endpoint.
    pub blob_endpoint: String,
    pub port: u16,
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
        let binary = installed(
            "IDPLAN_AZURITE_BLOB",
            ".azurite/node_modules/.bin/azurite-blob",
            INSTALL_HINT,
        );
        let peer = Peer::start(&Launch {
            name: "azurite".into(),
            command: Box::new(|port, dir| {
                let mut cmd = Command::new(&binary);
                cmd.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
                    .arg("--location")
                    .arg(dir)
                    .args(["--skipApiVersionCheck", "--disableTelemetry"]);
                cmd
            }),
            health: "/devstoreaccount1?comp=list",
            // Any answer of the blob service (403 without a signature) says it is up.
            healthy: |status, _| status == 403 || status == 200,
            install_hint: INSTALL_HINT.into(),
        });
        Azurite {
            blob_endpoint: format!("{}/{ACCOUNT}", peer.endpoint),
            port: peer.port,
            // A connection each: Node closes an idle one after 5 s, and a pooled connection
            // closed under the client fails its next request.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
            key: SharedKey::new(ACCOUNT, KEY).unwrap(),
            _peer: peer,
        }
    }

    /// What points idplan at this emulator (`AZURE_STORAGE_CONNECTION_STRING`).
    pub fn connection_string(&self) -> String {
        connection_string(&self.blob_endpoint)
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

fn connection_string(blob_endpoint: &str) -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={blob_endpoint};"
    )
}

/// `tests/support/azurite_proxy.py` in front of an [`Azurite`]: the shared faults
/// (`Faults::args`) on the blob API, and a lease race.
pub struct AzuriteProxy {
    /// `http://127.0.0.1:<port>/devstoreaccount1`: the account's blob endpoint, proxied.
    pub blob_endpoint: String,
    port: u16,
    _peer: Peer,
}

impl AzuriteProxy {
    #[track_caller]
    pub fn start(azurite: &Azurite, args: &[&str]) -> AzuriteProxy {
        let mut all = vec!["--upstream".to_string(), azurite.port.to_string()];
        all.extend(args.iter().map(|a| a.to_string()));
        let launch = Launch::python3(
            "azurite_proxy.py",
            all,
            "/_proxy/health",
            "the Azurite proxy",
        );
        let peer = Peer::start(&launch);
        AzuriteProxy {
            blob_endpoint: format!("{}/{ACCOUNT}", peer.endpoint),
            port: peer.port,
            _peer: peer,
        }
    }

    /// The connection string through the proxy.
    pub fn connection_string(&self) -> String {
        connection_string(&self.blob_endpoint)
    }

    /// Right before the next lease release of `container/blob`, another run breaks the lease
    /// and takes it with the id `lease`, its holder metadata `holder`.
    #[track_caller]
    pub fn lease_race(&self, container: &str, blob: &str, lease: &str, holder: &str) {
        let body = serde_json::json!({
            "blob": format!("/{ACCOUNT}/{container}/{blob}"),
            "lease": lease,
            "holder": holder,
        });
        let answer = http(
            self.port,
            "POST",
            "/_proxy/lease-race",
            &[("Content-Type", "application/json")],
            &body.to_string(),
        );
        assert!(
            matches!(answer, Some((200, _))),
            "arming the lease race: {answer:?}"
        );
    }
}
