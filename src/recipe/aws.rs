//! AWS: the cluster's OIDC provider, one role per component with its trust policy, and one
//! inline permissions policy per role; a switch of mode takes two applies ([`switch`]).

mod init;

pub mod switch;

use serde_json::Value;

use std::collections::{BTreeMap, HashMap};

use futures::future::BoxFuture;

use super::{
    At, CloudRecipe, HOST_NAMESPACE_PATTERN, Ran, is_host_namespace, resource_name, subject,
};
use crate::error::Error;
use crate::graph::{Address, Kind, Location, Node, Resource};
use crate::helm::{self, HelmValue};
use crate::note::Note;
use crate::policy::{self, PodIdentityTrust, Trust, Values};
use crate::provider::Clouds;
use crate::provider::aws::AwsKind;
use crate::provider::aws::association::AssociationAttributes;
/// The cloud's names, ids and limits, and its context, live beside its driver.
pub use crate::provider::aws::context::*;
use crate::provider::aws::oidc::{CLUSTER_TAG, ProviderAttributes};
use crate::provider::aws::role::{PolicyAttributes, RoleAttributes};
use crate::provider::tags::{MANAGED_BY, Tags, component_tags};
use crate::provider::to_attributes;
use crate::spec::{
    AwsAccess, AwsMode, AwsSpace, Cloud, Component, ComponentKind, Space, Spec, SpecError,
    SpecErrors, Subjects,
};
use crate::state::State;
pub use switch::Switch;

/// The desired resources of one AWS space. `index` is the space's position in the spec, for
/// error paths; `switch` where the space stands in a switch of mode (the spec's mode alone
/// outside one). Fails when a limit is exceeded, naming the spec location.
pub fn resources(
    spec_path: &std::path::Path,
    index: usize,
    space: &Space,
    aws: &AwsSpace,
    ctx: &AwsContext,
    switch: Switch,
) -> Result<Vec<Resource>, SpecErrors> {
    let location = Location::Aws {
        region: aws.region.clone(),
    };
    let provider = Address::cluster(
        Kind::Aws(AwsKind::IamOpenidConnectProvider),
        &aws.region,
        &aws.cluster,
    );
    let mut out = Vec::new();
    // Pod identity needs no OIDC provider: EKS's agent exchanges the token itself.
    let irsa = switch.keeps(AwsMode::Irsa);
    if irsa {
        out.push(Resource {
            node: Node {
                address: provider.clone(),
                location: location.clone(),
                depends_on: vec![],
            },
            attributes: to_attributes(&ProviderAttributes {
                arn: ctx.provider_arn(),
                url: ctx.issuer.clone(),
                client_ids: vec![STS_AUDIENCE.to_string()],
                tags: Tags::from([
                    (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
                    (CLUSTER_TAG.to_string(), aws.cluster.clone()),
                ]),
            }),
            adopt: false,
        });
    }
    let mut errors = Vec::new();
    for component in aws.components.iter() {
        let name = resource_name(space, component);
        let trust = trust(space, aws, ctx, component.kind, aws.mode);
        if let Err(e) = check_trust_size(spec_path, index, space, aws, &name, &trust) {
            errors.push(e);
            continue;
        }
        // During a switch the role trusts both modes: the other one's statement beside it.
        let mut trusts = vec![trust];
        if let Switch::Start { from, .. } = switch {
            trusts.push(self::trust(space, aws, ctx, component.kind, from));
            if let Err(e) = check_both_fit(spec_path, index, space, aws, &name, &trusts) {
                errors.push(e);
                continue;
            }
        }
        let role = Address::component(Kind::Aws(AwsKind::IamRole), &space.name, component.kind);
        out.push(Resource {
            node: Node {
                address: role.clone(),
                location: location.clone(),
                depends_on: if irsa { vec![provider.clone()] } else { vec![] },
            },
            attributes: to_attributes(&RoleAttributes {
                name: name.clone(),
                arn: ctx.role_arn(&name),
                path: "/".into(),
                description: format!(
                    "Upbound Spaces {} ({}) of space {}; managed by idplan",
                    component.kind,
                    component.kind.service_account(),
                    space.name
                ),
                assume_role_policy: policy::normalize(&policy::trust_policy_of(&trusts)),
                tags: component_tags(&space.name, component.kind.spec_key()),
            }),
            adopt: component.adopt,
        });
        out.push(Resource {
            node: Node {
                address: Address::component(
                    Kind::Aws(AwsKind::IamRolePolicy),
                    &space.name,
                    component.kind,
                ),
                location: location.clone(),
                depends_on: vec![role.clone()],
            },
            attributes: to_attributes(&PolicyAttributes {
                role: name.clone(),
                name: POLICY_NAME.into(),
                policy: policy::normalize(&permissions(component, &ctx.partition)),
            }),
            adopt: component.adopt,
        });
        if switch.keeps(AwsMode::PodIdentity) {
            // One association per host namespace: pod identity has no wildcards.
            for cp in &space.control_planes {
                out.push(Resource {
                    node: Node {
                        address: Address::item(
                            Kind::Aws(AwsKind::EksPodIdentityAssociation),
                            &space.name,
                            component.kind,
                            &cp.namespace,
                        ),
                        location: location.clone(),
                        depends_on: vec![role.clone()],
                    },
                    attributes: to_attributes(&AssociationAttributes {
                        cluster: aws.cluster.clone(),
                        namespace: cp.namespace.clone(),
                        service_account: component.kind.service_account().to_string(),
                        role_arn: ctx.role_arn(&name),
                        tags: component_tags(&space.name, component.kind.spec_key()),
                        // The trust conditions need the session tags.
                        disable_session_tags: false,
                        association_id: None,
                    }),
                    adopt: component.adopt,
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(SpecErrors(errors))
    }
}

/// What the plan states of an IRSA space with `subjects: wildcard`: the pattern its roles
/// trust, and that any namespace of the cluster matching it gets them.
pub fn wildcard_note(space: &Space, aws: &AwsSpace) -> Option<String> {
    if aws.mode != AwsMode::Irsa || aws.subjects != Subjects::Wildcard {
        return None;
    }
    let roles: Vec<String> = aws
        .components
        .iter()
        .map(|c| {
            format!(
                "{} ({})",
                resource_name(space, c),
                subject(HOST_NAMESPACE_PATTERN, c.kind)
            )
        })
        .collect();
    if roles.is_empty() {
        return None;
    }
    Some(format!(
        "space {}: `subjects: wildcard` trusts the pattern `{HOST_NAMESPACE_PATTERN}` on EKS \
         cluster {}: roles {} can be assumed from any namespace of the cluster matching it, a \
         control plane of this Space or not. `subjects: exact` trusts only the listed control \
         planes (docs/threat-model.md)",
        space.name,
        aws.cluster,
        roles.join(", ")
    ))
}

/// Whom a component's role trusts in `mode`.
fn trust(
    space: &Space,
    aws: &AwsSpace,
    ctx: &AwsContext,
    component: ComponentKind,
    mode: AwsMode,
) -> Trust {
    if mode == AwsMode::PodIdentity {
        let namespaces = &space.control_planes;
        // One pattern when it covers every host namespace: the policy stays small at any
        // scale; the exact list otherwise.
        let namespaces = if namespaces.iter().all(|cp| is_host_namespace(&cp.namespace)) {
            Values::Like(HOST_NAMESPACE_PATTERN.into())
        } else {
            Values::Exact(namespaces.iter().map(|cp| cp.namespace.clone()).collect())
        };
        return Trust::PodIdentity(PodIdentityTrust {
            account_id: ctx.account_id.clone(),
            cluster_arn: ctx.cluster_arn.clone(),
            service_account: component.service_account().to_string(),
            namespaces,
        });
    }
    let subjects = match aws.subjects {
        Subjects::Exact => Values::Exact(
            space
                .control_planes
                .iter()
                .map(|cp| subject(&cp.namespace, component))
                .collect(),
        ),
        Subjects::Wildcard => Values::Like(subject(HOST_NAMESPACE_PATTERN, component)),
    };
    Trust::Irsa {
        provider_arn: ctx.provider_arn(),
        issuer: ctx.issuer.clone(),
        subjects,
    }
}

fn permissions(component: &Component<AwsAccess>, partition: &str) -> Value {
    match &component.access {
        AwsAccess::Bucket(bucket) => policy::s3_bucket_policy(partition, bucket),
        AwsAccess::Secrets(arns) => policy::secrets_read_policy(arns),
    }
}

/// Refuses a switch of mode whose roles cannot trust both modes at once within the quota.
fn check_both_fit(
    spec_path: &std::path::Path,
    index: usize,
    space: &Space,
    aws: &AwsSpace,
    role: &str,
    trusts: &[Trust],
) -> Result<(), SpecError> {
    let size = policy::size(&policy::trust_policy_of(trusts));
    if size <= aws.trust_policy_quota {
        return Ok(());
    }
    Err(SpecError {
        path: spec_path.to_path_buf(),
        location: Some(aws.location),
        field: format!("spaces[{index}].aws.mode"),
        message: format!(
            "space {}: switching to {} keeps the roles trusting both modes until pods have              moved, and the trust policy of role {role} would then be {size} characters              (whitespace not counted), over the quota of {}. Make the trust smaller first              (`subjects: wildcard`, host namespaces of the form `mxp-<id>-system`), or have              the IAM quota raised and set `aws.trustPolicyQuota`",
            space.name, aws.mode, aws.trust_policy_quota
        ),
    })
}

/// Refuses a trust policy over the quota, saying how many control planes fit.
fn check_trust_size(
    spec_path: &std::path::Path,
    index: usize,
    space: &Space,
    aws: &AwsSpace,
    role: &str,
    trust: &Trust,
) -> Result<(), SpecError> {
    let error = |location, field: String, message: String| SpecError {
        path: spec_path.to_path_buf(),
        location: Some(location),
        field,
        message,
    };
    let size = policy::size(&policy::trust_policy(trust));
    let Some(listed) = trust.listed() else {
        return if size > aws.trust_policy_quota {
            Err(error(
                aws.location,
                format!("spaces[{index}].aws"),
                format!(
                    "the trust policy of role {role} is {size} characters, over the quota of {}",
                    aws.trust_policy_quota
                ),
            ))
        } else {
            Ok(())
        };
    };
    if listed.is_empty() {
        return Err(error(
            space.location,
            format!("spaces[{index}].controlPlanes"),
            "`subjects: exact` needs at least one control plane to trust; list one, or use \
             `subjects: wildcard`"
                .into(),
        ));
    }
    if size <= aws.trust_policy_quota {
        return Ok(());
    }
    // Each listed value adds its quoted length plus a comma: count how many fit.
    let mut running = policy::size(&policy::trust_policy(&trust.with_listed(vec![])));
    let mut fit = 0;
    for (i, s) in listed.iter().enumerate() {
        running += s.chars().filter(|c| !c.is_whitespace()).count() + 2 + usize::from(i > 0);
        if running > aws.trust_policy_quota {
            break;
        }
        fit += 1;
    }
    let advice = match trust {
        Trust::Irsa { .. } => "Use `subjects: wildcard`",
        Trust::PodIdentity(_) => {
            "Host namespaces all of the form `mxp-<id>-system` are trusted with one pattern \
             (rename or move the others)"
        }
    };
    let first_over = &space.control_planes[fit.min(space.control_planes.len() - 1)];
    Err(error(
        first_over.location,
        format!("spaces[{index}].controlPlanes[{fit}]"),
        format!(
            "the trust policy of role {role} would be {size} characters (whitespace not counted), \
             over the quota of {quota}; {fit} of {total} control planes fit. {advice}, or have \
             the IAM quota raised and set `aws.trustPolicyQuota`",
            quota = aws.trust_policy_quota,
            total = listed.len(),
        ),
    ))
}

/// AWS, as the core asks of a cloud.
pub struct Aws;

impl CloudRecipe for Aws {
    type Space = AwsSpace;
    type Context = AwsContext;

    fn of(cloud: &Cloud) -> Option<&AwsSpace> {
        match cloud {
            Cloud::Aws(aws) => Some(aws),
            Cloud::Azure(_) | Cloud::Gcp(_) => None,
        }
    }

    fn location(aws: &AwsSpace) -> Location {
        Location::Aws {
            region: aws.region.clone(),
        }
    }

    fn placeholder(aws: &AwsSpace) -> AwsContext {
        AwsContext::placeholder(&aws.region, &aws.cluster)
    }

    /// One read per (region, cluster), however many spaces share it.
    fn contexts<'a>(
        clouds: &'a Clouds,
        spaces: &'a [(&'a Space, &'a AwsSpace)],
    ) -> BoxFuture<'a, crate::error::Result<Vec<AwsContext>>> {
        Box::pin(async move {
            let driver = clouds.aws()?;
            let key = |aws: &AwsSpace| (aws.region.clone(), aws.cluster.clone());
            let mut clusters: Vec<(String, String)> = spaces.iter().map(|(_, a)| key(a)).collect();
            clusters.sort();
            clusters.dedup();
            let read: HashMap<(String, String), AwsContext> =
                futures::future::try_join_all(clusters.into_iter().map(|cluster| async move {
                    let ctx = driver.context(&cluster.0, &cluster.1).await?;
                    Ok::<_, Error>((cluster, ctx))
                }))
                .await?
                .into_iter()
                .collect();
            Ok(spaces.iter().map(|(_, a)| read[&key(a)].clone()).collect())
        })
    }

    fn resources(
        at: &At<'_>,
        space: &Space,
        aws: &AwsSpace,
        ctx: &AwsContext,
    ) -> crate::error::Result<Vec<Resource>> {
        if aws.mode == AwsMode::Irsa && ctx.issuer.is_empty() {
            return Err(Error::user(format!(
                "EKS cluster {} ({}) has no OIDC issuer, which IRSA needs (EKS makes one \
                 with every cluster since 1.13); use `mode: pod-identity`, or recreate \
                 the cluster",
                aws.cluster, aws.region
            )));
        }
        let switch = at.switches.get(&space.name).copied();
        Ok(resources(
            at.path,
            at.index,
            space,
            aws,
            ctx,
            switch.unwrap_or(Switch::None(aws.mode)),
        )?)
    }

    fn notes(space: &Space, aws: &AwsSpace, _ctx: Option<&AwsContext>) -> Vec<Note> {
        wildcard_note(space, aws)
            .map(Note::remark)
            .into_iter()
            .collect()
    }

    /// Billing to an S3 bucket; with IRSA each component's service account is annotated
    /// with its role's ARN (pod identity needs no annotation).
    fn helm_values(
        space: &Space,
        aws: &AwsSpace,
        state: &State,
    ) -> crate::error::Result<Vec<HelmValue>> {
        let mut out = Vec::new();
        if let Some(Component {
            access: AwsAccess::Bucket(bucket),
            ..
        }) = &aws.components.billing
        {
            out.extend(helm::billing(
                "aws",
                &[
                    ("region", aws.region.clone().into()),
                    ("bucket", bucket.clone().into()),
                ],
            ));
        }
        if aws.mode == AwsMode::Irsa {
            for component in aws.components.iter() {
                let kind = component.kind;
                let address = Address::component(Kind::Aws(AwsKind::IamRole), &space.name, kind);
                let arn = state
                    .get(&address)
                    .and_then(|r| {
                        crate::provider::attributes::<RoleAttributes>(&address, &r.attributes).ok()
                    })
                    .map(|role| role.arn)
                    .ok_or_else(|| {
                        Error::user(format!(
                            "space {}: the state has no role for {kind} ({address}); run \
                             `idplan apply` first",
                            space.name
                        ))
                    })?;
                out.push(helm::annotation(kind, ANNOTATION, arn.into()));
            }
        }
        Ok(out)
    }

    /// EKS's associations per cluster, counted over the spaces that share it; an error points
    /// at the last space that adds to it.
    fn spec_limits(spec: &Spec, ran: &[Ran<'_, AwsSpace>]) -> Vec<SpecError> {
        let mut associations: BTreeMap<(&str, &str), (usize, &Ran<'_, AwsSpace>)> = BTreeMap::new();
        for r in ran {
            let n = r
                .resources
                .iter()
                .filter(|r| r.node.kind() == Kind::Aws(AwsKind::EksPodIdentityAssociation))
                .count();
            if n > 0 {
                let entry = associations
                    .entry((&r.cloud.region, &r.cloud.cluster))
                    .or_insert((0, r));
                *entry = (entry.0 + n, r);
            }
        }
        associations
            .into_iter()
            .filter_map(|((_, cluster), (wanted, r))| {
                let message = check_association_quota(cluster, wanted, 0).err()?;
                Some(SpecError {
                    path: spec.path.clone(),
                    location: Some(r.cloud.location),
                    field: format!("spaces[{}].controlPlanes", r.index),
                    message,
                })
            })
            .collect()
    }

    fn limits(_file: &std::path::Path, _ran: &[Ran<'_, AwsSpace>]) -> crate::error::Result<()> {
        Ok(())
    }
}
