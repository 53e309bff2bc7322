//! The Markdown plan: one pull-request comment at any scale. What a reviewer needs comes first
//! and is never cut (the summary line, the warning for what is destroyed or replaced, the
//! summary per space); then the per-resource details, folded, riskiest first (replaces, then
//! deletes and changes of identities and permissions, then trust, then what each control
//! plane has, one example per component and action with a count), those the budget holds, and
//! a last line saying what was left out.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Action, Options, Plan, ResourceChange, block, header, notes, summary, summary_line};
use crate::error::{Error, Result};
use crate::kind::Owner;

/// A GitHub comment holds at most 65,536 characters; this leaves room for what a CI wrapper
/// adds (a marker, a title, a link to the run).
pub const DEFAULT_MAX_CHARS: usize = 60_000;

pub(super) fn markdown(plan: &Plan, options: &Options) -> Result<String> {
    let mut head = format!("### idplan plan\n\n**{}**\n", summary_line(plan));
    if !plan.has_changes {
        head.push_str(&checked(plan, options));
    }
    for d in plan.discovered.iter().filter(|d| d.namespace.is_none()) {
        let _ = write!(
            head,
            "\n> [!WARNING]\n> Control plane `{}` in space `{}` has no ID yet: not planned; plan \
             again once it has one.\n",
            d.control_plane, d.space
        );
    }
    // Notes (what a trust admits beyond the spec) are never cut.
    let notes = notes(plan, "> ");
    if !notes.is_empty() {
        let _ = write!(head, "\n{}\n", notes.trim_end());
    }
    let mut blocks = Vec::new();
    let found: Vec<String> = plan
        .discovered
        .iter()
        .filter_map(|d| {
            let ns = d.namespace.as_ref()?;
            Some(format!("{} `{}`: `{ns}`\n", d.space, d.control_plane))
        })
        .collect();
    if !found.is_empty() {
        blocks.push(Block {
            text: folded(
                &format!("{} discovered", plural(found.len(), "control plane")),
                &found.concat(),
                false,
            ),
            count: found.len(),
            what: "discovered control planes".into(),
            component: None,
        });
    }
    if plan.has_changes {
        if let Some(warning) = summary::warning(plan) {
            head.push_str(&warning);
        }
        head.push_str(&summary::spaces(plan));
        head.push_str("\n#### Details\n\n");
        blocks.extend(details(plan));
    }
    let see_all = match &options.plan_file {
        Some(file) => format!("`idplan show {file}`"),
        None => "`idplan plan --out FILE`, then `idplan show FILE`".to_string(),
    };
    fit_blocks(head, blocks, "details", &see_all, options.max_chars)
}

/// What a plan without changes checked: the spec, its spaces, the resources read.
fn checked(plan: &Plan, options: &Options) -> String {
    let mut spaces: Vec<&str> = plan.control_planes.keys().map(String::as_str).collect();
    spaces.extend(
        plan.resource_changes
            .iter()
            .filter_map(|c| c.node.address.space()),
    );
    spaces.sort_unstable();
    spaces.dedup();
    let spaces: Vec<String> = spaces.iter().map(|s| format!("`{s}`")).collect();
    let spec = match &options.spec_file {
        Some(file) => format!("`{file}`, "),
        None => String::new(),
    };
    format!(
        "\n{spec}{} {}: {} checked.\n",
        match spaces.len() {
            1 => "space",
            _ => "spaces",
        },
        spaces.join(", "),
        plural(plan.resource_changes.len(), "resource")
    )
}

/// `n` and the noun, singular for one.
pub fn plural(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        _ => format!("{n} {noun}s"),
    }
}

/// The order a reviewer reads changes in: what can cut access first.
fn risk(change: &ResourceChange) -> u8 {
    let facts = change.node.kind().facts();
    match change.action {
        Action::Replace(_) => 0,
        _ if facts.owner == Owner::ControlPlane => 4,
        Action::Delete => 1,
        Action::Update | Action::ImportAndUpdate if only_who(change) => 2,
        Action::Update | Action::ImportAndUpdate => 1,
        _ => 3,
    }
}

/// Whether an update only changes who may use the resource (trust subjects, namespaces,
/// members), not what it grants.
fn only_who(change: &ResourceChange) -> bool {
    let (Some(before), Some(after)) = (&change.before, &change.after) else {
        return false;
    };
    let before = crate::provider::decided(change.node.kind(), before);
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
        return false;
    };
    before.iter().chain(after.iter()).all(|(key, _)| {
        let (b, a) = (before.get(key), after.get(key));
        b == a
            || key == "members"
            || matches!((b, a), (Some(b), Some(a)) if crate::policy::is_document(b)
            && crate::policy::changes(Some(b), Some(a)).iter().all(|c| {
                c.aspect == "subjects" || c.aspect.ends_with("kubernetes-namespace")
            }))
    })
}

/// The details, riskiest first; the resources of a control plane as one example per
/// component, kind and action, with a count of the others like it.
fn details(plan: &Plan) -> Vec<Block> {
    let mut changes: Vec<&ResourceChange> = plan
        .resource_changes
        .iter()
        .filter(|c| header(c).is_some())
        .collect();
    changes.sort_by_key(|c| (risk(c), c.node.address.clone()));
    // (component, kind, action) → the changes of control planes like it.
    let mut alike: BTreeMap<(String, String, String), Vec<&ResourceChange>> = BTreeMap::new();
    let mut blocks = Vec::new();
    for change in changes {
        let Some(header) = header(change) else {
            continue;
        };
        let component = change
            .node
            .address
            .component_kind()
            .map(|c| c.spec_key().to_string());
        let what = format!("{} `{}`", header.verb, change.node.kind().type_name());
        if change.node.kind().facts().owner == Owner::ControlPlane {
            let key = (
                component.clone().unwrap_or_default(),
                change.node.kind().type_name().to_string(),
                header.verb.to_string(),
            );
            alike.entry(key).or_default().push(change);
            continue;
        }
        blocks.push(Block {
            text: detail(change),
            count: 1,
            what,
            component,
        });
    }
    for ((component, _, verb), changes) in alike {
        let first = changes[0];
        let mut text = detail(first);
        let more = changes.len() - 1;
        if more > 0 {
            let _ = writeln!(
                text,
                "\n_and {more} more like this one, one per control plane._\n"
            );
        }
        blocks.push(Block {
            text,
            count: changes.len(),
            what: format!("{verb} `{}`", first.node.kind().type_name()),
            component: Some(component).filter(|c| !c.is_empty()),
        });
    }
    blocks
}

/// One change, folded: the address and what happens, the attributes as a diff.
fn detail(change: &ResourceChange) -> String {
    let header = header(change).expect("details are of changes");
    let text = block(change).unwrap_or_default();
    let text = anstream::adapter::strip_str(&text).to_string();
    // The block's first line repeats the summary's words.
    let diff = text.split_once('\n').map_or("", |(_, rest)| rest);
    folded(
        &format!(
            "{} <code>{}</code> {}",
            header.sign,
            change.node.address,
            html(&header.what())
        ),
        &diff_columns(diff.trim_end()),
        true,
    )
}

/// A diff as GitHub colours it: `+` and `-` in the first column, a space before any other
/// line.
fn diff_columns(text: &str) -> String {
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            match trimmed.chars().next() {
                Some(sign @ ('+' | '-')) => {
                    let indent = line.len() - trimmed.len();
                    format!("{sign}{}{}", " ".repeat(indent), &trimmed[1..])
                }
                _ => format!(" {line}"),
            }
        })
        .collect();
    lines.join("\n")
}

/// A folded block: `summary` shown, `body` in a fenced block (a diff, or plain text).
pub fn folded(summary: &str, body: &str, diff: bool) -> String {
    let fence = if diff { "```diff" } else { "```text" };
    format!(
        "<details><summary>{summary}</summary>\n\n{fence}\n{}\n```\n\n</details>\n",
        body.trim_end()
    )
}

/// Text safe inside an HTML element of a Markdown document.
pub fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// One block of details, and what it stands for in the line that counts what was left out.
pub struct Block {
    pub text: String,
    /// The changes (or findings) it shows.
    pub count: usize,
    /// The action and kind (`will be created \`aws_iam_role\``).
    pub what: String,
    /// The component, when it has one.
    pub component: Option<String>,
}

/// `head` (never cut), then those of `blocks` that fit in `max` characters, in order, then a
/// line counting the blocks left out and saying how to see them (`see_all`). An error naming the
/// minimum when `max` cannot hold the head and that line.
pub fn fit(
    head: String,
    blocks: Vec<String>,
    what: &str,
    see_all: &str,
    max: usize,
) -> Result<String> {
    let blocks = blocks
        .into_iter()
        .map(|text| Block {
            text,
            count: 1,
            what: String::new(),
            component: None,
        })
        .collect();
    fit_blocks(head, blocks, what, see_all, max)
}

/// As [`fit`], and the line that counts what was left out says what it was: per action and
/// kind, how many and of which components.
pub fn fit_blocks(
    head: String,
    blocks: Vec<Block>,
    what: &str,
    see_all: &str,
    max: usize,
) -> Result<String> {
    let total: usize = blocks.iter().map(|b| b.count).sum();
    let cut = |left: &[&Block]| {
        let n: usize = left.iter().map(|b| b.count).sum();
        let mut by_what: BTreeMap<&str, (usize, Vec<&str>)> = BTreeMap::new();
        for b in left.iter().filter(|b| !b.what.is_empty()) {
            let entry = by_what.entry(&b.what).or_default();
            entry.0 += b.count;
            entry.1.extend(b.component.as_deref());
        }
        let breakdown: Vec<String> = by_what
            .into_iter()
            .map(|(w, (n, mut components))| {
                components.sort_unstable();
                components.dedup();
                match components.is_empty() {
                    true => format!("{n} × {w}"),
                    false => format!("{n} × {w} ({})", components.join(", ")),
                }
            })
            .collect();
        let breakdown = match breakdown.is_empty() {
            true => String::new(),
            false => format!(": {}", breakdown.join("; ")),
        };
        format!(
            "\n_{n} of {total} {what} left out to fit one comment (`--max-chars`){breakdown}. \
             See all of them with {see_all}._\n"
        )
    };
    let all: Vec<&Block> = blocks.iter().collect();
    let reserve = if blocks.is_empty() {
        0
    } else {
        chars(&cut(&all))
    };
    let needed = chars(&head) + reserve;
    if needed > max {
        return Err(Error::user(format!(
            "--max-chars {max} is too small: the part of the Markdown that is never cut (the \
             summary line, warnings and the summary per space) needs {needed} characters; use \
             --max-chars {needed} or more"
        )));
    }
    // Room for the cut line is kept until every block is in; a block too big for what is left
    // is left out, and smaller ones after it still get their turn.
    let mut used = chars(&head);
    let mut out = head;
    let mut left = Vec::new();
    for block in &blocks {
        let len = chars(&block.text);
        if used + len + reserve > max {
            left.push(block);
            continue;
        }
        out.push_str(&block.text);
        used += len;
    }
    if !left.is_empty() {
        out.push_str(&cut(&left));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_fit_the_budget_and_the_rest_is_counted() {
        let blocks: Vec<String> = (0..100).map(|i| format!("block {i:03}\n")).collect();
        let out = fit("head\n".into(), blocks.clone(), "details", "`x`", 300).unwrap();
        assert!(out.chars().count() <= 300, "{out}");
        let shown = out.lines().filter(|l| l.starts_with("block")).count();
        assert!(shown > 0);
        assert!(
            out.contains(&format!("_{} of 100 details left out", 100 - shown)),
            "{out}"
        );
        let all = fit("head\n".into(), blocks, "details", "`x`", 100_000).unwrap();
        assert!(!all.contains("left out"));
        let err = fit("x".repeat(50), vec!["b".into()], "details", "`x`", 60)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--max-chars 60 is too small"), "{err}");
        // The minimum it names is the smallest budget that works.
        let fits = |max| fit("x".repeat(50), vec!["b".into()], "details", "`x`", max).is_ok();
        let minimum = (60..1000).find(|m| fits(*m)).unwrap();
        assert!(
            err.contains(&format!("use --max-chars {minimum} or more")),
            "{err}"
        );
    }
}
