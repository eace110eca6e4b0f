//! Infrastructure on the kubernetes platform: an instance whose definition names an image runs
//! in the cluster, in its project-environment's namespace, as a StatefulSet of one pod with a
//! volume for its data and a Service in front, rendered from
//! `templates/kubernetes-infrastructure.json.j2`. Its configuration file, password included, is
//! a Secret the orchestrator makes; the objects are written to
//! `kubernetes/infrastructure/{project-env}/` for review before they are applied.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use fleet::infrastructure::Instance;

use super::Config;
use crate::agent::services::infra::{self, InfraSpec, InfraView, Places};
use crate::commands::Context;
use crate::control::{FleetKey, sealed};
use crate::release::kubernetes::{self, InfraInputs, Object};

/// Where an instance's volume is mounted in its container.
const DATA_DIR: &str = "/data";
/// Where its configuration file is, as the Secret's only file.
const CONFIG_DIR: &str = "/etc/orchestrator";
/// How long an instance may take to become ready once applied.
const READY: Duration = Duration::from_secs(180);
/// How long the cluster may take to answer one question.
const ANSWER: Duration = Duration::from_secs(15);

/// The Kubernetes name of an instance's objects: `infra-redis`.
pub fn object_name(name: &str) -> String {
    kubernetes::dns_name(&format!("infra-{name}"))
}

/// The namespace of an instance: its project-environment's.
fn namespace(config: &Config, instance: &Instance) -> String {
    let pattern = &config.deploy.kubernetes.namespace;
    kubernetes::namespace(pattern, &instance.project, &instance.environment)
}

/// Where the project's services reach the instance: `infra-redis.hostomatic-uat.svc`.
pub fn host(config: &Config, instance: &Instance) -> String {
    format!("{}.{}.svc", object_name(&instance.name), namespace(config, instance))
}

/// An instance in the cluster, with what it should be and what it is now.
pub struct Planned {
    pub key: String,
    spec: InfraSpec,
    namespace: String,
    name: String,
    objects: Vec<Object>,
    /// Its fingerprint in the cluster and whether it is ready; none where it does not exist.
    pub found: Option<(Option<String>, bool)>,
}

impl Planned {
    /// Whether the cluster runs the instance from another definition.
    pub fn changed(&self) -> bool {
        self.differs(&self.found)
    }

    fn differs(&self, found: &Option<(Option<String>, bool)>) -> bool {
        matches!(found, Some((fingerprint, _)) if fingerprint.as_deref() != Some(&self.spec.fingerprint()))
    }
}

/// The cluster's instances: rendered, checked and (with `write`) written out; then compared
/// with what the cluster runs, when it answers.
pub async fn plan(
    context: &Context,
    config: &Config,
    key: &FleetKey,
    instances: &[(Instance, InfraSpec)],
    write: bool,
) -> anyhow::Result<(Vec<Planned>, Result<kube::Client, String>)> {
    let mut planned = Vec::new();
    for (instance, spec) in instances {
        let objects = objects(context, config, key, instance, spec)?;
        if write {
            let dir = context
                .workspace
                .root()
                .join("kubernetes/infrastructure")
                .join(&instance.project_env)
                .join(&instance.name);
            kubernetes::write(&dir, &objects)?;
        }
        planned.push(Planned {
            key: spec.key(),
            spec: spec.clone(),
            namespace: namespace(config, instance),
            name: object_name(&instance.name),
            objects,
            found: None,
        });
    }
    if planned.is_empty() {
        return Ok((planned, Err("no instance runs in the cluster".into())));
    }
    let client = match connect(config).await {
        Ok(client) => client,
        Err(err) => return Ok((planned, Err(err))),
    };
    for item in &mut planned {
        match ask(kubernetes::stateful_set(&client, &item.namespace, &item.name)).await {
            Ok(found) => item.found = found,
            Err(err) => return Ok((planned, Err(format!("the Kubernetes cluster {err}")))),
        }
    }
    Ok((planned, Ok(client)))
}

/// Applies what is new, and what changed where `confirmed` names it; returns the lines to show.
pub async fn apply(
    planned: &[Planned],
    client: &kube::Client,
    confirmed: &[String],
) -> Vec<String> {
    let mut lines = Vec::new();
    for item in planned {
        let wanted = item.found.is_none() || (item.changed() && confirmed.contains(&item.key));
        if !wanted {
            continue;
        }
        let applied = kubernetes::apply_and_wait(client, &item.namespace, &item.objects, READY);
        if let Err(err) = applied.await {
            lines.push(format!("{} in the cluster: {err}", item.key));
        }
    }
    lines
}

/// What each instance in the cluster is doing now; without a client, unknown.
pub async fn views(planned: &[Planned], client: Option<&kube::Client>) -> Vec<InfraView> {
    let mut views = Vec::new();
    for item in planned {
        let found = match client {
            Some(client) => ask(kubernetes::stateful_set(client, &item.namespace, &item.name))
                .await
                .map_err(|err| format!("the cluster {err}")),
            None => Err("the cluster does not answer".to_string()),
        };
        let (state, healthy) = match &found {
            Ok(Some((_, true))) => ("running".to_string(), true),
            Ok(Some((_, false))) => ("starting".to_string(), false),
            Ok(None) => ("not in the cluster".to_string(), false),
            Err(err) => (format!("unknown: {err}"), false),
        };
        let pending = item
            .differs(&found.ok().flatten())
            .then(|| "changed; restarts once confirmed".to_string());
        views.push(InfraView {
            name: item.spec.name.clone(),
            kind: item.spec.kind,
            project_env: item.spec.project_env.clone(),
            port: item.spec.port,
            fingerprint: item.spec.fingerprint(),
            pid: None,
            state,
            restarts: 0,
            healthy,
            pending,
            refused_change: None,
            image: item.spec.image.as_ref().map(|i| i.reference.clone()),
            cluster: Some(format!("{}/{}", item.namespace, item.name)),
        });
    }
    views
}

/// Restarts an instance's pod, as `kubectl rollout restart` would; returns where it runs,
/// `namespace/name`.
pub async fn restart(config: &Config, instance: &Instance) -> anyhow::Result<String> {
    let (namespace, name) = (namespace(config, instance), object_name(&instance.name));
    let client = connect(config).await.map_err(anyhow::Error::msg)?;
    ask(kubernetes::restart_stateful_set(&client, &namespace, &name))
        .await
        .map_err(|err| anyhow::anyhow!("the Kubernetes cluster {err}"))?;
    kubernetes::wait_stateful_set_ready(&client, &namespace, &name, READY)
        .await
        .map_err(anyhow::Error::msg)?;
    Ok(format!("{namespace}/{name}"))
}

async fn connect(config: &Config) -> Result<kube::Client, String> {
    let context = config.deploy.kubernetes.context.as_deref();
    let (client, url) = kubernetes::connect(context).await.map_err(|err| format!("{err:#}"))?;
    // A first question, so an unreachable cluster is named once rather than per instance.
    ask(client.apiserver_version())
        .await
        .map_err(|err| format!("the Kubernetes cluster at {url} {err}"))?;
    Ok(client)
}

/// One question to the cluster, within [`ANSWER`]; an error says "does not answer" or
/// "refused" and why.
async fn ask<T>(
    question: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(ANSWER, question).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(kube::Error::Api(status))) => Err(format!("refused: {}", status.message)),
        Ok(Err(err)) => Err(format!("does not answer: {}", root_cause(&err))),
        Err(_) => Err(format!("does not answer within {} s", ANSWER.as_secs())),
    }
}

/// The innermost reason of an error: "Connection refused" rather than "client error (Connect)".
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

/// An instance's objects: its namespace, the Secret holding its configuration file, then what
/// the template renders.
pub(super) fn objects(
    context: &Context,
    config: &Config,
    key: &FleetKey,
    instance: &Instance,
    spec: &InfraSpec,
) -> anyhow::Result<Vec<Object>> {
    let Some(image) = &spec.image else { bail!("{} names no image", spec.key()) };
    let namespace = namespace(config, instance);
    let name = object_name(&instance.name);
    let file = format!("{}.conf", instance.name);
    let places = Places {
        host: "0.0.0.0".into(),
        port: spec.port,
        data_dir: DATA_DIR.into(),
        config_file: format!("{CONFIG_DIR}/{file}"),
    };
    let at = format!("infrastructure.{}.process", instance.name);
    let command =
        places.render(&spec.command, None).map_err(|err| anyhow::anyhow!("{at}.command: {err}"))?;
    let command_args = shlex::split(command.trim_start().trim_start_matches("exec "))
        .with_context(|| format!("{at}.command has an unclosed quote"))?;
    let mut all = vec![kubernetes::namespace_object(&namespace)];
    let config_secret = match &spec.config {
        Some(template) => {
            let password = match &spec.password {
                Some(sealed) => Some(
                    sealed::open(
                        key,
                        &infra::password_purpose(&spec.name, &spec.project_env),
                        sealed,
                    )
                    .context("cannot open a password sealed a moment ago")?,
                ),
                None => None,
            };
            let text = places
                .render(template, password.as_ref().map(|p| p.expose()))
                .map_err(|err| anyhow::anyhow!("{at}.config: {err}"))?;
            let secret_name = format!("{name}-config");
            let files = BTreeMap::from([(file, crate::secret::Secret::new(text))]);
            all.push(kubernetes::secret(&namespace, &secret_name, &files));
            Some(secret_name)
        }
        None => None,
    };
    let labels = BTreeMap::from([
        ("app.kubernetes.io/name", name.clone()),
        ("app.kubernetes.io/part-of", kubernetes::dns_name(&instance.project)),
        ("app.kubernetes.io/component", "infrastructure".to_string()),
        ("app.kubernetes.io/managed-by", "orchestrator".to_string()),
    ]);
    let kind = format!("{:?}", spec.kind).to_lowercase();
    let inputs = InfraInputs {
        infrastructure: &instance.name,
        kind: &kind,
        project: &instance.project,
        environment: &instance.environment,
        name,
        namespace: namespace.clone(),
        image: &image.reference,
        port: spec.port,
        command_args,
        data_dir: DATA_DIR,
        config_dir: CONFIG_DIR,
        config_secret,
        fingerprint: spec.fingerprint(),
        labels,
    };
    let file = "kubernetes-infrastructure.json.j2";
    let path = context.workspace.templates_dir().join(file);
    let (origin, template) = match std::fs::read_to_string(&path) {
        Ok(text) => (path.display().to_string(), text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => (
            format!("the built-in {file}"),
            crate::commands::setup::TEMPLATE_KUBERNETES_INFRASTRUCTURE.to_string(),
        ),
        Err(err) => bail!("cannot read {}: {err}", path.display()),
    };
    let subject = format!("{} for {}", instance.name, instance.project_env);
    let rendered = kubernetes::render(&origin, &template, &subject, &namespace, &inputs)?;
    for kind in ["StatefulSet", "Service"] {
        let made = rendered.iter().any(|object| {
            let value = object.to_value();
            value["kind"] == kind && value["metadata"]["name"] == inputs.name.as_str()
        });
        if !made {
            bail!(
                "{origin} rendered for {subject}: it makes no {kind} named {} (the services reach \
                 the instance through it)",
                inputs.name
            );
        }
    }
    all.extend(rendered);
    Ok(all)
}
