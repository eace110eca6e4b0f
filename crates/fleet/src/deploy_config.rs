//! `deployment_config.json`: which cloud, where, and what each project runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::ServiceKind;
use crate::names;

/// Environments every project has unless the configuration says otherwise.
pub const DEFAULT_ENVIRONMENTS: [&str; 2] = ["prod", "uat"];

/// The port every agent listens on, unless configured.
pub const DEFAULT_AGENT_PORT: u16 = 7700;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// Where droplets come from.
    #[serde(default)]
    pub provider: ProviderKind,
    /// Names this fleet at the cloud: droplets are tagged `fleet:{fleet_name}` and named
    /// `{fleet_name}-{droplet}`, so several fleets can share one account.
    #[serde(default = "default_fleet_name")]
    pub fleet_name: String,
    /// Whether `--orchestrate` snapshots each droplet it creates, so an automatic recovery has
    /// something to restore; by default on the local cloud, where it is cheap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_new_droplets: Option<bool>,
    /// How many snapshots of each droplet `--cleanup` keeps.
    #[serde(default = "default_snapshot_retention")]
    pub snapshot_retention: u32,
    /// Settings for the DigitalOcean provider.
    #[serde(default)]
    pub digitalocean: DigitalOceanConfig,
    /// The cloud region droplets are made in.
    #[serde(default = "default_region")]
    pub region: String,
    /// How services run on droplets.
    #[serde(default)]
    pub deployment_platform: Platform,
    /// Environments of every project that does not name its own.
    #[serde(default = "default_environments")]
    pub environments: Vec<String>,
    /// The SSH key `--init` makes for bootstrap and break-glass access; `~` is the home directory.
    #[serde(default = "default_ssh_key_path")]
    pub ssh_key_path: String,
    /// The port agents listen on.
    #[serde(default = "default_agent_port")]
    pub agent_port: u16,
    /// The port the load balancer listens on, on master: 80 on a real cloud; the local cloud
    /// uses 8080 unless told otherwise, since ports under 1024 need root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_config: Option<GitConfig>,
    /// Projects by name: what each runs. A CSV project missing here runs no services yet.
    #[serde(default)]
    pub projects: BTreeMap<String, ProjectConfig>,
    /// Databases, caches, vaults and search engines on master, by name (`redis`).
    #[serde(default)]
    pub infrastructure: BTreeMap<String, InfraConfig>,
    /// Settings of the kubernetes platform.
    #[serde(default)]
    pub kubernetes: KubernetesConfig,
}

/// Where the kubernetes platform puts a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// The namespace of a project-environment; `{project}` and `{environment}` are replaced.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The kubeconfig context to use; the current one when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The registry images are pushed to for the cluster (`registry.example.com/team`); when
    /// not set, the cluster must find the images on the engine that built them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_registry: Option<String>,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        KubernetesConfig { namespace: default_namespace(), context: None, image_registry: None }
    }
}

fn default_namespace() -> String {
    "{project}-{environment}".into()
}

/// The cloud droplets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Droplets are agent processes on this machine's loopback addresses.
    #[default]
    Local,
    /// Droplets are DigitalOcean droplets, made through its API.
    Digitalocean,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Local => "local",
            ProviderKind::Digitalocean => "digitalocean",
        }
    }
}

/// How droplets are made on DigitalOcean and how their agent arrives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigitalOceanConfig {
    /// The base image of new droplets.
    #[serde(default = "default_image")]
    pub image: String,
    /// Where cloud-init downloads the orchestrator binary for the agent (an HTTPS URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_url: Option<String>,
    /// The SHA-256 of that binary, checked before it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_sha256: Option<String>,
}

impl Default for DigitalOceanConfig {
    fn default() -> Self {
        DigitalOceanConfig { image: default_image(), agent_url: None, agent_sha256: None }
    }
}

/// How services are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    #[default]
    Docker,
    Podman,
    Kubernetes,
    Process,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Docker => "docker",
            Platform::Podman => "podman",
            Platform::Kubernetes => "kubernetes",
            Platform::Process => "process",
        }
    }

    /// Whether services run as containers built from a Containerfile.
    pub fn builds_images(self) -> bool {
        matches!(self, Platform::Docker | Platform::Podman | Platform::Kubernetes)
    }
}

/// Where project repositories live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitConfig {
    pub base_url: String,
    /// `{base_url}` and `{project}` are replaced.
    #[serde(default = "default_url_pattern")]
    pub url_pattern: String,
}

/// What one project runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Overrides the fleet-wide environments for this project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<String>>,
    #[serde(default)]
    pub services: BTreeMap<String, ServiceConfig>,
}

/// One service of a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    #[serde(rename = "type", default)]
    pub kind: ServiceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containerfile_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Names of the secrets the service needs (`db_password`).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Where this service's hash-derived ports start; a default per service name otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_port: Option<u16>,
    /// How a new version is judged ready before traffic moves to it (web services).
    #[serde(default)]
    pub health_check: HealthCheck,
    /// Build arguments for the container platforms' image builds (`ARG` in the Containerfile).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_args: BTreeMap<String, String>,
}

/// An infrastructure service: one instance per project-environment that uses it, on master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfraConfig {
    pub kind: InfraKind,
    /// The projects that use it; every project when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projects: Option<Vec<String>>,
    /// The secret holding its password (`redis_password`), looked up like any secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<String>,
    /// Where its hash-derived ports start; a default per kind otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_port: Option<u16>,
    /// The command that runs it and the configuration file it reads: a process on master, or
    /// the command of its image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<InfraProcess>,
    /// The image it runs from: on docker and podman a container on master's engine (pulled
    /// when missing), on kubernetes a StatefulSet in the cluster; without one, or on the
    /// process platform, it runs as a process on master.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// What an infrastructure service is, for people and for its default port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InfraKind {
    Database,
    Cache,
    Vault,
    Search,
    Other,
}

/// An infrastructure service on the process platform: a command and, optionally, the
/// configuration file it reads (the only place its password is written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfraProcess {
    /// A template: `{{ host }}`, `{{ port }}`, `{{ data_dir }}`, `{{ config_file }}`.
    pub command: String,
    /// A template of the configuration file: the same, and `{{ password }}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

/// A service's readiness check: `GET path` until it answers 2xx.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    #[serde(default = "default_health_path")]
    pub path: String,
    #[serde(default = "one")]
    pub interval_seconds: u32,
    #[serde(default = "five")]
    pub timeout_seconds: u32,
    /// Checks before the version is given up on.
    #[serde(default = "thirty")]
    pub retries: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            path: default_health_path(),
            interval_seconds: one(),
            timeout_seconds: five(),
            retries: thirty(),
        }
    }
}

fn default_health_path() -> String {
    "/health".into()
}

fn one() -> u32 {
    1
}

fn five() -> u32 {
    5
}

fn thirty() -> u32 {
    30
}

impl DeploymentConfig {
    /// Whether new droplets are snapshotted right away.
    pub fn snapshot_new_droplets(&self) -> bool {
        self.snapshot_new_droplets.unwrap_or(self.provider == ProviderKind::Local)
    }

    /// The load balancer's port.
    pub fn load_balancer_port(&self) -> u16 {
        self.load_balancer_port.unwrap_or(match self.provider {
            ProviderKind::Local => 8080,
            ProviderKind::Digitalocean => 80,
        })
    }

    /// The environments of a project.
    pub fn environments_of(&self, project: &str) -> &[String] {
        self.projects
            .get(project)
            .and_then(|p| p.environments.as_deref())
            .unwrap_or(&self.environments)
    }
}

/// A refusal of `deployment_config.json`, naming the JSON path of the problem.
#[derive(Debug, thiserror::Error)]
#[error("{file}{at}: {problem}", file = file.display(), at = if json_path.is_empty() || json_path == "." { String::new() } else { format!(" at {json_path}") })]
pub struct DeployConfigError {
    pub file: PathBuf,
    /// Dotted path of the offending value, such as `projects.hostomatic.services.backend.type`.
    pub json_path: String,
    pub problem: String,
}

/// Reads and validates `deployment_config.json`.
pub fn load(file: &Path) -> Result<DeploymentConfig, DeployConfigError> {
    let text = std::fs::read_to_string(file).map_err(|err| DeployConfigError {
        file: file.to_path_buf(),
        json_path: String::new(),
        problem: format!("cannot be read: {err}"),
    })?;
    parse(file, &text)
}

/// Validates the text of a `deployment_config.json`; `file` is only used in messages.
pub fn parse(file: &Path, text: &str) -> Result<DeploymentConfig, DeployConfigError> {
    let refuse = |(json_path, problem): crate::json::Refusal| DeployConfigError {
        file: file.to_path_buf(),
        json_path,
        problem,
    };
    let config: DeploymentConfig = crate::json::parse(text).map_err(refuse)?;
    validate(&config).map_err(refuse)?;
    Ok(config)
}

fn validate(config: &DeploymentConfig) -> Result<(), (String, String)> {
    check_environments("environments", &config.environments)?;
    if config.agent_port < 1024 {
        return Err((
            "agent_port".into(),
            format!("{} is a privileged port; use 1024 or above", config.agent_port),
        ));
    }
    if config.load_balancer_port == Some(config.agent_port) {
        return Err(("load_balancer_port".into(), "must differ from agent_port".into()));
    }
    let fleet_name_ok = !config.fleet_name.is_empty()
        && config.fleet_name.len() <= 30
        && config
            .fleet_name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && config.fleet_name.starts_with(|c: char| c.is_ascii_lowercase())
        && !config.fleet_name.ends_with('-')
        && !config.fleet_name.contains("--");
    if !fleet_name_ok {
        return Err((
            "fleet_name".into(),
            format!(
                "{:?} must be up to 30 lower-case letters, digits and single '-', starting with a letter",
                config.fleet_name
            ),
        ));
    }
    if config.snapshot_retention == 0 {
        return Err((
            "snapshot_retention".into(),
            "must keep at least one snapshot per droplet".into(),
        ));
    }
    if let Some(digest) = &config.digitalocean.agent_sha256
        && (digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(("digitalocean.agent_sha256".into(), "must be 64 hexadecimal digits".into()));
    }
    if let Some(url) = &config.digitalocean.agent_url
        && !url.starts_with("https://")
    {
        return Err(("digitalocean.agent_url".into(), format!("{url:?} must be an https:// URL")));
    }
    if config.digitalocean.agent_url.is_some() != config.digitalocean.agent_sha256.is_some() {
        return Err(("digitalocean".into(), "agent_url and agent_sha256 go together".into()));
    }
    if config.region.trim().is_empty() {
        return Err(("region".into(), "must name a region, such as \"nyc3\"".into()));
    }
    for (name, infra) in &config.infrastructure {
        let at = format!("infrastructure.{name}");
        names::check_service(name, 30)
            .map_err(|reason| (at.clone(), format!("infrastructure name {name:?} {reason}")))?;
        for (index, project) in infra.projects.iter().flatten().enumerate() {
            if !config.projects.contains_key(project) {
                return Err((
                    format!("{at}.projects[{index}]"),
                    format!("{project:?} is not a project of this file"),
                ));
            }
        }
        if let Some(secret) = &infra.password_secret {
            let valid = secret.starts_with(|c: char| c.is_ascii_alphabetic())
                && secret.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err((
                    format!("{at}.password_secret"),
                    format!("secret name {secret:?} may only hold letters, digits and '_'"),
                ));
            }
        }
        if let Some(base) = infra.base_port
            && !(1024..=64000).contains(&base)
        {
            return Err((format!("{at}.base_port"), format!("{base} is outside 1024–64000")));
        }
        // The instance's ports may reach twice its range above the base (see probing).
        let reach = crate::infrastructure::RANGE * 2;
        if let Some(base) = infra.base_port
            && base.saturating_add(reach) > EPHEMERAL.0
            && base <= EPHEMERAL.1
        {
            return Err((
                format!("{at}.base_port"),
                format!(
                    "{base} would put its ports among {}–{}, where the system picks the ports of \
                     outgoing connections; choose at most {} or from {}",
                    EPHEMERAL.0,
                    EPHEMERAL.1,
                    EPHEMERAL.0 - reach,
                    EPHEMERAL.1 + 1
                ),
            ));
        }
        if let Some(process) = &infra.process
            && process.command.trim().is_empty()
        {
            return Err((format!("{at}.process.command"), "must not be empty".into()));
        }
        if let Some(process) = &infra.process
            && process.command.contains("password")
        {
            return Err((
                format!("{at}.process.command"),
                "must not hold the password, which would show in every process listing; put \
                 it in process.config"
                    .into(),
            ));
        }
        if infra.process.is_none() {
            return Err((
                format!("{at}.process"),
                "needs the command that runs it (on docker and podman, the command its image \
                 runs)"
                    .into(),
            ));
        }
        if let Some(image) = &infra.image
            && !is_image_reference(image)
        {
            return Err((
                format!("{at}.image"),
                format!(
                    "{image:?} is not an image reference such as \"redis:7-alpine\" or \
                     \"registry.example.com/team/redis:7\" (lower case, no spaces)"
                ),
            ));
        }
        let projects = infra.projects.iter().flatten();
        if let Some(twice) =
            projects.clone().find(|p| projects.clone().filter(|q| q == p).count() > 1)
        {
            return Err((format!("{at}.projects"), format!("names {twice:?} twice")));
        }
    }
    for (project, project_config) in &config.projects {
        let at = format!("projects.{project}");
        names::check(project, names::MAX_PROJECT_NAME)
            .map_err(|reason| (at.clone(), format!("project name {project:?} {reason}")))?;
        if let Some(environments) = &project_config.environments {
            check_environments(&format!("{at}.environments"), environments)?;
        }
        for (service, service_config) in &project_config.services {
            let at = format!("{at}.services.{service}");
            names::check_service(service, 30)
                .map_err(|reason| (at.clone(), format!("service name {service:?} {reason}")))?;
            if let Some(base) = service_config.base_port
                && !(1024..=60000).contains(&base)
            {
                return Err((format!("{at}.base_port"), format!("{base} is outside 1024–60000")));
            }
            if let Some(context) = &service_config.build_context {
                let inside = !context.starts_with('/')
                    && !context.split('/').any(|part| part == "..")
                    && !context.contains('\\');
                if !inside {
                    return Err((
                        format!("{at}.build_context"),
                        format!(
                            "{context:?} must be a directory inside the project's tree, such as \
                             \"backend/\" (no absolute path, no \"..\")"
                        ),
                    ));
                }
            }
            let health = &service_config.health_check;
            if !health.path.starts_with('/') || health.path.chars().any(char::is_whitespace) {
                return Err((
                    format!("{at}.health_check.path"),
                    format!("{:?} must be a path starting with '/'", health.path),
                ));
            }
            for (field, value) in [
                ("interval_seconds", health.interval_seconds),
                ("timeout_seconds", health.timeout_seconds),
                ("retries", health.retries),
            ] {
                if value == 0 || value > 3600 {
                    return Err((
                        format!("{at}.health_check.{field}"),
                        format!("{value} must be between 1 and 3600"),
                    ));
                }
            }
            for (index, secret) in service_config.secrets.iter().enumerate() {
                let valid = !secret.is_empty()
                    && secret.starts_with(|c: char| c.is_ascii_alphabetic())
                    && secret.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err((
                        format!("{at}.secrets[{index}]"),
                        format!(
                            "secret name {secret:?} may only hold letters, digits and '_', starting with a letter"
                        ),
                    ));
                }
            }
        }
    }
    check_variable_clashes(config)
}

/// Refuses an infrastructure service whose variables (`NAME_HOST`, `NAME_PORT`,
/// `NAME_PASSWORD`) would overwrite a variable of a service that uses it: one the agent sets, or
/// one of its secrets.
fn check_variable_clashes(config: &DeploymentConfig) -> Result<(), (String, String)> {
    const SET_BY_THE_AGENT: [&str; 5] = ["HOST", "PORT", "VERSION", "PROJECT", "SERVICE"];
    let mut claimed: BTreeMap<String, String> = BTreeMap::new();
    for (name, infra) in &config.infrastructure {
        let prefix = names::env_prefix(name);
        let mut variables = vec![format!("{prefix}_HOST"), format!("{prefix}_PORT")];
        if infra.password_secret.is_some() {
            variables.push(format!("{prefix}_PASSWORD"));
        }
        for variable in variables {
            let at = format!("infrastructure.{name}");
            if SET_BY_THE_AGENT.contains(&variable.as_str()) {
                return Err((at, format!("its variable {variable} is one the agent sets itself")));
            }
            if let Some(other) = claimed.insert(variable.clone(), name.clone()) {
                return Err((
                    at,
                    format!("its variable {variable} is infrastructure.{other}'s too"),
                ));
            }
            for project in crate::infrastructure::projects_of(config, infra) {
                let Some(project_config) = config.projects.get(project) else { continue };
                for (service, service_config) in &project_config.services {
                    if service_config.secrets.iter().any(|s| names::env_prefix(s) == variable) {
                        return Err((
                            at,
                            format!(
                                "its variable {variable} would replace the secret of the same \
                                 name that projects.{project}.services.{service} is given; rename \
                                 one of them"
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The ports Linux hands out for outgoing connections by default.
const EPHEMERAL: (u16, u16) = (32768, 60999);

/// Whether `reference` reads as an image reference: `[registry/]path[:tag][@digest]`, the path
/// in lower case.
fn is_image_reference(reference: &str) -> bool {
    let (name, digest) = match reference.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (reference, None),
    };
    if let Some(digest) = digest {
        let valid = digest.split_once(':').is_some_and(|(algorithm, hex)| {
            !algorithm.is_empty() && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
        });
        if !valid {
            return false;
        }
    }
    // A tag follows the last ':' after the last '/' (a registry's port comes before a '/').
    let last_part = name.rsplit('/').next().unwrap_or(name);
    let (path, tag) = match last_part.rsplit_once(':') {
        Some((_, tag)) => (&name[..name.len() - tag.len() - 1], Some(tag)),
        None => (name, None),
    };
    if let Some(tag) = tag {
        let valid = !tag.is_empty()
            && tag.len() <= 128
            && !tag.starts_with(['.', '-'])
            && tag.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !valid {
            return false;
        }
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    // The first part is a registry when it has a '.' or a ':' or is localhost.
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        let registry = parts.remove(0);
        if registry.is_empty() || registry.chars().any(|c| c.is_whitespace() || c == '@') {
            return false;
        }
    }
    !parts.is_empty()
        && parts.iter().all(|part| {
            !part.is_empty()
                && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && part.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        })
}

fn check_environments(at: &str, environments: &[String]) -> Result<(), (String, String)> {
    if environments.is_empty() {
        return Err((at.into(), "must name at least one environment, such as \"prod\"".into()));
    }
    for (index, environment) in environments.iter().enumerate() {
        let valid = !environment.is_empty()
            && environment.len() <= 10
            && environment.starts_with(|c: char| c.is_ascii_lowercase())
            && environment.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !valid {
            return Err((
                format!("{at}[{index}]"),
                format!(
                    "environment {environment:?} must be up to 10 lower-case letters and digits, starting with a letter"
                ),
            ));
        }
        if environments[..index].contains(environment) {
            return Err((
                format!("{at}[{index}]"),
                format!("environment {environment:?} is listed twice"),
            ));
        }
    }
    Ok(())
}

fn default_fleet_name() -> String {
    "fleet".into()
}

fn default_snapshot_retention() -> u32 {
    3
}

fn default_image() -> String {
    "ubuntu-24-04-x64".into()
}

fn default_region() -> String {
    "nyc3".into()
}

fn default_environments() -> Vec<String> {
    DEFAULT_ENVIRONMENTS.iter().map(|e| e.to_string()).collect()
}

fn default_ssh_key_path() -> String {
    "~/.ssh/infrastructure_key".into()
}

fn default_agent_port() -> u16 {
    DEFAULT_AGENT_PORT
}

fn default_url_pattern() -> String {
    "{base_url}/{project}.git".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(text: &str) -> String {
        parse(Path::new("config/deployment_config.json"), text).expect_err("refused").to_string()
    }

    #[test]
    fn an_empty_object_takes_every_default() {
        let config = parse(Path::new("c.json"), "{}").expect("valid");
        assert_eq!(config.provider, ProviderKind::Local);
        assert_eq!(config.environments, ["prod", "uat"]);
        assert_eq!(config.agent_port, DEFAULT_AGENT_PORT);
    }

    #[test]
    fn a_wrong_type_names_its_json_path() {
        let text = r#"{"projects": {"hostomatic": {"services": {"backend": {"type": "wrker"}}}}}"#;
        let message = refusal(text);
        assert!(
            message.starts_with("config/deployment_config.json at projects.hostomatic.services.backend.type: unknown variant `wrker`"),
            "{message}"
        );
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_path() {
        let message = refusal(r#"{"projects": {"app": {"servces": {}}}}"#);
        assert!(message.contains("at projects.app.servces: unknown field `servces`"), "{message}");
    }

    #[test]
    fn semantic_problems_name_their_path() {
        let message = refusal(
            r#"{"projects": {"app": {"services": {"api": {"secrets": ["db password"]}}}}}"#,
        );
        assert!(
            message
                .contains("at projects.app.services.api.secrets[0]: secret name \"db password\""),
            "{message}"
        );
        let message = refusal(r#"{"environments": ["prod", "Staging"]}"#);
        assert!(message.contains("at environments[1]: environment \"Staging\""), "{message}");
        let message = refusal(r#"{"projects": {"Bad_Name": {}}}"#);
        assert!(message.contains("at projects.Bad_Name: project name"), "{message}");
    }

    #[test]
    fn an_infrastructure_service_needs_a_command_and_a_plain_image_reference() {
        let message = refusal(
            r#"{"deployment_platform": "docker",
                "infrastructure": {"redis": {"kind": "cache", "image": "redis:7"}}}"#,
        );
        assert!(
            message.contains("at infrastructure.redis.process: needs the command"),
            "{message}"
        );
        let message = refusal(
            r#"{"infrastructure": {"redis": {"kind": "cache", "image": "redis 7",
                "process": {"command": "redis-server"}}}}"#,
        );
        assert!(
            message
                .contains("at infrastructure.redis.image: \"redis 7\" is not an image reference"),
            "{message}"
        );
    }

    #[test]
    fn image_references_are_read_as_registries_read_them() {
        for good in [
            "redis",
            "redis:7-alpine",
            "library/redis:7",
            "registry.example.com:5000/team/redis:7.2",
            "localhost/redis",
            "redis@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(is_image_reference(good), "{good}");
        }
        for bad in
            ["", "redis 7", "Trial/REDIS:7", "redis:", "redis:-x", "/redis", "redis@sha256:12"]
        {
            assert!(!is_image_reference(bad), "{bad}");
        }
    }

    #[test]
    fn an_infrastructure_base_port_stays_out_of_the_systems_own_ports() {
        let with_base = |base: u16| {
            format!(
                r#"{{"infrastructure": {{"r": {{"kind": "cache", "base_port": {base},
                    "process": {{"command": "redis-server"}}}}}}}}"#
            )
        };
        let message = refusal(&with_base(40000));
        assert!(
            message.contains(
                "at infrastructure.r.base_port: 40000 would put its ports among 32768–60999"
            ),
            "{message}"
        );
        assert!(refusal(&with_base(32000)).contains("32000 would put"));
        for fine in [20000, 31768, 61000] {
            assert!(parse(Path::new("c.json"), &with_base(fine)).is_ok(), "{fine}");
        }
    }

    #[test]
    fn an_infrastructure_variable_may_not_replace_a_services_secret() {
        let message = refusal(
            r#"{"projects": {"app": {"services": {"api": {"secrets": ["db_password"]}}}},
                "infrastructure": {"db": {"kind": "database", "password_secret": "pg",
                    "process": {"command": "postgres"}}}}"#,
        );
        assert!(
            message.contains(
                "at infrastructure.db: its variable DB_PASSWORD would replace the secret"
            ),
            "{message}"
        );
        let message = refusal(
            r#"{"infrastructure": {"a": {"kind": "cache", "process": {"command": "x"}},
                "A": {"kind": "cache", "process": {"command": "x"}}}}"#,
        );
        assert!(message.contains("infrastructure name") || message.contains("too"), "{message}");
    }

    #[test]
    fn broken_json_is_refused() {
        assert!(refusal("{\"provider\": ").contains("config/deployment_config.json"));
        assert!(refusal(r#"{"provider": "aws"}"#).contains("at provider: unknown variant `aws`"));
    }
}
