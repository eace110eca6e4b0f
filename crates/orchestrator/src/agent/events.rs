//! Recent happenings on a droplet worth showing an operator: targets leaving and returning to
//! rotation, configurations rejected, droplets failing and recovering.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// How many events are kept.
const KEPT: usize = 200;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339.
    pub at: String,
    /// `failure`, `recovery`, `rotation`, `notification` or `change`.
    pub kind: EventKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A droplet failed, or its recovery did.
    Failure,
    /// A droplet was recovered.
    Recovery,
    /// A load-balancer target left or rejoined rotation.
    Rotation,
    /// An alert or heartbeat went out, or could not.
    Notification,
    Change,
}

/// The newest events, oldest dropped first; kept in a file when given one, so they outlive a
/// restart of the agent and travel in the droplet's snapshots.
#[derive(Debug, Default)]
pub struct Events {
    events: Mutex<VecDeque<Event>>,
    file: Option<std::path::PathBuf>,
}

impl Events {
    /// Events kept in `file`, starting from what it holds.
    pub fn kept_in(file: std::path::PathBuf) -> Events {
        let events = std::fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Events { events: Mutex::new(events), file: Some(file) }
    }

    pub fn record(&self, kind: EventKind, message: String) {
        match kind {
            EventKind::Failure => tracing::warn!(%message, "event"),
            _ => tracing::info!(%message, "event"),
        }
        let mut events = self.events.lock().expect("the event log is never poisoned");
        if events.len() == KEPT {
            events.pop_front();
        }
        events.push_back(Event { at: crate::clock::now_rfc3339(), kind, message });
        if let Some(file) = &self.file {
            let text = serde_json::to_vec(&*events).expect("events always serialise");
            if let Err(err) = fleet::store::write_atomically(file, &text, None) {
                tracing::warn!(%err, "cannot keep the event log");
            }
        }
    }

    /// The newest `count` events, newest first.
    pub fn newest(&self, count: usize) -> Vec<Event> {
        let events = self.events.lock().expect("the event log is never poisoned");
        events.iter().rev().take(count).cloned().collect()
    }
}
