//! Snapshots of local droplets: a gzip-compressed tar of the droplet's description and disk.

use std::fs::File;
use std::io;
use std::path::Path;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use super::manifest::{DATA_DIR, MANIFEST};

/// Archives `dir`'s description and data directory into `archive`; returns its size.
pub fn pack(dir: &Path, archive: &Path) -> io::Result<u64> {
    let file = File::create(archive)?;
    let mut builder = tar::Builder::new(GzEncoder::new(file, Compression::fast()));
    // Links are archived as links: a snapshot never takes in what they point at, and one that
    // points nowhere does not stop the snapshot.
    builder.follow_symlinks(false);
    builder.append_path_with_name(dir.join(MANIFEST), MANIFEST)?;
    let data = dir.join(DATA_DIR);
    if data.is_dir() {
        builder.append_dir_all(DATA_DIR, &data)?;
    }
    let encoder = builder.into_inner()?;
    encoder.finish()?.sync_all()?;
    Ok(std::fs::metadata(archive)?.len())
}

/// Unpacks `archive` into `dir`, which must exist.
pub fn unpack(archive: &Path, dir: &Path) -> io::Result<()> {
    let mut unpacker = tar::Archive::new(GzDecoder::new(File::open(archive)?));
    unpacker.set_preserve_permissions(true);
    // `unpack` refuses entries that would land outside `dir`.
    unpacker.unpack(dir)
}
