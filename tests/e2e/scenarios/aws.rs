//! The scenarios on AWS pod identity: ministack's IAM and EKS.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

use super::{Cloud, Drift, Limit, scenarios};
use crate::aws_pod_identity::{CLUSTER, Eks, ROLE_PREFIX, expected, spec};
use crate::support::{Ministack, TestDir, namespace};

pub struct Aws {
    ms: Ministack,
    eks: Eks,
}

scenarios!(Aws);

fn planes(n: usize) -> Vec<usize> {
    (0..n).collect()
}

/// The component of an idplan role or service account.
fn component(name: &str) -> &'static str {
    match name {
        "spaces-pi-backup" | "mxp-controller" => "backup",
        "spaces-pi-billing" | "vector" => "billing",
        "spaces-pi-shared-secrets" | "external-secrets-controller" => "sharedSecrets",
        other => panic!("{other} is none of idplan's"),
    }
}

impl Cloud for Aws {
    const FAULT_PLANES: usize = 100;
    const LOST_ON: &'static str = "eks:POST";
    const KILL_PLANES: usize = 30;
    const KILL_AT: &'static [usize] = &[2, 30, 30];
    const CREATES: &'static str = "^(iam:CreateRole|eks:POST )";
    const LOST: &'static str = "^(iam:CreateRole|eks:POST )";
    const LOST_COUNTS: &'static [(&'static str, usize)] = &[("iam:CreateRole", 3), ("eks:POST", 6)];
    const IMPORTED: usize = 12;
    const REBUILT: &'static [&'static str] = &[];
    const WRITE: &'static str = "iam:CreateRole";

    async fn start(args: &[&str]) -> Aws {
        let ms = Ministack::start_with(args);
        ms.create_cluster(CLUSTER).await;
        let eks = Eks::new(&ms).await;
        Aws { ms, eks }
    }

    fn spec(&self, n: usize) -> String {
        spec(&planes(n), None)
    }

    fn command(&self, dir: &TestDir, args: &[&str]) -> Command {
        dir.ministack_command(&self.ms, args)
    }

    async fn held(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for role in self.eks.iam.role_names().await {
            if !role.starts_with("spaces-pi-") {
                continue;
            }
            let policies = self
                .eks
                .iam
                .client
                .list_role_policies()
                .role_name(&role)
                .send()
                .await
                .unwrap();
            for policy in policies.policy_names() {
                *out.entry(format!("policy {role}/{policy}")).or_default() += 1;
            }
            *out.entry(format!("role {role}")).or_default() += 1;
        }
        for ((ns, sa), a) in self.eks.all_associations().await {
            if a.role.starts_with(&format!("{ROLE_PREFIX}spaces-pi-")) {
                *out.entry(format!("association {ns}/{sa} -> {}", a.role))
                    .or_default() += 1;
            }
        }
        out
    }

    fn expected(&self, n: usize) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for role in [
            "spaces-pi-backup",
            "spaces-pi-billing",
            "spaces-pi-shared-secrets",
        ] {
            out.insert(format!("role {role}"));
            out.insert(format!("policy {role}/idplan"));
        }
        for ((ns, sa), role) in expected(&planes(n), "spaces-pi-shared-secrets") {
            out.insert(format!("association {ns}/{sa} -> {role}"));
        }
        out
    }

    async fn assert_recorded(&self, state: &Value) {
        let recorded: BTreeSet<String> = state["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["attributes"]["association_id"].as_str().map(String::from))
            .collect();
        let held: BTreeSet<String> = self
            .eks
            .associations()
            .await
            .into_values()
            .map(|a| a.id)
            .collect();
        assert_eq!(recorded, held, "the state records exactly what EKS holds");
    }

    async fn landed(&self, request: &str, body: &str) -> String {
        if request == "iam:CreateRole" {
            let name = body
                .split('&')
                .find_map(|p| p.strip_prefix("RoleName="))
                .unwrap_or_else(|| panic!("no RoleName in {body}"));
            assert!(self.eks.iam.role(name).await.is_some(), "{name} was made");
            return format!("aws_iam_role.pi.{}", component(name));
        }
        let body: Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{request}: {e}: {body}"));
        let (ns, sa) = (
            body["namespace"].as_str().unwrap().to_string(),
            body["serviceAccount"].as_str().unwrap().to_string(),
        );
        let held = self.eks.associations().await;
        assert!(
            held.contains_key(&(ns.clone(), sa.clone())),
            "{ns}/{sa} was made"
        );
        format!(
            "aws_eks_pod_identity_association.pi.{}.{ns}",
            component(&sa)
        )
    }

    async fn remove_by_hand(&self, round: usize) -> Option<Drift> {
        if round > 0 {
            return None;
        }
        let id = self.eks.associations().await[&(namespace(1), "vector".to_string())]
            .id
            .clone();
        self.eks
            .eks
            .delete_pod_identity_association()
            .cluster_name(CLUSTER)
            .association_id(&id)
            .send()
            .await
            .unwrap();
        Some(Drift {
            drift: vec![
                format!(
                    "aws_eks_pod_identity_association.pi.billing.{} was deleted outside idplan",
                    namespace(1)
                ),
                "Drift: 1 of 15".into(),
            ],
            plan: "Plan: 1 to add, 0 to change, 0 to destroy.".into(),
        })
    }

    fn limit(&self) -> Limit {
        // 1,667 control planes × 3 = 5,001.
        Limit {
            over: self.spec(1667),
            says: vec![
                "would hold 5001 pod identity associations (5001 of idplan's, 0 of others)".into(),
            ],
            located: vec![": spaces[0].controlPlanes: ".into()],
            fits: self.spec(1665),
        }
    }

    async fn add_others(&self) -> Option<(String, String)> {
        // 4,995 of idplan's fit alone; with 6 of someone else's they do not.
        for i in 0..6 {
            self.eks
                .create_association(&format!("other-{i}"), "app", &format!("{ROLE_PREFIX}other"))
                .await;
        }
        Some((
            self.spec(1665),
            "would hold 5001 pod identity associations (4995 of idplan's, 6 of others)".into(),
        ))
    }
}
