//! How often apply persists the state: at its start, at most every interval while it writes
//! (`IDPLAN_STATE_PERSIST_INTERVAL`, here an hour, so that no write falls on the interval),
//! at its end, and on SIGINT/SIGTERM. A run killed between two persists leaves resources the
//! state does not know: the next apply finds them by their tags, and nothing is orphaned.
//! Pod identity against ministack, through the binary, waiting on what EKS and the state file
//! hold.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::aws_pod_identity::{Eks, expected, roles_of, setup, spec};
use crate::support::{Ministack, STATE_FILE, TestDir};

/// Control planes of the space: 3 roles, 3 policies and 60 associations to create.
const PLANES: [usize; 20] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
];
/// Associations EKS holds when a test interrupts the apply: well before all of them.
const PART: usize = 10;
/// How long a test waits for what it waits on.
const PATIENCE: Duration = Duration::from_secs(60);

const LONG_INTERVAL: (&str, &str) = ("IDPLAN_STATE_PERSIST_INTERVAL", "1h");

/// `apply --auto-approve` started in `dir` against `ms`, one write at a time.
fn start_apply(dir: &TestDir, ms: &Ministack) -> Child {
    let args = ["apply", "--auto-approve", "--parallelism", "1"];
    dir.ministack_command(ms, &args)
        .env(LONG_INTERVAL.0, LONG_INTERVAL.1)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting idplan apply")
}

/// Waits until `ready` says yes, asking again every 20 ms; panics after [`PATIENCE`].
#[track_caller]
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ready() {
        assert!(Instant::now() < deadline, "waited {PATIENCE:?} for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How many associations the cluster holds (its first page of 100 is enough here).
async fn association_count(eks: &Eks) -> usize {
    let page = eks
        .eks
        .list_pod_identity_associations()
        .cluster_name(crate::aws_pod_identity::CLUSTER)
        .send()
        .await
        .unwrap();
    page.associations().len()
}

/// The state file as written now (`None` before the first write).
fn state_now(dir: &TestDir) -> Option<Value> {
    let text = std::fs::read_to_string(dir.path().join(STATE_FILE)).ok()?;
    Some(serde_json::from_str(&text).expect("the state is whole JSON"))
}

/// The `association_id`s of the state's associations, and the role names of its roles.
fn recorded(state: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut associations = BTreeSet::new();
    let mut roles = BTreeSet::new();
    for r in state["resources"].as_array().unwrap() {
        let attributes = &r["attributes"];
        match r["kind"].as_str().unwrap() {
            "aws_eks_pod_identity_association" => {
                associations.insert(attributes["association_id"].as_str().unwrap().to_string());
            }
            "aws_iam_role" => {
                roles.insert(attributes["name"].as_str().unwrap().to_string());
            }
            _ => {}
        }
    }
    (associations, roles)
}

/// The ids of the associations EKS holds, and the names of the roles IAM holds.
async fn held(eks: &Eks) -> (BTreeSet<String>, BTreeSet<String>) {
    let associations = eks.associations().await;
    (
        associations.values().map(|a| a.id.clone()).collect(),
        eks.iam.role_names().await,
    )
}

/// Waits until EKS holds [`PART`] associations, then freezes ministack: the apply is stopped in
/// its tracks, part way, with its writes since the first persist in no state write yet.
/// Returns how many associations EKS held then (at least [`PART`]).
async fn freeze_part_way(ms: &Ministack, eks: &Eks, dir: &TestDir) -> usize {
    let deadline = Instant::now() + PATIENCE;
    let mut made = 0;
    while made < PART {
        assert!(
            Instant::now() < deadline,
            "EKS never held {PART} associations"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        made = association_count(eks).await;
    }
    ms.signal("STOP");
    let state = state_now(dir).expect("the first persist, at the start, wrote the state");
    assert_eq!(
        state["serial"], 1,
        "only the first persist has happened: {state}"
    );
    assert!(
        recorded(&state).0.is_empty(),
        "the associations made since are in no state write yet: {state}"
    );
    made
}

#[tokio::test]
async fn a_run_killed_between_two_persists_is_recovered_by_the_next_apply() {
    let (ms, dir, eks) = setup(&[], &spec(&PLANES, None)).await;
    let mut apply = start_apply(&dir, &ms);
    freeze_part_way(&ms, &eks, &dir).await;
    apply.kill().expect("SIGKILL");
    apply.wait().unwrap();
    ms.signal("CONT");
    let (orphans, roles) = held(&eks).await;
    assert!(orphans.len() >= PART, "{orphans:?}");
    assert_eq!(roles.len(), 3, "{roles:?}");
    assert!(recorded(&state_now(&dir).unwrap()).0.is_empty());

    // The next apply finds what the killed run made by its tags, and makes the rest.
    let next = dir.idplan(&ms, &["apply", "--auto-approve"]);
    next.assert_code(0);
    next.assert_stdout_contains("aws_iam_role.pi.backup will be recorded in the state");
    next.assert_stdout_contains("aws_eks_pod_identity_association.pi.");
    let recovered = next
        .stdout
        .lines()
        .filter(|l| {
            l.contains("aws_eks_pod_identity_association.")
                && l.ends_with("will be recorded in the state")
        })
        .count();
    assert_eq!(recovered, orphans.len(), "{}", next.stdout);
    // Nothing orphaned: the state records exactly what the clouds hold, and it is the spec's.
    assert_eq!(
        roles_of(&eks.associations().await),
        expected(&PLANES, "spaces-pi-shared-secrets")
    );
    let (associations, roles) = held(&eks).await;
    assert!(orphans.is_subset(&associations), "{orphans:?}");
    assert_eq!(recorded(&dir.state()), (associations, roles));
    dir.idplan(&ms, &["plan", "--detailed-exitcode"])
        .assert_code(0);

    // And the state alone takes them all away again.
    dir.write("idplan.yaml", &spec(&[], None));
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    assert!(eks.associations().await.is_empty());
}

#[tokio::test]
async fn sigterm_stops_the_apply_with_everything_it_made_in_the_state() {
    let (ms, dir, eks) = setup(&[], &spec(&PLANES, None)).await;
    let apply = start_apply(&dir, &ms);
    let made = freeze_part_way(&ms, &eks, &dir).await;
    let status = Command::new("kill")
        .args(["-TERM", &apply.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Persisted at the signal, ministack still frozen: the state needs no cloud.
    wait_for("the state written at SIGTERM", || {
        state_now(&dir).is_some_and(|s| s["serial"] != 1)
    });
    assert!(recorded(&state_now(&dir).unwrap()).0.len() >= made);
    ms.signal("CONT");
    let out = apply.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("SIGTERM: no more cloud writes are started"),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: apply interrupted by SIGTERM ("),
        "{stderr}"
    );
    assert!(stderr.contains("not attempted"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The writes under way finished and are in the state: it records exactly what EKS holds.
    let (associations, roles) = held(&eks).await;
    assert!(associations.len() < PLANES.len() * 3, "stopped part way");
    let state = dir.state();
    assert_eq!(recorded(&state), (associations, roles));
    // 3 roles, 3 policies, 60 associations in all.
    let rest = 66 - state["resources"].as_array().unwrap().len();

    // Nothing was lost: the next apply only makes the rest.
    let next = dir.idplan(&ms, &["apply", "--auto-approve"]);
    next.assert_code(0);
    assert!(
        !next.stdout.contains("will be recorded in the state"),
        "{}",
        next.stdout
    );
    next.assert_stdout_contains(&format!("{rest} added, 0 changed, 0 destroyed"));
    assert_eq!(
        roles_of(&eks.associations().await),
        expected(&PLANES, "spaces-pi-shared-secrets")
    );
    dir.idplan(&ms, &["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[tokio::test]
async fn an_apply_persists_the_state_at_its_start_and_end_not_after_every_write() {
    let (ms, dir, eks) = setup(&[], &spec(&PLANES, None)).await;
    let out = dir.idplan_with_env(
        &ms,
        &["apply", "--auto-approve"],
        &[LONG_INTERVAL, ("IDPLAN_STATS", "json")],
    );
    out.assert_code(0);
    // 66 cloud writes; 2 state writes: the first (what the run covers) and the last.
    let stats = out.stats();
    assert_eq!(stats["api_calls"]["eks:CreatePodIdentityAssociation"], 60);
    assert_eq!(stats["state_writes"], 2, "{stats}");
    let size = std::fs::metadata(dir.path().join(STATE_FILE))
        .unwrap()
        .len();
    assert!(
        stats["state_bytes"].as_u64().unwrap() < 2 * size,
        "{stats}, the state has {size} bytes"
    );
    assert_eq!(dir.state()["serial"], 2);
    let (associations, roles) = held(&eks).await;
    assert_eq!(associations.len(), 60);
    assert_eq!(recorded(&dir.state()), (associations, roles));

    // Nothing to change: nothing written.
    let again = dir.idplan_with_env(
        &ms,
        &["apply", "--auto-approve"],
        &[("IDPLAN_STATS", "json")],
    );
    again.assert_code(0);
    assert_eq!(again.stats()["state_writes"], 0);
    assert_eq!(dir.state()["serial"], 2);
}
