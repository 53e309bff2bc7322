//! Remote state end to end through the binary: the spaces on ministack, the state in a
//! bucket of S3 (ministack), Google Cloud Storage (fake-gcs-server) or Azure Blob Storage
//! (Azurite). The same scenarios run against each storage ([`Remote`]); what they assert on
//! is what the storage ended up holding.
//!
//! - two working directories (two machines) share one state: apply from one, a no-op plan,
//!   `drift`, `state list` and `helm-values` from the other; the storage round trips of the
//!   no-op plan are counted;
//! - two applies at once: the second is refused naming the holder, the state intact;
//! - an apply killed with SIGKILL while it holds the lock: the next run names the lock,
//!   `state unlock ID` frees it (a wrong id is refused), then apply converges;
//! - a run whose lock was broken while another run wrote: its write is refused, nothing lost,
//!   over no state and over an existing one;
//! - a lost reply on the lock's create, on every state write and on the lock's release: the
//!   run succeeds, the state whole, no lock left;
//! - throttling and a 5xx on each storage call, once: retried, the runs succeed; on every
//!   attempt: an error naming the call, the state as it was, no lock left behind by a failed
//!   acquisition;
//! - a lock broken and taken by another run between the read and the removal (the release,
//!   and `state unlock`): the other run's lock survives;
//! - `state migrate` of a local state, then a plan from a clean directory shows no changes; a
//!   state of another lineage is refused.

mod azblob;
mod gcs;
mod google;
mod s3;

/// One `#[tokio::test]` per `name => scenario(args)`: the scenario of this module run on the
/// `(Ministack, storage)` that the calling module's `setup()` starts.
macro_rules! remote_tests {
    ($($(#[$doc:meta])* $name:ident => $scenario:ident $(($($arg:expr),*))?;)*) => {
        $(
            $(#[$doc])*
            #[tokio::test]
            async fn $name() {
                let (ms, remote) = setup().await;
                super::$scenario(&ms, &remote $($(, $arg)*)?).await;
            }
        )*
    };
}
use remote_tests;

/// Every scenario of this module, for a storage that takes them all (its faults, its races).
macro_rules! every_remote_test {
    () => {
        remote_tests! {
            two_machines_share_one_state => two_machines;
            two_applies_at_once_one_is_refused => two_applies_at_once;
            killed_apply_leaves_a_lock_that_unlock_frees => killed_apply;
            a_run_whose_lock_was_broken_overwrites_nothing => broken_lock(false);
            a_run_whose_lock_was_broken_overwrites_no_existing_state => broken_lock(true);
            a_lost_reply_is_not_another_run => lost_replies;
            throttling_and_5xx_on_each_call_are_retried => transient_faults;
            a_call_that_keeps_failing_is_named_and_writes_nothing => failing_calls;
            a_lock_taken_by_another_run_is_never_removed => lock_taken_while_released;
            unlock_refuses_a_lock_that_changed_under_it => unlock_race;
        }
    };
}
use every_remote_test;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Faults, Ministack, Output, TestDir, control_planes, namespaces, run, signal};

const CLUSTER: &str = "spaces-team";

/// A storage call idplan makes on a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// The lock's create (S3, GCS) or the lease's acquisition (Azure).
    LockCreate,
    /// Azure: the holder metadata set on the leased blob.
    LockHolder,
    StateRead,
    BackupWrite,
    StateWrite,
    /// S3, GCS: the lock read back before it is removed.
    LockRead,
    /// The lock's removal (S3, GCS) or the lease's release (Azure).
    LockRelease,
}

impl Call {
    const ALL: [Call; 7] = [
        Call::LockCreate,
        Call::LockHolder,
        Call::StateRead,
        Call::BackupWrite,
        Call::StateWrite,
        Call::LockRead,
        Call::LockRelease,
    ];
}

/// A storage holding the state in the tests: its URLs, the environment idplan needs to reach
/// it, and what it holds.
pub trait Remote {
    /// The state location of `name` in this storage.
    fn url(&self, name: &str) -> String;
    /// The environment that points idplan at this storage (besides ministack's).
    fn env(&self) -> Vec<(String, String)>;
    /// The object (blob) `key` as the storage holds it, if any. Any other failure panics.
    async fn object(&self, key: &str) -> Option<Vec<u8>>;
    /// The state `name` as the storage holds it, if any.
    async fn state(&self, name: &str) -> Option<Value> {
        let bytes = self.object(name).await.filter(|b| !b.is_empty())?;
        Some(serde_json::from_slice(&bytes).expect("the state is JSON"))
    }
    /// The id of the lock of the state `name` (in the lock object, or the leased blob's holder
    /// metadata); `None` when it is not locked. Any other failure of the storage panics.
    async fn lock(&self, name: &str) -> Option<String> {
        let bytes = self.object(&format!("{name}.lock")).await?;
        let lock: Value = serde_json::from_slice(&bytes).expect("the lock is JSON");
        Some(lock["id"].as_str().expect("the lock has an id").to_string())
    }
    /// Whether the state `name` is locked.
    async fn locked(&self, name: &str) -> bool {
        self.lock(name).await.is_some()
    }
    /// The prefix the storage's calls are counted under in `IDPLAN_STATS`.
    fn stat_prefix(&self) -> &'static str;
    /// The storage peer's faults, when it takes them.
    fn faults(&self) -> Option<&Faults> {
        None
    }
    /// `call` on the state `name` as the storage peer describes it in its fault log, and the
    /// API idplan names when it fails; `None` when this storage makes no such call.
    fn call(&self, _call: Call, _name: &str) -> Option<(String, &'static str)> {
        None
    }
    /// Between this run's read of the lock of `name` and its removal (S3, GCS: right after
    /// the next read of the lock; Azure: right before the next lease release), another run
    /// breaks it and takes it: lock `id`, holding `holder` (a lock's JSON).
    async fn race_lock(&self, _name: &str, _id: &str, _holder: &str) {
        panic!("this storage cannot race a lock");
    }
}

/// One pod-identity space with `n` control planes (enough resources that an apply holds the
/// lock for a while), `state:` in the spec when given.
fn spec(n: usize, state: Option<&str>) -> String {
    spec_of("team", 0, n, state)
}

/// As [`spec`], for the space `space` with the control planes `first..first + n`: states
/// that must not share a space or a control plane.
fn spec_of(space: &str, first: usize, n: usize, state: Option<&str>) -> String {
    let planes = control_planes(namespaces(first..first + n));
    let state = state.map(|s| format!("state: {s}\n")).unwrap_or_default();
    format!(
        "version: 1\n{state}spaces:\n  - name: {space}\n{planes}    aws:\n      region: us-east-1\n      cluster: {CLUSTER}\n      mode: pod-identity\n    components:\n      backup: {{ bucket: acme-backup }}\n      billing: {{ bucket: acme-billing }}\n"
    )
}

/// Resources of [`spec`]`(n)`: two roles with their policies, and an association per control
/// plane and component.
fn resources(n: usize) -> usize {
    4 + 2 * n
}

struct Team<'a, R: Remote> {
    ms: &'a Ministack,
    remote: &'a R,
}

impl<R: Remote> Team<'_, R> {
    fn command(&self, dir: &TestDir, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = dir.ministack_command(self.ms, args);
        cmd.envs(self.remote.env());
        cmd.envs(env.iter().copied());
        cmd
    }

    /// Runs idplan in `dir` against ministack and the storage.
    fn idplan(&self, dir: &TestDir, args: &[&str], env: &[(&str, &str)]) -> Output {
        run(self.command(dir, args, env), args)
    }

    /// Starts idplan in `dir`, to be stopped, killed or waited for.
    fn spawn(&self, dir: &TestDir, args: &[&str], env: &[(&str, &str)]) -> Child {
        self.command(dir, args, env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting idplan")
    }

    /// Waits until `name` is locked while `child` runs; panics when it ends first.
    async fn wait_locked(&self, name: &str, child: &mut Child) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.remote.locked(name).await {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("idplan ended ({status}) before its lock of {name} was seen");
            }
            assert!(Instant::now() < deadline, "{name} was never locked");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Waits until `child` has a connection open to the spaces' ministack: it has read the
    /// state (a run reads it right after taking the lock, before any cloud call) and now
    /// waits on the cloud.
    async fn wait_on_cloud(&self, child: &mut Child) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !connected_to(child.id(), self.ms.port) {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("idplan ended ({status}) before it called ministack");
            }
            assert!(Instant::now() < deadline, "idplan never called ministack");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Starts an apply in `dir` with the spaces' cloud frozen, so that it takes the lock of
    /// `name` and then waits on its first cloud read; once it holds the lock, sends it
    /// `signal` (`STOP`, `KILL`) and lets the cloud go on.
    async fn apply_holding_lock(&self, dir: &TestDir, name: &str, signal_to: &str) -> Child {
        self.ms.signal("STOP");
        let mut child = self.spawn(dir, &["apply", "--auto-approve"], &[]);
        self.wait_locked(name, &mut child).await;
        signal(&child, signal_to);
        self.ms.signal("CONT");
        child
    }

    async fn state(&self, name: &str) -> Value {
        self.remote
            .state(name)
            .await
            .unwrap_or_else(|| panic!("the storage holds no state {name}"))
    }
}

fn finish(child: Child) -> Output {
    let out = child.wait_with_output().expect("waiting for idplan");
    Output {
        args: vec![],
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn addresses(state: &Value) -> usize {
    state["resources"].as_array().map_or(0, Vec::len)
}

/// The lock id a refusal names (`lock ID: ...`).
#[track_caller]
fn lock_id(refusal: &Output) -> String {
    let at = refusal
        .stderr
        .find("(lock ")
        .unwrap_or_else(|| panic!("no lock id in: {}", refusal.stderr));
    refusal.stderr[at + 6..]
        .split(':')
        .next()
        .unwrap()
        .to_string()
}

/// Apply from one directory (the state named by the spec's `state:`), a no-op plan, drift,
/// `state list` and `helm-values` from another (`IDPLAN_STATE`); the storage round trips of
/// the no-op plan are at most four.
pub async fn two_machines<R: Remote>(ms: &Ministack, remote: &R) {
    let team = Team { ms, remote };
    let url = remote.url("team/idplan.json");
    let workstation = TestDir::new();
    workstation.write("idplan.yaml", &spec(2, Some(&url)));
    team.idplan(&workstation, &["apply", "--auto-approve"], &[])
        .assert_code(0)
        .assert_stdout_contains("Apply complete! Resources: 8 added");
    assert!(!workstation.path().join("state").exists(), "no local state");
    let state = team.state("team/idplan.json").await;
    assert_eq!(addresses(&state), resources(2));
    assert!(
        !remote.locked("team/idplan.json").await,
        "unlocked at the end"
    );

    let ci = TestDir::new();
    ci.write("idplan.yaml", &spec(2, None));
    let env = [("IDPLAN_STATE", url.as_str()), ("IDPLAN_STATS", "json")];
    let plan = team.idplan(&ci, &["plan", "--detailed-exitcode"], &env);
    plan.assert_code(0).assert_stdout_contains("No changes.");
    let stats: Value = serde_json::from_str(plan.stderr.lines().last().unwrap()).unwrap();
    let storage: u64 = stats["api_calls"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(api, _)| api.starts_with(remote.stat_prefix()))
        .map(|(_, n)| n.as_u64().unwrap())
        .sum();
    eprintln!(
        "storage round trips of a no-op plan: {storage} ({})",
        stats["api_calls"]
    );
    assert!(storage <= 4, "a no-op plan made {storage} storage calls");
    team.idplan(&ci, &["drift"], &env).assert_code(0);
    let list = team.idplan(&ci, &["state", "list"], &env);
    list.assert_code(0);
    assert_eq!(list.stdout.lines().count(), resources(2));
    team.idplan(&ci, &["helm-values"], &env).assert_code(0);
    assert_eq!(
        team.state("team/idplan.json").await["serial"],
        state["serial"],
        "nothing written by the look-only runs"
    );
}

/// Two applies at once: the second is refused naming the first's holder line, then with
/// `--lock-timeout` it waits for the first and finds nothing to do.
pub async fn two_applies_at_once<R: Remote>(ms: &Ministack, remote: &R) {
    let team = Team { ms, remote };
    let name = "concurrent.json";
    let url = remote.url(name);
    let (a, b) = (TestDir::new(), TestDir::new());
    a.write("idplan.yaml", &spec(12, Some(&url)));
    b.write("idplan.yaml", &spec(12, Some(&url)));
    // The first apply holds the lock, stopped.
    let first = team.apply_holding_lock(&a, name, "STOP").await;
    let refused = team.idplan(&b, &["apply", "--auto-approve"], &[]);
    refused
        .assert_code(1)
        .assert_stderr_contains("is locked by another idplan")
        .assert_stderr_contains(&format!("pid {}, `idplan apply`", first.id()));
    signal(&first, "CONT");
    // Waits for the first apply, then finds nothing to do.
    let waited = team.idplan(
        &b,
        &["apply", "--auto-approve", "--lock-timeout", "2m"],
        &[],
    );
    finish(first).assert_code(0);
    waited.assert_code(0);
    let state = team.state(name).await;
    assert_eq!(addresses(&state), resources(12));
    team.idplan(&b, &["plan", "--detailed-exitcode"], &[])
        .assert_code(0)
        .assert_stdout_contains("No changes.");
}

/// An apply killed while it holds the lock: the next run names the lock; `state unlock`
/// refuses a wrong id and frees the right one; then apply converges.
pub async fn killed_apply<R: Remote>(ms: &Ministack, remote: &R) {
    let team = Team { ms, remote };
    let name = "killed.json";
    let dir = TestDir::new();
    dir.write("idplan.yaml", &spec(12, Some(&remote.url(name))));
    finish(team.apply_holding_lock(&dir, name, "KILL").await);
    assert!(remote.locked(name).await, "the lock outlives a killed run");

    let refused = team.idplan(&dir, &["plan"], &[]);
    refused
        .assert_code(1)
        .assert_stderr_contains("is locked by another idplan")
        .assert_stderr_contains("idplan state unlock");
    let id = lock_id(&refused);
    team.idplan(&dir, &["state", "unlock", "not-that-lock"], &[])
        .assert_code(1)
        .assert_stderr_contains("nothing was unlocked");
    assert!(remote.locked(name).await, "a wrong id breaks nothing");
    team.idplan(&dir, &["state", "unlock", &id], &[])
        .assert_code(0);
    assert!(!remote.locked(name).await);
    team.idplan(&dir, &["apply", "--auto-approve"], &[])
        .assert_code(0);
    assert_eq!(addresses(&team.state(name).await), resources(12));
    team.idplan(&dir, &["plan", "--detailed-exitcode"], &[])
        .assert_code(0)
        .assert_stdout_contains("No changes.");
}

/// A run whose lock was broken while another run applied: its state write is refused and the
/// other run's state stays whole. The spaces' cloud is frozen while the first run takes the
/// lock, so that run holds the lock with all its work, and every state write, still ahead; it
/// is stopped only once it waits on the cloud, so it has read the state before the break.
/// With `existing`, a state is there before (another run applied fewer control planes): the
/// stale run's write is conditional on the version it read, not create-if-absent.
pub async fn broken_lock<R: Remote>(ms: &Ministack, remote: &R, existing: bool) {
    let team = Team { ms, remote };
    let name = match existing {
        true => "broken-existing.json",
        false => "broken.json",
    };
    let (a, b) = (TestDir::new(), TestDir::new());
    a.write("idplan.yaml", &spec(12, Some(&remote.url(name))));
    b.write("idplan.yaml", &spec(12, Some(&remote.url(name))));
    let before = match existing {
        true => {
            b.write("idplan.yaml", &spec(2, Some(&remote.url(name))));
            team.idplan(&b, &["apply", "--auto-approve"], &[])
                .assert_code(0);
            b.write("idplan.yaml", &spec(12, Some(&remote.url(name))));
            Some(team.state(name).await)
        }
        false => None,
    };
    ms.signal("STOP");
    let mut stale = team.spawn(&a, &["apply", "--auto-approve"], &[]);
    team.wait_locked(name, &mut stale).await;
    // Stopped once it read the (empty) state: the other run's state comes after that read.
    team.wait_on_cloud(&mut stale).await;
    signal(&stale, "STOP");
    ms.signal("CONT");
    assert_eq!(remote.state(name).await, before, "nothing written yet");
    let refused = team.idplan(&b, &["plan"], &[]);
    refused.assert_code(1);
    team.idplan(&b, &["state", "unlock", &lock_id(&refused)], &[])
        .assert_code(0);
    team.idplan(&b, &["apply", "--auto-approve"], &[])
        .assert_code(0);
    let written = team.state(name).await;
    assert_eq!(addresses(&written), resources(12));
    if let Some(before) = &before {
        assert!(written["serial"].as_u64() > before["serial"].as_u64());
    }
    signal(&stale, "CONT");
    finish(stale)
        .assert_code(1)
        .assert_stderr_contains("was written by another run since this one read it");
    let after = team.state(name).await;
    assert_eq!(after, written, "the stale run overwrote nothing");
    team.idplan(&b, &["plan", "--detailed-exitcode"], &[])
        .assert_code(0)
        .assert_stdout_contains("No changes.");
}

/// A local state moved to the storage: a clean directory plans no changes from it; a state of
/// another lineage is refused there.
pub async fn migrate<R: Remote>(ms: &Ministack, remote: &R) {
    let team = Team { ms, remote };
    let name = "moved.json";
    let url = remote.url(name);
    let laptop = TestDir::new();
    laptop.write("idplan.yaml", &spec(2, None));
    team.idplan(&laptop, &["apply", "--auto-approve"], &[])
        .assert_code(0);
    let local = laptop.state();
    team.idplan(&laptop, &["state", "migrate", "--to", &url], &[])
        .assert_code(0)
        .assert_stdout_contains("Moved the state");
    let moved = team.state(name).await;
    assert_eq!(moved["lineage"], local["lineage"]);
    assert_eq!(moved["resources"], local["resources"]);

    let clean = TestDir::new();
    clean.write("idplan.yaml", &spec(2, Some(&url)));
    team.idplan(&clean, &["plan", "--detailed-exitcode"], &[])
        .assert_code(0)
        .assert_stdout_contains("No changes.");

    let other = TestDir::new();
    other.write(
        "state/idplan.state.json",
        "{\"version\": 1, \"lineage\": \"00000000-0000-4000-8000-000000000000\", \"serial\": 99, \"resources\": []}\n",
    );
    team.idplan(&other, &["state", "migrate", "--to", &url], &[])
        .assert_code(1)
        .assert_stderr_contains("holds a state of another lineage");
    assert_eq!(team.state(name).await, moved, "nothing overwritten");
}

/// The storage peer's faults of `remote`.
#[track_caller]
fn faults_of<R: Remote>(remote: &R) -> &Faults {
    remote
        .faults()
        .expect("this scenario needs a storage peer that takes faults")
}

/// The descriptions of `calls` on the state `name`, as the storage peer logs them (the calls
/// this storage makes).
fn described<R: Remote>(remote: &R, name: &str, calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter_map(|call| remote.call(*call, name))
        .map(|(request, _)| request)
        .collect()
}

/// The SDKs and idplan's transport retry inside, so a write whose reply was lost is sent again
/// and finds its own work: the lock's create (and its holder), every state write (the first,
/// over no state, and the ones over an existing state) and the lock's release lose their
/// first reply. Every run succeeds, the state is whole, no lock is left.
pub async fn lost_replies<R: Remote>(ms: &Ministack, remote: &R) {
    let team = Team { ms, remote };
    let faults = faults_of(remote);
    let name = "lost.json";
    let url = remote.url(name);
    let calls = [
        Call::LockCreate,
        Call::LockHolder,
        Call::StateWrite,
        Call::LockRelease,
    ];
    faults.on_requests(&described(remote, name, &calls), &["lost"], true);
    let dir = TestDir::new();
    for (n, added) in [(2, 8), (4, 4)] {
        dir.write("idplan.yaml", &spec(n, Some(&url)));
        let out = team.idplan(&dir, &["apply", "--auto-approve"], &[]);
        out.assert_code(0)
            .assert_stdout_contains(&format!("Apply complete! Resources: {added} added"));
        assert!(!out.stderr.contains("warning"), "{}", out.stderr);
        assert_eq!(addresses(&team.state(name).await), resources(n));
        assert_eq!(remote.lock(name).await, None, "no lock left");
    }
    team.idplan(&dir, &["plan", "--detailed-exitcode"], &[])
        .assert_code(0)
        .assert_stdout_contains("No changes.");
    assert_eq!(remote.lock(name).await, None, "no lock left");
    faults.off();

    let fired = faults.fired();
    let lost = |call: Call| {
        let (request, _) = remote.call(call, name).unwrap();
        fired
            .iter()
            .filter(|(kind, r)| kind == "lost" && *r == request)
            .count()
    };
    for call in calls {
        if remote.call(call, name).is_some() {
            assert!(lost(call) > 0, "no lost reply on {call:?}: {fired:?}");
        }
    }
    // Every state write lost its first reply, the first one (over no state) included (on
    // Azure, the empty blob the first lock creates is one more such write).
    let serial = team.state(name).await["serial"].as_u64().unwrap() as usize;
    assert!(
        lost(Call::StateWrite) >= serial,
        "{serial} writes: {fired:?}"
    );
    eprintln!("lost replies: {} ({serial} state writes)", fired.len());
}

/// Throttling, then a 5xx, once on each storage call (each retry goes through): every run
/// succeeds, the state is whole, no lock is left.
pub async fn transient_faults<R: Remote>(ms: &Ministack, remote: &R) {
    let team = Team { ms, remote };
    let faults = faults_of(remote);
    let name = "faulty.json";
    let url = remote.url(name);
    let calls = described(remote, name, &Call::ALL);
    let dir = TestDir::new();
    for (kind, n) in [("throttle", 2), ("error", 3)] {
        faults.on_requests(&calls, &[kind], true);
        dir.write("idplan.yaml", &spec(n, Some(&url)));
        team.idplan(&dir, &["apply", "--auto-approve"], &[])
            .assert_code(0);
        team.idplan(&dir, &["plan", "--detailed-exitcode"], &[])
            .assert_code(0)
            .assert_stdout_contains("No changes.");
        faults.off();
        assert_eq!(addresses(&team.state(name).await), resources(n));
        assert_eq!(remote.lock(name).await, None, "no lock left");
    }
    let fired = faults.fired();
    for request in &calls {
        for kind in ["throttle", "error"] {
            assert!(
                fired.iter().any(|(k, r)| k == kind && r == request),
                "no {kind} on {request}: {fired:?}"
            );
        }
    }
}

/// A 5xx on every attempt of one storage call, for each call (each on a state of its own,
/// the runs at once): the run fails naming the call (or, for the lock's read and removal
/// after the work was done, warns naming it and how to unlock), the state stays as it was,
/// whole, and a failed acquisition leaves no lock behind.
pub async fn failing_calls<R: Remote>(ms: &Ministack, remote: &R) {
    let team = Team { ms, remote };
    let faults = faults_of(remote);
    let calls: Vec<Call> = Call::ALL
        .into_iter()
        .filter(|call| remote.call(*call, "x").is_some())
        .collect();
    let name = |call: Call| format!("failing-{call:?}.json").to_lowercase();
    let dirs: Vec<TestDir> = calls.iter().map(|_| TestDir::new()).collect();
    let mut before = Vec::new();
    // A space of its own per state: the runs go at once on the one cloud.
    for (i, (call, dir)) in calls.iter().zip(&dirs).enumerate() {
        let (space, url) = (format!("f{i}"), remote.url(&name(*call)));
        dir.write("idplan.yaml", &spec_of(&space, 10 * i, 1, Some(&url)));
        team.idplan(dir, &["apply", "--auto-approve"], &[])
            .assert_code(0);
        before.push(team.state(&name(*call)).await);
        dir.write("idplan.yaml", &spec_of(&space, 10 * i, 2, Some(&url)));
    }
    let requests: Vec<String> = calls
        .iter()
        .map(|call| remote.call(*call, &name(*call)).unwrap().0)
        .collect();
    faults.on_requests(&requests, &["error"], false);
    let apply = ["apply", "--auto-approve"];
    let commands: Vec<Command> = dirs
        .iter()
        .map(|dir| team.command(dir, &apply, &[]))
        .collect();
    let outs: Vec<Output> = std::thread::scope(|scope| {
        let runs: Vec<_> = commands
            .into_iter()
            .map(|cmd| scope.spawn(move || run(cmd, &apply)))
            .collect();
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    });
    faults.off();
    for ((call, out), before) in calls.iter().zip(&outs).zip(&before) {
        let (request, api) = remote.call(*call, &name(*call)).unwrap();
        assert!(
            faults.fired().iter().any(|(_, r)| *r == request),
            "{call:?}: no fault fired on {request}"
        );
        let state = team.state(&name(*call)).await;
        let failed = format!("{}: {api} failed", remote.url(&name(*call)));
        match call {
            Call::LockRead | Call::LockRelease => {
                // The work is done and recorded; the lock could not be removed.
                out.assert_code(0)
                    .assert_stderr_contains("was not released")
                    .assert_stderr_contains(&failed)
                    .assert_stderr_contains("idplan state unlock");
                assert_eq!(addresses(&state), resources(2), "{call:?}");
                let id = remote.lock(&name(*call)).await.expect("the lock is left");
                assert!(out.stderr.contains(&id), "{call:?}: {}", out.stderr);
                team.idplan(
                    &dirs[0],
                    &["state", "unlock", &id, "--state", &remote.url(&name(*call))],
                    &[],
                )
                .assert_code(0);
            }
            _ => {
                out.assert_code(1).assert_stderr_contains(&failed);
                // A state write that failed leaves the state as it was, whole.
                assert_eq!(&state, before, "{call:?}");
            }
        }
        assert_eq!(
            remote.lock(&name(*call)).await,
            None,
            "{call:?}: no lock left"
        );
    }
}

/// Their lock, as another idplan run writes it.
fn their_lock(id: &str) -> String {
    format!(
        "{{\"id\": \"{id}\", \"who\": \"ci@runner\", \"pid\": 7, \"operation\": \"apply\", \
         \"created\": \"2026-01-01T00:00:00Z\"}}"
    )
}

/// The lock id of the other run in the races (a UUID: Azure lease ids are).
const THEIRS: &str = "0b5e7c1a-9d2f-4e6b-8a31-5c4d3e2f1a00";

/// A run's lock broken and taken by another run between this run's read of it and its
/// removal: the other run's lock is never removed, the run says so, and its state is whole.
pub async fn lock_taken_while_released<R: Remote>(ms: &Ministack, remote: &R) {
    let team = Team { ms, remote };
    let name = "stale.json";
    let dir = TestDir::new();
    dir.write("idplan.yaml", &spec(1, Some(&remote.url(name))));
    remote.race_lock(name, THEIRS, &their_lock(THEIRS)).await;
    let out = team.idplan(&dir, &["apply", "--auto-approve"], &[]);
    // The apply is done; the lock not released is a warning naming why.
    out.assert_code(0)
        .assert_stderr_contains(&format!(
            "warning: the lock of state {} was not released: this run's lock of state {} was \
             broken",
            remote.url(name),
            remote.url(name)
        ))
        .assert_stderr_contains("left in place");
    assert_eq!(
        remote.lock(name).await.as_deref(),
        Some(THEIRS),
        "their lock is kept"
    );
    assert_eq!(addresses(&team.state(name).await), resources(1));
    // Their lock refuses the next run, naming them.
    team.idplan(&dir, &["plan"], &[])
        .assert_code(1)
        .assert_stderr_contains(&format!("lock {THEIRS}: ci@runner pid 7, `idplan apply`"));
}

/// `state unlock ID` reads the lock `ID` of a crashed run, but another run breaks it and takes
/// it before the removal: nothing is unlocked, the other run's lock is kept.
pub async fn unlock_race<R: Remote>(ms: &Ministack, remote: &R) {
    let team = Team { ms, remote };
    let name = "unlock-race.json";
    let url = remote.url(name);
    let dir = TestDir::new();
    dir.write("idplan.yaml", &spec(12, Some(&url)));
    // A run killed while it holds the lock.
    finish(team.apply_holding_lock(&dir, name, "KILL").await);
    let crashed_id = remote.lock(name).await.expect("the crashed run's lock");
    remote.race_lock(name, THEIRS, &their_lock(THEIRS)).await;
    team.idplan(&dir, &["state", "unlock", &crashed_id], &[])
        .assert_code(1)
        .assert_stderr_contains(&format!(
            "the lock of state {url} changed while it was being unlocked"
        ))
        .assert_stderr_contains("nothing was unlocked");
    assert_eq!(
        remote.lock(name).await.as_deref(),
        Some(THEIRS),
        "their lock is kept"
    );
}

/// A ministack with the cluster of [`spec`].
async fn ministack() -> Ministack {
    let ms = Ministack::start();
    ms.create_cluster(CLUSTER).await;
    ms
}

/// Whether process `pid` holds a TCP connection to 127.0.0.1:`port` (Linux: its sockets in
/// /proc/PID/fd matched with the connection table /proc/PID/net/tcp).
fn connected_to(pid: u32, port: u16) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let sockets: std::collections::HashSet<String> = fds
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    let remote = format!("0100007F:{port:04X}");
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() > 9 && fields[2] == remote && sockets.contains(fields[9])
    })
}
