//! A test peer: a server process of its own (ministack, or one of the Python fakes in
//! `tests/support/`) on a free loopback port, started for one test, checked healthy, and
//! stopped by process group when dropped (or restarted on the same port, for a peer that keeps
//! its state on disk). Also the one small HTTP/1.1 client the helpers use to talk to the peers
//! directly.

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{remove_unless_panicking, repo_root, unique_temp_dir};

/// How long a starting peer gets to answer its health check.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping peer gets after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts with a fresh port when the chosen one was taken before the peer bound it
/// (another test may grab it between our probe and its bind).
const START_ATTEMPTS: usize = 3;

/// What to run on a port, with the peer's scratch directory.
pub(crate) type Spawn<'a> = Box<dyn Fn(u16, &Path) -> Command + 'a>;

/// How to start one kind of peer.
pub(crate) struct Launch<'a> {
    /// Names the peer in messages, its scratch directory and its log (`fake-arm`).
    pub name: String,
    /// What to run on `port`, with `dir` (the peer's scratch directory) for its files.
    pub command: Spawn<'a>,
    /// The health check: a GET of this path ...
    pub health: &'a str,
    /// ... whose (status, body) says the peer is ready.
    pub healthy: fn(u16, &str) -> bool,
    /// What to do when the program is missing (spawn fails, or Python lacks a module).
    pub install_hint: String,
}

impl<'a> Launch<'a> {
    /// A Python program of `tests/support/` (a fake, ministack's launcher) run by `python` as
    /// `<script> --port PORT --exit-with-parent ARGS...`, healthy when `health` answers 200.
    /// It writes no bytecode into the checkout, and its temporary files into the peer's
    /// directory. Named after the script (`fake_arm.py`: `fake-arm`).
    pub(crate) fn script(
        python: impl AsRef<OsStr> + 'a,
        script: &str,
        args: Vec<String>,
        health: &'a str,
        install_hint: String,
    ) -> Launch<'a> {
        let path = format!("tests/support/{script}");
        Launch {
            name: script.trim_end_matches(".py").replace('_', "-"),
            command: Box::new(move |port, dir| {
                let tmp = dir.join("tmp");
                std::fs::create_dir_all(&tmp).expect("creating the peer's TMPDIR");
                let mut cmd = Command::new(&python);
                cmd.arg(&path)
                    .args(["--port", &port.to_string(), "--exit-with-parent"])
                    .args(&args)
                    .env("PYTHONDONTWRITEBYTECODE", "1")
                    .env("TMPDIR", tmp);
                cmd
            }),
            health,
            healthy: |status, _| status == 200,
            install_hint,
        }
    }

    /// A script run by the machine's `python3`, which needs nothing installed but itself:
    /// `what` names the peer in the hint.
    pub(crate) fn python3(
        script: &str,
        args: Vec<String>,
        health: &'a str,
        what: &str,
    ) -> Launch<'a> {
        let hint = format!("python3 is needed for {what}: install it (apt-get install python3)");
        Launch::script("python3", script, args, health, hint)
    }
}

/// The program of a peer or a tool the tests run: `$var` when set, else `default` below the
/// repository. Panics with `install_hint` when it is not there.
#[track_caller]
pub(crate) fn installed(var: &str, default: &str, install_hint: &str) -> PathBuf {
    let program = match std::env::var_os(var) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join(default),
    };
    if !program.exists() {
        panic!("{install_hint} ({} does not exist)", program.display());
    }
    program
}

/// A running peer; stopped (SIGTERM, then SIGKILL, to its process group) when dropped.
pub struct Peer {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    pub port: u16,
    /// The peer's combined stdout and stderr.
    pub log: PathBuf,
    /// How long it took from spawn to a healthy answer.
    pub startup: Duration,
    child: Child,
    /// The peer's scratch directory: kept when the test fails.
    pub dir: PathBuf,
}

impl Peer {
    /// Starts the peer on a free port and waits for its health check. Panics, saying what to
    /// install, when the program is missing; with the peer's log when it does not come up.
    #[track_caller]
    pub(crate) fn start(launch: &Launch) -> Peer {
        let name = &launch.name;
        let dir = unique_temp_dir(&format!("idplan-{name}"));
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            let log = dir.join(format!("{name}-{port}.log"));
            let started = Instant::now();
            let child = spawn(launch, port, &dir, &log);
            let mut peer = Peer {
                endpoint: format!("http://127.0.0.1:{port}"),
                port,
                log,
                startup: Duration::ZERO,
                child,
                dir: dir.clone(),
            };
            match peer.wait_healthy(launch) {
                Ok(()) => {
                    peer.startup = started.elapsed();
                    return peer;
                }
                Err(e) => {
                    let log = tail(&peer.log, 40);
                    let path = peer.log.display().to_string();
                    peer.stop();
                    // The directory is shared by the attempts: the last one removes it.
                    std::mem::forget(peer);
                    if log.contains("No module named") {
                        panic!("{} ({e}; log {path}):\n{log}", launch.install_hint);
                    }
                    let port_taken = matches!(e, Exit::Early(_)) && log.contains("in use");
                    if port_taken && attempt < START_ATTEMPTS {
                        failures.push(format!("attempt {attempt} on port {port}: {e}:\n{log}"));
                        continue;
                    }
                    let earlier = failures.join("\n");
                    panic!("{name} did not start: {e}; log {path}:\n{log}\n{earlier}");
                }
            }
        }
        unreachable!("the last attempt panics or returns")
    }

    /// Stops the peer (SIGTERM, as [`Peer`]'s drop does) and starts it again on the same
    /// port and scratch directory, appending to the same log; waits for its health check.
    /// A test restarts a peer that keeps its state on disk (`fake_kube.py --data`) to show
    /// that a client rides over the restart.
    #[track_caller]
    pub(crate) fn restart(&mut self, launch: &Launch) {
        self.stop();
        let started = Instant::now();
        self.child = spawn(launch, self.port, &self.dir, &self.log);
        if let Err(e) = self.wait_healthy(launch) {
            let log = tail(&self.log, 40);
            panic!(
                "{} did not restart on port {}: {e}; log {}:\n{log}",
                launch.name,
                self.port,
                self.log.display()
            );
        }
        self.startup = started.elapsed();
    }

    fn wait_healthy(&mut self, launch: &Launch) -> Result<(), Exit> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("polling the peer") {
                return Err(Exit::Early(status.to_string()));
            }
            if let Some((status, body)) = http(self.port, "GET", launch.health, &[], "")
                && (launch.healthy)(status, &body)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Exit::Timeout);
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Sends `signal` (`STOP`, `CONT`) to the peer's process group: a test freezes a peer to
    /// hold a client at a known point.
    pub fn signal(&self, signal: &str) {
        signal_group(signal, &format!("-{}", self.child.id()));
    }

    /// SIGKILL to its process group, then reaps it: the peer is down for the rest of the test
    /// (a test shows that a reader refuses to answer for a dead peer).
    pub fn kill(&mut self) {
        signal_group("KILL", &format!("-{}", self.child.id()));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM to its process group, SIGKILL after [`STOP_TIMEOUT`], then reaps it.
    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let group = format!("-{}", self.child.id());
        signal_group("TERM", &group);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        signal_group("KILL", &group);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
        remove_unless_panicking(&self.dir);
    }
}

enum Exit {
    Early(String),
    Timeout,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Early(status) => write!(f, "it exited ({status}) before it was healthy"),
            Exit::Timeout => write!(f, "not healthy after {START_TIMEOUT:?}"),
        }
    }
}

fn signal_group(signal: &str, group: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", group])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Spawns the peer's program on `port` in its own process group, its stdout and stderr
/// appended to `log`; panics, saying what to install, when the program is missing.
fn spawn(launch: &Launch, port: u16, dir: &Path, log: &Path) -> Child {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .expect("opening the peer's log");
    let err = out.try_clone().expect("cloning the log handle");
    (launch.command)(port, dir)
        .current_dir(repo_root())
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group, so stopping it takes anything it spawned.
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{} ({}: {e})", launch.install_hint, launch.name))
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("finding a free loopback port")
}

/// The last `lines` lines of a file, for panic messages.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("<cannot read: {e}>"));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One HTTP/1.1 request to `127.0.0.1:port` on a connection of its own: the status and the
/// body. `None` when the peer cannot be reached or its answer is not HTTP.
pub(crate) fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let headers: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    Some((status, body.to_string()))
}
