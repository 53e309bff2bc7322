//! Showing how attributes differ: scalars side by side, documents as a line diff.

use anstyle::{AnsiColor, Style};
use serde_json::Value;
use similar::{ChangeTag, TextDiff};

pub const ADD: Style = AnsiColor::Green.on_default();
pub const REMOVE: Style = AnsiColor::Red.on_default();
pub const CHANGE: Style = AnsiColor::Yellow.on_default();
pub const DIM: Style = Style::new().dimmed();

/// `before` and `after` joined where they differ only in lists of strings (subjects,
/// namespaces, members): each such list holds the values of both. `None` when they differ in
/// anything else (a scalar, a key, the length of a list of objects). Lists of objects are
/// joined element by element.
pub fn join_lists(before: &Value, after: &Value) -> Option<Value> {
    let strings = |v: &Value| -> Option<Vec<String>> {
        match v {
            Value::String(s) => Some(vec![s.clone()]),
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect(),
            _ => None,
        }
    };
    match (before, after) {
        _ if before == after => Some(after.clone()),
        (Value::Object(b), Value::Object(a)) => {
            if b.len() != a.len() {
                return None;
            }
            a.iter()
                .map(|(k, v)| Some((k.clone(), join_lists(b.get(k)?, v)?)))
                .collect::<Option<serde_json::Map<String, Value>>>()
                .map(Value::Object)
        }
        (Value::Array(b), Value::Array(a)) if !a.iter().chain(b).all(Value::is_string) => {
            if b.len() != a.len() {
                return None;
            }
            b.iter()
                .zip(a)
                .map(|(b, a)| join_lists(b, a))
                .collect::<Option<Vec<Value>>>()
                .map(Value::Array)
        }
        _ => {
            let (mut b, a) = (strings(before)?, strings(after)?);
            b.extend(a);
            b.sort();
            b.dedup();
            Some(Value::Array(b.into_iter().map(Value::String).collect()))
        }
    }
}

/// Lines describing `before` → `after`, attribute by attribute, indented by `indent`.
/// Either side may be absent (create, delete). Styles are ANSI; the caller's stream strips
/// them when it does not go to a terminal.
pub fn attributes(before: Option<&Value>, after: Option<&Value>, indent: &str) -> Vec<String> {
    let empty = serde_json::Map::new();
    let b = before.and_then(Value::as_object).unwrap_or(&empty);
    let a = after.and_then(Value::as_object).unwrap_or(&empty);
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    let width = keys.iter().map(|k| k.len()).max().unwrap_or(0);
    let mut out = Vec::new();
    for key in keys {
        let (old, new) = (b.get(key.as_str()), a.get(key.as_str()));
        let (sign, style) = match (old, new) {
            (None, Some(_)) => ('+', ADD),
            (Some(_), None) => ('-', REMOVE),
            (Some(o), Some(n)) if o == n => {
                // Unchanged attributes would only hide what changes.
                continue;
            }
            _ => ('~', CHANGE),
        };
        let label = format!("{indent}{style}{sign}{style:#} {key:<width$} = ");
        match (old, new) {
            (Some(o), Some(n))
                if crate::policy::is_document(o) || crate::policy::is_document(n) =>
            {
                // What changed first, in the words of IAM; the line diff after it as detail.
                out.push(format!("{indent}{style}{sign}{style:#} {key}:"));
                out.extend(policy_changes(o, n, &format!("{indent}    ")));
                out.push(format!(
                    "{indent}    {DIM}the document, line by line:{DIM:#}"
                ));
                out.extend(document_diff(o, n, &format!("{indent}    ")));
            }
            (Some(o), Some(n)) if is_document(o) || is_document(n) => {
                out.push(format!("{indent}{style}{sign}{style:#} {key}:"));
                out.extend(document_diff(o, n, &format!("{indent}    ")));
            }
            (Some(o), Some(n)) => out.push(format!("{label}{} -> {}", scalar(o), scalar(n))),
            (_, Some(v)) | (Some(v), None) if is_document(v) => {
                let mut lines = pretty(v).into_iter();
                out.push(format!("{label}{}", lines.next().unwrap_or_default()));
                let pad = " ".repeat(indent.len() + width + 5);
                out.extend(lines.map(|l| format!("{pad}{l}")));
            }
            (_, Some(v)) | (Some(v), None) => out.push(format!("{label}{}", scalar(v))),
            (None, None) => {}
        }
    }
    out
}

fn is_document(v: &Value) -> bool {
    if crate::graph::as_reference(v).is_some() {
        return false;
    }
    matches!(v, Value::Object(m) if !m.is_empty()) || matches!(v, Value::Array(a) if a.len() > 1)
}

/// One value on one line; a value assigned by the cloud at apply shows as terraform shows it.
fn scalar(v: &Value) -> String {
    if crate::graph::as_reference(v).is_some() {
        return KNOWN_AFTER_APPLY.to_string();
    }
    v.to_string()
}

pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

fn pretty(v: &Value) -> Vec<String> {
    serde_json::to_string_pretty(v)
        .expect("JSON values serialize")
        .lines()
        .map(str::to_string)
        .collect()
}

/// The semantic change of a policy document, one line per value added or removed:
/// `+ subjects: system:serviceaccount:...`.
pub fn policy_changes(before: &Value, after: &Value, indent: &str) -> Vec<String> {
    let mut out = Vec::new();
    for change in crate::policy::changes(Some(before), Some(after)) {
        for v in &change.added {
            out.push(format!("{indent}{ADD}+{ADD:#} {}: {v}", change.aspect));
        }
        for v in &change.removed {
            out.push(format!(
                "{indent}{REMOVE}-{REMOVE:#} {}: {v}",
                change.aspect
            ));
        }
    }
    out
}

/// A unified line diff of two documents, pretty-printed in their canonical form, with a few
/// lines of context.
pub fn document_diff(before: &Value, after: &Value, indent: &str) -> Vec<String> {
    let (old, new) = (pretty(before).join("\n"), pretty(after).join("\n"));
    let diff = TextDiff::from_lines(&old, &new);
    let mut out = Vec::new();
    for (i, group) in diff.grouped_ops(3).iter().enumerate() {
        if i > 0 {
            out.push(format!("{indent}{DIM}...{DIM:#}"));
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let line = change.value().trim_end_matches('\n');
                out.push(match change.tag() {
                    ChangeTag::Delete => format!("{indent}{REMOVE}- {line}{REMOVE:#}"),
                    ChangeTag::Insert => format!("{indent}{ADD}+ {line}{ADD:#}"),
                    ChangeTag::Equal => format!("{indent}  {line}"),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plain(lines: Vec<String>) -> String {
        let joined = lines.join("\n");
        anstream::adapter::strip_str(&joined).to_string()
    }

    #[test]
    fn document_changes_are_line_diffs() {
        let cond = |subs: &[&str]| json!({"StringEquals": {"x:sub": subs}});
        let before = json!({"name": "r", "doc": {"Statement": [{"Condition": cond(&["a", "b"])}]}});
        let after = json!({"name": "r", "doc": {"Statement": [{"Condition": cond(&["a"])}]}});
        let text = plain(attributes(Some(&before), Some(&after), ""));
        assert!(text.contains("~ doc:"), "{text}");
        assert!(
            text.contains("- subjects: b"),
            "the semantic change first: {text}"
        );
        let removed: Vec<&str> = text
            .lines()
            .filter(|l| l.trim_start().starts_with("- "))
            .collect();
        assert!(removed.iter().any(|l| l.contains("\"b\"")), "{text}");
        assert!(
            !text.contains("name"),
            "unchanged attributes are not shown: {text}"
        );
    }

    #[test]
    fn scalars_show_old_and_new() {
        let text = plain(attributes(
            Some(&json!({"description": "old"})),
            Some(&json!({"description": "new"})),
            "  ",
        ));
        assert_eq!(text, "  ~ description = \"old\" -> \"new\"");
    }
}
