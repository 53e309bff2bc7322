//! Pod identity at the scale of a large Space: for N control planes (3N associations), the
//! plan on an empty account, the apply, the no-op plan after it, and the additive apply of
//! one new control plane (`--control-plane`), against ministack
//! (through the paging launcher). Reports wall time, API calls by operation (every attempt,
//! from `IDPLAN_STATS=json`), the state writes and their bytes, and idplan's peak memory. Run
//! with `cargo bench --bench pod_identity` (`-- 10 100` for other sizes; `-- 1000 s3` with the
//! state in the ministack's S3 instead of a local file).

#[path = "../tests/e2e/support/mod.rs"]
#[allow(dead_code, unused_imports)] // the benches use a part of the end-to-end helpers
mod common;
#[path = "support/space.rs"]
mod space;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Ministack, TestDir};
use serde_json::Value;
use space::{namespace, spec};

struct Run {
    wall: Duration,
    calls: BTreeMap<String, u64>,
    total: u64,
    state_writes: u64,
    state_mb: f64,
    peak_mib: f64,
}

/// The bucket of the state with `s3`.
const STATE_BUCKET: &str = "bench-state";

fn run(dir: &TestDir, ms: &Ministack, args: &[&str], code: i32, state: &[(&str, &str)]) -> Run {
    let mut with_stats: Vec<&str> = args.to_vec();
    with_stats.push("--parallelism");
    with_stats.push("10");
    let started = Instant::now();
    let mut env = vec![("IDPLAN_STATS", "json")];
    env.extend_from_slice(state);
    let out = dir.idplan_with_env(ms, &with_stats, &env);
    let wall = started.elapsed();
    out.assert_code(code);
    let stats: Value = out.stats();
    Run {
        wall,
        calls: serde_json::from_value(stats["api_calls"].clone()).unwrap(),
        total: stats["api_calls_total"].as_u64().unwrap(),
        state_writes: stats["state_writes"].as_u64().unwrap_or(0),
        state_mb: stats["state_bytes"].as_f64().unwrap_or(0.0) / 1e6,
        peak_mib: stats["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0,
    }
}

fn main() {
    let sizes = space::sizes(&[10, 100, 1000]);
    let s3 = std::env::args().any(|a| a == "s3");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    println!(
        "| N | associations | phase | wall (s) | API calls | by operation | state writes | state written (MB) | peak memory (MiB) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for n in sizes {
        let ms = Ministack::start();
        rt.block_on(ms.create_cluster("bench"));
        let location = format!("s3://{STATE_BUCKET}/idplan.state.json");
        let mut state: Vec<(&str, &str)> = Vec::new();
        if s3 {
            rt.block_on(space::create_bucket(&ms, STATE_BUCKET));
            state.push(("IDPLAN_STATE", &location));
        }
        let dir = TestDir::new();
        dir.write("idplan.yaml", &spec(n));
        for (phase, args, code) in [
            (
                "plan, empty account",
                &["plan", "--detailed-exitcode"][..],
                2,
            ),
            ("apply", &["apply", "--auto-approve"][..], 0),
            ("plan, no-op", &["plan", "--detailed-exitcode"][..], 0),
        ] {
            row(n, phase, &run(&dir, &ms, args, code, &state));
        }
        // One control plane more, served alone, as `idplan watch` serves a new one: the
        // same calls at any N.
        dir.write("idplan.yaml", &spec(n + 1));
        let new = namespace(n);
        let args = [
            "apply",
            "--additive-only",
            "--auto-approve",
            "--control-plane",
            &new,
        ];
        row(
            n,
            "one new control plane, targeted",
            &run(&dir, &ms, &args, 0, &state),
        );
    }
}

fn row(n: usize, phase: &str, r: &Run) {
    let by_op: Vec<String> = r.calls.iter().map(|(op, c)| format!("{op} {c}")).collect();
    println!(
        "| {n} | {} | {phase} | {:.2} | {} | {} | {} | {:.1} | {:.1} |",
        3 * n,
        r.wall.as_secs_f64(),
        r.total,
        by_op.join(", "),
        r.state_writes,
        r.state_mb,
        r.peak_mib
    );
}
