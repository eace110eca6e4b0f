//! `email_config.json` and `sms_config.json`: where alerts and heartbeats go.
//!
//! Passwords and tokens are never written in these files: each names the secret (an
//! environment variable, or a line of `.env`) that holds the value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// How alerts and heartbeats are mailed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Only `smtp` is supported.
    pub provider: EmailProvider,
    pub from_address: String,
    pub smtp_settings: SmtpSettings,
    /// Who gets mail, by role (`admin`).
    pub recipients: BTreeMap<String, String>,
    /// The "all is well" mail and who sends it.
    #[serde(default)]
    pub heartbeat: Heartbeat,
}

/// Heartbeat mail: one message per interval, from the primary sender, or from the first
/// backup sender that can reach most of the fleet when the primary cannot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Minutes between heartbeats (fractions allowed, at least 0.05).
    #[serde(default = "fifteen")]
    pub interval_minutes: f64,
    /// The droplet that normally sends it; master unless named.
    #[serde(default)]
    pub primary_sender: Option<String>,
    /// Droplets that take over in this order; every other droplet, by name, unless named.
    #[serde(default)]
    pub backup_senders: Option<Vec<String>>,
}

impl Default for Heartbeat {
    fn default() -> Heartbeat {
        Heartbeat {
            enabled: true,
            interval_minutes: fifteen(),
            primary_sender: None,
            backup_senders: None,
        }
    }
}

impl Eq for Heartbeat {}

fn fifteen() -> f64 {
    15.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailProvider {
    Smtp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    #[serde(default = "yes")]
    pub use_tls: bool,
    #[serde(default)]
    pub username: Option<String>,
    /// The name of the secret holding the password, such as `SMTP_PASSWORD`.
    #[serde(default)]
    pub password: Option<String>,
    /// A PEM file of the certificate authority to trust for this server, beside the system's
    /// (for a private mail server); relative paths are from the configuration directory.
    #[serde(default)]
    pub ca_certificate: Option<PathBuf>,
}

/// How urgent alerts are texted, through an HTTP gateway with the common form-encoded shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    #[serde(default)]
    pub enabled: bool,
    /// The gateway's message endpoint.
    pub gateway_url: String,
    pub account_sid: String,
    /// The name of the secret holding the gateway's token, such as `SMS_AUTH_TOKEN`.
    pub auth_token: String,
    pub from_number: String,
    #[serde(default)]
    pub to_numbers: Vec<String>,
}

fn yes() -> bool {
    true
}

/// A refusal of a notification configuration file, naming the JSON path of the problem.
#[derive(Debug, thiserror::Error)]
#[error("{file}{at}: {problem}", file = file.display(), at = if json_path.is_empty() || json_path == "." { String::new() } else { format!(" at {json_path}") })]
pub struct NotifyConfigError {
    pub file: PathBuf,
    pub json_path: String,
    pub problem: String,
}

/// Reads and validates `email_config.json`.
pub fn load_email(file: &Path) -> Result<EmailConfig, NotifyConfigError> {
    let config: EmailConfig = load(file)?;
    let problem = |json_path: &str, problem: String| NotifyConfigError {
        file: file.to_path_buf(),
        json_path: json_path.into(),
        problem,
    };
    if !config.from_address.contains('@') {
        return Err(problem(
            "from_address",
            format!("{:?} is not an email address", config.from_address),
        ));
    }
    let host = &config.smtp_settings.host;
    if host.trim().is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(problem(
            "smtp_settings.host",
            format!("{host:?} must name the SMTP server (a host name or address)"),
        ));
    }
    if config.smtp_settings.port == 0 {
        return Err(problem("smtp_settings.port", "must be a port number, such as 587".into()));
    }
    if config.smtp_settings.username.is_some() && config.smtp_settings.password.is_none() {
        return Err(problem(
            "smtp_settings.password",
            "must name the variable holding the password, since a username is given".into(),
        ));
    }
    if config.recipients.is_empty() {
        return Err(problem(
            "recipients",
            "must name at least one address, such as {\"admin\": \"you@example.com\"}".into(),
        ));
    }
    for (role, address) in &config.recipients {
        if !address.contains('@') {
            return Err(problem(
                &format!("recipients.{role}"),
                format!("{address:?} is not an email address"),
            ));
        }
    }
    check_secret_name(file, "smtp_settings.password", config.smtp_settings.password.as_deref())?;
    let heartbeat = &config.heartbeat;
    let minutes = heartbeat.interval_minutes;
    if !(minutes.is_finite() && (0.05..=10080.0).contains(&minutes)) {
        return Err(problem(
            "heartbeat.interval_minutes",
            format!("{minutes} is not a number of minutes from 0.05 to 10080 (a week)"),
        ));
    }
    let senders = heartbeat.primary_sender.iter().map(|s| ("heartbeat.primary_sender", s));
    let backups =
        heartbeat.backup_senders.iter().flatten().map(|s| ("heartbeat.backup_senders", s));
    for (json_path, name) in senders.chain(backups) {
        if crate::model::Role::of_name(name).is_none() {
            return Err(problem(
                json_path,
                format!("{name:?} is not a droplet name (master, web1, web2, …)"),
            ));
        }
    }
    Ok(config)
}

/// Reads and validates `sms_config.json`.
pub fn load_sms(file: &Path) -> Result<SmsConfig, NotifyConfigError> {
    let config: SmsConfig = load(file)?;
    if !(config.gateway_url.starts_with("https://") || config.gateway_url.starts_with("http://")) {
        return Err(NotifyConfigError {
            file: file.to_path_buf(),
            json_path: "gateway_url".into(),
            problem: format!("{:?} is not an http(s) URL", config.gateway_url),
        });
    }
    for (index, number) in config.to_numbers.iter().chain([&config.from_number]).enumerate() {
        let valid = number.starts_with('+')
            && number.len() > 4
            && number[1..].bytes().all(|b| b.is_ascii_digit());
        if !valid {
            let json_path = if index < config.to_numbers.len() {
                format!("to_numbers[{index}]")
            } else {
                "from_number".into()
            };
            return Err(NotifyConfigError {
                file: file.to_path_buf(),
                json_path,
                problem: format!(
                    "{number:?} is not a phone number in international form (+15551234567)"
                ),
            });
        }
    }
    check_secret_name(file, "auth_token", Some(&config.auth_token))?;
    let problem = |json_path: &str, problem: &str| NotifyConfigError {
        file: file.to_path_buf(),
        json_path: json_path.into(),
        problem: problem.into(),
    };
    if config.account_sid.trim().is_empty() {
        return Err(problem("account_sid", "must hold the gateway account's id"));
    }
    if config.enabled && config.to_numbers.is_empty() {
        return Err(problem("to_numbers", "must list at least one number while SMS is enabled"));
    }
    Ok(config)
}

/// The fields that name a secret must hold a variable name, never the secret itself.
fn check_secret_name(
    file: &Path,
    json_path: &str,
    name: Option<&str>,
) -> Result<(), NotifyConfigError> {
    let Some(name) = name else { return Ok(()) };
    let valid = name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if valid {
        return Ok(());
    }
    Err(NotifyConfigError {
        file: file.to_path_buf(),
        json_path: json_path.into(),
        // The value may be a real password typed in by mistake, so it is not repeated.
        problem: format!(
            "must name the environment variable that holds the secret (upper-case letters, digits \
             and '_', such as {}), not the secret itself",
            if json_path == "auth_token" { "SMS_AUTH_TOKEN" } else { "SMTP_PASSWORD" }
        ),
    })
}

fn load<T: DeserializeOwned>(file: &Path) -> Result<T, NotifyConfigError> {
    let text = std::fs::read_to_string(file).map_err(|err| NotifyConfigError {
        file: file.to_path_buf(),
        json_path: String::new(),
        problem: format!("cannot be read: {err}"),
    })?;
    crate::json::parse(&text).map_err(|(json_path, problem)| NotifyConfigError {
        file: file.to_path_buf(),
        json_path,
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, text).expect("writes");
        (dir, path)
    }

    #[test]
    fn a_password_typed_in_clear_is_refused_without_repeating_it() {
        let (_dir, path) = write(
            r#"{"provider": "smtp", "from_address": "a@b.c", "recipients": {"admin": "x@y.z"},
                "smtp_settings": {"host": "smtp.b.c", "port": 587, "password": "hunter2!"}}"#,
        );
        let message = load_email(&path).expect_err("refused").to_string();
        assert!(
            message.contains("at smtp_settings.password: must name the environment variable"),
            "{message}"
        );
        assert!(!message.contains("hunter2"));
    }

    #[test]
    fn a_bad_recipient_names_its_path() {
        let (_dir, path) = write(
            r#"{"provider": "smtp", "from_address": "a@b.c", "recipients": {"admin": "nobody"},
                "smtp_settings": {"host": "smtp.b.c", "port": 587}}"#,
        );
        assert!(
            load_email(&path).expect_err("refused").to_string().contains("at recipients.admin")
        );
    }

    #[test]
    fn a_bad_phone_number_names_its_index() {
        let (_dir, path) = write(
            r#"{"gateway_url": "https://sms.example/send", "account_sid": "AC1", "auth_token": "SMS_AUTH_TOKEN",
                "from_number": "+15550000000", "to_numbers": ["+15551111111", "555-1234"]}"#,
        );
        assert!(load_sms(&path).expect_err("refused").to_string().contains("at to_numbers[1]"));
    }

    #[test]
    fn heartbeat_settings_are_checked() {
        let (_dir, path) = write(
            r#"{"provider": "smtp", "from_address": "a@b.c", "recipients": {"admin": "x@y.z"},
                "smtp_settings": {"host": "smtp.b.c", "port": 587},
                "heartbeat": {"interval_minutes": 0}}"#,
        );
        let message = load_email(&path).expect_err("refused").to_string();
        assert!(message.contains("at heartbeat.interval_minutes"), "{message}");
        let (_dir, path) = write(
            r#"{"provider": "smtp", "from_address": "a@b.c", "recipients": {"admin": "x@y.z"},
                "smtp_settings": {"host": "smtp.b.c", "port": 587},
                "heartbeat": {"primary_sender": "web1", "backup_senders": ["master", "db"]}}"#,
        );
        let message = load_email(&path).expect_err("refused").to_string();
        assert!(
            message.contains("at heartbeat.backup_senders: \"db\" is not a droplet"),
            "{message}"
        );
        let (_dir, path) = write(
            r#"{"provider": "smtp", "from_address": "a@b.c", "recipients": {"admin": "x@y.z"},
                "smtp_settings": {"host": "smtp.b.c", "port": 587}}"#,
        );
        let config = load_email(&path).expect("valid");
        assert_eq!(config.heartbeat.interval_minutes, 15.0);
        assert!(config.heartbeat.enabled);
    }
}
