//! The CI recipes under examples/ci/ pass the linters (installed pinned by
//! scripts/install-test-deps.sh into .venv-ci-lint): check-jsonschema with its bundled GitHub
//! workflow and GitLab CI schemas, zizmor's workflow security audits (offline, pedantic); and
//! docs/ci.md documents each of them.

use std::path::PathBuf;
use std::process::Command;

use crate::support::repo_path;

/// A linter installed in .venv-ci-lint.
pub(crate) fn linter(name: &str) -> PathBuf {
    let path = repo_path(".venv-ci-lint/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-test-deps.sh",
        path.display()
    );
    path
}

fn recipes(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_path(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files
}

#[track_caller]
fn passes(mut command: Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?} exited {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_ci_recipes_pass_the_linters_and_are_documented() {
    let github = recipes("examples/ci/github");
    let gitlab = recipes("examples/ci/gitlab");
    assert_eq!(github.len(), 3, "plan, apply, drift: {github:?}");
    assert_eq!(gitlab.len(), 1, "{gitlab:?}");
    for (schema, files) in [
        ("vendor.github-workflows", &github),
        ("vendor.gitlab-ci", &gitlab),
    ] {
        let mut check = Command::new(linter("check-jsonschema"));
        check.args(["--builtin-schema", schema]).args(files);
        passes(check);
    }
    let mut zizmor = Command::new(linter("zizmor"));
    zizmor
        .args(["--offline", "--persona", "pedantic", "--no-progress"])
        .args(&github)
        .env_remove("GH_TOKEN")
        .env_remove("GITHUB_TOKEN");
    passes(zizmor);

    // The linters do fail: a workflow that interpolates an expression into a shell script and
    // uses an unpinned action is refused.
    let dir = crate::support::TestDir::new();
    let bad = dir.write(
        "bad.yml",
        "name: bad\non: pull_request\npermissions: {}\njobs:\n  x:\n    name: x\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: actions/checkout@v4\n      - run: echo \"${{ github.event.pull_request.title }}\"\n",
    );
    let out = Command::new(linter("zizmor"))
        .args(["--offline", "--no-progress"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "zizmor let a template injection pass"
    );

    let docs = std::fs::read_to_string(repo_path("docs/ci.md")).unwrap();
    for file in github.iter().chain(&gitlab) {
        let relative = file
            .strip_prefix(repo_path(""))
            .unwrap()
            .display()
            .to_string();
        assert!(
            docs.contains(&relative),
            "docs/ci.md does not mention {relative}"
        );
    }
}
