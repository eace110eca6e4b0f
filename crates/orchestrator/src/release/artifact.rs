//! Artifacts: a service's build context packed into a `.tar.gz` that is the same bytes every
//! time for the same files (sorted entries, no times, no owners), so its SHA-256 names its
//! content and a release can be checked against its tag later.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::Digest;

/// A packed artifact.
pub struct Packed {
    pub digest: String,
    pub bytes: Vec<u8>,
}

/// Packs the files under `dir` (Git's own directory left out).
pub fn pack(dir: &Path) -> anyhow::Result<Packed> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let encoder =
        flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::default());
    let mut archive = tar::Builder::new(encoder);
    archive.mode(tar::HeaderMode::Deterministic);
    for relative in &files {
        let path = dir.join(relative);
        let metadata = std::fs::symlink_metadata(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        if metadata.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            archive.append_data(&mut header, relative, std::io::empty())?;
        } else if metadata.file_type().is_symlink() {
            let target = std::fs::read_link(&path)?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            archive.append_link(&mut header, relative, target)?;
        } else {
            use std::os::unix::fs::PermissionsExt;
            let executable = metadata.permissions().mode() & 0o111 != 0;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(if executable { 0o755 } else { 0o644 });
            let contents =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            header.set_size(contents.len() as u64);
            archive.append_data(&mut header, relative, contents.as_slice())?;
        }
    }
    let mut encoder = archive.into_inner()?;
    encoder.flush()?;
    let bytes = encoder.finish()?;
    let digest = hex::encode(sha2::Sha256::digest(&bytes));
    Ok(Packed { digest, bytes })
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let entry = entry?;
        if entry.file_name() == ".git" {
            continue;
        }
        let path = entry.path();
        let relative = path.strip_prefix(root).expect("under the root").to_path_buf();
        let kind = entry.file_type()?;
        out.push(relative);
        if kind.is_dir() {
            collect(root, &path, out)?;
        }
    }
    Ok(())
}

/// The artifacts built on this machine: `.orchestrator/artifacts/{digest}.tar.gz`.
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: PathBuf) -> Store {
        Store { dir }
    }

    pub fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}.tar.gz"))
    }

    pub fn keep(&self, packed: &Packed) -> anyhow::Result<()> {
        let path = self.path(&packed.digest);
        if path.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        fleet::store::write_atomically(&path, &packed.bytes, None)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn read(&self, digest: &str) -> anyhow::Result<Vec<u8>> {
        let path = self.path(digest);
        std::fs::read(&path).with_context(|| {
            format!("the artifact {digest} is no longer kept ({} is missing)", path.display())
        })
    }

    /// Removes every artifact not in `kept`.
    pub fn prune(&self, kept: &[String]) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().to_string();
            let Some(digest) = name.strip_suffix(".tar.gz") else { continue };
            if !kept.iter().any(|k| k == digest) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_files_pack_to_the_same_bytes() {
        let a = tempfile::tempdir().expect("tempdir");
        let b = tempfile::tempdir().expect("tempdir");
        for dir in [a.path(), b.path()] {
            std::fs::create_dir_all(dir.join("src")).expect("mkdir");
            std::fs::write(dir.join("src/app.py"), "print('hi')\n").expect("write");
            std::fs::write(dir.join("README"), "x").expect("write");
            std::fs::create_dir_all(dir.join(".git")).expect("mkdir");
            std::fs::write(dir.join(".git/HEAD"), dir.display().to_string()).expect("write");
        }
        let later = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(86_400);
        std::fs::File::options()
            .write(true)
            .open(b.path().join("README"))
            .and_then(|f| f.set_modified(later))
            .expect("touched: same content, another time");
        let (first, second) = (pack(a.path()).expect("packs"), pack(b.path()).expect("packs"));
        assert_eq!(first.digest, second.digest);
        std::fs::write(b.path().join("README"), "y").expect("write");
        assert_ne!(pack(b.path()).expect("packs").digest, first.digest);
    }
}
