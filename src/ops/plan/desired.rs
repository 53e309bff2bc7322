//! The desired graph: what each space's recipe makes of the spec, given what its cloud tells
//! about the account and the cluster. One pipeline for `plan`, with the clouds' answers, and
//! for `validate`, with what the spec alone decides (stand-ins of the real lengths):
//!
//! 1. [`Contexts`]: one read per (region, cluster) or (project, cluster), however many spaces
//!    share it, and one per Azure space; GCP buckets and secrets are checked on the way;
//! 2. [`recipes`]: each space's resources, limit errors of all spaces reported together.

use std::collections::{BTreeMap, HashMap};

use crate::error::{Error, Result};
use crate::graph::{Graph, Resource};
use crate::plan::Note;
use crate::provider::Clouds;
use crate::recipe::aws::{AwsContext, Switch, switch};
use crate::recipe::azure::AzureContext;
use crate::recipe::gcp::GcpContext;
use crate::recipe::{aws, azure, gcp};
use crate::spec::{AwsMode, Cloud, GcpAccess, GcpMode, GkeCluster, Spec, SpecErrors};
use crate::state::State;

/// Per AWS space (by name): where it stands in a switch of mode. A space left out has the
/// spec's mode alone (`validate`, which reads no state).
pub type Switches = BTreeMap<String, Switch>;

/// Where each AWS space stands in a switch of mode, from the spec and what `state` recorded.
pub fn switches(spec: &Spec, state: &State) -> Switches {
    spec.spaces
        .iter()
        .filter_map(|space| {
            let Cloud::Aws(a) = &space.cloud else {
                return None;
            };
            let recorded = switch::recorded(state, &space.name, a.mode);
            Some((space.name.clone(), Switch::decide(a.mode, recorded)))
        })
        .collect()
}

/// What a space's recipe needs besides the spec.
#[derive(Debug, Clone)]
pub enum Context {
    Aws(AwsContext),
    Azure(AzureContext),
    Gcp(GcpContext),
}

/// The context of every space, in spec order; `None` for a space the recipes skip.
#[derive(Debug)]
pub struct Contexts(Vec<Option<Context>>);

impl Contexts {
    /// Stand-ins of the real lengths, so no cloud call is needed. A space whose control
    /// planes are still to be discovered is skipped: `plan` checks its limits once discovery
    /// told them (validate makes no cluster call).
    pub fn spec_alone(spec: &Spec) -> Contexts {
        Contexts(
            spec.spaces
                .iter()
                .map(|space| {
                    if space.discover.is_some() && space.control_planes.is_empty() {
                        return None;
                    }
                    Some(match &space.cloud {
                        Cloud::Aws(a) => {
                            Context::Aws(AwsContext::placeholder(&a.region, &a.cluster))
                        }
                        Cloud::Azure(a) => Context::Azure(AzureContext::placeholder(a)),
                        Cloud::Gcp(g) => Context::Gcp(GcpContext::placeholder(&g.project)),
                    })
                })
                .collect(),
        )
    }

    /// Asks the clouds. Buckets and listed secrets that members will be bound on must exist,
    /// and principal identifiers need uniform bucket-level access on their buckets: checked
    /// here, before anything is read or written.
    pub async fn read(spec: &Spec, clouds: &Clouds) -> Result<Contexts> {
        let mut aws_clusters: Vec<(String, String)> = Vec::new();
        let mut gcp_clusters: Vec<(String, GkeCluster)> = Vec::new();
        let mut buckets: Vec<(String, bool)> = Vec::new();
        let mut secrets: Vec<(String, String)> = Vec::new();
        for s in &spec.spaces {
            match &s.cloud {
                Cloud::Aws(aws) => aws_clusters.push((aws.region.clone(), aws.cluster.clone())),
                Cloud::Azure(_) => {}
                Cloud::Gcp(gcp) => {
                    gcp_clusters.push((gcp.project.clone(), gcp.cluster.clone()));
                    // A space without control planes binds no principal.
                    let principal = gcp.mode == GcpMode::Principal;
                    if principal && s.control_planes.is_empty() {
                        continue;
                    }
                    for c in gcp.components.iter() {
                        match &c.access {
                            GcpAccess::Bucket(b) => buckets.push((b.clone(), principal)),
                            GcpAccess::Secrets(ids) => secrets
                                .extend(ids.iter().map(|id| (gcp.project.clone(), id.clone()))),
                            GcpAccess::ProjectSecrets => {}
                        }
                    }
                }
            }
        }
        aws_clusters.sort();
        aws_clusters.dedup();
        gcp_clusters.sort_by(|a, b| {
            (&a.0, &a.1.location, &a.1.name).cmp(&(&b.0, &b.1.location, &b.1.name))
        });
        gcp_clusters.dedup();
        buckets.sort();
        buckets.dedup();
        secrets.sort();
        secrets.dedup();
        let aws_contexts: HashMap<(String, String), AwsContext> = if aws_clusters.is_empty() {
            HashMap::new()
        } else {
            let aws = clouds.aws()?;
            futures::future::try_join_all(aws_clusters.into_iter().map(|key| async move {
                let ctx = aws.context(&key.0, &key.1).await?;
                Ok::<_, Error>((key, ctx))
            }))
            .await?
            .into_iter()
            .collect()
        };
        let mut gcp_contexts: Vec<((String, GkeCluster), GcpContext)> = Vec::new();
        if !gcp_clusters.is_empty() {
            let gcp = clouds.gcp()?;
            gcp_contexts =
                futures::future::try_join_all(gcp_clusters.into_iter().map(|key| async move {
                    let ctx = gcp.context(&key.0, &key.1).await?;
                    Ok::<_, Error>((key, ctx))
                }))
                .await?;
            futures::future::try_join_all(
                buckets
                    .iter()
                    .map(|(bucket, uniform)| gcp.check_bucket(bucket, *uniform)),
            )
            .await?;
            futures::future::try_join_all(
                secrets
                    .iter()
                    .map(|(project, id)| gcp.check_secret(project, id)),
            )
            .await?;
        }
        // Azure: one read per space (its cluster's issuer, its vaults' authorization mode).
        let contexts = futures::future::try_join_all(spec.spaces.iter().map(|space| {
            let (aws_contexts, gcp_contexts) = (&aws_contexts, &gcp_contexts);
            async move {
                Ok::<_, Error>(Some(match &space.cloud {
                    Cloud::Aws(aws) => Context::Aws(
                        aws_contexts[&(aws.region.clone(), aws.cluster.clone())].clone(),
                    ),
                    Cloud::Azure(azure) => {
                        Context::Azure(clouds.azure()?.context(space, azure).await?)
                    }
                    Cloud::Gcp(gcp) => Context::Gcp(
                        gcp_contexts
                            .iter()
                            .find(|(key, _)| key.0 == gcp.project && key.1 == gcp.cluster)
                            .map(|(_, ctx)| ctx.clone())
                            .expect("every GCP space's cluster was read above"),
                    ),
                }))
            }
        }))
        .await?;
        Ok(Contexts(contexts))
    }
}

/// Runs each space's recipe with its context and hands its resources to `accept` with the
/// space's index. Limit errors of all spaces are returned together, after every space ran;
/// an error of `accept` or a cluster IRSA cannot use stops at once.
pub fn recipes(
    spec: &Spec,
    contexts: &Contexts,
    switches: &Switches,
    mut accept: impl FnMut(usize, Vec<Resource>) -> Result<()>,
) -> Result<()> {
    let mut errors = Vec::new();
    for (i, (space, context)) in spec.spaces.iter().zip(&contexts.0).enumerate() {
        let resources = match (&space.cloud, context) {
            (_, None) => continue,
            (Cloud::Aws(a), Some(Context::Aws(ctx))) => {
                if a.mode == AwsMode::Irsa && ctx.issuer.is_empty() {
                    return Err(Error::user(format!(
                        "EKS cluster {} ({}) has no OIDC issuer, which IRSA needs (EKS makes one \
                         with every cluster since 1.13); use `mode: pod-identity`, or recreate \
                         the cluster",
                        a.cluster, a.region
                    )));
                }
                let switch = switches.get(&space.name).copied();
                aws::resources(
                    &spec.path,
                    i,
                    space,
                    a,
                    ctx,
                    switch.unwrap_or(Switch::None(a.mode)),
                )
            }
            (Cloud::Azure(a), Some(Context::Azure(ctx))) => {
                azure::resources(&spec.path, i, space, a, ctx)
            }
            (Cloud::Gcp(g), Some(Context::Gcp(ctx))) => {
                gcp::resources(&spec.path, i, space, g, ctx)
            }
            _ => unreachable!("a space's context is made for its own cloud"),
        };
        match resources {
            Ok(resources) => accept(i, resources)?,
            Err(SpecErrors(e)) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(SpecErrors(errors).into())
    }
}

/// The desired resources of every space, after asking each cloud what names depend on
/// (account, cluster issuer), and what the plan should say beside its changes.
pub async fn graph(
    spec: &Spec,
    clouds: &Clouds,
    switches: &Switches,
) -> Result<(Graph, Vec<Note>)> {
    let contexts = Contexts::read(spec, clouds).await?;
    let mut graph = Graph::default();
    recipes(spec, &contexts, switches, |_, resources| {
        resources.into_iter().try_for_each(|r| graph.add(r))
    })?;
    let mut notes = notes(spec, &contexts);
    notes.extend(
        switches
            .iter()
            .filter_map(|(space, switch)| switch.note(space)),
    );
    Ok((graph, notes))
}

/// Who else the spaces' identities trust: the pattern of IRSA `subjects: wildcard`, the other
/// clusters of a GCP workload pool.
fn notes(spec: &Spec, contexts: &Contexts) -> Vec<Note> {
    let mut out = Vec::new();
    for (space, context) in spec.spaces.iter().zip(&contexts.0) {
        match (&space.cloud, context) {
            (Cloud::Aws(a), _) => out.extend(aws::wildcard_note(space, a).map(Note::remark)),
            (Cloud::Gcp(g), Some(Context::Gcp(ctx))) => {
                out.extend(gcp::shared_pool_warning(space, g, ctx).map(Note::warning))
            }
            _ => {}
        }
    }
    out.dedup();
    out
}
