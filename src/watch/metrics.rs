//! What the watcher says about itself: counters and gauges in the Prometheus text format
//! 0.0.4, served with `/healthz` and `/readyz` on `--listen`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};

use crate::error::{Error, Result};

/// The upper bounds (seconds) of the reconcile duration histogram's buckets.
const BUCKETS: [f64; 11] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// How a reconcile ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Everything additive applied, nothing waits.
    Success,
    /// Applied, and changes wait for a reviewed apply.
    Withheld,
    /// Failed; retried with backoff.
    Error,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Withheld => "withheld",
            Outcome::Error => "error",
        }
    }
}

#[derive(Debug, Default)]
struct Values {
    reconciles: BTreeMap<Outcome, u64>,
    applied: BTreeMap<String, u64>,
    withheld: BTreeMap<String, u64>,
    last_success: Option<SystemTime>,
    /// Per bucket of [`BUCKETS`], then the sum and the count.
    durations: [u64; BUCKETS.len()],
    duration_sum: f64,
    duration_count: u64,
    leader: bool,
    ready: bool,
    spec_errors: u64,
}

/// The watcher's metrics; shared by the loop and the HTTP server.
#[derive(Debug, Default)]
pub struct Metrics(Mutex<Values>);

impl Metrics {
    /// Metrics with every space's withheld gauge and every outcome at zero, so that a scrape
    /// sees the series before the first event.
    pub fn new<'a>(spaces: impl IntoIterator<Item = &'a str>) -> Arc<Metrics> {
        let mut values = Values::default();
        for outcome in [Outcome::Success, Outcome::Withheld, Outcome::Error] {
            values.reconciles.insert(outcome, 0);
        }
        for space in spaces {
            values.withheld.insert(space.to_string(), 0);
        }
        Arc::new(Metrics(Mutex::new(values)))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Values) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn reconciled(&self, outcome: Outcome, took: Duration) {
        self.with(|v| {
            *v.reconciles.entry(outcome).or_default() += 1;
            if outcome != Outcome::Error {
                v.last_success = Some(SystemTime::now());
            }
            let seconds = took.as_secs_f64();
            for (bucket, le) in v.durations.iter_mut().zip(BUCKETS) {
                if seconds <= le {
                    *bucket += 1;
                }
            }
            v.duration_sum += seconds;
            v.duration_count += 1;
        });
    }

    /// A cloud write finished for a resource of type `kind`.
    pub fn applied(&self, kind: &str) {
        self.with(|v| *v.applied.entry(kind.to_string()).or_default() += 1);
    }

    /// The changes of `space` that wait for a reviewed apply.
    pub fn withheld(&self, space: &str, changes: u64) {
        self.with(|v| v.withheld.insert(space.to_string(), changes));
    }

    pub fn withheld_of(&self, space: &str) -> u64 {
        self.with(|v| v.withheld.get(space).copied().unwrap_or(0))
    }

    pub fn leader(&self, leader: bool) {
        self.with(|v| v.leader = leader);
    }

    pub fn ready(&self) {
        self.with(|v| v.ready = true);
    }

    pub fn is_ready(&self) -> bool {
        self.with(|v| v.ready)
    }

    pub fn spec_error(&self) {
        self.with(|v| v.spec_errors += 1);
    }

    /// The text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let calls = crate::stats::calls();
        self.with(|v| render(v, &calls))
    }
}

fn render(v: &Values, calls: &BTreeMap<String, u64>) -> String {
    let mut out = String::new();
    let mut section = |name: &str, kind: &str, help: &str, samples: Vec<String>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for sample in samples {
            let _ = writeln!(out, "{name}{sample}");
        }
    };
    section(
        "idplan_reconciles_total",
        "counter",
        "Reconciles (additive applies) by outcome.",
        v.reconciles
            .iter()
            .map(|(outcome, n)| format!("{{outcome=\"{}\"}} {n}", outcome.label()))
            .collect(),
    );
    section(
        "idplan_changes_applied_total",
        "counter",
        "Cloud writes the watcher applied, by resource type.",
        v.applied
            .iter()
            .map(|(kind, n)| format!("{{kind=\"{}\"}} {n}", escape(kind)))
            .collect(),
    );
    section(
        "idplan_changes_withheld",
        "gauge",
        "Changes waiting for a reviewed apply, by space.",
        v.withheld
            .iter()
            .map(|(space, n)| format!("{{space=\"{}\"}} {n}", escape(space)))
            .collect(),
    );
    let last = v
        .last_success
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    section(
        "idplan_last_success_timestamp_seconds",
        "gauge",
        "When the last reconcile without an error ended (Unix time; 0 before the first).",
        vec![format!(" {last:.3}")],
    );
    section(
        "idplan_cloud_calls_total",
        "counter",
        "Cloud API calls (every attempt), by API.",
        calls
            .iter()
            .map(|(api, n)| format!("{{api=\"{}\"}} {n}", escape(api)))
            .collect(),
    );
    let mut buckets: Vec<String> = BUCKETS
        .iter()
        .zip(v.durations)
        .map(|(le, n)| format!("_bucket{{le=\"{le}\"}} {n}"))
        .collect();
    buckets.push(format!("_bucket{{le=\"+Inf\"}} {}", v.duration_count));
    buckets.push(format!("_sum {}", v.duration_sum));
    buckets.push(format!("_count {}", v.duration_count));
    section(
        "idplan_reconcile_duration_seconds",
        "histogram",
        "How long reconciles took.",
        buckets,
    );
    section(
        "idplan_leader",
        "gauge",
        "1 when this replica is the one that acts.",
        vec![format!(" {}", u8::from(v.leader))],
    );
    section(
        "idplan_spec_load_errors_total",
        "counter",
        "Changed specs that did not load (the last good one is kept).",
        vec![format!(" {}", v.spec_errors)],
    );
    out
}

/// A label value as the format wants it: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Binds `addr` (an error at start, not later) and serves `/healthz`, `/readyz` and
/// `/metrics` until the process ends.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::user(format!("--listen {addr}: cannot listen there: {e}")))?;
    let bound = listener.local_addr().unwrap_or(addr);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let metrics = metrics.clone();
                    async move { Ok::<_, Infallible>(answer(&req, &metrics)) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    Ok(bound)
}

fn answer(req: &Request<Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = content_type.parse() {
            response.headers_mut().insert("content-type", value);
        }
        response
    };
    let text = "text/plain; charset=utf-8";
    match (req.method().as_str(), req.uri().path()) {
        ("GET", "/healthz") => reply(StatusCode::OK, text, "ok\n".into()),
        ("GET", "/readyz") if metrics.is_ready() => reply(StatusCode::OK, text, "ok\n".into()),
        ("GET", "/readyz") => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            text,
            "not ready: the first list of every space is not read yet\n".into(),
        ),
        ("GET", "/metrics") => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        (_, "/healthz" | "/readyz" | "/metrics") => {
            reply(StatusCode::METHOD_NOT_ALLOWED, text, "only GET\n".into())
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            text,
            "not found: /healthz, /readyz and /metrics are served\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Metrics, Outcome};

    #[test]
    fn the_text_format_has_every_family_and_the_histogram_adds_up() {
        let metrics = Metrics::new(["prod"]);
        metrics.reconciled(Outcome::Success, Duration::from_millis(300));
        metrics.reconciled(Outcome::Error, Duration::from_secs(7));
        metrics.applied("aws_iam_role");
        metrics.withheld("prod", 3);
        metrics.leader(true);
        let text = metrics.render();
        for line in [
            "idplan_reconciles_total{outcome=\"success\"} 1",
            "idplan_reconciles_total{outcome=\"withheld\"} 0",
            "idplan_reconciles_total{outcome=\"error\"} 1",
            "idplan_changes_applied_total{kind=\"aws_iam_role\"} 1",
            "idplan_changes_withheld{space=\"prod\"} 3",
            "idplan_reconcile_duration_seconds_bucket{le=\"0.25\"} 0",
            "idplan_reconcile_duration_seconds_bucket{le=\"0.5\"} 1",
            "idplan_reconcile_duration_seconds_bucket{le=\"10\"} 2",
            "idplan_reconcile_duration_seconds_bucket{le=\"+Inf\"} 2",
            "idplan_reconcile_duration_seconds_count 2",
            "idplan_leader 1",
            "# TYPE idplan_reconcile_duration_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
