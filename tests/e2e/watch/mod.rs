//! `idplan watch` end to end through the binary: a space whose control planes are discovered
//! on the project's fake Kubernetes API server (watches with resource versions, bookmarks, 410
//! Gone, leases), its cloud on the cloud's peer, the state remote (a lock that can be seen).
//! The same scenarios run for every cloud ([`Cloud`]); they assert on what the cloud, the
//! state storage and the cluster ended up holding, and wait on the watcher's log lines (read
//! from its stderr as they come) or the fake's own blocking waits, never on the clock.
//!
//! - [`serves_new_control_planes`]: a control plane created is served, its stale deployments
//!   restarted, within the goal; a burst of 50 becomes a few batches, all served; a deleted
//!   one is reported as withheld and nothing is deleted; the API server restarting, and a
//!   watch that lost its place (410), miss nothing; SIGTERM exits 0 with no lock left.
//! - [`faults_and_a_held_lock`]: a fifth of the cloud's calls failing, every control plane is
//!   served once; a CI run holding the lock makes the watcher wait, then serve.
//! - [`two_watchers_one_acts`]: leader election on a Lease; the standby takes over when the
//!   leader is killed.

mod aws;
mod azure;
mod gcp;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::watcher::{PATIENCE, Watcher, in_batch};
use crate::support::{FakeKube, Faults, Output, TestDir, signal};

/// The space's name in every spec here.
const SPACE: &str = "prod";
/// The components' service accounts: each host namespace runs one deployment per component.
const ACCOUNTS: [&str; 3] = ["mxp-controller", "vector", "external-secrets-controller"];

/// A cloud's peers for these scenarios: the space's cloud and the state's storage.
pub trait Cloud: Sized {
    /// Whether a new control plane's pods must restart to get its credentials (what the
    /// cloud injects when a pod starts); when not, the watcher restarts nothing.
    const RESTARTS: bool;
    /// How many control planes a burst creates: 50, or what the space may still take under
    /// the cloud's limits.
    const BURST: usize = 50;
    /// The per-control-plane write as the peer describes it (a Python regular expression
    /// that is also a piece of the description), whose reply the faulted scenario loses.
    const WRITE: &'static str;

    /// Starts the peers with `faults` ([`Faults::args`]), seeded with what the spec names.
    fn start(faults: &[&str]) -> Self;
    /// The cloud block and components of the space (YAML lines under `  - name: prod`).
    fn space(&self) -> String;
    /// The state location.
    fn state(&self) -> String;
    /// The idplan binary with `args` in `dir`, pointed at the peers.
    fn command(&self, dir: &TestDir, args: &[&str]) -> Command;
    /// The credentials the cloud holds for host namespace `ns`, one per component (so 3
    /// when served, more if a write was duplicated).
    fn credentials(&self, ns: &str) -> usize;
    /// Whether the state's lock is held.
    fn locked(&self) -> bool;
}

/// The host namespace of control plane `id`.
fn host(id: &str) -> String {
    format!("mxp-{id}-system")
}

/// The spec: one space discovering its control planes in the fake's cluster.
fn spec<C: Cloud>(cloud: &C, dir: &TestDir, kube: &FakeKube) -> String {
    let kubeconfig = dir.write("kubeconfig", &kube.kubeconfig("space"));
    format!(
        "version: 1\nstate: {}\nspaces:\n  - name: {SPACE}\n    controlPlanes:\n      discover:\n        \
         context: space\n        kubeconfig: {}\n{}",
        cloud.state(),
        kubeconfig.display(),
        cloud.space()
    )
}

/// A world: the cloud's peers (a fifth of their calls failing, off until turned on), the
/// cluster, the spec, and a first reviewed apply with control plane `first`.
struct World<C: Cloud> {
    cloud: C,
    faults: Faults,
    kube: FakeKube,
    dir: TestDir,
}

impl<C: Cloud> World<C> {
    fn new() -> World<C> {
        let dir = TestDir::new();
        let faults = Faults::rate(&dir, 0.2, 7);
        let cloud = C::start(&faults.args());
        let kube = FakeKube::start();
        dir.write("idplan.yaml", &spec(&cloud, &dir, &kube));
        let world = World {
            cloud,
            faults,
            kube,
            dir,
        };
        world.control_plane("first", true);
        world.run(&["apply", "--auto-approve"]).assert_code(0);
        assert_eq!(world.cloud.credentials(&host("first")), 3);
        world
    }

    fn run(&self, args: &[&str]) -> Output {
        crate::support::run(self.cloud.command(&self.dir, args), args)
    }

    /// Creates control plane `team/<id>` with its ID; with `workloads`, its host namespace
    /// runs the components' deployments, their pods started long before any credential.
    fn control_plane(&self, id: &str, workloads: bool) {
        if workloads {
            self.kube.put_workloads(&host(id), &ACCOUNTS);
        }
        self.kube.create_control_plane("team", id, Some(id));
    }

    /// The deployments of `ns` that were restarted, with when (`kubectl rollout restart`'s
    /// annotation).
    fn restarted(&self, ns: &str) -> BTreeMap<String, Value> {
        self.kube
            .objects("deployments")
            .into_iter()
            .filter(|(key, _)| key.starts_with(&format!("{ns}/")))
            .filter_map(|(key, d)| {
                let at = &d["spec"]["template"]["metadata"]["annotations"]
                    ["kubectl.kubernetes.io/restartedAt"];
                Some((key, at.as_str().map(|_| at.clone())?))
            })
            .collect()
    }

    /// The deployments of `ns` the cloud's credentials make stale once they are created.
    fn stale(&self, ns: &str) -> BTreeSet<String> {
        match C::RESTARTS {
            true => ACCOUNTS.iter().map(|sa| format!("{ns}/{sa}")).collect(),
            false => BTreeSet::new(),
        }
    }

    fn watch(&self, extra: &[&str]) -> Watcher {
        let mut args = vec![
            "watch",
            "--log-format",
            "json",
            "--listen",
            "127.0.0.1:0",
            "--lock-timeout",
            "1s",
        ];
        args.extend_from_slice(extra);
        Watcher::spawn(self.cloud.command(&self.dir, &args))
    }
}

/// The batches that held any of `namespaces` (their "reconciling" lines).
fn batches_with(watcher: &Watcher, namespaces: &[String]) -> usize {
    watcher
        .events("reconciling")
        .iter()
        .filter(|l| namespaces.iter().any(|ns| in_batch(l, ns)))
        .count()
}

pub fn serves_new_control_planes<C: Cloud>() {
    let mut world = World::<C>::new();
    let cloud = &world.cloud;
    let mut watcher = world.watch(&["--debounce", "1s"]);
    // At start, a pass over every control plane: the first one's pods predate the
    // credentials the reviewed apply made, so they are restarted.
    watcher.wait_event("reconciled", "every control plane");
    let first = world.restarted(&host("first"));
    let keys: BTreeSet<String> = first.keys().cloned().collect();
    assert_eq!(keys, world.stale(&host("first")));
    assert_eq!(watcher.get("/readyz").0, 200);
    assert_eq!(watcher.get("/healthz").0, 200);
    assert_eq!(watcher.metric("idplan_leader"), 1.0);

    // A control plane created, its pods running since before any credential.
    let created = Instant::now();
    world.control_plane("alpha", true);
    let ns = host("alpha");
    watcher.wait_batch("reconciled", &ns);
    let stale = world.stale(&ns);
    for deployment in &stale {
        watcher.wait_event("restarted", deployment);
    }
    let took = created.elapsed();
    assert!(took < Duration::from_secs(30), "served after {took:?}");
    assert_eq!(cloud.credentials(&ns), 3, "{}", watcher.log());
    let keys: BTreeSet<String> = world.restarted(&ns).keys().cloned().collect();
    assert_eq!(keys, stale);
    assert_eq!(world.restarted(&host("first")), first, "restarted once");

    // A burst: a few batches, every one served.
    let burst: Vec<String> = (0..C::BURST).map(|i| format!("burst{i:02}")).collect();
    for id in &burst {
        world.control_plane(id, false);
    }
    let namespaces: Vec<String> = burst.iter().map(|id| host(id)).collect();
    for ns in &namespaces {
        watcher.wait_batch("reconciled", ns);
    }
    for ns in &namespaces {
        assert_eq!(cloud.credentials(ns), 3, "{ns}");
    }
    let batches = batches_with(&watcher, &namespaces);
    assert!(
        batches <= 3,
        "{batches} batches for a burst of {}",
        burst.len()
    );

    // A control plane deleted: reported, nothing deleted.
    world.kube.delete_control_plane("team", "alpha");
    watcher.wait_event("withheld", &format!("(host namespace {ns}) is gone"));
    assert_eq!(cloud.credentials(&ns), 3, "nothing is deleted");
    assert!(watcher.metric("idplan_changes_withheld{space=\"prod\"}") >= 3.0);

    // The API server restarts: the watcher lists again and misses nothing.
    world.kube.restart();
    world.control_plane("after-restart", false);
    watcher.wait_batch("reconciled", &host("after-restart"));
    // A watch that lost its place (the history compacted while it was away): 410, a list.
    world.kube.hold_watches();
    world.kube.wait("held=1");
    world.control_plane("while-away", false);
    world.kube.compact();
    world.kube.release_watches();
    watcher.wait_batch("reconciled", &host("while-away"));
    for id in ["after-restart", "while-away"] {
        assert_eq!(cloud.credentials(&host(id)), 3, "{id}");
    }
    assert!(
        world.kube.watches().iter().any(|w| w["end"] == "expired"),
        "the watch from a compacted version was answered 410"
    );
    assert!(watcher.metric("idplan_reconciles_total{outcome=\"success\"}") >= 4.0);
    assert_eq!(
        watcher.metric("idplan_reconciles_total{outcome=\"error\"}"),
        0.0,
        "{}",
        watcher.log()
    );

    // SIGTERM: exit 0 within 10 s, no lock left.
    let (code, took) = watcher.stop("TERM");
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(10), "stopped after {took:?}");
    assert!(!cloud.locked(), "the state lock is released");
}

pub fn faults_and_a_held_lock<C: Cloud>() {
    let world = World::<C>::new();
    let cloud = &world.cloud;
    let watcher = world.watch(&["--debounce", "1s"]);
    watcher.wait_event("reconciled", "every control plane");

    // A fifth of the cloud's calls failing: every control plane served, exactly once.
    world.faults.on();
    let ids: Vec<String> = (0..C::BURST.min(20))
        .map(|i| format!("faulty{i:02}"))
        .collect();
    for id in &ids {
        world.control_plane(id, false);
    }
    for id in &ids {
        watcher.wait_batch("reconciled", &host(id));
    }
    // Then a lost reply on every per-control-plane write: found there on the retry.
    world.faults.each_once(C::WRITE, "lost");
    let lost = ["lost-reply0".to_string(), "lost-reply1".to_string()];
    for id in &lost {
        world.control_plane(id, false);
    }
    for id in &lost {
        watcher.wait_batch("reconciled", &host(id));
    }
    world.faults.off();
    for id in ids.iter().chain(&lost) {
        assert_eq!(cloud.credentials(&host(id)), 3, "{id}: {}", watcher.log());
    }
    world.faults.assert_all_fired(C::WRITE);

    // A CI run holds the lock: the watcher waits, then serves.
    let mut ci = cloud.command(&world.dir, &["plan"]);
    ci.stdout(Stdio::null()).stderr(Stdio::null());
    let mut ci = ci.spawn().expect("starting the CI plan");
    let deadline = Instant::now() + PATIENCE;
    while !cloud.locked() {
        assert!(Instant::now() < deadline, "the CI run never took the lock");
        std::thread::yield_now();
    }
    signal(&ci, "STOP");
    world.control_plane("behind-lock", false);
    watcher.wait_batch("error", &host("behind-lock"));
    assert_eq!(
        cloud.credentials(&host("behind-lock")),
        0,
        "nothing while locked"
    );
    signal(&ci, "CONT");
    assert!(ci.wait().unwrap().success());
    watcher.wait_batch("reconciled", &host("behind-lock"));
    assert_eq!(cloud.credentials(&host("behind-lock")), 3);
}

pub fn two_watchers_one_acts<C: Cloud>() {
    let world = World::<C>::new();
    let cloud = &world.cloud;
    let election = [
        "--debounce",
        "500ms",
        "--leader-election-namespace",
        "idplan",
        "--leader-election-lease-duration",
        "3s",
    ];
    world.kube.ensure_namespace("idplan");
    // The first replica finds the lease free; the second stands by.
    let mut leader = world.watch(&election);
    leader.wait_event("leader", "now acts");
    let standby = world.watch(&election);
    standby.wait_event("candidate", "lease idplan/idplan-watch");
    standby.wait_event("listed", "space prod");
    leader.wait_event("reconciled", "every control plane");
    assert_eq!(standby.metric("idplan_leader"), 0.0);
    assert_eq!(
        standby.get("/readyz").0,
        200,
        "a standby is ready once it read its spaces"
    );
    world.control_plane("one", false);
    leader.wait_batch("reconciled", &host("one"));
    assert_eq!(cloud.credentials(&host("one")), 3);
    assert!(
        standby.events("reconciling").is_empty(),
        "{}",
        standby.log()
    );

    let holder = world
        .kube
        .lease("idplan", "idplan-watch")
        .expect("the lease");
    let killed_at = Instant::now();
    leader.stop("KILL");
    standby.wait_event("leader", "now acts");
    let took = killed_at.elapsed();
    // Within the lease duration (3 s) and two tries (3/7 s each), with room for a loaded machine.
    assert!(took < Duration::from_secs(8), "took over after {took:?}");
    // A new leader starts with a pass over every control plane (the old one may have stopped
    // part way); a control plane created after it is a batch of its own.
    standby.wait_event("reconciled", "every control plane");
    let now = world
        .kube
        .lease("idplan", "idplan-watch")
        .expect("the lease");
    assert_ne!(
        now["spec"]["holderIdentity"],
        holder["spec"]["holderIdentity"]
    );
    world.control_plane("two", false);
    standby.wait_batch("reconciled", &host("two"));
    assert_eq!(cloud.credentials(&host("two")), 3);
}

/// The spec file changes under a running watcher: a spec that does not load is reported and
/// the last good one kept; a good one is applied by a pass over every control plane. The
/// passes are paced by `--max-calls-per-second`.
pub fn follows_the_spec<C: Cloud>() {
    let world = World::<C>::new();
    let cloud = &world.cloud;
    let rate = 5.0;
    let watcher = world.watch(&["--max-calls-per-second", "5", "--debounce", "200ms"]);
    let done = watcher.wait_event("reconciled", "every control plane");
    let calls = watcher.cloud_calls();
    let took = crate::support::watcher::took(&done).expect("the pass says how long it took");
    assert!(calls >= 10.0, "{calls} calls");
    assert!(
        took >= (calls - 1.0) / rate * 0.9,
        "{calls} calls in {took}s: more than {rate} a second"
    );

    let spec = world.dir.read("idplan.yaml");
    world
        .dir
        .write("idplan.yaml", &format!("{spec}  - name: [broken\n"));
    watcher.wait_event("error", "the changed spec is not used");
    assert_eq!(watcher.metric("idplan_spec_load_errors_total"), 1.0);

    let listed = "mxp-listed-system";
    world.dir.write(
        "idplan.yaml",
        &spec.replace(
            "      discover:\n",
            &format!("      list: [{listed}]\n      discover:\n"),
        ),
    );
    watcher.wait_event("spec", "the spec changed");
    watcher.wait_log("a second pass over every control plane", |lines| {
        (full_passes(lines) >= 2).then_some(())
    });
    assert_eq!(cloud.credentials(listed), 3, "{}", watcher.log());
    assert_eq!(cloud.credentials(&host("first")), 3);
}

/// The passes over every control plane that ended in `lines`.
fn full_passes(lines: &[Value]) -> usize {
    lines
        .iter()
        .filter(|l| {
            l["event"] == "reconciled"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("every control plane"))
        })
        .count()
}

/// SIGTERM while a batch is being applied: the apply starts no more cloud writes, saves the
/// state and releases the lock; the watcher exits 0 within 10 s, and the next one serves the
/// rest with nothing duplicated.
pub fn stops_cleanly_mid_apply<C: Cloud>() {
    let world = World::<C>::new();
    let cloud = &world.cloud;
    // Paced, so that the batch's writes take a few seconds.
    let pace = ["--debounce", "200ms", "--max-calls-per-second", "10"];
    let mut watcher = world.watch(&pace);
    watcher.wait_event("reconciled", "every control plane");
    let ids: Vec<String> = (0..C::BURST.min(10))
        .map(|i| format!("stopped{i}"))
        .collect();
    for id in &ids {
        world.control_plane(id, false);
    }
    watcher.wait_event("applied", "");
    let (code, took) = watcher.stop("TERM");
    assert_eq!(code, Some(0), "{}", watcher.log());
    assert!(took < Duration::from_secs(10), "stopped after {took:?}");
    assert!(!cloud.locked(), "the state lock is released");
    assert!(
        ids.iter().any(|id| cloud.credentials(&host(id)) < 3),
        "the stop came before the batch was done: {}",
        watcher.log()
    );

    let again = world.watch(&pace);
    again.wait_event("reconciled", "every control plane");
    for id in &ids {
        assert_eq!(cloud.credentials(&host(id)), 3, "{id}: {}", again.log());
    }
}

/// What cannot run is refused before anything is watched, exit 1.
#[test]
fn what_cannot_run_is_refused_at_start() {
    let dir = TestDir::new();
    let run = |args: &[&str]| {
        let mut cmd = dir.command_without(args, &["KUBERNETES_", "IDPLAN_"]);
        cmd.env_remove("KUBERNETES_SERVICE_HOST");
        crate::support::run(cmd, args)
    };
    run(&["watch", "-f", "missing.yaml"])
        .assert_code(1)
        .assert_stderr_contains("missing.yaml");
    dir.write(
        "listed.yaml",
        "version: 1\nspaces:\n  - name: prod\n    controlPlanes: [mxp-a-system]\n    aws:\n      \
         region: us-east-1\n      cluster: c\n      mode: pod-identity\n    components:\n      \
         backup: { bucket: acme-backup }\n",
    );
    run(&["watch", "-f", "listed.yaml"])
        .assert_code(1)
        .assert_stderr_contains("no space discovers its control planes");
    run(&["watch", "-f", "listed.yaml", "--leader-election"])
        .assert_code(1)
        .assert_stderr_contains("--leader-election-namespace");
    dir.write(
        "in-cluster.yaml",
        "version: 1\nspaces:\n  - name: prod\n    controlPlanes:\n      discover: {}\n    aws:\n      \
         region: us-east-1\n      cluster: c\n      mode: pod-identity\n    components:\n      \
         backup: { bucket: acme-backup }\n",
    );
    run(&["watch", "-f", "in-cluster.yaml"])
        .assert_code(1)
        .assert_stderr_contains("in-cluster.yaml")
        .assert_stderr_contains("names no `context`");
}

/// One `#[test]` per scenario for the cloud `$cloud`.
macro_rules! scenarios {
    ($cloud:ty) => {
        #[test]
        fn serves_new_control_planes() {
            super::serves_new_control_planes::<$cloud>();
        }

        #[test]
        fn faults_and_a_held_lock() {
            super::faults_and_a_held_lock::<$cloud>();
        }

        #[test]
        fn two_watchers_one_acts() {
            super::two_watchers_one_acts::<$cloud>();
        }
    };
}
use scenarios;
