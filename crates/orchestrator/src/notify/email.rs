//! Mail through an SMTP server, over TLS unless the configuration says otherwise.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{EmailSettings, Notice, SMTP_PASSWORD, Security};
use crate::control::FleetKey;
use crate::control::sealed;

/// How long one delivery may take, connection and all.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Sends `notice` to every recipient in one message.
pub async fn send(settings: &EmailSettings, key: &FleetKey, notice: &Notice) -> Result<(), String> {
    let message = message(settings, notice)?;
    let transport = transport(settings, key)?;
    let server = format!("{}:{}", settings.host, settings.port);
    // The transport's own timeout covers each step; a server that stops answering halfway
    // through a conversation must not hold up the next alert either.
    match tokio::time::timeout(TIMEOUT * 2, transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(format!("{server} did not take the mail: {err}")),
        Err(_) => Err(format!("{server} stopped answering for {} s", (TIMEOUT * 2).as_secs())),
    }
}

fn message(settings: &EmailSettings, notice: &Notice) -> Result<Message, String> {
    let mailbox = |address: &str| -> Result<Mailbox, String> {
        address.parse().map_err(|err| format!("{address:?} is not a usable address: {err}"))
    };
    let mut builder = Message::builder()
        .from(mailbox(&settings.from)?)
        .subject(notice.subject.clone())
        .message_id(None)
        .header(lettre::message::header::MIME_VERSION_1_0)
        .header(ContentType::TEXT_PLAIN);
    for to in &settings.to {
        builder = builder.to(mailbox(to)?);
    }
    builder.body(notice.body.clone()).map_err(|err| format!("cannot build the mail: {err}"))
}

fn transport(
    settings: &EmailSettings,
    key: &FleetKey,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let tls = || -> Result<TlsParameters, String> {
        let mut parameters = TlsParameters::builder(settings.host.clone());
        if let Some(pem) = &settings.ca_pem {
            let certificate = Certificate::from_pem(pem.as_bytes())
                .map_err(|err| format!("the trusted certificate is not usable PEM: {err}"))?;
            parameters = parameters.add_root_certificate(certificate);
        }
        parameters.build_rustls().map_err(|err| format!("cannot set up TLS: {err}"))
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
        .port(settings.port)
        .timeout(Some(TIMEOUT));
    builder = match settings.security {
        Security::Tls => builder.tls(Tls::Wrapper(tls()?)),
        Security::StartTls => builder.tls(Tls::Required(tls()?)),
        Security::None => builder.tls(Tls::None),
    };
    if let Some(username) = &settings.username {
        let password = match &settings.password {
            Some(sealed) => sealed::open(key, SMTP_PASSWORD, sealed).map_err(|e| e.to_string())?,
            None => crate::secret::Secret::new(""),
        };
        builder =
            builder.credentials(Credentials::new(username.clone(), password.expose().to_string()));
    }
    Ok(builder.build())
}
