//! The spec file as written: the serde types `load` deserializes, and the JSON Schema
//! generated from those same types (so the schema cannot drift from the loader).
//!
//! Doc comments on these types are user-facing: they become the schema's descriptions.
//! The loader (`check/`) checks every rule again; the schema is for editors and CI.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::Location;

/// The JSON Schema (draft 2020-12) of the spec file.
pub fn json_schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let schema = generator.into_root_schema_for::<RawSpec>();
    schema.to_value()
}

/// Patterns of the schema. `names.rs` checks each by hand (no regex engine in the
/// dependencies): a change here needs the same change there.
pub(super) const SPACE_NAME_PATTERN: &str = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$";
pub(super) const NAMESPACE_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
pub(super) const REGION_PATTERN: &str = r"^[a-z]{2}(-[a-z]+)+-\d+$";
pub(super) const CLUSTER_PATTERN: &str = r"^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$";
pub(super) const BUCKET_PATTERN: &str = "^[a-z0-9][a-z0-9._-]*[a-z0-9]$";
pub(super) const GCP_PROJECT_PATTERN: &str = "^[a-z][a-z0-9-]{4,28}[a-z0-9]$";
pub(super) const GKE_LOCATION_PATTERN: &str = r"^[a-z]+-[a-z]+\d+(-[a-z])?$";
pub(super) const GKE_CLUSTER_PATTERN: &str = "^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$";
pub(super) const SERVICE_ACCOUNT_ID_MIN: usize = 6;
pub(super) const SERVICE_ACCOUNT_ID_MAX: usize = 30;
/// An IAM role name (AWS, at most 64), a managed identity name (Azure, 3 to 128 letters,
/// digits, `-` and `_`) or a service account id (GCP, 6 to 30): `load` checks the cloud's own
/// rule.
pub(super) const NAME_PATTERN: &str = r"^[\w+=,.@-]{1,128}$";
pub(super) const SUBSCRIPTION_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
pub(super) const RESOURCE_GROUP_PATTERN: &str = r"^[-\w.()]{0,89}[-\w()]$";
pub(super) const AZURE_LOCATION_PATTERN: &str = "^[a-z][a-z0-9]*$";
pub(super) const AKS_NAME_PATTERN: &str = r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$";
/// A bare storage account name, or the full resource id of one anywhere.
pub(super) const STORAGE_ACCOUNT_PATTERN: &str = "^([a-z0-9]{3,24}|/subscriptions/.+/providers/Microsoft.Storage/storageAccounts/[a-z0-9]{3,24})$";
pub(super) const CONTAINER_PATTERN: &str = "^[a-z0-9]([a-z0-9-]{1,61})[a-z0-9]$";
/// A bare key vault name, or the full resource id of one anywhere.
pub(super) const KEY_VAULT_PATTERN: &str = "^([a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]|/subscriptions/.+/providers/Microsoft.KeyVault/vaults/[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9])$";

pub(super) const SPACE_NAME_MAX: usize = 40;
pub(super) const NAMESPACE_MAX: usize = 63;
pub(super) const ROLE_NAME_MAX: usize = 64;
pub(super) const TRUST_POLICY_QUOTA_MAX: usize = 8192;

/// A value with the position of its YAML node. A newtype over `Spanned` so the schema shows
/// the plain value (`Spanned` has no `JsonSchema`).
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub(super) struct At<T>(pub Spanned<T>);

impl<T> At<T> {
    pub fn value_mut(&mut self) -> &mut T {
        &mut self.0.value
    }

    pub fn value(&self) -> &T {
        &self.0.value
    }

    pub fn into_value(self) -> T {
        self.0.value
    }

    /// Where the value is used (for an alias: the alias, not the anchor), 1-based.
    pub fn location(&self) -> Location {
        let at = self.0.referenced;
        Location {
            line: usize::try_from(at.line()).unwrap_or(usize::MAX).max(1),
            column: usize::try_from(at.column()).unwrap_or(usize::MAX).max(1),
        }
    }
}

impl<T: JsonSchema> JsonSchema for At<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// An idplan spec: the cloud identities of the components of one or more Upbound Spaces.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "IdplanSpec")]
pub(super) struct RawSpec {
    /// Version of the spec format; must be 1.
    #[schemars(range(min = 1, max = 1))]
    pub version: At<u32>,
    /// The Spaces to manage; at least one.
    #[schemars(length(min = 1))]
    pub spaces: At<Vec<At<RawSpace>>>,
    /// Where the state is kept: a local path (the default `state/idplan.state.json`) or
    /// `s3://BUCKET/KEY`, `gs://BUCKET/OBJECT`, `azblob://ACCOUNT/CONTAINER/BLOB`, shared by
    /// a team with a lock. `--state` and `IDPLAN_STATE` override it.
    #[serde(default)]
    pub state: Option<At<String>>,
}

/// One Space: its control planes, its cloud and the components whose identities idplan
/// manages. Exactly one cloud block (`aws`, `azure` or `gcp`) must be present.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(
    rename = "Space",
    extend("oneOf" = [{ "required": ["aws"] }, { "required": ["azure"] }, { "required": ["gcp"] }])
)]
pub(super) struct RawSpace {
    /// Name of the Space, used in default resource names (`spaces-<name>-<component>`):
    /// lower-case letters, digits and `-`, at most 40 characters, unique in the file.
    #[schemars(regex(pattern = SPACE_NAME_PATTERN), length(min = 1, max = SPACE_NAME_MAX))]
    pub name: At<String>,
    /// Host namespaces of the Space's control planes (`mxp-<controlPlaneID>-system`), each a
    /// DNS-1123 label, no duplicates, may be empty; or a mapping that discovers them from the
    /// Space's cluster (`discover`), with an optional static `list` beside.
    pub control_planes: At<RawControlPlanes>,
    /// The Space runs on EKS: AWS IAM roles (IRSA or EKS Pod Identity).
    // Other clouds are siblings of this field: add the field, its key in `check::CLOUD_KEYS`
    // and the schema's `oneOf` above. `with` + `default`: optional, but not null, in the schema
    // (`aws: ~` counts as no cloud).
    #[serde(default)]
    #[schemars(with = "RawAws")]
    pub aws: Option<At<RawAws>>,
    /// The Space runs on AKS: user-assigned managed identities with federated credentials.
    #[serde(default)]
    #[schemars(with = "RawAzure")]
    pub azure: Option<At<RawAzure>>,
    /// The Space runs on GKE: Google IAM bindings (principal identifiers or service accounts).
    #[serde(default)]
    #[schemars(with = "RawGcp")]
    pub gcp: Option<At<RawGcp>>,
    /// The components whose identities idplan manages; at least one. A component left out is
    /// not managed.
    pub components: At<RawComponents>,
}

/// `controlPlanes` as written: a list of host namespaces, or a mapping with `discover` and
/// `list`. Deserialized by hand because an untagged enum would lose the positions.
#[derive(Debug)]
pub(super) struct RawControlPlanes {
    /// The mapping form (field paths then go through `list`).
    pub mapping: bool,
    pub discover: Option<At<RawDiscover>>,
    pub list: Vec<At<String>>,
}

/// `controlPlanes` as a mapping: discovery, and host namespaces listed beside it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "ControlPlaneSources")]
pub(super) struct RawControlPlaneSources {
    /// Discover the control planes from the Space's cluster: every
    /// `controlplanes.spaces.upbound.io` in all namespaces.
    #[serde(default)]
    #[schemars(with = "RawDiscover")]
    pub discover: Option<At<RawDiscover>>,
    /// Host namespaces listed by hand, as in the list form; joined with the discovered ones.
    #[serde(default)]
    #[schemars(inner(regex(pattern = NAMESPACE_PATTERN), length(min = 1, max = NAMESPACE_MAX)))]
    pub list: Vec<At<String>>,
}

/// Where the Space's cluster is: a kubeconfig context, or the cluster idplan runs in.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Discover")]
pub(super) struct RawDiscover {
    /// The kubeconfig context of the Space's cluster; left out, the cluster idplan runs in
    /// (its pod's service account).
    #[schemars(length(min = 1))]
    pub context: Option<At<String>>,
    /// The kubeconfig file; default `KUBECONFIG`, else `~/.kube/config`.
    #[schemars(length(min = 1))]
    pub kubeconfig: Option<At<String>>,
}

impl<'de> Deserialize<'de> for RawControlPlanes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawControlPlanes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of namespaces or a mapping with `discover` and `list`")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                let list = Vec::<At<String>>::deserialize(
                    serde::de::value::SeqAccessDeserializer::new(seq),
                )?;
                Ok(RawControlPlanes {
                    mapping: false,
                    discover: None,
                    list,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                let raw = RawControlPlaneSources::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                Ok(RawControlPlanes {
                    mapping: true,
                    discover: raw.discover,
                    list: raw.list,
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl JsonSchema for RawControlPlanes {
    fn schema_name() -> Cow<'static, str> {
        "ControlPlanes".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let sources = generator.subschema_for::<RawControlPlaneSources>();
        schemars::json_schema!({
            "description": "Host namespaces, or a mapping that discovers them.",
            "oneOf": [
                {
                    "type": "array",
                    "items": {
                        "type": "string",
                        "pattern": NAMESPACE_PATTERN,
                        "minLength": 1,
                        "maxLength": NAMESPACE_MAX,
                    },
                },
                sources,
            ],
        })
    }
}

/// The EKS cluster of an AWS Space and how its components get their IAM roles.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Aws")]
pub(super) struct RawAws {
    /// AWS region of the EKS cluster, e.g. `us-east-1`.
    #[schemars(regex(pattern = REGION_PATTERN))]
    pub region: At<String>,
    /// Name of the EKS cluster the Space runs on.
    #[schemars(regex(pattern = CLUSTER_PATTERN))]
    pub cluster: At<String>,
    /// How pods assume their role: `irsa` (IAM OIDC provider, service account annotations) or
    /// `pod-identity` (EKS Pod Identity associations). Default `irsa`.
    // A string for serde, checked by `load`: errors then point at the value and are collected
    // with the others (and `{irsa: }`, serde's tagged enum spelling, is not accepted).
    #[schemars(with = "Option<RawAwsMode>", extend("default" = "irsa"))]
    pub mode: Option<At<String>>,
    /// Trust policy subjects (`irsa` only): `exact` lists every control plane's service
    /// account, `wildcard` matches `mxp-*-system`. Default `exact`.
    #[schemars(with = "Option<RawSubjects>", extend("default" = "exact"))]
    pub subjects: Option<At<String>>,
    /// Maximum size of an IAM role trust policy in characters (whitespace not counted), if
    /// the account's quota was raised. Default 2048; at most 8192.
    #[schemars(range(min = 1, max = TRUST_POLICY_QUOTA_MAX))]
    pub trust_policy_quota: Option<At<i64>>,
}

/// The AKS cluster of an Azure Space and where the managed identities are created.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Azure")]
pub(super) struct RawAzure {
    /// Subscription id (a GUID) of the identities and the AKS cluster.
    #[schemars(regex(pattern = SUBSCRIPTION_PATTERN))]
    pub subscription: At<String>,
    /// Resource group of the identities and the AKS cluster.
    #[schemars(regex(pattern = RESOURCE_GROUP_PATTERN))]
    pub resource_group: At<String>,
    /// Azure region of the managed identities, e.g. `eastus`.
    #[schemars(regex(pattern = AZURE_LOCATION_PATTERN))]
    pub location: At<String>,
    /// Name of the AKS cluster the Space runs on (its OIDC issuer is trusted).
    #[schemars(regex(pattern = AKS_NAME_PATTERN))]
    pub cluster: At<String>,
}

/// The GKE cluster of a GCP Space and how its components get Google credentials.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Gcp")]
pub(super) struct RawGcp {
    /// Project id (6–30 characters) of the cluster, the service accounts and project-level
    /// bindings.
    #[schemars(regex(pattern = GCP_PROJECT_PATTERN))]
    pub project: At<String>,
    /// The GKE cluster the Space runs on; it must have Workload Identity Federation enabled.
    pub cluster: At<RawGkeCluster>,
    /// `principal` (IAM bindings for each control plane's principal identifier, no annotation)
    /// or `service-account` (a Google service account per component, impersonated through
    /// `roles/iam.workloadIdentityUser`). Default `principal`.
    #[schemars(with = "Option<RawGcpMode>", extend("default" = "principal"))]
    pub mode: Option<At<String>>,
}

/// A GKE cluster: where it is and its name.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "GkeCluster")]
pub(super) struct RawGkeCluster {
    /// Region or zone of the cluster, e.g. `us-central1` or `us-central1-a`.
    #[schemars(regex(pattern = GKE_LOCATION_PATTERN))]
    pub location: At<String>,
    /// Name of the cluster.
    #[schemars(regex(pattern = GKE_CLUSTER_PATTERN))]
    pub name: At<String>,
}

/// How GKE workloads get Google credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(rename = "GcpMode")]
pub(super) enum RawGcpMode {
    /// IAM bindings for principal identifiers, one per control plane.
    Principal,
    /// One Google service account per component, linked to each control plane.
    ServiceAccount,
}

impl RawGcpMode {
    pub const KEYWORDS: [(&'static str, Self); 2] = [
        ("principal", Self::Principal),
        ("service-account", Self::ServiceAccount),
    ];
}

/// How pods assume their IAM role.
// Only the schema derives from this enum; `load` reads the keyword with `KEYWORDS` (a test
// checks the two agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(rename = "AwsMode")]
pub(super) enum RawAwsMode {
    /// IAM roles for service accounts: an IAM OIDC provider and role-arn annotations.
    Irsa,
    /// EKS Pod Identity: one association per control plane namespace and component.
    PodIdentity,
}

/// Subjects of an IRSA trust policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(rename = "Subjects")]
pub(super) enum RawSubjects {
    /// One subject per control plane namespace (`StringEquals`).
    Exact,
    /// One `system:serviceaccount:mxp-*-system:<sa>` pattern (`StringLike`).
    Wildcard,
}

impl RawAwsMode {
    pub const KEYWORDS: [(&'static str, Self); 2] =
        [("irsa", Self::Irsa), ("pod-identity", Self::PodIdentity)];
}

impl RawSubjects {
    pub const KEYWORDS: [(&'static str, Self); 2] =
        [("exact", Self::Exact), ("wildcard", Self::Wildcard)];
}

/// The components of a Space; at least one.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Components", extend("minProperties" = 1))]
pub(super) struct RawComponents {
    /// Backup and restore (`mxp-controller`): read/write access to a bucket.
    pub backup: Option<At<RawBucketComponent>>,
    /// Billing metrics to object storage (`vector`): read/write access to a bucket.
    pub billing: Option<At<RawBucketComponent>>,
    /// External Secrets Operator (`external-secrets-controller`): read access to secrets.
    pub shared_secrets: Option<At<RawSecretsComponent>>,
}

/// A component that writes to object storage (`backup`, `billing`): an S3 bucket on AWS, a
/// storage account (and, for billing, a container) on Azure, a Cloud Storage bucket on GCP.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "BucketComponent")]
pub(super) struct RawBucketComponent {
    /// AWS: name of the S3 bucket; GCP: of the Cloud Storage bucket (3–63 characters:
    /// lower-case letters, digits, `.` and `-`; `_` too on Cloud Storage).
    // Optional for serde so a missing bucket is one of several collected errors; `load`
    // requires it on AWS and GCP.
    #[schemars(regex(pattern = BUCKET_PATTERN), length(min = 3, max = 63))]
    pub bucket: Option<At<String>>,
    /// Name of the IAM role (AWS), managed identity (Azure) or Google service account id (GCP
    /// `service-account` mode); default `spaces-<space>-<component>`.
    #[schemars(regex(pattern = NAME_PATTERN))]
    pub name: Option<At<String>>,
    /// Take over the existing IAM role (AWS), managed identity (Azure) or Google service
    /// account (GCP `service-account` mode) called `name`, whoever made it: idplan brings it to
    /// the spec, records it as adopted, and never deletes it.
    pub adopt: Option<At<bool>>,
    /// Azure: the storage account, by name (in the space's subscription and resource group)
    /// or by full resource id.
    #[schemars(regex(pattern = STORAGE_ACCOUNT_PATTERN))]
    pub storage_account: Option<At<String>>,
    /// Azure, billing only: the blob container the billing metrics are written to.
    #[schemars(regex(pattern = CONTAINER_PATTERN))]
    pub container: Option<At<String>>,
}

/// A component that reads secrets (`sharedSecrets`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "SecretsComponent")]
pub(super) struct RawSecretsComponent {
    /// AWS: ARNs of the Secrets Manager secrets the component may read (wildcards allowed);
    /// required, at least one. GCP: ids of the Secret Manager secrets it may read; left out,
    /// it may read every secret of the project. Not used on Azure (`keyVault`).
    #[schemars(with = "Option<Vec<String>>", length(min = 1))]
    pub secrets: Option<At<Vec<At<String>>>>,
    /// Name of the IAM role (AWS), managed identity (Azure) or Google service account id (GCP
    /// `service-account` mode); default `spaces-<space>-shared-secrets`.
    #[schemars(regex(pattern = NAME_PATTERN))]
    pub name: Option<At<String>>,
    /// Take over the existing IAM role (AWS), managed identity (Azure) or Google service
    /// account (GCP `service-account` mode) called `name`, whoever made it: idplan brings it to
    /// the spec, records it as adopted, and never deletes it.
    pub adopt: Option<At<bool>>,
    /// Azure: the key vault, by name (in the space's subscription and resource group) or by
    /// full resource id.
    #[schemars(regex(pattern = KEY_VAULT_PATTERN))]
    pub key_vault: Option<At<String>>,
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn defs() -> serde_json::Map<String, Value> {
        json_schema()["$defs"].as_object().unwrap().clone()
    }

    #[test]
    fn is_draft_2020_12() {
        let schema = json_schema();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(schema["required"], serde_json::json!(["version", "spaces"]));
    }

    #[test]
    fn objects_are_closed_and_described() {
        let schema = json_schema();
        let mut objects = vec![("root".to_string(), schema.clone())];
        objects.extend(defs());
        for (name, def) in objects {
            assert!(def["description"].is_string(), "{name} has no description");
            if def["type"] == "object" {
                assert_eq!(def["additionalProperties"], false, "{name}");
                for (key, prop) in def["properties"].as_object().unwrap() {
                    assert!(
                        prop["description"].is_string(),
                        "{name}.{key} has no description"
                    );
                }
            }
        }
    }

    #[test]
    fn keywords_match_the_schema() {
        let consts = |name: &str| -> Vec<String> {
            defs()[name]["oneOf"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["const"].as_str().unwrap().to_string())
                .collect()
        };
        let mode: Vec<_> = RawAwsMode::KEYWORDS.iter().map(|(k, _)| *k).collect();
        assert_eq!(consts("AwsMode"), mode);
        let subjects: Vec<_> = RawSubjects::KEYWORDS.iter().map(|(k, _)| *k).collect();
        assert_eq!(consts("Subjects"), subjects);
        let gcp: Vec<_> = RawGcpMode::KEYWORDS.iter().map(|(k, _)| *k).collect();
        assert_eq!(consts("GcpMode"), gcp);
    }

    #[test]
    fn rules_are_in_the_schema() {
        let defs = defs();
        let space = &defs["Space"]["properties"];
        assert_eq!(space["name"]["pattern"], SPACE_NAME_PATTERN);
        assert_eq!(space["name"]["maxLength"], SPACE_NAME_MAX);
        let planes = &defs["ControlPlanes"]["oneOf"];
        assert_eq!(planes[0]["items"]["pattern"], NAMESPACE_PATTERN);
        assert_eq!(planes[0]["items"]["maxLength"], NAMESPACE_MAX);
        assert_eq!(planes[1]["$ref"], "#/$defs/ControlPlaneSources");
        let sources = &defs["ControlPlaneSources"]["properties"];
        assert_eq!(sources["list"]["items"]["pattern"], NAMESPACE_PATTERN);
        assert_eq!(sources["discover"]["$ref"], "#/$defs/Discover");
        assert_eq!(space["aws"]["$ref"], "#/$defs/Aws");
        let aws = &defs["Aws"]["properties"];
        assert_eq!(aws["region"]["pattern"], REGION_PATTERN);
        assert_eq!(aws["cluster"]["pattern"], CLUSTER_PATTERN);
        assert_eq!(aws["trustPolicyQuota"]["maximum"], TRUST_POLICY_QUOTA_MAX);
        let bucket = &defs["BucketComponent"];
        assert_eq!(bucket["properties"]["bucket"]["pattern"], BUCKET_PATTERN);
        assert_eq!(bucket["properties"]["name"]["pattern"], NAME_PATTERN);
        assert_eq!(
            bucket["properties"]["storageAccount"]["pattern"],
            STORAGE_ACCOUNT_PATTERN
        );
        assert_eq!(
            bucket["properties"]["container"]["pattern"],
            CONTAINER_PATTERN
        );
        assert_eq!(space["azure"]["$ref"], "#/$defs/Azure");
        let azure = &defs["Azure"]["properties"];
        assert_eq!(azure["subscription"]["pattern"], SUBSCRIPTION_PATTERN);
        assert_eq!(azure["resourceGroup"]["pattern"], RESOURCE_GROUP_PATTERN);
        assert_eq!(azure["location"]["pattern"], AZURE_LOCATION_PATTERN);
        assert_eq!(azure["cluster"]["pattern"], AKS_NAME_PATTERN);
        let secrets = &defs["SecretsComponent"];
        assert_eq!(
            secrets["properties"]["keyVault"]["pattern"],
            KEY_VAULT_PATTERN
        );
        // Required on AWS only: the loader checks it per cloud.
        assert_eq!(secrets["required"], Value::Null);
        assert_eq!(secrets["properties"]["secrets"]["minItems"], 1);
        assert_eq!(space["gcp"]["$ref"], "#/$defs/Gcp");
        let gcp = &defs["Gcp"]["properties"];
        assert_eq!(gcp["project"]["pattern"], GCP_PROJECT_PATTERN);
        let cluster = &defs["GkeCluster"]["properties"];
        assert_eq!(cluster["location"]["pattern"], GKE_LOCATION_PATTERN);
        assert_eq!(cluster["name"]["pattern"], GKE_CLUSTER_PATTERN);
    }
}
