//! The tags idplan puts on what it makes, on every cloud that has tags (GCP has none: its
//! service accounts carry a mark in their description instead).

use std::collections::BTreeMap;

use serde_json::Value;

use super::Adoption;

/// The tag that marks what idplan owns.
pub const MANAGED_BY: (&str, &str) = ("managed-by", "idplan");
pub const SPACE_TAG: &str = "idplan/space";
pub const COMPONENT_TAG: &str = "idplan/component";

/// Tags as attributes hold them: idplan's only, sorted by key.
pub type Tags = BTreeMap<String, String>;

/// Tag keys idplan sets; only these are compared and changed.
pub fn is_idplan_tag(key: &str) -> bool {
    key == MANAGED_BY.0 || key.starts_with("idplan/")
}

/// The idplan tags among `tags`: what a read projects a resource's tags onto.
pub fn idplan_tags<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Tags {
    tags.into_iter()
        .filter(|(k, _)| is_idplan_tag(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The tags of a resource idplan makes for one component of a space.
pub fn component_tags(space: &str, component: &str) -> Tags {
    Tags::from([
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
        (SPACE_TAG.to_string(), space.to_string()),
        (COMPONENT_TAG.to_string(), component.to_string()),
    ])
}

/// Whether `actual` carries idplan's marker for the same space as `desired`.
pub fn made_for_same_space(desired: &Tags, actual: &Tags) -> bool {
    is_managed(actual) && actual.get(SPACE_TAG) == desired.get(SPACE_TAG)
}

fn is_managed(tags: &Tags) -> bool {
    tags.get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1)
}

/// What a tagged resource is called in messages: "IAM role", and the fix word "role".
pub struct Noun {
    pub kind: &'static str,
    pub short: &'static str,
    pub article: &'static str,
}

/// The tag idplan puts on an identity it adopted (`adopt: true`): with it, a lost state
/// never takes the identity for one idplan made, and so never deletes it.
pub const ADOPTED_TAG: &str = "idplan/adopted";

/// How idplan may take over a resource that belongs to one space (a role, a managed
/// identity) and that the state does not know.
pub enum SpaceOwned {
    /// idplan made it for this space (a lost state): manage it as created.
    Owned,
    /// Someone else's, and the spec says `adopt: true`: bring its idplan tags to `tags`;
    /// `added` are the keys it did not have, taken back on release.
    Adopt {
        tags: Tags,
        added: Vec<String>,
    },
    Conflict(String),
}

/// The adoption of a resource that belongs to one space: taken back when idplan made it for
/// this space, taken over when the spec says `adopt`, refused otherwise.
pub fn adopt_space_owned(
    noun: &Noun,
    name: &str,
    adopt: bool,
    desired: &Tags,
    actual: &Tags,
) -> SpaceOwned {
    let Noun {
        kind,
        short,
        article,
    } = noun;
    let adopted_before = actual.contains_key(ADOPTED_TAG);
    if made_for_same_space(desired, actual) && !adopted_before {
        return SpaceOwned::Owned;
    }
    if is_managed(actual) && !made_for_same_space(desired, actual) {
        return SpaceOwned::Conflict(format!(
            "{kind} {name} belongs to idplan space {}; two spaces cannot share {article} {short}: \
             set another `name` for the component",
            actual.get(SPACE_TAG).map_or("", String::as_str)
        ));
    }
    if adopt {
        let tags = adopted_tags(desired);
        // Only idplan puts its tags on a resource: every one of them is idplan's to take back.
        let added = tags.keys().cloned().collect();
        return SpaceOwned::Adopt { tags, added };
    }
    SpaceOwned::Conflict(if adopted_before {
        format!(
            "{kind} {name} was not created by idplan: this space adopted it before; set \
             `adopt: true` on the component to manage it again"
        )
    } else {
        format!(
            "{kind} {name} already exists and was not created by idplan (no tag \
             managed-by=idplan); set `adopt: true` on the component to take it over (it is \
             then never deleted), or set another `name`"
        )
    })
}

/// The tags idplan keeps on an identity it adopted: its own, and the adoption mark.
pub fn adopted_tags(desired: &Tags) -> Tags {
    let mut tags = desired.clone();
    tags.insert(ADOPTED_TAG.to_string(), "true".to_string());
    tags
}

/// What idplan added to an adopted resource's tags, taken back on release.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct AddedTags {
    #[serde(default)]
    pub tags: Vec<String>,
}

impl SpaceOwned {
    /// As the driver's adoption decision: `desired` gets the tags to have.
    pub fn into_adoption(self, mut desired: Value) -> Adoption {
        match self {
            SpaceOwned::Owned => Adoption::Owned,
            SpaceOwned::Adopt { tags, added } => {
                desired["tags"] = super::to_attributes(&tags);
                Adoption::Shared {
                    desired,
                    added: Some(super::to_attributes(&AddedTags { tags: added })),
                }
            }
            SpaceOwned::Conflict(message) => Adoption::Conflict(message),
        }
    }
}
