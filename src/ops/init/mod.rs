//! `idplan init`: writes the spec that adopts the identities a running Space already uses, so
//! a Space set up by hand from the guides goes to a reviewed plan in one command.
//!
//! 1. `refuse_existing`: an existing file is kept unless `--force`, before any call.
//! 2. `read_cluster`: the control planes' host namespaces (as discovery reads them), and the
//!    three components' service accounts there with the cloud's annotation: one list per
//!    service account name, not a read per namespace.
//! 3. The cloud's survey (`provider::<cloud>::survey`): which identity each component uses
//!    (the annotation, or on AWS without one the pod identity associations), what it reaches,
//!    and the space's cloud block. Where the control planes disagree, `Choices` asks.
//! 4. `write`: the draft is loaded as the spec loader would (so init never writes a file that
//!    `plan` refuses), then written.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::cluster;
use crate::error::{Error, Result};
use crate::recipe::InitCloud;
use crate::spec::ComponentKind;
use crate::spec::draft::{Draft, DraftComponent};
pub use crate::spec::survey::{Choices, Found, Resolved, Seen, Survey};

#[derive(Debug, Clone)]
pub struct Options {
    pub file: PathBuf,
    pub force: bool,
    /// The kubeconfig context of the Space's cluster; `None`: the current context.
    pub context: Option<String>,
    pub kubeconfig: Option<PathBuf>,
    /// The space's name; `None`: derived from the cluster's name.
    pub space: Option<String>,
    pub choices: Choices,
    pub parallelism: usize,
    /// The cloud settings neither the cluster nor the cloud says, from the command line.
    pub cloud: InitCloud,
}

/// What init wrote.
#[derive(Debug)]
pub struct Outcome {
    pub path: PathBuf,
    pub draft: Draft,
    pub seen: Seen,
}

pub async fn init(options: &Options) -> Result<Outcome> {
    refuse_existing(&options.file, options.force)?;
    let context = match &options.context {
        Some(c) => c.clone(),
        None => cluster::current_context(options.kubeconfig.as_deref())?,
    };
    let discover = crate::spec::Discover {
        context: Some(context.clone()),
        kubeconfig: options.kubeconfig.clone(),
        file: options.file.clone(),
        location: Default::default(),
    };
    let client = cluster::connect(&discover).await?;
    let seen = read_cluster(&client, options.cloud.annotation())
        .await
        .map_err(|e| cluster::at(e, &discover))?;
    let mut survey = options
        .cloud
        .survey(&seen, &options.choices, options.parallelism)
        .await?;
    one_identity_each(&mut survey.components);
    let mut header = vec![
        format!(
            "Written by `idplan init` from the Space's cluster (context {context}) and its \
             cloud:"
        ),
        "each component adopts what its service accounts use today (`adopt: true`:".to_string(),
        format!("{};", options.cloud.adopts()),
        "taken over, never deleted). Review it, then run `idplan plan`.".to_string(),
    ];
    for cp in &seen.without_id {
        header.push(format!(
            "control plane {cp} has no ID yet: discovery adds it once it has one"
        ));
    }
    let draft = Draft {
        header,
        space: options
            .space
            .clone()
            .unwrap_or_else(|| space_name(options.cloud.cluster())),
        context,
        // A file meant to be committed names the user's home as `~` (the loader expands it).
        kubeconfig: options.kubeconfig.as_deref().map(home_relative),
        cloud: survey.cloud,
        cloud_fields: survey.fields,
        components: survey.components,
    };
    if !draft.adopts_any() {
        let why: Vec<String> = draft
            .components
            .iter()
            .filter_map(|c| match c {
                DraftComponent::LeftOut { kind, why } => Some(format!("{kind}: {why}")),
                DraftComponent::Adopted { .. } => None,
            })
            .collect();
        return Err(Error::user(format!(
            "found no identity to adopt in the Space of context {}: {}",
            draft.context,
            why.join("; ")
        )));
    }
    write(&options.file, &draft, options.force)?;
    Ok(Outcome {
        path: options.file.clone(),
        draft,
        seen,
    })
}

/// A component whose identity an earlier one already adopts is left out: the spec gives each
/// component an identity of its own (the loader refuses a name used twice in a space).
fn one_identity_each(components: &mut [DraftComponent]) {
    let mut taken: Vec<(String, ComponentKind)> = Vec::new();
    for c in components.iter_mut() {
        let DraftComponent::Adopted {
            kind,
            name: Some(name),
            ..
        } = c
        else {
            continue;
        };
        match taken.iter().find(|(n, _)| n == name) {
            Some((_, other)) => {
                *c = DraftComponent::LeftOut {
                    kind: *kind,
                    why: format!(
                        "{name} is {other}'s identity too: idplan gives each component its own"
                    ),
                };
            }
            None => taken.push((name.clone(), *kind)),
        }
    }
}

/// `path` with the user's home as `~/`.
fn home_relative(path: &Path) -> PathBuf {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    match home.as_ref().and_then(|h| path.strip_prefix(h).ok()) {
        Some(rest) => Path::new("~").join(rest),
        None => path.to_path_buf(),
    }
}

fn refuse_existing(file: &Path, force: bool) -> Result<()> {
    if !force && file.exists() {
        return Err(Error::user(format!(
            "{} exists: idplan init does not overwrite it (move it away, or pass --force)",
            file.display()
        )));
    }
    Ok(())
}

/// The cluster's name as a space name: lower case, `-` for other characters, at most 40.
fn space_name(cluster: &str) -> String {
    let name: String = cluster
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    name.trim_matches('-').to_string()
}

/// Reads the control planes and the components' service accounts.
async fn read_cluster(client: &kube::Client, annotation: &str) -> Result<Seen> {
    let mut seen = Seen::default();
    for cp in cluster::control_planes(client).await? {
        match cp.host_namespace {
            Some(ns) => seen.namespaces.push(ns),
            None => seen.without_id.push(cp.name),
        }
    }
    seen.namespaces.sort();
    seen.namespaces.dedup();
    let lists = futures::future::try_join_all(
        ComponentKind::ALL
            .map(|kind| cluster::service_accounts_named(client, kind.service_account())),
    )
    .await?;
    for (kind, accounts) in ComponentKind::ALL.into_iter().zip(lists) {
        for sa in accounts {
            let Some(ns) = sa.metadata.namespace.clone() else {
                continue;
            };
            // Only the control planes' host namespaces: a service account of the same name
            // elsewhere in the cluster is not the component's.
            if seen.namespaces.binary_search(&ns).is_err() {
                continue;
            }
            seen.accounts.entry(kind).or_default().push(ns.clone());
            let value = sa
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(annotation))
                .filter(|v| !v.trim().is_empty());
            if let Some(v) = value {
                seen.annotations
                    .entry(kind)
                    .or_default()
                    .entry(v.trim().to_string())
                    .or_default()
                    .push(ns);
            }
        }
    }
    Ok(seen)
}

/// Loads the draft as the spec loader would, then writes it: a new file (never replacing one
/// made meanwhile) unless `force`.
fn write(file: &Path, draft: &Draft, force: bool) -> Result<()> {
    let text = draft.render();
    crate::spec::parse(file, &text).map_err(|e| {
        Error::user(format!(
            "the spec idplan init would write is invalid (a --space or --identity value?):\n{e}"
        ))
    })?;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut f = options.open(file).map_err(|e| Error::io(file, e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| Error::io(file, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_is_adopted_by_one_component() {
        let adopted = |kind, name: &str| DraftComponent::Adopted {
            kind,
            name: Some(name.to_string()),
            access: vec![],
            comments: vec![],
        };
        let mut components = vec![
            adopted(ComponentKind::Backup, "storage"),
            adopted(ComponentKind::Billing, "storage"),
            adopted(ComponentKind::SharedSecrets, "eso"),
        ];
        one_identity_each(&mut components);
        assert_eq!(components[0], adopted(ComponentKind::Backup, "storage"));
        assert_eq!(
            components[1],
            DraftComponent::LeftOut {
                kind: ComponentKind::Billing,
                why: "storage is backup's identity too: idplan gives each component its own".into()
            }
        );
        assert_eq!(components[2], adopted(ComponentKind::SharedSecrets, "eso"));
    }

    #[test]
    fn space_names_come_from_cluster_names() {
        assert_eq!(space_name("Spaces_Prod"), "spaces-prod");
        assert_eq!(space_name("-x-"), "x");
    }
}
