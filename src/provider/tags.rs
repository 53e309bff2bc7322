//! The tags idplan puts on what it makes, on every cloud that has tags (GCP has none: its
//! service accounts carry a mark in their description instead).

use std::collections::BTreeMap;

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

/// The adoption of a resource that belongs to one space (a role, a managed identity): taken
/// back when idplan made it for this space (a lost state), refused otherwise.
pub fn adopt_space_owned(noun: &Noun, name: &str, desired: &Tags, actual: &Tags) -> Adoption {
    let Noun {
        kind,
        short,
        article,
    } = noun;
    if made_for_same_space(desired, actual) {
        return Adoption::Owned;
    }
    Adoption::Conflict(if is_managed(actual) {
        format!(
            "{kind} {name} belongs to idplan space {}; two spaces cannot share {article} {short}: \
             set another `name` for the component",
            actual.get(SPACE_TAG).map_or("", String::as_str)
        )
    } else {
        format!(
            "{kind} {name} already exists and was not created by idplan (no tag \
             managed-by=idplan); idplan will not take it over: set another `name` for the \
             component, or delete the {short}"
        )
    })
}
