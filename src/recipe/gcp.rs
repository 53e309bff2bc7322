//! GCP: IAM bindings for each control plane's principal identifier (`mode: principal`), or a
//! Google service account per component that the control planes impersonate
//! (`mode: service-account`).
//!
//! A shared IAM policy (a bucket's, the project's) is never a resource of idplan's: the
//! resource is "idplan's members of role R in the policy of X", and the driver reads the policy
//! projected onto those members.

mod init;

use std::collections::{BTreeMap, BTreeSet};

use futures::future::BoxFuture;

use super::{At, CloudRecipe, Ran, resource_name};
use crate::error::Error;
use crate::graph::{Address, Kind, Location, Node, Resource};
use crate::helm::{self, HelmValue};
use crate::note::Note;
use crate::provider::Clouds;
use crate::provider::gcp::account::AccountAttributes;
/// The cloud's names, ids and limits, and its context, live beside its driver.
pub use crate::provider::gcp::context::*;
use crate::provider::gcp::policy::{self, MembersAttributes};
use crate::provider::gcp::{GcpKind, PolicyOf};
use crate::provider::to_attributes;
use crate::spec::{
    Cloud, Component, GcpAccess, GcpMode, GcpSpace, GkeCluster, Space, Spec, SpecError, SpecErrors,
};
use crate::state::State;

/// What the plan warns of: other clusters of the project in the Space's workload pool, whose
/// pods are the same principals; or that they could not be listed.
pub fn shared_pool_warning(space: &Space, gcp: &GcpSpace, ctx: &GcpContext) -> Option<String> {
    let cluster = format!("{}/{}", gcp.cluster.location, gcp.cluster.name);
    let Some(others) = &ctx.pool_shared_with else {
        return Some(format!(
            "space {}: the GKE clusters of project {} could not be listed (permission \
             container.clusters.list): other clusters sharing the workload identity pool {} \
             with {cluster} were not checked",
            space.name, gcp.project, ctx.workload_pool
        ));
    };
    if others.is_empty() {
        return None;
    }
    let (what, them) = match gcp.mode {
        GcpMode::Principal => ("principal identifiers", "bindings"),
        GcpMode::ServiceAccount => ("workloadIdentityUser members", "service accounts"),
    };
    Some(format!(
        "space {}: GKE cluster{} {} of project {} share{} the workload identity pool {} with \
         the Space's cluster {cluster}. The {what} idplan grants name the pool, not the \
         cluster: a pod there running as a component's service account in a namespace named \
         like one of this Space's control planes gets the same access through these {them}. \
         Run the Space's cluster in a project of its own (docs/threat-model.md)",
        space.name,
        if others.len() == 1 { "" } else { "s" },
        others.join(", "),
        gcp.project,
        if others.len() == 1 { "s" } else { "" },
        ctx.workload_pool,
    ))
}

/// A Google service account's email: known before it exists.
pub fn service_account_email(account_id: &str, project: &str) -> String {
    format!("{account_id}@{project}.iam.gserviceaccount.com")
}

/// The members of one resource, and the policy they go into.
fn members(
    address: Address,
    location: &Location,
    (policy, role): (String, &str),
    holder: String,
    members: BTreeSet<String>,
    depends_on: Vec<Address>,
) -> Resource {
    Resource {
        node: Node {
            address,
            location: location.clone(),
            depends_on,
        },
        attributes: to_attributes(&MembersAttributes {
            resource: policy,
            role: role.to_string(),
            holder,
            members,
        }),
        adopt: false,
    }
}

/// The desired resources of one GCP space. `index` is the space's position in the spec, for
/// error paths. Fails when a policy would hold more principals than Google allows.
pub fn resources(
    spec_path: &std::path::Path,
    index: usize,
    space: &Space,
    gcp: &GcpSpace,
    ctx: &GcpContext,
) -> Result<Vec<Resource>, SpecErrors> {
    let location = Location::Gcp {
        project: gcp.project.clone(),
    };
    let mut out = Vec::new();
    for component in gcp.components.iter() {
        let kind = component.kind;
        let holder = format!("{}/{}", space.name, kind.spec_key());
        // Who gets the component's role, and what must exist before.
        let (grantee, depends_on): (BTreeSet<String>, Vec<Address>) = match gcp.mode {
            GcpMode::Principal => (
                space
                    .control_planes
                    .iter()
                    .map(|cp| ctx.principal(&cp.namespace, kind))
                    .collect(),
                vec![],
            ),
            GcpMode::ServiceAccount => {
                let id = resource_name(space, component);
                let email = service_account_email(&id, &gcp.project);
                let account =
                    Address::component(Kind::Gcp(GcpKind::ServiceAccount), &space.name, kind);
                out.push(Resource {
                    node: Node {
                        address: account.clone(),
                        location: location.clone(),
                        depends_on: vec![],
                    },
                    attributes: to_attributes(&AccountAttributes {
                        project: gcp.project.clone(),
                        account_id: id.clone(),
                        email: email.clone(),
                        display_name: format!("Spaces {} {}", space.name, kind.kebab()),
                        description: format!(
                            "Upbound Spaces {kind} ({}) of space {}; {MANAGED_MARK}",
                            kind.service_account(),
                            space.name
                        ),
                    }),
                    adopt: false,
                });
                let linked: BTreeSet<String> = space
                    .control_planes
                    .iter()
                    .map(|cp| ctx.workload_member(&cp.namespace, kind))
                    .collect();
                if !linked.is_empty() {
                    out.push(members(
                        Address::component(
                            Kind::Gcp(GcpKind::Members(PolicyOf::ServiceAccount)),
                            &space.name,
                            kind,
                        ),
                        &location,
                        (
                            format!("projects/{}/serviceAccounts/{email}", gcp.project),
                            WORKLOAD_IDENTITY_USER,
                        ),
                        holder.clone(),
                        linked,
                        vec![account.clone()],
                    ));
                }
                (
                    BTreeSet::from([format!("serviceAccount:{email}")]),
                    vec![account],
                )
            }
        };
        // No control plane, no principal: an empty member set is no resource at all.
        if grantee.is_empty() {
            continue;
        }
        out.extend(grants(
            space, gcp, component, &location, &holder, grantee, depends_on,
        ));
    }
    // The bindings of an adopted component may have been made by hand too.
    let adopted: Vec<_> = gcp
        .components
        .iter()
        .filter(|c| c.adopt)
        .map(|c| c.kind)
        .collect();
    for r in &mut out {
        r.adopt = r
            .node
            .address
            .component_kind()
            .is_some_and(|k| adopted.contains(&k));
    }
    check_policy_sizes(spec_path, index, space, gcp, &out)?;
    Ok(out)
}

/// The role bindings of one component: its bucket, or its secrets (the project when none are
/// listed).
fn grants(
    space: &Space,
    gcp: &GcpSpace,
    component: &Component<GcpAccess>,
    location: &Location,
    holder: &str,
    grantee: BTreeSet<String>,
    depends_on: Vec<Address>,
) -> Vec<Resource> {
    let kind = component.kind;
    match &component.access {
        GcpAccess::Bucket(bucket) => {
            let k = Kind::Gcp(GcpKind::Members(PolicyOf::Bucket));
            vec![members(
                Address::component(k, &space.name, kind),
                location,
                (bucket.clone(), STORAGE_ROLE),
                holder.to_string(),
                grantee,
                depends_on,
            )]
        }
        GcpAccess::ProjectSecrets => {
            let k = Kind::Gcp(GcpKind::Members(PolicyOf::Project));
            vec![members(
                Address::component(k, &space.name, kind),
                location,
                (gcp.project.clone(), SECRET_ROLE),
                holder.to_string(),
                grantee,
                depends_on,
            )]
        }
        GcpAccess::Secrets(secrets) => {
            let k = Kind::Gcp(GcpKind::Members(PolicyOf::Secret));
            secrets
                .iter()
                .map(|secret| {
                    members(
                        Address::item(k, &space.name, kind, secret),
                        location,
                        (
                            format!("projects/{}/secrets/{secret}", gcp.project),
                            SECRET_ROLE,
                        ),
                        holder.to_string(),
                        grantee.clone(),
                        depends_on.clone(),
                    )
                })
                .collect()
        }
    }
}

/// Every IAM policy the resources put members into, with idplan's members there:
/// (kind, policy resource) → members.
pub fn policy_members<'a>(
    resources: impl IntoIterator<Item = &'a Resource>,
) -> crate::error::Result<BTreeMap<(Kind, String), BTreeSet<String>>> {
    let typed = policy::members_of(resources)?;
    Ok(policy::policy_members(typed.iter().map(|(k, m)| (*k, m))))
}

/// The limit as the spec alone decides it, located at the space's control planes.
fn check_policy_sizes(
    spec_path: &std::path::Path,
    index: usize,
    space: &Space,
    gcp: &GcpSpace,
    resources: &[Resource],
) -> Result<(), SpecErrors> {
    // Built from `MembersAttributes` by this recipe: they read back.
    let errors: Vec<SpecError> = policy_members(resources)
        .expect("member attributes built by this recipe read back")
        .into_iter()
        .filter_map(|((_, policy), members)| check_principals(&policy, members.len(), 0).err())
        .map(|message| SpecError {
            path: spec_path.to_path_buf(),
            location: Some(match space.control_planes.get(PRINCIPALS_PER_POLICY) {
                Some(cp) => cp.location,
                None => gcp.location,
            }),
            field: match space.control_planes.len() > PRINCIPALS_PER_POLICY {
                true => format!("spaces[{index}].controlPlanes[{PRINCIPALS_PER_POLICY}]"),
                false => format!("spaces[{index}].gcp"),
            },
            message,
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(SpecErrors(errors))
    }
}

/// GCP, as the core asks of a cloud.
pub struct Gcp;

impl CloudRecipe for Gcp {
    type Space = GcpSpace;
    type Context = GcpContext;

    fn of(cloud: &Cloud) -> Option<&GcpSpace> {
        match cloud {
            Cloud::Gcp(gcp) => Some(gcp),
            Cloud::Aws(_) | Cloud::Azure(_) => None,
        }
    }

    fn location(gcp: &GcpSpace) -> Location {
        Location::Gcp {
            project: gcp.project.clone(),
        }
    }

    fn placeholder(gcp: &GcpSpace) -> GcpContext {
        GcpContext::placeholder(&gcp.project)
    }

    /// One read per (project, cluster), however many spaces share it. Buckets and listed
    /// secrets that members will be bound on must exist, and principal identifiers need
    /// uniform bucket-level access on their buckets: checked here, before anything is read
    /// or written.
    fn contexts<'a>(
        clouds: &'a Clouds,
        spaces: &'a [(&'a Space, &'a GcpSpace)],
    ) -> BoxFuture<'a, crate::error::Result<Vec<GcpContext>>> {
        Box::pin(async move {
            let driver = clouds.gcp()?;
            let mut clusters: Vec<(&str, &GkeCluster)> = Vec::new();
            let mut buckets: Vec<(&str, bool)> = Vec::new();
            let mut secrets: Vec<(&str, &str)> = Vec::new();
            for (space, gcp) in spaces {
                clusters.push((&gcp.project, &gcp.cluster));
                // A space without control planes binds no principal.
                let principal = gcp.mode == GcpMode::Principal;
                if principal && space.control_planes.is_empty() {
                    continue;
                }
                for c in gcp.components.iter() {
                    match &c.access {
                        GcpAccess::Bucket(b) => buckets.push((b, principal)),
                        GcpAccess::Secrets(ids) => {
                            secrets.extend(ids.iter().map(|id| (gcp.project.as_str(), id.as_str())))
                        }
                        GcpAccess::ProjectSecrets => {}
                    }
                }
            }
            clusters.sort_by(|a, b| {
                (a.0, &a.1.location, &a.1.name).cmp(&(b.0, &b.1.location, &b.1.name))
            });
            clusters.dedup();
            buckets.sort();
            buckets.dedup();
            secrets.sort();
            secrets.dedup();
            let read = futures::future::try_join_all(clusters.into_iter().map(|key| async move {
                let ctx = driver.context(key.0, key.1).await?;
                Ok::<_, Error>((key, ctx))
            }))
            .await?;
            futures::future::try_join_all(
                buckets
                    .iter()
                    .map(|(bucket, uniform)| driver.check_bucket(bucket, *uniform)),
            )
            .await?;
            futures::future::try_join_all(
                secrets
                    .iter()
                    .map(|(project, id)| driver.check_secret(project, id)),
            )
            .await?;
            Ok(spaces
                .iter()
                .map(|(_, gcp)| {
                    read.iter()
                        .find(|(key, _)| key.0 == gcp.project && *key.1 == gcp.cluster)
                        .map(|(_, ctx)| ctx.clone())
                        .expect("every space's cluster was read above")
                })
                .collect())
        })
    }

    fn resources(
        at: &At<'_>,
        space: &Space,
        gcp: &GcpSpace,
        ctx: &GcpContext,
    ) -> crate::error::Result<Vec<Resource>> {
        Ok(resources(at.path, at.index, space, gcp, ctx)?)
    }

    /// The other clusters of the project's workload pool, which its principals trust too.
    fn notes(space: &Space, gcp: &GcpSpace, ctx: Option<&GcpContext>) -> Vec<Note> {
        ctx.and_then(|ctx| shared_pool_warning(space, gcp, ctx))
            .map(Note::warning)
            .into_iter()
            .collect()
    }

    /// Billing to a Cloud Storage bucket; in `service-account` mode each component's
    /// Kubernetes service account is annotated with its Google service account (principal
    /// identifiers need no annotation).
    fn helm_values(
        space: &Space,
        gcp: &GcpSpace,
        state: &State,
    ) -> crate::error::Result<Vec<HelmValue>> {
        let mut out = Vec::new();
        if let Some(Component {
            access: GcpAccess::Bucket(bucket),
            ..
        }) = &gcp.components.billing
        {
            out.extend(helm::billing("gcp", &[("bucket", bucket.clone().into())]));
        }
        if gcp.mode == GcpMode::ServiceAccount {
            for component in gcp.components.iter() {
                let kind = component.kind;
                let address =
                    Address::component(Kind::Gcp(GcpKind::ServiceAccount), &space.name, kind);
                let email = state
                    .get(&address)
                    .and_then(|r| {
                        crate::provider::attributes::<AccountAttributes>(&address, &r.attributes)
                            .ok()
                    })
                    .map(|account| account.email)
                    .ok_or_else(|| {
                        Error::user(format!(
                            "space {}: the state has no service account for {kind} ({address}); \
                             run `idplan apply` first",
                            space.name
                        ))
                    })?;
                out.push(helm::annotation(kind, ANNOTATION, email.into()));
            }
        }
        Ok(out)
    }

    fn spec_limits(_spec: &Spec, _ran: &[Ran<'_, GcpSpace>]) -> Vec<SpecError> {
        Vec::new()
    }

    /// Google's principals per policy, over every space: spaces may share a bucket or a
    /// project's policy.
    fn limits(file: &std::path::Path, ran: &[Ran<'_, GcpSpace>]) -> crate::error::Result<()> {
        for ((_, policy), members) in policy_members(ran.iter().flat_map(|r| r.resources))? {
            check_principals(&policy, members.len(), 0)
                .map_err(|e| Error::user(format!("{}: {e}", file.display())))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;

    fn space(mode: &str, planes: usize, components: &str) -> crate::spec::Spec {
        let planes: String = (0..planes)
            .map(|i| format!("      - mxp-{i}-system\n"))
            .collect();
        let planes = if planes.is_empty() {
            "    controlPlanes: []\n".to_string()
        } else {
            format!("    controlPlanes:\n{planes}")
        };
        let text = format!(
            "version: 1\nspaces:\n  - name: prod\n{planes}    gcp:\n      project: acme-spaces\n      \
             cluster: {{ location: us-central1, name: c }}\n      mode: {mode}\n    components:\n{components}"
        );
        crate::spec::parse(Path::new("idplan.yaml"), &text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn build(spec: &crate::spec::Spec) -> Result<Vec<Resource>, SpecErrors> {
        let s = &spec.spaces[0];
        let crate::spec::Cloud::Gcp(gcp) = &s.cloud else {
            panic!("a GCP space")
        };
        resources(
            &spec.path,
            0,
            s,
            gcp,
            &GcpContext::placeholder(&gcp.project),
        )
    }

    #[test]
    fn principal_mode_binds_each_control_plane() {
        let spec = space(
            "principal",
            2,
            "      backup: { bucket: bkt1 }\n      sharedSecrets: { secrets: [s1, s2] }\n",
        );
        let out = build(&spec).unwrap();
        let addresses: Vec<&str> = out.iter().map(|r| r.node.address.as_str()).collect();
        assert_eq!(
            addresses,
            [
                "google_storage_bucket_iam_members.prod.backup",
                "google_secret_manager_secret_iam_members.prod.sharedSecrets.s1",
                "google_secret_manager_secret_iam_members.prod.sharedSecrets.s2",
            ]
        );
        assert_eq!(
            out[0].attributes["members"][0],
            "principal://iam.googleapis.com/projects/123456789012/locations/global/\
             workloadIdentityPools/acme-spaces.svc.id.goog/subject/ns/mxp-0-system/sa/mxp-controller"
        );
        assert_eq!(
            out[1].attributes["resource"],
            "projects/acme-spaces/secrets/s1"
        );
        assert_eq!(out[1].attributes["role"], SECRET_ROLE);
        // No control plane: no principal, nothing to bind.
        let spec = space("principal", 0, "      backup: { bucket: bkt1 }\n");
        assert!(build(&spec).unwrap().is_empty());
    }

    #[test]
    fn service_account_mode_links_each_control_plane() {
        let spec = space("service-account", 1, "      sharedSecrets: {}\n");
        let out = build(&spec).unwrap();
        let email = "spaces-prod-shared-secrets@acme-spaces.iam.gserviceaccount.com";
        assert_eq!(out[0].node.kind(), Kind::Gcp(GcpKind::ServiceAccount));
        assert_eq!(out[0].attributes["email"], email);
        assert_eq!(
            out[1].node.kind(),
            Kind::Gcp(GcpKind::Members(PolicyOf::ServiceAccount))
        );
        assert_eq!(
            out[1].attributes["members"],
            json!([
                "serviceAccount:acme-spaces.svc.id.goog[mxp-0-system/external-secrets-controller]"
            ])
        );
        assert_eq!(
            out[1].node.depends_on,
            ["google_service_account.prod.sharedSecrets"]
        );
        assert_eq!(
            out[2].node.kind(),
            Kind::Gcp(GcpKind::Members(PolicyOf::Project))
        );
        assert_eq!(
            out[2].attributes["members"],
            json!([format!("serviceAccount:{email}")])
        );
        assert_eq!(
            out[2].node.depends_on,
            ["google_service_account.prod.sharedSecrets"]
        );
    }

    #[test]
    fn more_than_1500_principals_in_a_policy_are_refused() {
        let spec = space("principal", 1501, "      billing: { bucket: bkt1 }\n");
        let errors = build(&spec).unwrap_err();
        assert_eq!(errors.0.len(), 1);
        assert_eq!(errors.0[0].field, "spaces[0].controlPlanes[1500]");
        assert!(errors.0[0].message.contains("would hold 1501 principals"));
        let spec = space("principal", 1500, "      billing: { bucket: bkt1 }\n");
        assert!(build(&spec).is_ok());
        // One member per component in service-account mode's shared policies; the link on
        // the account is per control plane, so it is what overflows.
        let spec = space("service-account", 1501, "      billing: { bucket: bkt1 }\n");
        assert!(build(&spec).is_err());
    }
}
