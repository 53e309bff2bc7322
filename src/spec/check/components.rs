//! The components of a space, checked by its cloud's [`Rules`]: each component as written,
//! its name and what it reaches, and that no two share a resource name.

use std::collections::HashMap;

use super::{BucketRule, Check, Checked, Owner, Rules, Written, show};
use crate::spec::names::default_name;
use crate::spec::schema::{At, RawBucketComponent, RawComponents, RawSecretsComponent};
use crate::spec::{ComponentKind, Components, Location};

impl Check<'_> {
    /// The components of a space, by its cloud's rules; then, where the cloud names a
    /// resource per component, that no two share a name.
    pub(super) fn components<R: Rules>(
        &mut self,
        owner: &Owner,
        rules: &R,
        raw: At<RawComponents>,
    ) -> Components<R::Access> {
        let location = raw.location();
        let raw = raw.into_value();
        let field = format!("{}.components", owner.field);
        if raw.backup.is_none() && raw.billing.is_none() && raw.shared_secrets.is_none() {
            let keys = ComponentKind::ALL.map(|k| format!("`{}`", k.spec_key()));
            self.error(
                location,
                &field,
                format!("expected at least one of {}", keys.join(", ")),
            );
        }
        use ComponentKind::{Backup, Billing, SharedSecrets};
        let backup = raw
            .backup
            .map(|c| self.component(rules, &field, Backup, c, R::bucket));
        let billing = raw
            .billing
            .map(|c| self.component(rules, &field, Billing, c, R::bucket));
        let shared_secrets = raw
            .shared_secrets
            .map(|c| self.component(rules, &field, SharedSecrets, c, R::secrets));
        let checked = [backup, billing, shared_secrets];
        if rules.names_resources() {
            self.unique_names(owner, &field, rules, &checked);
        }
        let [backup, billing, shared_secrets] =
            checked.map(|c| c.and_then(Checked::into_component));
        Components {
            backup,
            billing,
            shared_secrets,
        }
    }

    /// One component of `components` (the field path): its cloud's `rules` check it, then
    /// its `adopt`, which every cloud reads the same way.
    fn component<R: Rules, T: Adoptable>(
        &mut self,
        rules: &R,
        components: &str,
        kind: ComponentKind,
        mut raw: At<T>,
        check: fn(&R, &mut Self, Written<T>) -> Checked<R::Access>,
    ) -> Checked<R::Access> {
        let adopt = raw.value_mut().take_adopt();
        let written = written(components, kind, raw);
        let mut checked = check(rules, self, written);
        checked.adopt = adopt.is_some_and(|a| *a.value());
        checked
    }

    /// Names are per account, subscription or project: two components of a space must not
    /// share one, explicit or default.
    fn unique_names<R: Rules>(
        &mut self,
        owner: &Owner,
        field: &str,
        rules: &R,
        checked: &[Option<Checked<R::Access>>],
    ) {
        let mut taken: HashMap<String, ComponentKind> = HashMap::new();
        for component in checked.iter().flatten() {
            let key = component.kind.spec_key();
            let name = match &component.name {
                Some((name, _)) => name.clone(),
                None => {
                    let name = default_name(owner.name, component.kind);
                    if owner.name_ok
                        && let Some(message) = rules.default_name_error(&name)
                    {
                        self.error(component.location, format!("{field}.{key}"), message);
                    }
                    name
                }
            };
            match taken.get(&name) {
                Some(other) => {
                    let (at, f) = match &component.name {
                        Some((_, at)) => (*at, format!("{field}.{key}.name")),
                        None => (component.location, format!("{field}.{key}")),
                    };
                    self.error(at, f, rules.taken(&show(&name), *other));
                }
                None => {
                    taken.insert(name, component.kind);
                }
            }
        }
    }

    /// `backup` or `billing` on a cloud of buckets (AWS, GCP): Azure's storage keys are
    /// refused, the bucket is required and must follow `rule`, then the explicit name.
    pub(super) fn bucket_component<R: Rules>(
        &mut self,
        rules: &R,
        c: Written<RawBucketComponent>,
        rule: &BucketRule,
        access: fn(String) -> R::Access,
    ) -> Checked<R::Access> {
        let (field, raw) = (c.field.as_str(), c.raw);
        let takes = "this space takes `bucket`";
        self.not_here(raw.storage_account.as_ref(), field, "storageAccount", takes);
        self.not_here(raw.container.as_ref(), field, "container", takes);
        let what = rule.what;
        let bucket = match raw.bucket {
            None => {
                let message =
                    format!("missing required key `bucket` (the name of the {what} bucket)");
                self.error(c.location, field, message);
                None
            }
            Some(bucket) => {
                if !(rule.valid)(bucket.value()) {
                    let shown = show(bucket.value());
                    self.error(
                        bucket.location(),
                        format!("{field}.bucket"),
                        format!("invalid {what} bucket name `{shown}`: {}", rule.expected),
                    );
                }
                Some(access(bucket.into_value()))
            }
        };
        let name = rules.name(self, field, raw.name);
        Checked::new(c.kind, c.location, name, bucket)
    }

    /// The `secrets` list of `sharedSecrets` (`component` is its path) on AWS or GCP: an
    /// error when empty (`empty` says what is expected), then each item by `item` (given its
    /// path, the items before it, where it is and its value).
    pub(super) fn secret_list(
        &mut self,
        component: &str,
        list: At<Vec<At<String>>>,
        empty: &str,
        mut item: impl FnMut(&mut Self, String, &[String], Location, &str),
    ) -> Vec<String> {
        let list_at = list.location();
        let list = list.into_value();
        if list.is_empty() {
            self.error(list_at, format!("{component}.secrets"), empty);
        }
        let mut secrets = Vec::new();
        for (k, value) in list.into_iter().enumerate() {
            let at = value.location();
            let value = value.into_value();
            item(
                self,
                format!("{component}.secrets[{k}]"),
                &secrets,
                at,
                &value,
            );
            secrets.push(value);
        }
        secrets
    }

    /// On a cloud of secret lists (AWS, GCP), Azure's `keyVault` is refused.
    pub(super) fn no_key_vault(&mut self, c: &Written<RawSecretsComponent>) {
        let takes = "this space takes `secrets`";
        self.not_here(c.raw.key_vault.as_ref(), &c.field, "keyVault", takes);
    }
}

/// A raw component that may say `adopt`.
trait Adoptable {
    fn take_adopt(&mut self) -> Option<At<bool>>;
}

impl Adoptable for RawBucketComponent {
    fn take_adopt(&mut self) -> Option<At<bool>> {
        self.adopt.take()
    }
}

impl Adoptable for RawSecretsComponent {
    fn take_adopt(&mut self) -> Option<At<bool>> {
        self.adopt.take()
    }
}

/// A component of `components` (the field path) as written.
fn written<T>(components: &str, kind: ComponentKind, raw: At<T>) -> Written<T> {
    Written {
        kind,
        field: format!("{components}.{}", kind.spec_key()),
        location: raw.location(),
        raw: raw.into_value(),
    }
}
