//! [`FakeArm`]: a private fake Azure Resource Manager (`tests/support/fake_arm.py`, Python 3
//! standard library only) for one test, what it holds, and `TestDir::idplan_azure`. The
//! constants name the subscription, resource group and cluster the Azure suites seed.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::{Value, json};

use super::peer::{Launch, Peer, http};
use super::{Output, TestDir, run};

pub const SUB: &str = "6f1c2a3b-0000-4000-8000-00000000c0de";
pub const RG: &str = "/subscriptions/6f1c2a3b-0000-4000-8000-00000000c0de/resourceGroups/spaces";
pub const ISSUER: &str = "https://eastus.oic.prod-aks.azure.com/tenant/issuer-guid/";
/// The AKS cluster the Azure specs name.
pub const CLUSTER: &str = "aks-prod";

const TOKEN: &str = "test-token";

/// The ARM id of user-assigned identity `name` in [`RG`].
pub fn identity_id(name: &str) -> String {
    format!("{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}")
}

/// The ARM id of storage account `name` in [`RG`].
pub fn storage_id(name: &str) -> String {
    format!("{RG}/providers/Microsoft.Storage/storageAccounts/{name}")
}

/// A fake ARM (or another of the Python fakes that take `--port PORT [ARGS...]` and answer
/// `/health`) on a free loopback port; stopped by pid (its process group) when dropped.
pub struct FakeArm {
    /// `http://127.0.0.1:<port>`: `IDPLAN_AZURE_ARM_ENDPOINT`.
    pub endpoint: String,
    pub port: u16,
    peer: Peer,
    /// How it was started, to start it again ([`FakeArm::restart`]).
    script: String,
    args: Vec<String>,
}

impl FakeArm {
    #[track_caller]
    pub fn start() -> FakeArm {
        Self::launch("fake_arm.py", &[])
    }

    /// As [`FakeArm::start`], with more arguments (`Faults::args`).
    #[track_caller]
    pub fn start_with(args: &[&str]) -> FakeArm {
        Self::launch("fake_arm.py", args)
    }

    /// Starts `tests/support/<script> --port PORT [ARGS...]`, a fake with `/health`.
    #[track_caller]
    pub(crate) fn launch(script: &str, args: &[&str]) -> FakeArm {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let peer = Self::with_launch(script, &args, |launch| Peer::start(launch));
        FakeArm {
            endpoint: peer.endpoint.clone(),
            port: peer.port,
            peer,
            script: script.to_string(),
            args,
        }
    }

    /// Stops the fake (SIGTERM) and starts it again with the same arguments on the same port;
    /// what it held survives only if it keeps it on disk (`fake_kube.py --data`).
    #[track_caller]
    pub fn restart(&mut self) {
        let (script, args) = (self.script.clone(), self.args.clone());
        Self::with_launch(&script, &args, |launch| self.peer.restart(launch));
    }

    /// Calls `f` with how to start `tests/support/<script> --port PORT [ARGS...]`.
    fn with_launch<T>(script: &str, args: &[String], f: impl FnOnce(&Launch) -> T) -> T {
        let what = format!("tests/support/{script}");
        f(&Launch::python3(script, args.to_vec(), "/health", &what))
    }

    /// One HTTP request to the fake: (status, body as JSON or null). Panics when the fake
    /// does not answer, so that a 404 expected of a live fake is never read off a dead one.
    #[track_caller]
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.request_with_token(method, path, body, TOKEN, "application/json")
    }

    /// One HTTP request with this bearer token and content type; panics as
    /// [`FakeArm::request`] does.
    #[track_caller]
    pub fn request_with_token(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        token: &str,
        content_type: &str,
    ) -> (u16, Value) {
        let authorization = format!("Bearer {token}");
        let headers = [
            ("Authorization", authorization.as_str()),
            ("Content-Type", content_type),
        ];
        let body = body.map(Value::to_string).unwrap_or_default();
        match http(self.port, method, path, &headers, &body) {
            Some((status, body)) => (status, serde_json::from_str(&body).unwrap_or_default()),
            None => panic!(
                "{method} {path}: the fake at {} does not answer",
                self.endpoint
            ),
        }
    }

    /// A test-only admin call (`/admin/...`) that must succeed.
    #[track_caller]
    pub fn admin(&self, path: &str, body: Value) {
        let (status, out) = self.request("POST", path, Some(&body));
        assert_eq!(status, 204, "POST {path}: {status} {out}");
    }

    /// Makes the requests that match fail, a number of times (see `/admin/faults` in
    /// `fake_arm.py`: method, a piece of the path, status, ARM's code and message, times).
    #[track_caller]
    pub fn fault(&self, fault: Value) {
        self.admin("/admin/faults", fault);
    }

    /// Everything the fake holds: identities, fics, assignments, vaults. Panics when the fake
    /// does not answer, so that "it is gone" is never read off a dead fake.
    #[track_caller]
    pub fn state(&self) -> Value {
        let (status, state) = self.request("GET", "/admin/state", None);
        assert_eq!(status, 200, "GET /admin/state: {status} {state}");
        state
    }

    /// Seeds [`CLUSTER`] with the OIDC issuer [`ISSUER`]; `more` adds to (or overrides) its
    /// fields (`"workloadIdentity": false`).
    #[track_caller]
    pub fn seed_cluster(&self, more: Value) {
        let mut cluster = json!({
            "id": format!("{RG}/providers/Microsoft.ContainerService/managedClusters/{CLUSTER}"),
            "issuer": ISSUER,
        });
        for (k, v) in more.as_object().into_iter().flatten() {
            cluster[k] = v.clone();
        }
        self.admin("/admin/clusters", cluster);
    }

    /// Seeds storage account `name`.
    #[track_caller]
    pub fn seed_storage(&self, name: &str) {
        self.admin("/admin/storage", json!({ "id": storage_id(name) }));
    }

    /// Identity `name` as the fake holds it; `None` only when the live fake holds none.
    #[track_caller]
    pub fn identity(&self, name: &str) -> Option<Value> {
        self.state()["identities"]
            .get(identity_id(name).to_lowercase())
            .cloned()
    }

    /// A property (`principalId`, `clientId`) of identity `name`, which must exist.
    #[track_caller]
    pub fn identity_property(&self, name: &str, property: &str) -> String {
        let Some(identity) = self.identity(name) else {
            panic!("identity {name} does not exist");
        };
        let Some(value) = identity["properties"][property].as_str() else {
            panic!("identity {name} has no {property}: {identity}");
        };
        value.to_string()
    }

    /// The subjects of the federated credentials on identity `name`; every one has the
    /// cluster's issuer and the token exchange audience.
    #[track_caller]
    pub fn subjects(&self, name: &str) -> BTreeSet<String> {
        let state = self.state();
        let Some(fics) = state["fics"]
            .get(identity_id(name).to_lowercase())
            .and_then(Value::as_object)
        else {
            return BTreeSet::new();
        };
        let mut subjects = BTreeSet::new();
        for f in fics.values() {
            assert_eq!(f["properties"]["issuer"], ISSUER);
            assert_eq!(
                f["properties"]["audiences"],
                json!(["api://AzureADTokenExchange"])
            );
            subjects.insert(f["properties"]["subject"].as_str().unwrap().to_string());
        }
        subjects
    }

    /// Kills the fake (SIGKILL): it is down for the rest of the test.
    pub fn kill(&mut self) {
        self.peer.kill();
    }

    /// The environment for the idplan binary: the fake's endpoint and a test token.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("IDPLAN_AZURE_ARM_ENDPOINT".into(), self.endpoint.clone()),
            ("IDPLAN_AZURE_ACCESS_TOKEN".into(), TOKEN.into()),
        ]
    }
}

impl TestDir {
    /// Runs the idplan binary in this directory against the fake ARM server, with no AWS or
    /// Azure environment of the caller's.
    pub fn idplan_azure(&self, arm: &FakeArm, args: &[&str]) -> Output {
        self.idplan_azure_with_env(arm, args, &[])
    }

    /// As [`TestDir::idplan_azure`], with more environment variables.
    /// The idplan binary with `args` against the fake ARM server, not started.
    pub fn azure_command(&self, arm: &FakeArm, args: &[&str]) -> Command {
        let mut cmd = self.command_without(args, &["AWS_", "AZURE_", "IDPLAN_AZURE"]);
        cmd.envs(arm.env());
        cmd
    }

    pub fn idplan_azure_with_env(
        &self,
        arm: &FakeArm,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Output {
        let mut cmd = self.command_without(args, &["AWS_", "AZURE_", "IDPLAN_AZURE"]);
        cmd.envs(arm.env());
        cmd.envs(env.iter().copied());
        run(cmd, args)
    }
}
