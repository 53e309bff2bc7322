//! `watch`: the additive apply run next to the Space, reacting to it. A watch per space on
//! its cluster's `ControlPlane` objects ([`spaces`]); a new control plane (or one that just got
//! its ID) joins a batch, which after `--debounce` is applied with `--additive-only` limited
//! to its control planes, and the deployments whose pods predate their new credentials are
//! restarted (what `verify --restart` does). A control plane that disappears is only reported:
//! what would remove access waits for a reviewed apply. At start, every `--resync` and when
//! the spec changes, a pass covers every control plane, its cloud calls paced. One replica
//! acts ([`lease`]); [`metrics`] and [`log`] say what it does.

pub mod lease;
pub mod log;
pub mod metrics;
mod spaces;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::apply::{Event, Signals, Verb};
use crate::cluster::{self, FoundControlPlane};
use crate::error::{Error, Result};
use crate::ops::plan::Planned;
use crate::ops::{Inputs, apply, plan, verify};
use crate::plan::targets::Targets;
use crate::spec::{self, Spec};
use crate::state::{StateFile, StateLocation};
use lease::Election;
use log::{Log, LogFormat};
use metrics::{Metrics, Outcome};
use spaces::Seen;

/// How `watch` runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub spec: PathBuf,
    pub state: Option<StateLocation>,
    pub debounce: Duration,
    pub resync: Duration,
    pub max_calls_per_second: u32,
    pub listen: Option<SocketAddr>,
    pub log: LogFormat,
    /// `None`: this replica acts alone.
    pub election: Option<Election>,
    pub parallelism: usize,
    pub lock_timeout: Duration,
}

/// How often the spec file is compared with the one loaded (a ConfigMap update replaces it).
const SPEC_CHECK: Duration = Duration::from_secs(2);
/// How long an apply under way may take to finish its writes and save the state on SIGTERM
/// (Kubernetes waits 30 s; the promise is 10 s).
const GRACE: Duration = Duration::from_secs(8);
/// The longest wait between two tries after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Withheld changes logged at the most per pass.
const WITHHELD_LINES: usize = 20;

/// Runs until SIGTERM or SIGINT. A spec that does not load, a cluster that cannot be reached
/// at start or an address that cannot be listened on is an error before anything is watched.
pub async fn run(options: Options) -> Result<()> {
    let log = Log {
        format: options.log,
    };
    let spec = spec::load(&options.spec)?;
    let watched = discovering(&spec);
    if watched.is_empty() {
        return Err(Error::user(format!(
            "{}: no space discovers its control planes (`controlPlanes.discover`), so there is \
             nothing to watch; `idplan apply --additive-only` serves listed control planes",
            options.spec.display()
        )));
    }
    crate::pace::limit(options.max_calls_per_second);
    let metrics = Metrics::new(spec.spaces.iter().map(|s| s.name.as_str()));
    let mut clients = Vec::new();
    for (name, discover) in &watched {
        clients.push((name.clone(), cluster::connect(discover).await?));
    }
    if let Some(addr) = options.listen {
        let bound = metrics::serve(addr, metrics.clone()).await?;
        log.event(
            "listening",
            &format!("serving /healthz, /readyz and /metrics on http://{bound}"),
            &[("address", &bound.to_string())],
        );
    }
    let (seen_tx, seen_rx) = mpsc::channel(256);
    for (name, client) in &clients {
        tokio::spawn(spaces::watch(name.clone(), client.clone(), seen_tx.clone()));
    }
    drop(seen_tx);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (leader_tx, leader_rx) = watch::channel(options.election.is_none());
    let campaign = match &options.election {
        Some(election) => {
            log.event(
                "candidate",
                &format!(
                    "standing by until this replica holds lease {}/{} (in the cluster of space {})",
                    election.namespace, election.name, clients[0].0
                ),
                &[("identity", &election.identity)],
            );
            Some(tokio::spawn(lease::campaign(
                election.clone(),
                clients[0].1.clone(),
                leader_tx.clone(),
                stop_rx,
                log,
            )))
        }
        None => None,
    };
    metrics.leader(*leader_rx.borrow());
    let mut watcher = Watcher::new(options, spec, &watched, log, metrics);
    watcher.run(seen_rx, leader_rx).await;
    let _ = stop_tx.send(true);
    if let Some(campaign) = campaign {
        let _ = tokio::time::timeout(Duration::from_secs(1), campaign).await;
    }
    drop(leader_tx);
    log.event("stopped", "no work under way; exiting", &[]);
    Ok(())
}

/// The spaces that discover their control planes, and where.
fn discovering(spec: &Spec) -> Vec<(String, spec::Discover)> {
    spec.spaces
        .iter()
        .filter_map(|s| Some((s.name.clone(), s.discover.clone()?)))
        .collect()
}

/// Per space: each ControlPlane object (`namespace/name`) and its host namespace, if any yet.
type Planes = BTreeMap<String, BTreeMap<String, Option<String>>>;

struct Watcher {
    options: Options,
    log: Log,
    metrics: std::sync::Arc<Metrics>,
    /// The last spec that loaded.
    spec: Spec,
    /// The hash of the spec file as last read (a file that did not load included), so that
    /// each version of it is reported once.
    file_hash: String,
    /// The clusters watched, as the spec at start names them: a changed one needs a restart.
    clusters: BTreeMap<String, (Option<String>, Option<PathBuf>)>,
    planes: Planes,
    /// Spaces whose first list is read.
    listed: BTreeSet<String>,
    /// Host namespaces waiting for the next batch, and when the first of them came.
    pending: BTreeSet<String>,
    since: Option<Instant>,
    /// A pass over every control plane is due (start, resync, a new spec).
    full: bool,
    /// After failures: not before this.
    retry: Option<Instant>,
    failures: u32,
    /// Per space: the withheld changes the last pass over every control plane counted.
    withheld: BTreeMap<String, u64>,
    /// Per space: control planes gone since, with the resources the state records for them.
    gone: BTreeMap<String, BTreeMap<String, u64>>,
}

/// What a pass did.
struct Done {
    writes: usize,
    /// Per space: changes that wait for a reviewed apply.
    withheld: BTreeMap<String, u64>,
    withheld_lines: Vec<String>,
    restarted: Vec<String>,
}

impl Watcher {
    fn new(
        options: Options,
        spec: Spec,
        watched: &[(String, spec::Discover)],
        log: Log,
        metrics: std::sync::Arc<Metrics>,
    ) -> Watcher {
        Watcher {
            options,
            log,
            metrics,
            file_hash: spec.hash.clone(),
            spec,
            clusters: clusters(watched),
            planes: BTreeMap::new(),
            listed: BTreeSet::new(),
            pending: BTreeSet::new(),
            since: None,
            full: true,
            retry: None,
            failures: 0,
            withheld: BTreeMap::new(),
            gone: BTreeMap::new(),
        }
    }

    async fn run(&mut self, mut seen: mpsc::Receiver<Seen>, mut leader: watch::Receiver<bool>) {
        let mut signals = Signals::new();
        let resync = self.options.resync;
        let mut resync = tokio::time::interval_at(Instant::now() + resync, resync);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut spec_check = tokio::time::interval_at(Instant::now() + SPEC_CHECK, SPEC_CHECK);
        spec_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let due = self.due(*leader.borrow());
            let wake = due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                name = signals.next() => {
                    self.log.event("stopping", &format!("{name}: stopping"), &[]);
                    return;
                }
                event = seen.recv() => match event {
                    Some(event) => self.seen(event).await,
                    None => return,
                },
                changed = leader.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let leading = *leader.borrow();
                    self.metrics.leader(leading);
                    // A new leader starts with a pass over every control plane: the old one may
                    // have stopped part way.
                    self.full |= leading;
                }
                _ = resync.tick() => {
                    self.log.event("resync", "a pass over every control plane is due", &[]);
                    self.full = true;
                }
                _ = spec_check.tick() => self.reload(),
                _ = tokio::time::sleep_until(wake), if due.is_some() => {
                    if self.pass(&mut signals).await {
                        return;
                    }
                }
            }
        }
    }

    /// When the next pass is due, if one is and this replica acts.
    fn due(&self, leading: bool) -> Option<Instant> {
        if !leading || self.listed.len() < self.clusters.len() {
            return None;
        }
        let at = match (self.full, self.since) {
            (true, _) => Instant::now(),
            (false, Some(since)) => since + self.options.debounce,
            (false, None) => return None,
        };
        Some(self.retry.map_or(at, |retry| at.max(retry)))
    }

    /// Takes in what a space's watch saw.
    async fn seen(&mut self, event: Seen) {
        match event {
            Seen::Listed { space, planes } => {
                let now: BTreeMap<String, Option<String>> = planes
                    .into_iter()
                    .map(|p| (p.name, p.host_namespace))
                    .collect();
                let before = self.planes.remove(&space).unwrap_or_default();
                let first = self.listed.insert(space.clone());
                for (name, ns) in &before {
                    if !now.contains_key(name) {
                        self.gone(&space, name, ns.clone()).await;
                    }
                }
                self.planes.insert(space.clone(), before);
                for (name, ns) in now {
                    // The first list is served by the pass at start; later ones by batches.
                    self.applied(&space, name, ns, !first);
                }
                self.log.event(
                    "listed",
                    &format!(
                        "space {space}: {} control planes",
                        self.planes.get(&space).map_or(0, BTreeMap::len)
                    ),
                    &[("space", &space)],
                );
                if self.listed.len() == self.clusters.len() {
                    self.metrics.ready();
                }
            }
            Seen::Applied { space, plane } => {
                self.applied(&space, plane.name, plane.host_namespace, true);
            }
            Seen::Deleted { space, plane } => {
                self.planes.get_mut(&space).map(|p| p.remove(&plane.name));
                self.gone(&space, &plane.name, plane.host_namespace).await;
            }
            Seen::Failed { space, message } => {
                self.log.event(
                    "error",
                    &format!("space {space}: watching control planes: {message} (retried)"),
                    &[("space", &space)],
                );
            }
        }
    }

    /// A control plane listed, created or changed: a new host namespace joins the batch.
    fn applied(&mut self, space: &str, name: String, ns: Option<String>, batch: bool) {
        let planes = self.planes.entry(space.to_string()).or_default();
        let before = planes.insert(name.clone(), ns.clone());
        let Some(ns) = ns else {
            if before.is_none() {
                self.log.event(
                    "seen",
                    &format!("control plane {name} has no ID yet: served once it has one"),
                    &[("space", space), ("control_plane", &name)],
                );
            }
            return;
        };
        if before.as_ref() == Some(&Some(ns.clone())) {
            return;
        }
        if let Some(gone) = self.gone.get_mut(space)
            && gone.remove(&ns).is_some()
        {
            self.show_withheld(space);
        }
        if !batch {
            return;
        }
        self.log.event(
            "seen",
            &format!("control plane {name} (host namespace {ns}): served in the next batch"),
            &[
                ("space", space),
                ("control_plane", &name),
                ("namespace", &ns),
            ],
        );
        self.pending.insert(ns);
        self.since.get_or_insert_with(Instant::now);
    }

    /// A control plane gone: nothing is deleted; its identities wait for a reviewed apply.
    async fn gone(&mut self, space: &str, name: &str, ns: Option<String>) {
        let Some(ns) = ns else {
            return;
        };
        let still = self
            .planes
            .get(space)
            .is_some_and(|p| p.values().any(|n| n.as_ref() == Some(&ns)));
        if still {
            return;
        }
        self.pending.remove(&ns);
        let recorded = match self.recorded(&ns).await {
            Ok(n) => n,
            Err(e) => {
                self.log.event(
                    "error",
                    &format!("reading the state to count what waits for {ns}: {e}"),
                    &[("space", space), ("namespace", &ns)],
                );
                0
            }
        };
        self.log.event(
            "withheld",
            &format!(
                "control plane {name} (host namespace {ns}) is gone: its {recorded} resources \
                 stay until a reviewed apply (`idplan plan` shows them)"
            ),
            &[
                ("space", space),
                ("control_plane", name),
                ("namespace", &ns),
            ],
        );
        self.gone
            .entry(space.to_string())
            .or_default()
            .insert(ns, recorded);
        self.show_withheld(space);
    }

    /// The resources the state records for a control plane's host namespace: its own, and
    /// the shared ones that name it (a reviewed apply deletes or narrows each).
    async fn recorded(&self, ns: &str) -> Result<u64> {
        let location = crate::ops::state_location(self.options.state.as_ref(), Some(&self.spec));
        let state = StateFile::read_only(&location, crate::provider::upgrade_recorded).await?;
        let gone = Targets::new([ns.to_string()]);
        let n = state
            .state()
            .resources
            .iter()
            .filter(|r| gone.covers(r.node.kind(), &r.node.address, &r.attributes))
            .count();
        Ok(n as u64)
    }

    fn show_withheld(&self, space: &str) {
        let gone: u64 = self.gone.get(space).map_or(0, |g| g.values().sum());
        let counted = self.withheld.get(space).copied().unwrap_or(0);
        self.metrics.withheld(space, counted + gone);
    }

    /// Re-reads the spec when its file changed; keeps the last good one when it does not load.
    fn reload(&mut self) {
        let Ok(bytes) = std::fs::read(&self.options.spec) else {
            return;
        };
        let hash = spec::hash(&bytes);
        if hash == self.file_hash {
            return;
        }
        self.file_hash = hash;
        let refused = |this: &mut Watcher, why: String| {
            this.metrics.spec_error();
            this.log.event(
                "error",
                &format!(
                    "the changed spec is not used (the last good one is kept): {}",
                    why.lines().collect::<Vec<_>>().join("; ")
                ),
                &[("file", &this.options.spec.display().to_string())],
            );
        };
        // Parsed from the bytes just read and hashed: the file may change again meanwhile.
        let loaded = match std::str::from_utf8(&bytes) {
            Ok(text) => spec::parse(&self.options.spec, text),
            Err(_) => spec::load(&self.options.spec),
        };
        let spec = match loaded {
            Ok(spec) => spec,
            Err(e) => return refused(self, e.to_string()),
        };
        if clusters(&discovering(&spec)) != self.clusters {
            return refused(
                self,
                "it changes which clusters are watched (a `controlPlanes.discover` block): \
                 restart idplan watch to follow them"
                    .to_string(),
            );
        }
        self.log.event(
            "spec",
            "the spec changed: a pass over every control plane applies what it adds",
            &[("file", &self.options.spec.display().to_string())],
        );
        self.spec = spec;
        self.full = true;
    }

    /// Runs the pass that is due; true when a signal stopped it (the watcher then stops).
    async fn pass(&mut self, signals: &mut Signals) -> bool {
        let full = std::mem::take(&mut self.full);
        let batch: Vec<String> = match full {
            true => Vec::new(),
            false => std::mem::take(&mut self.pending).into_iter().collect(),
        };
        if full {
            self.pending.clear();
        }
        self.since = None;
        let what = match full {
            true => "every control plane".to_string(),
            false => named(&batch),
        };
        let listed = batch.join(",");
        let batch_field = [("control_planes", listed.as_str())];
        self.log.event(
            "reconciling",
            &format!("applying what adds access for {what}"),
            &batch_field,
        );
        let started = Instant::now();
        let applying = AtomicBool::new(false);
        let result = {
            let work = reconcile(self, &batch, &applying);
            tokio::pin!(work);
            tokio::select! {
                result = &mut work => result,
                name = signals.next() => {
                    self.log.event("stopping", &format!("{name}: stopping"), &[]);
                    // The apply saw the signal too: it starts no more cloud writes, finishes
                    // those under way and saves the state. A plan still reading is abandoned;
                    // either way dropping the work releases the state lock.
                    if applying.load(Ordering::Relaxed) {
                        let _ = tokio::time::timeout(GRACE, &mut work).await;
                    }
                    return true;
                }
            }
        };
        let took = started.elapsed();
        match result {
            Ok(done) => {
                self.failures = 0;
                self.retry = None;
                let any_withheld = done.withheld.values().any(|n| *n > 0);
                if full {
                    self.withheld = done.withheld.clone();
                    self.gone.clear();
                    let spaces: Vec<String> =
                        self.spec.spaces.iter().map(|s| s.name.clone()).collect();
                    for space in spaces {
                        self.show_withheld(&space);
                    }
                }
                for line in &done.withheld_lines {
                    self.log.event(
                        "withheld",
                        &format!("waits for a reviewed apply: {line}"),
                        &[],
                    );
                }
                for deployment in &done.restarted {
                    self.log.event(
                        "restarted",
                        &format!("deployment {deployment}: its pods predate their credentials"),
                        &[("deployment", deployment)],
                    );
                }
                self.log.event(
                    "reconciled",
                    &format!(
                        "{what}: {} cloud writes, {} deployments restarted, in {:.1}s",
                        done.writes,
                        done.restarted.len(),
                        took.as_secs_f64()
                    ),
                    &batch_field,
                );
                let outcome = match any_withheld {
                    true => Outcome::Withheld,
                    false => Outcome::Success,
                };
                self.metrics.reconciled(outcome, took);
            }
            Err(e) => {
                self.failures += 1;
                let wait = backoff(self.failures);
                self.retry = Some(Instant::now() + wait);
                match full {
                    true => self.full = true,
                    false => {
                        self.pending.extend(batch);
                        self.since.get_or_insert_with(Instant::now);
                    }
                }
                self.log.event(
                    "error",
                    &format!(
                        "{what}: {} (tried again in {}s)",
                        e.to_string().lines().collect::<Vec<_>>().join("; "),
                        wait.as_secs()
                    ),
                    &batch_field,
                );
                self.metrics.reconciled(Outcome::Error, took);
            }
        }
        false
    }
}

fn clusters(
    watched: &[(String, spec::Discover)],
) -> BTreeMap<String, (Option<String>, Option<PathBuf>)> {
    watched
        .iter()
        .map(|(name, d)| (name.clone(), (d.context.clone(), d.kubeconfig.clone())))
        .collect()
}

/// A batch's host namespaces for a log line: the first few, and how many more (the
/// `control_planes` field lists them all).
fn named(batch: &[String]) -> String {
    const NAMED: usize = 3;
    match batch.len() {
        n if n <= NAMED => batch.join(", "),
        n => format!("{} and {} more", batch[..NAMED].join(", "), n - NAMED),
    }
}

/// 1 s, doubling up to a minute.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1 << failures.saturating_sub(1).min(6)).min(MAX_BACKOFF)
}

/// The additive apply of `batch` (every control plane when empty) with the control planes the
/// watches know, then the restart of what predates its credentials.
async fn reconcile(watcher: &Watcher, batch: &[String], applying: &AtomicBool) -> Result<Done> {
    let mut spec = watcher.spec.clone();
    let mut discovered = Vec::new();
    for space in &mut spec.spaces {
        if let Some(planes) = watcher.planes.get(&space.name) {
            let found = planes.iter().map(|(name, ns)| FoundControlPlane {
                name: name.clone(),
                host_namespace: ns.clone(),
            });
            discovered.extend(cluster::add_discovered(space, found));
        }
    }
    let options = &watcher.options;
    let inputs = Inputs {
        spec: options.spec.clone(),
        state: options.state.clone(),
        lock_timeout: options.lock_timeout,
        parallelism: options.parallelism,
        additive_only: true,
        control_planes: batch.to_vec(),
    };
    let opened = plan::open_discovered(spec.clone(), discovered.clone(), &inputs, "watch").await?;
    let decided = plan::decide(&opened, &inputs).await;
    let mut planned = Planned {
        state: opened.state,
        clouds: opened.clouds,
        plan: decided?,
    };
    let kinds: HashMap<String, &'static str> = planned
        .plan
        .resource_changes
        .iter()
        .map(|c| (c.node.address.to_string(), c.node.kind().facts().type_name))
        .collect();
    let writes = std::sync::atomic::AtomicUsize::new(0);
    let report = |event: Event| {
        if let Event::Finished { address, verb, .. } = event
            && matches!(
                verb,
                Verb::Creating | Verb::Modifying | Verb::Destroying | Verb::Releasing
            )
        {
            writes.fetch_add(1, Ordering::Relaxed);
            let kind = kinds.get(address).copied().unwrap_or("unknown");
            watcher.metrics.applied(kind);
            watcher
                .log
                .event("applied", address, &[("kind", kind), ("address", address)]);
        }
    };
    applying.store(true, Ordering::Relaxed);
    let applied = apply::execute(&mut planned, options.parallelism, &report).await;
    applying.store(false, Ordering::Relaxed);
    let Planned { state, plan, .. } = planned;
    let closed = state.close().await;
    applied?;
    closed?;
    let mut withheld: BTreeMap<String, u64> =
        spec.spaces.iter().map(|s| (s.name.clone(), 0)).collect();
    for change in plan.withheld() {
        let space = change.node.address.space().unwrap_or_default().to_string();
        *withheld.entry(space).or_default() += 1;
    }
    let withheld_lines = crate::plan::additive::withheld_lines(&plan, WITHHELD_LINES);
    let report =
        verify::verify_discovered(spec, discovered, options.state.as_ref(), true, batch).await?;
    Ok(Done {
        writes: writes.into_inner(),
        withheld,
        withheld_lines,
        restarted: report.restarted().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let waits: Vec<u64> = (1..=9).map(|n| super::backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(super::backoff(u32::MAX), Duration::from_secs(60));
    }
}
