//! [`FakeKube`]: a private fake Kubernetes API server (`tests/support/fake_kube.py`) for one
//! test, requiring a bearer token; started and stopped as [`FakeArm`] is.

use serde_json::{Value, json};

use super::FakeArm;

pub const KUBE_TOKEN: &str = "kube-test-token";

/// The fake API server; `.0` talks to it directly (`request_with_token` with [`KUBE_TOKEN`]).
pub struct FakeKube(pub FakeArm);

impl FakeKube {
    #[track_caller]
    pub fn start() -> FakeKube {
        FakeKube(FakeArm::launch("fake_kube.py", &[KUBE_TOKEN]))
    }

    /// Creates or replaces an object (`resource`: controlplanes, serviceaccounts, pods,
    /// replicasets, deployments).
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
        let (status, out) =
            self.0
                .request_with_token("POST", path, Some(&object), KUBE_TOKEN, "application/json");
        assert_eq!(status, 201, "POST {path}: {status} {out}");
        out
    }

    #[track_caller]
    pub fn delete(&self, resource: &str, namespace: &str, name: &str) {
        self.0.admin(
            "/admin/delete",
            json!({"resource": resource, "namespace": namespace, "name": name}),
        );
    }

    /// `{"objects": {resource: {"ns/name": object}}, "patches": [...]}`; panics when the
    /// fake does not answer.
    #[track_caller]
    pub fn state(&self) -> Value {
        self.0.state()
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
