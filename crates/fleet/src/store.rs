//! Keeping `infrastructure.json` safe: an exclusive lock while a command changes the fleet,
//! atomic writes (temporary file, flush, rename), and the previous version kept beside it.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::state::State;

/// Where the state lives and how it is guarded.
#[derive(Debug, Clone)]
pub struct StateStore {
    path: PathBuf,
}

/// Proof that the caller holds the state lock; released when dropped.
#[derive(Debug)]
pub struct StateLock {
    file: File,
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // Nobody holds it any more; an empty lock file says so, and leaves no trace behind.
        let _ = self.file.set_len(0);
    }
}

/// Why the state could not be read, locked or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read {path}: {source}", path = path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "{path} is not a valid state file ({source}); fix it, or move it aside to rebuild it from \
         the CSV (the previous version is kept as {backup})",
        path = path.display(),
        backup = backup.display()
    )]
    Corrupt { path: PathBuf, backup: PathBuf, source: serde_json::Error },
    #[error("cannot write {path}: {source}", path = path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "{path} was written by a newer orchestrator (state schema {found}; this one reads {known}); \
         upgrade the orchestrator",
        path = path.display()
    )]
    NewerSchema { path: PathBuf, found: u32, known: u32 },
    #[error("cannot lock {path}: {source}", path = path.display())]
    Lock { path: PathBuf, source: io::Error },
    #[error(
        "another orchestrator is changing this fleet ({holder}); waited {waited} s. Wait for it \
         to finish, or raise --lock-wait",
        waited = waited.as_secs()
    )]
    Busy { holder: String, waited: Duration },
}

impl StateStore {
    pub fn new(path: impl Into<PathBuf>) -> StateStore {
        StateStore { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the version before the last write is kept.
    pub fn backup_path(&self) -> PathBuf {
        with_suffix(&self.path, ".bak")
    }

    fn lock_path(&self) -> PathBuf {
        with_suffix(&self.path, ".lock")
    }

    /// Reads the state; a missing file is an empty fleet.
    pub fn load(&self) -> Result<State, StoreError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(State::default()),
            Err(source) => {
                return Err(StoreError::Read { path: self.path.clone(), source });
            }
        };
        let state: State = serde_json::from_str(&text).map_err(|source| StoreError::Corrupt {
            path: self.path.clone(),
            backup: self.backup_path(),
            source,
        })?;
        if state.schema > crate::state::SCHEMA {
            return Err(StoreError::NewerSchema {
                path: self.path.clone(),
                found: state.schema,
                known: crate::state::SCHEMA,
            });
        }
        Ok(state)
    }

    /// Takes the exclusive lock, waiting up to `wait` for another holder to let go.
    ///
    /// `holder` describes this process (command, pid) for whoever waits on it next.
    pub fn lock(&self, holder: &str, wait: Duration) -> Result<StateLock, StoreError> {
        let path = self.lock_path();
        let lock_err = |source| StoreError::Lock { path: path.clone(), source };
        // Not truncated on open: the current holder's description must survive until we own it.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(lock_err)?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if started.elapsed() < wait => pause(),
                Err(TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    file.read_to_string(&mut holder).map_err(lock_err)?;
                    let holder = holder.trim();
                    let holder = if holder.is_empty() {
                        "holder unknown".to_string()
                    } else {
                        holder.to_string()
                    };
                    return Err(StoreError::Busy { holder, waited: wait });
                }
                Err(TryLockError::Error(source)) => return Err(lock_err(source)),
            }
        }
        file.set_len(0).map_err(lock_err)?;
        file.rewind().map_err(lock_err)?;
        file.write_all(holder.as_bytes()).map_err(lock_err)?;
        file.flush().map_err(lock_err)?;
        Ok(StateLock { file })
    }

    /// Fails unless the state can be written, so a command learns it before changing a cloud
    /// rather than after.
    pub fn check_writable(&self) -> Result<(), StoreError> {
        let probe = with_suffix(&self.path, &format!(".tmp.{}", std::process::id()));
        let result = File::create(&probe).and_then(|_| fs::remove_file(&probe)).and_then(|()| {
            if self.path.exists() {
                OpenOptions::new().append(true).open(&self.path).map(drop)
            } else {
                Ok(())
            }
        });
        result.map_err(|source| StoreError::Write { path: self.path.clone(), source })
    }

    /// Writes the state atomically, keeping the previous version as the backup. Writing what
    /// the file already says does nothing, so the backup keeps the last real change.
    pub fn save(&self, _lock: &StateLock, state: &State) -> Result<(), StoreError> {
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Write { path, source }
        };
        let mut text = serde_json::to_string_pretty(state).expect("the state always serialises");
        text.push('\n');
        if fs::read(&self.path).is_ok_and(|current| current == text.as_bytes()) {
            return Ok(());
        }
        write_atomically(&self.path, text.as_bytes(), Some(&self.backup_path()))
            .map_err(write_err(&self.path))
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader sees the old
/// content or the new, never a torn file; the old content is first copied to `backup`.
pub fn write_atomically(path: &Path, bytes: &[u8], backup: Option<&Path>) -> io::Result<()> {
    // Unique per write, not only per process: tasks of one process may write side by side.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let serial = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = with_suffix(path, &format!(".tmp.{}.{serial}", std::process::id()));
    let result = (|| {
        let mut file = File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        if let Some(backup) = backup
            && path.exists()
        {
            fs::copy(path, backup)?;
        }
        fs::rename(&temporary, path)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

// The lock is taken before any async work starts, so a plain sleep blocks nothing else.
#[allow(clippy::disallowed_methods)]
fn pause() {
    std::thread::sleep(Duration::from_millis(100));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DropletStatus, Role};
    use crate::state::DropletRecord;

    fn state_with(ip: &str) -> State {
        let mut state = State::default();
        state.add_droplet(
            "master",
            DropletRecord {
                id: "1".into(),
                ip: ip.into(),
                role: Role::Master,
                size: "s-1vcpu-1gb".into(),
                region: "nyc3".into(),
                monitors: vec![],
                agent_port: 7700,
                status: DropletStatus::Active,
            },
        );
        state
    }

    #[test]
    fn a_missing_file_is_an_empty_fleet() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::new(dir.path().join("infrastructure.json"));
        assert_eq!(store.load().expect("loads"), State::default());
    }

    #[test]
    fn saving_keeps_the_previous_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::new(dir.path().join("infrastructure.json"));
        let lock = store.lock("test", Duration::ZERO).expect("locks");
        store.save(&lock, &state_with("10.0.0.1")).expect("saves");
        store.save(&lock, &state_with("10.0.0.2")).expect("saves");
        assert_eq!(store.load().expect("loads"), state_with("10.0.0.2"));
        let backup: State =
            serde_json::from_str(&fs::read_to_string(store.backup_path()).expect("backup"))
                .expect("json");
        assert_eq!(backup, state_with("10.0.0.1"));
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert!(leftovers.iter().all(|n| !n.to_string_lossy().contains(".tmp.")), "{leftovers:?}");
    }

    #[test]
    fn writers_of_one_process_do_not_trip_over_each_other() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("shared.json");
        let threads: Vec<_> = (0..8)
            .map(|n| {
                let path = path.clone();
                std::thread::spawn(move || {
                    (0..20)
                        .all(|_| write_atomically(&path, format!("{n}").as_bytes(), None).is_ok())
                })
            })
            .collect();
        assert!(threads.into_iter().all(|t| t.join().expect("joins")), "every write succeeds");
    }

    #[test]
    fn a_second_holder_is_told_who_holds_the_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::new(dir.path().join("infrastructure.json"));
        let _held = store.lock("orchestrate, pid 4242", Duration::ZERO).expect("locks");
        let err = store.lock("status", Duration::from_millis(200)).expect_err("busy");
        assert!(err.to_string().contains("orchestrate, pid 4242"), "{err}");
    }

    #[test]
    fn the_lock_is_free_again_once_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::new(dir.path().join("infrastructure.json"));
        drop(store.lock("first", Duration::ZERO).expect("locks"));
        assert!(store.lock("second", Duration::ZERO).is_ok());
    }

    #[test]
    fn an_unchanged_save_keeps_the_backup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::new(dir.path().join("infrastructure.json"));
        let lock = store.lock("test", Duration::ZERO).expect("locks");
        store.save(&lock, &state_with("10.0.0.1")).expect("saves");
        store.save(&lock, &state_with("10.0.0.2")).expect("saves");
        store.save(&lock, &state_with("10.0.0.2")).expect("saves");
        let backup: State =
            serde_json::from_str(&fs::read_to_string(store.backup_path()).expect("backup"))
                .expect("json");
        assert_eq!(backup, state_with("10.0.0.1"));
    }

    #[test]
    fn a_state_from_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("infrastructure.json");
        fs::write(&path, "{\"schema\": 2}").expect("writes");
        let err = StateStore::new(&path).load().expect_err("newer");
        assert!(err.to_string().contains("written by a newer orchestrator"), "{err}");
    }

    #[test]
    fn a_corrupt_file_is_refused_with_a_way_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("infrastructure.json");
        fs::write(&path, "{\"droplets\": [").expect("writes");
        let err = StateStore::new(&path).load().expect_err("corrupt");
        assert!(err.to_string().contains("is not a valid state file"), "{err}");
    }
}
