//! IAM policy documents: building the ones idplan writes, and comparing them semantically.
//!
//! IAM hands documents back reformatted: a one-element list may come back as a string,
//! statements and values reordered, the trust policy URL-encoded. [`normalize`] maps every
//! such variant of a document to one canonical value, so equal means semantically equal.

use serde_json::{Map, Value, json};

pub const VERSION: &str = "2012-10-17";

/// Keys of a statement whose value is a string or a list of strings, where order is meaningless.
const SET_KEYS: [&str; 4] = ["Action", "NotAction", "Resource", "NotResource"];

/// The canonical form of a policy document. Object keys are sorted (serde_json's map is a
/// BTreeMap); set-like values become sorted, de-duplicated lists; statements are sorted.
pub fn normalize(doc: &Value) -> Value {
    let Value::Object(top) = doc else {
        return doc.clone();
    };
    let mut out = Map::new();
    for (k, v) in top {
        if k == "Statement" {
            let mut statements: Vec<Value> = as_list(v).iter().map(normalize_statement).collect();
            statements.sort_by_cached_key(|s| s.to_string());
            statements.dedup();
            out.insert(k.clone(), Value::Array(statements));
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

fn normalize_statement(statement: &Value) -> Value {
    let Value::Object(fields) = statement else {
        return statement.clone();
    };
    let mut out = Map::new();
    for (k, v) in fields {
        let v = match k.as_str() {
            k if SET_KEYS.contains(&k) => string_set(v),
            "Principal" | "NotPrincipal" => match v {
                Value::Object(m) => map_values(m, string_set),
                other => other.clone(),
            },
            // {operator: {key: value-or-values}}
            "Condition" => match v {
                Value::Object(ops) => map_values(ops, |keys| match keys {
                    Value::Object(m) => map_values(m, string_set),
                    other => other.clone(),
                }),
                other => other.clone(),
            },
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

fn map_values(m: &Map<String, Value>, f: impl Fn(&Value) -> Value) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), f(v))).collect())
}

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

/// A string or list of scalars as a sorted, de-duplicated list of strings (IAM stores
/// condition values as strings, so `true` and `"true"` are the same).
fn string_set(v: &Value) -> Value {
    let mut items: Vec<String> = as_list(v)
        .into_iter()
        .map(|item| match item {
            Value::String(s) => s,
            other => other.to_string(),
        })
        .collect();
    items.sort();
    items.dedup();
    Value::Array(items.into_iter().map(Value::String).collect())
}

/// Parses a document as IAM returns it: `GetRole` and `GetRolePolicy` URL-encode it (RFC 3986),
/// some endpoints do not.
pub fn parse_returned(raw: &str) -> Result<Value, String> {
    if let Ok(v) = serde_json::from_str(raw) {
        return Ok(v);
    }
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|e| format!("policy document is not valid UTF-8 after URL decoding: {e}"))?;
    serde_json::from_str(&decoded).map_err(|e| format!("policy document is not JSON: {e}"))
}

/// The size IAM counts against the trust policy quota: characters, whitespace not counted.
pub fn size(doc: &Value) -> usize {
    doc.to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .count()
}

/// Who may assume a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// IRSA: web identity from the cluster's OIDC provider, for these `sub` values.
    Irsa {
        provider_arn: String,
        /// Issuer without scheme, as IAM condition keys spell it.
        issuer: String,
        subjects: Values,
    },
    /// EKS Pod Identity: the pods.eks.amazonaws.com service principal, for this account, one
    /// cluster, one service account and these namespaces, through the session tags EKS sets.
    PodIdentity(PodIdentityTrust),
}

/// Whom a pod identity role trusts: the session tags EKS Pod Identity sets on the session
/// (the EKS user guide, "pod identity role trust policy" and "session tags").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodIdentityTrust {
    /// `aws:SourceAccount`: the account whose EKS asks.
    pub account_id: String,
    /// `aws:RequestTag/eks-cluster-arn`: the Space's cluster.
    pub cluster_arn: String,
    /// `aws:RequestTag/kubernetes-service-account`: the component's service account.
    pub service_account: String,
    /// `aws:RequestTag/kubernetes-namespace`: the host namespaces.
    pub namespaces: Values,
}

/// The values a condition key must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Values {
    /// `StringEquals` on every listed value.
    Exact(Vec<String>),
    /// `StringLike` on one pattern.
    Like(String),
}

impl Trust {
    /// The values listed one by one, if any: what the trust policy grows with.
    pub fn listed(&self) -> Option<&[String]> {
        match self {
            Trust::Irsa {
                subjects: Values::Exact(v),
                ..
            }
            | Trust::PodIdentity(PodIdentityTrust {
                namespaces: Values::Exact(v),
                ..
            }) => Some(v),
            _ => None,
        }
    }

    /// The same trust with its listed values replaced by `values`.
    pub fn with_listed(&self, values: Vec<String>) -> Trust {
        let mut out = self.clone();
        match &mut out {
            Trust::Irsa { subjects: v, .. }
            | Trust::PodIdentity(PodIdentityTrust { namespaces: v, .. }) => {
                *v = Values::Exact(values)
            }
        }
        out
    }
}

/// The session tag keys EKS Pod Identity sets, as trust policy condition keys.
pub const TAG_CLUSTER_ARN: &str = "aws:RequestTag/eks-cluster-arn";
pub const TAG_NAMESPACE: &str = "aws:RequestTag/kubernetes-namespace";
pub const TAG_SERVICE_ACCOUNT: &str = "aws:RequestTag/kubernetes-service-account";

pub fn trust_policy(trust: &Trust) -> Value {
    trust_policy_of(std::slice::from_ref(trust))
}

/// One trust policy with a statement per trust: a role that is assumed both ways while a
/// space switches mode.
pub fn trust_policy_of(trusts: &[Trust]) -> Value {
    let statements: Vec<Value> = trusts.iter().map(statement).collect();
    json!({ "Version": VERSION, "Statement": statements })
}

fn statement(trust: &Trust) -> Value {
    match trust {
        Trust::Irsa {
            provider_arn,
            issuer,
            subjects,
        } => {
            let aud = format!("{issuer}:aud");
            let sub = format!("{issuer}:sub");
            let condition = match subjects {
                Values::Exact(subjects) => json!({
                    "StringEquals": { aud: "sts.amazonaws.com", sub: subjects },
                }),
                Values::Like(pattern) => json!({
                    "StringEquals": { aud: "sts.amazonaws.com" },
                    "StringLike": { sub: pattern },
                }),
            };
            json!({
                "Effect": "Allow",
                "Principal": { "Federated": provider_arn },
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": condition,
            })
        }
        Trust::PodIdentity(t) => {
            let mut equals = json!({
                "aws:SourceAccount": t.account_id,
                TAG_CLUSTER_ARN: t.cluster_arn,
                TAG_SERVICE_ACCOUNT: t.service_account,
            });
            let mut condition = Map::new();
            match &t.namespaces {
                Values::Exact(namespaces) => {
                    equals[TAG_NAMESPACE] = json!(namespaces);
                }
                Values::Like(pattern) => {
                    condition.insert("StringLike".into(), json!({ TAG_NAMESPACE: pattern }));
                }
            }
            condition.insert("StringEquals".into(), equals);
            json!({
                "Effect": "Allow",
                "Principal": { "Service": "pods.eks.amazonaws.com" },
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Condition": condition,
            })
        }
    }
}

/// Read-write access to one bucket and its objects (backup and billing).
pub fn s3_bucket_policy(partition: &str, bucket: &str) -> Value {
    json!({
        "Version": VERSION,
        "Statement": [{
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteObject"],
            "Resource": [
                format!("arn:{partition}:s3:::{bucket}"),
                format!("arn:{partition}:s3:::{bucket}/*"),
            ],
        }],
    })
}

/// Read access to the listed secrets (sharedSecrets).
pub fn secrets_read_policy(secrets: &[String]) -> Value {
    json!({
        "Version": VERSION,
        "Statement": [{
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Resource": secrets,
        }],
    })
}

/// What changed in a policy document, in its own words: per aspect (principals, actions,
/// resources, subjects, other condition values), the values added and removed. Statement
/// structure is flattened: the reviewer learns who and what gained or lost access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `actions`, `resources`, `principals (Federated)`, `subjects`, `condition StringEquals k`;
    /// prefixed with `denied ` for a Deny statement.
    pub aspect: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// Whether a value is an IAM policy document.
pub fn is_document(v: &Value) -> bool {
    v.get("Statement").is_some()
}

/// The semantic change from `before` to `after` (either may be absent: everything added or
/// removed), aspects in a stable order; an aspect that did not change is left out.
pub fn changes(before: Option<&Value>, after: Option<&Value>) -> Vec<Change> {
    use std::collections::{BTreeMap, BTreeSet};
    let facts = |doc: Option<&Value>| -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let Some(doc) = doc.map(normalize) else {
            return out;
        };
        for statement in doc.get("Statement").map(as_list).unwrap_or_default() {
            let deny = statement.get("Effect").and_then(Value::as_str) == Some("Deny");
            let mut add = |aspect: String, values: &Value| {
                let aspect = if deny {
                    format!("denied {aspect}")
                } else {
                    aspect
                };
                let set = out.entry(aspect).or_default();
                for v in as_list(&string_set(values)) {
                    set.insert(v.as_str().unwrap_or_default().to_string());
                }
            };
            let Value::Object(fields) = &statement else {
                continue;
            };
            for (key, value) in fields {
                match key.as_str() {
                    "Action" => add("actions".into(), value),
                    "NotAction" => add("all actions but".into(), value),
                    "Resource" => add("resources".into(), value),
                    "NotResource" => add("all resources but".into(), value),
                    "Principal" | "NotPrincipal" => match value {
                        Value::Object(types) => {
                            for (t, v) in types {
                                add(format!("{} ({t})", key.to_lowercase()), v);
                            }
                        }
                        other => add(key.to_lowercase(), other),
                    },
                    "Condition" => {
                        let Value::Object(ops) = value else { continue };
                        for (op, keys) in ops {
                            let Value::Object(keys) = keys else { continue };
                            for (k, v) in keys {
                                let aspect = if k.ends_with(":sub") {
                                    "subjects".to_string()
                                } else if k.ends_with(":aud") {
                                    "audiences".to_string()
                                } else {
                                    format!("condition {op} {k}")
                                };
                                add(aspect, v);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        out
    };
    let (old, new) = (facts(before), facts(after));
    let empty = std::collections::BTreeSet::new();
    let mut aspects: Vec<&String> = old.keys().chain(new.keys()).collect();
    aspects.sort_by_key(|a| (aspect_rank(a), a.as_str()));
    aspects.dedup();
    aspects
        .into_iter()
        .filter_map(|aspect| {
            let (o, n) = (
                old.get(aspect).unwrap_or(&empty),
                new.get(aspect).unwrap_or(&empty),
            );
            let change = Change {
                aspect: aspect.clone(),
                added: n.difference(o).cloned().collect(),
                removed: o.difference(n).cloned().collect(),
            };
            (!change.added.is_empty() || !change.removed.is_empty()).then_some(change)
        })
        .collect()
}

/// Who first (principals, subjects), then what (actions, resources), then the rest.
fn aspect_rank(aspect: &str) -> u8 {
    let aspect = aspect.strip_prefix("denied ").unwrap_or(aspect);
    match aspect {
        a if a.starts_with("principal") || a.starts_with("notprincipal") => 0,
        "subjects" => 1,
        "audiences" => 2,
        "actions" | "all actions but" => 3,
        "resources" | "all resources but" => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_and_one_element_list_are_equal() {
        let a = json!({"Version": VERSION, "Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}});
        let b = json!({"Version": VERSION, "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}]});
        assert_eq!(normalize(&a), normalize(&b));
    }

    #[test]
    fn statement_and_value_order_do_not_matter() {
        let a = json!({"Statement": [
            {"Effect": "Allow", "Action": ["b", "a"], "Resource": "*"},
            {"Effect": "Deny", "Action": "c", "Resource": "*",
             "Condition": {"StringEquals": {"k": ["y", "x"]}}}]});
        let b = json!({"Statement": [
            {"Effect": "Deny", "Action": "c", "Resource": "*",
             "Condition": {"StringEquals": {"k": ["x", "y"]}}},
            {"Resource": "*", "Action": ["a", "b"], "Effect": "Allow"}]});
        assert_eq!(normalize(&a), normalize(&b));
    }

    #[test]
    fn different_subjects_differ() {
        let t = |subs: &[&str]| {
            normalize(&trust_policy(&Trust::Irsa {
                provider_arn: "arn:aws:iam::1:oidc-provider/x".into(),
                issuer: "x".into(),
                subjects: Values::Exact(subs.iter().map(|s| s.to_string()).collect()),
            }))
        };
        assert_eq!(t(&["a", "b"]), t(&["b", "a"]));
        assert_ne!(t(&["a", "b"]), t(&["a"]));
    }

    #[test]
    fn url_encoded_documents_are_decoded() {
        let doc = json!({"Version": VERSION, "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]});
        let encoded: String = percent_encoding::utf8_percent_encode(
            &doc.to_string(),
            percent_encoding::NON_ALPHANUMERIC,
        )
        .collect();
        assert_eq!(parse_returned(&encoded).unwrap(), doc);
        assert_eq!(parse_returned(&doc.to_string()).unwrap(), doc);
        assert!(parse_returned("%7Bnot json").is_err());
    }

    #[test]
    fn size_ignores_whitespace() {
        let doc = json!({"Version": VERSION, "Statement": [{"Effect": "Allow", "Action": "s3:Get Object"}]});
        let pretty = serde_json::to_string_pretty(&doc).unwrap();
        assert_eq!(
            size(&doc),
            pretty.chars().filter(|c| !c.is_whitespace()).count()
        );
        assert_eq!(size(&doc), doc.to_string().len() - 1);
    }

    #[test]
    fn changes_name_what_was_added_and_removed() {
        let trust = |subs: &[&str]| {
            trust_policy(&Trust::Irsa {
                provider_arn: "arn:aws:iam::1:oidc-provider/x".into(),
                issuer: "x".into(),
                subjects: Values::Exact(subs.iter().map(|s| s.to_string()).collect()),
            })
        };
        let c = changes(Some(&trust(&["a", "b"])), Some(&trust(&["b", "c"])));
        assert_eq!(
            c,
            [Change {
                aspect: "subjects".into(),
                added: vec!["c".into()],
                removed: vec!["a".into()],
            }]
        );
        let created = changes(None, Some(&s3_bucket_policy("aws", "bk")));
        let aspects: Vec<&str> = created.iter().map(|c| c.aspect.as_str()).collect();
        assert_eq!(aspects, ["actions", "resources"]);
        assert_eq!(created[1].added, ["arn:aws:s3:::bk", "arn:aws:s3:::bk/*"]);
        assert!(changes(Some(&trust(&["a"])), Some(&trust(&["a"]))).is_empty());
        let switched = changes(
            Some(&trust(&["a"])),
            Some(&trust_policy(&Trust::PodIdentity(PodIdentityTrust {
                account_id: "1".into(),
                cluster_arn: "arn:aws:eks:us-east-1:1:cluster/c".into(),
                service_account: "vector".into(),
                namespaces: Values::Like("mxp-*-system".into()),
            }))),
        );
        let aspects: Vec<&str> = switched.iter().map(|c| c.aspect.as_str()).collect();
        assert_eq!(
            aspects,
            [
                "principal (Federated)",
                "principal (Service)",
                "subjects",
                "audiences",
                "actions",
                "condition StringEquals aws:RequestTag/eks-cluster-arn",
                "condition StringEquals aws:RequestTag/kubernetes-service-account",
                "condition StringEquals aws:SourceAccount",
                "condition StringLike aws:RequestTag/kubernetes-namespace"
            ]
        );
    }
}
