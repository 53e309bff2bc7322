//! Spaces knowledge: what each cloud needs for a space, as desired resources.

pub mod aws;
pub mod azure;
pub mod gcp;

use crate::spec::{Component, Space, default_name};

/// The resource name of a component: the spec's explicit `name`, or the default.
pub fn resource_name<T>(space: &Space, component: &Component<T>) -> String {
    component
        .name
        .clone()
        .unwrap_or_else(|| default_name(&space.name, component.kind))
}

/// The OIDC subject of a component's service account in one host namespace.
pub fn subject(namespace: &str, component: crate::spec::ComponentKind) -> String {
    format!(
        "system:serviceaccount:{namespace}:{}",
        component.service_account()
    )
}

/// The form of the host namespaces Spaces makes: `mxp-<controlPlaneID>-system`, as an IAM
/// `StringLike` pattern.
pub const HOST_NAMESPACE_PATTERN: &str = "mxp-*-system";

/// Whether `namespace` matches [`HOST_NAMESPACE_PATTERN`].
pub fn is_host_namespace(namespace: &str) -> bool {
    namespace.len() >= "mxp--system".len()
        && namespace.starts_with("mxp-")
        && namespace.ends_with("-system")
}

#[cfg(test)]
mod tests {
    use super::is_host_namespace;

    #[test]
    fn host_namespaces_match_the_pattern_as_iam_does() {
        assert!(is_host_namespace(
            "mxp-706c49fa-5bb8-4a7e-9f41-2fc38ef4b065-system"
        ));
        // `*` matches any run of characters, none included.
        assert!(is_host_namespace("mxp--system"));
        assert!(!is_host_namespace("mxp-system"));
        assert!(!is_host_namespace("acme-team-a"));
        assert!(!is_host_namespace("mxp-a-systems"));
    }
}
