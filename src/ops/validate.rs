//! `validate`: the spec and every limit it alone decides, with no cloud call. The recipes run
//! as for `plan` ([`desired`](super::plan::desired)), with stand-in contexts of the real
//! lengths; the limits count idplan's own resources only.

use std::collections::BTreeMap;
use std::path::Path;

use super::plan::desired::{self, Contexts};
use crate::error::{Error, Result};
use crate::graph::Kind;
use crate::provider::aws::AwsKind;
use crate::recipe::{aws, gcp};
use crate::spec::{self, Cloud, SpecError, SpecErrors};

/// Checks the spec; returns the line that says what it holds.
pub fn validate(file: &Path) -> Result<String> {
    let spec = spec::load(file)?;
    // Associations per (region, cluster), since spaces may share a cluster, and the last space
    // that adds to it: the one an error points at.
    let mut associations: BTreeMap<(&str, &str), (usize, usize)> = BTreeMap::new();
    // GCP resources of all spaces: spaces may share a bucket or a project's policy.
    let mut google = Vec::new();
    let ran = desired::recipes(
        &spec,
        &Contexts::spec_alone(&spec),
        &Default::default(),
        |i, resources| {
            match &spec.spaces[i].cloud {
                Cloud::Aws(a) => {
                    let n = resources
                        .iter()
                        .filter(|r| r.kind == Kind::Aws(AwsKind::EksPodIdentityAssociation))
                        .count();
                    if n > 0 {
                        let entry = associations.entry((&a.region, &a.cluster)).or_default();
                        *entry = (entry.0 + n, i);
                    }
                }
                Cloud::Azure(_) => {}
                Cloud::Gcp(_) => google.extend(resources),
            }
            Ok(())
        },
    );
    let mut errors = match ran {
        Ok(()) => Vec::new(),
        Err(Error::Spec(SpecErrors(e))) => e,
        Err(e) => return Err(e),
    };
    for ((_, cluster), (wanted, i)) in associations {
        if let Err(message) = aws::check_association_quota(cluster, wanted, 0) {
            let Cloud::Aws(a) = &spec.spaces[i].cloud else {
                unreachable!("associations are counted for AWS spaces only")
            };
            errors.push(SpecError {
                path: spec.path.clone(),
                location: Some(a.location),
                field: format!("spaces[{i}].controlPlanes"),
                message,
            });
        }
    }
    if !errors.is_empty() {
        return Err(Error::Spec(SpecErrors(errors)));
    }
    for ((_, policy), members) in gcp::policy_members(&google)? {
        gcp::check_principals(&policy, members.len(), 0)
            .map_err(|e| Error::user(format!("{}: {e}", file.display())))?;
    }
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
