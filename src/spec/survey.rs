//! What `idplan init` found, from which `draft` writes a spec: what the Space's cluster says
//! ([`Seen`]), the identities chosen where control planes disagree ([`Choices`]), and what a
//! cloud's survey found ([`Survey`]).

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::spec::ComponentKind;
use crate::spec::draft::{DraftComponent, Field};

/// Where one value was found: the value, and the host namespaces that name it.
pub type Found = BTreeMap<String, Vec<String>>;

/// What the Space's cluster says.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// The host namespaces of the control planes that have an ID, sorted.
    pub namespaces: Vec<String>,
    /// Control planes without an ID yet (not planned until they have one).
    pub without_id: Vec<String>,
    /// Per component: the annotation values of its service accounts in the host namespaces.
    pub annotations: BTreeMap<ComponentKind, Found>,
    /// Per component: the host namespaces where its service account exists.
    pub accounts: BTreeMap<ComponentKind, Vec<String>>,
}

/// The identities chosen with `--identity COMPONENT=VALUE` where control planes disagree.
#[derive(Debug, Clone, Default)]
pub struct Choices(pub BTreeMap<ComponentKind, String>);

impl Choices {
    /// The one value the control planes of `kind` name (`what`: "role ARN", "client id"...):
    /// the only one found, or the one chosen. Control planes that disagree, with no choice,
    /// are an error naming every value and its namespaces.
    pub fn resolve(&self, kind: ComponentKind, what: &str, found: &Found) -> Result<Resolved> {
        let chosen = self.0.get(&kind);
        if let Some(value) = chosen
            && !found.contains_key(value)
        {
            return Err(Error::user(format!(
                "--identity {kind}={value}: no {} service account names that {what}; \
                     found: {}",
                kind.service_account(),
                list(found)
            )));
        }
        let value = match (chosen, found.len()) {
            (_, 0) => return Ok(Resolved::None),
            (Some(v), _) => v.clone(),
            (None, 1) => found.keys().next().expect("one").clone(),
            (None, _) => {
                return Err(Error::user(format!(
                    "{kind}: the control planes' {} service accounts name different {what}s: \
                     {}. Choose the one to adopt with --identity {kind}=VALUE; the others \
                     move to it when the Helm values are applied",
                    kind.service_account(),
                    list(found)
                )));
            }
        };
        let others: Vec<String> = found
            .iter()
            .filter(|(v, _)| **v != value)
            .map(|(v, ns)| format!("{v} ({})", ns.join(", ")))
            .collect();
        let comment = (!others.is_empty()).then(|| {
            format!(
                "chosen with --identity; other control planes named {}",
                others.join("; ")
            )
        });
        Ok(Resolved::One { value, comment })
    }
}

/// A component's identity as the control planes name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    None,
    One {
        value: String,
        /// Why this value, when there was a choice.
        comment: Option<String>,
    },
}

fn list(found: &Found) -> String {
    found
        .iter()
        .map(|(v, ns)| format!("{v} in {}", ns.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What a cloud's survey found: the space's cloud block and its components.
#[derive(Debug, Clone)]
pub struct Survey {
    pub cloud: &'static str,
    pub fields: Vec<Field>,
    pub components: Vec<DraftComponent>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(entries: &[(&str, &[&str])]) -> Found {
        entries
            .iter()
            .map(|(v, ns)| (v.to_string(), ns.iter().map(|n| n.to_string()).collect()))
            .collect()
    }

    #[test]
    fn one_value_is_taken_two_ask_which() {
        let choices = Choices::default();
        let one = found(&[("arn:r1", &["mxp-a-system", "mxp-b-system"])]);
        assert_eq!(
            choices
                .resolve(ComponentKind::Billing, "role ARN", &one)
                .unwrap(),
            Resolved::One {
                value: "arn:r1".into(),
                comment: None
            }
        );
        let two = found(&[("arn:r1", &["mxp-a-system"]), ("arn:r2", &["mxp-b-system"])]);
        let e = choices
            .resolve(ComponentKind::Billing, "role ARN", &two)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("arn:r1 in mxp-a-system; arn:r2 in mxp-b-system"),
            "{e}"
        );
        assert!(e.contains("--identity billing=VALUE"), "{e}");
        let chosen = Choices(BTreeMap::from([(ComponentKind::Billing, "arn:r2".into())]));
        let Resolved::One { value, comment } = chosen
            .resolve(ComponentKind::Billing, "role ARN", &two)
            .unwrap()
        else {
            panic!("one")
        };
        assert_eq!(value, "arn:r2");
        assert!(comment.unwrap().contains("arn:r1 (mxp-a-system)"));
        let e = Choices(BTreeMap::from([(ComponentKind::Billing, "arn:r3".into())]))
            .resolve(ComponentKind::Billing, "role ARN", &two)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--identity billing=arn:r3"), "{e}");
    }
}
