//! `idplan init` on Azure: its flags, and the survey its driver makes (`provider/azure/survey.rs`).

use super::Azure;
use crate::error::Error;
use crate::provider::Call;
use crate::provider::azure::AzureDriver;
use crate::provider::azure::survey::Group;
use crate::recipe::{Asked, CloudInit};
use crate::spec::survey::Survey;

/// `idplan init`'s flags for a Space on AKS.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct InitFlags {
    /// AKS: the cluster's subscription id.
    #[arg(long, value_name = "ID", requires_all = ["azure_resource_group", "azure_cluster"])]
    azure_subscription: Option<String>,
    /// AKS: the resource group of the cluster and the managed identities.
    #[arg(long, value_name = "NAME", requires = "azure_subscription")]
    azure_resource_group: Option<String>,
    /// AKS: the cluster's name.
    #[arg(long, value_name = "NAME", requires = "azure_subscription")]
    azure_cluster: Option<String>,
    /// AKS: billing's blob container, when its role assignment is on the whole storage
    /// account (the Helm values name it: `billing.storage.azure.container`).
    // Shown after every cloud's cluster flags, just before `--help` (clap's 999), as the
    // optional one it is.
    #[arg(
        long,
        value_name = "NAME",
        requires = "azure_subscription",
        display_order = 999
    )]
    azure_billing_container: Option<String>,
}

impl InitFlags {
    /// The cluster the flags name, when they are given.
    pub fn cluster(&self) -> Option<&str> {
        Some(self.group()?.cluster)
    }

    fn group(&self) -> Option<Group<'_>> {
        Some(Group {
            subscription: self.azure_subscription.as_deref()?,
            resource_group: self.azure_resource_group.as_deref()?,
            cluster: self.azure_cluster.as_deref()?,
            billing_container: self.azure_billing_container.as_deref(),
        })
    }
}

impl CloudInit for Azure {
    type Flags = InitFlags;

    const ADOPTS: &'static str = "the managed identity";

    fn survey<'a>(flags: &'a InitFlags, asked: Asked<'a>) -> Call<'a, Survey> {
        Box::pin(async move {
            let group = flags
                .group()
                .ok_or_else(|| Error::internal("init without an AKS cluster"))?;
            AzureDriver::new()?
                .survey(&group, asked.seen, asked.choices)
                .await
        })
    }
}
