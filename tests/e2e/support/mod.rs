//! Helpers shared by the end-to-end suites (and by `benches/`, which include this module).
//!
//! - [`TestDir`]: a scratch directory in which a test writes `idplan.yaml` and runs the idplan
//!   binary; [`Output`] is one run, with `#[track_caller]` assertions so that a failure points
//!   at the test's line.
//! - The peers, each on a free loopback port for one test and stopped by process group when
//!   dropped ([`peer`]): [`Ministack`] for AWS (`tests/support/ministack_launcher.py`),
//!   [`FakeArm`], [`FakeGoogle`] and [`FakeKube`] (`tests/support/fake_*.py`). Each module also
//!   adds the `TestDir::idplan_*` that runs idplan against its peer.
//! - [`manual`]: the Spaces guides' manual recipes run literally against those peers (what a
//!   team that set its Space up by hand holds before it meets idplan).
//! - Spec fragments and expectations several suites share: [`namespace`],
//!   [`control_planes`], [`subject`], [`subjects`].

pub mod azurite;
pub mod fake_arm;
pub mod fake_gcs;
pub mod fake_google;
pub mod fake_kube;
pub mod faults;
pub mod manual;
pub mod ministack;
mod peer;
pub mod watcher;

pub use fake_arm::FakeArm;
pub use fake_google::FakeGoogle;
pub use fake_kube::FakeKube;
pub use faults::Faults;
pub use ministack::Ministack;

use std::collections::BTreeSet;
use std::fmt::Display;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// Where the state of a local backend lives, relative to the spec's directory.
pub const STATE_FILE: &str = "state/idplan.state.json";

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A path relative to the repository root (`tests/spec_corpus`, `examples/azure.yaml`,
/// `../shared/reference/...`).
pub fn repo_path(relative: &str) -> PathBuf {
    repo_root().join(relative)
}

/// The idplan binary the tests run: cargo's build of this checkout, or IDPLAN_TEST_BINARY
/// (another build: a copy of this one when the target directory is shared with another
/// checkout that may rebuild it under the tests).
pub fn idplan_binary() -> PathBuf {
    std::env::var_os("IDPLAN_TEST_BINARY")
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_idplan").into())
        .into()
}

/// A fresh directory under the system temp dir, unique across processes and threads.
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

/// Removes `dir` unless the current thread is panicking, in which case it is kept (and named
/// on stderr) for the post-mortem.
fn remove_unless_panicking(dir: &Path) {
    if std::thread::panicking() {
        eprintln!("kept for inspection: {}", dir.display());
    } else {
        let _ = fs::remove_dir_all(dir);
    }
}

/// The host namespace of control plane `i`, as Spaces names them.
pub fn namespace(i: usize) -> String {
    format!("mxp-{i:08x}-5bb8-4a7e-9f41-2fc38ef4b065-system")
}

/// The namespaces of the control planes `indices`.
pub fn namespaces(indices: impl IntoIterator<Item = usize>) -> Vec<String> {
    indices.into_iter().map(namespace).collect()
}

/// A space's `controlPlanes:` entry (indented for a space of the `spaces:` list) listing
/// `namespaces`, or `[]` for none.
pub fn control_planes<N: Display>(namespaces: impl IntoIterator<Item = N>) -> String {
    let list: String = namespaces
        .into_iter()
        .map(|n| format!("      - {n}\n"))
        .collect();
    if list.is_empty() {
        "    controlPlanes: []\n".to_string()
    } else {
        format!("    controlPlanes:\n{list}")
    }
}

/// Sends `signal` (`TERM`, `KILL`, `STOP`, `CONT`) to a process the test started.
#[track_caller]
pub fn signal(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -{signal} {}", child.id());
}

/// The Kubernetes subject of service account `sa` in `namespace`.
pub fn subject(namespace: &str, sa: &str) -> String {
    format!("system:serviceaccount:{namespace}:{sa}")
}

/// The subjects of service account `sa` in each of `namespaces`.
pub fn subjects(namespaces: &[String], sa: &str) -> BTreeSet<String> {
    namespaces.iter().map(|n| subject(n, sa)).collect()
}

/// A scratch directory for one test: write `idplan.yaml` into it, run idplan in it. Removed
/// on drop unless the test is failing.
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

    /// Writes `contents` to `name` (relative to the directory), creating parent directories.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("creating parent directories");
        }
        fs::write(&path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// Reads `name` (relative to the directory).
    #[track_caller]
    pub fn read(&self, name: &str) -> String {
        let path = self.path.join(name);
        match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => panic!("reading {}: {e}", path.display()),
        }
    }

    /// The local state file, parsed.
    #[track_caller]
    pub fn state(&self) -> Value {
        match serde_json::from_str(&self.read(STATE_FILE)) {
            Ok(state) => state,
            Err(e) => panic!("{STATE_FILE} is not JSON: {e}"),
        }
    }

    /// Runs the idplan binary in this directory with no AWS environment at all (for commands
    /// that must not need a cloud).
    pub fn idplan_offline(&self, args: &[&str]) -> Output {
        run(self.command_without(args, &["AWS_"]), args)
    }

    /// Runs the idplan binary in this directory with the machine's own environment and
    /// credentials, less the variables `unset` (the fakes' endpoints): for acceptance tests
    /// against a real cloud.
    pub fn idplan_real(&self, args: &[&str], unset: &[&str]) -> Output {
        let mut cmd = self.command(args);
        for key in unset {
            cmd.env_remove(key);
        }
        run(cmd, args)
    }

    /// The idplan binary with `args` in this directory, without colour, stdin or the caller's
    /// variables whose names start with one of `prefixes`.
    pub(crate) fn command_without(&self, args: &[&str], prefixes: &[&str]) -> Command {
        let mut cmd = self.command(args);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if prefixes.iter().any(|p| key.starts_with(p)) {
                cmd.env_remove(key.as_ref());
            }
        }
        cmd
    }

    /// The idplan binary with `args` in this directory, without colour or stdin.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(idplan_binary());
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

/// Runs `cmd` (idplan with `args`) to its end.
#[track_caller]
pub(crate) fn run(mut cmd: Command, args: &[&str]) -> Output {
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => panic!("running idplan {args:?}: {e}"),
    };
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

    /// Panics, showing stdout, unless it contains `needle`.
    #[track_caller]
    pub fn assert_stdout_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "idplan {:?}: stdout lacks {needle:?}:\n{}",
            self.args,
            self.stdout
        );
        self
    }

    /// Panics, showing stderr, unless it contains `needle`.
    #[track_caller]
    pub fn assert_stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "idplan {:?}: stderr lacks {needle:?}:\n{}",
            self.args,
            self.stderr
        );
        self
    }

    /// stdout parsed as JSON (`--format json`).
    #[track_caller]
    pub fn json(&self) -> Value {
        match serde_json::from_str(&self.stdout) {
            Ok(json) => json,
            Err(e) => panic!(
                "idplan {:?}: stdout is not JSON ({e}):\n{}",
                self.args, self.stdout
            ),
        }
    }

    /// The `IDPLAN_STATS=json` report on stderr: `api_calls`, `retries`, ...
    #[track_caller]
    pub fn stats(&self) -> Value {
        self.stderr
            .lines()
            .rev()
            .find_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|v| v.get("api_calls").is_some())
            .unwrap_or_else(|| {
                panic!(
                    "idplan {:?}: no stats on stderr:\n{}",
                    self.args, self.stderr
                )
            })
    }
}

/// A small deterministic generator (xorshift64*) for the generated test cases: no
/// dependency, the same cases for the same seed.
pub struct Rng(pub u64);

impl Rng {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// True once in `one_in` on average.
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}
