//! `idplan init` on GCP: its flags, and the survey its driver makes (`provider/gcp/survey.rs`).

use super::Gcp;
use crate::provider::Call;
use crate::provider::gcp::GcpDriver;
use crate::recipe::{Asked, CloudInit};
use crate::spec::survey::Survey;

impl InitFlags {
    /// The cluster the flags name, when they are given.
    pub fn cluster(&self) -> Option<&str> {
        self.gcp_project.as_ref()?;
        self.gcp_location.as_ref()?;
        self.gcp_cluster.as_deref()
    }
}

/// `idplan init`'s flags for a Space on GKE.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct InitFlags {
    /// GKE: the project of the cluster, the Google service accounts and the buckets.
    #[arg(long, value_name = "ID", requires_all = ["gcp_location", "gcp_cluster"])]
    gcp_project: Option<String>,
    /// GKE: the cluster's location (region or zone).
    #[arg(long, value_name = "LOCATION", requires = "gcp_project")]
    gcp_location: Option<String>,
    /// GKE: the cluster's name.
    #[arg(long, value_name = "NAME", requires = "gcp_project")]
    gcp_cluster: Option<String>,
}

impl CloudInit for Gcp {
    type Flags = InitFlags;

    const ADOPTS: &'static str =
        "the Google service account, or with principal identifiers the grants they hold";

    fn survey<'a>(flags: &'a InitFlags, asked: Asked<'a>) -> Call<'a, Survey> {
        Box::pin(async move {
            let (Some(project), Some(location), Some(cluster)) =
                (&flags.gcp_project, &flags.gcp_location, &flags.gcp_cluster)
            else {
                return Err(crate::error::Error::internal("init without a GKE cluster"));
            };
            GcpDriver::new()?
                .survey(
                    project,
                    location,
                    cluster,
                    asked.seen,
                    asked.choices,
                    asked.parallelism,
                )
                .await
        })
    }
}
