//! The process around a command: parsing, the async runtime, and the exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use super::{Cli, run};

/// How a command ended, as the process reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exit 0.
    Success,
    /// Exit 2: `plan --detailed-exitcode` found changes, `drift` found drift, or `verify`
    /// found something to fix.
    Changes,
    /// Exit 1: any error, usage errors included.
    Error,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> ExitCode {
        match status {
            ExitStatus::Success => ExitCode::SUCCESS,
            ExitStatus::Error => ExitCode::from(1),
            ExitStatus::Changes => ExitCode::from(2),
        }
    }
}

impl ExitStatus {
    /// `Changes` when `changed`, else `Success`.
    pub fn changes_if(changed: bool) -> ExitStatus {
        if changed {
            ExitStatus::Changes
        } else {
            ExitStatus::Success
        }
    }
}

pub fn main() -> ExitCode {
    // Usage errors exit 1 like every other error (clap's own default is 2, which scripts
    // would read as "changes").
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitStatus::Error
            } else {
                ExitStatus::Success
            }
            .into();
        }
    };
    // Both rustls providers are compiled in (the AWS SDK's aws-lc-rs, another crate's ring):
    // kube's client needs the process default chosen, or it panics.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitStatus::Error.into();
        }
    };
    let result = runtime.block_on(run(cli.command));
    crate::stats::report();
    match result {
        Ok(status) => status.into(),
        Err(e) => {
            let style = anstyle::AnsiColor::Red.on_default().bold();
            let mut err = anstream::stderr();
            for line in e.to_string().lines() {
                let _ = writeln!(err, "{style}error:{style:#} {line}");
            }
            ExitStatus::Error.into()
        }
    }
}
