//! Plan renderers: text for terminals, Markdown for pull-request comments (`markdown.rs`, with
//! the domain summary of `summary.rs`), JSON for machines.

mod markdown;
mod summary;

use std::fmt::Write;

pub use markdown::{DEFAULT_MAX_CHARS, fit, folded, html, plural};
pub(crate) use summary::{namespace_of, namespaces_in};

use super::{Action, Order, Plan, ResourceChange};
use crate::diff::{self, ADD, CHANGE, REMOVE};
use crate::error::Result;
use crate::state::Ownership;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

/// How to render beyond the format.
#[derive(Debug, Clone)]
pub struct Options {
    /// The most characters of a Markdown rendering (a pull-request comment's limit).
    pub max_chars: usize,
    /// The saved plan, when there is one: the Markdown says how to see all of it.
    pub plan_file: Option<String>,
    /// The spec the plan was made from: a plan without changes names it.
    pub spec_file: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_chars: DEFAULT_MAX_CHARS,
            plan_file: None,
            spec_file: None,
        }
    }
}

/// The plan in `format`. Fails only when a Markdown budget is below what its always-shown
/// part needs.
pub fn render(plan: &Plan, format: Format, options: &Options) -> Result<String> {
    if plan.additive_only && format != Format::Json {
        return additive(plan, format, options);
    }
    Ok(match format {
        Format::Text => text(plan),
        Format::Markdown => markdown::markdown(plan, options)?,
        Format::Json => {
            let mut s = serde_json::to_string_pretty(plan).expect("plan serializes");
            s.push('\n');
            s
        }
    })
}

/// Withheld changes listed at the most in a text or Markdown plan.
const WITHHELD_LINES: usize = 50;

/// A plan made with `--additive-only`: what is applied without a review, as any plan, then
/// what waits for a reviewed apply.
fn additive(plan: &Plan, format: Format, options: &Options) -> Result<String> {
    let part = plan.additive_part();
    let lines = super::additive::withheld_lines(plan, WITHHELD_LINES);
    if format == Format::Markdown {
        let mut tail = String::new();
        if !lines.is_empty() {
            let _ = writeln!(
                tail,
                "\n#### Withheld for a reviewed apply ({})\n",
                plan.withheld().count()
            );
            for line in &lines {
                let _ = writeln!(tail, "- {}", html(line));
            }
        }
        let options = Options {
            max_chars: options.max_chars.saturating_sub(tail.len()),
            ..options.clone()
        };
        return Ok(markdown::markdown(&part, &options)? + &tail);
    }
    let mut out = text(&part);
    if !lines.is_empty() {
        let _ = writeln!(
            out,
            "\nWithheld for a reviewed apply ({}):",
            plan.withheld().count()
        );
        for line in &lines {
            let _ = writeln!(out, "  - {line}");
        }
    }
    Ok(out)
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

/// How a change is announced: its sign, its style, what happens, and why when it is not
/// obvious.
struct Header<'a> {
    sign: char,
    style: anstyle::Style,
    verb: &'static str,
    reason: Option<&'a str>,
}

impl Header<'_> {
    /// "will be created", "will be destroyed (deleted outside idplan: ...)".
    fn what(&self) -> String {
        match self.reason {
            Some(reason) => format!("{} ({reason})", self.verb),
            None => self.verb.to_string(),
        }
    }
}

fn header(change: &ResourceChange) -> Option<Header<'_>> {
    let adopted = change.ownership == Ownership::Adopted;
    let (sign, style, verb) = match change.action {
        Action::Create => ('+', ADD, "will be created"),
        Action::ImportAndUpdate if adopted => ('~', CHANGE, "will be adopted and updated"),
        Action::ImportAndUpdate => ('~', CHANGE, "will be recorded in the state and updated"),
        Action::Update => ('~', CHANGE, "will be updated in place"),
        Action::Delete if change.before.is_none() => ('-', REMOVE, "will be forgotten"),
        Action::Delete if adopted && change.releases() => ('-', REMOVE, "will be released"),
        Action::Delete if adopted => ('-', REMOVE, "will be forgotten"),
        Action::Delete => ('-', REMOVE, "will be destroyed"),
        Action::Replace(Order::CreateThenDelete) => (
            '±',
            CHANGE,
            "must be replaced: create replacement, then destroy",
        ),
        Action::Replace(Order::DeleteThenCreate(_)) => (
            '±',
            CHANGE,
            "must be replaced: destroy, then create replacement (the cloud cannot hold both \
             at once)",
        ),
        Action::Import if adopted => ('=', CHANGE, "will be adopted"),
        Action::Import => ('=', CHANGE, "will be recorded in the state"),
        Action::NoOp => return None,
    };
    Some(Header {
        sign,
        style,
        verb,
        reason: change.reason.as_deref(),
    })
}

/// The changes, one block per resource that is not a no-op, and one per deposed object.
fn body(plan: &Plan) -> String {
    let mut out = String::new();
    for deposed in plan
        .resource_changes
        .iter()
        .filter_map(|c| c.deposed_delete())
    {
        let what = match deposed.before {
            Some(_) => "will be destroyed",
            None => "will be forgotten (gone already)",
        };
        let _ = writeln!(
            out,
            "  # {} (deposed object, left by a replacement that did not finish) {what}",
            deposed.node.address
        );
        let _ = writeln!(
            out,
            "  {REMOVE}-{REMOVE:#} {} (deposed)",
            deposed.node.address
        );
        for line in diff::attributes(deposed.before.as_ref(), None, "      ") {
            let _ = writeln!(out, "{line}");
        }
        out.push('\n');
    }
    out.extend(plan.resource_changes.iter().filter_map(block));
    out
}

/// One resource's change as the text plan shows it (ANSI styled); None for a no-op.
fn block(change: &ResourceChange) -> Option<String> {
    let mut out = String::new();
    {
        let header = header(change)?;
        let (sign, style) = (header.sign, header.style);
        let _ = writeln!(out, "  # {} {}", change.node.address, header.what());
        let _ = writeln!(out, "  {style}{sign}{style:#} {}", change.node.address);
        let after = match change.action {
            Action::Delete => None,
            _ => change.after.as_ref(),
        };
        // An update keeps what the cloud assigned (an id): not a change worth a line.
        let before = match change.action {
            Action::Update | Action::ImportAndUpdate => change
                .before
                .as_ref()
                .map(|b| crate::provider::decided(change.node.kind(), b)),
            _ => change.before.clone(),
        };
        for line in diff::attributes(before.as_ref(), after, "      ") {
            let _ = writeln!(out, "{line}");
        }
        out.push('\n');
    }
    Some(out)
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
