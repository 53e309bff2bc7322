//! The three Azure guides run literally against the fake ARM server: the REST calls `az`
//! makes for `az aks show`, `az identity create` / `show`, `az role assignment create`,
//! `az keyvault set-policy` and `az identity federated-credential create`, with the guides'
//! names.

use serde_json::{Value, json};

use super::super::fake_arm::{RG, SUB, identity_id, storage_id};
use super::super::{FakeArm, FakeKube, subject};
use super::{
    AZURE_USE, CLIENT_ID, Component, Ids, Planes, helm_components, later_control_plane, more,
    space_cluster, text,
};

pub const RESOURCE_GROUP: &str = "spaces";
pub const LOCATION: &str = "eastus";
pub const BACKUP_ACCOUNT: &str = "acmebackup";
pub const BILLING_ACCOUNT: &str = "acmebilling";
pub const BILLING_CONTAINER: &str = "metrics";
pub const VAULT: &str = "acme-vault";
pub const BLOB_CONTRIBUTOR: &str = "ba92f5b4-2d11-453d-a403-e96b0029c9fe";

/// The api-versions of the az CLI's clients.
const MSI: &str = "api-version=2023-01-31";
const AUTHORIZATION: &str = "api-version=2022-04-01";
const KEYVAULT: &str = "api-version=2023-07-01";
const AKS: &str = "api-version=2025-10-01";

/// One component's managed identity and what the guides made beside it.
#[derive(Debug, Clone)]
pub struct AzureIdentity {
    pub component: Component,
    pub name: String,
    /// Its ARM id.
    pub id: String,
    pub client_id: String,
    pub principal_id: String,
    /// (name, subject) of each federated credential, one per control plane.
    pub credentials: Vec<(String, String)>,
    /// `backup` and `billing`: the ARM id of the Storage Blob Data Contributor assignment,
    /// named by a random GUID as `az role assignment create` names it.
    pub assignment: Option<String>,
}

/// What the Azure guides left behind.
#[derive(Debug, Clone)]
pub struct AzureSpace {
    pub subscription: String,
    pub resource_group: String,
    pub location: String,
    pub cluster: String,
    /// The AKS issuer, as `az aks show` gives it.
    pub issuer: String,
    pub vault_id: String,
    pub namespaces: Vec<String>,
    /// One per component, in [`Component::ALL`] order.
    pub identities: Vec<AzureIdentity>,
}

/// The guides' identity names.
pub fn identity_name(c: Component) -> &'static str {
    match c {
        Component::Backup => "backup-restore-identity",
        Component::Billing => "billing-identity",
        Component::SharedSecrets => "secrets-identity",
    }
}

/// The name of the federated credential for the control plane at `index`: the guides' name
/// for the first (`backup-restore-federated-identity`), numbered from 2 for the next ones
/// (a name is unique per identity, and the guides show one control plane).
pub fn credential_name(c: Component, index: usize) -> String {
    let base = match c {
        Component::Backup => "backup-restore-federated-identity",
        Component::Billing => "billing-federated-identity",
        Component::SharedSecrets => "secrets-federated-identity",
    };
    if index == 0 {
        base.to_string()
    } else {
        format!("{base}-{}", index + 1)
    }
}

/// The ARM id of the Space's key vault.
pub fn vault_id() -> String {
    format!("{RG}/providers/Microsoft.KeyVault/vaults/{VAULT}")
}

/// A call that must answer one of `ok`: its body.
#[track_caller]
fn call(arm: &FakeArm, method: &str, path: &str, body: Option<&Value>, ok: &[u16]) -> Value {
    let (status, out) = arm.request(method, path, body);
    assert!(ok.contains(&status), "{method} {path}: {status} {out}");
    out
}

/// Seeds what exists before the guides start (the AKS cluster with its issuer, the storage
/// accounts, an access-policy key vault) and the Space's `n` control planes on `kube`, then
/// makes the guides' calls and annotates the service accounts as Helm would.
#[track_caller]
pub fn guide(arm: &FakeArm, kube: &FakeKube, n: usize) -> AzureSpace {
    arm.seed_cluster(json!({}));
    arm.seed_storage(BACKUP_ACCOUNT);
    arm.seed_storage(BILLING_ACCOUNT);
    arm.admin("/admin/vaults", json!({"id": vault_id(), "rbac": false}));
    let namespaces = space_cluster(kube, n);
    let cluster = super::super::fake_arm::CLUSTER;

    // export AKS_OIDC_ISSUER="$(az aks show --name <cluster> --resource-group <rg>
    //   --query "oidcIssuerProfile.issuerUrl" --output tsv)"
    let aks = call(
        arm,
        "GET",
        &format!("{RG}/providers/Microsoft.ContainerService/managedClusters/{cluster}?{AKS}"),
        None,
        &[200],
    );
    let issuer = text(&aks, "/properties/oidcIssuerProfile/issuerURL");

    let mut identities = Vec::new();
    for c in Component::ALL {
        let name = identity_name(c);
        let id = identity_id(name);
        // az identity create --name <name> --resource-group <rg> --location <location>
        call(
            arm,
            "PUT",
            &format!("{id}?{MSI}"),
            Some(&json!({"location": LOCATION})),
            &[200, 201],
        );
        // export USER_ASSIGNED_CLIENT_ID="$(az identity show ... --query clientId -otsv)"
        let shown = call(arm, "GET", &format!("{id}?{MSI}"), None, &[200]);
        let client_id = text(&shown, "/properties/clientId");
        let principal_id = text(&shown, "/properties/principalId");

        let assignment = match c {
            Component::Backup => Some(assign_blob_contributor(arm, &principal_id, BACKUP_ACCOUNT)),
            Component::Billing => {
                Some(assign_blob_contributor(arm, &principal_id, BILLING_ACCOUNT))
            }
            Component::SharedSecrets => {
                set_policy(arm, &principal_id);
                None
            }
        };

        // az identity federated-credential create --name <credential> --identity-name <name>
        //   --resource-group <rg> --issuer ${AKS_OIDC_ISSUER}
        //   --subject system:serviceaccount:<namespace>:<service account>
        let mut credentials = Vec::new();
        for (i, ns) in namespaces.iter().enumerate() {
            let fic = credential_name(c, i);
            let sub = subject(ns, c.service_account());
            call(
                arm,
                "PUT",
                &format!("{id}/federatedIdentityCredentials/{fic}?{MSI}"),
                Some(&json!({"properties": {"issuer": issuer, "subject": sub,
                                            "audiences": ["api://AzureADTokenExchange"]}})),
                &[200, 201],
            );
            credentials.push((fic, sub));
        }
        identities.push(AzureIdentity {
            component: c,
            name: name.to_string(),
            id,
            client_id,
            principal_id,
            credentials,
            assignment,
        });
    }

    let space = AzureSpace {
        subscription: SUB.to_string(),
        resource_group: RESOURCE_GROUP.to_string(),
        location: LOCATION.to_string(),
        cluster: cluster.to_string(),
        issuer,
        vault_id: vault_id(),
        namespaces,
        identities,
    };
    helm_components(
        kube,
        &space.namespaces,
        &|c| space.annotation(c),
        Some(AZURE_USE),
    );
    space
}

/// `az role assignment create --role "Storage Blob Data Contributor" --assignee <client id>
/// --scope <storage account id>`: the role looked up by name at the scope, then a PUT under a
/// random GUID. (az resolves the client id to the principal's object id through Microsoft
/// Graph, which no fake serves: for a managed identity that object id is its principal id.)
/// Returns the assignment's ARM id.
#[track_caller]
fn assign_blob_contributor(arm: &FakeArm, principal_id: &str, account: &str) -> String {
    let scope = storage_id(account);
    let filter = "$filter=roleName%20eq%20%27Storage%20Blob%20Data%20Contributor%27";
    let definitions = call(
        arm,
        "GET",
        &format!(
            "{scope}/providers/Microsoft.Authorization/roleDefinitions?{filter}&{AUTHORIZATION}"
        ),
        None,
        &[200],
    );
    let role = text(&definitions, "/value/0/id");
    let name = uuid::Uuid::new_v4();
    let id = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}");
    call(
        arm,
        "PUT",
        &format!("{id}?{AUTHORIZATION}"),
        Some(
            &json!({"properties": {"roleDefinitionId": role, "principalId": principal_id,
                                    "principalType": "ServicePrincipal"}}),
        ),
        &[201],
    );
    id
}

/// `az keyvault set-policy --name <vault> --resource-group <rg> --object-id <principal id>
/// --secret-permissions get list`: the vault read, the entry added (or its secret permissions
/// replaced), the whole vault written back.
#[track_caller]
fn set_policy(arm: &FakeArm, principal_id: &str) {
    let path = format!("{}?{KEYVAULT}", vault_id());
    let mut vault = call(arm, "GET", &path, None, &[200]);
    let tenant = text(&vault, "/properties/tenantId");
    let policies = vault["properties"]["accessPolicies"]
        .as_array_mut()
        .expect("a vault with access policies");
    match policies.iter_mut().find(|p| {
        p["objectId"]
            .as_str()
            .is_some_and(|o| o.eq_ignore_ascii_case(principal_id))
    }) {
        Some(entry) => entry["permissions"]["secrets"] = json!(["get", "list"]),
        None => policies.push(json!({"tenantId": tenant, "objectId": principal_id,
                                     "permissions": {"secrets": ["get", "list"]}})),
    }
    let body = json!({"location": vault["location"], "tags": vault["tags"],
                      "properties": vault["properties"]});
    call(arm, "PUT", &path, Some(&body), &[200, 201]);
}

impl AzureSpace {
    /// The annotation Helm gives component `c`'s service account: its identity's client id.
    pub fn annotation(&self, c: Component) -> Option<(&'static str, String)> {
        Some((CLIENT_ID, self.identity(c).client_id.clone()))
    }

    /// A control plane created after the manual setup (index `i`): its host namespace and
    /// components, annotated and labelled as Helm does, and no federated credential. Returns
    /// its host namespace.
    #[track_caller]
    pub fn add_control_plane(&self, kube: &FakeKube, i: usize) -> String {
        later_control_plane(kube, i, &|c| self.annotation(c), Some(AZURE_USE))
    }

    /// The identity of component `c`.
    pub fn identity(&self, c: Component) -> &AzureIdentity {
        self.identities
            .iter()
            .find(|i| i.component == c)
            .expect("every component has an identity")
    }

    /// The ids these identities have in `arm` now: `<component>.clientId`,
    /// `<component>.principalId`; the names of their federated credentials
    /// (`<component>.credential.<subject>`) and of the role assignments of their principals
    /// (`<component>.assignment.<scope>`). An identity that is gone has no entry.
    #[track_caller]
    pub fn read_ids(&self, arm: &FakeArm) -> Ids {
        let state = arm.state();
        let mut ids = Ids::new();
        for identity in &self.identities {
            let key = identity.component.key();
            let Some(found) = state["identities"].get(identity.id.to_lowercase()) else {
                continue;
            };
            ids.insert(
                format!("{key}.clientId"),
                text(found, "/properties/clientId"),
            );
            let principal = text(found, "/properties/principalId");
            ids.insert(format!("{key}.principalId"), principal.clone());
            for fic in state["fics"]
                .get(identity.id.to_lowercase())
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(|f| f.values())
            {
                let sub = text(fic, "/properties/subject");
                ids.insert(format!("{key}.credential.{sub}"), text(fic, "/name"));
            }
            for a in state["assignments"]
                .as_object()
                .into_iter()
                .flat_map(|a| a.values())
            {
                if a["properties"]["principalId"] == principal.as_str() {
                    let scope = text(a, "/properties/scope");
                    ids.insert(format!("{key}.assignment.{scope}"), text(a, "/name"));
                }
            }
        }
        ids
    }

    /// An idplan spec for this Space whose components name the guides' identities; `extra`
    /// goes into each component's mapping (`adopt: true`).
    pub fn spec(&self, planes: Planes, extra: &str) -> String {
        let named = |c: Component| format!(", name: {}{}", identity_name(c), more(extra));
        self.spec_with(planes, named)
    }

    /// An idplan spec for this Space with idplan's default names: new identities beside the
    /// guides' ones.
    pub fn spec_unnamed(&self, planes: Planes) -> String {
        self.spec_with(planes, |_| String::new())
    }

    fn spec_with(&self, planes: Planes, tail: impl Fn(Component) -> String) -> String {
        format!(
            "version: 1\nspaces:\n  - name: prod\n{}    azure:\n      subscription: {}\n      \
             resourceGroup: {}\n      location: {}\n      cluster: {}\n    components:\n      \
             backup: {{ storageAccount: {BACKUP_ACCOUNT}{} }}\n      \
             billing: {{ storageAccount: {BILLING_ACCOUNT}, container: {BILLING_CONTAINER}{} }}\n      \
             sharedSecrets: {{ keyVault: {VAULT}{} }}\n",
            planes.block(&self.namespaces),
            self.subscription,
            self.resource_group,
            self.location,
            self.cluster,
            tail(Component::Backup),
            tail(Component::Billing),
            tail(Component::SharedSecrets),
        )
    }
}
