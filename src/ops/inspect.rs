//! `state list`, `state show`, `state unlock`, `state migrate` and `show`: what idplan wrote,
//! and where it keeps it; no cloud call besides the state's storage.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use super::plan::saved_path;
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::plan::render::{self, Format};
use crate::state::{StateFile, StateLocation};

/// The addresses the state holds, one a line.
pub async fn state_list(location: &StateLocation) -> Result<String> {
    let file = StateFile::read_only(location, crate::provider::upgrade_recorded).await?;
    let mut out = String::new();
    for r in &file.state().resources {
        let _ = writeln!(out, "{}", r.node.address);
    }
    Ok(out)
}

/// One resource as the state recorded it, as JSON.
pub async fn state_show(location: &StateLocation, address: &str) -> Result<String> {
    let file = StateFile::read_only(location, crate::provider::upgrade_recorded).await?;
    let record = file.state().get(address).ok_or_else(|| {
        Error::user(format!(
            "{location}: no resource {address} (see `idplan state list`)"
        ))
    })?;
    let mut text = serde_json::to_string_pretty(record).expect("record serializes");
    text.push('\n');
    Ok(text)
}

/// The state's location for the `state` commands: `--state` or `IDPLAN_STATE`, else the
/// `state:` of the spec when there is a spec file, else the default.
pub fn located(explicit: Option<&StateLocation>, spec_file: &Path) -> Result<StateLocation> {
    if explicit.is_none() && spec_file.exists() {
        let spec = crate::spec::load(spec_file)?;
        return Ok(super::state_location(None, Some(&spec)));
    }
    Ok(super::state_location(explicit, None))
}

/// Breaks lock `id` of the state at `location`.
pub async fn state_unlock(location: &StateLocation, id: &str) -> Result<String> {
    StateFile::force_unlock(location, id).await?;
    Ok(format!("Unlocked state {location} (lock {id}).\n"))
}

/// Copies the state at `from` to `to`, both locked meanwhile; refuses a destination with a
/// state of another lineage, or a newer one of the same lineage.
pub async fn state_migrate(from: &StateLocation, to: &StateLocation) -> Result<String> {
    if from == to {
        return Err(Error::user(format!(
            "state migrate: the state is already at {to}"
        )));
    }
    let command = "state migrate";
    let source = StateFile::open(
        from,
        command,
        Duration::ZERO,
        crate::provider::upgrade_recorded,
    )
    .await?;
    if !source.exists() {
        return Err(Error::user(format!(
            "state migrate: there is no state at {from} to move (give its location with \
             --state)"
        )));
    }
    let mut dest = StateFile::open(
        to,
        command,
        Duration::ZERO,
        crate::provider::upgrade_recorded,
    )
    .await?;
    let (have, mine) = (dest.state(), source.state());
    if dest.exists() && have.lineage != mine.lineage {
        return Err(Error::user(format!(
            "state migrate: {to} holds a state of another lineage ({}, this one is {}); \
             refused, nothing was written",
            have.lineage, mine.lineage
        )));
    }
    if dest.exists() && have.serial > mine.serial {
        return Err(Error::user(format!(
            "state migrate: {to} holds a newer state of this lineage (serial {}, this one is \
             {}); refused, nothing was written",
            have.serial, mine.serial
        )));
    }
    dest.replace(mine.clone());
    dest.snapshot().write().await?;
    let out = format!(
        "Moved the state (lineage {}, {} resources) from {from} to {to} (serial {}). From now \
         on give --state {to}, IDPLAN_STATE or the spec's `state:`; {from} stays as it was.\n",
        dest.state().lineage,
        dest.state().resources.len(),
        dest.state().serial
    );
    dest.close().await?;
    source.close().await?;
    Ok(out)
}

/// A saved plan (as given, or where `plan --out` put it), rendered.
pub fn show(name: &Path, format: Format, max_chars: usize) -> Result<String> {
    let path = saved_path(name);
    let plan = Plan::load(&path)?;
    let options = render::Options {
        max_chars,
        plan_file: Some(path.display().to_string()),
        spec_file: None,
    };
    render::render(&plan, format, &options)
}
