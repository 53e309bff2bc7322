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
    files_ending(dir, "yml")
}

/// The files of `dir` (relative to the repository) whose extension is `ext`, sorted.
pub(crate) fn files_ending(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_path(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
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

/// A shell line cut into words: quotes removed (what they hold stays one word), `$VAR` and
/// `${VAR}` replaced by the placeholder `VAR`.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            // A comment, to the end of the line.
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (q, '$') if q != Some('\'') => {
                in_word = true;
                let braced = chars.next_if_eq(&'{').is_some();
                while let Some(n) = chars.next_if(|n| n.is_ascii_alphanumeric() || *n == '_') {
                    word.push(n);
                }
                match braced {
                    // Not a shell variable (a GitHub expression, `${{ ... }}`): kept as it is.
                    true if word.is_empty() => word.push_str("${"),
                    true => assert_eq!(chars.next(), Some('}'), "{line}"),
                    false => {}
                }
            }
            (_, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    assert!(quote.is_none(), "unclosed quote: {line}");
    if in_word {
        words.push(word);
    }
    words
}

/// Every `idplan` command line of a recipe (a script line with `\` continuations joined): the
/// arguments after `idplan`, up to the redirection or the shell operator that ends it. Only an
/// `idplan` in command position counts (`cargo install ... idplan` installs it).
fn idplan_commands(recipe: &str) -> Vec<Vec<String>> {
    let joined = recipe.replace("\\\n", " ");
    let mut commands = Vec::new();
    for line in joined.lines() {
        let line = line.trim_start();
        if !line.contains("idplan ") {
            continue;
        }
        let words = words(line);
        for (i, word) in words.iter().enumerate() {
            let starts_command = i == 0
                || matches!(
                    words[i - 1].as_str(),
                    "-" | "run:" | "if" | "!" | "then" | "&&" | "||" | "|" | ";"
                );
            if word != "idplan" || !starts_command {
                continue;
            }
            let args: Vec<String> = words[i + 1..]
                .iter()
                .take_while(|w| {
                    !w.starts_with('>')
                        && !w.starts_with("2>")
                        && !matches!(w.as_str(), "&&" | "||" | "|" | ";" | "then")
                })
                .map(|w| w.trim_end_matches(';').to_string())
                .collect();
            commands.push(args);
        }
    }
    commands
}

#[test]
fn every_idplan_command_of_the_ci_recipes_parses_with_idplans_command_line() {
    let mut files = recipes("examples/ci/github");
    files.extend(recipes("examples/ci/gitlab"));
    let mut verbs = Vec::new();
    for file in &files {
        let recipe = std::fs::read_to_string(file).unwrap();
        for args in idplan_commands(&recipe) {
            let argv = std::iter::once("idplan".to_string()).chain(args.iter().cloned());
            if let Err(e) = idplan::cli::command().try_get_matches_from(argv) {
                panic!("{}: idplan {}: {e}", file.display(), args.join(" "));
            }
            verbs.push(args[0].clone());
        }
    }
    verbs.sort();
    // plan, apply and drift, once on GitHub and once on GitLab: none was missed.
    assert_eq!(
        verbs,
        ["apply", "apply", "drift", "drift", "plan", "plan"],
        "{files:?}"
    );
    // The parser does refuse: a misspelt flag as a recipe could carry it.
    let typo = idplan_commands("run: idplan plan --out \"pr-$PR.json\" --fromat markdown\n");
    assert_eq!(
        typo,
        [["plan", "--out", "pr-PR.json", "--fromat", "markdown"]]
    );
    let argv = std::iter::once("idplan".to_string()).chain(typo[0].iter().cloned());
    assert!(idplan::cli::command().try_get_matches_from(argv).is_err());
}

/// The `grep` pattern a recipe looks for in `apply.err` to tell a stale plan.
fn stale_pattern(recipe: &str) -> String {
    let line = recipe
        .lines()
        .find(|l| l.contains("grep -q") && l.contains("apply.err"))
        .expect("the apply recipe greps apply.err");
    let words = words(line.trim_start());
    let at = words.iter().position(|w| w == "-q").unwrap();
    words[at + 1].clone()
}

#[tokio::test]
async fn the_apply_recipes_grep_matches_what_idplan_prints_for_a_stale_plan() {
    use crate::support::{Ministack, TestDir};

    let patterns: Vec<String> = [
        "examples/ci/github/idplan-apply.yml",
        "examples/ci/gitlab/idplan.gitlab-ci.yml",
    ]
    .iter()
    .map(|f| stale_pattern(&std::fs::read_to_string(repo_path(f)).unwrap()))
    .collect();
    assert_eq!(patterns, ["is stale", "is stale"]);

    let ms = Ministack::start();
    ms.create_cluster("spaces-prod").await;
    let dir = TestDir::new();
    let spec = crate::aws_irsa::spec(1, "", None);
    dir.write("idplan.yaml", &spec);
    // As the plan recipe does, then the spec changes before the apply.
    dir.idplan(&ms, &["plan", "--out", "pr-7.json", "--format", "markdown"])
        .assert_code(0);
    dir.write("idplan.yaml", &crate::aws_irsa::spec(2, "", None));
    let apply = dir.idplan(&ms, &["apply", "plans/pr-7.json"]);
    apply.assert_code(1);
    let err = dir.write("apply.err", &apply.stderr);
    for pattern in &patterns {
        let grep = Command::new("grep")
            .args(["-q", pattern.as_str()])
            .arg(&err)
            .status()
            .unwrap();
        assert!(
            grep.success(),
            "grep -q {pattern:?} misses:\n{}",
            apply.stderr
        );
    }
    // And it does not match a failure that is not a stale plan.
    let other = dir.write(
        "other.err",
        "error: aws_iam_role.prod.backup: iam:CreateRole failed\n",
    );
    let grep = Command::new("grep")
        .args(["-q", patterns[0].as_str()])
        .arg(&other)
        .status()
        .unwrap();
    assert!(!grep.success());
}
