//! The commands, their help, and the dispatch.

use clap::{Parser, Subcommand};

use crate::error::Result;

use super::{
    ExitStatus, SpecArgs, apply, docs, drift, helm_values, init, plan, show, state, validate,
    verify, watch,
};

const AFTER_HELP: &str = "\
Typical use:
  idplan init --aws-region R --aws-cluster C   write idplan.yaml from a Space set up by hand
  idplan validate                      check idplan.yaml and its limits, no cloud calls
  idplan plan --out pr.json            what would change; saved for review
  idplan apply plans/pr.json           apply exactly the reviewed plan
  idplan drift                         exit 2 when the cloud no longer matches the last apply
  idplan helm-values                   the Spaces chart values for the applied identities
  idplan verify --restart              check the cluster; restart pods that predate their identity
  idplan watch --listen 0.0.0.0:9090   serve new control planes as they appear (in the cluster)

Credentials follow each cloud's conventions:
  AWS    the SDK's chain: `aws configure`, `aws sso login`, AWS_PROFILE, AWS_ACCESS_KEY_ID,
         a web identity in CI; AWS_ENDPOINT_URL for another endpoint
  Azure  `az login`, workload identity (AZURE_CLIENT_ID, AZURE_TENANT_ID,
         AZURE_FEDERATED_TOKEN_FILE), a service principal (AZURE_CLIENT_SECRET), a managed
         identity, or IDPLAN_AZURE_ACCESS_TOKEN; IDPLAN_AZURE_ARM_ENDPOINT for another ARM
  GCP    GOOGLE_APPLICATION_CREDENTIALS, `gcloud auth application-default login`, the metadata
         server, or IDPLAN_GCP_ACCESS_TOKEN; IDPLAN_GCP_ENDPOINT for another Google API base
The state: --state, IDPLAN_STATE or the spec's `state:`, a path (the default:
state/idplan.state.json) or, shared by a team and locked there, s3://BUCKET/KEY,
gs://BUCKET/OBJECT, azblob://ACCOUNT/CONTAINER/BLOB (each with its cloud's credentials).
Discovery (`controlPlanes.discover`) reads the kubeconfig context's cluster (KUBECONFIG).
Exit codes: 0 success, 1 error, 2 changes (plan --detailed-exitcode), drift (drift) or
findings (verify).";

/// `idplan --version`: the version, the git commit built (`unknown` from a crates.io package)
/// and the target triple, both set by build.rs.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("IDPLAN_COMMIT"),
    ", ",
    env!("IDPLAN_TARGET"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "idplan",
    version = VERSION,
    about = "Plan and apply the cloud workload identities of Upbound Spaces components",
    long_about = "idplan turns a declarative identity spec (idplan.yaml) into the cloud roles, \
policies and trust that the Spaces components backup (mxp-controller), billing (vector) and \
sharedSecrets (external-secrets-controller) need, shows the plan, applies it idempotently with a \
state kept in a local file or in a team's bucket (S3, GCS, Azure Blob, locked), detects drift, and \
renders the Spaces Helm values.",
    after_help = AFTER_HELP
)]
pub(super) struct Cli {
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Write the spec that adopts the identities a running Space uses (set up by hand from
    /// the Spaces guides): reads its cluster and its cloud, never overwrites without --force.
    Init(init::InitArgs),
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
    /// Keep applying what only adds access as control planes appear (next to the Space):
    /// watches every discovering space's ControlPlane objects, applies each batch with
    /// --additive-only and restarts the pods that predate their credentials. Runs until SIGTERM.
    Watch(watch::WatchArgs),
    /// Inspect the state.
    #[command(subcommand)]
    State(state::StateCommand),
    /// Print the shell completion script (e.g. `idplan completions bash > /etc/bash_completion.d/idplan`).
    Completions(docs::CompletionsArgs),
    /// Print the man page (`idplan man > idplan.1`), or write one per command with --dir.
    Man(docs::ManArgs),
}

/// idplan's command line as clap builds it: what parses `idplan ...`, and what the shell
/// completions and man pages are generated from.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

pub(super) async fn run(command: Command) -> Result<ExitStatus> {
    match command {
        Command::Init(args) => init::run(args).await,
        Command::Validate(args) => validate::validate(args),
        Command::Schema => validate::schema(),
        Command::Plan(args) => plan::run(args).await,
        Command::Apply(args) => apply::run(args).await,
        Command::Drift(args) => drift::run(args).await,
        Command::Show(args) => show::run(args),
        Command::HelmValues(args) => helm_values::run(args).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Watch(args) => watch::run(args).await,
        Command::State(cmd) => state::run(cmd).await,
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
    }
}
