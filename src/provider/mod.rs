//! Cloud drivers behind one interface: read, create, update and delete a resource.
//!
//! A driver's `read` returns the actual attributes *projected* onto what idplan manages, in
//! the same normal form as the desired attributes, so that equal means "nothing to do".
//! Tags or client ids that someone else added are not in the projection and so never drift.

pub mod aws;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::graph::{Kind, Location, Resource};

/// Every driver the current run needs, each created once.
pub struct Clouds {
    aws: Option<aws::AwsDriver>,
}

impl Clouds {
    /// Creates the drivers for the locations given; no cloud call is made here.
    pub async fn new<'a>(locations: impl IntoIterator<Item = &'a Location>) -> Clouds {
        let mut need_aws = false;
        for location in locations {
            match location {
                Location::Aws { .. } => need_aws = true,
            }
        }
        Clouds {
            aws: if need_aws {
                Some(aws::AwsDriver::new().await)
            } else {
                None
            },
        }
    }

    pub fn aws(&self) -> Result<&aws::AwsDriver> {
        self.aws
            .as_ref()
            .ok_or_else(|| Error::user("internal: no AWS driver was set up"))
    }

    pub async fn read(&self, resource: &Resource) -> Result<Option<Value>> {
        match resource.location {
            Location::Aws { .. } => self.aws()?.read(resource).await,
        }
    }

    pub async fn create(&self, resource: &Resource) -> Result<()> {
        match resource.location {
            Location::Aws { .. } => self.aws()?.create(resource).await,
        }
    }

    pub async fn update(&self, resource: &Resource, actual: &Value) -> Result<()> {
        match resource.location {
            Location::Aws { .. } => self.aws()?.update(resource, actual).await,
        }
    }

    /// Deletes a resource idplan created.
    pub async fn delete(&self, resource: &Resource) -> Result<()> {
        match resource.location {
            Location::Aws { .. } => self.aws()?.delete(resource).await,
        }
    }

    /// Takes back from an adopted resource only what idplan added to it.
    pub async fn release(&self, resource: &Resource, added: &Value) -> Result<()> {
        match resource.location {
            Location::Aws { .. } => self.aws()?.release(resource, added).await,
        }
    }
}

/// Whether an existing resource that the state does not know can be taken over.
pub enum Adoption {
    /// It carries idplan's marker: idplan made it (a lost state): manage it as created.
    Owned,
    /// Someone else's resource that idplan may share: manage only `desired` (a reduced
    /// version of the desired attributes) and remember `added` to take back later.
    Shared { desired: Value, added: Option<Value> },
    /// Someone else's resource idplan must not touch.
    Conflict(String),
}

/// Decides how to treat an existing resource that is not in the state.
pub fn adoption(resource: &Resource, actual: &Value) -> Adoption {
    let owned = actual["tags"][crate::recipe::aws::MANAGED_BY.0]
        == crate::recipe::aws::MANAGED_BY.1;
    match resource.kind {
        _ if owned => Adoption::Owned,
        Kind::AwsIamOpenidConnectProvider => aws::adopt_provider(resource, actual),
        // An inline policy belongs to its role: the role's adoption decides.
        Kind::AwsIamRolePolicy => Adoption::Owned,
        Kind::AwsIamRole => Adoption::Conflict(format!(
            "IAM role {} already exists and was not created by idplan (no tag managed-by=idplan); \
             idplan will not take it over: set another `name` for the component, or delete the role",
            resource.attributes["name"].as_str().unwrap_or_default()
        )),
    }
}

/// The cloud identity of a resource: when it differs between state and spec, the resource
/// is replaced.
pub fn identity(kind: Kind, attributes: &Value) -> String {
    let s = |k: &str| attributes[k].as_str().unwrap_or_default().to_string();
    match kind {
        Kind::AwsIamOpenidConnectProvider => s("arn"),
        Kind::AwsIamRole => format!("{}{}", s("path"), s("name")),
        Kind::AwsIamRolePolicy => format!("{}/{}", s("role"), s("name")),
    }
}
