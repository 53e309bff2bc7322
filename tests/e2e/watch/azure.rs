//! The watch scenarios on Azure: federated credentials on the fake ARM server, the state in
//! Azurite (its lock a lease on the state blob).

use std::process::Command;

use serde_json::json;

use super::Cloud;
use crate::support::azurite::{ACCOUNT, Azurite};
use crate::support::fake_arm::{RG, SUB};
use crate::support::{FakeArm, TestDir, subject};

const CONTAINER: &str = "team-state";
const BLOB: &str = "watch.json";

struct Azure {
    arm: FakeArm,
    azurite: Azurite,
    runtime: tokio::runtime::Runtime,
}

impl Cloud for Azure {
    const RESTARTS: bool = true;
    /// Azure holds at most 20 federated credentials per identity (one per control plane):
    /// the first, alpha, the two the restart scenarios make and this many fit.
    const BURST: usize = 15;
    const WRITE: &'static str = "federatedIdentityCredentials";

    fn start(faults: &[&str]) -> Azure {
        let arm = FakeArm::start_with(faults);
        arm.seed_cluster(json!({}));
        arm.seed_storage("acmebackup");
        arm.seed_storage("acmebilling");
        let vault = format!("{RG}/providers/Microsoft.KeyVault/vaults/acme-vault");
        arm.admin("/admin/vaults", json!({"id": vault, "rbac": false}));
        let azurite = Azurite::start();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(azurite.create_container(CONTAINER));
        Azure {
            arm,
            azurite,
            runtime,
        }
    }

    fn space(&self) -> String {
        format!(
            "    azure:\n      subscription: {SUB}\n      resourceGroup: spaces\n      location: eastus\n      \
             cluster: aks-prod\n    components:\n      backup: {{ storageAccount: acmebackup }}\n      \
             billing: {{ storageAccount: acmebilling, container: metrics }}\n      \
             sharedSecrets: {{ keyVault: acme-vault }}\n"
        )
    }

    fn state(&self) -> String {
        format!("azblob://{ACCOUNT}/{CONTAINER}/{BLOB}")
    }

    fn command(&self, dir: &TestDir, args: &[&str]) -> Command {
        let mut cmd = dir.azure_command(&self.arm, args);
        cmd.env(
            "AZURE_STORAGE_CONNECTION_STRING",
            self.azurite.connection_string(),
        );
        cmd
    }

    fn credentials(&self, ns: &str) -> usize {
        [
            ("spaces-prod-backup", "mxp-controller"),
            ("spaces-prod-billing", "vector"),
            ("spaces-prod-shared-secrets", "external-secrets-controller"),
        ]
        .iter()
        .filter(|(identity, sa)| {
            self.arm.identity(identity).is_some()
                && self.arm.subjects(identity).contains(&subject(ns, sa))
        })
        .count()
    }

    fn locked(&self) -> bool {
        let answer = self.runtime.block_on(self.azurite.request(
            "HEAD",
            &format!("{CONTAINER}/{BLOB}"),
            &[],
        ));
        answer
            .headers
            .get("x-ms-lease-state")
            .is_some_and(|v| v == "leased")
    }
}

super::scenarios!(Azure);
