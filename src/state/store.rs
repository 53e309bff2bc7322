//! Where a state is kept and locked, behind one small interface ([`Store`]), as terraform's
//! `statemgr`: a local file with an OS lock ([`super::local`]), or an object in S3
//! ([`super::s3`]), Google Cloud Storage ([`super::gcs`]) or Azure Blob Storage
//! ([`super::azblob`]) with a lock beside it in the same storage.
//!
//! Every store writes conditionally on the version it last read or wrote, so a run that lost
//! its lock can never overwrite a newer state, and keeps the previous version.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::spec::StateLocation;

/// Who holds a lock: written into the lock (object, file or blob metadata) and named when
/// another run is refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockInfo {
    /// What `idplan state unlock` takes.
    pub id: String,
    /// `user@host`.
    pub who: String,
    pub pid: u32,
    /// The idplan command holding it.
    pub operation: String,
    /// RFC 3339.
    pub created: String,
}

impl LockInfo {
    pub fn new(operation: &str) -> LockInfo {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "unknown".into());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".into());
        LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            who: format!("{user}@{host}"),
            pid: std::process::id(),
            operation: operation.to_string(),
            created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        }
    }

    /// The holder line of a refusal.
    pub fn holder(&self) -> String {
        format!(
            "lock {}: {} pid {}, `idplan {}`, since {}",
            self.id, self.who, self.pid, self.operation, self.created
        )
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("lock info serializes")
    }

    /// The holder line of a lock's content, or what it holds when it is not idplan's.
    pub fn describe(bytes: &[u8]) -> (Option<String>, String) {
        match serde_json::from_slice::<LockInfo>(bytes) {
            Ok(info) => (Some(info.id.clone()), info.holder()),
            Err(_) => (
                None,
                format!(
                    "a lock idplan did not write: {}",
                    String::from_utf8_lossy(bytes).trim()
                ),
            ),
        }
    }
}

/// Why a lock was not taken.
pub enum Refused {
    /// Another run holds it: the holder line.
    Held(String),
    Failed(Error),
}

impl From<Error> for Refused {
    fn from(e: Error) -> Self {
        Refused::Failed(e)
    }
}

/// A state's storage and its lock.
pub trait Store: Send + Sync {
    /// Takes the lock for `info`, or says who holds it.
    fn lock<'a>(&'a self, info: &'a LockInfo) -> BoxFuture<'a, Result<(), Refused>>;
    /// Releases the lock this run took, unless it was broken and taken by another since.
    fn unlock(&self) -> BoxFuture<'_, Result<()>>;
    /// Breaks the lock `id` left by another run; refuses when the lock has another id.
    fn force_unlock<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>>;
    /// The state's bytes, or `None` when there is none yet; remembers the version read.
    fn read(&self) -> BoxFuture<'_, Result<Option<Vec<u8>>>>;
    /// Replaces the state when it is still the version last read or written, keeping the
    /// previous one; a state written by another run since is refused, never overwritten.
    fn write(&self, bytes: Vec<u8>) -> BoxFuture<'_, Result<()>>;
    /// Where the previous version is kept, for messages.
    fn backup(&self) -> String;
}

/// The store of `location`, set up with its cloud's credentials and endpoint.
pub async fn open(location: &StateLocation) -> Result<Arc<dyn Store>> {
    Ok(match location {
        StateLocation::Local(path) => Arc::new(super::local::LocalStore::new(path)?),
        StateLocation::S3 { bucket, key } => Arc::new(ObjectStore::new(
            super::s3::S3Objects::new(bucket, key, location.to_string()).await,
        )),
        StateLocation::Gcs { bucket, object } => Arc::new(ObjectStore::new(
            super::gcs::GcsObjects::new(bucket, object, location.to_string())?,
        )),
        StateLocation::AzBlob {
            account,
            container,
            blob,
        } => Arc::new(super::azblob::AzBlobStore::new(
            account,
            container,
            blob,
            location.to_string(),
        )?),
    })
}

/// Takes the lock of `store`, retrying for up to `timeout` while another run holds it.
pub async fn acquire(
    store: &dyn Store,
    location: &StateLocation,
    info: &LockInfo,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut wait = Duration::from_millis(250);
    loop {
        match store.lock(info).await {
            Ok(()) => return Ok(()),
            Err(Refused::Failed(e)) => return Err(e),
            Err(Refused::Held(holder)) => {
                let now = Instant::now();
                if now >= deadline {
                    let waited = match timeout.is_zero() {
                        true => String::new(),
                        false => format!(" after waiting {}", humantime::format_duration(timeout)),
                    };
                    let crashed = match location.is_local() {
                        true => String::new(),
                        false => "; if that run crashed, `idplan state unlock LOCK_ID` frees it"
                            .to_string(),
                    };
                    return Err(Error::user(format!(
                        "state {location} is locked by another idplan ({holder}){waited}; wait \
                         for it to finish and try again (`--lock-timeout` waits){crashed}"
                    )));
                }
                tokio::time::sleep(wait.min(deadline - now)).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Runs `future` to completion from synchronous code (a `Drop`): on the current runtime when
/// it has worker threads, else on a runtime of its own.
pub fn block_on<T: Send>(future: impl std::future::Future<Output = T> + Send) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(future))
        }
        _ => std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime for releasing the state lock")
                        .block_on(future)
                })
                .join()
                .expect("releasing the state lock")
        }),
    }
}

/// The refusal of a state write that found another version than it read.
pub fn changed_since_read(location: &str) -> Error {
    Error::user(format!(
        "state {location} was written by another run since this one read it (was this run's \
         lock broken with `idplan state unlock`?); nothing was overwritten. What this run \
         changed in the clouds since is not in the state: run `idplan plan` to pick it up"
    ))
}

/// A state as read: its bytes and version; `None` when there is none.
pub type Found = Option<(Vec<u8>, Option<String>)>;

/// The state object of a remote store (an S3 or GCS object, an Azure blob) as its cloud reads
/// and writes it; [`Kept`] reads and writes it alike for all three.
pub trait StateObject: Send + Sync {
    /// The state's bytes and version (S3 and Azure ETag, GCS generation); `None` when there
    /// is none.
    fn get_state(&self) -> BoxFuture<'_, Result<Found>>;
    /// Whether `bytes` read are no state yet (Azure: the blob a lock created empty).
    fn no_state_yet(&self, _bytes: &[u8]) -> bool {
        false
    }
    /// Writes `bytes` where `to` says; returns the new version. A state write whose
    /// precondition failed is [`changed_since_read`].
    fn put<'a>(&'a self, bytes: &'a [u8], to: Put<'a>) -> BoxFuture<'a, Result<Option<String>>>;
}

/// What a [`StateObject::put`] writes.
#[derive(Clone, Copy)]
pub enum Put<'a> {
    /// The previous state, kept as `.backup` beside the state, unconditionally.
    Backup,
    /// The state, when it is at this version (`None`: when there is none).
    State(Option<&'a str>),
}

/// What a remote store keeps between reading and writing the state: the version to write on
/// and the bytes to keep as the backup before the next write.
#[derive(Default)]
pub struct Kept {
    /// The version of the state this run read or wrote last; `None`: there was none.
    version: Mutex<Option<String>>,
    /// The state this run read or wrote last.
    previous: Mutex<Option<Vec<u8>>>,
}

impl Kept {
    /// [`Store::read`] of `object`.
    pub async fn read(&self, object: &dyn StateObject) -> Result<Option<Vec<u8>>> {
        let Some((bytes, version)) = object.get_state().await? else {
            return Ok(None);
        };
        *self.version.lock().expect("version") = version;
        if object.no_state_yet(&bytes) {
            return Ok(None);
        }
        *self.previous.lock().expect("previous") = Some(bytes.clone());
        Ok(Some(bytes))
    }

    /// [`Store::write`] of `object`: the previous state kept as the backup, then the state
    /// written on the version last read or written.
    pub async fn write(&self, object: &dyn StateObject, bytes: Vec<u8>) -> Result<()> {
        let previous = self.previous.lock().expect("previous").clone();
        let version = self.version.lock().expect("version").clone();
        if let Some(previous) = previous {
            object.put(&previous, Put::Backup).await?;
        }
        let written = match object.put(&bytes, Put::State(version.as_deref())).await {
            Ok(version) => version,
            // The SDK and the transport retry a lost reply, and the retry finds the version
            // changed: read the state back to tell this run's write from another's.
            Err(failed) => {
                let found = object.get_state().await.unwrap_or(None);
                landed(found, &bytes).ok_or(failed)?
            }
        };
        *self.version.lock().expect("version") = written;
        *self.previous.lock().expect("previous") = Some(bytes);
        Ok(())
    }
}

/// A store whose lock is an object beside the state (S3, GCS): `O` says how its cloud reads
/// and writes both objects, the rest is the same.
pub struct ObjectStore<O> {
    objects: O,
    kept: Kept,
    /// The id of the lock this run holds.
    lock_id: Mutex<Option<String>>,
}

impl<O: LockObject + StateObject> ObjectStore<O> {
    pub fn new(objects: O) -> ObjectStore<O> {
        ObjectStore {
            objects,
            kept: Kept::default(),
            lock_id: Mutex::new(None),
        }
    }
}

impl<O: LockObject + StateObject> Store for ObjectStore<O> {
    fn lock<'a>(&'a self, info: &'a LockInfo) -> BoxFuture<'a, Result<(), Refused>> {
        Box::pin(async move {
            lock_object(&self.objects, info).await?;
            *self.lock_id.lock().expect("lock id") = Some(info.id.clone());
            Ok(())
        })
    }

    fn unlock(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let Some(mine) = self.lock_id.lock().expect("lock id").take() else {
                return Ok(());
            };
            unlock_object(&self.objects, &mine).await
        })
    }

    fn force_unlock<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(force_unlock_object(&self.objects, id))
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Vec<u8>>>> {
        Box::pin(self.kept.read(&self.objects))
    }

    fn write(&self, bytes: Vec<u8>) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.kept.write(&self.objects, bytes))
    }

    fn backup(&self) -> String {
        format!("{}.backup", self.objects.url())
    }
}

/// A lock as found in the storage: its id (when idplan wrote it) and its holder line.
pub type Lock = (Option<String>, String);

/// The lock found in the storage, if any.
pub type Held = Option<Lock>;

/// A lock kept as an object beside the state (S3, GCS): created only if absent, read with its
/// version (S3 ETag, GCS generation), deleted only at the version read.
pub trait LockObject: Send + Sync {
    /// `s3://...` or `gs://...`, for messages.
    fn url(&self) -> &str;
    /// Creates the lock object holding `bytes` when there is none.
    fn create<'a>(&'a self, bytes: &'a [u8]) -> BoxFuture<'a, Result<Created>>;
    /// The lock's id and holder line, and its version; `None` when there is none.
    fn get(&self) -> BoxFuture<'_, Result<Option<(Lock, String)>>>;
    /// Deletes the lock at `version`: `Ok(false)` when it is another version now. Already
    /// gone is a success: a retried delete whose first reply was lost finds nothing.
    fn delete<'a>(&'a self, version: &'a str) -> BoxFuture<'a, Result<bool>>;
}

/// What a create of the lock object found.
pub enum Created {
    Done,
    /// The precondition failed: an object is there.
    Exists,
    /// No answer, or a server error after every retry: it may have landed all the same.
    Unsure(Error),
}

/// Takes the lock object for `info`. The SDK and the transport retry inside, so a create whose
/// reply was lost comes back as a failed precondition on its retry: every such refusal is
/// followed by a read, and a lock holding this run's id is this run's. A create that got no
/// answer, or a server error after every retry, may have landed all the same: this run's lock
/// is then removed, so a failed acquisition never leaves a lock behind.
pub async fn lock_object(lock: &dyn LockObject, info: &LockInfo) -> Result<(), Refused> {
    let bytes = info.to_json();
    // A lock released between the refused create and the read: create again.
    for _ in 0..3 {
        match lock.create(&bytes).await? {
            Created::Done => return Ok(()),
            Created::Exists => match lock.get().await? {
                Some(((Some(id), _), _)) if id == info.id => return Ok(()),
                Some(((_, holder), _)) => return Err(Refused::Held(holder)),
                None => continue,
            },
            Created::Unsure(e) => return Err(Refused::Failed(abandon(lock, &info.id, e).await)),
        }
    }
    Err(Refused::Held("released just now".into()))
}

/// `failed`, after removing this run's lock `id` when the failed create landed after all.
async fn abandon(lock: &dyn LockObject, id: &str, failed: Error) -> Error {
    let removed = match lock.get().await {
        Ok(Some(((Some(held), _), version))) if held == id => lock.delete(&version).await,
        Ok(_) => return failed,
        Err(e) => Err(e),
    };
    match removed {
        Ok(true) => failed,
        _ => with_note(
            failed,
            &format!(
                "; this run's lock of state {} may be left in place: if the next run names                  lock {id}, `idplan state unlock {id}` frees it",
                lock.url()
            ),
        ),
    }
}

/// Releases this run's lock `mine`: only when the lock object is still its own, and only at
/// the version read, so a lock broken and taken by another run meanwhile is never removed.
pub async fn unlock_object(lock: &dyn LockObject, mine: &str) -> Result<()> {
    let left = |e| left_in_place(e, mine);
    let Some((held, version)) = lock.get().await.map_err(left)? else {
        return Ok(());
    };
    if !is_mine(lock.url(), mine, &Some(held))? {
        return Ok(());
    }
    match lock.delete(&version).await.map_err(left)? {
        true => Ok(()),
        false => Err(taken_while_released(lock.url())),
    }
}

/// The failure of a release that left this run's lock `mine` in place, saying how to free it.
pub fn left_in_place(e: Error, mine: &str) -> Error {
    with_note(
        e,
        &format!("; this run's lock is left: `idplan state unlock {mine}` frees it"),
    )
}

/// Breaks the lock `id` left by another run, at the version read: a lock taken since is kept.
pub async fn force_unlock_object(lock: &dyn LockObject, id: &str) -> Result<()> {
    let found = lock.get().await?;
    let held = found.as_ref().map(|(held, _)| held.clone());
    may_break(lock.url(), id, &held)?;
    let version = found.map(|(_, version)| version).unwrap_or_default();
    match lock.delete(&version).await? {
        true => Ok(()),
        false => Err(changed_while_unlocking(lock.url())),
    }
}

/// `error` with `note` added to its message.
pub fn with_note(error: Error, note: &str) -> Error {
    match error {
        Error::Cloud {
            resource,
            api,
            message,
        } => Error::Cloud {
            resource,
            api,
            message: format!("{message}{note}"),
        },
        Error::User(message) => Error::User(format!("{message}{note}")),
        other => other,
    }
}

/// Whether a state write that failed (a precondition on the SDK's or transport's retry, or no
/// answer) landed after all: `found`, read back, holds exactly the bytes this run sent. Every
/// write carries a write id of its own, so another run's state is never the same bytes.
/// Returns the version found.
pub fn landed<V>(found: Option<(Vec<u8>, V)>, sent: &[u8]) -> Option<V> {
    found
        .filter(|(bytes, _)| bytes == sent)
        .map(|(_, version)| version)
}

/// Whether this run, holding lock `mine`, may remove the lock `held` it finds at the end:
/// true when it is its own, false when there is none; an error when another run took it
/// after this run's lock was broken.
pub fn is_mine(location: &str, mine: &str, held: &Held) -> Result<bool> {
    match held {
        Some((Some(id), _)) if id == mine => Ok(true),
        Some((_, holder)) => Err(Error::user(format!(
            "this run's lock of state {location} was broken, and {holder} holds it now; it was \
             left in place"
        ))),
        None => Ok(false),
    }
}

/// The refusal of a lock release that found the lock replaced between reading it and removing
/// it: this run's lock was broken and taken by another run just then.
pub fn taken_while_released(location: &str) -> Error {
    Error::user(format!(
        "this run's lock of state {location} was broken and taken by another run while this \
         run released it; that run's lock was left in place"
    ))
}

/// The refusal of `state unlock` when the lock changed between reading and removing it.
pub fn changed_while_unlocking(location: &str) -> Error {
    Error::user(format!(
        "the lock of state {location} changed while it was being unlocked (another run took \
         or released it); nothing was unlocked: run `idplan plan` to see who holds it now"
    ))
}

/// Allows `state unlock ID` to break `held` when it is the lock `id`; refuses another lock, or
/// none.
pub fn may_break(location: &str, id: &str, held: &Held) -> Result<()> {
    match held {
        Some((Some(held), _)) if held == id => Ok(()),
        None => Err(Error::user(format!(
            "state {location} is not locked; nothing to unlock"
        ))),
        Some((_, holder)) => Err(Error::user(format!(
            "state {location} is locked by {holder}, not by lock {id}; nothing was unlocked \
             (give the id the refusal named)"
        ))),
    }
}
