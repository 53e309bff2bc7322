//! What `idplan init` reads on AWS: the role each component uses (its service accounts'
//! `eks.amazonaws.com/role-arn`, or without one the cluster's pod identity associations), the
//! roles' trust (exact or wildcard subjects) and the buckets and secrets their policies reach.

use std::collections::BTreeSet;

use futures::{StreamExt, TryStreamExt, stream};
use serde_json::Value;

use super::{AwsDriver, cloud_error};
use crate::error::Result;
use crate::graph::Location;
use crate::policy;
use crate::spec::survey::{Choices, Found, Resolved, Seen, Survey};

use crate::spec::ComponentKind;
use crate::spec::draft::{DraftComponent, Field, Value as Yaml};

/// A role a component uses, as init read it.
struct Role {
    name: String,
    /// Whether its web-identity trust matches subjects with `StringLike` (a wildcard).
    wildcard: bool,
    /// Every `Resource` its Allow statements name, inline and attached policies alike.
    resources: BTreeSet<String>,
}

impl AwsDriver {
    /// The space's `aws:` block and components, adopting the roles in use.
    pub async fn survey(
        &self,
        region: &str,
        cluster: &str,
        seen: &Seen,
        choices: &Choices,
        parallelism: usize,
    ) -> Result<Survey> {
        let location = Location::Aws {
            region: region.to_string(),
        };
        // The account and cluster must exist before anything is read of them.
        self.context(region, cluster).await?;
        let irsa = !seen.annotations.is_empty();
        let found = if irsa {
            seen.annotations.clone()
        } else {
            self.associated_roles(&location, cluster, seen, parallelism)
                .await?
        };
        let mut components = Vec::new();
        // (role, whether it trusts a pattern of subjects) of the adopted components.
        let mut trusts = Vec::new();
        for kind in ComponentKind::ALL {
            let left_out = |why: String| DraftComponent::LeftOut { kind, why };
            if !seen.accounts.contains_key(&kind) {
                components.push(left_out(format!(
                    "no {} service account in the control planes' host namespaces",
                    kind.service_account()
                )));
                continue;
            }
            let empty = Found::new();
            let (arn, choice) =
                match choices.resolve(kind, "role ARN", found.get(&kind).unwrap_or(&empty))? {
                    Resolved::One { value, comment } => (value, comment),
                    Resolved::None if irsa => {
                        components.push(left_out(
                            "its service accounts carry no eks.amazonaws.com/role-arn annotation"
                                .to_string(),
                        ));
                        continue;
                    }
                    Resolved::None => {
                        components.push(left_out(format!(
                            "no pod identity association of cluster {cluster} names its service \
                         account, and no service account carries a role-arn annotation"
                        )));
                        continue;
                    }
                };
            let name = match role_name(&arn) {
                Ok(name) => name,
                Err(why) => {
                    components.push(left_out(why));
                    continue;
                }
            };
            let Some(role) = self.read_role_use(&location, &name).await? else {
                components.push(left_out(format!(
                    "its service accounts name role {name}, which does not exist"
                )));
                continue;
            };
            let access = match access(kind, &role) {
                Ok(access) => access,
                Err(why) => {
                    components.push(left_out(why));
                    continue;
                }
            };
            trusts.push((role.name.clone(), role.wildcard));
            components.push(DraftComponent::Adopted {
                kind,
                name: Some(role.name),
                access,
                comments: choice.into_iter().collect(),
            });
        }
        let mut fields = vec![
            Field::text("region", region),
            Field::text("cluster", cluster),
        ];
        if irsa {
            fields.push(
                Field::text("mode", "irsa").with_comment(
                    "the components' service accounts carry eks.amazonaws.com/role-arn",
                ),
            );
            fields.push(subjects(&trusts));
        } else {
            fields.push(Field::text("mode", "pod-identity").with_comment(
                "no role-arn annotation: the cluster's pod identity associations name the roles",
            ));
        }
        Ok(Survey {
            cloud: "aws",
            fields,
            components,
        })
    }

    /// Per component, the roles the pod identity associations of the control planes' host
    /// namespaces name: one list of the cluster, then one describe per association.
    async fn associated_roles(
        &self,
        location: &Location,
        cluster: &str,
        seen: &Seen,
        parallelism: usize,
    ) -> Result<std::collections::BTreeMap<ComponentKind, Found>> {
        let listed = self
            .list_associations(location, cluster, None, None)
            .await?;
        let ours: Vec<(ComponentKind, String, String)> = listed
            .into_iter()
            .filter_map(|((ns, sa), id)| {
                let kind = ComponentKind::ALL
                    .into_iter()
                    .find(|k| k.service_account() == sa)?;
                seen.namespaces
                    .binary_search(&ns)
                    .is_ok()
                    .then_some((kind, ns, id))
            })
            .collect();
        let eks = self.eks(location);
        let described: Vec<(ComponentKind, String, Option<String>)> = stream::iter(ours)
            .map(|(kind, ns, id)| {
                let eks = eks.clone();
                async move {
                    let out = eks
                        .describe_pod_identity_association()
                        .cluster_name(cluster)
                        .association_id(&id)
                        .send()
                        .await
                        .map_err(|e| {
                            cloud_error(
                                format!("pod identity association {id} ({ns})"),
                                "eks:DescribePodIdentityAssociation",
                                e,
                            )
                        })?;
                    let arn = out
                        .association()
                        .and_then(|a| a.role_arn())
                        .map(str::to_string);
                    Ok::<_, crate::error::Error>((kind, ns, arn))
                }
            })
            .buffer_unordered(parallelism.max(1))
            .try_collect()
            .await?;
        let mut found = std::collections::BTreeMap::<ComponentKind, Found>::new();
        for (kind, ns, arn) in described {
            if let Some(arn) = arn {
                found
                    .entry(kind)
                    .or_default()
                    .entry(arn)
                    .or_default()
                    .push(ns);
            }
        }
        for namespaces in found.values_mut().flat_map(|f| f.values_mut()) {
            namespaces.sort();
        }
        Ok(found)
    }

    /// The role's trust and every resource its policies allow; `None` when it does not exist.
    async fn read_role_use(&self, location: &Location, name: &str) -> Result<Option<Role>> {
        let iam = self.iam(location);
        let resource = format!("IAM role {name}");
        let role = match iam.get_role().role_name(name).send().await {
            Ok(out) => out.role().cloned(),
            Err(e) if super::is_no_such_entity(&e) => None,
            Err(e) => return Err(cloud_error(&resource, "iam:GetRole", e)),
        };
        let Some(role) = role else {
            return Ok(None);
        };
        // Normalized: statements always a list, resources a list of strings.
        let document = |api: &'static str, raw: &str| {
            policy::parse_returned(raw)
                .map(|doc| policy::normalize(&doc))
                .map_err(|message| crate::error::Error::Cloud {
                    resource: resource.clone(),
                    api: api.into(),
                    message,
                })
        };
        let trust = document(
            "iam:GetRole",
            role.assume_role_policy_document().unwrap_or("{}"),
        )?;
        let mut documents = Vec::new();
        let mut inline = iam
            .list_role_policies()
            .role_name(name)
            .into_paginator()
            .items()
            .send();
        while let Some(policy) = inline.next().await {
            let policy = policy.map_err(|e| cloud_error(&resource, "iam:ListRolePolicies", e))?;
            let out = iam
                .get_role_policy()
                .role_name(name)
                .policy_name(&policy)
                .send()
                .await
                .map_err(|e| cloud_error(&resource, "iam:GetRolePolicy", e))?;
            documents.push(document("iam:GetRolePolicy", out.policy_document())?);
        }
        let mut attached = iam
            .list_attached_role_policies()
            .role_name(name)
            .into_paginator()
            .items()
            .send();
        while let Some(policy) = attached.next().await {
            let policy =
                policy.map_err(|e| cloud_error(&resource, "iam:ListAttachedRolePolicies", e))?;
            let arn = policy.policy_arn().unwrap_or_default();
            let what = format!("IAM policy {arn}");
            let version = iam
                .get_policy()
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| cloud_error(&what, "iam:GetPolicy", e))?
                .policy()
                .and_then(|p| p.default_version_id())
                .unwrap_or("v1")
                .to_string();
            let out = iam
                .get_policy_version()
                .policy_arn(arn)
                .version_id(version)
                .send()
                .await
                .map_err(|e| cloud_error(&what, "iam:GetPolicyVersion", e))?;
            let raw = out
                .policy_version()
                .and_then(|v| v.document())
                .unwrap_or("{}");
            documents.push(document("iam:GetPolicyVersion", raw)?);
        }
        Ok(Some(Role {
            name: role.role_name().to_string(),
            wildcard: statements(&trust)
                .any(|s| s["Condition"].get("StringLike").is_some_and(has_sub)),
            resources: documents
                .iter()
                .flat_map(statements)
                .filter(|s| s["Effect"] == "Allow")
                .flat_map(|s| s["Resource"].as_array().into_iter().flatten())
                .filter_map(|r| r.as_str().map(String::from))
                .collect(),
        }))
    }
}

/// The space's `subjects`: `wildcard` when every adopted role trusts a pattern, else `exact`
/// (the narrower trust), said in a comment when the roles differ.
fn subjects(trusts: &[(String, bool)]) -> Field {
    let patterns: Vec<&str> = trusts
        .iter()
        .filter(|(_, wildcard)| *wildcard)
        .map(|(name, _)| name.as_str())
        .collect();
    if patterns.is_empty() {
        Field::text("subjects", "exact")
            .with_comment("the roles trust each control plane's service account by name")
    } else if patterns.len() == trusts.len() {
        Field::text("subjects", "wildcard")
            .with_comment("the roles trust a StringLike pattern of service accounts")
    } else {
        Field::text("subjects", "exact").with_comment(format!(
            "a StringLike pattern of service accounts in {}, exact ones in the other roles: \
             exact is the narrower trust (set wildcard to keep the pattern)",
            patterns.join(", ")
        ))
    }
}

/// A role's name from its ARN; a role of another path is left out (idplan names roles by
/// the ARN of path `/`).
fn role_name(arn: &str) -> std::result::Result<String, String> {
    let path = arn
        .split_once(":role/")
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| format!("`{arn}` is not an IAM role ARN"))?;
    match path.rsplit_once('/') {
        None => Ok(path.to_string()),
        Some((dir, _)) => Err(format!(
            "role {arn} has path /{dir}/: idplan adopts roles of path / only"
        )),
    }
}

/// The statements of a normalized document (`policy::normalize` makes them a list).
fn statements(doc: &Value) -> impl Iterator<Item = &Value> {
    doc["Statement"].as_array().into_iter().flatten()
}

/// Whether a condition block tests an OIDC `:sub` key.
fn has_sub(condition: &Value) -> bool {
    condition
        .as_object()
        .is_some_and(|m| m.keys().any(|k| k.ends_with(":sub")))
}

/// What a component's role reaches, as the spec's keys: backup and billing one bucket (the
/// first when there are several, said in a comment), sharedSecrets its secrets.
fn access(kind: ComponentKind, role: &Role) -> std::result::Result<Vec<Field>, String> {
    match kind {
        ComponentKind::Backup | ComponentKind::Billing => {
            let buckets: BTreeSet<&str> = role
                .resources
                .iter()
                .filter_map(|r| r.split_once(":s3:::").map(|(_, b)| b))
                .map(|b| b.split('/').next().unwrap_or(b))
                .filter(|b| !b.is_empty() && !b.contains('*'))
                .collect();
            let mut buckets = buckets.into_iter();
            let first = buckets
                .next()
                .ok_or_else(|| format!("role {} grants no S3 bucket by name", role.name))?;
            let others: Vec<&str> = buckets.collect();
            let field = Field::text("bucket", first);
            Ok(vec![if others.is_empty() {
                field
            } else {
                field.with_comment(format!(
                    "role {} also reaches bucket {}: chose the first",
                    role.name,
                    others.join(", ")
                ))
            }])
        }
        ComponentKind::SharedSecrets => {
            let secrets: Vec<String> = role
                .resources
                .iter()
                .filter(|r| r.contains(":secretsmanager:"))
                .cloned()
                .collect();
            if secrets.is_empty() {
                return Err(format!(
                    "role {} grants no Secrets Manager secret",
                    role.name
                ));
            }
            Ok(vec![Field {
                key: "secrets",
                value: Yaml::List(secrets),
                comment: None,
            }])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn role_names_come_from_arns_of_path_slash() {
        assert_eq!(role_name("arn:aws:iam::1:role/backup").unwrap(), "backup");
        assert!(
            role_name("arn:aws:iam::1:role/team/backup")
                .unwrap_err()
                .contains("path /team/")
        );
        assert!(
            role_name("backup")
                .unwrap_err()
                .contains("not an IAM role ARN")
        );
    }

    #[test]
    fn buckets_and_secrets_are_read_from_the_resources() {
        let role = Role {
            name: "r".into(),
            wildcard: false,
            resources: [
                "arn:aws:s3:::b2/*",
                "arn:aws:s3:::b1",
                "arn:aws:s3:::b1/*",
                "arn:aws:secretsmanager:us-east-1:1:secret:x-*",
            ]
            .map(String::from)
            .into(),
        };
        let backup = access(ComponentKind::Backup, &role).unwrap();
        assert_eq!(backup[0].value, Yaml::Text("b1".into()));
        assert!(backup[0].comment.as_ref().unwrap().contains("b2"));
        let secrets = access(ComponentKind::SharedSecrets, &role).unwrap();
        assert_eq!(
            secrets[0].value,
            Yaml::List(vec!["arn:aws:secretsmanager:us-east-1:1:secret:x-*".into()])
        );
        let none = Role {
            resources: BTreeSet::new(),
            ..role
        };
        assert!(
            access(ComponentKind::Billing, &none)
                .unwrap_err()
                .contains("no S3 bucket")
        );
    }

    #[test]
    fn roles_that_differ_get_the_narrower_trust() {
        let text = |f: Field| match f.value {
            Yaml::Text(t) => t,
            other => panic!("{other:?}"),
        };
        let all = [("a".to_string(), true), ("b".to_string(), true)];
        assert_eq!(text(subjects(&all)), "wildcard");
        let mixed = [("a".to_string(), true), ("b".to_string(), false)];
        let field = subjects(&mixed);
        assert!(
            field
                .comment
                .as_ref()
                .unwrap()
                .starts_with("a StringLike pattern of service accounts in a,")
        );
        assert_eq!(text(field), "exact");
    }

    #[test]
    fn a_lone_statement_and_resource_read_as_lists_once_normalized() {
        let doc = policy::normalize(&json!({"Statement":
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}}));
        let resources: Vec<&Value> = statements(&doc)
            .flat_map(|s| s["Resource"].as_array().into_iter().flatten())
            .collect();
        assert_eq!(resources, [&json!("arn:aws:s3:::b/*")]);
    }

    #[test]
    fn a_string_like_sub_is_a_wildcard() {
        let trust = json!({"Statement": [{"Condition": {"StringLike": {
            "oidc.eks.us-east-1.amazonaws.com/id/X:sub": "system:serviceaccount:mxp-*-system:vector"}}}]});
        assert!(statements(&trust).any(|s| s["Condition"].get("StringLike").is_some_and(has_sub)));
    }
}
