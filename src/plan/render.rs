//! Plan renderers: text for terminals, Markdown for pull-request comments, JSON for machines.

use std::fmt::Write;

use super::{Action, Plan, ResourceChange};
use crate::diff::{self, ADD, CHANGE, REMOVE};
use crate::state::Ownership;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

pub fn render(plan: &Plan, format: Format) -> String {
    match format {
        Format::Text => text(plan),
        Format::Markdown => markdown(plan),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(plan).expect("plan serializes");
            s.push('\n');
            s
        }
    }
}

/// The closing line: `Plan: X to add, Y to change, Z to destroy.` or `No changes.`
pub fn summary_line(plan: &Plan) -> String {
    let s = plan.summary;
    if !plan.has_changes {
        return "No changes. The cloud identities match the spec.".into();
    }
    // terraform's shape: imports first, forgets last, each only when there are any.
    let import = if s.import > 0 {
        format!("{} to import, ", s.import)
    } else {
        String::new()
    };
    let forget = if s.forget > 0 {
        format!(", {} to forget", s.forget)
    } else {
        String::new()
    };
    format!(
        "Plan: {import}{} to add, {} to change, {} to destroy{forget}.",
        s.add, s.change, s.destroy
    )
}

fn header(change: &ResourceChange) -> Option<(char, anstyle::Style, String)> {
    let adopted = change.ownership == Ownership::Adopted;
    let (sign, style, what) = match change.action {
        Action::Create => ('+', ADD, "will be created".to_string()),
        Action::Update if change.importing && adopted => {
            ('~', CHANGE, "will be adopted and updated".into())
        }
        Action::Update if change.importing => (
            '~',
            CHANGE,
            "will be recorded in the state and updated".into(),
        ),
        Action::Update => ('~', CHANGE, "will be updated in place".into()),
        Action::Delete if change.before.is_none() => ('-', REMOVE, "will be forgotten".into()),
        Action::Delete if adopted && change.releases() => ('-', REMOVE, "will be released".into()),
        Action::Delete if adopted => ('-', REMOVE, "will be forgotten".into()),
        Action::Delete => ('-', REMOVE, "will be destroyed".into()),
        Action::Replace => ('±', CHANGE, "must be replaced".into()),
        Action::NoOp if change.importing && adopted => ('=', CHANGE, "will be adopted".into()),
        Action::NoOp if change.importing => ('=', CHANGE, "will be recorded in the state".into()),
        Action::NoOp => return None,
    };
    let reason = change
        .reason
        .as_ref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    Some((sign, style, format!("{what}{reason}")))
}

/// The changes, one block per resource that is not a no-op.
fn body(plan: &Plan) -> String {
    let mut out = String::new();
    for change in &plan.resource_changes {
        let Some((sign, style, what)) = header(change) else {
            continue;
        };
        let _ = writeln!(out, "  # {} {what}", change.address);
        let _ = writeln!(out, "  {style}{sign}{style:#} {}", change.address);
        let after = match change.action {
            Action::Delete => None,
            _ => change.after.as_ref(),
        };
        // An update keeps what the cloud assigned (an id): not a change worth a line.
        let before = match change.action {
            Action::Update => change
                .before
                .as_ref()
                .map(|b| crate::graph::decided(change.kind, b)),
            _ => change.before.clone(),
        };
        for line in diff::attributes(before.as_ref(), after, "      ") {
            let _ = writeln!(out, "{line}");
        }
        out.push('\n');
    }
    out
}

/// One line per discovered control plane, and a warning for those without an ID yet.
pub fn discovered(plan: &Plan) -> String {
    let mut out = String::new();
    for d in &plan.discovered {
        let _ = match &d.namespace {
            Some(ns) => writeln!(
                out,
                "Discovered control plane {} in space {}: host namespace {ns}",
                d.control_plane, d.space
            ),
            None => writeln!(
                out,
                "Warning: control plane {} in space {} has no ID yet: not planned; plan again \
                 once it has one",
                d.control_plane, d.space
            ),
        };
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// The plan's notes and warnings, one paragraph each.
fn notes(plan: &Plan, prefix: &str) -> String {
    let mut out = String::new();
    for note in &plan.notes {
        let _ = writeln!(out, "{prefix}{}\n", note.line());
    }
    out
}

pub fn text(plan: &Plan) -> String {
    let discovered = discovered(plan) + &notes(plan, "");
    if !plan.has_changes {
        return format!("{discovered}{}\n", summary_line(plan));
    }
    format!(
        "{discovered}idplan will perform the following actions:\n\n{}{}\n",
        body(plan),
        summary_line(plan)
    )
}

/// Summary first, a table of the changes, details folded: fits a pull-request comment.
pub fn markdown(plan: &Plan) -> String {
    let mut out = format!("### idplan plan\n\n**{}**\n", summary_line(plan));
    let discovered = discovered(plan);
    if !discovered.is_empty() {
        let _ = write!(out, "\n{discovered}");
    }
    let notes = notes(plan, "> ");
    if !notes.is_empty() {
        let _ = write!(out, "\n{}", notes.trim_end());
        out.push('\n');
    }
    if !plan.has_changes {
        return out;
    }
    out.push_str("\n| action | resource |\n| --- | --- |\n");
    for change in &plan.resource_changes {
        if let Some((_, _, what)) = header(change) {
            let _ = writeln!(out, "| {what} | `{}` |", change.address);
        }
    }
    let details = anstream::adapter::strip_str(&body(plan)).to_string();
    let _ = write!(
        out,
        "\n<details><summary>Details</summary>\n\n```diff\n{}```\n\n</details>\n",
        details.trim_end().to_string() + "\n"
    );
    out
}
