//! Heartbeats: one message per interval saying how the fleet is, sent by one droplet only.
//!
//! Intervals are numbered slots of wall-clock time, so every agent agrees on them. The
//! senders take turns in their configured order: the first tries at the start of a slot, the
//! next a step later, and so on. To send, an agent needs the slot granted by most of the fleet
//! (itself included); an agent grants a slot to the first sender that asks and to no other,
//! so two senders can never both hold a majority, and a primary that is down or cut off from
//! the fleet is passed over by the first backup that reaches most of it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet::State;
use serde::{Deserialize, Serialize};

use super::Agent;
use super::alerts::{self, Kind};
use super::events::EventKind;
use crate::control::AgentClient;
use crate::notify::{HeartbeatSettings, Notice};

/// How often the agent looks at the clock.
const TICK: Duration = Duration::from_millis(250);
/// Slots whose grants are remembered.
const REMEMBERED: usize = 64;

/// `POST /v1/heartbeat`: may the sender send the heartbeat of `slot`?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRequest {
    pub slot: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantAnswer {
    pub granted: bool,
    /// Who holds the slot.
    pub holder: String,
}

/// The slots this agent has granted, and to whom.
#[derive(Debug, Default)]
pub struct Grants(Mutex<BTreeMap<u64, String>>);

impl Grants {
    /// Grants `slot` to `sender` unless another sender holds it.
    pub fn grant(&self, slot: u64, sender: &str) -> GrantAnswer {
        let mut grants = self.0.lock().expect("the grants are never poisoned");
        let holder = grants.entry(slot).or_insert_with(|| sender.to_string()).clone();
        while grants.len() > REMEMBERED {
            grants.pop_first();
        }
        GrantAnswer { granted: holder == sender, holder }
    }
}

/// When a sender of `rank` in the order tries, as milliseconds into the slot.
fn step_ms(interval_ms: u64) -> u64 {
    (interval_ms / 5).clamp(1_000, 60_000)
}

/// Whether the sender of `rank` should try the slot now: within its own step of the slot.
fn my_turn(now_ms: u64, interval_ms: u64, rank: usize) -> Option<u64> {
    let step = step_ms(interval_ms);
    let start = step.checked_mul(u64::try_from(rank).ok()?)?;
    let offset = now_ms % interval_ms;
    (start < interval_ms && (start..start + step).contains(&offset)).then_some(now_ms / interval_ms)
}

/// Sends this droplet's heartbeats when they fall to it, for as long as the agent runs.
pub async fn run(agent: Arc<Agent>) {
    let mut done = None;
    let mut last_sent: Option<u64> = None;
    loop {
        tokio::time::sleep(TICK).await;
        let Some((settings, state)) = agent
            .replica
            .read()
            .await
            .as_ref()
            .and_then(|u| Some((u.notify.as_ref()?.heartbeat.clone()?, u.state.clone())))
        else {
            continue;
        };
        let Some(rank) = settings.senders.iter().position(|s| *s == agent.droplet.name) else {
            continue;
        };
        let interval = settings.interval_ms.max(1_000);
        let now = u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or_default();
        let Some(slot) = my_turn(now, interval, rank) else { continue };
        if done == Some(slot) {
            continue;
        }
        // Unanswered requests are asked again while the turn lasts; a slot another sender
        // holds, or this one sent, is done.
        match win(&agent, &state, slot, interval).await {
            Outcome::Won => {
                done = Some(slot);
                // News since the last heartbeat this droplet got out, so a heartbeat that could
                // not be sent loses none of it.
                let since = last_sent.unwrap_or(slot.saturating_sub(1) * interval);
                let notice = notice(&agent, &state, &settings, slot, rank, since).await;
                if alerts::deliver(&agent, Kind::Heartbeat, &notice).await {
                    last_sent = Some(slot * interval);
                }
            }
            Outcome::Taken => done = Some(slot),
            Outcome::Undecided => {}
        }
    }
}

/// What came of asking for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Most of the fleet granted it to this droplet.
    Won,
    /// Another sender holds it somewhere.
    Taken,
    /// Too few answered.
    Undecided,
}

/// Asks every droplet for the slot.
async fn win(agent: &Arc<Agent>, state: &State, slot: u64, interval_ms: u64) -> Outcome {
    let Some(key) = agent.key.clone() else { return Outcome::Taken };
    let me = agent.droplet.name.clone();
    let mine = agent.grants.grant(slot, &me);
    let mut taken = !mine.granted;
    let mut granted = usize::from(mine.granted);
    let client = AgentClient::from_droplet(key, &me, agent.droplet.address.into());
    let timeout = Duration::from_millis((step_ms(interval_ms) / 2).min(2_000));
    let mut asks = tokio::task::JoinSet::new();
    for (name, droplet) in &state.droplets {
        if *name == me {
            continue;
        }
        let (client, base) =
            (client.clone(), format!("http://{}:{}", droplet.ip, droplet.agent_port));
        asks.spawn(async move {
            client
                .post::<_, GrantAnswer>(&base, "/v1/heartbeat", &GrantRequest { slot }, timeout)
                .await
        });
    }
    while let Some(answer) = asks.join_next().await {
        if let Ok(Ok(answer)) = answer {
            granted += usize::from(answer.granted);
            taken |= !answer.granted;
        }
    }
    if granted * 2 > state.droplets.len() {
        Outcome::Won
    } else if taken {
        Outcome::Taken
    } else {
        Outcome::Undecided
    }
}

/// What the heartbeat says: every droplet's answer now, and what happened since the last one.
async fn notice(
    agent: &Agent,
    state: &State,
    settings: &HeartbeatSettings,
    slot: u64,
    rank: usize,
    since: u64,
) -> Notice {
    let http = crate::http::client_from(Some(agent.droplet.address.into()));
    let mut rows = Vec::new();
    let mut answering = 0;
    for name in state.droplet_names() {
        let droplet = &state.droplets[name];
        let url = format!("http://{}:{}/health", droplet.ip, droplet.agent_port);
        let health = match crate::http::probe(&http, &url, Duration::from_secs(2)).await {
            Ok(()) => {
                answering += 1;
                "ok".to_string()
            }
            Err(why) => why,
        };
        rows.push(vec![
            name.to_string(),
            droplet.role.to_string(),
            droplet.ip.clone(),
            droplet.size.clone(),
            health,
        ]);
    }
    let total = state.droplets.len();
    let at = slot_time(slot * settings.interval_ms);
    let verdict = if answering == total {
        format!("all {total} droplets answer")
    } else {
        format!("{} of {total} droplets not answering", total - answering)
    };
    let happened: Vec<String> = agent
        .events
        .newest(50)
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::Failure | EventKind::Recovery))
        .filter(|e| {
            e.at.parse::<jiff::Timestamp>()
                .is_ok_and(|t| u64::try_from(t.as_millisecond()).is_ok_and(|ms| ms >= since))
        })
        .map(|e| format!("- {} {}", e.at, e.message))
        .collect();
    let sender = if rank == 0 {
        format!("Sent by {}, the primary sender.", agent.droplet.name)
    } else {
        format!(
            "Sent by {}, standing in: {} did not take this heartbeat.",
            agent.droplet.name,
            settings.senders[..rank].join(", ")
        )
    };
    let table = crate::output::table(["DROPLET", "ROLE", "ADDRESS", "SIZE", "HEALTH"], rows);
    let events = if happened.is_empty() {
        "No failures or recoveries since the last heartbeat.".to_string()
    } else {
        format!("Since the last heartbeat:\n{}", happened.join("\n"))
    };
    Notice {
        subject: format!("[{}] heartbeat {at}: {verdict}", state.fleet),
        body: format!(
            "The {} fleet at {at}: {verdict}.\n\n{table}\n\n{events}\n\n{sender} The next heartbeat is due at {}.\n",
            state.fleet,
            slot_time((slot + 1) * settings.interval_ms)
        ),
        urgent: false,
        sms: None,
    }
}

fn slot_time(ms: u64) -> String {
    let ms = i64::try_from(ms).unwrap_or_default();
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sender_has_its_own_step_of_the_slot() {
        let interval = 900_000;
        let slot_start = 7 * interval;
        assert_eq!(my_turn(slot_start + 10, interval, 0), Some(7));
        assert_eq!(my_turn(slot_start + 10, interval, 1), None);
        assert_eq!(my_turn(slot_start + 60_000, interval, 1), Some(7));
        assert_eq!(my_turn(slot_start + 60_000, interval, 0), None, "too late for the primary");
        assert_eq!(my_turn(slot_start, interval, 20), None, "beyond the slot");
        // Short intervals still leave every sender a whole second.
        assert_eq!(step_ms(3_000), 1_000);
        assert_eq!(my_turn(3 * 3_000 + 2_500, 3_000, 2), Some(3));
    }

    #[test]
    fn a_slot_is_granted_to_one_sender_only() {
        let grants = Grants::default();
        assert!(grants.grant(5, "master").granted);
        assert!(grants.grant(5, "master").granted, "asking again is harmless");
        let answer = grants.grant(5, "web1");
        assert!(!answer.granted);
        assert_eq!(answer.holder, "master");
        assert!(grants.grant(6, "web1").granted);
        for slot in 10..200 {
            grants.grant(slot, "web1");
        }
        assert!(grants.0.lock().expect("not poisoned").len() <= REMEMBERED);
    }
}
