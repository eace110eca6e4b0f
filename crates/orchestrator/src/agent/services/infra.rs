//! Infrastructure services on master (a database, a cache …): one supervised process per
//! project-environment, its data in the droplet's `data/` (so snapshots carry it), its password
//! only in the configuration file it reads (under `run/`, which snapshots leave out). Application deploys never touch them; a changed definition is
//! applied only when the command line says the change was confirmed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fleet::deploy_config::{InfraKind, Platform};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::Supervisor;
use super::instance::{self, Instance, Launch, Runner};
use crate::agent::events::EventKind;
use crate::control::sealed::{self, Sealed};
use crate::engine;

/// How long a changed definition has to answer on its port before the one before comes back.
const COME_UP: Duration = Duration::from_secs(20);

/// `POST /v1/infrastructure`: what should run, and which changes may restart or stop one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfraRequest {
    pub instances: Vec<InfraSpec>,
    /// `name project-env` of instances that may be restarted (changed) or stopped (removed).
    #[serde(default)]
    pub confirmed: Vec<String>,
    /// Instances configured but left out because their password is not set where the command
    /// runs: they keep running as they are.
    #[serde(default)]
    pub unresolved: Vec<String>,
}

/// One instance as the agent runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfraSpec {
    pub name: String,
    pub kind: InfraKind,
    pub project_env: String,
    pub port: u16,
    /// Templates: `{{ host }}`, `{{ port }}`, `{{ data_dir }}`, `{{ config_file }}`; the
    /// configuration file's also `{{ password }}`.
    pub command: String,
    pub config: Option<String>,
    /// Sealed for [`password_purpose`].
    pub password: Option<Sealed>,
    /// On docker and podman: the image the command runs in; a process otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<InfraImage>,
}

/// The image an instance runs from, on master's engine of that platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfraImage {
    /// As the configuration names it: `redis:7-alpine`.
    pub reference: String,
    pub engine: Platform,
}

impl InfraSpec {
    pub fn key(&self) -> String {
        format!("{} {}", self.name, self.project_env)
    }

    /// What a change of would restart the instance: everything but the password's sealing.
    pub fn fingerprint(&self) -> String {
        let mut text = format!(
            "{}\n{:?}\n{}\n{}\n{}\n{}",
            self.name,
            self.kind,
            self.project_env,
            self.port,
            self.command,
            self.config.as_deref().unwrap_or_default()
        );
        if let Some(image) = &self.image {
            text.push_str(&format!("\n{} {}", image.engine.as_str(), image.reference));
        }
        hex::encode(sha2::Sha256::digest(text.as_bytes()))[..16].to_string()
    }
}

/// What an instance's password is sealed for.
pub fn password_purpose(name: &str, project_env: &str) -> String {
    format!("infrastructure password {name} {project_env}")
}

/// `GET /infrastructure`: what runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfraView {
    pub name: String,
    pub kind: InfraKind,
    pub project_env: String,
    pub port: u16,
    pub fingerprint: String,
    pub pid: Option<u32>,
    /// `running`, `restarting` or `stopped`.
    pub state: String,
    pub restarts: u32,
    /// Whether its port takes connections now.
    pub healthy: bool,
    /// A change that waits for confirmation, if any.
    pub pending: Option<String>,
    /// A confirmed change that did not take, and why: the instance runs as it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_change: Option<String>,
    /// The image it runs from, when it runs in a container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `namespace/name` of its StatefulSet, when it runs in the Kubernetes cluster rather than
    /// on master.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

pub(super) struct InfraUnit {
    spec: InfraSpec,
    instance: Instance,
    pending: Option<String>,
    refused_change: Option<String>,
}

impl InfraUnit {
    pub(super) async fn stop(self) {
        self.instance.stop().await;
    }
}

impl Supervisor {
    fn infra_root(&self) -> PathBuf {
        self.root.with_file_name("infrastructure")
    }

    /// Starts what should run and is not running; restarts or stops only what was confirmed.
    pub async fn reconcile_infrastructure(&self, request: InfraRequest) -> Vec<InfraView> {
        let _one_at_a_time = self.deploying.lock().await;
        let wanted: BTreeMap<String, InfraSpec> =
            request.instances.iter().map(|s| (s.key(), s.clone())).collect();
        let mut to_stop = Vec::new();
        let mut to_start = Vec::new();
        {
            let mut units = self.infra.lock().expect("not poisoned");
            for (key, unit) in units.iter_mut() {
                match wanted.get(key) {
                    None if request.unresolved.contains(key) => {
                        unit.pending = Some(
                            "its password is not set where the command ran; it keeps running as it was"
                                .into(),
                        );
                    }
                    None if request.confirmed.contains(key) => to_stop.push(key.clone()),
                    None => unit.pending = Some("no longer in the configuration".into()),
                    Some(spec) if spec.fingerprint() != unit.spec.fingerprint() => {
                        if request.confirmed.contains(key) {
                            to_stop.push(key.clone());
                            to_start.push(spec.clone());
                        } else {
                            unit.pending = Some("changed; restarts once confirmed".into());
                        }
                    }
                    Some(_) => {
                        unit.pending = None;
                        unit.refused_change = None;
                    }
                }
            }
            for (key, spec) in &wanted {
                if !units.contains_key(key) {
                    to_start.push(spec.clone());
                }
            }
        }
        // A replacement that cannot start (its image missing and not to be pulled) leaves the
        // running instance alone rather than stopping it for nothing.
        let mut blocked = Vec::new();
        for spec in &to_start {
            let replaces = to_stop.contains(&spec.key());
            if let (true, Some(image)) = (replaces, &spec.image)
                && let Err(err) = self.ensure_image(image).await
            {
                blocked.push((spec.key(), format!("not restarted: {err}")));
            }
        }
        if !blocked.is_empty() {
            let mut units = self.infra.lock().expect("not poisoned");
            for (key, why) in &blocked {
                if let Some(unit) = units.get_mut(key) {
                    unit.refused_change = Some(why.clone());
                }
            }
        }
        to_stop.retain(|key| !blocked.iter().any(|(k, _)| k == key));
        to_start.retain(|spec| !blocked.iter().any(|(k, _)| *k == spec.key()));
        let mut replaced = BTreeMap::new();
        for key in to_stop {
            let unit = self.infra.lock().expect("not poisoned").remove(&key);
            if let Some(unit) = unit {
                replaced.insert(key.clone(), unit.spec.clone());
                unit.instance.stop().await;
                self.events.record(EventKind::Change, format!("infrastructure {key} stopped"));
            }
        }
        for spec in to_start {
            let key = spec.key();
            let port = spec.port;
            self.start_infra(spec).await;
            // A changed definition that does not come up gives way to the one before.
            let Some(before) = replaced.remove(&key) else { continue };
            if self.comes_up(&key, port).await {
                continue;
            }
            let failed = self.infra.lock().expect("not poisoned").remove(&key);
            if let Some(failed) = failed {
                failed.instance.stop().await;
            }
            let why = format!(
                "not restarted: the changed definition did not answer on port {port} within {} s, \
                 so the one before runs again (see its log in the droplet's run/infrastructure/)",
                COME_UP.as_secs()
            );
            self.events.record(EventKind::Failure, format!("infrastructure {key}: {why}"));
            self.start_infra(before).await;
            if let Some(unit) = self.infra.lock().expect("not poisoned").get_mut(&key) {
                unit.refused_change = Some(why);
            }
        }
        self.remember_infrastructure();
        self.infrastructure_view().await
    }

    /// Whether the instance `key` answers on its port within [`COME_UP`], without crashing.
    async fn comes_up(&self, key: &str, port: u16) -> bool {
        let deadline = tokio::time::Instant::now() + COME_UP;
        let address = SocketAddr::new(self.address, port);
        while tokio::time::Instant::now() < deadline {
            let crashed = match self.infra.lock().expect("not poisoned").get(key) {
                Some(unit) => unit.pending.is_some() || unit.instance.status().restarts > 0,
                None => true,
            };
            if crashed {
                return false;
            }
            let connect = tokio::net::TcpStream::connect(address);
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), connect).await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    }

    /// Stops and starts one instance.
    pub async fn restart_infrastructure(&self, key: &str) -> Result<Vec<InfraView>, String> {
        let _one_at_a_time = self.deploying.lock().await;
        let unit = self.infra.lock().expect("not poisoned").remove(key);
        let Some(unit) = unit else { return Err(format!("no infrastructure {key} runs here")) };
        unit.instance.stop().await;
        self.start_infra(unit.spec).await;
        self.events.record(EventKind::Change, format!("infrastructure {key} restarted"));
        Ok(self.infrastructure_view().await)
    }

    /// The instances kept from before the agent stopped.
    pub(super) fn kept_infrastructure(&self) -> Vec<InfraSpec> {
        let Ok(text) = std::fs::read(self.infra_root().join("instances.json")) else {
            return Vec::new();
        };
        serde_json::from_slice(&text).unwrap_or_default()
    }

    /// Starts the instances kept from before the agent stopped, once what its last run left
    /// is gone: its processes here, its containers by the caller.
    pub(super) async fn resume_infrastructure(&self) {
        instance::kill_leftovers_at(&self.infra_root(), 2);
        for spec in self.kept_infrastructure() {
            self.start_infra(spec).await;
        }
    }

    /// The engine of an instance's image, with the image on it (pulled if it was not).
    async fn ensure_image(&self, image: &InfraImage) -> Result<engine::Engine, String> {
        let engine = self.engine(image.engine).await?;
        if engine.image_id(&image.reference).await.map_err(|e| e.to_string())?.is_none() {
            engine.pull(&image.reference).await.map_err(|err| {
                format!(
                    "{} is not on this droplet's engine and cannot be pulled: {err}",
                    image.reference
                )
            })?;
        }
        Ok(engine)
    }

    async fn start_infra(&self, spec: InfraSpec) {
        let key = spec.key();
        let (instance, pending) = match self.launch_infra(&spec).await {
            Ok(launch) => (Instance::start(launch, Arc::clone(&self.events)), None),
            Err(err) => {
                self.events.record(
                    EventKind::Failure,
                    format!("infrastructure {key} cannot start: {err}"),
                );
                let dir = self.infra_root().join(&spec.name).join(&spec.project_env);
                let _ = std::fs::create_dir_all(&dir);
                let idle = Launch {
                    label: key.clone(),
                    runner: Runner::Process { command: "exit 1".into(), dir },
                    log: self.infra_log(&spec).unwrap_or_default(),
                    environment: Vec::new(),
                    backend: None,
                };
                (Instance::start(idle, Arc::clone(&self.events)), Some(err))
            }
        };
        let how = spec.image.as_ref().map_or_else(
            || "as a process".to_string(),
            |image| format!("from {} on {}", image.reference, image.engine.as_str()),
        );
        self.events.record(
            EventKind::Change,
            format!("infrastructure {key} started on port {} {how}", spec.port),
        );
        self.infra
            .lock()
            .expect("not poisoned")
            .insert(key, InfraUnit { spec, instance, pending, refused_change: None });
    }

    /// The instance's log: what the server writes may quote its configuration, password and
    /// all, so it sits beside that file in the runtime directory (which snapshots leave out),
    /// readable by its owner alone.
    fn infra_log(&self, spec: &InfraSpec) -> Result<PathBuf, String> {
        let log = self.infra_run_dir(spec)?.join(format!("{}.log", spec.name));
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log)
            .map_err(|err| format!("cannot open {}: {err}", log.display()))?;
        Ok(log)
    }

    /// The instance's own part of the droplet's runtime directory (which snapshots leave out),
    /// its owner's alone: its configuration file and its log.
    fn infra_run_dir(&self, spec: &InfraSpec) -> Result<PathBuf, String> {
        let run_dir = self.run_dir.join("infrastructure").join(&spec.name).join(&spec.project_env);
        std::fs::create_dir_all(&run_dir)
            .and_then(|()| {
                std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(0o700))
            })
            .map_err(|err| format!("cannot create {}: {err}", run_dir.display()))?;
        Ok(run_dir)
    }

    async fn launch_infra(&self, spec: &InfraSpec) -> Result<Launch, String> {
        let dir = self.infra_root().join(&spec.name).join(&spec.project_env);
        let data_dir = dir.join("data");
        std::fs::create_dir_all(&data_dir)
            .map_err(|err| format!("cannot create {}: {err}", data_dir.display()))?;
        // The configuration file holds the password, so it lives in the droplet's runtime
        // directory, which snapshots leave out; every start writes it afresh.
        let run_dir = self.infra_run_dir(spec)?;
        // Absolute, since a container sees them at the same paths through its mounts.
        let data_dir = engine::absolute(&data_dir);
        let config_file = engine::absolute(&run_dir).join(format!("{}.conf", spec.name));
        let places = Places {
            host: self.address.to_string(),
            port: spec.port,
            data_dir: data_dir.display().to_string(),
            config_file: config_file.display().to_string(),
        };
        let render = |template: &str, password: Option<&str>| places.render(template, password);
        if let Some(template) = &spec.config {
            let password = match (&spec.password, &self.key) {
                (Some(sealed), Some(key)) => Some(
                    sealed::open(key, &password_purpose(&spec.name, &spec.project_env), sealed)
                        .map_err(|err| err.to_string())?,
                ),
                _ => None,
            };
            let text = render(template, password.as_ref().map(|p| p.expose()))?;
            // Written private first, then filled: the password is never readable by others.
            // In a container the file alone is mounted, so the server may run as any user
            // there; on the droplet, the directory around it keeps others out.
            let mode = if spec.image.is_some() { 0o644 } else { 0o600 };
            let _ = std::fs::remove_file(&config_file);
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&config_file)
                .and_then(|mut file| std::io::Write::write_all(&mut file, text.as_bytes()))
                .map_err(|err| format!("cannot write {}: {err}", config_file.display()))?;
        }
        let command = render(&spec.command, None)?;
        let runner = match &spec.image {
            None => Runner::Process {
                // `exec`, so a stop reaches the server itself rather than the shell around it.
                command: if command.trim_start().starts_with("exec ") {
                    command
                } else {
                    format!("exec {command}")
                },
                dir: dir.clone(),
            },
            Some(image) => {
                let config = spec.config.is_some().then_some(config_file.as_path());
                self.infra_container(spec, image, &command, &data_dir, config).await?
            }
        };
        Ok(Launch {
            label: format!("infrastructure {}", spec.key()),
            runner,
            log: self.infra_log(spec)?,
            environment: Vec::new(),
            backend: None,
        })
    }

    /// A container of the instance's image: on the host's network, running `command` (split as
    /// a shell would, without one), with its data directory and configuration file mounted
    /// where the command names them.
    async fn infra_container(
        &self,
        spec: &InfraSpec,
        image: &InfraImage,
        command: &str,
        data_dir: &Path,
        config_file: Option<&Path>,
    ) -> Result<Runner, String> {
        let engine = self.ensure_image(image).await?;
        let words = shlex::split(command.trim_start().trim_start_matches("exec "))
            .ok_or_else(|| "its command has an unclosed quote".to_string())?;
        let mut binds = vec![format!("{0}:{0}", data_dir.display())];
        binds.extend(config_file.map(|file| format!("{0}:{0}:ro", file.display())));
        let labels = std::collections::HashMap::from([
            (engine::LABEL_DROPLET.to_string(), self.droplet_dir.display().to_string()),
            ("orchestrator.infrastructure".to_string(), spec.key()),
        ]);
        let body = bollard::models::ContainerCreateBody {
            image: Some(image.reference.clone()),
            cmd: (!words.is_empty()).then_some(words),
            // Images that drop to a user of their own make their working directory theirs.
            working_dir: Some(data_dir.display().to_string()),
            labels: Some(labels),
            host_config: Some(bollard::models::HostConfig {
                network_mode: Some("host".into()),
                binds: Some(binds),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut tag = [0u8; 3];
        getrandom::fill(&mut tag).map_err(|err| err.to_string())?;
        let name = format!(
            "infra-{}-{}-{}-{}",
            spec.name,
            spec.project_env,
            self.droplet,
            hex::encode(tag)
        );
        Ok(Runner::Container { engine, name, body: Box::new(body) })
    }

    fn remember_infrastructure(&self) {
        let specs: Vec<InfraSpec> =
            self.infra.lock().expect("not poisoned").values().map(|u| u.spec.clone()).collect();
        let root = self.infra_root();
        let _ = std::fs::create_dir_all(&root);
        let path = root.join("instances.json");
        let text = serde_json::to_vec_pretty(&specs).expect("specs always serialise");
        if let Err(err) = fleet::store::write_atomically(&path, &text, None) {
            tracing::warn!(%err, "cannot keep the infrastructure's definitions");
        }
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }

    /// Every instance with its health now.
    pub async fn infrastructure_view(&self) -> Vec<InfraView> {
        let mut views: Vec<InfraView> = self
            .infra
            .lock()
            .expect("not poisoned")
            .values()
            .map(|unit| {
                let status = unit.instance.status();
                InfraView {
                    name: unit.spec.name.clone(),
                    kind: unit.spec.kind,
                    project_env: unit.spec.project_env.clone(),
                    port: unit.spec.port,
                    fingerprint: unit.spec.fingerprint(),
                    pid: status.pid,
                    state: status.state.to_string(),
                    restarts: status.restarts,
                    healthy: false,
                    pending: unit.pending.clone(),
                    refused_change: unit.refused_change.clone(),
                    image: unit.spec.image.as_ref().map(|i| i.reference.clone()),
                    cluster: None,
                }
            })
            .collect();
        for view in &mut views {
            let address = SocketAddr::new(self.address, view.port);
            let connect = tokio::net::TcpStream::connect(address);
            view.healthy =
                matches!(tokio::time::timeout(Duration::from_secs(1), connect).await, Ok(Ok(_)));
        }
        views
    }
}

/// `GET /infrastructure/leftovers`: data directories of instances that no longer run here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leftover {
    pub name: String,
    pub project_env: String,
    pub bytes: u64,
}

impl Supervisor {
    /// Data kept for instances that are not running (no longer configured).
    pub fn infrastructure_leftovers(&self) -> Vec<Leftover> {
        let running: Vec<String> =
            self.infra.lock().expect("not poisoned").keys().cloned().collect();
        let mut leftovers = Vec::new();
        let Ok(names) = std::fs::read_dir(self.infra_root()) else { return leftovers };
        for name in names.filter_map(Result::ok).filter(|e| e.path().is_dir()) {
            let Ok(instances) = std::fs::read_dir(name.path()) else { continue };
            for instance in instances.filter_map(Result::ok).filter(|e| e.path().is_dir()) {
                let name = name.file_name().to_string_lossy().to_string();
                let project_env = instance.file_name().to_string_lossy().to_string();
                if !running.contains(&format!("{name} {project_env}")) {
                    leftovers.push(Leftover {
                        name,
                        project_env,
                        bytes: size_of(&instance.path()),
                    });
                }
            }
        }
        leftovers
    }

    /// Deletes the data of an instance that does not run.
    pub fn purge_infrastructure(&self, name: &str, project_env: &str) -> Result<(), String> {
        let known = self.infrastructure_leftovers();
        if !known.iter().any(|l| l.name == name && l.project_env == project_env) {
            return Err(format!("{name} {project_env} runs, or has no data here"));
        }
        std::fs::remove_dir_all(self.infra_root().join(name).join(project_env))
            .map_err(|err| format!("cannot remove the data of {name} {project_env}: {err}"))?;
        self.events.record(
            EventKind::Change,
            format!("the data of infrastructure {name} {project_env} was removed"),
        );
        Ok(())
    }
}

fn size_of(path: &std::path::Path) -> u64 {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::read_dir(path)
            .map(|entries| entries.filter_map(Result::ok).map(|e| size_of(&e.path())).sum())
            .unwrap_or(0),
        Ok(meta) => meta.len(),
        Err(_) => 0,
    }
}

/// Where an instance listens and keeps its files, as its templates name them.
pub struct Places {
    pub host: String,
    pub port: u16,
    pub data_dir: String,
    pub config_file: String,
}

impl Places {
    /// Renders one of the instance's templates (`{{ password }}` only in its configuration).
    pub fn render(&self, template: &str, password: Option<&str>) -> Result<String, String> {
        self.render_checked(template, password).map_err(|err| {
            format!(
                "its template cannot be rendered: {}",
                err.detail().map_or_else(|| err.kind().to_string(), str::to_string)
            )
        })
    }

    fn render_checked(
        &self,
        template: &str,
        password: Option<&str>,
    ) -> Result<String, minijinja::Error> {
        let values = minijinja::context! {
            host => &self.host,
            port => self.port,
            data_dir => &self.data_dir,
            config_file => &self.config_file,
            password => password,
        };
        let mut environment = minijinja::Environment::new();
        environment.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        environment.render_str(template, values)
    }
}

/// Renders an instance's templates with stand-in values, so a definition that cannot run is
/// refused before anything stops; the error says which template and why. With
/// `password_secret` set, the configuration must take the password: a server started without
/// it would run open to anyone.
pub fn check_templates(
    command: &str,
    config: Option<&str>,
    has_password: bool,
) -> Result<(), (&'static str, String)> {
    let stand_in = Places {
        host: "127.0.0.1".into(),
        port: 1,
        data_dir: "/data".into(),
        config_file: "/run/service.conf".into(),
    };
    let describe = |err: minijinja::Error| {
        format!(
            "line {}: {}",
            err.line().unwrap_or(0),
            err.detail().map_or_else(|| err.kind().to_string(), str::to_string)
        )
    };
    let rendered = stand_in.render_checked(command, None).map_err(|e| ("command", describe(e)))?;
    if shlex::split(&rendered).is_none() {
        return Err(("command", "it has an unclosed quote".into()));
    }
    const STAND_IN: &str = "stand-in-password-3f9c";
    let taken = match config {
        Some(config) => stand_in
            .render_checked(config, Some(STAND_IN))
            .map_err(|e| ("config", describe(e)))?
            .contains(STAND_IN),
        None => false,
    };
    if has_password && !taken {
        return Err((
            "config",
            "password_secret is set but the configuration never uses {{ password }}, so the \
             server would run without one"
                .into(),
        ));
    }
    Ok(())
}
