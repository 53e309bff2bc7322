//! When apply persists the state it records in memory ([`Journal`]): at its start, at most
//! every [`PERSIST_INTERVAL`] while it writes, at once for what only the state knows, at its
//! end, and when a signal stops it ([`Signals`]).

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Phase, references_in};
use crate::error::{Error, Result};
use crate::graph::{self, Address, Scope};
use crate::plan::{Action, Plan, ResourceChange};
use crate::spec::ComponentKind;
use crate::state::{Ownership, StateFile};

/// How often, at most, apply persists the state while it writes to the clouds (besides at its
/// start, at its end, and when stopped by a failed state write or a signal). Terraform's
/// remote backends persist every 20 s; an apply of 1,000 control planes that persisted after
/// every write rewrote its 2.9 MB state about 1,200 times. `IDPLAN_STATE_PERSIST_INTERVAL`
/// (`500ms`, `1m`) sets another.
pub const PERSIST_INTERVAL: Duration = Duration::from_secs(5);

/// When a change recorded in memory is persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Persist {
    /// Before the step completes: what the state alone knows (what idplan added to an adopted
    /// resource, a replacement's old object) would be lost with an unpersisted state, and no
    /// tag finds it again.
    Now,
    /// At the next persist: a resource idplan created carries its tags, and a lost record of
    /// it is found by them again (`will be recorded in the state`); a lost delete is seen
    /// gone, and forgotten.
    Later,
}

impl Persist {
    /// `adopted`: the components of the plan that hold an adopted resource.
    pub(super) fn of(
        change: &ResourceChange,
        phase: Phase,
        adopted: &HashSet<(&str, ComponentKind)>,
    ) -> Persist {
        let recoverable = change.ownership == Ownership::Created
            && component_of(&change.node.address).is_none_or(|c| !adopted.contains(&c))
            && matches!(
                change.action,
                Action::Create | Action::Update | Action::ImportAndUpdate | Action::Delete
            )
            && change.deposed.is_none()
            && !phase.deletes_deposed();
        match recoverable {
            true => Persist::Later,
            false => Persist::Now,
        }
    }
}

/// The space and component of a component's resource.
pub(super) fn component_of(address: &Address) -> Option<(&str, ComponentKind)> {
    match address.scope() {
        Scope::Component {
            space, component, ..
        } => Some((space.as_str(), *component)),
        Scope::Cluster { .. } => None,
    }
}

/// The components of `plan` that hold an adopted resource (their identity, or members of its
/// bindings). What idplan creates beside it carries no tag of its own on every cloud (an Azure
/// federated credential): after a lost state it would be adopted back, never to be deleted,
/// so its record is persisted at once.
pub(super) fn adopted_components(plan: &Plan) -> HashSet<(&str, ComponentKind)> {
    plan.resource_changes
        .iter()
        .filter(|c| {
            c.ownership == Ownership::Adopted
                || c.prior
                    .as_ref()
                    .is_some_and(|p| p.ownership == Ownership::Adopted)
        })
        .filter_map(|c| component_of(&c.node.address))
        .collect()
}

/// Why apply starts no more cloud writes.
pub(super) enum Stop {
    /// `SIGINT` or `SIGTERM`.
    Signal(&'static str),
    /// A state write failed: writes made now could not be recorded. `None` when the failure
    /// is already reported as the failure of the change that waited for it.
    Failed(Option<Error>),
}

/// The state of an apply: every change is recorded in memory as its step completes, and
/// persisted at most every [`PERSIST_INTERVAL`] by [`Journal::keep`], at once for what only
/// the state knows ([`Persist::Now`]), and at the end. Writes are group-committed: the changes
/// made while a write is under way share the next one. The write runs off the async threads,
/// so cloud calls go on meanwhile.
pub(super) struct Journal<'a> {
    state: Mutex<&'a mut StateFile>,
    /// Changes made in memory so far.
    changed: AtomicU64,
    /// Changes persisted; held while writing, so writers queue and coalesce.
    written: tokio::sync::Mutex<u64>,
    interval: Duration,
    /// Set once apply must start no more cloud writes.
    pub(super) stop: Mutex<Option<Stop>>,
}

impl<'a> Journal<'a> {
    pub(super) fn new(state: &'a mut StateFile) -> Self {
        Journal {
            state: Mutex::new(state),
            changed: AtomicU64::new(0),
            written: tokio::sync::Mutex::new(0),
            interval: persist_interval(
                std::env::var("IDPLAN_STATE_PERSIST_INTERVAL")
                    .ok()
                    .as_deref(),
            ),
            stop: Mutex::new(None),
        }
    }

    /// `change` with its references to other resources' cloud-assigned attributes replaced
    /// by their values in the state (`None` when it has none). The resources it refers to
    /// were written in an earlier wave.
    pub(super) fn resolve(&self, change: &ResourceChange) -> Result<Option<ResourceChange>> {
        let Some(after) = change.after.as_ref().filter(|a| graph::has_references(a)) else {
            return Ok(None);
        };
        let state = self.state.lock().expect("state lock");
        let resolved = graph::resolve(after, &|r| {
            let record = state.state().get(r.address.as_str())?;
            record
                .attributes
                .get(&r.key)
                .filter(|v| !v.is_null())
                .cloned()
        });
        if graph::has_references(&resolved) {
            return Err(Error::user(format!(
                "{}: a resource it refers to has no value recorded yet for {}; run `idplan \
                 plan` again",
                change.node.address,
                references_in(after)
            )));
        }
        let mut out = change.clone();
        out.after = Some(resolved);
        Ok(Some(out))
    }

    /// Records `change` in memory; persists it now or later (`persist`).
    pub(super) async fn record(
        &self,
        change: &dyn Fn(&mut crate::state::State) -> bool,
        persist: Persist,
    ) -> Result<()> {
        {
            let mut state = self.state.lock().expect("state lock");
            if !state.modify(change) {
                return Ok(());
            }
            self.changed.fetch_add(1, Ordering::SeqCst);
        }
        match persist {
            Persist::Now => self.persist().await.inspect_err(|_| {
                self.halt(Stop::Failed(None));
            }),
            Persist::Later => Ok(()),
        }
    }

    /// Writes the state when it holds changes not yet written (or waits for the write under
    /// way that carries them).
    pub(super) async fn persist(&self) -> Result<()> {
        let mine = self.changed.load(Ordering::SeqCst);
        let mut written = self.written.lock().await;
        if *written >= mine {
            // A write that began after the last change already carried it.
            return Ok(());
        }
        let (upto, pending) = {
            let mut state = self.state.lock().expect("state lock");
            (self.changed.load(Ordering::SeqCst), state.snapshot())
        };
        pending.write().await?;
        *written = upto;
        Ok(())
    }

    /// Whether apply must start no more cloud writes.
    pub(super) fn stopped(&self) -> bool {
        self.stop.lock().expect("stop lock").is_some()
    }

    pub(super) fn halt(&self, why: Stop) {
        self.stop.lock().expect("stop lock").get_or_insert(why);
    }

    /// Until `finished`: persists the state every interval when it changed, and on SIGINT or
    /// SIGTERM, after which apply starts no more cloud writes (those under way finish and are
    /// recorded). A second signal exits at once. A failed write stops the apply likewise.
    pub(super) async fn keep(&self, mut finished: tokio::sync::watch::Receiver<bool>) {
        let mut signals = Signals::new();
        let start = tokio::time::Instant::now() + self.interval;
        let mut tick = tokio::time::interval_at(start, self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut interrupted = false;
        loop {
            tokio::select! {
                _ = finished.wait_for(|done| *done) => return,
                _ = tick.tick() => {}
                name = signals.next() => {
                    if std::mem::replace(&mut interrupted, true) {
                        eprintln!(
                            "\n{name} again: exiting now; what the cloud writes under way did \
                             may be missing from the state (the next plan finds the resources \
                             idplan created by their tags)"
                        );
                        std::process::exit(1);
                    }
                    eprintln!(
                        "\n{name}: no more cloud writes are started; the ones under way finish \
                         and the state is saved (interrupt again to exit at once)"
                    );
                    self.halt(Stop::Signal(name));
                }
            }
            // Never inside the select: a state write is not dropped half way.
            if let Err(e) = self.persist().await {
                self.halt(Stop::Failed(Some(e)));
            }
        }
    }
}

/// `setting` (`IDPLAN_STATE_PERSIST_INTERVAL`) when it is a duration other than zero, else
/// [`PERSIST_INTERVAL`].
pub(super) fn persist_interval(setting: Option<&str>) -> Duration {
    setting
        .and_then(|v| humantime::parse_duration(v.trim()).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(PERSIST_INTERVAL)
}

/// SIGINT and SIGTERM, from the first wait on: from then on they no longer end the process.
pub struct Signals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Default for Signals {
    fn default() -> Signals {
        Signals::new()
    }
}

impl Signals {
    pub fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                streams: signal(SignalKind::interrupt())
                    .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
                    .ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next signal's name; never returns when they cannot be caught.
    pub async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        match &mut self.streams {
            Some((int, term)) => tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            None => std::future::pending().await,
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => "Ctrl-C",
                Err(_) => std::future::pending().await,
            }
        }
    }
}
