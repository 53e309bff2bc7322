use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use super::ExitStatus;
use crate::error::{Error, Result};
use crate::ops::init::{self, Choices, CloudFlags, Options};
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
    /// EKS: the cluster's region.
    #[arg(long, value_name = "REGION", requires = "aws_cluster")]
    aws_region: Option<String>,
    /// EKS: the cluster's name.
    #[arg(long, value_name = "NAME", requires = "aws_region")]
    aws_cluster: Option<String>,
    /// AKS: the cluster's subscription id.
    #[arg(long, value_name = "ID", requires_all = ["azure_resource_group", "azure_cluster"])]
    azure_subscription: Option<String>,
    /// AKS: the resource group of the cluster and the managed identities.
    #[arg(long, value_name = "NAME", requires = "azure_subscription")]
    azure_resource_group: Option<String>,
    /// AKS: the cluster's name.
    #[arg(long, value_name = "NAME", requires = "azure_subscription")]
    azure_cluster: Option<String>,
    /// GKE: the project of the cluster, the Google service accounts and the buckets.
    #[arg(long, value_name = "ID", requires_all = ["gcp_location", "gcp_cluster"])]
    gcp_project: Option<String>,
    /// GKE: the cluster's location (region or zone).
    #[arg(long, value_name = "LOCATION", requires = "gcp_project")]
    gcp_location: Option<String>,
    /// GKE: the cluster's name.
    #[arg(long, value_name = "NAME", requires = "gcp_project")]
    gcp_cluster: Option<String>,
    /// AKS: billing's blob container, when its role assignment is on the whole storage
    /// account (the Helm values name it: `billing.storage.azure.container`).
    #[arg(long, value_name = "NAME", requires = "azure_subscription")]
    azure_billing_container: Option<String>,
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

/// The one cloud whose flags are given (clap checks that each cloud's come together).
fn cloud(args: &InitArgs) -> Result<CloudFlags> {
    let mut clouds = Vec::new();
    if let (Some(region), Some(cluster)) = (&args.aws_region, &args.aws_cluster) {
        clouds.push(CloudFlags::Aws {
            region: region.clone(),
            cluster: cluster.clone(),
        });
    }
    if let (Some(subscription), Some(resource_group), Some(cluster)) = (
        &args.azure_subscription,
        &args.azure_resource_group,
        &args.azure_cluster,
    ) {
        clouds.push(CloudFlags::Azure {
            subscription: subscription.clone(),
            resource_group: resource_group.clone(),
            cluster: cluster.clone(),
            billing_container: args.azure_billing_container.clone(),
        });
    }
    if let (Some(project), Some(location), Some(cluster)) =
        (&args.gcp_project, &args.gcp_location, &args.gcp_cluster)
    {
        clouds.push(CloudFlags::Gcp {
            project: project.clone(),
            location: location.clone(),
            cluster: cluster.clone(),
        });
    }
    match clouds.len() {
        1 => Ok(clouds.remove(0)),
        n => Err(Error::user(format!(
            "name the Space's cluster on one cloud ({n} given): --aws-region and --aws-cluster \
             (EKS), or --azure-subscription, --azure-resource-group and --azure-cluster (AKS), or \
             --gcp-project, --gcp-location and --gcp-cluster (GKE)"
        ))),
    }
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
        cloud: cloud(&args)?,
    };
    let outcome = init::init(&options).await?;
    eprintln!(
        "Read {} control planes of context {}.",
        outcome.seen.namespaces.len(),
        outcome.draft.context
    );
    for c in &outcome.draft.components {
        match c {
            DraftComponent::Adopted {
                kind,
                name: Some(name),
                ..
            } => eprintln!("  {kind}: adopts {name}"),
            DraftComponent::Adopted { kind, .. } => {
                eprintln!("  {kind}: takes over the bindings of its principal identifiers")
            }
            DraftComponent::LeftOut { kind, why } => eprintln!("  {kind}: left out: {why}"),
        }
    }
    eprintln!(
        "Wrote {}. Review it, then: idplan plan -f {0}",
        outcome.path.display()
    );
    Ok(ExitStatus::Success)
}
