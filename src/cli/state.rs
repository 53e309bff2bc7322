use clap::Subcommand;

use super::{ExitStatus, StateArgs, print};
use crate::error::Result;
use crate::ops::inspect;

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List the addresses the state holds.
    List {
        #[command(flatten)]
        state: StateArgs,
    },
    /// Show one resource as the state recorded it.
    Show {
        /// An address from `idplan state list`.
        address: String,
        #[command(flatten)]
        state: StateArgs,
    },
}

pub fn run(command: StateCommand) -> Result<ExitStatus> {
    print(&match command {
        StateCommand::List { state } => inspect::state_list(&state.state)?,
        StateCommand::Show { address, state } => inspect::state_show(&state.state, &address)?,
    });
    Ok(ExitStatus::Success)
}
