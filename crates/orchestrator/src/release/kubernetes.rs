//! The kubernetes platform: each service of a release becomes Kubernetes objects rendered from
//! `templates/kubernetes.json.j2`, checked against the Kubernetes schemas before anything is
//! sent, written to disk for review, and applied to the cluster of the user's kubeconfig with
//! server-side apply; the release serves once every Deployment has rolled out.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams, LogParams, Patch, PatchParams};
use serde::Serialize;
use serde_json::Value;

use crate::secret::Secret as SecretValue;

/// Who owns the fields the orchestrator applies.
const FIELD_MANAGER: &str = "orchestrator";
/// The annotation holding what an infrastructure instance's StatefulSet was made from.
pub const FINGERPRINT: &str = "orchestrator/fingerprint";
/// Lines of a failing pod's log shown with the failure.
const LOG_LINES: i64 = 50;

/// One object of a release, as its kind's schema reads it.
#[derive(Debug, Clone)]
pub enum Object {
    Namespace(Box<Namespace>),
    Secret(Box<Secret>),
    ConfigMap(Box<ConfigMap>),
    Service(Box<Service>),
    Deployment(Box<Deployment>),
    StatefulSet(Box<StatefulSet>),
    PodDisruptionBudget(Box<PodDisruptionBudget>),
    HorizontalPodAutoscaler(Box<HorizontalPodAutoscaler>),
}

impl Object {
    /// Reads a rendered object, refusing kinds the platform does not apply, fields their
    /// schema does not have and values of the wrong type, each named by its path.
    pub fn check(origin: &str, value: Value) -> anyhow::Result<Object> {
        let kind = value["kind"].as_str().unwrap_or_default().to_string();
        let name = value["metadata"]["name"].as_str().unwrap_or("(no name)").to_string();
        let at = format!("{origin}: {kind} {name}");
        let object = match kind.as_str() {
            "Namespace" => Object::Namespace(Box::new(typed(&at, &value)?)),
            "Secret" => Object::Secret(Box::new(typed(&at, &value)?)),
            "ConfigMap" => Object::ConfigMap(Box::new(typed(&at, &value)?)),
            "Service" => Object::Service(Box::new(typed(&at, &value)?)),
            "Deployment" => Object::Deployment(Box::new(typed(&at, &value)?)),
            "StatefulSet" => Object::StatefulSet(Box::new(typed(&at, &value)?)),
            "PodDisruptionBudget" => Object::PodDisruptionBudget(Box::new(typed(&at, &value)?)),
            "HorizontalPodAutoscaler" => {
                Object::HorizontalPodAutoscaler(Box::new(typed(&at, &value)?))
            }
            "" => bail!("{origin}: an object without \"kind\""),
            other => bail!(
                "{origin}: kind {other:?} is not applied by the orchestrator (Deployment, \
                 StatefulSet, Service, ConfigMap, PodDisruptionBudget, HorizontalPodAutoscaler)"
            ),
        };
        let mut unknown = Vec::new();
        unknown_fields(&value, &object.to_value(), "", &mut unknown);
        if !unknown.is_empty() {
            bail!("{at}: no such field in the {kind} schema: {}", unknown.join(", "));
        }
        if name == "(no name)" {
            bail!("{at}: metadata.name is missing");
        }
        Ok(object)
    }

    pub fn to_value(&self) -> Value {
        let value = match self {
            Object::Namespace(o) => serde_json::to_value(o),
            Object::Secret(o) => serde_json::to_value(o),
            Object::ConfigMap(o) => serde_json::to_value(o),
            Object::Service(o) => serde_json::to_value(o),
            Object::Deployment(o) => serde_json::to_value(o),
            Object::StatefulSet(o) => serde_json::to_value(o),
            Object::PodDisruptionBudget(o) => serde_json::to_value(o),
            Object::HorizontalPodAutoscaler(o) => serde_json::to_value(o),
        };
        value.expect("Kubernetes objects always serialise")
    }

    fn kind_and_name(&self) -> (String, String) {
        let value = self.to_value();
        let kind = value["kind"].as_str().unwrap_or_default().to_string();
        (kind, value["metadata"]["name"].as_str().unwrap_or_default().to_string())
    }

    /// Applies the object with server-side apply.
    async fn apply(&self, client: &kube::Client, namespace: &str) -> Result<(), kube::Error> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let (_, name) = self.kind_and_name();
        match self {
            Object::Namespace(o) => {
                patch(Api::<Namespace>::all(client.clone()), &name, &params, o.as_ref()).await
            }
            Object::Secret(o) => patch(here(client, namespace), &name, &params, o.as_ref()).await,
            Object::ConfigMap(o) => {
                patch(here(client, namespace), &name, &params, o.as_ref()).await
            }
            Object::Service(o) => patch(here(client, namespace), &name, &params, o.as_ref()).await,
            Object::Deployment(o) => {
                patch(here(client, namespace), &name, &params, o.as_ref()).await
            }
            Object::StatefulSet(o) => {
                patch(here(client, namespace), &name, &params, o.as_ref()).await
            }
            Object::PodDisruptionBudget(o) => {
                patch(here(client, namespace), &name, &params, o.as_ref()).await
            }
            Object::HorizontalPodAutoscaler(o) => {
                patch(here(client, namespace), &name, &params, o.as_ref()).await
            }
        }
    }
}

/// The API of a namespaced kind, in `namespace`.
fn here<K>(client: &kube::Client, namespace: &str) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    Api::namespaced(client.clone(), namespace)
}

async fn patch<K>(
    api: Api<K>,
    name: &str,
    params: &PatchParams,
    object: &K,
) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + Serialize + std::fmt::Debug,
{
    api.patch(name, params, &Patch::Apply(object)).await.map(|_| ())
}

fn typed<T: serde::de::DeserializeOwned>(at: &str, value: &Value) -> anyhow::Result<T> {
    serde_path_to_error::deserialize(value.clone())
        .map_err(|err| anyhow::anyhow!("{at}: at {}: {}", err.path(), err.inner()))
}

/// Paths of `given` that `kept` (the same object read by its schema and written again) lost.
fn unknown_fields(given: &Value, kept: &Value, path: &str, found: &mut Vec<String>) {
    match (given, kept) {
        (Value::Object(given), Value::Object(kept)) => {
            for (key, value) in given {
                let here = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                match kept.get(key) {
                    Some(inner) => unknown_fields(value, inner, &here, found),
                    None if value.is_null() => {}
                    None => found.push(here),
                }
            }
        }
        (Value::Array(given), Value::Array(kept)) => {
            for (index, value) in given.iter().enumerate() {
                if let Some(inner) = kept.get(index) {
                    unknown_fields(value, inner, &format!("{path}[{index}]"), found);
                }
            }
        }
        _ => {}
    }
}

/// A name Kubernetes accepts: lower-case letters, digits and `-`.
pub fn dns_name(text: &str) -> String {
    let name: String = text
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name.trim_matches('-').chars().take(63).collect()
}

/// The namespace of a project-environment.
pub fn namespace(pattern: &str, project: &str, environment: &str) -> String {
    dns_name(&pattern.replace("{project}", project).replace("{environment}", environment))
}

/// What one service's objects are rendered from.
#[derive(Debug, Serialize)]
pub struct Inputs<'a> {
    pub project: &'a str,
    pub environment: &'a str,
    pub service: &'a str,
    pub version: &'a str,
    pub name: String,
    pub namespace: String,
    pub image: String,
    pub replicas: usize,
    pub port: Option<u16>,
    pub command_args: Option<Vec<String>>,
    pub health: &'a fleet::deploy_config::HealthCheck,
    pub env: Vec<BTreeMap<&'static str, String>>,
    pub secret_name: String,
    pub labels: BTreeMap<&'static str, String>,
}

/// Renders and checks the objects of one service (or infrastructure instance), `subject`,
/// each of which must sit in `namespace`.
pub fn render<T: Serialize>(
    origin: &str,
    template: &str,
    subject: &str,
    namespace: &str,
    inputs: &T,
) -> anyhow::Result<Vec<Object>> {
    let mut environment = minijinja::Environment::new();
    environment.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let rendered =
        environment.render_str(template, minijinja::value::Serde(inputs)).map_err(|err| {
            anyhow::anyhow!(
                "{origin}, line {}: {}",
                err.line().unwrap_or(0),
                err.detail().map_or_else(|| err.kind().to_string(), str::to_string)
            )
        })?;
    let value: Value = serde_json::from_str(&rendered)
        .with_context(|| format!("{origin} rendered for {subject} is not JSON:\n{rendered}"))?;
    let Value::Array(items) = value else {
        bail!("{origin} rendered for {subject} is not a JSON list of objects");
    };
    let origin = format!("{origin} rendered for {subject}");
    let objects: Vec<Object> =
        items.into_iter().map(|item| Object::check(&origin, item)).collect::<Result<_, _>>()?;
    for object in &objects {
        let value = object.to_value();
        let placed = value["metadata"]["namespace"].as_str();
        if value["kind"] != "Namespace" && placed != Some(namespace) {
            bail!(
                "{origin}: {} {} is not in the namespace {namespace}",
                value["kind"].as_str().unwrap_or_default(),
                value["metadata"]["name"].as_str().unwrap_or_default(),
            );
        }
    }
    Ok(objects)
}

/// What one infrastructure instance's objects are rendered from.
#[derive(Debug, Serialize)]
pub struct InfraInputs<'a> {
    pub infrastructure: &'a str,
    pub kind: &'a str,
    pub project: &'a str,
    pub environment: &'a str,
    pub name: String,
    pub namespace: String,
    pub image: &'a str,
    pub port: u16,
    pub command_args: Vec<String>,
    pub data_dir: &'a str,
    pub config_dir: &'a str,
    /// The Secret holding the configuration file, when the definition has one.
    pub config_secret: Option<String>,
    pub fingerprint: String,
    pub labels: BTreeMap<&'static str, String>,
}

/// A Secret of string values by key: a service's secrets by variable name, or the files of an
/// infrastructure instance's configuration by file name.
pub fn secret(namespace: &str, name: &str, values: &BTreeMap<String, SecretValue>) -> Object {
    let data: BTreeMap<&String, &str> = values.iter().map(|(k, v)| (k, v.expose())).collect();
    let value = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "stringData": data,
    });
    Object::Secret(Box::new(
        serde_json::from_value(value).expect("a Secret of strings is always valid"),
    ))
}

/// The namespace object itself.
pub fn namespace_object(name: &str) -> Object {
    let value =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    Object::Namespace(Box::new(serde_json::from_value(value).expect("a namespace is always valid")))
}

/// Writes every object to `dir` as `{kind}-{name}.json`, Secrets readable by the owner alone;
/// returns the files.
pub fn write(dir: &Path, objects: &[Object]) -> anyhow::Result<Vec<PathBuf>> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    for object in objects {
        let (kind, name) = object.kind_and_name();
        let path = dir.join(format!("{}-{name}.json", kind.to_lowercase()));
        let text = serde_json::to_vec_pretty(&object.to_value()).expect("objects serialise");
        let mode = if matches!(object, Object::Secret(_)) { 0o600 } else { 0o644 };
        std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot protect {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The cluster of the user's kubeconfig (`KUBECONFIG`, else `~/.kube/config`, else the one a
/// pod runs in), in `context` when one is named.
pub async fn client(context: Option<&str>) -> anyhow::Result<kube::Client> {
    connect(context).await.map(|(client, _)| client)
}

/// The same, with the address of the cluster's API server, for messages.
pub async fn connect(context: Option<&str>) -> anyhow::Result<(kube::Client, String)> {
    let config = match context {
        Some(context) => {
            let options = kube::config::KubeConfigOptions {
                context: Some(context.to_string()),
                ..Default::default()
            };
            kube::Config::from_kubeconfig(&options)
                .await
                .with_context(|| format!("cannot read the kubeconfig context {context}"))?
        }
        None => kube::Config::infer().await.context(
            "no Kubernetes cluster is configured: set KUBECONFIG or write ~/.kube/config",
        )?,
    };
    let url = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).context("cannot make a client for the cluster")?;
    Ok((client, url))
}

/// Applies the objects in order, then waits until every Deployment among them has rolled out
/// and every StatefulSet is ready.
pub async fn apply_and_wait(
    client: &kube::Client,
    namespace: &str,
    objects: &[Object],
    timeout: Duration,
) -> Result<(), String> {
    for object in objects {
        let (kind, name) = object.kind_and_name();
        object
            .apply(client, namespace)
            .await
            .map_err(|err| format!("cannot apply {kind} {name} to the cluster: {err}"))?;
    }
    for object in objects {
        match object {
            Object::Deployment(deployment) => {
                let name = deployment.metadata.name.clone().unwrap_or_default();
                wait_rolled_out(client, namespace, &name, timeout).await?;
            }
            Object::StatefulSet(set) => {
                let name = set.metadata.name.clone().unwrap_or_default();
                wait_stateful_set_ready(client, namespace, &name, timeout).await?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// A StatefulSet's fingerprint annotation and whether its pods are all ready, if it exists.
pub async fn stateful_set(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Option<(Option<String>, bool)>, kube::Error> {
    let api = Api::<StatefulSet>::namespaced(client.clone(), namespace);
    let Some(found) = api.get_opt(name).await? else { return Ok(None) };
    let fingerprint = found.metadata.annotations.as_ref().and_then(|a| a.get(FINGERPRINT)).cloned();
    let wanted = found.spec.replicas.unwrap_or(1);
    let status = found.status.unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or(0) >= wanted
        && status.updated_replicas.unwrap_or(0) >= wanted
        && status.observed_generation.unwrap_or(0) >= found.metadata.generation.unwrap_or(0);
    Ok(Some((fingerprint, ready)))
}

/// Restarts a StatefulSet's pods, one by one, as `kubectl rollout restart` does.
pub async fn restart_stateful_set(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<(), kube::Error> {
    let api = Api::<StatefulSet>::namespaced(client.clone(), namespace);
    let now = crate::clock::now_rfc3339();
    let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": now
    }}}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.map(|_| ())
}

/// Waits until the StatefulSet's pods are all ready.
pub async fn wait_stateful_set_ready(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::from("no status yet");
    while tokio::time::Instant::now() < deadline {
        match stateful_set(client, namespace, name).await {
            Ok(Some((_, true))) => return Ok(()),
            Ok(Some((_, false))) => last = "not ready".into(),
            Ok(None) => last = "not there".into(),
            Err(err) => last = err.to_string(),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let logs = newest_pod_logs(client, namespace, name).await;
    Err(format!(
        "StatefulSet {name} in {namespace} was not ready within {} s ({last}).{logs}",
        timeout.as_secs()
    ))
}

/// Waits until the Deployment's newest generation runs everywhere and is available.
async fn wait_rolled_out(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<(), String> {
    let api = Api::<Deployment>::namespaced(client.clone(), namespace);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::from("no status yet");
    while tokio::time::Instant::now() < deadline {
        match api.get_status(name).await {
            Ok(deployment) => {
                let wanted = deployment.spec.replicas.unwrap_or(1);
                let generation = deployment.metadata.generation.unwrap_or(0);
                let status = deployment.status.unwrap_or_default();
                let done = status.observed_generation.unwrap_or(0) >= generation
                    && status.updated_replicas.unwrap_or(0) == wanted
                    && status.available_replicas.unwrap_or(0) == wanted
                    && status.replicas.unwrap_or(0) == wanted;
                if done {
                    return Ok(());
                }
                last = format!(
                    "{} of {wanted} updated, {} available",
                    status.updated_replicas.unwrap_or(0),
                    status.available_replicas.unwrap_or(0)
                );
            }
            Err(err) => last = err.to_string(),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let logs = newest_pod_logs(client, namespace, name).await;
    Err(format!(
        "Deployment {name} in {namespace} did not roll out within {} s ({last}); the version \
         before keeps serving until its pods are replaced.{logs}",
        timeout.as_secs()
    ))
}

/// The newest lines of a pod of the Deployment, for the failure message.
async fn newest_pod_logs(client: &kube::Client, namespace: &str, name: &str) -> String {
    let pods = Api::<Pod>::namespaced(client.clone(), namespace);
    let selector = format!("app.kubernetes.io/name={name}");
    let Ok(list) = pods.list(&ListParams::default().labels(&selector)).await else {
        return String::new();
    };
    let Some(newest) = list.items.iter().max_by_key(|p| p.metadata.creation_timestamp.clone())
    else {
        return String::new();
    };
    let pod = newest.metadata.name.clone().unwrap_or_default();
    let params = LogParams { tail_lines: Some(LOG_LINES), ..Default::default() };
    match pods.logs(&pod, &params).await {
        Ok(text) => format!(
            "\nThe last lines of pod {pod}:\n  {}",
            text.lines().collect::<Vec<_>>().join("\n  ")
        ),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(extra: Value) -> Value {
        let mut value = serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "backend", "namespace": "hostomatic-uat"},
            "spec": {
                "selector": {"matchLabels": {"app": "backend"}},
                "template": {"spec": {"containers": [{"name": "backend", "image": "i:1"}]}}
            }
        });
        if let (Value::Object(base), Value::Object(extra)) = (&mut value["spec"], extra) {
            base.extend(extra);
        }
        value
    }

    #[test]
    fn a_valid_deployment_passes_the_schema_check() {
        let object = Object::check("t", deployment(serde_json::json!({"replicas": 2})));
        assert!(matches!(object, Ok(Object::Deployment(_))), "{object:?}");
    }

    #[test]
    fn an_unknown_field_is_refused_with_its_path() {
        let mut value = deployment(serde_json::json!({}));
        value["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always".into();
        let err = Object::check("t", value).expect_err("unknown").to_string();
        assert!(
            err.contains("no such field in the Deployment schema: spec.template.spec.containers[0].imagePullPolicyy"),
            "{err}"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_is_refused_with_its_path() {
        let err = Object::check("t", deployment(serde_json::json!({"replicas": "two"})))
            .expect_err("wrong type")
            .to_string();
        assert!(err.contains("at spec.replicas"), "{err}");
    }

    #[test]
    fn kinds_it_does_not_apply_are_refused() {
        let value =
            serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}});
        assert!(Object::check("t", value).expect_err("pod").to_string().contains("\"Pod\""));
    }

    #[test]
    fn names_become_kubernetes_names() {
        assert_eq!(dns_name("worker_email"), "worker-email");
        assert_eq!(namespace("{project}-{environment}", "Hostomatic", "uat"), "hostomatic-uat");
    }

    #[test]
    fn secrets_are_written_for_the_owner_alone() {
        let dir = tempfile::tempdir().expect("a directory");
        let values = BTreeMap::from([("DB_PASSWORD".to_string(), SecretValue::new("s3cret"))]);
        let objects = vec![namespace_object("p-uat"), secret("p-uat", "backend-secrets", &values)];
        let written = write(dir.path(), &objects).expect("writes");
        let secret_file = written.iter().find(|p| p.ends_with("secret-backend-secrets.json"));
        let secret_file = secret_file.expect("the Secret's file");
        let mode = std::fs::metadata(secret_file).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(secret_file).expect("reads");
        assert!(text.contains("s3cret"), "the Secret holds the value the cluster needs");
    }
}
