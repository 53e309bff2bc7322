//! Spaces knowledge: what each cloud needs for a space, as desired resources and Helm values.
//!
//! Each cloud declares it once, as a [`CloudRecipe`] in `recipe/<cloud>.rs`: its block of the
//! spec, what its recipe needs from the cloud (the context: an account, an issuer), the
//! recipe, the notes a plan carries, the Helm values and the limits `validate` checks across
//! spaces. This file is the one list of the clouds above their resource kinds
//! (`provider/mod.rs` lists those): the core calls the functions here, which hand each space
//! to its cloud.

pub mod aws;
pub mod azure;
pub mod gcp;

use std::collections::BTreeMap;
use std::path::Path;

use futures::future::BoxFuture;

use crate::error::{Error, Result};
use crate::graph::{Location, Resource};
use crate::helm::HelmValue;
use crate::note::Note;
use crate::provider::Clouds;
use crate::spec::survey::{Choices, Seen, Survey};
use crate::spec::{Cloud, Component, Space, Spec, SpecError, SpecErrors, default_name};
use crate::state::State;

/// What the core asks of a cloud, beside its resource kinds.
pub trait CloudRecipe {
    /// The cloud's block of a space in the spec (`aws:`, `azure:`, `gcp:`).
    type Space;
    /// What the recipe needs besides the spec, read from the cloud.
    type Context: Clone + Send + Sync;

    /// The cloud's block, when the space is on this cloud.
    fn of(cloud: &Cloud) -> Option<&Self::Space>;

    /// Where the space's resources live: which driver reaches them.
    fn location(space: &Self::Space) -> Location;

    /// Stand-ins of the real lengths, so that `validate` checks sizes with no cloud call.
    fn placeholder(space: &Self::Space) -> Self::Context;

    /// The contexts of `spaces` (all on this cloud), in their order: what several spaces
    /// share is read once. Checks what must exist before anything is read or written.
    fn contexts<'a>(
        clouds: &'a Clouds,
        spaces: &'a [(&'a Space, &'a Self::Space)],
    ) -> BoxFuture<'a, Result<Vec<Self::Context>>>;

    /// The space's desired resources. A located limit error is an `Error::Spec`, reported
    /// with every other space's; any other error stops the plan.
    fn resources(
        at: &At<'_>,
        space: &Space,
        cloud: &Self::Space,
        context: &Self::Context,
    ) -> Result<Vec<Resource>>;

    /// What a plan should say beside its changes: who else the space's identities trust.
    fn notes(space: &Space, cloud: &Self::Space, context: Option<&Self::Context>) -> Vec<Note>;

    /// The Spaces chart values that point each component at its identity, from the state.
    fn helm_values(space: &Space, cloud: &Self::Space, state: &State) -> Result<Vec<HelmValue>>;

    /// The limits of the spec alone that count the resources of several spaces (`validate`),
    /// as located errors.
    fn spec_limits(spec: &Spec, ran: &[Ran<'_, Self::Space>]) -> Vec<SpecError>;

    /// The limits `validate` checks once the spec has no located error.
    fn limits(file: &Path, ran: &[Ran<'_, Self::Space>]) -> Result<()>;
}

/// What the clouds add to a plan beyond its changes, flattened into it: each cloud's part is
/// its own (AWS's: the step of a switch of mode, `recipe/aws/switch.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlanClouds {
    #[serde(flatten)]
    pub aws: aws::switch::AwsPlan,
}

impl PlanClouds {
    /// Records in the state what the clouds keep of an apply that finished without a
    /// failure; whether the state changed.
    pub fn record(&self, state: &mut State) -> bool {
        self.aws.record(state)
    }

    /// For a plan that leaves part of the spec unapplied: only what the state recorded stays.
    pub fn keep_recorded(&mut self, state: &State) {
        self.aws.keep_recorded(state);
    }
}

/// What `idplan init` asks of a cloud (`recipe/<cloud>/init.rs`, calling the survey of its
/// driver, `provider/<cloud>/survey.rs`). Each cloud's flags say which cluster they name
/// (`cluster`), and its recipe module names its annotation (`ANNOTATION`).
pub trait CloudInit {
    /// The cloud's flags of `idplan init`: the Space's cluster, all given or none.
    type Flags: clap::Args + Clone + std::fmt::Debug;

    /// What a component adopts, for the header of the spec init writes.
    const ADOPTS: &'static str;

    /// Which identity each component uses and what it reaches, read from the cloud, and the
    /// space's cloud block.
    fn survey<'a>(flags: &'a Self::Flags, asked: Asked<'a>) -> BoxFuture<'a, Result<Survey>>;
}

/// What init asks a cloud's survey about: what the cluster says, the identities chosen, and
/// how many reads may run at a time.
#[derive(Clone, Copy)]
pub struct Asked<'a> {
    pub seen: &'a Seen,
    pub choices: &'a Choices,
    pub parallelism: usize,
}

type InitFlagsOf<R> = <R as CloudInit>::Flags;

/// `idplan init`'s flags of every cloud: the Space's cluster is named on one of them.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct InitFlags {
    #[command(flatten)]
    aws: InitFlagsOf<aws::Aws>,
    #[command(flatten)]
    azure: InitFlagsOf<azure::Azure>,
    #[command(flatten)]
    gcp: InitFlagsOf<gcp::Gcp>,
}

/// The cloud `idplan init` reads.
#[derive(Debug, Clone)]
pub enum InitCloud {
    Aws(InitFlagsOf<aws::Aws>),
    Azure(InitFlagsOf<azure::Azure>),
    Gcp(InitFlagsOf<gcp::Gcp>),
}

impl InitFlags {
    /// The one cloud whose flags are given (clap checks that each cloud's come together).
    pub fn cloud(&self) -> Result<InitCloud> {
        let mut clouds = Vec::new();
        if self.aws.cluster().is_some() {
            clouds.push(InitCloud::Aws(self.aws.clone()));
        }
        if self.azure.cluster().is_some() {
            clouds.push(InitCloud::Azure(self.azure.clone()));
        }
        if self.gcp.cluster().is_some() {
            clouds.push(InitCloud::Gcp(self.gcp.clone()));
        }
        match clouds.len() {
            1 => Ok(clouds.remove(0)),
            n => Err(Error::user(format!(
                "name the Space's cluster on one cloud ({n} given): --aws-region and \
                 --aws-cluster (EKS), or --azure-subscription, --azure-resource-group and \
                 --azure-cluster (AKS), or --gcp-project, --gcp-location and --gcp-cluster (GKE)"
            ))),
        }
    }
}

impl InitCloud {
    /// The cluster's name.
    pub fn cluster(&self) -> &str {
        let cluster = match self {
            InitCloud::Aws(flags) => flags.cluster(),
            InitCloud::Azure(flags) => flags.cluster(),
            InitCloud::Gcp(flags) => flags.cluster(),
        };
        cluster.unwrap_or_default()
    }

    /// The annotation that names a component's identity on this cloud.
    pub fn annotation(&self) -> &'static str {
        match self {
            InitCloud::Aws(_) => aws::ANNOTATION,
            InitCloud::Azure(_) => azure::ANNOTATION,
            InitCloud::Gcp(_) => gcp::ANNOTATION,
        }
    }

    /// See [`CloudInit::ADOPTS`].
    pub fn adopts(&self) -> &'static str {
        match self {
            InitCloud::Aws(_) => aws::Aws::ADOPTS,
            InitCloud::Azure(_) => azure::Azure::ADOPTS,
            InitCloud::Gcp(_) => gcp::Gcp::ADOPTS,
        }
    }

    /// See [`CloudInit::survey`].
    pub async fn survey(
        &self,
        seen: &Seen,
        choices: &Choices,
        parallelism: usize,
    ) -> Result<Survey> {
        let asked = Asked {
            seen,
            choices,
            parallelism,
        };
        match self {
            InitCloud::Aws(flags) => aws::Aws::survey(flags, asked).await,
            InitCloud::Azure(flags) => azure::Azure::survey(flags, asked).await,
            InitCloud::Gcp(flags) => gcp::Gcp::survey(flags, asked).await,
        }
    }
}

/// Where a recipe runs: the spec's file, the space's index in it, and where each AWS space
/// stands in a switch of mode.
pub struct At<'a> {
    pub path: &'a Path,
    pub index: usize,
    pub switches: &'a aws::switch::Switches,
}

/// One space's recipe output, for the limits `validate` checks across spaces.
pub struct Ran<'a, S> {
    pub index: usize,
    pub cloud: &'a S,
    pub resources: &'a [Resource],
}

/// The spaces of the spec on cloud `R`: (index, space, its block).
fn spaces_on<R: CloudRecipe>(spec: &Spec) -> Vec<(usize, &Space, &R::Space)> {
    spec.spaces
        .iter()
        .enumerate()
        .filter_map(|(i, space)| Some((i, space, R::of(&space.cloud)?)))
        .collect()
}

/// Where a space's resources live.
pub fn location(space: &Space) -> Location {
    match &space.cloud {
        Cloud::Aws(a) => aws::Aws::location(a),
        Cloud::Azure(a) => azure::Azure::location(a),
        Cloud::Gcp(g) => gcp::Gcp::location(g),
    }
}

/// The Helm values of one space.
pub fn helm_values(space: &Space, state: &State) -> Result<Vec<HelmValue>> {
    match &space.cloud {
        Cloud::Aws(a) => aws::Aws::helm_values(space, a, state),
        Cloud::Azure(a) => azure::Azure::helm_values(space, a, state),
        Cloud::Gcp(g) => gcp::Gcp::helm_values(space, g, state),
    }
}

/// One cloud's contexts, by space index.
type Of<R> = BTreeMap<usize, <R as CloudRecipe>::Context>;

/// The context of every space the recipes run for, each typed by its cloud.
pub struct Contexts {
    aws: Of<aws::Aws>,
    azure: Of<azure::Azure>,
    gcp: Of<gcp::Gcp>,
}

impl Contexts {
    /// Stand-ins of the real lengths, so no cloud call is needed. A space whose control
    /// planes are still to be discovered is skipped: `plan` checks its limits once discovery
    /// told them (validate makes no cluster call).
    pub fn spec_alone(spec: &Spec) -> Contexts {
        fn of<R: CloudRecipe>(spec: &Spec) -> Of<R> {
            spaces_on::<R>(spec)
                .into_iter()
                .filter(|(_, space, _)| {
                    space.discover.is_none() || !space.control_planes.is_empty()
                })
                .map(|(i, _, cloud)| (i, R::placeholder(cloud)))
                .collect()
        }
        Contexts {
            aws: of::<aws::Aws>(spec),
            azure: of::<azure::Azure>(spec),
            gcp: of::<gcp::Gcp>(spec),
        }
    }

    /// Asks the clouds, one after the other.
    pub async fn read(spec: &Spec, clouds: &Clouds) -> Result<Contexts> {
        async fn of<R: CloudRecipe>(spec: &Spec, clouds: &Clouds) -> Result<Of<R>> {
            let on = spaces_on::<R>(spec);
            if on.is_empty() {
                return Ok(Of::<R>::new());
            }
            let spaces: Vec<(&Space, &R::Space)> = on.iter().map(|(_, s, c)| (*s, *c)).collect();
            let contexts = R::contexts(clouds, &spaces).await?;
            Ok(on.iter().map(|(i, _, _)| *i).zip(contexts).collect())
        }
        let aws = of::<aws::Aws>(spec, clouds).await?;
        let gcp = of::<gcp::Gcp>(spec, clouds).await?;
        let azure = of::<azure::Azure>(spec, clouds).await?;
        Ok(Contexts { aws, azure, gcp })
    }

    /// Runs each space's recipe with its context and hands its resources to `accept` with
    /// the space's index. Limit errors of all spaces are returned together, after every space
    /// ran; an error of `accept`, or one that is not located in the spec, stops at once.
    pub fn recipes(
        &self,
        spec: &Spec,
        switches: &aws::switch::Switches,
        mut accept: impl FnMut(usize, Vec<Resource>) -> Result<()>,
    ) -> Result<()> {
        let mut errors = Vec::new();
        for (index, space) in spec.spaces.iter().enumerate() {
            let at = At {
                path: &spec.path,
                index,
                switches,
            };
            let ran = match &space.cloud {
                Cloud::Aws(a) => self
                    .aws
                    .get(&index)
                    .map(|ctx| aws::Aws::resources(&at, space, a, ctx)),
                Cloud::Azure(a) => self
                    .azure
                    .get(&index)
                    .map(|ctx| azure::Azure::resources(&at, space, a, ctx)),
                Cloud::Gcp(g) => self
                    .gcp
                    .get(&index)
                    .map(|ctx| gcp::Gcp::resources(&at, space, g, ctx)),
            };
            match ran {
                None => continue,
                Some(Ok(resources)) => accept(index, resources)?,
                Some(Err(Error::Spec(SpecErrors(e)))) => errors.extend(e),
                Some(Err(e)) => return Err(e),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(SpecErrors(errors).into())
        }
    }

    /// Who else the spaces' identities trust, in spec order.
    pub fn notes(&self, spec: &Spec) -> Vec<Note> {
        let mut out = Vec::new();
        for (i, space) in spec.spaces.iter().enumerate() {
            out.extend(match &space.cloud {
                Cloud::Aws(a) => aws::Aws::notes(space, a, self.aws.get(&i)),
                Cloud::Azure(a) => azure::Azure::notes(space, a, self.azure.get(&i)),
                Cloud::Gcp(g) => gcp::Gcp::notes(space, g, self.gcp.get(&i)),
            });
        }
        out.dedup();
        out
    }
}

/// The limits of the spec alone across spaces, given each space's recipe output (`ran`, by
/// space index) and the located `errors` the recipes found: located errors first, all
/// together; the other limits once there is none.
pub fn check_spec_limits(
    spec: &Spec,
    ran: &BTreeMap<usize, Vec<Resource>>,
    mut errors: Vec<SpecError>,
) -> Result<()> {
    fn of<'a, R: CloudRecipe>(
        spec: &'a Spec,
        ran: &'a BTreeMap<usize, Vec<Resource>>,
    ) -> Vec<Ran<'a, R::Space>> {
        spaces_on::<R>(spec)
            .into_iter()
            .filter_map(|(index, _, cloud)| {
                Some(Ran {
                    index,
                    cloud,
                    resources: ran.get(&index)?,
                })
            })
            .collect()
    }
    let (aws, azure, gcp) = (
        of::<aws::Aws>(spec, ran),
        of::<azure::Azure>(spec, ran),
        of::<gcp::Gcp>(spec, ran),
    );
    errors.extend(aws::Aws::spec_limits(spec, &aws));
    errors.extend(azure::Azure::spec_limits(spec, &azure));
    errors.extend(gcp::Gcp::spec_limits(spec, &gcp));
    if !errors.is_empty() {
        return Err(Error::Spec(SpecErrors(errors)));
    }
    aws::Aws::limits(&spec.path, &aws)?;
    azure::Azure::limits(&spec.path, &azure)?;
    gcp::Gcp::limits(&spec.path, &gcp)
}

/// The resource name of a component: the spec's explicit `name`, or the default.
pub fn resource_name<T>(space: &Space, component: &Component<T>) -> String {
    component
        .name
        .clone()
        .unwrap_or_else(|| default_name(&space.name, component.kind))
}

/// The OIDC subject of a component's service account in one host namespace.
pub fn subject(namespace: &str, component: crate::spec::ComponentKind) -> String {
    format!(
        "system:serviceaccount:{namespace}:{}",
        component.service_account()
    )
}

/// The form of the host namespaces Spaces makes: `mxp-<controlPlaneID>-system`, as an IAM
/// `StringLike` pattern.
pub const HOST_NAMESPACE_PATTERN: &str = "mxp-*-system";

/// Whether `namespace` matches [`HOST_NAMESPACE_PATTERN`].
pub fn is_host_namespace(namespace: &str) -> bool {
    namespace.len() >= "mxp--system".len()
        && namespace.starts_with("mxp-")
        && namespace.ends_with("-system")
}

#[cfg(test)]
mod tests {
    use super::is_host_namespace;

    #[test]
    fn host_namespaces_match_the_pattern_as_iam_does() {
        assert!(is_host_namespace(
            "mxp-706c49fa-5bb8-4a7e-9f41-2fc38ef4b065-system"
        ));
        // `*` matches any run of characters, none included.
        assert!(is_host_namespace("mxp--system"));
        assert!(!is_host_namespace("mxp-system"));
        assert!(!is_host_namespace("acme-team-a"));
        assert!(!is_host_namespace("mxp-a-systems"));
    }
}
