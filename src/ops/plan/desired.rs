//! The desired graph: what each space's recipe makes of the spec, given what its cloud tells
//! about the account and the cluster. One pipeline for `plan`, with the clouds' answers, and
//! for `validate`, with what the spec alone decides (stand-ins of the real lengths):
//!
//! 1. [`Contexts`]: each cloud reads what its spaces' recipes need, once per cluster however
//!    many spaces share it, and checks what must exist on the way (`recipe::CloudRecipe`);
//! 2. [`Contexts::recipes`]: each space's resources, limit errors of all spaces reported
//!    together.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::graph::{Address, Graph, Kind};
use crate::note::Note;
use crate::provider::{self, Clouds};
use crate::recipe::Contexts;
use crate::recipe::aws::switch::Switches;
use crate::spec::Spec;

/// The desired resources of every space, after asking each cloud what names depend on
/// (account, cluster issuer), and what the plan should say beside its changes.
pub async fn graph(
    spec: &Spec,
    clouds: &Clouds,
    switches: &Switches,
) -> Result<(Graph, Vec<Note>)> {
    let contexts = Contexts::read(spec, clouds).await?;
    let mut graph = Graph::default();
    // (kind, identity) → address: one cloud object, one address. IAM names are global to an
    // account, so the region is not part of the key.
    let mut identities: HashMap<(Kind, provider::Identity), Address> = HashMap::new();
    contexts.recipes(spec, switches, |_, resources| {
        resources.into_iter().try_for_each(|r| {
            let key = (
                r.node.kind(),
                provider::identity(r.node.kind(), &r.attributes),
            );
            let address = r.node.address.clone();
            if !graph.add(r)? {
                return Ok(());
            }
            if let Some(other) = identities.get(&key) {
                let fix = key.0.def().conflict_fix();
                return Err(Error::user(format!(
                    "{address} and {other} both want {} {}: {fix}",
                    key.0, key.1
                )));
            }
            identities.insert(key, address);
            Ok(())
        })
    })?;
    let mut notes = contexts.notes(spec);
    notes.extend(
        switches
            .iter()
            .filter_map(|(space, switch)| switch.note(space)),
    );
    Ok((graph, notes))
}
