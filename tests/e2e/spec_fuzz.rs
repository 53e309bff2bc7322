//! The spec loader, fuzzed: a property test on stable Rust, bounded and seeded so that it runs
//! in every `cargo test` (and `.ci/run`). Inputs are the corpus files mutated at the byte,
//! character and line level, and specs generated from the spec's own grammar with values of
//! every YAML type in every place. The property: `validate` (the loader, every check, the
//! recipes and the limits, no cloud call) never panics, and every refusal names the file, at
//! a line and column when the text is at fault.
//!
//! `IDPLAN_FUZZ_CASES` sets the number of cases (default 1,500), `IDPLAN_FUZZ_SEED` the seed
//! (a failure prints both, and the input, to reproduce it).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use idplan::error::Error;

use crate::support::{Rng, TestDir, repo_path};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Scalars of every kind YAML and the spec know, valid and not.
const SCALARS: &[&str] = &[
    "1",
    "0",
    "-1",
    "2",
    "1.5",
    "1e999",
    ".nan",
    ".inf",
    "0x1F",
    "0o7",
    "true",
    "false",
    "yes",
    "no",
    "on",
    "null",
    "~",
    "\"\"",
    "''",
    "prod",
    "Prod",
    "pr_od",
    "a",
    "spaces-prod",
    "us-east-1",
    "us-central1",
    "us-central1-a",
    "eastus",
    "irsa",
    "pod-identity",
    "wildcard",
    "exact",
    "principal",
    "service-account",
    "acme-spaces-backup",
    "acme",
    "ACME",
    "mxp-706c49fa-5bb8-4a7e-9f41-2fc38ef4b065-system",
    "mxp-706c49fa-5bb8-4a7e-9f41-2fc38ef4b065-system-and-then-some-more-characters-to-be-long",
    "6f1c2a3b-0000-4000-8000-00000000c0de",
    "/subscriptions/x/resourceGroups/y",
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:spaces/*",
    "\"é\"",
    "\"\\u0000\"",
    "'a: b'",
    "\"a\\nb\"",
    "&a x",
    "*a",
    "!!str 1",
    "!!binary aGk=",
    "!foo x",
    "|\n  text",
    ">\n  folded",
    "2048",
    "4096",
    "999999999999999999999999",
    "-0",
    "s3://bucket/key",
];

/// The spec's own keys, and some it does not have.
const KEYS: &[&str] = &[
    "version",
    "spaces",
    "state",
    "name",
    "controlPlanes",
    "discover",
    "hostNamespace",
    "aws",
    "azure",
    "gcp",
    "region",
    "cluster",
    "mode",
    "subjects",
    "trustPolicyQuota",
    "subscription",
    "resourceGroup",
    "location",
    "project",
    "components",
    "backup",
    "billing",
    "sharedSecrets",
    "bucket",
    "secrets",
    "storageAccount",
    "container",
    "keyVault",
    "adopt",
    "kubeconfig",
    "context",
    "unknown",
    "Version",
    "<<",
    "? complex",
    "\"quoted\"",
];

/// A random YAML value of `depth` levels at most, in block style at `indent`.
fn value(rng: &mut Rng, depth: usize, indent: usize) -> String {
    let pad = " ".repeat(indent);
    match if depth == 0 { 0 } else { rng.below(6) } {
        0 | 1 => format!(" {}", rng.pick(SCALARS)),
        2 => {
            let items: Vec<String> = (0..rng.below(4))
                .map(|_| rng.pick(SCALARS).to_string())
                .collect();
            format!(" [{}]", items.join(", "))
        }
        3 => {
            let items: Vec<String> = (0..rng.below(3))
                .map(|_| format!("{}: {}", rng.pick(KEYS), rng.pick(SCALARS)))
                .collect();
            format!(" {{ {} }}", items.join(", "))
        }
        4 => {
            let mut out = String::new();
            for _ in 0..1 + rng.below(3) {
                out.push_str(&format!("\n{pad}-{}", value(rng, depth - 1, indent + 2)));
            }
            out
        }
        _ => mapping(rng, depth - 1, indent),
    }
}

/// A block mapping of spec keys (and others) at `indent`, starting on a new line.
fn mapping(rng: &mut Rng, depth: usize, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::new();
    for _ in 0..1 + rng.below(5) {
        let key = rng.pick(KEYS);
        out.push_str(&format!("\n{pad}{key}:{}", value(rng, depth, indent + 2)));
    }
    out
}

/// A spec from the grammar: mostly the right shape, with wrong values and keys mixed in.
fn generated(rng: &mut Rng) -> String {
    let mut out = String::from("version:");
    let version = match rng.chance(4) {
        true => value(rng, 1, 2),
        false => " 1".to_string(),
    };
    out.push_str(&version);
    out.push_str("\nspaces:");
    for _ in 0..rng.below(4) {
        let cloud = *rng.pick(&["aws", "azure", "gcp", "unknown"]);
        out.push_str(&format!("\n  - name:{}", value(rng, 0, 4)));
        out.push_str(&format!("\n    controlPlanes:{}", value(rng, 1, 6)));
        out.push_str(&format!("\n    {cloud}:{}", mapping(rng, 1, 6)));
        if rng.chance(5) {
            // Two clouds in one space.
            out.push_str(&format!(
                "\n    {}:{}",
                rng.pick(&["aws", "azure", "gcp"]),
                mapping(rng, 0, 6)
            ));
        }
        out.push_str("\n    components:");
        for _ in 0..rng.below(4) {
            let component = rng.pick(&["backup", "billing", "sharedSecrets", "other"]);
            out.push_str(&format!("\n      {component}:{}", value(rng, 2, 8)));
        }
        if rng.chance(6) {
            out.push_str(&format!("\n    {}:{}", rng.pick(KEYS), value(rng, 2, 6)));
        }
    }
    if rng.chance(6) {
        out.push_str(&format!("\n{}:{}", rng.pick(KEYS), value(rng, 2, 2)));
    }
    out.push('\n');
    out
}

/// `text` changed at random: bytes flipped, characters inserted or deleted, lines moved.
fn mutated(rng: &mut Rng, text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        if bytes.is_empty() {
            bytes.push(b'-');
        }
        let i = rng.below(bytes.len());
        match rng.below(6) {
            0 => bytes[i] ^= 1 << rng.below(8),
            1 => {
                bytes.remove(i);
            }
            2 => {
                let piece = *rng.pick(&[
                    "\t",
                    ":",
                    "- ",
                    "[",
                    "}",
                    "\"",
                    "&a ",
                    "*a",
                    "\n",
                    "  ",
                    "#",
                    "!!int ",
                    "? ",
                    "|",
                    "---\n",
                    "\u{feff}",
                    "é",
                    "\r",
                    "\0",
                    "<<: *a\n",
                    "{{",
                    "%YAML 1.1\n",
                ]);
                bytes.splice(i..i, piece.bytes());
            }
            3 => bytes.truncate(i),
            4 => {
                let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
                let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                let mut lines: Vec<Vec<u8>> = lines.iter().map(|l| l.to_vec()).collect();
                lines.swap(a, b);
                bytes = lines.join(&b'\n');
            }
            _ => {
                // A random run of bytes, not necessarily UTF-8.
                let run: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
                bytes.splice(i..i, run);
            }
        }
    }
    bytes
}

/// The property, for one input written to `path`.
fn check(path: &Path, input: &[u8], case: u64, seed: u64) {
    std::fs::write(path, input).expect("writing the fuzz input");
    let show = || {
        format!(
            "case {case} (IDPLAN_FUZZ_SEED={seed}), input:\n{}",
            String::from_utf8_lossy(input)
        )
    };
    let result = catch_unwind(AssertUnwindSafe(|| idplan::ops::validate::validate(path)))
        .unwrap_or_else(|_| panic!("validate panicked: {}", show()));
    let file = path.display().to_string();
    match result {
        Ok(line) => assert!(line.contains(&file), "`{line}`: {}", show()),
        Err(Error::Spec(errors)) => {
            assert!(!errors.0.is_empty(), "no errors: {}", show());
            for e in &errors.0 {
                assert!(
                    e.to_string().starts_with(&format!("{file}:")),
                    "`{e}` does not name the file: {}",
                    show()
                );
                assert!(
                    e.location.is_some_and(|at| at.line >= 1 && at.column >= 1),
                    "`{e}` has no line and column: {}",
                    show()
                );
            }
        }
        Err(e @ Error::Internal(_)) => panic!("`{e}`: {}", show()),
        Err(e) => assert!(
            e.to_string().contains(&file),
            "`{e}` does not name the file: {}",
            show()
        ),
    }
}

#[test]
fn no_spec_panics_the_loader_and_every_refusal_names_the_file() {
    let cases = env_number("IDPLAN_FUZZ_CASES", 1_500);
    let seed = env_number("IDPLAN_FUZZ_SEED", 0x1d91_a413);
    let mut rng = Rng(seed | 1);
    let corpus: Vec<String> = std::fs::read_dir(repo_path("tests/spec_corpus"))
        .expect("reading tests/spec_corpus")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "yaml"))
        .map(|e| std::fs::read_to_string(e.path()).expect("reading a corpus file"))
        .collect();
    assert!(corpus.len() > 10, "the corpus is missing");
    let dir = TestDir::new();
    let path = dir.path().join("fuzz.yaml");
    for case in 0..cases {
        let input = match case % 3 {
            0 => generated(&mut rng).into_bytes(),
            1 => {
                let generated = generated(&mut rng);
                mutated(&mut rng, &generated)
            }
            _ => {
                let base = rng.pick(&corpus).clone();
                mutated(&mut rng, &base)
            }
        };
        check(&path, &input, case, seed);
    }
}
