//! `verify`: whether the Space's cluster carries the identities idplan applied: per control
//! plane and component, the service account and its annotations, and the labels, phase and
//! start time of its pods. `restart` restarts the deployments whose pods predate their
//! identity, and only those. Beside drift, which compares the clouds with the state.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::cluster::{self, Discovered};
use crate::error::Result;
use crate::helm;
use crate::plan::render::Format;
use crate::spec::{self, ComponentKind, Space, Spec};
use crate::state::{RestartKey, SpaceRecord, StateFile, StateLocation};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};

#[derive(Debug, Serialize)]
struct Finding {
    space: String,
    namespace: String,
    /// The spec key: `backup`, `billing` or `sharedSecrets`.
    component: String,
    message: String,
    /// Set for a pod that started before its identity last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    stale_pod: Option<String>,
    /// The deployment owning the stale pod, which `--restart` restarts.
    #[serde(skip_serializing_if = "Option::is_none")]
    deployment: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    checked: usize,
    findings: Vec<Finding>,
    /// `<namespace>/<deployment>` restarted by `--restart`.
    restarted: Vec<String>,
    /// Discovered control planes without an ID yet: nothing to verify there yet.
    waiting: Vec<Discovered>,
    /// Spaces without `controlPlanes.discover`: no cluster to verify.
    skipped: Vec<String>,
}

impl Report {
    pub fn has_findings(&self) -> bool {
        !self.findings.is_empty()
    }

    /// `<namespace>/<deployment>` restarted.
    pub fn restarted(&self) -> &[String] {
        &self.restarted
    }
}

/// Checks every control plane of the spaces that discover them (or those `only` names),
/// against the Helm values of the state; with `restart`, restarts the deployments of stale
/// pods.
pub async fn verify(
    spec_file: &Path,
    state: Option<&StateLocation>,
    restart: bool,
    only: &[String],
) -> Result<Report> {
    let mut spec = spec::load(spec_file)?;
    let discovered = cluster::discover(&mut spec).await?;
    verify_discovered(spec, discovered, state, restart, only).await
}

/// [`verify`] for a spec whose control planes were discovered already (`watch` keeps them
/// from its watches).
pub async fn verify_discovered(
    mut spec: Spec,
    discovered: Vec<Discovered>,
    state: Option<&StateLocation>,
    restart: bool,
    only: &[String],
) -> Result<Report> {
    if super::plan::targets(&spec, only)?.is_some() {
        for space in &mut spec.spaces {
            space.control_planes.retain(|c| only.contains(&c.namespace));
        }
    }
    let state = StateFile::read_only(
        &super::state_location(state, Some(&spec)),
        crate::provider::upgrade_recorded,
    )
    .await?;
    let mut report = Report {
        checked: 0,
        findings: Vec::new(),
        restarted: Vec::new(),
        waiting: discovered
            .into_iter()
            .filter(|d| d.namespace.is_none())
            .collect(),
        skipped: Vec::new(),
    };
    for space in &spec.spaces {
        let Some(discover) = &space.discover else {
            report.skipped.push(space.name.clone());
            continue;
        };
        let client = cluster::connect(discover).await?;
        let values = crate::recipe::helm_values(space, state.state())?;
        let record = state.state().spaces.get(&space.name);
        verify_space(&client, space, &values, record, &mut report).await?;
    }
    if restart {
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let stale: BTreeSet<(String, String, String)> = report
            .findings
            .iter()
            .filter_map(|f| {
                let deployment = f.deployment.clone()?;
                Some((f.space.clone(), f.namespace.clone(), deployment))
            })
            .collect();
        for (space_name, namespace, deployment) in stale {
            let Some(discover) = spec
                .spaces
                .iter()
                .find(|s| s.name == space_name)
                .and_then(|s| s.discover.as_ref())
            else {
                continue;
            };
            let client = cluster::connect(discover).await?;
            cluster::restart(&client, &namespace, &deployment, &now).await?;
            report.restarted.push(format!("{namespace}/{deployment}"));
        }
        // A restarted deployment's stale pods are being replaced: no longer findings.
        report.findings.retain(|f| {
            f.deployment
                .as_ref()
                .is_none_or(|d| !report.restarted.contains(&format!("{}/{d}", f.namespace)))
        });
    }
    Ok(report)
}

/// What idplan's Helm values set for the component: (annotation key, value) on the service
/// account, (label key, value) on its pods.
type Expected = (Vec<(String, String)>, Vec<(String, String)>);

fn expected(values: &[helm::HelmValue], kind: ComponentKind) -> Expected {
    let prefix: Vec<&str> = kind.helm_prefix().split('.').collect();
    let annotations: Vec<&str> = prefix
        .iter()
        .copied()
        .chain(kind.annotations_key().split('.'))
        .collect();
    let labels: Vec<&str> = prefix
        .iter()
        .copied()
        .chain(["pod", "customLabels"])
        .collect();
    let pick = |under: &[&str]| -> Vec<(String, String)> {
        values
            .iter()
            .filter(|v| {
                v.path.len() == under.len() + 1 && v.path.iter().zip(under).all(|(a, b)| a == b)
            })
            .map(|v| {
                let value = match &v.value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (v.path[under.len()].clone(), value)
            })
            .collect()
    };
    (pick(&annotations), pick(&labels))
}

/// When apply last changed what the component's pods in `namespace` get injected.
fn changed_at(
    record: Option<&SpaceRecord>,
    kind: ComponentKind,
    namespace: &str,
) -> Option<std::time::SystemTime> {
    let record = record?;
    [
        record.identity_changed.get(&RestartKey::component(kind)),
        record
            .identity_changed
            .get(&RestartKey::pods(kind, namespace)),
    ]
    .into_iter()
    .flatten()
    .filter_map(|t| humantime::parse_rfc3339_weak(t).ok())
    .max()
}

async fn verify_space(
    client: &kube::Client,
    space: &Space,
    values: &[helm::HelmValue],
    record: Option<&SpaceRecord>,
    report: &mut Report,
) -> Result<()> {
    // Each component's service accounts and pods, listed once across the cluster: the reads
    // do not grow with the control planes (a few pages of 500).
    let mut accounts: HashMap<(ComponentKind, String), ServiceAccount> = HashMap::new();
    let mut pods: HashMap<(ComponentKind, String), Vec<Pod>> = HashMap::new();
    for kind in space.component_kinds() {
        let name = kind.service_account();
        for sa in cluster::service_accounts_named(client, name).await? {
            if let Some(ns) = sa.metadata.namespace.clone() {
                accounts.insert((kind, ns), sa);
            }
        }
        for pod in cluster::pods_running_as(client, name).await? {
            if let Some(ns) = pod.metadata.namespace.clone() {
                pods.entry((kind, ns)).or_default().push(pod);
            }
        }
    }
    for cp in &space.control_planes {
        let ns = &cp.namespace;
        // A control plane the applies of this space never covered has no identity on the
        // cloud side (no association, no trust, no credential), whatever its service accounts
        // say: a restart would not give its pods credentials. (A space the state does not
        // know, set up by other means, is checked as the cluster shows it.)
        let applied = record.is_none_or(|r| r.control_planes.contains(ns));
        for kind in space.component_kinds() {
            let sa_name = kind.service_account();
            report.checked += 1;
            if !applied {
                report.findings.push(Finding {
                    space: space.name.clone(),
                    namespace: ns.clone(),
                    component: kind.spec_key().to_string(),
                    message: "no identity yet: the last apply did not cover this control plane; \
                              run `idplan apply`"
                        .into(),
                    stale_pod: None,
                    deployment: None,
                });
                continue;
            }
            let mut finding =
                |message: String, stale_pod: Option<String>, deployment: Option<String>| {
                    report.findings.push(Finding {
                        space: space.name.clone(),
                        namespace: ns.clone(),
                        component: kind.spec_key().to_string(),
                        message,
                        stale_pod,
                        deployment,
                    });
                };
            let (annotations, labels) = expected(values, kind);
            let Some(sa) = accounts.remove(&(kind, ns.clone())) else {
                finding(
                    format!("service account {sa_name} does not exist"),
                    None,
                    None,
                );
                continue;
            };
            let actual = sa.metadata.annotations.unwrap_or_default();
            for (key, want) in &annotations {
                match actual.get(key) {
                    None => finding(
                        format!("service account {sa_name} lacks annotation {key}={want}"),
                        None,
                        None,
                    ),
                    Some(have) if have != want => finding(
                        format!(
                            "service account {sa_name} has annotation {key}={have}, expected {want}"
                        ),
                        None,
                        None,
                    ),
                    Some(_) => {}
                }
            }
            let pods = pods.remove(&(kind, ns.clone())).unwrap_or_default();
            if pods.is_empty() {
                finding(
                    format!("no pod runs as service account {sa_name}"),
                    None,
                    None,
                );
            }
            let changed = changed_at(record, kind, ns);
            for pod in &pods {
                let name = pod.metadata.name.clone().unwrap_or_default();
                let status = pod.status.as_ref();
                let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Unknown");
                if phase != "Running" {
                    finding(format!("pod {name} is {phase}, not Running"), None, None);
                }
                let pod_labels = pod.metadata.labels.clone().unwrap_or_default();
                for (key, want) in &labels {
                    if pod_labels.get(key) != Some(want) {
                        finding(format!("pod {name} lacks label {key}={want}"), None, None);
                    }
                }
                let started = status
                    .and_then(|s| s.start_time.as_ref())
                    .and_then(|t| humantime::parse_rfc3339_weak(&t.0.to_string()).ok());
                if let (Some(started), Some(changed)) = (started, changed)
                    && started < changed
                {
                    let deployment = cluster::owning_deployment(client, ns, pod).await?;
                    let how = match &deployment {
                        Some(d) => format!("restart deployment {d}"),
                        None => "it is not owned by a deployment: restart it by hand".into(),
                    };
                    finding(
                        format!(
                            "pod {name} started before the identity last changed ({}): it runs \
                             without the injected credentials; {how}",
                            humantime::format_rfc3339_seconds(changed)
                        ),
                        Some(name.clone()),
                        deployment,
                    );
                }
            }
        }
    }
    Ok(())
}

/// The report in `format`; Markdown fits `max_chars` (a comment or an issue body): the
/// summary and the counts per space are never cut, the findings are listed while they fit.
pub fn render(report: &Report, format: Format, max_chars: usize) -> Result<String> {
    if format == Format::Json {
        let mut s = serde_json::to_string_pretty(report).expect("report serializes");
        s.push('\n');
        return Ok(s);
    }
    let waiting: Vec<String> = report
        .waiting
        .iter()
        .map(|d| d.no_id_warning("nothing to verify there"))
        .collect();
    let skipped: Vec<String> = report
        .skipped
        .iter()
        .map(|s| format!("Space {s} has no `controlPlanes.discover`: no cluster to verify"))
        .collect();
    let summary = match report.findings.len() {
        0 => format!(
            "Verified: the {} component(s) on the clusters carry their identities.",
            report.checked
        ),
        n => format!("{n} finding(s) in {} component(s) checked.", report.checked),
    };
    if format == Format::Markdown {
        return markdown(report, &summary, &waiting, &skipped, max_chars);
    }
    let mut out = String::new();
    for line in waiting.iter().chain(&skipped) {
        let _ = writeln!(out, "{line}");
    }
    for f in &report.findings {
        let _ = writeln!(
            out,
            "{} {} {}: {}",
            f.space, f.namespace, f.component, f.message
        );
    }
    for r in &report.restarted {
        let _ = writeln!(out, "Restarted deployment {r}");
    }
    let _ = writeln!(out, "{summary}");
    Ok(out)
}

fn markdown(
    report: &Report,
    summary: &str,
    waiting: &[String],
    skipped: &[String],
    max_chars: usize,
) -> Result<String> {
    let mut head = format!("### idplan verify\n\n**{summary}**\n");
    for line in waiting {
        let _ = write!(head, "\n> [!WARNING]\n> {line}\n");
    }
    for line in skipped {
        let _ = write!(head, "\n{line}\n");
    }
    if !report.restarted.is_empty() {
        let _ = write!(
            head,
            "\nRestarted {} deployment(s).\n",
            report.restarted.len()
        );
    }
    let mut per_space: std::collections::BTreeMap<(&str, &str), usize> = Default::default();
    for f in &report.findings {
        *per_space.entry((&f.space, &f.component)).or_default() += 1;
    }
    let mut blocks = Vec::new();
    if !per_space.is_empty() {
        head.push('\n');
        for ((space, component), n) in per_space {
            let _ = writeln!(head, "- space `{space}`, `{component}`: {n} finding(s)");
        }
        head.push_str("\n| space | namespace | component | finding |\n| --- | --- | --- | --- |\n");
        let cell = |s: &str| crate::plan::render::html(s).replace('|', "\\|");
        blocks = report
            .findings
            .iter()
            .map(|f| {
                format!(
                    "| {} | `{}` | {} | {} |\n",
                    f.space,
                    f.namespace,
                    f.component,
                    cell(&f.message)
                )
            })
            .collect();
    }
    crate::plan::render::fit(head, blocks, "findings", "`idplan verify`", max_chars)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn value(path: &str, key: &str, value: Value) -> helm::HelmValue {
        let mut path: Vec<String> = path.split('.').map(String::from).collect();
        path.push(key.to_string());
        helm::HelmValue { path, value }
    }

    #[test]
    fn expected_annotations_and_labels_follow_the_chart_keys() {
        let values = [
            value("billing", "enabled", json!(true)),
            value(
                "controlPlanes.mxpController.serviceAccount.annotations",
                "eks.amazonaws.com/role-arn",
                json!("arn:aws:iam::123456789012:role/spaces-prod-backup"),
            ),
            value(
                "controlPlanes.vector.serviceAccount.customAnnotations",
                "azure.workload.identity/client-id",
                json!("c1"),
            ),
            value(
                "controlPlanes.vector.pod.customLabels",
                "azure.workload.identity/use",
                json!("true"),
            ),
        ];
        let (annotations, labels) = expected(&values, ComponentKind::Backup);
        assert_eq!(
            annotations,
            [(
                "eks.amazonaws.com/role-arn".to_string(),
                "arn:aws:iam::123456789012:role/spaces-prod-backup".to_string()
            )]
        );
        assert!(labels.is_empty());
        let (annotations, labels) = expected(&values, ComponentKind::Billing);
        assert_eq!(
            annotations,
            [(
                "azure.workload.identity/client-id".to_string(),
                "c1".to_string()
            )]
        );
        assert_eq!(
            labels,
            [(
                "azure.workload.identity/use".to_string(),
                "true".to_string()
            )]
        );
        // Pod identity and GCP principal mode set none: nothing is expected.
        assert_eq!(
            expected(&values, ComponentKind::SharedSecrets),
            (vec![], vec![])
        );
    }

    #[test]
    fn the_latest_change_of_the_component_or_its_namespace_counts() {
        let mut record = SpaceRecord::default();
        assert_eq!(changed_at(Some(&record), ComponentKind::Backup, "ns"), None);
        record.identity_changed.insert(
            RestartKey::component(ComponentKind::Backup),
            "2026-01-01T00:00:00Z".into(),
        );
        record
            .identity_changed
            .insert("backup/ns".parse().unwrap(), "2026-02-01T00:00:00Z".into());
        record.identity_changed.insert(
            RestartKey::pods(ComponentKind::Backup, "other"),
            "2026-03-01T00:00:00Z".into(),
        );
        let at = |s| humantime::parse_rfc3339_weak(s).unwrap();
        assert_eq!(
            changed_at(Some(&record), ComponentKind::Backup, "ns"),
            Some(at("2026-02-01T00:00:00Z"))
        );
        assert_eq!(
            changed_at(Some(&record), ComponentKind::Backup, "third"),
            Some(at("2026-01-01T00:00:00Z"))
        );
        assert_eq!(changed_at(None, ComponentKind::Backup, "ns"), None);
    }
}
