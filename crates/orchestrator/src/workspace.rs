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
    pub fn new(config_dir: &Path) -> Workspace {
        let root = match config_dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::new(),
        };
        Workspace {
            config_dir: config_dir.to_path_buf(),
            root,
        }
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
}
