//! A state in a local file: written atomically (temp file, fsync, rename) with the previous
//! version kept as `.backup`, mode 0600, guarded by an OS lock on `<state>.lock` held for a
//! whole plan or apply (released by the OS when the process ends, however it ends).

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures::future::BoxFuture;

use super::store::{LockInfo, Refused, Store};
use crate::error::{Error, Result};

pub struct LocalStore {
    path: PathBuf,
    /// Held until unlocked; `None` when unlocked.
    lock: Mutex<Option<File>>,
}

impl LocalStore {
    pub fn new(path: &Path) -> Result<LocalStore> {
        Ok(LocalStore {
            path: path.to_path_buf(),
            lock: Mutex::new(None),
        })
    }

    fn take_lock(&self, info: &LockInfo) -> Result<(), Refused> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let path = sibling(&self.path, ".lock");
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
                return Err(Refused::Held(if holder.is_empty() {
                    "holder unknown".into()
                } else {
                    holder.to_string()
                }));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e).into()),
        }
        let holder = format!(
            "pid {}, `idplan {}`, since {}",
            info.pid, info.operation, info.created
        );
        file.set_len(0)
            .and_then(|()| file.write_all(holder.as_bytes()))
            .map_err(|e| Error::io(&path, e))?;
        *self.lock.lock().expect("lock slot") = Some(file);
        Ok(())
    }
}

impl Store for LocalStore {
    fn lock<'a>(&'a self, info: &'a LockInfo) -> BoxFuture<'a, Result<(), Refused>> {
        Box::pin(async move { self.take_lock(info) })
    }

    fn unlock(&self) -> BoxFuture<'_, Result<()>> {
        self.lock.lock().expect("lock slot").take();
        Box::pin(async { Ok(()) })
    }

    fn force_unlock<'a>(&'a self, _id: &'a str) -> BoxFuture<'a, Result<()>> {
        let path = self.path.display().to_string();
        Box::pin(async move {
            Err(Error::user(format!(
                "state {path} is a local file: its lock is an OS lock, freed when the process \
                 holding it ends; there is nothing to unlock"
            )))
        })
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Vec<u8>>>> {
        let out = match fs::read(&self.path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&self.path, e)),
        };
        Box::pin(async move { out })
    }

    fn write(&self, bytes: Vec<u8>) -> BoxFuture<'_, Result<()>> {
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || write_atomic(&path, &bytes))
                .await
                .map_err(|e| Error::internal(format!("writing the state failed: {e}")))?
        })
    }

    fn backup(&self) -> String {
        sibling(&self.path, ".backup").display().to_string()
    }
}

pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Replaces `path` so that a reader sees the old or the new file, never a part of one, and
/// the old one survives as `<path>.backup`.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
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
