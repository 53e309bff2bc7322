//! The fault and recovery scenarios, written once and run against every cloud's peer through
//! [`Cloud`]: ministack for AWS pod identity ([`aws`]), the fake ARM for Azure ([`azure`]),
//! the fake Google APIs for GCP ([`gcp`]). What they assert on is what the peer holds and what
//! its request and fault logs saw.
//!
//! - a fifth of the calls fail (throttled, a 5xx, a 5xx after the write was done): each kind
//!   fires, a lost reply on the cloud's named call among them; one apply converges, every
//!   fault retried once, every resource held once;
//! - an apply killed at its Nth write, for several N: the write reached the cloud, its reply
//!   never came back, so the state does not record it and the next plan adopts it rather than
//!   create it again; the last apply converges, nothing held twice, the state records the ids
//!   the cloud gave;
//! - the reply of every create lost: taken as created;
//! - a lost state rebuilt from the cloud without a cloud write (nor does a second apply);
//! - a resource removed by hand: drift, and apply repairs it;
//! - a spec over the cloud's limit refused before any write, and over it with others'
//!   objects counted;
//! - a stale saved plan, and an apply refused by the state's lock, write nothing.

mod aws;
mod azure;
mod gcp;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::{Faults, Output, TestDir, run};

/// One cloud's side of the scenarios: its peer, its specs, and what it holds.
pub trait Cloud: Sized {
    /// Control planes of the fault scenario.
    const FAULT_PLANES: usize;
    /// A write the fault scenario must see lose its reply (a regular expression searched in
    /// the peer's description of a request, and a piece of it).
    const LOST_ON: &'static str;
    /// Control planes of the kill scenario, and the writes of each run it is killed at.
    const KILL_PLANES: usize;
    const KILL_AT: &'static [usize];
    /// The writes the kill scenario counts: each makes something the cloud then holds.
    const CREATES: &'static str;
    /// The writes whose replies are lost in the lost reply scenario, and how many of them
    /// (by a piece of their description) its apply of two control planes makes.
    const LOST: &'static str;
    const LOST_COUNTS: &'static [(&'static str, usize)];
    /// What the plan over a lost state of two control planes imports, and says besides.
    const IMPORTED: usize;
    const REBUILT: &'static [&'static str];
    /// A piece of every write request's description (the request log's `write` aside).
    const WRITE: &'static str;

    /// Starts the peer with `args` ([`Faults::args`]), seeded with what the specs name.
    async fn start(args: &[&str]) -> Self;
    /// A spec with the control planes `0..n`.
    fn spec(&self, n: usize) -> String;
    /// idplan with `args` in `dir`, against the peer.
    fn command(&self, dir: &TestDir, args: &[&str]) -> Command;
    /// What the cloud holds of what the specs ask for, each with how many times it is held.
    async fn held(&self) -> BTreeMap<String, usize>;
    /// What [`Cloud::spec`]`(n)` asks for, in the words of [`Cloud::held`].
    fn expected(&self, n: usize) -> BTreeSet<String>;
    /// Asserts that `state` records what the cloud holds under the ids the cloud gave.
    async fn assert_recorded(&self, state: &Value);
    /// Asserts that the cloud holds what the write `request` with `body` made; its address.
    async fn landed(&self, request: &str, body: &str) -> String;
    /// After the lost reply scenario's apply: more of it on this cloud (a removal whose
    /// replies are lost too).
    async fn more_lost_replies(&self, _dir: &TestDir, _faults: &Faults) {}
    /// The `round`th removal by hand (of those the cloud has) of something idplan made; what
    /// drift and plan then say. `None`: no more rounds.
    async fn remove_by_hand(&self, round: usize) -> Option<Drift>;
    /// Specs over the cloud's limit, and at it.
    fn limit(&self) -> Limit;
    /// Others' objects that the limit counts, made by hand with the spec at the limit in
    /// place; the spec then over it, and what the refusal says.
    async fn add_others(&self) -> Option<(String, String)>;

    fn idplan(&self, dir: &TestDir, args: &[&str]) -> Output {
        run(self.command(dir, args), args)
    }

    fn idplan_with_stats(&self, dir: &TestDir, args: &[&str]) -> Output {
        let mut cmd = self.command(dir, args);
        cmd.env("IDPLAN_STATS", "json");
        run(cmd, args)
    }

    /// Asserts that the cloud holds exactly what the spec of `n` control planes asks for,
    /// each once.
    async fn assert_holds(&self, n: usize) {
        let held = self.held().await;
        let want: BTreeMap<String, usize> = self.expected(n).into_iter().map(|k| (k, 1)).collect();
        assert_eq!(held, want, "what the cloud holds, each once");
    }
}

/// What drift and plan say after a removal by hand.
pub struct Drift {
    pub drift: Vec<String>,
    pub plan: String,
}

/// Specs over a cloud's limit and at it.
pub struct Limit {
    /// A spec over the limit by itself, and what validate, plan and apply say of it.
    pub over: String,
    pub says: Vec<String>,
    /// What validate says besides, without a cloud: where in the spec.
    pub located: Vec<String>,
    /// A spec at the limit.
    pub fits: String,
}

/// One `#[tokio::test]` per scenario for the cloud `$cloud`.
macro_rules! scenarios {
    ($cloud:ty) => {
        #[tokio::test]
        async fn one_apply_converges_when_a_fifth_of_calls_fail() {
            super::a_fifth_of_calls_fail::<$cloud>().await;
        }
        #[tokio::test]
        async fn an_apply_killed_at_its_nth_write_is_picked_up_by_the_next() {
            super::killed_at_a_write::<$cloud>().await;
        }
        #[tokio::test]
        async fn a_lost_reply_to_a_create_is_not_a_failure() {
            super::lost_replies::<$cloud>().await;
        }
        #[tokio::test]
        async fn a_lost_state_is_rebuilt_without_a_cloud_write() {
            super::lost_state::<$cloud>().await;
        }
        #[tokio::test]
        async fn drift_after_a_removal_by_hand_is_repaired() {
            super::drift_repaired::<$cloud>().await;
        }
        #[tokio::test]
        async fn a_spec_over_the_limit_is_refused_before_any_write() {
            super::over_the_limit::<$cloud>().await;
        }
        #[tokio::test]
        async fn a_refused_stale_plan_and_a_refused_concurrent_apply_write_nothing() {
            super::refused_runs_write_nothing::<$cloud>().await;
        }
    };
}
use scenarios;

/// A directory whose spec has `n` control planes, and the cloud's peer started with `faults`.
async fn start<C: Cloud>(dir: &TestDir, faults: &Faults, n: usize) -> C {
    let cloud = C::start(&faults.args()).await;
    dir.write("idplan.yaml", &cloud.spec(n));
    cloud
}

async fn a_fifth_of_calls_fail<C: Cloud>() {
    let dir = TestDir::new();
    let faults = Faults::rate(&dir, 0.2, 13).losing_first(C::LOST_ON);
    let cloud: C = start(&dir, &faults, C::FAULT_PLANES).await;
    faults.on();
    let started = std::time::Instant::now();
    let apply = cloud.idplan_with_stats(&dir, &["apply", "--auto-approve"]);
    apply.assert_code(0);
    let elapsed = started.elapsed();
    let fired = faults.fired().len();
    let counts = faults.assert_all_fired(C::LOST_ON);
    assert_eq!(
        apply.stats()["retries"],
        fired,
        "every fault is retried once"
    );
    eprintln!(
        "{} control planes, 20 % faults: {elapsed:?}, faults {counts:?}",
        C::FAULT_PLANES
    );
    cloud
        .idplan(&dir, &["plan", "--detailed-exitcode"])
        .assert_code(0);
    faults.off();
    cloud.assert_holds(C::FAULT_PLANES).await;
}

/// The state's record of `address`, if any.
fn record(dir: &TestDir, address: &str) -> Option<Value> {
    let text = std::fs::read_to_string(dir.path().join(crate::support::STATE_FILE)).ok()?;
    let state: Value = serde_json::from_str(&text).expect("the state is JSON");
    state["resources"]
        .as_array()?
        .iter()
        .find(|r| r["address"] == address)
        .cloned()
}

async fn killed_at_a_write<C: Cloud>() {
    let dir = TestDir::new();
    let log = Faults::logging(&dir).gated();
    let cloud: C = start(&dir, &log, C::KILL_PLANES).await;
    let mut before = 0;
    for &n in C::KILL_AT {
        let mark = log.requests().len();
        let gate = log.gate(n, C::CREATES);
        let mut child = cloud
            .command(&dir, &["apply", "--auto-approve"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting idplan");
        let write = gate.wait();
        // The write landed; its reply, and every other answer, waits until idplan is dead.
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("reaping idplan");
        assert_eq!(status.code(), None, "idplan was killed at write {n}");
        let (request, body) = write.release();
        let address = cloud.landed(&request, &body).await;

        // The run's first n writes reached the cloud.
        let held: usize = cloud.held().await.values().sum();
        assert!(
            held >= before + n,
            "the cloud holds {held} after write {n} ({before} before)"
        );
        before = held;
        // Its reply never came back: the state does not record it, and the next plan imports
        // (adopts) what the cloud holds rather than create it again.
        assert!(
            record(&dir, &address).is_none(),
            "{address} ({request}) is recorded though its reply was never read"
        );
        let plan = cloud.idplan(&dir, &["plan", "--format", "json"]);
        plan.assert_code(0);
        let plan = plan.json();
        let change = plan["resource_changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["address"] == address.as_str())
            .unwrap_or_else(|| panic!("{address} is not in the plan: {plan:#}"));
        assert_ne!(change["action"], "create", "{change:#}");
        assert_eq!(change["importing"], true, "{change:#}");
        eprintln!(
            "killed at write {n} ({request}; {} writes reached the peer): {address} held, then \
             the plan imports it ({})",
            log.writes_since(mark).len(),
            change["action"]
        );
    }
    cloud
        .idplan(&dir, &["apply", "--auto-approve"])
        .assert_code(0);
    cloud
        .idplan(&dir, &["plan", "--detailed-exitcode"])
        .assert_code(0);
    cloud.assert_holds(C::KILL_PLANES).await;
    cloud.assert_recorded(&dir.state()).await;
}

async fn lost_replies<C: Cloud>() {
    let dir = TestDir::new();
    let faults = Faults::targeted(&dir, "lost", C::LOST, 100);
    let cloud: C = start(&dir, &faults, 2).await;
    faults.on();
    cloud
        .idplan(&dir, &["apply", "--auto-approve"])
        .assert_code(0);
    let fired = faults.fired();
    for (api, count) in C::LOST_COUNTS {
        let lost = fired
            .iter()
            .filter(|(kind, request)| kind == "lost" && request.contains(api))
            .count();
        assert_eq!(lost, *count, "lost replies on {api}: {fired:?}");
    }
    cloud
        .idplan(&dir, &["plan", "--detailed-exitcode"])
        .assert_code(0);
    cloud.assert_recorded(&dir.state()).await;
    cloud.assert_holds(2).await;
    cloud.more_lost_replies(&dir, &faults).await;
    faults.off();
    cloud.assert_holds(2).await;
}

async fn lost_state<C: Cloud>() {
    let dir = TestDir::new();
    let log = Faults::logging(&dir);
    let cloud: C = start(&dir, &log, 2).await;
    // A saved plan on an empty cloud applies.
    cloud
        .idplan(&dir, &["plan", "--out", "first.json"])
        .assert_code(0);
    cloud
        .idplan(&dir, &["apply", "plans/first.json"])
        .assert_code(0);
    assert!(
        log.writes_since(0).iter().any(|r| r.contains(C::WRITE)),
        "the log sees idplan's writes: {:?}",
        log.requests()
    );
    cloud.assert_holds(2).await;
    let held = cloud.held().await;

    // A second apply writes nothing.
    let mark = log.requests().len();
    let again = cloud.idplan(&dir, &["apply", "--auto-approve"]);
    again.assert_code(0);
    again.assert_stdout_contains("No changes");
    assert!(log.requests().len() > mark, "the apply read the cloud");
    assert_eq!(log.writes_since(mark), Vec::<String>::new());

    // Without its state, idplan finds its own resources by their tags and names.
    std::fs::remove_dir_all(dir.path().join("state")).unwrap();
    let plan = cloud.idplan(&dir, &["plan", "--detailed-exitcode"]);
    plan.assert_code(2);
    plan.assert_stdout_contains(&format!(
        "Plan: {} to import, 0 to add, 0 to change, 0 to destroy.",
        C::IMPORTED
    ));
    for says in C::REBUILT {
        plan.assert_stdout_contains(says);
    }
    let mark = log.requests().len();
    let apply = cloud.idplan(&dir, &["apply", "--auto-approve"]);
    apply.assert_code(0);
    apply.assert_stdout_contains(&format!(
        "Resources: {} imported, 0 added, 0 changed, 0 destroyed.",
        C::IMPORTED
    ));
    assert!(log.requests().len() > mark, "the apply read the cloud");
    assert_eq!(log.writes_since(mark), Vec::<String>::new());
    assert_eq!(cloud.held().await, held, "nothing was written to the cloud");
    let state = dir.state();
    assert_eq!(state["serial"], 1, "one state write for all the imports");
    for r in state["resources"].as_array().unwrap() {
        assert_eq!(r["ownership"], "created", "{r:#}");
    }
    cloud.assert_recorded(&state).await;
    cloud
        .idplan(&dir, &["plan", "--detailed-exitcode"])
        .assert_code(0);
}

async fn drift_repaired<C: Cloud>() {
    let dir = TestDir::new();
    let cloud: C = start(&dir, &Faults::logging(&dir), 3).await;
    cloud
        .idplan(&dir, &["apply", "--auto-approve"])
        .assert_code(0);
    cloud.idplan(&dir, &["drift"]).assert_code(0);
    let mut round = 0;
    while let Some(removed) = cloud.remove_by_hand(round).await {
        let drift = cloud.idplan(&dir, &["drift"]);
        drift.assert_code(2);
        for says in &removed.drift {
            drift.assert_stdout_contains(says);
        }
        cloud
            .idplan(&dir, &["plan"])
            .assert_stdout_contains(&removed.plan);
        cloud
            .idplan(&dir, &["apply", "--auto-approve"])
            .assert_code(0);
        cloud.idplan(&dir, &["drift"]).assert_code(0);
        cloud.assert_holds(3).await;
        round += 1;
    }
    assert!(round > 0, "no removal by hand");
}

async fn over_the_limit<C: Cloud>() {
    let dir = TestDir::new();
    let log = Faults::logging(&dir);
    let cloud: C = start(&dir, &log, 0).await;
    let seeded = log.requests().len();
    let limit = cloud.limit();
    dir.write("idplan.yaml", &limit.over);
    // The spec alone is over: refused without a cloud, located; and by plan and apply.
    let validate = dir.idplan_offline(&["validate"]);
    validate.assert_code(1);
    validate.assert_stderr_contains("error: idplan.yaml:");
    for says in &limit.located {
        validate.assert_stderr_contains(says);
    }
    for command in [&["plan"][..], &["apply", "--auto-approve"]] {
        let out = cloud.idplan(&dir, command);
        out.assert_code(1);
        for says in &limit.says {
            validate.assert_stderr_contains(says);
            out.assert_stderr_contains(says);
        }
    }
    assert_eq!(
        log.writes_since(seeded),
        Vec::<String>::new(),
        "nothing written"
    );
    assert!(cloud.held().await.is_empty(), "nothing made");

    dir.write("idplan.yaml", &limit.fits);
    dir.idplan_offline(&["validate"]).assert_code(0);
    if let Some((over, says)) = cloud.add_others().await {
        dir.write("idplan.yaml", &over);
        let held = cloud.held().await;
        let mark = log.requests().len();
        let refused = cloud.idplan(&dir, &["apply", "--auto-approve"]);
        refused.assert_code(1);
        refused.assert_stderr_contains(&says);
        assert_eq!(
            log.writes_since(mark),
            Vec::<String>::new(),
            "nothing written"
        );
        assert_eq!(cloud.held().await, held);
    }
}

async fn refused_runs_write_nothing<C: Cloud>() {
    let dir = TestDir::new();
    let log = Faults::logging(&dir);
    let cloud: C = start(&dir, &log, 2).await;
    cloud
        .idplan(&dir, &["plan", "--out", "old.json"])
        .assert_code(0);
    cloud
        .idplan(&dir, &["plan", "--out", "new.json"])
        .assert_code(0);
    cloud
        .idplan(&dir, &["apply", "plans/new.json"])
        .assert_code(0);
    assert!(
        log.writes_since(0).iter().any(|r| r.contains(C::WRITE)),
        "the log sees idplan's writes: {:?}",
        log.requests()
    );

    let mark = log.requests().len();
    let stale = cloud.idplan(&dir, &["apply", "plans/old.json"]);
    stale.assert_code(1);
    stale.assert_stderr_contains("saved plan plans/old.json is stale");
    assert_eq!(log.writes_since(mark), Vec::<String>::new());

    // Hold the lock the way a running idplan does; the spec wants more.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("state/idplan.state.json.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    dir.write("idplan.yaml", &cloud.spec(3));
    let mark = log.requests().len();
    let refused = cloud.idplan(&dir, &["apply", "--auto-approve"]);
    refused.assert_code(1);
    refused.assert_stderr_contains("is locked by another idplan");
    assert_eq!(log.writes_since(mark), Vec::<String>::new());
    drop(lock);

    let mark = log.requests().len();
    cloud
        .idplan(&dir, &["apply", "--auto-approve"])
        .assert_code(0);
    assert!(!log.writes_since(mark).is_empty(), "{:?}", log.requests());
    cloud.assert_holds(3).await;
}
