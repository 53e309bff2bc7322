//! A cluster's IAM OIDC provider, for IRSA. It is shared by every space and state on its
//! cluster, so one that idplan did not create is adopted: idplan only adds its client id.

use aws_sdk_iam::Client;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::context::{STS_AUDIENCE, issuer_host_path};
use super::{
    AwsDriver, AwsKindDef, attrs, cloud_error, gone_is_ok, idplan_tags, is_no_such_entity,
    sdk_tags, tag_changes,
};
use crate::error::Result;
use crate::graph::Resource;
use crate::provider::tags::Tags;
use crate::provider::{Adoption, Call, attributes, owners_keys, to_attributes};
use crate::provider::{Identity, KindDef};

/// The cluster a provider was made for (AWS only: other clouds have no such tag).
pub const CLUSTER_TAG: &str = "idplan/cluster";

/// `aws_iam_openid_connect_provider`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderAttributes {
    pub arn: String,
    /// The issuer without `https://`, as IAM spells it.
    pub url: String,
    /// idplan's client ids only: `sts.amazonaws.com`.
    pub client_ids: Vec<String>,
    pub tags: Tags,
}

/// What idplan added to a provider it adopted.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Added {
    #[serde(default)]
    client_ids: Vec<String>,
}

pub(super) async fn read(iam: &Client, r: &Resource) -> Result<Option<Value>> {
    let a: ProviderAttributes = attrs(r)?;
    match iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&a.arn)
        .send()
        .await
    {
        Ok(out) => {
            let mut client_ids: Vec<String> = out
                .client_id_list()
                .iter()
                .filter(|id| *id == STS_AUDIENCE)
                .cloned()
                .collect();
            client_ids.dedup();
            Ok(Some(to_attributes(&ProviderAttributes {
                arn: a.arn,
                url: issuer_host_path(out.url().unwrap_or_default()).to_string(),
                client_ids,
                tags: idplan_tags(out.tags()),
            })))
        }
        Err(e) if is_no_such_entity(&e) => Ok(None),
        Err(e) => Err(cloud_error(
            &r.node.address,
            "iam:GetOpenIDConnectProvider",
            e,
        )),
    }
}

pub(super) async fn create(iam: &Client, r: &Resource) -> Result<()> {
    let a: ProviderAttributes = attrs(r)?;
    iam.create_open_id_connect_provider()
        .url(format!("https://{}", a.url))
        .set_client_id_list(Some(a.client_ids))
        .set_tags(Some(sdk_tags(&a.tags)))
        .send()
        .await
        .map_err(|e| cloud_error(&r.node.address, "iam:CreateOpenIDConnectProvider", e))?;
    Ok(())
}

/// Adds missing client ids and brings idplan's tags to what is desired.
pub(super) async fn update(iam: &Client, r: &Resource, actual: &Value) -> Result<()> {
    let a: ProviderAttributes = attrs(r)?;
    let actual: ProviderAttributes = attributes(&r.node.address, actual)?;
    for id in a
        .client_ids
        .iter()
        .filter(|id| !actual.client_ids.contains(id))
    {
        iam.add_client_id_to_open_id_connect_provider()
            .open_id_connect_provider_arn(&a.arn)
            .client_id(id)
            .send()
            .await
            .map_err(|e| {
                cloud_error(&r.node.address, "iam:AddClientIDToOpenIDConnectProvider", e)
            })?;
    }
    let (set, unset) = tag_changes(&a.tags, &actual.tags);
    if !set.is_empty() {
        iam.tag_open_id_connect_provider()
            .open_id_connect_provider_arn(&a.arn)
            .set_tags(Some(set))
            .send()
            .await
            .map_err(|e| cloud_error(&r.node.address, "iam:TagOpenIDConnectProvider", e))?;
    }
    if !unset.is_empty() {
        iam.untag_open_id_connect_provider()
            .open_id_connect_provider_arn(&a.arn)
            .set_tag_keys(Some(unset))
            .send()
            .await
            .map_err(|e| cloud_error(&r.node.address, "iam:UntagOpenIDConnectProvider", e))?;
    }
    Ok(())
}

pub(super) async fn delete(iam: &Client, r: &Resource) -> Result<()> {
    let a: ProviderAttributes = attrs(r)?;
    gone_is_ok(
        &r.node.address,
        "iam:DeleteOpenIDConnectProvider",
        iam.delete_open_id_connect_provider()
            .open_id_connect_provider_arn(a.arn)
            .send()
            .await,
    )
}

/// Takes back what idplan added to an adopted provider: its client id.
pub(super) async fn release(iam: &Client, r: &Resource, added: &Value) -> Result<()> {
    let a: ProviderAttributes = attrs(r)?;
    let added: Added = attributes(&r.node.address, added)?;
    for id in added.client_ids {
        gone_is_ok(
            &r.node.address,
            "iam:RemoveClientIDFromOpenIDConnectProvider",
            iam.remove_client_id_from_open_id_connect_provider()
                .open_id_connect_provider_arn(&a.arn)
                .client_id(id)
                .send()
                .await,
        )?;
    }
    Ok(())
}

/// An existing provider that this state did not create (eksctl made it, or another idplan
/// state) is shared: idplan never tags or deletes it, and only adds the `sts.amazonaws.com`
/// client id when it is missing.
pub(super) fn adopt(resource: &Resource, actual: &Value) -> Result<Adoption> {
    let actual_attrs: ProviderAttributes = attributes(&resource.node.address, actual)?;
    let has_sts = actual_attrs.client_ids.iter().any(|c| c == STS_AUDIENCE);
    let added = Added {
        client_ids: vec![STS_AUDIENCE.to_string()],
    };
    Ok(Adoption::Shared {
        desired: owners_keys(resource, actual, &["tags"]),
        added: (!has_sts).then(|| to_attributes(&added)),
    })
}

/// `aws_iam_openid_connect_provider`: one per cluster, shared by its spaces.
pub struct Provider;

impl KindDef for Provider {
    fn kind(&self) -> crate::kind::Kind {
        crate::kind::Kind::Aws(crate::kind::AwsKind::IamOpenidConnectProvider)
    }

    fn identity(&self, a: &Value) -> Result<Identity> {
        Ok(Identity::name(
            attributes::<ProviderAttributes>(self.facts().type_name, a)?.arn,
        ))
    }

    fn computed_keys(&self) -> &'static [&'static str] {
        &[]
    }

    // A cluster's provider is shared by every space and state on that cluster: whoever made
    // it, a state that did not record its creation never deletes it.
    fn adoption(&self, resource: &Resource, actual: &Value) -> Result<Adoption> {
        adopt(resource, actual)
    }

    /// The owner's tags stay as they are.
    fn shared_desired(&self, resource: &Resource, actual: &Value) -> Result<Value> {
        Ok(owners_keys(resource, actual, &["tags"]))
    }
}

impl AwsKindDef for Provider {
    fn read<'a>(
        &self,
        driver: &'a AwsDriver,
        r: &'a Resource,
        _known: Option<&'a Value>,
    ) -> Call<'a, Option<Value>> {
        Box::pin(async move { read(&driver.iam(&r.node.location), r).await })
    }

    fn create<'a>(&self, driver: &'a AwsDriver, r: &'a Resource) -> Call<'a, Value> {
        Box::pin(async move {
            create(&driver.iam(&r.node.location), r).await?;
            Ok(Value::Object(serde_json::Map::new()))
        })
    }

    fn update<'a>(
        &self,
        driver: &'a AwsDriver,
        r: &'a Resource,
        actual: &'a Value,
    ) -> Call<'a, ()> {
        Box::pin(async move { update(&driver.iam(&r.node.location), r, actual).await })
    }

    fn delete<'a>(&self, driver: &'a AwsDriver, r: &'a Resource) -> Call<'a, ()> {
        Box::pin(async move { delete(&driver.iam(&r.node.location), r).await })
    }

    fn release<'a>(
        &self,
        driver: &'a AwsDriver,
        r: &'a Resource,
        added: &'a Value,
    ) -> Call<'a, ()> {
        Box::pin(async move { release(&driver.iam(&r.node.location), r, added).await })
    }
}
