//! Watching peers: every agent checks the droplets the topology gives it, shares its
//! suspicions with the target's other monitors, and learns from the consensus whether a
//! droplet has failed and whether its recovery falls to this agent.
//!
//! The rules live in [`fleet::consensus`]; this module feeds them real checks (on a
//! monotonic clock) and signed reports, and keeps what `/status` shows of them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fleet::State;
use fleet::consensus::{Consensus, Decision, Report, Settings, Verdict};
use serde::{Deserialize, Serialize};

/// How often peers are checked, and how long a check may take.
pub const INTERVAL: Duration = Duration::from_secs(1);
pub const TIMEOUT: Duration = Duration::from_millis(500);

/// `POST /v1/report`: a monitor's suspicion of a target, or its withdrawal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportMessage {
    pub target: String,
    pub suspect: bool,
}

/// `POST /v1/claim`: the sender leads the recovery of `target` for `lease_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimMessage {
    pub target: String,
    pub lease_ms: u64,
}

/// What `/status` shows of this agent's monitoring.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorView {
    /// The droplets this agent checks, with its last check and the fleet's verdict.
    pub watches: Vec<WatchView>,
    /// Whether every check of this agent fails, so it holds back its suspicions.
    pub cut_off: bool,
    /// Failures it will not recover because too much of the fleet looks failed.
    pub held_back: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchView {
    pub target: String,
    /// `ok`, or why the last check failed.
    pub last_check: String,
    /// `healthy`, `suspected by …`, or `failed (leader …)`.
    pub verdict: String,
}

/// One agent's monitoring.
pub struct Monitor {
    me: String,
    started: Instant,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    topology: BTreeMap<String, Vec<String>>,
    consensus: Option<Consensus>,
    last_check: BTreeMap<String, String>,
    held_back: Vec<String>,
    recovering: BTreeSet<String>,
    /// Failed recoveries: how many in a row, and when the next may start.
    retries: BTreeMap<String, (u32, u64)>,
}

/// What falls to this agent after a round of checks.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decisions {
    /// Recoveries this agent leads now.
    pub recover: Vec<String>,
    /// Droplets that newly look failed all at once, too many to recover.
    pub newly_held_back: Option<Vec<String>>,
}

/// The first retry of a failed recovery waits this long, doubling up to [`MAX_RETRY_WAIT`].
const FIRST_RETRY_WAIT: Duration = Duration::from_secs(5);
const MAX_RETRY_WAIT: Duration = Duration::from_secs(300);

impl Monitor {
    pub fn new(me: &str) -> Monitor {
        Monitor { me: me.to_string(), started: Instant::now(), inner: Mutex::new(Inner::default()) }
    }

    /// Milliseconds on this agent's monotonic clock.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("the monitor is never poisoned")
    }

    /// Takes the topology of a new fleet state; a changed ring starts the consensus afresh.
    pub fn sync(&self, state: &State) {
        // The ring and every address: a droplet replaced on a new address starts with a clean
        // slate, without suspicions of the one it replaced.
        let topology: BTreeMap<String, Vec<String>> = state
            .droplets
            .iter()
            .map(|(name, d)| {
                let mut key = d.monitors.clone();
                key.push(format!("{}:{}", d.ip, d.agent_port));
                (name.clone(), key)
            })
            .collect();
        let monitors: BTreeMap<String, Vec<String>> =
            state.droplets.iter().map(|(name, d)| (name.clone(), d.monitors.clone())).collect();
        let mut inner = self.lock();
        if inner.topology != topology || inner.consensus.is_none() {
            inner.consensus = Some(Consensus::new(&self.me, &monitors, Settings::default()));
            inner.topology = topology;
            inner.last_check.clear();
        }
    }

    /// The droplets to check now.
    pub fn targets(&self) -> Vec<String> {
        self.lock().consensus.as_ref().map(Consensus::targets).unwrap_or_default()
    }

    /// Records a check; returns the report to send and who to send it to.
    pub fn record_check(
        &self,
        target: &str,
        result: Result<(), String>,
    ) -> Option<(Report, Vec<String>)> {
        let now = self.now_ms();
        let mut inner = self.lock();
        inner
            .last_check
            .insert(target.to_string(), result.clone().err().unwrap_or_else(|| "ok".into()));
        let consensus = inner.consensus.as_mut()?;
        let report = consensus.record_check(target, result.is_ok(), now)?;
        Some((report, consensus.fellow_monitors(target)))
    }

    pub fn record_report(&self, from: &str, message: &ReportMessage) {
        let now = self.now_ms();
        let report = if message.suspect {
            Report::Suspect { target: message.target.clone() }
        } else {
            Report::Clear { target: message.target.clone() }
        };
        if let Some(consensus) = self.lock().consensus.as_mut() {
            consensus.record_report(from, &report, now);
        }
    }

    pub fn record_claim(&self, from: &str, message: &ClaimMessage) {
        let until = self.now_ms() + message.lease_ms;
        if let Some(consensus) = self.lock().consensus.as_mut() {
            consensus.record_claim(&message.target, from, until);
        }
    }

    /// The recoveries that fall to this agent now, each handed out once, and failures held
    /// back because too much of the fleet looks failed.
    pub fn decide(&self) -> Decisions {
        let now = self.now_ms();
        let mut inner = self.lock();
        let Inner { consensus, held_back, recovering, retries, .. } = &mut *inner;
        let Some(consensus) = consensus.as_mut() else { return Decisions::default() };
        let mut mine = Vec::new();
        let mut held = Vec::new();
        for decision in consensus.decide(now) {
            match decision {
                Decision::Recover { target } => mine.push(target),
                Decision::HoldBack { targets } => held = targets,
            }
        }
        // A recovery that failed waits out its back-off before this agent leads it again.
        mine.retain(|target| retries.get(target).is_none_or(|(_, not_before)| now >= *not_before));
        for target in &mine {
            consensus.record_claim(target, &self.me, consensus.lease_until(now));
        }
        let newly_held_back = (!held.is_empty() && held != *held_back).then(|| held.clone());
        *held_back = held;
        mine.retain(|target| recovering.insert(target.clone()));
        Decisions { recover: mine, newly_held_back }
    }

    /// A recovery led by this agent failed: returns which attempt it was and how long until
    /// the next.
    pub fn recovery_failed(&self, target: &str) -> (u32, Duration) {
        let now = self.now_ms();
        let mut inner = self.lock();
        let entry = inner.retries.entry(target.to_string()).or_insert((0, 0));
        entry.0 += 1;
        let wait =
            FIRST_RETRY_WAIT.saturating_mul(2u32.saturating_pow(entry.0 - 1)).min(MAX_RETRY_WAIT);
        entry.1 = now + u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        (entry.0, wait)
    }

    /// How many recoveries of `target` in a row this agent led and saw fail.
    pub fn recovery_attempts(&self, target: &str) -> u32 {
        self.lock().retries.get(target).map_or(0, |(attempts, _)| *attempts)
    }

    /// A recovery led by this agent succeeded: no back-off remains.
    pub fn recovery_succeeded(&self, target: &str) {
        self.lock().retries.remove(target);
    }

    /// The lease this agent announces when it claims a recovery.
    pub fn lease_ms(&self) -> u64 {
        Settings::default().lease_ms
    }

    /// A recovery of `target` ended (either way); the consensus about it starts over.
    pub fn recovery_ended(&self, target: &str) {
        let mut inner = self.lock();
        inner.recovering.remove(target);
        if let Some(consensus) = inner.consensus.as_mut() {
            consensus.forget(target);
        }
    }

    /// Whether this agent should slow its checks down: all of them fail, so it is likely
    /// the one in trouble.
    pub fn cut_off(&self) -> bool {
        self.lock().consensus.as_ref().is_some_and(Consensus::cut_off)
    }

    pub fn view(&self) -> MonitorView {
        let now = self.now_ms();
        let inner = self.lock();
        let Some(consensus) = &inner.consensus else { return MonitorView::default() };
        let watches = consensus
            .targets()
            .into_iter()
            .map(|target| {
                let verdict = match consensus.verdict(&target, now) {
                    Verdict::Unwatched => "unwatched".to_string(),
                    Verdict::Healthy => "healthy".to_string(),
                    Verdict::Suspected { by, needed } => {
                        format!("suspected by {} (needs {needed})", by.join(", "))
                    }
                    Verdict::Failed { leader, .. } => format!("failed (recovery led by {leader})"),
                };
                let last_check = inner
                    .last_check
                    .get(&target)
                    .cloned()
                    .unwrap_or_else(|| "not checked yet".into());
                WatchView { target, last_check, verdict }
            })
            .collect();
        MonitorView { watches, cut_off: consensus.cut_off(), held_back: inner.held_back.clone() }
    }
}
