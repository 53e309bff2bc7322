use std::path::Path;

use super::{Exit, print};
use crate::error::{Error, Result};
use crate::recipe::aws::{self, AwsContext};
use crate::spec::{self, Cloud, SpecErrors};

/// Loads the spec and checks the limits with stand-in account and issuer values of the real
/// lengths, so no cloud call is needed.
pub fn validate(file: &Path) -> Result<Exit> {
    let spec = spec::load(file)?;
    let mut errors = Vec::new();
    for (i, space) in spec.spaces.iter().enumerate() {
        match &space.cloud {
            Cloud::Aws(a) => {
                if let Err(SpecErrors(e)) =
                    aws::resources(&spec.path, i, space, a, &AwsContext::placeholder(&a.region))
                {
                    errors.extend(e);
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(Error::Spec(SpecErrors(errors)));
    }
    let control_planes: usize = spec.spaces.iter().map(|s| s.control_planes.len()).sum();
    let components: usize = spec
        .spaces
        .iter()
        .map(|s| s.components.iter().count())
        .sum();
    print(&format!(
        "{} is valid: {} space(s), {control_planes} control plane(s), {components} component(s).\n",
        file.display(),
        spec.spaces.len()
    ));
    Ok(Exit::Success)
}

pub fn schema() -> Result<Exit> {
    let mut text = serde_json::to_string_pretty(&spec::json_schema()).expect("schema serializes");
    text.push('\n');
    print(&text);
    Ok(Exit::Success)
}
