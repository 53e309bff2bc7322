//! The Spaces Helm chart values that point each component at its identity.
//!
//! The keys are the chart's, as the Spaces documents give them; role ARNs come from the
//! state, so the values always name what was applied.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::graph::{Address, Kind};
use crate::provider::aws::AwsKind;
use crate::provider::azure::AzureKind;
use crate::provider::gcp::GcpKind;
use crate::spec::{
    AwsAccess, AwsMode, AwsSpace, AzureAccess, AzureSpace, Cloud, Component, ComponentKind,
    GcpAccess, GcpMode, GcpSpace, Space,
};
use crate::state::State;

const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
const GCP_SERVICE_ACCOUNT_ANNOTATION: &str = "iam.gke.io/gcp-service-account";

/// One chart value: its key as path segments (a segment may contain dots) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct HelmValue {
    pub path: Vec<String>,
    pub value: Value,
}

fn value(path: &str, tail: Option<&str>, value: Value) -> HelmValue {
    let mut path: Vec<String> = path.split('.').map(str::to_string).collect();
    path.extend(tail.map(str::to_string));
    HelmValue { path, value }
}

/// The values of one space.
pub fn values(space: &Space, state: &State) -> Result<Vec<HelmValue>> {
    match &space.cloud {
        Cloud::Aws(aws) => aws_values(space, aws, state),
        Cloud::Azure(azure) => azure_values(space, azure, state),
        Cloud::Gcp(gcp) => gcp_values(space, gcp, state),
    }
}

/// GKE: billing to a Cloud Storage bucket; in `service-account` mode each component's
/// Kubernetes service account is annotated with its Google service account (principal
/// identifiers need no annotation).
fn gcp_values(space: &Space, gcp: &GcpSpace, state: &State) -> Result<Vec<HelmValue>> {
    let mut out = Vec::new();
    if let Some(Component {
        access: GcpAccess::Bucket(bucket),
        ..
    }) = &gcp.components.billing
    {
        out.push(value("billing.enabled", None, Value::Bool(true)));
        out.push(value("billing.storage.provider", None, "gcp".into()));
        out.push(value(
            "billing.storage.gcp.bucket",
            None,
            bucket.clone().into(),
        ));
        // Must be the empty string for workload identity to be used.
        out.push(value("billing.storage.secretRef.name", None, "".into()));
    }
    if gcp.mode == GcpMode::ServiceAccount {
        for component in gcp.components.iter() {
            let address = Address::component(
                Kind::Gcp(GcpKind::ServiceAccount),
                &space.name,
                component.kind,
            );
            let email = state
                .get(&address)
                .and_then(|r| r.attributes["email"].as_str())
                .ok_or_else(|| {
                    Error::user(format!(
                        "space {}: the state has no service account for {} ({address}); run \
                         `idplan apply` first",
                        space.name, component.kind
                    ))
                })?;
            out.push(value(
                &format!(
                    "{}.{}",
                    component.kind.helm_prefix(),
                    component.kind.annotations_key()
                ),
                Some(GCP_SERVICE_ACCOUNT_ANNOTATION),
                email.into(),
            ));
        }
    }
    Ok(out)
}

fn aws_values(space: &Space, aws: &AwsSpace, state: &State) -> Result<Vec<HelmValue>> {
    let mut out = Vec::new();
    if let Some(Component {
        access: AwsAccess::Bucket(bucket),
        ..
    }) = &aws.components.billing
    {
        out.push(value("billing.enabled", None, Value::Bool(true)));
        out.push(value("billing.storage.provider", None, "aws".into()));
        out.push(value(
            "billing.storage.aws.region",
            None,
            aws.region.clone().into(),
        ));
        out.push(value(
            "billing.storage.aws.bucket",
            None,
            bucket.clone().into(),
        ));
        // Must be the empty string for workload identity to be used.
        out.push(value("billing.storage.secretRef.name", None, "".into()));
    }
    if aws.mode == AwsMode::Irsa {
        for component in aws.components.iter() {
            let arn = role_arn(space, component.kind, state)?;
            out.push(value(
                &format!(
                    "{}.{}",
                    component.kind.helm_prefix(),
                    component.kind.annotations_key()
                ),
                Some(ROLE_ARN_ANNOTATION),
                arn.into(),
            ));
        }
    }
    Ok(out)
}

const CLIENT_ID_ANNOTATION: &str = "azure.workload.identity/client-id";
const USE_LABEL: &str = "azure.workload.identity/use";

/// Azure: the storage account and container for billing; every component's client id
/// annotation and the label that has the workload identity webhook inject the token.
fn azure_values(space: &Space, azure: &AzureSpace, state: &State) -> Result<Vec<HelmValue>> {
    let mut out = Vec::new();
    if let Some(Component {
        access:
            AzureAccess::Storage {
                account,
                container: Some(container),
            },
        ..
    }) = &azure.components.billing
    {
        // A resource id names the account in its last segment; the chart wants the name.
        let account = account.rsplit('/').next().unwrap_or(account);
        out.push(value("billing.enabled", None, Value::Bool(true)));
        out.push(value("billing.storage.provider", None, "azure".into()));
        out.push(value(
            "billing.storage.azure.storageAccount",
            None,
            account.into(),
        ));
        out.push(value(
            "billing.storage.azure.container",
            None,
            container.clone().into(),
        ));
        out.push(value("billing.storage.secretRef.name", None, "".into()));
    }
    for component in azure.components.iter() {
        let kind = component.kind;
        let address = Address::component(
            Kind::Azure(AzureKind::UserAssignedIdentity),
            &space.name,
            kind,
        );
        let client_id = state
            .get(&address)
            .and_then(|r| r.attributes["client_id"].as_str())
            .ok_or_else(|| {
                Error::user(format!(
                    "space {}: the state has no managed identity for {kind} ({address}); run \
                     `idplan apply` first",
                    space.name
                ))
            })?;
        out.push(value(
            &format!("{}.{}", kind.helm_prefix(), kind.annotations_key()),
            Some(CLIENT_ID_ANNOTATION),
            client_id.into(),
        ));
        out.push(value(
            &format!("{}.pod.customLabels", kind.helm_prefix()),
            Some(USE_LABEL),
            "true".into(),
        ));
    }
    Ok(out)
}

fn role_arn(space: &Space, kind: ComponentKind, state: &State) -> Result<String> {
    let address = Address::component(Kind::Aws(AwsKind::IamRole), &space.name, kind);
    state
        .get(&address)
        .and_then(|r| r.attributes["arn"].as_str())
        .map(str::to_string)
        .ok_or_else(|| {
            Error::user(format!(
                "space {}: the state has no role for {kind} ({address}); run `idplan apply` first",
                space.name
            ))
        })
}

/// `--set` arguments as the Spaces documents write them, one per line, ready to paste after
/// `helm upgrade`.
pub fn render_set(values: &[HelmValue]) -> String {
    let lines: Vec<String> = values
        .iter()
        .map(|v| {
            let value = match &v.value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if v.path.iter().any(|s| s.contains('.')) {
                let key: Vec<String> = v
                    .path
                    .iter()
                    .map(|s| {
                        if s.contains('.') {
                            format!("\"{}\"", s.replace('.', "\\."))
                        } else {
                            s.clone()
                        }
                    })
                    .collect();
                format!("--set {}=\"{value}\"", key.join("."))
            } else {
                format!("--set \"{}={value}\"", v.path.join("."))
            }
        })
        .collect();
    let mut out = lines.join(" \\\n");
    out.push('\n');
    out
}

/// The values as a nested YAML document (`helm -f values.yaml`).
pub fn render_yaml(values: &[HelmValue]) -> String {
    let mut root = Map::new();
    for v in values {
        let mut node = &mut root;
        let (last, parents) = v.path.split_last().expect("a value has a key");
        for p in parents {
            node = node
                .entry(p.clone())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("chart keys nest consistently");
        }
        node.insert(last.clone(), v.value.clone());
    }
    serde_saphyr::to_string(&Value::Object(root)).expect("values serialize to YAML")
}
