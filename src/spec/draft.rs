//! A spec that `idplan init` writes: one space that discovers its control planes and adopts
//! the identities a running Space uses, rendered as commented YAML that `load` accepts.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::ComponentKind;

/// One value of a draft spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    List(Vec<String>),
    /// A nested mapping, written in flow style (`{ location: x, name: y }`).
    Map(Vec<(&'static str, String)>),
}

/// A key of a draft spec, with a comment on the line above when init had to choose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub key: &'static str,
    pub value: Value,
    pub comment: Option<String>,
}

impl Field {
    pub fn text(key: &'static str, value: impl Into<String>) -> Field {
        Field {
            key,
            value: Value::Text(value.into()),
            comment: None,
        }
    }

    pub fn with_comment(mut self, comment: impl Into<String>) -> Field {
        self.comment = Some(comment.into());
        self
    }
}

/// A component as init found it: adopted under `name`, or left out with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DraftComponent {
    Adopted {
        kind: ComponentKind,
        /// The identity taken over (`adopt: true`); `None` where the cloud's mode has no named
        /// identity (GCP's principal identifiers): `adopt: true` then takes over the grants.
        name: Option<String>,
        /// What it gets access to (`bucket`, `secrets`, `storageAccount`, ...).
        access: Vec<Field>,
        /// Comment lines above the component: where init had to choose.
        comments: Vec<String>,
    },
    /// Not written: only a comment says why, so the spec manages nothing init could not see.
    LeftOut { kind: ComponentKind, why: String },
}

/// The spec init writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// Comment lines at the top: what init read.
    pub header: Vec<String>,
    pub space: String,
    pub context: String,
    pub kubeconfig: Option<PathBuf>,
    /// `aws`, `azure` or `gcp`.
    pub cloud: &'static str,
    pub cloud_fields: Vec<Field>,
    pub components: Vec<DraftComponent>,
}

/// A YAML scalar: plain when it reads back as the same string, else double-quoted (a JSON
/// string is a valid YAML double-quoted scalar).
fn scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@".contains(c))
        && text.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '/')
        && !matches!(
            text,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off"
        )
        && text.parse::<f64>().is_err()
        && !text.contains(": ");
    if plain {
        text.to_string()
    } else {
        serde_json::to_string(text).expect("a string serializes")
    }
}

fn comment(out: &mut String, indent: &str, text: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "{indent}# {line}");
    }
}

fn field(out: &mut String, indent: &str, f: &Field) {
    if let Some(c) = &f.comment {
        comment(out, indent, c);
    }
    match &f.value {
        Value::Text(t) => {
            let _ = writeln!(out, "{indent}{}: {}", f.key, scalar(t));
        }
        Value::List(items) => {
            let _ = writeln!(out, "{indent}{}:", f.key);
            for item in items {
                let _ = writeln!(out, "{indent}  - {}", scalar(item));
            }
        }
        Value::Map(entries) => {
            let inner: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{k}: {}", scalar(v)))
                .collect();
            let _ = writeln!(out, "{indent}{}: {{ {} }}", f.key, inner.join(", "));
        }
    }
}

impl Draft {
    /// The spec file's text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.header {
            comment(&mut out, "", line);
        }
        out.push_str("version: 1\nspaces:\n");
        let _ = writeln!(out, "  - name: {}", scalar(&self.space));
        out.push_str("    controlPlanes:\n      discover:\n");
        let _ = writeln!(out, "        context: {}", scalar(&self.context));
        if let Some(k) = &self.kubeconfig {
            let _ = writeln!(
                out,
                "        kubeconfig: {}",
                scalar(&k.display().to_string())
            );
        }
        let _ = writeln!(out, "    {}:", self.cloud);
        for f in &self.cloud_fields {
            field(&mut out, "      ", f);
        }
        out.push_str("    components:\n");
        for c in &self.components {
            match c {
                DraftComponent::Adopted {
                    kind,
                    name,
                    access,
                    comments,
                } => {
                    for line in comments {
                        comment(&mut out, "      ", line);
                    }
                    let _ = writeln!(out, "      {}:", kind.spec_key());
                    if let Some(name) = name {
                        let _ = writeln!(out, "        name: {}", scalar(name));
                    }
                    out.push_str("        adopt: true\n");
                    for f in access {
                        field(&mut out, "        ", f);
                    }
                }
                DraftComponent::LeftOut { kind, why } => {
                    comment(
                        &mut out,
                        "      ",
                        &format!("{}: not written: {why}", kind.spec_key()),
                    );
                }
            }
        }
        out
    }

    /// Whether at least one component is adopted: a spec needs one.
    pub fn adopts_any(&self) -> bool {
        self.components
            .iter()
            .any(|c| matches!(c, DraftComponent::Adopted { .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> Draft {
        Draft {
            header: vec!["Written by idplan init".into()],
            space: "prod".into(),
            context: "spaces-prod".into(),
            kubeconfig: Some(PathBuf::from("/home/me/.kube/config")),
            cloud: "gcp",
            cloud_fields: vec![
                Field::text("project", "acme-spaces"),
                Field {
                    key: "cluster",
                    value: Value::Map(vec![
                        ("location", "us-central1".into()),
                        ("name", "spaces".into()),
                    ]),
                    comment: None,
                },
                Field::text("mode", "service-account").with_comment("the annotations say so"),
            ],
            components: vec![
                DraftComponent::Adopted {
                    kind: ComponentKind::Backup,
                    name: Some("backup-sa".into()),
                    access: vec![Field::text("bucket", "acme-backup")],
                    comments: vec!["two buckets: chose acme-backup".into()],
                },
                DraftComponent::Adopted {
                    kind: ComponentKind::SharedSecrets,
                    name: Some("eso-sa".into()),
                    access: vec![Field {
                        key: "secrets",
                        value: Value::List(vec!["token".into(), "yes".into()]),
                        comment: None,
                    }],
                    comments: vec![],
                },
                DraftComponent::LeftOut {
                    kind: ComponentKind::Billing,
                    why: "no service account is annotated".into(),
                },
            ],
        }
    }

    #[test]
    fn a_draft_loads_as_the_spec_it_describes() {
        let text = draft().render();
        let spec = super::super::parse(std::path::Path::new("idplan.yaml"), &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let space = &spec.spaces[0];
        assert_eq!(
            space.discover.as_ref().unwrap().context.as_deref(),
            Some("spaces-prod")
        );
        let super::super::Cloud::Gcp(gcp) = &space.cloud else {
            panic!("gcp")
        };
        let backup = gcp.components.backup.as_ref().unwrap();
        assert_eq!(backup.name.as_deref(), Some("backup-sa"));
        assert!(backup.adopt);
        assert!(gcp.components.billing.is_none());
        assert_eq!(
            gcp.components.shared_secrets.as_ref().unwrap().access,
            super::super::GcpAccess::Secrets(vec!["token".into(), "yes".into()])
        );
        assert!(text.contains("# billing: not written: no service account"));
    }

    #[test]
    fn components_without_a_name_load_in_principal_mode() {
        let mut d = draft();
        d.cloud_fields[2] = Field::text("mode", "principal");
        d.components = vec![
            DraftComponent::Adopted {
                kind: ComponentKind::Backup,
                name: None,
                access: vec![Field::text("bucket", "acme-backup")],
                comments: vec![],
            },
            DraftComponent::Adopted {
                kind: ComponentKind::SharedSecrets,
                name: None,
                access: vec![],
                comments: vec![],
            },
        ];
        let text = d.render();
        assert!(
            !text.contains("        name:"),
            "no component is named: {text}"
        );
        assert!(
            text.contains("      sharedSecrets:\n        adopt: true\n"),
            "{text}"
        );
        let spec = super::super::parse(std::path::Path::new("idplan.yaml"), &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let super::super::Cloud::Gcp(gcp) = &spec.spaces[0].cloud else {
            panic!("gcp")
        };
        assert_eq!(
            gcp.components.shared_secrets.as_ref().unwrap().access,
            super::super::GcpAccess::ProjectSecrets
        );
        assert!(gcp.components.backup.as_ref().unwrap().adopt);
    }

    #[test]
    fn scalars_that_yaml_would_read_otherwise_are_quoted() {
        assert_eq!(scalar("acme-backup"), "acme-backup");
        assert_eq!(scalar("arn:aws:s3:::b"), "arn:aws:s3:::b");
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("1.5"), "\"1.5\"");
        assert_eq!(scalar("a b"), "\"a b\"");
        assert_eq!(
            scalar("arn:aws:secretsmanager:*:1:secret:x/*"),
            "\"arn:aws:secretsmanager:*:1:secret:x/*\""
        );
        assert_eq!(scalar(""), "\"\"");
    }
}
