//! Spaces knowledge: what each cloud needs for a space, as desired resources.

pub mod aws;
pub mod azure;
pub mod gcp;

/// The default name of a created cloud resource: `spaces-<space>-<component>`.
pub fn default_name(space: &str, component: crate::spec::ComponentKind) -> String {
    format!("spaces-{space}-{}", component.kebab())
}

/// The resource name of a component: the spec's explicit `name`, or the default.
pub fn resource_name(space: &crate::spec::Space, component: &crate::spec::Component) -> String {
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
