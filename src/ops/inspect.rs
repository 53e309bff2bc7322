//! `state list`, `state show` and `show`: reading what idplan wrote, no cloud call.

use std::fmt::Write;
use std::path::Path;

use super::plan::saved_path;
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::plan::render::{self, Format};
use crate::state::StateFile;

/// The addresses the state holds, one a line.
pub fn state_list(state_file: &Path) -> Result<String> {
    let file = StateFile::read_only(state_file)?;
    let mut out = String::new();
    for r in &file.state().resources {
        let _ = writeln!(out, "{}", r.address);
    }
    Ok(out)
}

/// One resource as the state recorded it, as JSON.
pub fn state_show(state_file: &Path, address: &str) -> Result<String> {
    let file = StateFile::read_only(state_file)?;
    let record = file.state().get(address).ok_or_else(|| {
        Error::user(format!(
            "{}: no resource {address} (see `idplan state list`)",
            file.path().display()
        ))
    })?;
    let mut text = serde_json::to_string_pretty(record).expect("record serializes");
    text.push('\n');
    Ok(text)
}

/// A saved plan (as given, or where `plan --out` put it), rendered.
pub fn show(name: &Path, format: Format, max_chars: usize) -> Result<String> {
    let path = saved_path(name);
    let plan = Plan::load(&path)?;
    let options = render::Options {
        max_chars,
        plan_file: Some(path.display().to_string()),
    };
    render::render(&plan, format, &options)
}
