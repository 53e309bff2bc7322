//! How long `idplan plan` takes for one space against ministack: on an empty account and,
//! after an apply, the no-op plan. Run with `cargo bench --bench plan`.
//!
//! Each measurement is the whole binary (start, spec, STS/EKS/IAM reads, render), repeated;
//! the table gives min / median / max in milliseconds.

#[path = "../tests/e2e/support/mod.rs"]
#[allow(dead_code, unused_imports)] // the benches use a part of the end-to-end helpers
mod common;

use std::time::{Duration, Instant};

use common::{Ministack, TestDir};

const RUNS: usize = 20;

fn spec(control_planes: usize, subjects: &str) -> String {
    let planes: String = (0..control_planes)
        .map(|i| format!("      - mxp-{i:08x}-5bb8-4a7e-9f41-2fc38ef4b065-system\n"))
        .collect();
    format!(
        "version: 1\nspaces:\n  - name: bench\n    controlPlanes:\n{planes}    aws:\n      region: us-east-1\n      \
         cluster: bench\n      subjects: {subjects}\n    components:\n      backup: {{ bucket: b-backup }}\n      \
         billing: {{ bucket: b-billing }}\n      sharedSecrets: {{ secrets: [\"arn:aws:secretsmanager:us-east-1:000000000000:secret:s\"] }}\n"
    )
}

fn measure(dir: &TestDir, ms: &Ministack, args: &[&str]) -> Vec<Duration> {
    (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            dir.idplan(ms, args).assert_code(0);
            started.elapsed()
        })
        .collect()
}

fn row(label: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| {label:<42} | {:>7.1} | {:>7.1} | {:>7.1} |",
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    println!("idplan plan against ministack, {RUNS} runs each (ms)\n");
    println!(
        "| {:<42} | {:>7} | {:>7} | {:>7} |",
        "case", "min", "median", "max"
    );
    println!("| {:-<42} | {:->7} | {:->7} | {:->7} |", "", "", "", "");
    for (control_planes, subjects) in [(3, "exact"), (3, "wildcard"), (50, "wildcard")] {
        let ms = Ministack::start();
        rt.block_on(ms.create_cluster("bench"));
        let dir = TestDir::new();
        dir.write("idplan.yaml", &spec(control_planes, subjects));
        let label = format!("{control_planes} control planes, {subjects}");
        row(
            &format!("{label}: empty account"),
            measure(&dir, &ms, &["plan"]),
        );
        dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
        row(
            &format!("{label}: no-op"),
            measure(&dir, &ms, &["plan", "--detailed-exitcode"]),
        );
    }
}
