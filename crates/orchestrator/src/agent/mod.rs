//! The agent: the same binary, running on every droplet.
//!
//! It serves the droplet's HTTP API on the droplet's address. Open to anyone: `GET /health`
//! for monitors and the load balancer, `GET /status`, and on master `GET /lb-status` and the
//! dashboard. Signed with the fleet key: `POST /v1/fleet`, which hands the agent its replica
//! of the fleet state (on master, also what the load balancer serves). The agent records its
//! process id once it listens, which is how the local cloud tells a running droplet from a
//! stopped one.

mod alerts;
pub mod api;
mod auth;
mod dashboard;
pub mod events;
pub mod heartbeat;
pub mod metrics;
pub mod monitor;
mod recovery;
pub mod services;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fleet::Role;
use serde::{Deserialize, Serialize};

use self::api::{FleetUpdate, FleetUpdateAnswer};
use self::auth::Sender;
use self::events::{EventKind, Events};
use crate::control::signing::Verifier;
use crate::control::{AgentClient, FleetKey};
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
    /// The droplets this agent watches and what the fleet thinks of them.
    #[serde(default)]
    pub monitoring: monitor::MonitorView,
    /// The newest failures and recoveries this agent saw or led, newest first.
    #[serde(default)]
    pub recent_events: Vec<events::Event>,
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
    dir: PathBuf,
    data_dir: PathBuf,
    key: Option<FleetKey>,
    monitor: monitor::Monitor,
    metrics: metrics::Metrics,
    events: Arc<Events>,
    started: Instant,
    started_at: String,
    verifier: Option<Verifier>,
    replica: tokio::sync::RwLock<Option<FleetUpdate>>,
    lb: Option<Arc<LoadBalancer>>,
    grants: heartbeat::Grants,
    services: Arc<services::Supervisor>,
}

/// Runs the agent of the droplet described in `dir` until SIGTERM or SIGINT.
pub async fn run(dir: &Path) -> Result<(), AgentError> {
    let droplet = DropletManifest::read(dir)
        .map_err(|source| AgentError::Manifest { dir: dir.to_path_buf(), source })?;
    let address = SocketAddr::from((droplet.address, droplet.agent_port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| AgentError::Listen { address, source })?;

    let key = match FleetKey::load(&dir.join(KEY_FILE)) {
        Ok(key) => Some(key),
        Err(err) => {
            tracing::warn!(%err, "no fleet key: control requests will be refused");
            None
        }
    };
    let verifier = key.clone().map(Verifier::new);
    let events = Arc::new(Events::kept_in(dir.join(DATA_DIR).join("events.json")));
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
    let services = Arc::new(services::Supervisor::new(
        &droplet.name,
        droplet.address.into(),
        data_dir.join("services"),
        key.clone(),
        Arc::clone(&events),
    ));
    let agent = Arc::new(Agent {
        monitor: monitor::Monitor::new(&droplet.name),
        metrics: metrics::Metrics::new(),
        droplet,
        dir: dir.to_path_buf(),
        data_dir,
        key,
        events: Arc::clone(&events),
        started: Instant::now(),
        started_at: crate::clock::now_rfc3339(),
        verifier,
        replica: tokio::sync::RwLock::new(replica.clone()),
        lb: lb.clone(),
        grants: heartbeat::Grants::default(),
        services: Arc::clone(&services),
    });

    let pid_path = dir.join(PID_FILE);
    fleet::store::write_atomically(&pid_path, std::process::id().to_string().as_bytes(), None)
        .map_err(|source| AgentError::PidFile { path: pid_path.clone(), source })?;
    tracing::info!(droplet = %agent.droplet.name, %address, pid = std::process::id(), "agent listening");

    // A restarted agent works from its last known fleet at once, before anyone pushes again.
    if let Some(update) = replica {
        agent.monitor.sync(&update.state);
        services.set_master(master_address(&update.state));
        if let Some(lb) = &lb {
            lb.apply(update.state, update.load_balancer).await;
        }
    }
    if let Some(lb) = &lb {
        tokio::spawn(Arc::clone(lb).run_checks(CHECK_INTERVAL));
    }
    services.resume().await;
    tokio::spawn(watch_peers(Arc::clone(&agent)));
    tokio::spawn(heartbeat::run(Arc::clone(&agent)));

    let served = axum::serve(listener, router(Arc::clone(&agent)))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    if let Some(lb) = &lb {
        lb.shutdown().await;
    }
    services.stop_all().await;
    let _ = std::fs::remove_file(&pid_path);
    tracing::info!("agent stopped");
    served.map_err(AgentError::Serve)
}

fn router(agent: Arc<Agent>) -> Router {
    let signed = Router::new()
        .route("/v1/fleet", post(receive_fleet))
        .route("/v1/report", post(receive_report))
        .route("/v1/claim", post(receive_claim))
        .route("/v1/heartbeat", post(receive_heartbeat_request))
        .route("/v1/deploy", post(receive_deploy))
        .route("/v1/retire", post(receive_retire))
        .route("/v1/infrastructure", post(receive_infrastructure))
        .route("/v1/infrastructure/restart", post(restart_infrastructure))
        .route("/v1/infrastructure/purge", post(purge_infrastructure))
        .route(
            "/v1/artifacts/{digest}",
            post(receive_artifact).layer(axum::extract::DefaultBodyLimit::max(auth::MAX_BODY)),
        )
        .route("/v1/images/check", post(check_image))
        .route(
            "/v1/images/{platform}",
            post(receive_images).layer(axum::extract::DefaultBodyLimit::max(auth::MAX_BODY)),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&agent),
            auth::require_signature,
        ));
    Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/lb-status", get(lb_status))
        .route("/dashboard", get(dashboard))
        .route("/metrics", get(metrics_text))
        .route("/services", get(services_view))
        .route("/infrastructure", get(infrastructure_view))
        .route("/infrastructure/leftovers", get(infrastructure_leftovers))
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
        monitoring: agent.monitor.view(),
        recent_events: agent
            .events
            .newest(50)
            .into_iter()
            .filter(|e| matches!(e.kind, EventKind::Failure | EventKind::Recovery))
            .take(10)
            .collect(),
    })
}

async fn receive_fleet(
    State(agent): State<Arc<Agent>>,
    Json(update): Json<FleetUpdate>,
) -> Response {
    match agent.take_fleet(update).await {
        Ok(load_balancer) => {
            Json(FleetUpdateAnswer { droplet: agent.droplet.name.clone(), load_balancer })
                .into_response()
        }
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err).into_response(),
    }
}

async fn metrics_text(State(agent): State<Arc<Agent>>) -> Response {
    if let Some(verifier) = &agent.verifier {
        use std::sync::atomic::Ordering::Relaxed;
        let counts = &verifier.refusals;
        agent.metrics.refused("unsigned", counts.unsigned.load(Relaxed));
        agent.metrics.refused("bad_signature", counts.bad_signature.load(Relaxed));
        agent.metrics.refused("stale", counts.stale.load(Relaxed));
        agent.metrics.refused("replayed", counts.replayed.load(Relaxed));
    }
    let suspected = agent.monitor.view().watches.iter().filter(|w| w.verdict != "healthy").count();
    agent.metrics.set_suspicions(suspected);
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], agent.metrics.render())
        .into_response()
}

async fn receive_report(
    State(agent): State<Arc<Agent>>,
    Extension(Sender(from)): Extension<Sender>,
    Json(report): Json<monitor::ReportMessage>,
) -> Json<serde_json::Value> {
    agent.metrics.report("received", report.suspect);
    agent.monitor.record_report(&from, &report);
    Json(serde_json::json!({}))
}

async fn receive_claim(
    State(agent): State<Arc<Agent>>,
    Extension(Sender(from)): Extension<Sender>,
    Json(claim): Json<monitor::ClaimMessage>,
) -> Json<serde_json::Value> {
    agent
        .events
        .record(EventKind::Change, format!("{from} leads the recovery of {}", claim.target));
    agent.monitor.record_claim(&from, &claim);
    Json(serde_json::json!({}))
}

async fn receive_heartbeat_request(
    State(agent): State<Arc<Agent>>,
    Extension(Sender(from)): Extension<Sender>,
    Json(request): Json<heartbeat::GrantRequest>,
) -> Json<heartbeat::GrantAnswer> {
    Json(agent.grants.grant(request.slot, &from))
}

async fn receive_artifact(
    State(agent): State<Arc<Agent>>,
    axum::extract::Path(digest): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> Response {
    match agent.services.store_artifact(&digest, &body) {
        Ok(()) => Json(serde_json::json!({"digest": digest})).into_response(),
        Err(err) => (StatusCode::BAD_REQUEST, err).into_response(),
    }
}

/// `POST /v1/images/check`: `{"id": "sha256:…", "engine": "docker"}` → `{"present": true}`.
async fn check_image(
    State(agent): State<Arc<Agent>>,
    Json(image): Json<services::ContainerImage>,
) -> Response {
    match agent.services.has_image(&image).await {
        Ok(present) => Json(serde_json::json!({"present": present})).into_response(),
        Err(err) => (StatusCode::SERVICE_UNAVAILABLE, err).into_response(),
    }
}

/// `POST /v1/images/{platform}`: images saved by the administrator's engine, to load here.
async fn receive_images(
    State(agent): State<Arc<Agent>>,
    axum::extract::Path(platform): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let platform = match platform.as_str() {
        "docker" => fleet::deploy_config::Platform::Docker,
        "podman" => fleet::deploy_config::Platform::Podman,
        other => return (StatusCode::NOT_FOUND, format!("no engine {other:?}")).into_response(),
    };
    match agent.services.load_images(platform, body.to_vec()).await {
        Ok(()) => Json(serde_json::json!({"loaded": true})).into_response(),
        Err(err) => (StatusCode::BAD_REQUEST, err).into_response(),
    }
}

async fn receive_deploy(
    State(agent): State<Arc<Agent>>,
    Json(request): Json<services::DeployRequest>,
) -> Response {
    match agent.services.deploy(request).await {
        Ok(answer) => Json(answer).into_response(),
        Err(refusal) => (StatusCode::UNPROCESSABLE_ENTITY, Json(refusal)).into_response(),
    }
}

/// `POST /v1/retire`: `{"project_env": "hostomatic-prod", "keep": ["backend"]}` stops the
/// project-environment's other services here.
async fn receive_retire(
    State(agent): State<Arc<Agent>>,
    Json(request): Json<services::RetireRequest>,
) -> Json<Vec<String>> {
    Json(agent.services.retire(&request.project_env, &request.keep).await)
}

async fn receive_infrastructure(
    State(agent): State<Arc<Agent>>,
    Json(request): Json<services::infra::InfraRequest>,
) -> Json<Vec<services::infra::InfraView>> {
    Json(agent.services.reconcile_infrastructure(request).await)
}

/// `POST /v1/infrastructure/restart`: `{"key": "redis hostomatic-prod"}`.
async fn restart_infrastructure(
    State(agent): State<Arc<Agent>>,
    Json(request): Json<serde_json::Value>,
) -> Response {
    let key = request["key"].as_str().unwrap_or_default();
    match agent.services.restart_infrastructure(key).await {
        Ok(views) => Json(views).into_response(),
        Err(err) => (StatusCode::NOT_FOUND, err).into_response(),
    }
}

/// `POST /v1/infrastructure/purge`: `{"name": "redis", "project_env": "hostomatic-prod"}`.
async fn purge_infrastructure(
    State(agent): State<Arc<Agent>>,
    Json(request): Json<services::infra::Leftover>,
) -> Response {
    match agent.services.purge_infrastructure(&request.name, &request.project_env) {
        Ok(()) => Json(serde_json::json!({})).into_response(),
        Err(err) => (StatusCode::CONFLICT, err).into_response(),
    }
}

async fn infrastructure_leftovers(
    State(agent): State<Arc<Agent>>,
) -> Json<Vec<services::infra::Leftover>> {
    Json(agent.services.infrastructure_leftovers())
}

async fn infrastructure_view(
    State(agent): State<Arc<Agent>>,
) -> Json<Vec<services::infra::InfraView>> {
    Json(agent.services.infrastructure_view().await)
}

async fn services_view(State(agent): State<Arc<Agent>>) -> Json<Vec<services::ServiceView>> {
    Json(agent.services.view())
}

impl Agent {
    /// Keeps a new fleet state: on disk, in memory, in the monitoring ring and, on master, in
    /// the load balancer (whose report comes back).
    pub async fn take_fleet(&self, update: FleetUpdate) -> Result<Option<api::LbReport>, String> {
        let text = serde_json::to_vec_pretty(&update).expect("a fleet update always serialises");
        if let Err(err) = fleet::store::write_atomically(&self.data_dir.join(REPLICA), &text, None)
        {
            tracing::error!(%err, "cannot keep the fleet replica");
            return Err(format!("cannot keep the fleet state: {err}"));
        }
        self.monitor.sync(&update.state);
        self.services.set_master(master_address(&update.state));
        *self.replica.write().await = Some(update.clone());
        Ok(match &self.lb {
            Some(lb) => Some(lb.apply(update.state, update.load_balancer).await),
            None => None,
        })
    }
}

/// Where master is in a fleet state.
fn master_address(state: &fleet::State) -> Option<std::net::IpAddr> {
    state.master().and_then(|master| master.ip.parse().ok())
}

/// Checks the peers the topology gives this agent, every second, for as long as it runs.
async fn watch_peers(agent: Arc<Agent>) {
    let http = crate::http::client_from(Some(agent.droplet.address.into()));
    loop {
        // An agent whose every check fails is likely the one cut off: it slows down.
        let pause = if agent.monitor.cut_off() { monitor::INTERVAL * 5 } else { monitor::INTERVAL };
        tokio::time::sleep(pause).await;
        let Some(state) = agent.replica.read().await.as_ref().map(|u| u.state.clone()) else {
            continue;
        };
        let mut checks = tokio::task::JoinSet::new();
        for target in agent.monitor.targets() {
            let Some(droplet) = state.droplet(&target) else { continue };
            let url = format!("http://{}:{}/health", droplet.ip, droplet.agent_port);
            let http = http.clone();
            checks.spawn(async move {
                let started = std::time::Instant::now();
                let result = crate::http::probe(&http, &url, monitor::TIMEOUT).await;
                (target, result, started.elapsed().as_secs_f64())
            });
        }
        while let Some(Ok((target, result, seconds))) = checks.join_next().await {
            agent.metrics.check(&target, result.is_ok(), seconds);
            if let Some((report, fellows)) = agent.monitor.record_check(&target, result) {
                agent
                    .metrics
                    .report("sent", matches!(report, fleet::consensus::Report::Suspect { .. }));
                send_report(&agent, &state, &report, fellows);
            }
        }
        let decisions = agent.monitor.decide();
        for target in decisions.recover {
            tokio::spawn(recovery::run(Arc::clone(&agent), target));
        }
        if let Some(held) = decisions.newly_held_back {
            held_back(&agent, &state, &held);
        }
    }
}

/// Too much of the fleet looks failed at once to trust the checks: nothing is replaced, and
/// people are told.
fn held_back(agent: &Arc<Agent>, state: &fleet::State, held: &[String]) {
    let message = format!(
        "{} of {} droplets look failed at once ({}); recovering none of them, since this many \
         failures at once more likely mean a network problem than dead droplets",
        held.len(),
        state.droplets.len(),
        held.join(", ")
    );
    agent.events.record(EventKind::Failure, message.clone());
    let count = match held.len() {
        1 => "1 droplet looks".to_string(),
        n => format!("{n} droplets look"),
    };
    let notice = crate::notify::Notice {
        sms: Some(format!(
            "[{}] {count} failed ({}); not recovering",
            state.fleet,
            held.join(", ")
        )),
        subject: format!("[{}] {count} failed; not recovering", state.fleet),
        body: format!(
            "What happened: {message}.\nWhen: {}.\nSeen by: {}.\nWhat was done: nothing; check the \
             fleet with `orchestrator --status`, and recover a droplet by hand with `orchestrator \
             --recover NAME` once you know it is gone.\n",
            crate::clock::now_rfc3339(),
            agent.droplet.name
        ),
        urgent: true,
    };
    alerts::send(agent, alerts::Kind::Alert, notice);
}

/// Sends a suspicion (or its withdrawal) to the target's other monitors, without waiting.
fn send_report(
    agent: &Arc<Agent>,
    state: &fleet::State,
    report: &fleet::consensus::Report,
    fellows: Vec<String>,
) {
    let Some(key) = agent.key.clone() else { return };
    let message = match report {
        fleet::consensus::Report::Suspect { target } => {
            monitor::ReportMessage { target: target.clone(), suspect: true }
        }
        fleet::consensus::Report::Clear { target } => {
            monitor::ReportMessage { target: target.clone(), suspect: false }
        }
    };
    let client = AgentClient::from_droplet(key, &agent.droplet.name, agent.droplet.address.into());
    for fellow in fellows {
        let Some(droplet) = state.droplet(&fellow) else { continue };
        let base = format!("http://{}:{}", droplet.ip, droplet.agent_port);
        let (client, message) = (client.clone(), message.clone());
        tokio::spawn(async move {
            if let Err(err) = client
                .post::<_, serde_json::Value>(&base, "/v1/report", &message, monitor::TIMEOUT * 2)
                .await
            {
                tracing::debug!(%err, "a report did not reach a fellow monitor");
            }
        });
    }
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
            let releases =
                agent.replica.read().await.as_ref().map(|u| u.releases.clone()).unwrap_or_default();
            let infrastructure = agent.services.infrastructure_view().await;
            let fleet = lb.fleet().await;
            Html(dashboard::render(&status, fleet.as_ref(), &releases, infrastructure))
                .into_response()
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
