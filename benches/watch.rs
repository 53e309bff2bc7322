//! `idplan watch` next to a Space of N control planes already served (N = 10 and 1,000 by
//! default): the time from a new `ControlPlane` object's creation to its credentials in the
//! cloud and its three deployments restarted, with the default settings (5 s debounce, 20
//! cloud calls a second); the cloud calls of that batch; the pass over every control plane at
//! start; the watcher's resident memory. AWS pod identity on ministack, the state in its S3,
//! the cluster on the fake Kubernetes API server. Run with `cargo bench --bench watch`
//! (`-- 10 100` for other sizes).

#[path = "../tests/e2e/support/mod.rs"]
#[allow(dead_code, unused_imports)] // the benches use a part of the end-to-end helpers
mod common;
#[path = "support/space.rs"]
#[allow(dead_code)] // its spec lists the control planes; this bench discovers them
mod space;

use std::time::{Duration, Instant};

use common::watcher::Watcher;
use common::{FakeKube, Ministack, TestDir};
use serde_json::json;
use space::namespace;

const STATE: &str = "s3://bench-state/idplan.state.json";
const ACCOUNTS: [&str; 3] = ["mxp-controller", "vector", "external-secrets-controller"];

/// The control plane ID whose host namespace is [`namespace`]`(i)`.
fn id(i: usize) -> String {
    let ns = namespace(i);
    ns["mxp-".len()..ns.len() - "-system".len()].to_string()
}

fn spec(kubeconfig: &str) -> String {
    format!(
        "version: 1\nstate: {STATE}\nspaces:\n  - name: bench\n    controlPlanes:\n      discover:\n        \
         context: space\n        kubeconfig: {kubeconfig}\n    aws:\n      region: us-east-1\n      \
         cluster: bench\n      mode: pod-identity\n    components:\n      backup: {{ bucket: bench-backup }}\n      \
         billing: {{ bucket: bench-billing }}\n      sharedSecrets: {{ secrets: [\"arn:aws:secretsmanager:us-east-1:000000000000:secret:s\"] }}\n"
    )
}

/// (resident, of it the heap and stacks, peak resident) memory of a process in MiB.
fn memory(pid: u32) -> (f64, f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("RssAnon:"), field("VmHWM:"))
}

fn main() {
    let sizes = space::sizes(&[10, 1000]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    println!(
        "| N | pass at start (s) | its calls | created → credentials and restart (s) | batch calls | watcher memory (MiB) | of it anonymous (MiB) | peak (MiB) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for n in sizes {
        let ms = Ministack::start();
        rt.block_on(async {
            ms.create_cluster("bench").await;
            space::create_bucket(&ms, "bench-state").await;
        });
        let kube = FakeKube::start();
        for i in 0..n {
            kube.put(
                "controlplanes",
                json!({"metadata": {"name": format!("cp{i}"), "namespace": "team"},
                       "spec": {}, "status": {"controlPlaneID": id(i)}}),
            );
        }
        let dir = TestDir::new();
        let kubeconfig = dir.write("kubeconfig", &kube.kubeconfig("space"));
        dir.write("idplan.yaml", &spec(&kubeconfig.display().to_string()));
        dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);

        let mut watcher = Watcher::spawn(dir.ministack_command(
            &ms,
            &["watch", "--log-format", "json", "--listen", "127.0.0.1:0"],
        ));
        watcher.patience = Duration::from_secs(3600);
        let start = watcher.wait_event("reconciled", "every control plane");
        let pass = common::watcher::took(&start).unwrap_or(f64::NAN);
        let at_start = watcher.cloud_calls();

        let new = namespace(n);
        kube.put_workloads(&new, &ACCOUNTS);
        let created = Instant::now();
        kube.create_control_plane("team", "new", Some(&id(n)));
        for sa in ACCOUNTS {
            watcher.wait_event("restarted", &format!("{new}/{sa}"));
        }
        let served = created.elapsed();
        let batch = watcher.cloud_calls() - at_start;
        let (rss, anon, peak) = memory(watcher.child.id());
        println!(
            "| {n} | {pass:.1} | {at_start} | {:.1} | {batch} | {rss:.1} | {anon:.1} | {peak:.1} |",
            served.as_secs_f64()
        );
        watcher.stop("TERM");
    }
}
