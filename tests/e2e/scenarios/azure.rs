//! The scenarios on Azure: the fake ARM's identities, credentials, role assignments and vault.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

use super::{Cloud, Drift, Limit, scenarios};
use crate::azure::{BLOB, access_policies, seeded, spec};
use crate::support::fake_arm::{identity_id, storage_id};
use crate::support::{FakeArm, TestDir, namespace, namespaces, subject};

pub struct Azure {
    arm: FakeArm,
}

scenarios!(Azure);

/// idplan's identities: (name, component, service account).
const IDENTITIES: [(&str, &str, &str); 3] = [
    ("spaces-prod-backup", "backup", "mxp-controller"),
    ("spaces-prod-billing", "billing", "vector"),
    (
        "spaces-prod-shared-secrets",
        "sharedSecrets",
        "external-secrets-controller",
    ),
];

fn component(identity: &str) -> &'static str {
    IDENTITIES
        .iter()
        .find(|(name, ..)| name.eq_ignore_ascii_case(identity))
        .unwrap_or_else(|| panic!("{identity} is none of idplan's"))
        .1
}

impl Azure {
    /// The name of the identity of `principal`.
    fn named(state: &Value, principal: &Value) -> String {
        state["identities"]
            .as_object()
            .unwrap()
            .values()
            .find(|i| i["properties"]["principalId"] == *principal)
            .map(|i| i["name"].as_str().unwrap().to_string())
            .unwrap_or_else(|| format!("principal {principal}"))
    }
}

impl Cloud for Azure {
    const FAULT_PLANES: usize = 10;
    const LOST_ON: &'static str = "PUT";
    const KILL_PLANES: usize = 10;
    const KILL_AT: &'static [usize] = &[2, 10, 10];
    const CREATES: &'static str = "^PUT ";
    const LOST: &'static str = "^PUT .*/(roleAssignments|federatedIdentityCredentials)/";
    const LOST_COUNTS: &'static [(&'static str, usize)] =
        &[("roleAssignments", 2), ("federatedIdentityCredentials", 6)];
    const IMPORTED: usize = 12;
    const REBUILT: &'static [&'static str] = &[];
    const WRITE: &'static str = "PUT ";

    async fn start(args: &[&str]) -> Azure {
        Azure { arm: seeded(args) }
    }

    fn spec(&self, n: usize) -> String {
        spec(&namespaces(0..n))
    }

    fn command(&self, dir: &TestDir, args: &[&str]) -> Command {
        dir.azure_command(&self.arm, args)
    }

    async fn held(&self) -> BTreeMap<String, usize> {
        let state = self.arm.state();
        let mut out = BTreeMap::new();
        let mut count = |key: String| *out.entry(key).or_default() += 1;
        for identity in state["identities"].as_object().unwrap().values() {
            let name = identity["name"].as_str().unwrap();
            count(format!("identity {name}"));
            let fics = state["fics"]
                .get(identity_id(name).to_lowercase())
                .and_then(Value::as_object);
            for fic in fics.into_iter().flat_map(|f| f.values()) {
                let p = &fic["properties"];
                count(format!(
                    "credential {name} {} {} {}",
                    p["subject"].as_str().unwrap(),
                    p["issuer"].as_str().unwrap(),
                    p["audiences"]
                ));
            }
        }
        for a in state["assignments"].as_object().unwrap().values() {
            let p = &a["properties"];
            let role = p["roleDefinitionId"].as_str().unwrap();
            count(format!(
                "assignment {} {} {} -> {}",
                p["scope"].as_str().unwrap(),
                role.rsplit('/').next().unwrap(),
                p["principalType"].as_str().unwrap(),
                Azure::named(&state, &p["principalId"])
            ));
        }
        for policy in access_policies(&self.arm) {
            count(format!(
                "access policy {} {}",
                Azure::named(&state, &policy["objectId"]),
                policy["permissions"]["secrets"]
            ));
        }
        out
    }

    fn expected(&self, n: usize) -> BTreeSet<String> {
        let issuer = crate::support::fake_arm::ISSUER;
        let mut out = BTreeSet::new();
        for (name, _, sa) in IDENTITIES {
            out.insert(format!("identity {name}"));
            for ns in namespaces(0..n) {
                out.insert(format!(
                    "credential {name} {} {issuer} [\"api://AzureADTokenExchange\"]",
                    subject(&ns, sa)
                ));
            }
        }
        for (account, name) in [
            ("acmebackup", "spaces-prod-backup"),
            ("acmebilling", "spaces-prod-billing"),
        ] {
            out.insert(format!(
                "assignment {} {BLOB} ServicePrincipal -> {name}",
                storage_id(account)
            ));
        }
        out.insert("access policy spaces-prod-shared-secrets [\"get\",\"list\"]".into());
        out
    }

    async fn assert_recorded(&self, state: &Value) {
        let state = state.to_string();
        for (name, ..) in IDENTITIES {
            let client = self.arm.identity_property(name, "clientId");
            assert!(
                state.contains(&client),
                "{name}'s client id {client} is not in the state"
            );
        }
    }

    async fn landed(&self, request: &str, _body: &str) -> String {
        let held = self.arm.state();
        let path = request
            .strip_prefix("PUT ")
            .unwrap_or_else(|| panic!("not a PUT: {request}"));
        let lower = path.to_lowercase();
        let identity = |lower: &str| {
            let (_, name) = lower.rsplit_once('/').unwrap();
            name.to_string()
        };
        if let Some((id, fic)) = lower.split_once("/federatedidentitycredentials/") {
            assert!(!held["fics"][id][fic].is_null(), "{path} was made");
            let ns = namespaces(0..Self::KILL_PLANES)
                .into_iter()
                .find(|ns| ns.eq_ignore_ascii_case(fic))
                .unwrap_or_else(|| panic!("{fic} is no control plane"));
            format!(
                "azurerm_federated_identity_credential.prod.{}.{ns}",
                component(&identity(id))
            )
        } else if lower.contains("/roleassignments/") {
            let a = &held["assignments"][lower.as_str()];
            assert!(!a.is_null(), "{path} was made");
            let name = Azure::named(&held, &a["properties"]["principalId"]);
            format!("azurerm_role_assignment.prod.{}", component(&name))
        } else if lower.contains("/accesspolicies/") {
            assert!(!access_policies(&self.arm).is_empty(), "{path} was made");
            "azurerm_key_vault_access_policy.prod.sharedSecrets".into()
        } else {
            assert!(
                !held["identities"][lower.as_str()].is_null(),
                "{path} was made"
            );
            format!(
                "azurerm_user_assigned_identity.prod.{}",
                component(&identity(&lower))
            )
        }
    }

    async fn remove_by_hand(&self, round: usize) -> Option<Drift> {
        if round > 0 {
            return None;
        }
        let fic = format!(
            "{}/federatedIdentityCredentials/{}?api-version=2026-05-31",
            identity_id("spaces-prod-billing"),
            namespace(1)
        );
        let (status, _) = self.arm.request("DELETE", &fic, None);
        assert_eq!(status, 200);
        Some(Drift {
            drift: vec![
                format!(
                    "azurerm_federated_identity_credential.prod.billing.{} was deleted outside \
                     idplan",
                    namespace(1)
                ),
                "Drift: 1 of 15".into(),
            ],
            plan: "Plan: 1 to add, 0 to change, 0 to destroy.".into(),
        })
    }

    fn limit(&self) -> Limit {
        Limit {
            over: self.spec(21),
            says: vec![
                "spaces[0].controlPlanes[20]".into(),
                "component backup".into(),
                "21 federated identity credentials".into(),
                "limit of 20".into(),
            ],
            located: vec![],
            fits: self.spec(20),
        }
    }

    /// Others' credentials on idplan's identity: `plan_counts_credentials_others_added_to_
    /// the_identity` (they need the identity, and 18 control planes applied first).
    async fn add_others(&self) -> Option<(String, String)> {
        None
    }
}
