//! Resource addresses, terraform style: built from typed parts, shown and stored as text.
//!
//! - `<type>.<region>.<cluster>`: a cluster's resource that its spaces share (the OIDC
//!   provider);
//! - `<type>.<space>.<component>`: one per component of a space;
//! - `<type>.<space>.<component>.<item>`: one per control plane (the item is its host
//!   namespace) or per listed secret (the item is the secret's id).
//!
//! The text is the wire format (plans, state, `$ref` values) and the order of plans and
//! state; the parts are what code asks for. Nothing else takes an address string apart.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::kind::Kind;
use crate::spec::ComponentKind;

/// What an address names after its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Shared by every space on one cluster.
    Cluster { region: String, cluster: String },
    /// A component of a space, or one item (control plane, secret) of it.
    Component {
        space: String,
        component: ComponentKind,
        item: Option<String>,
    },
}

/// A resource's address. Equality, order and hashing are those of its text, so plans and
/// the state keep the order they always had, and maps keyed by address can be asked with a
/// `&str`.
#[derive(Clone)]
pub struct Address {
    text: String,
    kind: Kind,
    scope: Scope,
}

impl Address {
    /// A cluster's shared resource: `<type>.<region>.<cluster>`.
    pub fn cluster(kind: Kind, region: &str, cluster: &str) -> Address {
        Address::new(
            kind,
            Scope::Cluster {
                region: region.to_string(),
                cluster: cluster.to_string(),
            },
        )
    }

    /// A component's resource: `<type>.<space>.<component>`.
    pub fn component(kind: Kind, space: &str, component: ComponentKind) -> Address {
        Address::new(
            kind,
            Scope::Component {
                space: space.to_string(),
                component,
                item: None,
            },
        )
    }

    /// One of a component's resources per control plane or per secret:
    /// `<type>.<space>.<component>.<item>`.
    pub fn item(kind: Kind, space: &str, component: ComponentKind, item: &str) -> Address {
        Address::new(
            kind,
            Scope::Component {
                space: space.to_string(),
                component,
                item: Some(item.to_string()),
            },
        )
    }

    fn new(kind: Kind, scope: Scope) -> Address {
        let text = match &scope {
            Scope::Cluster { region, cluster } => format!("{kind}.{region}.{cluster}"),
            Scope::Component {
                space,
                component,
                item: None,
            } => format!("{kind}.{space}.{component}"),
            Scope::Component {
                space,
                component,
                item: Some(item),
            } => format!("{kind}.{space}.{component}.{item}"),
        };
        Address { text, kind, scope }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The space, for a component's resource.
    pub fn space(&self) -> Option<&str> {
        match &self.scope {
            Scope::Component { space, .. } => Some(space),
            Scope::Cluster { .. } => None,
        }
    }

    /// The component, for a component's resource.
    pub fn component_kind(&self) -> Option<ComponentKind> {
        match &self.scope {
            Scope::Component { component, .. } => Some(*component),
            Scope::Cluster { .. } => None,
        }
    }

    /// The control plane's host namespace or the secret, for a per-item resource.
    pub fn item_key(&self) -> Option<&str> {
        match &self.scope {
            Scope::Component { item, .. } => item.as_deref(),
            Scope::Cluster { .. } => None,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Why a text is not an address.
#[derive(Debug, thiserror::Error)]
#[error("`{text}` is not a resource address ({why})")]
pub struct ParseAddressError {
    text: String,
    why: &'static str,
}

impl FromStr for Address {
    type Err = ParseAddressError;

    fn from_str(text: &str) -> Result<Address, ParseAddressError> {
        let fail = |why| ParseAddressError {
            text: text.to_string(),
            why,
        };
        let (type_name, rest) = text.split_once('.').ok_or_else(|| fail("no type"))?;
        let kind = Kind::all()
            .find(|k| k.type_name() == type_name)
            .ok_or_else(|| fail("unknown type"))?;
        let nonempty = |s: &str| !s.is_empty();
        let address = if kind.is_per_cluster() {
            let (region, cluster) = rest
                .split_once('.')
                .filter(|(r, c)| nonempty(r) && nonempty(c) && !c.contains('.'))
                .ok_or_else(|| fail("expected <type>.<region>.<cluster>"))?;
            Address::cluster(kind, region, cluster)
        } else {
            let mut parts = rest.splitn(3, '.');
            let (Some(space), Some(component)) = (parts.next(), parts.next()) else {
                return Err(fail("expected <type>.<space>.<component>"));
            };
            let component = ComponentKind::ALL
                .into_iter()
                .find(|c| c.spec_key() == component)
                .ok_or_else(|| fail("unknown component"))?;
            match parts.next() {
                _ if space.is_empty() => return Err(fail("empty space")),
                None => Address::component(kind, space, component),
                Some(item) if nonempty(item) => Address::item(kind, space, component, item),
                Some(_) => return Err(fail("empty item")),
            }
        };
        Ok(address)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl std::ops::Deref for Address {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl Borrow<str> for Address {
    fn borrow(&self) -> &str {
        &self.text
    }
}

impl PartialEq for Address {
    fn eq(&self, other: &Address) -> bool {
        self.text == other.text
    }
}

impl Eq for Address {}

impl PartialEq<str> for Address {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl PartialEq<&str> for Address {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl Hash for Address {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state)
    }
}

impl Ord for Address {
    fn cmp(&self, other: &Address) -> Ordering {
        self.text.cmp(&other.text)
    }
}

impl PartialOrd for Address {
    fn partial_cmp(&self, other: &Address) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Address, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::AwsKind;
    use crate::kind::{GcpKind, PolicyOf};

    #[test]
    fn round_trips_every_shape() {
        let cases = [
            Address::cluster(
                Kind::Aws(AwsKind::IamOpenidConnectProvider),
                "us-east-1",
                "spaces-prod",
            ),
            Address::component(
                Kind::Aws(AwsKind::IamRole),
                "prod",
                ComponentKind::SharedSecrets,
            ),
            Address::item(
                Kind::Aws(AwsKind::EksPodIdentityAssociation),
                "prod",
                ComponentKind::Backup,
                "mxp-1-system",
            ),
            Address::item(
                Kind::Gcp(GcpKind::Members(PolicyOf::Secret)),
                "p",
                ComponentKind::SharedSecrets,
                "db-password",
            ),
        ];
        let texts = [
            "aws_iam_openid_connect_provider.us-east-1.spaces-prod",
            "aws_iam_role.prod.sharedSecrets",
            "aws_eks_pod_identity_association.prod.backup.mxp-1-system",
            "google_secret_manager_secret_iam_members.p.sharedSecrets.db-password",
        ];
        for (address, text) in cases.iter().zip(texts) {
            assert_eq!(address.to_string(), text);
            let parsed: Address = text.parse().unwrap();
            assert_eq!(parsed.scope(), address.scope());
            assert_eq!(parsed.kind(), address.kind());
            let json = serde_json::to_string(address).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            let back: Address = serde_json::from_str(&json).unwrap();
            assert_eq!(back.scope(), address.scope());
        }
        assert_eq!(cases[2].space(), Some("prod"));
        assert_eq!(cases[2].component_kind(), Some(ComponentKind::Backup));
        assert_eq!(cases[2].item_key(), Some("mxp-1-system"));
        assert_eq!(cases[0].space(), None);
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in [
            "",
            "aws_iam_role",
            "aws_iam_role.prod",
            "aws_iam_role.prod.nope",
            "aws_iam_role..backup",
            "aws_iam_role.prod.backup.",
            "no_such_type.prod.backup",
            "aws_iam_openid_connect_provider.us-east-1",
            "aws_iam_openid_connect_provider.us-east-1.a.b",
        ] {
            let err = bad.parse::<Address>().unwrap_err().to_string();
            assert!(err.contains("is not a resource address"), "{bad}: {err}");
        }
    }

    #[test]
    fn orders_as_its_text() {
        // `-` sorts before `.`: the space `a-b` comes before the space `a`, as in the text.
        let a = Address::component(Kind::Aws(AwsKind::IamRole), "a", ComponentKind::Backup);
        let ab = Address::component(Kind::Aws(AwsKind::IamRole), "a-b", ComponentKind::Backup);
        assert!(ab < a);
        assert_eq!(ab.as_str().cmp(a.as_str()), Ordering::Less);
    }
}
