//! Telling people: alerts when a droplet fails or is recovered, and heartbeats saying the
//! fleet is fine, by email (SMTP with TLS) and, for alerts, by SMS through an HTTP gateway.
//!
//! The command line turns `email_config.json` and `sms_config.json` into [`NotifySettings`]
//! and hands them to every agent with the fleet state; the SMTP password and the gateway's
//! token travel and rest sealed with the fleet key, and are opened only to send.

pub mod email;
pub mod sms;

use std::path::Path;

use fleet::notify_config::{self, EmailConfig, SmsConfig};
use serde::{Deserialize, Serialize};

use crate::control::FleetKey;
use crate::control::sealed::{self, Sealed};
use crate::environment::Environment;
use crate::secret::Secret;
use crate::workspace::Workspace;

/// What the sealed SMTP password and SMS token are bound to.
pub const SMTP_PASSWORD: &str = "smtp password";
pub const SMS_TOKEN: &str = "sms gateway token";

/// Where alerts and heartbeats go, as agents hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifySettings {
    pub email: Option<EmailSettings>,
    pub sms: Option<SmsSettings>,
    pub heartbeat: Option<HeartbeatSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailSettings {
    pub from: String,
    pub to: Vec<String>,
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<Sealed>,
    /// Extra certificate authorities to trust, as PEM.
    pub ca_pem: Option<String>,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// TLS from the first byte (port 465).
    Tls,
    /// A plain connection upgraded with STARTTLS, which the server must offer.
    StartTls,
    /// No encryption: only for a relay on the same host or network.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsSettings {
    pub gateway_url: String,
    pub account_sid: String,
    pub token: Sealed,
    pub from: String,
    pub to: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatSettings {
    pub interval_ms: u64,
    /// The droplets that may send it, in order of preference.
    pub senders: Vec<String>,
}

/// A message for people: a subject, a body that says what happened, when, to which droplet
/// and what was done, and whether it is urgent enough for SMS too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub subject: String,
    pub body: String,
    pub urgent: bool,
    /// What a text message says, when the subject and the start of the body would not do.
    pub sms: Option<String>,
}

/// How one channel's delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub channel: &'static str,
    pub to: String,
    pub result: Result<(), String>,
}

/// Sends a notice by email, and by SMS when it is urgent; reports every delivery.
pub async fn send(settings: &NotifySettings, key: &FleetKey, notice: &Notice) -> Vec<Delivery> {
    // Both channels at once: a mail server that hangs must not hold up the text message.
    let mail = async {
        match &settings.email {
            Some(email) => {
                let result = email::send(email, key, notice).await;
                vec![Delivery { channel: "email", to: email.to.join(", "), result }]
            }
            None => Vec::new(),
        }
    };
    let texts = async {
        match settings.sms.as_ref().filter(|_| notice.urgent) {
            Some(sms) => sms::send(sms, key, notice).await,
            None => Vec::new(),
        }
    };
    let (mut deliveries, texts) = tokio::join!(mail, texts);
    deliveries.extend(texts);
    deliveries
}

/// What the configuration files say about notifications, for agents; and a line for each
/// channel that is off although configured, saying why.
pub fn settings(
    workspace: &Workspace,
    env: &Environment,
    key: &FleetKey,
    fleet_droplets: &[String],
) -> anyhow::Result<(Option<NotifySettings>, Vec<String>)> {
    let mut off = Vec::new();
    let email_file = workspace.email_config();
    let (email, heartbeat) = if email_file.exists() {
        let config = notify_config::load_email(&email_file)?;
        match email_settings(&config, workspace.config_dir(), env, key) {
            Ok(email) => {
                let heartbeat = heartbeat_settings(&config, fleet_droplets);
                (Some(email), heartbeat)
            }
            Err(why) => {
                off.push(format!("email alerts are off: {why}"));
                (None, None)
            }
        }
    } else {
        (None, None)
    };
    let sms_file = workspace.sms_config();
    let sms = if sms_file.exists() {
        let config = notify_config::load_sms(&sms_file)?;
        match sms_settings(&config, env, key) {
            Ok(sms) => sms,
            Err(why) => {
                off.push(format!("SMS alerts are off: {why}"));
                None
            }
        }
    } else {
        None
    };
    if email.is_none() && sms.is_none() {
        return Ok((None, off));
    }
    Ok((Some(NotifySettings { email, sms, heartbeat }), off))
}

fn email_settings(
    config: &EmailConfig,
    config_dir: &Path,
    env: &Environment,
    key: &FleetKey,
) -> Result<EmailSettings, String> {
    let smtp = &config.smtp_settings;
    let password = match &smtp.password {
        Some(name) => match env.get(name) {
            Some(value) => Some(sealed::seal(key, SMTP_PASSWORD, &Secret::new(value))),
            None => {
                return Err(format!(
                    "{name}, named in email_config.json at smtp_settings.password, is not set in \
                     the environment or .env"
                ));
            }
        },
        None => None,
    };
    let ca_pem = match &smtp.ca_certificate {
        Some(path) => Some(read_ca(config_dir, path)?),
        None => None,
    };
    let security = match (smtp.use_tls, smtp.port) {
        (false, _) => Security::None,
        (true, 465) => Security::Tls,
        (true, _) => Security::StartTls,
    };
    Ok(EmailSettings {
        from: config.from_address.clone(),
        to: config.recipients.values().cloned().collect(),
        host: smtp.host.clone(),
        port: smtp.port,
        security,
        username: smtp.username.clone(),
        password,
        ca_pem,
    })
}

/// Who sends heartbeats, in order, and how often; none when they are off.
pub fn heartbeat_settings(
    config: &EmailConfig,
    fleet_droplets: &[String],
) -> Option<HeartbeatSettings> {
    let heartbeat = &config.heartbeat;
    if !heartbeat.enabled {
        return None;
    }
    let primary =
        heartbeat.primary_sender.clone().unwrap_or_else(|| fleet::model::MASTER.to_string());
    let backups = heartbeat
        .backup_senders
        .clone()
        .unwrap_or_else(|| fleet_droplets.iter().filter(|d| **d != primary).cloned().collect());
    let mut senders = Vec::new();
    for sender in std::iter::once(primary).chain(backups) {
        // Droplets the fleet does not have (yet) cannot send.
        if !senders.contains(&sender) && fleet_droplets.contains(&sender) {
            senders.push(sender);
        }
    }
    if senders.is_empty() {
        return None;
    }
    // Rounded to whole milliseconds; the configuration allows no less than three seconds.
    let interval_ms = (heartbeat.interval_minutes * 60_000.0).round() as u64;
    Some(HeartbeatSettings { interval_ms, senders })
}

fn sms_settings(
    config: &SmsConfig,
    env: &Environment,
    key: &FleetKey,
) -> Result<Option<SmsSettings>, String> {
    if !config.enabled {
        return Ok(None);
    }
    let Some(token) = env.get(&config.auth_token) else {
        return Err(format!(
            "{}, named in sms_config.json at auth_token, is not set in the environment or .env",
            config.auth_token
        ));
    };
    Ok(Some(SmsSettings {
        gateway_url: config.gateway_url.clone(),
        account_sid: config.account_sid.clone(),
        token: sealed::seal(key, SMS_TOKEN, &Secret::new(token)),
        from: config.from_number.clone(),
        to: config.to_numbers.clone(),
    }))
}

/// Reads the certificate authority `email_config.json` names (relative to the configuration
/// directory): PEM certificates only, never a file holding a private key, since it is handed to
/// every droplet.
pub fn read_ca(config_dir: &Path, path: &Path) -> Result<String, String> {
    let path = config_dir.join(path);
    let pem = std::fs::read_to_string(&path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    if pem.contains("PRIVATE KEY") {
        return Err(format!("{} holds a private key; name the certificate only", path.display()));
    }
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!("{} is not a PEM certificate", path.display()));
    }
    Ok(pem)
}
