//! GCP: the `gcp:` block (a GKE cluster in a project, principal identifiers or service
//! accounts) and its components: Cloud Storage buckets, Secret Manager ids and service
//! account ids.

use super::{Check, Checked, Owner, Rules, show};
use crate::spec::names::{
    is_gcp_project, is_gcp_secret_id, is_gcs_bucket_name, is_gke_cluster_name, is_gke_location,
    is_service_account_id,
};
use crate::spec::schema::{
    At, RawBucketComponent, RawComponents, RawGcp, RawGcpMode, RawSecretsComponent,
    SERVICE_ACCOUNT_ID_MAX, SERVICE_ACCOUNT_ID_MIN,
};
use crate::spec::{
    Cloud, ComponentKind, Components, GcpAccess, GcpMode, GcpSpace, GkeCluster, Location,
};

/// A GCP space: its block, then its components.
pub(super) fn space(
    check: &mut Check,
    owner: &Owner,
    raw: At<RawGcp>,
    components: At<RawComponents>,
) -> Option<Cloud> {
    // From the raw mode, so that the components follow it even when the block has errors.
    let rules = GcpRules {
        service_account: raw
            .value()
            .mode
            .as_ref()
            .is_some_and(|m| m.value() == "service-account"),
    };
    let block = block(check, &format!("{}.gcp", owner.field), raw);
    let components = check.components(owner, &rules, components);
    Some(Cloud::Gcp(GcpSpace {
        components,
        ..block?
    }))
}

/// The `gcp:` block; `None` when it has errors.
pub(super) fn block(check: &mut Check, field: &str, raw: At<RawGcp>) -> Option<GcpSpace> {
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
    (check.errors.len() == errors_before).then(|| GcpSpace {
        project: raw.project.into_value(),
        cluster: GkeCluster {
            location: cluster.location.into_value(),
            name: cluster.name.into_value(),
        },
        mode,
        location,
        components: Components::default(),
    })
}

struct GcpRules {
    /// `mode: service-account`: a Google service account (named) per component.
    service_account: bool,
}

impl Rules for GcpRules {
    type Access = GcpAccess;

    fn bucket_component(
        &self,
        check: &mut Check,
        field: &str,
        kind: ComponentKind,
        location: Location,
        raw: RawBucketComponent,
    ) -> Checked<GcpAccess> {
        let bucket = check.bucket(
            field,
            location,
            &raw,
            "Cloud Storage",
            is_gcs_bucket_name,
            "expected 3 to 63 lower-case letters, digits, `.`, `_` and `-`, starting and ending \
             with a letter or digit",
        );
        let name = self.service_account_id(check, field, raw.name);
        Checked::new(kind, location, name, bucket.map(GcpAccess::Bucket))
    }

    fn secrets_component(
        &self,
        check: &mut Check,
        field: &str,
        location: Location,
        raw: RawSecretsComponent,
    ) -> Checked<GcpAccess> {
        check.not_here(
            raw.key_vault.as_ref().map(At::location),
            field,
            "keyVault",
            "this space takes `secrets`",
        );
        let access = match raw.secrets {
            // No list: every secret of the project (a project-level binding).
            None => GcpAccess::ProjectSecrets,
            Some(list) => {
                let list_at = list.location();
                let list = list.into_value();
                let mut secrets = Vec::new();
                if list.is_empty() {
                    check.error(
                        list_at,
                        format!("{field}.secrets"),
                        "expected at least one secret id; leave `secrets` out to allow every \
                         secret of the project",
                    );
                }
                for (k, id) in list.into_iter().enumerate() {
                    let at = id.location();
                    let id = id.into_value();
                    if !is_gcp_secret_id(&id) {
                        check.error(
                            at,
                            format!("{field}.secrets[{k}]"),
                            format!(
                                "invalid Secret Manager secret id `{}`: expected 1 to 255 \
                                 letters, digits, `_` and `-` (the id, not the full name)",
                                show(&id)
                            ),
                        );
                    }
                    if secrets.contains(&id) {
                        check.error(
                            at,
                            format!("{field}.secrets[{k}]"),
                            format!("duplicate secret `{}`", show(&id)),
                        );
                    }
                    secrets.push(id);
                }
                GcpAccess::Secrets(secrets)
            }
        };
        let name = self.service_account_id(check, field, raw.name);
        Checked::new(ComponentKind::SharedSecrets, location, name, Some(access))
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

impl GcpRules {
    /// An explicit `name`: the id of the Google service account, in that mode only.
    fn service_account_id(
        &self,
        check: &mut Check,
        component: &str,
        raw: Option<At<String>>,
    ) -> (Option<String>, Option<Location>) {
        let Some(raw) = raw else {
            return (None, None);
        };
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
        (Some(name), Some(at))
    }
}
