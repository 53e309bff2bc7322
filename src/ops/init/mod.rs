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

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::cluster;
use crate::error::{Error, Result};
use crate::recipe::InitCloud;
use crate::spec::ComponentKind;
use crate::spec::draft::{Draft, DraftComponent, Field};

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

/// Where one value was found: the value, and the host namespaces that name it.
pub type Found = BTreeMap<String, Vec<String>>;

/// What the Space's cluster says.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// The host namespaces of the control planes that have an ID, sorted.
    pub namespaces: Vec<String>,
    /// Control planes without an ID yet (not planned until they have one).
    pub without_id: Vec<String>,
    /// Per component: the annotation values of its service accounts in the host namespaces.
    pub annotations: BTreeMap<ComponentKind, Found>,
    /// Per component: the host namespaces where its service account exists.
    pub accounts: BTreeMap<ComponentKind, Vec<String>>,
}

/// The identities chosen with `--identity COMPONENT=VALUE` where control planes disagree.
#[derive(Debug, Clone, Default)]
pub struct Choices(pub BTreeMap<ComponentKind, String>);

impl Choices {
    /// The one value the control planes of `kind` name (`what`: "role ARN", "client id"...):
    /// the only one found, or the one chosen. Control planes that disagree, with no choice,
    /// are an error naming every value and its namespaces.
    pub fn resolve(&self, kind: ComponentKind, what: &str, found: &Found) -> Result<Resolved> {
        let chosen = self.0.get(&kind);
        if let Some(value) = chosen
            && !found.contains_key(value)
        {
            return Err(Error::user(format!(
                "--identity {kind}={value}: no {} service account names that {what}; \
                     found: {}",
                kind.service_account(),
                list(found)
            )));
        }
        let value = match (chosen, found.len()) {
            (_, 0) => return Ok(Resolved::None),
            (Some(v), _) => v.clone(),
            (None, 1) => found.keys().next().expect("one").clone(),
            (None, _) => {
                return Err(Error::user(format!(
                    "{kind}: the control planes' {} service accounts name different {what}s: \
                     {}. Choose the one to adopt with --identity {kind}=VALUE; the others \
                     move to it when the Helm values are applied",
                    kind.service_account(),
                    list(found)
                )));
            }
        };
        let others: Vec<String> = found
            .iter()
            .filter(|(v, _)| **v != value)
            .map(|(v, ns)| format!("{v} ({})", ns.join(", ")))
            .collect();
        let comment = (!others.is_empty()).then(|| {
            format!(
                "chosen with --identity; other control planes named {}",
                others.join("; ")
            )
        });
        Ok(Resolved::One { value, comment })
    }
}

/// A component's identity as the control planes name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    None,
    One {
        value: String,
        /// Why this value, when there was a choice.
        comment: Option<String>,
    },
}

fn list(found: &Found) -> String {
    found
        .iter()
        .map(|(v, ns)| format!("{v} in {}", ns.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What a cloud's survey found: the space's cloud block and its components.
#[derive(Debug, Clone)]
pub struct Survey {
    pub cloud: &'static str,
    pub fields: Vec<Field>,
    pub components: Vec<DraftComponent>,
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

    fn found(entries: &[(&str, &[&str])]) -> Found {
        entries
            .iter()
            .map(|(v, ns)| (v.to_string(), ns.iter().map(|n| n.to_string()).collect()))
            .collect()
    }

    #[test]
    fn one_value_is_taken_two_ask_which() {
        let choices = Choices::default();
        let one = found(&[("arn:r1", &["mxp-a-system", "mxp-b-system"])]);
        assert_eq!(
            choices
                .resolve(ComponentKind::Billing, "role ARN", &one)
                .unwrap(),
            Resolved::One {
                value: "arn:r1".into(),
                comment: None
            }
        );
        let two = found(&[("arn:r1", &["mxp-a-system"]), ("arn:r2", &["mxp-b-system"])]);
        let e = choices
            .resolve(ComponentKind::Billing, "role ARN", &two)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("arn:r1 in mxp-a-system; arn:r2 in mxp-b-system"),
            "{e}"
        );
        assert!(e.contains("--identity billing=VALUE"), "{e}");
        let chosen = Choices(BTreeMap::from([(ComponentKind::Billing, "arn:r2".into())]));
        let Resolved::One { value, comment } = chosen
            .resolve(ComponentKind::Billing, "role ARN", &two)
            .unwrap()
        else {
            panic!("one")
        };
        assert_eq!(value, "arn:r2");
        assert!(comment.unwrap().contains("arn:r1 (mxp-a-system)"));
        let e = Choices(BTreeMap::from([(ComponentKind::Billing, "arn:r3".into())]))
            .resolve(ComponentKind::Billing, "role ARN", &two)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--identity billing=arn:r3"), "{e}");
    }

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
