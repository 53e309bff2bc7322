//! The watch scenarios on AWS: EKS Pod Identity on ministack, the state in ministack's S3.

use std::process::Command;

use super::Cloud;
use crate::support::{Ministack, TestDir};

const CLUSTER: &str = "spaces";
const BUCKET: &str = "team-state";
const KEY: &str = "watch.json";

struct Aws {
    ms: Ministack,
    runtime: tokio::runtime::Runtime,
    eks: aws_sdk_eks::Client,
    s3: aws_sdk_s3::Client,
}

impl Cloud for Aws {
    const RESTARTS: bool = true;
    const WRITE: &'static str = "eks:POST /clusters/spaces/pod-identity-associations";

    fn start(faults: &[&str]) -> Aws {
        let ms = Ministack::start_with(faults);
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (eks, s3) = runtime.block_on(async {
            ms.create_cluster(CLUSTER).await;
            let config = ms.sdk_config().await;
            let s3 = aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&config)
                    .force_path_style(true)
                    .build(),
            );
            s3.create_bucket().bucket(BUCKET).send().await.unwrap();
            (aws_sdk_eks::Client::new(&config), s3)
        });
        Aws {
            ms,
            runtime,
            eks,
            s3,
        }
    }

    fn space(&self) -> String {
        format!(
            "    aws:\n      region: us-east-1\n      cluster: {CLUSTER}\n      mode: pod-identity\n    \
             components:\n      backup: {{ bucket: acme-backup }}\n      billing: {{ bucket: acme-billing }}\n      \
             sharedSecrets: {{ secrets: [\"arn:aws:secretsmanager:us-east-1:000000000000:secret:s\"] }}\n"
        )
    }

    fn state(&self) -> String {
        format!("s3://{BUCKET}/{KEY}")
    }

    fn command(&self, dir: &TestDir, args: &[&str]) -> Command {
        dir.ministack_command(&self.ms, args)
    }

    fn credentials(&self, ns: &str) -> usize {
        self.runtime.block_on(async {
            let mut n = 0;
            let mut pages = self
                .eks
                .list_pod_identity_associations()
                .cluster_name(CLUSTER)
                .namespace(ns)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                n += page.unwrap().associations().len();
            }
            n
        })
    }

    fn locked(&self) -> bool {
        self.runtime.block_on(async {
            let lock = format!("{KEY}.lock");
            match self.s3.head_object().bucket(BUCKET).key(lock).send().await {
                Ok(_) => true,
                Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => false,
                Err(e) => panic!("HEAD the lock: {e:?}"),
            }
        })
    }
}

super::scenarios!(Aws);

/// What does not depend on the cloud runs on one.
#[test]
fn stops_cleanly_mid_apply() {
    super::stops_cleanly_mid_apply::<Aws>();
}
