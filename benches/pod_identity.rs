//! Pod identity at the scale of a large Space: for N control planes (3N associations), the
//! plan on an empty account, the apply, the no-op plan after it, and the additive apply of
//! one new control plane (`--control-plane`), against ministack
//! (through the paging launcher). Reports wall time, API calls by operation (every attempt,
//! from `IDPLAN_STATS=json`) and idplan's peak memory. Run with
//! `cargo bench --bench pod_identity` (`-- 10 100` for other sizes).

#[path = "../tests/e2e/support/mod.rs"]
#[allow(dead_code, unused_imports)] // the benches use a part of the end-to-end helpers
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Ministack, TestDir};
use serde_json::Value;

fn spec(control_planes: usize) -> String {
    let planes: String = (0..control_planes)
        .map(|i| format!("      - mxp-{i:08x}-0000-4000-8000-000000000000-system\n"))
        .collect();
    format!(
        "version: 1\nspaces:\n  - name: bench\n    controlPlanes:\n{planes}    aws:\n      region: us-east-1\n      \
         cluster: bench\n      mode: pod-identity\n    components:\n      backup: {{ bucket: bench-backup }}\n      \
         billing: {{ bucket: bench-billing }}\n      sharedSecrets: {{ secrets: [\"arn:aws:secretsmanager:us-east-1:000000000000:secret:s\"] }}\n"
    )
}

struct Run {
    wall: Duration,
    calls: BTreeMap<String, u64>,
    total: u64,
    peak_mib: f64,
}

fn run(dir: &TestDir, ms: &Ministack, args: &[&str], code: i32) -> Run {
    let mut with_stats: Vec<&str> = args.to_vec();
    with_stats.push("--parallelism");
    with_stats.push("10");
    let started = Instant::now();
    let out = dir.idplan_with_env(ms, &with_stats, &[("IDPLAN_STATS", "json")]);
    let wall = started.elapsed();
    out.assert_code(code);
    let stats: Value = out
        .stderr
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .expect("IDPLAN_STATS=json prints a JSON line on stderr");
    Run {
        wall,
        calls: serde_json::from_value(stats["api_calls"].clone()).unwrap(),
        total: stats["api_calls_total"].as_u64().unwrap(),
        peak_mib: stats["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0,
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10, 100, 1000]
    } else {
        sizes
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    println!(
        "| N | associations | phase | wall (s) | API calls | by operation | peak memory (MiB) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for n in sizes {
        let ms = Ministack::start();
        rt.block_on(ms.create_cluster("bench"));
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
            row(n, phase, &run(&dir, &ms, args, code));
        }
        // One control plane more, served alone, as `idplan watch` serves a new one: the
        // same calls at any N.
        dir.write("idplan.yaml", &spec(n + 1));
        let new = format!("mxp-{n:08x}-0000-4000-8000-000000000000-system");
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
            &run(&dir, &ms, &args, 0),
        );
    }
}

fn row(n: usize, phase: &str, r: &Run) {
    let by_op: Vec<String> = r.calls.iter().map(|(op, c)| format!("{op} {c}")).collect();
    println!(
        "| {n} | {} | {phase} | {:.2} | {} | {} | {:.1} |",
        3 * n,
        r.wall.as_secs_f64(),
        r.total,
        by_op.join(", "),
        r.peak_mib
    );
}
