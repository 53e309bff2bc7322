//! A component's Google service account (`mode: service-account`). It has no tags: idplan
//! marks its own in the description.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::context::MANAGED_MARK;
use super::{Api, GcpDriver};
use crate::error::Result;
use crate::graph::Resource;
use crate::provider::{Adoption, attributes, attributes_of, to_attributes};
use crate::provider::{Identity, KindDef, KindOps, ReadResult};
use crate::transport::answer;

/// `google_service_account`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountAttributes {
    pub project: String,
    pub account_id: String,
    pub email: String,
    pub display_name: String,
    /// Ends with `recipe::gcp::MANAGED_MARK` on the accounts idplan made.
    pub description: String,
}

impl AccountAttributes {
    fn path(&self) -> String {
        format!(
            "v1/projects/{}/serviceAccounts/{}",
            self.project, self.email
        )
    }
}

/// IAM's answer for a service account.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct IamAccount {
    email: String,
    display_name: String,
    description: String,
}

/// `google_service_account`: a component's identity in `service-account` mode.
pub struct ServiceAccount;

impl KindDef for ServiceAccount {
    fn kind(&self) -> crate::kind::Kind {
        crate::kind::Kind::Gcp(crate::kind::GcpKind::ServiceAccount)
    }

    fn identity(&self, a: &Value) -> Result<Identity> {
        Ok(Identity::name(
            attributes::<AccountAttributes>(self.facts().type_name, a)?.email,
        ))
    }

    /// A service account that exists and was not made by idplan for this space is someone
    /// else's: taken over with `adopt: true` (and left as it is: a service account has no tags,
    /// and nothing idplan would add to it), refused otherwise.
    fn adoption(&self, resource: &Resource, actual: &Value) -> Result<Adoption> {
        let desired: AccountAttributes = attributes_of(resource)?;
        let ours = attributes::<AccountAttributes>(&resource.node.address, actual)?.description;
        if ours == desired.description {
            return Ok(Adoption::Owned);
        }
        let email = &desired.email;
        if ours.ends_with(MANAGED_MARK) {
            return Ok(Adoption::Conflict(format!(
                "service account {email} belongs to another idplan space ({ours}); two spaces \
                 cannot share one: set another `name` for the component"
            )));
        }
        if resource.adopt {
            return Ok(Adoption::Shared {
                desired: self.shared_desired(resource, actual)?,
                added: None,
            });
        }
        Ok(Adoption::Conflict(format!(
            "service account {email} already exists and was not created by idplan; set `adopt: \
             true` on the component to take it over (it is then never deleted), or set another \
             `name`"
        )))
    }

    /// An adopted service account keeps everything as its owner made it: idplan only binds
    /// it.
    fn owner_keeps(&self) -> &'static [&'static str] {
        &["display_name", "description"]
    }
}

/// A service account is adopted as it is: idplan added nothing to it.
impl KindOps<GcpDriver> for ServiceAccount {
    async fn read(&self, driver: &GcpDriver, r: &Resource, _: Option<&Value>) -> ReadResult {
        const API: &str = "iam.projects.serviceAccounts.get";
        let a: AccountAttributes = attributes_of(r)?;
        match driver
            .call(Method::GET, Api::Iam, &a.path(), &[], None, API)
            .await
        {
            Ok(body) => {
                let sa: IamAccount = answer(body, &r.node.address, API)?;
                Ok(Some(to_attributes(&AccountAttributes {
                    project: a.project,
                    account_id: sa
                        .email
                        .split_once('@')
                        .map_or(sa.email.as_str(), |(id, _)| id)
                        .to_string(),
                    email: sa.email,
                    display_name: sa.display_name,
                    description: sa.description,
                })))
            }
            Err(f) if f.is(404) => Ok(None),
            Err(f) => Err(f.into_error(&r.node.address, API)),
        }
    }

    async fn create(&self, driver: &GcpDriver, r: &Resource) -> Result<Option<Value>> {
        const API: &str = "iam.projects.serviceAccounts.create";
        let a: AccountAttributes = attributes_of(r)?;
        let body = json!({
            "accountId": a.account_id,
            "serviceAccount": {
                "displayName": a.display_name,
                "description": a.description,
            },
        });
        let path = format!("v1/projects/{}/serviceAccounts", a.project);
        driver
            .call(Method::POST, Api::Iam, &path, &[], Some(&body), API)
            .await
            .map_err(|f| f.into_error(&r.node.address, API))?;
        Ok(None)
    }

    async fn update(&self, driver: &GcpDriver, r: &Resource, _: &Value) -> Result<()> {
        const API: &str = "iam.projects.serviceAccounts.patch";
        let a: AccountAttributes = attributes_of(r)?;
        let body = json!({
            "serviceAccount": {
                "displayName": a.display_name,
                "description": a.description,
            },
            "updateMask": "displayName,description",
        });
        driver
            .call(Method::PATCH, Api::Iam, &a.path(), &[], Some(&body), API)
            .await
            .map_err(|f| f.into_error(&r.node.address, API))?;
        Ok(())
    }

    /// Deletes the account; one already gone counts as deleted.
    async fn delete(&self, driver: &GcpDriver, r: &Resource) -> Result<()> {
        const API: &str = "iam.projects.serviceAccounts.delete";
        let a: AccountAttributes = attributes_of(r)?;
        match driver
            .call(Method::DELETE, Api::Iam, &a.path(), &[], None, API)
            .await
        {
            Ok(_) => Ok(()),
            Err(f) if f.is(404) => Ok(()),
            Err(f) => Err(f.into_error(&r.node.address, API)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Node;

    fn account(description: &str) -> Value {
        to_attributes(&AccountAttributes {
            project: "p".into(),
            account_id: "spaces-prod-backup".into(),
            email: "spaces-prod-backup@p.iam.gserviceaccount.com".into(),
            display_name: "Spaces prod backup".into(),
            description: description.into(),
        })
    }

    #[test]
    fn only_idplans_own_service_account_is_taken_back() {
        let resource = Resource {
            node: Node {
                address: "google_service_account.prod.backup".parse().unwrap(),
                location: crate::graph::Location::Gcp {
                    project: "p".into(),
                },
                depends_on: vec![],
            },
            attributes: account(
                "Upbound Spaces backup (mxp-controller) of space prod; managed by idplan",
            ),
            adopt: false,
        };
        let same = account(resource.attributes["description"].as_str().unwrap());
        assert!(matches!(
            ServiceAccount.adoption(&resource, &same),
            Ok(Adoption::Owned)
        ));
        let other_space =
            account("Upbound Spaces backup (mxp-controller) of space dev; managed by idplan");
        match ServiceAccount.adoption(&resource, &other_space) {
            Ok(Adoption::Conflict(m)) => assert!(m.contains("another idplan space"), "{m}"),
            _ => panic!("expected a conflict"),
        }
        match ServiceAccount.adoption(&resource, &account("")) {
            Ok(Adoption::Conflict(m)) => assert!(m.contains("not created by idplan"), "{m}"),
            _ => panic!("expected a conflict"),
        }
    }
}
