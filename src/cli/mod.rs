//! The command line: parse, call the library, map the outcome to an exit code.
//! One file per command; the work is in the library.

mod apply;
mod drift;
mod helm_values;
mod plan;
mod show;
mod state;
mod validate;
mod verify;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::error::Result;
use crate::plan::render::Format;

const AFTER_HELP: &str = "\
Typical use:
  idplan validate                      check idplan.yaml and its limits, no cloud calls
  idplan plan --out pr.json            what would change; saved for review
  idplan apply plans/pr.json           apply exactly the reviewed plan
  idplan drift                         exit 2 when the cloud no longer matches the last apply
  idplan helm-values                   the Spaces chart values for the applied identities
  idplan verify --restart              check the cluster; restart pods that predate their identity

Credentials follow each cloud's conventions (AWS: AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...;
GCP: GOOGLE_APPLICATION_CREDENTIALS, gcloud, the metadata server, or IDPLAN_GCP_ACCESS_TOKEN;
IDPLAN_GCP_ENDPOINT for another Google API base URL).
Discovery (`controlPlanes.discover`) reads the kubeconfig context's cluster (KUBECONFIG).
Exit codes: 0 success, 1 error, 2 changes (plan --detailed-exitcode), drift (drift) or
findings (verify).";

#[derive(Debug, Parser)]
#[command(
    name = "idplan",
    version,
    about = "Plan and apply the cloud workload identities of Upbound Spaces components",
    long_about = "idplan turns a declarative identity spec (idplan.yaml) into the cloud roles, \
policies and trust that the Spaces components backup (mxp-controller), billing (vector) and \
sharedSecrets (external-secrets-controller) need, shows the plan, applies it idempotently with a \
local state file, detects drift, and renders the Spaces Helm values.",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the spec and every limit it alone decides; makes no cloud call.
    Validate(SpecArgs),
    /// Print the JSON Schema of the spec file.
    Schema,
    /// Read the clouds and show what apply would change.
    Plan(plan::PlanArgs),
    /// Apply a saved plan exactly, or make a plan and apply it after confirmation.
    Apply(apply::ApplyArgs),
    /// Report what changed outside idplan since the last apply (exit 2 when anything did).
    Drift(drift::DriftArgs),
    /// Render a saved plan.
    Show(show::ShowArgs),
    /// Print the Spaces Helm chart values that point each component at its identity.
    HelmValues(helm_values::HelmValuesArgs),
    /// Check the Space's cluster: service accounts, annotations, labels and pods of every
    /// control plane (exit 2 on findings); `--restart` restarts stale deployments.
    Verify(verify::VerifyArgs),
    /// Inspect the state.
    #[command(subcommand)]
    State(state::StateCommand),
}

#[derive(Debug, Args)]
struct SpecArgs {
    /// The identity spec.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = "idplan.yaml"
    )]
    file: PathBuf,
}

#[derive(Debug, Args)]
struct StateArgs {
    /// The state file; its lock file sits beside it.
    #[arg(
        long = "state",
        value_name = "FILE",
        default_value = "state/idplan.state.json"
    )]
    state: PathBuf,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// How many cloud calls may be in flight at once.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    parallelism: u16,
}

/// What every command that reads the clouds needs.
#[derive(Debug, Args)]
struct PlanInputs {
    #[command(flatten)]
    spec: SpecArgs,
    #[command(flatten)]
    state: StateArgs,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Args)]
struct FormatArgs {
    /// Output format: text for terminals, markdown for pull-request comments, json for tools.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

/// The process outcome; errors are exit code 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    Success,
    /// `plan --detailed-exitcode` found changes, or `drift` found drift.
    Changes,
}

pub fn main() -> ExitCode {
    // Usage errors exit 1 like every other error (clap's own default is 2, which scripts
    // would read as "changes").
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
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
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(run(cli.command));
    crate::stats::report();
    match result {
        Ok(Exit::Success) => ExitCode::SUCCESS,
        Ok(Exit::Changes) => ExitCode::from(2),
        Err(e) => {
            let style = anstyle::AnsiColor::Red.on_default().bold();
            let mut err = anstream::stderr();
            for line in e.to_string().lines() {
                let _ = writeln!(err, "{style}error:{style:#} {line}");
            }
            ExitCode::from(1)
        }
    }
}

async fn run(command: Command) -> Result<Exit> {
    match command {
        Command::Validate(args) => validate::validate(&args.file),
        Command::Schema => validate::schema(),
        Command::Plan(args) => plan::run(args).await,
        Command::Apply(args) => apply::run(args).await,
        Command::Drift(args) => drift::run(args).await,
        Command::Show(args) => show::run(args),
        Command::HelmValues(args) => helm_values::run(args),
        Command::Verify(args) => verify::run(args).await,
        Command::State(cmd) => state::run(cmd),
    }
}

/// Writes to stdout; colours are stripped when it is not a terminal (or NO_COLOR is set).
fn print(text: &str) {
    let mut out = anstream::stdout();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Where `plan --out NAME` saves: a bare file name goes to `plans/`, so that a plan never
/// lands on a file of the working directory (the spec, say).
fn out_path(name: &Path) -> PathBuf {
    if name.parent().is_none_or(|p| p.as_os_str().is_empty()) {
        Path::new("plans").join(name)
    } else {
        name.to_path_buf()
    }
}

/// A saved plan to read: as given when it exists, else where `plan --out` put it.
fn plan_path(name: &Path) -> PathBuf {
    if name.exists() {
        name.to_path_buf()
    } else {
        out_path(name)
    }
}
