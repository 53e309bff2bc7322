//! The local state: what idplan created or adopted, with the attributes last applied.
//!
//! Written atomically (temp file, fsync, rename) with the previous version kept as `.backup`,
//! mode 0600, and guarded by an OS lock that is held for a whole plan or apply.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::graph::{Address, Kind, Location, Resource};

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// Made once when the state is first written; a saved plan must carry the same one.
    pub lineage: String,
    /// +1 on every write.
    pub serial: u64,
    /// Sorted by address.
    pub resources: Vec<Record>,
    /// Per space name: what the last apply covered on the cluster side.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub spaces: BTreeMap<String, SpaceRecord>,
}

/// What the last apply covered of one space: drift and verify compare the cluster with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceRecord {
    /// The host namespaces the applied identities cover.
    #[serde(default)]
    pub control_planes: Vec<String>,
    /// Per component (spec key): when apply last changed its identity (RFC 3339); pods started
    /// before run without what changed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub identity_changed: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ownership {
    /// idplan made it and may delete it.
    Created,
    /// It existed before; idplan manages only what it added and never deletes it.
    Adopted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub address: Address,
    pub kind: Kind,
    pub location: Location,
    pub ownership: Ownership,
    /// The attributes last applied (for adopted resources: only the parts idplan manages).
    pub attributes: Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<Address>,
    /// For adopted resources: what idplan added and takes back when the resource leaves the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added: Option<Value>,
}

impl Record {
    pub fn resource(&self) -> Resource {
        Resource {
            address: self.address.clone(),
            kind: self.kind,
            location: self.location.clone(),
            attributes: self.attributes.clone(),
            depends_on: self.depends_on.clone(),
        }
    }
}

impl State {
    fn new() -> Self {
        State {
            version: FORMAT_VERSION,
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            resources: Vec::new(),
            spaces: BTreeMap::new(),
        }
    }

    pub fn get(&self, address: &str) -> Option<&Record> {
        self.resources
            .binary_search_by(|r| r.address.as_str().cmp(address))
            .ok()
            .map(|i| &self.resources[i])
    }

    /// Inserts or replaces the record; returns whether anything changed.
    pub fn put(&mut self, record: Record) -> bool {
        match self
            .resources
            .binary_search_by(|r| r.address.cmp(&record.address))
        {
            Ok(i) if self.resources[i] == record => false,
            Ok(i) => {
                self.resources[i] = record;
                true
            }
            Err(i) => {
                self.resources.insert(i, record);
                true
            }
        }
    }

    pub fn remove(&mut self, address: &str) -> bool {
        match self
            .resources
            .binary_search_by(|r| r.address.as_str().cmp(address))
        {
            Ok(i) => {
                self.resources.remove(i);
                true
            }
            Err(_) => false,
        }
    }
}

/// The state file, opened under its lock. The lock is released when this is dropped.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    state: State,
    /// False until the first write: there was no state file.
    exists: bool,
    /// Held until drop; `None` for a read-only view.
    _lock: Option<File>,
}

impl StateFile {
    /// Takes the lock (or fails naming its holder) and reads the state, if there is one.
    pub fn open(path: &Path, command: &str) -> Result<StateFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let lock = lock(path, command)?;
        let (state, exists) = read(path)?;
        Ok(StateFile {
            path: path.to_path_buf(),
            state,
            exists,
            _lock: Some(lock),
        })
    }

    /// Reads the state without the lock, for commands that only look: writes replace the file
    /// by rename, so a reader sees a whole state, never a part of one. Cannot be written.
    pub fn read_only(path: &Path) -> Result<StateFile> {
        let (state, exists) = read(path)?;
        Ok(StateFile {
            path: path.to_path_buf(),
            state,
            exists,
            _lock: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn exists(&self) -> bool {
        self.exists
    }

    /// Adopts the lineage of a saved plan made before the first state write.
    pub fn set_lineage(&mut self, lineage: &str) {
        if !self.exists {
            self.state.lineage = lineage.to_string();
        }
    }

    /// Applies `change` to the state and writes it, if it changed anything.
    pub fn update(&mut self, change: impl FnOnce(&mut State) -> bool) -> Result<()> {
        if change(&mut self.state) {
            let (path, bytes) = self.snapshot();
            write_atomic(&path, &bytes)?;
        }
        Ok(())
    }

    /// Applies `change` in memory only; `snapshot` and `write` persist it. Returns whether
    /// anything changed.
    pub fn modify(&mut self, change: impl FnOnce(&mut State) -> bool) -> bool {
        change(&mut self.state)
    }

    /// The next version of the state file, serialized: its serial is taken now.
    pub fn snapshot(&mut self) -> (PathBuf, Vec<u8>) {
        assert!(self._lock.is_some(), "a read-only state is never written");
        self.state.serial += 1;
        self.exists = true;
        let mut bytes = serde_json::to_vec_pretty(&self.state).expect("state serializes");
        bytes.push(b'\n');
        (self.path.clone(), bytes)
    }

    /// Writes a snapshot: atomically, keeping the previous file as `.backup`.
    pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
        write_atomic(path, bytes)
    }
}

/// The state at `path`, or a new one (and `false`) when there is no file yet.
fn read(path: &Path) -> Result<(State, bool)> {
    Ok(match fs::read(path) {
        Ok(bytes) => {
            let mut state: State = serde_json::from_slice(&bytes).map_err(|e| {
                Error::user(format!(
                    "{}: not an idplan state file: {e}; its previous version is {}",
                    path.display(),
                    sibling(path, ".backup").display()
                ))
            })?;
            if state.version != FORMAT_VERSION {
                return Err(Error::user(format!(
                    "{}: state format version {} is not supported (this idplan reads {FORMAT_VERSION})",
                    path.display(),
                    state.version
                )));
            }
            for r in &mut state.resources {
                crate::provider::upgrade_recorded(r.kind, &mut r.attributes);
            }
            (state, true)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => (State::new(), false),
        Err(e) => return Err(Error::io(path, e)),
    })
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Replaces `path` so that a reader sees the old or the new file, never a part of one, and
/// the old one survives as `<path>.backup`.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = sibling(path, ".tmp");
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| Error::io(p, e)
    };
    let mut file = private_file(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    if path.exists() {
        // A hard link keeps the current state in place until the rename below replaces it.
        let backup = sibling(path, ".backup");
        let backup_tmp = sibling(path, ".backup.tmp");
        let _ = fs::remove_file(&backup_tmp);
        fs::hard_link(path, &backup_tmp).map_err(io(&backup_tmp))?;
        fs::rename(&backup_tmp, &backup).map_err(io(&backup))?;
    }
    fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Makes the rename itself durable.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}

fn private_file(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    // `mode` applies only to new files; an old temp file may have other permissions.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(file)
}

/// Takes an exclusive OS lock on `<state>.lock` and records who holds it.
fn lock(state: &Path, command: &str) -> Result<File> {
    let path = sibling(state, ".lock");
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(Error::user(format!(
                "state {} is locked by another idplan{}; wait for it to finish and try again",
                state.display(),
                if holder.is_empty() {
                    String::new()
                } else {
                    format!(" ({holder})")
                }
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
    }
    let holder = format!(
        "pid {}, `idplan {command}`, since {}",
        std::process::id(),
        humantime::format_rfc3339_seconds(SystemTime::now())
    );
    file.set_len(0)
        .and_then(|()| file.write_all(holder.as_bytes()))
        .map_err(|e| Error::io(&path, e))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ComponentKind;
    use serde_json::json;

    fn record(space: &str) -> Record {
        Record {
            address: Address::component(Kind::AwsIamRole, space, ComponentKind::Backup),
            kind: Kind::AwsIamRole,
            location: Location::Aws {
                region: "us-east-1".into(),
            },
            ownership: Ownership::Created,
            attributes: json!({"name": space}),
            depends_on: vec![],
            added: None,
        }
    }

    #[test]
    fn writes_atomically_with_backup_and_private_mode() {
        let dir = std::env::temp_dir().join(format!("idplan-state-{}", uuid::Uuid::new_v4()));
        let path = dir.join("idplan.state.json");
        let mut file = StateFile::open(&path, "test").unwrap();
        assert!(!file.exists());
        file.update(|s| s.put(record("b"))).unwrap();
        file.update(|s| s.put(record("a"))).unwrap();
        file.update(|s| s.put(record("a"))).unwrap(); // unchanged: no write
        assert_eq!(file.state().serial, 2);
        let lineage = file.state().lineage.clone();
        drop(file);

        let again = StateFile::open(&path, "test").unwrap();
        assert_eq!(again.state().lineage, lineage);
        let addresses: Vec<_> = again
            .state()
            .resources
            .iter()
            .map(|r| r.address.as_str())
            .collect();
        assert_eq!(
            addresses,
            ["aws_iam_role.a.backup", "aws_iam_role.b.backup"]
        );
        let backup: State =
            serde_json::from_slice(&fs::read(sibling(&path, ".backup")).unwrap()).unwrap();
        assert_eq!(backup.serial, 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn second_opener_is_refused_with_the_holder() {
        let dir = std::env::temp_dir().join(format!("idplan-lock-{}", uuid::Uuid::new_v4()));
        let path = dir.join("s.json");
        let held = StateFile::open(&path, "apply").unwrap();
        let err = StateFile::open(&path, "plan").unwrap_err().to_string();
        assert!(err.contains("is locked by another idplan"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(held);
        StateFile::open(&path, "plan").unwrap();
        fs::remove_dir_all(dir).unwrap();
    }
}
