//! The agent: the same binary, running on every droplet.
//!
//! It serves the droplet's HTTP API on the droplet's address. Open to anyone: `GET /health`
//! for monitors and the load balancer, `GET /status`, and on master `GET /lb-status` and the
//! dashboard. Signed with the fleet key: `POST /v1/fleet`, which hands the agent its replica
//! of the fleet state (on master, also what the load balancer serves). The agent records its
//! process id once it listens, which is how the local cloud tells a running droplet from a
//! stopped one.

pub mod api;
mod auth;
mod dashboard;
pub mod events;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fleet::Role;
use serde::{Deserialize, Serialize};

use self::api::{FleetUpdate, FleetUpdateAnswer};
use self::events::Events;
use crate::control::FleetKey;
use crate::control::signing::Verifier;
use crate::lb::LoadBalancer;
use crate::provider::local::manifest::{DATA_DIR, DropletManifest, KEY_FILE, PID_FILE, RUN_DIR};

/// How often the master checks load-balancer targets and droplets.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// The replica of the fleet state, kept across restarts.
const REPLICA: &str = "fleet.json";

/// Why an agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot read the droplet description in {dir}: {source}", dir = dir.display())]
    Manifest { dir: PathBuf, source: std::io::Error },
    #[error("cannot listen on {address}: {source}")]
    Listen { address: SocketAddr, source: std::io::Error },
    #[error("cannot write {path}: {source}", path = path.display())]
    PidFile { path: PathBuf, source: std::io::Error },
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
    /// Whether the agent holds a replica of the fleet state.
    pub has_fleet_state: bool,
    /// Control requests refused since the agent started.
    pub refused_requests: u64,
}

/// What `GET /health` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentHealth {
    pub status: String,
    pub droplet: String,
}

/// One running agent.
pub struct Agent {
    droplet: DropletManifest,
    data_dir: PathBuf,
    started: Instant,
    started_at: String,
    verifier: Option<Verifier>,
    replica: tokio::sync::RwLock<Option<FleetUpdate>>,
    lb: Option<Arc<LoadBalancer>>,
}

/// Runs the agent of the droplet described in `dir` until SIGTERM or SIGINT.
pub async fn run(dir: &Path) -> Result<(), AgentError> {
    let droplet = DropletManifest::read(dir)
        .map_err(|source| AgentError::Manifest { dir: dir.to_path_buf(), source })?;
    let address = SocketAddr::from((droplet.address, droplet.agent_port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| AgentError::Listen { address, source })?;

    let verifier = match FleetKey::load(&dir.join(KEY_FILE)) {
        Ok(key) => Some(Verifier::new(key)),
        Err(err) => {
            tracing::warn!(%err, "no fleet key: control requests will be refused");
            None
        }
    };
    let events = Arc::new(Events::default());
    let lb = (droplet.role == Role::Master).then(|| {
        let runtime = dir.join(RUN_DIR).join("lb");
        Arc::new(LoadBalancer::new(
            droplet.address,
            droplet.agent_port,
            runtime,
            Arc::clone(&events),
        ))
    });
    let data_dir = dir.join(DATA_DIR);
    let replica = read_replica(&data_dir);
    let agent = Arc::new(Agent {
        droplet,
        data_dir,
        started: Instant::now(),
        started_at: crate::clock::now_rfc3339(),
        verifier,
        replica: tokio::sync::RwLock::new(replica.clone()),
        lb: lb.clone(),
    });

    let pid_path = dir.join(PID_FILE);
    fleet::store::write_atomically(&pid_path, std::process::id().to_string().as_bytes(), None)
        .map_err(|source| AgentError::PidFile { path: pid_path.clone(), source })?;
    tracing::info!(droplet = %agent.droplet.name, %address, pid = std::process::id(), "agent listening");

    if let Some(lb) = &lb {
        // A restarted master serves its last known fleet at once, before anyone pushes again.
        if let Some(update) = replica {
            lb.apply(update.state, update.load_balancer).await;
        }
        tokio::spawn(Arc::clone(lb).run_checks(CHECK_INTERVAL));
    }

    let served = axum::serve(listener, router(Arc::clone(&agent)))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    if let Some(lb) = &lb {
        lb.shutdown().await;
    }
    let _ = std::fs::remove_file(&pid_path);
    tracing::info!("agent stopped");
    served.map_err(AgentError::Serve)
}

fn router(agent: Arc<Agent>) -> Router {
    let signed = Router::new().route("/v1/fleet", post(receive_fleet)).route_layer(
        axum::middleware::from_fn_with_state(Arc::clone(&agent), auth::require_signature),
    );
    Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/lb-status", get(lb_status))
        .route("/dashboard", get(dashboard))
        .merge(signed)
        .with_state(agent)
}

async fn health(State(agent): State<Arc<Agent>>) -> Json<AgentHealth> {
    Json(AgentHealth { status: "ok".into(), droplet: agent.droplet.name.clone() })
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
        has_fleet_state: agent.replica.read().await.is_some(),
        refused_requests: agent.verifier.as_ref().map_or(0, |v| v.refusals.total()),
    })
}

async fn receive_fleet(
    State(agent): State<Arc<Agent>>,
    Json(update): Json<FleetUpdate>,
) -> Response {
    let text = serde_json::to_vec_pretty(&update).expect("a fleet update always serialises");
    if let Err(err) = fleet::store::write_atomically(&agent.data_dir.join(REPLICA), &text, None) {
        tracing::error!(%err, "cannot keep the fleet replica");
        return (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot keep the fleet state: {err}"))
            .into_response();
    }
    *agent.replica.write().await = Some(update.clone());
    let load_balancer = match &agent.lb {
        Some(lb) => Some(lb.apply(update.state, update.load_balancer).await),
        None => None,
    };
    Json(FleetUpdateAnswer { droplet: agent.droplet.name.clone(), load_balancer }).into_response()
}

async fn lb_status(State(agent): State<Arc<Agent>>) -> Response {
    match &agent.lb {
        Some(lb) => Json(lb.status().await).into_response(),
        None => (StatusCode::NOT_FOUND, "only master runs the load balancer").into_response(),
    }
}

async fn dashboard(State(agent): State<Arc<Agent>>) -> Response {
    match &agent.lb {
        Some(lb) => {
            let status = lb.status().await;
            Html(dashboard::render(&status, lb.fleet().await.as_ref())).into_response()
        }
        None => (StatusCode::NOT_FOUND, "the dashboard is served by master").into_response(),
    }
}

fn read_replica(data_dir: &Path) -> Option<FleetUpdate> {
    let text = std::fs::read(data_dir.join(REPLICA)).ok()?;
    serde_json::from_slice(&text).ok()
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
