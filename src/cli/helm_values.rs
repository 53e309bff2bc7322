use std::fmt::Write;

use clap::{Args, ValueEnum};

use super::{Exit, SpecArgs, StateArgs, print};
use crate::error::{Error, Result};
use crate::helm;
use crate::spec;
use crate::state::StateFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum HelmFormat {
    /// `--set` arguments for `helm upgrade`.
    Set,
    /// A values file for `helm upgrade -f`.
    Yaml,
}

#[derive(Debug, Args)]
pub struct HelmValuesArgs {
    #[command(flatten)]
    spec: SpecArgs,
    #[command(flatten)]
    state: StateArgs,
    /// Only this space (the default is every space in the spec).
    #[arg(long, value_name = "NAME")]
    space: Option<String>,
    /// `set`: --set arguments to paste after `helm upgrade`; `yaml`: a values file.
    #[arg(long, value_enum, default_value = "set")]
    format: HelmFormat,
}

pub fn run(args: HelmValuesArgs) -> Result<Exit> {
    let spec = spec::load(&args.spec.file)?;
    let state = StateFile::read_only(&args.state.state)?;
    let spaces: Vec<_> = spec
        .spaces
        .iter()
        .filter(|s| args.space.as_ref().is_none_or(|name| &s.name == name))
        .collect();
    if spaces.is_empty() {
        return Err(Error::user(format!(
            "{}: no space named {}",
            spec.path.display(),
            args.space.unwrap_or_default()
        )));
    }
    let mut out = String::new();
    for space in &spaces {
        let values = helm::values(space, state.state())?;
        if spaces.len() > 1 {
            let separator = if args.format == HelmFormat::Yaml && !out.is_empty() {
                "---\n"
            } else {
                ""
            };
            let _ = writeln!(out, "{separator}# space {}", space.name);
        }
        out.push_str(&match args.format {
            HelmFormat::Set => helm::render_set(&values),
            HelmFormat::Yaml => helm::render_yaml(&values),
        });
    }
    print(&out);
    Ok(Exit::Success)
}
