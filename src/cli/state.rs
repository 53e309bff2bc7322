use clap::Subcommand;

use super::{Exit, StateArgs, print};
use crate::error::{Error, Result};
use crate::state::StateFile;

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

pub fn run(command: StateCommand) -> Result<Exit> {
    match command {
        StateCommand::List { state } => {
            let file = StateFile::read_only(&state.state)?;
            let mut out = String::new();
            for r in &file.state().resources {
                out.push_str(&r.address);
                out.push('\n');
            }
            print(&out);
        }
        StateCommand::Show { address, state } => {
            let file = StateFile::read_only(&state.state)?;
            let record = file.state().get(&address).ok_or_else(|| {
                Error::user(format!(
                    "{}: no resource {address} (see `idplan state list`)",
                    file.path().display()
                ))
            })?;
            let mut text = serde_json::to_string_pretty(record).expect("record serializes");
            text.push('\n');
            print(&text);
        }
    }
    Ok(Exit::Success)
}
