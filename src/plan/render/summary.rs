//! The plan in the words of the domain, for the Markdown plan: per space, the control planes
//! added and removed, what changes per component (its role, identity or service account, its
//! permissions, who may use it), counts per resource kind; and a warning naming what is
//! destroyed or replaced. Its size grows with the namespaces added and removed, never with the
//! size of a policy document.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde_json::Value;

use super::markdown::{folded, html, plural};
use super::{Action, Plan, ResourceChange, header};
use crate::graph::Kind;
use crate::kind::Owner;
use crate::spec::ComponentKind;

/// The host namespace a subject, principal or member names: `system:serviceaccount:<ns>:<sa>`,
/// `principal://.../subject/ns/<ns>/sa/<sa>`, `serviceAccount:<pool>[<ns>/<sa>]`. None for
/// anything else (a wildcard pattern included).
pub fn namespace_of(member: &str) -> Option<&str> {
    let ns = if let Some(rest) = member.strip_prefix("system:serviceaccount:") {
        rest.split(':').next()?
    } else if let Some((_, rest)) = member.split_once("/subject/ns/") {
        rest.split("/sa/").next()?
    } else if let Some((_, rest)) = member.split_once(".svc.id.goog[") {
        rest.split('/').next()?
    } else {
        return None;
    };
    (!ns.is_empty() && !ns.contains('*')).then_some(ns)
}

/// Every namespace `value` names (subjects in documents, members, an association's namespace).
pub(crate) fn namespaces_in(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => {
            if let Some(ns) = namespace_of(s) {
                out.insert(ns.to_string());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| namespaces_in(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("namespace", Value::String(ns)) => {
                        out.insert(ns.clone());
                    }
                    _ => namespaces_in(v, out),
                }
            }
        }
        _ => {}
    }
}

/// What the resource holds before and after the change (None where it does not exist).
fn sides(change: &ResourceChange) -> (Option<&Value>, Option<&Value>) {
    match change.action {
        Action::Create => (None, change.after.as_ref()),
        Action::Delete => (change.before.as_ref(), None),
        _ => (change.before.as_ref(), change.after.as_ref()),
    }
}

/// Resources of which there is one per control plane: counted, never listed, in the summary.
fn per_control_plane(kind: Kind) -> bool {
    kind.facts().owner == Owner::ControlPlane
}

fn kind_words(kind: Kind) -> &'static str {
    kind.facts().noun
}

/// The name a reviewer knows the resource by.
fn name(change: &ResourceChange) -> String {
    let (before, after) = sides(change);
    let attrs = after.or(before);
    let get = |k: &str| attrs.and_then(|a| a.get(k)).and_then(Value::as_str);
    if change.node.kind().facts().shared_policy_members {
        return format!(
            "of `{}` on `{}`",
            get("role").unwrap_or("?"),
            get("resource").unwrap_or("?")
        );
    }
    match get("name")
        .or_else(|| get("account_id"))
        .or_else(|| get("url"))
    {
        Some(n) => format!("`{n}`"),
        None => format!("`{}`", change.node.address),
    }
}

/// The namespaces of one space before and after the plan.
struct Namespaces {
    added: BTreeSet<String>,
    removed: BTreeSet<String>,
    after: BTreeSet<String>,
}

/// Values (subjects, members) described by the control planes they name, when they name
/// exactly a set the summary already shows; listed otherwise.
fn describe(values: &[String], ns: &Namespaces) -> String {
    let named: BTreeSet<String> = values
        .iter()
        .filter_map(|v| namespace_of(v).map(str::to_string))
        .collect();
    let n = values.len();
    if !named.is_empty() && values.iter().all(|v| namespace_of(v).is_some()) {
        let of = if named == ns.added {
            Some("the added control planes")
        } else if named == ns.removed {
            Some("the removed control planes")
        } else if named == ns.after {
            Some("every control plane")
        } else {
            None
        };
        if let Some(of) = of {
            return format!("{n} ({of})");
        }
        if n > 5 {
            let list: Vec<&str> = named.iter().map(String::as_str).collect();
            return format!(
                "{n}, of the control planes:\n\n{}",
                folded(
                    &format!("{} namespaces", named.len()),
                    &list.join("\n"),
                    false
                )
            );
        }
    }
    values
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `+N` / `-N` lines of one aspect.
fn aspect_line(
    out: &mut String,
    aspect: &str,
    added: &[String],
    removed: &[String],
    ns: &Namespaces,
) {
    if !added.is_empty() {
        let _ = writeln!(out, "  - {aspect} added: {}", describe(added, ns));
    }
    if !removed.is_empty() {
        let _ = writeln!(out, "  - {aspect} removed: {}", describe(removed, ns));
    }
}

/// The semantic change of one resource: documents by what they grant, lists by their items,
/// scalars old → new (only when the resource existed before).
fn attribute_lines(change: &ResourceChange, ns: &Namespaces) -> String {
    let mut out = String::new();
    let (before, after) = sides(change);
    let before = before.map(|b| crate::provider::decided(change.node.kind(), b));
    let empty = serde_json::Map::new();
    let b = before.as_ref().and_then(Value::as_object).unwrap_or(&empty);
    let a = after.and_then(Value::as_object).unwrap_or(&empty);
    let keys: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    for key in keys {
        let (old, new) = (b.get(key.as_str()), a.get(key.as_str()));
        if old == new {
            continue;
        }
        let document = |v: Option<&Value>| v.is_some_and(crate::policy::is_document);
        if document(old) || document(new) {
            for c in crate::policy::changes(old, new) {
                aspect_line(&mut out, &c.aspect, &c.added, &c.removed, ns);
            }
            continue;
        }
        let strings = |v: Option<&Value>| -> Option<BTreeSet<String>> {
            match v {
                None | Some(Value::Null) => Some(BTreeSet::new()),
                Some(Value::Array(items)) => {
                    items.iter().map(|i| i.as_str().map(String::from)).collect()
                }
                _ => None,
            }
        };
        if let (Some(o), Some(n)) = (strings(old), strings(new)) {
            let added: Vec<String> = n.difference(&o).cloned().collect();
            let removed: Vec<String> = o.difference(&n).cloned().collect();
            aspect_line(&mut out, &format!("`{key}`"), &added, &removed, ns);
        } else if let (Some(o), Some(n)) = (old, new) {
            let short = |v: &Value| {
                let s = v.to_string();
                if crate::graph::as_reference(v).is_some() {
                    crate::diff::KNOWN_AFTER_APPLY.to_string()
                } else if s.chars().count() > 120 {
                    "(changed)".to_string()
                } else {
                    format!("`{s}`")
                }
            };
            let _ = writeln!(out, "  - `{key}`: {} → {}", short(o), short(n));
        }
    }
    out
}

#[derive(Default)]
struct Counts {
    add: usize,
    change: usize,
    destroy: usize,
    replace: usize,
}

impl Counts {
    fn count(&mut self, action: Action) {
        match action {
            Action::Create => self.add += 1,
            Action::Update | Action::ImportAndUpdate => self.change += 1,
            Action::Delete => self.destroy += 1,
            Action::Replace(_) => self.replace += 1,
            Action::NoOp | Action::Import => {}
        }
    }

    fn words(&self) -> String {
        let parts = [
            (self.add, "to add"),
            (self.change, "to change"),
            (self.destroy, "to destroy"),
            (self.replace, "to replace"),
        ];
        parts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, w)| format!("{n} {w}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What is destroyed or replaced, first: what control planes removed from the spec take with
/// them (expected: a note), apart from what control planes that stay lose (a warning), one line
/// per space, kind and action (the address when there is one resource, the components
/// otherwise).
pub fn warning(plan: &Plan) -> Option<String> {
    type Group<'a> = (String, &'a str, &'static str);
    let mut groups: BTreeMap<Group, (Vec<&ResourceChange>, BTreeSet<String>)> = BTreeMap::new();
    let mut leaving: BTreeMap<&str, (usize, BTreeSet<&str>)> = BTreeMap::new();
    let mut gone: BTreeSet<&str> = BTreeSet::new();
    for change in &plan.resource_changes {
        if !change.destroys() {
            continue;
        }
        let Some(header) = header(change) else {
            continue;
        };
        if let Some(ns) = left_with_its_control_plane(plan, change) {
            gone.insert(ns);
            let entry = leaving.entry(change.node.kind().type_name()).or_default();
            entry.0 += 1;
            entry.1.extend(
                change
                    .node
                    .address
                    .component_kind()
                    .map(ComponentKind::spec_key),
            );
            continue;
        }
        let place = match change.node.address.space() {
            Some(space) => format!("space `{space}`"),
            None => "the cluster".to_string(),
        };
        let entry = groups
            .entry((place, change.node.kind().type_name(), header.verb))
            .or_default();
        entry.0.push(change);
        if let Some(reason) = &change.reason {
            entry.1.insert(reason.clone());
        }
    }
    let mut out = String::new();
    if !leaving.is_empty() {
        let what: Vec<String> = leaving
            .iter()
            .map(|(kind, (n, components))| {
                let components: Vec<&str> = components.iter().copied().collect();
                format!("{n} × `{kind}` ({})", components.join(", "))
            })
            .collect();
        let _ = writeln!(
            out,
            "\n> [!NOTE]\n> {} removed from the spec take their own resources with them: {}.",
            plural(gone.len(), "control plane"),
            what.join(", ")
        );
    }
    if groups.is_empty() {
        return (!out.is_empty()).then_some(out);
    }
    out.push_str(
        "\n> [!WARNING]\n> This plan destroys or replaces what control planes that stay use:\n",
    );
    for ((place, type_name, what), (changes, reasons)) in &groups {
        let which = match changes.as_slice() {
            [one] => format!("`{}`", one.node.address),
            many => {
                let components: BTreeSet<&str> = many
                    .iter()
                    .filter_map(|c| c.node.address.component_kind().map(ComponentKind::spec_key))
                    .collect();
                let components: Vec<&str> = components.into_iter().collect();
                format!(
                    "{} × `{type_name}` of {place} ({})",
                    many.len(),
                    components.join(", ")
                )
            }
        };
        let reasons: Vec<&str> = reasons.iter().map(String::as_str).collect();
        let why = if reasons.is_empty() || reasons.len() > 3 {
            String::new()
        } else {
            format!(" ({})", reasons.join("; "))
        };
        let _ = writeln!(out, "> - {which} {what}{why}");
    }
    Some(out)
}

/// The host namespace of a control plane's own resource when that control plane leaves the
/// spec with this plan.
fn left_with_its_control_plane<'a>(plan: &Plan, change: &'a ResourceChange) -> Option<&'a str> {
    if change.action != Action::Delete {
        return None;
    }
    let ns = crate::graph::control_plane(change.node.kind(), &change.node.address)?;
    let stays = plan.control_planes.get(change.node.address.space()?)?;
    (!stays.iter().any(|s| s == ns)).then_some(ns)
}

/// The summary per space (and for the resources a cluster's spaces share).
pub fn spaces(plan: &Plan) -> String {
    let mut by_space: BTreeMap<Option<&str>, Vec<&ResourceChange>> = BTreeMap::new();
    for change in &plan.resource_changes {
        by_space
            .entry(change.node.address.space())
            .or_default()
            .push(change);
    }
    let mut out = String::new();
    for (space, changes) in by_space {
        if changes.iter().all(|c| header(c).is_none()) {
            continue;
        }
        match space {
            Some(space) => out.push_str(&one_space(plan, space, &changes)),
            None => {
                out.push_str("\n#### Shared by the spaces of a cluster\n\n");
                let ns = Namespaces {
                    added: BTreeSet::new(),
                    removed: BTreeSet::new(),
                    after: BTreeSet::new(),
                };
                for change in changes {
                    resource_line(&mut out, change, &ns);
                }
            }
        }
    }
    out
}

/// Control planes named in the text, not folded, up to this many.
const INLINE_NAMES: usize = 10;

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn resource_line(out: &mut String, change: &ResourceChange, ns: &Namespaces) {
    if let Some(header) = header(change) {
        let _ = writeln!(
            out,
            "- {} {} {}",
            kind_words(change.node.kind()),
            name(change),
            header.what()
        );
        out.push_str(&attribute_lines(change, ns));
    }
}

fn one_space(plan: &Plan, space: &str, changes: &[&ResourceChange]) -> String {
    let (mut before, mut after) = (BTreeSet::new(), BTreeSet::new());
    for change in changes {
        let (b, a) = sides(change);
        if let Some(b) = b {
            namespaces_in(b, &mut before);
        }
        if let Some(a) = a {
            namespaces_in(a, &mut after);
        }
    }
    // Added and removed as the resources show them (a wildcard trust names none); the count
    // after the plan as the plan covers them.
    let covered = plan.control_planes.get(space).map_or(after.len(), Vec::len);
    let ns = Namespaces {
        added: after.difference(&before).cloned().collect(),
        removed: before.difference(&after).cloned().collect(),
        after,
    };
    let mut out = format!("\n#### Space `{space}`\n\n");
    let _ = writeln!(
        out,
        "Control planes: **{} added**, **{} removed**; {} after this plan.",
        ns.added.len(),
        ns.removed.len(),
        covered
    );
    for (set, words) in [(&ns.added, "added"), (&ns.removed, "removed")] {
        let list: Vec<&str> = set.iter().map(String::as_str).collect();
        match list.len() {
            0 => {}
            // A few are read at a glance; many are folded.
            1..=INLINE_NAMES => {
                let named: Vec<String> = list.iter().map(|ns| format!("`{ns}`")).collect();
                let _ = writeln!(out, "\n{}: {}", capitalized(words), named.join(", "));
            }
            n => {
                out.push('\n');
                out.push_str(&folded(
                    &format!("{} {words}", plural(n, "control plane")),
                    &list.join("\n"),
                    false,
                ));
            }
        }
    }
    let mut components: BTreeMap<Option<ComponentKind>, Vec<&ResourceChange>> = BTreeMap::new();
    for change in changes.iter().filter(|c| header(c).is_some()) {
        components
            .entry(change.node.address.component_kind())
            .or_default()
            .push(change);
    }
    for (component, changes) in components {
        if let Some(c) = component {
            let _ = writeln!(
                out,
                "\n**{}** (service account `{}`)\n",
                c.spec_key(),
                c.service_account()
            );
        }
        let mut per_plane: BTreeMap<Kind, Counts> = BTreeMap::new();
        for change in changes {
            if per_control_plane(change.node.kind()) {
                per_plane
                    .entry(change.node.kind())
                    .or_default()
                    .count(change.action);
            } else {
                resource_line(&mut out, change, &ns);
            }
        }
        for (kind, counts) in per_plane {
            let _ = writeln!(out, "- {}: {}", kind_words(kind), counts.words());
        }
    }
    let mut kinds: BTreeMap<&str, Counts> = BTreeMap::new();
    for change in changes {
        kinds
            .entry(change.node.kind().type_name())
            .or_default()
            .count(change.action);
    }
    let kinds: Vec<String> = kinds
        .iter()
        .filter(|(_, c)| !c.words().is_empty())
        .map(|(k, c)| format!("`{k}` {}", c.words()))
        .collect();
    let _ = writeln!(out, "\nResources: {}.", html(&kinds.join("; ")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_read_from_every_subject_shape() {
        for member in [
            "system:serviceaccount:mxp-1-system:vector",
            "principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p.svc.id.goog/subject/ns/mxp-1-system/sa/vector",
            "serviceAccount:p.svc.id.goog[mxp-1-system/vector]",
        ] {
            assert_eq!(namespace_of(member), Some("mxp-1-system"), "{member}");
        }
        assert_eq!(
            namespace_of("system:serviceaccount:mxp-*-system:vector"),
            None
        );
        assert_eq!(namespace_of("arn:aws:s3:::bucket"), None);
    }
}
