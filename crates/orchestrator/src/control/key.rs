//! The fleet key: 32 random bytes shared by the command line and every agent of one fleet.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The fleet's shared secret. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct FleetKey([u8; 32]);

/// The fleet key cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FleetKeyError {
    #[error("the fleet key {path} is missing; run `orchestrator --init` first", path = path.display())]
    Missing { path: PathBuf },
    #[error("cannot read the fleet key {path}: {source}", path = path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the fleet key {path} is damaged (it must hold 64 hexadecimal digits)", path = path.display())]
    Damaged { path: PathBuf },
    #[error("the fleet key {path} is readable by others (mode {mode:o}); run chmod 600 on it", path = path.display())]
    Exposed { path: PathBuf, mode: u32 },
    #[error("cannot write the fleet key {path}: {source}", path = path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

impl fmt::Debug for FleetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FleetKey(redacted)")
    }
}

impl FleetKey {
    /// A new random key.
    pub fn generate() -> FleetKey {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the system has a random source");
        FleetKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Reads a key file, refusing one that others can read.
    pub fn load(path: &Path) -> Result<FleetKey, FleetKeyError> {
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(FleetKeyError::Missing { path: path.to_path_buf() });
            }
            Err(source) => {
                return Err(FleetKeyError::Read { path: path.to_path_buf(), source });
            }
        };
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(FleetKeyError::Exposed { path: path.to_path_buf(), mode });
        }
        let text = std::fs::read_to_string(path)
            .map_err(|source| FleetKeyError::Read { path: path.to_path_buf(), source })?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes)
            .map_err(|_| FleetKeyError::Damaged { path: path.to_path_buf() })?;
        Ok(FleetKey(bytes))
    }

    /// Writes the key to a new file readable by its owner alone; an existing file is an error.
    pub fn create(&self, path: &Path) -> Result<(), FleetKeyError> {
        let write_err = |source| FleetKeyError::Write { path: path.to_path_buf(), source };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(write_err)?;
        file.write_all(hex::encode(self.0).as_bytes()).map_err(write_err)?;
        file.sync_all().map_err(write_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_round_trips_through_its_file_and_never_prints() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fleet.key");
        let key = FleetKey::generate();
        key.create(&path).expect("writes");
        assert_eq!(FleetKey::load(&path).expect("reads"), key);
        assert_eq!(format!("{key:?}"), "FleetKey(redacted)");
        assert!(key.create(&path).is_err(), "an existing key is never overwritten");
    }

    #[test]
    fn a_key_others_can_read_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fleet.key");
        FleetKey::generate().create(&path).expect("writes");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(FleetKey::load(&path), Err(FleetKeyError::Exposed { .. })));
    }
}
