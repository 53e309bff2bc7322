use std::collections::BTreeMap;
use std::path::Path;

use super::{Exit, print};
use crate::error::{Error, Result};
use crate::graph::Kind;
use crate::recipe::aws::{self, AwsContext};
use crate::recipe::azure::{self, AzureContext};
use crate::recipe::gcp::{self, GcpContext};
use crate::spec::{self, Cloud, SpecError, SpecErrors};

/// Loads the spec and checks the limits with stand-in account and issuer values of the real
/// lengths, so no cloud call is needed.
pub fn validate(file: &Path) -> Result<Exit> {
    let spec = spec::load(file)?;
    let mut errors = Vec::new();
    // Associations per (region, cluster), since spaces may share a cluster, and the last space
    // that adds to it: the one an error points at.
    let mut associations: BTreeMap<(&str, &str), (usize, usize)> = BTreeMap::new();
    // GCP resources of all spaces: spaces may share a bucket or a project's policy.
    let mut google = Vec::new();
    for (i, space) in spec.spaces.iter().enumerate() {
        // Control planes still to be discovered: the limits are checked by `plan`, which
        // knows them (validate makes no cluster call).
        if space.discover.is_some() && space.control_planes.is_empty() {
            continue;
        }
        match &space.cloud {
            Cloud::Aws(a) => {
                match aws::resources(&spec.path, i, space, a, &AwsContext::placeholder(&a.region)) {
                    Ok(resources) => {
                        let n = resources
                            .iter()
                            .filter(|r| r.kind == Kind::AwsEksPodIdentityAssociation)
                            .count();
                        if n > 0 {
                            let entry = associations.entry((&a.region, &a.cluster)).or_default();
                            *entry = (entry.0 + n, i);
                        }
                    }
                    Err(SpecErrors(e)) => errors.extend(e),
                }
            }
            Cloud::Azure(a) => {
                let ctx = AzureContext::placeholder(a);
                if let Err(SpecErrors(e)) = azure::resources(&spec.path, i, space, a, &ctx) {
                    errors.extend(e);
                }
            }
            Cloud::Gcp(g) => {
                let ctx = GcpContext::placeholder(&g.project);
                match gcp::resources(&spec.path, i, space, g, &ctx) {
                    Ok(resources) => google.extend(resources),
                    Err(SpecErrors(e)) => errors.extend(e),
                }
            }
        }
    }
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
    for ((_, policy), members) in gcp::policy_members(&google) {
        gcp::check_principals(&policy, members.len(), 0)
            .map_err(|e| Error::user(format!("{}: {e}", file.display())))?;
    }
    let control_planes: usize = spec.spaces.iter().map(|s| s.control_planes.len()).sum();
    let components: usize = spec.spaces.iter().map(|s| s.component_kinds().len()).sum();
    let discovering = spec.spaces.iter().filter(|s| s.discover.is_some()).count();
    let discovering = match discovering {
        0 => String::new(),
        n => format!(" {n} space(s) discover more control planes at plan time."),
    };
    print(&format!(
        "{} is valid: {} space(s), {control_planes} control plane(s), {components} \
         component(s).{discovering}\n",
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
