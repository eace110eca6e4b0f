//! `droplet.json`: what a local droplet is, written by the provider and read by its agent.

use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use fleet::Role;
use serde::{Deserialize, Serialize};

/// The file in a droplet's directory that describes it.
pub const MANIFEST: &str = "droplet.json";
/// Written by the agent once it listens; holds its process id.
pub const PID_FILE: &str = "agent.pid";
/// Where the agent's output goes.
pub const LOG_FILE: &str = "agent.log";
/// The droplet's disk: what snapshots keep.
pub const DATA_DIR: &str = "data";
/// What runs on the droplet keeps its runtime files here (not in snapshots).
pub const RUN_DIR: &str = "run";
/// The droplet's copy of the fleet key, readable by its owner alone.
pub const KEY_FILE: &str = "fleet.key";

/// A local droplet's description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropletManifest {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub size: String,
    pub region: String,
    /// Its own loopback address, so every droplet can use the same ports.
    pub address: Ipv4Addr,
    pub agent_port: u16,
    /// RFC 3339.
    pub created_at: String,
    /// Ties the droplet to its fleet and role, as a cloud's tags would.
    pub tags: Vec<String>,
}

impl DropletManifest {
    pub fn read(dir: &Path) -> io::Result<DropletManifest> {
        let text = std::fs::read_to_string(dir.join(MANIFEST))?;
        serde_json::from_str(&text).map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
    }

    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let text = serde_json::to_vec_pretty(self).expect("a manifest always serialises");
        fleet::store::write_atomically(&dir.join(MANIFEST), &text, None)
    }
}

/// The process id of a droplet's running agent, if it runs.
///
/// The pid file alone is not trusted: the process must exist, must not be a zombie, and its
/// command line must name this droplet's directory, so a recycled pid is not taken for it.
pub fn running_agent(dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(dir.join(PID_FILE)).ok()?.trim().parse().ok()?;
    is_agent_of(pid, dir).then_some(pid)
}

/// Whether `pid` is a live agent process serving droplet directory `dir`.
pub fn is_agent_of(pid: i32, dir: &Path) -> bool {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
        return false;
    };
    // The state follows the parenthesised command name: "1234 (orchestrator) S …".
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z" | "X") | None) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(proc_dir.join("cmdline")) else {
        return false;
    };
    let wanted = dir.as_os_str().as_encoded_bytes();
    cmdline.split(|b| *b == 0).any(|arg| arg == wanted)
}
