//! The command line without a cloud: bad input gets located errors and never a panic; help
//! and schema are there.

use crate::support::{TestDir, repo_path};

#[test]
fn every_malformed_spec_fails_validate_with_a_located_error_and_no_panic() {
    let corpus = repo_path("tests/spec_corpus");
    let dir = TestDir::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "valid.yaml" {
            // Loaded by spec_errors.rs; this test is about the malformed ones.
            continue;
        }
        dir.write("idplan.yaml", &std::fs::read_to_string(&path).unwrap());
        for command in ["validate", "plan"] {
            let out = dir.idplan_offline(&[command]);
            out.assert_code(1);
            assert!(!out.stderr.contains("panicked"), "{name}: {}", out.stderr);
            // error: idplan.yaml:<line>:<column>: <field>: <message>
            let first = out.stderr.lines().next().unwrap_or_default();
            let rest = first
                .strip_prefix("error: idplan.yaml:")
                .unwrap_or_else(|| panic!("{name}: {command}: not located: {}", out.stderr));
            let mut parts = rest.splitn(3, ':');
            for what in ["line", "column"] {
                let n = parts.next().unwrap_or_default();
                assert!(
                    n.parse::<usize>().is_ok_and(|n| n > 0),
                    "{name}: no {what} in {first}"
                );
            }
            assert!(out.stdout.is_empty(), "{name}: {}", out.stdout);
        }
        checked += 1;
    }
    assert!(checked > 20, "the corpus has its cases ({checked})");
}

#[test]
fn a_missing_spec_file_is_named() {
    let dir = TestDir::new();
    let out = dir.idplan_offline(&["validate", "-f", "nope.yaml"]);
    out.assert_code(1);
    out.assert_stderr_contains("nope.yaml: cannot read spec");
}

/// `check-jsonschema --schemafile SCHEMA FILES` (installed for the CI lint): its output when
/// it refuses a file, `Ok` when it accepts them all.
fn check_jsonschema(schema: &std::path::Path, files: &[std::path::PathBuf]) -> Result<(), String> {
    let out = std::process::Command::new(crate::ci_recipes::linter("check-jsonschema"))
        .arg("--schemafile")
        .arg(schema)
        .args(files)
        .output()
        .unwrap();
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

#[test]
fn the_schema_validates_every_example_and_refuses_a_broken_spec() {
    let dir = TestDir::new();
    let schema = dir.idplan_offline(&["schema"]);
    schema.assert_code(0);
    assert_eq!(
        schema.json()["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let schema = dir.write("idplan.schema.json", &schema.stdout);
    let examples = crate::ci_recipes::files_ending("examples", "yaml");
    assert!(examples.len() >= 3, "{examples:?}");
    if let Err(e) = check_jsonschema(&schema, &examples) {
        panic!("the schema refuses an example: {e}");
    }
    // Each example is one idplan accepts too.
    for example in &examples {
        let name = example.file_name().unwrap().to_string_lossy().into_owned();
        dir.write(&name, &std::fs::read_to_string(example).unwrap());
        dir.idplan_offline(&["validate", "-f", &name])
            .assert_code(0);
    }

    // Broken the ways a hand edit breaks a spec: the schema refuses each, naming the field.
    let example = std::fs::read_to_string(repo_path("examples/idplan.yaml")).unwrap();
    for (broken, edit, field) in [
        ("mode.yaml", ("mode: irsa", "mode: iam"), "mode"),
        ("key.yaml", ("cluster:", "clusterName:"), "clusterName"),
        (
            "subjects.yaml",
            ("subjects: exact", "subjects: all"),
            "subjects",
        ),
    ] {
        assert!(example.contains(edit.0), "{}", edit.0);
        let file = dir.write(broken, &example.replacen(edit.0, edit.1, 1));
        match check_jsonschema(&schema, &[file]) {
            Ok(()) => panic!("the schema accepts {broken} ({} -> {})", edit.0, edit.1),
            Err(e) => assert!(e.contains(field), "{broken}: {e}"),
        }
        // idplan refuses it as well.
        dir.idplan_offline(&["validate", "-f", broken])
            .assert_code(1);
    }
}

#[test]
fn help_lists_every_command() {
    let dir = TestDir::new();
    let help = dir.idplan_offline(&["--help"]);
    help.assert_code(0);
    for sub in idplan::cli::command().get_subcommands() {
        if !sub.is_hide_set() {
            help.assert_stdout_contains(&format!("  {}", sub.get_name()));
        }
    }
}

#[test]
fn show_refuses_what_is_not_a_plan() {
    let dir = TestDir::new();
    dir.write("plans/bad.json", "{\"format_version\": 3}");
    let out = dir.idplan_offline(&["show", "bad.json"]);
    out.assert_code(1);
    out.assert_stderr_contains("plans/bad.json: not an idplan plan file");
}

#[test]
fn completions_and_man_pages_come_from_the_parser() {
    let dir = TestDir::new();
    for (shell, marker) in [
        ("bash", "_idplan()"),
        ("zsh", "#compdef idplan"),
        ("fish", "complete -c idplan"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = dir.idplan_offline(&["completions", shell]);
        out.assert_code(0).assert_stdout_contains(marker);
        // The commands and their options are all there, the new ones included.
        for word in ["plan", "drift", "verify", "max-chars", "detailed-exitcode"] {
            out.assert_stdout_contains(word);
        }
    }
    // The bash script is valid bash.
    let script = dir.write(
        "idplan.bash",
        &dir.idplan_offline(&["completions", "bash"]).stdout,
    );
    let status = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(status.success());
    dir.idplan_offline(&["completions", "tcsh"])
        .assert_code(1)
        .assert_stderr_contains("invalid value 'tcsh'");

    let man = dir.idplan_offline(&["man"]);
    man.assert_code(0);
    assert!(man.stdout.starts_with(".ie"), "{}", &man.stdout[..200]);
    man.assert_stdout_contains(".TH idplan 1");
    man.assert_stdout_contains("idplan\\-completions");
    dir.idplan_offline(&["man", "--dir", "man"]).assert_code(0);
    let plan_page = dir.read("man/idplan-plan.1");
    assert!(plan_page.contains("max\\-chars"), "{plan_page}");
    assert!(dir.read("man/idplan.1").contains(".TH idplan 1"));
}

/// Without credentials, the first error says what to run or set, then what the SDK tried.
#[test]
fn missing_credentials_name_the_fix() {
    let dir = TestDir::new();
    dir.write(
        "aws.yaml",
        &std::fs::read_to_string(repo_path("examples/idplan.yaml")).unwrap(),
    );
    dir.write(
        "azure.yaml",
        &std::fs::read_to_string(repo_path("examples/azure.yaml")).unwrap(),
    );
    let isolated = |args: &[&str]| {
        let mut cmd = dir.command_without(args, &["AWS_", "AZURE_", "IDPLAN_AZURE_"]);
        cmd.env("HOME", dir.path())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", dir.path().join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
            .env("PATH", "/nonexistent");
        crate::support::run(cmd, args)
    };
    let aws = isolated(&["plan", "-f", "aws.yaml"]);
    aws.assert_code(1);
    aws.assert_stderr_contains(
        "sts:GetCallerIdentity failed: no AWS credentials: run `aws configure`",
    );
    aws.assert_stderr_contains("`aws sso login`");
    assert_eq!(aws.stderr.lines().count(), 1, "one line: {}", aws.stderr);
    let azure = isolated(&["plan", "-f", "azure.yaml"]);
    azure.assert_code(1);
    azure.assert_stderr_contains("no Azure credentials: run `az login`");
    azure.assert_stderr_contains("IDPLAN_AZURE_ACCESS_TOKEN");
    assert_eq!(
        azure.stderr.lines().count(),
        1,
        "one line: {}",
        azure.stderr
    );
    // The top-level help names every cloud's credentials and the remote state.
    let help = dir.idplan_offline(&["--help"]);
    for needed in [
        "aws sso login",
        "az login",
        "IDPLAN_AZURE_ACCESS_TOKEN",
        "gcloud auth",
        "s3://BUCKET/KEY",
    ] {
        help.assert_stdout_contains(needed);
    }
}
