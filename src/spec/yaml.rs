//! Errors of the YAML deserializer as spec errors: located, naming the field, one line.
//!
//! serde-saphyr gives a position but not the field, so on an error the text is read a second
//! time, as parser events (`node_paths`), to find the path and kind of the node there. That
//! second read happens only for a file that failed to deserialize, and it is what names the
//! field; a path-tracking deserializer would still lack the node kinds ("found a list") and
//! the collection open at a syntax error, so the read stays.

use std::path::Path;

use serde_saphyr::granit_parser::{ErrorKind, Event, Parser, ScalarStyle};
use serde_saphyr::{Error as YamlError, ExternalMessageSource};

use super::check::show;
use super::{Location, SpecError};

/// One located error for a failed deserialization. serde-saphyr gives a position but not the
/// field, so the field is found by re-reading the text's node positions (`node_paths`).
pub(super) fn yaml_error(path: &Path, text: &str, err: &YamlError) -> SpecError {
    let mut location = err
        .location()
        .filter(|l| l.line() > 0)
        .map(|l| Location {
            line: usize::try_from(l.line()).unwrap_or(usize::MAX),
            column: usize::try_from(l.column()).unwrap_or(usize::MAX).max(1),
        })
        .unwrap_or(Location { line: 1, column: 1 });
    let (nodes, open_at_syntax_error) = node_paths(text);
    let inner = innermost(err);
    let about_key = matches!(
        inner,
        YamlError::SerdeUnknownField { .. }
            | YamlError::DuplicateMappingKey { .. }
            | YamlError::SerdeMissingField { .. }
    );
    let mut node = find_node(&nodes, location, about_key);
    // A value deserialized by hand (`controlPlanes`) is reported at its key: point at the value.
    let at_key = !about_key && node.is_some_and(|n| n.is_key);
    if at_key
        && let Some(key) = node
        && let Some(value) = nodes.iter().find(|n| !n.is_key && n.path == key.path)
    {
        location = value.location();
        node = Some(value);
    }
    if let YamlError::SerdeMissingField { .. } = inner {
        // Reported at the mapping's last key; the mapping itself is what lacks the key.
        if let Some(key) = node.filter(|n| n.is_key) {
            node = key.parent.and_then(|p| nodes.get(p));
            if let Some(map) = node {
                location = map.location();
            }
        }
    }
    if let YamlError::MultipleDocuments { .. } = inner {
        // Reported at the second document's content; point at its `---`.
        let lines: Vec<&str> = text.lines().take(location.line).collect();
        if let Some(marker) = lines.iter().rposition(|l| l.starts_with("---")) {
            location = Location {
                line: marker + 1,
                column: 1,
            };
        }
    }
    let tab = is_tab_error(inner)
        .then(|| indenting_tab_after(text, location))
        .flatten();
    if let Some(tab) = tab {
        location = tab;
    }
    let field = match (inner, open_at_syntax_error) {
        // A syntax error: the collection being read is a better guess than the last node.
        (YamlError::ExternalMessage { .. }, Some(open)) => open,
        _ => node.map(|n| n.path.clone()).unwrap_or_default(),
    };
    // What is at the error position, for "expected X, found Y".
    let found = node
        .filter(|n| n.location() == location && !n.is_key)
        .map(|n| n.found.clone());
    let message = match tab {
        Some(_) => "invalid YAML: a tab in indentation (YAML indents with spaces)".to_string(),
        None => describe(inner, err, &field, found.as_deref()),
    };
    SpecError {
        path: path.to_path_buf(),
        location: Some(location),
        field,
        message,
    }
}

fn is_tab_error(err: &YamlError) -> bool {
    match err {
        YamlError::ExternalMessage { source, .. } => matches!(
            source.as_ref(),
            ExternalMessageSource::Parser(e) if *e.kind() == ErrorKind::TabInPlainScalar
        ),
        _ => false,
    }
}

/// The parser reports a tab-indented line at the start of the scalar before it; the tab
/// itself is what the user must fix.
fn indenting_tab_after(text: &str, at: Location) -> Option<Location> {
    text.lines()
        .enumerate()
        .skip(at.line)
        .find_map(|(i, line)| {
            let indent: String = line
                .chars()
                .take_while(|c| *c == ' ' || *c == '\t')
                .collect();
            indent.find('\t').map(|col| Location {
                line: i + 1,
                column: col + 1,
            })
        })
}

/// The error itself, without snippet or alias wrappers.
fn innermost(err: &YamlError) -> &YamlError {
    match err {
        YamlError::WithSnippet { error, .. } | YamlError::AliasError { error, .. } => {
            innermost(error)
        }
        other => other,
    }
}

/// A one-line message: what was expected (and found, where known).
fn describe(inner: &YamlError, outer: &YamlError, field: &str, found: Option<&str>) -> String {
    let with_found = |expected: String| match found {
        Some(found) => format!("{expected}, found {found}"),
        None => expected,
    };
    let quoted = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match inner {
        YamlError::Unexpected { expected, .. } => {
            let what = match *expected {
                "mapping start" if field.is_empty() => {
                    "a mapping with `version` and `spaces`".to_string()
                }
                "mapping start" => "a mapping".to_string(),
                "sequence start" => "a list".to_string(),
                "string scalar" => "a string".to_string(),
                other => other.to_string(),
            };
            with_found(format!("expected {what}"))
        }
        YamlError::InvalidScalar { ty, .. } => {
            let what = match *ty {
                "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer",
                "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer",
                "bool" => "`true` or `false`",
                other => other,
            };
            with_found(format!("expected {what}"))
        }
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => match found {
            Some(found) => format!("expected {expected}, found {found}"),
            None => format!("expected {expected}, found {unexpected}"),
        },
        YamlError::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => format!("expected {expected}, found {unexpected}"),
        YamlError::NullIntoString { .. } => "expected a string, found nothing".to_string(),
        YamlError::InvalidBooleanStrict { .. } => {
            with_found("expected `true` or `false`".to_string())
        }
        YamlError::SerdeUnknownVariant {
            variant, expected, ..
        } => format!(
            "unknown value `{}`: expected one of {}",
            show(variant),
            quoted(expected)
        ),
        YamlError::SerdeUnknownField {
            field: key,
            expected,
            ..
        } => {
            format!(
                "unknown key `{}`: expected one of {}",
                show(key),
                quoted(expected)
            )
        }
        YamlError::SerdeMissingField { field: key, .. } => {
            format!("missing required key `{key}`")
        }
        YamlError::DuplicateMappingKey { key, .. } => match key {
            Some(key) => format!("duplicate key `{}`", show(key)),
            None => "duplicate key".to_string(),
        },
        YamlError::MultipleDocuments { .. } => {
            "expected a single YAML document, found another `---`".to_string()
        }
        YamlError::Eof { .. } => "unexpected end of file".to_string(),
        YamlError::UnknownAnchor { .. } => "alias of an unknown anchor".to_string(),
        YamlError::ExternalMessage { .. } => format!("invalid YAML: {}", plain(outer)),
        _ => plain(outer),
    }
}

/// serde-saphyr's own text without its " at line L, column C" suffix (the location is ours).
fn plain(err: &YamlError) -> String {
    let text = err.without_snippet().to_string();
    let text = text.lines().next().unwrap_or_default();
    match text.rfind(" at line ") {
        Some(i) if text[i..].contains(", column ") => text[..i].to_string(),
        _ => text.to_string(),
    }
}

/// A YAML node's start and its field path.
#[derive(Debug)]
struct Node {
    line: usize,
    column: usize,
    path: String,
    depth: usize,
    /// The enclosing mapping or list (an index into the node list).
    parent: Option<usize>,
    /// A mapping key (its path is the path of its value).
    is_key: bool,
    /// Description for "found ...": the scalar or the kind of collection.
    found: String,
}

impl Node {
    fn location(&self) -> Location {
        Location {
            line: self.line,
            column: self.column,
        }
    }
}

/// An open collection while walking the events; `node` is its index in the node list.
enum Frame {
    Seq {
        node: usize,
        path: String,
        next: usize,
    },
    /// `key` is the current key, set when a key node starts; `in_value` after it ends.
    Map {
        node: usize,
        path: String,
        key: String,
        in_value: bool,
    },
}

/// Every node of `text` up to its first syntax error, in document order; and, if there is a
/// syntax error, the path of what was being read there.
fn node_paths(text: &str) -> (Vec<Node>, Option<String>) {
    enum Kind {
        Leaf,
        Map,
        Seq,
    }
    let mut nodes = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else {
            let open = match stack.last() {
                None => String::new(),
                Some(Frame::Seq { path, .. }) => path.clone(),
                Some(Frame::Map {
                    path,
                    key,
                    in_value: true,
                    ..
                }) => join(path, key),
                Some(Frame::Map { path, .. }) => path.clone(),
            };
            return (nodes, Some(open));
        };
        let (kind, found, scalar) = match &event {
            Event::Scalar(value, style, ..) => {
                (Kind::Leaf, describe_scalar(value, *style), Some(value))
            }
            Event::Alias(..) => (Kind::Leaf, "an alias".to_string(), None),
            Event::MappingStart(..) => (Kind::Map, "a mapping".to_string(), None),
            Event::SequenceStart(..) => (Kind::Seq, "a list".to_string(), None),
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                node_done(&mut stack);
                continue;
            }
            _ => continue,
        };
        let depth = stack.len();
        let (parent, path, is_key) = match stack.last_mut() {
            None => (None, String::new(), false),
            Some(Frame::Seq { node, path, next }) => {
                *next += 1;
                (Some(*node), format!("{path}[{}]", *next - 1), false)
            }
            Some(Frame::Map {
                node,
                path,
                key,
                in_value,
            }) => {
                if !*in_value {
                    // A complex key (a list or mapping as key) has no useful name.
                    *key = scalar.map_or_else(|| "?".to_string(), |s| s.to_string());
                }
                (Some(*node), join(path, key), !*in_value)
            }
        };
        let node = nodes.len();
        nodes.push(Node {
            line: span.start.line(),
            column: span.start.col() + 1,
            path: path.clone(),
            depth,
            parent,
            is_key,
            found,
        });
        match kind {
            Kind::Leaf => node_done(&mut stack),
            Kind::Map => stack.push(Frame::Map {
                node,
                path,
                key: String::new(),
                in_value: false,
            }),
            Kind::Seq => stack.push(Frame::Seq {
                node,
                path,
                next: 0,
            }),
        }
    }
    (nodes, None)
}

/// A node under the top frame ended: in a mapping, a key is followed by its value.
fn node_done(stack: &mut [Frame]) {
    if let Some(Frame::Map { in_value, .. }) = stack.last_mut() {
        *in_value = !*in_value;
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn describe_scalar(value: &str, style: ScalarStyle) -> String {
    // An empty value comes from the parser as `~`; YAML 1.2 core schema nulls.
    let null = ["", "~", "null", "Null", "NULL"].contains(&value);
    if null && style == ScalarStyle::Plain {
        return "nothing".to_string();
    }
    format!("`{}`", show(value))
}

/// The node an error at `at` is about: a key there (for key errors), else the outermost
/// node starting there (a missing key is reported where its mapping starts), else the last
/// node starting before it (syntax errors fall between nodes).
fn find_node(nodes: &[Node], at: Location, about_key: bool) -> Option<&Node> {
    let pos = (at.line, at.column);
    let here = || nodes.iter().filter(move |n| (n.line, n.column) == pos);
    let key = about_key
        .then(|| here().filter(|n| n.is_key).max_by_key(|n| n.depth))
        .flatten();
    key.or_else(|| here().filter(|n| !n.is_key).min_by_key(|n| n.depth))
        .or_else(|| nodes.iter().rev().find(|n| (n.line, n.column) <= pos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::fixtures::{VALID, errs, one, with_line};

    #[test]
    fn not_a_mapping() {
        let (at, msg) = one("- 1\n");
        assert_eq!(at, "1:1 ");
        assert_eq!(
            msg,
            "expected a mapping with `version` and `spaces`, found a list"
        );
    }

    #[test]
    fn unknown_keys() {
        let (at, msg) = one(&format!("{VALID}extra: 1\n"));
        assert_eq!(at, "26:1 extra");
        assert!(msg.starts_with("unknown key `extra`: expected one of `version`, `spaces`"));
        let (at, msg) = one(&with_line(10, "      zone: a"));
        assert_eq!(at, "10:7 spaces[0].aws.zone");
        assert!(msg.contains("`region`, `cluster`, `mode`"), "{msg}");
        let (at, msg) = one(&with_line(7, "    oci:"));
        assert_eq!(at, "7:5 spaces[0].oci");
        assert!(
            msg.ends_with(
                "expected one of `name`, `controlPlanes`, `aws`, `azure`, `gcp`, `components`"
            ),
            "{msg}"
        );
        // `secrets` belongs to sharedSecrets only, `bucket` to backup and billing only.
        let (at, _) = one(&with_line(
            15,
            "      billing:       { bucket: b-b-b, secrets: [] }",
        ));
        assert_eq!(at, "15:39 spaces[0].components.billing.secrets");
        let (at, _) = one(&with_line(
            16,
            "      sharedSecrets: { secrets: [\"arn:x\"], bucket: b-b-b }",
        ));
        assert_eq!(at, "16:44 spaces[0].components.sharedSecrets.bucket");
    }

    #[test]
    fn duplicate_keys() {
        let text = VALID.replace("      mode: irsa\n", "      mode: irsa\n      mode: irsa\n");
        let (at, msg) = one(&text);
        assert_eq!(at, "11:7 spaces[0].aws.mode");
        assert_eq!(msg, "duplicate key `mode`");
        let (at, _) = one(&with_line(
            15,
            "      billing:       { bucket: a-b-c, bucket: a-b-c }",
        ));
        assert_eq!(at, "15:39 spaces[0].components.billing.bucket");
    }

    #[test]
    fn wrong_types() {
        let text = VALID.replace(
            "    controlPlanes:\n      - mxp-706c49fa-5bb8-4a7e-9f41-2fc38ef4b065-system\n      - ctp-b\n",
            "    controlPlanes: 5\n",
        );
        let (at, msg) = one(&text);
        assert_eq!(at, "4:20 spaces[0].controlPlanes");
        assert_eq!(
            msg,
            "expected a list of namespaces or a mapping with `discover` and `list`, found `5`"
        );
        let (at, msg) = one(&with_line(3, "  - name: [a]"));
        assert_eq!(at, "3:11 spaces[0].name");
        assert_eq!(msg, "expected a string, found a list");
        let (at, msg) = one(&with_line(3, "  - name:"));
        assert_eq!(at, "3:9 spaces[0].name");
        assert_eq!(msg, "expected a string, found nothing");
        let (at, msg) = one(&with_line(12, "      trustPolicyQuota: many"));
        assert_eq!(at, "12:25 spaces[0].aws.trustPolicyQuota");
        assert_eq!(msg, "expected an integer, found `many`");
        let (at, _) = one("version: 1\nspaces: {a: 1}\n");
        assert_eq!(at, "2:9 spaces");
        let (at, msg) = one("version: 1\nspaces:\n");
        assert_eq!(at, "2:7 spaces");
        assert_eq!(msg, "expected a list, found nothing");
    }

    #[test]
    fn missing_keys() {
        let text = VALID.replace("      cluster: spaces-prod\n", "");
        let (at, msg) = one(&text);
        assert_eq!(at, "8:7 spaces[0].aws");
        assert_eq!(msg, "missing required key `cluster`");
        let (at, msg) = one("version: 1\n");
        assert_eq!(at, "1:1 ");
        assert_eq!(msg, "missing required key `spaces`");
    }

    #[test]
    fn syntax_errors_are_located() {
        let (at, msg) = one(&with_line(4, "\tcontrolPlanes:"));
        assert_eq!(at, "4:1 spaces[0].name");
        assert_eq!(
            msg,
            "invalid YAML: a tab in indentation (YAML indents with spaces)"
        );
        let (at, msg) = one(&with_line(4, "     controlPlanes:"));
        assert_eq!(at, "4:19 spaces[0]");
        assert!(msg.starts_with("invalid YAML: "), "{msg}");
        let e = errs("version: 1\nspaces:\n  - name: 'a\n");
        assert_eq!(
            e[0].location,
            Some(Location {
                line: 3,
                column: 11
            })
        );
        assert_eq!(e[0].field, "spaces[0].name");
    }

    #[test]
    fn multiple_documents() {
        let (at, msg) = one(&format!("{VALID}---\nversion: 1\n"));
        assert_eq!(at, "26:1 ");
        assert!(msg.starts_with("expected a single YAML document"), "{msg}");
    }

    #[test]
    fn field_paths_of_nodes() {
        let (nodes, broken) = node_paths("a:\n  - b: 1\n    c: [x, {d: e}]\n? [k]\n: v\n");
        assert_eq!(broken, None);
        let paths: Vec<(&str, bool)> = nodes.iter().map(|n| (n.path.as_str(), n.is_key)).collect();
        assert_eq!(
            paths,
            [
                ("", false),
                ("a", true),
                ("a", false),
                ("a[0]", false),
                ("a[0].b", true),
                ("a[0].b", false),
                ("a[0].c", true),
                ("a[0].c", false),
                ("a[0].c[0]", false),
                ("a[0].c[1]", false),
                ("a[0].c[1].d", true),
                ("a[0].c[1].d", false),
                ("?", true),
                ("?[0]", false),
                ("?", false),
            ]
        );
    }
}
