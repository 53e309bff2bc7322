//! The process around a command: parsing, the async runtime, and the exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use super::command::{Cli, run};

/// How a command ended; the discriminant is the process's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    Success = 0,
    /// Any error, usage errors included.
    Error = 1,
    /// `plan --detailed-exitcode` found changes, `drift` found drift, or `verify` found
    /// something to fix.
    Changes = 2,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> ExitCode {
        ExitCode::from(status as u8)
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

/// Writes to stdout; colours are stripped when it is not a terminal (or NO_COLOR is set).
pub(super) fn print(text: &str) {
    let mut out = anstream::stdout();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
