//! A cluster's IAM OIDC provider, for IRSA. It is shared by every space and state on its
//! cluster, so one that idplan did not create is adopted: idplan only adds its client id.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::context::{STS_AUDIENCE, issuer_host_path};
use super::{AwsDriver, attrs, found, gone_is_ok, idplan_tags, retag, sdk_tags, sent};
use crate::error::Result;
use crate::graph::Resource;
use crate::provider::tags::Tags;
use crate::provider::{Adoption, attributes, to_attributes};
use crate::provider::{Identity, KindDef, KindOps, ReadResult};

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

    /// A cluster's provider is shared by every space and state on that cluster: whoever made
    /// it, a state that did not record its creation never deletes it. One that this state
    /// did not create (eksctl made it, or another idplan state) is shared: idplan never tags
    /// or deletes it, and only adds the `sts.amazonaws.com` client id when it is missing.
    fn adoption(&self, resource: &Resource, actual: &Value) -> Result<Adoption> {
        let actual_attrs: ProviderAttributes = attributes(&resource.node.address, actual)?;
        let has_sts = actual_attrs.client_ids.iter().any(|c| c == STS_AUDIENCE);
        let added = Added {
            client_ids: vec![STS_AUDIENCE.to_string()],
        };
        Ok(Adoption::Shared {
            desired: self.shared_desired(resource, actual)?,
            added: (!has_sts).then(|| to_attributes(&added)),
        })
    }

    /// The owner's tags stay as they are.
    fn owner_keeps(&self) -> &'static [&'static str] {
        &["tags"]
    }
}

impl KindOps<AwsDriver> for Provider {
    async fn read(&self, driver: &AwsDriver, r: &Resource, _: Option<&Value>) -> ReadResult {
        let a: ProviderAttributes = attrs(r)?;
        let get = driver
            .iam(&r.node.location)
            .get_open_id_connect_provider()
            .open_id_connect_provider_arn(&a.arn);
        let Some(out) = found(r, "iam:GetOpenIDConnectProvider", get.send()).await? else {
            return Ok(None);
        };
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

    async fn create(&self, driver: &AwsDriver, r: &Resource) -> Result<Option<Value>> {
        let a: ProviderAttributes = attrs(r)?;
        let create = driver
            .iam(&r.node.location)
            .create_open_id_connect_provider()
            .url(format!("https://{}", a.url))
            .set_client_id_list(Some(a.client_ids))
            .set_tags(Some(sdk_tags(&a.tags)));
        sent(r, "iam:CreateOpenIDConnectProvider", create.send()).await?;
        Ok(None)
    }

    /// Adds missing client ids and brings idplan's tags to what is desired.
    async fn update(&self, driver: &AwsDriver, r: &Resource, actual: &Value) -> Result<()> {
        let iam = driver.iam(&r.node.location);
        let a: ProviderAttributes = attrs(r)?;
        let actual: ProviderAttributes = attributes(&r.node.address, actual)?;
        for id in a
            .client_ids
            .iter()
            .filter(|id| !actual.client_ids.contains(id))
        {
            let add = iam
                .add_client_id_to_open_id_connect_provider()
                .open_id_connect_provider_arn(&a.arn)
                .client_id(id);
            sent(r, "iam:AddClientIDToOpenIDConnectProvider", add.send()).await?;
        }
        let tag = iam
            .tag_open_id_connect_provider()
            .open_id_connect_provider_arn(&a.arn);
        let untag = iam
            .untag_open_id_connect_provider()
            .open_id_connect_provider_arn(&a.arn);
        retag(
            &a.tags,
            &actual.tags,
            |tags| {
                let tag = tag.set_tags(Some(tags));
                sent(r, "iam:TagOpenIDConnectProvider", tag.send())
            },
            |keys| {
                let untag = untag.set_tag_keys(Some(keys));
                sent(r, "iam:UntagOpenIDConnectProvider", untag.send())
            },
        )
        .await
    }

    async fn delete(&self, driver: &AwsDriver, r: &Resource) -> Result<()> {
        let a: ProviderAttributes = attrs(r)?;
        let delete = driver
            .iam(&r.node.location)
            .delete_open_id_connect_provider()
            .open_id_connect_provider_arn(a.arn);
        gone_is_ok(r, "iam:DeleteOpenIDConnectProvider", delete.send()).await
    }

    /// Takes back what idplan added to an adopted provider: its client id.
    async fn release(&self, driver: &AwsDriver, r: &Resource, added: &Value) -> Result<()> {
        let iam = driver.iam(&r.node.location);
        let a: ProviderAttributes = attrs(r)?;
        let added: Added = attributes(&r.node.address, added)?;
        for id in added.client_ids {
            let remove = iam
                .remove_client_id_from_open_id_connect_provider()
                .open_id_connect_provider_arn(&a.arn)
                .client_id(id);
            gone_is_ok(
                r,
                "iam:RemoveClientIDFromOpenIDConnectProvider",
                remove.send(),
            )
            .await?;
        }
        Ok(())
    }
}
