//! Running a project's services on a droplet: the agent starts each version as a process,
//! checks it, moves traffic to it and stops the version it replaces.
//!
//! Every web service has a front on its fixed port (the port nginx sends to), and each version
//! runs behind it on a port of its own. A deploy starts the new versions of all the project's
//! services beside the old ones; only when every one of them passes its health check does each
//! front switch to its new version, after which the old versions finish the requests they hold
//! and stop. A version that never turns healthy is stopped and the old one keeps serving: the
//! project moves as a whole or not at all. A process that exits on its own is started again,
//! waiting longer after each crash.

pub mod front;
pub mod infra;
mod instance;
pub mod relay;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet::ServiceKind;
use fleet::deploy_config::HealthCheck;
use serde::{Deserialize, Serialize};

use self::front::Front;
use self::instance::{Instance, Launch, Runner};
use super::events::{EventKind, Events};
use crate::control::FleetKey;
use crate::control::sealed::{self, Sealed};
use crate::engine::{self, Engine};

/// How long old versions may take to finish the requests they hold.
const DRAIN: Duration = Duration::from_secs(30);
/// Lines of a failing service's log shown with the failure.
const LOG_LINES: usize = 50;
/// Unpacked versions kept per service, the running one included.
const KEPT_VERSIONS: usize = 5;

/// `POST /v1/deploy`: run `version` of these services of a project-environment here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRequest {
    pub project: String,
    pub environment: String,
    pub version: String,
    pub services: Vec<ServiceSpec>,
}

/// `POST /v1/retire`: the services of a project-environment that stay on this droplet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetireRequest {
    pub project_env: String,
    pub keep: Vec<String>,
}

/// One service, as the agent runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub name: String,
    pub kind: ServiceKind,
    /// The port nginx sends to; none for workers.
    pub port: Option<u16>,
    /// The artifact's SHA-256, uploaded before with `POST /v1/artifacts/{digest}` (on the
    /// process platform; the container platforms run `image`).
    pub artifact: String,
    /// On the process platform, the script that starts it (rendered from
    /// `templates/process.sh.j2`), run with `sh -c` in the unpacked artifact; on the container
    /// platforms, the container's settings (rendered from `templates/container.json.j2`).
    pub command: String,
    /// The image it runs as a container, on the container platforms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ContainerImage>,
    pub health: HealthCheck,
    /// Environment variable name → value sealed with the fleet key.
    pub secrets: BTreeMap<String, Sealed>,
    /// Variables that are not secret, such as where the infrastructure services listen.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Infrastructure on master the service reaches through this droplet's relays.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relays: Vec<Relay>,
}

/// An infrastructure instance on master, reached through a relay on the service's droplet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relay {
    /// The variable that names the host (`REDIS_HOST`): this droplet's own address.
    pub variable: String,
    /// The instance's port, here and on master.
    pub port: u16,
}

/// An image, and the engine that runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerImage {
    /// `sha256:…`, as the engine names it.
    pub id: String,
    pub engine: fleet::deploy_config::Platform,
}

/// A deploy that went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployAnswer {
    pub droplet: String,
    pub services: Vec<ServiceView>,
}

/// A deploy that did not: the old versions still serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRefusal {
    pub droplet: String,
    pub service: String,
    pub reason: String,
    /// The health check's URL and what it last answered, when the check failed.
    pub probe_url: Option<String>,
    pub last_answer: Option<String>,
    /// The newest lines of the failing version's log.
    pub logs: Vec<String>,
}

/// `GET /services`: what runs here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceView {
    pub project_env: String,
    pub service: String,
    pub version: String,
    pub kind: ServiceKind,
    pub port: Option<u16>,
    /// Where the running version listens behind the front.
    pub backend: Option<String>,
    pub pid: Option<u32>,
    /// `running`, `restarting` or `stopped`.
    pub state: String,
    pub restarts: u32,
}

/// What this droplet runs.
pub struct Supervisor {
    droplet: String,
    address: IpAddr,
    root: PathBuf,
    /// The droplet's directory, which labels its containers.
    droplet_dir: PathBuf,
    /// Container engines, connected on first use, by platform.
    engines: tokio::sync::Mutex<BTreeMap<&'static str, Engine>>,
    /// The droplet's runtime directory, which snapshots leave out.
    run_dir: PathBuf,
    key: Option<FleetKey>,
    events: Arc<Events>,
    http: reqwest::Client,
    deploying: tokio::sync::Mutex<()>,
    units: Mutex<BTreeMap<(String, String), Unit>>,
    fronts: Mutex<BTreeMap<u16, Arc<Front>>>,
    infra: Mutex<BTreeMap<String, infra::InfraUnit>>,
    relays: relay::Relays,
}

/// The running version of one service.
struct Unit {
    version: String,
    spec: ServiceSpec,
    instance: Instance,
}

impl Supervisor {
    /// Services kept under `root` (the droplet's `data/services`); infrastructure beside it,
    /// in `data/infrastructure`.
    pub fn new(
        droplet: &str,
        address: IpAddr,
        root: PathBuf,
        key: Option<FleetKey>,
        events: Arc<Events>,
    ) -> Supervisor {
        let droplet_dir = engine::absolute(root.parent().and_then(Path::parent).unwrap_or(&root));
        Supervisor {
            droplet: droplet.to_string(),
            address,
            run_dir: droplet_dir.join("run"),
            droplet_dir,
            engines: tokio::sync::Mutex::new(BTreeMap::new()),
            root,
            key,
            events,
            http: crate::http::client_from(Some(address)),
            deploying: tokio::sync::Mutex::new(()),
            units: Mutex::new(BTreeMap::new()),
            fronts: Mutex::new(BTreeMap::new()),
            infra: Mutex::new(BTreeMap::new()),
            relays: relay::Relays::new(address),
        }
    }

    /// Where master is now, for the relays to its infrastructure.
    pub fn set_master(&self, address: Option<IpAddr>) {
        self.relays.set_master(address);
    }

    fn artifact_path(&self, digest: &str) -> PathBuf {
        self.root.join("artifacts").join(format!("{digest}.tar.gz"))
    }

    /// Keeps an uploaded artifact after checking its digest.
    pub fn store_artifact(&self, digest: &str, bytes: &[u8]) -> Result<(), String> {
        let valid = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid {
            return Err(format!("{digest:?} is not a SHA-256 digest"));
        }
        let actual = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
        if actual != digest {
            return Err(format!("the artifact's digest is {actual}, not {digest}"));
        }
        let path = self.artifact_path(digest);
        let _ = std::fs::create_dir_all(self.root.join("artifacts"));
        fleet::store::write_atomically(&path, bytes, None)
            .map_err(|err| format!("cannot keep the artifact: {err}"))
    }

    /// Whether an artifact is here already.
    pub fn has_artifact(&self, digest: &str) -> bool {
        self.artifact_path(digest).is_file()
    }

    /// Starts what this droplet ran before the agent stopped, without waiting for health.
    pub async fn resume(self: &Arc<Self>) {
        instance::kill_leftovers_at(&self.root, 3);
        let requests: Vec<DeployRequest> = std::fs::read_dir(self.root.join("running"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|entry| std::fs::read(entry.path()).ok())
            .filter_map(|text| serde_json::from_slice(&text).ok())
            .collect();
        let services = requests.iter().flat_map(|r| &r.services);
        let mut engines: Vec<_> =
            services.filter_map(|s| s.image.as_ref()).map(|i| i.engine).collect();
        let infrastructure = self.kept_infrastructure();
        engines.extend(infrastructure.iter().filter_map(|s| s.image.as_ref()).map(|i| i.engine));
        engines.sort_by_key(|engine| engine.as_str());
        engines.dedup();
        for platform in engines {
            // What the agent's last run started is stopped, then started anew below.
            if let Ok(engine) = self.engine(platform).await {
                let _ = engine.remove_containers_of(&self.droplet_dir).await;
            }
        }
        self.resume_infrastructure().await;
        for request in requests {
            let project_env = fleet::model::project_env(&request.project, &request.environment);
            for spec in &request.services {
                match self.launch(&project_env, &request.version, spec, false).await {
                    Ok(instance) => {
                        if let Some(port) = spec.port {
                            match self.front(port).await {
                                Ok(front) => {
                                    front.switch(instance.backend());
                                }
                                Err(err) => tracing::warn!(%err, "cannot serve a front"),
                            }
                        }
                        self.units.lock().expect("not poisoned").insert(
                            (project_env.clone(), spec.name.clone()),
                            Unit { version: request.version.clone(), spec: spec.clone(), instance },
                        );
                    }
                    Err(err) => self.events.record(
                        EventKind::Failure,
                        format!("cannot start {project_env} {} again: {err}", spec.name),
                    ),
                }
            }
        }
    }

    /// Runs a deploy: new versions beside the old, all healthy, then traffic moves.
    pub async fn deploy(
        self: &Arc<Self>,
        request: DeployRequest,
    ) -> Result<DeployAnswer, DeployRefusal> {
        let _one_at_a_time = self.deploying.lock().await;
        let project_env = fleet::model::project_env(&request.project, &request.environment);
        let refuse = |service: &str, reason: String| DeployRefusal {
            droplet: self.droplet.clone(),
            service: service.to_string(),
            reason,
            probe_url: None,
            last_answer: None,
            logs: Vec::new(),
        };
        for spec in &request.services {
            let missing = match &spec.image {
                None => (!self.has_artifact(&spec.artifact))
                    .then(|| format!("artifact {} was not uploaded", spec.artifact)),
                Some(image) => match self.has_image(image).await {
                    Ok(true) => None,
                    Ok(false) => Some(format!("image {} was not uploaded", image.id)),
                    Err(err) => Some(err),
                },
            };
            if let Some(reason) = missing {
                return Err(refuse(&spec.name, reason));
            }
        }

        // Start every new version.
        let mut started: Vec<(ServiceSpec, Instance)> = Vec::new();
        for spec in &request.services {
            match self.launch(&project_env, &request.version, spec, true).await {
                Ok(instance) => started.push((spec.clone(), instance)),
                Err(err) => {
                    stop_all(started).await;
                    return Err(refuse(&spec.name, err));
                }
            }
        }

        // Every one must turn healthy.
        // They started together, so checking one after another costs no more than the slowest.
        let mut results = Vec::with_capacity(started.len());
        for (spec, instance) in &started {
            results.push(self.wait_healthy(spec, instance).await);
        }
        if let Some((index, failure)) =
            results.into_iter().enumerate().find_map(|(i, r)| r.err().map(|f| (i, f)))
        {
            let (spec, instance) = &started[index];
            let mut refusal = refuse(&spec.name, failure.reason);
            refusal.probe_url = failure.probe_url;
            refusal.last_answer = failure.last_answer;
            refusal.logs = self.redacted(spec, instance.last_log_lines(LOG_LINES));
            self.events.record(
                EventKind::Failure,
                format!(
                    "{project_env} {} never turned healthy; the version already running keeps serving",
                    request.version
                ),
            );
            stop_all(started).await;
            return Err(refusal);
        }

        // Traffic moves, all services together; then the old versions drain and stop.
        let mut retired = Vec::new();
        for (spec, instance) in started {
            if let Some(port) = spec.port {
                let front = self.front(port).await.map_err(|err| refuse(&spec.name, err))?;
                let old_backend = front.switch(instance.backend());
                retired.push((old_backend, None));
            }
            let previous = self.units.lock().expect("not poisoned").insert(
                (project_env.clone(), spec.name.clone()),
                Unit { version: request.version.clone(), spec: spec.clone(), instance },
            );
            if let Some(previous) = previous {
                retired.push((None, Some(previous.instance)));
            }
        }
        self.remember(&project_env, &request);
        for (backend, _) in &retired {
            if let Some(backend) = backend {
                backend.drained(DRAIN).await;
            }
        }
        for (_, instance) in retired {
            if let Some(instance) = instance {
                instance.stop().await;
            }
        }
        for spec in &request.services {
            instance::prune(&self.unit_dir(&project_env, &spec.name), KEPT_VERSIONS);
        }
        self.events.record(
            EventKind::Change,
            format!("{project_env} now runs {} on {}", request.version, self.droplet),
        );
        Ok(DeployAnswer { droplet: self.droplet.clone(), services: self.view_of(&project_env) })
    }

    /// Stops the services of `project_env` here that `keep` does not name: the CSV placed them
    /// elsewhere. Returns the services stopped.
    pub async fn retire(&self, project_env: &str, keep: &[String]) -> Vec<String> {
        let _one_at_a_time = self.deploying.lock().await;
        let leaving: Vec<((String, String), Unit)> = {
            let mut units = self.units.lock().expect("not poisoned");
            let keys: Vec<(String, String)> = units
                .keys()
                .filter(|(pe, service)| pe == project_env && !keep.contains(service))
                .cloned()
                .collect();
            keys.into_iter().filter_map(|key| units.remove(&key).map(|unit| (key, unit))).collect()
        };
        let mut stopped = Vec::new();
        for ((_, service), unit) in leaving {
            if let Some(port) = unit.spec.port {
                let front = self.fronts.lock().expect("not poisoned").get(&port).cloned();
                if let Some(front) = front {
                    front.switch(None);
                }
            }
            unit.instance.stop().await;
            stopped.push(service);
        }
        // What a restarted agent would start again: the services that stay.
        let path = self.root.join("running").join(format!("{project_env}.json"));
        if let Ok(text) = std::fs::read(&path)
            && let Ok(mut request) = serde_json::from_slice::<DeployRequest>(&text)
        {
            request.services.retain(|spec| keep.contains(&spec.name));
            if request.services.is_empty() {
                let _ = std::fs::remove_file(&path);
            } else {
                self.remember(project_env, &request);
            }
        }
        if !stopped.is_empty() {
            self.events.record(
                EventKind::Change,
                format!("{project_env} {} stopped here: placed elsewhere", stopped.join(", ")),
            );
        }
        stopped
    }

    /// Log lines with every secret of `spec` blotted out, for messages that leave the droplet.
    fn redacted(&self, spec: &ServiceSpec, lines: Vec<String>) -> Vec<String> {
        let Some(key) = &self.key else { return lines };
        let values: Vec<String> = spec
            .secrets
            .iter()
            .filter_map(|(variable, value)| {
                sealed::open(key, &format!("secret {variable}"), value).ok()
            })
            .map(|secret| secret.expose().to_string())
            .filter(|value| !value.is_empty())
            .collect();
        lines
            .into_iter()
            .map(|line| values.iter().fold(line, |line, value| line.replace(value, "[redacted]")))
            .collect()
    }

    /// What runs here now.
    pub fn view(&self) -> Vec<ServiceView> {
        let units = self.units.lock().expect("not poisoned");
        units.iter().map(|((project_env, _), unit)| view(project_env, unit)).collect()
    }

    fn view_of(&self, project_env: &str) -> Vec<ServiceView> {
        self.view().into_iter().filter(|v| v.project_env == project_env).collect()
    }

    /// Stops every service (the agent is stopping; the droplet goes down with it).
    pub async fn stop_all(&self) {
        self.relays.stop_all();
        let units: Vec<Unit> =
            std::mem::take(&mut *self.units.lock().expect("not poisoned")).into_values().collect();
        for unit in units {
            unit.instance.stop().await;
        }
        let infra: Vec<infra::InfraUnit> =
            std::mem::take(&mut *self.infra.lock().expect("not poisoned")).into_values().collect();
        for unit in infra {
            unit.stop().await;
        }
    }

    fn unit_dir(&self, project_env: &str, service: &str) -> PathBuf {
        self.root.join(project_env).join(service)
    }

    /// The engine of a container platform, connected once.
    async fn engine(&self, platform: fleet::deploy_config::Platform) -> Result<Engine, String> {
        let mut engines = self.engines.lock().await;
        if let Some(engine) = engines.get(platform.as_str()) {
            return Ok(engine.clone());
        }
        let engine = Engine::connect(platform).await.map_err(|err| err.to_string())?;
        engines.insert(platform.as_str(), engine.clone());
        Ok(engine)
    }

    /// Whether this droplet's engine holds the image.
    pub async fn has_image(&self, image: &ContainerImage) -> Result<bool, String> {
        let engine = self.engine(image.engine).await?;
        engine.image_id(&image.id).await.map(|id| id.is_some()).map_err(|err| err.to_string())
    }

    /// Loads images saved on the administrator's machine into this droplet's engine.
    pub async fn load_images(
        &self,
        platform: fleet::deploy_config::Platform,
        archive: Vec<u8>,
    ) -> Result<(), String> {
        let engine = self.engine(platform).await?;
        engine.load(archive).await.map_err(|err| err.to_string())
    }

    /// What runs `spec`: its unpacked artifact (unpacked once), or a container of its image.
    async fn runner(
        &self,
        project_env: &str,
        version: &str,
        spec: &ServiceSpec,
    ) -> Result<Runner, String> {
        let unit_dir = self.unit_dir(project_env, &spec.name);
        let short = &spec.artifact[..spec.artifact.len().min(12)];
        let Some(image) = &spec.image else {
            let dir = unit_dir.join(format!("{}-{short}", safe(version)));
            if !dir.join(".unpacked").exists() {
                unpack(&self.artifact_path(&spec.artifact), &dir)?;
            }
            return Ok(Runner::Process { command: spec.command.clone(), dir });
        };
        let _ = std::fs::create_dir_all(&unit_dir);
        let mut body: bollard::models::ContainerCreateBody = serde_json::from_str(&spec.command)
            .map_err(|err| {
                format!("the container settings of {} are not valid: {err}", spec.name)
            })?;
        body.image = Some(image.id.clone());
        let labels = body.labels.get_or_insert_with(Default::default);
        labels.insert(engine::LABEL_DROPLET.into(), self.droplet_dir.display().to_string());
        labels.insert("orchestrator.service".into(), format!("{project_env} {}", spec.name));
        labels.insert("orchestrator.version".into(), version.to_string());
        let host = body.host_config.get_or_insert_with(Default::default);
        host.network_mode.get_or_insert_with(|| "host".into());
        let mut tag = [0u8; 3];
        getrandom::fill(&mut tag).map_err(|err| err.to_string())?;
        let name = format!("{project_env}-{}-{}-{}", spec.name, self.droplet, hex::encode(tag));
        let engine = self.engine(image.engine).await?;
        Ok(Runner::Container { engine, name, body: Box::new(body) })
    }

    /// Starts the version (unpacking its artifact once, on the process platform); `fresh` for
    /// a new attempt (a deploy), whose log starts empty.
    async fn launch(
        &self,
        project_env: &str,
        version: &str,
        spec: &ServiceSpec,
        fresh: bool,
    ) -> Result<Instance, String> {
        let unit_dir = self.unit_dir(project_env, &spec.name);
        let short = &spec.artifact[..spec.artifact.len().min(12)];
        let runner = self.runner(project_env, version, spec).await?;
        let mut environment = vec![
            ("PROJECT".to_string(), project_env.to_string()),
            ("SERVICE".to_string(), spec.name.clone()),
            ("VERSION".to_string(), version.to_string()),
            ("HOST".to_string(), self.address.to_string()),
        ];
        let backend = match spec.kind {
            ServiceKind::Web => {
                let port = free_port(self.address)?;
                environment.push(("PORT".to_string(), port.to_string()));
                Some(SocketAddr::new(self.address, port))
            }
            ServiceKind::Worker => None,
        };
        environment.extend(spec.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
        // Master's own services reach its infrastructure directly; the others through a relay
        // here that follows master wherever it goes.
        for relay in &spec.relays {
            if self.droplet != fleet::model::MASTER {
                self.relays.ensure(relay.port).await?;
            }
            environment.retain(|(name, _)| *name != relay.variable);
            environment.push((relay.variable.clone(), self.address.to_string()));
        }
        let key = self.key.as_ref().ok_or("this droplet has no fleet key to open secrets with")?;
        for (variable, value) in &spec.secrets {
            let secret = sealed::open(key, &format!("secret {variable}"), value)
                .map_err(|err| err.to_string())?;
            environment.push((variable.clone(), secret.expose().to_string()));
        }
        let log = unit_dir.join(format!("{}-{short}.log", safe(version)));
        if fresh {
            // A new attempt's failure report must quote its own lines, not an earlier one's.
            let _ = std::fs::remove_file(&log);
        }
        // What a service prints is its own business, secrets and all: its owner's alone.
        let _ = std::fs::create_dir_all(&unit_dir);
        let _ = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(&log);
        let launch = Launch {
            label: format!("{project_env} {} {version}", spec.name),
            runner,
            log,
            environment,
            backend,
        };
        Ok(Instance::start(launch, Arc::clone(&self.events)))
    }

    /// Checks a new version until it answers, as its health check says.
    async fn wait_healthy(&self, spec: &ServiceSpec, instance: &Instance) -> Result<(), Unhealthy> {
        let interval = Duration::from_secs(u64::from(spec.health.interval_seconds));
        let timeout = Duration::from_secs(u64::from(spec.health.timeout_seconds));
        let Some(backend) = instance.backend() else {
            // A worker is ready when it keeps running through one interval.
            tokio::time::sleep(interval.max(Duration::from_secs(1))).await;
            return match instance.crashed() {
                false => Ok(()),
                true => Err(Unhealthy {
                    reason: "the worker exited right after it started".into(),
                    probe_url: None,
                    last_answer: None,
                }),
            };
        };
        let url = format!("http://{backend}{}", spec.health.path);
        let mut last = String::from("no answer yet");
        for _ in 0..spec.health.retries {
            match self.http.get(&url).timeout(timeout).send().await {
                Ok(answer) if answer.status().is_success() => return Ok(()),
                Ok(answer) => {
                    let status = answer.status();
                    let body: String =
                        answer.text().await.unwrap_or_default().chars().take(200).collect();
                    last = format!("HTTP {}: {}", status.as_u16(), body.trim());
                }
                Err(err) if err.is_timeout() => {
                    last = format!("no answer within {} s", timeout.as_secs())
                }
                Err(err) if err.is_connect() => last = "connection refused".into(),
                Err(err) => last = err.without_url().to_string(),
            }
            tokio::time::sleep(interval).await;
        }
        Err(Unhealthy {
            reason: format!(
                "{} did not pass its health check after {} tries",
                spec.name, spec.health.retries
            ),
            probe_url: Some(url),
            last_answer: Some(last),
        })
    }

    /// The front on `port`, started on first use.
    async fn front(&self, port: u16) -> Result<Arc<Front>, String> {
        if let Some(front) = self.fronts.lock().expect("not poisoned").get(&port) {
            return Ok(Arc::clone(front));
        }
        let front = Front::serve(SocketAddr::new(self.address, port)).await?;
        self.fronts.lock().expect("not poisoned").insert(port, Arc::clone(&front));
        Ok(front)
    }

    /// Keeps the request, secrets still sealed, so a restarted agent runs the same again.
    fn remember(&self, project_env: &str, request: &DeployRequest) {
        let path = self.root.join("running").join(format!("{project_env}.json"));
        let _ = std::fs::create_dir_all(self.root.join("running"));
        let text = serde_json::to_vec_pretty(request).expect("requests always serialise");
        if let Err(err) = fleet::store::write_atomically(&path, &text, None) {
            tracing::warn!(%err, "cannot keep what runs");
        }
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
}

struct Unhealthy {
    reason: String,
    probe_url: Option<String>,
    last_answer: Option<String>,
}

fn view(project_env: &str, unit: &Unit) -> ServiceView {
    let status = unit.instance.status();
    ServiceView {
        project_env: project_env.to_string(),
        service: unit.spec.name.clone(),
        version: unit.version.clone(),
        kind: unit.spec.kind,
        port: unit.spec.port,
        backend: unit.instance.backend().map(|b| b.to_string()),
        pid: status.pid,
        state: status.state.to_string(),
        restarts: status.restarts,
    }
}

async fn stop_all(started: Vec<(ServiceSpec, Instance)>) {
    for (_, instance) in started {
        instance.stop().await;
    }
}

/// A version as a directory name.
fn safe(version: &str) -> String {
    version
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
        .collect()
}

/// A port nothing listens on at `address` now.
fn free_port(address: IpAddr) -> Result<u16, String> {
    let listener = std::net::TcpListener::bind((address, 0))
        .map_err(|err| format!("no free port on {address}: {err}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|err| err.to_string())
}

/// Unpacks a `.tar.gz` artifact into `dir`, then marks it complete.
fn unpack(artifact: &Path, dir: &Path) -> Result<(), String> {
    let file = std::fs::File::open(artifact)
        .map_err(|err| format!("cannot open {}: {err}", artifact.display()))?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)
        .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(dir)
        .map_err(|err| format!("cannot unpack the artifact: {err}"))?;
    std::fs::write(dir.join(".unpacked"), b"").map_err(|err| err.to_string())
}
