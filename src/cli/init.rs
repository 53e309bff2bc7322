use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use super::{ExitStatus, print};
use crate::error::Result;
use crate::ops::init::{self, Choices, Options};
use crate::recipe::InitFlags;
use crate::spec::ComponentKind;
use crate::spec::draft::DraftComponent;

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    spec: super::SpecArgs,
    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
    /// The kubeconfig context of the Space's cluster (default: the current context).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// The kubeconfig file (default: KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// The space's name (default: the cluster's name).
    #[arg(long, value_name = "NAME")]
    space: Option<String>,
    /// Where control planes name different identities for one component: the one to adopt,
    /// as the error lists it (e.g. `billing=arn:aws:iam::123456789012:role/vector`).
    #[arg(long = "identity", value_name = "COMPONENT=VALUE", value_parser = choice)]
    identity: Vec<(ComponentKind, String)>,
    #[command(flatten)]
    parallelism: super::ParallelismArgs,
    #[command(flatten)]
    cloud: InitFlags,
}

/// `backup=VALUE`, `billing=VALUE` or `sharedSecrets=VALUE`.
fn choice(text: &str) -> Result<(ComponentKind, String), String> {
    let (key, value) = text
        .split_once('=')
        .filter(|(_, v)| !v.is_empty())
        .ok_or("expected COMPONENT=VALUE")?;
    let kind = ComponentKind::ALL
        .into_iter()
        .find(|k| k.spec_key() == key)
        .ok_or_else(|| format!("unknown component `{key}`: backup, billing or sharedSecrets"))?;
    Ok((kind, value.to_string()))
}

pub async fn run(args: InitArgs) -> Result<ExitStatus> {
    let options = Options {
        file: args.spec.file.clone(),
        force: args.force,
        context: args.context.clone(),
        kubeconfig: args.kubeconfig.clone(),
        space: args.space.clone(),
        choices: Choices(args.identity.iter().cloned().collect::<BTreeMap<_, _>>()),
        parallelism: args.parallelism.get(),
        cloud: args.cloud.cloud()?,
    };
    let outcome = init::init(&options).await?;
    // The summary is the command's output (stdout); errors and warnings go to stderr.
    let mut out = format!(
        "Read {} control planes of context {}.\n",
        outcome.seen.namespaces.len(),
        outcome.draft.context
    );
    let mut left_out = false;
    for c in &outcome.draft.components {
        let line = match c {
            DraftComponent::Adopted {
                kind,
                name: Some(name),
                ..
            } => format!("  {kind}: adopts {name}"),
            DraftComponent::Adopted { kind, .. } => {
                format!("  {kind}: takes over the bindings of its principal identifiers")
            }
            DraftComponent::LeftOut { kind, why } => {
                left_out = true;
                format!("  {kind}: left out: {why}")
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&format!(
        "Wrote {}. Review it, then: idplan plan -f {0}\n",
        outcome.path.display()
    ));
    print(&out);
    // A component left out is not managed: the spec is written, but it is not the whole Space.
    Ok(ExitStatus::changes_if(left_out))
}
