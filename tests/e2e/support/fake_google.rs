//! [`FakeGoogle`] runs `tests/support/fake_google.py` (Python 3 standard library only) on a
//! free loopback port for one test, and stops it by process group when dropped.

use std::process::Command;

use serde_json::{Value, json};

use super::peer::{Launch, Peer, http};
use super::{Output, TestDir, run};

/// What needs python3, in the hint when it is missing.
const INSTALL_HINT: &str = "the fake Google API server";

pub struct FakeGoogle {
    /// `http://127.0.0.1:<port>`: the base URL of every Google API (`IDPLAN_GCP_ENDPOINT`).
    pub endpoint: String,
    pub port: u16,
    peer: Peer,
}

impl FakeGoogle {
    /// Starts the fake and waits for its health check. Panics, saying how to fix it, when
    /// python3 is missing or the server does not come up.
    #[track_caller]
    pub fn start() -> FakeGoogle {
        FakeGoogle::start_with(&[])
    }

    /// As [`FakeGoogle::start`], with more arguments (`Faults::args`).
    #[track_caller]
    pub fn start_with(args: &[&str]) -> FakeGoogle {
        let args = args.iter().map(|a| a.to_string()).collect();
        let launch = Launch::python3("fake_google.py", args, "/_fake/health", INSTALL_HINT);
        let peer = Peer::start(&launch);
        FakeGoogle {
            endpoint: peer.endpoint.clone(),
            port: peer.port,
            peer,
        }
    }

    /// One HTTP call to the fake; `None` when it cannot be reached.
    fn try_call(&self, method: &str, path: &str, body: Option<&Value>) -> Option<(u16, Value)> {
        let headers = [
            ("Authorization", "Bearer fake-token"),
            ("Content-Type", "application/json"),
        ];
        let body = body.map(Value::to_string).unwrap_or_default();
        let (status, body) = http(self.port, method, path, &headers, &body)?;
        Some((status, serde_json::from_str(&body).unwrap_or(Value::Null)))
    }

    /// A call that must succeed; its answer.
    #[track_caller]
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        match self.try_call(method, path, body) {
            Some((200, v)) => v,
            other => panic!("{method} {path} on the fake: {other:?}"),
        }
    }

    /// A call that may fail: its status and Google's answer.
    #[track_caller]
    pub fn call_status(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        match self.try_call(method, path, body) {
            Some(answer) => answer,
            None => panic!("{method} {path}: the fake cannot be reached"),
        }
    }

    /// Seeds projects, clusters, buckets and secrets (see the script's `/_fake/seed`).
    #[track_caller]
    pub fn seed(&self, seed: Value) {
        self.call("POST", "/_fake/seed", Some(&seed));
    }

    /// The stored policy of `target` (`bucket:<name>`, `project:<id>`,
    /// `secret:projects/<p>/secrets/<s>`, `sa:<email>`), at version 3.
    #[track_caller]
    pub fn policy(&self, target: &str) -> Value {
        self.call("GET", &format!("/_fake/policy?target={target}"), None)
    }

    /// Replaces a policy's bindings, as someone else would: a new etag.
    #[track_caller]
    pub fn set_bindings(&self, target: &str, bindings: Value) {
        self.call(
            "POST",
            &format!("/_fake/policy?target={target}"),
            Some(&json!({ "bindings": bindings })),
        );
    }

    /// The members of `role` in the binding without a condition, sorted.
    #[track_caller]
    pub fn members(&self, target: &str, role: &str) -> Vec<String> {
        let mut out: Vec<String> = self.policy(target)["bindings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["role"] == role && b.get("condition").is_none())
            .flat_map(|b| b["members"].as_array().cloned().unwrap_or_default())
            .filter_map(|m| m.as_str().map(str::to_string))
            .collect();
        out.sort();
        out
    }

    /// Makes the next `count` setIamPolicy calls find the policy changed under them.
    #[track_caller]
    pub fn race(&self, count: u32) {
        self.call("POST", "/_fake/race", Some(&json!({ "count": count })));
    }

    /// Makes the next Google API calls fail with `codes` (429, 503), one each, in order.
    #[track_caller]
    pub fn fail(&self, codes: &[u16]) {
        self.call("POST", "/_fake/fail", Some(&json!({ "codes": codes })));
    }

    /// Takes `permissions` from the caller: the calls that need them answer 403.
    pub fn deny(&self, permissions: &[&str]) {
        self.call(
            "POST",
            "/_fake/deny",
            Some(&json!({ "permissions": permissions })),
        );
    }

    /// A multipart upload (`objects.insert`, `uploadType=multipart`) of `data` as
    /// `bucket/name`, with `query` appended (`&ifGenerationMatch=N`): the status and answer.
    #[track_caller]
    pub fn upload(&self, bucket: &str, name: &str, data: &str, query: &str) -> (u16, Value) {
        let boundary = "fake-test-boundary";
        let metadata = json!({ "name": name, "contentType": "application/json" });
        let body = format!(
            "--{boundary}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n{metadata}\r\n\
             --{boundary}\r\ncontent-type: application/json\r\n\r\n{data}\r\n--{boundary}--\r\n"
        );
        let content_type = format!("multipart/related; boundary={boundary}");
        let headers = [
            ("Authorization", "Bearer fake-token"),
            ("Content-Type", content_type.as_str()),
        ];
        let path = format!("/upload/storage/v1/b/{bucket}/o?uploadType=multipart{query}");
        let (status, body) = http(self.port, "POST", &path, &headers, &body)
            .unwrap_or_else(|| panic!("POST {path}: the fake cannot be reached"));
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// The Cloud Storage object `bucket/name` as text, if there is one.
    #[track_caller]
    pub fn object(&self, bucket: &str, name: &str) -> Option<String> {
        let path = format!("/_fake/object?bucket={bucket}&name={name}");
        match self.call_status("GET", &path, None) {
            (200, v) => Some(v["data"].as_str().unwrap_or_default().to_string()),
            (404, _) => None,
            other => panic!("GET {path} on the fake: {other:?}"),
        }
    }

    /// Right after the next read of the object `bucket/name`, someone else replaces it with
    /// `data` (a new generation): the reader's generation is stale.
    #[track_caller]
    pub fn object_race(&self, bucket: &str, name: &str, data: &str) {
        self.call(
            "POST",
            "/_fake/object-race",
            Some(&json!({ "bucket": bucket, "name": name, "data": data })),
        );
    }

    /// Every Google API call so far, as `METHOD path` (Cloud Storage object calls with their
    /// query: `METHOD path?query`).
    #[track_caller]
    pub fn calls(&self) -> Vec<String> {
        self.call("GET", "/_fake/calls", None)["calls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect()
    }

    /// Kills the fake (SIGKILL): it is down for the rest of the test.
    pub fn kill(&mut self) {
        self.peer.kill();
    }

    /// The environment for idplan: every Google API at the fake, a fixed bearer token.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("IDPLAN_GCP_ENDPOINT", self.endpoint.clone()),
            ("IDPLAN_GCP_ACCESS_TOKEN", "fake-token".to_string()),
        ]
    }
}

impl TestDir {
    /// Runs the idplan binary in this directory against the fake Google APIs (no AWS or
    /// Google credentials of the machine are used).
    pub fn idplan_gcp(&self, fake: &FakeGoogle, args: &[&str]) -> Output {
        self.idplan_gcp_with_env(fake, args, &[])
    }

    /// As [`TestDir::idplan_gcp`], with more environment variables.
    /// The idplan binary with `args` against the fake Google APIs, not started.
    pub fn gcp_command(&self, fake: &FakeGoogle, args: &[&str]) -> Command {
        let mut cmd = self.command_without(args, &["AWS_", "GOOGLE_", "IDPLAN_GCP_"]);
        cmd.envs(fake.env());
        cmd
    }

    pub fn idplan_gcp_with_env(
        &self,
        fake: &FakeGoogle,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Output {
        let mut cmd = self.command_without(args, &["AWS_", "GOOGLE_", "IDPLAN_GCP_"]);
        cmd.envs(fake.env());
        cmd.envs(env.iter().copied());
        run(cmd, args)
    }
}
