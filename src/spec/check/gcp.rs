//! GCP: the `gcp:` block (a GKE cluster in a project, principal identifiers or service
//! accounts) and its components: Cloud Storage buckets, Secret Manager ids and service
//! account ids.

use super::{BucketRule, Build, Check, Checked, Named, Rules, Written, show};
use crate::spec::names::{
    is_gcp_project, is_gcp_secret_id, is_gcs_bucket_name, is_gke_cluster_name, is_gke_location,
    is_service_account_id,
};
use crate::spec::schema::{
    At, RawBucketComponent, RawGcp, RawGcpMode, RawSecretsComponent, SERVICE_ACCOUNT_ID_MAX,
    SERVICE_ACCOUNT_ID_MIN,
};
use crate::spec::{Cloud, ComponentKind, GcpAccess, GcpMode, GcpSpace, GkeCluster};

/// The `gcp:` block; `None` when it has errors.
pub(super) fn block(check: &mut Check, space: &str, raw: At<RawGcp>) -> Option<Build<GcpAccess>> {
    let field = &format!("{space}.gcp");
    let location = raw.location();
    let raw = raw.into_value();
    let errors_before = check.errors.len();
    let project = raw.project.value();
    if !is_gcp_project(project) {
        check.error(
            raw.project.location(),
            format!("{field}.project"),
            format!(
                "invalid project id `{}`: expected 6 to 30 lower-case letters, digits and \
                 `-`, starting with a letter (the project id, not its number)",
                show(project)
            ),
        );
    }
    let cluster = raw.cluster.into_value();
    let cluster_location = cluster.location.value();
    if !is_gke_location(cluster_location) {
        check.error(
            cluster.location.location(),
            format!("{field}.cluster.location"),
            format!(
                "invalid cluster location `{}`: expected a region such as `us-central1` or a \
                 zone such as `us-central1-a`",
                show(cluster_location)
            ),
        );
    }
    let name = cluster.name.value();
    if !is_gke_cluster_name(name) {
        check.error(
            cluster.name.location(),
            format!("{field}.cluster.name"),
            format!(
                "invalid GKE cluster name `{}`: expected 1 to 40 lower-case letters, digits \
                 and `-`, starting with a letter and not ending with `-`",
                show(name)
            ),
        );
    }
    let mode = match check.keyword(field, "mode", raw.mode.as_ref(), &RawGcpMode::KEYWORDS) {
        None | Some(RawGcpMode::Principal) => GcpMode::Principal,
        Some(RawGcpMode::ServiceAccount) => GcpMode::ServiceAccount,
    };
    (check.errors.len() == errors_before).then(|| -> Build<_> {
        Box::new(move |components| {
            Cloud::Gcp(GcpSpace {
                project: raw.project.into_value(),
                cluster: GkeCluster {
                    location: cluster.location.into_value(),
                    name: cluster.name.into_value(),
                },
                mode,
                location,
                components,
            })
        })
    })
}

const CLOUD_STORAGE: BucketRule = BucketRule {
    what: "Cloud Storage",
    valid: is_gcs_bucket_name,
    expected: "expected 3 to 63 lower-case letters, digits, `.`, `_` and `-`, starting and \
               ending with a letter or digit",
};

/// GCP's rules.
pub(super) struct GcpRules {
    /// `mode: service-account`: a Google service account (named) per component.
    service_account: bool,
}

impl GcpRules {
    /// The rules beside a `gcp:` block as written.
    pub(super) fn new(raw: &RawGcp) -> Self {
        GcpRules {
            service_account: raw
                .mode
                .as_ref()
                .is_some_and(|m| m.value() == "service-account"),
        }
    }
}

impl Rules for GcpRules {
    type Access = GcpAccess;

    fn bucket(&self, check: &mut Check, c: Written<RawBucketComponent>) -> Checked<GcpAccess> {
        check.bucket_component(self, c, &CLOUD_STORAGE, GcpAccess::Bucket)
    }

    fn secrets(&self, check: &mut Check, c: Written<RawSecretsComponent>) -> Checked<GcpAccess> {
        check.no_key_vault(&c);
        let (field, raw) = (c.field.as_str(), c.raw);
        let (kind, location) = (c.kind, c.location);
        let access = match raw.secrets {
            // No list: every secret of the project (a project-level binding).
            None => GcpAccess::ProjectSecrets,
            Some(list) => {
                let empty = "expected at least one secret id; leave `secrets` out to allow every \
                             secret of the project";
                let secrets = check.secret_list(field, list, empty, |check, f, before, at, id| {
                    if !is_gcp_secret_id(id) {
                        check.error(
                            at,
                            f.clone(),
                            format!(
                                "invalid Secret Manager secret id `{}`: expected 1 to 255 \
                                 letters, digits, `_` and `-` (the id, not the full name)",
                                show(id)
                            ),
                        );
                    }
                    if before.iter().any(|s| s == id) {
                        check.error(at, f, format!("duplicate secret `{}`", show(id)));
                    }
                });
                GcpAccess::Secrets(secrets)
            }
        };
        let name = self.name(check, field, raw.name);
        Checked::new(kind, location, name, Some(access))
    }

    /// The id of the Google service account, in that mode only.
    fn name(&self, check: &mut Check, component: &str, raw: Option<At<String>>) -> Named {
        let raw = raw?;
        let at = raw.location();
        let name = raw.into_value();
        let name_shown = show(&name);
        if !self.service_account {
            check.error(
                at,
                format!("{component}.name"),
                "`name` is the id of a Google service account, which only `mode: \
                 service-account` creates: remove it, or set that mode",
            );
        } else if !is_service_account_id(&name) {
            check.error(
                at,
                format!("{component}.name"),
                format!(
                    "invalid service account id `{name_shown}`: expected \
                     {SERVICE_ACCOUNT_ID_MIN} to {SERVICE_ACCOUNT_ID_MAX} lower-case letters, \
                     digits and `-`, starting with a letter and not ending with `-`"
                ),
            );
        }
        Some((name, at))
    }

    /// Principal identifiers create nothing that has a name.
    fn names_resources(&self) -> bool {
        self.service_account
    }

    fn default_name_error(&self, name: &str) -> Option<String> {
        let len = name.chars().count();
        (!(SERVICE_ACCOUNT_ID_MIN..=SERVICE_ACCOUNT_ID_MAX).contains(&len)).then(|| {
            format!(
                "the default service account id `{}` is {len} characters, but Google allows \
                 {SERVICE_ACCOUNT_ID_MIN} to {SERVICE_ACCOUNT_ID_MAX}: set an explicit `name`",
                show(name)
            )
        })
    }

    fn taken(&self, name: &str, other: ComponentKind) -> String {
        format!(
            "service account id `{name}` is already the one of `{other}`: set a different \
             `name`"
        )
    }
}
