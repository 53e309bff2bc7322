//! [`FakeKube`]: a private fake Kubernetes API server (`tests/support/fake_kube.py`) for one
//! test, requiring a bearer token; started and stopped as [`FakeArm`] is. It keeps its objects
//! in a data file of its own, so that [`FakeKube::restart`] brings back the same objects on the
//! same port, and serves watches: the helpers here drive what a watcher meets (changes through
//! the API, closed streams, a compacted history, a restart) and wait on the fake's own counts.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{FakeArm, remove_unless_panicking, unique_temp_dir};

pub const KUBE_TOKEN: &str = "kube-test-token";
/// Where the control planes live in the API.
pub const CONTROL_PLANES: &str = "/apis/spaces.upbound.io/v1beta1";
/// How long [`FakeKube::wait`] waits for a condition.
const WAIT: Duration = Duration::from_secs(30);

/// The fake API server; `.0` talks to it directly (`request_with_token` with [`KUBE_TOKEN`]).
pub struct FakeKube(
    pub FakeArm,
    #[allow(dead_code, reason = "held for its Drop, which removes the data file")] DataDir,
);

/// The directory of the fake's data file, removed (unless the test failed) when dropped.
struct DataDir(PathBuf);

impl Drop for DataDir {
    fn drop(&mut self) {
        remove_unless_panicking(&self.0);
    }
}

impl FakeKube {
    #[track_caller]
    pub fn start() -> FakeKube {
        Self::start_with(&[])
    }

    /// As [`FakeKube::start`], with more arguments of `fake_kube.py`: `--history N` (events
    /// kept for watches), `--bookmark-interval SECONDS`.
    #[track_caller]
    pub fn start_with(args: &[&str]) -> FakeKube {
        let dir = unique_temp_dir("idplan-fake-kube-data");
        let data = dir.join("objects.jsonl");
        let data = data.to_str().expect("a UTF-8 temp path");
        let mut all = vec![KUBE_TOKEN, "--data", data];
        all.extend_from_slice(args);
        FakeKube(FakeArm::launch("fake_kube.py", &all), DataDir(dir))
    }

    /// Stops the server (SIGTERM: every open watch ends cleanly, as a real API server drains;
    /// call `.0.kill()` first for a crash, whose streams break off) and starts it again on
    /// the same port: same objects, the version counter goes on (one past where it was, as a
    /// restarted API server's own writes move it), an empty watch history, and empty request
    /// and watch logs.
    #[track_caller]
    pub fn restart(&mut self) {
        self.0.restart();
    }

    /// Creates or replaces an object (`resource`: namespaces, controlplanes, serviceaccounts,
    /// pods, replicasets, deployments, leases) as it is given (status included): an ADDED or
    /// MODIFIED event to the watches.
    #[track_caller]
    pub fn put(&self, resource: &str, object: Value) {
        self.0.admin(
            "/admin/objects",
            json!({"resource": resource, "object": object}),
        );
    }

    /// Creates an object through the API as `kubectl create` or Helm does: a POST to
    /// `path` (`/api/v1/namespaces`, `/api/v1/namespaces/<ns>/serviceaccounts`), which must
    /// answer 201; the object as created.
    #[track_caller]
    pub fn create(&self, path: &str, object: Value) -> Value {
        let (status, out) = self.api("POST", path, Some(&object));
        assert_eq!(status, 201, "POST {path}: {status} {out}");
        out
    }

    /// In namespace `ns`, for each service account of `accounts`: the account, a deployment
    /// running as it, its replica set and one running pod, started long before any credential
    /// (what a component's pods are when its control plane was just created).
    #[track_caller]
    pub fn put_workloads(&self, ns: &str, accounts: &[&str]) {
        let owner = |kind: &str, name: &str| {
            json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u",
                    "controller": true}])
        };
        for sa in accounts {
            self.put(
                "serviceaccounts",
                json!({"metadata": {"name": sa, "namespace": ns}}),
            );
            let labels = json!({"app": sa});
            let template = json!({"metadata": {"labels": labels},
                "spec": {"serviceAccountName": sa, "containers": [{"name": "c", "image": "x"}]}});
            self.put(
                "deployments",
                json!({"metadata": {"name": sa, "namespace": ns},
                       "spec": {"selector": {"matchLabels": labels}, "template": template}}),
            );
            let rs = format!("{sa}-5d8f");
            self.put(
                "replicasets",
                json!({"metadata": {"name": rs, "namespace": ns,
                                    "ownerReferences": owner("Deployment", sa)},
                       "spec": {"selector": {"matchLabels": labels}, "template": template}}),
            );
            self.put(
                "pods",
                json!({"metadata": {"name": format!("{rs}-x1"), "namespace": ns,
                                    "labels": {"app": sa},
                                    "ownerReferences": owner("ReplicaSet", &rs)},
                       "spec": {"serviceAccountName": sa, "containers": [{"name": "c", "image": "x"}]},
                       "status": {"phase": "Running", "startTime": "2026-01-01T00:00:00Z"}}),
            );
        }
    }

    /// Deletes an object whatever its finalizers (a DELETED event; nothing when it is missing).
    #[track_caller]
    pub fn delete(&self, resource: &str, namespace: &str, name: &str) {
        self.0.admin(
            "/admin/delete",
            json!({"resource": resource, "namespace": namespace, "name": name}),
        );
    }

    /// One API request with the token: (status, body as JSON).
    #[track_caller]
    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.0
            .request_with_token(method, path, body, KUBE_TOKEN, "application/json")
    }

    /// Creates namespace `name` unless it exists (objects are created through the API only
    /// into a namespace that exists, as on a real server).
    #[track_caller]
    pub fn ensure_namespace(&self, name: &str) {
        let (status, out) = self.api("GET", &format!("/api/v1/namespaces/{name}"), None);
        match status {
            200 => {}
            404 => {
                self.create("/api/v1/namespaces", json!({"metadata": {"name": name}}));
            }
            _ => panic!("GET namespace {name}: {status} {out}"),
        }
    }

    /// Creates control plane `namespace/name` through the API as Spaces does: a POST (the
    /// server drops any status: control planes have a status subresource), then, with an ID,
    /// a PUT of its status, a second event. The object as it ends.
    #[track_caller]
    pub fn create_control_plane(&self, namespace: &str, name: &str, id: Option<&str>) -> Value {
        self.ensure_namespace(namespace);
        let created = self.create(
            &format!("{CONTROL_PLANES}/namespaces/{namespace}/controlplanes"),
            json!({"apiVersion": "spaces.upbound.io/v1beta1", "kind": "ControlPlane",
                   "metadata": {"name": name, "namespace": namespace}, "spec": {}}),
        );
        match id {
            Some(id) => self.set_control_plane_id(namespace, name, Some(id)),
            None => created,
        }
    }

    /// Sets (or with `None` removes) `status.controlPlaneID` of control plane
    /// `namespace/name` with a PUT of its status, as the Spaces controller does when the
    /// control plane gets its host namespace. The object as stored.
    #[track_caller]
    pub fn set_control_plane_id(&self, namespace: &str, name: &str, id: Option<&str>) -> Value {
        let path = format!("{CONTROL_PLANES}/namespaces/{namespace}/controlplanes/{name}");
        let mut cp = self.control_plane(namespace, name);
        match id {
            Some(id) => cp["status"]["controlPlaneID"] = json!(id),
            None => {
                if let Some(status) = cp.get_mut("status").and_then(Value::as_object_mut) {
                    status.remove("controlPlaneID");
                }
            }
        }
        let (status, out) = self.api("PUT", &format!("{path}/status"), Some(&cp));
        assert_eq!(status, 200, "PUT {path}/status: {status} {out}");
        out
    }

    /// Changes control plane `namespace/name` with `change` and PUTs it back with the version
    /// it was read at (its status is the status subresource's: a change to it is dropped).
    #[track_caller]
    pub fn update_control_plane(
        &self,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) -> Value {
        let path = format!("{CONTROL_PLANES}/namespaces/{namespace}/controlplanes/{name}");
        let mut cp = self.control_plane(namespace, name);
        change(&mut cp);
        let (status, out) = self.api("PUT", &path, Some(&cp));
        assert_eq!(status, 200, "PUT {path}: {status} {out}");
        out
    }

    /// Deletes control plane `namespace/name` through the API (gone at once unless it has
    /// finalizers).
    #[track_caller]
    pub fn delete_control_plane(&self, namespace: &str, name: &str) {
        let path = format!("{CONTROL_PLANES}/namespaces/{namespace}/controlplanes/{name}");
        let (status, out) = self.api("DELETE", &path, None);
        assert_eq!(status, 200, "DELETE {path}: {status} {out}");
    }

    /// Control plane `namespace/name` as the API serves it; it must exist.
    #[track_caller]
    pub fn control_plane(&self, namespace: &str, name: &str) -> Value {
        let path = format!("{CONTROL_PLANES}/namespaces/{namespace}/controlplanes/{name}");
        let (status, out) = self.api("GET", &path, None);
        assert_eq!(status, 200, "GET {path}: {status} {out}");
        out
    }

    /// Ends every open watch stream now, cleanly (the client then watches again from the last
    /// version it saw).
    #[track_caller]
    pub fn close_watches(&self) {
        self.0.admin("/admin/close-watches", json!({}));
    }

    /// Ends every open watch stream and holds new watch requests unanswered until
    /// [`FakeKube::release_watches`], as a partition between a watcher and its server would:
    /// the test changes objects meanwhile ([`FakeKube::wait`] `held=1` first).
    #[track_caller]
    pub fn hold_watches(&self) {
        self.0.admin("/admin/hold-watches", json!({}));
    }

    #[track_caller]
    pub fn release_watches(&self) {
        self.0.admin("/admin/release-watches", json!({}));
    }

    /// Drops the watch history, as etcd's compaction does: a watch (or a continued list) from
    /// an earlier version gets 410 Expired, and the client must list again.
    #[track_caller]
    pub fn compact(&self) {
        self.0.admin("/admin/compact", json!({}));
    }

    /// Seconds between the bookmarks of a watch that asks for them (1 at start).
    #[track_caller]
    pub fn set_bookmark_interval(&self, seconds: f64) {
        self.0
            .admin("/admin/config", json!({ "bookmarkInterval": seconds }));
    }

    /// `{"objects": {resource: {"ns/name": object}}, "patches": [...], "requests": [...],
    /// "log": [...], "watches": [...], "version": N, "since": N}`; panics when the fake does
    /// not answer.
    #[track_caller]
    pub fn state(&self) -> Value {
        self.0.state()
    }

    /// Every API request the fake served since it (re)started, as "METHOD /path" (a watch as
    /// "GET /path?watch").
    #[track_caller]
    pub fn requests(&self) -> Vec<String> {
        strings(&self.state()["requests"])
    }

    /// Every watch request since it (re)started: `path`, `query`, `resourceVersion` (asked),
    /// `events` and `bookmarks` sent, `lastResourceVersion` sent, `end` ("timeout", "closed",
    /// "client", "expired", "error"; null while open).
    #[track_caller]
    pub fn watches(&self) -> Vec<Value> {
        self.state()["watches"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The version counter: the resourceVersion of the last write.
    #[track_caller]
    pub fn version(&self) -> u64 {
        self.state()["version"]
            .as_u64()
            .expect("the fake's version")
    }

    /// The objects of `resource` by "namespace/name" ("name" when cluster-scoped).
    #[track_caller]
    pub fn objects(&self, resource: &str) -> BTreeMap<String, Value> {
        self.state()["objects"][resource]
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Lease `namespace/name` as the fake holds it.
    #[track_caller]
    pub fn lease(&self, namespace: &str, name: &str) -> Option<Value> {
        self.objects("leases")
            .remove(&format!("{namespace}/{name}"))
    }

    /// Blocks until the fake's counts meet `conditions`, a query of `/admin/wait`: `open=1`
    /// (exactly one watch stream open), `held=1`, `watches=3` (at least three watch requests),
    /// `requests=N`, `bookmarks=N`, `version=N`, joined with `&`. Panics with the counts after
    /// 30 s. The fake answers when its state changes: no polling interval.
    #[track_caller]
    pub fn wait(&self, conditions: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            // The fake waits at most 5 s per call, within the client's read timeout.
            let path = format!("/admin/wait?{conditions}&timeout=5");
            let (status, counts) = self.0.request("GET", &path, None);
            match status {
                200 => return counts,
                408 if Instant::now() < deadline => continue,
                _ => panic!("waited {WAIT:?} for {conditions}: {status} {counts}"),
            }
        }
    }

    /// Blocks until `done` holds of the fake, checking it again after each write the fake
    /// takes (a lease changing hands, a deployment patched by the binary under test); panics
    /// naming `what` after 30 s.
    #[track_caller]
    pub fn wait_until(&self, what: &str, done: impl Fn(&FakeKube) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let version = self.version();
            if done(self) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited {WAIT:?} for {what}; the fake holds: {}",
                self.state()["objects"]
            );
            let next = version + 1;
            let path = format!("/admin/wait?version={next}&timeout=5");
            let (status, counts) = self.0.request("GET", &path, None);
            assert!(
                status == 200 || status == 408,
                "GET {path}: {status} {counts}"
            );
        }
    }

    /// Blocks until the fake served `count` requests equal to `request` ("GET /path", a watch
    /// "GET /path?watch") since it (re)started.
    #[track_caller]
    pub fn wait_requests(&self, request: &str, count: usize) {
        self.wait(&format!(
            "request={}&count={count}",
            request.replace(' ', "%20").replace('?', "%3F")
        ));
    }

    /// One watch request read to its end (ask for `timeoutSeconds`): checks that it is a
    /// chunked `application/json` stream and returns its events, one JSON object a line.
    #[track_caller]
    pub fn watch_events(&self, path: &str) -> Vec<Value> {
        let (status, headers, body) = get_raw(self.0.port, path);
        assert_eq!(status, 200, "GET {path}: {status} {body}");
        let lower = headers.to_ascii_lowercase();
        assert!(
            lower.contains("transfer-encoding: chunked")
                && lower.contains("content-type: application/json"),
            "GET {path}: not a chunked JSON stream:\n{headers}"
        );
        let body = dechunk(&body).unwrap_or_else(|| panic!("GET {path}: bad chunks: {body:?}"));
        body.lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("GET {path}: a line that is not JSON ({e}): {line}"))
            })
            .collect()
    }

    /// A kubeconfig whose context `context` points at the fake over plain HTTP.
    pub fn kubeconfig(&self, context: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n  - name: fake\n    cluster:\n      \
             server: {}\ncontexts:\n  - name: {context}\n    context:\n      cluster: fake\n      \
             user: tester\ncurrent-context: {context}\nusers:\n  - name: tester\n    user:\n      \
             token: {KUBE_TOKEN}\n",
            self.0.endpoint
        )
    }
}

fn strings(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_string))
        .collect()
}

/// A GET with the token on a connection of its own, read to the end: status, headers, the
/// body as sent (still chunked).
#[track_caller]
fn get_raw(port: u16, path: &str) -> (u16, String, String) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("GET {path}: connecting to the fake: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a read timeout");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Authorization: Bearer {KUBE_TOKEN}\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .unwrap_or_else(|e| panic!("GET {path}: reading the answer: {e}"));
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("GET {path}: not HTTP: {response}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: no status: {head}"));
    (status, head.to_string(), body.to_string())
}

/// The payload of a chunked body that ends with its last (empty) chunk; `None` when it is not
/// one.
fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return (rest == "\r\n").then_some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size..)?.strip_prefix("\r\n")?;
    }
}
