//! The Markdown plan: one pull-request comment at any scale. What a reviewer needs comes first
//! and is never cut (the summary line, the warning for what is destroyed or replaced, the
//! summary per space); then the per-resource details, folded, in the order of the plan, those
//! the budget holds, and a last line counting what was left out.

use std::fmt::Write;

use super::{Options, Plan, block, header, notes, summary, summary_line};
use crate::error::{Error, Result};

/// A GitHub comment holds at most 65,536 characters; this leaves room for a marker.
pub const DEFAULT_MAX_CHARS: usize = 65_000;

pub(super) fn markdown(plan: &Plan, options: &Options) -> Result<String> {
    let mut head = format!("### idplan plan\n\n**{}**\n", summary_line(plan));
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
        blocks.push(folded(
            &format!("{} control planes discovered", found.len()),
            &found.concat(),
            false,
        ));
    }
    if plan.has_changes {
        if let Some(warning) = summary::warning(plan) {
            head.push_str(&warning);
        }
        head.push_str(&summary::spaces(plan));
        head.push_str("\n#### Details\n\n");
        for change in &plan.resource_changes {
            let (Some((sign, _, what)), Some(text)) = (header(change), block(change)) else {
                continue;
            };
            let text = anstream::adapter::strip_str(&text).to_string();
            // The block's first line repeats the summary's words.
            let diff = text.split_once('\n').map_or("", |(_, rest)| rest);
            blocks.push(folded(
                &format!("{sign} <code>{}</code> {}", change.address, html(&what)),
                diff.trim_end(),
                true,
            ));
        }
    }
    let see_all = match &options.plan_file {
        Some(file) => format!("`idplan show {file}`"),
        None => "`idplan plan --out FILE`, then `idplan show FILE`".to_string(),
    };
    fit(head, blocks, "details", &see_all, options.max_chars)
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
    let total = blocks.len();
    let cut = |left: usize| {
        format!(
            "\n_{left} of {total} {what} left out to fit one comment (`--max-chars`): see all of \
             them with {see_all}._\n"
        )
    };
    let needed = chars(&head) + if total == 0 { 0 } else { chars(&cut(total)) };
    if needed > max {
        return Err(Error::user(format!(
            "--max-chars {max} is too small: the part of the Markdown that is never cut (the \
             summary line, warnings and the summary per space) needs {needed} characters; use \
             --max-chars {needed} or more"
        )));
    }
    // Room for the cut line is kept until every block is in; a block too big for what is left
    // is left out, and smaller ones after it still get their turn.
    let reserve = if total == 0 { 0 } else { chars(&cut(total)) };
    let mut used = chars(&head);
    let mut out = head;
    let mut shown = 0;
    for block in &blocks {
        let len = chars(block);
        if used + len + reserve > max {
            continue;
        }
        out.push_str(block);
        used += len;
        shown += 1;
    }
    if shown < total {
        out.push_str(&cut(total - shown));
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
