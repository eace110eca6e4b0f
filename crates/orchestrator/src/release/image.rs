//! Images of a release on the container platforms: built once from the service's artifact (its
//! packed build context) on the administrator's engine, recorded by id, and handed to a
//! droplet's engine only when it lacks them. Promotions and rollbacks run the recorded id.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use fleet::deploy_config::{Platform, ServiceConfig};

use crate::agent::services::ContainerImage;
use crate::control::AgentClient;
use crate::engine::{self, Engine};

/// How long a droplet may take to load an image.
const LOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// The Containerfile's path inside the build context, from `containerfile_path` (relative to
/// the project's tree, `Dockerfile` in the context when not set).
pub fn containerfile_in_context(
    project: &str,
    service: &str,
    config: &ServiceConfig,
    context: &str,
) -> anyhow::Result<String> {
    let context = context.trim_end_matches('/');
    let Some(path) = &config.containerfile_path else { return Ok("Dockerfile".into()) };
    let inside = match context {
        "" | "." => Some(path.trim_start_matches("./")),
        _ => path.strip_prefix(context).and_then(|rest| rest.strip_prefix('/')),
    };
    match inside {
        Some(relative) if !relative.is_empty() && !relative.split('/').any(|p| p == "..") => {
            Ok(relative.to_string())
        }
        _ => bail!(
            "deployment_config.json at projects.{project}.services.{service}.containerfile_path: \
             {path:?} is not a file inside the build context {context:?}; the image is built from \
             the build context alone"
        ),
    }
}

/// Builds the image of one service from its packed build context.
#[allow(clippy::too_many_arguments)]
pub async fn build(
    engine: &Engine,
    workspace: &str,
    project: &str,
    service: &str,
    version: &str,
    containerfile: &str,
    build_args: &std::collections::BTreeMap<String, String>,
    context: Vec<u8>,
) -> anyhow::Result<String> {
    let tag =
        format!("orchestrator/{}-{}:{version}", project.to_lowercase(), service.to_lowercase());
    let labels = HashMap::from([
        (engine::LABEL_WORKSPACE.to_string(), workspace.to_string()),
        ("orchestrator.project".to_string(), project.to_string()),
        ("orchestrator.service".to_string(), service.to_string()),
    ]);
    let args: HashMap<String, String> =
        build_args.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    engine
        .build(context, containerfile, &tag, &args, &labels)
        .await
        .with_context(|| format!("building the image of {project} {service} ({containerfile})"))
}

/// Makes sure the droplet's engine holds `image`, sending it from `engine` if not.
pub async fn ship(
    client: &AgentClient,
    base: &str,
    engine: &Engine,
    image: &ContainerImage,
) -> Result<(), String> {
    let answer: serde_json::Value = client
        .post(base, "/v1/images/check", image, LOAD_TIMEOUT)
        .await
        .map_err(|err| err.to_string())?;
    if answer["present"].as_bool() == Some(true) {
        return Ok(());
    }
    let archive = engine.save(&image.id).await.map_err(|err| err.to_string())?;
    let path = format!("/v1/images/{}", image.engine.as_str());
    client.post_bytes(base, &path, archive, LOAD_TIMEOUT).await.map_err(|err| err.to_string())?;
    Ok(())
}

/// Checks rendered container settings and returns them compact: a JSON object of the Engine
/// API's container fields, on the droplet's network, and without what the agent sets itself.
pub fn settings(origin: &str, service: &str, rendered: &str) -> anyhow::Result<String> {
    let value: serde_json::Value = serde_json::from_str(rendered)
        .with_context(|| format!("{origin} rendered for {service} is not JSON:\n{rendered}"))?;
    let Some(object) = value.as_object() else {
        bail!("{origin} rendered for {service} is not a JSON object");
    };
    for owned in ["Image", "Env"] {
        if object.contains_key(owned) {
            bail!(
                "{origin} sets {owned:?}; the agent sets it (the release's image, its environment)"
            );
        }
    }
    let network = object.get("HostConfig").and_then(|h| h.get("NetworkMode"));
    if network.is_some_and(|mode| mode != "host") {
        bail!(
            "{origin} sets HostConfig.NetworkMode {}; only \"host\" works: each version listens \
             on the droplet's address at the port the agent gives it",
            network.map(ToString::to_string).unwrap_or_default()
        );
    }
    serde_json::from_value::<bollard::models::ContainerCreateBody>(value.clone()).with_context(
        || format!("{origin} rendered for {service} has a field of the wrong type"),
    )?;
    Ok(value.to_string())
}

/// The words of a configured command, for a container's `Cmd`.
pub fn command_args(command: Option<&str>) -> anyhow::Result<Option<Vec<String>>> {
    match command.map(str::trim).filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(command) => shlex::split(command)
            .map(Some)
            .with_context(|| format!("the command {command:?} has an unterminated quote")),
    }
}

/// The platform a release was built for, as its record names it.
pub fn platform_of(recorded: &str) -> Option<Platform> {
    [Platform::Docker, Platform::Podman, Platform::Kubernetes, Platform::Process]
        .into_iter()
        .find(|p| p.as_str() == recorded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(containerfile: Option<&str>) -> ServiceConfig {
        serde_json::from_value(serde_json::json!({"containerfile_path": containerfile}))
            .expect("a service")
    }

    #[test]
    fn the_containerfile_is_found_inside_its_build_context() {
        let backend = service(Some("backend/Dockerfile"));
        let found = containerfile_in_context("p", "backend", &backend, "backend/");
        assert_eq!(found.expect("inside"), "Dockerfile");
        let root = service(Some("workers/Dockerfile"));
        assert_eq!(
            containerfile_in_context("p", "w", &root, ".").expect("inside"),
            "workers/Dockerfile"
        );
        assert_eq!(
            containerfile_in_context("p", "w", &service(None), "x").expect("default"),
            "Dockerfile"
        );
    }

    #[test]
    fn a_containerfile_outside_its_build_context_is_refused_naming_the_field() {
        let outside = service(Some("frontend/Dockerfile"));
        let err = containerfile_in_context("p", "backend", &outside, "backend")
            .expect_err("outside")
            .to_string();
        assert!(err.contains("projects.p.services.backend.containerfile_path"), "{err}");
        let climbing = service(Some("backend/../Dockerfile"));
        assert!(containerfile_in_context("p", "backend", &climbing, "backend").is_err());
    }

    #[test]
    fn container_settings_must_be_an_object_on_the_host_network() {
        let good = settings(
            "t",
            "s",
            r#"{"Cmd": ["python3", "app.py"], "HostConfig": {"NetworkMode": "host"}}"#,
        );
        assert_eq!(
            good.expect("valid"),
            r#"{"Cmd":["python3","app.py"],"HostConfig":{"NetworkMode":"host"}}"#
        );
        let bridge = settings("t", "s", r#"{"HostConfig": {"NetworkMode": "bridge"}}"#);
        assert!(bridge.expect_err("bridge").to_string().contains("only \"host\""));
        assert!(settings("t", "s", "[1]").is_err());
        assert!(settings("t", "s", "{").is_err());
        assert!(settings("t", "s", r#"{"Env": ["A=b"]}"#).is_err());
        assert!(settings("t", "s", r#"{"Cmd": "not a list"}"#).is_err());
    }

    #[test]
    fn a_command_is_split_as_a_shell_would() {
        assert_eq!(
            command_args(Some("python3 'email processor.py' -v")).expect("splits"),
            Some(vec!["python3".into(), "email processor.py".into(), "-v".into()])
        );
        assert_eq!(command_args(Some("  ")).expect("empty"), None);
        assert!(command_args(Some("python3 'open")).is_err());
    }
}
