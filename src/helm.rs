//! The Spaces Helm chart values that point each component at its identity.
//!
//! The keys are the chart's, as the Spaces documents give them. Each cloud's values, and the
//! annotation and label keys they set, are its recipe's (`recipe/<cloud>.rs`
//! `CloudRecipe::helm_values`); identities come from the state, so the values always name
//! what was applied. This file builds and renders them.

use serde_json::{Map, Value};

use crate::spec::ComponentKind;

/// One chart value: its key as path segments (a segment may contain dots) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct HelmValue {
    pub path: Vec<String>,
    pub value: Value,
}

fn value(path: &str, tail: Option<&str>, value: Value) -> HelmValue {
    let mut path: Vec<String> = path.split('.').map(str::to_string).collect();
    path.extend(tail.map(str::to_string));
    HelmValue { path, value }
}

/// Billing to the cloud's object storage (`provider`: `aws`, `azure`, `gcp`), with its
/// `billing.storage.<provider>.<key>` values.
pub fn billing(provider: &str, storage: &[(&str, Value)]) -> Vec<HelmValue> {
    let mut out = vec![
        value("billing.enabled", None, Value::Bool(true)),
        value("billing.storage.provider", None, provider.into()),
    ];
    for (key, v) in storage {
        out.push(value(
            &format!("billing.storage.{provider}.{key}"),
            None,
            v.clone(),
        ));
    }
    // Must be the empty string for workload identity to be used.
    out.push(value("billing.storage.secretRef.name", None, "".into()));
    out
}

/// An annotation `key` on the component's service account.
pub fn annotation(kind: ComponentKind, key: &str, v: Value) -> HelmValue {
    value(
        &format!("{}.{}", kind.helm_prefix(), kind.annotations_key()),
        Some(key),
        v,
    )
}

/// A label `key` on the component's pods.
pub fn pod_label(kind: ComponentKind, key: &str, v: Value) -> HelmValue {
    value(
        &format!("{}.pod.customLabels", kind.helm_prefix()),
        Some(key),
        v,
    )
}

/// `--set` arguments as the Spaces documents write them, one per line, ready to paste after
/// `helm upgrade`.
pub fn render_set(values: &[HelmValue]) -> String {
    let lines: Vec<String> = values
        .iter()
        .map(|v| {
            let value = match &v.value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if v.path.iter().any(|s| s.contains('.')) {
                let key: Vec<String> = v
                    .path
                    .iter()
                    .map(|s| {
                        if s.contains('.') {
                            format!("\"{}\"", s.replace('.', "\\."))
                        } else {
                            s.clone()
                        }
                    })
                    .collect();
                format!("--set {}=\"{value}\"", key.join("."))
            } else {
                format!("--set \"{}={value}\"", v.path.join("."))
            }
        })
        .collect();
    let mut out = lines.join(" \\\n");
    out.push('\n');
    out
}

/// The values as a nested YAML document (`helm -f values.yaml`).
pub fn render_yaml(values: &[HelmValue]) -> String {
    let mut root = Map::new();
    for v in values {
        let mut node = &mut root;
        let (last, parents) = v.path.split_last().expect("a value has a key");
        for p in parents {
            node = node
                .entry(p.clone())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("chart keys nest consistently");
        }
        node.insert(last.clone(), v.value.clone());
    }
    serde_saphyr::to_string(&Value::Object(root)).expect("values serialize to YAML")
}
