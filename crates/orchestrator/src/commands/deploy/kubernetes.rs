//! Releases on the kubernetes platform: the images built for the release are named for the
//! cluster (and pushed to `kubernetes.image_registry` when one is set), every service's objects
//! and Secret are written to `kubernetes/{project-env}/` and applied to the cluster, and the
//! release serves once every Deployment has rolled out. A release that does not roll out puts
//! the previous release's objects back.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use fleet::release::Release;

use super::{Stopped, Target};
use crate::commands::Context;
use crate::control::sealed;
use crate::release::image;
use crate::release::kubernetes::{self, Inputs, Object};
use crate::secrets;

/// Time for the cluster to pull images and schedule pods, beyond the health checks.
const SCHEDULING: Duration = Duration::from_secs(120);

/// The namespace of the target's project-environment.
pub fn namespace(target: &Target) -> String {
    let pattern = &target.config.deploy.kubernetes.namespace;
    kubernetes::namespace(pattern, &target.project, &target.environment)
}

/// Where the cluster finds a service's image of `version`: repository and tag.
fn reference(target: &Target, service: &str, version: &str) -> (String, String) {
    let name = format!("{}-{}", target.project.to_lowercase(), service.to_lowercase());
    let repository = match &target.config.deploy.kubernetes.image_registry {
        Some(registry) => format!("{}/{name}", registry.trim_end_matches('/')),
        None => format!("orchestrator/{name}"),
    };
    (repository, version.to_string())
}

/// One service's objects (no Secret), rendered from the template and checked.
pub fn service_objects(
    target: &Target,
    release: &Release,
    service: &str,
) -> anyhow::Result<Vec<Object>> {
    let config = &target.config.deploy.projects[&target.project].services[service];
    let record = target.state.project_services(&target.project_env).and_then(|s| s.get(service));
    let port = record.and_then(|r| r.port).filter(|_| config.kind == fleet::ServiceKind::Web);
    let replicas = record.map_or(1, |r| r.assigned_droplets.len().max(1));
    let name = kubernetes::dns_name(service);
    let (repository, tag) = reference(target, service, &release.version);
    let mut env = vec![
        ("HOST", "0.0.0.0".to_string()),
        ("VERSION", release.version.clone()),
        ("PROJECT", target.project_env.clone()),
        ("SERVICE", service.to_string()),
    ];
    if let Some(port) = port {
        env.push(("PORT", port.to_string()));
    }
    let mut env: Vec<BTreeMap<&'static str, String>> = env
        .into_iter()
        .map(|(k, v)| BTreeMap::from([("name", k.to_string()), ("value", v)]))
        .collect();
    env.extend(
        target
            .wiring
            .iter()
            .map(|(k, v)| BTreeMap::from([("name", k.clone()), ("value", v.clone())])),
    );
    let labels = BTreeMap::from([
        ("app.kubernetes.io/name", name.clone()),
        ("app.kubernetes.io/part-of", kubernetes::dns_name(&target.project)),
        ("app.kubernetes.io/managed-by", "orchestrator".to_string()),
    ]);
    let inputs = Inputs {
        project: &target.project,
        environment: &target.environment,
        service,
        version: &release.version,
        secret_name: format!("{name}-secrets"),
        name,
        namespace: namespace(target),
        image: format!("{repository}:{tag}"),
        replicas,
        port,
        command_args: image::command_args(config.command.as_deref())?,
        health: &config.health_check,
        env,
        labels,
    };
    let (origin, template) = &target.start_template;
    kubernetes::render(origin, template, service, &inputs.namespace, &inputs)
}

/// What the release record keeps of how a service ran: its objects, as JSON.
pub fn recorded(target: &Target, release: &Release, service: &str) -> anyhow::Result<String> {
    let objects = service_objects(target, release, service)?;
    let values: Vec<serde_json::Value> = objects.iter().map(Object::to_value).collect();
    Ok(serde_json::Value::Array(values).to_string())
}

/// Every object of the release: the namespace, then each service's Secret and objects.
fn objects(target: &Target, release: &Release) -> anyhow::Result<Vec<Object>> {
    let namespace = namespace(target);
    let mut all = vec![kubernetes::namespace_object(&namespace)];
    for service in target.config.deploy.projects[&target.project].services.keys() {
        let mut values = BTreeMap::new();
        for (variable, value) in target.secrets.get(service).into_iter().flatten() {
            let opened = sealed::open(&target.key, &format!("secret {variable}"), value)
                .context("cannot open a secret sealed a moment ago")?;
            values.insert(variable.clone(), opened);
        }
        let secret_name = format!("{}-secrets", kubernetes::dns_name(service));
        all.push(kubernetes::secret(&namespace, &secret_name, &values));
        all.extend(service_objects(target, release, service)?);
    }
    Ok(all)
}

/// Names each image of the release for the cluster, and pushes it where a registry is set.
async fn publish_images(target: &Target<'_>, release: &Release) -> anyhow::Result<()> {
    let engine = target.engine.as_ref().context("no container engine to name the images with")?;
    let registry = target.config.deploy.kubernetes.image_registry.is_some();
    let login = match (
        secrets::resolve(
            &target.config.env,
            &target.project,
            &target.environment,
            "registry_username",
        ),
        secrets::resolve(
            &target.config.env,
            &target.project,
            &target.environment,
            "registry_password",
        ),
    ) {
        (Ok(user), Ok(password)) => Some((user.value.expose().to_string(), password.value)),
        _ => None,
    };
    for (service, artifact) in &release.artifacts {
        let Some(id) = &artifact.image else { continue };
        let (repository, tag) = reference(target, service, &release.version);
        engine.tag(id, &repository, &tag).await?;
        if registry {
            engine.push(&repository, &tag, login.clone()).await?;
        }
    }
    Ok(())
}

/// Rolls the release out to the cluster; on a failure, applies `previous` again.
pub async fn roll_out(
    context: &Context,
    target: &Target<'_>,
    release: &mut Release,
    previous: Option<&Release>,
) -> Result<(), Stopped> {
    let stop =
        |err: anyhow::Error| Stopped { reason: format!("{err:#}"), details: format!("{err:#}") };
    let namespace = namespace(target);
    let release_objects = objects(target, release).map_err(stop)?;
    let dir = context.workspace.root().join("kubernetes").join(&target.project_env);
    kubernetes::write(&dir, &release_objects).map_err(stop)?;
    if !context.json {
        crate::say!(
            "The Kubernetes objects of {} {} are in {} (the Secrets' files readable by you alone).",
            target.project_env,
            release.version,
            dir.display()
        );
    }
    publish_images(target, release).await.map_err(stop)?;
    let client = kubernetes::client(target.config.deploy.kubernetes.context.as_deref())
        .await
        .map_err(stop)?;
    let services = &target.config.deploy.projects[&target.project].services;
    let checks = services.values().map(|s| {
        let health = &s.health_check;
        u64::from(health.interval_seconds.max(1)) * u64::from(health.retries.max(1))
    });
    let timeout = Duration::from_secs(checks.max().unwrap_or(30)) + SCHEDULING;
    match kubernetes::apply_and_wait(&client, &namespace, &release_objects, timeout).await {
        Ok(()) => {
            release.droplets = vec![format!("kubernetes:{namespace}")];
            Ok(())
        }
        Err(why) => {
            if let Some(previous) = previous
                && let Ok(back) = objects(target, previous)
            {
                match kubernetes::apply_and_wait(&client, &namespace, &back, timeout).await {
                    Ok(()) => crate::say!("{namespace} is back on {}.", previous.version),
                    Err(err) => crate::say!("Warning: {namespace} could not go back: {err}"),
                }
            }
            let first = why.lines().next().unwrap_or_default().to_string();
            Err(Stopped { reason: first, details: why })
        }
    }
}
