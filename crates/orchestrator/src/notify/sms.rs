//! Text messages through an HTTP gateway with the shape most providers share: a form-encoded
//! `POST` of `To`, `From` and `Body`, with the account id and token as basic authentication.

use std::time::Duration;

use super::{Delivery, Notice, SMS_TOKEN, SmsSettings};
use crate::control::FleetKey;
use crate::control::sealed;

/// Gateways cut long messages into parts and bill each; alerts keep to about two.
const MAX_CHARS: usize = 300;

/// Sends the notice's subject and the start of its body to every number.
pub async fn send(settings: &SmsSettings, key: &FleetKey, notice: &Notice) -> Vec<Delivery> {
    let token = match sealed::open(key, SMS_TOKEN, &settings.token) {
        Ok(token) => token,
        Err(err) => {
            return settings
                .to
                .iter()
                .map(|to| Delivery { channel: "sms", to: to.clone(), result: Err(err.to_string()) })
                .collect();
        }
    };
    let text = text(notice);
    let http = crate::http::client();
    let mut deliveries = Vec::new();
    for to in &settings.to {
        let form = [("To", to.as_str()), ("From", settings.from.as_str()), ("Body", text.as_str())];
        let answer = http
            .post(&settings.gateway_url)
            .basic_auth(&settings.account_sid, Some(token.expose()))
            .form(&form)
            .timeout(Duration::from_secs(15))
            .send()
            .await;
        let result = match answer {
            Ok(answer) if answer.status().is_success() => Ok(()),
            Ok(answer) => {
                let status = answer.status();
                let body = answer.text().await.unwrap_or_default();
                Err(format!("the SMS gateway answered {status}: {}", gateway_message(&body)))
            }
            Err(err) if err.is_timeout() => Err(
                "the SMS gateway did not answer within 15 s; the message may or may not have gone out"
                    .to_string(),
            ),
            Err(err) => Err(format!("the SMS gateway cannot be reached: {}", without_url(&err))),
        };
        deliveries.push(Delivery { channel: "sms", to: to.clone(), result });
    }
    deliveries
}

/// The subject, then as much of the body as fits.
fn text(notice: &Notice) -> String {
    if let Some(text) = &notice.sms {
        return text.chars().take(MAX_CHARS).collect();
    }
    let mut text = notice.subject.clone();
    for line in notice.body.lines().filter(|l| !l.trim().is_empty()) {
        if text.chars().count() + line.chars().count() + 1 > MAX_CHARS {
            break;
        }
        text.push('\n');
        text.push_str(line);
    }
    text
}

/// The gateway's own explanation (`message` in its JSON error), or the start of its answer.
fn gateway_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    match parsed.as_ref().and_then(|v| v["message"].as_str()) {
        Some(message) => message.to_string(),
        None => body.chars().take(200).collect(),
    }
}

/// A transport error, without the URL (which may carry the account id in its path).
fn without_url(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(url.as_str(), "the gateway");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_notice_is_cut_at_a_line() {
        let notice = Notice {
            subject: "web1 recovered".into(),
            body: format!("first line\n\n{}\nlast", "x".repeat(400)),
            urgent: true,
            sms: None,
        };
        assert_eq!(text(&notice), "web1 recovered\nfirst line");
    }

    #[test]
    fn the_gateways_own_message_is_kept() {
        assert_eq!(
            gateway_message(r#"{"code": 20003, "message": "Authenticate"}"#),
            "Authenticate"
        );
        assert_eq!(gateway_message("Bad Gateway"), "Bad Gateway");
    }
}
