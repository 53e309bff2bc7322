//! What `idplan init` reads on GCP: which recipe the Space follows (its service accounts'
//! `iam.gke.io/gcp-service-account` names a Google service account per component, or nothing
//! does and the components' principal identifiers are bound directly), the Cloud Storage
//! bucket each of backup and billing holds a role on, and whether sharedSecrets reads every
//! secret of the project or some of them.

use std::collections::BTreeSet;

use futures::{StreamExt, TryStreamExt, stream};
use reqwest::Method;
use serde_json::{Value, json};

use super::policy::role_members;
use super::{Api, GcpDriver};
use crate::error::Result;
use crate::spec::survey::{Choices, Found, Resolved, Seen, Survey};

use super::context::ANNOTATION;
use super::context::SECRET_ROLE;
use crate::spec::draft::{DraftComponent, Field, Value as Yaml};
use crate::spec::{ComponentKind, GkeCluster};

/// A policy read for the survey: what it is on (a bucket name, a secret id) and its members
/// per role.
struct Held {
    on: String,
    policy: Value,
}

impl Held {
    /// Whether any of `members` holds a role in the policy (`role`: that one only), in a
    /// binding without a condition (a conditional grant may not hold for the component).
    fn holds(&self, members: &BTreeSet<String>, role: Option<&str>) -> bool {
        self.policy["bindings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b["role"].as_str())
            .filter(|r| role.is_none_or(|want| want == *r))
            .any(|r| !role_members(&self.policy, r).is_disjoint(members))
    }
}

/// How one kind of policy is read: a GET with the policy version as a query parameter.
struct Policies {
    api: Api,
    /// The query parameter that asks for version 3 (bindings with conditions as they are).
    version: &'static str,
    op: &'static str,
    /// What the policies are on, for errors (`bucket`, `secret`).
    what: &'static str,
}

impl GcpDriver {
    /// The space's `gcp:` block and components, taking over the identities in use.
    pub async fn survey(
        &self,
        project: &str,
        location: &str,
        cluster: &str,
        seen: &Seen,
        choices: &Choices,
        parallelism: usize,
    ) -> Result<Survey> {
        let gke = GkeCluster {
            location: location.to_string(),
            name: cluster.to_string(),
        };
        // The project and cluster must exist; the cluster names the workload pool.
        let ctx = self.context(project, &gke).await?;
        let service_account = !seen.annotations.is_empty();
        let parallelism = parallelism.max(1);
        let mut buckets: Option<Vec<Held>> = None;
        let mut components = Vec::new();
        for kind in ComponentKind::ALL {
            let left_out = |why: String| DraftComponent::LeftOut { kind, why };
            let Some(namespaces) = seen.accounts.get(&kind) else {
                components.push(left_out(format!(
                    "no {} service account in the control planes' host namespaces",
                    kind.service_account()
                )));
                continue;
            };
            let empty = Found::new();
            let found = seen.annotations.get(&kind).unwrap_or(&empty);
            // The members that hold its grants, and the account taken over.
            let (members, name, comments) = if service_account {
                let (email, choice) =
                    match choices.resolve(kind, "Google service account", found)? {
                        Resolved::One { value, comment } => (value, comment),
                        Resolved::None => {
                            components.push(left_out(format!(
                                "its service accounts carry no {ANNOTATION} annotation"
                            )));
                            continue;
                        }
                    };
                match self.account_id(project, &email).await? {
                    Ok(id) => (
                        BTreeSet::from([format!("serviceAccount:{email}")]),
                        Some(id),
                        choice.into_iter().collect(),
                    ),
                    Err(why) => {
                        components.push(left_out(why));
                        continue;
                    }
                }
            } else {
                let members = namespaces
                    .iter()
                    .map(|ns| ctx.principal(ns, kind))
                    .collect();
                (members, None, Vec::new())
            };
            let who = match &name {
                Some(id) => format!("Google service account {id} has"),
                None => format!(
                    "the principal identifiers of {} have",
                    kind.service_account()
                ),
            };
            let access = match kind {
                ComponentKind::Backup | ComponentKind::Billing => {
                    if buckets.is_none() {
                        buckets = Some(self.bucket_policies(project, parallelism).await?);
                    }
                    let on: Vec<&str> = buckets
                        .iter()
                        .flatten()
                        .filter(|b| b.holds(&members, None))
                        .map(|b| b.on.as_str())
                        .collect();
                    match on.as_slice() {
                        [] => Err(format!("{who} no role on a bucket of project {project}")),
                        [one] => Ok(vec![Field::text("bucket", *one)]),
                        [first, others @ ..] => {
                            Ok(vec![Field::text("bucket", *first).with_comment(format!(
                                "it also holds a role on {}: only this one is managed",
                                others.join(", ")
                            ))])
                        }
                    }
                }
                ComponentKind::SharedSecrets => self
                    .secrets_read_by(project, &members, parallelism)
                    .await?
                    .map_err(|()| {
                        format!(
                            "{who} no {SECRET_ROLE} on project {project} nor on one of its \
                             secrets"
                        )
                    }),
            };
            match access {
                Ok(access) => components.push(DraftComponent::Adopted {
                    kind,
                    name,
                    access,
                    comments,
                }),
                Err(why) => components.push(left_out(why)),
            }
        }
        let mode = if service_account {
            Field::text("mode", "service-account").with_comment(format!(
                "the service accounts name Google service accounts ({ANNOTATION})"
            ))
        } else {
            Field::text("mode", "principal").with_comment(format!(
                "no service account names a Google service account ({ANNOTATION}):\nthe \
                 principal identifiers hold the roles"
            ))
        };
        Ok(Survey {
            cloud: "gcp",
            fields: vec![
                Field::text("project", project),
                Field {
                    key: "cluster",
                    value: Yaml::Map(vec![("location", gke.location), ("name", gke.name)]),
                    comment: None,
                },
                mode,
            ],
            components,
        })
    }

    /// The id of the Google service account `email` names, when it is one of `project`'s and
    /// exists; else why not.
    async fn account_id(
        &self,
        project: &str,
        email: &str,
    ) -> Result<std::result::Result<String, String>> {
        const API: &str = "iam.projects.serviceAccounts.get";
        let domain = format!("@{project}.iam.gserviceaccount.com");
        let Some(id) = email.strip_suffix(&domain).filter(|id| !id.is_empty()) else {
            return Ok(Err(format!(
                "{email} is not a service account of project {project}: idplan adopts only \
                 the project's own"
            )));
        };
        let path = format!("v1/projects/{project}/serviceAccounts/{email}");
        match self
            .call(Method::GET, Api::Iam, &path, &[], None, API)
            .await
        {
            Ok(_) => Ok(Ok(id.to_string())),
            Err(f) if f.is(404) => Ok(Err(format!(
                "Google service account {email} does not exist"
            ))),
            Err(f) => Err(f.into_error(&format!("Google service account {email}"), API)),
        }
    }

    /// Every item of a paged Google list (`key`: the answer's list field).
    async fn list_all(
        &self,
        api: Api,
        path: &str,
        query: &[(&str, &str)],
        key: &str,
        op: &'static str,
        what: &str,
    ) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = query.to_vec();
            if let Some(t) = &token {
                q.push(("pageToken", t));
            }
            let page = self
                .call(Method::GET, api, path, &q, None, op)
                .await
                .map_err(|f| f.into_error(what, op))?;
            items.extend(page[key].as_array().into_iter().flatten().cloned());
            match page["nextPageToken"].as_str().filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t.to_string()),
                None => return Ok(items),
            }
        }
    }

    /// Every bucket of the project with its IAM policy, by name.
    async fn bucket_policies(&self, project: &str, parallelism: usize) -> Result<Vec<Held>> {
        let what = format!("project {project}");
        let listed = self
            .list_all(
                Api::Storage,
                "b",
                &[("project", project)],
                "items",
                "storage.buckets.list",
                &what,
            )
            .await?;
        let mut names: Vec<String> = listed
            .iter()
            .filter_map(|b| b["name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        let targets = names
            .into_iter()
            .map(|b| (format!("b/{b}/iam"), b))
            .collect();
        let read = Policies {
            api: Api::Storage,
            version: "optionsRequestedPolicyVersion",
            op: "storage.buckets.getIamPolicy",
            what: "bucket",
        };
        self.policies(&read, targets, parallelism).await
    }

    /// The IAM policies of `targets` (the path of each policy, and what it is on), `read`
    /// at most `parallelism` at a time, in order; one deleted since it was listed is left out.
    async fn policies(
        &self,
        read: &Policies,
        targets: Vec<(String, String)>,
        parallelism: usize,
    ) -> Result<Vec<Held>> {
        let query = [(read.version, "3")];
        let read = stream::iter(targets)
            .map(|(path, on)| async move {
                match self
                    .call(Method::GET, read.api, &path, &query, None, read.op)
                    .await
                {
                    Ok(policy) => Ok(Some(Held { on, policy })),
                    Err(f) if f.is(404) => Ok(None),
                    Err(f) => Err(f.into_error(&format!("{} {on}", read.what), read.op)),
                }
            })
            .buffered(parallelism)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(read.into_iter().flatten().collect())
    }

    /// sharedSecrets' access: `{}` when `members` hold Secret Manager Secret Accessor on the
    /// project, else the ids of the secrets whose policy grants it to them; `Err(())` for
    /// none.
    async fn secrets_read_by(
        &self,
        project: &str,
        members: &BTreeSet<String>,
        parallelism: usize,
    ) -> Result<std::result::Result<Vec<Field>, ()>> {
        const OP: &str = "cloudresourcemanager.projects.getIamPolicy";
        let what = format!("project {project}");
        let policy = self
            .call(
                Method::POST,
                Api::ResourceManager,
                &format!("v3/projects/{project}:getIamPolicy"),
                &[],
                Some(&json!({ "options": { "requestedPolicyVersion": 3 } })),
                OP,
            )
            .await
            .map_err(|f| f.into_error(&what, OP))?;
        let on_project = Held {
            on: project.to_string(),
            policy,
        };
        if on_project.holds(members, Some(SECRET_ROLE)) {
            // Every secret of the project: the spec's `sharedSecrets` without a list.
            return Ok(Ok(Vec::new()));
        }
        let listed = self
            .list_all(
                Api::SecretManager,
                &format!("v1/projects/{project}/secrets"),
                &[],
                "secrets",
                "secretmanager.projects.secrets.list",
                &what,
            )
            .await?;
        // Listed names carry the project number: the id is the last segment.
        let ids: Vec<String> = listed
            .iter()
            .filter_map(|s| s["name"].as_str()?.rsplit('/').next().map(str::to_string))
            .collect();
        let targets = ids
            .into_iter()
            .map(|id| {
                (
                    format!("v1/projects/{project}/secrets/{id}:getIamPolicy"),
                    id,
                )
            })
            .collect();
        let read = Policies {
            api: Api::SecretManager,
            version: "options.requestedPolicyVersion",
            op: "secretmanager.projects.secrets.getIamPolicy",
            what: "secret",
        };
        let mut readable: Vec<String> = self
            .policies(&read, targets, parallelism)
            .await?
            .into_iter()
            .filter(|h| h.holds(members, Some(SECRET_ROLE)))
            .map(|h| h.on)
            .collect();
        if readable.is_empty() {
            return Ok(Err(()));
        }
        readable.sort();
        Ok(Ok(vec![Field {
            key: "secrets",
            value: Yaml::List(readable),
            comment: None,
        }]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_holds_members_in_unconditional_bindings_only() {
        let held = Held {
            on: "b".into(),
            policy: json!({"bindings": [
                {"role": "roles/storage.objectViewer", "members": ["serviceAccount:a@p.iam.gserviceaccount.com"]},
                {"role": SECRET_ROLE, "members": ["serviceAccount:c@p.iam.gserviceaccount.com"],
                 "condition": {"expression": "true"}},
            ]}),
        };
        let a = BTreeSet::from(["serviceAccount:a@p.iam.gserviceaccount.com".to_string()]);
        let c = BTreeSet::from(["serviceAccount:c@p.iam.gserviceaccount.com".to_string()]);
        assert!(held.holds(&a, None));
        assert!(!held.holds(&a, Some(SECRET_ROLE)));
        assert!(!held.holds(&c, None), "only under a condition");
    }
}
