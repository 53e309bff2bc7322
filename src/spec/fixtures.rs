//! Test fixtures of the spec loader: a valid AWS spec and ways to see its errors.

use std::path::Path;

use super::{Spec, SpecError, SpecErrors, parse};

/// Two AWS spaces using every AWS option; tests replace lines of it by number.
pub const VALID: &str = "\
version: 1
spaces:
  - name: prod
    controlPlanes:
      - mxp-706c49fa-5bb8-4a7e-9f41-2fc38ef4b065-system
      - ctp-b
    aws:
      region: us-east-1
      cluster: spaces-prod
      mode: irsa
      subjects: wildcard
      trustPolicyQuota: 4096
    components:
      backup:        { bucket: acme-spaces-backup, name: prod-backup }
      billing:       { bucket: acme-spaces-billing }
      sharedSecrets: { secrets: [\"arn:aws:secretsmanager:us-east-1:123456789012:secret:spaces/*\"] }
  - name: dev
    controlPlanes: []
    aws:
      region: eu-central-1
      cluster: spaces-dev
      mode: pod-identity
    components:
      billing:
        bucket: acme-dev-billing
";

pub fn ok(text: &str) -> Spec {
    match parse(Path::new("idplan.yaml"), text) {
        Ok(spec) => spec,
        Err(e) => panic!("expected a valid spec, got:\n{e}"),
    }
}

pub fn errs(text: &str) -> Vec<SpecError> {
    match parse(Path::new("idplan.yaml"), text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.0,
    }
}

/// `VALID` with one line replaced (1-based).
pub fn with_line(n: usize, line: &str) -> String {
    VALID
        .lines()
        .enumerate()
        .map(|(i, l)| if i + 1 == n { line } else { l })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The one error's `line:column field`, and its message.
pub fn one(text: &str) -> (String, String) {
    let e = errs(text);
    assert_eq!(
        e.len(),
        1,
        "expected one error, got:\n{}",
        SpecErrors(e.clone())
    );
    let loc = e[0].location.expect("location");
    (
        format!("{}:{} {}", loc.line, loc.column, e[0].field),
        e[0].message.clone(),
    )
}
