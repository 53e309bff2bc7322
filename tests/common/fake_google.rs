//! [`FakeGoogle`] runs `tests/support/fake_google.py` (Python 3 standard library only) on a
//! free loopback port for one test, and stops it by process group when dropped.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Output, TestDir, free_port, remove_unless_panicking, repo_root, signal_group, tail};

const START_TIMEOUT: Duration = Duration::from_secs(20);
const INSTALL_HINT: &str =
    "python3 is needed for the fake Google API server: install it (apt-get install python3)";

pub struct FakeGoogle {
    /// `http://127.0.0.1:<port>`: the base URL of every Google API (`IDPLAN_GCP_ENDPOINT`).
    pub endpoint: String,
    pub port: u16,
    pub log: PathBuf,
    child: Child,
    dir: PathBuf,
}

impl FakeGoogle {
    /// Starts the fake and waits for its health check. Panics, saying how to fix it, when
    /// python3 is missing or the server does not come up.
    #[track_caller]
    pub fn start() -> FakeGoogle {
        let script = repo_root().join("tests/support/fake_google.py");
        let dir = super::unique_temp_dir("idplan-fake-google");
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log = dir.join(format!("fake-google-{port}.log"));
            let out = File::create(&log).expect("creating the fake's log");
            let err = out.try_clone().expect("cloning the log handle");
            let child = Command::new("python3")
                .arg(&script)
                .args(["--port", &port.to_string(), "--exit-with-parent"])
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("{INSTALL_HINT} ({e})"));
            let mut fake = FakeGoogle {
                endpoint: format!("http://127.0.0.1:{port}"),
                port,
                log,
                child,
                dir: dir.clone(),
            };
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if let Ok(Some(status)) = fake.child.try_wait() {
                    last = format!("exited with {status}:\n{}", tail(&fake.log, 20));
                    break;
                }
                if fake.try_call("GET", "/_fake/health", None).is_some() {
                    return fake;
                }
                if Instant::now() >= deadline {
                    last = format!(
                        "not healthy after {START_TIMEOUT:?}:\n{}",
                        tail(&fake.log, 20)
                    );
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            fake.stop();
            std::mem::forget(fake);
        }
        panic!("the fake Google API server did not start: {last}");
    }

    /// One HTTP call to the fake; `None` when it cannot be reached.
    fn try_call(&self, method: &str, path: &str, body: Option<&Value>) -> Option<(u16, Value)> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer test\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split(' ').nth(1)?.parse().ok()?;
        let (_, body) = response.split_once("\r\n\r\n")?;
        Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
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
    pub fn call_status(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.try_call(method, path, body)
            .unwrap_or_else(|| panic!("{method} {path}: the fake cannot be reached"))
    }

    /// Seeds projects, clusters, buckets and secrets (see the script's `/_fake/seed`).
    pub fn seed(&self, seed: Value) {
        self.call("POST", "/_fake/seed", Some(&seed));
    }

    /// The stored policy of `target` (`bucket:<name>`, `project:<id>`,
    /// `secret:projects/<p>/secrets/<s>`, `sa:<email>`), at version 3.
    pub fn policy(&self, target: &str) -> Value {
        self.call("GET", &format!("/_fake/policy?target={target}"), None)
    }

    /// Replaces a policy's bindings, as someone else would: a new etag.
    pub fn set_bindings(&self, target: &str, bindings: Value) {
        self.call(
            "POST",
            &format!("/_fake/policy?target={target}"),
            Some(&json!({ "bindings": bindings })),
        );
    }

    /// The members of `role` in the binding without a condition, sorted.
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
    pub fn race(&self, count: u32) {
        self.call("POST", "/_fake/race", Some(&json!({ "count": count })));
    }

    /// Makes the next Google API calls fail with `codes` (429, 503), one each, in order.
    pub fn fail(&self, codes: &[u16]) {
        self.call("POST", "/_fake/fail", Some(&json!({ "codes": codes })));
    }

    /// Every Google API call so far, as `METHOD path`.
    pub fn calls(&self) -> Vec<String> {
        self.call("GET", "/_fake/calls", None)["calls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect()
    }

    /// The environment for idplan: every Google API at the fake, a fixed bearer token.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("IDPLAN_GCP_ENDPOINT", self.endpoint.clone()),
            ("IDPLAN_GCP_ACCESS_TOKEN", "fake-token".to_string()),
        ]
    }

    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        signal_group("TERM", &format!("-{}", self.child.id()));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        signal_group("KILL", &format!("-{}", self.child.id()));
        let _ = self.child.wait();
    }
}

impl Drop for FakeGoogle {
    fn drop(&mut self) {
        self.stop();
        remove_unless_panicking(&self.dir);
    }
}

impl TestDir {
    /// Runs the idplan binary in this directory against the fake Google APIs (no AWS or
    /// Google credentials of the machine are used).
    pub fn idplan_gcp(&self, fake: &FakeGoogle, args: &[&str]) -> Output {
        let mut cmd = self.command(args);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("AWS_")
                || key.starts_with("GOOGLE_")
                || key.starts_with("IDPLAN_GCP_")
            {
                cmd.env_remove(key.as_ref());
            }
        }
        cmd.envs(fake.env());
        super::run(cmd, args)
    }
}
