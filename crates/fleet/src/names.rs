//! Rules for the names users give projects, environments and services.
//!
//! A project name becomes a DNS label (`hostomatic-prod`), an environment-variable prefix
//! (`HOSTOMATIC_PROD_DB_PASSWORD`) and a directory name on every droplet, so it must be safe
//! as all three at once.

/// The longest project name accepted: leaves room for `-{environment}` and a service name
/// inside one 63-character DNS label.
pub const MAX_PROJECT_NAME: usize = 40;

/// Why a name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {max} characters")]
    TooLong { max: usize },
    #[error("must be lower-case (try \"{suggestion}\")")]
    NotLowerCase { suggestion: String },
    #[error(
        "may only hold lower-case letters, digits and '-' (found {found:?}), so that it works as \
         a DNS label, an environment-variable prefix and a directory name"
    )]
    BadCharacter { found: char },
    #[error("must start with a letter")]
    BadStart,
    #[error("must not end with '-' or hold \"--\"")]
    BadHyphen,
}

/// Checks a name used as a project, environment or service name.
pub fn check(name: &str, max: usize) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().count() > max {
        return Err(NameError::TooLong { max });
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        let suggestion = name.to_ascii_lowercase();
        if check(&suggestion, max).is_ok() {
            return Err(NameError::NotLowerCase { suggestion });
        }
    }
    if let Some(found) = name.chars().find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-')) {
        return Err(NameError::BadCharacter { found });
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(NameError::BadStart);
    }
    if name.ends_with('-') || name.contains("--") {
        return Err(NameError::BadHyphen);
    }
    Ok(())
}

/// Checks a service name: like a project name, but `_` is allowed too (`worker_email`), since
/// a service name never becomes a DNS label on its own.
pub fn check_service(name: &str, max: usize) -> Result<(), NameError> {
    check(&name.replace('_', "-"), max).map_err(|err| match err {
        NameError::BadCharacter { found: '-' } => NameError::BadCharacter { found: '_' },
        other => other,
    })
}

/// The environment-variable prefix of a name: `my-app` gives `MY_APP`.
pub fn env_prefix(name: &str) -> String {
    name.replace('-', "_").to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass() {
        assert_eq!(check("hostomatic", MAX_PROJECT_NAME), Ok(()));
        assert_eq!(check("my-app2", MAX_PROJECT_NAME), Ok(()));
    }

    #[test]
    fn unsafe_names_are_refused_with_the_reason() {
        assert_eq!(check("", 40), Err(NameError::Empty));
        assert_eq!(check("../etc", 40), Err(NameError::BadCharacter { found: '.' }));
        assert_eq!(check("my app", 40), Err(NameError::BadCharacter { found: ' ' }));
        assert_eq!(check("my_app", 40), Err(NameError::BadCharacter { found: '_' }));
        assert_eq!(check("9lives", 40), Err(NameError::BadStart));
        assert_eq!(check("app-", 40), Err(NameError::BadHyphen));
        assert_eq!(check("a--b", 40), Err(NameError::BadHyphen));
        assert_eq!(check(&"a".repeat(41), 40), Err(NameError::TooLong { max: 40 }));
        assert_eq!(
            check("Hostomatic", 40),
            Err(NameError::NotLowerCase { suggestion: "hostomatic".into() })
        );
    }

    #[test]
    fn env_prefix_upper_cases_and_replaces_hyphens() {
        assert_eq!(env_prefix("my-app"), "MY_APP");
    }
}
