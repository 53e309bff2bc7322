use super::{ExitStatus, SpecArgs, print};
use crate::error::Result;
use crate::ops::validate;

pub fn validate(args: SpecArgs) -> Result<ExitStatus> {
    print(&validate::validate(&args.file)?);
    Ok(ExitStatus::Success)
}

pub fn schema() -> Result<ExitStatus> {
    print(&validate::schema());
    Ok(ExitStatus::Success)
}
