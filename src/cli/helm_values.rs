use clap::Args;

use super::{ExitStatus, SpecArgs, StateArgs, print};
use crate::error::Result;
use crate::ops::helm_values::{self, HelmFormat};

#[derive(Debug, Args)]
pub struct HelmValuesArgs {
    #[command(flatten)]
    spec: SpecArgs,
    #[command(flatten)]
    state: StateArgs,
    /// Only this space (the default is every space in the spec).
    #[arg(long, value_name = "NAME")]
    space: Option<String>,
    /// `set`: --set arguments to paste after `helm upgrade`; `yaml`: a values file.
    #[arg(long, value_enum, default_value = "set")]
    format: HelmFormat,
}

pub async fn run(args: HelmValuesArgs) -> Result<ExitStatus> {
    print(
        &helm_values::helm_values(
            &args.spec.file,
            args.state.state.as_ref(),
            args.space.as_deref(),
            args.format,
        )
        .await?,
    );
    Ok(ExitStatus::Success)
}
