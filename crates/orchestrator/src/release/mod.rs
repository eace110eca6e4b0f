//! Building and keeping releases on the administrator's machine: the project's code from Git
//! (or a local tree), one artifact per service, and the record of every release.

pub mod artifact;
pub mod git;
pub mod image;
pub mod kubernetes;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use fleet::release::Releases;

/// The release records of one project-environment: `config/releases/{project-env}.json`.
pub struct Records {
    path: PathBuf,
}

impl Records {
    pub fn new(config_dir: &Path, project_env: &str) -> Records {
        Records { path: config_dir.join("releases").join(format!("{project_env}.json")) }
    }

    /// Every record in `config_dir`, by project-environment.
    pub fn all(config_dir: &Path) -> anyhow::Result<Vec<(String, Releases)>> {
        let dir = config_dir.join("releases");
        let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
        let mut all = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else { continue };
            if path.extension().is_some_and(|e| e == "json") {
                all.push((name.to_string(), Records { path: path.clone() }.load()?));
            }
        }
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }

    pub fn load(&self) -> anyhow::Result<Releases> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is damaged", self.path.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Releases::default()),
            Err(err) => Err(err).with_context(|| format!("cannot read {}", self.path.display())),
        }
    }

    pub fn save(&self, releases: &Releases) -> anyhow::Result<()> {
        let text = serde_json::to_vec_pretty(releases).expect("records always serialise");
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        fleet::store::write_atomically(&self.path, &text, None)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}
