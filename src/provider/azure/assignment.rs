//! A role assignment of a component's identity on its storage account or RBAC key vault.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    AzureDriver, AzureKindDef, Op, adopt_beside_identity, named_by_owner, nothing_to_release,
};
use crate::error::Result;
use crate::graph::Resource;
use crate::provider::{Adoption, Call, attributes, attributes_of, to_attributes};
use crate::provider::{Identity, KindDef};
use crate::transport::answer;

const AUTHZ: &str = "2022-04-01";

const GET_ASSIGNMENT: Op = Op {
    api: "GET Microsoft.Authorization/roleAssignments",
    stat: "azure:RoleAssignments_Get",
    version: AUTHZ,
    retry_code: None,
};
const LIST_ASSIGNMENTS: Op = Op {
    api: "GET Microsoft.Authorization/roleAssignments",
    stat: "azure:RoleAssignments_ListForScope",
    version: AUTHZ,
    retry_code: None,
};
const PUT_ASSIGNMENT: Op = Op {
    api: "PUT Microsoft.Authorization/roleAssignments",
    stat: "azure:RoleAssignments_Create",
    version: AUTHZ,
    // A principal created a moment ago may not have reached every directory replica yet,
    // even with `principalType` set: Azure says so, and a retry succeeds.
    retry_code: Some("PrincipalNotFound"),
};
const DELETE_ASSIGNMENT: Op = Op {
    api: "DELETE Microsoft.Authorization/roleAssignments",
    stat: "azure:RoleAssignments_Delete",
    version: AUTHZ,
    retry_code: None,
};

/// `azurerm_role_assignment`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignmentAttributes {
    pub scope: String,
    /// A UUID, stable for (scope, identity, role): see `recipe::azure::role_assignment_name`.
    pub name: String,
    /// The identity's resource id.
    pub identity: String,
    /// The role definition's GUID.
    pub role_definition_id: String,
    /// The identity's principal id: a string, or a `graph::reference` to it until the
    /// identity exists.
    pub principal_id: Value,
    pub principal_type: String,
}

impl AssignmentAttributes {
    fn id(&self) -> String {
        format!(
            "{}/providers/Microsoft.Authorization/roleAssignments/{}",
            self.scope, self.name
        )
    }

    /// The subscription-scoped role definition id of the role, in the scope's subscription.
    fn role_definition(&self) -> String {
        let subscription = self.scope.split('/').nth(2).unwrap_or_default();
        format!(
            "/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{}",
            self.role_definition_id
        )
    }
}

/// ARM's answer for an assignment.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ArmAssignment {
    name: Option<String>,
    pub(super) properties: ArmProperties,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ArmProperties {
    pub(super) scope: String,
    pub(super) role_definition_id: String,
    principal_id: Value,
    principal_type: String,
}

/// The GUID of a role definition id, whatever its form (tenant or subscription scoped).
pub(super) fn role_guid(id: &str) -> String {
    id.rsplit_once('/')
        .map_or(id, |(_, guid)| guid)
        .to_ascii_lowercase()
}

impl AzureDriver {
    /// The assignment under the name the state `known`s (its maker's, when adopted), else
    /// the desired one; on an adopted identity, else the one of the same role to the same
    /// principal at the same scope under any name.
    pub(super) async fn read_assignment(
        &self,
        r: &Resource,
        known: Option<&Value>,
    ) -> Result<Option<Value>> {
        let a: AssignmentAttributes = attributes_of(r)?;
        let name = match known {
            Some(known) => attributes::<AssignmentAttributes>(&r.node.address, known)?.name,
            None => a.name.clone(),
        };
        let at = AssignmentAttributes { name, ..a };
        let found = match self.get(&r.node.address, &GET_ASSIGNMENT, &at.id()).await? {
            Some(body) => Some(answer::<ArmAssignment>(
                body,
                &r.node.address,
                GET_ASSIGNMENT.api,
            )?),
            None if r.adopt => self.assignment_granting(r, &at).await?,
            None => None,
        };
        let Some(found) = found else {
            return Ok(None);
        };
        let props = found.properties;
        Ok(Some(to_attributes(&AssignmentAttributes {
            name: found.name.unwrap_or(at.name),
            role_definition_id: role_guid(&props.role_definition_id),
            principal_id: props.principal_id,
            principal_type: props.principal_type,
            ..at
        })))
    }

    /// The assignment of `a`'s role to `a`'s principal at exactly `a`'s scope, whatever its
    /// name: Azure holds at most one (`RoleAssignmentExists`).
    async fn assignment_granting(
        &self,
        r: &Resource,
        a: &AssignmentAttributes,
    ) -> Result<Option<ArmAssignment>> {
        let Some(principal) = a.principal_id.as_str() else {
            return Ok(None);
        };
        let found = self
            .assignments_of(&r.node.address.to_string(), &a.scope, principal)
            .await?;
        Ok(found.into_iter().find(|item| {
            item.properties.scope.eq_ignore_ascii_case(&a.scope)
                && role_guid(&item.properties.role_definition_id) == a.role_definition_id
        }))
    }

    /// The role assignments of `principal` at, above and below `scope` (`what` names the
    /// resource in errors).
    pub(super) async fn assignments_of(
        &self,
        what: &str,
        scope: &str,
        principal: &str,
    ) -> Result<Vec<ArmAssignment>> {
        let path = format!(
            "{scope}/providers/Microsoft.Authorization/roleAssignments?$filter=principalId%20eq%20'{principal}'"
        );
        self.list(what, &LIST_ASSIGNMENTS, &path)
            .await?
            .into_iter()
            .map(|item| answer(item, what, LIST_ASSIGNMENTS.api))
            .collect()
    }

    /// Role assignments cannot be changed in place: one that `exists` is deleted, then
    /// created.
    pub(super) async fn put_assignment(&self, r: &Resource, exists: bool) -> Result<()> {
        let a: AssignmentAttributes = attributes_of(r)?;
        if exists {
            self.delete_id(&r.node.address, &DELETE_ASSIGNMENT, &a.id())
                .await?;
        }
        let body = json!({ "properties": {
            "roleDefinitionId": a.role_definition(),
            "principalId": a.principal_id,
            // A new identity may not have reached every directory replica yet.
            "principalType": a.principal_type,
        }});
        self.call(
            &r.node.address,
            &PUT_ASSIGNMENT,
            Method::PUT,
            &a.id(),
            Some(&body),
        )
        .await?;
        Ok(())
    }

    pub(super) async fn delete_assignment(&self, r: &Resource) -> Result<()> {
        let a: AssignmentAttributes = attributes_of(r)?;
        self.delete_id(&r.node.address, &DELETE_ASSIGNMENT, &a.id())
            .await
    }
}

/// `azurerm_role_assignment`: a component's permissions on a storage account or a vault.
pub struct Assignment;

impl KindDef for Assignment {
    fn kind(&self) -> crate::kind::Kind {
        crate::kind::Kind::Azure(crate::kind::AzureKind::RoleAssignment)
    }

    /// One assignment of a role to a principal at a scope, whatever its name.
    fn identity(&self, a: &Value) -> Result<Identity> {
        let r: AssignmentAttributes = attributes(self.facts().type_name, a)?;
        Ok(Identity::parts([r.scope, r.role_definition_id, r.identity], &[" ", " "]).lowercase())
    }

    fn computed_keys(&self) -> &'static [&'static str] {
        &[]
    }

    fn adoption(&self, resource: &Resource, actual: &Value) -> Result<Adoption> {
        adopt_beside_identity(resource, actual)
    }

    fn shared_desired(&self, resource: &Resource, actual: &Value) -> Result<Value> {
        Ok(named_by_owner(resource, actual))
    }
}

impl AzureKindDef for Assignment {
    fn read<'a>(
        &self,
        driver: &'a AzureDriver,
        r: &'a Resource,
        known: Option<&'a Value>,
    ) -> Call<'a, Option<Value>> {
        Box::pin(driver.read_assignment(r, known))
    }

    fn create<'a>(&self, driver: &'a AzureDriver, r: &'a Resource) -> Call<'a, Value> {
        Box::pin(async move {
            driver.put_assignment(r, false).await?;
            Ok(Value::Object(serde_json::Map::new()))
        })
    }

    fn update<'a>(&self, driver: &'a AzureDriver, r: &'a Resource) -> Call<'a, ()> {
        Box::pin(driver.put_assignment(r, true))
    }

    fn delete<'a>(&self, driver: &'a AzureDriver, r: &'a Resource) -> Call<'a, ()> {
        Box::pin(driver.delete_assignment(r))
    }

    fn release<'a>(
        &self,
        _driver: &'a AzureDriver,
        r: &'a Resource,
        _added: &'a Value,
    ) -> Call<'a, ()> {
        let e = nothing_to_release(r);
        Box::pin(async { Err(e) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_guids_compare_whatever_the_scope() {
        let tenant = "/providers/Microsoft.Authorization/roleDefinitions/BA92F5B4-2D11-453D-A403-E96B0029C9FE";
        let sub = "/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/ba92f5b4-2d11-453d-a403-e96b0029c9fe";
        assert_eq!(role_guid(tenant), role_guid(sub));
    }
}
