//! Reading the spec file: strict YAML into the raw types of `schema.rs`, then every rule
//! checked at once (`check`) so a user sees all semantic problems in one run.

use std::path::Path;

use serde_saphyr::DuplicateKeyPolicy;
use sha2::{Digest, Sha256};

use super::StateLocation;
use super::check::Check;
use super::schema::RawSpec;
use super::yaml::yaml_error;
use super::{Location, Spec, SpecError, SpecErrors};

const EMPTY: &str = "spec is empty: expected a mapping with `version` and `spaces`";

/// Reads and validates the spec at `path`.
pub fn load(path: &Path) -> Result<Spec, SpecErrors> {
    let bytes = std::fs::read(path).map_err(|e| {
        SpecErrors(vec![SpecError {
            path: path.to_path_buf(),
            location: None,
            field: String::new(),
            message: format!("cannot read spec: {e}"),
        }])
    })?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => parse(path, text),
        Err(e) => {
            let prefix = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
            Err(SpecErrors(vec![SpecError {
                path: path.to_path_buf(),
                location: Some(end_of(prefix)),
                field: String::new(),
                message: "spec is not valid UTF-8".to_string(),
            }]))
        }
    }
}

/// The sha256 of a spec file's bytes, as `Spec::hash` holds it.
pub fn hash(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Validates spec text read from `path` (which is only used in errors and `Spec::path`).
pub fn parse(path: &Path, text: &str) -> Result<Spec, SpecErrors> {
    let hash = hash(text.as_bytes());
    let mut check = Check::new(path);
    // serde-saphyr reports an empty stream as "unexpected end of input" at the last line;
    // say what the file should contain instead, at its start.
    if is_blank(text) {
        check.error(Location { line: 1, column: 1 }, "", EMPTY);
        return Err(check.into_errors());
    }
    let options = serde_saphyr::options! {
        strict_booleans: true,
        duplicate_keys: DuplicateKeyPolicy::Error,
        with_snippet: false,
    };
    let raw: RawSpec = serde_saphyr::from_str_with_options(text, options)
        .map_err(|e| SpecErrors(vec![yaml_error(path, text, &e)]))?;
    let state = raw.state.clone().and_then(|at| {
        StateLocation::parse(at.value())
            .map_err(|e| check.error(at.location(), "state", e))
            .ok()
    });
    let (version, spaces) = check.spec(raw);
    if check.failed() {
        return Err(check.into_errors());
    }
    Ok(Spec {
        path: path.to_path_buf(),
        version,
        spaces,
        state,
        hash,
    })
}

/// Nothing but blank lines, comments, directives and document markers.
fn is_blank(text: &str) -> bool {
    text.trim_start_matches('\u{feff}').lines().all(|line| {
        let line = line.trim();
        let line = line
            .strip_prefix("---")
            .or_else(|| line.strip_prefix("..."))
            .map_or(line, str::trim_start);
        line.is_empty() || line.starts_with('#') || line.starts_with('%')
    })
}

/// The position just after `prefix`.
fn end_of(prefix: &str) -> Location {
    Location {
        line: prefix.matches('\n').count() + 1,
        column: prefix.rsplit('\n').next().unwrap_or("").chars().count() + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::fixtures::{VALID, errs, ok, one, with_line};
    use crate::spec::{
        AwsAccess, AwsMode, Cloud, ComponentKind, DEFAULT_TRUST_POLICY_QUOTA, Subjects,
    };

    #[test]
    fn valid_spec_loads() {
        let spec = ok(VALID);
        assert_eq!(spec.version, 1);
        assert_eq!(spec.path, Path::new("idplan.yaml"));
        assert_eq!(spec.hash, format!("{:x}", Sha256::digest(VALID.as_bytes())));
        assert_eq!(spec.hash.len(), 64);
        assert_eq!(spec.spaces.len(), 2);

        let prod = &spec.spaces[0];
        assert_eq!(prod.name, "prod");
        assert_eq!(prod.location, Location { line: 3, column: 5 });
        assert_eq!(prod.control_planes.len(), 2);
        assert_eq!(prod.control_planes[1].namespace, "ctp-b");
        assert_eq!(
            prod.control_planes[1].location,
            Location { line: 6, column: 9 }
        );
        let Cloud::Aws(aws) = &prod.cloud else {
            panic!("an AWS space")
        };
        assert_eq!(aws.region, "us-east-1");
        assert_eq!(aws.cluster, "spaces-prod");
        assert_eq!(aws.mode, AwsMode::Irsa);
        assert_eq!(aws.subjects, Subjects::Wildcard);
        assert_eq!(aws.trust_policy_quota, 4096);
        assert_eq!(aws.location, Location { line: 8, column: 7 });
        let backup = aws.components.backup.as_ref().unwrap();
        assert_eq!(backup.kind, ComponentKind::Backup);
        assert_eq!(backup.name.as_deref(), Some("prod-backup"));
        assert_eq!(
            backup.access,
            AwsAccess::Bucket("acme-spaces-backup".into())
        );
        assert_eq!(
            backup.location,
            Location {
                line: 14,
                column: 22
            }
        );
        let shared = aws.components.shared_secrets.as_ref().unwrap();
        assert!(matches!(&shared.access, AwsAccess::Secrets(arns) if arns.len() == 1));
        assert!(shared.name.is_none());
        assert_eq!(prod.component_kinds().len(), 3);

        let dev = &spec.spaces[1];
        let Cloud::Aws(aws) = &dev.cloud else {
            panic!("an AWS space")
        };
        assert_eq!(aws.mode, AwsMode::PodIdentity);
        assert_eq!(aws.subjects, Subjects::Exact);
        assert_eq!(aws.trust_policy_quota, DEFAULT_TRUST_POLICY_QUOTA);
        assert!(dev.control_planes.is_empty());
        assert_eq!(dev.component_kinds(), [ComponentKind::Billing]);
        assert_eq!(
            aws.components.billing.as_ref().unwrap().location,
            Location {
                line: 25,
                column: 9
            }
        );
    }

    #[test]
    fn yes_is_a_string_where_a_string_is_expected() {
        let spec = ok(&with_line(3, "  - name: yes"));
        assert_eq!(spec.spaces[0].name, "yes");
        let spec = ok(&with_line(9, "      cluster: on"));
        let Cloud::Aws(aws) = &spec.spaces[0].cloud else {
            panic!("an AWS space")
        };
        assert_eq!(aws.cluster, "on");
    }

    #[test]
    fn empty_and_comment_only_files() {
        for text in [
            "",
            "\n\n",
            "# nothing here\n  # still nothing\n",
            "---\n",
            "%YAML 1.2\n---\n...\n",
        ] {
            assert_eq!(
                one(text),
                ("1:1 ".to_string(), EMPTY.to_string()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn version() {
        assert_eq!(
            one(&with_line(1, "version: 2")),
            (
                "1:10 version".into(),
                "unsupported version 2: expected 1".into()
            )
        );
        let (at, msg) = one(&with_line(1, "version: \"one\""));
        assert_eq!(at, "1:10 version");
        assert_eq!(msg, "expected a non-negative integer, found `one`");
    }

    #[test]
    fn spaces_must_not_be_empty() {
        assert_eq!(
            one("version: 1\nspaces: []\n"),
            ("2:9 spaces".into(), "expected at least one space".into())
        );
    }

    #[test]
    fn errors_are_collected() {
        let text = VALID
            .replace("name: prod", "name: Prod")
            .replace("region: us-east-1", "region: mars")
            .replace("- ctp-b", "- CTP")
            .replace("bucket: acme-dev-billing", "bucket: x");
        let e = errs(&text);
        let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spaces[0].name",
                "spaces[0].controlPlanes[1]",
                "spaces[0].aws.region",
                "spaces[1].components.billing.bucket",
            ]
        );
        let shown = SpecErrors(e).to_string();
        assert!(
            shown.starts_with("idplan.yaml:3:11: spaces[0].name: invalid space name"),
            "{shown}"
        );
        assert_eq!(shown.lines().count(), 4);
    }

    #[test]
    fn aliases_are_followed() {
        let text = "\
version: 1
spaces:
  - name: a
    controlPlanes: &cps [x, y]
    aws: &aws {region: us-east-1, cluster: c}
    components: {billing: {bucket: abc}}
  - name: b
    controlPlanes: *cps
    aws: *aws
    components: {billing: {bucket: abc}}
";
        let spec = ok(text);
        assert_eq!(spec.spaces[1].control_planes.len(), 2);
        let text = text.replace("[x, y]", "[x, Y]");
        // One bad value, reported at its use in each space.
        let e = errs(&text);
        let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["spaces[0].controlPlanes[1]", "spaces[1].controlPlanes[1]"]
        );
    }

    #[test]
    fn load_reads_files() {
        let dir = std::env::temp_dir().join(format!("idplan-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("idplan.yaml");
        std::fs::write(&file, VALID).unwrap();
        let spec = load(&file).unwrap();
        assert_eq!(spec.path, file);
        assert_eq!(spec.hash, format!("{:x}", Sha256::digest(VALID.as_bytes())));

        let missing = dir.join("missing.yaml");
        let e = load(&missing).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].location, None);
        assert!(
            e.0[0].message.starts_with("cannot read spec: "),
            "{}",
            e.0[0].message
        );
        assert_eq!(
            e.to_string(),
            format!("{}: {}", missing.display(), e.0[0].message)
        );

        std::fs::write(&file, b"version: 1\nspaces: [\xff]\n").unwrap();
        let e = load(&file).unwrap_err();
        assert_eq!(
            e.0[0].location,
            Some(Location {
                line: 2,
                column: 10
            })
        );
        assert_eq!(e.0[0].message, "spec is not valid UTF-8");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
