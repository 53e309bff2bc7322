//! [`Watcher`]: a running `idplan watch` whose log lines (`--log-format json`, on stderr) are
//! read as they come, so that a test or a bench waits on the event it needs, not on the
//! clock; and its `/metrics`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The most any wait here takes before it panics.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// A running `idplan watch` and the log lines it wrote so far.
pub struct Watcher {
    /// How long a wait takes before it panics ([`PATIENCE`] unless set).
    pub patience: Duration,
    pub child: Child,
    pub lines: Arc<(Mutex<Vec<Value>>, Condvar)>,
}

impl Watcher {
    pub fn spawn(mut command: Command) -> Watcher {
        command.stderr(Stdio::piped()).stdout(Stdio::null());
        let mut child = command.spawn().expect("starting idplan watch");
        let stderr = child.stderr.take().expect("piped stderr");
        let lines: Arc<(Mutex<Vec<Value>>, Condvar)> = Arc::default();
        let shared = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| json!({"event": "raw", "message": line}));
                let (log, changed) = &*shared;
                log.lock().unwrap_or_else(|e| e.into_inner()).push(value);
                changed.notify_all();
            }
            let (log, changed) = &*shared;
            log.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(json!({"event": "eof"}));
            changed.notify_all();
        });
        Watcher {
            patience: PATIENCE,
            child,
            lines,
        }
    }

    /// Blocks until a line satisfies `want`; the line.
    #[track_caller]
    pub fn wait(&self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        self.wait_log(what, |lines| lines.iter().find(|l| want(l)).cloned())
    }

    /// Blocks until `found` finds something in the log so far (called again on each line).
    #[track_caller]
    pub fn wait_log<T>(&self, what: &str, found: impl Fn(&[Value]) -> Option<T>) -> T {
        let (log, changed) = &*self.lines;
        let deadline = Instant::now() + self.patience;
        let mut lines = log.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(out) = found(&lines) {
                return out;
            }
            if lines.iter().any(|l| l["event"] == "eof") {
                panic!("idplan watch ended before {what}:\n{}", show(&lines));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!("waited {:?} for {what}:\n{}", self.patience, show(&lines));
            }
            lines = changed
                .wait_timeout(lines, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Blocks until the watcher logged event `event` whose message contains `text`.
    #[track_caller]
    pub fn wait_event(&self, event: &str, text: &str) -> Value {
        self.wait(&format!("a `{event}` line with {text:?}"), |l| {
            l["event"] == event && l["message"].as_str().is_some_and(|m| m.contains(text))
        })
    }

    /// Blocks until a batch with host namespace `ns` logged `event` (`reconciled`, `error`).
    #[track_caller]
    pub fn wait_batch(&self, event: &str, ns: &str) -> Value {
        self.wait(&format!("a `{event}` batch with {ns}"), |l| {
            l["event"] == event && in_batch(l, ns)
        })
    }

    pub fn events(&self, event: &str) -> Vec<Value> {
        let lines = self.lines.0.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .filter(|l| l["event"] == event)
            .cloned()
            .collect()
    }

    /// The address it serves /metrics on.
    #[track_caller]
    pub fn address(&self) -> String {
        let line = self.wait_event("listening", "http://");
        line["address"].as_str().unwrap().to_string()
    }

    /// `/metrics` (or another path), checking the format's content type for /metrics.
    #[track_caller]
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(&self.address(), path)
    }

    /// One sample of /metrics: the value of the line starting with `series`.
    #[track_caller]
    pub fn metric(&self, series: &str) -> f64 {
        let (status, text) = self.get("/metrics");
        assert_eq!(status, 200);
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    /// Every cloud call the watcher counted so far (the sum of `idplan_cloud_calls_total`).
    #[track_caller]
    pub fn cloud_calls(&self) -> f64 {
        let (_, text) = self.get("/metrics");
        text.lines()
            .filter(|l| l.starts_with("idplan_cloud_calls_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Sends `signal` and waits for the exit; the exit code and how long it took.
    pub fn stop(&mut self, signal: &str) -> (Option<i32>, Duration) {
        let started = Instant::now();
        super::signal(&self.child, signal);
        let code = self.child.wait().expect("waiting for idplan watch").code();
        (code, started.elapsed())
    }

    pub fn log(&self) -> String {
        show(&self.lines.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn show(lines: &[Value]) -> String {
    lines
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A plain HTTP/1.1 GET: (status, body).
pub fn http_get(address: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connecting to /metrics");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if path == "/metrics" && status == 200 {
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
    }
    (status, body.to_string())
}

/// Whether the batch of a log line holds host namespace `ns`.
pub fn in_batch(line: &Value, ns: &str) -> bool {
    line["control_planes"]
        .as_str()
        .is_some_and(|b| b.split(',').any(|n| n == ns))
}

/// How long a pass took, in seconds, from its `reconciled` line (`... in 1.8s`).
pub fn took(line: &Value) -> Option<f64> {
    let message = line["message"].as_str()?;
    message
        .rsplit(" in ")
        .next()?
        .strip_suffix('s')?
        .parse()
        .ok()
}
