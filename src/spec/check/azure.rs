//! Azure: the `azure:` block (an AKS cluster in a subscription and resource group) and its
//! components: storage accounts, billing's container, key vaults and managed identity names.

use super::{Build, Check, Checked, Named, Rules, Written, show};
use crate::spec::names::{
    is_aks_name, is_azure_location, is_azure_resource, is_container_name, is_guid,
    is_identity_name, is_resource_group, is_storage_name, is_vault_name,
};
use crate::spec::schema::{At, RawAzure, RawBucketComponent, RawSecretsComponent};
use crate::spec::{AzureAccess, AzureSpace, Cloud, ComponentKind};

/// The `azure:` block; `None` when it has errors.
pub(super) fn block(
    check: &mut Check,
    space: &str,
    raw: At<RawAzure>,
) -> Option<Build<AzureAccess>> {
    let field = &format!("{space}.azure");
    let location = raw.location();
    let raw = raw.into_value();
    let errors_before = check.errors.len();
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
            check.error(
                value.location(),
                format!("{field}.{key}"),
                format!("invalid {key} `{shown}`: {expected}"),
            );
        }
    }
    (check.errors.len() == errors_before).then(|| -> Build<_> {
        Box::new(move |components| {
            Cloud::Azure(AzureSpace {
                subscription: raw.subscription.into_value().to_ascii_lowercase(),
                resource_group: raw.resource_group.into_value(),
                region: raw.location.into_value(),
                cluster: raw.cluster.into_value(),
                location,
                components,
            })
        })
    })
}

/// Azure's rules.
pub(super) struct AzureRules;

impl Rules for AzureRules {
    type Access = AzureAccess;

    /// A storage account, and billing's container.
    fn bucket(&self, check: &mut Check, c: Written<RawBucketComponent>) -> Checked<AzureAccess> {
        let (field, raw) = (c.field.as_str(), c.raw);
        let (kind, location) = (c.kind, c.location);
        let takes = "an Azure space takes `storageAccount`";
        check.not_here(raw.bucket.as_ref(), field, "bucket", takes);
        let storage_account = match raw.storage_account {
            None => {
                check.error(
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
                    check.error(
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
                check.error(
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
                    check.error(
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
                check.error(
                    v.location(),
                    format!("{field}.container"),
                    "`container` is for `billing` only",
                );
                None
            }
            (_, None) => None,
        };
        let name = self.name(check, field, raw.name);
        let access = storage_account.map(|account| AzureAccess::Storage { account, container });
        Checked::new(kind, location, name, access)
    }

    /// A key vault.
    fn secrets(&self, check: &mut Check, c: Written<RawSecretsComponent>) -> Checked<AzureAccess> {
        let (field, raw) = (c.field.as_str(), c.raw);
        let (kind, location) = (c.kind, c.location);
        let takes = "an Azure space takes `keyVault`";
        check.not_here(raw.secrets.as_ref(), field, "secrets", takes);
        let key_vault = match raw.key_vault {
            None => {
                check.error(
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
                    check.error(
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
        let name = self.name(check, field, raw.name);
        let access = key_vault.map(AzureAccess::KeyVault);
        Checked::new(kind, location, name, access)
    }

    /// A managed identity name.
    fn name(&self, check: &mut Check, component: &str, raw: Option<At<String>>) -> Named {
        let raw = raw?;
        let at = raw.location();
        let name = raw.into_value();
        if !is_identity_name(&name) {
            let shown = show(&name);
            check.error(
                at,
                format!("{component}.name"),
                format!(
                    "invalid managed identity name `{shown}`: expected 3 to 128 letters, digits, \
                     `-` and `_`, starting with a letter or digit"
                ),
            );
        }
        Some((name, at))
    }

    /// Managed identity names may have 128 characters: a default one always fits.
    fn default_name_error(&self, _name: &str) -> Option<String> {
        None
    }

    fn taken(&self, name: &str, other: ComponentKind) -> String {
        format!(
            "managed identity name `{name}` is already the identity of `{other}`: set a \
             different `name`"
        )
    }
}
