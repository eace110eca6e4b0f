//! Settings and secrets from the process environment and the fleet's `.env` file.
//!
//! The process environment wins over `.env`, as with every dotenv tool. The file is read into
//! a map; the process environment itself is never changed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The `.env` file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    #[error("cannot read {path}: {source}", path = path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}, line {line}: is not valid UTF-8", path = path.display())]
    NotUtf8 { path: PathBuf, line: usize },
    // The offending line is not quoted: it may hold a secret.
    #[error("{path}, line {line}: cannot be parsed; write it as NAME=value", path = path.display())]
    Parse { path: PathBuf, line: usize },
}

/// Variables from the environment and `.env`.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    file: HashMap<String, String>,
}

impl Environment {
    /// Reads `.env` at `path`; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<Environment, EnvFileError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Environment::default());
            }
            Err(source) => {
                return Err(EnvFileError::Read { path: path.to_path_buf(), source });
            }
        };
        let mut file = HashMap::new();
        for item in dotenvy::from_read_iter(text.as_bytes()) {
            match item {
                Ok((name, value)) => {
                    file.insert(name, value);
                }
                Err(dotenvy::Error::LineParse(bad, _)) => {
                    // The parser gives the text from the bad line on (a value with an unclosed
                    // quote runs to the end), so the line is where that text starts.
                    let first = bad.lines().next().unwrap_or_default().trim();
                    let line = text
                        .lines()
                        .position(|l| !first.is_empty() && l.contains(first))
                        .map_or(1, |i| i + 1);
                    return Err(EnvFileError::Parse { path: path.to_path_buf(), line });
                }
                Err(_) => return Err(EnvFileError::Parse { path: path.to_path_buf(), line: 1 }),
            }
        }
        Ok(Environment { file })
    }

    /// Where a variable's value comes from, for messages: `the environment` or `.env`.
    pub fn origin(&self, name: &str) -> &'static str {
        let in_process = std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
        if in_process { "from the environment" } else { "from .env" }
    }

    /// A variable's value, from the process environment first, then `.env`. An empty value is
    /// unset, so an empty variable in the shell does not hide the one in `.env`.
    pub fn get(&self, name: &str) -> Option<String> {
        let set = |value: &String| !value.trim().is_empty();
        std::env::var(name).ok().filter(set).or_else(|| self.file.get(name).cloned().filter(set))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_from_the_file_when_the_process_lacks_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        std::fs::write(&path, "# comment\nORCHESTRATOR_TEST_ONLY_IN_FILE=\"from file\"\nEMPTY=\n")
            .expect("writes");
        let env = Environment::load(&path).expect("loads");
        assert_eq!(env.get("ORCHESTRATOR_TEST_ONLY_IN_FILE").as_deref(), Some("from file"));
        assert_eq!(env.get("EMPTY"), None);
        assert_eq!(env.get("PATH"), std::env::var("PATH").ok());
    }

    #[test]
    fn a_broken_line_is_named_without_its_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        std::fs::write(&path, "GOOD=1\nthis is not an assignment s3cret\n").expect("writes");
        let message = Environment::load(&path).expect_err("refused").to_string();
        assert!(
            message.ends_with(".env, line 2: cannot be parsed; write it as NAME=value"),
            "{message}"
        );
        assert!(!message.contains("s3cret"));
    }

    #[test]
    fn an_unclosed_quote_names_its_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        std::fs::write(&path, "A=1\nB=\"open\nC=3\n").expect("writes");
        let message = Environment::load(&path).expect_err("refused").to_string();
        assert!(
            message.ends_with(".env, line 2: cannot be parsed; write it as NAME=value"),
            "{message}"
        );
    }

    #[test]
    fn a_missing_file_is_empty() {
        let env = Environment::load(Path::new("/nonexistent/.env")).expect("loads");
        assert_eq!(env.get("ORCHESTRATOR_TEST_ONLY_IN_FILE"), None);
    }
}
