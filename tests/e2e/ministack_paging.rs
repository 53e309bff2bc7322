//! The test peer is faithful where idplan depends on it: the ministack launcher
//! restores EKS's paging of ListPodIdentityAssociations (ministack alone
//! returns at most `maxResults` and never a `nextToken`), and every test gets
//! a server of its own.

use std::collections::BTreeSet;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};

use crate::support::Ministack;

const TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_pod_identity_associations_pages_by_100_with_opaque_tokens() {
    let started = Instant::now();
    let ms = Ministack::start();
    let config = ms.sdk_config().await;
    let eks = aws_sdk_eks::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);

    let issuer = ms.create_cluster("paging").await;
    assert!(issuer.contains("/oidc/id/"), "issuer {issuer}");
    let role_arn = iam
        .create_role()
        .role_name("paging-pods")
        .assume_role_policy_document(TRUST_POLICY)
        .send()
        .await
        .expect("CreateRole")
        .role()
        .expect("CreateRole returns the role")
        .arn()
        .to_string();

    let created: BTreeSet<String> = futures::stream::iter(0..250)
        .map(|i| {
            let (eks, role_arn) = (eks.clone(), role_arn.clone());
            async move {
                let out = eks
                    .create_pod_identity_association()
                    .cluster_name("paging")
                    .namespace(format!("ns-{i}"))
                    .service_account("sa")
                    .role_arn(role_arn)
                    .send()
                    .await?;
                Ok::<_, aws_sdk_eks::Error>(
                    out.association()
                        .and_then(|a| a.association_id())
                        .expect("the association has an id")
                        .to_string(),
                )
            }
        })
        .buffer_unordered(16)
        .try_collect()
        .await
        .expect("CreatePodIdentityAssociation");
    assert_eq!(created.len(), 250);

    let mut sizes = Vec::new();
    let mut tokens = Vec::new();
    let mut listed = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let page = eks
            .list_pod_identity_associations()
            .cluster_name("paging")
            .max_results(100)
            .set_next_token(next_token.clone())
            .send()
            .await
            .expect("ListPodIdentityAssociations");
        sizes.push(page.associations().len());
        listed.extend(
            page.associations()
                .iter()
                .map(|a| a.association_id().expect("summary has an id").to_string()),
        );
        next_token = page.next_token().map(str::to_string);
        tokens.push(next_token.clone());
        if next_token.is_none() {
            break;
        }
        assert!(sizes.len() < 10, "paging does not end: {sizes:?}");
    }
    assert_eq!(sizes, [100, 100, 50]);
    let present: Vec<bool> = tokens.iter().map(Option::is_some).collect();
    assert_eq!(present, [true, true, false]);
    for token in tokens.iter().flatten() {
        assert!(
            token.parse::<u64>().is_err(),
            "nextToken {token:?} should be opaque, not a plain offset"
        );
    }
    let distinct: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(distinct.len(), 250, "duplicates across pages");
    assert_eq!(distinct, created);

    // The SDK's paginator sees the same 250.
    let paginated: Vec<_> = eks
        .list_pod_identity_associations()
        .cluster_name("paging")
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("paginated ListPodIdentityAssociations");
    assert_eq!(paginated.len(), 250);

    // ministack's own filters still apply.
    let filtered = eks
        .list_pod_identity_associations()
        .cluster_name("paging")
        .namespace("ns-7")
        .service_account("sa")
        .send()
        .await
        .expect("filtered ListPodIdentityAssociations");
    assert_eq!(filtered.associations().len(), 1);
    assert_eq!(filtered.associations()[0].namespace(), Some("ns-7"));
    assert!(filtered.next_token().is_none());

    // Out of range maxResults and an unknown token are InvalidParameterException.
    for max_results in [101, 0] {
        let err = eks
            .list_pod_identity_associations()
            .cluster_name("paging")
            .max_results(max_results)
            .send()
            .await
            .expect_err("maxResults out of 1..=100 is rejected");
        assert!(
            err.as_service_error()
                .is_some_and(|e| e.is_invalid_parameter_exception()),
            "maxResults {max_results}: {err:?}"
        );
    }
    let err = eks
        .list_pod_identity_associations()
        .cluster_name("paging")
        .next_token("not-a-token")
        .send()
        .await
        .expect_err("an invalid nextToken is rejected");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_invalid_parameter_exception()),
        "{err:?}"
    );
    eprintln!(
        "ministack healthy after {:?}; whole test {:?}",
        ms.startup,
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_test_gets_its_own_ministack() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(Ministack::start);
        let b = s.spawn(Ministack::start);
        (
            a.join().expect("first start"),
            b.join().expect("second start"),
        )
    });
    assert_ne!(a.port, b.port);
    assert_ne!(a.endpoint, b.endpoint);

    let issuer = a.create_cluster("only-in-a").await;
    assert!(
        issuer.starts_with(&format!("http://127.0.0.1:{}/oidc/id/", a.port)),
        "issuer {issuer}"
    );
    assert_eq!(clusters(&a).await, ["only-in-a"]);
    assert!(clusters(&b).await.is_empty());
    eprintln!("startup: a {:?}, b {:?}", a.startup, b.startup);
}

async fn clusters(ms: &Ministack) -> Vec<String> {
    aws_sdk_eks::Client::new(&ms.sdk_config().await)
        .list_clusters()
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListClusters on {}: {e:?}", ms.endpoint))
        .clusters()
        .to_vec()
}
