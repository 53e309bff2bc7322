//! `idplan completions SHELL` and `idplan man`: generated from the same definitions as the
//! parser (clap_complete, clap_mangen), so they never disagree with it.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, CommandFactory};

use super::ExitStatus;
use super::command::Cli;
use crate::error::{Error, Result};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write idplan.1 and a page per command (idplan-plan.1, ...) into DIR instead of printing
    /// idplan.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn completions(args: CompletionsArgs) -> Result<ExitStatus> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "idplan", &mut out);
    write_stdout(&out)
}

pub fn man(args: ManArgs) -> Result<ExitStatus> {
    let command = Cli::command();
    if let Some(dir) = args.dir {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        clap_mangen::generate_to(command, &dir).map_err(|e| Error::io(&dir, e))?;
        return Ok(ExitStatus::Success);
    }
    let mut out = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut out)
        .map_err(|e| Error::user(format!("cannot render the man page: {e}")))?;
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> Result<ExitStatus> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::user(format!("cannot write to stdout: {e}")))?;
    Ok(ExitStatus::Success)
}
