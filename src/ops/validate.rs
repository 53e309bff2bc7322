//! `validate`: the spec and every limit it alone decides, with no cloud call. The recipes run
//! as for `plan` ([`desired`](super::plan::desired)), with stand-in contexts of the real
//! lengths; the limits count idplan's own resources only.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::recipe::{self, Contexts};
use crate::spec::{self, SpecErrors};

/// Checks the spec; returns the line that says what it holds.
pub fn validate(file: &Path) -> Result<String> {
    let spec = spec::load(file)?;
    let mut ran = BTreeMap::new();
    let recipes = Contexts::spec_alone(&spec).recipes(&spec, &Default::default(), |i, r| {
        ran.insert(i, r);
        Ok(())
    });
    let errors = match recipes {
        Ok(()) => Vec::new(),
        Err(Error::Spec(SpecErrors(e))) => e,
        Err(e) => return Err(e),
    };
    recipe::check_spec_limits(&spec, &ran, errors)?;
    let control_planes: usize = spec.spaces.iter().map(|s| s.control_planes.len()).sum();
    let components: usize = spec.spaces.iter().map(|s| s.component_kinds().len()).sum();
    let discovering = match spec.spaces.iter().filter(|s| s.discover.is_some()).count() {
        0 => String::new(),
        n => format!(" {n} space(s) discover more control planes at plan time."),
    };
    Ok(format!(
        "{} is valid: {} space(s), {control_planes} control plane(s), {components} \
         component(s).{discovering}\n",
        file.display(),
        spec.spaces.len()
    ))
}

/// The JSON Schema of the spec file, pretty-printed.
pub fn schema() -> String {
    let mut text = serde_json::to_string_pretty(&spec::json_schema()).expect("schema serializes");
    text.push('\n');
    text
}
