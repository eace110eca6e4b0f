//! The container engine of a machine: Docker's Engine API, or Podman's compatible one.
//!
//! The command line builds each release's images with it; every droplet's agent runs the
//! containers with it. Both talk to the engine's Unix socket through bollard.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    ImportImageOptions, ListContainersOptionsBuilder, ListImagesOptionsBuilder, LogsOptionsBuilder,
    PushImageOptionsBuilder, RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
    StopContainerOptionsBuilder, TagImageOptionsBuilder,
};
use fleet::deploy_config::Platform;
use futures_util::StreamExt;

/// Every container an agent starts names its droplet's directory here, so a restarted agent
/// finds what its last run left, and the local cloud removes a droplet's containers with it.
pub const LABEL_DROPLET: &str = "orchestrator.droplet-dir";
/// Every image the command line builds names its workspace here, for pruning.
pub const LABEL_WORKSPACE: &str = "orchestrator.workspace";
/// Lines of a failed build's output kept for the error.
const BUILD_LOG_LINES: usize = 30;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "no {engine} engine answers at {socket} ({reason}); start it, or set {variable} to \
         unix:// and its socket"
    )]
    Unreachable { engine: &'static str, socket: String, variable: &'static str, reason: String },
    #[error("{variable}={value} is not a Unix socket (unix:///path); only local sockets are used")]
    NotUnix { variable: &'static str, value: String },
    #[error("the {engine} engine could not {what}: {reason}")]
    Api { engine: &'static str, what: String, reason: String },
    #[error("the image did not build: {message}\n  {}", log.join("\n  "))]
    Build { message: String, log: Vec<String> },
}

/// What a container is doing now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    Running { pid: Option<u32> },
    Exited { code: i64 },
    Gone,
}

/// A connection to one engine.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    name: &'static str,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("name", &self.name).finish()
    }
}

impl Engine {
    /// Connects to the engine of `platform` (docker or podman), at the socket its usual
    /// variable names (`DOCKER_HOST`, `CONTAINER_HOST`) or its usual place.
    pub async fn connect(platform: Platform) -> Result<Engine, EngineError> {
        let (name, variable) = match platform {
            Platform::Podman => ("Podman", "CONTAINER_HOST"),
            _ => ("Docker", "DOCKER_HOST"),
        };
        let socket = match std::env::var(variable).ok().filter(|v| !v.is_empty()) {
            Some(value) => match value.strip_prefix("unix://") {
                Some(path) => path.to_string(),
                None => return Err(EngineError::NotUnix { variable, value }),
            },
            None => default_socket(platform),
        };
        let unreachable = |reason: String| EngineError::Unreachable {
            engine: name,
            socket: socket.clone(),
            variable,
            reason,
        };
        // Builds and image transfers stream for a long time; each request may take an hour.
        let docker = Docker::connect_with_unix(&socket, 3600, bollard::API_DEFAULT_VERSION)
            .map_err(|err| unreachable(err.to_string()))?;
        let docker = tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version())
            .await
            .map_err(|_| unreachable("no answer within 10 s".into()))?
            .map_err(|err| unreachable(err.to_string()))?;
        Ok(Engine { docker, name })
    }

    fn api(&self, what: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> EngineError {
        let engine = self.name;
        let what = what.into();
        move |err| EngineError::Api { engine, what, reason: reason(&err) }
    }

    /// Builds an image from a build context (a tar, gzip-compressed or not); returns its id.
    pub async fn build(
        &self,
        context: Vec<u8>,
        dockerfile: &str,
        tag: &str,
        build_args: &HashMap<String, String>,
        labels: &HashMap<String, String>,
    ) -> Result<String, EngineError> {
        let options = BuildImageOptionsBuilder::new()
            .dockerfile(dockerfile)
            .t(tag)
            .rm(true)
            .forcerm(true)
            .buildargs(build_args)
            .labels(labels)
            .build();
        let body = bollard::body_full(context.into());
        let mut stream = self.docker.build_image(options, None, Some(body));
        let mut log: Vec<String> = Vec::new();
        let mut id = None;
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(err) => return Err(EngineError::Build { message: reason(&err), log }),
            };
            if let Some(text) = &info.stream {
                log.extend(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string));
                let excess = log.len().saturating_sub(BUILD_LOG_LINES);
                log.drain(..excess);
            }
            if let Some(detail) = info.error_detail {
                let message = detail.message.unwrap_or_else(|| "the build failed".into());
                return Err(EngineError::Build { message, log });
            }
            if let Some(image) = info.aux {
                id = image.id.or(id);
            }
        }
        match id {
            Some(id) => Ok(id),
            // Engines that report no id still tagged the image.
            None => self.image_id(tag).await?.ok_or_else(|| EngineError::Build {
                message: format!("the engine reported no image for {tag}"),
                log,
            }),
        }
    }

    /// The id of an image, or none if the engine has no such image.
    pub async fn image_id(&self, image: &str) -> Result<Option<String>, EngineError> {
        match self.docker.inspect_image(image).await {
            Ok(found) => Ok(found.id),
            Err(err) if is_not_found(&err) => Ok(None),
            Err(err) => Err(self.api(format!("inspect image {image}"))(err)),
        }
    }

    /// Pulls `reference` (`redis:7-alpine`) from its registry.
    pub async fn pull(&self, reference: &str) -> Result<(), EngineError> {
        let options = CreateImageOptionsBuilder::new().from_image(reference).build();
        let stream = self.docker.create_image(Some(options), None, None);
        self.follow(stream, format!("pull {reference}"), |info| {
            info.error_detail.map(|d| d.message)
        })
        .await
    }

    /// Reads a progress stream to its end; the first error it reports fails `what`.
    async fn follow<T>(
        &self,
        stream: impl futures_util::Stream<Item = Result<T, bollard::errors::Error>>,
        what: String,
        error_of: impl Fn(T) -> Option<Option<String>>,
    ) -> Result<(), EngineError> {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            let info = item.map_err(self.api(what.clone()))?;
            if let Some(reason) = error_of(info) {
                let reason = reason.unwrap_or_default();
                return Err(EngineError::Api { engine: self.name, what, reason });
            }
        }
        Ok(())
    }

    /// An image as a tar archive, for an engine that lacks it.
    pub async fn save(&self, image: &str) -> Result<Vec<u8>, EngineError> {
        let mut bytes = Vec::new();
        let mut stream = self.docker.export_image(image);
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.map_err(self.api(format!("export image {image}")))?);
        }
        Ok(bytes)
    }

    /// Loads images saved by [`Engine::save`].
    pub async fn load(&self, archive: Vec<u8>) -> Result<(), EngineError> {
        let body = bollard::body_full(archive.into());
        let stream = self.docker.import_image(ImportImageOptions::default(), body, None);
        self.follow(stream, "load an image".into(), |info| info.error_detail.map(|d| d.message))
            .await
    }

    /// Names the image `repository:tag` (again), so the name is sure to mean this image.
    pub async fn tag(&self, id: &str, repository: &str, tag: &str) -> Result<(), EngineError> {
        let options = TagImageOptionsBuilder::new().repo(repository).tag(tag).build();
        let what = format!("tag {id} as {repository}:{tag}");
        self.docker.tag_image(id, Some(options)).await.map_err(self.api(what))
    }

    /// Pushes `repository:tag` to its registry, with a user name and password when given.
    pub async fn push(
        &self,
        repository: &str,
        tag: &str,
        login: Option<(String, crate::secret::Secret)>,
    ) -> Result<(), EngineError> {
        let credentials = login.map(|(username, password)| bollard::auth::DockerCredentials {
            username: Some(username),
            password: Some(password.expose().to_string()),
            ..Default::default()
        });
        let options = PushImageOptionsBuilder::new().tag(tag).build();
        let stream = self.docker.push_image(repository, Some(options), credentials);
        let what = format!("push {repository}:{tag}");
        self.follow(stream, what, |info| info.error_detail.map(|d| d.message)).await
    }

    /// Removes the images labelled with `workspace` that `keep` does not name; an image a
    /// container still uses stays.
    pub async fn prune_images(&self, workspace: &str, keep: &[String]) -> Result<(), EngineError> {
        let filters = HashMap::from([("label", vec![format!("{LABEL_WORKSPACE}={workspace}")])]);
        let options = ListImagesOptionsBuilder::new().filters(&filters).build();
        let images =
            self.docker.list_images(Some(options)).await.map_err(self.api("list images"))?;
        for image in images.into_iter().filter(|i| !keep.contains(&i.id)) {
            let options = RemoveImageOptionsBuilder::new().force(false).build();
            if let Err(err) = self.docker.remove_image(&image.id, Some(options), None).await {
                tracing::debug!(image = %image.id, %err, "image kept");
            }
        }
        Ok(())
    }

    /// Creates and starts a container; returns its id.
    pub async fn run(&self, name: &str, body: ContainerCreateBody) -> Result<String, EngineError> {
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(self.api(format!("create container {name}")))?;
        if let Err(err) = self.docker.start_container(&created.id, None).await {
            self.remove(&created.id).await;
            return Err(self.api(format!("start container {name}"))(err));
        }
        Ok(created.id)
    }

    pub async fn state(&self, id: &str) -> Result<ContainerState, EngineError> {
        match self.docker.inspect_container(id, None).await {
            Ok(found) => {
                let state = found.state.unwrap_or_default();
                if state.running == Some(true) {
                    let pid = state.pid.and_then(|p| u32::try_from(p).ok()).filter(|p| *p > 0);
                    Ok(ContainerState::Running { pid })
                } else {
                    Ok(ContainerState::Exited { code: state.exit_code.unwrap_or(-1) })
                }
            }
            Err(err) if is_not_found(&err) => Ok(ContainerState::Gone),
            Err(err) => Err(self.api(format!("inspect container {id}"))(err)),
        }
    }

    /// Asks a container to stop (its stop signal, then SIGKILL after `grace`) and removes it.
    pub async fn stop(&self, id: &str, grace: Duration) {
        let seconds = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::new().t(seconds).build();
        if let Err(err) = self.docker.stop_container(id, Some(options)).await
            && !is_not_found(&err)
        {
            tracing::debug!(container = %id, %err, "stop refused; removing it anyway");
        }
        self.remove(id).await;
    }

    /// Removes a container, running or not.
    pub async fn remove(&self, id: &str) {
        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        if let Err(err) = self.docker.remove_container(id, Some(options)).await
            && !is_not_found(&err)
        {
            tracing::warn!(container = %id, %err, "cannot remove a container");
        }
    }

    /// Appends a container's output to `log` until the container stops.
    pub async fn follow_logs(&self, id: &str, log: &Path) {
        let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(log) else {
            return;
        };
        let options = LogsOptionsBuilder::new().follow(true).stdout(true).stderr(true).build();
        let mut stream = self.docker.logs(id, Some(options));
        while let Some(Ok(output)) = stream.next().await {
            let _ = file.write_all(&output.into_bytes());
        }
    }

    /// Removes every container whose droplet label starts with `prefix`: the containers of one
    /// droplet directory, or of a whole local cloud.
    pub async fn remove_containers_of(&self, prefix: &Path) -> Result<usize, EngineError> {
        let filters = HashMap::from([("label", vec![LABEL_DROPLET.to_string()])]);
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(self.api("list containers"))?;
        let mut removed = 0;
        for container in containers {
            let labels = container.labels.unwrap_or_default();
            let Some(dir) = labels.get(LABEL_DROPLET) else { continue };
            if Path::new(dir).starts_with(prefix)
                && let Some(id) = container.id
            {
                self.remove(&id).await;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Removes the containers of droplets under `prefix` from every engine that runs here, from
/// synchronous code (a test's clean-up, an emergency stop): on a thread of its own, so it works
/// inside a runtime and outside one. An engine that is not there has nothing to remove.
pub fn remove_containers_blocking(prefix: &Path) {
    let prefix = absolute(prefix);
    let removing = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        runtime.block_on(async {
            for platform in [Platform::Docker, Platform::Podman] {
                if !Path::new(&socket_of(platform)).exists() {
                    continue;
                }
                if let Ok(engine) = Engine::connect(platform).await
                    && let Err(err) = engine.remove_containers_of(&prefix).await
                {
                    tracing::warn!(%err, "containers may be left");
                }
            }
        });
    });
    let _ = removing.join();
}

/// A droplet directory as its containers' label names it.
pub fn absolute(dir: &Path) -> std::path::PathBuf {
    dir.canonicalize()
        .or_else(|_| std::env::current_dir().map(|cwd| cwd.join(dir)))
        .unwrap_or_else(|_| dir.to_path_buf())
}

/// The socket `connect` would use for `platform`.
fn socket_of(platform: Platform) -> String {
    let variable = if platform == Platform::Podman { "CONTAINER_HOST" } else { "DOCKER_HOST" };
    std::env::var(variable)
        .ok()
        .and_then(|v| v.strip_prefix("unix://").map(str::to_string))
        .unwrap_or_else(|| default_socket(platform))
}

fn default_socket(platform: Platform) -> String {
    match platform {
        Platform::Podman => match std::env::var("XDG_RUNTIME_DIR") {
            Ok(dir) if !nix::unistd::geteuid().is_root() => format!("{dir}/podman/podman.sock"),
            _ => "/run/podman/podman.sock".into(),
        },
        _ => "/var/run/docker.sock".into(),
    }
}

fn is_not_found(err: &bollard::errors::Error) -> bool {
    matches!(err, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
}

/// The engine's own words where it gave some.
fn reason(err: &bollard::errors::Error) -> String {
    match err {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
