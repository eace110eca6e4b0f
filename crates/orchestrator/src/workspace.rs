//! Where a fleet's files live: the configuration directory and the directory around it.
//!
//! `config/` holds what the user edits and the state; beside it sit `templates/`, `.env` and,
//! for the local cloud, `.local-cloud/`.

use std::path::{Path, PathBuf};

/// The files of one fleet.
#[derive(Debug, Clone)]
pub struct Workspace {
    config_dir: PathBuf,
    root: PathBuf,
}

impl Workspace {
    /// The fleet whose configuration is in `config_dir`.
    ///
    /// The root is the directory around `config_dir` however the path is spelled: `config`,
    /// `./config/` and `.` inside it all name the same fleet.
    pub fn new(config_dir: &Path) -> Workspace {
        let absolute = absolute(config_dir);
        let root = match absolute.parent() {
            Some(parent) => relative_to_cwd(parent),
            None => PathBuf::from("/"),
        };
        Workspace { config_dir: config_dir.to_path_buf(), root }
    }

    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    pub fn projects_csv(&self) -> PathBuf {
        self.config_dir.join("projects.csv")
    }

    pub fn deployment_config(&self) -> PathBuf {
        self.config_dir.join("deployment_config.json")
    }

    pub fn email_config(&self) -> PathBuf {
        self.config_dir.join("email_config.json")
    }

    pub fn sms_config(&self) -> PathBuf {
        self.config_dir.join("sms_config.json")
    }

    /// The fleet key that signs control requests; never leaves this machine but to droplets.
    pub fn fleet_key(&self) -> PathBuf {
        self.config_dir.join("fleet.key")
    }

    pub fn state_file(&self) -> PathBuf {
        self.config_dir.join("infrastructure.json")
    }

    /// The directory around the configuration directory, as an absolute path: what labels the
    /// images this fleet's deploys build.
    pub fn root(&self) -> PathBuf {
        absolute(&self.root)
    }

    pub fn templates_dir(&self) -> PathBuf {
        self.root.join("templates")
    }

    pub fn env_file(&self) -> PathBuf {
        self.root.join(".env")
    }

    pub fn env_example(&self) -> PathBuf {
        self.root.join(".env.example")
    }

    pub fn local_cloud(&self) -> PathBuf {
        self.root.join(".local-cloud")
    }

    /// What deploys keep on this machine: repositories, artifacts, build trees.
    pub fn deploy_cache(&self) -> PathBuf {
        self.root.join(".orchestrator")
    }
}

/// `path` made absolute and free of `.` and `..`, resolving links where the path exists.
fn absolute(path: &Path) -> PathBuf {
    if let Ok(real) = path.canonicalize() {
        return real;
    }
    let joined =
        std::env::current_dir().map(|cwd| cwd.join(path)).unwrap_or_else(|_| path.to_path_buf());
    let mut clean = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::ParentDir => {
                clean.pop();
            }
            std::path::Component::CurDir => {}
            other => clean.push(other),
        }
    }
    clean
}

/// A path under the current directory shown relative to it, so messages stay short.
fn relative_to_cwd(path: &Path) -> PathBuf {
    let Ok(cwd) = std::env::current_dir().and_then(|cwd| cwd.canonicalize()) else {
        return path.to_path_buf();
    };
    match path.strip_prefix(&cwd) {
        Ok(rest) => rest.to_path_buf(),
        Err(_) => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_the_config_dir_names_the_same_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config");
        std::fs::create_dir(&config).expect("creates");
        let from_path = Workspace::new(&config);
        let dotted = Workspace::new(&config.join("."));
        let via_parent = Workspace::new(&config.join("..").join("config"));
        let root = dir.path().canonicalize().expect("canonical");
        for workspace in [from_path, dotted, via_parent] {
            assert_eq!(
                workspace.local_cloud().canonicalize().unwrap_or_else(|_| workspace.local_cloud()),
                root.join(".local-cloud")
            );
        }
    }
}
