use std::path::PathBuf;

use clap::Args;

use super::{Exit, FormatArgs, plan_path, print};
use crate::error::Result;
use crate::plan::{Plan, render};

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A plan saved by `idplan plan --out`.
    #[arg(value_name = "PLANFILE")]
    plan: PathBuf,
    #[command(flatten)]
    format: FormatArgs,
}

pub fn run(args: ShowArgs) -> Result<Exit> {
    let plan = Plan::load(&plan_path(&args.plan))?;
    print(&render::render(&plan, args.format.format));
    Ok(Exit::Success)
}
