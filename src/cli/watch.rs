use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::{ExitStatus, ParallelismArgs, SpecArgs, StateArgs, duration};
use crate::error::{Error, Result};
use crate::watch::{self, lease::Election, log::LogFormat};

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    spec: SpecArgs,
    #[command(flatten)]
    state: StateArgs,
    #[command(flatten)]
    parallelism: ParallelismArgs,
    /// How long to wait for a state lock another run holds (a CI apply) before trying again
    /// with backoff; the watcher never breaks a lock.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = duration)]
    lock_timeout: Duration,
    /// How long to gather control planes after the first new one, so that a burst becomes one
    /// batch.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration)]
    debounce: Duration,
    /// How often a pass covers every control plane of every space (and reports what waits for a
    /// reviewed apply).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = positive)]
    resync: Duration,
    /// The most cloud API calls per second, retries included, so that a large Space does not
    /// eat the rate limit other tools of the account share.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    max_calls_per_second: u32,
    /// Serve /healthz, /readyz (ready once every space's first list is read) and /metrics
    /// (Prometheus) on this address, e.g. 127.0.0.1:9090 or 0.0.0.0:9090 in a pod.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The log lines on stderr: text for a terminal, json for a log pipeline.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Let only one replica act, holding a coordination.k8s.io/v1 Lease in the cluster of the
    /// first space that discovers. Default: on in a cluster (in the pod's namespace), and on a
    /// workstation when --leader-election-namespace is given.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    leader_election: Option<bool>,
    /// The namespace of the Lease; in a cluster, the pod's own by default.
    #[arg(long, value_name = "NAMESPACE")]
    leader_election_namespace: Option<String>,
    /// The name of the Lease.
    #[arg(long, value_name = "NAME", default_value = "idplan-watch")]
    leader_election_name: String,
    /// How long a replica holds the Lease without renewing it: the other takes over within it
    /// when the holder dies.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = positive)]
    leader_election_lease_duration: Duration,
}

/// A duration other than zero.
fn positive(text: &str) -> Result<Duration, String> {
    match duration(text)? {
        d if d.is_zero() => Err("must be longer than 0".to_string()),
        d => Ok(d),
    }
}

pub async fn run(args: WatchArgs) -> Result<ExitStatus> {
    let election = election(&args)?;
    watch::run(watch::Options {
        spec: args.spec.file,
        state: args.state.state,
        debounce: args.debounce,
        resync: args.resync,
        max_calls_per_second: args.max_calls_per_second,
        listen: args.listen,
        log: args.log_format,
        election,
        parallelism: args.parallelism.get(),
        lock_timeout: args.lock_timeout,
    })
    .await?;
    Ok(ExitStatus::Success)
}

fn election(args: &WatchArgs) -> Result<Option<Election>> {
    let own = watch::lease::own_namespace();
    let given = args.leader_election_namespace.clone();
    let enabled = args
        .leader_election
        .unwrap_or(own.is_some() || given.is_some());
    if !enabled {
        return Ok(None);
    }
    let namespace = given.or(own).ok_or_else(|| {
        Error::user(
            "--leader-election needs --leader-election-namespace outside a cluster (the \
             namespace of the Lease, in the cluster of the first space that discovers)",
        )
    })?;
    Ok(Some(Election {
        namespace,
        name: args.leader_election_name.clone(),
        identity: watch::lease::identity(),
        duration: args.leader_election_lease_duration,
    }))
}
