//! Helpers shared by the integration tests (`mod common;`).
//!
//! [`Ministack`] runs a private ministack (IAM, STS and EKS; see
//! `tests/support/ministack_launcher.py`) on a free loopback port for one test
//! and stops it by pid when dropped. [`TestDir`] is a scratch directory in
//! which a test writes `idplan.yaml` and runs the idplan binary against it.
//!
//! Not every test uses every helper.
#![allow(dead_code)]

pub mod fake_google;

use std::fmt;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a starting ministack gets to answer its health check.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping ministack gets after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts with a fresh port when the chosen one was taken before ministack
/// bound it (another test may grab it between our probe and its bind).
const START_ATTEMPTS: usize = 3;

const INSTALL_HINT: &str = "ministack is not installed: run scripts/install-test-deps.sh";

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory under the system temp dir, unique across processes and
/// threads.
fn unique_temp_dir(prefix: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// Removes `dir` unless the current thread is panicking, in which case it is
/// kept (and named on stderr) for the post-mortem.
fn remove_unless_panicking(dir: &Path) {
    if std::thread::panicking() {
        eprintln!("kept for inspection: {}", dir.display());
    } else {
        let _ = fs::remove_dir_all(dir);
    }
}

/// The last `lines` lines of a file, for panic messages.
fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| format!("<cannot read: {e}>"));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A private ministack serving IAM, STS and EKS on `127.0.0.1:port`.
pub struct Ministack {
    /// `http://127.0.0.1:<port>`: the endpoint for every service.
    pub endpoint: String,
    pub port: u16,
    /// ministack's combined stdout and stderr.
    pub log: PathBuf,
    /// How long it took from spawn to a healthy answer.
    pub startup: Duration,
    child: Child,
    dir: PathBuf,
}

impl Ministack {
    /// Starts ministack through the launcher on a free port and waits for it to
    /// be healthy. Panics, with a way out, when ministack is not installed or
    /// does not come up.
    #[track_caller]
    pub fn start() -> Ministack {
        Ministack::start_with(&[])
    }

    /// As [`Ministack::start`], with more launcher arguments (`--throttle-every N`).
    #[track_caller]
    pub fn start_with(launcher_args: &[&str]) -> Ministack {
        let python = match std::env::var_os("IDPLAN_MINISTACK_PYTHON") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => repo_root().join(".venv-ministack/bin/python"),
        };
        if !python.exists() {
            panic!("{INSTALL_HINT} ({} does not exist)", python.display());
        }
        let launcher = repo_root().join("tests/support/ministack_launcher.py");
        assert!(launcher.exists(), "{} is missing", launcher.display());

        let dir = unique_temp_dir("idplan-ministack");
        let tmp = dir.join("tmp");
        fs::create_dir_all(&tmp).expect("creating ministack's TMPDIR");

        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            let log = dir.join(format!("ministack-{port}.log"));
            let out = File::create(&log).expect("creating the ministack log");
            let err = out.try_clone().expect("cloning the ministack log handle");
            let started = Instant::now();
            let child = Command::new(&python)
                .arg(&launcher)
                .arg("--port")
                .arg(port.to_string())
                .arg("--exit-with-parent")
                .args(launcher_args)
                .current_dir(repo_root())
                .env("TMPDIR", &tmp)
                .env("PYTHONUNBUFFERED", "1")
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                // Its own process group, so stopping it takes anything it spawned.
                .process_group(0)
                .spawn();
            let child = match child {
                Ok(child) => child,
                Err(e) => panic!("{INSTALL_HINT} (running {}: {e})", python.display()),
            };
            let mut ms = Ministack {
                endpoint: format!("http://127.0.0.1:{port}"),
                port,
                log,
                startup: Duration::ZERO,
                child,
                dir: dir.clone(),
            };
            match ms.wait_healthy() {
                Ok(()) => {
                    ms.startup = started.elapsed();
                    return ms;
                }
                Err(Exit::Early(status))
                    if attempt < START_ATTEMPTS && tail(&ms.log, 40).contains("in use") =>
                {
                    // The port was taken under us: try another.
                    failures.push(format!(
                        "attempt {attempt} on port {port} exited with {status}:\n{}",
                        tail(&ms.log, 20)
                    ));
                    ms.stop();
                    std::mem::forget(ms);
                }
                Err(e) => {
                    let log = tail(&ms.log, 40);
                    let path = ms.log.display().to_string();
                    ms.stop();
                    std::mem::forget(ms);
                    let earlier = failures.join("\n");
                    if log.contains("No module named") {
                        panic!("{INSTALL_HINT} ({e}; log {path}):\n{log}");
                    }
                    panic!("ministack did not start: {e}; log {path}:\n{log}\n{earlier}");
                }
            }
        }
        unreachable!("the last attempt panics or returns")
    }

    fn wait_healthy(&mut self) -> Result<(), Exit> {
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if let Some(status) = self.child.try_wait().expect("polling ministack") {
                return Err(Exit::Early(status.to_string()));
            }
            if health_ok(addr) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Exit::Timeout);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The environment for the idplan binary (and any AWS SDK) to talk to this
    /// ministack: its endpoint, static test credentials and us-east-1. The
    /// caller's `AWS_*` variables must not be inherited besides these (see
    /// [`Ministack::apply_env`]); the shared config files point nowhere, so no
    /// profile on the machine leaks in.
    pub fn env(&self) -> Vec<(String, String)> {
        let missing = self.dir.join("no-such-aws-file");
        let missing = missing.to_string_lossy().into_owned();
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", missing.as_str()),
            ("AWS_SHARED_CREDENTIALS_FILE", missing.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Clears every inherited `AWS_*` variable of `cmd` (AWS_PROFILE,
    /// AWS_SESSION_TOKEN, ...) and sets [`Ministack::env`].
    pub fn apply_env(&self, cmd: &mut Command) {
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(key);
            }
        }
        cmd.envs(self.env());
    }

    /// An SDK config for this ministack: its endpoint, static test
    /// credentials, us-east-1, the latest behavior version.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let credentials =
            aws_sdk_sts::config::Credentials::new("test", "test", None, None, "idplan-tests");
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(credentials)
            .load()
            .await
    }

    /// Creates an EKS cluster named `name` and returns its OIDC issuer URL
    /// (ministack's is `http://127.0.0.1:<port>/oidc/id/<ID>`).
    pub async fn create_cluster(&self, name: &str) -> String {
        let eks = aws_sdk_eks::Client::new(&self.sdk_config().await);
        let vpc = aws_sdk_eks::types::VpcConfigRequest::builder()
            .subnet_ids("subnet-00000000000000001")
            .subnet_ids("subnet-00000000000000002")
            .build();
        let out = eks
            .create_cluster()
            .name(name)
            .role_arn("arn:aws:iam::000000000000:role/eks")
            .resources_vpc_config(vpc)
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating EKS cluster {name}: {e:?}"));
        out.cluster()
            .and_then(|c| c.identity())
            .and_then(|i| i.oidc())
            .and_then(|o| o.issuer())
            .unwrap_or_else(|| panic!("cluster {name} has no identity.oidc.issuer: {out:?}"))
            .to_string()
    }

    /// Stops the server: SIGTERM to its process group, SIGKILL after
    /// [`STOP_TIMEOUT`], then reaps it.
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

impl Drop for Ministack {
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

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("finding a free loopback port")
}

/// Whether `GET /_ministack/health` answers 200 and lists EKS.
fn health_ok(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET /_ministack/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    if stream.read_to_string(&mut response).is_err() {
        return false;
    }
    response.starts_with("HTTP/1.1 200") && response.contains("\"eks\"")
}

/// A scratch directory for one test: write `idplan.yaml` into it, run idplan
/// in it. Removed on drop unless the test is failing.
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    pub fn new() -> TestDir {
        TestDir {
            path: unique_temp_dir("idplan-test"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `name` (relative to the directory), creating parent
    /// directories.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("creating parent directories");
        }
        fs::write(&path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// Reads `name` (relative to the directory).
    pub fn read(&self, name: &str) -> String {
        let path = self.path.join(name);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }

    /// Runs the idplan binary in this directory against `ms`.
    pub fn idplan(&self, ms: &Ministack, args: &[&str]) -> Output {
        self.idplan_with_env(ms, args, &[])
    }

    /// As [`TestDir::idplan`], with more environment variables.
    pub fn idplan_with_env(&self, ms: &Ministack, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args);
        ms.apply_env(&mut cmd);
        cmd.envs(env.iter().copied());
        run(cmd, args)
    }

    /// Runs the idplan binary in this directory with no AWS environment at all
    /// (for commands that must not need a cloud).
    pub fn idplan_offline(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(args);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(key);
            }
        }
        run(cmd, args)
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        // IDPLAN_TEST_BINARY runs another build of idplan (a copy of this one when the target
        // directory is shared with another checkout that may rebuild it under the tests).
        let binary = std::env::var_os("IDPLAN_TEST_BINARY")
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_idplan").into());
        let mut cmd = Command::new(binary);
        cmd.args(args)
            .current_dir(&self.path)
            .env("NO_COLOR", "1")
            .env_remove("CLICOLOR_FORCE")
            .stdin(Stdio::null());
        cmd
    }
}

impl Default for TestDir {
    fn default() -> Self {
        TestDir::new()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        remove_unless_panicking(&self.path);
    }
}

pub(crate) fn run(mut cmd: Command, args: &[&str]) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running idplan {args:?}: {e}"));
    Output {
        args: args.iter().map(|a| a.to_string()).collect(),
        // A signal is not an exit code; -1 never matches an expected one.
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// What one idplan run produced.
#[derive(Debug, Clone)]
pub struct Output {
    pub args: Vec<String>,
    /// The exit code; -1 when killed by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics, showing both streams, unless idplan exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "idplan {:?} exited {} (expected {code})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args, self.code, self.stdout, self.stderr
        );
        self
    }
}

/// A private fake Azure Resource Manager (`tests/support/fake_arm.py`, Python 3 standard
/// library only) on a free loopback port; stopped by pid (its process group) when dropped.
pub struct FakeArm {
    /// `http://127.0.0.1:<port>`: `IDPLAN_AZURE_ARM_ENDPOINT`.
    pub endpoint: String,
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

impl FakeArm {
    #[track_caller]
    pub fn start() -> FakeArm {
        Self::launch("fake_arm.py", &[])
    }

    /// Starts `tests/support/<script> PORT [ARGS...]`, a fake with `/health`.
    #[track_caller]
    pub(crate) fn launch(script: &str, args: &[&str]) -> FakeArm {
        let name = script.trim_end_matches(".py").replace('_', "-");
        let script = repo_root().join("tests/support").join(script);
        let dir = unique_temp_dir(&format!("idplan-{name}"));
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let log = dir.join(format!("{name}-{port}.log"));
            let out = File::create(&log).expect("creating the fake's log");
            let err = out.try_clone().expect("cloning the log handle");
            let child = Command::new("python3")
                .arg(&script)
                .arg(port.to_string())
                .args(args)
                .env("PYTHONUNBUFFERED", "1")
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("python3 is needed for the fake {name} server: {e}"));
            let mut arm = FakeArm {
                endpoint: format!("http://127.0.0.1:{port}"),
                port,
                child,
                dir: dir.clone(),
            };
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if let Ok(Some(status)) = arm.child.try_wait() {
                    last = format!("exited with {status}:\n{}", tail(&log, 20));
                    break;
                }
                if arm.request("GET", "/health", None).0 == 200 {
                    return arm;
                }
                if Instant::now() >= deadline {
                    last = format!("not healthy after {START_TIMEOUT:?}:\n{}", tail(&log, 20));
                    break;
                }
                std::thread::sleep(Duration::from_millis(30));
            }
            arm.stop();
            std::mem::forget(arm);
        }
        panic!("the fake {name} server did not start: {last}");
    }

    /// One HTTP request to the fake: (status, body as JSON or null).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        self.request_with_token(method, path, body, "test-token", "application/json")
    }

    /// One HTTP request with this bearer token and content type.
    pub fn request_with_token(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        token: &str,
        content_type: &str,
    ) -> (u16, serde_json::Value) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
            return (0, serde_json::Value::Null);
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Authorization: Bearer {token}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return (0, serde_json::Value::Null);
        }
        let mut response = String::new();
        if stream.read_to_string(&mut response).is_err() {
            return (0, serde_json::Value::Null);
        }
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        (status, serde_json::from_str(body).unwrap_or_default())
    }

    /// A test-only admin call (`/admin/...`) that must succeed.
    #[track_caller]
    pub fn admin(&self, path: &str, body: serde_json::Value) {
        let (status, out) = self.request("POST", path, Some(&body));
        assert_eq!(status, 204, "POST {path}: {status} {out}");
    }

    /// Everything the fake holds: identities, fics, assignments, vaults.
    pub fn state(&self) -> serde_json::Value {
        self.request("GET", "/admin/state", None).1
    }

    /// The environment for the idplan binary: the fake's endpoint and a test token.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("IDPLAN_AZURE_ARM_ENDPOINT".into(), self.endpoint.clone()),
            ("IDPLAN_AZURE_ACCESS_TOKEN".into(), "test-token".into()),
        ]
    }

    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        signal_group("TERM", &format!("-{}", self.child.id()));
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for FakeArm {
    fn drop(&mut self) {
        self.stop();
        remove_unless_panicking(&self.dir);
    }
}

impl TestDir {
    /// Runs the idplan binary in this directory against the fake ARM server, with no AWS
    /// or Azure environment of the caller's.
    pub fn idplan_azure(&self, arm: &FakeArm, args: &[&str]) -> Output {
        let mut cmd = self.command(args);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("AWS_")
                || key.starts_with("AZURE_")
                || key.starts_with("IDPLAN_AZURE")
            {
                cmd.env_remove(key.as_ref());
            }
        }
        cmd.envs(arm.env());
        run(cmd, args)
    }
}

/// A private fake Kubernetes API server (`tests/support/fake_kube.py`) on a free loopback
/// port, requiring a bearer token; the same process handling as [`FakeArm`].
pub struct FakeKube(pub FakeArm);

pub const KUBE_TOKEN: &str = "kube-test-token";

impl FakeKube {
    #[track_caller]
    pub fn start() -> FakeKube {
        FakeKube(FakeArm::launch("fake_kube.py", &[KUBE_TOKEN]))
    }

    /// Creates or replaces an object (`resource`: controlplanes, serviceaccounts, pods,
    /// replicasets, deployments).
    #[track_caller]
    pub fn put(&self, resource: &str, object: serde_json::Value) {
        self.0.admin(
            "/admin/objects",
            serde_json::json!({"resource": resource, "object": object}),
        );
    }

    #[track_caller]
    pub fn delete(&self, resource: &str, namespace: &str, name: &str) {
        self.0.admin(
            "/admin/delete",
            serde_json::json!({"resource": resource, "namespace": namespace, "name": name}),
        );
    }

    /// `{"objects": {resource: {"ns/name": object}}, "patches": [...]}`.
    pub fn state(&self) -> serde_json::Value {
        self.0.state()
    }

    /// A kubeconfig whose context `context` points at the fake over plain HTTP.
    pub fn kubeconfig(&self, context: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n  - name: fake\n    cluster:\n      \
             server: {}\ncontexts:\n  - name: {context}\n    context:\n      cluster: fake\n      \
             user: tester\ncurrent-context: {context}\nusers:\n  - name: tester\n    user:\n      \
             token: {KUBE_TOKEN}\n",
            self.0.endpoint
        )
    }
}
