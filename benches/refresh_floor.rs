//! How close a full no-op plan of pod identity comes to the floor of the EKS API: at N control
//! planes (3N associations), `idplan plan` against a hand-written client that makes exactly
//! the calls such a plan cannot avoid (one paged list of the cluster's associations and one
//! describe per association, the role of each can change outside idplan and the list does not
//! say it) with the same parallelism, on the same ministack. Runs interleaved, medians.
//! Run with `cargo bench --bench refresh_floor` (`-- 100` for another N).

#[path = "../tests/e2e/support/mod.rs"]
#[allow(dead_code, unused_imports)] // the benches use a part of the end-to-end helpers
mod common;
#[path = "support/space.rs"]
#[allow(dead_code)] // the namespace of one control plane is pod_identity's
mod space;

use std::time::{Duration, Instant};

use common::{Ministack, TestDir};
use futures::{StreamExt, TryStreamExt, stream};
use space::spec;

const RUNS: usize = 5;
const PARALLELISM: usize = 10;

/// The floor: list every association of the cluster, then describe each one.
async fn floor(eks: &aws_sdk_eks::Client) -> usize {
    let ids: Vec<String> = eks
        .list_pod_identity_associations()
        .cluster_name("bench")
        .max_results(100)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .filter_map(|a| a.expect("list").association_id)
        .collect();
    stream::iter(&ids)
        .map(|id| {
            eks.describe_pod_identity_association()
                .cluster_name("bench")
                .association_id(id)
                .send()
        })
        .buffer_unordered(PARALLELISM)
        .try_collect::<Vec<_>>()
        .await
        .expect("describe")
        .len()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ms = Ministack::start();
    rt.block_on(ms.create_cluster("bench"));
    let dir = TestDir::new();
    dir.write("idplan.yaml", &spec(n));
    dir.idplan(&ms, &["apply", "--auto-approve"]).assert_code(0);
    let eks = aws_sdk_eks::Client::new(&rt.block_on(ms.sdk_config()));
    let (mut ours, mut floors) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let started = Instant::now();
        let parallelism = PARALLELISM.to_string();
        dir.idplan(
            &ms,
            &["plan", "--detailed-exitcode", "--parallelism", &parallelism],
        )
        .assert_code(0);
        ours.push(started.elapsed());
        let started = Instant::now();
        let described = rt.block_on(floor(&eks));
        assert_eq!(described, 3 * n);
        floors.push(started.elapsed());
    }
    let (ours, floor) = (median(ours), median(floors));
    println!("| N | associations | idplan plan, no-op (s) | list + describes (s) | ratio |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| {n} | {} | {:.2} | {:.2} | {:.2} |",
        3 * n,
        ours.as_secs_f64(),
        floor.as_secs_f64(),
        ours.as_secs_f64() / floor.as_secs_f64()
    );
}
