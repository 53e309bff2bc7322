//! The state: what idplan created or adopted, with the attributes last applied. Split as
//! terraform splits it: the model (here), the file format and the opened state
//! ([`file`]), where it is kept and locked ([`store`], with [`local`], [`s3`], [`gcs`] and
//! [`azblob`]). The location that picks the store is the spec's
//! ([`StateLocation`]): a spec names where its state is kept.

pub mod azblob;
pub mod file;
pub mod gcs;
pub mod local;
pub mod s3;
pub mod store;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::spec::StateLocation;
pub use file::StateFile;

use crate::graph::{Address, Node, NodeHead, Resource};
use crate::spec::ComponentKind;

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// Made once when the state is first written; a saved plan must carry the same one.
    pub lineage: String,
    /// +1 on every write.
    pub serial: u64,
    /// Sorted by address.
    pub resources: Vec<Record>,
    /// Per space name: what the last apply covered on the cluster side.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub spaces: BTreeMap<String, SpaceRecord>,
    /// A UUID made for each write: no two writes carry the same bytes, so a remote store
    /// whose reply was lost recognises its own write by reading the object back.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub write_id: String,
}

/// What the last apply covered of one space: drift and verify compare the cluster with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceRecord {
    /// The host namespaces the applied identities cover.
    #[serde(default)]
    pub control_planes: Vec<String>,
    /// Per component, or its pods in one host namespace: when apply last changed their
    /// identity (RFC 3339); pods started before run without what changed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub identity_changed: BTreeMap<RestartKey, String>,
    /// AWS spaces: the mode the roles were left in by the last apply that finished without a
    /// failure, and whether a switch of mode is half done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsModes>,
}

/// Whose pods a change of identity concerns: a component's in every control plane, or in one
/// host namespace. Stored as text, `backup` or `backup/mxp-a-system`, and ordered as its text,
/// so that the state keeps the order it always had.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RestartKey {
    pub component: ComponentKind,
    pub namespace: Option<String>,
}

impl RestartKey {
    /// The component's pods in every control plane.
    pub fn component(component: ComponentKind) -> RestartKey {
        RestartKey {
            component,
            namespace: None,
        }
    }

    /// The component's pods in one host namespace.
    pub fn pods(component: ComponentKind, namespace: &str) -> RestartKey {
        RestartKey {
            component,
            namespace: Some(namespace.to_string()),
        }
    }
}

impl std::fmt::Display for RestartKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.component.spec_key())?;
        match &self.namespace {
            Some(namespace) => write!(f, "/{namespace}"),
            None => Ok(()),
        }
    }
}

impl std::str::FromStr for RestartKey {
    type Err = String;

    fn from_str(text: &str) -> Result<RestartKey, String> {
        let (component, namespace) = match text.split_once('/') {
            Some((component, namespace)) => (component, Some(namespace.to_string())),
            None => (text, None),
        };
        let component = ComponentKind::ALL
            .into_iter()
            .find(|k| k.spec_key() == component)
            .ok_or_else(|| format!("`{text}` names no component"))?;
        Ok(RestartKey {
            component,
            namespace,
        })
    }
}

impl Ord for RestartKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let text = |k: &RestartKey| (k.component.spec_key(), k.namespace.clone());
        // As text: `backup` < `backup/ns` < `billing`, whatever the enum's order.
        let (a, b) = (text(self), text(other));
        a.0.cmp(b.0).then_with(|| match (&a.1, &b.1) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, Some(_)) => std::cmp::Ordering::Less,
            (Some(_), None) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => x.cmp(y),
        })
    }
}

impl PartialOrd for RestartKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for RestartKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RestartKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RestartKey, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The mode an AWS space's roles trust. A switch of mode takes two applies, so that pods
/// still using the old mode keep their credentials until a Helm upgrade moves them: the
/// first makes the roles trust both modes and creates what the new one needs
/// (`switching_from` set), the next one drops the old mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsModes {
    pub mode: crate::spec::AwsMode,
    /// The mode the roles still trust, and whose resources are kept, until the next apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switching_from: Option<crate::spec::AwsMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ownership {
    /// idplan made it and may delete it.
    Created,
    /// It existed before; idplan manages only what it added and never deletes it.
    Adopted,
}

/// A resource as the state records it. Its kind is its address's; the state file writes it
/// all the same, as `kind` after `address` (`RecordFile`).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub node: Node,
    pub ownership: Ownership,
    /// The attributes last applied (for adopted resources: only the parts idplan manages).
    pub attributes: Value,
    /// For adopted resources: what idplan added and takes back when the resource leaves the spec.
    pub added: Option<Value>,
    /// The object this one replaced, still in the cloud: a replacement creates the new object
    /// first and deletes the old one last, and a run stopped in between leaves it here for
    /// the next apply to delete.
    pub deposed: Option<Deposed>,
}

/// A [`Record`] as the state file writes it: borrowed to write, owned once read.
#[derive(Serialize, Deserialize)]
struct RecordFile<'a> {
    #[serde(flatten)]
    head: NodeHead<'a>,
    ownership: Ownership,
    attributes: Cow<'a, Value>,
    #[serde(default, skip_serializing_if = "is_empty")]
    depends_on: Cow<'a, [Address]>,
    #[serde(default, skip_serializing_if = "is_none")]
    added: Cow<'a, Option<Value>>,
    #[serde(default, skip_serializing_if = "is_none")]
    deposed: Cow<'a, Option<Deposed>>,
}

/// `skip_serializing_if` of a borrowed field (deref-coerced from its `Cow`), here and in the
/// plan file.
pub(crate) fn is_none<T>(v: &Option<T>) -> bool {
    v.is_none()
}

pub(crate) fn is_empty<T>(v: &[T]) -> bool {
    v.is_empty()
}

impl Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        RecordFile {
            head: NodeHead::of(&self.node),
            ownership: self.ownership,
            attributes: Cow::Borrowed(&self.attributes),
            depends_on: Cow::Borrowed(&self.node.depends_on),
            added: Cow::Borrowed(&self.added),
            deposed: Cow::Borrowed(&self.deposed),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let r = RecordFile::deserialize(d)?;
        Ok(Record {
            node: r
                .head
                .into_node(r.depends_on.into_owned())
                .map_err(serde::de::Error::custom)?,
            ownership: r.ownership,
            attributes: r.attributes.into_owned(),
            added: r.added.into_owned(),
            deposed: r.deposed.into_owned(),
        })
    }
}

/// An object a replacement left behind, as the state recorded it before the replacement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deposed {
    pub ownership: Ownership,
    pub attributes: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added: Option<Value>,
}

impl Record {
    /// The deposed object as a resource, to read or delete.
    pub fn deposed_resource(&self) -> Option<Resource> {
        let deposed = self.deposed.as_ref()?;
        Some(Resource {
            attributes: deposed.attributes.clone(),
            ..self.resource()
        })
    }

    pub fn resource(&self) -> Resource {
        Resource {
            node: self.node.clone(),
            attributes: self.attributes.clone(),
            adopt: false,
        }
    }
}

impl State {
    pub(crate) fn new() -> Self {
        State {
            version: FORMAT_VERSION,
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            resources: Vec::new(),
            spaces: BTreeMap::new(),
            write_id: String::new(),
        }
    }

    pub fn get(&self, address: &str) -> Option<&Record> {
        self.resources
            .binary_search_by(|r| r.node.address.as_str().cmp(address))
            .ok()
            .map(|i| &self.resources[i])
    }

    /// Inserts or replaces the record; returns whether anything changed.
    pub fn put(&mut self, record: Record) -> bool {
        match self
            .resources
            .binary_search_by(|r| r.node.address.cmp(&record.node.address))
        {
            Ok(i) if self.resources[i] == record => false,
            Ok(i) => {
                self.resources[i] = record;
                true
            }
            Err(i) => {
                self.resources.insert(i, record);
                true
            }
        }
    }

    /// Forgets the deposed object of a record (deleted now); returns whether anything changed.
    pub fn forget_deposed(&mut self, address: &str) -> bool {
        match self
            .resources
            .binary_search_by(|r| r.node.address.as_str().cmp(address))
        {
            Ok(i) => self.resources[i].deposed.take().is_some(),
            Err(_) => false,
        }
    }

    pub fn remove(&mut self, address: &str) -> bool {
        match self
            .resources
            .binary_search_by(|r| r.node.address.as_str().cmp(address))
        {
            Ok(i) => {
                self.resources.remove(i);
                true
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Kind, Location};

    #[test]
    fn restart_keys_are_stored_as_text_in_text_order() {
        let mut record = SpaceRecord::default();
        for key in [
            "sharedSecrets",
            "billing/b",
            "backup/ns",
            "billing",
            "backup",
        ] {
            let key: RestartKey = key.parse().unwrap();
            record.identity_changed.insert(key, "t".into());
        }
        let text = serde_json::to_string(&record.identity_changed).unwrap();
        assert_eq!(
            text,
            r#"{"backup":"t","backup/ns":"t","billing":"t","billing/b":"t","sharedSecrets":"t"}"#
        );
        let back: BTreeMap<RestartKey, String> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, record.identity_changed);
        assert_eq!(
            RestartKey::pods(ComponentKind::Billing, "b").to_string(),
            "billing/b"
        );
        assert!("vector/ns".parse::<RestartKey>().is_err());
    }
    use crate::kind::AwsKind;
    use crate::spec::ComponentKind;
    use serde_json::json;
    use std::fs;
    use std::time::Duration;

    /// A record is written as the state file always had it, `kind` (its address's) after
    /// `address`; one whose `kind` is not its address's is refused.
    #[test]
    fn a_record_keeps_its_written_form() {
        let kind = Kind::Aws(AwsKind::IamRole);
        let full = Record {
            node: Node {
                address: Address::component(kind, "prod", ComponentKind::Backup),
                location: Location::Aws {
                    region: "us-east-1".into(),
                },
                depends_on: vec![Address::component(kind, "prod", ComponentKind::Billing)],
            },
            ownership: Ownership::Created,
            attributes: json!({"name": "a"}),
            added: Some(json!({"x": 1})),
            deposed: Some(Deposed {
                ownership: Ownership::Created,
                attributes: json!({"name": "older"}),
                added: None,
            }),
        };
        let bare = Record {
            ownership: Ownership::Adopted,
            node: Node {
                depends_on: vec![],
                ..full.node.clone()
            },
            added: None,
            deposed: None,
            ..full.clone()
        };
        let location = r#""location":{"cloud":"aws","region":"us-east-1"}"#;
        for (record, text) in [
            (
                &full,
                format!(
                    r#"{{"address":"aws_iam_role.prod.backup","kind":"aws_iam_role",{location},"ownership":"created","attributes":{{"name":"a"}},"depends_on":["aws_iam_role.prod.billing"],"added":{{"x":1}},"deposed":{{"ownership":"created","attributes":{{"name":"older"}}}}}}"#
                ),
            ),
            (
                &bare,
                format!(
                    r#"{{"address":"aws_iam_role.prod.backup","kind":"aws_iam_role",{location},"ownership":"adopted","attributes":{{"name":"a"}}}}"#
                ),
            ),
        ] {
            assert_eq!(serde_json::to_string(record).unwrap(), text);
            assert_eq!(&serde_json::from_str::<Record>(&text).unwrap(), record);
        }
        let other = serde_json::to_string(&bare).unwrap().replace(
            r#""kind":"aws_iam_role""#,
            r#""kind":"aws_iam_role_policy""#,
        );
        let err = serde_json::from_str::<Record>(&other)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("aws_iam_role.prod.backup: kind aws_iam_role_policy is not the address's (aws_iam_role)"),
            "{err}"
        );
    }

    fn local(path: &std::path::Path) -> StateLocation {
        StateLocation::Local(path.to_path_buf())
    }

    fn record(space: &str) -> Record {
        Record {
            node: Node {
                address: Address::component(
                    Kind::Aws(AwsKind::IamRole),
                    space,
                    ComponentKind::Backup,
                ),
                location: Location::Aws {
                    region: "us-east-1".into(),
                },
                depends_on: vec![],
            },
            ownership: Ownership::Created,
            attributes: json!({"name": space}),
            added: None,
            deposed: None,
        }
    }

    #[tokio::test]
    async fn writes_atomically_with_backup_and_private_mode() {
        let dir = std::env::temp_dir().join(format!("idplan-state-{}", uuid::Uuid::new_v4()));
        let path = dir.join("idplan.state.json");
        let mut file = StateFile::open(&local(&path), "test", Duration::ZERO, |_, _| {})
            .await
            .unwrap();
        assert!(!file.exists());
        file.update(|s| s.put(record("b"))).await.unwrap();
        file.update(|s| s.put(record("a"))).await.unwrap();
        file.update(|s| s.put(record("a"))).await.unwrap(); // unchanged: no write
        assert_eq!(file.state().serial, 2);
        let lineage = file.state().lineage.clone();
        drop(file);

        let again = StateFile::open(&local(&path), "test", Duration::ZERO, |_, _| {})
            .await
            .unwrap();
        assert_eq!(again.state().lineage, lineage);
        let addresses: Vec<_> = again
            .state()
            .resources
            .iter()
            .map(|r| r.node.address.as_str())
            .collect();
        assert_eq!(
            addresses,
            ["aws_iam_role.a.backup", "aws_iam_role.b.backup"]
        );
        let backup: State =
            serde_json::from_slice(&fs::read(local::sibling(&path, ".backup")).unwrap()).unwrap();
        assert_eq!(backup.serial, 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn second_opener_is_refused_with_the_holder() {
        let dir = std::env::temp_dir().join(format!("idplan-lock-{}", uuid::Uuid::new_v4()));
        let path = local(&dir.join("s.json"));
        let held = StateFile::open(&path, "apply", Duration::ZERO, |_, _| {})
            .await
            .unwrap();
        let err = StateFile::open(&path, "plan", Duration::ZERO, |_, _| {})
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("is locked by another idplan"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(held);
        StateFile::open(&path, "plan", Duration::ZERO, |_, _| {})
            .await
            .unwrap();
        fs::remove_dir_all(dir).unwrap();
    }
}
