//! The load balancer on master: nginx, configured and driven by the master's agent.
//!
//! Whenever the fleet or a target's health changes, the agent renders the configuration from
//! the user's template, checks it with `nginx -t`, and only then installs it and reloads
//! nginx. A configuration that fails the check is never installed: the last good one keeps
//! serving, and the failure is reported in `/lb-status`, the dashboard and the agent's log.

pub mod config;
pub mod health;
pub mod nginx;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fleet::{DropletStatus, State};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

use self::config::LbContext;
use self::health::{HealthBook, Transition};
use self::nginx::Nginx;
use crate::agent::api::{
    DropletHealth, LbReport, LbSettings, LbStatus, TargetStatus, UpstreamStatus,
};
use crate::agent::events::{EventKind, Events};

/// How long a target's health check may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(800);

/// The path probed on every target.
pub const HEALTH_PATH: &str = "/health";

/// The load balancer of one master droplet.
pub struct LoadBalancer {
    address: Ipv4Addr,
    agent_port: u16,
    runtime: PathBuf,
    events: Arc<Events>,
    inner: Mutex<Inner>,
}

struct Inner {
    nginx: Option<Nginx>,
    fleet: Option<(State, LbSettings)>,
    health: HealthBook,
    droplet_health: std::collections::BTreeMap<String, String>,
    applied_at: Option<String>,
    installed: Option<String>,
    error: Option<String>,
}

impl LoadBalancer {
    /// A load balancer for the master at `address`, keeping nginx's files in `runtime`.
    pub fn new(
        address: Ipv4Addr,
        agent_port: u16,
        runtime: PathBuf,
        events: Arc<Events>,
    ) -> LoadBalancer {
        let nginx = nginx::find_binary().map(|binary| Nginx::new(binary, runtime.clone()));
        let error = nginx.is_none().then(|| nginx::INSTALL_HINT.to_string());
        LoadBalancer {
            address,
            agent_port,
            runtime,
            events,
            inner: Mutex::new(Inner {
                nginx,
                fleet: None,
                health: HealthBook::default(),
                droplet_health: Default::default(),
                applied_at: None,
                installed: None,
                error,
            }),
        }
    }

    /// Takes a new fleet state and settings and brings nginx in line with them.
    pub async fn apply(&self, state: State, settings: LbSettings) -> LbReport {
        let mut inner = self.inner.lock().await;
        let targets = config::targets(&state);
        inner.health.retain(|droplet, port| targets.contains_key(&(droplet.to_string(), port)));
        inner.fleet = Some((state, settings));
        self.reconcile(&mut inner).await;
        self.report(&inner)
    }

    /// Checks every target and droplet once; reconfigures nginx if a target left or rejoined.
    pub async fn check_once(&self, http: &reqwest::Client) {
        let (targets, droplets) = {
            let inner = self.inner.lock().await;
            let Some((state, _)) = &inner.fleet else {
                return;
            };
            let droplets: Vec<(String, String)> = state
                .droplets
                .iter()
                .map(|(name, d)| (name.clone(), format!("http://{}:{}/health", d.ip, d.agent_port)))
                .collect();
            (config::targets(state), droplets)
        };

        let mut probes = JoinSet::new();
        for ((droplet, port), address) in targets {
            let (http, url) = (http.clone(), format!("http://{address}:{port}{HEALTH_PATH}"));
            probes.spawn(async move {
                ProbeResult::Target {
                    outcome: crate::http::probe(&http, &url, PROBE_TIMEOUT).await,
                    droplet,
                    port,
                }
            });
        }
        for (name, url) in droplets {
            let http = http.clone();
            probes.spawn(async move {
                ProbeResult::Droplet {
                    outcome: crate::http::probe(&http, &url, PROBE_TIMEOUT).await,
                    name,
                }
            });
        }
        let mut inner = self.inner.lock().await;
        let mut changed = false;
        while let Some(Ok(result)) = probes.join_next().await {
            match result {
                ProbeResult::Target { droplet, port, outcome } => {
                    match inner.health.record(&droplet, port, outcome.clone()) {
                        Some(Transition::TakenOut) => {
                            let why = outcome.err().unwrap_or_default();
                            self.events.record(
                                EventKind::Rotation,
                                format!("{droplet}:{port} taken out of rotation: {why}"),
                            );
                            changed = true;
                        }
                        Some(Transition::PutBack) => {
                            self.events.record(
                                EventKind::Rotation,
                                format!("{droplet}:{port} back in rotation"),
                            );
                            changed = true;
                        }
                        None => {}
                    }
                }
                ProbeResult::Droplet { name, outcome } => {
                    let health = match outcome {
                        Ok(()) => "healthy".to_string(),
                        Err(err) => format!("unreachable ({err})"),
                    };
                    inner.droplet_health.insert(name, health);
                }
            }
        }
        let nginx_gone = inner.installed.is_some()
            && inner.nginx.as_ref().is_some_and(|n| n.running_pid().is_none());
        if nginx_gone {
            self.events
                .record(EventKind::Failure, "nginx stopped unexpectedly; starting it again".into());
        }
        if changed || nginx_gone {
            self.reconcile(&mut inner).await;
        }
    }

    /// Runs `check_once` every `interval` until the agent stops.
    pub async fn run_checks(self: Arc<Self>, interval: Duration) {
        let http = crate::http::client_from(Some(self.address.into()));
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.check_once(&http).await;
        }
    }

    /// Stops nginx gracefully; the agent calls this as it shuts down.
    pub async fn shutdown(&self) {
        let inner = self.inner.lock().await;
        if let Some(nginx) = &inner.nginx {
            nginx.stop().await;
        }
    }

    pub async fn report_now(&self) -> LbReport {
        self.report(&*self.inner.lock().await)
    }

    /// What `/lb-status` answers.
    pub async fn status(&self) -> LbStatus {
        let inner = self.inner.lock().await;
        let mut upstreams = Vec::new();
        let mut droplets = Vec::new();
        if let Some((state, _)) = &inner.fleet {
            let (list, routes) = config::upstreams(state, |d, p| inner.health.is_down(d, p));
            for (upstream, route) in list.into_iter().zip(routes) {
                let targets = upstream
                    .targets
                    .iter()
                    .map(|t| {
                        let checked = inner.health.get(&t.droplet, t.port);
                        TargetStatus {
                            droplet: t.droplet.clone(),
                            address: t.address.clone(),
                            port: t.port,
                            health: checked.map_or(health::Health::Unknown, |c| c.health),
                            in_rotation: !t.down,
                            last_error: checked.and_then(|c| c.last_error.clone()),
                        }
                    })
                    .collect();
                upstreams.push(UpstreamStatus {
                    name: upstream.name,
                    route: route.path,
                    project: upstream.project,
                    environment: upstream.environment,
                    service: upstream.service,
                    targets,
                });
            }
            for name in state.droplet_names() {
                let droplet = &state.droplets[name];
                let health = if droplet.status != DropletStatus::Active {
                    format!("declared {}", droplet.status)
                } else {
                    inner
                        .droplet_health
                        .get(name)
                        .cloned()
                        .unwrap_or_else(|| "not checked yet".into())
                };
                droplets.push(DropletHealth {
                    name: name.to_string(),
                    role: droplet.role.to_string(),
                    address: droplet.ip.clone(),
                    health,
                });
            }
        }
        LbStatus {
            load_balancer: self.report(&inner),
            upstreams,
            droplets,
            events: self.events.newest(50),
        }
    }

    /// The fleet state the load balancer works from, for the dashboard.
    pub async fn fleet(&self) -> Option<State> {
        self.inner.lock().await.fleet.as_ref().map(|(state, _)| state.clone())
    }

    fn report(&self, inner: &Inner) -> LbReport {
        let port = inner.fleet.as_ref().map_or(0, |(_, settings)| settings.port);
        let running = inner.nginx.as_ref().is_some_and(|n| n.running_pid().is_some());
        let error = match (&inner.error, running, &inner.fleet) {
            (Some(error), _, _) => Some(error.clone()),
            (None, false, Some(_)) => {
                Some("nginx is not running; the agent starts it again".into())
            }
            (None, _, _) => None,
        };
        LbReport {
            url: format!("http://{}:{port}/", self.address),
            nginx_installed: inner.nginx.is_some(),
            nginx_running: running,
            config_applied_at: inner.applied_at.clone(),
            error,
        }
    }

    /// Renders, checks, installs and loads the configuration for the current fleet and health.
    async fn reconcile(&self, inner: &mut Inner) {
        let Some((state, settings)) = inner.fleet.clone() else {
            return;
        };
        let Some(nginx) = &inner.nginx else {
            inner.error = Some(nginx::INSTALL_HINT.to_string());
            return;
        };
        let (upstreams, routes) = config::upstreams(&state, |d, p| inner.health.is_down(d, p));
        let context = LbContext {
            listen_address: self.address.to_string(),
            listen_port: settings.port,
            runtime_dir: self.runtime.display().to_string(),
            agent_url: format!("http://{}:{}", self.address, self.agent_port),
            user: nix::unistd::geteuid().is_root().then(|| "root".to_string()),
            upstreams,
            routes,
        };
        let result =
            self.install(nginx, &settings.template, &context, inner.installed.as_deref()).await;
        match result {
            Ok(Some(rendered)) => {
                inner.installed = Some(rendered);
                inner.applied_at = Some(crate::clock::now_rfc3339());
                inner.error = None;
            }
            Ok(None) => inner.error = None,
            Err(error) => {
                self.events.record(
                    EventKind::Failure,
                    format!("load balancer configuration refused: {error}"),
                );
                inner.error = Some(error);
            }
        }
    }

    /// Installs the rendered configuration if it differs from `current`; `Some` if it did.
    async fn install(
        &self,
        nginx: &Nginx,
        template: &str,
        context: &LbContext,
        current: Option<&str>,
    ) -> Result<Option<String>, String> {
        let rendered = render(template, context)?;
        let running = nginx.running_pid();
        if current == Some(rendered.as_str()) && running.is_some() {
            return Ok(None);
        }
        std::fs::create_dir_all(&self.runtime)
            .map_err(|err| format!("cannot create {}: {err}", self.runtime.display()))?;
        let candidate = self.runtime.join("nginx.conf.next");
        std::fs::write(&candidate, &rendered)
            .map_err(|err| format!("cannot write {}: {err}", candidate.display()))?;
        nginx
            .check(&candidate)
            .await
            .map_err(|said| format!("nginx -t rejected the rendered template: {said}"))?;
        std::fs::rename(&candidate, nginx.config_path())
            .map_err(|err| format!("cannot install the configuration: {err}"))?;
        match running {
            Some(pid) => nginx.reload(pid)?,
            None => {
                let listen = format!("{}:{}", context.listen_address, context.listen_port);
                nginx.start(&listen).await?;
                self.events.record(EventKind::Change, format!("nginx started on {listen}"));
            }
        }
        tracing::info!(
            upstreams = context.upstreams.len(),
            "load balancer configuration installed"
        );
        Ok(Some(rendered))
    }
}

/// Renders the nginx template; undefined variables are errors, so a typo cannot slip through.
pub fn render(template: &str, context: &LbContext) -> Result<String, String> {
    let mut environment = minijinja::Environment::new();
    environment.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    environment.render_str(template, minijinja::value::Serde(context)).map_err(|err| {
        let line = err.line().map(|l| format!(" (line {l})")).unwrap_or_default();
        format!("templates/nginx.conf.j2{line}: {}", err.detail().unwrap_or(&err.to_string()))
    })
}

enum ProbeResult {
    Target { droplet: String, port: u16, outcome: Result<(), String> },
    Droplet { name: String, outcome: Result<(), String> },
}
