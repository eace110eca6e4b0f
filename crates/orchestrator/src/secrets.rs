//! Project secrets: where each is looked up, and which are missing.
//!
//! A secret `db_password` of project `hostomatic` in `prod` is the first of
//! `HOSTOMATIC_PROD_DB_PASSWORD`, `HOSTOMATIC_DB_PASSWORD`, `PROD_DB_PASSWORD` and
//! `DB_PASSWORD` that is set, in the process environment or in `.env`. Values are held as
//! [`Secret`], which never prints; what is reported is the variable and its level.

use std::collections::BTreeMap;
use std::fmt;

use fleet::DeploymentConfig;
use fleet::names::env_prefix;
use fleet::projects::ProjectRow;
use serde::Serialize;

use crate::environment::Environment;
use crate::secret::Secret;

/// How specific the variable a secret came from is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    ProjectEnvironment,
    Project,
    Environment,
    Global,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::ProjectEnvironment => "project and environment",
            Level::Project => "project",
            Level::Environment => "environment",
            Level::Global => "global",
        })
    }
}

/// A secret found, with the variable it came from.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub name: String,
    pub variable: String,
    pub level: Level,
    pub value: Secret,
}

/// A secret none of whose variables is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("secret {name} of {project_env} is not set; set one of {}", tried.join(", "))]
pub struct Missing {
    pub project_env: String,
    pub name: String,
    /// Every variable looked at, most specific first.
    pub tried: Vec<String>,
}

/// The variables that may hold `secret` for `project` in `environment`, most specific first.
pub fn candidates(project: &str, environment: &str, secret: &str) -> [(String, Level); 4] {
    let (project, environment, secret) =
        (env_prefix(project), env_prefix(environment), env_prefix(secret));
    [
        (format!("{project}_{environment}_{secret}"), Level::ProjectEnvironment),
        (format!("{project}_{secret}"), Level::Project),
        (format!("{environment}_{secret}"), Level::Environment),
        (secret, Level::Global),
    ]
}

/// Looks one secret up.
pub fn resolve(
    env: &Environment,
    project: &str,
    environment: &str,
    secret: &str,
) -> Result<Resolved, Missing> {
    let candidates = candidates(project, environment, secret);
    for (variable, level) in &candidates {
        if let Some(value) = env.get(variable) {
            return Ok(Resolved {
                name: secret.to_string(),
                variable: variable.clone(),
                level: *level,
                value: Secret::new(value),
            });
        }
    }
    Err(Missing {
        project_env: fleet::model::project_env(project, environment),
        name: secret.to_string(),
        tried: candidates.into_iter().map(|(variable, _)| variable).collect(),
    })
}

/// Every secret a project-environment's services need that is not set, by project-environment.
pub fn missing(
    env: &Environment,
    rows: &[ProjectRow],
    config: &DeploymentConfig,
) -> BTreeMap<String, Vec<Missing>> {
    let mut missing: BTreeMap<String, Vec<Missing>> = BTreeMap::new();
    for row in rows {
        let Some(project) = config.projects.get(&row.name) else { continue };
        let mut names: Vec<&String> = project.services.values().flat_map(|s| &s.secrets).collect();
        // The passwords of the infrastructure services the project uses, too.
        names.extend(config.infrastructure.values().filter_map(|infra| {
            let used =
                fleet::infrastructure::projects_of(config, infra).contains(&row.name.as_str());
            infra.password_secret.as_ref().filter(|_| used)
        }));
        names.sort();
        names.dedup();
        for environment in config.environments_of(&row.name) {
            for name in &names {
                if let Err(absent) = resolve(env, &row.name, environment, name) {
                    missing.entry(absent.project_env.clone()).or_default().push(absent);
                }
            }
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(text: &str) -> (tempfile::TempDir, Environment) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        std::fs::write(&path, text).expect("writes");
        let env = Environment::load(&path).expect("loads");
        (dir, env)
    }

    #[test]
    fn the_most_specific_variable_wins() {
        let (_dir, env) = env(
            "ZZTESTPROJ_PROD_DB_PASSWORD=a\nZZTESTPROJ_DB_PASSWORD=b\nPROD_ZZTESTSECRET=c\nZZTESTSECRET=d\n",
        );
        let found = resolve(&env, "zztestproj", "prod", "db_password").expect("found");
        assert_eq!(
            (found.variable.as_str(), found.level),
            ("ZZTESTPROJ_PROD_DB_PASSWORD", Level::ProjectEnvironment)
        );
        assert_eq!(found.value.expose(), "a");
        let found = resolve(&env, "zztestproj", "uat", "db_password").expect("found");
        assert_eq!(found.level, Level::Project);
        let found = resolve(&env, "other", "prod", "zztestsecret").expect("found");
        assert_eq!(found.level, Level::Environment);
        let found = resolve(&env, "other", "uat", "zztestsecret").expect("found");
        assert_eq!(found.level, Level::Global);
    }

    #[test]
    fn a_missing_secret_names_every_variable_tried_and_no_value() {
        let (_dir, env) = env("");
        let missing = resolve(&env, "my-app", "prod", "zz_api_key").expect_err("missing");
        assert_eq!(
            missing.tried,
            ["MY_APP_PROD_ZZ_API_KEY", "MY_APP_ZZ_API_KEY", "PROD_ZZ_API_KEY", "ZZ_API_KEY"]
        );
        assert_eq!(
            missing.to_string(),
            "secret zz_api_key of my-app-prod is not set; set one of MY_APP_PROD_ZZ_API_KEY, MY_APP_ZZ_API_KEY, PROD_ZZ_API_KEY, ZZ_API_KEY"
        );
    }

    #[test]
    fn a_resolved_secret_never_prints_its_value() {
        let (_dir, env) = env("ZZPRINTPROJ_TOKEN=hunter2\n");
        let found = resolve(&env, "zzprintproj", "prod", "token").expect("found");
        assert!(!format!("{found:?}").contains("hunter2"));
    }
}
