//! Drift: what changed outside idplan since the last apply, i.e. where the cloud no longer
//! holds what the state recorded. Changes someone made beside idplan's (their own tags, client
//! ids or members) are outside the projection the drivers read, so they are not drift.

use std::fmt::Write;

use futures::{StreamExt, TryStreamExt, stream};
use serde::Serialize;
use serde_json::Value;

use super::Inputs;
use crate::diff::{self, ADD, CHANGE, REMOVE};
use crate::error::Result;
use crate::graph::Address;
use crate::plan::Plan;
use crate::plan::render::Format;
use crate::provider::Clouds;
use crate::state::State;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Modified,
    Deleted,
}

#[derive(Debug, Serialize)]
pub struct Drifted {
    pub address: Address,
    pub status: Status,
    /// What the last apply left.
    pub recorded: Value,
    /// What the cloud holds now; null when deleted.
    pub actual: Option<Value>,
}

/// A control plane whose identity does not match the cluster any more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControlPlaneDrift {
    pub space: String,
    pub namespace: String,
    /// `<namespace>/<name>` of the ControlPlane, when discovered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<String>,
    pub status: ControlPlaneStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlPlaneStatus {
    /// Discovered on the cluster, but the last apply gave it no identity.
    New,
    /// The last apply gave it an identity, but it is neither discovered nor listed any more.
    Gone,
}

/// Compares the control planes the spec covers now (after discovery) with those the last
/// apply covered. A space the state has no record of (never applied, or by an older idplan)
/// is skipped: nothing to compare with. Listed control planes that are new are spec edits,
/// shown as pending changes, not drift.
pub fn control_planes(
    spec: &crate::spec::Spec,
    state: &State,
    discovered: &[crate::cluster::Discovered],
) -> Vec<ControlPlaneDrift> {
    let mut out = Vec::new();
    for space in &spec.spaces {
        let Some(record) = state.spaces.get(&space.name) else {
            continue;
        };
        for d in discovered.iter().filter(|d| d.space == space.name) {
            if let Some(ns) = &d.namespace
                && !record.control_planes.contains(ns)
            {
                out.push(ControlPlaneDrift {
                    space: space.name.clone(),
                    namespace: ns.clone(),
                    control_plane: Some(d.control_plane.clone()),
                    status: ControlPlaneStatus::New,
                });
            }
        }
        for ns in &record.control_planes {
            if !space.control_planes.iter().any(|c| &c.namespace == ns) {
                out.push(ControlPlaneDrift {
                    space: space.name.clone(),
                    namespace: ns.clone(),
                    control_plane: None,
                    status: ControlPlaneStatus::Gone,
                });
            }
        }
    }
    out
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub has_drift: bool,
    pub checked: usize,
    pub resources: Vec<Drifted>,
    /// Control planes that appeared on or disappeared from the cluster since the last apply.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub control_planes: Vec<ControlPlaneDrift>,
    /// Discovered control planes without an ID yet: not planned, not drift; reported.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<crate::cluster::Discovered>,
    /// Changes of the spec that were never applied: not drift, shown for context.
    pub pending: Option<crate::plan::Summary>,
    /// Why the spec could not be planned, when it could not: `idplan plan` shows it too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_error: Option<String>,
}

/// Compares the clouds with the last apply. Drift is judged against the state alone; the spec
/// is planned too, to mention changes never applied, but a plan that cannot be made (a
/// conflict, say) does not hide the drift.
pub async fn drift(inputs: &Inputs) -> Result<Report> {
    let opened = super::plan::open(inputs, "drift").await?;
    // The comparison with the state and the plan after it read the same resources: once.
    opened.clouds.remember_reads();
    let state = opened.state.state();
    let control_planes = control_planes(&opened.spec, state, &opened.discovered);
    // `--control-plane`: the records those control planes need, nothing of the others.
    let targets = super::plan::targets(&opened.spec, &inputs.control_planes)?;
    if let Some(targets) = &targets {
        opened.clouds.limit_to(targets.namespaces());
    }
    let scoped = targets.map(|t| t.state(state, &crate::graph::Graph::default()));
    let resources = detect(
        scoped.as_ref().unwrap_or(state),
        &opened.clouds,
        inputs.parallelism,
    )
    .await?;
    let (pending, plan_error) = match super::plan::decide(&opened, inputs).await {
        Ok(plan) => {
            // What the plan would change beyond repairing the drift: spec edits never applied.
            let pending: Vec<_> = plan
                .resource_changes
                .into_iter()
                .filter(|c| !resources.iter().any(|d| d.address == c.node.address))
                .collect();
            (
                Some(Plan::new(String::new(), 0, String::new(), pending).summary),
                None,
            )
        }
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(Report {
        has_drift: !resources.is_empty() || !control_planes.is_empty(),
        checked: state.resources.len(),
        resources,
        control_planes,
        waiting: opened
            .discovered
            .iter()
            .filter(|d| d.namespace.is_none())
            .cloned()
            .collect(),
        pending,
        plan_error,
    })
}

pub async fn detect(state: &State, clouds: &Clouds, parallelism: usize) -> Result<Vec<Drifted>> {
    let found: Vec<Option<Drifted>> = stream::iter(&state.resources)
        .map(|record| async move {
            let actual = clouds
                .read(&record.resource(), Some(&record.attributes))
                .await?
                // Another object under the same identity means idplan's was deleted.
                .filter(|a| {
                    crate::provider::same_object(record.node.kind(), &record.attributes, a)
                });
            let status = match &actual {
                None => Status::Deleted,
                Some(a) if *a != record.attributes => Status::Modified,
                Some(_) => return Ok::<_, crate::error::Error>(None),
            };
            Ok(Some(Drifted {
                address: record.node.address.clone(),
                status,
                recorded: record.attributes.clone(),
                actual,
            }))
        })
        .buffered(parallelism.max(1))
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}

/// The report in `format`; Markdown fits `max_chars` (an issue body or a comment) by the
/// plan's rules: what changed is summed up first and never cut, the details per resource are
/// folded and cut to the budget.
pub fn render(report: &Report, format: Format, max_chars: usize) -> Result<String> {
    let summary = if report.resources.is_empty() && report.has_drift {
        format!(
            "Drift: the Spaces' control planes changed since the last apply (the {} resources \
             idplan manages match it). `idplan apply` catches up.",
            report.checked
        )
    } else if report.has_drift {
        format!(
            "Drift: {} of {} resources changed outside idplan. `idplan apply` puts them back.",
            report.resources.len(),
            report.checked
        )
    } else {
        format!(
            "No drift: the {} resources idplan manages match the last apply.",
            report.checked
        )
    };
    let pending = match report.pending {
        Some(s) if s != crate::plan::Summary::default() => format!(
            "The spec also has changes that were never applied ({} to add, {} to change, {} to \
             destroy): see `idplan plan`.\n",
            s.add, s.change, s.destroy
        ),
        _ => String::new(),
    };
    let pending = match &report.plan_error {
        Some(e) => format!("The spec cannot be planned now (`idplan plan` says why): {e}\n"),
        None => pending,
    };
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(report).expect("report serializes");
            s.push('\n');
            Ok(s)
        }
        Format::Markdown => markdown(report, &summary, &pending, max_chars),
        Format::Text => {
            let mut body = String::new();
            section(
                &mut body,
                report
                    .waiting
                    .iter()
                    .map(|d| format!("  {}", d.no_id_warning("not planned"))),
            );
            section(
                &mut body,
                report.control_planes.iter().map(control_plane_line),
            );
            for d in &report.resources {
                body.push_str(&resource_block(d));
            }
            Ok(format!("{body}{summary}\n{pending}"))
        }
    }
}

fn control_plane_line(c: &ControlPlaneDrift) -> String {
    let name = c
        .control_plane
        .as_ref()
        .map(|n| format!(" (control plane {n})"))
        .unwrap_or_default();
    let (style, sign, what) = match c.status {
        ControlPlaneStatus::New => (ADD, '+', "has no identity yet"),
        ControlPlaneStatus::Gone => (
            REMOVE,
            '-',
            "is gone from the cluster and the spec, but its identity remains",
        ),
    };
    format!(
        "  {style}{sign}{style:#} space {}: host namespace {}{name} {what}",
        c.space, c.namespace
    )
}

/// One drifted resource as the text report shows it (ANSI styled).
fn resource_block(d: &Drifted) -> String {
    let mut body = String::new();
    let (style, what) = match d.status {
        Status::Modified => (CHANGE, "was modified outside idplan"),
        Status::Deleted => (REMOVE, "was deleted outside idplan"),
    };
    let _ = writeln!(body, "  # {} {what}", d.address);
    let _ = writeln!(body, "  {style}!{style:#} {}", d.address);
    if let Some(actual) = &d.actual {
        for line in diff::attributes(Some(&d.recorded), Some(actual), "      ") {
            let _ = writeln!(body, "{line}");
        }
    }
    body.push('\n');
    body
}

fn markdown(report: &Report, summary: &str, pending: &str, max_chars: usize) -> Result<String> {
    use crate::plan::render::{fit, folded};
    let mut head = format!("### idplan drift\n\n**{summary}**\n");
    if !pending.is_empty() {
        let _ = write!(head, "\n{pending}");
    }
    for d in &report.waiting {
        let _ = write!(
            head,
            "\n> [!WARNING]\n> {}\n",
            d.no_id_warning("not planned")
        );
    }
    // Deleted first, as the plan warns first of what it destroys; then counts per kind.
    let mut counts: std::collections::BTreeMap<(&str, &str), usize> = Default::default();
    for d in &report.resources {
        let status = match d.status {
            Status::Modified => "modified",
            Status::Deleted => "deleted",
        };
        *counts
            .entry((status, d.address.kind().type_name()))
            .or_default() += 1;
    }
    if !counts.is_empty() {
        head.push('\n');
        for ((status, kind), n) in counts {
            let _ = writeln!(head, "- `{kind}`: {n} {status} outside idplan");
        }
    }
    for (status, words) in [
        (
            ControlPlaneStatus::New,
            "appeared on the cluster without an identity",
        ),
        (
            ControlPlaneStatus::Gone,
            "gone, but their identities remain",
        ),
    ] {
        let list: Vec<String> = report
            .control_planes
            .iter()
            .filter(|c| c.status == status)
            .map(|c| format!("{} {}", c.space, c.namespace))
            .collect();
        if !list.is_empty() {
            let _ = write!(
                head,
                "\n{}",
                folded(
                    &format!("{} control planes {words}", list.len()),
                    &list.join("\n"),
                    false
                )
            );
        }
    }
    let blocks = report
        .resources
        .iter()
        .map(|d| {
            let text = anstream::adapter::strip_str(&resource_block(d)).to_string();
            let diff = text.split_once('\n').map_or("", |(_, rest)| rest);
            let what = match d.status {
                Status::Modified => "was modified outside idplan",
                Status::Deleted => "was deleted outside idplan",
            };
            folded(&format!("<code>{}</code> {what}", d.address), diff, true)
        })
        .collect::<Vec<_>>();
    if !blocks.is_empty() {
        head.push_str("\n#### Details\n\n");
    }
    fit(head, blocks, "details", "`idplan drift`", max_chars)
}

/// Writes the lines, then a blank line when there were any.
fn section(body: &mut String, lines: impl Iterator<Item = String>) {
    let before = body.len();
    for line in lines {
        let _ = writeln!(body, "{line}");
    }
    if body.len() > before {
        body.push('\n');
    }
}
