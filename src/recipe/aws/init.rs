//! `idplan init` on Aws: its flags, and the survey its driver makes (`provider/aws/survey.rs`).

use super::Aws;
use crate::provider::Call;
use crate::provider::aws::AwsDriver;
use crate::recipe::{Asked, CloudInit};
use crate::spec::survey::Survey;

impl InitFlags {
    /// The cluster the flags name, when they are given.
    pub fn cluster(&self) -> Option<&str> {
        self.aws_region.as_ref()?;
        self.aws_cluster.as_deref()
    }
}

/// `idplan init`'s flags for a Space on EKS.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct InitFlags {
    /// EKS: the cluster's region.
    #[arg(long, value_name = "REGION", requires = "aws_cluster")]
    aws_region: Option<String>,
    /// EKS: the cluster's name.
    #[arg(long, value_name = "NAME", requires = "aws_region")]
    aws_cluster: Option<String>,
}

impl CloudInit for Aws {
    type Flags = InitFlags;

    const ADOPTS: &'static str = "the IAM role";

    fn survey<'a>(flags: &'a InitFlags, asked: Asked<'a>) -> Call<'a, Survey> {
        Box::pin(async move {
            let (Some(region), Some(cluster)) = (&flags.aws_region, &flags.aws_cluster) else {
                return Err(crate::error::Error::internal("init without an EKS cluster"));
            };
            AwsDriver::new()
                .await
                .survey(
                    region,
                    cluster,
                    asked.seen,
                    asked.choices,
                    asked.parallelism,
                )
                .await
        })
    }
}
