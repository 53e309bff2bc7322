//! Two replicas, one actor: leader election on a `coordination.k8s.io/v1` Lease, as
//! client-go's leader election does it. The holder renews the lease every retry period; a
//! candidate takes it over once the lease has not changed for its duration, measured on the
//! candidate's own clock from when it last saw it change (so clock skew does not matter). The
//! leader steps down when it cannot renew within two thirds of the duration, and gives the
//! lease up when it stops, so that the other replica takes over at once.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

use super::log::Log;

/// Where the lease is and who this replica is.
#[derive(Debug, Clone)]
pub struct Election {
    pub namespace: String,
    pub name: String,
    /// Unique per process: the pod's name and a random suffix.
    pub identity: String,
    pub duration: Duration,
}

impl Election {
    /// How often the holder renews and a candidate tries.
    fn retry(&self) -> Duration {
        (self.duration / 7).max(Duration::from_millis(200))
    }

    /// How long the holder keeps acting without a renewal.
    fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }
}

/// What the candidate last saw of the lease, and when it saw it change.
struct Observed {
    version: Option<String>,
    at: Instant,
}

/// Campaigns until `stop` turns true, telling `leader` whether this replica acts; gives the
/// lease up when it holds it at the end.
pub async fn campaign(
    election: Election,
    client: Client,
    leader: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
    log: Log,
) {
    let api: Api<Lease> = Api::namespaced(client, &election.namespace);
    let mut observed = Observed {
        version: None,
        at: Instant::now(),
    };
    let mut renewed = Instant::now();
    let where_ = format!("lease {}/{}", election.namespace, election.name);
    loop {
        let leading = *leader.borrow();
        match try_hold(&api, &election, &mut observed).await {
            Ok(true) => {
                renewed = Instant::now();
                if !leading {
                    log.event(
                        "leader",
                        &format!("this replica now acts (holds {where_})"),
                        &[("identity", &election.identity)],
                    );
                    let _ = leader.send(true);
                }
            }
            Ok(false) if leading => {
                log.event(
                    "leader",
                    &format!("another replica holds {where_}: this one stops acting"),
                    &[("identity", &election.identity)],
                );
                let _ = leader.send(false);
            }
            Ok(false) => {}
            Err(message) => {
                log.event("error", &format!("{where_}: {message}"), &[]);
                if leading && renewed.elapsed() > election.renew_deadline() {
                    log.event(
                        "leader",
                        &format!(
                            "{where_} could not be renewed in time: this replica stops acting"
                        ),
                        &[("identity", &election.identity)],
                    );
                    let _ = leader.send(false);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(election.retry()) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    if *leader.borrow() {
        let _ = leader.send(false);
        if let Err(message) = give_up(&api, &election).await {
            log.event("error", &format!("giving up {where_}: {message}"), &[]);
        }
    }
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)
}

/// Takes or renews the lease when it is free, expired or this replica's; `Ok(false)` while
/// another replica holds it.
async fn try_hold(
    api: &Api<Lease>,
    election: &Election,
    observed: &mut Observed,
) -> Result<bool, String> {
    let current = match api.get_opt(&election.name).await {
        Ok(current) => current,
        Err(e) => return Err(format!("get failed: {e}")),
    };
    let Some(mut lease) = current else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(election.name.clone()),
                namespace: Some(election.namespace.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(election.identity.clone()),
                lease_duration_seconds: Some(seconds(election.duration)),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(format!("create failed: {e}")),
        };
    };
    let version = lease.metadata.resource_version.clone();
    if version != observed.version {
        observed.version = version;
        observed.at = Instant::now();
    }
    let spec = lease.spec.get_or_insert_with(Default::default);
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let mine = holder == election.identity;
    let lasts = spec
        .lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map_or(election.duration, Duration::from_secs);
    if !mine && !holder.is_empty() && observed.at.elapsed() < lasts {
        return Ok(false);
    }
    if !mine {
        spec.acquire_time = Some(now());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.holder_identity = Some(election.identity.clone());
    spec.lease_duration_seconds = Some(seconds(election.duration));
    spec.renew_time = Some(now());
    // A replace carries the version read: a replica that changed it meanwhile wins (409).
    match api
        .replace(&election.name, &PostParams::default(), &lease)
        .await
    {
        Ok(updated) => {
            observed.version = updated.metadata.resource_version;
            observed.at = Instant::now();
            Ok(true)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(format!("update failed: {e}")),
    }
}

/// Frees the lease this replica holds, so that another takes over at its next try.
async fn give_up(api: &Api<Lease>, election: &Election) -> Result<(), String> {
    let mut lease = api
        .get(&election.name)
        .await
        .map_err(|e| format!("get failed: {e}"))?;
    let Some(spec) = lease.spec.as_mut() else {
        return Ok(());
    };
    if spec.holder_identity.as_deref() != Some(election.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(now());
    api.replace(&election.name, &PostParams::default(), &lease)
        .await
        .map(|_| ())
        .map_err(|e| format!("update failed: {e}"))
}

/// Where the service account's namespace is mounted in a pod.
const POD_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// The namespace of the pod idplan runs in, when it runs in one.
pub fn own_namespace() -> Option<String> {
    std::env::var_os("KUBERNETES_SERVICE_HOST")?;
    let namespace = std::fs::read_to_string(POD_NAMESPACE_FILE).ok()?;
    Some(namespace.trim().to_string()).filter(|n| !n.is_empty())
}

/// This replica's name in the lease: the pod's name (`POD_NAME`, else the host name) and a
/// random suffix, so that a restarted pod is a new holder.
pub fn identity() -> String {
    let name = std::env::var("POD_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "idplan".to_string());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{name}_{}", &suffix[..8])
}
