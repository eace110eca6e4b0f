//! The agent: the same binary, running on every droplet.
//!
//! It serves the droplet's HTTP API on the droplet's address: `GET /health` for monitors and
//! the load balancer, `GET /status` for the command line. It records its process id once it
//! listens, which is how the local cloud tells a running droplet from a stopped one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use fleet::Role;
use serde::{Deserialize, Serialize};

use crate::provider::local::manifest::{DropletManifest, PID_FILE};

/// Why an agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot read the droplet description in {dir}: {source}", dir = dir.display())]
    Manifest {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}", path = path.display())]
    PidFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the agent's server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// What `GET /status` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub name: String,
    pub role: Role,
    pub version: String,
    pub uptime_seconds: u64,
    pub pid: u32,
    pub address: String,
    pub agent_port: u16,
    /// RFC 3339.
    pub started_at: String,
}

/// What `GET /health` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentHealth {
    pub status: String,
    pub droplet: String,
}

struct Agent {
    droplet: DropletManifest,
    started: Instant,
    started_at: String,
}

/// Runs the agent of the droplet described in `dir` until SIGTERM or SIGINT.
pub async fn run(dir: &Path) -> Result<(), AgentError> {
    let droplet = DropletManifest::read(dir).map_err(|source| AgentError::Manifest {
        dir: dir.to_path_buf(),
        source,
    })?;
    let address = SocketAddr::from((droplet.address, droplet.agent_port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| AgentError::Listen { address, source })?;

    let pid_path = dir.join(PID_FILE);
    fleet::store::write_atomically(&pid_path, std::process::id().to_string().as_bytes(), None)
        .map_err(|source| AgentError::PidFile {
            path: pid_path.clone(),
            source,
        })?;
    tracing::info!(droplet = %droplet.name, %address, pid = std::process::id(), "agent listening");

    let agent = Arc::new(Agent {
        droplet,
        started: Instant::now(),
        started_at: crate::clock::now_rfc3339(),
    });
    let app = Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .with_state(agent);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await;

    let _ = std::fs::remove_file(&pid_path);
    tracing::info!("agent stopped");
    served.map_err(AgentError::Serve)
}

async fn health(State(agent): State<Arc<Agent>>) -> Json<AgentHealth> {
    Json(AgentHealth {
        status: "ok".into(),
        droplet: agent.droplet.name.clone(),
    })
}

async fn status(State(agent): State<Arc<Agent>>) -> Json<AgentStatus> {
    Json(AgentStatus {
        name: agent.droplet.name.clone(),
        role: agent.droplet.role,
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_seconds: agent.started.elapsed().as_secs(),
        pid: std::process::id(),
        address: agent.droplet.address.to_string(),
        agent_port: agent.droplet.agent_port,
        started_at: agent.started_at.clone(),
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
