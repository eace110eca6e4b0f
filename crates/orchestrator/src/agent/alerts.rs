//! Sending alerts and heartbeats from an agent, without holding up what it is doing: each
//! delivery, good or bad, lands in the agent's events and metrics.

use std::sync::Arc;

use super::Agent;
use super::events::EventKind;
use crate::notify::{self, Notice};

/// Whether a notice is an alert or a heartbeat, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Alert,
    Heartbeat,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Alert => "alert",
            Kind::Heartbeat => "heartbeat",
        }
    }
}

/// Sends `notice` in the background, if the fleet has somewhere to send it.
pub fn send(agent: &Arc<Agent>, kind: Kind, notice: Notice) {
    let agent = Arc::clone(agent);
    tokio::spawn(async move { deliver(&agent, kind, &notice).await });
}

/// Sends `notice` and records how each delivery went; true if any went out.
pub async fn deliver(agent: &Agent, kind: Kind, notice: &Notice) -> bool {
    let settings = agent.replica.read().await.as_ref().and_then(|u| u.notify.clone());
    let (Some(settings), Some(key)) = (settings, agent.key.clone()) else {
        tracing::info!(subject = %notice.subject, "no notification channel is set up");
        return false;
    };
    let mut any = false;
    for delivery in notify::send(&settings, &key, notice).await {
        agent.metrics.notification(delivery.channel, kind.as_str(), delivery.result.is_ok());
        match delivery.result {
            Ok(()) => {
                any = true;
                agent.events.record(
                    EventKind::Notification,
                    format!(
                        "{} \"{}\" sent by {} to {}",
                        kind.as_str(),
                        notice.subject,
                        delivery.channel,
                        delivery.to
                    ),
                );
            }
            Err(err) => agent.events.record(
                EventKind::Failure,
                format!(
                    "{} \"{}\" not sent by {} to {}: {err}",
                    kind.as_str(),
                    notice.subject,
                    delivery.channel,
                    delivery.to
                ),
            ),
        }
    }
    any
}
