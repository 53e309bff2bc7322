//! Reading the spec file: strict YAML into the raw types of `schema.rs`, then every rule
//! checked at once so a user sees all semantic problems in one run.

use std::collections::HashMap;
use std::path::Path;

use serde_saphyr::granit_parser::{ErrorKind, Event, Parser, ScalarStyle};
use serde_saphyr::{DuplicateKeyPolicy, Error as YamlError, ExternalMessageSource};
use sha2::{Digest, Sha256};

use super::schema::{
    At, NAMESPACE_MAX, ROLE_NAME_MAX, RawAws, RawAwsMode, RawAzure, RawBucketComponent,
    RawComponents, RawControlPlanes, RawGcp, RawGcpMode, RawSecretsComponent, RawSpace, RawSpec,
    RawSubjects, SERVICE_ACCOUNT_ID_MAX, SERVICE_ACCOUNT_ID_MIN, SPACE_NAME_MAX,
    TRUST_POLICY_QUOTA_MAX,
};
use super::{
    AwsMode, AwsSpace, AzureSpace, Cloud, Component, ComponentKind, Components, ControlPlane,
    DEFAULT_TRUST_POLICY_QUOTA, Discover, GcpMode, GcpSpace, GkeCluster, Location, Space, Spec,
    SpecError, SpecErrors, Subjects,
};

/// The cloud blocks of a space, exactly one of which must be present. A new cloud adds its
/// key here, an `Option` field on `RawSpace` and an arm in `Check::cloud`.
const CLOUD_KEYS: &[&str] = &["aws", "azure", "gcp"];

/// Which cloud's rules the components of a space follow (names, buckets, secrets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rules {
    Aws,
    Azure,
    /// GCP; `service_account` when the mode creates Google service accounts (named ones).
    Gcp {
        service_account: bool,
    },
}

const EMPTY: &str = "spec is empty: expected a mapping with `version` and `spaces`";

/// Reads and validates the spec at `path`.
pub fn load(path: &Path) -> Result<Spec, SpecErrors> {
    let bytes = std::fs::read(path).map_err(|e| {
        SpecErrors(vec![SpecError {
            path: path.to_path_buf(),
            location: None,
            field: String::new(),
            message: format!("cannot read spec: {e}"),
        }])
    })?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => parse(path, text),
        Err(e) => {
            let prefix = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
            Err(SpecErrors(vec![SpecError {
                path: path.to_path_buf(),
                location: Some(end_of(prefix)),
                field: String::new(),
                message: "spec is not valid UTF-8".to_string(),
            }]))
        }
    }
}

/// Validates spec text read from `path` (which is only used in errors and `Spec::path`).
pub fn parse(path: &Path, text: &str) -> Result<Spec, SpecErrors> {
    let hash = format!("{:x}", Sha256::digest(text.as_bytes()));
    let mut check = Check {
        path,
        errors: Vec::new(),
    };
    // serde-saphyr reports an empty stream as "unexpected end of input" at the last line;
    // say what the file should contain instead, at its start.
    if is_blank(text) {
        check.error(Location { line: 1, column: 1 }, "", EMPTY);
        return Err(SpecErrors(check.errors));
    }
    let options = serde_saphyr::options! {
        strict_booleans: true,
        duplicate_keys: DuplicateKeyPolicy::Error,
        with_snippet: false,
    };
    let raw: RawSpec = serde_saphyr::from_str_with_options(text, options)
        .map_err(|e| SpecErrors(vec![yaml_error(path, text, &e)]))?;
    let (version, spaces) = check.spec(raw);
    if !check.errors.is_empty() {
        return Err(SpecErrors(check.errors));
    }
    Ok(Spec {
        path: path.to_path_buf(),
        version,
        spaces,
        hash,
    })
}

/// Nothing but blank lines, comments, directives and document markers.
fn is_blank(text: &str) -> bool {
    text.trim_start_matches('\u{feff}').lines().all(|line| {
        let line = line.trim();
        let line = line
            .strip_prefix("---")
            .or_else(|| line.strip_prefix("..."))
            .map_or(line, str::trim_start);
        line.is_empty() || line.starts_with('#') || line.starts_with('%')
    })
}

/// The position just after `prefix`.
fn end_of(prefix: &str) -> Location {
    Location {
        line: prefix.matches('\n').count() + 1,
        column: prefix.rsplit('\n').next().unwrap_or("").chars().count() + 1,
    }
}

// ---------------------------------------------------------------------------------------------
// Semantic checks

struct Check<'a> {
    path: &'a Path,
    errors: Vec<SpecError>,
}

impl Check<'_> {
    fn error(&mut self, location: Location, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(SpecError {
            path: self.path.to_path_buf(),
            location: Some(location),
            field: field.into(),
            message: message.into(),
        });
    }

    fn spec(&mut self, raw: RawSpec) -> (u32, Vec<Space>) {
        let version = *raw.version.value();
        if version != 1 {
            self.error(
                raw.version.location(),
                "version",
                format!("unsupported version {version}: expected 1"),
            );
        }
        let spaces_at = raw.spaces.location();
        let raw_spaces = raw.spaces.into_value();
        if raw_spaces.is_empty() {
            self.error(spaces_at, "spaces", "expected at least one space");
        }
        let mut names: HashMap<String, Location> = HashMap::new();
        let mut spaces = Vec::new();
        for (i, raw_space) in raw_spaces.into_iter().enumerate() {
            if let Some(space) = self.space(i, raw_space, &mut names) {
                spaces.push(space);
            }
        }
        (version, spaces)
    }

    fn space(
        &mut self,
        i: usize,
        raw: At<RawSpace>,
        names: &mut HashMap<String, Location>,
    ) -> Option<Space> {
        let field = format!("spaces[{i}]");
        let location = raw.location();
        let raw = raw.into_value();

        let name = raw.name.value().clone();
        let name_at = raw.name.location();
        let name_ok = self.space_name(&format!("{field}.name"), &name, name_at);
        let name_shown = show(&name);
        match names.get(&name) {
            Some(first) => self.error(
                name_at,
                format!("{field}.name"),
                format!(
                    "duplicate space name `{name_shown}` (first at line {})",
                    first.line
                ),
            ),
            None => {
                names.insert(name.clone(), name_at);
            }
        }

        let (control_planes, discover) = self.control_planes(&field, raw.control_planes);
        // Decided from the raw block, so that a component is checked by its cloud's rules
        // even when that block has errors of its own; with none or two, AWS's rules.
        let rules = match (&raw.aws, &raw.azure, &raw.gcp) {
            (None, Some(_), None) => Rules::Azure,
            (None, None, Some(gcp)) => Rules::Gcp {
                service_account: gcp
                    .value()
                    .mode
                    .as_ref()
                    .is_some_and(|m| m.value() == "service-account"),
            },
            _ => Rules::Aws,
        };
        let cloud = self.cloud(&field, location, raw.aws, raw.azure, raw.gcp);
        let components = self.components(&field, &name, name_ok, rules, raw.components);
        Some(Space {
            name,
            location,
            control_planes,
            discover,
            cloud: cloud?,
            components,
        })
    }

    fn space_name(&mut self, field: &str, name: &str, at: Location) -> bool {
        let len = name.chars().count();
        let name_shown = show(name);
        if !is_label(name, usize::MAX) {
            self.error(
                at,
                field,
                format!(
                    "invalid space name `{name_shown}`: expected lower-case letters, digits \
                     and `-`, starting and ending with a letter or digit"
                ),
            );
            false
        } else if len > SPACE_NAME_MAX {
            self.error(
                at,
                field,
                format!("space name is {len} characters: expected at most {SPACE_NAME_MAX}"),
            );
            false
        } else {
            true
        }
    }

    fn control_planes(
        &mut self,
        space: &str,
        raw: At<RawControlPlanes>,
    ) -> (Vec<ControlPlane>, Option<Discover>) {
        let raw = raw.into_value();
        let list = match raw.mapping {
            true => format!("{space}.controlPlanes.list"),
            false => format!("{space}.controlPlanes"),
        };
        let discover = raw.discover.and_then(|d| {
            let location = d.location();
            let d = d.into_value();
            let mut ok = true;
            for (key, value) in [
                ("context", Some(&d.context)),
                ("kubeconfig", d.kubeconfig.as_ref()),
            ] {
                if let Some(v) = value.filter(|v| v.value().trim().is_empty()) {
                    self.error(
                        v.location(),
                        format!("{space}.controlPlanes.discover.{key}"),
                        format!("`{key}` is empty"),
                    );
                    ok = false;
                }
            }
            ok.then(|| Discover {
                context: d.context.into_value(),
                kubeconfig: d.kubeconfig.map(|k| k.into_value().into()),
                location,
            })
        });
        let mut seen: HashMap<String, Location> = HashMap::new();
        let mut out = Vec::new();
        for (j, item) in raw.list.into_iter().enumerate() {
            let field = format!("{list}[{j}]");
            let location = item.location();
            let namespace = item.into_value();
            let len = namespace.chars().count();
            let namespace_shown = show(&namespace);
            if !is_label(&namespace, usize::MAX) {
                self.error(
                    location,
                    field,
                    format!(
                        "invalid namespace `{namespace_shown}`: expected a DNS-1123 label \
                         (lower-case letters, digits and `-`, starting and ending with a letter \
                         or digit)"
                    ),
                );
            } else if len > NAMESPACE_MAX {
                self.error(
                    location,
                    field,
                    format!(
                        "namespace is {len} characters: a DNS-1123 label has at most \
                         {NAMESPACE_MAX}"
                    ),
                );
            } else if let Some(first) = seen.get(&namespace) {
                self.error(
                    location,
                    field,
                    format!(
                        "duplicate control plane `{namespace_shown}` (first at line {})",
                        first.line
                    ),
                );
            } else {
                seen.insert(namespace.clone(), location);
            }
            out.push(ControlPlane {
                namespace,
                location,
            });
        }
        (out, discover)
    }

    fn cloud(
        &mut self,
        space: &str,
        location: Location,
        aws: Option<At<RawAws>>,
        azure: Option<At<RawAzure>>,
        gcp: Option<At<RawGcp>>,
    ) -> Option<Cloud> {
        let mut present: Vec<&str> = Vec::new();
        let mut clouds: Vec<Option<Cloud>> = Vec::new();
        if let Some(aws) = aws {
            present.push("aws");
            clouds.push(self.aws(&format!("{space}.aws"), aws).map(Cloud::Aws));
        }
        if let Some(azure) = azure {
            present.push("azure");
            clouds.push(
                self.azure(&format!("{space}.azure"), azure)
                    .map(Cloud::Azure),
            );
        }
        if let Some(gcp) = gcp {
            present.push("gcp");
            clouds.push(self.gcp(&format!("{space}.gcp"), gcp).map(Cloud::Gcp));
        }
        let expected = CLOUD_KEYS
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        match present.len() {
            0 => {
                self.error(
                    location,
                    space,
                    format!("expected exactly one of {expected}"),
                );
                None
            }
            1 => clouds.pop().flatten(),
            _ => {
                self.error(
                    location,
                    space,
                    format!(
                        "expected exactly one of {expected}, found `{}`",
                        present.join("` and `")
                    ),
                );
                None
            }
        }
    }

    fn aws(&mut self, field: &str, raw: At<RawAws>) -> Option<AwsSpace> {
        let location = raw.location();
        let raw = raw.into_value();
        let errors_before = self.errors.len();

        let region = raw.region.value();
        let region_shown = show(region);
        if !is_region(region) {
            self.error(
                raw.region.location(),
                format!("{field}.region"),
                format!(
                    "invalid region `{region_shown}`: expected an AWS region such as `us-east-1`"
                ),
            );
        }
        let cluster = raw.cluster.value();
        let cluster_shown = show(cluster);
        if !is_cluster_name(cluster) {
            self.error(
                raw.cluster.location(),
                format!("{field}.cluster"),
                format!(
                    "invalid EKS cluster name `{cluster_shown}`: expected 1 to 100 letters, \
                     digits, `-` and `_`, starting with a letter or digit"
                ),
            );
        }
        let mode = match self.keyword(field, "mode", raw.mode.as_ref(), &RawAwsMode::KEYWORDS) {
            None | Some(RawAwsMode::Irsa) => AwsMode::Irsa,
            Some(RawAwsMode::PodIdentity) => AwsMode::PodIdentity,
        };
        let subjects = match self.keyword(
            field,
            "subjects",
            raw.subjects.as_ref(),
            &RawSubjects::KEYWORDS,
        ) {
            None | Some(RawSubjects::Exact) => Subjects::Exact,
            Some(RawSubjects::Wildcard) => Subjects::Wildcard,
        };
        if let (AwsMode::PodIdentity, Subjects::Wildcard, Some(at)) =
            (mode, subjects, raw.subjects.as_ref())
        {
            self.error(
                at.location(),
                format!("{field}.subjects"),
                "pod identity has no wildcards: remove `subjects` or use mode irsa",
            );
        }
        let trust_policy_quota = match &raw.trust_policy_quota {
            None => DEFAULT_TRUST_POLICY_QUOTA,
            Some(q) => match usize::try_from(*q.value()) {
                Ok(n) if (1..=TRUST_POLICY_QUOTA_MAX).contains(&n) => n,
                _ => {
                    self.error(
                        q.location(),
                        format!("{field}.trustPolicyQuota"),
                        format!(
                            "expected a number of characters from 1 to {TRUST_POLICY_QUOTA_MAX} \
                             (IAM's largest trust policy quota), found {}",
                            q.value()
                        ),
                    );
                    DEFAULT_TRUST_POLICY_QUOTA
                }
            },
        };
        (self.errors.len() == errors_before).then(|| AwsSpace {
            region: raw.region.into_value(),
            cluster: raw.cluster.into_value(),
            mode,
            subjects,
            trust_policy_quota,
            location,
        })
    }

    fn azure(&mut self, field: &str, raw: At<RawAzure>) -> Option<AzureSpace> {
        let location = raw.location();
        let raw = raw.into_value();
        let errors_before = self.errors.len();
        // (value, key, rule, what is expected)
        type Rule<'a> = (&'a At<String>, &'a str, fn(&str) -> bool, &'a str);
        let checks: [Rule; 4] = [
            (
                &raw.subscription,
                "subscription",
                is_guid,
                "expected a subscription id (a GUID such as \
                 `00000000-0000-0000-0000-000000000000`)",
            ),
            (
                &raw.resource_group,
                "resourceGroup",
                is_resource_group,
                "expected a resource group name: 1 to 90 letters, digits, `-`, `_`, `.`, `(` \
                 and `)`, not ending with `.`",
            ),
            (
                &raw.location,
                "location",
                is_azure_location,
                "expected an Azure region such as `eastus` (lower-case letters and digits)",
            ),
            (
                &raw.cluster,
                "cluster",
                is_aks_name,
                "expected an AKS cluster name: 1 to 63 letters, digits, `-` and `_`, starting \
                 with a letter or digit",
            ),
        ];
        for (value, key, ok, expected) in checks {
            if !ok(value.value()) {
                let shown = show(value.value());
                self.error(
                    value.location(),
                    format!("{field}.{key}"),
                    format!("invalid {key} `{shown}`: {expected}"),
                );
            }
        }
        (self.errors.len() == errors_before).then(|| AzureSpace {
            subscription: raw.subscription.into_value().to_ascii_lowercase(),
            resource_group: raw.resource_group.into_value(),
            region: raw.location.into_value(),
            cluster: raw.cluster.into_value(),
            location,
        })
    }

    fn gcp(&mut self, field: &str, raw: At<RawGcp>) -> Option<GcpSpace> {
        let location = raw.location();
        let raw = raw.into_value();
        let errors_before = self.errors.len();
        let project = raw.project.value();
        if !is_gcp_project(project) {
            self.error(
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
            self.error(
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
            self.error(
                cluster.name.location(),
                format!("{field}.cluster.name"),
                format!(
                    "invalid GKE cluster name `{}`: expected 1 to 40 lower-case letters, digits \
                     and `-`, starting with a letter and not ending with `-`",
                    show(name)
                ),
            );
        }
        let mode = match self.keyword(field, "mode", raw.mode.as_ref(), &RawGcpMode::KEYWORDS) {
            None | Some(RawGcpMode::Principal) => GcpMode::Principal,
            Some(RawGcpMode::ServiceAccount) => GcpMode::ServiceAccount,
        };
        (self.errors.len() == errors_before).then(|| GcpSpace {
            project: raw.project.into_value(),
            cluster: GkeCluster {
                location: cluster.location.into_value(),
                name: cluster.name.into_value(),
            },
            mode,
            location,
        })
    }

    /// A key of the other cloud in a component: say which key this cloud takes instead.
    fn not_here(&mut self, at: Option<Location>, field: &str, key: &str, instead: &str) {
        if let Some(at) = at {
            self.error(
                at,
                format!("{field}.{key}"),
                format!("`{key}` does not apply to this space's cloud: {instead}"),
            );
        }
    }

    /// One of a fixed list of words; `None` when absent or unknown (unknown is an error).
    fn keyword<T: Copy>(
        &mut self,
        parent: &str,
        key: &str,
        raw: Option<&At<String>>,
        keywords: &[(&str, T)],
    ) -> Option<T> {
        let raw = raw?;
        let word = raw.value();
        let found = keywords.iter().find(|(k, _)| k == word).map(|(_, v)| *v);
        let word_shown = show(word);
        if found.is_none() {
            let names: Vec<String> = keywords.iter().map(|(k, _)| format!("`{k}`")).collect();
            self.error(
                raw.location(),
                format!("{parent}.{key}"),
                format!(
                    "unknown value `{word_shown}`: expected one of {}",
                    names.join(", ")
                ),
            );
        }
        found
    }

    fn components(
        &mut self,
        space: &str,
        space_name: &str,
        space_name_ok: bool,
        rules: Rules,
        raw: At<RawComponents>,
    ) -> Components {
        let location = raw.location();
        let raw = raw.into_value();
        let field = format!("{space}.components");
        if raw.backup.is_none() && raw.billing.is_none() && raw.shared_secrets.is_none() {
            let keys = ComponentKind::ALL.map(|k| format!("`{}`", k.spec_key()));
            self.error(
                location,
                &field,
                format!("expected at least one of {}", keys.join(", ")),
            );
        }
        let backup = raw
            .backup
            .map(|c| self.bucket_component(&field, ComponentKind::Backup, rules, c));
        let billing = raw
            .billing
            .map(|c| self.bucket_component(&field, ComponentKind::Billing, rules, c));
        let shared_secrets = raw
            .shared_secrets
            .map(|c| self.secrets_component(&field, rules, c));
        // Principal identifiers create nothing that has a name.
        if rules
            == (Rules::Gcp {
                service_account: false,
            })
        {
            return Components {
                backup: backup.map(|(c, _)| c),
                billing: billing.map(|(c, _)| c),
                shared_secrets: shared_secrets.map(|(c, _)| c),
            };
        }

        // IAM role names are per account: two components of a space must not share one.
        let mut roles: HashMap<String, ComponentKind> = HashMap::new();
        for (component, name_at) in [&backup, &billing, &shared_secrets].into_iter().flatten() {
            let key = component.kind.spec_key();
            let role = match &component.name {
                Some(name) => name.clone(),
                None => {
                    let role = default_role_name(space_name, component.kind);
                    let len = role.chars().count();
                    let role_shown = show(&role);
                    // An invalid space name is reported already; its default names would only
                    // repeat it.
                    // (Managed identity names may have 128: a default one always fits.)
                    if space_name_ok
                        && matches!(rules, Rules::Gcp { .. })
                        && !(SERVICE_ACCOUNT_ID_MIN..=SERVICE_ACCOUNT_ID_MAX).contains(&len)
                    {
                        self.error(
                            component.location,
                            format!("{field}.{key}"),
                            format!(
                                "the default service account id `{role_shown}` is {len} \
                                 characters, but Google allows {SERVICE_ACCOUNT_ID_MIN} to \
                                 {SERVICE_ACCOUNT_ID_MAX}: set an explicit `name`"
                            ),
                        );
                    } else if space_name_ok && rules == Rules::Aws && len > ROLE_NAME_MAX {
                        self.error(
                            component.location,
                            format!("{field}.{key}"),
                            format!(
                                "the default role name `{role_shown}` is {len} characters, more \
                                 than IAM's {ROLE_NAME_MAX}: set an explicit `name`"
                            ),
                        );
                    }
                    role
                }
            };
            let role_shown = show(&role);
            match roles.get(&role) {
                Some(other) => {
                    let (at, f) = match name_at {
                        Some(at) => (*at, format!("{field}.{key}.name")),
                        None => (component.location, format!("{field}.{key}")),
                    };
                    self.error(
                        at,
                        f,
                        match rules {
                            Rules::Aws => format!(
                                "role name `{role_shown}` is already the role of `{other}`: set \
                                 a different `name`"
                            ),
                            Rules::Azure => format!(
                                "managed identity name `{role_shown}` is already the identity of \
                                 `{other}`: set a different `name`"
                            ),
                            Rules::Gcp { .. } => format!(
                                "service account id `{role_shown}` is already the one of \
                                 `{other}`: set a different `name`"
                            ),
                        },
                    );
                }
                None => {
                    roles.insert(role, component.kind);
                }
            }
        }
        Components {
            backup: backup.map(|(c, _)| c),
            billing: billing.map(|(c, _)| c),
            shared_secrets: shared_secrets.map(|(c, _)| c),
        }
    }

    /// `backup` or `billing`; also returns where its explicit `name` is.
    fn bucket_component(
        &mut self,
        components: &str,
        kind: ComponentKind,
        rules: Rules,
        raw: At<RawBucketComponent>,
    ) -> (Component, Option<Location>) {
        let field = format!("{components}.{}", kind.spec_key());
        let location = raw.location();
        let raw = raw.into_value();
        if rules == Rules::Azure {
            return self.storage_component(&field, kind, location, raw);
        }
        let at = |v: &Option<At<String>>| v.as_ref().map(At::location);
        self.not_here(
            at(&raw.storage_account),
            &field,
            "storageAccount",
            "this space takes `bucket`",
        );
        self.not_here(
            at(&raw.container),
            &field,
            "container",
            "this space takes `bucket`",
        );
        let bucket = match raw.bucket {
            None => {
                let what = match rules {
                    Rules::Gcp { .. } => "Cloud Storage",
                    // Azure components returned above: they take a storage account.
                    Rules::Aws | Rules::Azure => "S3",
                };
                self.error(
                    location,
                    &field,
                    format!("missing required key `bucket` (the name of the {what} bucket)"),
                );
                None
            }
            Some(bucket) => {
                let at = bucket.location();
                let bucket = bucket.into_value();
                let bucket_shown = show(&bucket);
                if rules != Rules::Aws && !is_gcs_bucket_name(&bucket) {
                    self.error(
                        at,
                        format!("{field}.bucket"),
                        format!(
                            "invalid Cloud Storage bucket name `{bucket_shown}`: expected 3 to \
                             63 lower-case letters, digits, `.`, `_` and `-`, starting and \
                             ending with a letter or digit"
                        ),
                    );
                } else if rules == Rules::Aws && !is_bucket_name(&bucket) {
                    self.error(
                        at,
                        format!("{field}.bucket"),
                        format!(
                            "invalid S3 bucket name `{bucket_shown}`: expected 3 to 63 lower-case \
                             letters, digits, `.` and `-`, starting and ending with a letter or \
                             digit"
                        ),
                    );
                }
                Some(bucket)
            }
        };
        let (name, name_at) = self.role_name(&field, rules, raw.name);
        let component = Component {
            kind,
            name,
            bucket,
            secrets: Vec::new(),
            storage_account: None,
            container: None,
            key_vault: None,
            location,
        };
        (component, name_at)
    }

    /// `backup` or `billing` of an Azure space: a storage account, and billing's container.
    fn storage_component(
        &mut self,
        field: &str,
        kind: ComponentKind,
        location: Location,
        raw: RawBucketComponent,
    ) -> (Component, Option<Location>) {
        self.not_here(
            raw.bucket.as_ref().map(At::location),
            field,
            "bucket",
            "an Azure space takes `storageAccount`",
        );
        let storage_account = match raw.storage_account {
            None => {
                self.error(
                    location,
                    field,
                    "missing required key `storageAccount` (the name or resource id of the \
                     storage account)",
                );
                None
            }
            Some(v) => {
                let at = v.location();
                let v = v.into_value();
                if !is_azure_resource(&v, "Microsoft.Storage/storageAccounts", is_storage_name) {
                    let shown = show(&v);
                    self.error(
                        at,
                        format!("{field}.storageAccount"),
                        format!(
                            "invalid storage account `{shown}`: expected 3 to 24 lower-case \
                             letters and digits, or a full resource id \
                             `/subscriptions/<id>/resourceGroups/<rg>/providers/\
                             Microsoft.Storage/storageAccounts/<name>`"
                        ),
                    );
                }
                Some(v)
            }
        };
        let container = match (kind, raw.container) {
            (ComponentKind::Billing, None) => {
                self.error(
                    location,
                    field,
                    "missing required key `container` (the blob container billing writes to)",
                );
                None
            }
            (ComponentKind::Billing, Some(v)) => {
                let at = v.location();
                let v = v.into_value();
                if !is_container_name(&v) {
                    let shown = show(&v);
                    self.error(
                        at,
                        format!("{field}.container"),
                        format!(
                            "invalid container `{shown}`: expected 3 to 63 lower-case letters, \
                             digits and `-`, starting and ending with a letter or digit"
                        ),
                    );
                }
                Some(v)
            }
            (_, Some(v)) => {
                self.error(
                    v.location(),
                    format!("{field}.container"),
                    "`container` is for `billing` only",
                );
                None
            }
            (_, None) => None,
        };
        let (name, name_at) = self.identity_name(field, raw.name);
        let component = Component {
            kind,
            name,
            bucket: None,
            secrets: Vec::new(),
            storage_account,
            container,
            key_vault: None,
            location,
        };
        (component, name_at)
    }

    fn secrets_component(
        &mut self,
        components: &str,
        rules: Rules,
        raw: At<RawSecretsComponent>,
    ) -> (Component, Option<Location>) {
        let kind = ComponentKind::SharedSecrets;
        let field = format!("{components}.{}", kind.spec_key());
        let location = raw.location();
        let raw = raw.into_value();
        if rules == Rules::Azure {
            return self.vault_component(&field, location, raw);
        }
        self.not_here(
            raw.key_vault.as_ref().map(At::location),
            &field,
            "keyVault",
            "this space takes `secrets`",
        );
        let mut secrets = Vec::new();
        match raw.secrets {
            // GCP: no list means every secret of the project (a project-level binding).
            None if rules != Rules::Aws => {}
            Some(list) if rules != Rules::Aws => {
                let list_at = list.location();
                let list = list.into_value();
                if list.is_empty() {
                    self.error(
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
                        self.error(
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
                        self.error(
                            at,
                            format!("{field}.secrets[{k}]"),
                            format!("duplicate secret `{}`", show(&id)),
                        );
                    }
                    secrets.push(id);
                }
            }
            None => self.error(
                location,
                &field,
                "missing required key `secrets` (the ARNs of the secrets it may read)",
            ),
            Some(list) => {
                let list_at = list.location();
                let list = list.into_value();
                if list.is_empty() {
                    self.error(
                        list_at,
                        format!("{field}.secrets"),
                        "expected at least one secret ARN",
                    );
                }
                for (k, arn) in list.into_iter().enumerate() {
                    let at = arn.location();
                    let arn = arn.into_value();
                    let arn_shown = show(&arn);
                    if !arn.starts_with("arn:") {
                        self.error(
                            at,
                            format!("{field}.secrets[{k}]"),
                            format!(
                                "expected a secret ARN starting with `arn:`, found `{arn_shown}`"
                            ),
                        );
                    }
                    secrets.push(arn);
                }
            }
        }
        let (name, name_at) = self.role_name(&field, rules, raw.name);
        let component = Component {
            kind,
            name,
            bucket: None,
            secrets,
            storage_account: None,
            container: None,
            key_vault: None,
            location,
        };
        (component, name_at)
    }

    /// `sharedSecrets` of an Azure space: a key vault.
    fn vault_component(
        &mut self,
        field: &str,
        location: Location,
        raw: RawSecretsComponent,
    ) -> (Component, Option<Location>) {
        self.not_here(
            raw.secrets.as_ref().map(At::location),
            field,
            "secrets",
            "an Azure space takes `keyVault`",
        );
        let key_vault = match raw.key_vault {
            None => {
                self.error(
                    location,
                    field,
                    "missing required key `keyVault` (the name or resource id of the key vault)",
                );
                None
            }
            Some(v) => {
                let at = v.location();
                let v = v.into_value();
                if !is_azure_resource(&v, "Microsoft.KeyVault/vaults", is_vault_name) {
                    let shown = show(&v);
                    self.error(
                        at,
                        format!("{field}.keyVault"),
                        format!(
                            "invalid key vault `{shown}`: expected 3 to 24 letters, digits and \
                             `-`, starting with a letter, or a full resource id \
                             `/subscriptions/<id>/resourceGroups/<rg>/providers/\
                             Microsoft.KeyVault/vaults/<name>`"
                        ),
                    );
                }
                Some(v)
            }
        };
        let (name, name_at) = self.identity_name(field, raw.name);
        let component = Component {
            kind: ComponentKind::SharedSecrets,
            name,
            bucket: None,
            secrets: Vec::new(),
            storage_account: None,
            container: None,
            key_vault,
            location,
        };
        (component, name_at)
    }

    fn identity_name(
        &mut self,
        component: &str,
        raw: Option<At<String>>,
    ) -> (Option<String>, Option<Location>) {
        let Some(raw) = raw else {
            return (None, None);
        };
        let at = raw.location();
        let name = raw.into_value();
        if !is_identity_name(&name) {
            let shown = show(&name);
            self.error(
                at,
                format!("{component}.name"),
                format!(
                    "invalid managed identity name `{shown}`: expected 3 to 128 letters, digits, \
                     `-` and `_`, starting with a letter or digit"
                ),
            );
        }
        (Some(name), Some(at))
    }

    fn role_name(
        &mut self,
        component: &str,
        rules: Rules,
        raw: Option<At<String>>,
    ) -> (Option<String>, Option<Location>) {
        let Some(raw) = raw else {
            return (None, None);
        };
        let at = raw.location();
        let name = raw.into_value();
        let len = name.chars().count();
        let name_shown = show(&name);
        if let Rules::Gcp { service_account } = rules {
            if !service_account {
                self.error(
                    at,
                    format!("{component}.name"),
                    "`name` is the id of a Google service account, which only `mode: \
                     service-account` creates: remove it, or set that mode",
                );
            } else if !is_service_account_id(&name) {
                self.error(
                    at,
                    format!("{component}.name"),
                    format!(
                        "invalid service account id `{name_shown}`: expected \
                         {SERVICE_ACCOUNT_ID_MIN} to {SERVICE_ACCOUNT_ID_MAX} lower-case letters, \
                         digits and `-`, starting with a letter and not ending with `-`"
                    ),
                );
            }
            return (Some(name), Some(at));
        }
        if !is_role_name(&name, usize::MAX) {
            self.error(
                at,
                format!("{component}.name"),
                format!(
                    "invalid IAM role name `{name_shown}`: expected letters, digits and `+=,.@_-`"
                ),
            );
        } else if len > ROLE_NAME_MAX {
            self.error(
                at,
                format!("{component}.name"),
                format!("IAM role name is {len} characters: expected at most {ROLE_NAME_MAX}"),
            );
        }
        (Some(name), Some(at))
    }
}

/// `spaces-<space>-<component>`: the name of a component's resources when not set.
fn default_role_name(space: &str, kind: ComponentKind) -> String {
    format!("spaces-{space}-{}", kind.kebab())
}

// ---------------------------------------------------------------------------------------------
// Name rules, by hand; each mirrors a pattern in `schema.rs` (tests keep them in step).

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$` of at most `max` characters (DNS-1123 label, space name).
fn is_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// `^[a-z]{2}(-[a-z]+)+-\d+$`
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let lower = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    parts.len() >= 3
        && parts[0].len() == 2
        && lower(&parts[0])
        && parts[1..parts.len() - 1].iter().all(lower)
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$`
fn is_cluster_name(s: &str) -> bool {
    s.len() <= 100
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `^[a-z0-9][a-z0-9.-]*[a-z0-9]$`, 3 to 63 characters.
fn is_bucket_name(s: &str) -> bool {
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (3..=63).contains(&s.len())
        && s.bytes().all(|b| edge(b) || b == b'.' || b == b'-')
        && s.bytes().next().is_some_and(edge)
        && s.bytes().last().is_some_and(edge)
}

/// `^[a-z0-9][a-z0-9._-]*[a-z0-9]$`, 3 to 63 characters (Cloud Storage).
fn is_gcs_bucket_name(s: &str) -> bool {
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (3..=63).contains(&s.len())
        && s.bytes().all(|b| edge(b) || b"._-".contains(&b))
        && s.bytes().next().is_some_and(edge)
        && s.bytes().last().is_some_and(edge)
}

/// `^[a-z][a-z0-9-]{4,28}[a-z0-9]$`
fn is_gcp_project(s: &str) -> bool {
    (6..=30).contains(&s.len())
        && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.ends_with('-')
}

/// `^[a-z]+-[a-z]+\d+(-[a-z])?$`: `us-central1`, `europe-west4-b`.
fn is_gke_location(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let letters = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    let region = |p: &str| {
        let digits = p.trim_start_matches(|c: char| c.is_ascii_lowercase());
        letters(&p[..p.len() - digits.len()])
            && !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
    };
    match parts.as_slice() {
        [a, b] => letters(a) && region(b),
        [a, b, z] => letters(a) && region(b) && z.len() == 1 && letters(z),
        _ => false,
    }
}

/// `^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$`
fn is_gke_cluster_name(s: &str) -> bool {
    (1..=40).contains(&s.len())
        && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.ends_with('-')
}

/// `^[a-z]([-a-z0-9]*[a-z0-9])$`, 6 to 30 characters.
fn is_service_account_id(s: &str) -> bool {
    (SERVICE_ACCOUNT_ID_MIN..=SERVICE_ACCOUNT_ID_MAX).contains(&s.len()) && is_gke_cluster_name(s)
}

/// `^[A-Za-z0-9_-]{1,255}$`
fn is_gcp_secret_id(s: &str) -> bool {
    (1..=255).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `^[\w+=,.@-]{1,64}$` (with `max` = 64).
fn is_role_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

/// A subscription id: `8-4-4-4-12` hex digits.
fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `^[-\w.()]{0,89}[-\w()]$`
fn is_resource_group(s: &str) -> bool {
    (1..=90).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.()".contains(&b))
        && !s.ends_with('.')
}

/// `^[a-z][a-z0-9]*$`
fn is_azure_location(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// `^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$`
fn is_aks_name(s: &str) -> bool {
    s.len() <= 63
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$`: a user-assigned managed identity name.
fn is_identity_name(s: &str) -> bool {
    (3..=128).contains(&s.len())
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `^[a-z0-9]{3,24}$`
fn is_storage_name(s: &str) -> bool {
    (3..=24).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// `^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$`
fn is_vault_name(s: &str) -> bool {
    (3..=24).contains(&s.len())
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `^[a-z0-9]([a-z0-9-]{1,61})[a-z0-9]$`
fn is_container_name(s: &str) -> bool {
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (3..=63).contains(&s.len())
        && s.bytes().all(|b| edge(b) || b == b'-')
        && s.bytes().next().is_some_and(edge)
        && s.bytes().last().is_some_and(edge)
}

/// A bare name, or `/subscriptions/<id>/resourceGroups/<rg>/providers/<type>/<name>`.
fn is_azure_resource(s: &str, kind: &str, name_ok: fn(&str) -> bool) -> bool {
    if !s.starts_with('/') {
        return name_ok(s);
    }
    let parts: Vec<&str> = s.split('/').collect();
    let types: Vec<&str> = kind.split('/').collect();
    parts.len() == 9
        && parts[0].is_empty()
        && parts[1].eq_ignore_ascii_case("subscriptions")
        && is_guid(parts[2])
        && parts[3].eq_ignore_ascii_case("resourceGroups")
        && is_resource_group(parts[4])
        && parts[5].eq_ignore_ascii_case("providers")
        && parts[6].eq_ignore_ascii_case(types[0])
        && parts[7].eq_ignore_ascii_case(types[1])
        && name_ok(parts[8])
}

// ---------------------------------------------------------------------------------------------
// Errors from the YAML deserializer

/// One located error for a failed deserialization. serde-saphyr gives a position but not the
/// field, so the field is found by re-reading the text's node positions (`node_paths`).
fn yaml_error(path: &Path, text: &str, err: &YamlError) -> SpecError {
    let mut location = err
        .location()
        .filter(|l| l.line() > 0)
        .map(|l| Location {
            line: usize::try_from(l.line()).unwrap_or(usize::MAX),
            column: usize::try_from(l.column()).unwrap_or(usize::MAX).max(1),
        })
        .unwrap_or(Location { line: 1, column: 1 });
    let (nodes, open_at_syntax_error) = node_paths(text);
    let inner = innermost(err);
    let about_key = matches!(
        inner,
        YamlError::SerdeUnknownField { .. }
            | YamlError::DuplicateMappingKey { .. }
            | YamlError::SerdeMissingField { .. }
    );
    let mut node = find_node(&nodes, location, about_key);
    // A value deserialized by hand (`controlPlanes`) is reported at its key: point at the value.
    let at_key = !about_key && node.is_some_and(|n| n.is_key);
    if at_key
        && let Some(key) = node
        && let Some(value) = nodes.iter().find(|n| !n.is_key && n.path == key.path)
    {
        location = value.location();
        node = Some(value);
    }
    if let YamlError::SerdeMissingField { .. } = inner {
        // Reported at the mapping's last key; the mapping itself is what lacks the key.
        if let Some(key) = node.filter(|n| n.is_key) {
            node = key.parent.and_then(|p| nodes.get(p));
            if let Some(map) = node {
                location = map.location();
            }
        }
    }
    if let YamlError::MultipleDocuments { .. } = inner {
        // Reported at the second document's content; point at its `---`.
        let lines: Vec<&str> = text.lines().take(location.line).collect();
        if let Some(marker) = lines.iter().rposition(|l| l.starts_with("---")) {
            location = Location {
                line: marker + 1,
                column: 1,
            };
        }
    }
    let tab = is_tab_error(inner)
        .then(|| indenting_tab_after(text, location))
        .flatten();
    if let Some(tab) = tab {
        location = tab;
    }
    let field = match (inner, open_at_syntax_error) {
        // A syntax error: the collection being read is a better guess than the last node.
        (YamlError::ExternalMessage { .. }, Some(open)) => open,
        _ => node.map(|n| n.path.clone()).unwrap_or_default(),
    };
    // What is at the error position, for "expected X, found Y".
    let found = node
        .filter(|n| n.location() == location && !n.is_key)
        .map(|n| n.found.clone());
    let message = match tab {
        Some(_) => "invalid YAML: a tab in indentation (YAML indents with spaces)".to_string(),
        None => describe(inner, err, &field, found.as_deref()),
    };
    SpecError {
        path: path.to_path_buf(),
        location: Some(location),
        field,
        message,
    }
}

fn is_tab_error(err: &YamlError) -> bool {
    match err {
        YamlError::ExternalMessage { source, .. } => matches!(
            source.as_ref(),
            ExternalMessageSource::Parser(e) if *e.kind() == ErrorKind::TabInPlainScalar
        ),
        _ => false,
    }
}

/// The parser reports a tab-indented line at the start of the scalar before it; the tab
/// itself is what the user must fix.
fn indenting_tab_after(text: &str, at: Location) -> Option<Location> {
    text.lines()
        .enumerate()
        .skip(at.line)
        .find_map(|(i, line)| {
            let indent: String = line
                .chars()
                .take_while(|c| *c == ' ' || *c == '\t')
                .collect();
            indent.find('\t').map(|col| Location {
                line: i + 1,
                column: col + 1,
            })
        })
}

/// The error itself, without snippet or alias wrappers.
fn innermost(err: &YamlError) -> &YamlError {
    match err {
        YamlError::WithSnippet { error, .. } | YamlError::AliasError { error, .. } => {
            innermost(error)
        }
        other => other,
    }
}

/// A one-line message: what was expected (and found, where known).
fn describe(inner: &YamlError, outer: &YamlError, field: &str, found: Option<&str>) -> String {
    let with_found = |expected: String| match found {
        Some(found) => format!("{expected}, found {found}"),
        None => expected,
    };
    let quoted = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match inner {
        YamlError::Unexpected { expected, .. } => {
            let what = match *expected {
                "mapping start" if field.is_empty() => {
                    "a mapping with `version` and `spaces`".to_string()
                }
                "mapping start" => "a mapping".to_string(),
                "sequence start" => "a list".to_string(),
                "string scalar" => "a string".to_string(),
                other => other.to_string(),
            };
            with_found(format!("expected {what}"))
        }
        YamlError::InvalidScalar { ty, .. } => {
            let what = match *ty {
                "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer",
                "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer",
                "bool" => "`true` or `false`",
                other => other,
            };
            with_found(format!("expected {what}"))
        }
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => match found {
            Some(found) => format!("expected {expected}, found {found}"),
            None => format!("expected {expected}, found {unexpected}"),
        },
        YamlError::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => format!("expected {expected}, found {unexpected}"),
        YamlError::NullIntoString { .. } => "expected a string, found nothing".to_string(),
        YamlError::InvalidBooleanStrict { .. } => {
            with_found("expected `true` or `false`".to_string())
        }
        YamlError::SerdeUnknownVariant {
            variant, expected, ..
        } => format!(
            "unknown value `{}`: expected one of {}",
            show(variant),
            quoted(expected)
        ),
        YamlError::SerdeUnknownField {
            field: key,
            expected,
            ..
        } => {
            format!(
                "unknown key `{}`: expected one of {}",
                show(key),
                quoted(expected)
            )
        }
        YamlError::SerdeMissingField { field: key, .. } => {
            format!("missing required key `{key}`")
        }
        YamlError::DuplicateMappingKey { key, .. } => match key {
            Some(key) => format!("duplicate key `{}`", show(key)),
            None => "duplicate key".to_string(),
        },
        YamlError::MultipleDocuments { .. } => {
            "expected a single YAML document, found another `---`".to_string()
        }
        YamlError::Eof { .. } => "unexpected end of file".to_string(),
        YamlError::UnknownAnchor { .. } => "alias of an unknown anchor".to_string(),
        YamlError::ExternalMessage { .. } => format!("invalid YAML: {}", plain(outer)),
        _ => plain(outer),
    }
}

/// serde-saphyr's own text without its " at line L, column C" suffix (the location is ours).
fn plain(err: &YamlError) -> String {
    let text = err.without_snippet().to_string();
    let text = text.lines().next().unwrap_or_default();
    match text.rfind(" at line ") {
        Some(i) if text[i..].contains(", column ") => text[..i].to_string(),
        _ => text.to_string(),
    }
}

/// A YAML node's start and its field path.
#[derive(Debug)]
struct Node {
    line: usize,
    column: usize,
    path: String,
    depth: usize,
    /// The enclosing mapping or list (an index into the node list).
    parent: Option<usize>,
    /// A mapping key (its path is the path of its value).
    is_key: bool,
    /// Description for "found ...": the scalar or the kind of collection.
    found: String,
}

impl Node {
    fn location(&self) -> Location {
        Location {
            line: self.line,
            column: self.column,
        }
    }
}

/// An open collection while walking the events; `node` is its index in the node list.
enum Frame {
    Seq {
        node: usize,
        path: String,
        next: usize,
    },
    /// `key` is the current key, set when a key node starts; `in_value` after it ends.
    Map {
        node: usize,
        path: String,
        key: String,
        in_value: bool,
    },
}

/// Every node of `text` up to its first syntax error, in document order; and, if there is a
/// syntax error, the path of what was being read there.
fn node_paths(text: &str) -> (Vec<Node>, Option<String>) {
    enum Kind {
        Leaf,
        Map,
        Seq,
    }
    let mut nodes = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else {
            let open = match stack.last() {
                None => String::new(),
                Some(Frame::Seq { path, .. }) => path.clone(),
                Some(Frame::Map {
                    path,
                    key,
                    in_value: true,
                    ..
                }) => join(path, key),
                Some(Frame::Map { path, .. }) => path.clone(),
            };
            return (nodes, Some(open));
        };
        let (kind, found, scalar) = match &event {
            Event::Scalar(value, style, ..) => {
                (Kind::Leaf, describe_scalar(value, *style), Some(value))
            }
            Event::Alias(..) => (Kind::Leaf, "an alias".to_string(), None),
            Event::MappingStart(..) => (Kind::Map, "a mapping".to_string(), None),
            Event::SequenceStart(..) => (Kind::Seq, "a list".to_string(), None),
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                node_done(&mut stack);
                continue;
            }
            _ => continue,
        };
        let depth = stack.len();
        let (parent, path, is_key) = match stack.last_mut() {
            None => (None, String::new(), false),
            Some(Frame::Seq { node, path, next }) => {
                *next += 1;
                (Some(*node), format!("{path}[{}]", *next - 1), false)
            }
            Some(Frame::Map {
                node,
                path,
                key,
                in_value,
            }) => {
                if !*in_value {
                    // A complex key (a list or mapping as key) has no useful name.
                    *key = scalar.map_or_else(|| "?".to_string(), |s| s.to_string());
                }
                (Some(*node), join(path, key), !*in_value)
            }
        };
        let node = nodes.len();
        nodes.push(Node {
            line: span.start.line(),
            column: span.start.col() + 1,
            path: path.clone(),
            depth,
            parent,
            is_key,
            found,
        });
        match kind {
            Kind::Leaf => node_done(&mut stack),
            Kind::Map => stack.push(Frame::Map {
                node,
                path,
                key: String::new(),
                in_value: false,
            }),
            Kind::Seq => stack.push(Frame::Seq {
                node,
                path,
                next: 0,
            }),
        }
    }
    (nodes, None)
}

/// A node under the top frame ended: in a mapping, a key is followed by its value.
fn node_done(stack: &mut [Frame]) {
    if let Some(Frame::Map { in_value, .. }) = stack.last_mut() {
        *in_value = !*in_value;
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn describe_scalar(value: &str, style: ScalarStyle) -> String {
    // An empty value comes from the parser as `~`; YAML 1.2 core schema nulls.
    let null = ["", "~", "null", "Null", "NULL"].contains(&value);
    if null && style == ScalarStyle::Plain {
        return "nothing".to_string();
    }
    format!("`{}`", show(value))
}

/// A value from the file as shown in a one-line message: control characters escaped, long
/// values cut.
fn show(value: &str) -> String {
    const MAX: usize = 100;
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The node an error at `at` is about: a key there (for key errors), else the outermost
/// node starting there (a missing key is reported where its mapping starts), else the last
/// node starting before it (syntax errors fall between nodes).
fn find_node(nodes: &[Node], at: Location, about_key: bool) -> Option<&Node> {
    let pos = (at.line, at.column);
    let here = || nodes.iter().filter(move |n| (n.line, n.column) == pos);
    let key = about_key
        .then(|| here().filter(|n| n.is_key).max_by_key(|n| n.depth))
        .flatten();
    key.or_else(|| here().filter(|n| !n.is_key).min_by_key(|n| n.depth))
        .or_else(|| nodes.iter().rev().find(|n| (n.line, n.column) <= pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "\
version: 1
spaces:
  - name: prod
    controlPlanes:
      - mxp-706c49fa-5bb8-4a7e-9f41-2fc38ef4b065-system
      - ctp-b
    aws:
      region: us-east-1
      cluster: spaces-prod
      mode: irsa
      subjects: wildcard
      trustPolicyQuota: 4096
    components:
      backup:        { bucket: acme-spaces-backup, name: prod-backup }
      billing:       { bucket: acme-spaces-billing }
      sharedSecrets: { secrets: [\"arn:aws:secretsmanager:us-east-1:123456789012:secret:spaces/*\"] }
  - name: dev
    controlPlanes: []
    aws:
      region: eu-central-1
      cluster: spaces-dev
      mode: pod-identity
    components:
      billing:
        bucket: acme-dev-billing
";

    fn ok(text: &str) -> Spec {
        match parse(Path::new("idplan.yaml"), text) {
            Ok(spec) => spec,
            Err(e) => panic!("expected a valid spec, got:\n{e}"),
        }
    }

    fn errs(text: &str) -> Vec<SpecError> {
        match parse(Path::new("idplan.yaml"), text) {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(e) => e.0,
        }
    }

    /// `VALID` with one line replaced (1-based).
    fn with_line(n: usize, line: &str) -> String {
        VALID
            .lines()
            .enumerate()
            .map(|(i, l)| if i + 1 == n { line } else { l })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    }

    /// The one error's `line:column field`, and its message.
    fn one(text: &str) -> (String, String) {
        let e = errs(text);
        assert_eq!(
            e.len(),
            1,
            "expected one error, got:\n{}",
            SpecErrors(e.clone())
        );
        let loc = e[0].location.expect("location");
        (
            format!("{}:{} {}", loc.line, loc.column, e[0].field),
            e[0].message.clone(),
        )
    }

    #[test]
    fn valid_spec_loads() {
        let spec = ok(VALID);
        assert_eq!(spec.version, 1);
        assert_eq!(spec.path, Path::new("idplan.yaml"));
        assert_eq!(spec.hash, format!("{:x}", Sha256::digest(VALID.as_bytes())));
        assert_eq!(spec.hash.len(), 64);
        assert_eq!(spec.spaces.len(), 2);

        let prod = &spec.spaces[0];
        assert_eq!(prod.name, "prod");
        assert_eq!(prod.location, Location { line: 3, column: 5 });
        assert_eq!(prod.control_planes.len(), 2);
        assert_eq!(prod.control_planes[1].namespace, "ctp-b");
        assert_eq!(
            prod.control_planes[1].location,
            Location { line: 6, column: 9 }
        );
        let Cloud::Aws(aws) = &prod.cloud else {
            panic!("an AWS space")
        };
        assert_eq!(aws.region, "us-east-1");
        assert_eq!(aws.cluster, "spaces-prod");
        assert_eq!(aws.mode, AwsMode::Irsa);
        assert_eq!(aws.subjects, Subjects::Wildcard);
        assert_eq!(aws.trust_policy_quota, 4096);
        assert_eq!(aws.location, Location { line: 8, column: 7 });
        let backup = prod.components.backup.as_ref().unwrap();
        assert_eq!(backup.kind, ComponentKind::Backup);
        assert_eq!(backup.name.as_deref(), Some("prod-backup"));
        assert_eq!(backup.bucket.as_deref(), Some("acme-spaces-backup"));
        assert_eq!(
            backup.location,
            Location {
                line: 14,
                column: 22
            }
        );
        let shared = prod.components.shared_secrets.as_ref().unwrap();
        assert_eq!(shared.secrets.len(), 1);
        assert!(shared.bucket.is_none() && shared.name.is_none());
        assert_eq!(prod.components.iter().count(), 3);

        let dev = &spec.spaces[1];
        let Cloud::Aws(aws) = &dev.cloud else {
            panic!("an AWS space")
        };
        assert_eq!(aws.mode, AwsMode::PodIdentity);
        assert_eq!(aws.subjects, Subjects::Exact);
        assert_eq!(aws.trust_policy_quota, DEFAULT_TRUST_POLICY_QUOTA);
        assert!(dev.control_planes.is_empty());
        let kinds: Vec<_> = dev.components.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, [ComponentKind::Billing]);
        assert_eq!(
            dev.components.billing.as_ref().unwrap().location,
            Location {
                line: 25,
                column: 9
            }
        );
    }

    #[test]
    fn yes_is_a_string_where_a_string_is_expected() {
        let spec = ok(&with_line(3, "  - name: yes"));
        assert_eq!(spec.spaces[0].name, "yes");
        let spec = ok(&with_line(9, "      cluster: on"));
        let Cloud::Aws(aws) = &spec.spaces[0].cloud else {
            panic!("an AWS space")
        };
        assert_eq!(aws.cluster, "on");
    }

    #[test]
    fn empty_and_comment_only_files() {
        for text in [
            "",
            "\n\n",
            "# nothing here\n  # still nothing\n",
            "---\n",
            "%YAML 1.2\n---\n...\n",
        ] {
            assert_eq!(
                one(text),
                ("1:1 ".to_string(), EMPTY.to_string()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn not_a_mapping() {
        let (at, msg) = one("- 1\n");
        assert_eq!(at, "1:1 ");
        assert_eq!(
            msg,
            "expected a mapping with `version` and `spaces`, found a list"
        );
    }

    #[test]
    fn version() {
        assert_eq!(
            one(&with_line(1, "version: 2")),
            (
                "1:10 version".into(),
                "unsupported version 2: expected 1".into()
            )
        );
        let (at, msg) = one(&with_line(1, "version: \"one\""));
        assert_eq!(at, "1:10 version");
        assert_eq!(msg, "expected a non-negative integer, found `one`");
    }

    #[test]
    fn spaces_must_not_be_empty() {
        assert_eq!(
            one("version: 1\nspaces: []\n"),
            ("2:9 spaces".into(), "expected at least one space".into())
        );
    }

    #[test]
    fn unknown_keys() {
        let (at, msg) = one(&format!("{VALID}extra: 1\n"));
        assert_eq!(at, "26:1 extra");
        assert!(msg.starts_with("unknown key `extra`: expected one of `version`, `spaces`"));
        let (at, msg) = one(&with_line(10, "      zone: a"));
        assert_eq!(at, "10:7 spaces[0].aws.zone");
        assert!(msg.contains("`region`, `cluster`, `mode`"), "{msg}");
        let (at, msg) = one(&with_line(7, "    oci:"));
        assert_eq!(at, "7:5 spaces[0].oci");
        assert!(
            msg.ends_with(
                "expected one of `name`, `controlPlanes`, `aws`, `azure`, `gcp`, `components`"
            ),
            "{msg}"
        );
        // `secrets` belongs to sharedSecrets only, `bucket` to backup and billing only.
        let (at, _) = one(&with_line(
            15,
            "      billing:       { bucket: b-b-b, secrets: [] }",
        ));
        assert_eq!(at, "15:39 spaces[0].components.billing.secrets");
        let (at, _) = one(&with_line(
            16,
            "      sharedSecrets: { secrets: [\"arn:x\"], bucket: b-b-b }",
        ));
        assert_eq!(at, "16:44 spaces[0].components.sharedSecrets.bucket");
    }

    #[test]
    fn duplicate_keys() {
        let text = VALID.replace("      mode: irsa\n", "      mode: irsa\n      mode: irsa\n");
        let (at, msg) = one(&text);
        assert_eq!(at, "11:7 spaces[0].aws.mode");
        assert_eq!(msg, "duplicate key `mode`");
        let (at, _) = one(&with_line(
            15,
            "      billing:       { bucket: a-b-c, bucket: a-b-c }",
        ));
        assert_eq!(at, "15:39 spaces[0].components.billing.bucket");
    }

    #[test]
    fn keywords_are_strict() {
        let (at, msg) = one(&with_line(10, "      mode: yes"));
        assert_eq!(at, "10:13 spaces[0].aws.mode");
        assert_eq!(
            msg,
            "unknown value `yes`: expected one of `irsa`, `pod-identity`"
        );
        let (at, _) = one(&with_line(10, "      mode: Irsa"));
        assert_eq!(at, "10:13 spaces[0].aws.mode");
        // The externally tagged enum spelling is not a keyword.
        let (at, msg) = one(&with_line(10, "      mode: {irsa: }"));
        assert_eq!(at, "10:13 spaces[0].aws.mode");
        assert!(msg.starts_with("expected a string"), "{msg}");
        let (at, _) = one(&with_line(11, "      subjects: true"));
        assert_eq!(at, "11:17 spaces[0].aws.subjects");
    }

    #[test]
    fn wrong_types() {
        let text = VALID.replace(
            "    controlPlanes:\n      - mxp-706c49fa-5bb8-4a7e-9f41-2fc38ef4b065-system\n      - ctp-b\n",
            "    controlPlanes: 5\n",
        );
        let (at, msg) = one(&text);
        assert_eq!(at, "4:20 spaces[0].controlPlanes");
        assert_eq!(
            msg,
            "expected a list of namespaces or a mapping with `discover` and `list`, found `5`"
        );
        let (at, msg) = one(&with_line(3, "  - name: [a]"));
        assert_eq!(at, "3:11 spaces[0].name");
        assert_eq!(msg, "expected a string, found a list");
        let (at, msg) = one(&with_line(3, "  - name:"));
        assert_eq!(at, "3:9 spaces[0].name");
        assert_eq!(msg, "expected a string, found nothing");
        let (at, msg) = one(&with_line(12, "      trustPolicyQuota: many"));
        assert_eq!(at, "12:25 spaces[0].aws.trustPolicyQuota");
        assert_eq!(msg, "expected an integer, found `many`");
        let (at, _) = one("version: 1\nspaces: {a: 1}\n");
        assert_eq!(at, "2:9 spaces");
        let (at, msg) = one("version: 1\nspaces:\n");
        assert_eq!(at, "2:7 spaces");
        assert_eq!(msg, "expected a list, found nothing");
    }

    #[test]
    fn missing_keys() {
        let text = VALID.replace("      cluster: spaces-prod\n", "");
        let (at, msg) = one(&text);
        assert_eq!(at, "8:7 spaces[0].aws");
        assert_eq!(msg, "missing required key `cluster`");
        let (at, msg) = one("version: 1\n");
        assert_eq!(at, "1:1 ");
        assert_eq!(msg, "missing required key `spaces`");
    }

    #[test]
    fn syntax_errors_are_located() {
        let (at, msg) = one(&with_line(4, "\tcontrolPlanes:"));
        assert_eq!(at, "4:1 spaces[0].name");
        assert_eq!(
            msg,
            "invalid YAML: a tab in indentation (YAML indents with spaces)"
        );
        let (at, msg) = one(&with_line(4, "     controlPlanes:"));
        assert_eq!(at, "4:19 spaces[0]");
        assert!(msg.starts_with("invalid YAML: "), "{msg}");
        let e = errs("version: 1\nspaces:\n  - name: 'a\n");
        assert_eq!(
            e[0].location,
            Some(Location {
                line: 3,
                column: 11
            })
        );
        assert_eq!(e[0].field, "spaces[0].name");
    }

    #[test]
    fn multiple_documents() {
        let (at, msg) = one(&format!("{VALID}---\nversion: 1\n"));
        assert_eq!(at, "26:1 ");
        assert!(msg.starts_with("expected a single YAML document"), "{msg}");
    }

    #[test]
    fn space_names() {
        let (at, msg) = one(&with_line(3, "  - name: Prod"));
        assert_eq!(at, "3:11 spaces[0].name");
        assert!(
            msg.starts_with("invalid space name `Prod`: expected lower-case"),
            "{msg}"
        );
        let long = "a".repeat(41);
        let (at, msg) = one(&with_line(3, &format!("  - name: {long}")));
        assert_eq!(at, "3:11 spaces[0].name");
        assert_eq!(msg, "space name is 41 characters: expected at most 40");
        ok(&with_line(3, &format!("  - name: {}", "a".repeat(40))));
        let (at, msg) = one(&with_line(17, "  - name: prod"));
        assert_eq!(at, "17:11 spaces[1].name");
        assert_eq!(msg, "duplicate space name `prod` (first at line 3)");
    }

    #[test]
    fn namespaces() {
        for bad in ["Mxp-a-system", "mxp_a_system", "-mxp", "mxp-", "\"\""] {
            let (at, msg) = one(&with_line(6, &format!("      - {bad}")));
            assert_eq!(at, "6:9 spaces[0].controlPlanes[1]", "{bad}");
            assert!(msg.starts_with("invalid namespace"), "{msg}");
        }
        let (at, msg) = one(&with_line(6, &format!("      - {}", "a".repeat(64))));
        assert_eq!(at, "6:9 spaces[0].controlPlanes[1]");
        assert_eq!(
            msg,
            "namespace is 64 characters: a DNS-1123 label has at most 63"
        );
        ok(&with_line(6, &format!("      - {}", "a".repeat(63))));
        let (at, msg) = one(&with_line(
            6,
            "      - mxp-706c49fa-5bb8-4a7e-9f41-2fc38ef4b065-system",
        ));
        assert_eq!(at, "6:9 spaces[0].controlPlanes[1]");
        assert_eq!(
            msg,
            "duplicate control plane `mxp-706c49fa-5bb8-4a7e-9f41-2fc38ef4b065-system` (first at line 5)"
        );
    }

    #[test]
    fn cloud_block_is_required() {
        let text = VALID.replace(
            "    aws:\n      region: eu-central-1\n      cluster: spaces-dev\n      mode: pod-identity\n",
            "",
        );
        assert_eq!(
            one(&text),
            (
                "17:5 spaces[1]".into(),
                "expected exactly one of `aws`, `azure`, `gcp`".into()
            )
        );
    }

    #[test]
    fn aws_fields() {
        for bad in [
            "us-east",
            "US-EAST-1",
            "useast-1",
            "u-east-1",
            "us--1",
            "us-east-1a",
            "us-east-",
        ] {
            let (at, msg) = one(&with_line(8, &format!("      region: {bad}")));
            assert_eq!(at, "8:15 spaces[0].aws.region", "{bad}");
            assert!(msg.starts_with(&format!("invalid region `{bad}`")), "{msg}");
        }
        for good in ["us-east-1", "us-gov-west-1", "ap-southeast-22"] {
            ok(&with_line(8, &format!("      region: {good}")));
        }
        for bad in ["-x", "_x", "a b", &"a".repeat(101)] {
            let (at, _) = one(&with_line(9, &format!("      cluster: \"{bad}\"")));
            assert_eq!(at, "9:16 spaces[0].aws.cluster", "{bad}");
        }
        ok(&with_line(
            9,
            &format!("      cluster: A{}", "_-9".repeat(33)),
        ));
        for bad in ["0", "-1", "8193"] {
            let (at, msg) = one(&with_line(12, &format!("      trustPolicyQuota: {bad}")));
            assert_eq!(at, "12:25 spaces[0].aws.trustPolicyQuota");
            assert!(msg.ends_with(&format!("found {bad}")), "{msg}");
        }
        let spec = ok(&with_line(12, "      trustPolicyQuota: 8192"));
        let Cloud::Aws(aws) = &spec.spaces[0].cloud else {
            panic!("an AWS space")
        };
        assert_eq!(aws.trust_policy_quota, 8192);
    }

    #[test]
    fn pod_identity_has_no_wildcards() {
        let (at, msg) = one(&with_line(10, "      mode: pod-identity"));
        assert_eq!(at, "11:17 spaces[0].aws.subjects");
        assert_eq!(
            msg,
            "pod identity has no wildcards: remove `subjects` or use mode irsa"
        );
        let spec =
            ok(&with_line(11, "      subjects: exact").replace("mode: irsa", "mode: pod-identity"));
        let Cloud::Aws(aws) = &spec.spaces[0].cloud else {
            panic!("an AWS space")
        };
        assert_eq!(
            (aws.mode, aws.subjects),
            (AwsMode::PodIdentity, Subjects::Exact)
        );
    }

    #[test]
    fn components() {
        let (at, msg) = one(&with_line(15, "      billing:       { name: x }"));
        assert_eq!(at, "15:22 spaces[0].components.billing");
        assert_eq!(
            msg,
            "missing required key `bucket` (the name of the S3 bucket)"
        );
        let (at, _) = one(&with_line(15, "      billing:       { bucket: Acme }"));
        assert_eq!(at, "15:32 spaces[0].components.billing.bucket");
        for bad in ["ab", "-abc", "abc-", "a_bc", &"a".repeat(64)] {
            let (at, _) = one(&with_line(
                15,
                &format!("      billing:       {{ bucket: \"{bad}\" }}"),
            ));
            assert_eq!(at, "15:32 spaces[0].components.billing.bucket", "{bad}");
        }
        ok(&with_line(
            15,
            &format!("      billing:       {{ bucket: {} }}", "a.b-c".repeat(12)),
        ));
        let (at, msg) = one(&with_line(16, "      sharedSecrets: { name: x }"));
        assert_eq!(at, "16:22 spaces[0].components.sharedSecrets");
        assert!(msg.starts_with("missing required key `secrets`"));
        let (at, msg) = one(&with_line(16, "      sharedSecrets: { secrets: [] }"));
        assert_eq!(at, "16:33 spaces[0].components.sharedSecrets.secrets");
        assert_eq!(msg, "expected at least one secret ARN");
        let (at, msg) = one(&with_line(
            16,
            "      sharedSecrets: { secrets: [\"arn:ok\", spaces/*] }",
        ));
        assert_eq!(at, "16:44 spaces[0].components.sharedSecrets.secrets[1]");
        assert_eq!(
            msg,
            "expected a secret ARN starting with `arn:`, found `spaces/*`"
        );
        let text = VALID.replace(
            "      billing:\n        bucket: acme-dev-billing\n",
            "      {}\n",
        );
        let text = text.replace("    components:\n      {}\n", "    components: {}\n");
        let (at, msg) = one(&text);
        assert_eq!(at, "23:17 spaces[1].components");
        assert_eq!(
            msg,
            "expected at least one of `backup`, `billing`, `sharedSecrets`"
        );
    }

    #[test]
    fn role_names() {
        let name = |n: &str| {
            with_line(
                14,
                &format!("      backup:        {{ bucket: acme-spaces-backup, name: \"{n}\" }}"),
            )
        };
        ok(&name(&"a".repeat(64)));
        ok(&name("Role_+=,.@-9"));
        let (at, msg) = one(&name(&"a".repeat(65)));
        assert_eq!(at, "14:58 spaces[0].components.backup.name");
        assert_eq!(msg, "IAM role name is 65 characters: expected at most 64");
        let (at, msg) = one(&name("a/b"));
        assert_eq!(at, "14:58 spaces[0].components.backup.name");
        assert!(msg.starts_with("invalid IAM role name `a/b`"));
        // An explicit name equal to another component's default name.
        let (at, msg) = one(&name("spaces-prod-billing"));
        assert_eq!(at, "15:22 spaces[0].components.billing");
        assert_eq!(
            msg,
            "role name `spaces-prod-billing` is already the role of `backup`: set a different `name`"
        );
        let text = with_line(
            15,
            "      billing:       { bucket: acme-spaces-billing, name: prod-backup }",
        );
        let (at, _) = one(&text);
        assert_eq!(at, "15:59 spaces[0].components.billing.name");
    }

    #[test]
    fn default_role_names() {
        assert_eq!(
            default_role_name("prod", ComponentKind::SharedSecrets),
            "spaces-prod-shared-secrets"
        );
        // The longest valid space name still fits IAM's limit.
        let longest = "a".repeat(SPACE_NAME_MAX);
        assert!(default_role_name(&longest, ComponentKind::SharedSecrets).len() <= ROLE_NAME_MAX);
    }

    #[test]
    fn errors_are_collected() {
        let text = VALID
            .replace("name: prod", "name: Prod")
            .replace("region: us-east-1", "region: mars")
            .replace("- ctp-b", "- CTP")
            .replace("bucket: acme-dev-billing", "bucket: x");
        let e = errs(&text);
        let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spaces[0].name",
                "spaces[0].controlPlanes[1]",
                "spaces[0].aws.region",
                "spaces[1].components.billing.bucket",
            ]
        );
        let shown = SpecErrors(e).to_string();
        assert!(
            shown.starts_with("idplan.yaml:3:11: spaces[0].name: invalid space name"),
            "{shown}"
        );
        assert_eq!(shown.lines().count(), 4);
    }

    #[test]
    fn aliases_are_followed() {
        let text = "\
version: 1
spaces:
  - name: a
    controlPlanes: &cps [x, y]
    aws: &aws {region: us-east-1, cluster: c}
    components: {billing: {bucket: abc}}
  - name: b
    controlPlanes: *cps
    aws: *aws
    components: {billing: {bucket: abc}}
";
        let spec = ok(text);
        assert_eq!(spec.spaces[1].control_planes.len(), 2);
        let text = text.replace("[x, y]", "[x, Y]");
        // One bad value, reported at its use in each space.
        let e = errs(&text);
        let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["spaces[0].controlPlanes[1]", "spaces[1].controlPlanes[1]"]
        );
    }

    #[test]
    fn load_reads_files() {
        let dir = std::env::temp_dir().join(format!("idplan-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("idplan.yaml");
        std::fs::write(&file, VALID).unwrap();
        let spec = load(&file).unwrap();
        assert_eq!(spec.path, file);
        assert_eq!(spec.hash, format!("{:x}", Sha256::digest(VALID.as_bytes())));

        let missing = dir.join("missing.yaml");
        let e = load(&missing).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].location, None);
        assert!(
            e.0[0].message.starts_with("cannot read spec: "),
            "{}",
            e.0[0].message
        );
        assert_eq!(
            e.to_string(),
            format!("{}: {}", missing.display(), e.0[0].message)
        );

        std::fs::write(&file, b"version: 1\nspaces: [\xff]\n").unwrap();
        let e = load(&file).unwrap_err();
        assert_eq!(
            e.0[0].location,
            Some(Location {
                line: 2,
                column: 10
            })
        );
        assert_eq!(e.0[0].message, "spec is not valid UTF-8");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn name_rules() {
        assert!(is_label("a", 63) && is_label("a-0", 63) && is_label(&"a".repeat(63), 63));
        assert!(!is_label("", 63) && !is_label(&"a".repeat(64), 63) && !is_label("a.b", 63));
        assert!(is_role_name("a", 64) && !is_role_name("", 64) && !is_role_name("é", 64));
        assert!(is_bucket_name("a.b") && !is_bucket_name("a.") && !is_bucket_name("A-b"));
        assert!(is_cluster_name("a") && !is_cluster_name("") && !is_cluster_name("a.b"));
        assert!(
            is_gcs_bucket_name("a_b.c") && !is_gcs_bucket_name("_ab") && !is_gcs_bucket_name("AB1")
        );
        assert!(
            is_gcp_project("acme-spaces") && !is_gcp_project("12345678") && !is_gcp_project("abc")
        );
        assert!(is_gcp_project(&"a".repeat(30)) && !is_gcp_project(&"a".repeat(31)));
        for ok in ["us-central1", "europe-west4-b", "asia-northeast1-a"] {
            assert!(is_gke_location(ok), "{ok}");
        }
        for bad in [
            "us-central",
            "us-central1-ab",
            "uscentral1",
            "us-central1-",
            "US-central1",
        ] {
            assert!(!is_gke_location(bad), "{bad}");
        }
        assert!(
            is_gke_cluster_name("a") && !is_gke_cluster_name("a-") && !is_gke_cluster_name("1a")
        );
        assert!(is_service_account_id("spaces-prod-backup") && !is_service_account_id("short"));
        assert!(!is_service_account_id(&"a".repeat(31)) && is_service_account_id(&"a".repeat(30)));
        assert!(is_gcp_secret_id("A_b-1") && !is_gcp_secret_id("a/b") && !is_gcp_secret_id(""));
    }

    #[test]
    fn field_paths_of_nodes() {
        let (nodes, broken) = node_paths("a:\n  - b: 1\n    c: [x, {d: e}]\n? [k]\n: v\n");
        assert_eq!(broken, None);
        let paths: Vec<(&str, bool)> = nodes.iter().map(|n| (n.path.as_str(), n.is_key)).collect();
        assert_eq!(
            paths,
            [
                ("", false),
                ("a", true),
                ("a", false),
                ("a[0]", false),
                ("a[0].b", true),
                ("a[0].b", false),
                ("a[0].c", true),
                ("a[0].c", false),
                ("a[0].c[0]", false),
                ("a[0].c[1]", false),
                ("a[0].c[1].d", true),
                ("a[0].c[1].d", false),
                ("?", true),
                ("?[0]", false),
                ("?", false),
            ]
        );
    }
}
