//! [`Faults`]: a cloud's bad days in a test peer. Every peer (the ministack launcher, the
//! fake ARM and Google servers) takes the same arguments (`tests/support/faults.py`): a share
//! of requests answered with throttling, a 5xx, or a 5xx after the write was done, and a log
//! of every fault that fired, which the test reads to show that they did.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::TestDir;

/// The fault arguments of one peer, and the log they write. Faults fire only while they are
/// [`Faults::on`]: a test seeds its peer and reads what it holds with them off.
pub struct Faults {
    pub log: PathBuf,
    switch: PathBuf,
    args: Vec<String>,
}

impl Faults {
    /// `rate` (0 to 1) of the peer's API requests faulted, every kind, logged in `dir`.
    pub fn rate(dir: &TestDir, rate: f64, seed: u64) -> Faults {
        let log = dir.path().join("faults.log");
        let switch = dir.path().join("faults.on");
        let args = vec![
            "--fault-switch".into(),
            switch.display().to_string(),
            "--faults".into(),
            rate.to_string(),
            "--fault-seed".into(),
            seed.to_string(),
            "--fault-log".into(),
            log.display().to_string(),
        ];
        Faults { log, switch, args }
    }

    /// No fault, only a log of every API request the peer answers (`requests`).
    pub fn logging(dir: &TestDir) -> Faults {
        let mut faults = Faults::rate(dir, 0.0, 0);
        faults.args.extend([
            "--request-log".into(),
            dir.path().join("requests.log").display().to_string(),
        ]);
        faults
    }

    /// Every API request the peer answered (with [`Faults::logging`]): (write, request).
    pub fn requests(&self) -> Vec<(bool, String)> {
        let path = self.log.with_file_name("requests.log");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        text.lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("request log line {line:?}: {e}"));
                (
                    v["write"].as_bool().unwrap_or(true),
                    v["request"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// The writes among the requests after the first `from`.
    pub fn writes_since(&self, from: usize) -> Vec<String> {
        self.requests()
            .into_iter()
            .skip(from)
            .filter(|(write, _)| *write)
            .map(|(_, request)| request)
            .collect()
    }

    /// As it is, and the first write matching `pattern` (as [`Faults::targeted`] describes
    /// requests) loses its reply whatever the rate: a test of every fault kind shows a lost
    /// reply on that call.
    pub fn losing_first(mut self, pattern: &str) -> Faults {
        self.args.extend(["--fault-lost-on".into(), pattern.into()]);
        self
    }

    /// As it is, with a write gate ([`Faults::gate`]).
    pub fn gated(mut self) -> Faults {
        let socket = self.log.with_file_name("gate.sock");
        self.args
            .extend(["--write-gate".into(), socket.display().to_string()]);
        self
    }

    /// Arms the peer's write gate (see `WriteGate` in tests/support/faults.py): from now on
    /// it counts the writes that landed whose description matches `pattern`, and holds the
    /// reply of the `n`th (and every other request) until the [`HeldWrite`] is dropped.
    #[track_caller]
    pub fn gate(&self, n: usize, pattern: &str) -> Gate {
        let socket = self.log.with_file_name("gate.sock");
        let stream = UnixStream::connect(&socket)
            .unwrap_or_else(|e| panic!("the write gate {}: {e}", socket.display()));
        let mut gate = Gate {
            reader: BufReader::new(stream.try_clone().expect("cloning the gate socket")),
            stream,
            n,
        };
        let ask = serde_json::json!({"n": n, "match": pattern}).to_string();
        writeln!(gate.stream, "{ask}").expect("arming the write gate");
        let armed = gate.line();
        assert_eq!(armed["armed"], true, "the write gate answered {armed}");
        gate
    }

    /// Faults fire from now on.
    pub fn on(&self) {
        std::fs::write(&self.switch, "").expect("writing the fault switch");
    }

    /// No fault fires from now on.
    pub fn off(&self) {
        let _ = std::fs::remove_file(&self.switch);
    }

    /// Only requests matching `pattern` (a Python regular expression over "iam:CreateRole",
    /// "eks:POST /clusters/...", "PUT /subscriptions/...", "POST /v1/projects/..."), with
    /// `kind`, each request once (its retry goes through), at most `limit` times.
    pub fn targeted(dir: &TestDir, kind: &str, pattern: &str, limit: u32) -> Faults {
        let mut faults = Faults::rate(dir, 1.0, 0);
        faults.args.extend([
            "--fault-kinds".into(),
            kind.into(),
            "--fault-match".into(),
            pattern.into(),
            "--fault-limit".into(),
            limit.to_string(),
            "--fault-once".into(),
        ]);
        faults
    }

    /// Faults on every API request that the rule of [`Faults::on_requests`] lets through, none
    /// before: a peer whose faults a test moves from call to call.
    pub fn ruled(dir: &TestDir) -> Faults {
        Faults::rate(dir, 1.0, 0)
    }

    /// From now on, faults of `kinds` fire on the requests whose whole description (as the
    /// peer logs it) is one of `requests`; with `once`, each request (description and body)
    /// once, so that its retry goes through, else on every attempt.
    pub fn on_requests(&self, requests: &[String], kinds: &[&str], once: bool) {
        let pattern = requests
            .iter()
            .map(|r| python_re_escape(r))
            .collect::<Vec<_>>()
            .join("|");
        let rule = serde_json::json!({
            "match": format!("^({pattern})$"),
            "kinds": kinds,
            "once": once,
        });
        std::fs::write(&self.switch, rule.to_string()).expect("writing the fault switch");
    }

    /// From now on, every request matching `pattern` (a Python regular expression over the
    /// peer's description of it) is faulted once with `kind`, and no other request.
    pub fn each_once(&self, pattern: &str, kind: &str) {
        let rule =
            serde_json::json!({"match": pattern, "kinds": [kind], "once": true, "rate": 1.0});
        std::fs::write(&self.switch, rule.to_string()).expect("writing the fault switch");
    }

    /// The peer's command-line arguments.
    pub fn args(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }

    /// Every fault that fired: (kind, request).
    pub fn fired(&self) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("fault log line {line:?}: {e}"));
                (
                    v["kind"].as_str().unwrap_or_default().to_string(),
                    v["request"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// How many faults of each kind fired.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for (kind, _) in self.fired() {
            *out.entry(kind).or_default() += 1;
        }
        out
    }

    /// Asserts that every kind fired, and a lost reply on a request matching `write` (a piece
    /// of the request) among them; returns how many of each kind.
    #[track_caller]
    pub fn assert_all_fired(&self, write: &str) -> BTreeMap<String, usize> {
        let counts = self.counts();
        for kind in ["throttle", "error", "lost"] {
            assert!(
                counts.get(kind).is_some_and(|n| *n > 0),
                "no {kind} fault fired: {counts:?}"
            );
        }
        assert!(
            self.fired()
                .iter()
                .any(|(kind, request)| kind == "lost" && request.contains(write)),
            "no lost reply on {write}: {:?}",
            self.fired()
        );
        counts
    }
}

/// An armed write gate of a peer.
pub struct Gate {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
    n: usize,
}

impl Gate {
    fn line(&mut self) -> Value {
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .expect("reading the write gate");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("the write gate said {line:?}: {e}"))
    }

    /// Blocks until the `n`th write landed; its reply is held until the [`HeldWrite`] drops.
    /// Panics when the peer saw fewer writes within its wait.
    #[track_caller]
    pub fn wait(mut self) -> HeldWrite {
        // The peer answers within its own wait (WriteGate.WAIT); this bounds a dead peer.
        self.stream
            .set_read_timeout(Some(Duration::from_secs(180)))
            .expect("a timeout on the gate socket");
        let hit = self.line();
        if let Some(count) = hit.get("timeout") {
            panic!("the peer saw {count} matching writes, not {}", self.n);
        }
        HeldWrite {
            request: hit["request"].as_str().unwrap_or_default().to_string(),
            body: hit["body"].as_str().unwrap_or_default().to_string(),
            _stream: self.stream,
        }
    }
}

impl HeldWrite {
    /// Lets the peer answer again; the write's description and body.
    pub fn release(self) -> (String, String) {
        (self.request, self.body)
    }
}

/// A write the peer did and whose reply it holds (with every other request) until this drops.
pub struct HeldWrite {
    /// Its description, as the fault log has it (`eks:POST /clusters/...`).
    pub request: String,
    /// Its body, as text.
    pub body: String,
    _stream: UnixStream,
}

/// `text` as a Python regular expression that matches it literally.
fn python_re_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.^$*+?{}[]|()".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
