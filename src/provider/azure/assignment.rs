//! A role assignment of a component's identity on its storage account or RBAC key vault.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ArmType, AzureDriver, Named, NamedAttributes, Op, nothing_to_release};
use crate::error::Result;
use crate::graph::Resource;
use crate::provider::{Identity, KindDef, KindOps, ReadResult};
use crate::provider::{attributes, attributes_of, to_attributes};
use crate::transport::answer;

const ASSIGNMENTS: ArmType = ArmType::new(
    "Microsoft.Authorization/roleAssignments",
    "RoleAssignments",
    "2022-04-01",
);
const GET_ASSIGNMENT: Op = ASSIGNMENTS.op(Method::GET, "Get");
const LIST_ASSIGNMENTS: Op = ASSIGNMENTS.op(Method::GET, "ListForScope");
// A principal created a moment ago may not have reached every directory replica yet,
// even with `principalType` set: Azure says so, and a retry succeeds.
const PUT_ASSIGNMENT: Op = ASSIGNMENTS
    .op(Method::PUT, "Create")
    .retrying("PrincipalNotFound");
const DELETE_ASSIGNMENT: Op = ASSIGNMENTS.op(Method::DELETE, "Delete");

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
        self.id_named(&self.name)
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

impl NamedAttributes for AssignmentAttributes {
    fn name(&self) -> &str {
        &self.name
    }

    fn id_named(&self, name: &str) -> String {
        format!(
            "{}/providers/Microsoft.Authorization/roleAssignments/{name}",
            self.scope
        )
    }
}

/// ARM's answer for an assignment.
pub(super) type ArmAssignment = Named<ArmProperties>;

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
            .map(|item| answer(item, what, LIST_ASSIGNMENTS.api()))
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
        self.call(&r.node.address, &PUT_ASSIGNMENT, &a.id(), Some(&body))
            .await?;
        Ok(())
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

    /// Made by hand beside an identity the spec adopts, it keeps the name its maker chose:
    /// taken over as it is (under that name) and never deleted.
    fn owner_keeps(&self) -> &'static [&'static str] {
        &["name"]
    }
}

impl KindOps<AzureDriver> for Assignment {
    /// Read by [`AzureDriver::read_named`]: under any name, the assignment of the same role to
    /// the same principal at the same scope.
    async fn read(&self, driver: &AzureDriver, r: &Resource, known: Option<&Value>) -> ReadResult {
        let a: AssignmentAttributes = attributes_of(r)?;
        let granting = driver.assignment_granting(r, &a);
        let found = driver
            .read_named(r, known, &a, &GET_ASSIGNMENT, granting)
            .await?;
        let Some((name, props)) = found else {
            return Ok(None);
        };
        Ok(Some(to_attributes(&AssignmentAttributes {
            name,
            role_definition_id: role_guid(&props.role_definition_id),
            principal_id: props.principal_id,
            principal_type: props.principal_type,
            ..a
        })))
    }

    async fn create(&self, driver: &AzureDriver, r: &Resource) -> Result<Option<Value>> {
        driver.put_assignment(r, false).await?;
        Ok(None)
    }

    async fn update(&self, driver: &AzureDriver, r: &Resource, _: &Value) -> Result<()> {
        driver.put_assignment(r, true).await
    }

    async fn delete(&self, driver: &AzureDriver, r: &Resource) -> Result<()> {
        let a: AssignmentAttributes = attributes_of(r)?;
        driver
            .delete_id(&r.node.address, &DELETE_ASSIGNMENT, &a.id())
            .await
    }

    async fn release(&self, _: &AzureDriver, r: &Resource, _: &Value) -> Result<()> {
        Err(nothing_to_release(r))
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
