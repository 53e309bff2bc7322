//! Counting cloud API calls, for `IDPLAN_STATS=text|json`: every attempt of every operation
//! (retries included), and the process's peak memory, reported on stderr at exit.

use std::collections::BTreeMap;
use std::sync::Mutex;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

static CALLS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());
/// Attempts after the first of one operation: the retries of throttling, server errors and
/// lost connections.
static RETRIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// State writes (whole states persisted) and their bytes: what an apply costs the state's
/// storage, beside its API calls.
static STATE_WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static STATE_BYTES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Records a state written whole, of `bytes` bytes.
pub fn count_state_write(bytes: usize) {
    STATE_WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    STATE_BYTES.fetch_add(bytes as u64, std::sync::atomic::Ordering::Relaxed);
}

/// Records that an attempt of a call is a retry.
pub fn count_retry() {
    RETRIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Records a call to `api` (`service:Operation`); for drivers that do not use the AWS SDK.
pub fn count(api: &str) {
    *CALLS
        .lock()
        .expect("stats lock")
        .entry(api.to_string())
        .or_default() += 1;
}

/// Every call counted so far, per API (`service:Operation`).
pub fn calls() -> BTreeMap<String, u64> {
    CALLS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Counts every attempt the AWS SDK sends.
#[derive(Debug, Clone, Copy)]
pub struct AwsCalls;

impl Intercept for AwsCalls {
    fn name(&self) -> &'static str {
        "idplan-stats"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(op) = cfg.load::<Metadata>() {
            count(&format!("{}:{}", op.service().to_lowercase(), op.name()));
        }
        if cfg
            .load::<RequestAttempts>()
            .is_some_and(|a| a.attempts() > 1)
        {
            count_retry();
        }
        Ok(())
    }
}

/// The process's peak resident memory in KiB (Linux), if known.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Writes the report to stderr when `IDPLAN_STATS` asks for one.
pub fn report() {
    let Ok(format) = std::env::var("IDPLAN_STATS") else {
        return;
    };
    let calls = calls();
    let total: u64 = calls.values().sum();
    let peak = peak_rss_kib();
    let retries = RETRIES.load(std::sync::atomic::Ordering::Relaxed);
    let state_writes = STATE_WRITES.load(std::sync::atomic::Ordering::Relaxed);
    let state_bytes = STATE_BYTES.load(std::sync::atomic::Ordering::Relaxed);
    if format == "json" {
        let report = serde_json::json!({
            "api_calls": calls,
            "api_calls_total": total,
            "retries": retries,
            "state_writes": state_writes,
            "state_bytes": state_bytes,
            "peak_rss_kib": peak,
        });
        eprintln!("{report}");
    } else {
        eprintln!("API calls: {total} ({retries} of them retries)");
        for (api, n) in &calls {
            eprintln!("  {api:<45} {n}");
        }
        if state_writes > 0 {
            eprintln!("State writes: {state_writes} ({state_bytes} bytes)");
        }
        if let Some(kib) = peak {
            eprintln!("Peak memory: {:.1} MiB", kib as f64 / 1024.0);
        }
    }
}
