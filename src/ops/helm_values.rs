//! `helm-values`: the Spaces chart values that point each component at its identity, from
//! the identities the state records.

use std::fmt::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::helm;
use crate::spec;
use crate::state::{StateFile, StateLocation};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HelmFormat {
    /// `--set` arguments for `helm upgrade`.
    Set,
    /// A values file for `helm upgrade -f`.
    Yaml,
}

/// The values of one space (`only`) or of every space in the spec, each headed by its name
/// when there are several.
pub async fn helm_values(
    spec_file: &Path,
    state: Option<&StateLocation>,
    only: Option<&str>,
    format: HelmFormat,
) -> Result<String> {
    let spec = spec::load(spec_file)?;
    let state = StateFile::read_only(
        &super::state_location(state, Some(&spec)),
        crate::provider::upgrade_recorded,
    )
    .await?;
    let spaces: Vec<_> = spec
        .spaces
        .iter()
        .filter(|s| only.is_none_or(|name| s.name == name))
        .collect();
    if spaces.is_empty() {
        return Err(Error::user(format!(
            "{}: no space named {}",
            spec.path.display(),
            only.unwrap_or_default()
        )));
    }
    let mut out = String::new();
    for space in &spaces {
        let values = crate::recipe::helm_values(space, state.state())?;
        if spaces.len() > 1 {
            let separator = if format == HelmFormat::Yaml && !out.is_empty() {
                "---\n"
            } else {
                ""
            };
            let _ = writeln!(out, "{separator}# space {}", space.name);
        }
        out.push_str(&match format {
            HelmFormat::Set => helm::render_set(&values),
            HelmFormat::Yaml => helm::render_yaml(&values),
        });
    }
    Ok(out)
}
