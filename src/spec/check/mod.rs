//! The semantic checks of a deserialized spec: every rule at once, each error located, in
//! file order. What all clouds share is here; each cloud's block and components follow that
//! cloud's rules in `<cloud>.rs`: its block, and its [`Rules`] for components.

mod aws;
mod azure;
mod components;
mod gcp;

use std::collections::HashMap;
use std::path::Path;

use super::names::is_label;
use super::schema::{
    At, NAMESPACE_MAX, RawAws, RawAzure, RawBucketComponent, RawComponents, RawControlPlanes,
    RawGcp, RawSecretsComponent, RawSpace, RawSpec, SPACE_NAME_MAX,
};
use super::{
    Cloud, Component, ComponentKind, Components, ControlPlane, Discover, Location, Space,
    SpecError, SpecErrors,
};
use aws::AwsRules;
use azure::AzureRules;
use gcp::GcpRules;

/// The cloud blocks of a space, exactly one of which must be present. A new cloud adds its
/// key here, an `Option` field on `RawSpace`, a module beside this one (its block and its
/// [`Rules`]) and arms in `Check::space` and `Check::not_one_cloud`.
const CLOUD_KEYS: &[&str] = &["aws", "azure", "gcp"];

/// The errors found so far in one spec file.
pub(super) struct Check<'a> {
    path: &'a Path,
    errors: Vec<SpecError>,
}

/// The space whose components are checked.
struct Owner<'s> {
    /// Its field path, `spaces[<i>]`.
    field: &'s str,
    name: &'s str,
    /// `false` when the name is invalid (reported already): its default names would only
    /// repeat that error.
    name_ok: bool,
}

/// One cloud's rules for the components of its spaces.
trait Rules {
    /// What a component gets access to on this cloud.
    type Access;

    /// `backup` or `billing`.
    fn bucket(&self, check: &mut Check, c: Written<RawBucketComponent>) -> Checked<Self::Access>;

    /// `sharedSecrets`.
    fn secrets(&self, check: &mut Check, c: Written<RawSecretsComponent>) -> Checked<Self::Access>;

    /// A component's explicit `name` (`component` is the component's path).
    fn name(&self, check: &mut Check, component: &str, raw: Option<At<String>>) -> Named;

    /// Whether each component gets a named resource, so that two must not share a name.
    fn names_resources(&self) -> bool {
        true
    }

    /// Why the cloud refuses a default name, if it does.
    fn default_name_error(&self, name: &str) -> Option<String>;

    /// The error for a name that `other` has already.
    fn taken(&self, name: &str, other: ComponentKind) -> String;
}

/// An explicit `name`, and where it is.
type Named = Option<(String, Location)>;

/// A checked cloud block: the space's cloud, once given its components.
type Build<A> = Box<dyn FnOnce(Components<A>) -> Cloud>;

/// The bucket of a cloud of buckets (AWS, GCP): what messages call it, its rule, and what
/// the rule expects.
struct BucketRule {
    what: &'static str,
    valid: fn(&str) -> bool,
    expected: &'static str,
}

/// A component as written, and where: its field path and where it starts.
struct Written<T> {
    kind: ComponentKind,
    field: String,
    location: Location,
    raw: T,
}

/// A component as its cloud's rules checked it.
struct Checked<T> {
    kind: ComponentKind,
    location: Location,
    name: Named,
    /// `None` when missing (an error is recorded).
    access: Option<T>,
    adopt: bool,
}

impl<T> Checked<T> {
    fn new(kind: ComponentKind, location: Location, name: Named, access: Option<T>) -> Self {
        Checked {
            kind,
            location,
            name,
            access,
            adopt: false,
        }
    }

    fn into_component(self) -> Option<Component<T>> {
        Some(Component {
            kind: self.kind,
            name: self.name.map(|(name, _)| name),
            adopt: self.adopt,
            location: self.location,
            access: self.access?,
        })
    }
}

impl<'a> Check<'a> {
    pub(super) fn new(path: &'a Path) -> Self {
        Check {
            path,
            errors: Vec::new(),
        }
    }

    pub(super) fn failed(&self) -> bool {
        !self.errors.is_empty()
    }

    pub(super) fn into_errors(self) -> SpecErrors {
        SpecErrors(self.errors)
    }

    pub(super) fn error(
        &mut self,
        location: Location,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.errors.push(SpecError {
            path: self.path.to_path_buf(),
            location: Some(location),
            field: field.into(),
            message: message.into(),
        });
    }

    pub(super) fn spec(&mut self, raw: RawSpec) -> (u32, Vec<Space>) {
        let version = *raw.version.value();
        if version != 1 {
            self.error(
                raw.version.location(),
                "version",
                format!("unsupported version {version}: expected 1"),
            );
        }
        let spaces_at = raw.spaces.location();
        let raw_spaces = raw.spaces.into_value();
        if raw_spaces.is_empty() {
            self.error(spaces_at, "spaces", "expected at least one space");
        }
        let mut names: HashMap<String, Location> = HashMap::new();
        let mut spaces = Vec::new();
        for (i, raw_space) in raw_spaces.into_iter().enumerate() {
            if let Some(space) = self.space(i, raw_space, &mut names) {
                spaces.push(space);
            }
        }
        (version, spaces)
    }

    fn space(
        &mut self,
        i: usize,
        raw: At<RawSpace>,
        names: &mut HashMap<String, Location>,
    ) -> Option<Space> {
        let field = format!("spaces[{i}]");
        let location = raw.location();
        let raw = raw.into_value();

        let name = raw.name.value().clone();
        let name_at = raw.name.location();
        let name_ok = self.space_name(&format!("{field}.name"), &name, name_at);
        let name_shown = show(&name);
        match names.get(&name) {
            Some(first) => self.error(
                name_at,
                format!("{field}.name"),
                format!(
                    "duplicate space name `{name_shown}` (first at line {})",
                    first.line
                ),
            ),
            None => {
                names.insert(name.clone(), name_at);
            }
        }

        let (control_planes, discover) = self.control_planes(&field, raw.control_planes);
        let owner = Owner {
            field: &field,
            name: &name,
            name_ok,
        };
        let components = raw.components;
        let cloud = match (raw.aws, raw.azure, raw.gcp) {
            (Some(raw), None, None) => self.cloud(&owner, &AwsRules, components, |c| {
                aws::block(c, &field, raw)
            }),
            (None, Some(raw), None) => self.cloud(&owner, &AzureRules, components, |c| {
                azure::block(c, &field, raw)
            }),
            (None, None, Some(raw)) => {
                let rules = GcpRules::new(raw.value());
                self.cloud(&owner, &rules, components, |c| gcp::block(c, &field, raw))
            }
            (aws, azure, gcp) => {
                self.not_one_cloud(&owner, location, aws, azure, gcp, components);
                None
            }
        };
        Some(Space {
            name,
            location,
            control_planes,
            discover,
            cloud: cloud?,
        })
    }

    fn space_name(&mut self, field: &str, name: &str, at: Location) -> bool {
        let len = name.chars().count();
        let name_shown = show(name);
        if !is_label(name, usize::MAX) {
            self.error(
                at,
                field,
                format!(
                    "invalid space name `{name_shown}`: expected lower-case letters, digits \
                     and `-`, starting and ending with a letter or digit"
                ),
            );
            false
        } else if len > SPACE_NAME_MAX {
            self.error(
                at,
                field,
                format!("space name is {len} characters: expected at most {SPACE_NAME_MAX}"),
            );
            false
        } else {
            true
        }
    }

    fn control_planes(
        &mut self,
        space: &str,
        raw: At<RawControlPlanes>,
    ) -> (Vec<ControlPlane>, Option<Discover>) {
        let raw = raw.into_value();
        let list = match raw.mapping {
            true => format!("{space}.controlPlanes.list"),
            false => format!("{space}.controlPlanes"),
        };
        let discover = raw.discover.and_then(|d| {
            let location = d.location();
            let d = d.into_value();
            let mut ok = true;
            for (key, value) in [
                ("context", d.context.as_ref()),
                ("kubeconfig", d.kubeconfig.as_ref()),
            ] {
                if let Some(v) = value.filter(|v| v.value().trim().is_empty()) {
                    self.error(
                        v.location(),
                        format!("{space}.controlPlanes.discover.{key}"),
                        format!("`{key}` is empty"),
                    );
                    ok = false;
                }
            }
            ok.then(|| Discover {
                context: d.context.map(At::into_value),
                kubeconfig: d.kubeconfig.map(|k| k.into_value().into()),
                file: self.path.to_path_buf(),
                location,
            })
        });
        let mut seen: HashMap<String, Location> = HashMap::new();
        let mut out = Vec::new();
        for (j, item) in raw.list.into_iter().enumerate() {
            let field = format!("{list}[{j}]");
            let location = item.location();
            let namespace = item.into_value();
            let len = namespace.chars().count();
            let namespace_shown = show(&namespace);
            if !is_label(&namespace, usize::MAX) {
                self.error(
                    location,
                    field,
                    format!(
                        "invalid namespace `{namespace_shown}`: expected a DNS-1123 label \
                         (lower-case letters, digits and `-`, starting and ending with a letter \
                         or digit)"
                    ),
                );
            } else if len > NAMESPACE_MAX {
                self.error(
                    location,
                    field,
                    format!(
                        "namespace is {len} characters: a DNS-1123 label has at most \
                         {NAMESPACE_MAX}"
                    ),
                );
            } else if let Some(first) = seen.get(&namespace) {
                self.error(
                    location,
                    field,
                    format!(
                        "duplicate control plane `{namespace_shown}` (first at line {})",
                        first.line
                    ),
                );
            } else {
                seen.insert(namespace.clone(), location);
            }
            out.push(ControlPlane {
                namespace,
                location,
            });
        }
        (out, discover)
    }

    /// A space's one cloud block (checked by `block`), then its components by `rules`; the
    /// space's cloud when neither has errors.
    fn cloud<R: Rules>(
        &mut self,
        owner: &Owner,
        rules: &R,
        components: At<RawComponents>,
        block: impl FnOnce(&mut Self) -> Option<Build<R::Access>>,
    ) -> Option<Cloud> {
        let cloud = block(self);
        let components = self.components(owner, rules, components);
        Some(cloud?(components))
    }

    /// None or several cloud blocks: each present one is still checked for its own errors,
    /// and the components by AWS's rules.
    fn not_one_cloud(
        &mut self,
        owner: &Owner,
        location: Location,
        aws: Option<At<RawAws>>,
        azure: Option<At<RawAzure>>,
        gcp: Option<At<RawGcp>>,
        components: At<RawComponents>,
    ) {
        // Each block's cloud, were it the only one, is dropped.
        let mut present: Vec<&str> = Vec::new();
        if let Some(raw) = aws {
            present.push("aws");
            aws::block(self, owner.field, raw);
        }
        if let Some(raw) = azure {
            present.push("azure");
            azure::block(self, owner.field, raw);
        }
        if let Some(raw) = gcp {
            present.push("gcp");
            gcp::block(self, owner.field, raw);
        }
        let expected = CLOUD_KEYS
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let message = match present.len() {
            0 => format!("expected exactly one of {expected}"),
            _ => format!(
                "expected exactly one of {expected}, found `{}`",
                present.join("` and `")
            ),
        };
        self.error(location, owner.field, message);
        self.components(owner, &AwsRules, components);
    }

    /// A key of the other cloud in a component: say which key this cloud takes instead.
    fn not_here<T>(&mut self, value: Option<&At<T>>, field: &str, key: &str, instead: &str) {
        if let Some(value) = value {
            self.error(
                value.location(),
                format!("{field}.{key}"),
                format!("`{key}` does not apply to this space's cloud: {instead}"),
            );
        }
    }

    /// One of a fixed list of words; `None` when absent or unknown (unknown is an error).
    fn keyword<T: Copy>(
        &mut self,
        parent: &str,
        key: &str,
        raw: Option<&At<String>>,
        keywords: &[(&str, T)],
    ) -> Option<T> {
        let raw = raw?;
        let word = raw.value();
        let found = keywords.iter().find(|(k, _)| k == word).map(|(_, v)| *v);
        let word_shown = show(word);
        if found.is_none() {
            let names: Vec<String> = keywords.iter().map(|(k, _)| format!("`{k}`")).collect();
            self.error(
                raw.location(),
                format!("{parent}.{key}"),
                format!(
                    "unknown value `{word_shown}`: expected one of {}",
                    names.join(", ")
                ),
            );
        }
        found
    }
}

/// A value from the file as shown in a one-line message: control characters escaped, long
/// values cut.
pub(super) fn show(value: &str) -> String {
    const MAX: usize = 100;
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::spec::fixtures::{VALID, ok, one, with_line};

    #[test]
    fn space_names() {
        let (at, msg) = one(&with_line(3, "  - name: Prod"));
        assert_eq!(at, "3:11 spaces[0].name");
        assert!(
            msg.starts_with("invalid space name `Prod`: expected lower-case"),
            "{msg}"
        );
        let long = "a".repeat(41);
        let (at, msg) = one(&with_line(3, &format!("  - name: {long}")));
        assert_eq!(at, "3:11 spaces[0].name");
        assert_eq!(msg, "space name is 41 characters: expected at most 40");
        ok(&with_line(3, &format!("  - name: {}", "a".repeat(40))));
        let (at, msg) = one(&with_line(17, "  - name: prod"));
        assert_eq!(at, "17:11 spaces[1].name");
        assert_eq!(msg, "duplicate space name `prod` (first at line 3)");
    }

    #[test]
    fn namespaces() {
        for bad in ["Mxp-a-system", "mxp_a_system", "-mxp", "mxp-", "\"\""] {
            let (at, msg) = one(&with_line(6, &format!("      - {bad}")));
            assert_eq!(at, "6:9 spaces[0].controlPlanes[1]", "{bad}");
            assert!(msg.starts_with("invalid namespace"), "{msg}");
        }
        let (at, msg) = one(&with_line(6, &format!("      - {}", "a".repeat(64))));
        assert_eq!(at, "6:9 spaces[0].controlPlanes[1]");
        assert_eq!(
            msg,
            "namespace is 64 characters: a DNS-1123 label has at most 63"
        );
        ok(&with_line(6, &format!("      - {}", "a".repeat(63))));
        let (at, msg) = one(&with_line(
            6,
            "      - mxp-706c49fa-5bb8-4a7e-9f41-2fc38ef4b065-system",
        ));
        assert_eq!(at, "6:9 spaces[0].controlPlanes[1]");
        assert_eq!(
            msg,
            "duplicate control plane `mxp-706c49fa-5bb8-4a7e-9f41-2fc38ef4b065-system` (first at line 5)"
        );
    }

    #[test]
    fn cloud_block_is_required() {
        let text = VALID.replace(
            "    aws:\n      region: eu-central-1\n      cluster: spaces-dev\n      mode: pod-identity\n",
            "",
        );
        assert_eq!(
            one(&text),
            (
                "17:5 spaces[1]".into(),
                "expected exactly one of `aws`, `azure`, `gcp`".into()
            )
        );
    }
}
