//! The name rules of the spec: the default name of a component's cloud resource, and the
//! rules each written name must follow. Each rule is checked by hand (no regex engine in the
//! dependencies) and mirrors a pattern in `schema.rs`; tests keep them in step.

use super::ComponentKind;
use super::schema::{SERVICE_ACCOUNT_ID_MAX, SERVICE_ACCOUNT_ID_MIN};

/// `spaces-<space>-<component>`: the name of a component's cloud resource (IAM role, managed
/// identity, Google service account) when the spec sets none. The only place it is spelt.
pub fn default_name(space: &str, component: ComponentKind) -> String {
    format!("spaces-{space}-{}", component.kebab())
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$` of at most `max` characters (DNS-1123 label, space name).
pub(super) fn is_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// `^[a-z]{2}(-[a-z]+)+-\d+$`
pub(super) fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let lower = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    parts.len() >= 3
        && parts[0].len() == 2
        && lower(&parts[0])
        && parts[1..parts.len() - 1].iter().all(lower)
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$`
pub(super) fn is_cluster_name(s: &str) -> bool {
    s.len() <= 100
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `^[a-z0-9][a-z0-9.-]*[a-z0-9]$`, 3 to 63 characters.
pub(super) fn is_bucket_name(s: &str) -> bool {
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (3..=63).contains(&s.len())
        && s.bytes().all(|b| edge(b) || b == b'.' || b == b'-')
        && s.bytes().next().is_some_and(edge)
        && s.bytes().last().is_some_and(edge)
}

/// `^[a-z0-9][a-z0-9._-]*[a-z0-9]$`, 3 to 63 characters (Cloud Storage).
pub(super) fn is_gcs_bucket_name(s: &str) -> bool {
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (3..=63).contains(&s.len())
        && s.bytes().all(|b| edge(b) || b"._-".contains(&b))
        && s.bytes().next().is_some_and(edge)
        && s.bytes().last().is_some_and(edge)
}

/// `^[a-z][a-z0-9-]{4,28}[a-z0-9]$`
pub(super) fn is_gcp_project(s: &str) -> bool {
    (6..=30).contains(&s.len())
        && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.ends_with('-')
}

/// `^[a-z]+-[a-z]+\d+(-[a-z])?$`: `us-central1`, `europe-west4-b`.
pub(super) fn is_gke_location(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let letters = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    let region = |p: &str| {
        let digits = p.trim_start_matches(|c: char| c.is_ascii_lowercase());
        letters(&p[..p.len() - digits.len()])
            && !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
    };
    match parts.as_slice() {
        [a, b] => letters(a) && region(b),
        [a, b, z] => letters(a) && region(b) && z.len() == 1 && letters(z),
        _ => false,
    }
}

/// `^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$`
pub(super) fn is_gke_cluster_name(s: &str) -> bool {
    (1..=40).contains(&s.len())
        && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.ends_with('-')
}

/// `^[a-z]([-a-z0-9]*[a-z0-9])$`, 6 to 30 characters.
pub(super) fn is_service_account_id(s: &str) -> bool {
    (SERVICE_ACCOUNT_ID_MIN..=SERVICE_ACCOUNT_ID_MAX).contains(&s.len()) && is_gke_cluster_name(s)
}

/// `^[A-Za-z0-9_-]{1,255}$`
pub(super) fn is_gcp_secret_id(s: &str) -> bool {
    (1..=255).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `^[\w+=,.@-]{1,64}$` (with `max` = 64).
pub(super) fn is_role_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

/// A subscription id: `8-4-4-4-12` hex digits.
pub(super) fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `^[-\w.()]{0,89}[-\w()]$`
pub(super) fn is_resource_group(s: &str) -> bool {
    (1..=90).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.()".contains(&b))
        && !s.ends_with('.')
}

/// `^[a-z][a-z0-9]*$`
pub(super) fn is_azure_location(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// `^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$`
pub(super) fn is_aks_name(s: &str) -> bool {
    s.len() <= 63
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$`: a user-assigned managed identity name.
pub(super) fn is_identity_name(s: &str) -> bool {
    (3..=128).contains(&s.len())
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `^[a-z0-9]{3,24}$`
pub(super) fn is_storage_name(s: &str) -> bool {
    (3..=24).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// `^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$`
pub(super) fn is_vault_name(s: &str) -> bool {
    (3..=24).contains(&s.len())
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `^[a-z0-9]([a-z0-9-]{1,61})[a-z0-9]$`
pub(super) fn is_container_name(s: &str) -> bool {
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (3..=63).contains(&s.len())
        && s.bytes().all(|b| edge(b) || b == b'-')
        && s.bytes().next().is_some_and(edge)
        && s.bytes().last().is_some_and(edge)
}

/// A bare name, or `/subscriptions/<id>/resourceGroups/<rg>/providers/<type>/<name>`.
pub(super) fn is_azure_resource(s: &str, kind: &str, name_ok: fn(&str) -> bool) -> bool {
    if !s.starts_with('/') {
        return name_ok(s);
    }
    let parts: Vec<&str> = s.split('/').collect();
    let types: Vec<&str> = kind.split('/').collect();
    parts.len() == 9
        && parts[0].is_empty()
        && parts[1].eq_ignore_ascii_case("subscriptions")
        && is_guid(parts[2])
        && parts[3].eq_ignore_ascii_case("resourceGroups")
        && is_resource_group(parts[4])
        && parts[5].eq_ignore_ascii_case("providers")
        && parts[6].eq_ignore_ascii_case(types[0])
        && parts[7].eq_ignore_ascii_case(types[1])
        && name_ok(parts[8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::schema::{ROLE_NAME_MAX, SPACE_NAME_MAX};

    #[test]
    fn default_names() {
        assert_eq!(
            default_name("prod", ComponentKind::SharedSecrets),
            "spaces-prod-shared-secrets"
        );
        // The longest valid space name still fits IAM's limit.
        let longest = "a".repeat(SPACE_NAME_MAX);
        assert!(default_name(&longest, ComponentKind::SharedSecrets).len() <= ROLE_NAME_MAX);
    }

    #[test]
    fn name_rules() {
        assert!(is_label("a", 63) && is_label("a-0", 63) && is_label(&"a".repeat(63), 63));
        assert!(!is_label("", 63) && !is_label(&"a".repeat(64), 63) && !is_label("a.b", 63));
        assert!(is_role_name("a", 64) && !is_role_name("", 64) && !is_role_name("é", 64));
        assert!(is_bucket_name("a.b") && !is_bucket_name("a.") && !is_bucket_name("A-b"));
        assert!(is_cluster_name("a") && !is_cluster_name("") && !is_cluster_name("a.b"));
        assert!(
            is_gcs_bucket_name("a_b.c") && !is_gcs_bucket_name("_ab") && !is_gcs_bucket_name("AB1")
        );
        assert!(
            is_gcp_project("acme-spaces") && !is_gcp_project("12345678") && !is_gcp_project("abc")
        );
        assert!(is_gcp_project(&"a".repeat(30)) && !is_gcp_project(&"a".repeat(31)));
        for ok in ["us-central1", "europe-west4-b", "asia-northeast1-a"] {
            assert!(is_gke_location(ok), "{ok}");
        }
        for bad in [
            "us-central",
            "us-central1-ab",
            "uscentral1",
            "us-central1-",
            "US-central1",
        ] {
            assert!(!is_gke_location(bad), "{bad}");
        }
        assert!(
            is_gke_cluster_name("a") && !is_gke_cluster_name("a-") && !is_gke_cluster_name("1a")
        );
        assert!(is_service_account_id("spaces-prod-backup") && !is_service_account_id("short"));
        assert!(!is_service_account_id(&"a".repeat(31)) && is_service_account_id(&"a".repeat(30)));
        assert!(is_gcp_secret_id("A_b-1") && !is_gcp_secret_id("a/b") && !is_gcp_secret_id(""));
    }
}
