//! What a plan may apply without a review (`--additive-only`): the changes that only give the
//! control planes of the spec what the reviewed spec already grants them. Everything else
//! waits for a reviewed apply, and says why.
//!
//! The core decides by action, each kind by its own rule (`KindDef::additive`):
//!
//! 1. a no-op applies nothing;
//! 2. every change of a space in a switch of AWS mode waits: each step is a reviewed apply;
//! 3. deletes, replaces (renames among them), the deletion of an object an earlier
//!    replacement left, and taking over an existing resource (adoption) wait;
//! 4. a create of what idplan made and the cloud lost (its state record says so) is
//!    additive: it gives back what the spec granted;
//! 5. other creates and updates are additive when their kind says so (an association, a
//!    federated credential; a trust that only gains control planes; members only added);
//! 6. a change that needs what a waiting create or replace makes waits with it.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, Plan, ResourceChange};
use crate::graph::{Address, Scope};
use crate::provider::Proposed;
use crate::state::{Ownership, State};

/// Marks every change of `plan` additive or withheld. `switching`: the spaces in a switch of
/// AWS mode.
pub fn classify(plan: &mut Plan, state: &State, switching: &BTreeSet<String>) {
    plan.additive_only = true;
    for change in &mut plan.resource_changes {
        let reason = withheld_because(change, state, switching);
        change.additive = Some(reason.is_none());
        if reason.is_some()
            && change.action.updates()
            && let (Some(before), Some(after)) = (&change.before, &change.after)
        {
            change.additive_after = change.node.kind().def().additive_part(before, after);
        }
        change.withheld_because = reason;
    }
    loop {
        let waiting: BTreeSet<Address> = plan
            .resource_changes
            .iter()
            .filter(|c| c.additive == Some(false))
            .filter(|c| matches!(c.action, Action::Create | Action::Replace(_)))
            .map(|c| c.node.address.clone())
            .collect();
        let mut more = false;
        for change in &mut plan.resource_changes {
            let applied = change.additive == Some(true) || change.additive_after.is_some();
            if !applied || matches!(change.action, Action::NoOp | Action::Import) {
                continue;
            }
            if let Some(dep) = change.node.depends_on.iter().find(|d| waiting.contains(*d)) {
                change.additive = Some(false);
                change.additive_after = None;
                change.withheld_because =
                    Some(format!("it needs {dep}, which waits for a reviewed apply"));
                more = true;
            }
        }
        if !more {
            break;
        }
    }
}

/// Why `change` waits for a reviewed apply; `None` when it is additive.
fn withheld_because(
    change: &ResourceChange,
    state: &State,
    switching: &BTreeSet<String>,
) -> Option<String> {
    let def = change.node.kind().def();
    let noun = def.facts().noun;
    if let Scope::Component { space, .. } = change.node.address.scope()
        && switching.contains(space)
    {
        return Some(format!(
            "space {space} is switching AWS mode: each step of a switch is a reviewed apply"
        ));
    }
    if change.deposed.is_some() {
        return Some(
            "an object an earlier replacement left behind here is deleted by a reviewed apply"
                .into(),
        );
    }
    if change.action.imports() {
        return Some(format!("it takes over an existing {noun} (adoption)"));
    }
    let (before, after) = (change.before.as_ref(), change.after.as_ref());
    match change.action {
        // An import is withheld above.
        Action::NoOp | Action::Import => None,
        Action::Delete => Some(match control_plane(change) {
            Some(ns) => format!(
                "control plane {ns} is no longer in the spec or discovered: its {noun} stay \
                 until a reviewed apply"
            ),
            None if change.releases() => {
                format!("it gives back what idplan added to an adopted {noun}")
            }
            None => format!("it deletes the {noun}, which the spec no longer wants"),
        }),
        Action::Replace(_) => Some(format!(
            "it replaces the {noun} ({})",
            change.reason.as_deref().unwrap_or("its identity changes")
        )),
        Action::Create => {
            let recreated = state
                .get(&change.node.address)
                .is_some_and(|r| r.ownership == Ownership::Created);
            let additive =
                recreated || after.is_some_and(|after| def.additive(Proposed::Create { after }));
            (!additive).then(|| format!("it creates a {noun} that no control plane alone needs"))
        }
        Action::Update | Action::ImportAndUpdate => {
            let additive = matches!((before, after), (Some(before), Some(after))
                if def.additive(Proposed::Update { before, after }));
            (!additive).then(|| {
                let lost = lost_control_planes(before, after);
                match lost.is_empty() {
                    true => format!("the update changes or removes what the {noun} grants"),
                    false => format!(
                        "the update takes the {noun} away from control planes {}",
                        lost.join(", ")
                    ),
                }
            })
        }
    }
}

/// The host namespace of a resource of one control plane.
fn control_plane(change: &ResourceChange) -> Option<&str> {
    crate::graph::control_plane(change.node.kind(), &change.node.address)
}

/// The host namespaces `before` names (a subject, a member, a namespace) and `after` does
/// not.
fn lost_control_planes(
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> Vec<String> {
    let (mut old, mut new) = (BTreeSet::new(), BTreeSet::new());
    super::render::namespaces_in(before.unwrap_or(&serde_json::Value::Null), &mut old);
    super::render::namespaces_in(after.unwrap_or(&serde_json::Value::Null), &mut new);
    old.difference(&new).cloned().collect()
}

/// The withheld changes in the domain's words, one line each: the deletions of a control
/// plane that left the spec on one line, the others by address. At most `most` lines; the
/// rest counted.
pub fn withheld_lines(plan: &Plan, most: usize) -> Vec<String> {
    let mut removed: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    let mut lines = Vec::new();
    for change in plan
        .resource_changes
        .iter()
        .filter(|c| c.additive == Some(false))
    {
        match (change.action, control_plane(change)) {
            (Action::Delete, Some(ns)) if change.deposed.is_none() => {
                *removed
                    .entry(ns)
                    .or_default()
                    .entry(change.node.kind().facts().noun)
                    .or_default() += 1;
            }
            _ if change.additive_after.is_some() => lines.push(format!(
                "{}: gives the new control planes access now; {}: that part waits",
                change.node.address,
                change
                    .withheld_because
                    .as_deref()
                    .unwrap_or("the rest waits")
            )),
            _ => lines.push(format!(
                "{}: {}",
                change.node.address,
                change.withheld_because.as_deref().unwrap_or("not additive")
            )),
        }
    }
    let mut out: Vec<String> = removed
        .into_iter()
        .map(|(ns, nouns)| {
            let kept: Vec<String> = nouns
                .iter()
                .map(|(noun, n)| format!("{n} {noun}"))
                .collect();
            format!(
                "control plane {ns} removed: {} kept until a reviewed apply",
                kept.join(", ")
            )
        })
        .collect();
    out.extend(lines);
    if out.len() > most {
        let more = out.len() - most;
        out.truncate(most);
        out.push(format!("... and {more} more"));
    }
    out
}
