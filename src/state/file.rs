//! [`StateFile`]: a state opened at its location, under its lock for the commands that
//! change it, and the file format (pretty JSON, `version`, `lineage`, `serial`).

use std::sync::Arc;
use std::time::Duration;

use super::store::{self, LockInfo, Store};
use super::{FORMAT_VERSION, State};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::kind::Kind;
use crate::spec::StateLocation;

/// The state, opened under its lock (or read-only). The lock is released by [`close`] or
/// when this is dropped.
///
/// [`close`]: StateFile::close
pub struct StateFile {
    location: StateLocation,
    store: Arc<dyn Store>,
    state: State,
    /// False until the first write: there was no state.
    exists: bool,
    /// Whether this run holds the lock; false for a read-only view.
    locked: bool,
    upgrade: Upgrade,
}

impl std::fmt::Debug for StateFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateFile")
            .field("location", &self.location)
            .field("serial", &self.state.serial)
            .field("locked", &self.locked)
            .finish()
    }
}

/// A state write taken by [`StateFile::snapshot`], to be sent while other work goes on.
pub struct Pending {
    store: Arc<dyn Store>,
    bytes: Vec<u8>,
}

impl Pending {
    pub async fn write(self) -> Result<()> {
        let len = self.bytes.len();
        self.store.write(self.bytes).await?;
        crate::stats::count_state_write(len);
        Ok(())
    }
}

impl StateFile {
    /// Takes the lock (waiting up to `timeout` while another run holds it, then failing
    /// naming the holder) and reads the state, if there is one.
    pub async fn open(
        location: &StateLocation,
        command: &str,
        timeout: Duration,
        upgrade: Upgrade,
    ) -> Result<StateFile> {
        let store = store::open(location).await?;
        store::acquire(store.as_ref(), location, &LockInfo::new(command), timeout).await?;
        let mut file = StateFile {
            location: location.clone(),
            store,
            state: State::new(),
            exists: false,
            locked: true,
            upgrade,
        };
        // On an error the lock is released as `file` drops.
        file.load().await?;
        Ok(file)
    }

    /// Reads the state without the lock, for commands that only look: every store replaces
    /// the state whole, so a reader sees a whole state, never a part of one. Cannot be written.
    pub async fn read_only(location: &StateLocation, upgrade: Upgrade) -> Result<StateFile> {
        let mut file = StateFile {
            location: location.clone(),
            store: store::open(location).await?,
            state: State::new(),
            exists: false,
            locked: false,
            upgrade,
        };
        file.load().await?;
        Ok(file)
    }

    async fn load(&mut self) -> Result<()> {
        if let Some(bytes) = self.store.read().await? {
            self.state = decode(&bytes, &self.location, &self.store.backup(), self.upgrade)?;
            self.exists = true;
        }
        Ok(())
    }

    pub fn location(&self) -> &StateLocation {
        &self.location
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn exists(&self) -> bool {
        self.exists
    }

    /// Breaks the lock `id` of the state at `location`, left by a run that crashed.
    pub async fn force_unlock(location: &StateLocation, id: &str) -> Result<()> {
        store::open(location).await?.force_unlock(id).await
    }

    /// Adopts the lineage of a saved plan made before the first state write.
    pub fn set_lineage(&mut self, lineage: &str) {
        if !self.exists {
            self.state.lineage = lineage.to_string();
        }
    }

    /// Replaces the whole state (a state moved here from another location): the next write
    /// carries its lineage and resources.
    pub fn replace(&mut self, state: State) {
        let serial = state.serial.max(self.state.serial);
        self.state = state;
        self.state.serial = serial;
    }

    /// Applies `change` to the state and writes it, if it changed anything.
    pub async fn update(&mut self, change: impl FnOnce(&mut State) -> bool) -> Result<()> {
        if change(&mut self.state) {
            self.snapshot().write().await?;
        }
        Ok(())
    }

    /// Applies `change` in memory only; `snapshot` persists it. Returns whether anything
    /// changed.
    pub fn modify(&mut self, change: impl FnOnce(&mut State) -> bool) -> bool {
        change(&mut self.state)
    }

    /// The next version of the state, serialized (its serial is taken now), to write.
    pub fn snapshot(&mut self) -> Pending {
        assert!(self.locked, "a read-only state is never written");
        self.state.serial += 1;
        self.state.write_id = uuid::Uuid::new_v4().to_string();
        self.exists = true;
        Pending {
            store: self.store.clone(),
            bytes: encode(&self.state),
        }
    }

    /// Releases the lock, saying so when that fails.
    pub async fn close(mut self) -> Result<()> {
        self.release().await
    }

    async fn release(&mut self) -> Result<()> {
        if std::mem::take(&mut self.locked) {
            self.store.unlock().await?;
        }
        Ok(())
    }
}

impl Drop for StateFile {
    fn drop(&mut self) {
        if self.locked {
            let location = self.location.to_string();
            if let Err(e) = store::block_on(self.release()) {
                eprintln!("warning: the lock of state {location} was not released: {e}");
            }
        }
    }
}

/// The state's bytes as written.
pub fn encode(state: &State) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(state).expect("state serializes");
    bytes.push(b'\n');
    bytes
}

/// A state read back; `backup` names where its previous version is kept.
/// Brings what an older idplan recorded of a kind to what this one records; each kind
/// declares its own (`provider::upgrade_recorded`), above the state.
pub type Upgrade = fn(Kind, &mut Value);

pub fn decode(
    bytes: &[u8],
    location: &StateLocation,
    backup: &str,
    upgrade: Upgrade,
) -> Result<State> {
    let mut state: State = serde_json::from_slice(bytes).map_err(|e| {
        Error::user(format!(
            "{location}: not an idplan state: {e}; its previous version is {backup}"
        ))
    })?;
    if state.version != FORMAT_VERSION {
        return Err(Error::user(format!(
            "{location}: state format version {} is not supported (this idplan reads \
             {FORMAT_VERSION})",
            state.version
        )));
    }
    for r in &mut state.resources {
        upgrade(r.node.kind(), &mut r.attributes);
    }
    Ok(state)
}
