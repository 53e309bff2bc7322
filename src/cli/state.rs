use clap::Subcommand;

use super::{ExitStatus, SpecArgs, StateArgs, print};
use crate::error::Result;
use crate::ops::inspect;
use crate::state::StateLocation;

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List the addresses the state holds.
    List {
        #[command(flatten)]
        spec: SpecArgs,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Show one resource as the state recorded it.
    Show {
        /// An address from `idplan state list`.
        address: String,
        #[command(flatten)]
        spec: SpecArgs,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Break the lock a crashed run left on a remote state; refused for another lock's id.
    Unlock {
        /// The lock id the refusal named (`lock ID: user@host ...`).
        lock_id: String,
        #[command(flatten)]
        spec: SpecArgs,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Move the state to another location (a local file to a bucket, or back); refused when
    /// the destination holds a state of another lineage or a newer one.
    Migrate {
        /// Where the state goes: a path, s3://BUCKET/KEY, gs://BUCKET/OBJECT or
        /// azblob://ACCOUNT/CONTAINER/BLOB.
        #[arg(long = "to", value_name = "LOCATION")]
        to: StateLocation,
        #[command(flatten)]
        spec: SpecArgs,
        #[command(flatten)]
        state: StateArgs,
    },
}

pub async fn run(command: StateCommand) -> Result<ExitStatus> {
    let at =
        |spec: &SpecArgs, state: &StateArgs| inspect::located(state.state.as_ref(), &spec.file);
    print(&match command {
        StateCommand::List { spec, state } => inspect::state_list(&at(&spec, &state)?).await?,
        StateCommand::Show {
            address,
            spec,
            state,
        } => inspect::state_show(&at(&spec, &state)?, &address).await?,
        StateCommand::Unlock {
            lock_id,
            spec,
            state,
        } => inspect::state_unlock(&at(&spec, &state)?, &lock_id).await?,
        StateCommand::Migrate { to, spec, state } => {
            inspect::state_migrate(&at(&spec, &state)?, &to).await?
        }
    });
    Ok(ExitStatus::Success)
}
